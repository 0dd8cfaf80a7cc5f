"""Provisioned concurrency: configurations per alias/version (Stubber, API-reference
shapes: moto has no ListProvisionedConcurrencyConfigs), hourly metrics over real HTTP to
moto, and the level with its cost against on-demand."""

from __future__ import annotations

import urllib.request
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import pytest
from botocore.config import Config
from botocore.stub import Stubber
from moto.server import ThreadedMotoServer
from sqlite_utils import Database

from collectors import provisioned
from collectors.aws import CallCounter, SourceResult, Store, Target
from lambdascope.db import function_id
from lambdascope.evidence.provisioned import (
    ProvisionedHour,
    price_for,
    recommend_all,
    recommend_level,
    window_cost,
)

ACCOUNT = "123456789012"
ARN = f"arn:aws:lambda:us-east-1:{ACCOUNT}:function:checkout"
HOUR = 3600
DAY = 86400
# put_metric_data over real HTTP: recent hours, aligned
NOW = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
START = int((NOW - timedelta(hours=6)).timestamp())
END = int(NOW.timestamp())


def api_item(qualifier: str, requested: int, allocated: int) -> dict[str, Any]:
    """A ProvisionedConcurrencyConfigListItem as the API reference documents it."""
    return {
        "FunctionArn": f"{ARN}:{qualifier}",
        "RequestedProvisionedConcurrentExecutions": requested,
        "AvailableProvisionedConcurrentExecutions": allocated,
        "AllocatedProvisionedConcurrentExecutions": allocated,
        "Status": "READY",
        "LastModified": "2026-11-20T10:00:00+0000",
    }


def test_configs_are_keyed_by_alias_or_version() -> None:
    items = [api_item("live", 10, 10), api_item("7", 5, 3), {"FunctionArn": ARN}]
    configs = provisioned.transform_configs(items)
    assert [(c.qualifier, c.requested, c.allocated) for c in configs] == [
        ("live", 10, 10),
        ("7", 5, 3),
    ]
    assert configs[0].last_modified == 1795168800  # 2026-11-20T10:00:00Z


def lambda_client() -> Any:
    return boto3.client(
        "lambda",
        region_name="us-east-1",
        aws_access_key_id="x",
        aws_secret_access_key="x",
        endpoint_url="http://127.0.0.1:9",
    )


def test_listing_follows_next_marker() -> None:
    client = lambda_client()
    stubber = Stubber(client)
    stubber.add_response(
        "list_provisioned_concurrency_configs",
        {"ProvisionedConcurrencyConfigs": [api_item("live", 10, 10)], "NextMarker": "m2"},
        {"FunctionName": "checkout", "MaxItems": 50},
    )
    stubber.add_response(
        "list_provisioned_concurrency_configs",
        {"ProvisionedConcurrencyConfigs": [api_item("7", 2, 2)]},
        {"FunctionName": "checkout", "MaxItems": 50, "Marker": "m2"},
    )
    with stubber:
        items = provisioned.get_configs(client, "checkout")
    assert [i["FunctionArn"].rsplit(":", 1)[1] for i in items] == ["live", "7"]


@pytest.fixture(scope="module")
def moto_url() -> Iterator[str]:
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    url = f"http://{host}:{port}"
    urllib.request.urlopen(urllib.request.Request(f"{url}/moto-api/reset", method="POST")).close()
    try:
        yield url
    finally:
        server.stop()


class StubbedLambdaTarget(Target):
    """CloudWatch over real HTTP to moto; Lambda from a Stubber (moto answers 404)."""

    lambda_stub: Any = None

    def client(self, service: str, counter: CallCounter | None = None) -> Any:
        if service == "lambda" and self.lambda_stub is not None:
            if counter is not None:
                counter.attach(self.lambda_stub)
            return self.lambda_stub
        return super().client(service, counter)


def session() -> boto3.Session:
    return boto3.Session(
        aws_access_key_id="testing", aws_secret_access_key="testing", region_name="us-east-1"
    )


def seed_metrics(url: str) -> None:
    cw = session().client(
        "cloudwatch", endpoint_url=url, config=Config(disable_request_compression=True)
    )
    dims = [
        {"Name": "FunctionName", "Value": "checkout"},
        {"Name": "Resource", "Value": "checkout:live"},
    ]
    data = []
    for h in range(6):
        at = datetime.fromtimestamp(START + h * HOUR + 600, UTC)
        for name, value in (
            ("ConcurrentExecutions", 12.0 if h == 2 else 6.0),
            ("ProvisionedConcurrentExecutions", 10.0 if h == 2 else 6.0),
            ("ProvisionedConcurrencyUtilization", 1.0 if h == 2 else 0.6),
            ("ProvisionedConcurrencyInvocations", 1000.0),
            ("Invocations", 1100.0 if h == 2 else 1000.0),
            ("Duration", 200.0),
        ):
            data.append({"MetricName": name, "Dimensions": dims, "Timestamp": at, "Value": value})
        if h == 2:  # no datapoint in the other hours: absence, not zero
            data.append(
                {
                    "MetricName": "ProvisionedConcurrencySpilloverInvocations",
                    "Dimensions": dims,
                    "Timestamp": at,
                    "Value": 100.0,
                }
            )
    cw.put_metric_data(Namespace="AWS/Lambda", MetricData=data)


