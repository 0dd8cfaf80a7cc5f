"""The shared read layer on real SQLite files: merged view, percentiles, filters, series."""

from __future__ import annotations

import json
from typing import Any

import pytest
from sqlite_utils import Database

from lambdascope import histcodec, histogram, queries
from lambdascope.db import function_id
from lambdascope.models import PlatformEvent
from lambdascope.queries import Filters, function_stats
from lambdascope.store import rebuild_hourly_facts, store_events

H = 3600
T0 = 1_767_225_600  # 2026-01-01T00:00:00Z


def add_function(db: Database, name: str, **config: Any) -> int:
    fid = function_id(db, name, config.pop("account_id", ""), config.pop("region", ""))
    if "tags" in config:
        config["tags_json"] = json.dumps(config.pop("tags"))
    if config:
        sets = ", ".join(f"{k} = ?" for k in config)
        db.conn.execute(f"UPDATE functions SET {sets} WHERE id = ?", (*config.values(), fid))
    db.conn.commit()
    return fid


def add_fact(
    db: Database,
    fid: int,
    hour: int,
    memory_mb: int,
    source: str = "local",
    durations: list[float] | None = None,
    used: list[int] | None = None,
    **counts: Any,
) -> None:
    durations = durations or []
    used = used or []
    invocations = counts.pop("invocations", len(durations))
    db.conn.execute(
        "INSERT INTO hourly_facts (function_id, hour, memory_mb, source, invocations, errors,"
        " timeouts, out_of_memory, cold_starts, duration_ms_sum, duration_ms_max,"
        " max_memory_used_mb_max, duration_hist, max_memory_used_hist)"
        " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (
            fid,
            hour,
            memory_mb,
            source,
            invocations,
            counts.get("errors", 0),
            counts.get("timeouts", 0),
            counts.get("out_of_memory", 0),
            counts.get("cold_starts", 0),
            sum(durations),
            max(durations) if durations else None,
            max(used) if used else None,
            histcodec.encode(histogram.from_values(durations)),
            histcodec.encode(histogram.from_values(used)),
        ),
    )
    db.conn.commit()


def add_metrics(db: Database, fid: int, hour: int, **values: float) -> None:
    cols = ", ".join(["function_id", "hour", *values])
    marks = ", ".join("?" * (2 + len(values)))
    db.conn.execute(
        f"INSERT INTO hourly_metrics ({cols}) VALUES ({marks})", (fid, hour, *values.values())
    )
    db.conn.commit()


def by_memory(stats: list[queries.FunctionStats]) -> dict[int | None, queries.FunctionStats]:
    return {s.memory_mb: s for s in stats}


def test_empty_store(db: Database) -> None:
    assert function_stats(db, 0, T0) == []
    assert queries.fleet_timeseries(db, 0, T0) == []
    assert queries.function_by_name(db, "nope") is None
    options = queries.filter_options(db)
    assert options.account_ids == () and options.tag_keys == ()
    fresh = queries.data_freshness(db)
    assert fresh["local_hour"] is None and fresh["metrics_hour"] is None and fresh["runs"] == []


def test_local_beats_insights_per_hour(db: Database) -> None:
    fid = add_function(db, "f", memory_mb=512)
    # Hour 1: both sources -> local only. Hour 2: insights only -> insights counts.
    add_fact(db, fid, T0, 512, "local", durations=[10.0] * 4, errors=1)
    add_fact(db, fid, T0, 512, "insights", durations=[500.0] * 40, errors=9)
    add_fact(db, fid, T0 + H, 512, "insights", durations=[20.0] * 6, errors=2)
    [s] = function_stats(db, T0, T0 + 2 * H)
    assert s.invocations == 10
    assert s.errors == 3
    assert s.sources == ("insights", "local")
    assert s.duration_max_ms == 20.0
    assert histogram.count(s.duration_hist) == 10
    assert s.hours_with_data == 2


