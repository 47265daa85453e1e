"""The files of an importable package, as a cloud adapter ships them to its functions."""

from __future__ import annotations

import importlib.util
from collections.abc import Iterator
from pathlib import Path

from daydream_core.errors import ConfigurationError

SKIP_DIRS = frozenset({"__pycache__", ".git", ".mypy_cache", ".pytest_cache", ".ruff_cache"})


def top_level(module: str) -> str:
    return module.partition(".")[0]


def package_files(name: str) -> Iterator[tuple[str, Path]]:
    """(path relative to the import root, file) for every file of the top-level `name`."""
    spec = importlib.util.find_spec(name)
    if spec is None:
        raise ConfigurationError(f"cannot package {name!r}: it is not importable here")
    locations = list(spec.submodule_search_locations or [])
    if not locations:
        if spec.origin is None:
            raise ConfigurationError(f"cannot package {name!r}: it has no source file")
        origin = Path(spec.origin)
        yield origin.name, origin
        return
    for location in locations:
        root = Path(location)
        for path in sorted(root.rglob("*")):
            relative = path.relative_to(root)
            if path.is_dir() or SKIP_DIRS.intersection(relative.parts):
                continue
            if path.suffix in (".pyc", ".pyo"):
                continue
            yield (Path(name) / relative).as_posix(), path
