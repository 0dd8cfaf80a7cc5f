"""Lambda Managed Instances: capacity-provider utilisation collected over real HTTP from an
in-process moto server (ListMetrics + GetMetricData), a refused call (before-send hook),
the aggregation over instance types, and what the function page and the memory report
show."""

from __future__ import annotations

import csv
import io
import json
import math
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import pytest
from botocore.config import Config
from botocore.stub import Stubber
from moto.server import ThreadedMotoServer
from sqlite_utils import Database

from collectors import capacity_providers
from collectors.aws import CallCounter, SourceResult, Store, Target
from lambdascope.db import function_id

ACCOUNT = "123456789012"
REGION = "us-east-1"
PROVIDER = "batch-fleet"
PROVIDER_ARN = f"arn:aws:lambda:{REGION}:{ACCOUNT}:capacity-provider:{PROVIDER}"
HOUR = 3600
NOW = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
START = int((NOW - timedelta(hours=4)).timestamp())
END = int(NOW.timestamp())


@pytest.fixture
def moto_url() -> Iterator[str]:
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    url = f"http://{host}:{port}"
    try:
        yield url
    finally:
        server.stop()


def session() -> boto3.Session:
    return boto3.Session(
        aws_access_key_id="testing", aws_secret_access_key="testing", region_name=REGION
    )


def put(url: str, data: list[dict[str, Any]]) -> None:
    cw = session().client(
        "cloudwatch", endpoint_url=url, config=Config(disable_request_compression=True)
    )
    cw.put_metric_data(Namespace="AWS/Lambda", MetricData=data)


def seed_provider(url: str) -> None:
    """Two instance types over four hours; an execution-environment series that must not be
    read as the provider's; another provider no function runs on."""
    data: list[dict[str, Any]] = []
    for h in range(4):
        at = datetime.fromtimestamp(START + h * HOUR + 600, UTC)
        later = datetime.fromtimestamp(START + h * HOUR + 1800, UTC)
        for instance_type, cpu, memory in (("m7g.xlarge", 40.0, 50.0), ("c7g.2xlarge", 60.0, 30.0)):
            dims = [
                {"Name": "CapacityProviderName", "Value": PROVIDER},
                {"Name": "InstanceType", "Value": instance_type},
            ]
            peak = cpu + (30.0 if h == 2 else 10.0)
            for metric, values in (
                ("CPUUtilization", (cpu, peak)),
                ("MemoryUtilization", (memory, memory + 5.0)),
                ("vCPUAvailable", (4.0, 4.0)),
                ("vCPUAllocated", (2.0, 2.0)),
                ("MemoryAvailable", (16e9, 16e9)),
                ("MemoryAllocated", (8e9, 8e9)),
            ):
                for moment, value in zip((at, later), values, strict=True):
                    data.append(
                        {
                            "MetricName": metric,
                            "Dimensions": dims,
                            "Timestamp": moment,
                            "Value": value,
                        }
                    )
        data.append(
            {
                "MetricName": "CPUUtilization",
                "Dimensions": [
                    {"Name": "CapacityProviderName", "Value": PROVIDER},
                    {"Name": "FunctionName", "Value": "resize"},
                ],
                "Timestamp": at,
                "Value": 99.0,
            }
        )
        data.append(
            {
                "MetricName": "CPUUtilization",
                "Dimensions": [
                    {"Name": "CapacityProviderName", "Value": "unused"},
                    {"Name": "InstanceType", "Value": "m7g.xlarge"},
                ],
                "Timestamp": at,
                "Value": 1.0,
            }
        )
    put(url, data)


def managed_function(db: Database, name: str = "resize") -> int:
    fid = function_id(db, name, ACCOUNT, REGION)
    with db.conn:
        db.conn.execute(
            "UPDATE functions SET capacity_provider_arn = ?, memory_gib_per_vcpu = 2.0,"
            " max_concurrency_per_environment = 10 WHERE id = ?",
            (PROVIDER_ARN, fid),
        )
    return fid


def stored(db: Database) -> list[dict[str, Any]]:
    return [
        dict(r)
        for r in db.query(
            "SELECT * FROM capacity_provider_hourly ORDER BY capacity_provider_name, hour"
        )
    ]


def test_provider_name_is_the_last_part_of_the_arn() -> None:
    assert capacity_providers.provider_name(PROVIDER_ARN) == PROVIDER


