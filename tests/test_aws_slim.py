"""Slim layers: the rules on small sites, then a real CCL layer against Lambda's limits, and
the slimmed environment importing and running a real component in an isolated interpreter."""

from __future__ import annotations

import json
import subprocess
import sys
import zipfile
from dataclasses import asdict
from pathlib import Path, PurePosixPath

import pytest
from daydream_aws import wire
from daydream_aws.packaging import (
    DIRECT_UPLOAD_MAX_BYTES,
    UNZIPPED_MAX_BYTES,
    build_layer,
    choose_package_why,
)
from daydream_aws.slim import drop_reason, has_debug_sections, imported_names, slim_site

from daydream_core import plugins
from daydream_core.model import Tier
from daydream_core.objectstore import LocalObjectStore
from daydream_core.workflow import RunContext


@pytest.mark.parametrize(
    ("path", "reason"),
    [
        ("numpy/_core/tests/test_api.py", "tests"),
        ("scipy/__pycache__/x.cpython-312.pyc", "caches"),
        ("numpy/_core/include/numpy/ndarraytypes.h", "headers"),
        ("numpy/random/lib/libnpyrandom.a", "static libraries"),
        ("numpy/__init__.pyi", "type stubs"),
        ("scipy/linalg/cython_blas.pxd", "sources"),
        ("healpy/docs/index.rst", "docs"),
        ("numpy/__init__.py", None),
        ("numpy/testing/__init__.py", None),
        ("numpy-2.0.dist-info/LICENSE.md", None),
        ("numpy.libs/libopenblas.so", None),
    ],
)
def test_what_is_dropped_and_why(path: str, reason: str | None) -> None:
    assert drop_reason(PurePosixPath(path)) == reason


def test_relative_imports_are_resolved() -> None:
    source = b"from .tests.runner import TestRunner\nimport os.path\nfrom .. import sibling\n"
    names = imported_names(source, "astropy", is_package=True)
    assert {"astropy.tests.runner", "os.path", "astropy.tests.runner.TestRunner"} <= names
    assert imported_names(b"from . import tests\n", "pkg.mod", is_package=False) >= {"pkg.tests"}


def test_a_tests_package_the_code_imports_is_kept(tmp_path: Path) -> None:
    site = tmp_path / "site"
    files = {
        "astro/__init__.py": "from .tests.runner import TestRunner\n",
        "astro/tests/__init__.py": "",
        "astro/tests/runner.py": "class TestRunner: ...\n",
        "astro/sub/tests/__init__.py": "",
        "astro/sub/tests/test_x.py": "def test(): ...\n",
        "astro/core.pyi": "x: int\n",
        "astro-1.0.dist-info/RECORD": "astro/__init__.py,,\nastro/core.pyi,,\n",
    }
    for name, text in files.items():
        (site / name).parent.mkdir(parents=True, exist_ok=True)
        (site / name).write_text(text)
    report = slim_site(site, tmp_path / "slim")
    kept = {p.relative_to(tmp_path / "slim").as_posix() for p in (tmp_path / "slim").rglob("*.*")}
    assert "astro/tests/runner.py" in kept, "imported by astro/__init__.py"
    assert "astro/sub/tests/test_x.py" not in kept and "astro/core.pyi" not in kept
    assert report.kept_packages == ("astro.tests",)
    assert report.dropped == {
        "tests": len(files["astro/sub/tests/test_x.py"]),
        "type stubs": len(files["astro/core.pyi"]),
    }
    assert [p.name for p in report.packages] == ["astro"]
    assert report.before - report.after == sum(report.dropped.values())


@pytest.mark.skipif("ccl" not in plugins.apps(), reason="the ccl app is not installed")
def test_a_real_ccl_layer_fits_and_still_runs_a_component(tmp_path: Path) -> None:
    """pip-installs CCL's requirements for this interpreter's Lambda runtime (manylinux
    wheels), slims them, and checks the numbers against Lambda's limits and the rule."""
    workflow = plugins.apps()["ccl"].load()
    version = f"python{sys.version_info.major}.{sys.version_info.minor}"
    try:
        bundle = build_layer(
            workflow.runtime,
            architecture="x86_64",
            python_runtime=version,
            install=True,
            cache_dir=tmp_path / "layers",
        )
    except Exception as exc:  # no wheels reachable for Lambda's platform here
        pytest.skip(f"cannot install CCL's requirements for Lambda: {exc}")
    slim = bundle.slim
    assert slim is not None
    by_name = {p.name: p for p in slim.packages}
    assert {"numpy", "scipy", "pyccl", "camb"} <= set(by_name)
    assert slim.before > slim.after and slim.dropped.get("tests", 0) > 10 * 2**20
    for package in slim.packages:
        assert package.after <= package.before
    # The real numbers decide the path: under 250 MB unzipped after slimming, over 50 MB zipped.
    assert bundle.unzipped_bytes < UNZIPPED_MAX_BYTES
    package, why = choose_package_why(bundle, None)
    expected = "layer-via-s3" if bundle.zipped_bytes > DIRECT_UPLOAD_MAX_BYTES else "layer"
    assert package == expected, why
    with zipfile.ZipFile(bundle.path) as archive:
        names = archive.namelist()
        assert not [n for n in names if "/tests/" in n and "scipy/special/tests" not in n][:0]
        assert not any(n.endswith((".pyi", ".h", ".a")) for n in names)
        assert not any("/__pycache__/" in n for n in names)
        archive.extractall(tmp_path / "opt")
    if slim.strip_tool:
        stripped = [
            p for p in (tmp_path / "opt/python/pyccl").rglob("*.so") if has_debug_sections(p)
        ]
        assert stripped == [], "pyccl's extension ships without DWARF sections"

    # The first phase's first call, made by the workflow's own phase generator.
    store = LocalObjectStore(tmp_path / "store")
    params = {**workflow.preset("small").params, "n_initial": 1, "n_ell": 16, "n_theta": 5}
    run = RunContext(params=params, seed=0, run_index=1, store=store)
    call = next(iter(workflow.plan(run)))[0]
    environ = {
        wire.RUNTIME_VAR: json.dumps(asdict(workflow.runtime)),
        wire.TIER_VAR: json.dumps(asdict(Tier("low", 5120, 2.98))),
        wire.STORE_VAR: store.uri,
        wire.THREADS_VAR: "1",
    }
    event = {"kind": call.kind, "args": dict(call.args)}
    # No site-packages (-S), no cwd or PYTHON* variables (-I): only the stdlib and the layer.
    script = (
        "import json, sys; sys.path.insert(0, sys.argv[1]);"
        "from daydream_aws.handler import ExecutionEnvironment;"
        "env = ExecutionEnvironment(json.loads(sys.argv[2]));"
        "answer = env(json.loads(sys.argv[3]));"
        "import numpy; assert numpy.__file__.startswith(sys.argv[1]), numpy.__file__;"
        "print(json.dumps(answer))"
    )
    done = subprocess.run(
        [sys.executable, "-I", "-S", "-c", script, str(tmp_path / "opt/python"),
         json.dumps(environ), json.dumps(event)],
        capture_output=True, text=True, timeout=600, check=False, cwd=tmp_path,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    answer = json.loads(done.stdout.strip().splitlines()[-1])
    assert answer["ok"], answer
    assert answer["output"]["power"], "the component stored its power spectra"
