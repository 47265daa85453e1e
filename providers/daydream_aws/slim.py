"""Slimming a runtime environment: drop what no function imports, strip debug symbols.

A pip-installed site holds much that an instance never reads: test suites, bytecode caches,
C headers, static libraries, type stubs, Cython and C sources, documentation. Dropping them
is what lets CCL's environment fit in a Lambda layer. The rules are by path, with two
safety nets:

- a dropped folder that is a Python package stays when the distribution's own code imports it
  (``astropy/__init__.py`` imports ``astropy.tests.runner``, for one);
- nothing inside ``*.dist-info`` is touched (metadata that ``importlib.metadata`` reads, and
  the licences that must ship with the code).

Shared objects that carry DWARF sections are stripped with ``strip --strip-debug`` (binutils),
which removes only ``.debug_*`` sections and keeps every symbol the dynamic loader or a
debugger's backtrace uses. Libraries that auditwheel grafted into ``<dist>.libs/`` are left
as they are: patchelf rewrote them, and binutils may mis-lay such files out. Without a
``strip`` on PATH the step is skipped and the report says so.

Sizes are reported per distribution (from each ``*.dist-info/RECORD``), before and after.
"""

from __future__ import annotations

import os
import re
import shutil
import struct
import subprocess
import tempfile
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

SLIM_VERSION = 1  # part of the cache key of a slimmed site: bump when the rules change

_DROPPED_DIRS = {
    "__pycache__": "caches",
    "tests": "tests",
    "test": "tests",
    "doc": "docs",
    "docs": "docs",
    "examples": "docs",
}
_DROPPED_SUFFIXES = {
    ".pyc": "caches",
    ".pyo": "caches",
    ".h": "headers",
    ".hh": "headers",
    ".hpp": "headers",
    ".hxx": "headers",
    ".a": "static libraries",
    ".lib": "static libraries",
    ".pyi": "type stubs",
    ".pyx": "sources",
    ".pxd": "sources",
    ".pxi": "sources",
    ".c": "sources",
    ".cc": "sources",
    ".cpp": "sources",
    ".f": "sources",
    ".f90": "sources",
    ".rst": "docs",
    ".md": "docs",
}
_IMPORT = re.compile(
    rb"^[ \t]*(?:from[ \t]+(\.*[\w.]*)[ \t]+import[ \t]+([\w., \t()]+)|import[ \t]+([\w.]+))",
    re.M,
)


@dataclass(frozen=True)
class PackageSize:
    """One distribution (or top-level folder) of the environment, before and after."""

    name: str
    before: int
    after: int


@dataclass(frozen=True)
class SlimReport:
    """What slimming removed, by distribution and by reason."""

    packages: tuple[PackageSize, ...]
    dropped: Mapping[str, int] = field(default_factory=dict)  # reason -> bytes
    stripped_bytes: int = 0  # saved by stripping debug sections
    stripped_files: int = 0
    strip_tool: str | None = None  # None: no `strip` on PATH, nothing was stripped
    kept_packages: tuple[str, ...] = ()  # dropped-looking packages kept: their code imports them

    @property
    def before(self) -> int:
        return sum(p.before for p in self.packages)

    @property
    def after(self) -> int:
        return sum(p.after for p in self.packages)


def drop_reason(relative: PurePosixPath) -> str | None:
    """Why the file at `relative` (inside a site) is not shipped; None when it is."""
    parts = relative.parts
    if not parts or parts[0].endswith(".dist-info"):
        return None
    for part in parts[:-1]:
        if part in _DROPPED_DIRS:
            return _DROPPED_DIRS[part]
    return _DROPPED_SUFFIXES.get(PurePosixPath(parts[-1]).suffix.lower())


def _dropped_dir(relative: PurePosixPath) -> PurePosixPath | None:
    for index, part in enumerate(relative.parts[:-1]):
        if part in _DROPPED_DIRS:
            return PurePosixPath(*relative.parts[: index + 1])
    return None


def imported_names(source: bytes, module: str, is_package: bool) -> set[str]:
    """Dotted names that `source` (module `module`) imports, relative imports resolved."""
    package = module if is_package else module.rpartition(".")[0]
    names: set[str] = set()
    for base, imported, plain in _IMPORT.findall(source):
        if plain:
            names.add(plain.decode())
            continue
        text = base.decode()
        level = len(text) - len(text.lstrip("."))
        target = text[level:]
        if level:
            anchor = package.split(".")
            anchor = anchor[: len(anchor) - (level - 1)] if level > 1 else anchor
            target = ".".join([*anchor, target] if target else anchor)
        names.add(target)
        for name in imported.decode().replace("(", " ").replace(")", " ").split(","):
            word = name.strip().split(" ")[0]
            if word.isidentifier():
                names.add(f"{target}.{word}")
    return names


def _module_name(relative: PurePosixPath) -> tuple[str, bool]:
    parts = list(relative.with_suffix("").parts)
    is_package = parts[-1] == "__init__"
    if is_package:
        parts.pop()
    return ".".join(parts), is_package


def imported_dropped_packages(files: Mapping[PurePosixPath, Path]) -> set[PurePosixPath]:
    """Dropped folders that are packages imported by the code that is kept."""
    candidates: dict[str, PurePosixPath] = {}
    for relative in files:
        folder = _dropped_dir(relative)
        if folder is not None and relative == folder / "__init__.py":
            candidates[".".join(folder.parts)] = folder
    if not candidates:
        return set()
    words = {name.rpartition(".")[2].encode() for name in candidates}
    kept: set[PurePosixPath] = set()
    for relative, path in files.items():
        if relative.suffix != ".py" or drop_reason(relative) is not None:
            continue
        source = path.read_bytes()
        if not any(word in source for word in words):
            continue
        module, is_package = _module_name(relative)
        for name in imported_names(source, module, is_package):
            for dotted, folder in candidates.items():
                if name == dotted or name.startswith(dotted + "."):
                    kept.add(folder)
    return kept


