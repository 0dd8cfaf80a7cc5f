"""The dashboard's glue over lambdascope's read API, on real SQLite files: URL filters,
per-function rows, cost, findings, the memory report download and cache invalidation."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from sqlite_utils import Database

from dashboards import data
from dashboards.app import create_app
from lambdascope import cost, histogram
from lambdascope.db import function_id, open_db
from tests.test_queries import T0, H, add_fact, add_function, add_metrics

NOW = T0 + 30 * 60  # mid-hour; the 24 h view ends at T0 + 1 h


def test_view_from_query_maps_every_url_filter() -> None:
    view = data.view_from_query(
        {
            "range": "24h",
            "account": "111",
            "region": "eu-west-1",
            "runtime": "python3.12",
            "arch": "arm64",
            "tag": "team=pay",
            "q": "Orders",
        },
        NOW,
    )
    assert (view.start, view.end) == (T0 + H - 86400, T0 + H)
    f = view.filters
    assert (f.account_ids, f.regions, f.runtimes, f.architectures) == (
        ("111",),
        ("eu-west-1",),
        ("python3.12",),
        ("arm64",),
    )
    assert (f.tag, f.name_contains) == ("team=pay", "Orders")
    assert data.view_from_query({"range": "90d"}, NOW).bucket_s == 86400
    assert data.view_from_query({}, NOW).bucket_s == 3600


def test_custom_range_includes_both_days_and_bad_dates_fall_back() -> None:
    custom = data.view_from_query(
        {"range": "custom", "from": "2026-11-01", "to": "2026-11-02"}, NOW
    )
    assert custom.end - custom.start == 2 * 86400
    bad = data.view_from_query({"range": "custom", "from": "junk", "to": ""}, NOW)
    assert bad.end - bad.start == 7 * 86400


def _two_memory_function(db: Database) -> int:
    fid = add_function(
        db, "orders", account_id="1", region="eu-west-1", memory_mb=1024, runtime="python3.12"
    )
    add_fact(db, fid, T0 - 2 * H, 512, durations=[100.0] * 30, used=[200] * 30)
    add_fact(db, fid, T0 - H, 1024, durations=[50.0] * 10, used=[300] * 10)
    # CloudWatch counted twice what the logs saw in the second hour.
    add_metrics(db, fid, T0 - H, invocations=20, errors=2, throttles=1)
    db.conn.execute(
        "UPDATE hourly_facts SET billed_duration_ms_sum = duration_ms_sum WHERE function_id = ?",
        (fid,),
    )
    db.conn.commit()
    return fid


def test_function_table_is_one_row_per_function_with_merged_percentiles_and_cost(
    db: Database,
) -> None:
    _two_memory_function(db)
    add_function(db, "idle", account_id="1", region="eu-west-1", runtime="nodejs20.x")
    table = data.function_table(db, data.view_from_query({"range": "24h"}, NOW))
    rows = {r["function_name"]: r for r in table.to_dict("records")}
    assert set(rows) == {"orders", "idle"}
    orders = rows["orders"]
    assert orders["invocations"] == pytest.approx(30 + 20)
    assert orders["errors"] == pytest.approx(2) and orders["throttles"] == pytest.approx(1)
    assert orders["memory_sizes"] == "512, 1024"
    assert orders["memory_mb"] == 1024
    assert orders["memory_used_ratio"] == pytest.approx(300 / 1024)
    assert orders["max_memory_used_mb"] == 300
    # 40 durations: 30 at 100 ms, 10 at 50 ms -> the merged p50 is ~100 ms, p95 ~100 ms.
    assert orders["duration_p50"] == pytest.approx(100, rel=0.02)
    assert orders["duration_p95"] >= orders["duration_p50"]
    expected = (
        cost.window_cost(
            cost.UsageTotals(30, 512, 3000.0), architecture=None, region="eu-west-1"
        ).total_usd
        + cost.window_cost(
            cost.UsageTotals(20, 1024, 500.0 * 2), architecture=None, region="eu-west-1"
        ).total_usd
    )
    assert orders["cost_usd"] == pytest.approx(expected)
    assert rows["idle"]["invocations"] == 0 and rows["idle"]["cost_usd"] == 0
    only_node = data.function_table(db, data.view_from_query({"runtime": "nodejs20.x"}, NOW))
    assert list(only_node["function_name"]) == ["idle"]


def test_function_series_costs_per_day_and_fleet_frame(db: Database) -> None:
    fid = _two_memory_function(db)
    view = data.view_from_query({"range": "24h"}, NOW)
    from lambdascope import queries

    info = queries.function_by_id(db, fid)
    assert info is not None
    series = data.function_series(db, info, view)
    assert list(series["invocations"]) == [30, 20]
    assert list(series["configured_memory_mb"]) == [512, 1024]
    daily = data.daily_cost(series)
    assert daily["cost_usd"].sum() == pytest.approx(series["cost_usd"].sum())
    fleet = data.fleet_frame(db, view)
    assert fleet["invocations"].sum() == pytest.approx(50)
    assert str(fleet["time"].dt.tz) == "UTC"


def test_recommendations_follow_filters_the_analysis_cannot_apply(db: Database) -> None:
    for name, runtime in (("py", "python3.12"), ("js", "nodejs20.x")):
        fid = add_function(db, name, memory_mb=2048, runtime=runtime)
        for hour in range(6):
            add_fact(db, fid, T0 - (hour + 1) * H, 2048, durations=[20.0] * 20, used=[90] * 20)
    view = data.view_from_query({"runtime": "nodejs20.x"}, NOW)
    from lambdascope import queries

    infos = queries.list_functions(db, view.filters)
    recs = data.recommendations(db, view, infos)
    assert [r.function_name for r in recs] == ["js"]
    assert data.primary_finding(recs) == {("", "", "js"): recs[0].finding}
    frame = data.recommendations_frame(recs)
    assert list(frame["function_name"]) == ["js"]


def _post(client: Any, payload: dict[str, Any]) -> dict[str, Any]:
    response = client.post("/_dash-update-component", json=payload)
    assert response.status_code == 200, response.get_data(as_text=True)[:500]
    return dict(json.loads(response.get_data(as_text=True)))


def _render(client: Any, path: str, search: str = "") -> str:
    payload = {
        "output": ".._pages_content.children..._pages_store.data..",
        "outputs": [
            {"id": "_pages_content", "property": "children"},
            {"id": "_pages_store", "property": "data"},
        ],
        "inputs": [
            {"id": "_pages_location", "property": "pathname", "value": path},
            {"id": "_pages_location", "property": "search", "value": search},
        ],
        "changedPropIds": ["_pages_location.pathname"],
        "state": [],
    }
    return json.dumps(_post(client, payload))


def test_memory_report_downloads_as_csv_and_html(db_path: Path) -> None:
    db = open_db(db_path)
    fid = add_function(db, "big", memory_mb=3008, runtime="python3.12")
    for hour in range(6):
        add_fact(db, fid, T0 - (hour + 1) * H, 3008, durations=[20.0] * 20, used=[100] * 20)
    client = create_app(db_path, clock=lambda: NOW).server.test_client()
    assert "rightsizing-download-html" in _render(client, "/right-sizing")

    def download(button: str) -> dict[str, Any]:
        payload = {
            "output": "rightsizing-download.data",
            "outputs": {"id": "rightsizing-download", "property": "data"},
            "inputs": [
                {
                    "id": "rightsizing-download-csv",
                    "property": "n_clicks",
                    "value": 1 if button == "csv" else None,
                },
                {
                    "id": "rightsizing-download-html",
                    "property": "n_clicks",
                    "value": 1 if button == "html" else None,
                },
            ],
            "state": [{"id": "url", "property": "search", "value": "?range=24h"}],
            "changedPropIds": [f"rightsizing-download-{button}.n_clicks"],
        }
        return dict(_post(client, payload)["response"]["rightsizing-download"]["data"])

    csv = download("csv")
    assert csv["filename"].endswith(".csv")
    header, row = csv["content"].splitlines()[:2]
    assert header.startswith("function_name,account_id,region")
    assert "compute_optimizer_memory_mb" in header  # the same keys as `report memory`
    assert row.startswith("big,") and "over-provisioned" in row
    page = download("html")
    assert page["filename"].endswith(".html")
    assert "<html" in page["content"] and "big" in page["content"]


def test_rendered_pages_follow_writes_to_the_store(db_path: Path) -> None:
    db = open_db(db_path)
    fid = add_function(db, "first", runtime="python3.12")
    add_fact(db, fid, T0 - H, 128, durations=[5.0] * 3)
    client = create_app(db_path, clock=lambda: NOW).server.test_client()
    assert "later-fn" not in _render(client, "/functions")
    assert _render(client, "/functions") == _render(client, "/functions")
    with db.conn:
        function_id(db, "later-fn", "111111111111", "us-east-1")
    assert "later-fn" in _render(client, "/functions")


def test_every_page_answers_without_error_on_empty_and_unmatched_stores(db_path: Path) -> None:
    client = create_app(db_path, clock=lambda: NOW).server.test_client()
    for path, empty_id in (
        ("/", "overview-empty"),
        ("/functions", "functions-empty"),
        ("/functions/nope", "function-empty"),
        ("/right-sizing", "rightsizing-empty"),
        ("/stale", "stale-empty"),
        ("/errors", "errors-empty"),
        ("/collection", "collection-empty"),
    ):
        assert empty_id in _render(client, path), path
    db = open_db(db_path)
    fid = add_function(db, "one")
    add_fact(db, fid, T0 - H, 128, durations=[5.0])
    for path in ("/", "/functions", "/right-sizing", "/stale", "/errors"):
        body = _render(client, path, "?q=no-such-function")
        assert "No function matches these filters" in body, path


def test_histogram_helper_is_the_fleet_merge(db: Database) -> None:
    _two_memory_function(db)
    from lambdascope import queries

    stats = queries.function_stats(db, T0 - 86400, T0 + H)
    assert histogram.count(data.fleet_histogram(stats)) == 40


def test_collection_page_spells_out_recorded_errors(db_path: Path) -> None:
    db = open_db(db_path)
    db.conn.execute(
        "INSERT INTO collection_runs (started_at, finished_at, account_id, region, source,"
        " status, errors_json) VALUES (?, ?, '111111111111', 'eu-west-1', 'logs', 'partial', ?)",
        (T0 - 600, T0 - 540, json.dumps([{"action": "logs:StartQuery", "code": "AccessDenied"}])),
    )
    db.conn.commit()
    client = create_app(db_path, clock=lambda: NOW).server.test_client()
    body = _render(client, "/collection")
    assert "logs:StartQuery: AccessDenied" in body
    assert "2025-12-31 23:50" in body  # started, to the minute (UTC)


def test_cost_adds_init_time_not_inside_the_billed_duration(db: Database) -> None:
    fid = add_function(db, "cold", region="us-east-1", memory_mb=1024)
    add_fact(db, fid, T0 - H, 1024, durations=[100.0] * 10, cold_starts=2)
    view = data.view_from_query({"range": "24h"}, NOW)
    db.conn.execute(
        "UPDATE hourly_facts SET billed_duration_ms_sum = 1000 WHERE function_id = ?", (fid,)
    )
    db.conn.commit()
    without_init = data.function_table(db, view)["cost_usd"][0]
    db.conn.execute(
        "UPDATE hourly_facts SET init_duration_ms_sum = 2000 WHERE function_id = ?", (fid,)
    )
    db.conn.commit()
    with_init = data.function_table(db, view)["cost_usd"][0]
    init_usd = cost.window_cost(
        cost.UsageTotals(0, 1024, 0, billable_init_ms=2000), architecture=None
    ).total_usd
    assert with_init - without_init == pytest.approx(init_usd)


def test_a_store_older_than_the_range_links_to_its_latest_days(db_path: Path) -> None:
    db = open_db(db_path)
    fid = add_function(db, "old", memory_mb=512, runtime="python3.12")
    for hour in range(6):
        add_fact(db, fid, T0 - (hour + 1) * H, 512, durations=[20.0] * 10, used=[90] * 10)
    # "now" is 60 days after the data: the default range holds nothing
    client = create_app(db_path, clock=lambda: NOW + 60 * 86400).server.test_client()
    page = _render(client, "/")
    assert "overview-older-data" in page
    assert "the latest data is from 2025-12-31 23:00 UTC" in page
    link = "?range=custom&from=2025-12-25&to=2025-12-31"
    assert link in page
    # the linked range shows the data
    shown = _render(client, "/", link)
    assert "overview-older-data" not in shown
    def invocations_kpi(body: str) -> str:
        after = body[body.index('"Invocations"') :]
        return after[after.index('"children": "') + 13 : after.index('", "className": "kpi-value"')]

    assert invocations_kpi(page) == "0"
    assert invocations_kpi(shown) == "60"


def test_recommendations_from_stats_already_read_are_the_same(db: Database) -> None:
    from lambdascope import queries, rightsizing

    for name, used in (("small", 90), ("big", 1400)):
        fid = add_function(db, name, memory_mb=2048, runtime="python3.12")
        for hour in range(8):
            add_fact(db, fid, T0 - (hour + 1) * H, 2048, durations=[20.0] * 20, used=[used] * 20)
    view = data.view_from_query({"range": "24h"}, NOW)
    infos = queries.list_functions(db, view.filters)
    raw = queries.function_stats(
        db, view.start, view.end, view.filters, histograms=rightsizing.WINDOW_HISTOGRAMS
    )
    read_again = data.recommendations(db, view, infos)
    reused = data.recommendations(db, view, infos, raw)
    assert [r.as_dict() for r in reused] == [r.as_dict() for r in read_again]
    assert len(reused) == 2
    assert all(r.recommended_memory_mb is not None for r in reused)  # real recommendations


def test_a_function_on_managed_instances_says_so_on_its_page(db_path: Path) -> None:
    db = open_db(db_path)
    fid = add_function(db, "on-instances", runtime="python3.12")
    add_fact(db, fid, T0 - H, 2048, durations=[50.0] * 60)
    provider = "arn:aws:lambda:us-east-1:111111111111:capacity-provider:fleet-a"
    with db.conn:
        db.conn.execute(
            "UPDATE functions SET capacity_provider_arn = ?, memory_gib_per_vcpu = 4"
            " WHERE id = ?",
            (provider, fid),
        )
    client = create_app(db_path, clock=lambda: NOW).server.test_client()
    body = _render(client, "/functions/on-instances")
    assert "Lambda Managed Instances" in body and provider in body
    assert "4 GiB" in body
