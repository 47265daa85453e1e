"""An instance's main loop: load the runtime environment once, then serve components by name.

Started by the local platform with ``IN_FD OUT_FD IDENTITY`` (see `lifeline.command`: the
working directory is not on its ``sys.path``; IDENTITY only names the instance for `ps`); its
first frame is the configuration (runtime, tier, CPUs, the store and payload key fixed at
deploy). It answers ``ready`` when its init is done,
then one envelope per request.
"""

from __future__ import annotations

import os
import resource
import signal
import sys
import time


def apply_envelope(cpus: list[int], memory_mb: int) -> None:
    """Pin CPUs and cap memory before any import can start a thread (threads keep the
    affinity they were born with)."""
    os.sched_setaffinity(0, cpus)
    limit = memory_mb * 1024 * 1024
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))


def main(argv: list[str]) -> int:
    from daydream_local.lifeline import die_with_parent
    from daydream_local.protocol import InstanceGone, read_frame, write_frame

    in_fd, out_fd = int(argv[0]), int(argv[1])
    try:
        config = read_frame(in_fd)
    except InstanceGone:
        return 1
    die_with_parent(int(config["controller"]))
    apply_envelope(config["cpus"], config["tier"]["memory_mb"])
    sys.stdout = sys.stderr  # components may print: keep the protocol pipes apart

    import traceback

    try:
        from daydream_core.faults import FaultPlan, InstanceKill
        from daydream_core.model import Tier
        from daydream_core.runtime import FunctionRuntime
        from daydream_core.workflow import RuntimeEnvironment

        spec = config["runtime"]
        runtime = FunctionRuntime(
            RuntimeEnvironment(
                name=spec["name"],
                module=spec["module"],
                preload=tuple(spec["preload"]),
                requirements=tuple(spec["requirements"]),
            ),
            Tier(**config["tier"]),
            threads=len(config["cpus"]),
            store_uri=config["store"] or None,
            key=config["key"] or None,
            faults=FaultPlan.parse(config["faults"]) if config.get("faults") else None,
        )
    except BaseException:
        write_frame(out_fd, {"ready": False, "traceback": traceback.format_exc()})
        return 1
    # CLOCK_MONOTONIC is one clock for every process of the host: the platform times the
    # init from its spawn to this moment, not to when it got round to reading this frame.
    ready_at = time.monotonic()
    write_frame(
        out_fd,
        {"ready": True, "init_ms": runtime.init_ms, "pid": os.getpid(), "ready_at": ready_at},
    )
    while True:
        try:
            payload = read_frame(in_fd)
        except InstanceGone:
            return 0
        try:
            envelope = runtime.handle(payload)
        except InstanceKill:  # an injected fault: die as a killed instance does
            os.killpg(os.getpgrp(), signal.SIGKILL)
            raise
        write_frame(out_fd, envelope)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
