"""Collector call counts, estimated AWS charge and collector time for a large fleet.

A fast fake answers every CloudWatch and Logs call instantly: a botocore ``before-call``
handler returns the parsed response, after the collector's request was built, validated
and serialised (moto's GetMetricData is far too slow at this size). Nothing leaves the
process. The baseline, measured in the same run, is one GetMetricData call per function
(all of its metrics in one call) instead of packing 500 queries per call.

    python bench/bench_collect.py [--functions 1200] [--days 14] [--active-share 0.25]
    python bench/bench_collect.py --org [--accounts 50 --regions 4 --functions-per-pair 50]
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
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
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
    parser.add_argument("--org", action="store_true", help="the organisation-scale simulation")
    parser.add_argument("--accounts", type=int, default=50)
    parser.add_argument("--regions", type=int, default=4)
    parser.add_argument("--functions-per-pair", type=int, default=50)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--throttled-share", type=float, default=0.05)
    parser.add_argument("--stream-share", type=float, default=0.1)
    parser.add_argument("--async-share", type=float, default=0.02)
    parser.add_argument("--log-mb-per-active-day", type=float, default=20.0)
    parser.add_argument("--rows-per-function-hour", type=int, default=10)
    parser.add_argument("--insights-gb-per-s", type=float, default=0.5)
    parser.add_argument("--hourly-runs", type=int, default=6)
    args = parser.parse_args()
    if args.org:
        org_main(args)
        return
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


# ---------------------------------------------------------------- organisation scale
#
# ``--org``: 50 accounts x 4 regions x 50 functions = 10,000 functions. Every account x
# region is collected by the real collectors (inventory, metrics, logs) against fakes that
# answer every call with a simulated latency on a virtual clock, spacing calls by the
# documented per-account-and-region rate limits and running Insights queries for a time
# that grows with the bytes they scan. The pairs all have the same shape, so one pair is run
# per case and the organisation's wall time is the number of rounds (pairs / --concurrency,
# each pair in its own worker) times that pair's virtual time plus its real collector time.

# Simulated round-trip latency per operation (seconds).
LATENCY_S = {
    "ListFunctions": 0.15,
    "GetMetricData": 0.25,
    "ListMetrics": 0.08,
    "DescribeLogGroups": 0.08,
    "DescribeLogStreams": 0.08,
    "StartQuery": 0.10,
    "GetQueryResults": 0.08,
}
CONTROL_PLANE_LATENCY_S = 0.04
# Requests per second per account and region. Lambda's control plane: 15 (documented, not
# increasable). The CloudWatch and Logs values are the default Service Quotas this bench
# assumes (adjustable per account): GetMetricData 50, ListMetrics 25, StartQuery 5,
# GetQueryResults 5, DescribeLogGroups 5, DescribeLogStreams 25. Logs Insights: 30 concurrent
# queries (documented).
RATE_PER_S = {
    "lambda": 15.0,
    "GetMetricData": 50.0,
    "ListMetrics": 25.0,
    "StartQuery": 5.0,
    "GetQueryResults": 5.0,
    "DescribeLogGroups": 5.0,
    "DescribeLogStreams": 25.0,
}
MAX_CONCURRENT_QUERIES = 30
QUERY_BASE_S = 2.0  # an Insights query's fixed time before it scans


class VirtualClock:
    """Simulated time of one account x region's collection (its calls are sequential)."""

    def __init__(self, start: float) -> None:
        self.t = start
        self.next_free: dict[str, float] = {}
        self.calls: dict[str, int] = {}

    def call(self, operation: str, service: str) -> None:
        group = "lambda" if service == "lambda" else operation
        begin = self.t
        rate = RATE_PER_S.get(group)
        if rate:
            begin = max(begin, self.next_free.get(group, 0.0))
            self.next_free[group] = begin + 1 / rate
        default = CONTROL_PLANE_LATENCY_S if service == "lambda" else 0.08
        self.t = begin + LATENCY_S.get(operation, default)
        self.calls[operation] = self.calls.get(operation, 0) + 1

    def sleep(self, seconds: float) -> None:
        self.t += seconds


