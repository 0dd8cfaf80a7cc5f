"""Lambda Insights performance events: the documented event shape, envelopes, import, and
the CPU share in the duration projection."""

from __future__ import annotations

import gzip
import json
import random
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from lambdascope.cli import cli
from lambdascope.db import open_db
from lambdascope.evidence.insights import (
    CpuProfile,
    ReadCounts,
    busy_vcpus,
    cpu_profiles,
    parse_event,
    project,
    read_events,
)
from lambdascope.pricing import cpu_share, cpu_throughput, vcpus
from tests.test_cli_report import END, UNTIL, add_hours


def event(
    request_id: str,
    *,
    duration: float,
    cpu: float,
    memory: int = 512,
    at_ms: int | None = None,
    name: str = "orders-api",
) -> dict[str, Any]:
    """A performance event as the CloudWatch docs' example shows it (embedded metric format)."""
    return {
        "_aws": {
            "Timestamp": at_ms if at_ms is not None else (END - 1800) * 1000,
            "CloudWatchMetrics": [
                {
                    "Namespace": "LambdaInsights",
                    "Dimensions": [["function_name"], ["function_name", "version"]],
                    "Metrics": [{"Name": "cpu_total_time", "Unit": "Milliseconds"}],
                }
            ],
            "LambdaInsights": {"ShareTelemetry": True},
        },
        "event_type": "performance",
        "function_name": name,
        "version": "$LATEST",
        "request_id": request_id,
        "trace_id": "Root=1-5faaa3d4-0e2d1c4f8a6b3b9d7c0e1f2a",
        "duration": duration,
        "billed_duration": int(duration) + 1,
        "billed_mb_ms": (int(duration) + 1) * memory,
        "cold_start": False,
        "init_duration": 0,
        "tmp_max": 539.0,
        "tmp_used": 10.0,
        "fd_max": 1024,
        "fd_use": 6,
        "memory_utilization": 40,
        "total_memory": memory,
        "used_memory_max": 200,
        "cpu_user_time": cpu * 0.9,
        "cpu_system_time": cpu * 0.1,
        "cpu_total_time": cpu,
        "rx_bytes": 1000,
        "tx_bytes": 2000,
        "total_network": 3000,
        "agent_version": "1.0.135.0",
    }


def test_documented_event_is_read() -> None:
    e = parse_event(event("r1", duration=100.0, cpu=20.0, at_ms=1605034324256))
    assert e is not None
    assert (e.function_name, e.request_id, e.timestamp_s, e.memory_mb) == (
        "orders-api",
        "r1",
        1605034324,
        512,
    )
    assert (e.duration_ms, e.cpu_total_ms, e.used_memory_max_mb) == (100.0, 20.0, 200.0)
    assert parse_event({"event_type": "other"}) is None
    assert parse_event({**event("r", duration=0, cpu=1)}) is None


def test_envelopes_gzip_and_junk() -> None:
    lines = [
        json.dumps(event("a", duration=100, cpu=10)),
        "not json at all",
        json.dumps(
            {
                "messageType": "DATA_MESSAGE",
                "owner": "111111111111",
                "logGroup": "/aws/lambda-insights",
                "logStream": "2026/01/01/[$LATEST]abc",
                "logEvents": [
                    {
                        "id": "1",
                        "timestamp": 1767222000000,
                        "message": json.dumps(event("b", duration=100, cpu=10)),
                    },
                    {"id": "2", "timestamp": 1767222000000, "message": "{broken"},
                ],
            }
        ),
    ]
    filtered = json.dumps(
        {"events": [{"timestamp": 1, "message": json.dumps(event("c", duration=1, cpu=1))}]}
    )
    counts = ReadCounts()
    found = list(read_events([gzip.compress("\n".join(lines).encode()), filtered.encode()], counts))
    assert [e.request_id for e in found] == ["a", "b", "c"]
    assert (counts.events, counts.skipped) == (3, 2)


