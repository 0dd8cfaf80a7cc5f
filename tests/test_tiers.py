"""Retention tiers: hours older than --keep-hourly leave the hourly tables for daily rows.

Every read over whole days the daily tier covers answers the same before and after the
move; series show daily points before the boundary; late writes into tiered days are
dropped and counted; the move can be interrupted and re-run; the file shrinks.
"""

from __future__ import annotations

import json
import math
import sqlite3
from collections import defaultdict
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import dash
import pytest
from click.testing import CliRunner
from sqlite_utils import Database

from dashboards import data as dash_data
from dashboards.app import create_app
from lambdascope import coldstarts, queries, rightsizing, staleness, storeadmin, tiers
from lambdascope.cli import cli
from lambdascope.db import open_db
from lambdascope.scheduler import prune_raw_invocations, prune_store
from lambdascope.synthetic import generate_store
from lambdascope.tiers import Spans
from tests.test_rollup import _same

DAY = 86_400
H = 3_600
SAMPLE_LOGS = Path(__file__).parent / "data" / "logs" / "sample"
# the sample logs are of 2024-05-01; the synthetic fleet covers 2024-04-17 .. 2024-05-17 07:00
END = int(datetime(2024, 5, 17, 7, tzinfo=UTC).timestamp())
NOW = datetime.fromtimestamp(END, UTC)
SPANS = Spans(keep_raw=timedelta(days=2), keep_hourly=timedelta(days=7))
BOUNDARY = END // DAY * DAY - 7 * DAY  # 2024-05-10
# whole days the daily tier covers after the move, and one reaching across the boundary
WINDOWS = [(BOUNDARY - 20 * DAY, BOUNDARY), (BOUNDARY - 16 * DAY, BOUNDARY - 15 * DAY)]


def _build(db_path: Path, functions: int = 8, days: int = 30) -> Database:
    db = open_db(db_path)
    generate_store(db, functions=functions, days=days, seed=5, end=END)
    result = CliRunner().invoke(cli, ["--db", str(db_path), "ingest", str(SAMPLE_LOGS)])
    assert result.exit_code == 0, result.output
    # raw rows go first, as before any tier move: exact first/last seen times go with them
    prune_raw_invocations(db, SPANS.keep_raw, now=NOW)
    return db


