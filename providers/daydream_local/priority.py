"""Hot-start initialisation at idle CPU priority.

On a small host a hot start's init (imports, data) competes with the running phase for the
same cores: it is the same work as a cold start's, only earlier, and it slows the components
that are running. So a hot-started instance initialises under ``SCHED_IDLE`` (it gets a CPU
only when no running component wants it) and goes back to normal priority the moment a
component takes it. Linux only lets a process leave ``SCHED_IDLE`` with CAP_SYS_NICE or a
generous RLIMIT_NICE; where that is not so, hot starts keep normal priority (as before).

The time a hot start spends held back at idle priority is the platform's choice, not the
function's: on Lambda an instance initialises on CPUs of its own. So it is not billed
(`held_back_ms`, from the kernel's scheduler statistics): a hot start's billed init is the
time it initialised, not the time it waited for the phase to leave it a CPU.
"""

from __future__ import annotations

import contextlib
import os
import resource
import sys


def can_restore() -> bool:
    """Whether this process may raise a thread back from SCHED_IDLE to normal priority."""
    if not sys.platform.startswith("linux") or not hasattr(os, "SCHED_IDLE"):
        return False
    if os.geteuid() == 0:
        return True
    soft, _ = resource.getrlimit(resource.RLIMIT_NICE)
    return soft == resource.RLIM_INFINITY or soft >= 20  # nice 0 allowed: 20 - rlimit <= 0


def _threads(pid: int) -> list[int]:
    try:
        return [int(t) for t in os.listdir(f"/proc/{pid}/task")]
    except OSError:
        return [pid]


def lower(pid: int) -> None:
    """Initialise `pid` at idle priority. Done by the platform as it spawns the instance,
    before the instance has its configuration and so before any import can start a thread
    (threads inherit it), and before anyone can take it: had the instance lowered itself, a
    component that took it first (a hot start claimed in its init) was restored before the
    instance lowered itself and ran at idle priority throughout (`ccl`'s `mock_data`, 3.4 s
    of work, took 11.8 s behind the phase's other components and the hot starts' inits)."""
    with contextlib.suppress(OSError):
        os.sched_setscheduler(pid, os.SCHED_IDLE, os.sched_param(0))


def restore(pid: int) -> None:
    """Every thread of `pid` back to normal priority (a component has taken the instance)."""
    for tid in _threads(pid):
        with contextlib.suppress(OSError):
            if os.sched_getscheduler(tid) == os.SCHED_IDLE:
                os.sched_setscheduler(tid, os.SCHED_OTHER, os.sched_param(0))


def held_back_ms(pid: int) -> float:
    """How long `pid`'s main thread (where the runtime environment is imported) has been
    runnable but waiting for a CPU, in ms (0 where the kernel does not say)."""
    try:
        with open(f"/proc/{pid}/schedstat") as stats:
            return int(stats.read().split()[1]) / 1e6
    except (OSError, IndexError, ValueError):
        return 0.0
