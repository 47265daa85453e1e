"""``daydream report``: one self-contained HTML page (figures inlined as PNG) for result folders.

Everything shown is derived from the runs' ``run.json`` records: execution time and cost per
run, the service-time distribution by start kind, predicted against actual width per phase,
tier mix and cost split, what was learned across runs (cold starts and width error per run),
a timeline per run (components per instance over time) and each workflow's own result.
matplotlib is imported only here (it comes with the ``apps`` extra), with the non-interactive
Agg backend.
"""

from __future__ import annotations

import base64
import html
import io
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from daydream_core.errors import UsageError
from daydream_core.outputs import journaled_runs
from daydream_core.summary import width_error

START_COLOURS = {"hot": "#d95f02", "warm": "#1b9e77", "cold": "#7570b3"}
INIT_COLOUR = "#bbbbbb"
TIMELINES = 4  # runs whose timeline is drawn (the latest ones)
TIER_COLOURS = {"high": "#e7298a", "low": "#66a61e", "hot starts": "#e6ab02"}
RESULT_CHARS = 1200  # of a workflow's result shown per run; the rest is in run.json


@dataclass(frozen=True)
class FolderRuns:
    """The runs of one result folder, as their run.json files say."""

    folder: Path
    runs: tuple[dict[str, Any], ...]

    @property
    def label(self) -> str:
        return self.folder.name or str(self.folder)


def load_folder(folder: Path) -> FolderRuns:
    if not folder.is_dir():
        raise UsageError(f"{folder} is not a results directory (run-<i>/run.json)")
    runs = []
    for path in sorted(
        folder.glob("run-*/run.json"),
        key=lambda p: (
            int(p.parent.name.removeprefix("run-") or 0)
            if p.parent.name.removeprefix("run-").isdigit()
            else 0
        ),
    ):
        try:
            data = json.loads(path.read_text())
        except (OSError, json.JSONDecodeError, RecursionError, UnicodeDecodeError) as exc:
            raise UsageError(f"{path}: not a daydream run.json ({exc})") from None
        if not isinstance(data, dict) or not isinstance(data.get("phases"), list):
            raise UsageError(f"{path}: not a daydream run.json (no phases)")
        runs.append(data)
    runs += journaled_runs(folder)  # controllers killed: their records are in their journal
    runs.sort(key=lambda r: int(r.get("index", 0)))
    if not runs:
        raise UsageError(f"{folder} holds no run-<i>/run.json; valid: a `daydream run --out` dir")
    return FolderRuns(folder, tuple(runs))


# -- what the figures show, computed from records ------------------------------------------------


def _invocations(run: dict[str, Any]) -> list[dict[str, Any]]:
    return [r for phase in run["phases"] for r in phase.get("invocations", [])]


def cost_split(run: dict[str, Any]) -> dict[str, float]:
    """Dollars per tier for invocations, and for hot starts apart."""
    split = dict.fromkeys(TIER_COLOURS, 0.0)
    for record in _invocations(run):
        split[record["tier"]] = split.get(record["tier"], 0.0) + float(record["cost"])
    for phase in run["phases"]:
        split["hot starts"] += sum(float(h["cost"]) for h in phase.get("hot_starts", []))
    return split


# -- figures -------------------------------------------------------------------------------------


def _png(draw: Callable[[Any], None], size: tuple[float, float] = (8.0, 3.6)) -> str:
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.figure import Figure

    figure = Figure(figsize=size, dpi=100, layout="constrained")
    draw(figure)
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    return base64.b64encode(buffer.getvalue()).decode("ascii")


def _run_labels(folders: Sequence[FolderRuns]) -> list[str]:
    many = len(folders) > 1
    return [f"{f.label}/{r['index']}" if many else str(r["index"]) for f in folders for r in f.runs]


def _all_runs(folders: Sequence[FolderRuns]) -> list[dict[str, Any]]:
    return [run for folder in folders for run in folder.runs]


def time_and_cost(folders: Sequence[FolderRuns]) -> str:
    runs, labels = _all_runs(folders), _run_labels(folders)

    def draw(figure: Any) -> None:
        left, right = figure.subplots(1, 2)
        x = range(len(runs))
        left.bar(x, [float(r["execution_time_s"]) for r in runs], color="#377eb8")
        left.set(title="execution time per run", ylabel="seconds", xlabel="run")
        right.bar(x, [float(r["cost"]) for r in runs], color="#4daf4a")
        right.set(title="cost per run", ylabel="US dollars", xlabel="run")
        for axes in (left, right):
            axes.set_xticks(list(x), labels, rotation=90 if len(runs) > 12 else 0, fontsize=7)

    return _png(draw)