def _report_json(db_path: Path, start: int, end: int) -> Any:
    until = datetime.fromtimestamp(end, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    result = CliRunner().invoke(
        cli,
        [
            "--db",
            str(db_path),
            "report",
            "memory",
            "--format",
            "json",
            "--since",
            f"{(end - start) // DAY}d",
            "--until",
            until,
        ],
    )
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def _per_day(points: list[Any], time: str, fields: tuple[str, ...]) -> dict[int, list[float]]:
    days: dict[int, list[float]] = defaultdict(lambda: [0.0] * len(fields))
    for p in points:
        day = getattr(p, time) // DAY * DAY
        for i, name in enumerate(fields):
            days[day][i] += float(getattr(p, name) or 0)
    return dict(days)


_SERIES_SUMS = (
    "invocations",
    "errors",
    "throttles",
    "timeouts",
    "out_of_memory",
    "cold_starts",
    "log_invocations",
    "billed_duration_ms_sum",
    "gb_seconds",
)
_FLEET_SUMS = (
    "invocations",
    "errors",
    "throttles",
    "timeouts",
    "out_of_memory",
    "cold_starts",
    "duration_ms_sum",
    "billed_duration_ms_sum",
    "gb_seconds",
)


def _close(a: dict[int, list[float]], b: dict[int, list[float]]) -> None:
    assert a.keys() == b.keys()
    for day in a:
        for x, y in zip(a[day], b[day], strict=True):
            assert math.isclose(x, y, rel_tol=1e-9, abs_tol=1e-6), (day, a[day], b[day])


def _reads(db: Database, db_path: Path, start: int, end: int) -> dict[str, Any]:
    """Every read over [start, end), in a form comparable before and after the move."""
    stats = queries.function_stats(db, start, end)
    memory_stats = rightsizing.read_memory_stats(db, start, end, rightsizing.StatsFilter())
    fids = [s.function_id for s in stats if s.invocations]
    return {
        "report": _report_json(db_path, start, end),
        "function_stats": stats,
        "cold_starts": [
            f.as_dict() for f in coldstarts.analyse_all(memory_stats, window_s=end - start)
        ],
        "stale": staleness.find_stale(db, end, queries.ALL).as_dict(),
        "activity": queries.activity(db),
        "several_sizes": queries.functions_with_several_memory_sizes(db, start, end),
        "fleet_daily": queries.fleet_timeseries(db, start, end, bucket_s=DAY),
        "health": queries.function_health(db, start, end),
        "per_day_stats": {
            (fid, day): queries.function_stats(
                db, day, day + DAY, queries.Filters(function_ids=(fid,))
            )
            for fid in fids[:3]
            for day in range(start, end, DAY)
        },
    }


def _series(db: Database, start: int, end: int) -> dict[str, Any]:
    fids = [fid for (fid,) in db.conn.execute("SELECT id FROM functions ORDER BY id LIMIT 3")]
    return {
        "fleet": _per_day(queries.fleet_timeseries(db, start, end), "start", _FLEET_SUMS),
        "functions": {
            fid: _per_day(queries.function_timeseries(db, fid, start, end), "hour", _SERIES_SUMS)
            for fid in fids
        },
        "health": _per_day(
            queries.health_timeseries(db, start, end),
            "start",
            ("async_events_dropped", "dead_letter_errors", "destination_delivery_failures"),
        ),
    }


def _compare_series(before: dict[str, Any], after: dict[str, Any]) -> None:
    _close(before["fleet"], after["fleet"])
    _close(before["health"], after["health"])
    for fid, days in before["functions"].items():
        _close(days, after["functions"][fid])


def _hourly_below(db: Database, boundary: int) -> int:
    return int(
        db.conn.execute(
            "SELECT (SELECT count(*) FROM hourly_facts WHERE hour < :b)"
            " + (SELECT count(*) FROM hourly_metrics WHERE hour < :b)"
            " + (SELECT count(*) FROM merged_hourly WHERE hour < :b)",
            {"b": boundary},
        ).fetchone()[0]
    )


def test_every_read_is_the_same_after_the_move_for_windows_the_daily_tier_covers(
    tmp_path: Path,
) -> None:
    db_path = tmp_path / "store.db"
    db = _build(db_path)
    assert db.conn.execute(
        "SELECT count(*) FROM hourly_facts WHERE source = 'local' AND hour < ?"
        " AND function_id IN (SELECT id FROM functions WHERE function_name = 'orders-api')",
        (BOUNDARY,),
    ).fetchone()[0]  # the ingested logs are in the part that moves
    before = {w: _reads(db, db_path, *w) for w in WINDOWS}
    series = _series(db, BOUNDARY - 20 * DAY, BOUNDARY)

    summary = prune_store(db, SPANS, now=NOW)

    assert summary.tiers.hourly_from == BOUNDARY and not summary.tiers.interrupted
    assert summary.tiers.hourly_rows > 0 and _hourly_below(db, BOUNDARY) == 0
    assert queries.hourly_from(db) == BOUNDARY
    for window, reads in before.items():
        after = _reads(db, db_path, *window)
        for name in reads:
            _same(reads[name], after[name], f"{window} {name}")
    _compare_series(series, _series(db, BOUNDARY - 20 * DAY, BOUNDARY))
    # the function series is one point per day before the boundary, hourly after it
    fid = db.conn.execute("SELECT min(id) FROM functions").fetchone()[0]
    points = queries.function_timeseries(db, fid, BOUNDARY - 3 * DAY, BOUNDARY + DAY)
    assert {p.span_s for p in points if p.hour < BOUNDARY} == {DAY}
    assert {p.span_s for p in points if p.hour >= BOUNDARY} == {H}
    assert sum(p.hour < BOUNDARY for p in points) == 3
    # daily percentiles of a tiered day come from its daily histograms
    day = BOUNDARY - 2 * DAY
    (day_point,) = [p for p in points if p.hour == day]
    (one_day,) = [s for s in queries.function_stats(db, day, day + DAY) if s.function_id == fid]
    assert day_point.duration_p95_ms == pytest.approx(one_day.duration_p95_ms)
    assert day_point.invocations == pytest.approx(one_day.invocations)
    # the function page draws a day's counts and cost as its average per hour, on the
    # scale of the hours after the boundary
    info = queries.function_by_id(db, fid)
    assert info is not None
    view = dash_data.View(BOUNDARY - 3 * DAY, BOUNDARY + DAY, queries.Filters())
    frame = dash_data.function_series(db, info, view).set_index("time")
    row = frame.loc[datetime.fromtimestamp(day, UTC)]
    assert row["invocations"] == pytest.approx(one_day.invocations / 24)
    assert row["p95"] == pytest.approx(one_day.duration_p95_ms)
    hours = [p for p in points if p.hour >= BOUNDARY]
    first = frame.loc[datetime.fromtimestamp(hours[0].hour, UTC)]
    assert first["invocations"] == pytest.approx(hours[0].invocations)
    # a window starting inside a tiered day reads that day whole
    partial = queries.function_stats(
        db, day + 5 * H, day + DAY, queries.Filters(function_ids=(fid,))
    )
    assert partial[0].invocations == pytest.approx(one_day.invocations)
    check = storeadmin.check(db)
    assert check.ok, check.problems


def test_rerun_changes_nothing_and_the_dry_run_counts_what_the_run_deletes(
    tmp_path: Path,
) -> None:
    db_path = tmp_path / "store.db"
    db = _build(db_path, functions=4, days=20)
    planned = prune_store(db, SPANS, now=NOW, dry_run=True)
    assert _hourly_below(db, BOUNDARY) > 0  # the dry run changed nothing
    assert queries.hourly_from(db) == 0
    done = prune_store(db, SPANS, now=NOW)
    assert done.tiers.hourly_rows == planned.tiers.hourly_rows > 0
    reads = _reads(db, db_path, *WINDOWS[1])
    again = prune_store(db, SPANS, now=NOW)
    assert again.raw_rows == 0 and again.tiers.hourly_rows == 0
    assert again.tiers.hourly_from == BOUNDARY
    _same(reads, _reads(db, db_path, *WINDOWS[1]))
    # a shorter span later moves only the days in between; a longer one moves nothing back
    later = prune_store(db, Spans(timedelta(days=2), timedelta(days=5)), now=NOW)
    assert later.tiers.hourly_from == BOUNDARY + 2 * DAY and later.tiers.hourly_rows > 0
    longer = prune_store(db, Spans(timedelta(days=2), timedelta(days=30)), now=NOW)
    assert longer.tiers.hourly_from == BOUNDARY + 2 * DAY and longer.tiers.hourly_rows == 0


def test_an_interrupted_move_reads_correctly_and_resumes(tmp_path: Path) -> None:
    db_path = tmp_path / "store.db"
    db = _build(db_path, functions=6, days=20)
    reads = _reads(db, db_path, *WINDOWS[1])
    series = _series(db, BOUNDARY - 10 * DAY, BOUNDARY)
    stop_now = []

    def progress(step: str, done: int, total: int) -> None:
        if step == "deleting hourly_facts" and done >= 200:
            stop_now.append(True)

    first = tiers.move(
        db, SPANS, now=NOW, stop=lambda: bool(stop_now), progress=progress, batch_rows=100
    )
    assert first.interrupted and first.deleted["hourly_facts"] == 200
    # the boundary is in, some hourly rows below it are left: readers ignore them
    assert queries.hourly_from(db) == BOUNDARY and _hourly_below(db, BOUNDARY) > 0
    _same(reads, _reads(db, db_path, *WINDOWS[1]))
    _compare_series(series, _series(db, BOUNDARY - 10 * DAY, BOUNDARY))
    assert storeadmin.check(db).ok
    second = tiers.move(db, SPANS, now=NOW)
    assert not second.interrupted and _hourly_below(db, BOUNDARY) == 0
    assert second.deleted["hourly_facts"] > 0 and second.days_refreshed == 0
    _same(reads, _reads(db, db_path, *WINDOWS[1]))


REPORT = (
    "{ts}\tREPORT RequestId: {rid}\tDuration: 12.50 ms\tBilled Duration: 13 ms\t"
    "Memory Size: 256 MB\tMax Memory Used: 100 MB\t\n"
)


def test_late_writes_into_a_tiered_day_are_dropped_and_counted(tmp_path: Path) -> None:
    db_path = tmp_path / "store.db"
    db = _build(db_path, functions=4, days=20)
    prune_store(db, SPANS, now=NOW)
    day = BOUNDARY - 3 * DAY
    daily = db.conn.execute(
        "SELECT * FROM daily_facts WHERE day = ? ORDER BY 1, 3", (day,)
    ).fetchall()
    ids = tuple(fid for (fid,) in db.conn.execute("SELECT id FROM functions"))

    def reads() -> list[Any]:
        return [
            queries.function_stats(db, day, day + DAY, queries.Filters(function_ids=ids)),
            queries.fleet_timeseries(db, day - DAY, day + 2 * DAY, bucket_s=DAY),
            queries.fleet_timeseries(db, day - DAY, day + 2 * DAY),
        ]

    before = reads()
    # an ingest of old logs (new request ids) for a tiered day and for a day still hourly
    log = tmp_path / "orders-api.log"
    lines = [
        REPORT.format(
            ts=datetime.fromtimestamp(stamp + 60 * n, UTC).strftime("%Y-%m-%dT%H:%M:%S.000Z"),
            rid=f"{tag}{n:07d}-aaaa-4bbb-8ccc-000000000000",
        )
        for tag, stamp in (("a", day + 5 * H), ("b", BOUNDARY + 5 * H))
        for n in range(10)
    ]
    log.write_text("".join(lines))
    result = CliRunner().invoke(cli, ["--db", str(db_path), "ingest", str(log)])
    assert result.exit_code == 0, result.output
    assert "10 in pruned hours already counted" in result.output, result.output
    assert (
        db.conn.execute(
            "SELECT count(*) FROM invocations WHERE timestamp < ?", (BOUNDARY,)
        ).fetchone()[0]
        == 0
    )
    # a collector's upsert (metrics backfill) and a direct insert of an hourly fact
    fid = db.conn.execute("SELECT min(id) FROM functions").fetchone()[0]
    with db.conn:
        db.conn.execute(
            "INSERT INTO hourly_metrics (function_id, hour, invocations) VALUES (?, ?, 1e6)"
            " ON CONFLICT (function_id, hour) DO UPDATE SET invocations = excluded.invocations",
            (fid, day + 5 * H),
        )
        db.conn.execute(
            "INSERT OR REPLACE INTO hourly_facts (function_id, hour, memory_mb, source,"
            " invocations) VALUES (?, ?, 128, 'local', 1000000)",
            (fid, day + 6 * H),
        )
    from lambdascope import rollup

    rollup.refresh(db)
    assert _hourly_below(db, BOUNDARY) == 0
    assert (
        db.conn.execute("SELECT count(*) FROM rollup_dirty WHERE day < ?", (BOUNDARY,)).fetchone()[
            0
        ]
        == 0
    )
    after = db.conn.execute(
        "SELECT * FROM daily_facts WHERE day = ? ORDER BY 1, 3", (day,)
    ).fetchall()
    assert after == daily
    _same(before, reads())
    assert tiers.late_writes(db) == {"hourly_facts": 1, "hourly_metrics": 1}
    stats = CliRunner().invoke(cli, ["--db", str(db_path), "store", "stats"])
    assert "hourly tier from 2024-05-10T00:00:00Z" in stats.output
    assert "2 late hourly writes dropped" in stats.output
    assert storeadmin.check(db).ok


def test_keep_daily_deletes_daily_rows_older_than_it(tmp_path: Path) -> None:
    db_path = tmp_path / "store.db"
    db = open_db(db_path)
    now = int(datetime.now(UTC).timestamp())  # the command prunes relative to the clock
    generate_store(db, functions=4, days=30, seed=5, end=now)
    cut = now // DAY * DAY - 14 * DAY
    kept = queries.function_stats(db, cut, cut + 3 * DAY)
    assert db.conn.execute("SELECT count(*) FROM daily_facts WHERE day < ?", (cut,)).fetchone()[0]
    args = ["--keep-raw", "2d", "--keep-hourly", "7d", "--keep-daily", "14d"]
    result = CliRunner().invoke(cli, ["--db", str(db_path), "store", "prune", *args])
    assert result.exit_code == 0, result.output
    assert "daily rows before" in result.output
    for table, column in (*tiers.HOURLY_TABLES, *tiers.DAILY_TABLES):
        below = db.conn.execute(f"SELECT count(*) FROM {table} WHERE {column} < ?", (cut,))
        assert below.fetchone()[0] == 0, table
    # the days still kept read as before, from their daily rows
    _same(kept, queries.function_stats(db, cut, cut + 3 * DAY))
    again = CliRunner().invoke(cli, ["--db", str(db_path), "store", "prune", *args])
    assert "0 hourly rows" in again.output and "0 daily rows" in again.output


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--keep-hourly", "1d"], "--keep-hourly shorter than 2d is refused"),
        (["--keep-raw", "14d", "--keep-hourly", "7d"], "--keep-hourly must be at least --keep-raw"),
        (["--keep-daily", "30d"], "--keep-daily must be at least --keep-hourly"),
        (["--keep-hourly", "soon"], "not a duration: 'soon'"),
        (["--keep-raw", "6h"], "keep at least 1d"),
    ],
)
def test_nonsense_spans_are_refused_in_one_line(
    db_path: Path, args: list[str], message: str
) -> None:
    open_db(db_path).conn.close()
    for command in (["store", "prune"], ["schedule", "--once", "--job", "prune"]):
        result = CliRunner().invoke(cli, ["--db", str(db_path), *command, *args])
        assert result.exit_code == 2, result.output
        errors = [line for line in result.output.splitlines() if line.startswith("Error:")]
        assert len(errors) == 1 and message in errors[0], result.output