def test_instance_types_are_aggregated_per_provider_hour() -> None:
    values = {
        (PROVIDER, 0): {
            "cpu_utilization_avg": {"a": 40.0, "b": 60.0},
            "cpu_utilization_max": {"a": 50.0, "b": 90.0},
            "vcpu_available": {"a": 4.0, "b": 8.0},
        }
    }
    assert capacity_providers.aggregate(values) == {
        (PROVIDER, 0): {
            "cpu_utilization_avg": 50.0,
            "cpu_utilization_max": 90.0,
            "vcpu_available": 12.0,
            "instance_types": 2.0,
        }
    }


def test_collect_lists_the_series_and_stores_hourly_utilisation(
    db: Database, moto_url: str
) -> None:
    seed_provider(moto_url)
    managed_function(db)
    function_id(db, "on-demand", ACCOUNT, REGION)
    counter = CallCounter()
    result = SourceResult(ACCOUNT, REGION, "metrics")
    target = Target(session(), ACCOUNT, REGION, moto_url)
    count = capacity_providers.collect(Store(db), target, result, counter, start=START, end=END)
    assert result.status == "ok", result.errors
    assert count == 4
    assert counter.operations == ["ListMetrics", "GetMetricData"]
    rows = stored(db)
    assert [r["capacity_provider_name"] for r in rows] == [PROVIDER] * 4
    assert [r["hour"] for r in rows] == [START + h * HOUR for h in range(4)]
    third = rows[2]
    assert third["instance_types"] == 2
    assert third["cpu_utilization_avg"] == pytest.approx((55.0 + 75.0) / 2)  # mean of the types
    assert third["cpu_utilization_max"] == pytest.approx(90.0)  # the execution env's 99 not read
    assert third["memory_utilization_max"] == pytest.approx(55.0)
    assert third["vcpu_available"] == pytest.approx(8.0)  # 4 per type, summed
    assert third["memory_allocated_bytes"] == pytest.approx(16e9)
    # 12 series (2 types x 6 metrics) -> 16 queries (Average and Maximum for utilisation)
    assert "16 metrics requested" in result.message
    assert result.estimated_cost_usd == pytest.approx(16 * 0.01 / 1000 + 0.01 / 1000)
    # Re-running changes nothing.
    again = SourceResult(ACCOUNT, REGION, "metrics")
    capacity_providers.collect(Store(db), target, again, CallCounter(), start=START, end=END)
    assert stored(db) == rows


def test_no_function_on_a_capacity_provider_makes_no_call(db: Database, moto_url: str) -> None:
    function_id(db, "on-demand", ACCOUNT, REGION)
    counter = CallCounter()
    result = SourceResult(ACCOUNT, REGION, "metrics")
    target = Target(session(), ACCOUNT, REGION, moto_url)
    assert capacity_providers.collect(Store(db), target, result, counter, start=START, end=END) == 0
    assert counter.calls == 0
    assert result.estimated_cost_usd == 0.0
    assert result.message == ""


class StubbedTarget(Target):
    """A CloudWatch client served by botocore's Stubber (the refused calls)."""

    stubbed: Any = None

    def client(self, service: str, counter: CallCounter | None = None) -> Any:
        if counter is not None:
            counter.attach(self.stubbed)
        return self.stubbed


def listing() -> dict[str, Any]:
    """A ListMetrics answer as the API reference documents it: one provider-level series."""
    return {
        "Metrics": [
            {
                "Namespace": "AWS/Lambda",
                "MetricName": "CPUUtilization",
                "Dimensions": [
                    {"Name": "CapacityProviderName", "Value": PROVIDER},
                    {"Name": "InstanceType", "Value": "m7g.xlarge"},
                ],
            }
        ]
    }


