"""Real-world log shapes (tests/data/realworld, sources in its README): what
``lambdascope parse`` prints for each, field by field, and the parser's behaviour on
the spellings found in the wild."""

from __future__ import annotations

import io
import json
import math
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from hypothesis import given, settings
from hypothesis import strategies as st

from collectors.local import iter_batches
from lambdascope.cli import cli
from lambdascope.logparse import (
    envelope_messages,
    parse_line,
    parse_line_or_reason,
    scan_chunk,
    utf8_blocks,
)
from lambdascope.models import PlatformEvent
from tests.test_cli_parse import KEYS  # the keys `lambdascope parse` prints, in order

REAL = Path(__file__).parent / "data" / "realworld"
EXPECTED = sorted((REAL / "expected").glob("*.jsonl"))
NUMBER_KEYS = KEYS[4:11]


def _fixture(expected: Path) -> Path:
    name = expected.name.removesuffix(".jsonl")
    (found,) = [p for p in REAL.rglob(name) if "expected" not in p.parts]
    return found


def _parse_cli(path: Path) -> list[dict[str, Any]]:
    result = CliRunner().invoke(cli, ["parse", str(path)])
    assert result.exit_code == 0, result.output
    return [json.loads(line) for line in result.output.splitlines()]


def test_every_fixture_is_documented_and_checked() -> None:
    readme = (REAL / "README.md").read_text()
    fixtures = [p for p in REAL.rglob("*") if p.is_file() and p.parent.name != "expected"]
    fixtures = [p for p in fixtures if p.name != "README.md"]
    assert len(fixtures) >= 12
    for path in fixtures:
        assert f"`{path.relative_to(REAL)}`" in readme, path
        assert (REAL / "expected" / f"{path.name}.jsonl").exists(), path


@pytest.mark.parametrize("expected", EXPECTED, ids=lambda p: p.name.removesuffix(".jsonl"))
def test_parse_prints_exactly_the_expected_events(expected: Path) -> None:
    objects = _parse_cli(_fixture(expected))
    want = [json.loads(line) for line in expected.read_text().splitlines()]
    assert objects == want
    for obj in objects:
        assert list(obj) == KEYS
        assert obj["kind"] in ("report", "init_report", "timeout")
        assert obj["status"] in (None, "success", "error", "timeout")
        for key in NUMBER_KEYS:
            value = obj[key]
            assert value is None or (type(value) in (int, float) and value >= 0), (key, value)


def test_glued_fields_of_a_terminal_copy_keep_their_own_values() -> None:
    # "6.46 msBilled": a tab that fell on a tab stop vanished in the copy
    first = _parse_cli(REAL / "text" / "aws-logs-tail.log")[0]
    assert (first["duration_ms"], first["billed_duration_ms"], first["init_duration_ms"]) == (
        6.46,
        7.0,
        213.2,
    )
    assert first["timestamp"] == "2023-04-05T00:45:20.696Z"


def test_timestamps_after_a_stream_name_or_a_console_column() -> None:
    sam = parse_line(
        "2023/06/02/[72]88ab219a63d343d294d0a9947e8ab36a 2023-06-02T11:27:25.060000 "
        "REPORT RequestId: r\tDuration: 1.00 ms\tBilled Duration: 1 ms\t"
        "Memory Size: 128 MB\tMax Memory Used: 40 MB"
    )
    table = parse_line(
        "  | 2022-10-04T12:23:04.626-04:00 | REPORT RequestId: r Duration: 3031.25 ms "
        "Billed Duration: 4326 ms Memory Size: 128 MB Max Memory Used: 60 MB"
    )
    assert sam is not None and sam.timestamp == pytest.approx(1685705245.06)
    assert table is not None and table.timestamp == pytest.approx(1664900584.626)
    assert table.billed_duration_ms == 4326.0


@pytest.mark.parametrize(
    ("stamp", "epoch"),
    [
        ("2024-05-01T11:00:00Z", 1714561200.0),
        ("2024-05-01T11:00:00.5Z", 1714561200.5),
        ("2024-05-01T11:00:00", 1714561200.0),
        ("2024-05-01 11:00:00.120", 1714561200.12),
        ("2024-05-01T13:00:00+02:00", 1714561200.0),
        ("2024-05-01T06:00:00.000-0500", 1714561200.0),
        ("2024-05-01T11:00:00.123456789Z", 1714561200.123456789),
    ],
)
def test_leading_timestamp_spellings(stamp: str, epoch: float) -> None:
    event = parse_line(f"{stamp} r1 Task timed out after 3.00 seconds")
    assert event is not None and event.timestamp == pytest.approx(epoch, abs=1e-6)


