"""GetMetricData MetricDataResult StatusCode InternalError / Forbidden.

The API reference: "InternalError indicates that an error occurred. Retry your request using
NextToken, if present." Such a query is asked once more, then recorded: the metrics part is
partial and its watermark does not move, so the missing hours are read again next run.
Paging is served by ``botocore.stub.Stubber``; the end-to-end path runs over HTTP against
moto, with the status rewritten in the parsed answer (moto always answers Complete).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import pytest
from botocore.stub import ANY, Stubber
from sqlite_utils import Database

import collectors.common
from collectors.aws import CollectOptions, run_collection
from collectors.metrics import METRIC_QUERIES, build_queries, failed_queries, get_metric_data
from tests.moto_fleet import NOW, Fleet, small_moto_fleet

__all__ = ["small_moto_fleet"]

START = 1_700_002_800
END = START + 3 * 3600


def client() -> Any:
    return boto3.client(
        "cloudwatch",
        region_name="us-east-1",
        aws_access_key_id="x",
        aws_secret_access_key="x",
        endpoint_url="http://127.0.0.1:9",
    )


def answer(query_id: str, status: str, hours: int = 0) -> dict[str, Any]:
    at = [datetime.fromtimestamp(START + h * 3600, UTC) for h in range(hours)]
    return {
        "Id": query_id,
        "Label": query_id,
        "StatusCode": status,
        "Timestamps": at,
        "Values": [1.0] * hours,
    }


QUERIES, _ = build_queries([(1, "orders")], METRIC_QUERIES[:2])
FIRST, SECOND = (q["Id"] for q in QUERIES)


def test_internal_error_without_next_token_asks_that_query_once_more() -> None:
    cloudwatch = client()
    stubber = Stubber(cloudwatch)
    stubber.add_response(
        "get_metric_data",
        {"MetricDataResults": [answer(FIRST, "Complete", 3), answer(SECOND, "InternalError")]},
        {
            "MetricDataQueries": QUERIES,
            "StartTime": ANY,
            "EndTime": ANY,
            "ScanBy": "TimestampAscending",
        },
    )
    stubber.add_response(  # only the failing query is asked again
        "get_metric_data",
        {"MetricDataResults": [answer(SECOND, "Complete", 2)]},
        {
            "MetricDataQueries": [QUERIES[1]],
            "StartTime": ANY,
            "EndTime": ANY,
            "ScanBy": "TimestampAscending",
        },
    )
    with stubber:
        results = list(get_metric_data(cloudwatch, QUERIES, START, END))
        stubber.assert_no_pending_responses()
    assert failed_queries(results) == {}
    assert [r["StatusCode"] for r in results] == ["Complete", "InternalError", "Complete"]


def test_internal_error_with_next_token_is_retried_with_the_token() -> None:
    cloudwatch = client()
    stubber = Stubber(cloudwatch)
    expected = {
        "MetricDataQueries": QUERIES,
        "StartTime": ANY,
        "EndTime": ANY,
        "ScanBy": "TimestampAscending",
    }
    stubber.add_response(
        "get_metric_data",
        {
            "MetricDataResults": [answer(FIRST, "Complete", 3), answer(SECOND, "InternalError")],
            "NextToken": "t1",
        },
        expected,
    )
    stubber.add_response(
        "get_metric_data",
        {"MetricDataResults": [answer(SECOND, "Complete", 1)]},
        {**expected, "NextToken": "t1"},
    )
    with stubber:
        results = list(get_metric_data(cloudwatch, QUERIES, START, END))
        stubber.assert_no_pending_responses()
    assert failed_queries(results) == {}


@pytest.mark.parametrize("status", ["InternalError", "Forbidden"])
def test_a_query_failing_twice_is_asked_no_more_and_reported(status: str) -> None:
    cloudwatch = client()
    stubber = Stubber(cloudwatch)
    stubber.add_response(
        "get_metric_data",
        {"MetricDataResults": [answer(FIRST, "Complete", 3), answer(SECOND, status)]},
    )
    stubber.add_response("get_metric_data", {"MetricDataResults": [answer(SECOND, status)]})
    with stubber:
        results = list(get_metric_data(cloudwatch, QUERIES, START, END))
        stubber.assert_no_pending_responses()
    assert failed_queries(results) == {status: [SECOND]}


def test_internal_error_makes_the_part_partial_and_keeps_the_watermark(
    small_moto_fleet: Fleet, db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The first run completes (watermark set); in the second, CloudWatch answers
    InternalError for one query twice: the part is partial, the error is recorded and the
    watermark stays where the first run left it."""
    options = CollectOptions(
        regions=("us-east-1",),
        only=("inventory", "metrics"),
        since=timedelta(hours=6),
        endpoint_url=small_moto_fleet.endpoint_url,
        metric_set="full",
    )
    run_collection(db, options, now=NOW)
    watermark = "SELECT watermark FROM watermarks WHERE source = 'metrics'"
    (first_mark,) = db.conn.execute(watermark).fetchone()

    calls: list[int] = []

    def internal_error(parsed: dict[str, Any], **_: Any) -> None:
        calls.append(len(parsed["MetricDataResults"]))
        parsed["MetricDataResults"][0]["StatusCode"] = "InternalError"

    original = collectors.common.make_client

    def make_client(session: Any, service: str, region: str, endpoint_url: Any) -> Any:
        made = original(session, service, region, endpoint_url)
        if service == "cloudwatch":
            made.meta.events.register("after-call.cloudwatch.GetMetricData", internal_error)
        return made

    monkeypatch.setattr(collectors.common, "make_client", make_client)
    later = NOW + timedelta(hours=3)
    summary = run_collection(db, CollectOptions(**{**vars(options), "since": None}), now=later)

    metrics = next(r for r in summary.results if r.source == "metrics")
    assert metrics.status == "partial"
    assert [(e["action"], e["code"]) for e in metrics.failures] == [
        ("cloudwatch:GetMetricData", "InternalError")
    ]
    assert calls == [len(METRIC_QUERIES) * 2, 1]  # the batch, then the failing query again
    assert db.conn.execute(watermark).fetchone() == (first_mark,)
    assert summary.exit_code == 2


