"""The ``daydream`` command."""

from __future__ import annotations

import json
import sys
import warnings
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import click
import platformdirs
from rich.console import Console
from rich.table import Table

from daydream_core import plugins
from daydream_core.errors import DaydreamError, UsageError
from daydream_core.model import RunRecord
from daydream_core.profile import ENV_VAR as PROFILE_ENV_VAR
from daydream_core.profile import ProfileStore
from daydream_core.provider import Provider, ProviderSettings

EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130

out_console = Console()
err_console = Console(stderr=True)


@dataclass
class Options:
    provider: str
    profile: Path | None
    provider_options: dict[str, str]
    concurrency: int | None

    def create_provider(self, state_dir: Path) -> Provider:
        spec = plugins.lookup("provider", self.provider, plugins.providers())
        settings = ProviderSettings(
            state_dir=state_dir, concurrency=self.concurrency, options=self.provider_options
        )
        return spec.factory(settings)


def _key_values(pairs: Sequence[str], option: str) -> dict[str, str]:
    result = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise click.BadParameter(f"{pair!r} is not KEY=VALUE", param_hint=option)
        result[key] = value
    return result


def _param_value(text: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--provider", default="local", show_default=True, help="Where functions run (see `providers`)."
)
@click.option(
    "--profile",
    type=click.Path(dir_okay=False, path_type=Path),
    help=f"Profile store (SQLite) of what was learned; default ${PROFILE_ENV_VAR} or the user "
    "data directory.",
)
@click.option(
    "-o",
    "--provider-option",
    "provider_options",
    multiple=True,
    metavar="KEY=VALUE",
    help="A provider setting, e.g. -o keep_alive_s=30 (repeatable).",
)
@click.option(
    "--concurrency", type=click.IntRange(min=1), help="Most instances at once on the provider."
)
@click.version_option(package_name="daydream", prog_name="daydream")
@click.pass_context
def cli(
    ctx: click.Context,
    provider: str,
    profile: Path | None,
    provider_options: tuple[str, ...],
    concurrency: int | None,
) -> None:
    """Run dynamic scientific workflows on serverless platforms, with hot starts."""
    if ctx.invoked_subcommand not in ("providers", "apps", "policies"):
        plugins.lookup("provider", provider, plugins.providers())
    ctx.obj = Options(provider, profile, _key_values(provider_options, "-o"), concurrency)


