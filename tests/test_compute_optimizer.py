"""Compute Optimizer side by side: GetLambdaFunctionRecommendations through botocore's
Stubber (moto has no Compute Optimizer; shapes from the API reference), stored, and shown
next to lambdascope's answer with the reason when they differ."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.stub import Stubber
from click.testing import CliRunner
from sqlite_utils import Database

from collectors import compute_optimizer
from collectors.aws import CallCounter, SourceResult, Store, Target
from lambdascope.cli import cli
from lambdascope.db import function_id, open_db
from lambdascope.evidence.compute_optimizer import (
    CoRecommendation,
    differs_because,
    read_all,
)
from tests.test_cli_report import UNTIL, add_hours

ACCOUNT = "111111111111"
REGION = "us-east-1"


def co_item(
    name: str,
    *,
    finding: str = "NotOptimized",
    reasons: tuple[str, ...] = ("MemoryOverprovisioned",),
    current: int = 1024,
    options: tuple[tuple[int, int, float], ...] = ((512, 1, 3.25), (640, 2, 2.5)),
    version: str = "$LATEST",
) -> dict[str, Any]:
    """A LambdaFunctionRecommendation as the API reference documents it."""
    return {
        "functionArn": f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:{name}",
        "functionVersion": version,
        "accountId": ACCOUNT,
        "currentMemorySize": current,
        "numberOfInvocations": 20160,
        "utilizationMetrics": [
            {"name": "Duration", "statistic": "Average", "value": 120.5},
            {"name": "Memory", "statistic": "Maximum", "value": 210.0},
        ],
        "lookbackPeriodInDays": 14.0,
        "lastRefreshTimestamp": datetime(2025, 12, 31, 6, 0, tzinfo=UTC),
        "finding": finding,
        "findingReasonCodes": list(reasons),
        "memorySizeRecommendationOptions": [
            {
                "rank": rank,
                "memorySize": size,
                "projectedUtilizationMetrics": [
                    {"name": "Duration", "statistic": "LowerBound", "value": 100.0},
                    {"name": "Duration", "statistic": "UpperBound", "value": 180.0},
                    {"name": "Duration", "statistic": "Expected", "value": 130.0},
                ],
                "savingsOpportunity": {
                    "savingsOpportunityPercentage": 40.0,
                    "estimatedMonthlySavings": {"currency": "USD", "value": savings},
                },
            }
            for size, rank, savings in reversed(options)
        ],
        "currentPerformanceRisk": "Low",
    }


def client() -> Any:
    return boto3.client(
        "compute-optimizer",
        region_name=REGION,
        aws_access_key_id="x",
        aws_secret_access_key="x",
        endpoint_url="http://127.0.0.1:9",
    )


class StubTarget(Target):
    stub: Any = None

    def client(self, service: str, counter: CallCounter | None = None) -> Any:
        assert service == "compute-optimizer"
        return self.stub


def target_with(stub: Any) -> StubTarget:
    target = StubTarget(boto3.Session(region_name=REGION), ACCOUNT, REGION)
    target.stub = stub
    return target


def test_pages_are_followed_and_options_ranked(db: Database) -> None:
    function_id(db, "orders-api", ACCOUNT, REGION)
    function_id(db, "batch", ACCOUNT, REGION)
    co = client()
    stubber = Stubber(co)
    stubber.add_response(
        "get_lambda_function_recommendations",
        {"lambdaFunctionRecommendations": [co_item("orders-api")], "nextToken": "t2"},
        {"maxResults": 1000, "accountIds": [ACCOUNT]},
    )
    stubber.add_response(
        "get_lambda_function_recommendations",
        {
            "lambdaFunctionRecommendations": [
                co_item("batch", finding="Unavailable", reasons=("InsufficientData",), options=()),
                co_item("unknown-to-the-store"),
            ]
        },
        {"maxResults": 1000, "accountIds": [ACCOUNT], "nextToken": "t2"},
    )
    result = SourceResult(ACCOUNT, REGION, "inventory")
    with stubber:
        stored = compute_optimizer.collect(
            Store(db), target_with(co), result, CallCounter(), now=1767225600
        )
    assert stored == 2 and result.status == "ok" and not result.errors
    found = read_all(db)
    orders = found[(ACCOUNT, REGION, "orders-api")]
    assert (orders.finding, orders.memory_mb, orders.monthly_savings_usd) == (
        "NotOptimized",
        512,
        3.25,
    )
    assert orders.options[0]["duration_ms_expected"] == 130.0
    assert orders.last_refresh == 1767160800  # 2025-12-31T06:00:00Z
    assert found[(ACCOUNT, REGION, "batch")].memory_mb is None


@pytest.mark.parametrize(
    ("code", "status", "noted"),
    [("OptInRequiredException", "ok", "not enrolled"), ("AccessDeniedException", "partial", "")],
)
def test_not_enrolled_is_a_note_and_denied_a_failure(
    db: Database, code: str, status: str, noted: str
) -> None:
    co = client()
    stubber = Stubber(co)
    stubber.add_client_error("get_lambda_function_recommendations", code, "no", 400)
    result = SourceResult(ACCOUNT, REGION, "inventory")
    with stubber:
        compute_optimizer.collect(Store(db), target_with(co), result, CallCounter(), now=0)
    assert result.status == status
    assert result.errors[0]["action"] == "compute-optimizer:GetLambdaFunctionRecommendations"
    assert noted in result.errors[0]["message"]


def test_recollecting_replaces_the_snapshot(db: Database) -> None:
    function_id(db, "orders-api", ACCOUNT, REGION)
    for finding in ("NotOptimized", "Optimized"):
        co = client()
        stubber = Stubber(co)
        stubber.add_response(
            "get_lambda_function_recommendations",
            {"lambdaFunctionRecommendations": [co_item("orders-api", finding=finding)]},
        )
        with stubber:
            compute_optimizer.collect(
                Store(db), target_with(co), SourceResult(ACCOUNT, REGION, "x"), CallCounter(), now=1
            )
    rows = db.conn.execute("SELECT finding FROM compute_optimizer_recommendations").fetchall()
    assert rows == [("Optimized",)]


class Ours:
    """The fields of lambdascope's answer the comparison reads."""

    def __init__(self, **kw: Any) -> None:
        self.memory_mb = 1024
        self.recommended_memory_mb: int | None = 768
        self.invocations = 5000
        self.out_of_memory_errors = 0
        self.estimated_tail_memory_mb: float | None = 640.0
        self.duration_evidence = "bounds"
        self.finding = "over-provisioned"
        self.__dict__.update(kw)


