"""`collect --plan` / `--max-cost` over real HTTP against a moto fleet: what a run would do
and cost, without calling a data API; and the estimate arithmetic."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import boto3
import pytest
from click.testing import CliRunner
from sqlite_utils import Database

import collectors.common
from collectors.aws import CallCounter, CollectOptions, Store, Target, iam_action
from collectors.plan import daily_bytes, plan_target, window_bytes
from lambdascope.cli import cli
from lambdascope.db import function_id, open_db
from lambdascope.timeutil import from_epoch
from tests.moto_fleet import DEFAULT_ACCOUNT, Fleet, small_moto_fleet

__all__ = ["small_moto_fleet"]

DAY = 86400
NOW = 1_780_000_000


def test_daily_bytes_spread_over_the_days_a_group_holds() -> None:
    # 30 days old, 7-day retention: 7 days of logs held.
    assert daily_bytes(7_000, NOW - 30 * DAY, 7, NOW) == 1_000
    # 10 days old, no retention: 10 days held.
    assert daily_bytes(10_000, NOW - 10 * DAY, None, NOW) == 1_000
    # Created an hour ago: at least one day.
    assert daily_bytes(500, NOW - 3600, None, NOW) == 500
    # A 3-hour window scans an eighth of a day; a 30-day window never more than stored.
    groups = [(7_000, NOW - 30 * DAY, 7), (10_000, NOW - 10 * DAY, None)]
    assert window_bytes(groups, NOW - 3 * 3600, NOW, NOW) == 250
    assert window_bytes(groups, NOW - 30 * DAY, NOW, NOW) == 17_000


@pytest.fixture
def operations(monkeypatch: pytest.MonkeyPatch) -> Iterator[set[str]]:
    """Every AWS operation made through collectors.common.make_client (IAM action names)."""
    seen: set[str] = set()
    original = collectors.common.make_client

    def recording_client(*args: Any, **kwargs: Any) -> Any:
        client = original(*args, **kwargs)

        def record(model: Any, **_: Any) -> None:
            seen.add(iam_action(client, model.name))

        client.meta.events.register("before-call.*.*", record)
        return client

    monkeypatch.setattr(collectors.common, "make_client", recording_client)
    yield seen


def _args(fleet: Fleet, db_path: Path, *more: str) -> list[str]:
    return [
        *("--db", str(db_path), "collect", "--region", "us-east-1"),
        *("--endpoint-url", fleet.endpoint_url, *more),
    ]


def _tables(db_path: Path) -> dict[str, int]:
    db = open_db(db_path)
    names = ("functions", "collection_runs", "hourly_metrics", "hourly_facts", "watermarks")
    return {t: db.conn.execute(f"SELECT count(*) FROM {t}").fetchone()[0] for t in names}


def test_plan_of_a_first_run_lists_functions_and_calls_no_data_api(
    small_moto_fleet: Fleet, db_path: Path, operations: set[str]
) -> None:
    result = CliRunner().invoke(
        cli, _args(small_moto_fleet, db_path, "--since", "6h", "--plan", "--format", "json")
    )
    assert result.exit_code == 0, result.output
    plan = json.loads(result.stdout)
    (target,) = plan["targets"]
    assert (target["account_id"], target["region"]) == (DEFAULT_ACCOUNT, "us-east-1")
    # Nothing in the store yet: the functions come from a ListFunctions listing and, with no
    # ListMetrics history, every lean metric is counted for every function (upper bound)
    # but iterator age and spillover (no event source mapping, no provisioned concurrency).
    assert (target["functions"], target["functions_from"]) == (2, "listing")
    assert target["metrics_due"] == [
        "Throttles",
        "IteratorAge",
        "ConcurrentExecutions",
        "AsyncEventsDropped",
        "DeadLetterErrors",
        "DestinationDeliveryFailures",
        "ProvisionedConcurrencySpilloverInvocations",
    ]
    assert target["metrics_requested"] == 2 * 5
    assert (target["get_metric_data_calls"], target["list_metrics_requests"]) == (5, 1)
    # One log group exists (function 0's), described now; one Insights query.
    assert (target["log_groups"], target["log_groups_from"], target["insights_queries"]) == (
        1,
        "listing",
        1,
    )
    assert target["estimated_bytes_scanned"] > 0
    expected = 10 * 0.01 / 1000 + 0.01 / 1000 + target["estimated_bytes_scanned"] / 1e9 * 0.005
    assert plan["estimated_cost_usd"] == pytest.approx(expected, abs=1e-6)
    assert plan["functions"] == 2 and plan["schedule_every_s"] == 3600
    assert plan["operations"] == ["DescribeLogGroups", "ListFunctions"]
    # Only identity, listings and log group metadata: no metric, query or log read.
    assert operations <= {
        "sts:GetCallerIdentity",
        "lambda:ListFunctions",
        "logs:DescribeLogGroups",
    }
    assert _tables(db_path) == dict.fromkeys(
        ("functions", "collection_runs", "hourly_metrics", "hourly_facts", "watermarks"), 0
    )


def test_max_cost_refuses_a_run_estimated_above_it(small_moto_fleet: Fleet, db_path: Path) -> None:
    runner = CliRunner()
    refused = runner.invoke(
        cli, _args(small_moto_fleet, db_path, "--since", "6h", "--max-cost", "0")
    )
    assert refused.exit_code == 3
    assert refused.stderr.startswith("estimated AWS charge $0.0001 is above --max-cost $0.0000")
    assert refused.stderr.endswith(": not collecting\n")
    assert _tables(db_path)["collection_runs"] == 0

    allowed = runner.invoke(
        cli, _args(small_moto_fleet, db_path, "--since", "6h", "--max-cost", "0.01")
    )
    assert allowed.exit_code == 0, allowed.output
    assert _tables(db_path)["collection_runs"] == 3


def test_plan_after_a_collection_reads_the_store_and_the_cadence(
    small_moto_fleet: Fleet, db_path: Path
) -> None:
    runner = CliRunner()
    first = runner.invoke(cli, _args(small_moto_fleet, db_path, "--since", "6h"))
    assert first.exit_code == 0, first.output
    result = runner.invoke(cli, _args(small_moto_fleet, db_path, "--plan"))
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[0] == (
        "plan: inventory, metrics, logs for 1 account x region pairs (1 accounts),"
        " metric set lean, logs insights"
    )
    # Resuming right after the first run: nothing is due yet, the functions come from the
    # store, the one log group's size from the store.
    assert lines[1].startswith(
        f"{DEFAULT_ACCOUNT} us-east-1: 2 functions (store), 0 metrics in 0 GetMetricData"
        " calls + 0 ListMetrics [due: none], 1 Insights queries over 1 log groups (store)"
    )
    assert lines[2].startswith("estimated AWS charge of this run: $")
    assert lines[3].startswith("monthly estimate of a schedule every 1 h: $")
    assert lines[3].endswith(" per 1,000 functions)")

    full = runner.invoke(
        cli, _args(small_moto_fleet, db_path, "--plan", "--metric-set", "full", "--format", "json")
    )
    (target,) = json.loads(full.stdout)["targets"]
    # The former design: 14 metrics of every function, every run.
    assert (target["metrics_requested"], target["get_metric_data_calls"]) == (28, 1)
    assert target["monthly_metrics_cost_usd"] == pytest.approx(28 * 730 * 0.01 / 1000)


def test_bad_schedule_interval_is_one_line(small_moto_fleet: Fleet, db_path: Path) -> None:
    result = CliRunner().invoke(
        cli, _args(small_moto_fleet, db_path, "--plan", "--schedule-every", "soon")
    )
    assert result.exit_code == 2
    assert result.stderr.splitlines()[-1] == (
        "Error: Invalid value for --schedule-every: not a duration: 'soon'"
        " (use e.g. 30m, 24h, 14d, 2w)"
    )
    assert "Traceback" not in result.output


def test_plan_counts_shared_log_groups_as_the_logs_collector_reads_them(db: Database) -> None:
    """Functions writing to a custom log group (LoggingConfig.LogGroup) are priced on that
    group, read in a batch of its own; a remembered group no live function writes to is
    not priced."""
    account, region = "123456789012", "us-east-1"
    with db.conn:
        for name, group in (("checkout", "/app/shop"), ("payments", "/app/shop"), ("orders", None)):
            fid = function_id(db, name, account, region)
            db.conn.execute("UPDATE functions SET log_group = ? WHERE id = ?", (group, fid))
        for group, stored in (("/app/shop", 14 * DAY), ("/aws/lambda/orders", 7 * DAY)):
            db.conn.execute(
                "INSERT INTO log_groups (account_id, region, log_group, stored_bytes,"
                " creation_time, retention_days) VALUES (?, ?, ?, ?, ?, NULL)",
                (account, region, group, stored, NOW - 14 * DAY),
            )
        # the group of a function deleted since: remembered, no longer read
        db.conn.execute(
            "INSERT INTO log_groups (account_id, region, log_group, stored_bytes, creation_time,"
            " retention_days) VALUES (?, ?, '/aws/lambda/retired', ?, ?, NULL)",
            (account, region, 14 * DAY, NOW - 14 * DAY),
        )
    target = Target(boto3.Session(region_name=region), account, region, "http://127.0.0.1:9")
    counter = CallCounter()
    options = CollectOptions(only=("logs",), since=timedelta(days=1))
    plan = plan_target(Store(db), target, options, from_epoch(NOW), counter)
    assert counter.calls == 0  # everything from the store
    assert (plan.functions, plan.log_groups, plan.log_groups_from) == (3, 2, "store")
    # one batch of default groups, one of custom (shared) groups
    assert plan.insights_queries == 2
    # the window (a day, from the start of its first hour) of each: /app/shop 1 byte/s over
    # its 14 days, orders 0.5 byte/s; retired's group not at all
    window = NOW - (NOW - DAY) // 3600 * 3600
    assert plan.estimated_bytes_scanned == window + window // 2