@dataclass
class OrgShape:
    functions: int  # per account x region
    active_share: float  # functions with invocations in every hour
    throttled_share: float
    stream_share: float  # functions with an event source mapping (IteratorAge)
    async_share: float  # functions with async / DLQ / destination failure metrics
    log_mb_per_active_day: float
    rows_per_function_hour: int
    insights_gb_per_s: float

    def name(self, index: int) -> str:
        return f"fn-{index:05d}"

    def has(self, index: int, share: float) -> bool:
        every = max(1, round(1 / share)) if share > 0 else 0
        return bool(every) and index % every == 0


def _ok() -> AWSResponse:
    return AWSResponse("fake", 200, {}, None)  # type: ignore[arg-type]


def fake_org_client(client: Any, clock: VirtualClock, shape: OrgShape, now: int) -> Any:
    """Answer every call of ``client`` from ``shape`` on ``clock`` (nothing leaves the process)."""
    service = client.meta.service_model.service_name
    sent: dict[str, Any] = {}
    queries: dict[str, tuple[list[str], int, int, float]] = {}
    account = ACCOUNT

    def remember(params: dict[str, Any], **_: Any) -> None:
        sent["params"] = params

    def lambda_answer(model: Any, **_: Any) -> dict[str, Any]:
        params = sent.get("params", {})
        if model.name == "ListFunctions":
            start = int(params.get("Marker") or 0)
            page = [
                {
                    "FunctionName": shape.name(i),
                    "FunctionArn": f"arn:aws:lambda:{REGION}:{account}:function:{shape.name(i)}",
                    "Version": "$LATEST",
                    "MemorySize": 512,
                    "Runtime": "python3.12",
                    "LastModified": "2025-06-01T00:00:00.000+0000",
                }
                for i in range(start, min(start + 50, shape.functions))
            ]
            more = start + 50 < shape.functions
            return {"Functions": page, **({"NextMarker": str(start + 50)} if more else {})}
        if model.name == "GetAccountSettings":
            return {"AccountLimit": {"ConcurrentExecutions": 1000}, "AccountUsage": {}}
        return {}

    def cloudwatch_answer(model: Any, **_: Any) -> dict[str, Any]:
        params = sent["params"]
        if model.name == "ListMetrics":
            metrics: list[dict[str, Any]] = []
            for i in range(shape.functions):
                names = []
                if shape.has(i, shape.active_share):
                    names += ["Invocations", "Errors", "Duration", "ConcurrentExecutions"]
                if shape.has(i, shape.throttled_share):
                    names.append("Throttles")
                if shape.has(i, shape.stream_share):
                    names.append("IteratorAge")
                if shape.has(i, shape.async_share):
                    names += ["AsyncEventsDropped", "DeadLetterErrors"]
                dims = [{"Name": "FunctionName", "Value": shape.name(i)}]
                metrics += [
                    {"Namespace": "AWS/Lambda", "MetricName": n, "Dimensions": dims} for n in names
                ]
            offset = int(params.get("NextToken") or 0)
            page = metrics[offset : offset + 500]
            more = offset + 500 < len(metrics)
            return {"Metrics": page, **({"NextToken": str(offset + 500)} if more else {})}
        start = int(params["StartTime"].timestamp())
        end = min(int(params["EndTime"].timestamp()), now)
        hours = [from_epoch(h) for h in range(start - start % HOUR_S, end, HOUR_S)]
        results = []
        for query in params["MetricDataQueries"]:
            name = query["MetricStat"]["Metric"]["Dimensions"][0]["Value"]
            active = shape.has(int(name[3:]), shape.active_share)
            results.append(
                {
                    "Id": query["Id"],
                    "Timestamps": hours if active else [],
                    "Values": [1.0] * len(hours) if active else [],
                    "StatusCode": "Complete",
                }
            )
        return {"MetricDataResults": results}

    def logs_answer(model: Any, **_: Any) -> dict[str, Any]:
        params = sent["params"]
        if model.name == "DescribeLogGroups":
            per_day = shape.log_mb_per_active_day * 1e6
            groups = [
                {
                    "logGroupName": f"/aws/lambda/{shape.name(i)}",
                    "storedBytes": int(per_day * 30) if shape.has(i, shape.active_share) else 0,
                    "creationTime": (now - 400 * 86400) * 1000,
                    "retentionInDays": 30,
                }
                for i in range(shape.functions)
            ]
            return {"logGroups": groups}
        if model.name == "DescribeLogStreams":
            # one stream per active function, written until a minute ago, all in time
            index = int(params["logGroupName"].rsplit("-", 1)[1])
            if not shape.has(index, shape.active_share):
                return {"logStreams": []}
            stream = {
                "logStreamName": "2026/01/15/[$LATEST]0",
                "firstEventTimestamp": (now - 2 * HOUR_S) * 1000,
                "lastEventTimestamp": (now - 60) * 1000,
                "lastIngestionTime": (now - 55) * 1000,
            }
            return {"logStreams": [stream]}
        if model.name == "StartQuery":
            running = sum(1 for q in queries.values() if q[3] > clock.t)
            if running >= MAX_CONCURRENT_QUERIES:
                raise RuntimeError("more than 30 concurrent queries")
            groups = list(params["logGroupNames"])
            start, end = int(params["startTime"]), min(int(params["endTime"]) + 1, now)
            scanned = _scanned(shape, groups, start, end)
            done = clock.t + QUERY_BASE_S + scanned / 1e9 / shape.insights_gb_per_s
            query_id = f"q{len(queries)}"
            queries[query_id] = (groups, start, end, done)
            return {"queryId": query_id}
        groups, start, end, done = queries[params["queryId"]]
        if clock.t < done:
            return {"status": "Running", "results": []}
        return {
            "status": "Complete",
            "results": _rows(shape, groups, start, end),
            "statistics": {"bytesScanned": float(_scanned(shape, groups, start, end))},
        }

    answer = {"lambda": lambda_answer, "cloudwatch": cloudwatch_answer, "logs": logs_answer}

    def respond(model: Any, **kwargs: Any) -> tuple[AWSResponse, dict[str, Any]]:
        clock.call(model.name, service)
        return _ok(), answer[service](model=model, **kwargs)

    event = {"lambda": "lambda", "cloudwatch": "cloudwatch", "logs": "cloudwatch-logs"}
    name = client.meta.service_model.service_id.hyphenize()
    client.meta.events.register(f"before-parameter-build.{name}.*", remember)
    client.meta.events.register(f"before-call.{name}.*", respond)
    del event
    return client


