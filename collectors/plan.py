"""``collect --plan``: what a run would do and what it would cost, without calling a data API.

Per account x region: the functions (from the store's inventory, or a ListFunctions listing
when the store has none), the metrics a run would request (the cadence of
collectors.cadence, or the full set) and the GetMetricData calls they take, the Logs
Insights queries and the bytes they would scan, estimated from each log group's stored
bytes (DescribeLogGroups ``storedBytes``, remembered by the last collection or described
now) spread evenly over the days the group holds and prorated to the window. Only
STS, ListFunctions and DescribeLogGroups are called; GetMetricData, ListMetrics, StartQuery
and FilterLogEvents never are.

The monthly estimate is the steady state of a schedule running every ``every_s`` seconds:
each metric of the cadence fetched every max(interval, its own cadence), each hour of logs
scanned once plus the part of the hour before a run that is read again (a quarter of an
hour, for runs at least LOGS_SETTLE_S past the hour).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any

from sqlite_utils import Database

from collectors import cadence, logs, metrics
from collectors.aws import resolve_accounts
from collectors.common import CallCounter, CollectOptions, Store, Target
from collectors.runs import resolve_window
from lambdascope.timeutil import HOUR_S, Clock, to_epoch, utcnow

HOURS_PER_MONTH = 730
DAY_S = 86400
# Extra share of an hour a scheduled run scans again (the start of the hour it runs in).
RESCAN_S = 15 * 60
# Operations a plan may make; everything else is a data API (billed or slow).
PLAN_OPERATIONS = frozenset({"ListFunctions", "DescribeLogGroups"})


@dataclass
class TargetPlan:
    """What a run would do in one account x region. Costs in USD, windows in epoch seconds."""

    account_id: str
    region: str
    functions: int = 0
    functions_from: str = "store"  # 'store' or 'listing'
    metrics_window: tuple[int, int] | None = None
    metrics_due: list[str] = field(default_factory=list)
    metrics_requested: int = 0
    get_metric_data_calls: int = 0
    list_metrics_requests: int = 0
    active_basis: str = ""
    logs_window: tuple[int, int] | None = None
    log_groups: int = 0
    log_groups_from: str = "store"  # 'store' or 'listing'
    insights_queries: int = 0
    estimated_bytes_scanned: int = 0
    metrics_cost_usd: float = 0.0
    logs_cost_usd: float = 0.0
    monthly_metrics_cost_usd: float = 0.0
    monthly_logs_cost_usd: float = 0.0

    @property
    def estimated_cost_usd(self) -> float:
        return self.metrics_cost_usd + self.logs_cost_usd

    @property
    def monthly_cost_usd(self) -> float:
        return self.monthly_metrics_cost_usd + self.monthly_logs_cost_usd


@dataclass
class CollectionPlan:
    """Every account x region of a run, the run's estimated charge and the monthly one."""

    sources: tuple[str, ...]
    metric_set: str
    logs_mode: str
    schedule_every_s: int
    targets: list[TargetPlan] = field(default_factory=list)
    operations: list[str] = field(default_factory=list)
    # accounts that could not be reached (not priced) and regions skipped, as a run says
    notes: list[str] = field(default_factory=list)

    @property
    def estimated_cost_usd(self) -> float:
        return sum(t.estimated_cost_usd for t in self.targets)

    @property
    def monthly_cost_usd(self) -> float:
        return sum(t.monthly_cost_usd for t in self.targets)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready: the plan, with each target's totals."""
        out = asdict(self)
        for row, target in zip(out["targets"], self.targets, strict=True):
            row["estimated_cost_usd"] = round(target.estimated_cost_usd, 6)
            row["monthly_cost_usd"] = round(target.monthly_cost_usd, 4)
        out["functions"] = sum(t.functions for t in self.targets)
        out["estimated_cost_usd"] = round(self.estimated_cost_usd, 6)
        out["monthly_cost_usd"] = round(self.monthly_cost_usd, 4)
        return out

    def lines(self) -> list[str]:
        """A human summary: one line per account x region, the run's and the monthly total."""
        accounts = len({t.account_id for t in self.targets})
        out = [
            f"plan: {', '.join(self.sources)} for {len(self.targets)} account x region pairs"
            f" ({accounts} accounts), metric set {self.metric_set}, logs {self.logs_mode}"
        ]
        for t in self.targets:
            out.append(
                f"{t.account_id} {t.region}: {t.functions} functions ({t.functions_from}),"
                f" {t.metrics_requested} metrics in {t.get_metric_data_calls} GetMetricData"
                f" calls + {t.list_metrics_requests} ListMetrics"
                + (
                    f" [due: {', '.join(t.metrics_due) or 'none'}]"
                    if self.metric_set == "lean"
                    else ""
                )
                + f", {t.insights_queries} Insights queries over {t.log_groups} log groups"
                f" ({t.log_groups_from}) ~{t.estimated_bytes_scanned / 1e9:.3f} GB,"
                f" ~${t.estimated_cost_usd:.4f}"
            )
        out.extend(self.notes)
        functions = sum(t.functions for t in self.targets)
        hours = self.schedule_every_s / HOUR_S
        out.append(f"estimated AWS charge of this run: ${self.estimated_cost_usd:.4f}")
        metrics_month = sum(t.monthly_metrics_cost_usd for t in self.targets)
        logs_month = sum(t.monthly_logs_cost_usd for t in self.targets)
        per_k = self.monthly_cost_usd / functions * 1000 if functions else 0.0
        out.append(
            f"monthly estimate of a schedule every {hours:g} h: ${self.monthly_cost_usd:.2f}"
            f" (metrics ${metrics_month:.2f}, Logs Insights ${logs_month:.2f};"
            f" ${per_k:.2f} per 1,000 functions)"
        )
        return out