def test_projection_scales_only_the_cpu_part() -> None:
    # 512 MB: 100 ms, of which CPU work 20 vCPU-ms takes 20 / share(512) ms of wall time
    share = cpu_share(512)
    wall = 0.2 / share
    profile = CpuProfile(512, 1000, 100.0, 20.0, wall, 0.15, 0.05)
    low, expected, high = project(100.0, 512, 1024, profile)
    assert expected == pytest.approx((100.0 - 20.0 / share) + 20.0 / cpu_share(1024))
    assert low < expected < high
    # faster at 1,024 MB: more CPU share means shorter, less means longer
    assert expected - low == pytest.approx(100.0 * 0.05 * (1 - share / cpu_share(1024)))
    assert high - expected == pytest.approx(100.0 * 0.15 * (1 - share / cpu_share(1024)))


def test_single_threaded_code_gains_nothing_above_one_vcpu_but_the_range_allows_threads() -> None:
    # 512 MB, 100 ms, CPU 20 vCPU-ms: nothing says the code uses more than one thread
    profile = CpuProfile(512, 1000, 100.0, 20.0, 0.2 / cpu_share(512), 0.15, 0.05)
    _, at_1769, _ = project(100.0, 512, 1769, profile)
    low, at_4096, high = project(100.0, 512, 4096, profile)
    assert at_4096 == pytest.approx(at_1769)  # one vCPU at most for one thread
    # code keeping every vCPU busy would run its CPU part on 4096 / 1769 of them
    most = 0.2 / cpu_share(512) + 0.05  # the share's upper error: the most CPU-bound
    assert low == pytest.approx(100.0 * ((1 - most) + most * 512 / 4096))
    assert high > at_4096
    # below 1,769 MB the number of threads changes nothing: the range is the share's error
    low, expected, high = project(100.0, 512, 1024, profile)
    assert expected - low == pytest.approx(100.0 * 0.05 * (1 - cpu_share(512) / cpu_share(1024)))


def test_cpu_time_beyond_one_vcpu_means_several_threads() -> None:
    # 6,144 MB (3.47 vCPUs), 100 ms, 250 vCPU-ms of CPU: 2.5 vCPUs busy on average
    profile = CpuProfile(6144, 1000, 100.0, 250.0, 1.0, 0.15, 0.05)
    assert busy_vcpus(profile) == pytest.approx(2.5)
    low, expected, high = project(100.0, 6144, 3008, profile)
    # at least 2.5 threads: at 3,008 MB only 1.70 vCPUs are there, so it slows down
    assert expected == pytest.approx(100.0 * 2.5 / vcpus(3008))
    assert low <= expected <= high
    # the model before (one vCPU at most) projected no change at all
    assert expected > 140.0
    assert cpu_throughput(3008, 1) == 1.0
    assert vcpus(10240) == pytest.approx(5.79, abs=0.01)


def store_with_events(db_path: Path, *, io_ms: float, cpu_ms: float, n: int = 400) -> list[str]:
    """orders-api at 512 MB for 48 h; Insights events for ``n`` invocations whose CPU work
    is ``cpu_ms`` vCPU-ms and waiting ``io_ms``."""
    db = open_db(db_path)
    duration = io_ms + cpu_ms / cpu_share(512)
    add_hours(
        db,
        "orders-api",
        memory_mb=512,
        hours=48,
        per_hour=20,
        memory_used=(150, 200),
        duration_ms=duration,
    )
    db.conn.close()
    rng = random.Random(3)
    return [
        json.dumps(
            event(
                f"r{i}",
                duration=duration * rng.uniform(0.9, 1.1),
                cpu=cpu_ms * rng.uniform(0.9, 1.1),
                at_ms=(END - 3600 * (1 + i % 40)) * 1000,
            )
        )
        for i in range(n)
    ]


def run(db_path: Path, *args: str, stdin: str | None = None) -> Any:
    return CliRunner().invoke(cli, ["--db", str(db_path), *args], input=stdin)


