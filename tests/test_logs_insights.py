"""Logs Insights: the query text and result transform (pure), and the polling loop with Stubber.

moto's Logs Insights ignores the query (no stats, no REPORT fields), so start_query /
get_query_results are served by ``botocore.stub.Stubber`` with response shapes from the
CloudWatch Logs API reference (StartQuery: queryId; GetQueryResults: status, results as
lists of field/value pairs, statistics with bytesScanned). ``insights_rows`` below is a
model of what the one query returns (its grouping and aggregates, computed in Python) so
the transform can be checked against local ingest of the same REPORT lines.
"""

from __future__ import annotations

import math
import random
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

import boto3
from botocore.stub import Stubber
from sqlite_utils import Database

from collectors.aws import SourceResult, Store
from collectors.logs import (
    MAX_RESULT_ROWS,
    NO_VALUE_BUCKET,
    QUERY,
    Facts,
    QueryJob,
    collect_insights,
    load_facts,
    log_group_batches,
    plan_windows,
    split_truncated,
    transform_rows,
)
from lambdascope import histogram
from lambdascope.db import function_id
from lambdascope.logparse import parse_line
from lambdascope.models import PlatformEvent
from lambdascope.store import rebuild_hourly_facts, store_events

HOUR = 1_700_002_800  # 2023-11-14T23:00:00Z, an hour boundary
ACCOUNT = "123456789012"
GROUP_A = "/aws/lambda/orders"
GROUP_B = "/aws/lambda/billing"
FACT_COLUMNS = (
    "invocations, errors, timeouts, out_of_memory, cold_starts, duration_ms_sum,"
    " duration_ms_max, billed_duration_ms_sum, max_memory_used_mb_max, init_duration_ms_sum,"
    " init_duration_ms_max, duration_hist, billed_duration_hist, max_memory_used_hist,"
    " init_duration_hist"
)


def _bin(hour: int) -> str:
    return datetime.fromtimestamp(hour, UTC).strftime("%Y-%m-%d %H:%M:%S.000")


def _bucket(value: float | None) -> int:
    # floor(log(greatest(coalesce(x, 0), 0.0001)) / log(1.02)), as in the query
    return math.floor(math.log(max(value or 0.0, 0.0001)) / math.log(histogram.GAMMA))