def service_times(folders: Sequence[FolderRuns]) -> str:
    by_start: dict[str, list[float]] = {kind: [] for kind in START_COLOURS}
    for run in _all_runs(folders):
        for record in _invocations(run):
            by_start.setdefault(record["start"], []).append(float(record["service_ms"]) / 1e3)

    def draw(figure: Any) -> None:
        axes = figure.subplots()
        values = [v for series in by_start.values() for v in series]
        if not values:
            axes.text(0.5, 0.5, "no invocations", ha="center", transform=axes.transAxes)
            return
        top = max(values)
        bins = [top * i / 30 for i in range(31)] if top > 0 else 10
        for kind, series in by_start.items():
            if series:
                axes.hist(
                    series,
                    bins=bins,
                    alpha=0.6,
                    color=START_COLOURS.get(kind, "grey"),
                    label=f"{kind} ({len(series)})",
                )
        axes.set(title="service time by start kind", xlabel="seconds", ylabel="invocations")
        axes.legend()

    return _png(draw)


def predicted_widths(folders: Sequence[FolderRuns], most: int = 6) -> str:
    runs, labels = _all_runs(folders), _run_labels(folders)
    shown = list(zip(labels, runs, strict=True))[-most:]

    def draw(figure: Any) -> None:
        grid = figure.subplots(1, len(shown), sharey=True, squeeze=False)[0]
        for axes, (label, run) in zip(grid, shown, strict=True):
            phases = [p["index"] + 1 for p in run["phases"]]
            axes.step(phases, [p["width"] for p in run["phases"]], where="mid", label="actual")
            axes.step(
                phases,
                [sum(p.get("predicted", {}).values()) for p in run["phases"]],
                where="mid",
                linestyle="--",
                label="predicted",
            )
            axes.set(title=f"run {label}", xlabel="phase")
        grid[0].set_ylabel("components (all tiers)")
        grid[0].legend(fontsize=7)

    return _png(draw, (max(8.0, 2.2 * len(shown)), 3.0))


def tier_mix(folders: Sequence[FolderRuns]) -> str:
    runs, labels = _all_runs(folders), _run_labels(folders)

    def draw(figure: Any) -> None:
        left, right = figure.subplots(1, 2)
        x = list(range(len(runs)))
        bottom = [0.0] * len(runs)
        for tier in ("high", "low"):
            counts = [sum(r["tier"] == tier for r in _invocations(run)) for run in runs]
            left.bar(x, counts, bottom=bottom, color=TIER_COLOURS[tier], label=tier)
            bottom = [b + c for b, c in zip(bottom, counts, strict=True)]
        left.set(title="components per tier", xlabel="run", ylabel="components")
        bottom = [0.0] * len(runs)
        for part in TIER_COLOURS:
            dollars = [cost_split(run)[part] for run in runs]
            right.bar(x, dollars, bottom=bottom, color=TIER_COLOURS[part], label=part)
            bottom = [b + d for b, d in zip(bottom, dollars, strict=True)]
        right.set(title="cost split", xlabel="run", ylabel="US dollars")
        for axes in (left, right):
            axes.set_xticks(x, labels, rotation=90 if len(runs) > 12 else 0, fontsize=7)
            axes.legend(fontsize=7)

    return _png(draw)


def timeline_lanes(run: dict[str, Any]) -> dict[str, list[dict[str, Any]]]:
    """Per instance (in order of first use), its spans: invocations and hot-start inits, each
    with start and end seconds from the run's start. Records without offsets are left out."""
    lanes: dict[str, list[dict[str, Any]]] = {}
    for phase in run["phases"]:
        for hot in phase.get("hot_starts", []):
            if hot.get("started_s") is not None:
                end = float(hot["started_s"]) + float(hot["init_ms"]) / 1e3
                lanes.setdefault(hot["instance"], []).append(
                    {"kind": "init", "tier": hot["tier"], "start": hot["started_s"], "end": end}
                )
        for record in phase.get("invocations", []):
            if record.get("started_s") is not None:
                lane = record["instance"] or f"(failed) {record['component']}"
                start = float(record["started_s"])
                lanes.setdefault(lane, []).append(
                    {
                        "kind": record["start"],
                        "tier": record["tier"],
                        "start": start,
                        "end": start + float(record["service_ms"]) / 1e3,
                        "phase": phase["index"],
                    }
                )
    order = sorted(lanes, key=lambda lane: min(span["start"] for span in lanes[lane]))
    return {lane: lanes[lane] for lane in order}


