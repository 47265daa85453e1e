"""Lambda's REPORT line, parsed from the log tail (text and JSON log formats)."""

from __future__ import annotations

import base64
import json

from daydream_aws.report import Report, decode_log_result, parse_report
from hypothesis import given
from hypothesis import strategies as st

COLD_TAIL = (
    "INIT_START Runtime Version: python:3.12.v38\tRuntime Version ARN: arn:aws:lambda:us-east-1"
    "::runtime:abc\n"
    "START RequestId: 6d3f2a1e-1c2b-4f7a-9a1e-0b8d1c2e3f4a Version: $LATEST\n"
    "component says hello\n"
    "END RequestId: 6d3f2a1e-1c2b-4f7a-9a1e-0b8d1c2e3f4a\n"
    "REPORT RequestId: 6d3f2a1e-1c2b-4f7a-9a1e-0b8d1c2e3f4a\tDuration: 102.25 ms\t"
    "Billed Duration: 1284 ms\tMemory Size: 5120 MB\tMax Memory Used: 71 MB\t"
    "Init Duration: 1180.73 ms\t\n"
)


def test_cold_report_with_init_duration() -> None:
    report = parse_report(COLD_TAIL)
    assert report == Report(
        request_id="6d3f2a1e-1c2b-4f7a-9a1e-0b8d1c2e3f4a",
        duration_ms=102.25,
        billed_ms=1284.0,
        memory_mb=5120,
        max_memory_used_mb=71.0,
        init_ms=1180.73,
    )


def test_warm_report_has_no_init_duration() -> None:
    line = (
        "REPORT RequestId: r1\tDuration: 2.83 ms\tBilled Duration: 3 ms\t"
        "Memory Size: 128 MB\tMax Memory Used: 38 MB\t"
    )
    report = parse_report(line)
    assert report is not None
    assert report.init_ms is None
    assert (report.duration_ms, report.billed_ms, report.memory_mb) == (2.83, 3.0, 128)


def test_timeout_report_with_status_and_xray_suffix() -> None:
    line = (
        "REPORT RequestId: r2\tDuration: 3003.30 ms\tBilled Duration: 3000 ms\t"
        "Memory Size: 10240 MB\tMax Memory Used: 90 MB\tStatus: timeout\t\n"
        "XRAY TraceId: 1-5e1b4151-5ac6c58f5b1e2e1e2b0b0d4e\tSegmentId: 1\tSampled: true\n"
    )
    report = parse_report(line)
    assert report is not None and report.status == "timeout"
    assert report.billed_ms == 3000.0


def test_json_log_format_platform_report() -> None:
    record = {
        "time": "2025-09-01T10:00:00.000Z",
        "type": "platform.report",
        "record": {
            "requestId": "r3",
            "metrics": {
                "durationMs": 12.5,
                "billedDurationMs": 260,
                "memorySizeMB": 5120,
                "maxMemoryUsedMB": 80,
                "initDurationMs": 247.1,
            },
            "status": "success",
        },
    }
    report = parse_report('{"type": "platform.start"}\n' + json.dumps(record) + "\n")
    assert report == Report("r3", 12.5, 260.0, 5120, 80.0, 247.1, "success")


def test_no_report_or_incomplete_report() -> None:
    assert parse_report("") is None
    assert parse_report("START RequestId: x\nEND RequestId: x\n") is None
    assert parse_report("REPORT RequestId: x\tDuration: 1.00 ms\t") is None


def test_the_last_report_wins() -> None:
    first = "REPORT RequestId: a\tDuration: 1 ms\tBilled Duration: 1 ms\tMemory Size: 128 MB\t"
    first += "Max Memory Used: 1 MB\t"
    assert parse_report(first + "\n" + COLD_TAIL).request_id.startswith("6d3f")  # type: ignore[union-attr]


def test_log_result_is_base64() -> None:
    assert decode_log_result(base64.b64encode(COLD_TAIL.encode()).decode()) == COLD_TAIL
    assert decode_log_result(None) == ""
    assert decode_log_result("!!! not base64 !!!") == ""


@given(
    duration=st.integers(min_value=0, max_value=900_000_00).map(lambda c: c / 100),
    billed=st.integers(min_value=0, max_value=901_000),
    memory=st.integers(min_value=128, max_value=10240),
    used=st.integers(min_value=0, max_value=10240),
    init=st.none() | st.integers(min_value=0, max_value=10_000_00).map(lambda c: c / 100),
    status=st.none() | st.sampled_from(["timeout", "error"]),
)
def test_line_round_trips(
    duration: float, billed: int, memory: int, used: int, init: float | None, status: str | None
) -> None:
    report = Report("req", duration, float(billed), memory, float(used), init, status)
    assert parse_report("START RequestId: req\n" + report.line() + "\n") == report
