"""Configuration files: ``daydream.toml``, user-level and project-level, under the command line.

Layers, weakest first: built-in defaults, the user's file (``daydream.toml`` in the user
config directory), the project's file (the nearest ``daydream.toml`` from the working directory
up to the repository root), ``DAYDREAM_*`` environment variables, the command line. A file sets
the same things as the command line and under the same names, so nothing is configured in two
vocabularies::

    provider = "aws"              # global options: provider, profile, concurrency
    concurrency = 16

    [run]                         # any option of `daydream run`, by its long name
    policy = "daydream"
    timeout = 600

    [providers.aws]               # provider options (-o KEY=VALUE), per provider
    region = "eu-west-1"
    high_memory_mb = 10240

Every value is checked with the command line's own types when the file is read: a wrong one
is one line naming the file, the key and what is valid.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import click
import platformdirs

from daydream_core.errors import ConfigurationError

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib

FILE_NAME = "daydream.toml"
ENV_PREFIX = "DAYDREAM"
ENV_FILE = "DAYDREAM_CONFIG"  # a file to use instead of the user's (tests, CI, scripts)
SECTIONS = ("run",)  # commands whose options a file may set
PROVIDERS = "providers"


def user_file() -> Path:
    override = os.environ.get(ENV_FILE)
    if override:
        return Path(override)
    return Path(platformdirs.user_config_dir("daydream")) / FILE_NAME


def project_file(start: Path | None = None) -> Path | None:
    """The nearest ``daydream.toml`` from `start` up to the repository (or file system) root."""
    here = (start or Path.cwd()).resolve()
    for folder in (here, *here.parents):
        candidate = folder / FILE_NAME
        if candidate.is_file():
            return candidate
        if (folder / ".git").exists():
            return None
    return None


@dataclass(frozen=True)
class Setting:
    """One configured value and where it came from."""

    key: str  # "provider", "run.policy", "providers.aws.region"
    value: Any
    source: str  # a file's path, an environment variable, or "default"


@dataclass
class Config:
    """The files' settings, checked: global and command defaults, provider options."""

    files: list[Path] = field(default_factory=list)
    settings: dict[str, Setting] = field(default_factory=dict)

    def default_map(self) -> dict[str, Any]:
        """Defaults for click, by command: ``{"provider": ..., "run": {"policy": ...}}``."""
        defaults: dict[str, Any] = {}
        for setting in self.settings.values():
            head, _, rest = setting.key.partition(".")
            if head == PROVIDERS:
                continue
            if rest:
                defaults.setdefault(head, {})[rest] = setting.value
            else:
                defaults[head] = setting.value
        return defaults

    def provider_options(self, provider: str) -> dict[str, str]:
        """The file's options for `provider` (-o on the command line overrides them)."""
        prefix = f"{PROVIDERS}.{provider}."
        return {
            key.removeprefix(prefix): _option_text(s.value)
            for key, s in self.settings.items()
            if key.startswith(prefix)
        }


