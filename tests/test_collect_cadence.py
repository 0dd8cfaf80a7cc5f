"""The lean metrics cadence: only what logs cannot give, only for listed functions, slow
metrics less often; logs resume without re-scanning complete hours; reads with lean data."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import pytest
from sqlite_utils import Database

import collectors.common
from collectors.aws import CollectOptions, Store, Target, run_collection
from collectors.cadence import (
    LEAN_METRICS,
    LISTED_HISTORY_S,
    Cadence,
    Listings,
    MetricSpec,
    batch_size_for,
    details_slot,
    fetch_window,
    is_due,
    listing_mode,
    plan_metrics,
)
from collectors.late import late_hours
from collectors.runs import LOGS_SETTLE_S, resolve_window, save_watermark
from lambdascope import queries, rollup
from lambdascope.db import function_id
from lambdascope.timeutil import HOUR_S, from_epoch, hour_floor, to_epoch
from tests.moto_fleet import (
    DEFAULT_ACCOUNT,
    HOUR0,
    NOW,
    Fleet,
    function_name,
    report_line,
    small_moto_fleet,
)

__all__ = ["small_moto_fleet"]

T = 1_780_000_000 // HOUR_S * HOUR_S  # an hour boundary
HOURLY = MetricSpec("throttles", "Throttles", "Sum", 1)
SLOW = MetricSpec("dead_letter_errors", "DeadLetterErrors", "Sum", 6)


def test_a_metric_is_due_every_n_whole_hours_or_on_an_explicit_window() -> None:
    assert is_due(HOURLY, Cadence(), T + 300, explicit=False)  # never fetched
    assert is_due(HOURLY, Cadence(T), T + HOUR_S + 300, explicit=False)
    assert not is_due(HOURLY, Cadence(T), T + 3000, explicit=False)
    assert not is_due(SLOW, Cadence(T), T + 5 * HOUR_S + 300, explicit=False)
    assert is_due(SLOW, Cadence(T), T + 6 * HOUR_S + 300, explicit=False)
    assert is_due(SLOW, Cadence(T), T + 300, explicit=True)


def test_a_resumed_metric_is_fetched_from_the_hour_before_its_last_fetch() -> None:
    end = T + 7 * HOUR_S
    assert fetch_window(Cadence(T + 6 * HOUR_S), T - 86400, end, explicit=False) == (
        T + 5 * HOUR_S,
        end,
    )
    assert fetch_window(Cadence(T), T - 86400, end, explicit=True) == (T - 86400, end)
    assert fetch_window(Cadence(), T - 86400, end, explicit=False) == (T - 86400, end)


def test_recently_active_listing_only_when_listings_cover_the_window() -> None:
    now = T + 10 * HOUR_S + 300
    # The window starts within three hours: one RecentlyActive listing covers it.
    assert listing_mode(Listings(), now - 2 * HOUR_S, now) == "recent"
    # A slow metric's 7-hour window is covered by hourly listings without a gap...
    covered = Listings(now - HOUR_S, now - 12 * HOUR_S)
    assert listing_mode(covered, now - 7 * HOUR_S, now) == "recent"
    # ...not after a pause of more than three hours, nor before the coverage began.
    assert listing_mode(Listings(now - 4 * HOUR_S, now - 12 * HOUR_S), now - 7 * HOUR_S, now) == (
        "history"
    )
    assert listing_mode(Listings(now - HOUR_S, now - 5 * HOUR_S), now - 7 * HOUR_S, now) == (
        "history"
    )
    # A window longer than ListMetrics' two weeks: every function is asked for.
    assert listing_mode(Listings(), now - LISTED_HISTORY_S - HOUR_S, now) == "all"
    # Coverage: continuous listings keep their start; a gap restarts it three hours back.
    assert covered.after("recent", now) == Listings(now, now - 12 * HOUR_S)
    gap = Listings(now - 4 * HOUR_S, now - 12 * HOUR_S)
    assert gap.after("recent", now) == Listings(now, now - 3 * HOUR_S)
    assert gap.after("history", now) == Listings(now, now - LISTED_HISTORY_S)


def test_batches_fit_one_page_of_datapoints() -> None:
    assert batch_size_for(T, T + 3 * HOUR_S) == 500
    # 14 days = 336 hours: 300 queries x 336 points = 100,800, the per-call maximum.
    assert batch_size_for(T, T + 14 * 86400) == 300


def test_an_hourly_run_fetches_only_the_hourly_metrics() -> None:
    cadence = {spec.metric: Cadence(T) for spec in LEAN_METRICS}
    run = plan_metrics(
        LEAN_METRICS,
        cadence,
        Listings(T - 300, T - 86400),
        start=T - 2 * HOUR_S,
        end=T + 2 * HOUR_S,
        now=T + HOUR_S + 300,
        explicit=False,
    )
    assert [spec.metric for spec, _ in run.due] == ["Throttles", "IteratorAge"]
    assert {start for _, start in run.due} == {T - HOUR_S}
    assert run.listing == "recent"


@pytest.fixture
def list_calls(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[dict[str, Any]]]:
    """The parameters of every ListMetrics call the collectors make (over real HTTP)."""
    seen: list[dict[str, Any]] = []
    original = collectors.common.make_client

    def recording_client(*args: Any, **kwargs: Any) -> Any:
        client = original(*args, **kwargs)

        def record(params: dict[str, Any], **_: Any) -> None:
            seen.append(dict(params))

        client.meta.events.register("provide-client-params.cloudwatch.ListMetrics", record)
        return client

    monkeypatch.setattr(collectors.common, "make_client", recording_client)
    yield seen


def _options(fleet: Fleet, **overrides: Any) -> CollectOptions:
    values: dict[str, Any] = {
        "regions": ("us-east-1",),
        "endpoint_url": fleet.endpoint_url,
        "poll_interval_s": 0.0,
        "only": ("inventory", "metrics"),
    }
    return CollectOptions(**(values | overrides))


def _metrics(db: Database) -> list[tuple[Any, ...]]:
    return db.conn.execute(
        "SELECT f.function_name, m.hour, m.invocations, m.errors, m.duration_avg_ms,"
        " m.concurrent_executions_max FROM hourly_metrics m JOIN functions f"
        " ON f.id = m.function_id ORDER BY 1, 2"
    ).fetchall()


def test_lean_collection_asks_only_for_listed_metrics_then_resumes_on_its_cadence(
    small_moto_fleet: Fleet, db: Database, list_calls: list[dict[str, Any]]
) -> None:
    summary = run_collection(db, _options(small_moto_fleet, since=timedelta(hours=6)), now=NOW)
    assert summary.exit_code == 0
    # Only ConcurrentExecutions of function 1 exists among the lean metrics: one metric
    # requested, not 2 functions x 14; the logs' metrics (Invocations, Duration) never.
    hour0 = to_epoch(HOUR0)
    name = function_name(DEFAULT_ACCOUNT, "us-east-1", 1)
    assert _metrics(db) == [(name, hour0 + h * HOUR_S, None, None, None, 3.0 + h) for h in range(3)]
    run = db.conn.execute(
        "SELECT status, api_calls, estimated_cost_usd, message FROM collection_runs"
        " WHERE source = 'metrics'"
    ).fetchone()
    # one ListMetrics page + one GetMetricData call, 1 metric requested; one ListMetrics
    # of the LambdaInsights namespace (daily) finds no function with the extension
    assert run[:3] == ("ok", 3, 0.00003)
    assert "1 metrics requested" in run[3]
    # A 6-hour window is more than RecentlyActive's three hours: the two-week listing.
    assert list_calls == [
        {"Namespace": "AWS/Lambda", "Dimensions": [{"Name": "FunctionName"}]},
        {
            "Namespace": "LambdaInsights",
            "MetricName": "cpu_total_time",
            "Dimensions": [{"Name": "function_name"}],
        },
    ]

    # An hour later, resuming: the listing is RecentlyActive, ConcurrentExecutions (every
    # 3 h) is not due, and the hourly metrics have no listed function: no GetMetricData.
    list_calls.clear()
    later = NOW + timedelta(hours=1)
    run_collection(db, _options(small_moto_fleet), now=later)
    assert list_calls == [
        {
            "Namespace": "AWS/Lambda",
            "Dimensions": [{"Name": "FunctionName"}],
            "RecentlyActive": "PT3H",
        }
    ]
    second = db.conn.execute(
        "SELECT api_calls, estimated_cost_usd, message FROM collection_runs"
        " WHERE source = 'metrics' ORDER BY id DESC LIMIT 1"
    ).fetchone()
    assert second[:2] == (1, 0.00001)
    assert "due: Throttles, IteratorAge;" in second[2]
    # Three hours after the first run ConcurrentExecutions is due again, from the hour
    # before its last fetch, for the function the listings saw.
    run_collection(db, _options(small_moto_fleet), now=NOW + timedelta(hours=3))
    third = db.conn.execute(
        "SELECT api_calls, message FROM collection_runs WHERE source = 'metrics'"
        " ORDER BY id DESC LIMIT 1"
    ).fetchone()
    assert third[0] == 2
    assert "ConcurrentExecutions" in third[1] and "1 metrics requested" in third[1]
    assert len(_metrics(db)) == 3


def test_logs_resume_at_the_last_incomplete_hour_without_overlap(db: Database) -> None:
    target = Target(boto3.Session(region_name="us-east-1"), "123456789012", "us-east-1")
    options = CollectOptions()
    now = NOW.replace(minute=20)
    _, end = resolve_window(db, options, target, "logs", now)
    save_watermark(Store(db), target, "logs", end, now, LOGS_SETTLE_S)
    # 20 minutes past the hour: the previous hour is complete and never scanned again.
    start, _ = resolve_window(db, options, target, "logs", now + timedelta(hours=1))
    assert start == to_epoch(now.replace(minute=0))
    # A run only 5 minutes past the hour leaves the hour before open (late events).
    early = now + timedelta(hours=1, minutes=-15)
    save_watermark(Store(db), target, "logs", end + HOUR_S, early, LOGS_SETTLE_S)
    again, _ = resolve_window(db, options, target, "logs", early + timedelta(hours=1))
    assert again == to_epoch(now.replace(minute=0))


def test_reads_take_errors_from_logs_when_metrics_hold_only_lean_columns(db: Database) -> None:
    """Lean metrics rows hold no invocations or errors: reads take both from the logs, and
    log-derived errors include timeouts as CloudWatch's Errors does."""
    fid = function_id(db, "orders", "123456789012", "us-east-1")
    hour = T
    with db.conn:
        db.conn.execute("UPDATE functions SET memory_mb = 512 WHERE id = ?", (fid,))
        db.conn.execute(
            "INSERT INTO hourly_facts (function_id, hour, memory_mb, source, invocations, errors,"
            " timeouts, duration_ms_sum, billed_duration_ms_sum) VALUES (?, ?, 512, 'insights',"
            " 40, 3, 2, 4000, 4040)",
            (fid, hour),
        )
        # The lean set stored only throttles and concurrency for this hour.
        db.conn.execute(
            "INSERT INTO hourly_metrics (function_id, hour, throttles, concurrent_executions_max)"
            " VALUES (?, ?, 2, 5)",
            (fid, hour),
        )
        # An hour with CloudWatch counts (full set): its errors come from CloudWatch.
        db.conn.execute(
            "INSERT INTO hourly_facts (function_id, hour, memory_mb, source, invocations, errors,"
            " timeouts) VALUES (?, ?, 512, 'insights', 10, 1, 1)",
            (fid, hour + HOUR_S),
        )
        db.conn.execute(
            "INSERT INTO hourly_metrics (function_id, hour, invocations, errors)"
            " VALUES (?, ?, 12, 2)",
            (fid, hour + HOUR_S),
        )
    for refreshed in (False, True):
        if refreshed:
            rollup.refresh(db)
        (stats,) = queries.function_stats(db, hour, hour + 2 * HOUR_S, histograms=False)
        # errors mean CloudWatch's Errors: from the logs, failures + timeouts (3 + 2); from
        # CloudWatch, its count (which already holds the timeout)
        assert (stats.invocations, stats.errors, stats.throttles) == (52, 7, 2)
        assert stats.timeouts == 3


