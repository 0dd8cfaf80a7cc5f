"""The parser: every documented platform line format, and no input ever raises."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lambdascope.logparse import (
    envelope_messages,
    parse_line,
    parse_line_or_reason,
    scan_chunk,
)
from lambdascope.models import PlatformEvent

DATA = Path(__file__).parent / "data" / "logs"
RID = "8f5a6a2e-6c1f-4b0e-9f58-4a1d7a7b1c01"
BASE = (
    f"REPORT RequestId: {RID}\tDuration: 102.25 ms\tBilled Duration: 103 ms\t"
    "Memory Size: 512 MB\tMax Memory Used: 187 MB"
)


def test_report_with_init_duration_and_trailing_tab() -> None:
    event = parse_line(BASE + "\tInit Duration: 221.40 ms\t")
    assert event == PlatformEvent(
        kind="report",
        request_id=RID,
        duration_ms=102.25,
        billed_duration_ms=103.0,
        memory_size_mb=512,
        max_memory_used_mb=187,
        init_duration_ms=221.4,
    )


def test_report_without_trailing_tab_and_tabs_as_spaces() -> None:
    assert parse_line(BASE) == parse_line(BASE.replace("\t", "    ") + " ")
    assert parse_line(BASE.replace("\t", " ")) is not None


def test_report_with_xray_trailer() -> None:
    event = parse_line(
        BASE
        + "\t\nXRAY TraceId: 1-5e1b4151-5ac6c58b2ef2ea3f0a8b8c1b\tSegmentId: 6b4d\tSampled: true"
    )
    assert event is not None and event.max_memory_used_mb == 187


def test_snapstart_restore_durations() -> None:
    event = parse_line(BASE + "\tRestore Duration: 310.10 ms\tBilled Restore Duration: 95 ms\t")
    assert event is not None
    assert (event.restore_duration_ms, event.billed_restore_duration_ms) == (310.1, 95.0)
    assert event.init_duration_ms is None


def test_status_and_error_type() -> None:
    timeout = parse_line(BASE + "\tStatus: timeout")
    error = parse_line(BASE + "\tStatus: error\tError Type: Runtime.OutOfMemory")
    assert timeout is not None and (timeout.status, timeout.error_type) == ("timeout", None)
    assert error is not None and (error.status, error.error_type) == (
        "error",
        "Runtime.OutOfMemory",
    )


def test_leading_timestamp_and_request_id_or_stream() -> None:
    export = parse_line("2024-05-01T11:00:00.120Z " + BASE)
    tail = parse_line("2024-05-01T11:00:00.120000+00:00 2024/05/01/[$LATEST]0123abcd " + BASE)
    with_id = parse_line(f"2024-05-01T11:00:00.120Z\t{RID}\t" + BASE)
    expected = 1714561200.12
    for event in (export, tail, with_id):
        assert event is not None and event.request_id == RID
        assert abs((event.timestamp or 0) - expected) < 1e-6


def test_init_report() -> None:
    event = parse_line("INIT_REPORT Init Duration: 10003.12 ms\tPhase: init\tStatus: timeout")
    assert event == PlatformEvent(kind="init_report", init_duration_ms=10003.12, status="timeout")


def test_task_timed_out_both_forms() -> None:
    new = parse_line(f"2024-05-01T10:05:00.000Z\t{RID}\tTask timed out after 30.03 seconds")
    old = parse_line(f"2024-05-01T10:05:00.000Z {RID} Task timed out after 3.00 seconds")
    assert new is not None and new.kind == "timeout" and new.request_id == RID
    assert new.timeout_s == 30.03 and new.timestamp == 1714557900.0
    assert old is not None and old.request_id == RID and old.timeout_s == 3.0


def test_json_platform_records() -> None:
    events = [
        parse_line(line) for line in (DATA / "json" / "json_format.log").read_text().splitlines()
    ]
    kinds = [(e.kind, e.request_id, e.status) for e in events if e is not None]
    assert kinds == [
        ("init_report", None, "success"),
        ("report", "22222222-aaaa-4bbb-8ccc-000000000001", "success"),
        ("timeout", "22222222-aaaa-4bbb-8ccc-000000000002", "timeout"),
        ("report", "22222222-aaaa-4bbb-8ccc-000000000002", "timeout"),
        ("report", "22222222-aaaa-4bbb-8ccc-000000000003", "error"),
    ]
    report = events[5]
    assert report is not None
    assert (report.duration_ms, report.memory_size_mb, report.init_duration_ms) == (
        99.5,
        1024,
        300.5,
    )
    assert report.timestamp == 1714564800.401


def test_json_report_with_missing_metrics() -> None:
    line = json.dumps(
        {"time": "2024-05-01T12:00:00Z", "type": "platform.report", "record": {"requestId": "r1"}}
    )
    event = parse_line(line)
    assert event is not None and event.request_id == "r1" and event.duration_ms is None


def test_out_of_memory_messages() -> None:
    for message in (
        "Runtime.OutOfMemory",
        "fatal error: runtime: out of memory",
        "Exception in thread main java.lang.OutOfMemoryError: Java heap space",
        "FATAL ERROR: Reached heap limit Allocation failed - JavaScript heap out of memory",
        "[ERROR] MemoryError",
    ):
        event = parse_line(f"2024-05-01T10:00:00.000Z\t{RID}\t{message}")
        assert event is not None, message
        assert (event.kind, event.request_id) == ("out_of_memory", RID)
    assert parse_line(f"{RID} saved MemoryErrorCount metric") is None


def test_application_lines_are_not_events() -> None:
    assert parse_line("START RequestId: x Version: $LATEST") is None
    assert parse_line(f"END RequestId: {RID}") is None
    assert parse_line('{"level":"INFO","message":"REPORTS generated"}') is None


def test_bad_report_lines_give_a_reason() -> None:
    assert parse_line_or_reason(f"REPORT RequestId: {RID}\tDuration: abc ms") == "bad_report"
    assert parse_line_or_reason(f"REPORT RequestId: {RID}\tMemory Size: 128 MB") == "bad_report"
    assert parse_line_or_reason("INIT_REPORT Phase: init") == "bad_report"


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=400))
def test_random_bytes_never_raise(data: bytes) -> None:
    text = data.decode("utf-8", "replace")
    parse_line(text)
    parse_line("REPORT RequestId: " + text)
    parse_line('{"type":"platform.report","record":' + text)
    scan_chunk(data + b"\nREPORT " + data)


@settings(max_examples=200, deadline=None)
@given(
    st.recursive(
        st.none() | st.booleans() | st.floats() | st.integers() | st.text(max_size=20),
        lambda children: (
            st.lists(children, max_size=4)
            | st.dictionaries(
                st.sampled_from(["logGroup", "logEvents", "events", "message", "timestamp", "x"]),
                children,
                max_size=4,
            )
        ),
        max_leaves=20,
    )
)
def test_random_envelopes_never_raise(obj: object) -> None:
    if isinstance(obj, dict):
        list(envelope_messages(obj))
    parse_line(json.dumps({"type": "platform.report", "time": "x", "record": obj}))


def test_scan_chunk_takes_nearest_earlier_timestamp_else_default() -> None:
    chunk = (
        BASE + "\n"
        "2024-05-01T10:00:00.000Z\tabc\tINFO\thello\n"
        "REPORT RequestId: r2\tDuration: 1.00 ms\tBilled Duration: 1 ms\t"
        "Memory Size: 128 MB\tMax Memory Used: 40 MB\n"
    ).encode()
    found = scan_chunk(chunk, default_timestamp=100.0, function_name="fn")
    assert [(e.request_id, e.timestamp, e.function_name) for e in found.events] == [
        (RID, 100.0, "fn"),
        ("r2", 1714557600.0, "fn"),
    ]
    assert found.lines == 3
    carried = scan_chunk(BASE.encode(), previous_timestamp=5.0, default_timestamp=100.0)
    assert carried.events[0].timestamp == 5.0


_RID = "8f5a6a2e-6c1f-4b0e-9f58-4a1d7a7b1c01"
_CANONICAL = (
    f"REPORT RequestId: {_RID}\tDuration: 102.25 ms\tBilled Duration: 103 ms\t"
    "Memory Size: 512 MB\tMax Memory Used: 187 MB"
)


@pytest.mark.parametrize(
    ("line", "request_id", "timestamp"),
    [
        (_CANONICAL.replace(f"RequestId: {_RID}\t", ""), None, None),
        (_CANONICAL.replace(_RID, ""), None, None),
        (_CANONICAL.replace("\t", " "), _RID, None),
        (_CANONICAL.replace("\tMemory", " Memory"), _RID, None),
        (_CANONICAL.replace("\t", "\\t") + "\\n", _RID, None),
        ("2024-05-01T10:00:00.5Z\\t" + _CANONICAL.replace("\t", "\\t"), _RID, 1714557600.5),
        (
            '{"time":"2024-05-01T10:00:00.5Z","message":"'
            + _CANONICAL.replace("\t", "\\\\t")
            + '\\\\n"}',
            _RID,
            1714557600.5,
        ),
    ],
    ids=["no-id", "empty-id", "spaces", "one-space", "escaped", "escaped-ts", "double-json"],
)
def test_report_variants_read_every_field(
    line: str, request_id: str | None, timestamp: float | None
) -> None:
    event = parse_line(line)
    assert event is not None and event.kind == "report"
    assert (event.request_id, event.timestamp) == (request_id, timestamp)
    assert (event.duration_ms, event.billed_duration_ms) == (102.25, 103.0)
    assert (event.memory_size_mb, event.max_memory_used_mb) == (512, 187)


@pytest.mark.parametrize(
    ("line", "request_id"),
    [
        ("2024-05-01T10:00:00.123Z\tabc123\tTask timed out after 3.00 seconds", "abc123"),
        ("2024-05-01T10:00:00.123Z abc-123-x Task timed out after 3.00 seconds", "abc-123-x"),
        ("2024-05-01T10:00:00.123Z\\tabc123\\tTask timed out after 3.00 seconds", "abc123"),
        (
            '{"time":"2024-05-01T10:00:00.123Z","requestId":"abc123",'
            '"message":"Task timed out after 3.00 seconds"}',
            "abc123",
        ),
        # a level word is not an id; an id elsewhere in an application line is not taken
        ("2024-05-01T10:00:00.123Z ERROR Task timed out after 3.00 seconds", None),
        ("2024-05-01T10:00:00.123Z\tabc123\tjob 42 Task timed out after 3.00 seconds", None),
    ],
)
def test_timeouts_keep_request_ids_that_are_not_uuids(line: str, request_id: str | None) -> None:
    event = parse_line(line)
    assert event is not None and event.kind == "timeout"
    assert (event.request_id, event.timestamp, event.timeout_s) == (
        request_id,
        1714557600.123,
        3.0,
    )
