"""AWS Compute Optimizer's Lambda recommendations (compute-optimizer:
GetLambdaFunctionRecommendations), collected with the inventory: one call per account and
region and 1,000 functions. An account that is not enrolled answers
OptInRequiredException: a note, not a failure. Not asked at a custom endpoint (emulators
have no Compute Optimizer); tests use botocore's Stubber with the API reference's shapes."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from botocore.exceptions import ClientError

from collectors.common import (
    NOT_OFFERED,
    CallCounter,
    SourceResult,
    Store,
    Target,
    error_code,
    iam_action,
    is_not_offered,
    record_failure,
)
from lambdascope.timeutil import to_epoch

OPERATION = "GetLambdaFunctionRecommendations"
PAGE_SIZE = 1000  # the API's maxResults limit


def get_recommendations(client: Any, account_id: str) -> list[dict[str, Any]]:
    """Every LambdaFunctionRecommendation of the account in the client's region."""
    kwargs: dict[str, Any] = {"maxResults": PAGE_SIZE}
    if account_id:
        kwargs["accountIds"] = [account_id]
    items: list[dict[str, Any]] = []
    while True:
        page = client.get_lambda_function_recommendations(**kwargs)
        items += page.get("lambdaFunctionRecommendations", [])
        token = page.get("nextToken")
        if not token:
            return items
        kwargs["nextToken"] = token


@dataclass(frozen=True)
class CoRow:
    """One recommendation, keyed by function name and version (pure result)."""

    function_name: str
    function_version: str
    last_refresh: int | None
    finding: str | None
    finding_reasons: tuple[str, ...]
    current_memory_mb: int | None
    invocations: int | None
    lookback_days: float | None
    performance_risk: str | None
    utilization: tuple[dict[str, Any], ...]
    options: tuple[dict[str, Any], ...]


def _option(item: dict[str, Any]) -> dict[str, Any]:
    projected = {
        str(m.get("statistic")): float(m["value"])
        for m in item.get("projectedUtilizationMetrics", [])
        if m.get("name") == "Duration" and m.get("value") is not None
    }
    savings = item.get("savingsOpportunity") or {}
    monthly = (savings.get("estimatedMonthlySavings") or {}).get("value")
    return {
        "rank": item.get("rank"),
        "memory_mb": item.get("memorySize"),
        "duration_ms_lower": projected.get("LowerBound"),
        "duration_ms_expected": projected.get("Expected"),
        "duration_ms_upper": projected.get("UpperBound"),
        "savings_percentage": savings.get("savingsOpportunityPercentage"),
        "monthly_savings_usd": None if monthly is None else float(monthly),
        "currency": (savings.get("estimatedMonthlySavings") or {}).get("currency"),
    }


def transform(items: Sequence[dict[str, Any]]) -> list[CoRow]:
    """API items -> rows (pure); the function name is the ARN's, version from the item."""
    out = []
    for item in items:
        parts = str(item.get("functionArn") or "").split(":")
        if len(parts) < 7 or not parts[6]:
            continue
        refreshed = item.get("lastRefreshTimestamp")
        options = sorted(
            (_option(o) for o in item.get("memorySizeRecommendationOptions", [])),
            key=lambda o: (o["rank"] is None, o["rank"]),
        )
        out.append(
            CoRow(
                function_name=parts[6],
                function_version=str(item.get("functionVersion") or "$LATEST"),
                last_refresh=to_epoch(refreshed) if isinstance(refreshed, datetime) else None,
                finding=item.get("finding"),
                finding_reasons=tuple(item.get("findingReasonCodes", [])),
                current_memory_mb=item.get("currentMemorySize"),
                invocations=item.get("numberOfInvocations"),
                lookback_days=item.get("lookbackPeriodInDays"),
                performance_risk=item.get("currentPerformanceRisk"),
                utilization=tuple(
                    {
                        "name": m.get("name"),
                        "statistic": m.get("statistic"),
                        "value": m.get("value"),
                    }
                    for m in item.get("utilizationMetrics", [])
                ),
                options=tuple(options),
            )
        )
    return out


def load(store: Store, account_id: str, region: str, rows: Sequence[CoRow], now: int) -> int:
    """Replace the account/region's recommendations with a complete listing; functions
    the store does not know (yet) are skipped. Returns the rows stored."""
    stored = 0
    with store.write() as db:
        ids = {
            str(name): int(fid)
            for fid, name in db.conn.execute(
                "SELECT id, function_name FROM functions WHERE account_id = ? AND region = ?",
                (account_id, region),
            )
        }
        db.conn.execute(
            "DELETE FROM compute_optimizer_recommendations WHERE function_id IN"
            " (SELECT id FROM functions WHERE account_id = ? AND region = ?)",
            (account_id, region),
        )
        for row in rows:
            fid = ids.get(row.function_name)
            if fid is None:
                continue
            db.conn.execute(
                "INSERT OR REPLACE INTO compute_optimizer_recommendations (function_id,"
                " function_version, collected_at, last_refresh, finding, finding_reasons_json,"
                " current_memory_mb, invocations, lookback_days, performance_risk,"
                " utilization_json, options_json) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    fid,
                    row.function_version,
                    now,
                    row.last_refresh,
                    row.finding,
                    json.dumps(list(row.finding_reasons)),
                    row.current_memory_mb,
                    row.invocations,
                    row.lookback_days,
                    row.performance_risk,
                    json.dumps(list(row.utilization)),
                    json.dumps(list(row.options)),
                ),
            )
            stored += 1
    return stored


def collect(
    store: Store, target: Target, result: SourceResult, counter: CallCounter, *, now: int
) -> int:
    """Compute Optimizer's recommendations for one account/region; a missing enrolment or
    an endpoint without the service is a note on ``result``, other errors a failure."""
    if target.endpoint_url:
        # emulators (moto, LocalStack) have no Compute Optimizer and answer an HTML error
        # page that botocore retries ten times: not asked there
        result.errors.append(
            {
                "action": f"compute-optimizer:{OPERATION}",
                "code": NOT_OFFERED,
                "message": "not asked at a custom --endpoint-url; no Compute Optimizer"
                " recommendations",
            }
        )
        return 0
    client = target.client("compute-optimizer", counter)
    try:
        items = get_recommendations(client, target.account_id)
    except ClientError as exc:
        code = error_code(exc)
        if code == "OptInRequiredException" or is_not_offered(exc):
            why = (
                "the account is not enrolled in Compute Optimizer"
                if code == "OptInRequiredException"
                else f"operation not offered by this endpoint ({code})"
            )
            result.errors.append(
                {
                    "action": iam_action(client, OPERATION),
                    "code": NOT_OFFERED,
                    "message": f"{why}; no Compute Optimizer recommendations",
                }
            )
        else:
            record_failure(result, client, OPERATION, exc)
        return 0
    stored = load(store, target.account_id, target.region, transform(items), now)
    result.message += f"; Compute Optimizer: {stored} recommendations"
    return stored