def _facts(db: Database) -> list[tuple[Any, ...]]:
    return db.conn.execute(
        "SELECT function_id, hour, memory_mb, invocations, duration_ms_sum FROM hourly_facts"
        " ORDER BY 1, 2, 3"
    ).fetchall()


def _stream(first: int, last: int, ingested: int) -> dict[str, Any]:
    return {
        "logStreamName": "2026/12/04/[$LATEST]abc",
        "firstEventTimestamp": first * 1000,
        "lastEventTimestamp": last * 1000,
        "lastIngestionTime": ingested * 1000,
    }


def test_late_hours_are_those_of_streams_fed_after_their_hours_were_read() -> None:
    watermark = T + 10 * HOUR_S
    previous = watermark + 20 * 60  # the run that set the watermark, 20 min past the hour
    kwargs: dict[str, Any] = {"watermark": watermark, "previous_run": previous}
    settle = LOGS_SETTLE_S
    late_stream = _stream(T + 8 * HOUR_S + 100, T + 9 * HOUR_S + 3000, previous + 600)
    on_time = _stream(T + 9 * HOUR_S, T + 9 * HOUR_S + 3000, T + 10 * HOUR_S + 120)
    still_writing = _stream(T + 9 * HOUR_S, watermark + 60, previous + 600)
    seen_before = _stream(T + 5 * HOUR_S, T + 5 * HOUR_S + 60, previous - 2 * HOUR_S)
    # Only the stream that got data after its hours were complete: its hours 8 and 9.
    assert late_hours(
        [late_stream, on_time, still_writing, seen_before], settle_s=settle, **kwargs
    ) == [(T + 8 * HOUR_S, T + 10 * HOUR_S)]
    # Overlapping spans merge; events older than a day before the watermark are ignored.
    other = _stream(T + 9 * HOUR_S + 10, T + 9 * HOUR_S + 20, previous + 900)
    ancient = _stream(T - 30 * HOUR_S, T - 29 * HOUR_S, previous + 900)
    assert late_hours([late_stream, other, ancient], settle_s=settle, **kwargs) == [
        (T + 8 * HOUR_S, T + 10 * HOUR_S)
    ]


