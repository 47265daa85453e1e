"""A dynamic workflow for resume tests: each phase's width and arguments come from the previous
phase's outputs and the run's random generator; large data goes through the object store by
key; one phase can be held at a gate, so a test can stop the controller while it runs."""

from __future__ import annotations

import hashlib
import time
from pathlib import Path

from daydream_core import Call, ComponentContext, Preset, RunContext, Workflow

GATE_WAIT_S = 120.0  # a held component gives up (and fails) if no test opens its gate

workflow = Workflow(
    "steps",
    presets={"small": Preset({"phases": 5, "width": 3, "hold_phase": -1, "gate_dir": ""})},
)


@workflow.component
def step(ctx: ComponentContext, value: int, salt: int, gate_dir: str = "") -> dict[str, object]:
    """Hash (value, salt); keep the digest in the store, return its key and a small number."""
    if gate_dir:
        gate = Path(gate_dir)
        (gate / f"{ctx.component_id}.waiting").write_text("")
        deadline = time.monotonic() + GATE_WAIT_S
        while not (gate / "open").exists():
            if time.monotonic() > deadline:
                raise TimeoutError(f"nobody opened {gate}")
            time.sleep(0.05)
    digest = hashlib.sha256(f"{value}:{salt}".encode()).hexdigest()
    ctx.store.put(ctx.key("digest"), digest.encode())
    return {"value": int(digest[:8], 16) % 1000, "digest": ctx.key("digest")}


@workflow.phases
def plan(run: RunContext):  # type: ignore[no-untyped-def]
    params = run.params
    values = list(range(int(params["width"])))
    for phase in range(int(params["phases"])):
        gate = str(params["gate_dir"]) if phase == int(params["hold_phase"]) else ""
        salts = run.rng.integers(0, 2**31, size=len(values))
        outputs = yield [
            Call("step", {"value": v, "salt": int(s), "gate_dir": gate})
            for v, s in zip(values, salts, strict=True)
        ]
        # The generator reads what the components left in the store: after a resume, the
        # keys of replayed phases must still be there.
        digests = [run.store.get(o["digest"]).decode() for o in outputs]
        values = [o["value"] for o in outputs]
        values += [int(d[-4:], 16) for d in digests if int(d[-1], 16) % 3 == 0][:2]
    return {"values": values, "phases": int(params["phases"])}
