"""The ``daydream`` command."""

from __future__ import annotations

import json
import shlex
import signal
import sys
import warnings
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import click
import platformdirs
from rich.console import Console
from rich.table import Table

from daydream_core import plugins
from daydream_core.clitypes import FiniteFloat, ReadablePath, WritableDir, WritableFile, json_value
from daydream_core.config import ENV_PREFIX, Config, project_file, user_file
from daydream_core.config import load as load_config
from daydream_core.errors import ConfigurationError, DaydreamError, ProviderError, UsageError
from daydream_core.journal import JournalError, JournalState
from daydream_core.journal import read as read_journal
from daydream_core.model import RunRecord
from daydream_core.profile import ENV_VAR as PROFILE_ENV_VAR
from daydream_core.profile import ProfileStore
from daydream_core.provider import Provider, ProviderSettings

EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130

# Bounds of what a command line may ask for: past them, a typo rather than an intent.
MAX_CONCURRENCY = 100_000
MAX_RUNS = 100_000
MAX_SEED = 2**63 - 1  # the profile stores seeds as SQLite integers
MAX_TIMEOUT_S = 7 * 24 * 3600.0
MAX_SCALE = 1.0e6
MAX_WIDTH = 1_000_000

out_console = Console()
err_console = Console(stderr=True)
_command_line: list[str] = []  # the arguments `main` was given, for the run logs
_results_in: list[Path] = []  # where `run` writes: what an interruption leaves on disk


class FailureLogged(DaydreamError):
    """A run stopped; its remote traceback is in the run's error.log, named in the message."""


@dataclass
class Options:
    provider: str
    profile: Path | None
    provider_options: dict[str, str]
    concurrency: int | None
    config: Config = field(default_factory=Config)

    def create_provider(self, state_dir: Path, *, deployment: str | None = None) -> Provider:
        """The provider, its options checked; an adapter's own exception while it is being
        built is a configuration problem of that provider, reported as one line."""
        spec = plugins.lookup("provider", self.provider, plugins.providers())
        settings = ProviderSettings(
            state_dir=state_dir,
            concurrency=self.concurrency,
            options=self.provider_options,
            deployment=deployment,
        )
        try:
            return spec.create(settings)
        except DaydreamError:
            raise
        except Exception as exc:
            raise ConfigurationError(
                f"{self.provider}: cannot configure the provider: {_brief(exc)}"
            ) from None


def _key_values(pairs: Sequence[str], option: str) -> dict[str, str]:
    result = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise click.BadParameter(f"{pair!r} is not KEY=VALUE", param_hint=option)
        result[key] = value
    return result


def _brief(exc: BaseException) -> str:
    """An exception as one line (SDK messages may span several)."""
    text = " ".join(str(exc).split())
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def _warn(message: str) -> None:
    click.echo(f"daydream: warning: {message}", err=True)


