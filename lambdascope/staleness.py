"""Stale functions: a score from several signals, each shown, plus a safe-cleanup list.

Public API: ``find_stale(db, now, filters=None, *, idle_days=30, ...) -> StaleReport``.
Signals that need the inventory (last modified, runtime, versions, aliases, code size,
timeout) appear only when inventory data exists; with logs alone, last-seen is used.
A missing log group or metric means zero invocations. Units: epoch seconds, bytes, days.
"""

from __future__ import annotations

import json
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import cache
from importlib import resources
from typing import Any

from sqlite_utils import Database

from lambdascope import queries
from lambdascope.rightsizing import FilterLike, query_filters

DAY_S = 86400
CODE_STORAGE_QUOTA_BYTES = 75 * 1024**3
KEEP_NEWEST_VERSIONS = 3
HUGE_CODE_BYTES = 50 * 1024**2
SOON_DEPRECATED_DAYS = 180
WEIGHTS = {
    "idle": 40,
    "not_modified": 20,
    "deprecated_runtime": 15,
    "soon_deprecated_runtime": 5,
    "extra_versions": 10,
    "huge_code": 5,
    "max_timeout_short_runs": 5,
}


@cache
def _runtime_table() -> dict[str, Any]:
    text = resources.files("lambdascope").joinpath("data/runtimes.json").read_text("utf-8")
    data: dict[str, Any] = json.loads(text)
    return data


def runtime_table_source() -> str:
    """Where the runtime deprecation dates come from, with the date they were checked."""
    data = _runtime_table()
    return f"{data['source']} ({data['source_date']})"


@cache
def runtime_deprecations() -> dict[str, int]:
    """Runtime -> deprecation date (epoch seconds), from lambdascope/data/runtimes.json."""
    data = _runtime_table()
    return {
        name: int(datetime.strptime(day, "%Y-%m-%d").replace(tzinfo=UTC).timestamp())
        for name, day in data["deprecations"].items()
    }


@dataclass(frozen=True)
class Signal:
    """One staleness signal: a stable key, points towards the score, and the evidence."""

    key: str
    points: int
    detail: str


@dataclass(frozen=True)
class StaleFunction:
    """Staleness of one function; ``stale`` when idle and (if known) not modified."""

    function_name: str
    account_id: str
    region: str
    runtime: str | None
    last_invoked: int | None
    last_modified: int | None
    code_size_bytes: int | None
    score: int
    stale: bool
    signals: tuple[Signal, ...]
    versions_to_delete: tuple[str, ...]

    def as_dict(self) -> dict[str, Any]:
        return {
            "function_name": self.function_name,
            "account_id": self.account_id,
            "region": self.region,
            "runtime": self.runtime,
            "last_invoked": self.last_invoked,
            "last_modified": self.last_modified,
            "code_size_bytes": self.code_size_bytes,
            "score": self.score,
            "stale": self.stale,
            "signals": [
                {"key": s.key, "points": s.points, "detail": s.detail} for s in self.signals
            ],
            "versions_to_delete": list(self.versions_to_delete),
        }


@dataclass(frozen=True)
class RegionStorage:
    """Code storage of one account x region against the 75 GB quota."""

    account_id: str
    region: str
    code_storage_bytes: int
    limit_bytes: int

    @property
    def used_fraction(self) -> float:
        return self.code_storage_bytes / self.limit_bytes if self.limit_bytes else 0.0


@dataclass
class StaleReport:
    """All functions with their signals, the cleanup lists and code storage per region."""

    functions: list[StaleFunction] = field(default_factory=list)
    storage: list[RegionStorage] = field(default_factory=list)

    @property
    def functions_to_review(self) -> list[StaleFunction]:
        return [f for f in self.functions if f.stale]

    @property
    def versions_to_delete(self) -> list[tuple[StaleFunction, str]]:
        return [(f, v) for f in self.functions for v in f.versions_to_delete]

    def as_dict(self) -> dict[str, Any]:
        return {
            "functions": [f.as_dict() for f in self.functions],
            "safe_cleanup": {
                "functions_to_review": [f.function_name for f in self.functions_to_review],
                "versions_to_delete": [
                    {
                        "function_name": f.function_name,
                        "account_id": f.account_id,
                        "region": f.region,
                        "version": v,
                    }
                    for f, v in self.versions_to_delete
                ],
            },
            "code_storage": [
                {
                    "account_id": s.account_id,
                    "region": s.region,
                    "code_storage_bytes": s.code_storage_bytes,
                    "limit_bytes": s.limit_bytes,
                    "used_fraction": round(s.used_fraction, 6),
                }
                for s in self.storage
            ],
        }


