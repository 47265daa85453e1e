"""Instances die with their controller, whatever kills it (SIGKILL included).

Two halves. In the instance, `die_with_parent` asks the kernel for SIGKILL when its parent
goes (``prctl(PR_SET_PDEATHSIG)``), then checks that the parent is still the one that started
it (it may have died before the request). In the controller, `Spawner` starts every instance
from one thread that lives as long as the process: Linux sends the parent-death signal when
the *thread* that forked the child exits, so spawning from a short-lived worker thread would
kill instances while their controller lives on.

Each instance leads its own process group, so `Instance.kill` takes whatever a component
started with it, and a Ctrl-C at the terminal reaches only the controller, which then stops
its instances itself.
"""

from __future__ import annotations

import os
import queue
import signal
import sys
import threading
from collections.abc import Callable
from concurrent.futures import Future
from typing import Any, TypeVar

PR_SET_PDEATHSIG = 1
T = TypeVar("T")

# The command that starts an instance without the working directory on sys.path, on every
# Python from 3.10 (which has no -P): `-c` puts "" (the working directory) first; it is
# dropped before anything is imported from there, so a file named like a standard-library
# module beside the user never shadows it.
BOOTSTRAP = (
    "import sys\n"
    "if sys.path and sys.path[0] == '': del sys.path[0]\n"
    "from daydream_local.worker import main\n"
    "sys.exit(main(sys.argv[1:]))\n"
)


def command(*args: str) -> list[str]:
    return [sys.executable, "-c", BOOTSTRAP, *args]


def die_with_parent(parent_pid: int) -> None:
    """Be killed when the controller dies; exit now if it already has."""
    if sys.platform.startswith("linux"):
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        if libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0) != 0:
            raise OSError(ctypes.get_errno(), "prctl(PR_SET_PDEATHSIG) failed")
    if os.getppid() != parent_pid:
        os._exit(1)  # orphaned between fork and prctl: the controller is gone


class Spawner:
    """Runs process creation on one long-lived daemon thread."""

    def __init__(self) -> None:
        self._jobs: queue.SimpleQueue[tuple[Callable[[], Any], Future[Any]]] = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._serve, name="daydream-spawner", daemon=True)
        self._thread.start()

    def run(self, job: Callable[[], T]) -> T:
        """Run `job` on the spawner thread; its result, or its exception raised here."""
        if threading.current_thread() is self._thread:
            return job()
        done: Future[T] = Future()
        self._jobs.put((job, done))
        return done.result()

    def _serve(self) -> None:
        while True:
            job, done = self._jobs.get()
            try:
                done.set_result(job())
            except BaseException as exc:
                done.set_exception(exc)


_spawner: Spawner | None = None
_spawner_lock = threading.Lock()


def spawner() -> Spawner:
    """This process's spawner: one for every local platform in it, made on first use."""
    global _spawner
    with _spawner_lock:
        if _spawner is None:
            _spawner = Spawner()
        return _spawner