# (id, function name, log group, log format): what logs.group_functions reads
FunctionRow = tuple[int, str, str | None, str | None]


def _functions(store: Store, target: Target) -> list[FunctionRow]:
    rows = store.db.conn.execute(
        "SELECT id, function_name, log_group, log_format FROM functions WHERE account_id = ?"
        " AND region = ? AND deleted_at IS NULL",
        (target.account_id, target.region),
    ).fetchall()
    return [(int(r[0]), str(r[1]), r[2], r[3]) for r in rows]


def _listed_functions(target: Target, counter: CallCounter) -> list[FunctionRow]:
    """Functions of a ListFunctions listing, numbered from 0 (not stored)."""
    client = target.client("lambda", counter)
    rows: list[FunctionRow] = []
    for page in client.get_paginator("list_functions").paginate():
        for config in page.get("Functions", []):
            logging = config.get("LoggingConfig") or {}
            rows.append(
                (
                    len(rows),
                    config["FunctionName"],
                    logging.get("LogGroup"),
                    logging.get("LogFormat"),
                )
            )
    return rows


def daily_bytes(
    stored_bytes: int, creation_time: int | None, retention_days: int | None, now: int
) -> float:
    """Bytes a log group receives per day, assuming its stored bytes spread evenly over the
    days it holds: its age, capped by its retention, at least one day (pure)."""
    held = (now - creation_time) / DAY_S if creation_time else float(retention_days or 1)
    if retention_days:
        held = min(held, float(retention_days))
    return stored_bytes / max(1.0, held)


def window_bytes(
    groups: Sequence[tuple[int, int | None, int | None]], start: int, end: int, now: int
) -> int:
    """Estimated bytes Insights scans over [start, end) of these groups (pure): each
    group's daily bytes times the window's days, never more than the group holds."""
    total = 0.0
    days = max(0, end - start) / DAY_S
    for stored, created, retention in groups:
        total += min(float(stored), daily_bytes(stored, created, retention, now) * days)
    return round(total)


def _log_groups(
    store: Store, target: Target, counter: CallCounter, names: Sequence[str]
) -> tuple[dict[str, tuple[int, int | None, int | None]], str]:
    """{log group: (stored bytes, creation time, retention days)} of those of ``names``
    that exist: as the last collection remembered them, or described now."""
    rows = store.db.conn.execute(
        "SELECT log_group, stored_bytes, creation_time, retention_days FROM log_groups"
        " WHERE account_id = ? AND region = ?",
        (target.account_id, target.region),
    ).fetchall()
    if rows:
        wanted = set(names)
        return {r[0]: (int(r[1] or 0), r[2], r[3]) for r in rows if r[0] in wanted}, "store"
    client = target.client("logs", counter)
    described: dict[str, dict[str, Any]] = {}
    present = logs.existing_log_groups(client, list(names), described)
    return {
        g: (
            int(described[g].get("storedBytes") or 0),
            int(described[g]["creationTime"]) // 1000 if described[g].get("creationTime") else None,
            described[g].get("retentionInDays"),
        )
        for g in present
    }, "listing"