def test_collect_stores_configs_and_hours(db: Database, moto_url: str) -> None:
    seed_metrics(moto_url)
    fid = function_id(db, "checkout", ACCOUNT, "us-east-1")
    function_id(db, "no-provisioned", ACCOUNT, "us-east-1")
    with db.conn:
        db.conn.execute(
            "UPDATE functions SET provisioned_concurrency = 10, memory_mb = 1024 WHERE id = ?",
            (fid,),
        )
    target = StubbedLambdaTarget(session(), ACCOUNT, "us-east-1", moto_url)
    store = Store(db)
    for run in range(2):  # re-running changes nothing
        client = lambda_client()
        stubber = Stubber(client)
        stubber.add_response(
            "list_provisioned_concurrency_configs",
            {"ProvisionedConcurrencyConfigs": [api_item("live", 10, 10)]},
            {"FunctionName": "checkout", "MaxItems": 50},
        )
        target.lambda_stub = client
        result = SourceResult(ACCOUNT, "us-east-1", "metrics")
        counter = CallCounter()
        with stubber:
            stored = provisioned.collect(
                store, target, result, counter, start=START, end=END, now=END
            )
            stubber.assert_no_pending_responses()  # one listing: the function with PC
        assert result.status == "ok", result.errors
        assert stored == 6
        # one GetMetricData call for the 7 metrics (the Stubber answers the listing before
        # the counter's handler sees it)
        assert counter.calls == 1, run
    rows = db.conn.execute(
        "SELECT hour, concurrent_executions_max, spillover_invocations, invocations"
        " FROM provisioned_concurrency_hourly WHERE qualifier = 'live' ORDER BY hour"
    ).fetchall()
    assert len(rows) == 6
    assert rows[2] == (START + 2 * HOUR, 12.0, 100.0, 1100.0)
    assert rows[0][2] is None  # no spillover datapoint stays absent
    configs = db.conn.execute(
        "SELECT qualifier, allocated FROM provisioned_concurrency_configs"
    ).fetchall()
    assert configs == [("live", 10)]


def test_an_endpoint_without_the_listing_is_noted_not_failed(db: Database, moto_url: str) -> None:
    fid = function_id(db, "checkout", ACCOUNT, "us-east-1")
    with db.conn:
        db.conn.execute("UPDATE functions SET provisioned_concurrency = 5 WHERE id = ?", (fid,))
    target = Target(session(), ACCOUNT, "us-east-1", moto_url)  # moto: HTTP 404
    result = SourceResult(ACCOUNT, "us-east-1", "metrics")
    assert (
        provisioned.collect(Store(db), target, result, CallCounter(), start=START, end=END, now=END)
        == 0
    )
    assert result.status == "ok"  # not offered there: noted, nothing failed
    assert result.errors[0]["action"] == "lambda:ListProvisionedConcurrencyConfigs"
    assert result.errors[0]["code"] == "NotOffered" and not result.failures


def test_access_denied_is_recorded_with_the_iam_action(db: Database) -> None:
    fid = function_id(db, "checkout", ACCOUNT, "us-east-1")
    with db.conn:
        db.conn.execute("UPDATE functions SET provisioned_concurrency = 5 WHERE id = ?", (fid,))
    client = lambda_client()
    stubber = Stubber(client)
    stubber.add_client_error(
        "list_provisioned_concurrency_configs", "AccessDeniedException", "denied", 403
    )
    target = StubbedLambdaTarget(session(), ACCOUNT, "us-east-1", "http://127.0.0.1:9")
    target.lambda_stub = client
    result = SourceResult(ACCOUNT, "us-east-1", "metrics")
    with stubber:
        provisioned.collect(Store(db), target, result, CallCounter(), start=START, end=END, now=END)
    assert result.status == "partial"
    assert "lambda:ListProvisionedConcurrencyConfigs" in result.errors[0]["message"]