def test_import_is_idempotent_and_narrows_the_range(db_path: Path, tmp_path: Path) -> None:
    lines = store_with_events(db_path, io_ms=80.0, cpu_ms=10.0)
    before = json.loads(run(db_path, "report", "memory", "--until", UNTIL).stdout)[0]
    path = tmp_path / "events.json.gz"
    path.write_bytes(gzip.compress("\n".join(lines).encode()))
    result = run(
        db_path,
        "insights",
        "import",
        str(path),
        "--account",
        "111111111111",
        "--region",
        "us-east-1",
    )
    assert result.exit_code == 0, result.output
    assert result.stdout == "400 performance events read, 400 new\n"
    again = run(
        db_path,
        "insights",
        "import",
        "-",
        "--account",
        "111111111111",
        "--region",
        "us-east-1",
        stdin="\n".join(lines),
    )
    assert again.stdout == "400 performance events read, 0 new\n"
    profile = cpu_profiles(open_db(db_path), END - 14 * 86400, END)[
        ("111111111111", "us-east-1", "orders-api", 512)
    ]
    assert profile.wall_share == pytest.approx(10.0 / cpu_share(512) / 112.0, rel=0.05)
    after = json.loads(run(db_path, "report", "memory", "--until", UNTIL).stdout)[0]
    assert (before["duration_evidence"], after["duration_evidence"]) == (
        "bounds",
        "lambda-insights",
    )
    assert any("Lambda Insights" in r for r in after["reasons"])

    def width(row: dict[str, Any]) -> float:
        rng = row["projected_duration_ms"]
        return float(rng["upper"] - rng["lower"])

    assert width(after) * 2 <= width(before)
    # mostly I/O: the smaller size costs little time, so balanced goes lower than before
    assert after["recommended_memory_mb"] <= before["recommended_memory_mb"]


def test_input_without_events_is_one_line(db_path: Path, tmp_path: Path) -> None:
    path = tmp_path / "x.json"
    path.write_text('{"hello": 1}\n')
    result = run(db_path, "insights", "import", str(path))
    assert result.exit_code == 1
    assert result.stderr == "Error: no Lambda Insights performance events in the input\n"
    missing = run(db_path, "insights", "import", str(tmp_path / "nope.json"))
    assert missing.exit_code == 1 and missing.stderr.startswith("Error: cannot read")


# ---------------------------------------------------------------- Logs Insights path


def logs_client() -> Any:
    import boto3

    return boto3.client(
        "logs",
        region_name="us-east-1",
        aws_access_key_id="x",
        aws_secret_access_key="x",
        endpoint_url="http://127.0.0.1:9",
    )


def cell(field: str, value: str) -> dict[str, str]:
    return {"field": field, "value": value}


def test_logs_insights_query_is_summed_per_function_hour_and_memory(db_path: Path) -> None:
    from botocore.stub import Stubber

    from collectors import lambda_insights
    from collectors.aws import CallCounter, SourceResult, Store, Target

    store_with_events(db_path, io_ms=80.0, cpu_ms=10.0, n=0)
    db = open_db(db_path)
    client = logs_client()
    stubber = Stubber(client)
    start, end = END - 48 * 3600, END
    stubber.add_response(
        "describe_log_groups",
        {"logGroups": [{"logGroupName": "/aws/lambda-insights"}]},
        {"logGroupNamePrefix": "/aws/lambda-insights"},
    )
    stubber.add_response(
        "start_query",
        {"queryId": "q-1"},
        {
            "logGroupNames": ["/aws/lambda-insights"],
            "startTime": start,
            "endTime": end - 1,
            "queryString": lambda_insights.QUERY,
            "limit": 10000,
        },
    )
    stubber.add_response("get_query_results", {"status": "Running", "results": []})
    share = 10.0 / cpu_share(512) / 112.0
    rows = []
    for h in range(40):
        hour = END - 3600 * (h + 1)
        stamp = datetime.fromtimestamp(hour, UTC).strftime("%Y-%m-%d %H:%M:%S.000")
        rows.append(
            [
                cell("hour", stamp),
                cell("function_name", "orders-api"),
                cell("total_memory", "512"),
                cell("invocations", "10"),
                cell("duration_ms_sum", "1120"),
                cell("cpu_total_ms_sum", "100"),
                cell("share_sum", str(10 * share)),
                cell("share_sq_sum", str(10 * share * share)),
            ]
        )
    rows.append([cell("hour", "not a time"), cell("function_name", "x")])
    rows.append(
        [
            cell("hour", "2025-12-31 23:00:00.000"),
            cell("function_name", "not-in-the-inventory"),
            cell("total_memory", "128"),
            cell("invocations", "1"),
            cell("duration_ms_sum", "1"),
            cell("cpu_total_ms_sum", "1"),
            cell("share_sum", "1"),
            cell("share_sq_sum", "1"),
        ]
    )
    stubber.add_response(
        "get_query_results",
        {
            "status": "Complete",
            "results": rows,
            "statistics": {"recordsMatched": 400.0, "recordsScanned": 400.0, "bytesScanned": 2e8},
        },
    )
    target = Target(None, "111111111111", "us-east-1")  # type: ignore[arg-type]
    result = SourceResult("111111111111", "us-east-1", "logs")
    with stubber:
        stored = lambda_insights.collect(
            Store(db),
            target,
            result,
            CallCounter(),
            start=start,
            end=end,
            sleep=lambda _: None,
            client=client,
        )
    assert stored == 40 and result.status == "ok"
    assert result.bytes_scanned == 200_000_000
    assert result.estimated_cost_usd == pytest.approx(0.001)
    assert "1 malformed rows, 1 rows of functions not in the inventory" in result.message
    profile = cpu_profiles(db, start, end)[("111111111111", "us-east-1", "orders-api", 512)]
    assert profile.invocations == 400
    assert profile.wall_share == pytest.approx(share)
    row = json.loads(run(db_path, "report", "memory", "--until", UNTIL).stdout)[0]
    assert row["duration_evidence"] == "lambda-insights"


