"""No instance is evicted while its own function has requests waiting, checked from a live
run's records (`run-<i>/run.json`) alone, on a generated wide trace (issue 8, item 5).

A wide phase on the high tier leaves the limit full of idle high instances; the next wide
phase, on the low tier, has to evict some of them to start its own. Counts and intervals come
from the records, never from a clock threshold.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from daydream_trace.synthetic import seismology, write

from daydream_core.model import HIGH, LOW, Tier
from daydream_core.policies.placement import Starts
from daydream_core.policies.predictor import NoHotStart
from daydream_core.policies.registry import PolicySpec
from daydream_core.pricing import PriceTable
from daydream_core.profile import ProfileStore

WIDTH = 300
LIMIT = 8
# The recorded wait is stamped by the engine: its end (dispatch + slot wait + the provider's
# queue wait) falls short of the pool's grant by the moments between the engine's stamp and
# the request entering the pool. So the tolerance widens the interval's end, lest an eviction
# just before the grant be missed; its start needs none, as it is the engine's dispatch, which
# precedes the request's entry into the pool (the interval covers its slot wait too).
ENGINE_TO_POOL_S = 0.005


class TierByPhase:
    """Each phase on one tier, alternating from high: a tier's wide phase follows the other's."""

    name = "tier-by-phase"

    def __init__(self) -> None:
        self.phases = 0

    def place(
        self,
        kinds: Sequence[str],
        timings: Mapping[str, Mapping[str, float]],
        tiers: Mapping[str, Tier],
        prices: PriceTable,
        concurrency: int | None = None,
        starts: Starts | None = None,
    ) -> list[str]:
        tier = (HIGH, LOW)[self.phases % 2]
        self.phases += 1
        return [tier] * len(kinds)


def _two_wide_levels(width: int) -> dict[str, Any]:
    """The seismology fan-in with its reducer replaced by a second wide level: one task per
    deconvolution, reading its output. Components that do almost nothing."""
    instance: dict[str, Any] = seismology(width, seconds=(0.0005, 0.001))
    spec, execution = instance["workflow"]["specification"], instance["workflow"]["execution"]
    decons, runs = spec["tasks"][:-1], execution["tasks"][:-1]
    spec["files"] = [f for f in spec["files"] if f["id"] != "misfit.txt"]
    stacks = []
    for number, decon in enumerate(decons, start=1):
        stack_id = f"stackSTF_{number:08d}"
        decon["children"] = [stack_id]
        stacks.append(
            {
                "name": "stackSTF",
                "id": stack_id,
                "parents": [decon["id"]],
                "children": [],
                "inputFiles": decon["outputFiles"],
                "outputFiles": [],
            }
        )
        runs.append({"id": stack_id, "runtimeInSeconds": 0.0005, "coreCount": 1})
    spec["tasks"] = decons + stacks
    execution["tasks"] = runs
    execution["makespanInSeconds"] = sum(r["runtimeInSeconds"] for r in runs)
    return instance


def _run(tmp_path: Path) -> dict[str, Any]:
    from daydream_local.provider import LocalProvider
    from daydream_trace.workflow import workflow

    from daydream_core.engine import Engine

    trace = write(tmp_path / "two-wide.json", _two_wide_levels(WIDTH))
    policy = PolicySpec("tier-by-phase", "each phase on one tier", NoHotStart, TierByPhase)
    provider = LocalProvider(tmp_path / "state", concurrency=LIMIT)
    engine = Engine(provider, ProfileStore(tmp_path / "p.sqlite"), policy)
    params = workflow.validate({"trace": str(trace), "scale": 1.0, "io_mb": 0.0})
    try:
        engine.run(
            workflow, preset="small", params=params, seed=0, run_index=1, out_dir=tmp_path / "o"
        )
    finally:
        provider.close()
        engine.close()
    record: dict[str, Any] = json.loads((tmp_path / "o" / "run-1" / "run.json").read_text())
    return record


def test_no_instance_is_evicted_while_requests_of_its_own_function_wait(
    tmp_path: Path,
) -> None:
    record = _run(tmp_path)
    phases = record["phases"]
    assert [p["width"] for p in phases] == [WIDTH, WIDTH]
    assert [{r["tier"] for r in p["invocations"]} for p in phases] == [{HIGH}, {LOW}]
    requests = [r for p in phases for r in p["invocations"]]
    # One wait per record, from its dispatch: no retry moved a later attempt's wait elsewhere.
    assert all(not r["attempts"] and r["error"] is None for r in requests)

    lives = record["instances"]
    assert all(life["ended_s"] is not None for life in lives if life["ended_by"])
    evicted = [life for life in lives if life["ended_by"] == "evicted"]
    assert evicted, "the low phase evicted none of the idle high instances: nothing checked"
    # The pool's own count at each eviction...
    assert all(life["waiting_at_end"] == 0 for life in evicted)
    # ...and the requests' recorded waits: none of the evicted instance's tier spans its end.
    for life in evicted:
        for r in requests:
            if r["tier"] == life["tier"]:
                waited_until = r["started_s"] + r["queued_ms"] / 1000.0 + ENGINE_TO_POOL_S
                assert not r["started_s"] <= life["ended_s"] <= waited_until, (life, r)
