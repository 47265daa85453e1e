"""cctbx must be imported before scipy (and other C++ extensions) in a process that uses both.

The `cctbx-base` wheel bundles a newer libstdc++ than the system one that scipy's C++
extensions (e.g. `scipy.special`, which `scipy.ndimage` and `scipy.stats` import) link to.
If an extension initialises the older library's iostreams first, cctbx's first use of an
``std::ostringstream`` (at import) crashes the interpreter with a segmentation fault. Loading
cctbx first is safe. Instances of this workflow import it first (see the runtime
environment's `preload`); anything else that runs cctbx-using code should do the same, and
this guard turns the crash into an explanatory error.
"""

from __future__ import annotations

import importlib
import sys

# Modules whose import loads the system libstdc++ and initialises its iostreams.
_CONFLICTING = ("scipy.special", "healpy", "pyccl", "camb")


class CctbxImportOrderError(RuntimeError):
    """cctbx cannot be imported safely in this process any more."""


def ensure_cctbx_importable() -> None:
    """Import cctbx now, or raise if a conflicting C++ extension was imported before it."""
    if "cctbx.array_family.flex" in sys.modules:
        return
    loaded = [name for name in _CONFLICTING if name in sys.modules]
    if loaded:
        raise CctbxImportOrderError(
            f"cctbx must be imported before {', '.join(loaded)} in this process (their "
            "libstdc++ versions conflict and importing cctbx now would crash the interpreter); "
            "import cctbx.array_family.flex first, e.g. through the workflow's preload list"
        )
    importlib.import_module("cctbx.array_family.flex")