def test_no_insights_log_group_means_no_query(db_path: Path) -> None:
    from botocore.stub import Stubber

    from collectors import lambda_insights
    from collectors.aws import CallCounter, SourceResult, Store, Target

    client = logs_client()
    stubber = Stubber(client)
    stubber.add_response("describe_log_groups", {"logGroups": []})
    result = SourceResult("1", "us-east-1", "logs")
    with stubber:
        assert (
            lambda_insights.collect(
                Store(open_db(db_path)),
                Target(None, "1", "us-east-1"),  # type: ignore[arg-type]
                result,
                CallCounter(),
                start=0,
                end=3600,
                client=client,
            )
            == 0
        )
    stubber.assert_no_pending_responses()
    assert result.status == "ok" and not result.errors


def test_lambda_insights_metrics_alone_narrow_the_range(db_path: Path) -> None:
    """No performance events, only the LambdaInsights metrics' hours (as the metrics
    source stores them): the report projects from them and says so."""
    store_with_events(db_path, io_ms=80.0, cpu_ms=10.0)
    before = json.loads(run(db_path, "report", "memory", "--until", UNTIL).stdout)[0]
    duration = 80.0 + 10.0 / cpu_share(512)
    db = open_db(db_path)
    (fid,) = db.conn.execute(
        "SELECT id FROM functions WHERE function_name = 'orders-api'"
    ).fetchone()
    with db.conn:
        for k in range(1, 41):
            db.conn.execute(
                "INSERT INTO insights_metrics_hourly (function_id, hour, invocations,"
                " cpu_total_ms_sum, total_memory_min_mb, total_memory_max_mb, duration_ms_sum,"
                " duration_count) VALUES (?, ?, 20, ?, 512, 512, ?, 20)",
                (fid, END - 3600 * k, 20 * 10.0 * (1 + 0.05 * (k % 3)), 20 * duration),
            )
    db.conn.close()
    after = json.loads(run(db_path, "report", "memory", "--until", UNTIL).stdout)[0]
    assert after["duration_evidence"] == "lambda-insights"
    reason = next(r for r in after["reasons"] if r.startswith("Lambda Insights"))
    assert "(800 invocations in LambdaInsights metrics)" in reason
    assert "up to one vCPU" in reason
    rng, old = after["projected_duration_ms"], before["projected_duration_ms"]
    assert (rng["upper"] - rng["lower"]) * 2 <= old["upper"] - old["lower"]
