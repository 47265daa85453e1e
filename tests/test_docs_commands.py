"""Every shell command in README.md and docs/*.md runs, at small scale, and exits as documented.

Commands are read from fenced blocks (``sh``, ``console`` and unmarked blocks); a line is a
command when its first word is a program (``daydream``, ``python``, ``pip``, …), with ``$ ``
prompts, ``&&`` chains, ``\\`` continuations and ``#`` comments understood. Each one either
runs or is in `SKIPS` with its reason (a real cloud account, a placeholder, the test suite
itself); a skip that no longer matches any command fails, so the list stays small and true.

What runs is the documented command made small by `small`: ``--runs`` becomes 1, and each
app gets parameters that shrink its work (`SMALL`); the phases, components and files it
produces are still real. Commands run in a sandbox (``apps`` linked from the repository, a
private profile store, absolute ``/tmp`` paths moved inside), in document order, so that a
command reads what the commands before it wrote; `PRODUCERS` makes what a command reads when
it runs on its own (``pytest -k``).
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
BIN = Path(sys.executable).parent
PROGRAMS = {"daydream", "python", "python3", "pip", "pytest", "export", "gcloud", "az", "ray",
            "kubectl", "."}  # fmt: skip
SHELL_BLOCKS = {"", "sh", "shell", "bash", "console"}
TIMEOUT_S = 300

# (pattern searched in the command as written, why it does not run here)
SKIPS: list[tuple[str, str]] = [
    (r"^python3 -m venv|^\. \.venv/bin/activate|^pip install",
     "installs daydream: the test runs inside that installation"),
    (r"^pytest\b", "the test suite itself (or the conformance suite, run by its own tests)"),
    (r"--provider (aws|gcp|azure)\b.* (run|cleanup|deploy)\b|"
     r"(run|cleanup|deploy)\b.*--provider (aws|gcp|azure)\b",
     "needs a cloud account; tests/test_{aws,gcp,azure}_cli_e2e.py run it against the fakes"),
    (r"^export '?(AZURE|GOOGLE)|^az |^gcloud ", "sets up a cloud account's credentials"),
    (r"--provider ray", "a Ray instance or cluster; tests/test_ray_cli_e2e.py runs a local one"),
    (r"^ray start|^kubectl ", "starts a Ray cluster or reaches Kubernetes"),
    (r"^daydream conformance",
     "the conformance suite: tests/test_conformance_<provider>.py run it for every provider"),
    (r"^python (-I )?bench/",
     "a benchmark (minutes; .ci/run runs bench_reliability, docs/benchmarks.md the rest)"),
    (r"\bPATH\b|\bFILE\b|\bNAME\b|path/to/|montage-1000\.json|instances/",
     "a template: its placeholders name files of the reader's own"),
    (r"--resume ",
     "continues an interrupted run: tests/test_resume.py interrupts real runs (Ctrl-C, "
     "SIGKILL) and resumes them with this command"),
    (r"--provider minifaas",
     "needs the example platform serving (`minifaas --port 8765 &`); "
     "tests/test_writing_a_provider.py runs the conformance suite on it"),
    (r"run quadrature",
     "the example package of docs/writing-a-workflow.md; tests/test_writing_a_workflow.py "
     "installs and runs it"),
]  # fmt: skip

# Per app, parameters that make a documented run small (and still real).
SMALL: dict[str, list[str]] = {
    "ccl": ["-p", "n_initial=2", "-p", "max_rounds=1", "-p", "kmax=5", "-p", "l_limber=-1",
            "-p", "n_ell=8", "-p", "n_source_bins=1", "-p", "n_lens_bins=1",
            "-p", "n_ell_cov=100", "-p", "n_z=64"],
    "exafel": ["-p", "first_batch=16", "-p", "max_batches=1"],
    "cosmoscout": ["-p", "refine_phases=1", "-p", "max_refine=2", "-p", "elevation_nside=64",
                   "-p", "elevation_lmax=127", "-p", "albedo_nside=32", "-p", "albedo_lmax=63",
                   "-p", "pyramid_levels=1", "-p", "resolution=16", "-p", "image_width=64",
                   "-p", "image_height=48"],
    "trace": ["--scale", "0.005"],
}  # fmt: skip

# What a command reads, made first when an earlier command has not made it.
PRODUCERS: dict[str, str] = {
    "daydream-out/ccl": "daydream run ccl",
    "results": "daydream run ccl --out results",
    "cold": "daydream run ccl --policy cold --out cold",
    "ccl-replay": "daydream run trace --trace apps/daydream_trace/data/ccl --out ccl-replay",
}


@dataclass(frozen=True)
class DocCommand:
    path: Path
    line: int
    text: str

    @property
    def where(self) -> str:
        return f"{self.path.relative_to(ROOT)}:{self.line}"


def doc_commands(paths: list[Path] = DOCS) -> list[DocCommand]:
    """Every command in the fenced shell blocks of `paths`, in document order."""
    commands = []
    fence = re.compile(r"^```([\w-]*)\n(.*?)^```", re.M | re.S)
    for path in paths:
        text = path.read_text()
        for block in fence.finditer(text):
            if block.group(1) not in SHELL_BLOCKS:
                continue
            first = text.count("\n", 0, block.start(2)) + 1
            lines = block.group(2).splitlines()
            i = 0
            while i < len(lines):
                number, line = first + i, lines[i]
                while line.endswith("\\") and i + 1 < len(lines):
                    i += 1
                    line = line[:-1] + " " + lines[i].strip()
                i += 1
                line = line.strip().removeprefix("$ ")
                for part in line.split(" && "):
                    words = shlex.split(part, comments=True)
                    if words and words[0] in PROGRAMS:
                        commands.append(DocCommand(path, number, shlex.join(words)))
    return commands


def skip_reason(command: str) -> str | None:
    for pattern, reason in SKIPS:
        if re.search(pattern, command):
            return reason
    return None


def small(argv: list[str], sandbox: Path) -> list[str]:
    """The documented command made small: one run, the app's small parameters, every
    absolute /tmp path inside the sandbox, at most 4 instances at once."""
    args = [str(sandbox / a.removeprefix("/")) if a.startswith("/tmp/") else a for a in argv]
    if args[0] != "daydream" or "run" not in args:
        return args
    at = args.index("run")
    app = args[at + 1]
    if "--runs" in args:
        args[args.index("--runs") + 1] = "1"
    else:
        args += ["--runs", "1"]
    extra = list(SMALL.get(app, []))
    if "--scale" in extra and "--scale" in args:  # the doc's scale, made small too
        args[args.index("--scale") + 1] = extra[extra.index("--scale") + 1]
        extra = []
    return [args[0], "--concurrency", "4", *args[1:], *extra]


COMMANDS = doc_commands()


@pytest.fixture(scope="module")
def sandbox(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A directory like a fresh clone's root, to run the docs' commands from."""
    root = tmp_path_factory.mktemp("docs-commands")
    (root / "apps").symlink_to(ROOT / "apps")
    (root / "bench").symlink_to(ROOT / "bench")
    (root / "examples").symlink_to(ROOT / "examples")
    (root / "tests").mkdir()
    (root / "tests" / "data").symlink_to(ROOT / "tests" / "data")  # recorded runs, fixtures
    (root / "tmp").mkdir()
    return root