def co(memory_mb: int | None = 512, **kw: Any) -> CoRecommendation:
    base: dict[str, Any] = {
        "function_version": "$LATEST",
        "finding": "NotOptimized",
        "finding_reasons": ("MemoryOverprovisioned",),
        "current_memory_mb": 1024,
        "invocations": 5000,
        "lookback_days": 14.0,
        "performance_risk": "Low",
        "options": ({"rank": 1, "memory_mb": memory_mb, "monthly_savings_usd": 1.0},),
        "last_refresh": 0,
    }
    base.update(kw)
    return CoRecommendation(**base)


def test_reasons_name_the_evidence_that_explains_a_difference() -> None:
    assert differs_because(Ours(), co(768)) is None
    assert differs_because(Ours(), co(832)) is None  # one 64 MB step apart
    why = differs_because(
        Ours(), co(None, finding="Unavailable", finding_reasons=("InsufficientData",), options=())
    )
    assert why is not None and "needs 50 invocations in 14 days" in why
    why = differs_because(Ours(out_of_memory_errors=3, recommended_memory_mb=1280), co(512))
    assert why is not None and "does not see out-of-memory errors" in why
    why = differs_because(Ours(duration_evidence="natural-experiment"), co(512))
    assert why is not None and "natural experiment" in why
    why = differs_because(Ours(), co(512))
    assert why is not None and "p99.99 of memory use (640 MB)" in why
    why = differs_because(Ours(memory_mb=2048), co(512))
    assert why is not None and "analysed 1024 MB" in why