def _active_estimate(
    store: Store, target: Target, spec: cadence.MetricSpec, since: int, ids: list[int]
) -> tuple[int, str]:
    """How many functions a listing would show with ``spec``'s metric since ``since``."""
    conn = store.db.conn
    listed = conn.execute(
        "SELECT 1 FROM metric_cadence WHERE account_id = ? AND region = ? AND metric_name = ''",
        (target.account_id, target.region),
    ).fetchone()
    if listed:
        count = conn.execute(
            "SELECT count(*) FROM metric_activity a JOIN functions f ON f.id = a.function_id"
            " WHERE f.account_id = ? AND f.region = ? AND a.metric_name = ? AND a.active_at >= ?",
            (target.account_id, target.region, spec.metric, since),
        ).fetchone()[0]
        return int(count), "last listings"
    where = "f.account_id = ? AND f.region = ? AND f.deleted_at IS NULL"
    args: tuple[Any, ...] = (target.account_id, target.region)
    if spec.metric == "IteratorAge":
        sql = f"SELECT count(DISTINCT f.id) FROM functions f JOIN event_source_mappings e ON e.function_id = f.id WHERE {where}"  # noqa: E501
        return int(conn.execute(sql, args).fetchone()[0]), "inventory"
    if spec.metric == "ProvisionedConcurrencySpilloverInvocations":
        sql = f"SELECT count(*) FROM functions f WHERE {where} AND f.provisioned_concurrency > 0"
        return int(conn.execute(sql, args).fetchone()[0]), "inventory"
    return len(ids), "every function (no listing yet)"


def _calls(metrics_requested: int, batch: int) -> int:
    return math.ceil(metrics_requested / batch) if metrics_requested else 0


