"""Presets of the CCL workflow.

Every key is optional: `AnalysisConfig`, `Survey` and `RefineSettings` fields, plus
``n_initial`` (cosmologies of the first round), ``max_rounds`` (evaluation rounds, four
phases each) and ``prior`` ({parameter: [low, high]}).
"""

from __future__ import annotations

from daydream_core.workflow import Preset

SMALL = Preset(
    params={
        "n_initial": 4,
        "max_rounds": 2,
        "n_source_bins": 3,
        "n_lens_bins": 2,
        "n_ell": 40,
        "l_limber": 300,
        "n_theta": 12,
        "kmax": 50.0,
        "camb_accuracy": 1,
        "max_new": 4,
    },
    runs=1,
    description="3x2pt with 3 source and 2 lens bins; 4 initial cosmologies, 2 rounds "
    "(8 phases, widths 2-12); 30-50 s on 2 cores",
)

PAPER = Preset(
    params={
        "n_initial": 8,
        "max_rounds": 5,
        "n_source_bins": 5,
        "n_lens_bins": 3,
        "n_source_arcmin2": 27.0,
        "n_lens_arcmin2": 48.0,
        "f_sky": 0.44,
        "n_ell": 60,
        "l_limber": 300,
        "n_theta": 15,
        "kmax": 50.0,
        "camb_accuracy": 1,
        "min_new": 3,
        "max_new": 8,
    },
    runs=50,
    description="LSST Y10-like 3x2pt with 5 source and 3 lens bins; 8 initial cosmologies, up "
    "to 5 rounds until the posterior peak converges; 50 runs",
)

PRESETS = {"small": SMALL, "paper": PAPER}