def _best_effort(what: str, action: Callable[[], object]) -> None:
    """Run a cleanup step; its failure is one more line, never a mask over the first error."""
    try:
        action()
    except Exception as exc:
        _warn(f"{what} failed: {_brief(exc)}")


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--provider", default="local", show_default=True, help="Where functions run (see `providers`)."
)
@click.option(
    "--profile",
    type=WritableFile(),
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
    "--concurrency",
    type=click.IntRange(1, MAX_CONCURRENCY),
    help="Most instances at once on the provider.",
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
    if ctx.invoked_subcommand not in (
        "providers",
        "apps",
        "policies",
        "compare",
        "report",
        "profile",
        "config",
    ):
        plugins.lookup("provider", provider, plugins.providers())
    # Provider options from the files, per provider, with -o laid over them key by key.
    config = ctx.obj if isinstance(ctx.obj, Config) else Config()
    options = {**config.provider_options(provider), **_key_values(provider_options, "-o")}
    ctx.obj = Options(provider, profile, options, concurrency, config)


@cli.command()
@click.argument("app")
@click.option(
    "--runs", type=click.IntRange(1, MAX_RUNS), help="Runs to make [default: the preset's]."
)
@click.option("--preset", default="small", show_default=True, help="Named parameters of the app.")
@click.option("--policy", default="daydream", show_default=True, help="See `policies`.")
@click.option(
    "--out",
    type=WritableDir(),
    help="Results directory [default: daydream-out/APP]; new runs never overwrite earlier ones.",
)
@click.option(
    "--seed",
    type=click.IntRange(0, MAX_SEED),
    default=0,
    show_default=True,
    help="Seed of the workflow.",
)
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
    type=ReadablePath(),
    help="Trace to replay (app `trace`): a DayDream trace folder or a WfFormat JSON file.",
)
@click.option(
    "--scale",
    type=FiniteFloat(0.0, MAX_SCALE, low_open=True),
    help="Scale factor of replayed work (app `trace`).",
)
@click.option(
    "--timeout",
    type=FiniteFloat(0.0, MAX_TIMEOUT_S, low_open=True),
    default=900.0,
    show_default=True,
    help="Seconds one component may run.",
)
@click.option(
    "--max-width",
    type=click.IntRange(1, MAX_WIDTH),
    default=10_000,
    show_default=True,
    help="Most components in one phase; a wider phase stops the run.",
)
@click.option(
    "--keep",
    is_flag=True,
    help="Keep the functions this command deployed (removed when it ends, otherwise); "
    "`cleanup --deployment ID` removes them later.",
)
@click.option(
    "-v", "--verbose", is_flag=True, help="Show a failed component's traceback on the terminal."
)
@click.option(
    "--json", "as_json", is_flag=True, help="Print the folder's summary as JSON, nothing else."
)
@click.option("-q", "--quiet", is_flag=True, help="No progress, no table (errors still show).")
@click.option(
    "--resume",
    "resume_dir",
    type=click.Path(file_okay=False, path_type=Path),
    metavar="RUN_DIR",
    allow_from_autoenv=False,  # names one run: never from a DAYDREAM_* variable left set
    help="Continue the interrupted run in RUN_DIR (a run-<i>/ of --out) from its last "
    "completed phase; give the options it was started with.",
)
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
    max_width: int,
    keep: bool,
    verbose: bool,
    as_json: bool = False,
    quiet: bool = False,
    resume_dir: Path | None = None,
) -> None:
    """Run APP (see `apps`) and write run-<i>/ results; run-<i>/run.log has the details."""
    from daydream_core.engine import Engine, RunStopped
    from daydream_core.outputs import reserve_run, summarise_folder, write_error_log, write_summary
    from daydream_core.progress import ProgressDisplay
    from daydream_core.report import folder_table
    from daydream_core.runlog import Broadcast, RunLog

    workflow = plugins.lookup("app", app, plugins.apps()).load()
    policy_spec = plugins.lookup("policy", policy, plugins.policies())
    chosen = workflow.preset(preset)
    parameters: dict[str, Any] = dict(chosen.params)
    parameters.update({k: json_value(v, "--param") for k, v in _key_values(params, "-p").items()})
    if trace is not None:
        parameters["trace"] = str(trace.resolve())
    if scale is not None:
        parameters["scale"] = scale
    parameters = workflow.validate(parameters)
    total = runs or chosen.runs
    resumed = None
    if resume_dir is not None:
        resumed = _resumable(resume_dir, out, runs)
        out_dir, total = resume_dir.resolve().parent, 1
    else:
        out_dir = (out or WritableDir().convert(Path("daydream-out") / app, None, None)).resolve()
    _warn_of_faults()
    profile = ProfileStore(options.profile)  # schema and a real write checked now
    from daydream_core.deployments import new_deployment_id

    # Its own names and tags: a failure removes what this command made, never another's.
    deployment = new_deployment_id()
    provider = options.create_provider(out_dir, deployment=deployment)  # checks it first
    _results_in[:] = [out_dir]
    if resumed is not None:
        resumed.check(
            app=workflow.name,
            preset=preset,
            params=parameters,
            seed=seed,
            policy=policy_spec.name,
            provider=provider.name,
        )
    finished: list[RunRecord] = []
    command = _command_id()
    runlog = RunLog(out_dir)
    header = [f"command {command}: daydream {shlex.join(_command_line)}".rstrip()]
    header.append(f"app {app}, preset {preset}, policy {policy}, provider {provider.name}")
    header.append(f"workload {workflow.workload(preset, parameters)}")
    header.append(f"parameters {json.dumps(parameters, sort_keys=True, default=str)}")
    progress = Console(stderr=True, quiet=True) if quiet or as_json else err_console
    with ProgressDisplay(progress) as display, runlog.capturing():
        engine = Engine(
            provider,
            profile,
            policy_spec,
            timeout_s=timeout,
            events=Broadcast(display, runlog),
            max_width=max_width,
            command=command,
        )
        try:
            for offset in range(total):
                if resumed is None:
                    index = _reserve(reserve_run, out_dir)
                else:
                    index = int(resumed.header["index"])
                    _resuming(resumed)
                display.run_started(offset + 1, total)
                runlog.run_started(index, header)
                try:
                    record = engine.run(
                        workflow,
                        preset=preset,
                        params=parameters,
                        seed=seed,
                        run_index=index,
                        out_dir=out_dir,
                        resume=resumed,
                    )
                except RunStopped as failure:
                    if failure.remote_traceback:
                        runlog.write(f"traceback:\n{failure.remote_traceback}")
                    if failure.run is not None:
                        display.run_finished(failure.run)
                        runlog.run_finished(failure.run)
                    if failure.remote_traceback:
                        log = write_error_log(out_dir, index, failure.remote_traceback)
                        if not verbose:
                            raise FailureLogged(
                                f"{failure} (traceback in {log}; --verbose shows it here)"
                            ) from failure
                    raise
                except BaseException as stopped:
                    runlog.write(f"run {index} stopped: {_brief(stopped) or 'interrupted'}")
                    raise
                finished.append(record)
                display.run_finished(record)
                runlog.run_finished(record)
        finally:
            if not keep:
                # Exactly what this command deployed, failed or not: its names are its own
                # (its deployment id), so nothing else would ever reuse them.
                _best_effort(
                    "removing the functions this run deployed", engine.deployments.remove_created
                )
            _best_effort("closing the provider", provider.close)
            _best_effort("stopping the engine", engine.close)
            _best_effort("writing summary.json", lambda: write_summary(out_dir))
    summary = summarise_folder(out_dir)
    if as_json:
        click.echo(json.dumps({"folder": str(out_dir), "command": command, **summary}, indent=1))
    elif not quiet:
        out_console.print(folder_table(summary, command))
        out_console.print(f"results: {out_dir}")


