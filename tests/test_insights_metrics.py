"""Lambda Insights metrics (CloudWatch namespace LambdaInsights) collected with the metrics
source, over real HTTP to moto: only functions with the extension are asked, hours are
stored, the CPU share of a function without performance events comes from them, and the
documented InternalError status and throttling are handled as for the AWS/Lambda metrics
(InternalError: rewritten in the parsed answer, as moto always answers Complete;
throttling: a ``before-send`` Throttling error so botocore's real retries run)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from botocore.awsrequest import AWSResponse
from sqlite_utils import Database

import collectors.common
from collectors.aws import CollectOptions, run_collection
from collectors.insights_metrics import METRICS, build_queries, has_extension_layer
from lambdascope.db import open_db
from lambdascope.evidence.insights import PerformanceEvent, cpu_profiles, insert_events
from lambdascope.pricing import cpu_share
from tests.moto_fleet import (
    DEFAULT_ACCOUNT,
    HOUR0,
    NOW,
    REGIONS,
    Fleet,
    function_name,
    running_fleet,
)

NAME = function_name(DEFAULT_ACCOUNT, REGIONS[0], 0)  # 128 MB, Duration seeded
CPU_MS = (20.0, 30.0, 40.0, 50.0)  # per invocation; Duration has 4 samples per hour


@pytest.fixture(scope="module")
def fleet() -> Iterator[Fleet]:
    """The small fleet plus three hours of LambdaInsights metrics for function 0."""
    with running_fleet(2) as fleet:
        cloudwatch = fleet.client("cloudwatch", REGIONS[0])
        dims = [{"Name": "function_name", "Value": NAME}]
        data: list[dict[str, Any]] = []
        for hour in range(3):
            at = HOUR0 + timedelta(hours=hour, minutes=10)

            def point(metric: str, values: list[float], unit: str) -> dict[str, Any]:
                return {
                    "MetricName": metric,
                    "Dimensions": dims,
                    "Timestamp": at,  # noqa: B023 - used at once
                    "Values": values,
                    "Counts": [1.0] * len(values),
                    "Unit": unit,
                }

            data += [
                point("cpu_total_time", list(CPU_MS), "Milliseconds"),
                point("total_memory", [128.0] * 4, "Megabytes"),
                point("used_memory_max", [60.0, 61.0, 62.0, 70.0 + hour], "Megabytes"),
                point("memory_utilization", [47.0, 48.0, 48.0, 55.0], "Percent"),
                point("total_network", [1500.0] * 4, "Bytes"),
            ]
            if hour == 0:
                data.append(point("init_duration", [250.0], "Milliseconds"))
        cloudwatch.put_metric_data(Namespace="LambdaInsights", MetricData=data)
        yield fleet


def options(fleet: Fleet) -> CollectOptions:
    return CollectOptions(
        regions=(REGIONS[0],),
        only=("inventory", "metrics"),
        since=timedelta(hours=6),
        endpoint_url=fleet.endpoint_url,
        metric_set="full",
    )


ROWS = (
    "SELECT f.function_name, h.hour, h.invocations, h.cpu_total_ms_sum, h.total_memory_min_mb,"
    " h.total_memory_max_mb, h.used_memory_max_mb, h.init_duration_max_ms, h.init_count,"
    " h.total_network_bytes_sum, h.duration_ms_sum, h.duration_count"
    " FROM insights_metrics_hourly h JOIN functions f ON f.id = h.function_id ORDER BY h.hour"
)


def test_hours_of_functions_with_the_extension_are_stored_once(fleet: Fleet, db: Database) -> None:
    calls: list[int] = []

    def count(params: dict[str, Any], **_: Any) -> None:
        calls.append(len(params["MetricDataQueries"]))

    original = collectors.common.make_client

    def make_client(session: Any, service: str, region: str, endpoint_url: Any) -> Any:
        made = original(session, service, region, endpoint_url)
        if service == "cloudwatch":
            made.meta.events.register("provide-client-params.cloudwatch.GetMetricData", count)
        return made

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(collectors.common, "make_client", make_client)
        summary = run_collection(db, options(fleet), now=NOW)
    metrics = next(r for r in summary.results if r.source == "metrics")
    assert metrics.status == "ok"
    assert "Lambda Insights metrics: 1 functions, 3 hours" in metrics.message
    # the AWS/Lambda batch for the two functions, then one function's Insights queries
    assert calls[-1] == len(METRICS)
    start = int(HOUR0.timestamp())
    expected = [
        (
            NAME,
            start + h * 3600,
            4.0,
            140.0,
            128.0,
            128.0,
            70.0 + h,
            None,
            None,
            6000.0,
            1000.0 + h,
            4.0,
        )
        for h in range(3)
    ]
    expected[0] = (*expected[0][:7], 250.0, 1.0, *expected[0][9:])
    assert db.conn.execute(ROWS).fetchall() == expected

    fetched = "SELECT fetched_until FROM insights_metrics_fetched"
    assert db.conn.execute(fetched).fetchone() == (int(NOW.timestamp()) // 3600 * 3600,)

    # 20 minutes later the daily fetch is not due: no LambdaInsights query, nothing changes
    calls.clear()
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(collectors.common, "make_client", make_client)
        run_collection(
            db,
            CollectOptions(**{**vars(options(fleet)), "since": None}),
            now=NOW + timedelta(minutes=20),
        )
    assert len(METRICS) not in calls
    assert db.conn.execute(ROWS).fetchall() == expected
    # a day later it is: the same hours are asked again (from the last fetch on) and stay
    calls.clear()
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(collectors.common, "make_client", make_client)
        run_collection(
            db,
            CollectOptions(**{**vars(options(fleet)), "since": None}),
            now=NOW + timedelta(hours=25),
        )
    assert calls[-1] == len(METRICS)
    assert db.conn.execute(ROWS).fetchall() == expected

    profile = cpu_profiles(db, start, start + 3 * 3600)[(DEFAULT_ACCOUNT, REGIONS[0], NAME, 128)]
    assert profile.source == "metrics"
    assert profile.invocations == 12
    mean_duration = sum(1000.0 + h for h in range(3)) / 12
    assert profile.mean_cpu_ms == pytest.approx(35.0)
    assert profile.wall_share == pytest.approx(min(1.0, 35.0 / (cpu_share(128) * mean_duration)))


def test_performance_events_are_preferred_to_metrics(fleet: Fleet, db: Database) -> None:
    run_collection(db, options(fleet), now=NOW)
    start = int(HOUR0.timestamp())
    insert_events(
        db,
        [PerformanceEvent(NAME, f"r{i}", start + 60, 128, 200.0, 5.0, 60.0) for i in range(3)],
        account_id=DEFAULT_ACCOUNT,
        region=REGIONS[0],
    )
    db.conn.commit()
    # with performance events for these hours, the daily fetch skips the function
    db.conn.execute("DELETE FROM insights_metrics_fetched")
    db.conn.commit()
    summary = run_collection(db, options(fleet), now=NOW + timedelta(hours=1))
    metrics = next(r for r in summary.results if r.source == "metrics")
    assert "Lambda Insights metrics" not in metrics.message
    profile = cpu_profiles(db, start, start + 3 * 3600)[(DEFAULT_ACCOUNT, REGIONS[0], NAME, 128)]
    assert profile.source == "events"
    assert profile.invocations == 3


def test_internal_error_makes_the_part_partial(
    fleet: Fleet, db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A LambdaInsights query answered InternalError twice (first answer, then the retry of
    that query alone) is recorded: the part is partial and the watermark does not move."""

    def internal_error(parsed: dict[str, Any], **_: Any) -> None:
        for result in parsed["MetricDataResults"]:
            if result["Id"].startswith("i") and result["Id"].endswith("_m1"):
                result.update(StatusCode="InternalError", Timestamps=[], Values=[])

    original = collectors.common.make_client

    def make_client(session: Any, service: str, region: str, endpoint_url: Any) -> Any:
        made = original(session, service, region, endpoint_url)
        if service == "cloudwatch":
            made.meta.events.register("after-call.cloudwatch.GetMetricData", internal_error)
        return made

    monkeypatch.setattr(collectors.common, "make_client", make_client)
    summary = run_collection(db, options(fleet), now=NOW)
    metrics = next(r for r in summary.results if r.source == "metrics")
    assert metrics.status == "partial"
    assert {(e["action"], e["code"]) for e in metrics.failures} == {
        ("cloudwatch:GetMetricData", "InternalError")
    }
    assert (
        db.conn.execute("SELECT COUNT(*) FROM watermarks WHERE source = 'metrics'").fetchone()[0]
        == 0
    )
    # the daily fetch is not marked done: the next run asks again
    assert db.conn.execute("SELECT COUNT(*) FROM insights_metrics_fetched").fetchone() == (0,)
    # the other columns of the hours are stored; the failed one stays absent
    assert db.conn.execute(
        "SELECT COUNT(*), COUNT(cpu_total_ms_sum), COUNT(invocations) FROM insights_metrics_hourly"
    ).fetchone() == (3, 0, 3)