@cli.command()
@click.argument("app")
@click.option("--runs", type=click.IntRange(min=1), help="Runs to make [default: the preset's].")
@click.option("--preset", default="small", show_default=True, help="Named parameters of the app.")
@click.option("--policy", default="daydream", show_default=True, help="See `policies`.")
@click.option(
    "--out",
    type=click.Path(file_okay=False, path_type=Path),
    help="Results directory [default: daydream-out/APP]; new runs never overwrite earlier ones.",
)
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of the workflow.")
@click.option(
    "-p",
    "--param",
    "params",
    multiple=True,
    metavar="KEY=VALUE",
    help="Override a preset parameter (value parsed as JSON when it parses).",
)
@click.option(
    "--trace",
    type=click.Path(exists=True, path_type=Path),
    help="Trace to replay (app `trace`): a DayDream trace folder or a WfFormat JSON file.",
)
@click.option(
    "--scale",
    type=click.FloatRange(min=0, min_open=True),
    help="Scale factor of replayed work (app `trace`).",
)
@click.option(
    "--timeout",
    type=click.FloatRange(min=0, min_open=True),
    default=900.0,
    show_default=True,
    help="Seconds one component may run.",
)
@click.option("--keep", is_flag=True, help="Keep deployed functions if the run fails.")
@click.pass_obj
def run(
    options: Options,
    app: str,
    runs: int | None,
    preset: str,
    policy: str,
    out: Path | None,
    seed: int,
    params: tuple[str, ...],
    trace: Path | None,
    scale: float | None,
    timeout: float,
    keep: bool,
) -> None:
    """Run APP (see `apps`) and write run-<i>/ results."""
    from daydream_core.engine import Engine, RunStopped
    from daydream_core.outputs import next_run_index
    from daydream_core.progress import ProgressDisplay
    from daydream_core.report import summary_json, summary_table

    workflow = plugins.lookup("app", app, plugins.apps()).load()
    policy_spec = plugins.lookup("policy", policy, plugins.policies())
    chosen = workflow.preset(preset)
    parameters: dict[str, Any] = dict(chosen.params)
    parameters.update({k: _param_value(v) for k, v in _key_values(params, "--param").items()})
    if trace is not None:
        parameters["trace"] = str(trace.resolve())
    if scale is not None:
        parameters["scale"] = scale
    workflow.validate(parameters)
    total = runs or chosen.runs
    out_dir = (out or Path("daydream-out") / app).resolve()
    profile = ProfileStore(options.profile)
    provider = options.create_provider(out_dir)  # checks its configuration first
    out_dir.mkdir(parents=True, exist_ok=True)
    first = next_run_index(out_dir)
    finished: list[RunRecord] = []
    failed = True
    with ProgressDisplay(err_console) as display:
        engine = Engine(provider, profile, policy_spec, timeout_s=timeout, events=display)
        try:
            for offset in range(total):
                display.run_started(offset + 1, total)
                try:
                    record = engine.run(
                        workflow,
                        preset=preset,
                        params=parameters,
                        seed=seed,
                        run_index=first + offset,
                        out_dir=out_dir,
                    )
                except RunStopped as failure:
                    if failure.run is not None:
                        display.run_finished(failure.run)
                    raise
                finished.append(record)
                display.run_finished(record)
            failed = False
        finally:
            if failed and not keep:
                provider.cleanup()
            provider.close()
            engine.close()
    (out_dir / "summary.json").write_text(json.dumps(summary_json(finished), indent=1) + "\n")
    out_console.print(summary_table(finished))
    out_console.print(f"results: {out_dir}")


@cli.command()
def apps() -> None:
    """List the workflows installed."""
    table = Table("app", "description", "presets")
    for name, spec in plugins.apps().items():
        try:
            presets = ", ".join(
                f"{p} ({w.runs} run{'s' if w.runs > 1 else ''})"
                for p, w in spec.load().presets.items()
            )
        except ImportError as exc:
            presets = f"[red]not installed: {exc}[/red]"
        table.add_row(name, spec.description, presets)
    out_console.print(table)


@cli.command()
def providers() -> None:
    """List the providers installed."""
    table = Table("provider", "description")
    for name, spec in plugins.providers().items():
        table.add_row(name, spec.description)
    out_console.print(table)


@cli.command()
def policies() -> None:
    """List the policies (hot-start predictor + placement)."""
    table = Table("policy", "description")
    for name, spec in plugins.policies().items():
        table.add_row(name, spec.description)
    out_console.print(table)


@cli.command()
@click.option("--dry-run", is_flag=True, help="List what would be removed; remove nothing.")
@click.option("--provider", "provider_name", help="The provider (as the global --provider).")
@click.pass_obj
def cleanup(options: Options, dry_run: bool, provider_name: str | None) -> None:
    """Remove everything daydream created on the provider."""
    if provider_name is not None:
        plugins.lookup("provider", provider_name, plugins.providers())
        options.provider = provider_name
    provider = options.create_provider(Path(platformdirs.user_cache_dir("daydream")))
    try:
        removed = provider.cleanup(dry_run=dry_run)
    finally:
        provider.close()
    verb = "would remove" if dry_run else "removed"
    for name in removed:
        out_console.print(f"{verb} {name}")
    out_console.print(f"{options.provider}: {verb} {len(removed)} resource(s)")