def test_lean_cadence_keeps_a_failed_metric_due_and_the_watermark(
    small_moto_fleet: Fleet, db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With the lean cadence a query answered InternalError twice makes the part partial,
    and neither the watermark nor that metric's cadence moves: the next run asks for the
    same hours again and, once CloudWatch answers, both move on."""
    options = CollectOptions(
        regions=("us-east-1",),
        only=("inventory", "metrics"),
        endpoint_url=small_moto_fleet.endpoint_url,
    )
    run_collection(db, CollectOptions(**{**vars(options), "since": timedelta(hours=6)}), now=NOW)
    watermark = "SELECT watermark FROM watermarks WHERE source = 'metrics'"
    fetched = (
        "SELECT fetched_until FROM metric_cadence WHERE metric_name = 'ConcurrentExecutions'"
    )
    (first_mark,) = db.conn.execute(watermark).fetchone()
    (first_fetched,) = db.conn.execute(fetched).fetchone()

    failing = [True]

    def internal_error(parsed: dict[str, Any], **_: Any) -> None:
        if failing[0]:
            for result in parsed["MetricDataResults"]:
                result["StatusCode"] = "InternalError"

    original = collectors.common.make_client

    def make_client(session: Any, service: str, region: str, endpoint_url: Any) -> Any:
        made = original(session, service, region, endpoint_url)
        if service == "cloudwatch":
            made.meta.events.register("after-call.cloudwatch.GetMetricData", internal_error)
        return made

    monkeypatch.setattr(collectors.common, "make_client", make_client)
    later = NOW + timedelta(hours=3)  # ConcurrentExecutions (every 3 h) is due again
    summary = run_collection(db, options, now=later)

    metrics = next(r for r in summary.results if r.source == "metrics")
    assert metrics.status == "partial"
    assert {(e["action"], e["code"]) for e in metrics.failures} == {
        ("cloudwatch:GetMetricData", "InternalError")
    }
    assert db.conn.execute(watermark).fetchone() == (first_mark,)
    assert db.conn.execute(fetched).fetchone() == (first_fetched,)
    assert summary.exit_code == 2

    failing[0] = False
    again = run_collection(db, options, now=later)
    assert next(r for r in again.results if r.source == "metrics").status == "ok"
    assert db.conn.execute(watermark).fetchone()[0] > first_mark
    assert db.conn.execute(fetched).fetchone()[0] > first_fetched