def test_memory_report_shows_both_answers_in_every_format(db_path: Path) -> None:
    db = open_db(db_path)
    # 1,024 MB, memory use 150-200 MB: lambdascope's balanced answer is well above 128 MB
    add_hours(db, "orders-api", memory_mb=1024, hours=48, per_hour=20, memory_used=(150, 200))
    fid = function_id(db, "orders-api", ACCOUNT, REGION)
    with db.conn:
        db.conn.execute(
            "INSERT INTO compute_optimizer_recommendations (function_id, function_version,"
            " collected_at, finding, finding_reasons_json, current_memory_mb, options_json)"
            " VALUES (?, '$LATEST', 0, 'NotOptimized', '[\"MemoryOverprovisioned\"]', 1024, ?)",
            (fid, json.dumps([{"rank": 1, "memory_mb": 128, "monthly_savings_usd": 0.5}])),
        )
    db.conn.close()

    def report(fmt: str) -> str:
        result = CliRunner().invoke(
            cli, ["--db", str(db_path), "report", "memory", "--until", UNTIL, "--format", fmt]
        )
        assert result.exit_code == 0, result.output
        return result.stdout

    [row] = json.loads(report("json"))
    assert row["compute_optimizer_finding"] == "NotOptimized (MemoryOverprovisioned)"
    assert row["compute_optimizer_memory_mb"] == 128
    assert row["recommended_memory_mb"] > 192
    assert "p99.99 of memory use" in row["compute_optimizer_differs_because"]
    header = report("csv").splitlines()[0].split(",")
    assert "compute_optimizer_differs_because" in header
    md = report("md")
    assert "compute_optimizer_memory_mb" in md and "Compute Optimizer's 128 MB is below" in md
    html = report("html")
    assert "AWS Compute Optimizer: NotOptimized (MemoryOverprovisioned), 128 MB" in html
    assert "Compute Optimizer&#x27;s 128 MB is below" in html


def test_each_ranked_row_gets_its_own_functions_answer(db_path: Path) -> None:
    """The report ranks its rows (savings first); Compute Optimizer's answers follow their
    functions, not the order the recommendations were computed in."""
    db = open_db(db_path)
    # "a-small" saves little, "z-large" much: ranked z-large first, computed a-small first
    add_hours(db, "a-small", memory_mb=256, hours=48, per_hour=20, memory_used=(60, 80))
    add_hours(db, "z-large", memory_mb=3008, hours=48, per_hour=200, memory_used=(60, 80))
    for name, memory in (("a-small", 128), ("z-large", 512)):
        fid = function_id(db, name, ACCOUNT, REGION)
        with db.conn:
            db.conn.execute(
                "INSERT INTO compute_optimizer_recommendations (function_id, function_version,"
                " collected_at, finding, finding_reasons_json, current_memory_mb, options_json)"
                " VALUES (?, '$LATEST', 0, 'NotOptimized', '[\"MemoryOverprovisioned\"]', ?, ?)",
                (
                    fid,
                    256 if name == "a-small" else 3008,
                    json.dumps([{"rank": 1, "memory_mb": memory, "monthly_savings_usd": 0.1}]),
                ),
            )
    db.conn.close()
    result = CliRunner().invoke(
        cli, ["--db", str(db_path), "report", "memory", "--until", UNTIL, "--format", "json"]
    )
    assert result.exit_code == 0, result.output
    rows = json.loads(result.stdout)
    assert [r["function_name"] for r in rows] == ["z-large", "a-small"]
    assert {r["function_name"]: r["compute_optimizer_memory_mb"] for r in rows} == {
        "z-large": 512,
        "a-small": 128,
    }
