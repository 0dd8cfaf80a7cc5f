"""`lambdascope ingest` stores the Lambda Insights performance events it meets (envelopes
of /aws/lambda-insights and plain JSON lines) as `lambdascope insights import` does,
next to the REPORT lines of the same files."""

from __future__ import annotations

import gzip
import json
import shutil
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from collectors.local import ingest_paths
from lambdascope.cli import cli
from lambdascope.db import open_db
from lambdascope.evidence.insights import events_in_text
from tests.test_insights import event

T0_MS = 1_764_000_000_000  # 2025-11-24T16:00:00Z


def report(request_id: str, duration: float, memory: int = 512) -> str:
    return (
        f"REPORT RequestId: {request_id}\tDuration: {duration:.2f} ms\t"
        f"Billed Duration: {int(duration) + 1} ms\tMemory Size: {memory} MB\t"
        "Max Memory Used: 187 MB\t"
    )


def envelope(group: str, messages: list[tuple[int, str]]) -> dict[str, Any]:
    return {
        "messageType": "DATA_MESSAGE",
        "owner": "111111111111",
        "logGroup": group,
        "logStream": "2025/11/24/[$LATEST]0123456789abcdef",
        "subscriptionFilters": ["to-firehose"],
        "logEvents": [
            {"id": str(i), "timestamp": at_ms, "message": message}
            for i, (at_ms, message) in enumerate(messages)
        ],
    }


def reports_envelope(name: str, count: int, first: int = 0) -> dict[str, Any]:
    return envelope(
        f"/aws/lambda/{name}",
        [(T0_MS + i * 60_000, report(f"{name}-r{i}", 50.0 + i)) for i in range(first, count)],
    )


def insights_envelope(name: str, count: int) -> dict[str, Any]:
    messages = [
        (
            T0_MS + i * 60_000,
            json.dumps(
                event(
                    f"{name}-r{i}",
                    duration=50.0 + i,
                    cpu=10.0 + i,
                    at_ms=T0_MS + i * 60_000,
                    name=name,
                )
            ),
        )
        for i in range(count)
    ]
    messages.append((T0_MS, '{"event_type":"platform","note":"not a performance event"}'))
    return envelope("/aws/lambda-insights", messages)


def insights_rows(db_path: Path) -> list[tuple[Any, ...]]:
    db = open_db(db_path)
    return db.conn.execute(
        "SELECT f.account_id, f.region, f.function_name, i.request_id, i.hour, i.memory_mb,"
        " i.duration_ms, i.cpu_total_ms, i.used_memory_max_mb FROM insights_invocations i"
        " JOIN functions f ON f.id = i.function_id ORDER BY 3, 4"
    ).fetchall()


def report_facts(db_path: Path) -> tuple[list[tuple[Any, ...]], list[tuple[Any, ...]]]:
    """The stored invocations and hourly facts, by function name."""
    db = open_db(db_path)
    invocations = db.conn.execute(
        "SELECT f.function_name, i.request_id, i.timestamp, i.duration_ms,"
        " i.billed_duration_ms, i.memory_mb, i.max_memory_used_mb FROM invocations i"
        " JOIN functions f ON f.id = i.function_id ORDER BY 1, 2"
    ).fetchall()
    facts = db.conn.execute(
        "SELECT f.function_name, h.hour, h.memory_mb, h.source, h.invocations,"
        " h.duration_ms_sum, h.billed_duration_ms_sum, h.duration_hist FROM hourly_facts h"
        " JOIN functions f ON f.id = h.function_id ORDER BY 1, 2, 3, 4"
    ).fetchall()
    return invocations, facts


