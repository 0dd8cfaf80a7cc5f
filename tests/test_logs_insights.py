"""Logs Insights: query text and result transforms (pure), and the polling loop with Stubber.

moto's Logs Insights ignores the query (no stats, no REPORT fields), so start_query /
get_query_results are served by ``botocore.stub.Stubber`` with response shapes from the
CloudWatch Logs API reference (queryId; status, results as field/value pairs, statistics).
"""

from __future__ import annotations

import json
from typing import Any

import boto3
from botocore.stub import Stubber
from sqlite_utils import Database

from collectors.aws import SourceResult, Store
from collectors.logs import (
    HISTOGRAM_VALUES,
    SUMMARY_QUERY,
    Facts,
    collect_insights,
    histogram_query,
    log_group_batches,
    queries,
    transform_histogram,
    transform_summary,
)
from lambdascope import histogram
from lambdascope.db import function_id

HOUR = 1_700_002_800  # 2023-11-14T23:00:00Z, an hour boundary
GROUP_A = "/aws/lambda/orders"
GROUP_B = "/aws/lambda/billing"


def cells(**values: str) -> list[dict[str, str]]:
    names = {"log": "@log", "bin": "bin(1h)"}
    return [{"field": names.get(k, k), "value": v} for k, v in values.items()]


def summary_row(group: str, memory: str = "512") -> list[dict[str, str]]:
    return cells(
        log=f"123456789012:{group}",
        bin="2023-11-14 23:00:00.000",
        memory_mb=memory,
        invocations="4",
        errors="1",
        timeouts="1",
        out_of_memory="0",
        cold_starts="1",
        duration_ms_sum="400.5",
        duration_ms_max="150.25",
        billed_duration_ms_sum="404",
        max_memory_used_mb_max="187",
        init_duration_ms_sum="221.4",
        init_duration_ms_max="221.4",
    )


def hist_row(group: str, bucket: int, count: int) -> list[dict[str, str]]:
    return cells(
        log=f"123456789012:{group}",
        bin="2023-11-14 23:00:00.000",
        memory_mb="512",
        bucket=str(bucket),
        n=str(count),
    )


def test_queries_bucket_inside_insights_and_convert_bytes_to_mb() -> None:
    assert set(queries()) == {"summary", *HISTOGRAM_VALUES}
    assert "floor(log(@duration) / log(1.02))" in histogram_query("@duration")
    memory = histogram_query("@maxMemoryUsed / 1000000")
    assert "floor(log(@maxMemoryUsed / 1000000) / log(1.02))" in memory
    assert "ispresent(@maxMemoryUsed)" in memory
    assert "by @log, bin(1h), memory_mb, bucket" in memory
    assert "@memorySize / 1000000 as memory_mb" in SUMMARY_QUERY
    assert "max(@maxMemoryUsed) / 1000000 as max_memory_used_mb_max" in SUMMARY_QUERY


def test_log_groups_are_batched_fifty_per_query() -> None:
    groups = [f"/aws/lambda/f{i}" for i in range(120)]
    assert [len(b) for b in log_group_batches(groups)] == [50, 50, 20]


def test_transforms_fill_the_local_ingest_shape() -> None:
    facts = Facts()
    transform_summary([summary_row(GROUP_A), cells(log="x", memory_mb="1")], facts)
    bucket = int(histogram.bucket_of(100.0))
    transform_histogram(
        [hist_row(GROUP_A, bucket, 3), hist_row(GROUP_A, -999999, 1)], "duration_hist", facts
    )
    row = facts.rows[(GROUP_A, HOUR, 512)]
    assert (row["invocations"], row["errors"], row["timeouts"], row["cold_starts"]) == (4, 1, 1, 1)
    assert (row["duration_ms_max"], row["max_memory_used_mb_max"]) == (150.25, 187)
    assert row["duration_hist"] == {histogram.bucket_of(100.0): 3, "z": 1}
    assert len(facts.rows) == 1  # the malformed row is skipped


def test_polling_with_backoff_stores_insights_facts(db: Database) -> None:
    client = boto3.client(
        "logs",
        region_name="us-east-1",
        aws_access_key_id="x",
        aws_secret_access_key="x",
        endpoint_url="http://127.0.0.1:9",
    )
    ids = {
        GROUP_A: function_id(db, "orders", "123456789012", "us-east-1"),
        GROUP_B: function_id(db, "billing", "123456789012", "us-east-1"),
    }
    db.conn.commit()
    stubber = Stubber(client)
    names = list(queries())
    for index, name in enumerate(names):
        stubber.add_response(
            "start_query",
            {"queryId": f"q{index}"},
            {
                "logGroupNames": sorted(ids),
                "startTime": HOUR,
                "endTime": HOUR + 3599,
                "queryString": queries()[name],
                "limit": 10_000,
            },
        )
    stats = {"recordsMatched": 4.0, "recordsScanned": 10.0, "bytesScanned": 1e9}
    duration_bucket = int(histogram.bucket_of(100.0))
    rows: dict[str, list[Any]] = {
        "summary": [summary_row(GROUP_A)],
        "duration_hist": [hist_row(GROUP_A, duration_bucket, 4)],
        "billed_duration_hist": [hist_row(GROUP_A, duration_bucket + 1, 4)],
        "max_memory_used_hist": [hist_row(GROUP_A, int(histogram.bucket_of(187)), 4)],
        "init_duration_hist": [hist_row(GROUP_A, int(histogram.bucket_of(221.4)), 1)],
    }
    # First round: the summary query is still running, the others are done.
    stubber.add_response(
        "get_query_results", {"status": "Running", "results": []}, {"queryId": "q0"}
    )
    for index, name in enumerate(names[1:], start=1):
        stubber.add_response(
            "get_query_results",
            {"status": "Complete", "results": rows[name], "statistics": stats},
            {"queryId": f"q{index}"},
        )
    stubber.add_response(
        "get_query_results", {"status": "Running", "results": []}, {"queryId": "q0"}
    )
    stubber.add_response(
        "get_query_results",
        {"status": "Complete", "results": rows["summary"], "statistics": stats},
        {"queryId": "q0"},
    )
    slept: list[float] = []
    result = SourceResult("123456789012", "us-east-1", "logs")
    with stubber:
        collect_insights(
            Store(db),
            client,
            ids,
            result,
            start=HOUR,
            end=HOUR + 3600,
            max_concurrent=10,
            sleep=slept.append,
        )
    stubber.assert_no_pending_responses()
    assert slept == [1.0, 1.0, 2.0]  # reset after progress, doubled while waiting
    assert result.bytes_scanned == 5 * 10**9
    assert result.estimated_cost_usd == 5 * 0.005
    fact = db.conn.execute(
        "SELECT function_id, hour, memory_mb, source, invocations, errors, timeouts,"
        " cold_starts, duration_ms_sum, max_memory_used_mb_max, duration_hist,"
        " max_memory_used_hist FROM hourly_facts"
    ).fetchall()
    assert fact == [
        (
            ids[GROUP_A],
            HOUR,
            512,
            "insights",
            4,
            1,
            1,
            1,
            400.5,
            187,
            json.dumps({str(duration_bucket): 4}, separators=(",", ":")),
            histogram.to_json({histogram.bucket_of(187): 4}),
        )
    ]