def test_metrics_counts_beat_log_counts_and_split_by_memory(db: Database) -> None:
    fid = add_function(db, "f", memory_mb=1024)
    # The memory changed inside the hour: logs saw 30 calls at 512 and 10 at 1024.
    add_fact(db, fid, T0, 512, durations=[5.0] * 30, errors=1)
    add_fact(db, fid, T0, 1024, durations=[5.0] * 10)
    add_metrics(db, fid, T0, invocations=80, errors=8, throttles=4)
    # A later hour only CloudWatch saw: counted at the inventory memory size.
    add_metrics(db, fid, T0 + H, invocations=5, errors=1, throttles=0, duration_p99_ms=7.0)
    # A log-only hour: counts from the logs, no throttles.
    add_fact(db, fid, T0 + 2 * H, 512, durations=[5.0] * 3, errors=2)
    rows = by_memory(function_stats(db, T0, T0 + 3 * H))
    assert rows[512].invocations == pytest.approx(60 + 3)
    assert rows[512].errors == pytest.approx(6 + 2)
    assert rows[512].throttles == pytest.approx(3)
    assert rows[512].log_invocations == 33
    assert rows[1024].invocations == pytest.approx(20 + 5)
    assert rows[1024].errors == pytest.approx(2 + 1)
    assert rows[1024].throttles == pytest.approx(1)
    assert rows[1024].sources == ("local", "metrics")
    total = sum(s.invocations for s in rows.values())
    assert total == pytest.approx(80 + 5 + 3)


def test_metrics_only_function_uses_cloudwatch_durations(db: Database) -> None:
    fid = add_function(db, "m", memory_mb=256)
    add_metrics(
        db, fid, T0, invocations=10, duration_p50_ms=10, duration_p99_ms=50, duration_max_ms=60
    )
    add_metrics(
        db, fid, T0 + H, invocations=30, duration_p50_ms=20, duration_p99_ms=90, duration_max_ms=95
    )
    [s] = function_stats(db, T0, T0 + 2 * H)
    assert s.memory_mb == 256 and s.sources == ("metrics",)
    assert s.invocations == 40
    assert s.duration_p50_ms == pytest.approx((10 * 10 + 20 * 30) / 40)
    assert s.duration_p99_ms == 90
    assert s.duration_max_ms == 95
    assert s.log_invocations == 0 and s.duration_hist == {}


def test_percentiles_match_known_inputs(db: Database) -> None:
    fid = add_function(db, "p", memory_mb=1024)
    values = [float(v) for v in range(1, 1001)]
    # Spread over three hours so the merge matters.
    for i, hour in enumerate((T0, T0 + H, T0 + 2 * H)):
        add_fact(
            db,
            fid,
            hour,
            1024,
            durations=values[i::3],
            used=[100 + (j % 200) for j in range(i, 1000, 3)],
        )
    [s] = function_stats(db, T0, T0 + 3 * H)
    tolerance = histogram.GAMMA - 1
    assert s.duration_p50_ms == pytest.approx(500, rel=tolerance)
    assert s.duration_p95_ms == pytest.approx(950, rel=tolerance)
    assert s.duration_p99_ms == pytest.approx(990, rel=tolerance)
    assert s.duration_max_ms == 1000
    assert s.max_memory_used_mb == 299
    assert s.p99_memory_used_mb == pytest.approx(297, rel=tolerance)
    assert histogram.count(s.memory_hist) == 1000


def test_stats_from_stored_invocations_have_exact_first_and_last_seen(db: Database) -> None:
    fid = function_id(db, "ingested")
    events = [
        PlatformEvent(
            kind="report",
            request_id=f"r{i}",
            timestamp=T0 + 60 * i,
            duration_ms=10.0 * (i + 1),
            billed_duration_ms=10.0 * (i + 1),
            memory_size_mb=128,
            max_memory_used_mb=50 + i,
        )
        for i in range(5)
    ]
    with db.conn:
        store_events(db, fid, events)
        rebuild_hourly_facts(db, fid, [T0])
    [s] = function_stats(db, T0 - H, T0 + H)
    assert s.invocations == 5
    assert s.first_seen == T0 and s.last_seen == T0 + 240
    assert s.max_memory_used_mb == 54
    assert s.duration_max_ms == 50.0
    assert s.billed_duration_ms_sum == 150.0
    assert s.billed_gb_seconds == pytest.approx(0.150 * 128 / 1024)