def _active_groups(shape: OrgShape, groups: list[str]) -> list[int]:
    indexes = [int(g.rsplit("-", 1)[1]) for g in groups]
    return [i for i in indexes if shape.has(i, shape.active_share)]


def _scanned(shape: OrgShape, groups: list[str], start: int, end: int) -> int:
    active = len(_active_groups(shape, groups))
    return round(active * max(0, end - start) / 86400 * shape.log_mb_per_active_day * 1e6)


def _rows(shape: OrgShape, groups: list[str], start: int, end: int) -> list[Any]:
    rows: list[Any] = []
    active = _active_groups(shape, groups)
    for hour in range(start - start % HOUR_S, end, HOUR_S):
        stamp = from_epoch(hour).strftime("%Y-%m-%d %H:%M:%S.000")
        share = (min(end, hour + HOUR_S) - max(start, hour)) / HOUR_S
        for index in active:
            for bucket in range(round(shape.rows_per_function_hour * share)):
                if len(rows) >= logs.MAX_RESULT_ROWS:
                    return rows
                rows.append(
                    [
                        {"field": "hour", "value": stamp},
                        {"field": "@log", "value": f"{ACCOUNT}:/aws/lambda/{shape.name(index)}"},
                        {"field": "memory_mb", "value": "512"},
                        {"field": "d", "value": str(bucket)},
                        {"field": "invocations", "value": "1"},
                    ]
                )
    return rows


@dataclass
class PairRun:
    """One account x region's collection: virtual seconds, the collector's CPU seconds,
    calls, estimated charge per source."""

    virtual_s: float
    real_s: float
    calls: dict[str, int]
    cost: dict[str, float]
    statuses: dict[str, str]
    full_inventory: bool = True