def plan_target(
    store: Store,
    target: Target,
    options: CollectOptions,
    now: datetime,
    counter: CallCounter,
    schedule_every_s: int = HOUR_S,
) -> TargetPlan:
    """What a run of ``options`` would do in one account x region (no data API called)."""
    plan = TargetPlan(target.account_id, target.region)
    now_s = to_epoch(now)
    known = _functions(store, target)
    functions = known
    if not known:
        functions = _listed_functions(target, counter)
        plan.functions_from = "listing"
    plan.functions = len(functions)
    ids = [fid for fid, *_ in known] or list(range(len(functions)))
    runs_per_month = HOURS_PER_MONTH * HOUR_S / schedule_every_s
    sources = options.sources()
    if "metrics" in sources:
        start, end = resolve_window(store.db, options, target, "metrics", now)
        plan.metrics_window = (start, end)
        if options.metric_set == "full":
            requested = len(functions) * len(metrics.METRIC_QUERIES)
            pages = math.ceil(min(requested, 500) * ((end - start) // HOUR_S) / 100_800) or 1
            plan.get_metric_data_calls = _calls(requested, metrics.MAX_QUERIES_PER_CALL) * pages
            plan.metrics_requested = requested * pages
            plan.metrics_due = [m for _, m, _ in metrics.METRIC_QUERIES]
            plan.metrics_cost_usd = plan.metrics_requested * metrics.PRICE_PER_METRIC_USD
            plan.monthly_metrics_cost_usd = (
                requested * runs_per_month * metrics.PRICE_PER_METRIC_USD
            )
        else:
            _plan_lean(store, target, options, plan, ids, start, end, now_s, runs_per_month)
    if "logs" in sources:
        start, end = resolve_window(store.db, options, target, "logs", now)
        plan.logs_window = (start, end)
        # default, custom and shared log groups as the logs collector reads them: shared
        # and custom ones in batches of their own
        writers = logs.group_functions(functions)
        found, plan.log_groups_from = _log_groups(store, target, counter, writers.names())
        groups = list(found.values())
        plan.log_groups = len(groups)
        plan.insights_queries = sum(
            math.ceil(len([g for g in kind if g in found]) / logs.MAX_LOG_GROUPS_PER_QUERY)
            for kind in (writers.dedicated, writers.shared)
        )
        plan.estimated_bytes_scanned = window_bytes(groups, start, min(end, now_s), now_s)
        if options.logs_mode == "insights":
            plan.logs_cost_usd = plan.estimated_bytes_scanned / 1e9 * logs.PRICE_PER_GB_SCANNED_USD
            per_day = sum(daily_bytes(s, c, r, now_s) for s, c, r in groups)
            scanned = per_day / DAY_S * (schedule_every_s + RESCAN_S) * runs_per_month
            plan.monthly_logs_cost_usd = scanned / 1e9 * logs.PRICE_PER_GB_SCANNED_USD
        else:
            plan.insights_queries = 0
    return plan


def _plan_lean(
    store: Store,
    target: Target,
    options: CollectOptions,
    plan: TargetPlan,
    ids: list[int],
    start: int,
    end: int,
    now: int,
    runs_per_month: float,
) -> None:
    known, listings = cadence.read_cadence(store, target)
    explicit = options.start is not None or options.since is not None
    run = cadence.plan_metrics(
        cadence.LEAN_METRICS, known, listings, start=start, end=end, now=now, explicit=explicit
    )
    plan.list_metrics_requests = 0 if run.listing in ("none", "all") else 1
    bases = set()
    for spec, spec_start in run.due:
        count, basis = _active_estimate(store, target, spec, spec_start, ids)
        if run.listing == "all":
            count, basis = len(ids), "every function (window beyond two weeks)"
        bases.add(basis)
        plan.metrics_due.append(spec.metric)
        plan.metrics_requested += count
        plan.get_metric_data_calls += _calls(count, cadence.batch_size_for(spec_start, end))
    plan.active_basis = ", ".join(sorted(bases))
    plan.metrics_cost_usd = (
        plan.metrics_requested * metrics.PRICE_PER_METRIC_USD
        + plan.list_metrics_requests * cadence.PRICE_PER_LIST_REQUEST_USD
    )
    # Steady state: functions active in the last day, each metric every max(run, cadence).
    run_hours = HOURS_PER_MONTH / runs_per_month
    monthly = runs_per_month * cadence.PRICE_PER_LIST_REQUEST_USD
    for spec in cadence.LEAN_METRICS:
        count, _ = _active_estimate(store, target, spec, now - DAY_S, ids)
        fetches = HOURS_PER_MONTH / max(run_hours, spec.every_hours)
        monthly += count * fetches * metrics.PRICE_PER_METRIC_USD
    plan.monthly_metrics_cost_usd = monthly


def plan_collection(
    db: Database,
    options: CollectOptions,
    *,
    now: datetime,
    schedule_every_s: int = HOUR_S,
    clock: Clock = utcnow,
) -> CollectionPlan:
    """The plan of a run of ``options`` at ``now`` over the accounts x regions a run would
    collect (``run_collection``'s resolution: roles, organisation, each account's regions).

    Raises CollectionAborted / CredentialsError like ``run_collection`` when the accounts
    and regions cannot be resolved; an account that cannot be reached is a note, unpriced.
    """
    plan = CollectionPlan(
        options.sources(), options.metric_set, options.logs_mode, schedule_every_s
    )
    store = Store(db)
    counter = CallCounter()
    reach = resolve_accounts(options, clock)
    plan.notes.extend(reach.notes)
    if options.logs_mode == "athena" and "logs" in options.sources():
        plan.notes.append(
            "logs in Athena mode: the Athena query's charge ($5 per TB scanned, 10 MB minimum)"
            " is not estimated"
        )
    for failure in reach.failures:
        reason = failure.errors[0]["message"] if failure.errors else failure.status
        plan.notes.append(f"{failure.account_id}: not priced, {reason}")
    for target in reach.targets:
        plan.targets.append(plan_target(store, target, options, now, counter, schedule_every_s))
    plan.operations = sorted(set(counter.operations))
    return plan