def timeline(label: str, run: dict[str, Any]) -> str | None:
    """Components per instance over time, coloured by how the instance started, low tier
    hatched; hot starts' inits in grey ahead of their first use. None: no offsets recorded."""
    lanes = timeline_lanes(run)
    if not lanes:
        return None

    def draw(figure: Any) -> None:
        from matplotlib.patches import Patch

        axes = figure.subplots()
        for y, spans in enumerate(lanes.values()):
            for span in spans:
                init = span["kind"] == "init"
                axes.broken_barh(
                    [(span["start"], max(span["end"] - span["start"], 1e-3))],
                    (y - 0.4, 0.8),
                    facecolors=INIT_COLOUR if init else START_COLOURS.get(span["kind"], "grey"),
                    edgecolor="white" if init else "black",
                    linewidth=0.3,
                    hatch="///" if span["tier"] == "low" else None,
                )
        starts = sorted(
            {
                min(s["start"] for spans in lanes.values() for s in spans if s.get("phase") == k)
                for k in {s.get("phase") for spans in lanes.values() for s in spans} - {None}
            }
        )
        for x in starts[1:]:
            axes.axvline(x, color="#999", linestyle=":", linewidth=0.8)
        axes.set_yticks(range(len(lanes)), list(lanes), fontsize=6 if len(lanes) > 20 else 7)
        axes.invert_yaxis()
        axes.set(title=f"run {label}: components per instance", xlabel="seconds from run start")
        handles = [Patch(color=c, label=k) for k, c in START_COLOURS.items()]
        handles.append(Patch(color=INIT_COLOUR, label="hot start (init)"))
        handles.append(Patch(facecolor="white", edgecolor="black", hatch="///", label="low tier"))
        axes.legend(handles=handles, fontsize=7, loc="upper right", ncol=5)

    return _png(draw, (8.0, min(12.0, 1.6 + 0.22 * len(lanes))))


def learning(folders: Sequence[FolderRuns]) -> str:
    runs, labels = _all_runs(folders), _run_labels(folders)

    def draw(figure: Any) -> None:
        left, right = figure.subplots(1, 2)
        x = list(range(len(runs)))
        for kind in START_COLOURS:
            left.plot(
                x,
                [int(run.get("starts", {}).get(kind, 0)) for run in runs],
                marker="o",
                color=START_COLOURS[kind],
                label=kind,
            )
        left.set(title="starts per run", xlabel="run", ylabel="invocations")
        left.legend(fontsize=7)
        right.plot(x, [width_error(run) for run in runs], marker="o", color="#984ea3")
        right.set(
            title="width error per run",
            xlabel="run",
            ylabel="components per phase",
        )
        for axes in (left, right):
            axes.set_xticks(x, labels, rotation=90 if len(runs) > 12 else 0, fontsize=7)

    return _png(draw)


# -- the page ------------------------------------------------------------------------------------


def _table(rows: Sequence[Sequence[str]], header: Sequence[str]) -> str:
    head = "".join(f"<th>{html.escape(h)}</th>" for h in header)
    body = "".join(
        "<tr>" + "".join(f"<td>{html.escape(cell)}</td>" for cell in row) + "</tr>" for row in rows
    )
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _summary_rows(folders: Sequence[FolderRuns]) -> list[list[str]]:
    rows = []
    for folder in folders:
        for run in folder.runs:
            starts = run.get("starts", {})
            rows.append(
                [
                    folder.label,
                    str(run["index"]),
                    str(run.get("app", "")),
                    str(run.get("policy", "")),
                    str(run.get("provider", "")),
                    str(len(run["phases"])),
                    str(sum(p["width"] for p in run["phases"])),
                    f"{float(run['execution_time_s']):.2f}",
                    f"{float(run['cost']):.6f}",
                    f"{starts.get('hot', 0)}/{starts.get('warm', 0)}/{starts.get('cold', 0)}",
                    f"{width_error(run):.2f}",
                    "ok" if run.get("error") is None else str(run["error"]).splitlines()[0],
                ]
            )
    return rows


