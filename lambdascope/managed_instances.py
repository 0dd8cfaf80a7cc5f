"""Lambda Managed Instances: what a function's capacity provider did, for the function page
and the memory report (which gives such functions no memory advice).

Reads ``capacity_provider_hourly`` (collected by the ``metrics`` source): per capacity
provider x hour, CPU and memory utilisation in percent, already aggregated over the
provider's instance types (mean of their hourly averages, largest maximum).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from lambdascope.queries import Conn

# Memory report columns, placed before ``reasons`` when the store has a managed function.
COLUMNS = [
    "capacity_provider_cpu_utilization_max",
    "capacity_provider_cpu_utilization_mean",
    "capacity_provider_memory_utilization_max",
    "capacity_provider_memory_utilization_mean",
]
HOUR_COLUMNS = (
    "hour",
    "instance_types",
    "cpu_utilization_avg",
    "cpu_utilization_max",
    "memory_utilization_avg",
    "memory_utilization_max",
    "vcpu_available",
    "vcpu_allocated",
    "memory_available_bytes",
    "memory_allocated_bytes",
)


def _conn(db: Conn) -> sqlite3.Connection:
    return db if isinstance(db, sqlite3.Connection) else db.conn


def provider_name(arn: str) -> str:
    """``arn:aws:lambda:R:A:capacity-provider:NAME`` -> ``NAME`` (CloudWatch's dimension)."""
    return arn.rsplit(":", 1)[-1].rsplit("/", 1)[-1]


@dataclass(frozen=True)
class Utilisation:
    """A capacity provider's utilisation over a window (percent; None without data):
    peaks are the largest hourly maximum, means the mean of the hourly averages."""

    capacity_provider: str
    hours: int
    cpu_max: float | None
    cpu_mean: float | None
    memory_max: float | None
    memory_mean: float | None

    def as_dict(self) -> dict[str, float | None]:
        """The memory report's keys (``COLUMNS``), rounded to 0.1 %."""
        return dict(
            zip(
                COLUMNS,
                (
                    _round(v)
                    for v in (self.cpu_max, self.cpu_mean, self.memory_max, self.memory_mean)
                ),
                strict=True,
            )
        )

    def sentence(self) -> str:
        """One line for a page or a report: peak and mean CPU and memory."""
        if not self.hours:
            return (
                f"No utilisation of capacity provider {self.capacity_provider} in this time"
                " range (collected by `lambdascope collect` with the metrics source)."
            )
        return (
            f"Capacity provider {self.capacity_provider} over {self.hours} hour"
            f"{'' if self.hours == 1 else 's'}: CPU peak {_percent(self.cpu_max)}, mean"
            f" {_percent(self.cpu_mean)}; memory peak {_percent(self.memory_max)}, mean"
            f" {_percent(self.memory_mean)}."
        )


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 1)


def _percent(value: float | None) -> str:
    return "—" if value is None else f"{value:.1f} %"


def _mean(values: Sequence[float | None]) -> float | None:
    present = [v for v in values if v is not None]
    return sum(present) / len(present) if present else None


def _max(values: Sequence[float | None]) -> float | None:
    present = [v for v in values if v is not None]
    return max(present) if present else None


def summarise(capacity_provider: str, hours: Sequence[dict[str, Any]]) -> Utilisation:
    """Hourly rows (``provider_hours``) -> peaks and means over them (pure)."""
    return Utilisation(
        capacity_provider,
        len(hours),
        _max([h.get("cpu_utilization_max") for h in hours]),
        _mean([h.get("cpu_utilization_avg") for h in hours]),
        _max([h.get("memory_utilization_max") for h in hours]),
        _mean([h.get("memory_utilization_avg") for h in hours]),
    )


def provider_hours(
    db: Conn, account_id: str, region: str, capacity_provider: str, start: int, end: int
) -> list[dict[str, Any]]:
    """A capacity provider's stored hours in [start, end), oldest first (empty for a store
    from before they were collected, opened read-only)."""
    try:
        cur = _conn(db).execute(
            f"SELECT {', '.join(HOUR_COLUMNS)} FROM capacity_provider_hourly"
            " WHERE account_id = ? AND region = ? AND capacity_provider_name = ?"
            " AND hour >= ? AND hour < ? ORDER BY hour",
            (account_id, region, capacity_provider, start, end),
        )
    except sqlite3.OperationalError:
        return []
    return [dict(zip(HOUR_COLUMNS, row, strict=True)) for row in cur.fetchall()]


def function_utilisation(
    db: Conn, account_id: str, region: str, capacity_provider_arn: str, start: int, end: int
) -> tuple[list[dict[str, Any]], Utilisation]:
    """The hours and summary of the capacity provider a function runs on."""
    name = provider_name(capacity_provider_arn)
    hours = provider_hours(db, account_id, region, name, start, end)
    return hours, summarise(name, hours)


def managed_functions(db: Conn) -> dict[tuple[str, str, str], str]:
    """(account id, region, function name) -> capacity provider ARN of live functions on
    Lambda Managed Instances."""
    try:
        rows = (
            _conn(db)
            .execute(
                "SELECT account_id, region, function_name, capacity_provider_arn FROM functions"
                " WHERE capacity_provider_arn IS NOT NULL AND capacity_provider_arn != ''"
            )
            .fetchall()
        )
    except sqlite3.OperationalError:
        return {}
    return {(str(a), str(r), str(f)): str(arn) for a, r, f, arn in rows}


def attach(db: Conn, rows: list[dict[str, Any]], columns: list[str], start: int, end: int) -> bool:
    """Add the capacity provider's utilisation over [start, end) to the memory report rows
    of functions on Lambda Managed Instances (None elsewhere), and ``COLUMNS`` before
    ``reasons``, when any reported function is one. Returns whether any was."""
    managed = managed_functions(db)
    keys = [(r.get("account_id") or "", r.get("region") or "", r["function_name"]) for r in rows]
    if not any(k in managed for k in keys):
        return False
    for key, row in zip(keys, rows, strict=True):
        arn = managed.get(key)
        if arn is None:
            row.update(dict.fromkeys(COLUMNS))
            continue
        _, found = function_utilisation(db, key[0], key[1], arn, start, end)
        row.update(found.as_dict())
        row["reasons"] = [*row.get("reasons", []), found.sentence()]
    if COLUMNS[0] not in columns:
        at = columns.index("reasons") if "reasons" in columns else len(columns)
        columns[at:at] = COLUMNS
    return True
