"""`daydream report`: a self-contained page whose figures come from the runs' records, opened
in a headless browser to see that it renders and every figure loads."""

from __future__ import annotations

import base64
import re
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest

from daydream_core.cli import main
from daydream_core.errors import UsageError
from daydream_core.html_report import (
    TIMELINES,
    cost_split,
    load_folder,
    render,
    timeline,
    timeline_lanes,
    width_error,
)
from daydream_core.model import (
    HotStartRecord,
    InvocationRecord,
    PhaseRecord,
    RunRecord,
    StartKind,
)
from daydream_core.outputs import write_run

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


PHASE_STARTS = (0.0, 1.5, 4.0)  # seconds from the run's start: phase times 1.5, 2.5, 3.5


def _record(phase: int, i: int, tier: str, start: StartKind, cost: float) -> InvocationRecord:
    return InvocationRecord(
        component=f"p{phase + 1}-c{i + 1}",
        kind=f"kind-{i % 3}",
        phase=phase,
        tier=tier,
        instance=f"{tier}-{i}",
        start=start,
        init_ms=300.0 if start is StartKind.COLD else 0.0,
        execution_ms=1000.0 + 100 * i,
        billed_ms=1300.0,
        cost=cost,
        service_ms=1400.0 + 100 * i,
        started_s=PHASE_STARTS[phase] + 0.01 * i,
    )


def _results(folder: Path, runs: int = 3) -> Path:
    for index in range(1, runs + 1):
        run = RunRecord(f"demo-{index}", index, "demo", "local", "daydream", "small", 0)
        for phase, width in enumerate((2, 4, 1)):
            starts = [StartKind.COLD if index == 1 else StartKind.HOT] + [StartKind.WARM] * 3
            records = [
                _record(phase, i, "high" if i % 2 else "low", starts[i], 0.001)
                for i in range(width)
            ]
            run.phases.append(
                PhaseRecord(
                    index=phase,
                    width=width,
                    predicted={"high": width // 2 + index % 2, "low": width // 2},
                    placement={r.component: r.tier for r in records},
                    phase_time_s=1.5 + phase,
                    invocations=records,
                    hot_starts=[
                        HotStartRecord(phase, "low", "low-9", 250.0, 250.0, 0.0005, started_s=0.2)
                    ],
                )
            )
        run.result = {"best_fit": [0.31, 0.81], "widths": [2, 4, 1], "note": "<b>escaped</b>"}
        write_run(run, folder)
    return folder


def test_figures_are_derived_from_the_records(tmp_path: Path) -> None:
    folder = load_folder(_results(tmp_path / "out"))
    assert [r["index"] for r in folder.runs] == [1, 2, 3]
    run = folder.runs[0]
    # an odd run predicts width // 2 + 1 high and width // 2 low: 3 for 2, 5 for 4, 1 for 1
    assert width_error(run) == pytest.approx((1 + 1 + 0) / 3)
    split = cost_split(run)
    assert split["high"] == pytest.approx(0.001 * 3) and split["low"] == pytest.approx(0.001 * 4)
    assert split["hot starts"] == pytest.approx(0.0015)


def test_page_is_self_contained(tmp_path: Path) -> None:
    page = render([load_folder(_results(tmp_path / "a")), load_folder(_results(tmp_path / "b"))])
    images = re.findall(r"src='data:image/png;base64,([^']+)'", page)
    assert len(images) == 5 + TIMELINES  # the latest runs' timelines
    assert all(base64.b64decode(data).startswith(PNG_MAGIC) for data in images)
    assert "http://" not in page and "https://" not in page  # nothing fetched from anywhere
    assert "&lt;b&gt;escaped&lt;/b&gt;" in page and "<b>escaped" not in page
    assert page.count("<tr>") == 1 + 6  # header + three runs of each folder


def test_command_writes_the_report(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    folder = _results(tmp_path / "out")
    with pytest.raises(SystemExit) as done:
        main(["report", str(folder)])
    assert done.value.code == 0
    assert (folder / "report.html").is_file()
    assert str(folder / "report.html") in capsys.readouterr().out
    with pytest.raises(SystemExit) as bad:
        main(["report", str(tmp_path / "nothing")])
    assert bad.value.code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "not a results directory" in err


def test_a_broken_run_json_is_one_line(tmp_path: Path) -> None:
    folder = _results(tmp_path / "out", runs=1)
    (folder / "run-1" / "run.json").write_text("{" * 10)
    with pytest.raises(UsageError, match=r"not a daydream run\.json"):
        load_folder(folder)


CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
# Appended to a copy of the page: after load, the browser writes down what it drew.
PROBE = """<script>
window.addEventListener('load', () => {
  const drawn = [...document.images].filter(i => i.complete && i.naturalWidth > 0).length;
  document.body.insertAdjacentHTML('beforeend',
    `<p id="probe">images=${document.images.length} drawn=${drawn}</p>`);
});
</script>"""


@pytest.mark.skipif(CHROMIUM is None, reason="needs chromium (.ci/run installs it)")
def test_the_page_renders_in_a_browser(tmp_path: Path) -> None:
    page = render([load_folder(_results(tmp_path / "out"))])
    probe = tmp_path / "probe.html"
    probe.write_text(page.replace("</body>", PROBE + "</body>"))
    with tempfile.TemporaryDirectory() as profile:
        shown = subprocess.run(
            [
                str(CHROMIUM),
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-quic",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                f"--user-data-dir={profile}",
                "--virtual-time-budget=10000",
                "--dump-dom",
                probe.as_uri(),
            ],
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
    assert shown.returncode == 0, shown.stderr[-2000:]
    assert 'id="probe">images=8 drawn=8<' in shown.stdout, shown.stdout[-2000:]  # 3 timelines
    assert "daydream report" in shown.stdout


def test_the_timeline_puts_each_component_on_its_instance_at_its_time(tmp_path: Path) -> None:
    run = load_folder(_results(tmp_path / "out", runs=1)).runs[0]
    lanes = timeline_lanes(run)
    # phase 3's one component (a cold start in run 1) ran on low-0 at 4.0 s for 1.4 s
    last = lanes["low-0"][-1]
    assert (last["kind"], last["tier"], last["phase"]) == ("cold", "low", 2)
    assert (last["start"], last["end"]) == pytest.approx((4.0, 5.4))
    # low-9 holds the hot starts' inits, issued 0.2 s into the run, 250 ms each
    assert [s["kind"] for s in lanes["low-9"]] == ["init"] * 3
    assert lanes["low-9"][0]["end"] == pytest.approx(0.2 + 0.25)
    assert next(iter(lanes)) == "low-0"  # lanes in order of first use
    assert sum(len(spans) for spans in lanes.values()) == 2 + 4 + 1 + 3
    assert base64.b64decode(timeline("1", run) or "").startswith(PNG_MAGIC)


def test_runs_recorded_without_times_say_so(tmp_path: Path) -> None:
    folder = _results(tmp_path / "out", runs=1)
    path = folder / "run-1" / "run.json"
    path.write_text(re.sub(r'"started_s": [0-9.e-]+', '"started_s": null', path.read_text()))
    run = load_folder(folder).runs[0]
    assert timeline_lanes(run) == {} and timeline("1", run) is None
    assert "run 1: recorded without times" in render([load_folder(folder)])