def insights_rows(group: str, lines: list[tuple[float, str]]) -> list[list[dict[str, str]]]:
    """What the query returns for these (timestamp, REPORT line) events, sorted by hour."""
    groups: dict[tuple[Any, ...], dict[str, float]] = {}
    for at, line in lines:
        event = parse_line(line)
        assert event is not None and event.memory_size_mb is not None
        used = event.max_memory_used_mb
        key = (
            int(at // 3600 * 3600),
            event.memory_size_mb * 1_000_000,
            _bucket(event.duration_ms),
            _bucket(event.billed_duration_ms),
            _bucket(used),
            _bucket(event.init_duration_ms),
        )
        row = groups.setdefault(key, {"n": 0, "e": 0, "t": 0, "o": 0, "c": 0})
        row["n"] += 1
        row["e"] += "Status: error" in line
        row["t"] += "Status: timeout" in line
        row["o"] += "Runtime.OutOfMemory" in line
        row["ds"] = row.get("ds", 0) + (event.duration_ms or 0)
        row["dm"] = max(row.get("dm", 0), event.duration_ms or 0)
        row["bs"] = row.get("bs", 0) + (event.billed_duration_ms or 0)
        row["mm"] = max(row.get("mm", 0), (used or 0) * 1_000_000)
        if event.init_duration_ms is not None:
            row["c"] += 1
            row["is"] = row.get("is", 0) + event.init_duration_ms
            row["im"] = max(row.get("im", 0), event.init_duration_ms)
    out = []
    for (hour, memory, d, b, m, i), row in sorted(groups.items(), key=lambda kv: kv[0][0]):
        values = {
            "hour": _bin(hour),
            "@log": f"{ACCOUNT}:{group}",
            "@memorySize": str(memory),
            "d": str(d),
            "b": str(b),
            "m": str(m),
            "i": str(i),
            "invocations": str(row["n"]),
            "errors": str(row["e"]),
            "timeouts": str(row["t"]),
            "out_of_memory": str(row["o"]),
            "cold_starts": str(row["c"]),
            "duration_ms_sum": repr(row["ds"]),
            "duration_ms_max": repr(row["dm"]),
            "billed_duration_ms_sum": repr(row["bs"]),
            "max_memory_used_bytes_max": repr(row["mm"]),
        }
        if "is" in row:  # Insights leaves out a field whose aggregate has no value
            values["init_duration_ms_sum"] = repr(row["is"])
            values["init_duration_ms_max"] = repr(row["im"])
        out.append([{"field": k, "value": v} for k, v in values.items()])
    return out


def report(request: str, duration: float, used: int, *, init: float | None = None) -> str:
    line = (
        f"REPORT RequestId: {request}\tDuration: {duration:.2f} ms\t"
        f"Billed Duration: {math.ceil(duration)} ms\tMemory Size: 512 MB\t"
        f"Max Memory Used: {used} MB\t"
    )
    return line + (f"Init Duration: {init:.2f} ms\t" if init is not None else "")


def sample_lines(seed: int = 7, count: int = 400) -> list[tuple[float, str]]:
    """A busy function over two hours: spread durations, memory creeping up, a few failures."""
    rng = random.Random(seed)
    lines = []
    for index in range(count):
        at = HOUR + index * (7200 / count)
        line = report(
            f"r{index}",
            rng.lognormvariate(4.5, 0.6),
            150 + index // 40 + rng.randint(0, 3),
            init=rng.uniform(150, 400) if index % 25 == 0 else None,
        )
        if index % 50 == 7:
            line += "Status: error\tError Type: Runtime.OutOfMemory\t"
        elif index % 60 == 11:
            line += "Status: timeout\t"
        lines.append((at, line))
    return lines


def test_one_query_buckets_inside_insights_groups_by_hour_and_sorts() -> None:
    assert 'filter @type = "REPORT"' in QUERY
    assert "floor(log(greatest(coalesce(@duration, 0), 0.0001)) / log(1.02)) as d" in QUERY
    assert (
        "floor(log(greatest(coalesce(@maxMemoryUsed, 0) / 1000000, 0.0001)) / log(1.02)) as m"
        in QUERY
    )
    assert "floor(log(greatest(coalesce(@initDuration, 0), 0.0001)) / log(1.02)) as i" in QUERY
    assert "by bin(1h) as hour, @log, @memorySize, d, b, m, i | sort hour asc" in QUERY
    assert NO_VALUE_BUCKET == _bucket(None) == -466


def test_log_groups_are_batched_fifty_per_query() -> None:
    groups = [f"/aws/lambda/f{i}" for i in range(120)]
    assert [len(b) for b in log_group_batches(groups)] == [50, 50, 20]


def test_transform_fills_the_same_facts_as_local_ingest(db: Database) -> None:
    lines = sample_lines()
    facts = Facts()
    rows = insights_rows(GROUP_A, lines)
    assert len(rows) > 100  # several rows per hour: one per combination of buckets
    malformed = [[{"field": "@log", "value": "x"}, {"field": "@memorySize", "value": "1"}]]
    assert transform_rows([*rows, *malformed], facts) == 1
    insights_fid = function_id(db, "orders", ACCOUNT, "us-east-1")
    local_fid = function_id(db, "orders-local", ACCOUNT, "us-east-1")
    load_facts(Store(db), facts, {GROUP_A: insights_fid})
    events: list[PlatformEvent] = []
    for at, line in lines:
        event = parse_line(line)
        assert event is not None
        events.append(replace(event, timestamp=at))
    with db.conn:
        store_events(db, local_fid, events)
        rebuild_hourly_facts(db, local_fid, [HOUR, HOUR + 3600])

    def facts_of(fid: int) -> list[tuple[Any, ...]]:
        return db.conn.execute(
            f"SELECT hour, memory_mb, {FACT_COLUMNS} FROM hourly_facts WHERE function_id = ?"
            " ORDER BY hour",
            (fid,),
        ).fetchall()

    insights, local = facts_of(insights_fid), facts_of(local_fid)
    assert [r[:3] for r in insights] == [(HOUR, 512, 200), (HOUR + 3600, 512, 200)]
    assert len(insights) == len(local) == 2
    for got, want in zip(insights, local, strict=True):
        for a, b in zip(got, want, strict=True):  # sums may differ in the last float digit
            assert math.isclose(a, b) if isinstance(a, float) else a == b, (a, b)


def test_absent_values_go_in_no_histogram() -> None:
    facts = Facts()
    rows = insights_rows(GROUP_A, [(HOUR + 5, report("a", 50.0, 100))])
    transform_rows(rows, facts)
    row = facts.rows[(GROUP_A, HOUR, 512)]
    assert row["init_duration_hist"] == {} and row["cold_starts"] == 0
    assert row["init_duration_ms_max"] is None
    assert row["duration_hist"] == {histogram.bucket_of(50.0): 1}


def _rows_over_hours(hours: int, per_hour: int) -> list[list[dict[str, str]]]:
    return [
        [
            {"field": "hour", "value": _bin(HOUR + 3600 * h)},
            {"field": "@log", "value": f"{ACCOUNT}:{GROUP_A}"},
            {"field": "@memorySize", "value": "512000000"},
            {"field": "d", "value": str(300 + i)},
            {"field": "invocations", "value": "1"},
        ]
        for h in range(hours)
        for i in range(per_hour)
    ]


def test_truncated_result_keeps_complete_hours_and_plans_the_rest() -> None:
    job = QueryJob(0, [GROUP_A], HOUR, HOUR + 48 * 3600)
    job.rows = _rows_over_hours(3, 4_000)[:MAX_RESULT_ROWS]  # hours 0, 1 whole; 2 cut
    kept, windows = split_truncated(job)
    assert len(kept) == 8_000
    # 4,000 rows an hour, 6,000 rows a piece: 46 hours left -> 1-hour pieces
    assert windows[0] == (HOUR + 2 * 3600, HOUR + 3 * 3600)
    assert windows[-1][1] == HOUR + 48 * 3600 and len(windows) == 46


def test_an_hour_over_the_limit_is_cut_into_quarters_down_to_a_minute() -> None:
    job = QueryJob(0, [GROUP_A], HOUR, HOUR + 3 * 3600)
    job.rows = _rows_over_hours(1, MAX_RESULT_ROWS)
    kept, windows = split_truncated(job)
    assert kept == []
    assert windows == [
        (HOUR, HOUR + 900),
        (HOUR + 900, HOUR + 1800),
        (HOUR + 1800, HOUR + 2700),
        (HOUR + 2700, HOUR + 3600),
        (HOUR + 3600, HOUR + 3 * 3600),
    ]
    minute = QueryJob(0, [GROUP_A], HOUR, HOUR + 60)
    minute.rows = job.rows
    assert split_truncated(minute) == (job.rows, [])


def test_later_batches_are_cut_to_fit_from_the_density_seen() -> None:
    assert plan_windows(HOUR, HOUR + 3 * 3600, 0.0) == [(HOUR, HOUR + 3 * 3600)]
    assert plan_windows(HOUR, HOUR + 3 * 3600, 0.5) == [(HOUR, HOUR + 3 * 3600)]  # 5,400 rows
    # 6,000 rows a piece: at 1 row/s 6,000 s fit, cut to whole hours
    assert plan_windows(HOUR, HOUR + 2 * 3600, 1.0) == [
        (HOUR, HOUR + 3600),
        (HOUR + 3600, HOUR + 7200),
    ]
    # at 2 rows/s not an hour fits: 50-minute pieces
    assert plan_windows(HOUR, HOUR + 3600, 2.0) == [(HOUR, HOUR + 3000), (HOUR + 3000, HOUR + 3600)]
    hours = plan_windows(HOUR, HOUR + 48 * 3600, 0.5)  # 12,000 s fit: 3-hour pieces
    assert hours[0] == (HOUR, HOUR + 3 * 3600) and len(hours) == 16


def _client() -> Any:
    return boto3.client(
        "logs",
        region_name="us-east-1",
        aws_access_key_id="x",
        aws_secret_access_key="x",
        endpoint_url="http://127.0.0.1:9",
    )


def _start(stubber: Stubber, query_id: str, groups: list[str], start: int, end: int) -> None:
    stubber.add_response(
        "start_query",
        {"queryId": query_id},
        {
            "logGroupNames": groups,
            "startTime": start,
            "endTime": end - 1,
            "queryString": QUERY,
            "limit": MAX_RESULT_ROWS,
        },
    )


def _results(stubber: Stubber, query_id: str, status: str, rows: list[Any], scanned: float) -> None:
    response: dict[str, Any] = {"status": status, "results": rows}
    if status == "Complete":
        response["statistics"] = {
            "recordsMatched": float(len(rows)),
            "recordsScanned": 10.0,
            "bytesScanned": scanned,
        }
    stubber.add_response("get_query_results", response, {"queryId": query_id})


def test_one_query_per_batch_polled_with_backoff_and_stored(db: Database) -> None:
    client = _client()
    ids = {
        GROUP_A: function_id(db, "orders", ACCOUNT, "us-east-1"),
        GROUP_B: function_id(db, "billing", ACCOUNT, "us-east-1"),
    }
    db.conn.commit()
    stubber = Stubber(client)
    _start(stubber, "q0", sorted(ids), HOUR, HOUR + 7200)
    rows = insights_rows(GROUP_A, sample_lines(count=40)) + insights_rows(
        GROUP_B, [(HOUR + 10, report("b1", 20.0, 64, init=300.0))]
    )
    _results(stubber, "q0", "Running", [], 0)
    _results(stubber, "q0", "Running", [], 0)
    _results(stubber, "q0", "Complete", rows, 2e9)
    slept: list[float] = []
    result = SourceResult(ACCOUNT, "us-east-1", "logs")
    with stubber:
        collect_insights(
            Store(db),
            client,
            ids,
            result,
            start=HOUR,
            end=HOUR + 7200,
            max_concurrent=10,
            sleep=slept.append,
        )
    stubber.assert_no_pending_responses()
    assert slept == [1.0, 2.0, 4.0]  # doubled while waiting
    assert result.bytes_scanned == 2 * 10**9  # the logs were scanned once
    assert result.estimated_cost_usd == 2 * 0.005
    assert result.message == "2 log groups, 1 batches, 1 queries (0 results over 10000 rows split)"
    stored = db.conn.execute(
        "SELECT function_id, hour, memory_mb, source, invocations, cold_starts,"
        " init_duration_hist FROM hourly_facts ORDER BY function_id, hour"
    ).fetchall()
    assert [r[:5] for r in stored] == [
        (ids[GROUP_A], HOUR, 512, "insights", 20),
        (ids[GROUP_A], HOUR + 3600, 512, "insights", 20),
        (ids[GROUP_B], HOUR, 512, "insights", 1),
    ]
    assert stored[2][5:] == (1, histogram.to_json({histogram.bucket_of(300.0): 1}))


def test_truncated_result_is_split_recorded_and_adds_up(db: Database) -> None:
    client = _client()
    ids = {GROUP_A: function_id(db, "orders", ACCOUNT, "us-east-1")}
    db.conn.commit()
    stubber = Stubber(client)
    full = _rows_over_hours(3, 4_000)
    _start(stubber, "q0", [GROUP_A], HOUR, HOUR + 3 * 3600)
    _results(stubber, "q0", "Complete", full[:MAX_RESULT_ROWS], 3e9)
    # the rest, hour 2, queried again (rows of hours 0 and 1 were kept)
    _start(stubber, "q1", [GROUP_A], HOUR + 2 * 3600, HOUR + 3 * 3600)
    _results(stubber, "q1", "Complete", full[8_000:], 1e9)
    result = SourceResult(ACCOUNT, "us-east-1", "logs")
    with stubber:
        collect_insights(
            Store(db),
            client,
            ids,
            result,
            start=HOUR,
            end=HOUR + 3 * 3600,
            max_concurrent=10,
            sleep=lambda _s: None,
        )
    stubber.assert_no_pending_responses()
    assert result.status == "ok" and result.bytes_scanned == 4 * 10**9
    assert result.message == "1 log groups, 1 batches, 2 queries (1 results over 10000 rows split)"
    counts = db.conn.execute("SELECT hour, invocations FROM hourly_facts ORDER BY hour").fetchall()
    assert counts == [(HOUR, 4_000), (HOUR + 3600, 4_000), (HOUR + 7200, 4_000)]


def test_stop_lets_started_batches_finish_and_leaves_the_rest(db: Database) -> None:
    client = _client()
    groups = {
        f"/aws/lambda/f{i:03d}": function_id(db, f"f{i:03d}", ACCOUNT, "r") for i in range(120)
    }
    db.conn.commit()
    batches = log_group_batches(sorted(groups))
    stubber = Stubber(client)
    _start(stubber, "q0", batches[0], HOUR, HOUR + 3600)
    _results(stubber, "q0", "Complete", [], 1e6)
    asked: list[bool] = []

    def stop() -> bool:
        asked.append(True)
        return len(asked) > 1  # asked before each round: stop after the first batch started

    result = SourceResult(ACCOUNT, "r", "logs")
    with stubber:
        collect_insights(
            Store(db),
            client,
            groups,
            result,
            start=HOUR,
            end=HOUR + 3600,
            max_concurrent=1,
            sleep=lambda _s: None,
            stop=stop,
        )
    stubber.assert_no_pending_responses()
    assert result.status == "interrupted"
    assert result.message.endswith("stopped after 1 of 3 batches")
