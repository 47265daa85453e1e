"""The daydream predictor against every naive one on recorded runs of the built-in workflows.

The records under tests/data/records/<app>/ are real runs on the local platform (the run.json
files only), made with, for each of ccl, exafel and cosmoscout:

    daydream --profile fresh.sqlite --concurrency 4 run APP --preset small --runs 5 --out DIR

They carry each phase's widths, kinds and the workflow's hint of the next width, which is what
the predictor sees live. Losses are judged at the AWS calibration's costs of the high tier.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from daydream_core.policies.naive import NAIVE
from daydream_core.simulator import load_workload, named_calibration
from daydream_core.simulator.evaluate import tier_costs
from daydream_core.simulator.predictors import compare

RECORDS = Path(__file__).resolve().parent / "data" / "records"
APPS = ("ccl", "exafel", "cosmoscout")


@pytest.mark.parametrize("app", APPS)
def test_the_daydream_predictor_has_the_lowest_loss_on_recorded_runs(app: str) -> None:
    workload = load_workload(records=RECORDS / app)
    assert workload.name == app and len(workload.runs) == 5
    assert any(h is not None for run in workload.runs for h in run.hints)  # hints recorded
    scores = compare(workload, tier_costs(named_calibration("aws")))
    ours, *naive = scores
    assert ours.predictor == "daydream"
    assert [s.predictor for s in naive] == [p.name for p in NAIVE]
    for theirs in naive:
        assert ours.loss < theirs.loss, (theirs.predictor, theirs.loss, ours.loss)