def _run(argv: list[str], sandbox: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}"}
    env["DAYDREAM_PROFILE"] = str(sandbox / "profile.sqlite")
    env["DAYDREAM_CONFIG"] = str(sandbox / "no-user-config.toml")
    env["PYTHONPATH"] = str(ROOT)
    return subprocess.run(
        small(argv, sandbox),
        cwd=sandbox,
        env=env,
        capture_output=True,
        text=True,
        timeout=TIMEOUT_S,
        check=False,
    )


@pytest.mark.parametrize("command", COMMANDS, ids=[c.where for c in COMMANDS])
def test_the_documented_command_runs(command: DocCommand, sandbox: Path) -> None:
    reason = skip_reason(command.text)
    if reason is not None:
        pytest.skip(reason)
    argv = shlex.split(command.text)
    for needed, producer in PRODUCERS.items():
        reads = needed in argv[1:] or f"{needed}/" in argv[1:]
        if reads and not (sandbox / needed).exists():
            made = _run(shlex.split(producer), sandbox)
            assert made.returncode == 0, f"{producer}: {made.stderr[-2000:]}"
    done = _run(argv, sandbox)
    assert done.returncode == 0, (
        f"{command.where}: `{command.text}` ran as `{shlex.join(small(argv, sandbox))}` and "
        f"exited {done.returncode}:\n{done.stderr[-3000:]}"
    )
    assert "Traceback" not in done.stderr


def test_the_docs_have_commands_and_every_skip_is_used() -> None:
    texts = [c.text for c in COMMANDS]
    assert any(t.startswith("daydream run ccl") for t in texts)  # the parser reads the docs
    assert sum(skip_reason(t) is None for t in texts) >= 10  # most of them run
    for pattern, reason in SKIPS:
        assert any(re.search(pattern, t) for t in texts), f"skip matches nothing: {reason}"


def test_commands_are_read_as_a_shell_would(tmp_path: Path) -> None:
    doc = tmp_path / "doc.md"
    doc.write_text(
        "```console\n$ daydream run ccl --out /tmp/x   # a comment\nfiles read: none\n```\n"
        "```python\ndaydream = 1\n```\n"
        "```\npip install 'daydream[aws]' && daydream apps\n"
        "daydream --provider ray -o a=b \\\n    run ccl\n```\n"
    )
    found = [(c.line, c.text) for c in doc_commands([doc])]
    assert found == [
        (2, "daydream run ccl --out /tmp/x"),
        (9, "pip install 'daydream[aws]'"),
        (9, "daydream apps"),
        (10, "daydream --provider ray -o a=b run ccl"),
    ]
    made = small(shlex.split(found[0][1]), tmp_path)
    assert made == ["daydream", "--concurrency", "4", "run", "ccl", "--out",
                    str(tmp_path / "tmp/x"), "--runs", "1", *SMALL["ccl"]]  # fmt: skip
    scaled = small(["daydream", "run", "trace", "--scale", "0.1", "--runs", "5"], tmp_path)
    assert scaled[-4:] == ["--scale", "0.005", "--runs", "1"]