def run_pair(
    store: Store, shape: OrgShape, *, now: int, design: str, since: int | None, session: Any
) -> PairRun:
    """The real collectors for one account x region, the way collectors.aws runs a part."""
    from collectors import cadence, inventory
    from collectors.common import CollectOptions
    from collectors.runs import LOGS_SETTLE_S, resolve_window, save_watermark

    clock = VirtualClock(float(now))
    target = Target(session, ACCOUNT, REGION, "http://127.0.0.1:9")
    clients: dict[str, Any] = {}

    def client(service: str, counter: CallCounter | None = None) -> Any:
        if service not in clients:
            made = make_client_for_bench(session, service)
            clients[service] = fake_org_client(made, clock, shape, now)
        if counter is not None:
            counter.attach(clients[service])
        return clients[service]

    target.client = client  # type: ignore[method-assign]
    options = CollectOptions(
        since=timedelta(seconds=since) if since else None,
        metric_set="lean" if design == "new" else "full",
    )
    when = from_epoch(now)
    cost: dict[str, float] = {}
    statuses: dict[str, str] = {}
    full_inventory = True
    began = time.process_time()
    for source in ("inventory", "metrics", "logs"):
        result = SourceResult(ACCOUNT, REGION, source)
        counter = CallCounter()
        if source == "inventory":
            resumed = since is None and design == "new"  # the former design: always full
            if cadence.details_due(store, target, now=now, resumed=resumed):
                inventory.collect(store, target, result, counter, now=when)
                if result.status == "ok":
                    cadence.save_details_at(store, target, now)
            else:
                full_inventory = False
                cadence.list_functions(store, target, result, counter, now=now)
        else:
            with store.lock:
                start, end = resolve_window(store.db, options, target, source, when)
            if design == "old" and source == "logs" and since is None:
                # the former resume: a 2-hour overlap before the watermark
                row = store.db.conn.execute(
                    "SELECT watermark FROM watermarks WHERE source = 'logs'"
                ).fetchone()
                start = int(row[0]) - 2 * HOUR_S
            if source == "metrics" and design == "new":
                cadence.collect(
                    store,
                    target,
                    result,
                    counter,
                    start=start,
                    end=end,
                    now=now,
                    explicit=since is not None,
                )
            elif source == "metrics":
                metrics.collect(store, target, result, counter, start=start, end=end, now=now)
            else:
                # the former design had no late-event check (it re-read 2 hours instead)
                used = options if design == "new" else replace(options, start=from_epoch(start))
                logs.collect(
                    store,
                    target,
                    result,
                    counter,
                    start=start,
                    end=end,
                    options=used,
                    sleep=clock.sleep,
                )
            if result.status == "ok":
                settle = LOGS_SETTLE_S if source == "logs" and design == "new" else 0
                save_watermark(store, target, source, end, when, settle)
        cost[source] = result.estimated_cost_usd
        statuses[source] = result.status
    real = time.process_time() - began
    return PairRun(clock.t - now, real, dict(clock.calls), cost, statuses, full_inventory)


def make_client_for_bench(session: Any, service: str) -> Any:
    from collectors.common import make_client

    return make_client(session, service, REGION, "http://127.0.0.1:9")