def _command_id() -> str:
    """Names one `daydream run` command in its runs' records (several may share a folder)."""
    import secrets
    import time

    return f"{time.strftime('%Y%m%dT%H%M%S')}-{secrets.token_hex(2)}"


def _resumable(run_dir: Path, out: Path | None, runs: int | None) -> JournalState:
    """The journal of the run `--resume` names, checked for what can be told without the
    workflow: a run-<i> directory with a journal of that run, one run, its own --out."""
    if runs not in (None, 1):
        raise UsageError(f"--resume continues one run; --runs {runs} is not valid with it")
    name = run_dir.resolve().name
    if not (name.startswith("run-") and name.removeprefix("run-").isdigit()):
        raise UsageError(
            f"--resume {run_dir}: not a run directory; valid: a run-<i> directory in --out"
        )
    if out is not None and out.resolve() != run_dir.resolve().parent:
        raise UsageError(
            f"--resume {run_dir} is not in --out {out}; a resumed run stays in its own folder"
        )
    state = read_journal(run_dir)
    if int(state.header.get("index", -1)) != int(name.removeprefix("run-")):
        raise JournalError(f"{state.path} is the journal of another run directory")
    return state


def _resuming(state: JournalState) -> None:
    done = len(state.completed)
    click.echo(
        f"daydream: resuming {state.header['run_id']} in {state.path.parent} at phase "
        f"{done + 1} ({done} completed phase{'' if done == 1 else 's'} replayed, not run)",
        err=True,
    )


def _warn_of_faults() -> None:
    """Fault injection is for tests: say so whenever it is on (a bad spec is one line)."""
    from daydream_core import faults

    plan = faults.from_environment()
    if plan is not None:
        _warn(f"fault injection is on ({faults.ENV_VAR}={plan.spec}); for tests only")


def _reserve(reserve: Callable[[Path], int], out_dir: Path) -> int:
    try:
        return reserve(out_dir)
    except OSError as exc:
        raise UsageError(f"cannot write results into {out_dir}: {exc.strerror or exc}") from None


@cli.command()
def apps() -> None:
    """List the workflows installed."""
    from daydream_core.requirements import install_hint

    table = Table("app", "description", "presets")
    for name, spec in plugins.apps().items():
        if missing := spec.missing():
            presets = f"[red]not installed: {install_hint('it', missing, spec.extra)}[/red]"
        else:
            presets = ", ".join(
                f"{p} ({w.runs} run{'s' if w.runs > 1 else ''})"
                for p, w in spec.load().presets.items()
            )
        table.add_row(name, spec.description, presets)
    out_console.print(table)


