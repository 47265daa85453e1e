"""What keeping a run's records costs the controller per phase, as the run grows.

    python bench/bench_records.py [--phases 200] [--width 50]

Before: after every phase the engine rewrote ``run.json`` and the three text files with every
phase so far, so the work per phase grew with the run. Now it appends the phase to the run's
journal (one line, fsync'd) and writes ``run.json`` once, when the run stops. Both are timed
here on the same synthetic records (`--width` invocations a phase, in a temporary directory),
at phase 1 and at the last phase, as medians of `--samples` writes.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from daydream_core.journal import Journal
from daydream_core.model import Call, InvocationRecord, PhaseRecord, RunRecord, StartKind
from daydream_core.outputs import write_run


def _phase(index: int, width: int) -> PhaseRecord:
    records = [
        InvocationRecord(
            component=f"p{index + 1}-c{i + 1}", kind="solve", phase=index, tier="high",
            instance=f"i-{i}", start=StartKind.WARM, init_ms=0.0, execution_ms=812.5,
            billed_ms=813.0, cost=1.3e-5, service_ms=815.25,
        )
        for i in range(width)
    ]  # fmt: skip
    return PhaseRecord(
        index=index, width=width, predicted={"high": width, "low": 0},
        placement={r.component: "high" for r in records}, phase_time_s=0.9,
        invocations=records,
    )  # fmt: skip


def _median_ms(action: Callable[[], object], samples: int) -> float:
    times = []
    for _ in range(samples):
        started = time.perf_counter()
        action()
        times.append((time.perf_counter() - started) * 1000.0)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--phases", type=int, default=200)
    parser.add_argument("--width", type=int, default=50)
    parser.add_argument("--samples", type=int, default=9)
    options = parser.parse_args()
    calls = [Call("solve", {"size": 120, "seed": i}) for i in range(options.width)]
    outputs = [0.0] * options.width
    phases = [_phase(i, options.width) for i in range(options.phases)]
    with tempfile.TemporaryDirectory(prefix="daydream-records-") as tmp:
        out = Path(tmp)
        run = RunRecord("bench", 1, "demo", "local", "daydream", "small", 0)
        (out / "run-1").mkdir()
        journal = Journal.begin(out / "run-1", run, {})
        try:
            figures = {}
            for label, count in (("phase 1", 1), (f"phase {options.phases}", options.phases)):
                run.phases = phases[:count]
                rewrite = _median_ms(lambda: write_run(run, out), options.samples)
                latest = phases[count - 1]
                append = _median_ms(
                    lambda: journal.phase(latest, calls, outputs, failed=False),  # noqa: B023
                    options.samples,
                )
                figures[label] = {"rewrite run.json (before)": rewrite, "append (now)": append}
        finally:
            journal.close()
    first, last = figures.values()
    report = {
        "phases": options.phases,
        "width": options.width,
        "ms per phase": {k: {n: round(v, 2) for n, v in f.items()} for k, f in figures.items()},
        "growth, last phase / phase 1": {
            name: round(last[name] / first[name], 1) for name in first
        },
    }
    print(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