@pytest.mark.parametrize("operation", ["GetMetricData", "ListMetrics"])
def test_a_refused_call_is_partial_and_keeps_stored_hours(
    db: Database, moto_url: str, operation: str
) -> None:
    seed_provider(moto_url)
    managed_function(db)
    target = Target(session(), ACCOUNT, REGION, moto_url)
    first = SourceResult(ACCOUNT, REGION, "metrics")
    capacity_providers.collect(Store(db), target, first, CallCounter(), start=START, end=END)
    before = stored(db)
    assert len(before) == 4
    client = session().client("cloudwatch", region_name=REGION)
    stubber = Stubber(client)
    if operation == "ListMetrics":
        stubber.add_client_error("list_metrics", "AccessDenied", "not allowed", 403)
    else:
        stubber.add_response("list_metrics", listing())
        stubber.add_client_error("get_metric_data", "AccessDenied", "not allowed", 403)
    refusing = StubbedTarget(session(), ACCOUNT, REGION)
    refusing.stubbed = client
    result = SourceResult(ACCOUNT, REGION, "metrics")
    with stubber:
        capacity_providers.collect(Store(db), refusing, result, CallCounter(), start=START, end=END)
    stubber.assert_no_pending_responses()
    assert result.status == "partial"
    assert result.errors == [
        {
            "action": f"cloudwatch:{operation}",
            "code": "AccessDenied",
            "message": f"missing IAM permission cloudwatch:{operation}",
        }
    ]
    assert stored(db) == before


def test_an_incomplete_answer_is_partial() -> None:
    refs = {"c0_m0": (PROVIDER, "m7g.xlarge", "cpu_utilization_avg")}
    at = datetime.fromtimestamp(START, UTC)
    values, incomplete = capacity_providers.transform_results(
        [{"Id": "c0_m0", "StatusCode": "Forbidden", "Timestamps": [at], "Values": [12.0]}], refs
    )
    assert values == {(PROVIDER, START): {"cpu_utilization_avg": {"m7g.xlarge": 12.0}}}
    assert incomplete == [("c0_m0", "Forbidden")]


def test_listing_keeps_only_provider_level_series() -> None:
    item = {
        "MetricName": "CPUUtilization",
        "Dimensions": [
            {"Name": "InstanceType", "Value": "m7g.xlarge"},
            {"Name": "CapacityProviderName", "Value": PROVIDER},
        ],
    }
    assert capacity_providers.transform_listing(item, PROVIDER) == [
        capacity_providers.Series(PROVIDER, "m7g.xlarge", "CPUUtilization")
    ]
    env = {**item, "Dimensions": [*item["Dimensions"], {"Name": "FunctionName", "Value": "x"}]}
    assert capacity_providers.transform_listing(env, PROVIDER) == []
    assert capacity_providers.transform_listing({**item, "MetricName": "Other"}, PROVIDER) == []
    assert json.dumps(capacity_providers.build_queries([])) == "[[], {}]"


# ---------------------------------------------------------------- what users see

REPORT_END = 1767225600  # 2026-01-01T00:00:00Z, the memory report tests' --until


def store_provider_hours(db: Database, end: int, hours: int = 24) -> None:
    """Hourly rows as the collector writes them: CPU mean 30 %, peak 85 % in one hour."""
    with db.conn:
        for h in range(hours):
            db.conn.execute(
                "INSERT INTO capacity_provider_hourly (account_id, region,"
                " capacity_provider_name, hour, instance_types, cpu_utilization_avg,"
                " cpu_utilization_max, memory_utilization_avg, memory_utilization_max)"
                " VALUES (?, ?, ?, ?, 2, ?, ?, 40.0, 50.0)",
                (
                    "111111111111",
                    REGION,
                    PROVIDER,
                    end - (h + 1) * HOUR,
                    30.0,
                    85.0 if h == 3 else 45.0,
                ),
            )


def test_the_figure_shows_cpu_and_memory_mean_and_peak() -> None:
    from dashboards import data, figures
    from lambdascope import managed_instances

    hours = [
        {
            "hour": START + h * HOUR,
            "cpu_utilization_avg": 30.0 + h,
            "cpu_utilization_max": 60.0,
            "memory_utilization_avg": 40.0,
            "memory_utilization_max": None,
        }
        for h in range(3)
    ]
    figure = figures.capacity_provider_utilisation(data.capacity_frame(hours), PROVIDER)
    fig = figure.to_plotly_json()
    names = [t["name"] for t in fig["data"]]
    assert names == ["CPU (mean)", "CPU (peak)", "Memory (mean)", "Memory (peak)"]
    assert [float(v) for v in figure.data[0].y] == [30.0, 31.0, 32.0]
    assert all(math.isnan(v) for v in figure.data[3].y)  # absence stays absence
    assert (
        str(figure.data[0].x[0])
        .replace(" ", "T")
        .startswith(datetime.fromtimestamp(START, UTC).strftime("%Y-%m-%dT%H"))
    )
    assert fig["layout"]["yaxis"]["range"] == [0, 100]
    assert PROVIDER in fig["layout"]["title"]["text"]
    empty = figures.capacity_provider_utilisation(
        data.capacity_frame([]), PROVIDER
    ).to_plotly_json()
    assert empty["data"] == []
    assert "No capacity provider utilisation" in empty["layout"]["annotations"][0]["text"]
    summary = managed_instances.summarise(PROVIDER, hours)
    assert (summary.cpu_max, summary.cpu_mean, summary.memory_max) == (60.0, 31.0, None)
    assert summary.sentence() == (
        f"Capacity provider {PROVIDER} over 3 hours: CPU peak 60.0 %, mean 31.0 %;"
        " memory peak —, mean 40.0 %."
    )


