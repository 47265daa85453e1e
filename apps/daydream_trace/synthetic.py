"""Generated WfFormat instances: a seismology-shaped fan-in of any width.

WfCommons' Seismology workflows are one wide level of ``sG1IterDecon`` deconvolutions, each
reading one trace file and writing one source time function, reduced by one
``wrapper_siftSTFByMisfit``. `seismology(width)` writes that shape as a valid WfFormat 1.5
instance (specification + execution), with runtimes drawn uniformly between the bounds
given (by default those of the WfCommons recipe's task statistics, 0.087-5.615 s and
0.089-1.351 s), so tests and benchmarks can replay a 1,000- or 10,000-wide phase without
wfcommons installed:

    python -m daydream_trace.synthetic --width 1000 --out seismology-1000.json
"""

from __future__ import annotations

import argparse
import json
import random
from pathlib import Path
from typing import Any

SCHEMA_VERSION = "1.5"
DECON = "sG1IterDecon"
SIFT = "wrapper_siftSTFByMisfit"


def seismology(
    width: int,
    *,
    seed: int = 0,
    seconds: tuple[float, float] = (0.087, 5.615),
    reduce_seconds: tuple[float, float] = (0.089, 1.351),
    file_bytes: int = 14_000,
) -> dict[str, Any]:
    """A WfFormat instance: `width` deconvolutions, then one task that reads all outputs."""
    if width < 1:
        raise ValueError("width must be at least 1")
    rng = random.Random(seed)
    sift_id = f"{SIFT}_{width + 1:08d}"
    tasks: list[dict[str, Any]] = []
    runs: list[dict[str, Any]] = []
    files: list[dict[str, Any]] = []
    for number in range(1, width + 1):
        task_id = f"{DECON}_{number:08d}"
        trace, stf = f"trace_{number:08d}.lht", f"stf_{number:08d}.stf"
        files += [{"id": trace, "sizeInBytes": file_bytes}, {"id": stf, "sizeInBytes": file_bytes}]
        tasks.append(
            {
                "name": DECON,
                "id": task_id,
                "parents": [],
                "children": [sift_id],
                "inputFiles": [trace],
                "outputFiles": [stf],
            }
        )
        runs.append(_run(task_id, rng.uniform(*seconds)))
    files.append({"id": "misfit.txt", "sizeInBytes": file_bytes})
    tasks.append(
        {
            "name": SIFT,
            "id": sift_id,
            "parents": [t["id"] for t in tasks],
            "children": [],
            "inputFiles": [f"stf_{n:08d}.stf" for n in range(1, width + 1)],
            "outputFiles": ["misfit.txt"],
        }
    )
    runs.append(_run(sift_id, rng.uniform(*reduce_seconds)))
    return {
        "name": f"seismology-{width}",
        "description": f"seismology-shaped fan-in: {width} x {DECON}, 1 x {SIFT} (generated)",
        "createdAt": "2026-01-01T00:00:00+00:00",
        "schemaVersion": SCHEMA_VERSION,
        "workflow": {
            "specification": {"tasks": tasks, "files": files},
            "execution": {
                "makespanInSeconds": sum(r["runtimeInSeconds"] for r in runs),
                "executedAt": "2026-01-01T00:00:00+00:00",
                "tasks": runs,
            },
        },
    }


def _run(task_id: str, seconds: float) -> dict[str, Any]:
    return {"id": task_id, "runtimeInSeconds": round(seconds, 6), "coreCount": 1}


def write(path: Path, instance: dict[str, Any]) -> Path:
    path.write_text(json.dumps(instance) + "\n", encoding="utf-8")
    return path


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--width", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--seconds", type=float, nargs=2, default=(0.087, 5.615))
    parser.add_argument("--out", type=Path, required=True)
    options = parser.parse_args(argv)
    write(options.out, seismology(options.width, seed=options.seed, seconds=options.seconds))


if __name__ == "__main__":
    main()