def test_a_resumed_run_rereads_only_the_log_group_and_hours_with_late_events(
    small_moto_fleet: Fleet, db: Database
) -> None:
    logs_only: dict[str, Any] = {"only": ("logs",), "logs_mode": "filter"}
    # moto stamps ingestion with the real clock: the runs follow it.
    first_at = datetime.now(UTC)
    first = _options(
        small_moto_fleet, since=timedelta(hours=6), only=("inventory", "logs"), logs_mode="filter"
    )
    run_collection(db, first, now=first_at)
    name = function_name(DEFAULT_ACCOUNT, "us-east-1", 0)
    stored = db.conn.execute("SELECT count(*) FROM invocations").fetchone()[0]
    assert stored == 12
    # A REPORT line of an hour read long ago arrives now, in a new stream.
    at = HOUR0 + timedelta(hours=1, minutes=20)
    logs = small_moto_fleet.client("logs", "us-east-1")
    group = f"/aws/lambda/{name}"
    logs.create_log_stream(logGroupName=group, logStreamName="late")
    logs.put_log_events(
        logGroupName=group,
        logStreamName="late",
        logEvents=[
            {
                "timestamp": int(at.timestamp() * 1000),
                "message": report_line("late-1", 321.0, 128, 90, None),
            }
        ],
    )
    summary = run_collection(
        db, _options(small_moto_fleet, **logs_only), now=first_at + timedelta(hours=1)
    )
    assert summary.exit_code == 0
    row = db.conn.execute(
        "SELECT i.timestamp FROM invocations i WHERE i.request_id = 'late-1'"
    ).fetchone()
    assert row == (int(at.timestamp()),)
    facts = db.conn.execute(
        "SELECT invocations FROM hourly_facts WHERE hour = ?", (to_epoch(HOUR0) + HOUR_S,)
    ).fetchone()
    assert facts == (5,)
    message = db.conn.execute(
        "SELECT message FROM collection_runs WHERE source = 'logs' ORDER BY id DESC LIMIT 1"
    ).fetchone()[0]
    # (moto's seeding itself came late for the fleet's own stream: its hours may be re-read
    # too, which changes nothing; only that log group is re-read.)
    assert "; late events: 1 log groups re-read over " in message
    assert db.conn.execute("SELECT count(*) FROM invocations").fetchone() == (13,)
    # Stream times are eventually consistent: the next run may look again (nothing changes);
    # once its data is older than an hour before the previous run, nobody re-reads it.
    before = _facts(db)
    run_collection(db, _options(small_moto_fleet, **logs_only), now=first_at + timedelta(hours=2))
    assert _facts(db) == before
    run_collection(db, _options(small_moto_fleet, **logs_only), now=first_at + timedelta(hours=3))
    last = db.conn.execute(
        "SELECT message FROM collection_runs WHERE source = 'logs' ORDER BY id DESC LIMIT 1"
    ).fetchone()[0]
    assert "late events" not in last