def test_the_memory_report_gives_managed_functions_their_provider_utilisation(
    db_path: Any,
) -> None:
    from lambdascope.db import open_db
    from tests.test_cli_report import add_hours, run

    db = open_db(db_path)
    fid = add_hours(
        db, "on-instances", memory_mb=2048, hours=48, per_hour=20, memory_used=(150, 200)
    )
    add_hours(db, "on-demand", memory_mb=1024, hours=48, per_hour=20, memory_used=(150, 200))
    provider_arn = f"arn:aws:lambda:{REGION}:111111111111:capacity-provider:{PROVIDER}"
    with db.conn:
        db.conn.execute(
            "UPDATE functions SET capacity_provider_arn = ? WHERE id = ?", (provider_arn, fid)
        )
    store_provider_hours(db, REPORT_END)
    db.conn.close()
    code, out, _ = run(db_path, "report", "memory", "--until", "2026-01-01T00:00:00Z")
    assert code == 0
    rows = {r["function_name"]: r for r in json.loads(out)}
    managed = rows["on-instances"]
    assert managed["finding"] == "managed-instances"
    assert managed["capacity_provider_cpu_utilization_max"] == 85.0
    assert managed["capacity_provider_cpu_utilization_mean"] == 30.0
    assert managed["capacity_provider_memory_utilization_max"] == 50.0
    assert managed["capacity_provider_memory_utilization_mean"] == 40.0
    assert managed["reasons"][-1].startswith(
        f"Capacity provider {PROVIDER} over 24 hours: CPU peak 85.0 %"
    )
    assert rows["on-demand"]["capacity_provider_cpu_utilization_max"] is None
    _, csv_out, _ = run(
        db_path, "report", "memory", "--until", "2026-01-01T00:00:00Z", "--format", "csv"
    )
    by_name = {r["function_name"]: r for r in csv.DictReader(io.StringIO(csv_out))}
    assert by_name["on-instances"]["capacity_provider_cpu_utilization_max"] == "85.0"
    assert by_name["on-instances"]["capacity_provider_memory_utilization_mean"] == "40.0"
    assert by_name["on-demand"]["capacity_provider_cpu_utilization_max"] == ""
    _, md, _ = run(db_path, "report", "memory", "--until", "2026-01-01T00:00:00Z", "--format", "md")
    assert (
        "| capacity_provider_cpu_utilization_max | capacity_provider_cpu_utilization_mean |" in md
    )
    assert "| 85.0 | 30.0 | 50.0 | 40.0 |" in md
    _, page, _ = run(
        db_path, "report", "memory", "--until", "2026-01-01T00:00:00Z", "--format", "html"
    )
    assert f"Capacity provider {PROVIDER} over 24 hours: CPU peak 85.0 %, mean 30.0 %" in page


def test_a_store_without_managed_functions_has_no_provider_columns(db_path: Any) -> None:
    from lambdascope.db import open_db
    from tests.test_cli_report import add_hours, run

    db = open_db(db_path)
    add_hours(db, "on-demand", memory_mb=1024, hours=48, per_hour=20, memory_used=(150, 200))
    db.conn.close()
    _, out, _ = run(db_path, "report", "memory", "--until", "2026-01-01T00:00:00Z")
    (row,) = json.loads(out)
    assert not any(k.startswith("capacity_provider_") for k in row)


