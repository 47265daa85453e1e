"""Faults injected and survived: the demo workflow under each fault kind, on the local platform
and on the AWS, GCP and Azure fakes, against a fault-free run of the same seed (part of
bench_reliability).

Per fault kind: runs completed, faults injected (attempts that failed with it), retries (by
the engine, by the adapter), outputs lost (a component of the fault-free run whose output is
missing or differs), outputs duplicated (a component with more than one attempt's outputs),
instance processes left after the platform closed, and functions left after the command
removed what it deployed.
"""

from __future__ import annotations

import os
import random
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np

from daydream_core.backoff import Backoff
from daydream_core.engine import Engine, RunStopped
from daydream_core.faults import FaultPlan
from daydream_core.model import RunRecord
from daydream_core.plugins import policies
from daydream_core.profile import ProfileStore
from daydream_core.provider import Provider
from daydream_core.retries import RetryPolicy

WORKFLOWS = Path(__file__).resolve().parents[1] / "tests" / "workflows"
PARAMS = {"width": 3, "size": 60, "phases": 3}
RUNS = 2
TIMEOUT_S = 3.0  # local runs' timeout: a hang (30 s) times out, a component (ms) never does
AWS_TIMEOUT_S = 60.0  # on the fake a cold start counts in the timeout, and the host is shared
# One row per kind; `oom` strikes a kind, and the demo has one (every low placement).
PLANS = {
    "kill": "seed=1,kill=0.3",
    "oom": "seed=1,oom=1",
    "timeout": "seed=1,timeout=0.2",
    "throttle": "seed=1,throttle=0.5",
    "store_fail": "seed=1,store_fail=0.2",
    "store_slow": "seed=1,store_slow=0.5,store_delay=0.1",
    "all at once": "seed=1,kill=0.2,oom=1,timeout=0.1,throttle=0.3,store_fail=0.1",
}
AWS_PLANS = {
    "kill": PLANS["kill"],
    "throttle": PLANS["throttle"],
    "all at once": "seed=1,kill=0.2,oom=1,throttle=0.3,store_fail=0.1",
}


def _outputs(provider: Provider, run: RunRecord) -> dict[str, list[np.ndarray]]:
    """Each component's stored outputs (one per attempt that left any)."""
    store = provider.store()
    found: dict[str, list[np.ndarray]] = {}
    for key in store.list(run.run_id):
        found.setdefault(key.split("/")[1], []).append(store.get_array(key))
    return found


def _engine(provider: Provider, profile: ProfileStore, timeout_s: float = TIMEOUT_S) -> Engine:
    retries = RetryPolicy(Backoff(max_attempts=4, base_s=0.05, cap_s=1.0, rng=random.Random(0)))
    return Engine(provider, profile, policies()["daydream"], timeout_s=timeout_s, retries=retries)


def _runs(engine: Engine, out: Path) -> list[RunRecord]:
    import demo_workflow

    runs = []
    for index in range(1, RUNS + 1):
        try:
            runs.append(
                engine.run(
                    demo_workflow.workflow,
                    preset="small",
                    params=PARAMS,
                    seed=11,
                    run_index=index,
                    out_dir=out,
                )
            )
        except RunStopped as stopped:
            assert stopped.run is not None
            runs.append(stopped.run)
    return runs


def _row(
    kind: str,
    engine: Engine,
    runs: list[RunRecord],
    reference: list[dict[str, list[np.ndarray]]],
    outputs: list[dict[str, list[np.ndarray]]],
) -> dict[str, Any]:
    records = [r for run in runs for phase in run.phases for r in phase.invocations]
    attempts = [a for r in records for a in r.attempts]
    struck = [a for a in attempts if a.fault != "other"]
    struck_last = [r for r in records if r.error is not None]
    lost = duplicated = 0
    for run, expected, found in zip(runs, reference, outputs, strict=True):
        duplicated += sum(len(got) > 1 for got in found.values())
        if run.error is not None:
            continue  # a run that stopped is counted as not completed, not as outputs lost
        for component, arrays in expected.items():
            got = found.get(component, [])
            lost += not got or not all(np.array_equal(g, arrays[0]) for g in got)
    return {
        "fault": kind,
        "runs completed": f"{sum(run.error is None for run in runs)}/{len(runs)}",
        "components": len(records),
        "faults injected": len(struck) + len(struck_last),
        "retries (engine)": sum(a.by == "engine" for a in attempts),
        "retries (adapter)": sum(a.by == "provider" for a in attempts),
        "outputs lost": lost,
        "outputs duplicated": duplicated,
        "first error": next((run.error[:160] for run in runs if run.error), None),
    }


def _measure(
    kind: str, engine: Engine, reference: list[dict[str, list[np.ndarray]]], out: Path
) -> tuple[dict[str, Any], list[RunRecord]]:
    runs = _runs(engine, out)
    outputs = [_outputs(engine.provider, run) for run in runs]
    return _row(kind, engine, runs, reference, outputs), runs


@contextmanager
def _local(work: Path, plan: FaultPlan | None, profile: ProfileStore) -> Iterator[Engine]:
    from daydream_local.provider import LocalProvider

    provider = LocalProvider(work, concurrency=4, faults=plan)
    engine = _engine(provider, profile)
    try:
        yield engine
    finally:
        engine.close()