def hours(
    n: int,
    *,
    peak: float,
    provisioned_max: float,
    utilization: float,
    spill_every: int = 0,
    spill: float = 0.0,
    calls: float = 3600.0,
    duration_ms: float = 100.0,
) -> list[ProvisionedHour]:
    out = []
    for i in range(n):
        spilled = spill if spill_every and i % spill_every == 0 else None
        out.append(
            ProvisionedHour(
                hour=i * HOUR,
                concurrent_executions_max=peak if spilled else provisioned_max,
                provisioned_executions_max=provisioned_max,
                utilization_max=utilization,
                spillover_invocations=spilled,
                provisioned_invocations=calls - (spilled or 0.0),
                invocations=calls,
                duration_avg_ms=duration_ms,
            )
        )
    return out


def level(configured: int, rows: list[ProvisionedHour]) -> Any:
    return recommend_level(
        function_name="checkout",
        account_id=ACCOUNT,
        region="us-east-1",
        qualifier="live",
        memory_mb=1024,
        architecture="x86_64",
        configured_level=configured,
        hours=rows,
        window_s=len(rows) * HOUR,
    )


def test_frequent_spillover_raises_the_level() -> None:
    rec = level(
        10, hours(7 * 24, peak=18, provisioned_max=10, utilization=1.0, spill_every=2, spill=50)
    )
    assert rec.action == "raise"
    assert rec.recommended_level == 20  # p95 of peaks 18, +10 % headroom
    assert rec.spillover_hours == 84
    assert "spilled over to on-demand in 84 of 168 hours" in rec.reasons[0]


def test_low_utilisation_lowers_the_level() -> None:
    rec = level(50, hours(7 * 24, peak=8, provisioned_max=8, utilization=0.16))
    assert (rec.action, rec.recommended_level) == ("lower", 9)
    assert rec.recommended_monthly_cost_usd < rec.current_monthly_cost_usd


def test_rare_spillover_keeps_the_level_and_says_so() -> None:
    rec = level(
        10, hours(7 * 24, peak=30, provisioned_max=9, utilization=0.9, spill_every=100, spill=5)
    )
    assert (rec.action, rec.recommended_level) == ("keep", 10)
    assert "spillover in 2 of 168 hours only" in rec.reasons[0]


def test_a_few_hours_are_not_enough() -> None:
    rec = level(10, hours(5, peak=30, provisioned_max=10, utilization=1.0))
    assert (rec.action, rec.recommended_level) == ("insufficient-data", 10)


def test_costs_pin_the_price_list_arithmetic() -> None:
    price = price_for("us-east-1", "x86_64")
    assert price.provisioned_usd_per_gb_second == pytest.approx(0.0000041667)
    assert price.duration_usd_per_gb_second == pytest.approx(0.0000097222)
    idle = [ProvisionedHour(hour=0)]
    # 10 environments of 1 GB for 30 days, no traffic: 10 x 2,592,000 GB-s x $0.0000041667
    assert window_cost(idle, 10, 1024, price, 30 * DAY) == pytest.approx(108.00086, rel=1e-6)
    busy = [ProvisionedHour(hour=0, invocations=1_000_000, duration_avg_ms=1000.0)]
    # on-demand: 1M requests ($0.20) + 1M GB-s at $0.0000166667
    assert window_cost(busy, 0, 1024, price, HOUR) == pytest.approx(0.2 + 16.6667, rel=1e-6)
    # provisioned, no spillover: the same GB-s at $0.0000097222 plus the level for the hour
    expected = 0.2 + 9.7222 + 1 * 3600 * 0.0000041667
    assert window_cost(busy, 1, 1024, price, HOUR) == pytest.approx(expected, rel=1e-6)
    arm = price_for("us-east-1", "arm64")
    assert arm.duration_usd_per_gb_second == pytest.approx(0.0000077778)


def test_idle_provisioned_concurrency_costs_more_than_on_demand() -> None:
    rec = level(20, hours(48, peak=1, provisioned_max=1, utilization=0.05, calls=10))
    assert rec.on_demand_monthly_cost_usd < rec.recommended_monthly_cost_usd
    assert any("on-demand would cost" in r for r in rec.reasons)


def test_recommend_all_reads_the_store(db: Database) -> None:
    fid = function_id(db, "checkout", ACCOUNT, "us-east-1")
    with db.conn:
        db.conn.execute("UPDATE functions SET memory_mb = 512 WHERE id = ?", (fid,))
        db.conn.execute(
            "INSERT INTO provisioned_concurrency_configs (function_id, qualifier, allocated,"
            " seen_at) VALUES (?, 'live', 40, 0)",
            (fid,),
        )
        for row in hours(48, peak=4, provisioned_max=4, utilization=0.1):
            db.conn.execute(
                "INSERT INTO provisioned_concurrency_hourly (function_id, qualifier, hour,"
                " concurrent_executions_max, provisioned_executions_max, utilization_max,"
                " invocations, duration_avg_ms) VALUES (?, 'live', ?, ?, ?, ?, ?, ?)",
                (fid, row.hour, 4.0, 4.0, 0.1, 3600.0, 100.0),
            )
    [rec] = recommend_all(db, 0, 48 * HOUR)
    assert (rec.qualifier, rec.memory_mb, rec.configured_level) == ("live", 512, 40)
    assert (rec.action, rec.recommended_level) == ("lower", 5)
    assert rec.as_dict()["reasons"] == list(rec.reasons)