@cli.command()
def providers() -> None:
    """List the providers installed."""
    from daydream_core.requirements import install_hint

    table = Table("provider", "description", "installed")
    for name, spec in plugins.providers().items():
        missing = spec.missing()
        status = f"[red]no: {install_hint('it', missing, spec.extra)}[/red]" if missing else "yes"
        table.add_row(name, spec.description, status)
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
@click.option(
    "--deployment",
    help="Only what this deployment created (the id in a run's run.json), e.g. what a killed "
    "command left while others still run.",
)
@click.pass_obj
def cleanup(
    options: Options, dry_run: bool, provider_name: str | None, deployment: str | None
) -> None:
    """Remove everything daydream created on the provider (or one deployment's)."""
    from daydream_core.deployments import check_deployment_id

    if provider_name is not None:
        plugins.lookup("provider", provider_name, plugins.providers())
        options.provider = provider_name
    if deployment is not None:
        check_deployment_id(deployment)
    state_dir = Path(platformdirs.user_cache_dir("daydream"))
    provider = options.create_provider(state_dir, deployment=deployment)
    if deployment is not None and provider.deployment != deployment:
        _best_effort("closing the provider", provider.close)
        raise UsageError(
            f"provider {options.provider!r} does not name its resources per deployment; "
            "`daydream cleanup` without --deployment removes all that daydream created"
        )
    try:
        removed = provider.cleanup(dry_run=dry_run)
    except DaydreamError:
        raise
    except Exception as exc:  # an SDK's own error (unreachable endpoint, ...): one line
        raise ProviderError(f"{options.provider}: cleanup failed: {_brief(exc)}") from None
    finally:
        _best_effort("closing the provider", provider.close)
    verb = "would remove" if dry_run else "removed"
    for name in removed:
        out_console.print(f"{verb} {name}")
    out_console.print(f"{options.provider}: {verb} {len(removed)} resource(s)")


@cli.command()
@click.argument("folder", type=click.Path(file_okay=False, path_type=Path))
@click.option(
    "--baseline",
    required=True,
    type=click.Path(file_okay=False, path_type=Path),
    help="Folder to compare with: daydream results or the original's *-baseline.txt runs.",
)
@click.option(
    "--tolerance",
    type=click.FloatRange(min=0, max=1, max_open=True),
    default=0.10,
    show_default=True,
    help="Relative difference that counts as reproduced (the original's criterion: 10%).",
)
@click.option("--json", "as_json", is_flag=True, help="Print the comparison as JSON.")
def compare(folder: Path, baseline: Path, tolerance: float, as_json: bool) -> None:
    """Compare FOLDER's runs with --baseline's: phase time, service time, cost."""
    from daydream_core.compare import compare as compare_folders
    from daydream_core.compare import comparison_table, read_folder, verdict

    comparison = compare_folders(read_folder(folder), read_folder(baseline), tolerance)
    if as_json:
        click.echo(json.dumps(comparison.to_json(), indent=1))
        return
    out_console.print(comparison_table(comparison))
    for line in verdict(comparison):
        out_console.print(line, highlight=False)


