"""What the fake's Cloud Functions accepts: function validation, the build's checks on a
source zip, update masks, and Google API error bodies."""

from __future__ import annotations

import ast
import io
import re
import zipfile
from typing import Any

from daydream_core.errors import ConfigurationError
from daydream_gcp.options import PYTHON_RUNTIMES, check_resources, parse_memory_mb


def invalid(body: dict[str, Any]) -> str | None:
    """Why Cloud Functions would refuse this function, if it would."""
    build = body.get("buildConfig") or {}
    service = body.get("serviceConfig") or {}
    if build.get("runtime") not in PYTHON_RUNTIMES:
        return f"buildConfig.runtime {build.get('runtime')!r} is not supported"
    if not build.get("entryPoint"):
        return "buildConfig.entryPoint is required"
    if not build.get("source", {}).get("storageSource", {}).get("object"):
        return "buildConfig.source.storageSource is required"
    try:
        memory = parse_memory_mb(str(service.get("availableMemory", "256Mi")))
        cpu = float(service.get("availableCpu", "0.1666"))
        check_resources("serviceConfig", memory, cpu)
    except (ValueError, ConfigurationError) as exc:
        return f"invalid serviceConfig: {exc}"
    if cpu < 1 and int(service.get("maxInstanceRequestConcurrency", 1)) > 1:
        return "maxInstanceRequestConcurrency must be 1 with less than 1 vCPU"
    return None


def check_source(data: bytes, entry_point: str) -> str | None:
    """What the Python buildpack would stop at: no main.py, no entry point in it."""
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
    except zipfile.BadZipFile:
        return "the source is not a zip archive"
    with archive:
        names = set(archive.namelist())
        if "main.py" not in names:
            return "main.py is missing from the source"
        if "requirements.txt" not in names:
            return "requirements.txt is missing from the source"
        tree = ast.parse(archive.read("main.py"))
    defined = {n.name for n in ast.walk(tree) if isinstance(n, ast.FunctionDef)}
    for node in ast.walk(tree):
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            defined |= {a.asname or a.name for a in node.names}
    if entry_point not in defined:
        return f"function {entry_point!r} is not defined in main.py"
    return None


def get(body: dict[str, Any], path: str) -> Any:
    value: Any = body
    for part in camel(path).split("."):
        value = value.get(part) if isinstance(value, dict) else None
    return value


def set_field(body: dict[str, Any], path: str, value: Any) -> None:
    parts = camel(path).split(".")
    for part in parts[:-1]:
        body = body.setdefault(part, {})
    if value is None:
        body.pop(parts[-1], None)
    else:
        body[parts[-1]] = value


def camel(path: str) -> str:
    return re.sub(r"_([a-z])", lambda m: m.group(1).upper(), path)


def error(code: int, status: str, message: str) -> dict[str, Any]:
    return {"error": {"code": code, "message": message, "status": status}}


def not_found(name: str) -> dict[str, Any]:
    return error(404, "NOT_FOUND", f"Resource '{name}' was not found")