class _Body:
    def __init__(self, body: bytes) -> None:
        self.body = body

    def stream(self, **_: Any) -> Iterator[bytes]:
        yield self.body


def test_throttled_insights_call_is_retried(
    fleet: Fleet, db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    """CloudWatch answers the first ListMetrics of the LambdaInsights namespace with a
    throttling error: botocore's retries ask again and the collection completes."""
    attempts: list[int] = []

    def throttle(request: Any, **_: Any) -> AWSResponse | None:
        attempts.append(1)
        if len(attempts) > 1:
            return None
        return AWSResponse(
            request.url,
            400,
            {
                "x-amzn-query-error": "Throttling;Sender",
                "Content-Type": "application/cbor",
                "smithy-protocol": "rpc-v2-cbor",
            },
            _Body(b""),  # type: ignore[arg-type]
        )

    original = collectors.common.make_client

    def make_client(session: Any, service: str, region: str, endpoint_url: Any) -> Any:
        made = original(session, service, region, endpoint_url)
        if service == "cloudwatch":
            made.meta.events.register("before-send.cloudwatch.ListMetrics", throttle)
        return made

    monkeypatch.setattr(collectors.common, "make_client", make_client)
    summary = run_collection(db, options(fleet), now=NOW)
    metrics = next(r for r in summary.results if r.source == "metrics")
    assert len(attempts) >= 2
    assert metrics.status == "ok", metrics.failures
    assert db.conn.execute("SELECT COUNT(*) FROM insights_metrics_hourly").fetchone() == (3,)


def test_extension_layer_and_queries() -> None:
    assert has_extension_layer(
        '["arn:aws:lambda:us-east-1:580247275435:layer:LambdaInsightsExtension:53"]'
    )
    assert has_extension_layer(
        '["arn:aws:lambda:eu-west-1:580247275435:layer:LambdaInsightsExtension-Arm64:20"]'
    )
    assert not has_extension_layer('["arn:aws:lambda:us-east-1:1:layer:other:1"]')
    assert not has_extension_layer(None)
    queries, refs = build_queries([(7, "orders")])
    dims = {
        (q["MetricStat"]["Metric"]["Namespace"], q["MetricStat"]["Metric"]["MetricName"]): q[
            "MetricStat"
        ]["Metric"]["Dimensions"]
        for q in queries
    }
    assert dims[("LambdaInsights", "cpu_total_time")] == [
        {"Name": "function_name", "Value": "orders"}
    ]
    assert dims[("AWS/Lambda", "Duration")] == [{"Name": "FunctionName", "Value": "orders"}]
    assert len(refs) == len(METRICS)


def test_migration_adds_the_table(tmp_path: Path) -> None:
    db = open_db(tmp_path / "s.db")
    assert "insights_metrics_hourly" in db.table_names()


def test_denied_listing_falls_back_to_the_layers(
    fleet: Fleet, db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    """ListMetrics denied: recorded (the part is partial, the daily fetch is not marked
    done), and functions whose layers show the extension are still read."""
    run_collection(db, CollectOptions(**{**vars(options(fleet)), "only": ("inventory",)}), now=NOW)
    layer = "arn:aws:lambda:us-east-1:580247275435:layer:LambdaInsightsExtension:53"
    db.conn.execute(
        "UPDATE functions SET layers_json = ? WHERE function_name = ?", (f'["{layer}"]', NAME)
    )
    db.conn.commit()

    def deny(request: Any, **_: Any) -> AWSResponse:
        return AWSResponse(
            request.url,
            403,
            {
                "x-amzn-query-error": "AccessDenied;Sender",
                "Content-Type": "application/cbor",
                "smithy-protocol": "rpc-v2-cbor",
            },
            _Body(b""),  # type: ignore[arg-type]
        )

    original = collectors.common.make_client

    def make_client(session: Any, service: str, region: str, endpoint_url: Any) -> Any:
        made = original(session, service, region, endpoint_url)
        if service == "cloudwatch":
            made.meta.events.register("before-send.cloudwatch.ListMetrics", deny)
        return made

    monkeypatch.setattr(collectors.common, "make_client", make_client)
    summary = run_collection(
        db, CollectOptions(**{**vars(options(fleet)), "only": ("metrics",)}), now=NOW
    )
    metrics = next(r for r in summary.results if r.source == "metrics")
    assert metrics.status == "partial"
    assert ("cloudwatch:ListMetrics", "AccessDenied") in {
        (e["action"], e["code"]) for e in metrics.failures
    }
    assert "Lambda Insights metrics: 1 functions, 3 hours" in metrics.message
    assert db.conn.execute("SELECT COUNT(*) FROM insights_metrics_fetched").fetchone() == (0,)