@cli.command(context_settings={"ignore_unknown_options": True})
@click.option("--provider", "provider_name", help="The provider (as the global --provider).")
@click.argument("pytest_args", nargs=-1, type=click.UNPROCESSED)
@click.pass_obj
def conformance(options: Options, provider_name: str | None, pytest_args: tuple[str, ...]) -> None:
    """Run the provider conformance suite (offline, against the provider's fake).

    Extra arguments go to pytest, e.g. `daydream conformance --provider aws -- -x -q`."""
    name = provider_name or options.provider
    plugins.lookup("provider", name, plugins.providers())
    try:
        import pytest
    except ImportError:
        raise UsageError(
            "the conformance suite needs pytest: pip install 'daydream[dev]'"
        ) from None
    args = ["--pyargs", "daydream_conformance", "--daydream-provider", name]
    args += [f"--daydream-option={k}={v}" for k, v in options.provider_options.items()]
    sys.exit(int(pytest.main([*args, *pytest_args])))


@cli.command()
@click.option(
    "--trace",
    type=click.Path(exists=True, path_type=Path),
    help="A DayDream trace folder (run-<i>/) or WfFormat JSON file(s) to replay.",
)
@click.option(
    "--records",
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    help="Results of `daydream run` (run-<i>/run.json) to replay instead.",
)
@click.option("--policies", "policy_names", help="Comma-separated policies [default: all].")
@click.option(
    "--calibration",
    "calibration_name",
    help="aws, local or trace [default: trace for a DayDream trace, local for --records, "
    "else aws].",
)
@click.option("--runs", type=click.IntRange(min=1), help="Runs to replay [default: all].")
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of the model.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of the table.")
@click.option(
    "--plot",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Write a PNG of time vs cost per policy.",
)
def simulate(
    trace: Path | None,
    records: Path | None,
    policy_names: str | None,
    calibration_name: str | None,
    runs: int | None,
    seed: int,
    as_json: bool,
    plot: Path | None,
) -> None:
    """Every policy on a recorded workload, in virtual time, on a calibrated platform model."""
    from daydream_core.simulator import evaluate, load_workload
    from daydream_core.simulator import report as sim_report
    from daydream_core.simulator.calibration import from_records, named_calibration

    workload = load_workload(trace=trace, records=records).first(runs)
    default = {"daydream": "trace", "records": "local"}.get(workload.format, "aws")
    cal = named_calibration(calibration_name or default)
    if records is not None:
        runs_json = [json.loads(p.read_text()) for p in sorted(records.glob("run-*/run.json"))]
        cal = from_records(cal, runs_json)
    available = plugins.policies()
    names = policy_names.split(",") if policy_names else list(available)
    chosen = {n: plugins.lookup("policy", n.strip(), available) for n in names}
    evaluation = evaluate(workload, cal, {spec.name: spec for spec in chosen.values()}, seed)
    if plot is not None:
        sim_report.plot(evaluation, plot)
    if as_json:
        click.echo(json.dumps(sim_report.to_json(evaluation), indent=1))
    else:
        out_console.print(sim_report.table(evaluation))


@contextmanager
def _one_line_warnings() -> Iterator[None]:
    previous = warnings.formatwarning
    warnings.formatwarning = lambda message, *args, **kwargs: f"daydream: warning: {message}\n"
    try:
        yield
    finally:
        warnings.formatwarning = previous


def main(argv: Sequence[str] | None = None) -> None:
    """Entry point: bad input is one line and exit 2; a failed run exits 1; never a traceback."""
    from daydream_core.engine import RunStopped

    def fail(message: str, code: int) -> None:
        click.echo(f"daydream: error: {message}", err=True)
        sys.exit(code)

    with _one_line_warnings():
        try:
            code = cli.main(args=argv, prog_name="daydream", standalone_mode=False)
        except click.UsageError as exc:
            fail(exc.format_message(), EXIT_USAGE)
        except UsageError as exc:
            fail(str(exc), EXIT_USAGE)
        except RunStopped as exc:
            click.echo(f"daydream: error: {exc}", err=True)
            if exc.remote_traceback:
                click.echo(exc.remote_traceback.rstrip(), err=True)
            sys.exit(EXIT_FAILED)
        except DaydreamError as exc:
            fail(str(exc), EXIT_FAILED)
        except (KeyboardInterrupt, click.Abort):
            fail("interrupted; results so far are on disk", EXIT_INTERRUPTED)
    sys.exit(code if isinstance(code, int) else 0)
