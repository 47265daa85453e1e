"""OpenMP thread counts of the libraries a component uses, set per call.

pyccl and CAMB each bring their own OpenMP runtime (wheels vendor a private ``libgomp``), both
sized by OMP_NUM_THREADS when the instance starts. Most pyccl work parallelises well (Limber
integrals over many multipoles, Bessel integrals over angles), but the non-Limber FKEM path
calls small OpenMP regions thousands of times: with more threads than idle cores each region
waits for a descheduled thread, and the call runs many times slower instead of faster. Such
steps run on one thread with `omp_threads(1)`.

The runtime is found among the libraries this process has loaded (Linux); elsewhere, or if
it cannot be found, `omp_threads` changes nothing.
"""

from __future__ import annotations

import ctypes
import functools
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


@functools.cache
def _runtimes(package_dir: str) -> tuple[ctypes.CDLL, ...]:
    """The OpenMP runtimes a package uses: its vendored one (``<package>.libs``, as in wheels)
    if loaded, else every OpenMP runtime loaded (a shared system one)."""
    maps = Path("/proc/self/maps")
    if not maps.exists():
        return ()
    loaded: set[str] = set()
    for line in maps.read_text().splitlines():
        fields = line.split()
        if len(fields) >= 6 and Path(fields[-1]).name.startswith(("libgomp", "libomp", "libiomp")):
            loaded.add(fields[-1])
    vendored = {path for path in loaded if path.startswith(package_dir + ".libs/")}
    found: list[ctypes.CDLL] = []
    for path in sorted(vendored or loaded):
        try:
            lib = ctypes.CDLL(path)
            lib.omp_get_max_threads.restype = ctypes.c_int
            lib.omp_set_num_threads.argtypes = [ctypes.c_int]
        except (OSError, AttributeError):
            continue
        found.append(lib)
    return tuple(found)


def pyccl_runtimes() -> tuple[ctypes.CDLL, ...]:
    import pyccl

    site = Path(pyccl.__file__).resolve().parent.parent
    return _runtimes(str(site / "pyccl"))


@contextmanager
def omp_threads(n: int) -> Iterator[None]:
    """Run pyccl's OpenMP regions on `n` threads inside the block, then restore."""
    runtimes = pyccl_runtimes()
    before = [lib.omp_get_max_threads() for lib in runtimes]
    try:
        for lib in runtimes:
            lib.omp_set_num_threads(max(1, int(n)))
        yield
    finally:
        for lib, count in zip(runtimes, before, strict=True):
            lib.omp_set_num_threads(count)
