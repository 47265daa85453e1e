"""Parameters and presets of the CCL workflow.

Every parameter is declared in `PARAMS` (types, ranges, defaults): the `AnalysisConfig`,
`Survey` and `RefineSettings` fields, plus ``n_initial`` (cosmologies of the first round),
``max_rounds`` (evaluation rounds, four phases each) and ``prior`` ({parameter: [low,
high]}). A value out of range is refused before anything is deployed, not in phase 5.
"""

from __future__ import annotations

from daydream_ccl.cosmology import FIDUCIAL, PRIOR
from daydream_ccl.survey import PROBES
from daydream_core.params import Param
from daydream_core.workflow import Preset

HALOFIT = (
    "original", "bird", "peacock", "takahashi", "mead", "halomodel", "casarini",
    "mead2015", "mead2016", "mead2020", "mead2020_feedback",
)  # fmt: skip  # CAMB's non-linear models
CORRELATION_METHODS = ("fftlog", "bessel", "legendre")  # pyccl's


def _bounds(low: float, high: float) -> Param:
    return Param(list, items=Param(float, ge=low, le=high), length=(2, 2))


def _positive(default: float, help: str, le: float = 1.0e6) -> Param:
    return Param(float, default, help, gt=0, le=le)


PARAMS: dict[str, Param] = {
    # the rounds
    "n_initial": Param(int, 4, "cosmologies of the first round", ge=2, le=256, shapes_dag=True),
    "max_rounds": Param(int, 2, "evaluation rounds (four phases each)", ge=1, le=50,
                        shapes_dag=True),
    "prior": Param(
        dict,
        {k: list(v) for k, v in PRIOR.items()},
        "prior box of the varied parameters: {name: [low, high]}",
        fields={"Omega_c": _bounds(0.05, 0.6), "sigma8": _bounds(0.3, 1.5)},
    ),
    # AnalysisConfig
    "probes": Param(list, list(PROBES), "3x2pt probes", items=Param(str, choices=PROBES),
                    length=(1, len(PROBES)), shapes_dag=True),
    "fiducial": Param(dict, dict(FIDUCIAL), "fiducial cosmology", fields={
        "Omega_c": Param(float, ge=0.05, le=0.6),
        "Omega_b": Param(float, ge=0.01, le=0.1),
        "h": Param(float, ge=0.4, le=1.0),
        "n_s": Param(float, ge=0.8, le=1.2),
        "sigma8": Param(float, ge=0.3, le=1.5),
    }),
    "kmax": Param(float, 30.0, "CAMB's largest k, 1/Mpc", ge=1.0, le=500.0),
    "camb_accuracy": Param(int, 1, "CAMB's AccuracyTarget", ge=1, le=4),
    "halofit": Param(str, "mead2020", "CAMB's non-linear model", choices=HALOFIT),
    "ell_min": Param(int, 2, "smallest multipole", ge=2, le=1000),
    "ell_max": Param(float, 3.0e4, "largest multipole", ge=100.0, le=1.0e5),
    "n_ell": Param(int, 40, "log-spaced multipoles above l_limber", ge=4, le=2000),
    "l_limber": Param(int, 200, "non-Limber below this multipole", ge=-1, le=5000),
    "fkem_nchi": Param(int, 256, "FKEM radial samples", ge=16, le=4096),
    "theta_min_arcmin": _positive(2.5, "smallest angle, arcmin", le=600.0),
    "theta_max_arcmin": _positive(250.0, "largest angle, arcmin", le=1200.0),
    "n_theta": Param(int, 10, "angular bins", ge=1, le=500),
    "corr_method": Param(str, "bessel", "pyccl's correlation method",
                         choices=CORRELATION_METHODS),
    "r_min_mpc": Param(float, 12.0, "scale cut of clustering and GGL, Mpc/h", ge=0, le=200.0),
    "n_ell_cov": Param(int, 1500, "multipoles of the Gaussian covariance", ge=10, le=100_000),
    "mock_noise": Param(bool, False, "add noise to the mock data vector"),
    # Survey
    "n_source_bins": Param(int, 3, "tomographic source bins", ge=1, le=20, shapes_dag=True),
    "n_lens_bins": Param(int, 2, "tomographic lens bins", ge=1, le=20, shapes_dag=True),
    "source_z0": _positive(0.13, "Smail z0 of sources", le=5.0),
    "source_alpha": _positive(0.78, "Smail alpha of sources", le=10.0),
    "lens_z0": _positive(0.26, "Smail z0 of lenses", le=5.0),
    "lens_alpha": _positive(0.94, "Smail alpha of lenses", le=10.0),
    "sigma_z_source": _positive(0.05, "photo-z scatter of sources", le=1.0),
    "sigma_z_lens": _positive(0.03, "photo-z scatter of lenses", le=1.0),
    "lens_z_min": Param(float, 0.2, "lower edge of the first lens bin", ge=0, le=3.0),
    "lens_bin_width": _positive(0.2, "width of each lens bin", le=3.0),
    "n_source_arcmin2": _positive(10.0, "source density per arcmin^2", le=1000.0),
    "n_lens_arcmin2": _positive(18.0, "lens density per arcmin^2", le=1000.0),
    "sigma_e": _positive(0.26, "shape noise", le=2.0),
    "f_sky": Param(float, 0.3, "sky fraction", gt=0, le=1.0),
    "lens_bias": _positive(0.95, "b(z) = lens_bias / D(z)", le=10.0),
    "z_max": Param(float, 3.5, "largest redshift", ge=0.5, le=10.0),
    "n_z": Param(int, 256, "redshift samples", ge=16, le=8192),
    # RefineSettings
    "delta_chi2": _positive(6.17, "good points lie within this of the best chi^2", le=1e4),
    "per_good": _positive(1.0, "new cosmologies per good point", le=100.0),
    "min_new": Param(int, 2, "fewest new cosmologies per round", ge=1, le=256, shapes_dag=True),
    "max_new": Param(int, 6, "most new cosmologies per round", ge=1, le=256, shapes_dag=True),
    "initial_radius": Param(float, 0.4, "trust radius, unit cube", gt=0, le=1.0),
    "shrink": Param(float, 0.6, "trust radius shrink factor", gt=0, lt=1.0),
    "min_radius": Param(float, 0.005, "smallest trust radius", gt=0, le=1.0),
    "inflate": _positive(1.5, "proposal spread, Fisher standard deviations", le=100.0),
    "tol_chi2": _positive(0.25, "converged when the peak moved by less", le=1e4),
    "neighbours": Param(int, 6, "points in the Gauss-Newton fit", ge=3, le=1000),
}  # fmt: skip

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
