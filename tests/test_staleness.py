from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner
from sqlite_utils import Database

from lambdascope.cli import cli
from lambdascope.db import function_id
from lambdascope.staleness import (
    find_stale,
    routing_versions,
    runtime_deprecations,
    runtime_table_source,
    score_function,
    versions_to_delete,
)
from tests.test_cli_report import END, UNTIL, add_hours

DAY = 86400


def test_versions_to_delete_keeps_three_newest_latest_and_aliased() -> None:
    versions = ["$LATEST", "1", "2", "3", "4", "5", "6", "10"]
    assert versions_to_delete(versions, {"2"}) == ["1", "3", "4"]
    assert versions_to_delete(["$LATEST", "1", "2"], set()) == []


def test_runtime_table_has_dates() -> None:
    table = runtime_deprecations()
    assert table["python3.9"] == 1765756800  # 2025-12-15
    assert table["nodejs18.x"] < table["python3.12"]


def test_score_function_signals_each_shown() -> None:
    signals, stale = score_function(
        now=END,
        runtime="nodejs18.x",
        last_invoked=END - 40 * DAY,
        first_seen=None,
        last_modified=END - 400 * DAY,
        code_size_bytes=80 * 1024**2,
        timeout_s=900,
        duration_max_ms=1200.0,
        extra_versions=["1", "2"],
    )
    keys = [s.key for s in signals]
    assert keys == [
        "idle",
        "not_modified",
        "deprecated_runtime",
        "extra_versions",
        "huge_code",
        "max_timeout_short_runs",
    ]
    assert stale
    assert signals[0].detail == "no invocations for 40 days (>= 30)"
    assert signals[2].detail == "runtime nodejs18.x deprecated since 2025-09-01"


def test_recently_modified_idle_function_is_not_stale() -> None:
    _, stale = score_function(
        now=END,
        runtime="python3.13",
        last_invoked=None,
        first_seen=END - 90 * DAY,
        last_modified=END - 2 * DAY,
        code_size_bytes=None,
        timeout_s=None,
        duration_max_ms=None,
        extra_versions=[],
    )
    assert not stale


def _inventory(db: Database) -> None:
    old = add_hours(
        db,
        "old-job",
        memory_mb=256,
        hours=5,
        per_hour=3,
        memory_used=(50, 60),
        first_hour_offset=60 * 24,
        runtime="python3.9",
    )
    busy = add_hours(
        db,
        "busy-api",
        memory_mb=512,
        hours=5,
        per_hour=30,
        memory_used=(50, 60),
        runtime="python3.13",
    )
    logs_only = function_id(db, "logs-only", "", "", seen_at=END - 45 * DAY)
    with db.conn:
        db.conn.execute(
            "UPDATE functions SET last_modified = ?, code_size_bytes = ? WHERE id = ?",
            (END - 200 * DAY, 5_000_000, old),
        )
        db.conn.execute(
            "UPDATE functions SET last_modified = ?, code_size_bytes = ? WHERE id = ?",
            (END - 5 * DAY, 7_000_000, busy),
        )
        for v in ("$LATEST", "1", "2", "3", "4", "5"):
            db.conn.execute(
                "INSERT INTO function_versions (function_id, version,"
                " code_size_bytes) VALUES (?, ?, ?)",
                (old, v, 1_000_000),
            )
        db.conn.execute(
            "INSERT INTO function_aliases (function_id, alias_name,"
            " function_version) VALUES (?, 'live', '1')",
            (old,),
        )
        db.conn.execute(
            "INSERT INTO account_settings (account_id, region, code_storage_bytes,"
            " code_storage_limit_bytes) VALUES ('111111111111', 'us-east-1', ?, ?)",
            (60 * 1024**3, 75 * 1024**3),
        )
    del logs_only


def test_find_stale_on_a_real_store(db: Database) -> None:
    _inventory(db)
    report = find_stale(db, END)
    by_name = {f.function_name: f for f in report.functions}
    assert by_name["old-job"].stale
    assert by_name["old-job"].versions_to_delete == ("2",)
    assert not by_name["busy-api"].stale
    # logs only: last seen 45 days ago, no invocations -> idle; no inventory signals
    logs_only = by_name["logs-only"]
    assert logs_only.stale
    assert [s.key for s in logs_only.signals] == ["idle"]
    assert [f.function_name for f in report.functions_to_review] == ["logs-only", "old-job"]
    assert report.storage[0].used_fraction == 0.8


def test_stale_report_cli_json(db: Database, db_path: Path) -> None:
    _inventory(db)
    result = CliRunner().invoke(cli, ["--db", str(db_path), "report", "stale", "--until", UNTIL])
    assert result.exit_code == 0
    doc = json.loads(result.stdout)
    assert doc["safe_cleanup"]["versions_to_delete"] == [
        {
            "function_name": "old-job",
            "account_id": "111111111111",
            "region": "us-east-1",
            "version": "2",
        }
    ]
    assert doc["code_storage"][0]["used_fraction"] == 0.8
    old = next(f for f in doc["functions"] if f["function_name"] == "old-job")
    assert {s["key"] for s in old["signals"]} >= {
        "idle",
        "not_modified",
        "deprecated_runtime",
        "extra_versions",
    }


def test_routing_versions_both_shapes() -> None:
    assert routing_versions('{"2": 0.1}') == {"2"}
    assert routing_versions('{"AdditionalVersionWeights": {"3": 0.05}}') == {"3"}
    assert routing_versions(None) == set()
    assert routing_versions("not json") == set()
    assert routing_versions("[1, 2]") == set()


@pytest.mark.parametrize("routing", ['{"2": 0.2}', '{"AdditionalVersionWeights": {"2": 0.2}}'])
def test_version_reached_through_alias_routing_is_never_deleted(db: Database, routing: str) -> None:
    fid = add_hours(db, "canary", memory_mb=256, hours=2, per_hour=3, memory_used=(50, 60))
    with db.conn:
        for v in ("$LATEST", "1", "2", "3", "4", "5", "6"):
            db.conn.execute(
                "INSERT INTO function_versions (function_id, version) VALUES (?, ?)", (fid, v)
            )
        db.conn.execute(
            "INSERT INTO function_aliases (function_id, alias_name, function_version,"
            " routing_json) VALUES (?, 'live', '6', ?)",
            (fid, routing),
        )
    report = find_stale(db, END)
    (canary,) = report.functions
    # newest three (6, 5, 4) kept; 2 takes 20 % of the alias's traffic
    assert canary.versions_to_delete == ("1", "3")
    assert [s.key for s in canary.signals] == ["extra_versions"]
    assert canary.signals[0].detail == "2 unaliased versions beyond the 3 newest"


def test_runtime_table_covers_deprecated_and_current_runtimes() -> None:
    table = runtime_deprecations()
    for runtime in ("java8", "python3.7", "nodejs14.x", "dotnetcore3.1", "ruby2.7"):
        assert table[runtime] < END  # deprecated before 2026
    for runtime in ("nodejs24.x", "java21", "provided.al2023", "ruby3.4", "dotnet10"):
        assert table[runtime] > END
    signals, _ = score_function(
        now=END,
        runtime="java11",
        last_invoked=END,
        first_seen=None,
        last_modified=END,
        code_size_bytes=None,
        timeout_s=None,
        duration_max_ms=None,
        extra_versions=[],
    )
    assert [(s.key, s.detail) for s in signals] == [
        ("soon_deprecated_runtime", "runtime java11 deprecation scheduled for 2026-06-30")
    ]
    assert "lambda-runtimes.html" in runtime_table_source()
