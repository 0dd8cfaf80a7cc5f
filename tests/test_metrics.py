"""GetMetricData query packing, NextToken paging, and absence-as-absence loading."""

from __future__ import annotations

import math
import re
from datetime import UTC, datetime

import boto3
from botocore.stub import Stubber
from sqlite_utils import Database

from collectors.aws import Store
from collectors.metrics import (
    MAX_QUERIES_PER_CALL,
    METRIC_QUERIES,
    QueryRef,
    batches,
    build_queries,
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
