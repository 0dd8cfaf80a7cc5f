"""Collector call counts, estimated AWS charge and collector time for a large fleet.

A fast fake answers every CloudWatch and Logs call instantly: a botocore ``before-call``
handler returns the parsed response, after the collector's request was built, validated
and serialised (moto's GetMetricData is far too slow at this size). Nothing leaves the
process. The baseline, measured in the same run, is one GetMetricData call per function
(all of its metrics in one call) instead of packing 500 queries per call.

    python bench/bench_collect.py [--functions 1200] [--days 14] [--active-share 0.25]
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import random
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import boto3
from botocore.awsrequest import AWSResponse

from collectors import logs, metrics
from collectors.aws import CallCounter, SourceResult, Store, Target
from lambdascope.db import function_id, open_db
from lambdascope.timeutil import HOUR_S, from_epoch

ACCOUNT, REGION = "123456789012", "us-east-1"
END = int(datetime(2026, 1, 15, tzinfo=UTC).timestamp())


def seed(db_path: Path, functions: int) -> Any:
    db = open_db(db_path)
    with db.conn:
        for i in range(functions):
            fid = function_id(db, f"fn-{i:05d}", ACCOUNT, REGION)
            db.conn.execute(
                "UPDATE functions SET log_group = ?, inventory_at = 0 WHERE id = ?",
                (f"/aws/lambda/fn-{i:05d}", fid),
            )
    return db


def fake_cloudwatch(client: Any, start: int, end: int, active_share: float) -> None:
    hours = [from_epoch(h) for h in range(start, end, HOUR_S)]
    every = max(1, round(1 / active_share)) if active_share > 0 else 0
    sent: dict[str, Any] = {}

    def remember(params: dict[str, Any], **_: Any) -> None:
        sent["params"] = params  # the API parameters; the serialised body is CBOR

    def answer(**_: Any) -> tuple[AWSResponse, dict[str, Any]]:
        results = []
        for query in sent["params"]["MetricDataQueries"]:
            index = int(query["Id"][1:].split("_")[0])
            active = every and index % every == 0
            results.append(
                {
                    "Id": query["Id"],
                    "Timestamps": hours if active else [],
                    "Values": [1.0] * len(hours) if active else [],
                    "StatusCode": "Complete",
                }
            )
        return AWSResponse("fake", 200, {}, None), {"MetricDataResults": results}  # type: ignore[arg-type]

    client.meta.events.register("before-parameter-build.cloudwatch.GetMetricData", remember)
    client.meta.events.register("before-call.cloudwatch.GetMetricData", answer)


def fake_logs(client: Any, mb_per_function_day: float, rows_per_function_hour: int) -> None:
    """Answers Insights calls: bytes scanned in proportion to log groups x time, and
    ``rows_per_function_hour`` result rows per log group x hour (pro rata for part of an
    hour), sorted by hour and cut at the 10,000-row limit like Logs Insights."""
    queries: dict[str, tuple[int, int, int]] = {}

    def answer(params: dict[str, Any], model: Any, **_: Any) -> tuple[AWSResponse, dict[str, Any]]:
        body = json.loads(params["body"])
        ok = AWSResponse("fake", 200, {}, None)  # type: ignore[arg-type]
        if model.name == "DescribeLogGroups":
            return ok, {"logGroups": []}
        if model.name == "StartQuery":
            query_id = f"q{len(queries)}"
            queries[query_id] = (len(body["logGroupNames"]), body["startTime"], body["endTime"] + 1)
            return ok, {"queryId": query_id}
        groups, start, end = queries[body["queryId"]]
        scanned = groups * (end - start) / 86400 * mb_per_function_day * 1e6
        rows: list[Any] = []
        for hour in range(start - start % HOUR_S, end, HOUR_S):
            share = (min(end, hour + HOUR_S) - max(start, hour)) / HOUR_S
            stamp = from_epoch(hour).strftime("%Y-%m-%d %H:%M:%S.000")
            for index in range(round(groups * rows_per_function_hour * share)):
                if len(rows) >= logs.MAX_RESULT_ROWS:
                    break
                rows.append(
                    [
                        {"field": "hour", "value": stamp},
                        {"field": "@log", "value": f"{ACCOUNT}:/aws/lambda/fn-{index % groups}"},
                        {"field": "memory_mb", "value": "512"},
                        {"field": "d", "value": str(index)},
                        {"field": "invocations", "value": "1"},
                    ]
                )
        return ok, {
            "status": "Complete",
            "results": rows,
            "statistics": {"recordsMatched": 0.0, "recordsScanned": 0.0, "bytesScanned": scanned},
        }

    client.meta.events.register("before-call.logs.*", answer)


def _bucket(value: float | None) -> int:
    return math.floor(math.log(max(value or 0.0, 0.0001)) / math.log(1.02))


def result_rows_per_function_hour(invocations: int, seed: int = 1) -> tuple[int, int]:
    """Insights result rows of one function-hour: (one query, cross product of the four
    buckets; four histogram queries, one row per bucket each + 1 summary row).

    The hour is modelled as: duration log-normal (median 90 ms, sigma 0.6), billed = ceil,
    max memory used 180 MB +- 3 % (warm containers vary little), init 250-400 ms on 2 %.
    """
    rng = random.Random(seed)
    combos: set[tuple[int, int, int, int]] = set()
    per_hist: list[set[int]] = [set(), set(), set(), set()]
    for _ in range(invocations):
        duration = rng.lognormvariate(4.5, 0.6)
        values = (
            duration,
            float(math.ceil(duration)),
            round(180 * rng.uniform(0.97, 1.03)),
            rng.uniform(250, 400) if rng.random() < 0.02 else None,
        )
        buckets = tuple(_bucket(v) for v in values)
        combos.add(buckets)  # type: ignore[arg-type]
        for seen, bucket, value in zip(per_hist, buckets, values, strict=True):
            if value is not None:
                seen.add(bucket)
    return len(combos), 1 + sum(len(seen) for seen in per_hist)


def run_metrics(
    store: Store, target: Target, start: int, share: float, batch: int
) -> dict[str, Any]:
    counter = CallCounter()
    client = target.client("cloudwatch", counter)
    fake_cloudwatch(client, start, END, share)
    target_client = target.client
    target.client = lambda service, c=None: client  # type: ignore[method-assign]
    result = SourceResult(ACCOUNT, REGION, "metrics")
    began = time.perf_counter()
    metrics.collect(store, target, result, counter, start=start, end=END, batch_size=batch)
    seconds = time.perf_counter() - began
    target.client = target_client  # type: ignore[method-assign]
    return {
        "calls": counter.calls,
        "cost": result.estimated_cost_usd,
        "seconds": seconds,
        "rows": result.items,
    }


def run_logs(store: Store, target: Target, start: int, mb: float, rows: int) -> dict[str, Any]:
    counter = CallCounter()
    client = target.client("logs", counter)
    fake_logs(client, mb, rows)
    groups = dict(
        store.db.conn.execute("SELECT log_group, id FROM functions ORDER BY log_group").fetchall()
    )
    result = SourceResult(ACCOUNT, REGION, "logs")
    began = time.perf_counter()
    logs.collect_insights(
        store,
        client,
        groups,
        result,
        start=start,
        end=END,
        max_concurrent=10,
        sleep=lambda _s: None,
    )
    seconds = time.perf_counter() - began
    starts = sum(1 for op in counter.operations if op == "StartQuery")
    return {
        "calls": counter.calls,
        "queries": starts,
        "cost": result.estimated_cost_usd,
        "seconds": seconds,
        "bytes": result.bytes_scanned,
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--functions", type=int, default=1200)
    parser.add_argument("--days", type=float, default=14)
    parser.add_argument(
        "--active-share",
        type=float,
        default=0.25,
        help="share of functions with a datapoint in every hour",
    )
    parser.add_argument("--log-mb-per-function-day", type=float, default=20.0)
    args = parser.parse_args()
    start = END - int(args.days * 86400)
    per_function = len(metrics.METRIC_QUERIES)
    os.environ.setdefault("AWS_ACCESS_KEY_ID", "bench")
    os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "bench")
    session = boto3.Session(region_name=REGION)
    target = Target(session, ACCOUNT, REGION, "http://127.0.0.1:9")
    with tempfile.TemporaryDirectory() as tmp:
        store = Store(seed(Path(tmp) / "bench.db", args.functions))
        packed = run_metrics(store, target, start, args.active_share, metrics.MAX_QUERIES_PER_CALL)
        baseline = run_metrics(store, target, start, args.active_share, per_function)
        insights = run_logs(store, target, start, args.log_mb_per_function_day, 0)
        hourly = [
            (rows, run_logs(store, target, END - 3 * HOUR_S, args.log_mb_per_function_day, rows))
            for rows in (10, 94, 535)
        ]
    cpu = next(
        (
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        ),
        platform.processor(),
    )
    per_k = 1000 / args.functions
    print(f"machine: nproc={os.cpu_count()} cpu={cpu} python={platform.python_version()}")
    print(
        f"fleet: {args.functions} functions x {per_function} metric queries, "
        f"{args.days:g} days, active share {args.active_share}"
    )
    expected = math.ceil(args.functions * per_function / metrics.MAX_QUERIES_PER_CALL)
    print(
        f"GetMetricData calls (packed <=500): {packed['calls']} (ceil formula: {expected}); "
        f"est. charge ${packed['cost']:.4f}; {packed['rows']} function-hours stored; "
        f"collector time {packed['seconds']:.2f} s = {packed['seconds'] * per_k:.2f} s/1,000 fn"
    )
    print(
        f"baseline, one call per function: {baseline['calls']} calls; "
        f"est. charge ${baseline['cost']:.4f}; "
        f"collector time {baseline['seconds']:.2f} s = {baseline['seconds'] * per_k:.2f} s/1,000 fn"
    )
    batches = math.ceil(args.functions / logs.MAX_LOG_GROUPS_PER_QUERY)
    print(
        f"Logs Insights: {insights['queries']} queries for {batches} batches of <=50 log groups "
        f"(ceil formula: {batches}); {insights['calls']} API calls; "
        f"{insights['bytes'] / 1e9:.1f} GB scanned at {args.log_mb_per_function_day:g} MB/fn/day; "
        f"est. charge ${insights['cost']:.2f}; "
        f"collector time {insights['seconds']:.2f} s = {insights['seconds'] * per_k:.2f} s/1,000 fn"
    )
    print(
        "baseline, the former 5 queries per batch (summary + 4 histograms), each scanning the "
        f"same bytes: {5 * batches} queries, {5 * insights['bytes'] / 1e9:.1f} GB, "
        f"est. charge ${5 * insights['cost']:.2f}"
    )
    window_gb = 3 / 24 * args.functions * args.log_mb_per_function_day / 1e3
    for rows, run in hourly:
        print(
            f"3-hour window (an hourly schedule with its overlap), {rows} result rows per "
            f"function-hour: {run['queries']} queries, {run['bytes'] / 1e9:.2f} GB scanned "
            f"(the window's logs: {window_gb:.2f} GB), est. charge ${run['cost']:.4f}, "
            f"collector time {run['seconds']:.2f} s"
        )
    print("Insights result rows per function-hour (one query / former 4 histogram queries + 1):")
    for invocations in (10, 100, 1_000, 10_000, 100_000):
        one, former = result_rows_per_function_hour(invocations)
        hours = logs.MAX_RESULT_ROWS / (logs.MAX_LOG_GROUPS_PER_QUERY * one)
        print(
            f"  {invocations:>7} invocations/h: {one:>5} rows / {former:>4} rows; "
            f"50 such log groups fit {hours:.2f} h in one 10,000-row result"
        )


if __name__ == "__main__":
    main()
