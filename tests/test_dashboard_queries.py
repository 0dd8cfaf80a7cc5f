"""Reads added for the dashboard (lambdascope.queries) on real SQLite files."""

from __future__ import annotations

import pytest
from sqlite_utils import Database

from lambdascope import queries
from lambdascope.queries import Filters
from tests.test_queries import T0, H, add_fact, add_function, add_metrics


def test_has_functions(db: Database) -> None:
    assert queries.has_functions(db) is False
    add_function(db, "f")
    assert queries.has_functions(db) is True


def test_function_config_parses_tags_and_survives_bad_json(db: Database) -> None:
    fid = add_function(
        db, "f", account_id="1", region="r", tags={"team": "a"}, reserved_concurrency=5
    )
    config = queries.function_config(db, fid)
    assert config is not None
    assert config["tags"] == {"team": "a"}
    assert config["reserved_concurrency"] == 5
    assert config["layers"] == []
    db.conn.execute("UPDATE functions SET tags_json = 'not json' WHERE id = ?", (fid,))
    assert queries.function_config(db, fid)["tags"] == {}  # type: ignore[index]
    assert queries.function_config(db, fid + 100) is None


def test_function_versions_with_aliases_in_numeric_order(db: Database) -> None:
    fid = add_function(db, "f")
    for version in ("10", "2", "$LATEST", "3"):
        db.conn.execute(
            "INSERT INTO function_versions (function_id, version, code_size_bytes)"
            " VALUES (?, ?, 100)",
            (fid, version),
        )
    db.conn.execute(
        "UPDATE function_versions SET deleted_at = 1 WHERE function_id = ? AND version = '3'",
        (fid,),
    )
    db.conn.execute(
        "INSERT INTO function_aliases (function_id, alias_name, function_version)"
        " VALUES (?, 'live', '10')",
        (fid,),
    )
    versions = queries.function_versions(db, fid)
    assert [v["version"] for v in versions] == ["2", "10", "$LATEST"]
    assert versions[1]["aliases"] == "live"


def test_function_health_keeps_absent_metrics_absent(db: Database) -> None:
    stream = add_function(db, "stream", runtime="python3.12", reserved_concurrency=10)
    quiet = add_function(db, "quiet", runtime="nodejs20.x")
    add_metrics(db, stream, T0, invocations=5, concurrent_executions_max=4, iterator_age_max_ms=900)
    add_metrics(
        db, stream, T0 + H, invocations=5, concurrent_executions_max=9, iterator_age_max_ms=300
    )
    add_metrics(db, stream, T0 + 5 * H, concurrent_executions_max=50)  # outside the window
    add_metrics(db, quiet, T0, invocations=2, async_events_dropped=3)
    add_metrics(db, quiet, T0 + H, invocations=2, async_events_dropped=4)
    health = {h.function_id: h for h in queries.function_health(db, T0, T0 + 2 * H)}
    assert health[stream].concurrency_max == 9
    assert health[stream].reserved_concurrency == 10
    assert health[stream].iterator_age_max_ms == 900
    assert health[stream].async_events_dropped is None
    assert health[quiet].async_events_dropped == 7
    assert health[quiet].concurrency_max is None and health[quiet].iterator_age_max_ms is None
    only_node = queries.function_health(db, T0, T0 + 2 * H, Filters(runtimes=("nodejs20.x",)))
    assert [h.function_id for h in only_node] == [quiet]


def test_health_timeseries_buckets_and_filters(db: Database) -> None:
    a = add_function(db, "a", region="eu-west-1")
    b = add_function(db, "b", region="us-east-1")
    add_metrics(db, a, T0, concurrent_executions_max=3, iterator_age_max_ms=100)
    add_metrics(db, b, T0, concurrent_executions_max=5, async_events_dropped=2)
    add_metrics(db, a, T0 + H, concurrent_executions_max=7, iterator_age_max_ms=50)
    add_fact(db, a, T0 + 2 * H, 128, durations=[1.0])  # facts alone are not health data
    hourly = queries.health_timeseries(db, T0, T0 + 3 * H)
    assert [p.start for p in hourly] == [T0, T0 + H]
    assert hourly[0].concurrency_sum_max == 8  # both functions' peaks in that hour
    assert hourly[0].async_events_dropped == 2
    assert hourly[1].async_events_dropped is None
    [daily] = queries.health_timeseries(db, T0, T0 + 3 * H, bucket_s=86400)
    assert daily.concurrency_sum_max == 8 and daily.iterator_age_max_ms == 100
    eu = queries.health_timeseries(db, T0, T0 + 3 * H, Filters(regions=("eu-west-1",)))
    assert [p.concurrency_sum_max for p in eu] == [3, 7]
    assert all(p.async_events_dropped is None for p in eu)
    with pytest.raises(ValueError):
        queries.health_timeseries(db, T0, T0 + H, bucket_s=0)


def test_tag_choices_are_keys_and_pairs_usable_as_filters(db: Database) -> None:
    add_function(db, "a", tags={"team": "pay", "env": "prod"})
    add_function(db, "b", tags={"team": "search"})
    gone = add_function(db, "c", tags={"owner": "x"})
    db.conn.execute("UPDATE functions SET deleted_at = 1 WHERE id = ?", (gone,))
    choices = queries.tag_choices(db)
    assert choices == ("env", "env=prod", "team", "team=pay", "team=search")
    names = [i.function_name for i in queries.list_functions(db, Filters(tag="team=pay"))]
    assert names == ["a"]