def test_the_file_shrinks_after_the_move(tmp_path: Path) -> None:
    db_path = tmp_path / "store.db"
    db = open_db(db_path)
    generate_store(db, functions=30, days=30, seed=2, end=END)
    db.conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    before = db_path.stat().st_size
    result = CliRunner().invoke(
        cli, ["--db", str(db_path), "store", "prune", "--keep-raw", "2d", "--keep-hourly", "7d"]
    )
    assert result.exit_code == 0, result.output
    assert "MB given back" in result.output
    after = db_path.stat().st_size
    # 23 of 30 days leave the hourly tables, which hold most of the file
    assert after < before * 0.5, (before, after)
    assert db.conn.execute("PRAGMA freelist_count").fetchone()[0] == 0


def test_dashboard_pages_render_over_a_window_crossing_the_boundary(tmp_path: Path) -> None:
    db_path = tmp_path / "store.db"
    db = _build(db_path, functions=4, days=30)
    prune_store(db, SPANS, now=NOW)
    name = db.conn.execute("SELECT function_name FROM functions ORDER BY id LIMIT 1").fetchone()[0]
    db.conn.close()
    app = create_app(db_path, clock=lambda: float(END))
    client = app.server.test_client()
    assert client.get("/").status_code == 200  # the pages register on the first request
    pages = {
        "overview": (dash.page_registry["dashboards.pages.overview"]["layout"], {}),
        "function": (
            dash.page_registry["dashboards.pages.function_detail"]["layout"],
            {"name": name},
        ),
        "errors": (dash.page_registry["dashboards.pages.errors"]["layout"], {}),
    }
    with app.server.test_request_context("/"):
        for page, (layout, args) in pages.items():
            crossing = str(layout(**args, range="14d"))
            assert f"{page}-resolution-note" in crossing, page
            assert "Before 2024-05-10 the store keeps one point per day" in crossing
            assert "store-error" not in crossing
            assert f"{page}-resolution-note" not in str(layout(**args, range="24h")), page
            # beyond 14 days the fleet charts are daily anyway; the function's stays hourly
            month = str(layout(**args, range="30d"))
            assert (f"{page}-resolution-note" in month) == (page == "function"), page
    # the overview's fleet series: daily points before the boundary, hourly after
    conn = sqlite3.connect(db_path)
    points = queries.fleet_timeseries(conn, END - 30 * DAY, END)
    assert {p.span_s for p in points if p.start < BOUNDARY} == {DAY}
    assert {p.span_s for p in points if p.start >= BOUNDARY} == {H}


def test_the_schedules_prune_job_moves_the_hourly_tier(tmp_path: Path) -> None:
    db_path = tmp_path / "store.db"
    db = open_db(db_path)
    now = int(datetime.now(UTC).timestamp())  # the job prunes relative to the clock
    generate_store(db, functions=3, days=12, seed=4, end=now)
    boundary = now // DAY * DAY - 5 * DAY
    args = ["schedule", "--once", "--job", "prune", "--keep-raw", "2d", "--keep-hourly", "5d"]
    result = CliRunner().invoke(cli, ["--db", str(db_path), *args])
    assert result.exit_code == 0, result.output
    assert "prune: deleted 0 raw invocation rows older than 2d," in result.output
    moved = queries.hourly_from(db)
    assert moved in (boundary, boundary + DAY)  # the job's clock may have passed midnight
    assert f"hourly rows before {datetime.fromtimestamp(moved, UTC).date()}" in result.output
    assert _hourly_below(db, moved) == 0