def routing_versions(routing_json: str | None) -> set[str]:
    """Versions an alias's routing configuration sends traffic to.

    Accepts the stored ``AdditionalVersionWeights`` map (``{"3": 0.1}``) and the whole
    ``RoutingConfig`` shape (``{"AdditionalVersionWeights": {"3": 0.1}}``); anything
    else is no version.
    """
    try:
        data = json.loads(routing_json or "{}") or {}
    except ValueError:
        return set()
    if not isinstance(data, dict):
        return set()
    nested = data.get("AdditionalVersionWeights", data.get("additional_version_weights"))
    weights = nested if isinstance(nested, dict) else data
    return {str(k) for k in weights if str(k).isdigit()}


def versions_to_delete(
    versions: list[str], aliased: set[str], keep: int = KEEP_NEWEST_VERSIONS
) -> list[str]:
    """Numbered versions beyond the ``keep`` newest that no alias points to.

    Never ``$LATEST``, never an aliased version.
    """
    numbered = sorted((v for v in versions if v.isdigit()), key=int, reverse=True)
    return sorted((v for v in numbered[keep:] if v not in aliased), key=int)


def score_function(
    *,
    now: int,
    runtime: str | None,
    last_invoked: int | None,
    first_seen: int | None,
    last_modified: int | None,
    code_size_bytes: int | None,
    timeout_s: int | None,
    duration_max_ms: float | None,
    extra_versions: list[str],
    idle_days: int = 30,
    modified_days: int = 30,
) -> tuple[list[Signal], bool]:
    """The signals for one function (pure) and whether it counts as stale."""
    signals: list[Signal] = []
    since = last_invoked if last_invoked is not None else first_seen
    idle = since is None or now - since >= idle_days * DAY_S
    if idle:
        detail = (
            "no invocations on record"
            if last_invoked is None
            else f"no invocations for {(now - last_invoked) // DAY_S} days (>= {idle_days})"
        )
        signals.append(Signal("idle", WEIGHTS["idle"], detail))
    not_modified = last_modified is not None and now - last_modified >= modified_days * DAY_S
    if not_modified and last_modified is not None:
        signals.append(
            Signal(
                "not_modified",
                WEIGHTS["not_modified"],
                f"not modified for {(now - last_modified) // DAY_S} days",
            )
        )
    deprecated = runtime_deprecations().get(runtime or "")
    if deprecated is not None:
        day = datetime.fromtimestamp(deprecated, UTC).date().isoformat()
        if deprecated <= now:
            signals.append(
                Signal(
                    "deprecated_runtime",
                    WEIGHTS["deprecated_runtime"],
                    f"runtime {runtime} deprecated since {day}",
                )
            )
        elif deprecated - now <= SOON_DEPRECATED_DAYS * DAY_S:
            signals.append(
                Signal(
                    "soon_deprecated_runtime",
                    WEIGHTS["soon_deprecated_runtime"],
                    f"runtime {runtime} deprecation scheduled for {day}",
                )
            )
    if extra_versions:
        signals.append(
            Signal(
                "extra_versions",
                WEIGHTS["extra_versions"],
                f"{len(extra_versions)} unaliased versions beyond the 3 newest",
            )
        )
    if code_size_bytes and code_size_bytes >= HUGE_CODE_BYTES:
        signals.append(
            Signal(
                "huge_code", WEIGHTS["huge_code"], f"code size {code_size_bytes / 1024**2:.0f} MB"
            )
        )
    if timeout_s == 900 and duration_max_ms is not None and duration_max_ms < 60_000:
        signals.append(
            Signal(
                "max_timeout_short_runs",
                WEIGHTS["max_timeout_short_runs"],
                f"timeout 900 s but longest run {duration_max_ms / 1000:.1f} s",
            )
        )
    stale = idle and (last_modified is None or not_modified)
    return signals, stale