def test_idle_functions_show_with_zeros_and_window_is_respected(db: Database) -> None:
    busy = add_function(db, "busy", memory_mb=128)
    add_function(db, "idle", memory_mb=2048, runtime="python3.8")
    add_fact(db, busy, T0 - 5 * H, 128, durations=[1.0] * 7)  # before the window
    add_fact(db, busy, T0, 128, durations=[1.0] * 2)
    add_fact(db, busy, T0 + 5 * H, 128, durations=[1.0] * 9)  # at the (exclusive) end
    stats = {s.function_name: s for s in function_stats(db, T0, T0 + 5 * H)}
    assert stats["busy"].invocations == 2
    idle = stats["idle"]
    assert (idle.invocations, idle.memory_mb, idle.runtime, idle.sources) == (
        0,
        2048,
        "python3.8",
        (),
    )
    assert idle.duration_p50_ms is None and idle.last_seen is None


def test_filters(db: Database) -> None:
    specs = {
        "orders-api": dict(
            account_id="111",
            region="us-east-1",
            runtime="python3.12",
            architecture="arm64",
            tags={"team": "orders", "env": "prod"},
        ),
        "orders-worker": dict(
            account_id="111",
            region="eu-west-1",
            runtime="nodejs20.x",
            architecture="x86_64",
            tags={"team": "orders", "env": "dev"},
        ),
        "search-api": dict(
            account_id="222",
            region="us-east-1",
            runtime="python3.12",
            architecture="x86_64",
            tags={"team": "search"},
        ),
        "gone": dict(account_id="222", region="us-east-1", runtime="python3.12", deleted_at=T0),
    }
    for name, config in specs.items():
        add_function(db, name, memory_mb=128, **config)

    def names(**kw: Any) -> list[str]:
        return [s.function_name for s in function_stats(db, T0, T0 + H, Filters(**kw))]

    assert names() == ["orders-api", "orders-worker", "search-api"]
    assert names(include_deleted=True) == ["gone", "orders-api", "orders-worker", "search-api"]
    assert names(account_ids=("222",)) == ["search-api"]
    assert names(regions=("eu-west-1",)) == ["orders-worker"]
    assert names(runtimes=("python3.12",), architectures=("x86_64",)) == ["search-api"]
    assert names(tag="team=orders") == ["orders-api", "orders-worker"]
    assert names(tag="env") == ["orders-api", "orders-worker"]
    assert names(tag="env=prod") == ["orders-api"]
    assert names(name_contains="API") == ["orders-api", "search-api"]
    assert names(function_names=("orders-worker",)) == ["orders-worker"]
    options = queries.filter_options(db)
    assert options.account_ids == ("111", "222")
    assert options.regions == ("eu-west-1", "us-east-1")
    assert options.runtimes == ("nodejs20.x", "python3.12")
    assert options.tag_keys == ("env", "team")
    found = queries.function_by_name(db, "search-api")
    assert found is not None and found.tags == {"team": "search"} and found.account_id == "222"


