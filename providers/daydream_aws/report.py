"""Lambda's per-invocation REPORT: what was measured and billed, parsed from the log tail.

A synchronous invocation with ``LogType="Tail"`` returns the last 4 KB of its log, base64
encoded, in ``x-amz-log-result``. Its last line is the platform's report, in text format::

    REPORT RequestId: 3c9b…\tDuration: 102.25 ms\tBilled Duration: 1284 ms\t
    Memory Size: 5120 MB\tMax Memory Used: 71 MB\tInit Duration: 1180.73 ms\t

or, for functions logging in JSON format, a ``platform.report`` record. Both are read here.
``Init Duration`` appears only when the invocation ran the init (a cold start); since August
2025 the init is billed, so ``Billed Duration`` includes it. A SnapStart version's new
environment restores a snapshot instead: ``Restore Duration`` (the restore, charged per GB
restored) and ``Billed Restore Duration`` (its runtime hooks, billed as duration) replace
``Init Duration``.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from dataclasses import dataclass

_FIELD = re.compile(
    r"(RequestId|Billed Restore Duration|Restore Duration|Billed Duration|Init Duration|"
    r"Duration|Memory Size|Max Memory Used|Status|Error Type): (\S+)"
)
_REQUIRED = ("Duration", "Billed Duration", "Memory Size", "Max Memory Used")


@dataclass(frozen=True)
class Report:
    """One invocation's platform report."""

    request_id: str
    duration_ms: float
    billed_ms: float
    memory_mb: int
    max_memory_used_mb: float
    init_ms: float | None = None  # present only when the init ran for this invocation
    status: str | None = None  # "timeout", "error", ... when the platform says so
    error_type: str | None = None
    restore_ms: float | None = None  # present only when the environment restored a snapshot
    billed_restore_ms: float | None = None

    def line(self) -> str:
        """The report as Lambda writes it in text format (one line, tab separated)."""
        parts = [
            f"REPORT RequestId: {self.request_id}",
            f"Duration: {self.duration_ms:.2f} ms",
            f"Billed Duration: {self.billed_ms:.0f} ms",
            f"Memory Size: {self.memory_mb} MB",
            f"Max Memory Used: {self.max_memory_used_mb:.0f} MB",
        ]
        if self.init_ms is not None:
            parts.append(f"Init Duration: {self.init_ms:.2f} ms")
        if self.restore_ms is not None:
            parts.append(f"Restore Duration: {self.restore_ms:.2f} ms")
            parts.append(f"Billed Restore Duration: {self.billed_restore_ms or 0:.0f} ms")
        if self.status is not None:
            parts.append(f"Status: {self.status}")
        if self.error_type is not None:
            parts.append(f"Error Type: {self.error_type}")
        return "\t".join(parts) + "\t"


def decode_log_result(log_result: str | None) -> str:
    """The log tail of an invocation from the base64 ``LogResult`` (empty when absent)."""
    if not log_result:
        return ""
    try:
        return base64.b64decode(log_result).decode("utf-8", errors="replace")
    except (binascii.Error, ValueError):
        return ""


def parse_report(log: str) -> Report | None:
    """The last platform report in a log tail, text or JSON format; None when there is none."""
    for line in reversed(log.splitlines()):
        stripped = line.strip()
        if stripped.startswith("REPORT "):
            report = _parse_text(stripped)
        elif stripped.startswith("{") and "platform.report" in stripped:
            report = _parse_json(stripped)
        else:
            continue
        if report is not None:
            return report
    return None


def _parse_text(line: str) -> Report | None:
    found = {key: value for key, value in _FIELD.findall(line)}
    if any(key not in found for key in _REQUIRED):
        return None
    try:
        return Report(
            request_id=found.get("RequestId", ""),
            duration_ms=float(found["Duration"]),
            billed_ms=float(found["Billed Duration"]),
            memory_mb=int(float(found["Memory Size"])),
            max_memory_used_mb=float(found["Max Memory Used"]),
            init_ms=float(found["Init Duration"]) if "Init Duration" in found else None,
            status=found.get("Status"),
            error_type=found.get("Error Type"),
            restore_ms=_optional(found.get("Restore Duration")),
            billed_restore_ms=_optional(found.get("Billed Restore Duration")),
        )
    except ValueError:
        return None


def _parse_json(line: str) -> Report | None:
    try:
        event = json.loads(line)
        if event.get("type") != "platform.report":
            return None
        record = event["record"]
        metrics = record["metrics"]
        init = metrics.get("initDurationMs")
        return Report(
            request_id=str(record.get("requestId", "")),
            duration_ms=float(metrics["durationMs"]),
            billed_ms=float(metrics["billedDurationMs"]),
            memory_mb=int(metrics["memorySizeMB"]),
            max_memory_used_mb=float(metrics["maxMemoryUsedMB"]),
            init_ms=float(init) if init is not None else None,
            status=record.get("status"),
            error_type=record.get("errorType"),
            restore_ms=_optional(metrics.get("restoreDurationMs")),
            billed_restore_ms=_optional(metrics.get("billedRestoreDurationMs")),
        )
    except (ValueError, KeyError, TypeError, AttributeError):
        return None


def _optional(value: object) -> float | None:
    return None if value is None else float(value)  # type: ignore[arg-type]