def test_resumed_runs_list_functions_and_fetch_details_every_six_hours(
    small_moto_fleet: Fleet, db: Database
) -> None:
    target = Target(boto3.Session(), DEFAULT_ACCOUNT, "us-east-1")
    # The first run at 20 past the hour in which this pair refreshes its details.
    hour = to_epoch(datetime(2026, 3, 10, tzinfo=UTC))
    while details_slot(target, hour) != hour:
        hour += HOUR_S
    start = from_epoch(hour + 20 * 60)
    run_collection(db, _options(small_moto_fleet, since=timedelta(hours=6)), now=start)
    full = db.conn.execute(
        "SELECT api_calls, message FROM collection_runs WHERE source = 'inventory'"
    ).fetchone()
    assert full[1] == "2 functions"
    lam = small_moto_fleet.client("lambda", "us-east-1")
    role = small_moto_fleet.client("iam", "us-east-1").get_role(RoleName="fn-role")["Role"]["Arn"]
    lam.create_function(
        FunctionName="new-fn",
        Runtime="python3.12",
        Role=role,
        Handler="app.handler",
        Code={"ZipFile": b"PK\x05\x06" + b"\x00" * 18},
        MemorySize=256,
    )
    try:
        resumed = _options(small_moto_fleet, only=(), logs_mode="filter")
        for hours in range(1, 6):
            run_collection(db, resumed, now=start + timedelta(hours=hours))
            light = db.conn.execute(
                "SELECT api_calls, message FROM collection_runs WHERE source = 'inventory'"
                " ORDER BY id DESC LIMIT 1"
            ).fetchone()
            # one ListFunctions page instead of 5 calls per function + 3
            assert light == (1, "3 functions listed; details every 6 h")
        # The new function is known (its configuration stored) before its details are.
        row = db.conn.execute(
            "SELECT memory_mb, runtime, inventory_at, deleted_at FROM functions"
            " WHERE function_name = 'new-fn'"
        ).fetchone()
        assert row == (256, "python3.12", None, None)
        run_collection(db, resumed, now=start + timedelta(hours=6))
        again = db.conn.execute(
            "SELECT api_calls, message FROM collection_runs WHERE source = 'inventory'"
            " ORDER BY id DESC LIMIT 1"
        ).fetchone()
        assert again[1] == "3 functions" and again[0] > full[0]
        assert db.conn.execute(
            "SELECT inventory_at FROM functions WHERE function_name = 'new-fn'"
        ).fetchone() == (to_epoch(start + timedelta(hours=6)),)
    finally:
        lam.delete_function(FunctionName="new-fn")


def test_pairs_refresh_details_in_different_hours() -> None:
    session = boto3.Session()
    now = to_epoch(datetime(2026, 3, 10, 12, 20, tzinfo=UTC))
    slots = {
        details_slot(Target(session, f"{n:012d}", region), now)
        for n in range(50)
        for region in ("us-east-1", "eu-west-1", "us-west-2", "ap-south-1")
    }
    assert slots == {hour_floor(now) - h * HOUR_S for h in range(6)}
