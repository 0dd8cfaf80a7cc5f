"""The ingest fast path gives exactly the events of the reference scan (scan_chunk), which
reads every candidate line with parse_line."""

from __future__ import annotations

import gzip
import random
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from lambdascope.logparse import parse_line_or_reason, scan_chunk
from lambdascope.logscan import fast_report, item_event, scan_items

pytestmark = pytest.mark.usefixtures("scanner")

sys_path = Path(__file__).resolve().parents[1] / "bench"
DATA = Path(__file__).parent / "data"
RID = "8f5a6a2e-6c1f-4b0e-9f58-4a1d7a7b1c01"
REPORT = (
    f"REPORT RequestId: {RID}\tDuration: 102.25 ms\tBilled Duration: 103 ms\t"
    "Memory Size: 512 MB\tMax Memory Used: 187 MB"
)


def _assert_same(buf: bytes, previous: float | None = 7.0, default: float | None = 9.0) -> int:
    reference = scan_chunk(buf, previous_timestamp=previous, default_timestamp=default)
    fast = scan_items(buf, previous_timestamp=previous, default_timestamp=default)
    assert [item_event(i) for i in fast.items] == reference.events
    assert (fast.lines, fast.skipped, fast.last_timestamp) == (
        reference.lines,
        reference.skipped,
        reference.last_timestamp,
    )
    return sum(1 for i in fast.items if isinstance(i, tuple))


def _fixture_bytes() -> list[bytes]:
    found = []
    for path in sorted(DATA.rglob("*")):
        if not path.is_file() or path.name.endswith((".jsonl", ".md")):
            continue
        data = path.read_bytes()
        if data[:2] == b"\x1f\x8b":
            data = gzip.decompress(data)
        found.append(data)
    return found


def test_every_fixture_file_and_line_gives_the_reference_events() -> None:
    fast_lines = 0
    for data in _fixture_bytes():
        _assert_same(data)
        _assert_same(data, previous=None, default=None)
        for line in data.splitlines(keepends=True):
            fast_lines += _assert_same(line)
    assert fast_lines > 10  # the fast path is taken on real shapes