def _option_text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _read(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as handle:
            data: dict[str, Any] = tomllib.load(handle)
            return data
    except tomllib.TOMLDecodeError as exc:
        raise ConfigurationError(f"{path}: not valid TOML: {exc}") from None
    except OSError as exc:
        raise ConfigurationError(f"{path}: cannot read: {exc.strerror or exc}") from None


def _options(command: click.Command) -> dict[str, click.Option]:
    return {
        p.name: p
        for p in command.params
        if isinstance(p, click.Option) and p.name and p.expose_value and not p.hidden
    }


def _check(path: Path, key: str, option: click.Option, value: Any) -> Any:
    """The value as the command line would take it, or one line saying what is wrong."""
    if isinstance(value, (dict, list)) and not option.multiple:
        raise ConfigurationError(f"{path}: {key} must be a single value, not {value!r}")
    try:
        return option.type_cast_value(click.Context(click.Command("config")), value)
    except click.BadParameter as exc:
        raise ConfigurationError(f"{path}: {key} = {value!r}: {exc.message}") from None


def load(group: click.Group, files: Sequence[Path]) -> Config:
    """Read `files` (weakest first), checking every key against `group`'s own options."""
    config = Config()
    global_options = _options(group)
    global_options.pop("provider_options", None)  # per provider, under [providers.NAME]
    for path in files:
        if not path.is_file():
            continue
        config.files.append(path)
        for head, value in _read(path).items():
            if head in global_options:
                checked = _check(path, head, global_options[head], value)
                config.settings[head] = Setting(head, checked, str(path))
            elif head in SECTIONS:
                command = group.commands[head]
                _section(config, path, head, value, _options(command))
            elif head == PROVIDERS:
                _providers(config, path, value)
            else:
                valid = ", ".join(
                    [*global_options, *(f"[{s}]" for s in SECTIONS), "[providers.NAME]"]
                )
                raise ConfigurationError(f"{path}: unknown key {head!r}; valid: {valid}")
    return config


def _section(
    config: Config, path: Path, head: str, table: Any, options: Mapping[str, click.Option]
) -> None:
    if not isinstance(table, dict):
        raise ConfigurationError(f"{path}: [{head}] must be a table of option = value")
    for name, value in table.items():
        if name not in options:
            valid = ", ".join(sorted(options))
            raise ConfigurationError(
                f"{path}: unknown key '{head}.{name}'; valid options of `{head}`: {valid}"
            )
        key = f"{head}.{name}"
        config.settings[key] = Setting(key, _check(path, key, options[name], value), str(path))


def _providers(config: Config, path: Path, tables: Any) -> None:
    if not isinstance(tables, dict) or not all(isinstance(t, dict) for t in tables.values()):
        raise ConfigurationError(f"{path}: [providers.NAME] tables of option = value expected")
    for provider, table in tables.items():
        for name, value in table.items():
            if isinstance(value, (dict, list)):
                raise ConfigurationError(
                    f"{path}: providers.{provider}.{name} must be a string, number or boolean"
                )
            key = f"{PROVIDERS}.{provider}.{name}"
            config.settings[key] = Setting(key, value, str(path))


def _default(option: click.Option) -> Any:
    """The option's built-in default; None where it has none (click marks that unset)."""
    value = option.get_default(click.Context(click.Command("config")), call=True)
    return value if isinstance(value, (str, int, float, bool, tuple, Path)) else None


def environment_overrides(group: click.Group) -> list[Setting]:
    """The ``DAYDREAM_*`` variables that override files and defaults (click reads them)."""
    found = []
    commands: list[tuple[str, click.Command]] = [("", group)]
    commands += [(name, group.commands[name]) for name in SECTIONS]
    for prefix, command in commands:
        for name in _options(command):
            variable = "_".join(
                part.upper() for part in (ENV_PREFIX, prefix, name) if part
            ).replace("-", "_")
            if variable in os.environ:
                key = f"{prefix}.{name}" if prefix else name
                found.append(Setting(key, os.environ[variable], f"${variable}"))
    return found


def effective(group: click.Group, config: Config) -> list[Setting]:
    """Every setting a file or the environment can give, its value now, and its source."""
    overrides = {s.key: s for s in environment_overrides(group)}
    shown: list[Setting] = []
    commands: list[tuple[str, click.Command]] = [("", group)]
    commands += [(name, group.commands[name]) for name in SECTIONS]
    for prefix, command in commands:
        for name, option in _options(command).items():
            if name == "provider_options":
                continue
            key = f"{prefix}.{name}" if prefix else name
            if key in overrides:
                shown.append(overrides[key])
            elif key in config.settings:
                shown.append(config.settings[key])
            else:
                shown.append(Setting(key, _default(option), "default"))
    shown += [s for k, s in sorted(config.settings.items()) if k.startswith(f"{PROVIDERS}.")]
    return shown