def test_json_escaped_platform_lines_are_unwrapped_not_misread() -> None:
    # read raw, "\\tDuration:" became part of the request id and Duration the billed value
    rows = _parse_cli(REAL / "json" / "shipper-json-lines.log")
    assert rows[0]["request_id"] == "fb63a8b6-599d-11e8-a437-911ac44bc0b4"
    assert (rows[0]["duration_ms"], rows[0]["billed_duration_ms"]) == (18018.26, 18000.0)
    assert rows[0]["timestamp"] == "2018-05-17T06:46:28.000Z"  # the line's +08:00 time in UTC
    assert rows[1]["timestamp"] == "2018-05-17T06:46:28.161Z"  # the message's own time
    insights = _parse_cli(REAL / "json" / "logs-insights-export.json")
    assert [(r["status"], r["timestamp"]) for r in insights] == [
        ("timeout", "2026-06-25T23:59:41.096Z"),
        (None, "2025-08-15T12:44:57.964Z"),
    ]
    record = {"requestId": "q", "metrics": {"durationMs": 2.5}}
    platform = {"time": "2024-05-01T00:00:00Z", "type": "platform.report", "record": record}
    escaped_json = json.dumps({"message": json.dumps(platform)})
    event = parse_line(escaped_json)
    assert event is not None and (event.kind, event.request_id, event.duration_ms) == (
        "report",
        "q",
        2.5,
    )


def test_runtime_done_never_makes_a_report_and_marks_only_timeouts_and_oom() -> None:
    def done(record: dict[str, Any]) -> PlatformEvent | None:
        envelope = {"time": "2024-05-01T00:00:00Z", "type": "platform.runtimeDone"}
        return parse_line(json.dumps({**envelope, "record": record}))

    assert done({"requestId": "a", "status": "success"}) is None
    assert done({"requestId": "a", "status": "error", "errorType": "Runtime.ExitError"}) is None
    timeout = done({"requestId": "a", "status": "timeout"})
    oom = done({"requestId": "a", "status": "error", "errorType": "Runtime.OutOfMemory"})
    assert timeout is not None and timeout.kind == "timeout"
    assert oom is not None and (oom.kind, oom.error_type) == (
        "out_of_memory",
        "Runtime.OutOfMemory",
    )


def test_telemetry_failure_status_counts_as_error() -> None:
    record = {"requestId": "f", "status": "failure", "errorType": "X", "metrics": {}}
    line = json.dumps({"time": "2024-05-01T00:00:00Z", "type": "platform.report", "record": record})
    event = parse_line(line)
    assert event is not None and (event.status, event.error_type) == ("error", "X")
    assert parse_line("REPORT RequestId: f\tDuration: 1 ms\tStatus: failure") is not None


@pytest.mark.parametrize(
    ("fields", "memory", "used", "duration"),
    [
        ("Duration: 0.99 ms\tMemory Size: 128 MB\tMax Memory Used: 40 MB", 128, 40, 0.99),
        ("Duration: 0.99 ms\tMemory Size: 128 MiB\tMax Memory Used: 40 MiB", 128, 40, 0.99),
        ("Duration: 1.5 s\tMemory Size: 1 GB\tMax Memory Used: 700 MB", 1024, 700, 1500.0),
        ("Duration: 2ms\tMemory Size: 2GiB\tMax Memory Used: 1.5 GB", 2048, 1536, 2.0),
        ("Duration: 3 ms Memory Size: 512 MB Max Memory Used: 65536 KB", 512, 64, 3.0),
    ],
)
def test_units_other_than_ms_and_mb(fields: str, memory: int, used: int, duration: float) -> None:
    event = parse_line(f"REPORT RequestId: u\t{fields}")
    assert event is not None
    assert (event.memory_size_mb, event.max_memory_used_mb) == (memory, used)
    assert event.duration_ms == pytest.approx(duration)


def test_line_end_and_encoding_accidents() -> None:
    base = "REPORT RequestId: c\tDuration: 1.00 ms\tBilled Duration: 1 ms\tMemory Size: 128 MB"
    plain = parse_line(base)
    assert plain is not None
    assert parse_line(base + "\r") == plain  # CRLF
    assert parse_line(base.replace("\t", "\r\t", 1)) == plain  # a stray \r in the middle
    assert parse_line("\ufeff" + base) == plain
    bom_ts = parse_line("\ufeff2024-05-01T11:00:00Z " + base)
    assert bom_ts is not None and bom_ts.timestamp == 1714561200.0
    assert parse_line_or_reason(base.replace("1.00", "1.0.0")) == "bad_report"