def distribution_of(site: Path, files: Iterable[PurePosixPath]) -> dict[PurePosixPath, str]:
    """The distribution each file belongs to, from the RECORDs (else its top-level folder)."""
    owner: dict[PurePosixPath, str] = {}
    for record in sorted(site.glob("*.dist-info/RECORD")):
        name = _distribution(record.parent.name)
        for line in record.read_text(errors="replace").splitlines():
            entry = line.rsplit(",", 2)[0].strip('"')
            if entry and not entry.startswith(".."):
                owner[PurePosixPath(entry)] = name
    return {f: owner.get(f, _distribution(f.parts[0])) for f in files}


def _distribution(top: str) -> str:
    if top.endswith(".dist-info"):
        return top.removesuffix(".dist-info").rpartition("-")[0] or top
    return top.removesuffix(".libs")


def has_debug_sections(path: Path) -> bool:
    """Whether `path` is an ELF file with ``.debug_*`` sections (read from its headers)."""
    try:
        with path.open("rb") as handle:
            ident = handle.read(16)
            if ident[:4] != b"\x7fELF" or ident[4] not in (1, 2) or ident[5] not in (1, 2):
                return False
            wide, order = ident[4] == 2, "<" if ident[5] == 1 else ">"
            header = handle.read(48 if wide else 36)
            layout = "HHIQQQIHHHHHH" if wide else "HHIIIIIHHHHHH"
            fields = struct.unpack(order + layout, header)
            shoff, shentsize, shnum, shstrndx = fields[5], fields[10], fields[11], fields[12]
            if not shoff or not shnum or shstrndx >= shnum:
                return False
            entry = "IIQQQQIIQQ" if wide else "IIIIIIIIII"
            sections = []
            for index in range(shnum):
                handle.seek(shoff + index * shentsize)
                sections.append(struct.unpack(order + entry, handle.read(shentsize)))
            names = sections[shstrndx]
            handle.seek(names[4])
            table = handle.read(names[5])
    except (OSError, struct.error):
        return False
    for section in sections:
        start = section[0]
        name = table[start : table.find(b"\0", start)]
        if name.startswith(b".debug_"):
            return True
    return False


def strip_debug(source: Path, destination: Path, tool: str) -> bool:
    """Write `source` without its debug sections to `destination`; False when that failed or
    left something unexpected (the caller then ships the original)."""
    done = subprocess.run(
        [tool, "--strip-debug", "-o", str(destination), str(source)],
        capture_output=True,
        check=False,
        timeout=120,
    )
    if done.returncode != 0 or not destination.is_file():
        return False
    return not has_debug_sections(destination) and destination.stat().st_size > 0


def _link_or_copy(source: Path, destination: Path) -> None:
    destination.parent.mkdir(parents=True, exist_ok=True)
    try:
        os.link(source, destination)
    except OSError:
        shutil.copy2(source, destination)


def slim_site(site: Path, destination: Path, *, strip: bool = True) -> SlimReport:
    """Write a slimmed copy of `site` to `destination` (kept files hard-linked); report it.

    `destination` must not exist; it is written next to itself and renamed into place, so an
    interrupted build leaves no half copy behind."""
    files = {
        PurePosixPath(path.relative_to(site).as_posix()): path
        for path in sorted(site.rglob("*"))
        if path.is_file() and not path.is_symlink()
    }
    kept_dirs = imported_dropped_packages(files)
    tool = shutil.which("strip") if strip else None
    owners = distribution_of(site, files)
    before: Counter[str] = Counter()
    after: Counter[str] = Counter()
    dropped: Counter[str] = Counter()
    stripped_bytes = stripped_files = 0
    staging = Path(tempfile.mkdtemp(prefix=f".{destination.name}-", dir=destination.parent))
    try:
        for relative, path in files.items():
            size = path.stat().st_size
            owner = owners[relative]
            before[owner] += size
            reason = drop_reason(relative)
            if reason is not None and _dropped_dir(relative) in kept_dirs:
                reason = _DROPPED_SUFFIXES.get(relative.suffix.lower())
            if reason is not None:
                dropped[reason] += size
                continue
            target = staging / relative
            if tool and _strippable(relative) and has_debug_sections(path):
                target.parent.mkdir(parents=True, exist_ok=True)
                if strip_debug(path, target, tool):
                    saved = size - target.stat().st_size
                    stripped_bytes += saved
                    stripped_files += 1
                    after[owner] += size - saved
                    continue
                target.unlink(missing_ok=True)
            _link_or_copy(path, target)
            after[owner] += size
        os.replace(staging, destination)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    packages = tuple(
        PackageSize(name, before[name], after[name])
        for name in sorted(before, key=lambda n: (-before[n], n))
    )
    return SlimReport(
        packages,
        dict(dropped),
        stripped_bytes,
        stripped_files,
        tool,
        tuple(sorted(".".join(d.parts) for d in kept_dirs)),
    )


def _strippable(relative: PurePosixPath) -> bool:
    name = relative.name
    shared = name.endswith(".so") or ".so." in name
    return shared and not relative.parts[0].endswith(".libs")
