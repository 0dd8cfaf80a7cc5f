"""The metrics cadence: ask CloudWatch only for what the logs cannot give, only for functions
that were active, and slow-moving metrics less often.

GetMetricData is billed per metric requested, whatever the window, so the cost of a run is
the number of (function, metric) pairs it asks for. The REPORT statistics from the logs
already give invocations, errors, durations and memory; CloudWatch alone knows throttles,
concurrency, iterator age, asynchronous-invocation and dead-letter failures and provisioned
concurrency spillover (``LEAN_METRICS``). Which functions have a metric is found with
ListMetrics, billed per request (not per metric) and within CloudWatch's free tier of API
requests: ``RecentlyActive=PT3H`` lists the metrics with a datapoint in the last three
hours, no filter those with one in the last two weeks. Each listing is remembered per
function (``metric_activity``), so a metric fetched every N hours is asked for exactly the
functions a listing saw active since that metric's last fetch. Fetching a metric every N
hours over an N-hour window costs 1/N of fetching it hourly and gives the same hourly
datapoints, later.

A function no listing saw active is not asked for: its hours stay absent (CloudWatch would
have answered with no datapoint either), and the readers treat absence as absence.
"""

from __future__ import annotations

import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from collectors.common import CallCounter, SourceResult, Stop, Store, Target, metric_query, never
from collectors.metrics import (
    COLUMNS,
    MAX_QUERIES_PER_CALL,
    PERIOD_S,
    PRICE_PER_METRIC_USD,
    REVISION_HORIZON_S,
    QueryRef,
    batches,
    complete_columns,
    failed_queries,
    get_metric_data,
    load_metrics,
    transform_results,
)
from lambdascope.timeutil import HOUR_S, hour_floor

# ListMetrics list price (us-east-1): $0.01 per 1,000 requests beyond the free tier's
# 1 million API requests a month (GetMetricData is never in the free tier).
PRICE_PER_LIST_REQUEST_USD = 0.01 / 1000
RECENTLY_ACTIVE_S = 3 * HOUR_S
# ListMetrics without RecentlyActive returns metrics with data in the last two weeks.
LISTED_HISTORY_S = 14 * 86400
# A resumed fetch re-reads the hour before the last one fetched (late datapoints).
METRIC_OVERLAP_S = HOUR_S
# GetMetricData returns at most 100,800 datapoints per call; a batch that may need more is
# answered in NextToken pages, each billed again for all of its metrics.
MAX_DATAPOINTS_PER_CALL = 100_800
NAMESPACE = "AWS/Lambda"


@dataclass(frozen=True)
class MetricSpec:
    """One CloudWatch metric of the cadence: hourly_metrics column, metric, statistic, and
    how often it is fetched (every ``every_hours`` hours, over the hours since last time)."""

    column: str
    metric: str
    stat: str
    every_hours: int = 1


# What the logs cannot give. Throttles and iterator age are wanted within the hour (alerts);
# concurrency peaks feed capacity reviews; the rest are rare failure counters.
LEAN_METRICS: tuple[MetricSpec, ...] = (
    MetricSpec("throttles", "Throttles", "Sum", 1),
    MetricSpec("iterator_age_max_ms", "IteratorAge", "Maximum", 1),
    MetricSpec("concurrent_executions_max", "ConcurrentExecutions", "Maximum", 3),
    MetricSpec("async_events_dropped", "AsyncEventsDropped", "Sum", 6),
    MetricSpec("dead_letter_errors", "DeadLetterErrors", "Sum", 6),
    MetricSpec("destination_delivery_failures", "DestinationDeliveryFailures", "Sum", 6),
    MetricSpec(
        "provisioned_concurrency_spillover_invocations",
        "ProvisionedConcurrencySpilloverInvocations",
        "Sum",
        6,
    ),
)


@dataclass(frozen=True)
class Cadence:
    """What the store remembers of one metric in one account x region (epoch seconds)."""

    fetched_until: int | None = None