def test_generated_logs_give_the_reference_events(tmp_path: Path) -> None:
    import sys

    sys.path.insert(0, str(sys_path))
    from datetime import UTC, datetime, timedelta

    from gen_logs import invocation_json, invocation_text  # type: ignore[import-not-found]

    rng = random.Random(3)
    moment = datetime(2024, 5, 1, tzinfo=UTC)
    for make in (invocation_text, invocation_json):
        lines: list[str] = []
        for _ in range(3000):
            moment += timedelta(milliseconds=rng.randint(50, 400))
            lines.extend(make(rng, moment, 512))
        data = ("\n".join(lines) + "\n").encode()
        assert _assert_same(data) > 2900
        # odd cuts: chunks that start or end mid-invocation
        cut = data.find(b"\n", len(data) // 3) + 1
        _assert_same(data[:cut])
        _assert_same(data[cut:], previous=None)


def test_near_canonical_lines_fall_back_to_the_reference() -> None:
    variants = [
        REPORT,
        REPORT + "\t",
        REPORT + "\tInit Duration: 221.40 ms\t",
        REPORT + " \r",
        REPORT + "\tXRAY TraceId: 1-5e1b4151-5ac6c58f5b8f4d3a7f0a1b2c\tSampled: true",
        REPORT + "\tXRAY TraceId: 2024-05-01T10:00:00Z",
        REPORT.replace("\t", " "),
        REPORT.replace("RequestId: ", "RequestId:"),
        REPORT.replace(RID, "a:b"),
        REPORT.replace(RID, "2024-05-01T10:00:00Z"),
        REPORT.replace("102.25", "1e3"),
        REPORT.replace("102.25", "\u0661\u0662"),
        REPORT.replace("\t", "\u00a0"),
        REPORT + "\tStatus: timeout",
        "2024-05-01T10:00:00.5Z " + REPORT,
        "2024-05-01T10:00:00.5Zx " + REPORT,
        "2024-05-01T10:61:00Z " + REPORT,
        "2024/05/01/[$LATEST]abc 2024-05-01T10:00:00Z " + REPORT,
        '"x" ' + REPORT,
        "x" + REPORT,
        '{"time":"2024-05-01T10:00:00.000Z","type":"platform.start","record":'
        '{"requestId":"ab-12","version":"$LATEST"}}',
        '{"time":"2024-05-01T10:00:00.000Z","type":"platform.start","record":'
        '{"requestId":"MemoryError"}}',
        '{"time":"2024-05-01T10:00:00.000Z","type":"platform.report","record":{"requestId":'
        '"ab-12","metrics":{"durationMs":2.6,"billedDurationMs":3,"memorySizeMB":128,'
        '"maxMemoryUsedMB":69,"initDurationMs":183.451},"status":"failure"}}',
        '{"time":"2024-13-01T10:00:00.000Z","type":"platform.report","record":{"requestId":'
        '"ab-12","metrics":{"durationMs":2,"billedDurationMs":3,"memorySizeMB":128,'
        '"maxMemoryUsedMB":69},"status":"success"}}',
        '{"time":"2024-05-01T10:00:00.000Z","type":"platform.report","record":{"requestId":'
        '"ab-12","metrics":{"durationMs":02,"billedDurationMs":3,"memorySizeMB":128,'
        '"maxMemoryUsedMB":69},"status":"success"}}',
        # without a RequestId, with spaces for tabs, with tabs and newlines escaped
        REPORT.replace(f"RequestId: {RID}\t", ""),
        REPORT.replace(RID, ""),
        REPORT.replace("\t", " "),
        REPORT.replace("\tBilled", " Billed"),
        REPORT.replace("\t", "\\t"),
        REPORT.replace("\t", "\\t") + "\\n",
        "2024-05-01T10:00:00.5Z\\t" + REPORT.replace("\t", "\\t") + "\\n",
        REPORT.replace(RID, "ab\\tc"),
        '{"message":"' + REPORT.replace("\t", "\\\\t") + '\\\\n"}',
        # timeouts whose request id is not a UUID
        "2024-05-01T10:00:00.123Z\tabc123\tTask timed out after 3.00 seconds",
        "2024-05-01T10:00:00.123Z abc-123-x Task timed out after 3.00 seconds",
        "2024-05-01T10:00:00.123Z\\tabc123\\tTask timed out after 3.00 seconds",
        "2024-05-01T10:00:00.123Z ERROR Task timed out after 3.00 seconds",
        '{"time":"2024-05-01T10:00:00.123Z","requestId":"abc123",'
        '"message":"Task timed out after 3.00 seconds"}',
    ]
    context = "2024-05-01T09:00:00.000Z\tx\tINFO\thello\n"
    for line in variants:
        for tail in ("", "\n"):
            _assert_same((line + tail).encode())
            _assert_same((context + line + tail + context).encode())
    assert fast_report(REPORT + "\t") is not None
    assert fast_report(REPORT + "\tStatus: timeout") is None


_PIECES = [
    "REPORT RequestId: ",
    RID,
    "\tDuration: 12.5 ms",
    "\tBilled Duration: 13 ms",
    "\tMemory Size: 128 MB",
    "\tMax Memory Used: 60 MB",
    "\tInit Duration: 100.0 ms",
    "\tXRAY TraceId: 1-2",
    "2024-05-01T10:00:00.123Z",
    "2024-05-01 10:00:00+01:00",
    "-2024-05-01T11:00:00",
    " ",
    "\t",
    "\n",
    "\r",
    "Task timed out after 3.00 seconds",
    "MemoryError",
    '{"time":"2024-05-01T10:00:00.000Z","type":"platform.',
    'report","record":{"requestId":"ab","metrics":{"durationMs":1,"billedDurationMs":1,'
    '"memorySizeMB":1,"maxMemoryUsedMB":1},"status":"success"}}',
    "\u00e9",
    "x",
    "REPORT Duration: 1 ms",
    "\\t",
    "\\n",
    "abc123",
]


@settings(
    max_examples=400, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(st.lists(st.sampled_from(_PIECES), max_size=30), st.binary(max_size=8))
def test_random_mixtures_give_the_reference_events(pieces: list[str], junk: bytes) -> None:
    _assert_same("".join(pieces).encode() + junk)
    _assert_same("".join(pieces).encode() + junk, previous=None, default=None)


@settings(
    max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(st.lists(st.sampled_from([*_PIECES[:12], "x", "\xa0"]), max_size=12))
def test_fast_report_on_messages_matches_parse_line(pieces: list[str]) -> None:
    line = "".join(pieces).replace("\n", "").replace("\r", "")
    tuple_ = fast_report(line)
    if tuple_ is not None:
        assert item_event(tuple_) == parse_line_or_reason(line)


_TS_PIECES = [
    "2024-05-01T10:00:00",
    "2024-05-01 10:00:00",
    ".123",
    ".1234",
    "Z",
    "-05:00",
    "-0501",
    "-01-01T00:00:00",
    "1234",
    "-",
    ":",
    "0",
    " ",
    "\n",
    "x",
]


@settings(
    max_examples=400, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(st.lists(st.sampled_from(_TS_PIECES), max_size=25))
def test_timestamp_starts_are_where_the_timestamp_regex_finds_them(pieces: list[str]) -> None:
    import numpy as np

    from lambdascope.logscan import _TS_DASH_RE, _timestamp_starts

    buf = "".join(pieces).encode()
    expected = [m.start() - 4 for m in _TS_DASH_RE.finditer(buf)]
    found = _timestamp_starts(buf, np.frombuffer(buf, np.uint8), 0).tolist()
    assert found == expected