def test_the_function_page_shows_the_provider_utilisation_instead_of_memory(
    db_path: Any,
) -> None:
    from dashboards.app import create_app
    from lambdascope.db import open_db
    from tests.test_dashboard_data import NOW, _render
    from tests.test_queries import T0, add_fact, add_function

    db = open_db(db_path)
    fid = add_function(db, "on-instances", runtime="python3.12")
    add_fact(db, fid, T0 - HOUR, 2048, durations=[50.0] * 60)
    with db.conn:
        db.conn.execute(
            "UPDATE functions SET capacity_provider_arn = ? WHERE id = ?",
            (f"arn:aws:lambda:{REGION}:111111111111:capacity-provider:{PROVIDER}", fid),
        )
    (account, region) = db.conn.execute(
        "SELECT account_id, region FROM functions WHERE id = ?", (fid,)
    ).fetchone()
    with db.conn:
        for h in range(6):
            db.conn.execute(
                "INSERT INTO capacity_provider_hourly (account_id, region,"
                " capacity_provider_name, hour, instance_types, cpu_utilization_avg,"
                " cpu_utilization_max, memory_utilization_avg, memory_utilization_max)"
                " VALUES (?, ?, ?, ?, 1, 20.0, ?, 35.0, 45.0)",
                (account, region, PROVIDER, T0 - (h + 1) * HOUR, 70.0 if h == 0 else 40.0),
            )
    client = create_app(db_path, clock=lambda: NOW).server.test_client()
    body = _render(client, "/functions/on-instances")
    assert "function-capacity-graph" in body
    assert f"Capacity provider {PROVIDER} over 6 hours: CPU peak 70.0 %, mean 20.0 %" in body
    assert "function-memory-graph" not in body and "function-memory-histogram" not in body
    plain = add_function(db, "on-demand", runtime="python3.12")
    add_fact(db, plain, T0 - HOUR, 1024, durations=[50.0] * 60)
    body = _render(client, "/functions/on-demand")
    assert "function-memory-graph" in body and "function-capacity-graph" not in body


@pytest.mark.parametrize("metric_set", ["lean", "full"])
def test_collect_runs_it_in_the_metrics_source(db: Database, metric_set: str) -> None:
    from collectors.aws import CollectOptions, run_collection
    from tests.moto_fleet import moto_cloud

    with moto_cloud() as url:
        seed_provider(url)
        managed_function(db)
        options = CollectOptions(
            regions=(REGION,),
            since=timedelta(hours=6),
            only=("metrics",),
            endpoint_url=url,
            metric_set=metric_set,
        )
        summary = run_collection(db, options, now=NOW + timedelta(minutes=30))
    assert summary.exit_code == 0, summary.lines()
    (result,) = summary.results
    assert "capacity providers: 1, 12 series listed, 16 metrics requested, 4 provider-hours" in (
        result.message
    )
    assert len(stored(db)) == 4
    (message, cost) = db.conn.execute(
        "SELECT message, estimated_cost_usd FROM collection_runs WHERE source = 'metrics'"
    ).fetchone()
    assert "4 provider-hours" in message
    assert cost >= (16 + 1) * 0.01 / 1000


def test_listing_follows_next_token_pages() -> None:
    """ListMetrics returns up to 500 metrics per call and a NextToken for the rest (API
    reference): every page is read, and the execution-environment series are left out."""
    client = session().client("cloudwatch", region_name=REGION)
    stubber = Stubber(client)
    wanted = {
        "Namespace": "AWS/Lambda",
        "Dimensions": [{"Name": "CapacityProviderName", "Value": PROVIDER}],
    }
    env = {
        "Namespace": "AWS/Lambda",
        "MetricName": "CPUUtilization",
        "Dimensions": [
            {"Name": "CapacityProviderName", "Value": PROVIDER},
            {"Name": "FunctionName", "Value": "resize"},
        ],
    }
    stubber.add_response("list_metrics", {**listing(), "NextToken": "page-2"}, wanted)
    second = {
        "Metrics": [
            env,
            {
                "Namespace": "AWS/Lambda",
                "MetricName": "MemoryAllocated",
                "Dimensions": [
                    {"Name": "CapacityProviderName", "Value": PROVIDER},
                    {"Name": "InstanceType", "Value": "c7g.2xlarge"},
                ],
            },
        ]
    }
    stubber.add_response("list_metrics", second, {**wanted, "NextToken": "page-2"})
    with stubber:
        series, pages = capacity_providers.list_series(client, PROVIDER)
    stubber.assert_no_pending_responses()
    assert pages == 2
    assert series == [
        capacity_providers.Series(PROVIDER, "c7g.2xlarge", "MemoryAllocated"),
        capacity_providers.Series(PROVIDER, "m7g.xlarge", "CPUUtilization"),
    ]