@dataclass(frozen=True)
class Listings:
    """When ListMetrics last ran in one account x region, and since when listings covered
    every hour without a gap (epoch seconds)."""

    listed_at: int | None = None
    covered_from: int | None = None

    def after(self, mode: str, now: int) -> Listings:
        """The coverage once a listing of ``mode`` ran at ``now`` (pure)."""
        if mode == "history":
            return Listings(now, now - LISTED_HISTORY_S)
        continuous = self.listed_at is not None and self.listed_at >= now - RECENTLY_ACTIVE_S
        if continuous and self.covered_from is not None:
            return Listings(now, self.covered_from)
        return Listings(now, now - RECENTLY_ACTIVE_S)


def is_due(spec: MetricSpec, cadence: Cadence, now: int, explicit: bool) -> bool:
    """Whether ``spec`` is fetched by a run at ``now`` (pure).

    Always on an explicit window and the first time; otherwise once ``every_hours`` whole
    hours have passed since the hour it was fetched up to.
    """
    if explicit or cadence.fetched_until is None:
        return True
    return hour_floor(now) - cadence.fetched_until >= spec.every_hours * HOUR_S


def fetch_window(cadence: Cadence, start: int, end: int, explicit: bool) -> tuple[int, int]:
    """[start, end) to fetch a due metric over (pure): the run's window when explicit or the
    first time, else from the hour before the last one fetched."""
    if explicit or cadence.fetched_until is None:
        return start, end
    return min(cadence.fetched_until - METRIC_OVERLAP_S, end - HOUR_S), end


def listing_mode(listings: Listings, window_start: int, now: int) -> str:
    """How to find the functions with data since ``window_start`` (pure).

    'recent' (RecentlyActive=PT3H) when this listing and the earlier ones remembered in
    metric_activity cover every hour since the window start (each RecentlyActive listing
    sees three hours back, so listings at most three hours apart leave no gap); 'history'
    (no filter: metrics with data in the last two weeks) otherwise; 'all' (no listing, every
    function) for a window that starts more than two weeks back.
    """
    if window_start < now - LISTED_HISTORY_S:
        return "all"
    if window_start >= now - RECENTLY_ACTIVE_S:
        return "recent"
    covered = listings.after("recent", now).covered_from
    if covered is not None and covered <= window_start:
        return "recent"
    return "history"


def list_active(client: Any, recent: bool) -> tuple[dict[str, set[str]], int]:
    """{metric name: function names} of AWS/Lambda metrics whose only dimension is
    FunctionName, and the pages read (one ListMetrics request each).

    A dimension filter also matches metrics with further dimensions (Resource,
    ExecutedVersion), so the dimensions are checked here.
    """
    kwargs: dict[str, Any] = {"Namespace": NAMESPACE, "Dimensions": [{"Name": "FunctionName"}]}
    if recent:
        kwargs["RecentlyActive"] = "PT3H"
    found: dict[str, set[str]] = {}
    pages = 0
    while True:
        page = client.list_metrics(**kwargs)
        pages += 1
        for item in page.get("Metrics", []):
            dims = item.get("Dimensions") or []
            if len(dims) == 1 and dims[0].get("Name") == "FunctionName":
                name = str(item.get("MetricName", ""))
                found.setdefault(name, set()).add(str(dims[0].get("Value", "")))
        token = page.get("NextToken")
        if not token:
            return found, pages
        kwargs["NextToken"] = token


def build_spec_queries(
    pairs: Sequence[tuple[int, str, MetricSpec]],
) -> tuple[list[dict[str, Any]], dict[str, QueryRef]]:
    """MetricDataQueries for (function_id, function_name, spec) and what each id means (pure).

    Ids are ``f<function id>_m<column index>``, the same as collectors.metrics.
    """
    queries: list[dict[str, Any]] = []
    refs: dict[str, QueryRef] = {}
    for fid, name, spec in pairs:
        query_id = f"f{fid}_m{COLUMNS.index(spec.column)}"
        refs[query_id] = QueryRef(fid, spec.column)
        queries.append(
            metric_query(
                query_id,
                NAMESPACE,
                spec.metric,
                [{"Name": "FunctionName", "Value": name}],
                PERIOD_S,
                spec.stat,
            )
        )
    return queries, refs