def find_stale(
    db: Database,
    now: int,
    filters: FilterLike | None = None,
    *,
    idle_days: int = 30,
    modified_days: int = 30,
) -> StaleReport:
    """Stale-function report for every known, not-deleted function (``now`` epoch seconds)."""
    scope = query_filters(filters)
    where, params = scope.where("fn")
    seen_hours = queries.activity(db, scope)
    rows = db.conn.execute(
        "SELECT fn.id, fn.function_name, fn.account_id, fn.region, fn.runtime,"
        " fn.last_modified, fn.code_size_bytes, fn.timeout_s, fn.first_seen,"
        " (SELECT MAX(timestamp) FROM invocations i WHERE i.function_id = fn.id)"
        f" FROM functions fn WHERE fn.deleted_at IS NULL AND {where}"
        " ORDER BY fn.function_name, fn.account_id, fn.region",
        params,
    ).fetchall()
    versions: dict[int, list[str]] = defaultdict(list)
    for fid, version in db.conn.execute(
        "SELECT function_id, version FROM function_versions WHERE deleted_at IS NULL"
    ):
        versions[fid].append(version)
    aliased: dict[int, set[str]] = defaultdict(set)
    for fid, version, routing in db.conn.execute(
        "SELECT function_id, function_version, routing_json FROM function_aliases"
    ):
        aliased[fid].add(version)
        aliased[fid].update(routing_versions(routing))
    report = StaleReport()
    for (
        fid,
        name,
        account,
        region,
        runtime,
        modified,
        code,
        timeout_s,
        first_seen,
        inv_last,
    ) in rows:
        hour_last, dur_max = seen_hours.get(fid, (None, None))
        seen = [inv_last] if inv_last is not None else []
        if hour_last is not None:
            seen.append(hour_last + 3599)  # the end of the last active hour
        last_invoked = min(max(seen), now) if seen else None
        extra = versions_to_delete(versions.get(fid, []), aliased.get(fid, set()))
        signals, stale = score_function(
            now=now,
            runtime=runtime,
            last_invoked=last_invoked,
            first_seen=first_seen,
            last_modified=modified,
            code_size_bytes=code,
            timeout_s=timeout_s,
            duration_max_ms=dur_max,
            extra_versions=extra,
            idle_days=idle_days,
            modified_days=modified_days,
        )
        report.functions.append(
            StaleFunction(
                name,
                account,
                region,
                runtime,
                last_invoked,
                modified,
                code,
                sum(s.points for s in signals),
                stale,
                tuple(signals),
                tuple(extra),
            )
        )
    report.storage = _storage(db)
    return report


def _storage(db: Database) -> list[RegionStorage]:
    """Per account x region: AccountSettings when collected, else the sum of code sizes."""
    out: dict[tuple[str, str], RegionStorage] = {}
    for account, region, total, limit in db.conn.execute(
        "SELECT account_id, region, code_storage_bytes, code_storage_limit_bytes"
        " FROM account_settings WHERE code_storage_bytes IS NOT NULL"
    ):
        out[(account, region)] = RegionStorage(
            account, region, int(total), int(limit or CODE_STORAGE_QUOTA_BYTES)
        )
    for account, region, total in db.conn.execute(
        "SELECT fn.account_id, fn.region,"
        " COALESCE(SUM(COALESCE(v.code_size_bytes, 0)), 0)"
        "  + (SELECT COALESCE(SUM(code_size_bytes), 0) FROM functions f2"
        "     WHERE f2.account_id = fn.account_id AND f2.region = fn.region"
        "       AND f2.deleted_at IS NULL)"
        " FROM functions fn LEFT JOIN function_versions v"
        "  ON v.function_id = fn.id AND v.deleted_at IS NULL AND v.version != '$LATEST'"
        " WHERE fn.deleted_at IS NULL AND fn.code_size_bytes IS NOT NULL"
        " GROUP BY fn.account_id, fn.region"
    ):
        if (account, region) not in out and total:
            out[(account, region)] = RegionStorage(
                account, region, int(total), CODE_STORAGE_QUOTA_BYTES
            )
    return sorted(out.values(), key=lambda s: (s.account_id, s.region))
