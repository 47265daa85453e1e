"""Resource envelopes: a tier's CPU set, thread count and memory limit, applied to a process."""

from __future__ import annotations

import os
from dataclasses import dataclass

from daydream_core.model import Tier

THREAD_VARIABLES = (
    "OMP_NUM_THREADS",
    "OPENBLAS_NUM_THREADS",
    "MKL_NUM_THREADS",
    "NUMEXPR_NUM_THREADS",
    "VECLIB_MAXIMUM_THREADS",
)


def host_cpus() -> list[int]:
    return sorted(os.sched_getaffinity(0))


@dataclass(frozen=True)
class Envelope:
    """What one instance may use."""

    cpus: tuple[int, ...]
    memory_mb: int

    @property
    def threads(self) -> int:
        return len(self.cpus)

    def environment(self) -> dict[str, str]:
        # Instances share the host's CPUs: OpenMP threads that spin while waiting would steal
        # them from other instances, so idle threads sleep instead.
        return {**dict.fromkeys(THREAD_VARIABLES, str(self.threads)), "OMP_WAIT_POLICY": "PASSIVE"}


class CpuAllocator:
    """Hands out CPU sets for a tier's instances, rotating so that instances spread out."""

    def __init__(self, cpus: list[int] | None = None) -> None:
        self.cpus = cpus or host_cpus()
        self._next = 0

    def envelope(self, tier: Tier) -> Envelope:
        count = max(1, min(len(self.cpus), int(tier.vcpus)))
        start = self._next
        self._next = (self._next + count) % len(self.cpus)
        chosen = tuple(sorted(self.cpus[(start + i) % len(self.cpus)] for i in range(count)))
        return Envelope(cpus=chosen, memory_mb=tier.memory_mb)