@cli.command()
@click.argument("folders", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option(
    "--out",
    type=click.Path(dir_okay=False, path_type=Path),
    help="HTML file to write [default: report.html in the first folder].",
)
def report(folders: tuple[Path, ...], out: Path | None) -> None:
    """Write a self-contained HTML report (with figures) of one or more result folders."""
    from daydream_core.html_report import write_report

    target = write_report(folders, out or folders[0] / "report.html")
    out_console.print(f"report: {target.resolve()}")


@cli.group(name="profile")
def profile_group() -> None:
    """What daydream has learned (the profile store): path, show, reset."""


@profile_group.command(name="path")
@click.pass_obj
def profile_path(options: Options) -> None:
    """Print where the profile store is (--profile, $DAYDREAM_PROFILE, or the default)."""
    from daydream_core.profile import default_path

    click.echo(str(options.profile or default_path()))


@profile_group.command(name="show")
@click.option("--app", help="Only what was learned of this app.")
@click.option("--json", "as_json", is_flag=True, help="Print it as JSON.")
@click.pass_obj
def profile_show(options: Options, app: str | None, as_json: bool) -> None:
    """Show what was learned: execution times per kind and tier, init times, widths, runs."""
    from daydream_core.profile import default_path

    path = options.profile or default_path()
    if not path.exists():
        click.echo(f"no profile store at {path} yet: nothing learned")
        return
    learned = ProfileStore(path).describe(app)
    if as_json:
        click.echo(json.dumps(learned, indent=1))
        return
    out_console.print(f"profile store: {learned['path']} (schema {learned['schema']})")
    timings = Table("app", "provider", "kind", "tier", "samples", "mean (s)", "stdev (s)")
    for t in learned["timings"]:
        timings.add_row(
            t["app"], t["provider"], t["kind"], t["tier"], str(t["samples"]),
            f"{t['mean_s']:.3f}", f"{t['stdev_s']:.3f}",
        )  # fmt: skip
    inits = Table("app", "provider", "tier", "samples", "mean init (s)")
    for i in learned["inits"]:
        inits.add_row(i["app"], i["provider"], i["tier"], str(i["samples"]), f"{i['mean_s']:.3f}")
    widths = Table("workload", "DAG parameters", "runs", "phases", "components",
                   "hot starts predicted")  # fmt: skip
    widths.columns[0].no_wrap = True
    widths.columns[1].overflow, widths.columns[1].min_width = "fold", 28  # long values fold
    for w in learned["workloads"]:
        name, _, shape = w["workload"].partition(" ")  # app:preset, then what shapes the DAG
        widths.add_row(
            name, shape.replace(" ", "\n") or "-", str(w["runs"]), str(w["phases"]),
            str(w["components"]), str(w["hot_starts_predicted"]),
        )  # fmt: skip
    runs = Table("app", "provider", "policy", "runs", "time (s)", "cost ($)", "hot/warm/cold")
    for r in learned["runs"]:
        s = r["starts"]
        runs.add_row(
            r["app"], r["provider"], r["policy"], str(r["runs"]), f"{r['execution_s']:.1f}",
            f"{r['cost']:.6f}", f"{s['hot']}/{s['warm']}/{s['cold']}",
        )  # fmt: skip
    for title, table in (
        ("execution time per component kind and tier", timings),
        ("init (cold start) time per tier", inits),
        ("concurrency history per workload", widths),
        ("runs", runs),
    ):
        table.title, table.title_justify = title, "left"
        out_console.print(table if table.row_count else f"{title}: nothing learned yet")


@profile_group.command(name="reset")
@click.option("--app", help="Forget only this app.")
@click.option("--yes", is_flag=True, help="Do not ask.")
@click.pass_obj
def profile_reset(options: Options, app: str | None, yes: bool) -> None:
    """Forget what was learned (everything, or one app's)."""
    store = ProfileStore(options.profile)
    what = f"what was learned of {app!r}" if app else "everything learned"
    if not yes:
        if not sys.stdin.isatty():
            raise UsageError(f"profile reset would forget {what}: pass --yes to confirm")
        if not click.confirm(f"forget {what} in {store.path}?", err=True):
            raise UsageError("profile reset: not confirmed (pass --yes to skip the question)")
    out_console.print(f"removed {store.reset(app)} row(s) from {store.path}")


@cli.group(name="config")
def config_group() -> None:
    """The configuration files (daydream.toml) and the settings in effect."""


@config_group.command(name="show")
@click.option("--json", "as_json", is_flag=True, help="Print the settings as JSON.")
@click.pass_obj
def config_show(options: Options, as_json: bool) -> None:
    """Every setting a file or a DAYDREAM_* variable can give: its value and its source."""
    from daydream_core.config import effective

    settings = effective(cli, options.config)
    if as_json:
        data = [{"key": s.key, "value": s.value, "source": s.source} for s in settings]
        click.echo(json.dumps({"files": [str(f) for f in options.config.files], "settings": data},
                              indent=1, default=str))  # fmt: skip
        return
    files = ", ".join(str(f) for f in options.config.files) or "none"
    out_console.print(f"files read: {files}", highlight=False)
    table = Table("setting", "value", "from")
    for setting in settings:
        table.add_row(setting.key, "" if setting.value is None else str(setting.value),
                      setting.source)  # fmt: skip
    out_console.print(table)


@config_group.command(name="path")
def config_path() -> None:
    """The files read, weakest first: the user's, then the project's (nearest upward)."""
    click.echo(f"user: {user_file()}")
    click.echo(f"project: {project_file() or '(none found from here up to the repository root)'}")


@cli.command()
@click.argument("app")
@click.option("--dry-run", is_flag=True, help="Show what would be created, sizes and why.")
@click.option("--provider", "provider_name", help="The provider (as the global --provider).")
@click.pass_obj
def deploy(options: Options, app: str, dry_run: bool, provider_name: str | None) -> None:
    """Deploy APP's functions (one per tier), or show the plan with --dry-run."""
    if provider_name is not None:
        plugins.lookup("provider", provider_name, plugins.providers())
        options.provider = provider_name
    workflow = plugins.lookup("app", app, plugins.apps()).load()
    provider = options.create_provider(Path(platformdirs.user_cache_dir("daydream")))
    try:
        if dry_run:
            for line in provider.plan_deploy(workflow.runtime):
                out_console.print(line, markup=False, highlight=False, soft_wrap=True)
            out_console.print(f"{options.provider}: dry run, nothing created")
            return
        for tier in provider.tiers().values():
            handle = provider.deploy(workflow.runtime, tier)
            out_console.print(f"deployed {handle.name} ({tier.name} tier, {tier.memory_mb} MB)")
    finally:
        provider.close()


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
    help="aws, aws-snapstart, local or trace [default: trace for a DayDream trace, local for "
    "--records, else aws; aws adds rows for SnapStart].",
)
@click.option("--runs", type=click.IntRange(min=1), help="Runs to replay [default: all].")
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of the model.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of the table.")
@click.option(
    "--plot",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Write a PNG (FILE.png) of time vs cost per policy.",
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
    from daydream_core.simulator.calibration import from_records_folder, named_calibration
    from daydream_core.simulator.evaluate import add_snapstart

    if plot is not None:
        sim_report.check_plot_path(plot)  # before the work, not after it
    workload = load_workload(trace=trace, records=records).first(runs)
    default = {"daydream": "trace", "records": "local"}.get(workload.format, "aws")
    cal = named_calibration(calibration_name or default)
    if records is not None:
        cal = from_records_folder(cal, records)
    available = plugins.policies()
    names = policy_names.split(",") if policy_names else list(available)
    chosen = {n: plugins.lookup("policy", n.strip(), available) for n in names}
    policies = {spec.name: spec for spec in chosen.values()}
    evaluation = evaluate(workload, cal, policies, seed)
    add_snapstart(evaluation, policies)  # aws only: daydream with SnapStart, SnapStart alone
    if as_json:
        click.echo(json.dumps(sim_report.to_json(evaluation), indent=1))
    else:
        sim_report.show(sim_report.table(evaluation), out_console)
    if plot is not None:
        sim_report.plot(evaluation, plot)


@contextmanager
def _one_line_warnings() -> Iterator[None]:
    previous = warnings.formatwarning
    warnings.formatwarning = lambda message, *args, **kwargs: f"daydream: warning: {message}\n"
    try:
        yield
    finally:
        warnings.formatwarning = previous


@contextmanager
def _sigterm_as_interrupt() -> Iterator[None]:
    """SIGTERM stops a command like Ctrl-C: the same cleanup, the same exit status."""

    def interrupt(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    try:
        previous = signal.signal(signal.SIGTERM, interrupt)
    except ValueError:  # not the main thread (an embedding application): leave it alone
        yield
        return
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def main(argv: Sequence[str] | None = None) -> None:
    """Entry point: bad input is one line and exit 2; a failed run exits 1; never a traceback."""
    from daydream_core.engine import RunStopped

    def fail(message: str, code: int) -> None:
        click.echo(f"daydream: error: {message}", err=True)
        sys.exit(code)

    _command_line[:] = sys.argv[1:] if argv is None else list(argv)
    _results_in.clear()
    with _one_line_warnings(), _sigterm_as_interrupt():
        try:
            config = load_config(cli, [user_file(), *filter(None, [project_file()])])
            code = cli.main(
                args=argv,
                prog_name="daydream",
                standalone_mode=False,
                default_map=config.default_map(),
                auto_envvar_prefix=ENV_PREFIX,
                obj=config,
            )
        except click.UsageError as exc:
            fail(" ".join(exc.format_message().split()), EXIT_USAGE)
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
            kept = f"; results so far are in {_results_in[0]}" if _results_in else ""
            fail(f"interrupted{kept}", EXIT_INTERRUPTED)
    sys.exit(code if isinstance(code, int) else 0)