def batch_size_for(start: int, end: int) -> int:
    """Queries per call so that a fully dense answer fits one page (no billed NextToken)."""
    hours = max(1, -(-(end - start) // HOUR_S))
    return max(1, min(MAX_QUERIES_PER_CALL, MAX_DATAPOINTS_PER_CALL // hours))


def read_cadence(store: Store, target: Target) -> tuple[dict[str, Cadence], Listings]:
    """Per metric name its cadence, and the account x region's listings."""
    with store.lock:
        rows = store.db.conn.execute(
            "SELECT metric_name, listed_at, covered_from, fetched_until FROM metric_cadence"
            " WHERE account_id = ? AND region = ?",
            (target.account_id, target.region),
        ).fetchall()
    cadence = {str(r[0]): Cadence(r[3]) for r in rows if r[0]}
    listing = next((Listings(r[1], r[2]) for r in rows if not r[0]), Listings())
    return cadence, listing


def _functions(store: Store, target: Target) -> dict[str, int]:
    with store.lock:
        rows = store.db.conn.execute(
            "SELECT function_name, id FROM functions WHERE account_id = ? AND region = ?"
            " AND deleted_at IS NULL",
            (target.account_id, target.region),
        ).fetchall()
    return {str(r[0]): int(r[1]) for r in rows}


def _active_since(store: Store, target: Target, metric: str, since: int) -> set[int]:
    with store.lock:
        rows = store.db.conn.execute(
            "SELECT a.function_id FROM metric_activity a JOIN functions f ON f.id = a.function_id"
            " WHERE f.account_id = ? AND f.region = ? AND a.metric_name = ? AND a.active_at >= ?",
            (target.account_id, target.region, metric, since),
        ).fetchall()
    return {int(r[0]) for r in rows}


def _remember_listing(
    store: Store, target: Target, seen: dict[str, list[int]], listings: Listings, now: int
) -> None:
    with store.write() as db:
        db.conn.executemany(
            "INSERT INTO metric_activity (function_id, metric_name, active_at) VALUES (?, ?, ?)"
            " ON CONFLICT (function_id, metric_name) DO UPDATE SET"
            " active_at = MAX(active_at, excluded.active_at)",
            [(fid, metric, now) for metric, ids in sorted(seen.items()) for fid in ids],
        )
        db.conn.execute(
            "INSERT INTO metric_cadence (account_id, region, metric_name, listed_at, covered_from)"
            " VALUES (?, ?, '', ?, ?) ON CONFLICT (account_id, region, metric_name) DO UPDATE SET"
            " listed_at = excluded.listed_at, covered_from = excluded.covered_from",
            (target.account_id, target.region, listings.listed_at, listings.covered_from),
        )


def _save_fetched(store: Store, target: Target, metric: str, until: int) -> None:
    with store.write() as db:
        db.conn.execute(
            "INSERT INTO metric_cadence (account_id, region, metric_name, fetched_until)"
            " VALUES (?, ?, ?, ?) ON CONFLICT (account_id, region, metric_name) DO UPDATE SET"
            " fetched_until = MAX(coalesce(fetched_until, 0), excluded.fetched_until)",
            (target.account_id, target.region, metric, until),
        )


@dataclass(frozen=True)
class MetricsPlan:
    """The due metrics of one run: per due spec its window start (pure planning)."""

    due: tuple[tuple[MetricSpec, int], ...]
    listing: str  # 'recent', 'history', 'all' or 'none' (nothing due)


def plan_metrics(
    specs: Sequence[MetricSpec],
    cadence: dict[str, Cadence],
    listings: Listings,
    *,
    start: int,
    end: int,
    now: int,
    explicit: bool,
) -> MetricsPlan:
    """Which metrics a run fetches, from when, and how it lists active functions (pure)."""
    due = tuple(
        (spec, fetch_window(cadence.get(spec.metric, Cadence()), start, end, explicit)[0])
        for spec in specs
        if is_due(spec, cadence.get(spec.metric, Cadence()), now, explicit)
    )
    if not due:
        return MetricsPlan(due, "none")
    return MetricsPlan(due, listing_mode(listings, min(s for _, s in due), now))


def collect(
    store: Store,
    target: Target,
    result: SourceResult,
    counter: CallCounter,
    *,
    start: int,
    end: int,
    now: int,
    explicit: bool,
    specs: Sequence[MetricSpec] = LEAN_METRICS,
    stop: Stop = never,
) -> None:
    """The due metrics of ``specs`` for the functions listed active, over their windows.

    ``start``/``end`` is the run's window (epoch seconds, hour-aligned); ``explicit`` when
    the user gave it (every metric is then fetched over it). A stop request is honoured
    between calls; the cadence of a metric moves only when all of its batches were stored.
    """
    client = target.client("cloudwatch", counter)
    functions = _functions(store, target)
    by_id = {fid: name for name, fid in functions.items()}
    cadence, listings = read_cadence(store, target)
    run = plan_metrics(specs, cadence, listings, start=start, end=end, now=now, explicit=explicit)
    lists = 0
    if run.listing in ("recent", "history"):
        found, lists = list_active(client, recent=run.listing == "recent")
        # Every metric of the cadence is remembered, due or not: a slow metric is later
        # asked for the functions seen active since its last fetch.
        # Invocations too: the logs collector looks for late events of active functions.
        seen = {
            metric: sorted(functions[n] for n in found.get(metric, ()) if n in functions)
            for metric in [*(spec.metric for spec in specs), "Invocations"]
        }
        _remember_listing(store, target, seen, listings.after(run.listing, now), now)
    plan: dict[int, list[tuple[int, str, MetricSpec]]] = {}  # window start -> pairs
    for spec, spec_start in run.due:
        if run.listing == "all":
            wanted = set(by_id)
        else:
            wanted = _active_since(store, target, spec.metric, spec_start)
        plan.setdefault(spec_start, []).extend(
            (fid, by_id[fid], spec) for fid in sorted(wanted) if fid in by_id
        )
    due = [spec for spec, _ in run.due]
    revise_from = max(start, now - REVISION_HORIZON_S)
    revise_from = hour_floor(revise_from - 1) + HOUR_S if revise_from % HOUR_S else revise_from
    requested = 0
    stored: set[tuple[int, int]] = set()
    failed_columns: set[str] = set()
    interrupted = False
    for window_start, pairs in sorted(plan.items()):
        queries, refs = build_spec_queries(pairs)
        for batch in batches(queries, batch_size_for(window_start, end)):
            if stop():
                interrupted = True
                break
            before = counter.calls
            results = list(get_metric_data(client, batch, window_start, end))
            requested += len(batch) * max(1, counter.calls - before)
            rows = transform_results(results, refs)
            revise = (complete_columns(results, refs), max(revise_from, window_start), end)
            load_metrics(store, rows, revise)
            stored.update(rows)
            for code, ids in failed_queries(results).items():
                # Partial: neither the watermark nor these metrics' cadence moves, so their
                # hours are asked again next run (stored values are kept meanwhile).
                failed_columns.update(refs[i].column for i in ids if i in refs)
                result.fail(
                    "cloudwatch:GetMetricData",
                    code,
                    f"{len(ids)} metric queries answered {code} after a retry (e.g. {ids[0]});"
                    " their hours keep what was stored and are read again next run",
                )
        if interrupted:
            break
    if interrupted:
        result.status = "interrupted"
    else:
        for spec in due:
            if spec.column not in failed_columns:
                _save_fetched(store, target, spec.metric, min(end, hour_floor(now)))
    result.items = len(stored)
    result.estimated_cost_usd = (
        requested * PRICE_PER_METRIC_USD + lists * PRICE_PER_LIST_REQUEST_USD
    )
    pairs_total = sum(len(p) for p in plan.values())
    result.message = (
        f"{len(functions)} functions; due: {', '.join(s.metric for s in due) or 'none'};"
        f" {lists} ListMetrics pages ({run.listing}), {pairs_total} metrics requested,"
        f" {len(stored)} function-hours" + ("; stopped between calls" if interrupted else "")
    )


# ---------------------------------------------------------------- inventory cadence

# The per-function inventory calls (tags, concurrency, aliases, provisioned concurrency,
# URLs: five per function) go through Lambda's control plane, 15 requests/s per account and
# region: they are most of an hourly run's time. A resumed run of every source lists the
# functions (ListFunctions: 50 a call, new functions and configuration changes such as
# memory size) and fetches the details only every INVENTORY_DETAILS_EVERY_S, the pairs of
# an organisation spread over the hours of that cycle.
INVENTORY_DETAILS_EVERY_S = 6 * HOUR_S


def details_due(store: Store, target: Target, *, now: int, resumed: bool) -> bool:
    """Whether this run's inventory fetches every function's details (the full inventory):
    always on an explicit window, an `--only` selection or the first time; otherwise once
    INVENTORY_DETAILS_EVERY_S passed since the last full inventory completed."""
    if not resumed:
        return True
    with store.lock:
        row = store.db.conn.execute(
            "SELECT details_at FROM inventory_cadence WHERE account_id = ? AND region = ?",
            (target.account_id, target.region),
        ).fetchone()
    return row is None or now - int(row[0]) >= INVENTORY_DETAILS_EVERY_S


def details_slot(target: Target, now: int) -> int:
    """The start of the hour, at or before ``now``, in which the account x region refreshes
    its details: every INVENTORY_DETAILS_EVERY_S, in an hour of the cycle that is stable
    per pair, so the pairs of an organisation (all inventoried by the same first run)
    refresh in different hours."""
    slots = INVENTORY_DETAILS_EVERY_S // HOUR_S
    phase = zlib.crc32(f"{target.account_id}/{target.region}".encode()) % slots
    hour = hour_floor(now)
    return hour - (hour // HOUR_S - phase) % slots * HOUR_S


def save_details_at(store: Store, target: Target, now: int) -> None:
    """Remember that a full inventory of the account x region completed at ``now`` (as
    the start of its slot, see details_slot: the next one is due a cycle later)."""
    with store.write() as db:
        db.conn.execute(
            "INSERT INTO inventory_cadence (account_id, region, details_at) VALUES (?, ?, ?)"
            " ON CONFLICT (account_id, region) DO UPDATE SET details_at = excluded.details_at",
            (target.account_id, target.region, details_slot(target, now)),
        )


def list_functions(
    store: Store, target: Target, result: SourceResult, counter: CallCounter, *, now: int
) -> None:
    """The light inventory: ListFunctions upserts every function's
    configuration (a new function is known to the metrics and logs of this run); details,
    versions and deletions wait for the next full inventory."""
    from collectors.inventory import LATEST, transform_function
    from lambdascope.db import function_id

    client = target.client("lambda", counter)
    configs: list[dict[str, Any]] = []
    # The same listing as the full inventory (FunctionVersion=ALL), so that each function's
    # row reads the same whichever inventory wrote it; published versions are skipped.
    for page in client.get_paginator("list_functions").paginate(FunctionVersion="ALL"):
        configs.extend(f for f in page.get("Functions", []) if f.get("Version") == LATEST)
    with store.write() as db:
        for config in configs:
            fid = function_id(
                db, config["FunctionName"], target.account_id, target.region, seen_at=now
            )
            row = {**transform_function(config), "deleted_at": None}
            sets = ", ".join(f"{c} = ?" for c in row)
            db.conn.execute(f"UPDATE functions SET {sets} WHERE id = ?", (*row.values(), fid))
    result.items = len(configs)
    result.message = (
        f"{len(configs)} functions listed; details every {INVENTORY_DETAILS_EVERY_S // HOUR_S} h"
    )