def test_function_and_fleet_timeseries(db: Database) -> None:
    a = add_function(db, "a", memory_mb=512)
    b = add_function(db, "b", memory_mb=128)
    add_fact(db, a, T0, 256, durations=[10.0] * 3, used=[100] * 3, cold_starts=1)
    add_fact(db, a, T0, 512, durations=[30.0] * 1, used=[300])
    add_metrics(db, a, T0, invocations=8, errors=0, throttles=2)
    add_fact(db, a, T0 + 2 * H, 512, durations=[40.0] * 2, used=[310, 320], timeouts=1)
    add_fact(db, b, T0 + H, 128, durations=[5.0] * 5, out_of_memory=1)

    points = queries.function_timeseries(db, a, T0, T0 + 3 * H)
    assert [p.hour for p in points] == [T0, T0 + 2 * H]
    first, second = points
    assert first.invocations == pytest.approx(8)
    assert first.throttles == pytest.approx(2)
    assert first.log_invocations == 4 and first.cold_starts == 1
    assert first.memory_mb == 512 and first.max_memory_used_mb == 300
    assert first.duration_max_ms == 30.0
    assert second.invocations == 2 and second.timeouts == 1
    assert second.p99_memory_used_mb == pytest.approx(320, rel=0.02)
    assert second.p99_memory_used_mb <= 320  # never above the exact maximum

    # an hour CloudWatch saw and no log did: its duration statistics, its inventory memory
    add_metrics(
        db,
        a,
        T0 + 5 * H,
        invocations=7,
        duration_p50_ms=11.0,
        duration_p95_ms=22.0,
        duration_p99_ms=33.0,
        duration_max_ms=44.0,
    )
    metrics_only = queries.function_timeseries(db, a, T0 + 5 * H, T0 + 6 * H)
    assert [
        (
            p.invocations,
            p.log_invocations,
            p.memory_mb,
            p.duration_p50_ms,
            p.duration_p95_ms,
            p.duration_p99_ms,
            p.duration_max_ms,
        )
        for p in metrics_only
    ] == [(7, 0, 512, 11.0, 22.0, 33.0, 44.0)]

    fleet = queries.fleet_timeseries(db, T0, T0 + 3 * H, bucket_s=2 * H)
    assert [(p.start, p.invocations, p.active_functions) for p in fleet] == [
        (T0, pytest.approx(13), 2),
        (T0 + 2 * H, 2, 1),
    ]
    assert fleet[0].out_of_memory == 1 and fleet[1].timeouts == 1
    assert queries.fleet_timeseries(db, T0, T0 + 3 * H, Filters(function_names=("b",))) == [
        queries.fleet_timeseries(db, T0, T0 + 3 * H)[1]
    ]
    hist = queries.memory_histogram(db, a, T0, T0 + 3 * H)
    assert histogram.count(hist) == 6
    assert histogram.count(queries.memory_histogram(db, a, T0, T0 + 3 * H, memory_mb=256)) == 3


def test_collection_runs_and_freshness(db: Database) -> None:
    fid = add_function(db, "f")
    add_fact(db, fid, T0, 128, durations=[1.0])
    add_fact(db, fid, T0 + H, 128, "insights", durations=[1.0])
    add_metrics(db, fid, T0 + 2 * H, invocations=1)
    db.conn.executemany(
        "INSERT INTO collection_runs (started_at, finished_at, account_id, region, source,"
        " status, errors_json) VALUES (?, ?, '1', 'us-east-1', ?, ?, ?)",
        [
            (T0, T0 + 5, "metrics", "ok", "[]"),
            (T0 + H, T0 + H + 5, "metrics", "partial", '[{"action": "cloudwatch:GetMetricData"}]'),
        ],
    )
    db.conn.commit()
    runs = queries.collection_runs(db)
    assert [r["status"] for r in runs] == ["partial", "ok"]
    assert runs[0]["errors"] == [{"action": "cloudwatch:GetMetricData"}]
    assert queries.collection_runs(db, since=T0 + 1) == runs[:1]
    fresh = queries.data_freshness(db)
    assert (fresh["local_hour"], fresh["insights_hour"], fresh["metrics_hour"]) == (
        T0,
        T0 + H,
        T0 + 2 * H,
    )
    assert fresh["last_run"] == T0 + H + 5 and fresh["last_ok_run"] == T0 + 5
    assert [r["status"] for r in fresh["runs"]] == ["partial"]
