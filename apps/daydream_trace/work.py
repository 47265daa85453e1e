"""Calibrated real work: CPU, memory and I/O sized to what a trace recorded.

CPU work is counted in *units* (an FFT low-pass filter of a 32768-sample signal and a small
matrix product), never in sleeps. How many units make one CPU-second is calibrated once per
process on one thread (`units_per_second`), at instance init when `daydream_trace.calibrate`
is preloaded; a component then runs ``seconds x rate`` units split over the threads its tier
affords, so a bigger tier finishes the same work sooner.
"""

from __future__ import annotations

import functools
import time
import zlib
from concurrent.futures import ThreadPoolExecutor

import numpy as np

SIGNAL = 32768
MATRIX = 48
MIB = 1 << 20


def _kernel() -> np.ndarray:
    return np.exp(-np.arange(SIGNAL // 2 + 1) / 400.0)


def cpu_units(count: int, salt: int = 0) -> float:
    """Run `count` units of work on this thread; return a checksum of the result."""
    rng = np.random.default_rng(salt)
    signal = rng.standard_normal(SIGNAL)
    matrix = rng.standard_normal((MATRIX, MATRIX)) / MATRIX
    state = np.eye(MATRIX)
    kernel = _kernel()
    for _ in range(count):
        signal = np.fft.irfft(np.fft.rfft(signal) * kernel, SIGNAL)
        signal -= signal.mean()
        signal /= signal.std() + 1e-12
        state = matrix @ state
        state /= np.abs(state).max() + 1e-12
    return float(signal[:16].sum() + state.trace())


@functools.cache
def units_per_second() -> float:
    """Units per CPU-second of one thread, measured once per process (best of five bursts).

    The clock is the thread's CPU time, not the wall clock: instances that start together
    (a phase of cold starts) share the cores while they calibrate, and a wall-clock rate would
    then size every later component's work to a fraction of what the trace recorded.
    """
    cpu_units(3)  # first-call costs: FFT plan cache, allocations
    best = float("inf")
    for _ in range(5):
        started = time.thread_time()
        cpu_units(20)
        best = min(best, time.thread_time() - started)
    return 20.0 / max(best, 1e-6)


def run_cpu(
    seconds: float, threads: int, salt: int = 0, rate: float | None = None
) -> tuple[int, float]:
    """Do `seconds` of calibrated single-thread work, split over `threads`; (units, checksum).

    `rate` (units per second) replaces this process's calibration, for runs that must do the
    same amount of work on every machine.
    """
    units = max(0, round(seconds * (rate or units_per_second())))
    if units == 0:
        return 0, 0.0
    workers = max(1, min(threads, units))
    shares = [units // workers + (1 if i < units % workers else 0) for i in range(workers)]
    if workers == 1:
        return units, cpu_units(units, salt)
    with ThreadPoolExecutor(max_workers=workers) as pool:
        sums = list(pool.map(lambda i: cpu_units(shares[i], salt + i), range(workers)))
    return units, float(sum(sums))


def touch_memory(megabytes: float) -> np.ndarray:
    """Allocate `megabytes` and write every byte, so the pages are really resident."""
    buffer = np.empty(int(megabytes * MIB), dtype=np.uint8)
    buffer.fill(1)
    return buffer


def payload(megabytes: float, seed: int, name: str) -> bytes:
    """Deterministic incompressible bytes for an output file."""
    rng = np.random.default_rng([seed, zlib.crc32(name.encode())])
    return rng.bytes(int(megabytes * MIB))


def checksum(data: bytes, start: int = 1) -> int:
    return zlib.adler32(data, start)
