"""GetMetricData query packing, NextToken paging, and absence-as-absence loading."""

from __future__ import annotations

import math
import re
from datetime import UTC, datetime

import boto3
from botocore.stub import Stubber
from sqlite_utils import Database

from collectors.aws import CallCounter, SourceResult, Store, Target
from collectors.metrics import (
    MAX_QUERIES_PER_CALL,
    METRIC_QUERIES,
    REVISION_HORIZON_S,
    QueryRef,
    batches,
    build_queries,
    collect,
    complete_columns,
    get_metric_data,
    load_metrics,
    transform_results,
)
from lambdascope.db import function_id

HOUR = 1_700_002_800


def test_queries_pack_many_functions_per_call() -> None:
    functions = [(i, f"fn-{i}") for i in range(1, 1201)]
    queries, refs = build_queries(functions)
    assert len(queries) == 1200 * len(METRIC_QUERIES)
    assert len({q["Id"] for q in queries}) == len(queries)
    assert all(re.fullmatch(r"[a-z][A-Za-z0-9_]*", q["Id"]) for q in queries)
    sizes = [len(b) for b in batches(queries)]
    assert len(sizes) == math.ceil(len(queries) / MAX_QUERIES_PER_CALL)
    assert max(sizes) == 500
    first = queries[5]["MetricStat"]
    assert (first["Stat"], first["Period"], first["Metric"]["MetricName"]) == (
        "p95",
        3600,
        "Duration",
    )
    assert refs[queries[5]["Id"]] == QueryRef(1, "duration_p95_ms")


def test_next_token_pages_merge_and_missing_hours_stay_absent(db: Database) -> None:
    client = boto3.client(
        "cloudwatch",
        region_name="us-east-1",
        aws_access_key_id="x",
        aws_secret_access_key="x",
        endpoint_url="http://127.0.0.1:9",
    )
    fid = function_id(db, "orders", "123456789012", "us-east-1")
    queries, refs = build_queries([(fid, "orders")], METRIC_QUERIES[:2])
    at = [datetime.fromtimestamp(HOUR + h * 3600, UTC) for h in range(3)]
    stubber = Stubber(client)
    stubber.add_response(
        "get_metric_data",
        {
            "MetricDataResults": [
                {"Id": queries[0]["Id"], "Timestamps": at[:2], "Values": [5.0, 7.0]},
                {"Id": queries[1]["Id"], "Timestamps": [], "Values": []},
            ],
            "NextToken": "page-2",
        },
    )
    stubber.add_response(
        "get_metric_data",
        {
            "MetricDataResults": [
                {"Id": queries[0]["Id"], "Timestamps": at[2:], "Values": [9.0]},
                {"Id": queries[1]["Id"], "Timestamps": [at[1]], "Values": [1.0]},
            ]
        },
    )
    with stubber:
        results = list(get_metric_data(client, queries, HOUR + 600, HOUR + 3 * 3600))
    stubber.assert_no_pending_responses()
    rows = transform_results(results, refs)
    assert rows == {
        (fid, HOUR): {"invocations": 5.0},
        (fid, HOUR + 3600): {"invocations": 7.0, "errors": 1.0},
        (fid, HOUR + 7200): {"invocations": 9.0},
    }
    store = Store(db)
    load_metrics(store, rows)
    # A later run that only sees invocations keeps the stored errors (absence is not zero).
    load_metrics(store, {(fid, HOUR + 3600): {"invocations": 8.0}})
    stored = db.conn.execute(
        "SELECT hour, invocations, errors, throttles FROM hourly_metrics ORDER BY hour"
    ).fetchall()
    assert stored == [
        (HOUR, 5.0, None, None),
        (HOUR + 3600, 8.0, 1.0, None),
        (HOUR + 7200, 9.0, None, None),
    ]


def test_complete_columns_follow_the_last_page_status() -> None:
    refs = {"a": QueryRef(1, "invocations"), "b": QueryRef(1, "errors"), "c": QueryRef(2, "errors")}
    results = [
        {"Id": "a", "StatusCode": "PartialData"},
        {"Id": "b", "StatusCode": "Complete"},
        {"Id": "c", "StatusCode": "Forbidden"},
        {"Id": "a", "StatusCode": "Complete"},  # its NextToken page
        {"Id": "zz", "StatusCode": "Complete"},
    ]
    assert complete_columns(results, refs) == {1: {"invocations", "errors"}}


def test_recollect_revises_recent_hours_to_absence_and_keeps_settled_history(
    db: Database,
) -> None:
    """CloudWatch revises recent data: within REVISION_HORIZON_S of now a complete answer
    without a datapoint clears the stored value (absence, never zero); older hours and
    columns whose query did not come back complete are kept."""
    now = HOUR + 72 * 3600
    old, h1, h2 = now - 48 * 3600, now - 3 * 3600, now - 2 * 3600
    fid = function_id(db, "orders", "123456789012", "us-east-1")
    with db.conn:
        for hour, invocations, errors, throttles in (
            (old, 9.0, 1.0, None),
            (h1, 5.0, 2.0, 1.0),
            (h2, 3.0, None, None),
        ):
            db.conn.execute(
                "INSERT INTO hourly_metrics (function_id, hour, invocations, errors, throttles)"
                " VALUES (?, ?, ?, ?, ?)",
                (fid, hour, invocations, errors, throttles),
            )
    client = boto3.client(
        "cloudwatch",
        region_name="us-east-1",
        aws_access_key_id="x",
        aws_secret_access_key="x",
        endpoint_url="http://127.0.0.1:9",
    )
    queries, _ = build_queries([(fid, "orders")])
    ids = {column: q["Id"] for (column, _, _), q in zip(METRIC_QUERIES, queries, strict=True)}
    stubber = Stubber(client)
    # Response shape from the GetMetricData API reference; only two queries answered.
    stubber.add_response(
        "get_metric_data",
        {
            "MetricDataResults": [
                {
                    "Id": ids["invocations"],
                    "Timestamps": [datetime.fromtimestamp(h1, UTC)],
                    "Values": [6.0],
                    "StatusCode": "Complete",
                },
                {"Id": ids["errors"], "Timestamps": [], "Values": [], "StatusCode": "Complete"},
            ]
        },
    )
    target = Target(boto3.Session(), "123456789012", "us-east-1")
    target.client = lambda service, counter=None: client  # type: ignore[method-assign]
    result = SourceResult("123456789012", "us-east-1", "metrics")
    with stubber:
        collect(Store(db), target, result, CallCounter(), start=old, end=now, now=now)
    stubber.assert_no_pending_responses()
    stored = db.conn.execute(
        "SELECT hour, invocations, errors, throttles FROM hourly_metrics ORDER BY hour"
    ).fetchall()
    assert stored == [
        (old, 9.0, 1.0, None),  # older than the horizon: settled history, kept
        (h1, 6.0, None, 1.0),  # revised; throttles' query did not come back: kept
        # h2: invocations gone and errors absent: no value left, the row is deleted
    ]
    assert REVISION_HORIZON_S == 24 * 3600