def test_utf16_and_bom_files_read_as_utf8() -> None:
    utf16 = (REAL / "text" / "windows-powershell-utf16.log").read_bytes()
    blocks = [utf16[i : i + 33] for i in range(0, len(utf16), 33)]  # splits code units
    text = b"".join(utf8_blocks(blocks))
    legacy = (REAL / "text" / "legacy-runtimes.log").read_bytes()
    assert text == legacy.replace(b"\n", b"\r\n")
    found = scan_chunk(text).events
    assert [(e.kind, e.request_id) for e in found] == [
        ("report", "b47cde10-029a-11e6-b5d6-1f01b70b94b2"),
        ("timeout", "b47cde10-029a-11e6-b5d6-1f01b70b94b2"),
        ("timeout", "fb63a8b6-599d-11e8-a437-911ac44bc0b4"),
    ]
    assert b"".join(utf8_blocks([b"\xef\xbb\xbf", b'{"events": []}'])) == b'{"events": []}'
    assert list(utf8_blocks([b"\xef\xbb\xbf"])) == []
    assert b"".join(utf8_blocks([b"ab", b"c"])) == b"abc"
    junk = b"\xff\xfe bad \xc3\x28\nREPORT RequestId: x"  # starts like a UTF-16 BOM, is not
    assert b"".join(utf8_blocks([junk])) == junk


def test_envelope_file_saved_with_a_bom_is_still_an_envelope() -> None:
    report = "REPORT RequestId: b\tDuration: 1.00 ms\tBilled Duration: 1 ms"
    record = {
        "logGroup": "/aws/lambda/bom-fn",
        "logEvents": [{"timestamp": 1714561200000, "message": report}],
    }
    raw = io.BytesIO(b"\xef\xbb\xbf" + json.dumps(record).encode())
    events = [e for batch, _ in iter_batches(raw) for e in batch.events]
    assert [(e.function_name, e.request_id, e.timestamp) for e in events] == [
        ("bom-fn", "b", 1714561200.0)
    ]


def test_out_of_memory_lines_of_each_runtime() -> None:
    raw = io.BytesIO((REAL / "text" / "init-and-runtime-errors.log").read_bytes())
    marks = [
        (e.request_id, e.error_type)
        for batch, _ in iter_batches(raw)
        for e in batch.events
        if e.kind == "out_of_memory"
    ]
    assert marks == [
        ("43e50939-ce8c-4d5e-9a1b-2c3d4e5f6a7b", "Runtime.ExitError"),  # signal: killed
        (None, "Runtime.OutOfMemory"),  # Python: no request id on the line
        (None, "Runtime.OutOfMemory"),  # Node: written by V8 to stderr, no request id
    ]


def test_envelope_control_messages_and_timestamp_spellings() -> None:
    health = {"id": "", "timestamp": 1600110003794, "message": "CWL CONTROL MESSAGE: Checking"}
    control = {"messageType": "CONTROL_MESSAGE", "logGroup": "", "logEvents": [health]}
    assert list(envelope_messages(control)) == []
    stamps: list[object] = ["1723345220026", 1723345220026.0, True, "soon", math.nan, 10**30]
    events = [{"timestamp": stamp, "message": "abcdef"[i]} for i, stamp in enumerate(stamps)]
    data = {"logGroup": "/aws/lambda/f", "logEvents": events}
    got = list(envelope_messages(data))
    assert got[:2] == [("f", 1723345220.026, "a"), ("f", 1723345220.026, "b")]
    assert [seconds for _name, seconds, _msg in got[2:]] == [None, None, None, None]


REPORT_LINES = [
    line
    for path in sorted((REAL / "text").glob("*.log"))
    if "utf16" not in path.name
    for line in path.read_text(encoding="utf-8-sig").splitlines()
    if "REPORT" in line
]


@st.composite
def mutated_report(draw: st.DrawFn) -> str:
    line = draw(st.sampled_from(REPORT_LINES))
    for _ in range(draw(st.integers(1, 4))):
        position = draw(st.integers(0, len(line)))
        action = draw(st.sampled_from(["delete", "insert", "cut", "retab", "digit"]))
        if action == "delete":
            line = line[:position] + line[position + 1 :]
        elif action == "insert":
            line = line[:position] + draw(st.text(max_size=3)) + line[position:]
        elif action == "cut":
            line = line[:position]
        elif action == "retab":
            line = line.replace("\t", draw(st.sampled_from([" ", "", "\r\t", "\\t"])))
        else:
            line = line[:position] + draw(st.sampled_from(["-1", "nan", "1e999", "9" * 30]))
            line += line[position:]
    return line


@settings(max_examples=250, deadline=None)
@given(mutated_report())
def test_mutated_report_lines_never_raise_nor_give_impossible_values(line: str) -> None:
    result = parse_line_or_reason(line)
    assert result is None or isinstance(result, str | PlatformEvent)
    if isinstance(result, PlatformEvent):
        assert result.request_id is None or not any(c.isspace() for c in result.request_id)
        values = (
            result.duration_ms,
            result.billed_duration_ms,
            result.init_duration_ms,
            result.restore_duration_ms,
            result.memory_size_mb,
            result.max_memory_used_mb,
        )
        for value in values:
            assert value is None or (math.isfinite(value) and value >= 0)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.text(max_size=120), max_size=8))
def test_random_text_lines_never_raise(lines: list[str]) -> None:
    for line in lines:
        parse_line_or_reason(line)
    scan_chunk("\n".join(lines).encode("utf-8", "surrogatepass"))