def seed_store(db: Database) -> int:
    """checkout: 40 provisioned on 'live', 4 used, 48 hours; 1,024 MB."""
    fid = function_id(db, "checkout", ACCOUNT, "us-east-1")
    with db.conn:
        db.conn.execute("UPDATE functions SET memory_mb = 1024 WHERE id = ?", (fid,))
        db.conn.execute(
            "INSERT INTO provisioned_concurrency_configs (function_id, qualifier, allocated,"
            " seen_at) VALUES (?, 'live', 40, 0)",
            (fid,),
        )
        for h in range(48):
            db.conn.execute(
                "INSERT INTO provisioned_concurrency_hourly (function_id, qualifier, hour,"
                " concurrent_executions_max, provisioned_executions_max, utilization_max,"
                " invocations, duration_avg_ms) VALUES (?, 'live', ?, 4, 4, 0.1, 3600, 100)",
                (fid, END - (h + 1) * HOUR),
            )
    return fid


def cli(db_path: Any, *args: str) -> tuple[int, str, str]:
    from click.testing import CliRunner

    from lambdascope.cli import cli as root

    result = CliRunner().invoke(root, ["--db", str(db_path), *args])
    return result.exit_code, result.stdout, result.stderr


def test_report_provisioned_concurrency_in_every_format(db_path: Any) -> None:
    from lambdascope.db import open_db
    from lambdascope.evidence.provisioned import COLUMNS

    seed_store(open_db(db_path))
    until = datetime.fromtimestamp(END, UTC).isoformat()
    code, out, _ = cli(
        db_path, "report", "provisioned-concurrency", "--until", until, "--since", "2d"
    )
    assert code == 0
    [row] = __import__("json").loads(out)
    assert set(COLUMNS) <= set(row)
    # 40 x 1 GB x 30 days x $0.0000041667 + 259,200 GB-s x $0.0000097222 + 2.592M requests
    assert row["current_monthly_cost_usd"] == pytest.approx(432.0 + 2.52 + 0.5184, abs=0.01)
    assert row["on_demand_monthly_cost_usd"] == pytest.approx(4.32 + 0.5184, abs=0.01)
    assert (row["qualifier"], row["configured_level"], row["recommended_level"]) == ("live", 40, 5)
    assert row["action"] == "lower"
    code, csv_text, _ = cli(
        db_path,
        "report",
        "provisioned-concurrency",
        "--until",
        until,
        "--since",
        "2d",
        "--format",
        "csv",
    )
    assert csv_text.splitlines()[1].startswith(
        "checkout,123456789012,us-east-1,live,1024,x86_64,40,5,lower,48,"
    )
    code, md, _ = cli(
        db_path, "report", "memory", "--until", until, "--since", "2d", "--format", "md"
    )
    assert code == 0 and "## Provisioned concurrency" in md
    assert "provisioned-concurrency prices" in md


def test_old_store_opened_read_only_has_no_evidence_and_no_error(db_path: Any) -> None:
    import sqlite3

    conn = sqlite3.connect(db_path)
    with conn:
        for table in (
            "power_tuning_points",
            "power_tuning_runs",
            "provisioned_concurrency_hourly",
            "provisioned_concurrency_configs",
        ):
            conn.execute(f"DROP TABLE {table}")
        conn.execute("DELETE FROM _sqlite_migrations WHERE name LIKE '001%_evidence%'")
    conn.close()
    for kind in ("memory", "provisioned-concurrency"):
        code, out, err = cli(db_path, "report", kind, "--format", "md")
        assert code == 0, err
        assert "Provisioned concurrency" not in out or kind != "memory"


def test_function_page_blocks_show_levels_and_costs(db: Database) -> None:
    import json

    from dashboards.evidence import evidence_children

    fid = seed_store(db)
    text = json.dumps(
        [c.to_plotly_json() for c in evidence_children(db.conn, fid, END - 2 * DAY, END)],
        default=lambda o: o.to_plotly_json(),
    )
    assert "Provisioned concurrency" in text and "5 (lower)" in text
    assert "No Power Tuning run imported" in text
    other = function_id(db, "no-provisioned", ACCOUNT, "us-east-1")
    text = json.dumps(
        [c.to_plotly_json() for c in evidence_children(db.conn, other, 0, END)],
        default=lambda o: o.to_plotly_json(),
    )
    assert "Provisioned concurrency" not in text