def local(work: Path) -> list[dict[str, Any]]:
    """Every fault kind on the local platform."""
    paths = (str(WORKFLOWS), os.environ.get("PYTHONPATH"))
    os.environ["PYTHONPATH"] = os.pathsep.join(p for p in paths if p)  # for the instances
    rows = []
    profile_path = work / "local-profile.sqlite"
    with _local(work / "clean", None, ProfileStore(profile_path)) as engine:
        clean = _runs(engine, work / "clean-out")  # also what a timeout retry needs to know
        reference = [_outputs(engine.provider, run) for run in clean]
        engine.provider.close()
    for kind, spec in PLANS.items():
        profile = ProfileStore(work / f"local-{kind}.sqlite")
        if "timeout" in spec:  # a timeout is retried only for a kind known to finish in time
            profile.record_executions("demo", "local", _learned(clean))
        with _local(work / kind, FaultPlan.parse(spec), profile) as engine:
            row, _ = _measure(kind, engine, reference, work / f"{kind}-out")
            engine.deployments.remove_created()
            row["functions left"] = len(engine.provider.list())
            engine.provider.close()
            row["processes left"] = _children()
        rows.append(row)
    return rows


def _learned(runs: list[RunRecord]) -> list[tuple[str, str, float]]:
    return [
        (r.kind, r.tier, r.execution_ms)
        for run in runs
        for phase in run.phases
        for r in phase.invocations
        if r.error is None
    ]


def _children() -> int:
    """This process's live children (instances are its children on the local platform)."""
    me = str(os.getpid())
    count = 0
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        count += fields[1] == me and fields[0] != "Z"
    return count


def aws(work: Path) -> list[dict[str, Any]]:
    """Some fault kinds on the AWS fake, through boto3 (thread-isolated environments)."""
    from daydream_aws.testing import LambdaFake, fake_provider

    rows = []
    with LambdaFake(faults=None) as fake:
        provider = fake_provider(fake, work / "aws-clean")
        engine = _engine(provider, ProfileStore(work / "aws-clean.sqlite"), AWS_TIMEOUT_S)
        clean = _runs(engine, work / "aws-clean-out")
        reference = [_outputs(provider, run) for run in clean]
        engine.deployments.remove_created()
        engine.close()
    for kind, spec in AWS_PLANS.items():
        with LambdaFake(faults=FaultPlan.parse(spec)) as fake:
            provider = fake_provider(fake, work / f"aws-{kind}")
            engine = _engine(provider, ProfileStore(work / f"aws-{kind}.sqlite"), AWS_TIMEOUT_S)
            row, _ = _measure(kind, engine, reference, work / f"aws-{kind}-out")
            engine.deployments.remove_created()
            engine.close()
            functions = [item for item in fake.leftovers() if item.startswith("function ")]
            row["functions left"] = len(functions)
        rows.append(row)
    return rows


def _process_fake(
    work: Path, name: str, fake: Callable[[FaultPlan | None], Any], provider: Callable[..., Any]
) -> list[dict[str, Any]]:
    """The AWS fake's rows on a fake whose instances are processes (GCP, Azure): `fake(plan)`
    is a started-on-enter fake, `provider(fake, state_dir)` an adapter against it."""
    rows = []
    with fake(None) as clean_fake:
        clean_provider = provider(clean_fake, work / f"{name}-clean")
        engine = _engine(clean_provider, ProfileStore(work / f"{name}-clean.sqlite"), AWS_TIMEOUT_S)
        clean = _runs(engine, work / f"{name}-clean-out")
        reference = [_outputs(clean_provider, run) for run in clean]
        engine.deployments.remove_created()
        engine.close()
    for kind, spec in AWS_PLANS.items():
        with fake(FaultPlan.parse(spec)) as faulty:
            adapter = provider(faulty, work / f"{name}-{kind}")
            engine = _engine(adapter, ProfileStore(work / f"{name}-{kind}.sqlite"), AWS_TIMEOUT_S)
            row, _ = _measure(kind, engine, reference, work / f"{name}-{kind}-out")
            engine.deployments.remove_created()
            row["functions left"] = len(adapter.list())
            engine.close()
        rows.append(row)
    return rows


def gcp(work: Path) -> list[dict[str, Any]]:
    """The AWS fake's fault kinds on the Cloud Functions fake (instances are processes)."""
    from daydream_gcp.testing import FunctionsFake, fake_provider

    _instances_import_workflows()
    work.mkdir(parents=True, exist_ok=True)
    return _process_fake(
        work,
        "gcp",
        lambda plan: FunctionsFake(Path(tempfile.mkdtemp(prefix="gcp-", dir=work)), faults=plan),
        lambda fake, state: fake_provider(fake, state, function_timeout_s="60"),
    )


def azure(work: Path) -> list[dict[str, Any]]:
    """The AWS fake's fault kinds on the Azure fake (instances are processes)."""
    from daydream_azure.provider import AzureProvider
    from daydream_azure.testing import AzureFake

    from daydream_core.provider import ProviderSettings

    _instances_import_workflows()
    return _process_fake(
        work,
        "azure",
        lambda plan: AzureFake(faults=plan),
        lambda fake, state: AzureProvider(
            ProviderSettings(state_dir=state, options=fake.options())
        ),
    )


def _instances_import_workflows() -> None:
    paths = (str(WORKFLOWS), os.environ.get("PYTHONPATH"))
    if str(WORKFLOWS) not in os.environ.get("PYTHONPATH", ""):
        os.environ["PYTHONPATH"] = os.pathsep.join(p for p in paths if p)