def run(args: list[str]) -> str:
    result = CliRunner().invoke(cli, args, catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return result.output


def last_line(output: str) -> str:
    return [line for line in output.splitlines() if " files, " in line][-1]


def test_envelopes_mixing_reports_and_insights(tmp_path: Path) -> None:
    logs = tmp_path / "logs"
    logs.mkdir()
    records = [
        reports_envelope("orders-api", 3),
        insights_envelope("orders-api", 4),
        reports_envelope("billing", 2),
        insights_envelope("billing", 2),
        reports_envelope("orders-api", 5, first=3),
    ]
    mixed = logs / "firehose-2025-11-24-16.gz"
    mixed.write_bytes(gzip.compress("".join(json.dumps(r) for r in records).encode()))
    only_reports = tmp_path / "reports" / "firehose.gz"
    only_reports.parent.mkdir()
    only_reports.write_bytes(gzip.compress("\n".join(json.dumps(r) for r in records[::2]).encode()))

    db = tmp_path / "ingest.db"
    first = run(
        ["--db", str(db), "ingest", "--account", "111111111111", "--region", "eu-west-1", str(logs)]
    )
    assert last_line(first).startswith(
        "1 files, 15 lines, 7 reports (7 new), skipped 2 lines (not_lambda_insights_event 2)"
    )
    assert last_line(first).endswith("; 6 Lambda Insights events (6 new)")

    imported = tmp_path / "import.db"
    run(
        [
            "--db",
            str(imported),
            "insights",
            "import",
            "--account",
            "111111111111",
            "--region",
            "eu-west-1",
            str(mixed),
        ]
    )
    rows = insights_rows(db)
    assert len(rows) == 6
    assert rows == insights_rows(imported)
    assert rows[0] == (
        "111111111111",
        "eu-west-1",
        "billing",
        "billing-r0",
        T0_MS // 1000 - T0_MS // 1000 % 3600,
        512,
        50.0,
        10.0,
        200.0,
    )

    # the REPORT side is what the same records without the Insights ones give
    alone = tmp_path / "alone.db"
    run(
        [
            "--db",
            str(alone),
            "ingest",
            "--account",
            "111111111111",
            "--region",
            "eu-west-1",
            str(only_reports),
        ]
    )
    assert report_facts(db) == report_facts(alone)
    assert len(report_facts(db)[0]) == 7

    # a re-run, and the same records under another name (read again): nothing added
    run(
        ["--db", str(db), "ingest", "--account", "111111111111", "--region", "eu-west-1", str(logs)]
    )
    copy = tmp_path / "copy" / "firehose.gz"
    copy.parent.mkdir()
    shutil.copy(mixed, copy)
    again = run(
        ["--db", str(db), "ingest", "--account", "111111111111", "--region", "eu-west-1", str(copy)]
    )
    assert last_line(again).endswith("; 6 Lambda Insights events (0 new)")
    assert "7 reports (0 new)" in last_line(again)
    assert insights_rows(db) == rows
    assert report_facts(db) == report_facts(alone)


def json_lines(tmp_path: Path) -> tuple[Path, Path]:
    """A file of Insights events as JSON lines mixed with REPORT lines and junk, and the
    same file without the Insights lines."""
    timed = [f"2025-11-24T16:0{i}:00.000Z\t{report(f'r{i}', 80.0 + i)}" for i in range(5)]
    performance = [
        json.dumps(
            event(
                f"p{i}", duration=80.0 + i, cpu=5.0 * i + 1, at_ms=T0_MS + i * 1000, name="checkout"
            )
        )
        for i in range(6)
    ]
    junk = [
        '{"cpu_total_time": 3, "request_id": "x"',
        '{"cpu_total_time": 1}',
        "INFO cpu_total_time is high",
    ]
    lines = [*timed[:2], *performance[:3], *junk, timed[2], *performance[3:], *timed[3:]]
    folder = tmp_path / "checkout"
    folder.mkdir()
    mixed = folder / "insights-and-logs.log"
    mixed.write_text("\n".join(lines) + "\n")
    plain = tmp_path / "plain" / "checkout" / "logs.log"
    plain.parent.mkdir(parents=True)
    plain.write_text("\n".join([*timed[:2], *junk, *timed[2:]]) + "\n")
    return mixed, plain


def test_plain_json_lines_of_events(tmp_path: Path) -> None:
    mixed, plain = json_lines(tmp_path)
    db = tmp_path / "ingest.db"
    output = run(["--db", str(db), "ingest", str(mixed)])
    assert "5 reports (5 new)" in last_line(output)
    assert last_line(output).endswith("; 6 Lambda Insights events (6 new)")

    imported = tmp_path / "import.db"
    run(["--db", str(imported), "insights", "import", str(mixed)])
    rows = insights_rows(db)
    assert [row[3] for row in rows] == [f"p{i}" for i in range(6)]
    assert rows == insights_rows(imported)

    alone = tmp_path / "alone.db"
    run(["--db", str(alone), "ingest", str(plain)])
    assert report_facts(db) == report_facts(alone)

    # the file grew: the new lines are read, the old ones not again
    with mixed.open("a") as grown:
        grown.write(json.dumps(event("p6", duration=90, cpu=9, at_ms=T0_MS, name="checkout")))
        grown.write("\n")
    output = run(["--db", str(db), "ingest", str(mixed)])
    assert last_line(output).endswith("; 1 Lambda Insights events (1 new)")
    assert len(insights_rows(db)) == 7
    assert report_facts(db) == report_facts(alone)


def test_a_file_of_events_only_is_not_without_events(tmp_path: Path) -> None:
    path = tmp_path / "checkout" / "events.json"
    path.parent.mkdir()
    path.write_text(json.dumps(event("only", duration=10, cpu=2, at_ms=T0_MS)) + "\n")
    result = CliRunner().invoke(cli, ["--db", str(tmp_path / "s.db"), "ingest", str(path)])
    assert result.exit_code == 0, result.output
    assert "warning: no Lambda REPORT" not in result.output
    assert last_line(result.output).endswith("; 1 Lambda Insights events (1 new)")
    assert [row[3] for row in insights_rows(tmp_path / "s.db")] == ["only"]


@pytest.mark.parametrize("workers", [0, 2])
def test_reading_processes_carry_the_events(tmp_path: Path, workers: int) -> None:
    """Reading processes (forked) send the parsed events to the writing one."""
    mixed, _plain = json_lines(tmp_path)
    logs = tmp_path / "firehose"
    logs.mkdir()
    (logs / "a.json").write_text(
        json.dumps(reports_envelope("billing", 2)) + json.dumps(insights_envelope("billing", 3))
    )
    db = open_db(tmp_path / "s.db")
    result = ingest_paths(db, [str(mixed), str(logs)], workers=workers)
    assert (result.insights_events, result.insights_added, result.reports) == (9, 9, 7)
    assert len(insights_rows(tmp_path / "s.db")) == 9


def test_filter_log_events_output_of_the_insights_group(tmp_path: Path) -> None:
    """`aws logs filter-log-events --log-group-name /aws/lambda-insights` names no log
    group in its events: the performance events are told apart by their fields."""
    events = [
        {
            "logStreamName": "2025/11/24/[$LATEST]0123456789abcdef",
            "timestamp": T0_MS + i,
            "message": json.dumps(event(f"f{i}", duration=30.0, cpu=3.0 + i, at_ms=T0_MS + i)),
            "ingestionTime": T0_MS + 500,
            "eventId": str(i),
        }
        for i in range(3)
    ]
    events.append({"logStreamName": "s", "timestamp": T0_MS, "message": report("x1", 12.0)})
    path = tmp_path / "orders-api" / "insights.json"
    path.parent.mkdir()
    path.write_text(json.dumps({"events": events, "searchedLogStreams": []}, indent=4))
    db = tmp_path / "s.db"
    output = run(["--db", str(db), "ingest", str(path)])
    assert "1 reports (1 new)" in last_line(output)
    assert last_line(output).endswith("; 3 Lambda Insights events (3 new)")
    imported = tmp_path / "import.db"
    run(["--db", str(imported), "insights", "import", str(path)])
    assert insights_rows(db) == insights_rows(imported)
    assert [row[3] for row in insights_rows(db)] == ["f0", "f1", "f2"]


def pretty_events(count: int, first: int = 0) -> str:
    """Performance events as `jq .` prints them: one object over many lines each."""
    return "".join(
        json.dumps(
            event(f"p{i}", duration=80.0 + i, cpu=15.0 + i, at_ms=T0_MS + i * 60_000), indent=2
        )
        + "\n"
        for i in range(first, first + count)
    )


def test_pretty_printed_events_in_a_text_file_are_stored(tmp_path: Path) -> None:
    """A text file of REPORT lines with pretty-printed events between them: `ingest`
    stores both, as `insights import` stores the events; a second run adds nothing."""
    text = (
        "2025-11-24T16:00:01.000Z\t"
        + report("a1", 80.0)
        + "\n"
        + pretty_events(3)
        + "2025-11-24T16:00:02.000Z\t"
        + report("a2", 81.0)
        + "\n"
        + pretty_events(2, first=3)
    )
    path = tmp_path / "orders-api.log"
    path.write_text(text)
    db = tmp_path / "s.db"
    args = ["--db", str(db), "ingest", "--function", "orders-api", str(path)]
    assert "5 Lambda Insights events (5 new)" in last_line(run(args))
    rows = insights_rows(db)
    assert [(r[2], r[3], r[6], r[7]) for r in rows] == [
        ("orders-api", f"p{i}", 80.0 + i, 15.0 + i) for i in range(5)
    ]
    invocations, _ = report_facts(db)
    assert [r[1] for r in invocations] == ["a1", "a2"]
    run(args)  # a second run: the file was read to its end, nothing changes
    assert insights_rows(db) == rows
    imported = tmp_path / "imported.db"
    run(["--db", str(imported), "insights", "import", str(path)])
    assert insights_rows(imported) == rows


@pytest.mark.parametrize("cut", range(0, 2400, 37))
def test_a_pretty_printed_event_cut_by_a_chunk_end_is_read_with_the_next(cut: int) -> None:
    """Wherever a chunk ends (before an event's key, after it, between events), the
    events of the two chunks are each found once."""
    data = ("REPORT line\n" + pretty_events(3) + "another line\n").encode()
    assert len(data) > 2400
    newline = data.rfind(b"\n", 0, cut) + 1  # chunks end after a newline
    first, carried = events_in_text(data[:newline])
    second, rest = events_in_text(data[newline:], carried)
    assert [e.request_id for e in first + second] == ["p0", "p1", "p2"]
    assert rest == b""


def test_lines_that_only_mention_the_key_are_not_events() -> None:
    data = b'{\n  "note": "no \\"cpu_total_time\\" here"\n}\nthe "cpu_total_time" key\n'
    assert events_in_text(data) == ([], b"")