def _result(run: dict[str, Any]) -> str:
    """The workflow's result, a line per top-level entry, cut short where it is long."""
    result = run.get("result")
    if isinstance(result, dict):
        lines = [f"{key}: {json.dumps(value, default=str)}" for key, value in result.items()]
    else:
        lines = [json.dumps(result, default=str)]
    text = "\n".join(line if len(line) <= 200 else line[:200] + " …" for line in lines)
    if len(text) > RESULT_CHARS:
        text = text[:RESULT_CHARS] + "\n… (the whole result is in run.json)"
    return text


STYLE = """
body { font-family: system-ui, sans-serif; margin: 2em auto; max-width: 70em; color: #222; }
h1 { font-size: 1.6em; } h2 { font-size: 1.2em; margin-top: 2em; }
table { border-collapse: collapse; font-size: 0.85em; }
td, th { border: 1px solid #ccc; padding: 0.2em 0.5em; text-align: right; }
th { background: #f3f3f3; } img { max-width: 100%; }
pre { background: #f7f7f7; padding: 0.6em; font-size: 0.8em; white-space: pre-wrap; }
p.note { color: #555; font-size: 0.9em; }
"""


def render(folders: Sequence[FolderRuns]) -> str:
    """The whole page, one string, with every figure inlined."""
    figures = [
        (
            "Execution time and cost",
            time_and_cost(folders),
            "Sum of phase times; cost of "
            "every invocation and hot start (billed as the provider's price table says).",
        ),
        (
            "Service time distribution",
            service_times(folders),
            "Start + wait + compute + I/O "
            "of each invocation, by how its instance came to be ready.",
        ),
        (
            "Predicted vs actual width",
            predicted_widths(folders),
            "Hot starts issued for each "
            "phase (all tiers) against the components it had (the latest runs shown).",
        ),
        (
            "Tier mix and cost split",
            tier_mix(folders),
            "Where components ran, and what invocations on each tier and the hot starts cost.",
        ),
        (
            "Learning across runs",
            learning(folders),
            "Cold starts should fall and the width error shrink as the profile learns.",
        ),
    ]
    names = ", ".join(html.escape(str(f.folder)) for f in folders)
    parts = [
        "<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>",
        f"<title>daydream report: {names}</title><style>{STYLE}</style></head><body>",
        f"<h1>daydream report</h1><p class='note'>{names}</p>",
        "<h2>Runs</h2>",
        _table(
            _summary_rows(folders),
            [
                "folder",
                "run",
                "app",
                "policy",
                "provider",
                "phases",
                "components",
                "time (s)",
                "cost ($)",
                "hot/warm/cold",
                "width err",
                "status",
            ],
        ),
        "<p class='note'>width err: mean over phases of |instances hot started for the phase "
        "- components in it|.</p>",
    ]
    for title, png, note in figures:
        parts.append(f"<h2>{html.escape(title)}</h2><p class='note'>{html.escape(note)}</p>")
        parts.append(f"<img alt='{html.escape(title)}' src='data:image/png;base64,{png}'>")
    parts.append(
        "<h2>Timelines</h2><p class='note'>Components per instance over time (the latest "
        f"{TIMELINES} runs): colour by how the instance started, low tier hatched, hot "
        "starts' inits in grey; dotted lines start phases.</p>"
    )
    shown = list(zip(_run_labels(folders), _all_runs(folders), strict=True))[-TIMELINES:]
    for label, run in shown:
        drawn = timeline(label, run)
        if drawn is None:
            parts.append(f"<p class='note'>run {html.escape(label)}: recorded without times.</p>")
        else:
            alt = html.escape(f"timeline of run {label}")
            parts.append(f"<img alt='{alt}' src='data:image/png;base64,{drawn}'>")
    parts.append("<h2>The workflows' results</h2>")
    for folder in folders:
        for run in folder.runs:
            parts.append(
                f"<h3>{html.escape(folder.label)} run {run['index']}</h3>"
                f"<pre>{html.escape(_result(run))}</pre>"
            )
    parts.append("</body></html>")
    return "\n".join(parts)


def write_report(folders: Sequence[Path], out: Path) -> Path:
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        raise UsageError("daydream report needs matplotlib: pip install 'daydream[apps]'") from None
    loaded = [load_folder(folder) for folder in folders]
    if out.exists() and not out.is_file():
        raise UsageError(f"--out {out} exists and is not a regular file")
    out.write_text(render(loaded))
    return out
