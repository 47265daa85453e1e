"""Preloaded by every instance of the ``trace`` runtime: calibrates CPU work at init, so the
calibration is paid by the cold or hot start, not by the first component."""

from __future__ import annotations

from daydream_trace.work import units_per_second

RATE = units_per_second()
