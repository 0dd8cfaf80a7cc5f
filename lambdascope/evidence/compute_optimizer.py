"""AWS Compute Optimizer's answer next to lambdascope's, with the reason when they differ.

Compute Optimizer looks back 14 days at CloudWatch metrics (it needs 50 invocations
there), refreshes daily and never reads logs; lambdascope reads REPORT lines (memory use
per invocation, out-of-memory errors), keeps history past CloudWatch's retention and can
use measured durations. The reasons below name the evidence that explains a difference.

Units: MB, ms, USD per month (Compute Optimizer's estimate, list prices).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Protocol

from sqlite_utils import Database

from lambdascope.evidence import has_table

SAME_WITHIN_MB = 64  # one recommendation step: answers this close agree
HEADROOM = 0.10  # lambdascope's headroom over the estimated tail (rightsizing.HEADROOM)
MIN_INVOCATIONS_14D = 50  # Compute Optimizer's documented minimum


@dataclass(frozen=True)
class CoRecommendation:
    """Compute Optimizer's stored recommendation for one function version."""

    function_version: str
    finding: str | None
    finding_reasons: tuple[str, ...]
    current_memory_mb: int | None
    invocations: int | None
    lookback_days: float | None
    performance_risk: str | None
    options: tuple[dict[str, Any], ...]
    last_refresh: int | None

    @property
    def memory_mb(self) -> int | None:
        """Its answer: the first-ranked option, or the current size when optimized."""
        if self.options and self.options[0].get("memory_mb"):
            return int(self.options[0]["memory_mb"])
        return self.current_memory_mb if self.finding == "Optimized" else None

    @property
    def monthly_savings_usd(self) -> float | None:
        if self.options and self.options[0].get("monthly_savings_usd") is not None:
            return float(self.options[0]["monthly_savings_usd"])
        return None


def read_all(db: Database) -> dict[tuple[str, str, str], CoRecommendation]:
    """The stored recommendations keyed by (account_id, region, function_name); $LATEST
    wins over a published version."""
    if not has_table(db, "compute_optimizer_recommendations"):
        return {}
    rows = db.conn.execute(
        "SELECT f.account_id, f.region, f.function_name, c.function_version, c.finding,"
        " c.finding_reasons_json, c.current_memory_mb, c.invocations, c.lookback_days,"
        " c.performance_risk, c.options_json, c.last_refresh"
        " FROM compute_optimizer_recommendations c JOIN functions f ON f.id = c.function_id"
        " ORDER BY c.function_version = '$LATEST', c.function_version"
    ).fetchall()
    out: dict[tuple[str, str, str], CoRecommendation] = {}
    for (
        account,
        region,
        name,
        version,
        finding,
        reasons,
        memory,
        calls,
        days,
        risk,
        opts,
        t,
    ) in rows:
        out[(str(account), str(region), str(name))] = CoRecommendation(
            str(version),
            finding,
            tuple(json.loads(reasons or "[]")),
            memory,
            calls,
            days,
            risk,
            tuple(json.loads(opts or "[]")),
            t,
        )
    return out


class Answer(Protocol):
    """What the comparison reads of lambdascope's recommendation."""

    @property
    def memory_mb(self) -> int: ...

    @property
    def recommended_memory_mb(self) -> int | None: ...

    @property
    def invocations(self) -> int: ...

    @property
    def out_of_memory_errors(self) -> int: ...

    @property
    def estimated_tail_memory_mb(self) -> float | None: ...

    @property
    def duration_evidence(self) -> str: ...

    @property
    def finding(self) -> str: ...


def differs_because(ours: Answer, co: CoRecommendation) -> str | None:
    """Why Compute Optimizer's answer differs from lambdascope's (None when they agree
    within one 64 MB step). The first matching reason, most specific first."""
    theirs = co.memory_mb
    mine = ours.recommended_memory_mb
    if co.finding == "Unavailable" or theirs is None:
        codes = ", ".join(co.finding_reasons) or "no reason given"
        if "InsufficientData" in co.finding_reasons:
            return (
                f"Compute Optimizer has no answer ({codes}): it needs {MIN_INVOCATIONS_14D}"
                f" invocations in 14 days; lambdascope saw {ours.invocations:,} in its window"
            )
        return f"Compute Optimizer has no answer ({codes})"
    if mine is None or abs(theirs - mine) <= SAME_WITHIN_MB:
        return None
    if co.current_memory_mb and co.current_memory_mb != ours.memory_mb:
        return (
            f"Compute Optimizer analysed {co.current_memory_mb} MB; the function runs at"
            f" {ours.memory_mb} MB now (changed since its last daily refresh)"
        )
    if ours.out_of_memory_errors and theirs < mine:
        return (
            f"Compute Optimizer does not see out-of-memory errors in logs; lambdascope counted"
            f" {ours.out_of_memory_errors:,} at {ours.memory_mb} MB"
        )
    if ours.duration_evidence == "power-tuning":
        return "lambdascope projected durations from a Power Tuning run's measured sizes"
    if ours.duration_evidence == "natural-experiment":
        return "a natural experiment (earlier memory sizes) measured how duration scales"
    tail = ours.estimated_tail_memory_mb
    if tail is not None and theirs < tail * (1 + HEADROOM):
        return (
            f"lambdascope keeps the estimated p99.99 of memory use ({tail:,.0f} MB) plus"
            f" {HEADROOM:.0%} headroom from REPORT lines; Compute Optimizer's {theirs} MB is"
            " below that"
        )
    if theirs < mine:
        return (
            f"{theirs} MB fits the memory use; without a measured duration curve lambdascope"
            " cannot rule out a CPU-bound slowdown there and keeps the expected duration"
            " within its strategy's limit (import a Power Tuning run to settle it)"
        )
    return f"Compute Optimizer ranks {theirs} MB first; lambdascope's strategy picks {mine} MB"


COLUMNS = [
    "compute_optimizer_finding",
    "compute_optimizer_memory_mb",
    "compute_optimizer_monthly_savings_usd",
    "compute_optimizer_differs_because",
]


def side_by_side(ours: Answer, co: CoRecommendation | None) -> dict[str, Any]:
    """The memory report's Compute Optimizer keys for one function (None without data)."""
    if co is None:
        return dict.fromkeys(COLUMNS)
    finding = co.finding or ""
    if co.finding_reasons:
        finding += " (" + ", ".join(co.finding_reasons) + ")"
    savings = co.monthly_savings_usd
    return {
        "compute_optimizer_finding": finding or None,
        "compute_optimizer_memory_mb": co.memory_mb,
        "compute_optimizer_monthly_savings_usd": None if savings is None else round(savings, 6),
        "compute_optimizer_differs_because": differs_because(ours, co),
    }


def attach(db: Database, recs: list[Any], rows: list[dict[str, Any]], columns: list[str]) -> bool:
    """Add the Compute Optimizer keys to the memory report's ``rows`` (matched to ``recs``
    by account, region and function: the rows are ranked, the recommendations are not),
    and its columns before ``reasons`` when the store has any recommendation. Returns
    whether it had any."""
    found = read_all(db)
    by_key = {(rec.account_id, rec.region, rec.function_name): rec for rec in recs}
    for row in rows:
        key = (row.get("account_id"), row.get("region"), row.get("function_name"))
        rec = by_key.get(key)
        if rec is not None:
            row.update(side_by_side(rec, found.get(key)))  # type: ignore[arg-type]
    if found and "compute_optimizer_memory_mb" not in columns:
        at = columns.index("reasons") if "reasons" in columns else len(columns)
        columns[at:at] = COLUMNS
    return bool(found)
