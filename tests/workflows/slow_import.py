"""A module whose import takes about a second of real work, like a heavy scientific stack."""

import time

_end = time.monotonic() + 1.0
_count = 0
while time.monotonic() < _end:
    _count += 1