def org_main(args: argparse.Namespace) -> None:
    shape = OrgShape(
        functions=args.functions_per_pair,
        active_share=args.active_share,
        throttled_share=args.throttled_share,
        stream_share=args.stream_share,
        async_share=args.async_share,
        log_mb_per_active_day=args.log_mb_per_active_day,
        rows_per_function_hour=args.rows_per_function_hour,
        insights_gb_per_s=args.insights_gb_per_s,
    )
    pairs = args.accounts * args.regions
    os.environ.setdefault("AWS_ACCESS_KEY_ID", "bench")
    os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "bench")
    session = boto3.Session(region_name=REGION)
    first_at = END + 15 * 60  # runs at a quarter past the hour
    hourly_runs = args.hourly_runs
    rounds = math.ceil(pairs / args.concurrency)
    per_k_pairs = 1000 / shape.functions
    print(
        f"organisation: {args.accounts} accounts x {args.regions} regions x"
        f" {shape.functions} functions = {pairs * shape.functions:,} functions;"
        f" --concurrency {args.concurrency} ({rounds} rounds of pairs)"
    )
    print(
        f"shape: active {shape.active_share:.0%}, throttled {shape.throttled_share:.0%},"
        f" streams {shape.stream_share:.0%}, async failures {shape.async_share:.0%},"
        f" {shape.log_mb_per_active_day:g} MB logs per active function-day,"
        f" {shape.rows_per_function_hour} Insights rows per active function-hour,"
        f" Insights {shape.insights_gb_per_s:g} GB/s per query"
    )
    cores = os.cpu_count() or 1

    def org_s(run: PairRun) -> float:
        # rounds of pairs in parallel, unless the collectors' CPU time is the bottleneck
        return max(rounds * (run.virtual_s + run.real_s), pairs * run.real_s / cores)

    def schedule_s(durations: list[float]) -> float:
        # the pairs in submission order on --concurrency workers, each taking the next pair
        workers = [0.0] * min(args.concurrency, len(durations))
        for duration in durations:
            workers[workers.index(min(workers))] += duration
        return max(workers)

    def hourly_org_s(hourly: list[PairRun]) -> tuple[float, str]:
        light = [r for r in hourly if not r.full_inventory]
        full = [r for r in hourly if r.full_inventory]
        if not light or not full:
            worst = max(hourly, key=org_s)
            return org_s(worst), "every pair alike"
        slots = cadence.INVENTORY_DETAILS_EVERY_S // HOUR_S
        n_full = math.ceil(pairs / slots)
        full_s = max(r.virtual_s + r.real_s for r in full)
        light_s = max(r.virtual_s + r.real_s for r in light)
        # worst order: the pairs refreshing their details submitted last
        wall = schedule_s([light_s] * (pairs - n_full) + [full_s] * n_full)
        cpu = (
            n_full * max(r.real_s for r in full) + (pairs - n_full) * max(r.real_s for r in light)
        ) / cores
        return max(wall, cpu), (
            f"{n_full} pairs refresh details ({full_s:.1f} s each, submitted last),"
            f" {pairs - n_full} list functions only ({light_s:.1f} s each)"
        )

    from collectors import cadence

    for design in ("old", "new"):
        with tempfile.TemporaryDirectory() as tmp:
            store = Store(open_db(Path(tmp) / "org.db"))
            first = run_pair(
                store, shape, now=first_at, design=design, since=args.days * 86400, session=session
            )
            hourly = [
                run_pair(
                    store,
                    shape,
                    now=first_at + h * HOUR_S,
                    design=design,
                    since=None,
                    session=session,
                )
                for h in range(1, hourly_runs + 1)
            ]
        label = "baseline (former design: 14 metrics of every function, 2 h log overlap)"
        label = label if design == "old" else "new cadence (lean metrics, logs without overlap)"
        pair_first = first.virtual_s + first.real_s
        worst = max(hourly, key=org_s)
        pair_hourly = worst.virtual_s + worst.real_s
        print(f"{label}:")
        print(
            f"  first {args.days}-day collection: one pair {first.virtual_s:.1f} s simulated"
            f" + {first.real_s:.2f} s collector CPU = {pair_first:.1f} s;"
            f" organisation {org_s(first) / 60:.1f} min;"
            f" calls per pair {json.dumps(first.calls, sort_keys=True)};"
            f" charge ${sum(first.cost.values()) * pairs:.2f}"
            f" ({', '.join(f'{k} ${v * pairs:.2f}' for k, v in first.cost.items() if v)})"
        )
        per_run = [sum(r.cost.values()) for r in hourly]
        metrics_run = sum(r.cost["metrics"] for r in hourly) / len(hourly)
        logs_run = sum(r.cost["logs"] for r in hourly) / len(hourly)
        month_k = (metrics_run + logs_run) * 730 * per_k_pairs
        print(
            f"  hourly incremental (worst of {hourly_runs} runs): one pair"
            f" {worst.virtual_s:.1f} s simulated + {worst.real_s:.2f} s CPU = {pair_hourly:.1f} s;"
            f" organisation {hourly_org_s(hourly)[0]:.0f} s ({hourly_org_s(hourly)[1]});"
            f" calls per pair (last run) {json.dumps(hourly[-1].calls, sort_keys=True)};"
            f" statuses {sorted({s for r in hourly for s in r.statuses.values()})}"
        )
        print(
            f"  hourly runs per month for 1,000 functions ({per_k_pairs:g} pairs):"
            f" ${month_k:.2f} (metrics ${metrics_run * 730 * per_k_pairs:.2f},"
            f" Logs Insights ${logs_run * 730 * per_k_pairs:.2f});"
            f" per run min/max ${min(per_run) * per_k_pairs:.4f}/${max(per_run) * per_k_pairs:.4f}"
        )


if __name__ == "__main__":
    main()
