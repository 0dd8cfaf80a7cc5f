"""Alert rules evaluated over the store's merged view (pure reads; no writes).

Every rule returns :class:`Finding` objects for the functions whose condition holds at
``now`` (epoch seconds). Windows are whole UTC hours, like the reports: a lookback of
1 h at 10:20 reads the hours from 09:00 to the end of the 10:00 hour.
"""

from __future__ import annotations

import zlib
from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from itertools import pairwise
from typing import Any

from sqlite_utils import Database

from lambdascope import histcodec, histogram, queries, rightsizing, staleness
from lambdascope.alerts import detector
from lambdascope.alerts.config import AlertConfig
from lambdascope.alerts.model import Finding
from lambdascope.histogram import Histogram
from lambdascope.timeutil import DAY_S, HOUR_S, hour_floor, iso

# The earliest "since the last check" reaches back (a schedule that was down for a week
# does not announce last week's errors as new).
MAX_SINCE_LAST_CHECK_S = DAY_S
WEEK_S = 7 * DAY_S


@dataclass(frozen=True)
class HourCounts:
    """One function-hour of the merged view (all memory sizes together)."""

    hour: int
    invocations: float
    errors: float
    throttles: float
    timeouts: int
    out_of_memory: int
    memory_mb: int | None
    max_memory_used_mb: int | None


def _clock(seconds: int) -> str:
    return (iso(seconds) or "")[11:16] + "Z"


def _pct(value: float) -> str:
    return f"{value * 100:.1f} %"


def hourly_counts(db: Database, start: int, end: int) -> dict[int, list[HourCounts]]:
    """Per function id, the merged view's hours in ``[start, end)`` (oldest first)."""
    sql, params = queries.merged_hourly_sql(start, end, queries.ALL)
    rows = queries.rows_with_packed(
        db,
        start,
        end,
        queries.ALL,
        "SELECT function_id, hour, sum(invocations), sum(errors), sum(throttles),"
        " sum(timeouts), sum(out_of_memory), max(memory_mb), max(max_memory_used_mb_max)"
        f" FROM ({sql}) GROUP BY function_id, hour",
        params,
    )
    rows.sort(key=lambda r: (r[0], r[1]))
    out: dict[int, list[HourCounts]] = defaultdict(list)
    for fid, hour, inv, err, thr, tmo, oom, mem, used in rows:
        out[int(fid)].append(
            HourCounts(
                int(hour),
                float(inv or 0),
                float(err or 0),
                float(thr or 0),
                int(tmo or 0),
                int(oom or 0),
                mem,
                used,
            )
        )
    return out


def hourly_histograms(
    db: Database, function_id: int, start: int, end: int, column: str
) -> dict[int, Histogram]:
    """Per hour in ``[start, end)``, one function's histogram ``column`` merged over its
    memory sizes ('local' facts beat 'insights' for the same hour, as in the merged view)."""
    assert column in queries.HIST_COLUMNS
    rows = queries.rows_with_packed(
        db,
        start,
        end,
        queries.Filters(include_deleted=True, function_ids=(function_id,)),
        f"SELECT hf.hour, hf.{column} FROM hourly_facts hf"
        " WHERE hf.function_id = :fid AND hf.hour >= :start AND hf.hour < :end"
        " AND (hf.source = 'local' OR NOT EXISTS (SELECT 1 FROM hourly_facts l"
        " WHERE l.function_id = hf.function_id AND l.hour = hf.hour AND l.source = 'local'))",
        {"fid": function_id, "start": start, "end": end},
    )
    out: dict[int, Histogram] = {}
    for hour, text in rows:
        merged = out.setdefault(int(hour), {})
        for key, count in histcodec.decode(text).items():
            merged[key] = merged.get(key, 0) + count
    return out


class Context:
    """What every rule reads: the clock, the configuration and the functions."""

    def __init__(self, db: Database, config: AlertConfig, now: int, last_check: int | None) -> None:
        self.db = db
        self.config = config
        self.now = now
        self.last_check = last_check
        self.functions = {f.function_id: f for f in queries.list_functions(db)}
        self.open_keys: set[tuple[str, str]] = set()
        if db.conn.execute(
            "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'alerts'"
        ).fetchone():
            self.open_keys = {
                (str(rule), str(key))
                for rule, key in db.conn.execute(
                    "SELECT rule, alert_key FROM alerts WHERE resolved_at IS NULL"
                )
            }
        self._counts: dict[tuple[int, int], dict[int, list[HourCounts]]] = {}

    def counts(self, start: int, end: int) -> dict[int, list[HourCounts]]:
        if (start, end) not in self._counts:
            self._counts[(start, end)] = hourly_counts(self.db, start, end)
        return self._counts[(start, end)]

    def lookback(self, rule: str, *, since_last_check: bool = False) -> tuple[int, int]:
        """The hours a rule reads: from the hour of ``now - lookback`` (or of the last
        check, when earlier and ``since_last_check``) to the end of the current hour."""
        since = self.now - self.config.seconds(rule, "lookback")
        if since_last_check and self.last_check is not None:
            since = min(since, max(self.last_check, self.now - MAX_SINCE_LAST_CHECK_S))
        return hour_floor(since), hour_floor(self.now) + HOUR_S

    def key(self, function_id: int) -> str:
        """The alert key of a function (account/region/name)."""
        info = self.functions.get(function_id)
        return "" if info is None else f"{info.account_id}/{info.region}/{info.function_name}"

    def counted(self, rule: str) -> dict[int, tuple[tuple[int, int], list[HourCounts]]]:
        """Per function, the window and hours a count rule reads: an open alert stays open
        while its lookback still shows events; a function without one is also checked
        since the last check (so events between sparse checks are not missed)."""
        plain = self.lookback(rule)
        since = self.lookback(rule, since_last_check=True)
        plain_counts, since_counts = self.counts(*plain), self.counts(*since)
        out = {}
        for fid in {*plain_counts, *since_counts}:
            if (rule, self.key(fid)) in self.open_keys:
                out[fid] = (plain, plain_counts.get(fid, []))
            else:
                out[fid] = (since, since_counts.get(fid, []))
        return out

    def finding(
        self, rule: str, function_id: int, summary: str, window: tuple[int, int], **extra: Any
    ) -> Finding | None:
        """A finding about a known, not muted function (None when muted)."""
        info = self.functions.get(function_id)
        if info is None or self.config.muted(info.function_name, info.tags):
            return None
        key = extra.pop("key", None) or self.key(function_id)
        return Finding(
            rule=rule,
            key=key,
            severity=str(self.config.rule(rule)["severity"]),
            summary=summary,
            window_start=window[0],
            window_end=window[1],
            function_id=function_id,
            function_name=info.function_name,
            account_id=info.account_id,
            region=info.region,
            details=extra.pop("details", {}),
        )


def _present(findings: Iterable[Finding | None]) -> list[Finding]:
    return [f for f in findings if f is not None]


def rule_oom(ctx: Context) -> list[Finding]:
    """Out-of-memory errors since the last check (at least the lookback)."""
    params = ctx.config.rule("oom")
    found = []
    for fid, (window, hours) in ctx.counted("oom").items():
        count = sum(h.out_of_memory for h in hours)
        if count < max(1, int(params["min_count"])):
            continue
        hit = [h for h in hours if h.out_of_memory]
        memory = max((h.memory_mb or 0) for h in hit) or None
        used = max((h.max_memory_used_mb or 0) for h in hit) or None
        text = f"{count} out-of-memory error{'s' * (count != 1)} since {_clock(window[0])}"
        if memory:
            text += f" at {memory} MB" + (f" (max used {used} MB)" if used else "")
        found.append(
            ctx.finding(
                "oom",
                fid,
                text,
                window,
                details={"out_of_memory": count, "memory_mb": memory, "max_memory_used_mb": used},
            )
        )
    return _present(found)


def rule_timeouts(ctx: Context) -> list[Finding]:
    """Invocations that hit the function's timeout in the lookback."""
    params = ctx.config.rule("timeouts")
    found = []
    for fid, (window, hours) in ctx.counted("timeouts").items():
        count = sum(h.timeouts for h in hours)
        if count < max(1, int(params["min_count"])):
            continue
        info = ctx.functions.get(fid)
        timeout = f" (timeout {info.timeout_s} s)" if info and info.timeout_s else ""
        found.append(
            ctx.finding(
                "timeouts",
                fid,
                f"{count} timeout{'s' * (count != 1)} since {_clock(window[0])}{timeout}",
                window,
                details={"timeouts": count},
            )
        )
    return _present(found)


def rule_error_rate(ctx: Context) -> list[Finding]:
    """An hour with an error rate above the threshold and enough invocations."""
    params = ctx.config.rule("error_rate")
    threshold, minimum = float(params["threshold"]), float(params["min_invocations"])
    window = ctx.lookback("error_rate")
    found = []
    for fid, hours in ctx.counts(*window).items():
        bad = [
            h for h in hours if h.invocations >= minimum and h.errors / h.invocations > threshold
        ]
        if not bad:
            continue
        worst = max(bad, key=lambda h: h.errors / h.invocations)
        rate = worst.errors / worst.invocations
        found.append(
            ctx.finding(
                "error_rate",
                fid,
                f"{_pct(rate)} errors ({worst.errors:.0f} of {worst.invocations:.0f}) in the"
                f" hour from {_clock(worst.hour)} (threshold {_pct(threshold)})",
                window,
                details={
                    "error_rate": round(rate, 6),
                    "errors": worst.errors,
                    "invocations": worst.invocations,
                    "hour": worst.hour,
                },
            )
        )
    return _present(found)


def rule_throttles(ctx: Context) -> list[Finding]:
    """Throttled invocations (CloudWatch Throttles) in the lookback."""
    params = ctx.config.rule("throttles")
    window = ctx.lookback("throttles")
    found = []
    for fid, hours in ctx.counts(*window).items():
        count = sum(h.throttles for h in hours)
        if count < max(1e-9, float(params["min_count"])):
            continue
        invocations = sum(h.invocations for h in hours)
        found.append(
            ctx.finding(
                "throttles",
                fid,
                f"{count:.0f} throttled invocation{'s' * (round(count) != 1)} since"
                f" {_clock(window[0])} ({invocations:.0f} ran)",
                window,
                details={"throttles": count, "invocations": invocations},
            )
        )
    return _present(found)


def _p95_by_function(db: Database, start: int, end: int) -> dict[int, tuple[float | None, float]]:
    """Per function: p95 duration (ms) over ``[start, end)`` and the invocations it rests
    on (from the log histograms; CloudWatch's largest hourly p95 without logs)."""
    merged: dict[int, list[Histogram]] = defaultdict(list)
    fallback: dict[int, tuple[float | None, float]] = {}
    for s in queries.function_stats(db, start, end, histograms=("duration_hist",)):
        if s.duration_hist:
            merged[s.function_id].append(s.duration_hist)
        elif s.duration_p95_ms is not None and s.invocations > 0:
            p95, n = fallback.get(s.function_id, (None, 0.0))
            fallback[s.function_id] = (max(p95 or 0.0, s.duration_p95_ms), n + s.invocations)
    out = dict(fallback)
    for fid, hists in merged.items():
        hist = histogram.merge(hists)
        out[fid] = (histogram.quantile(hist, 0.95), float(histogram.count(hist)))
    return out


def rule_p95_regression(ctx: Context) -> list[Finding]:
    """p95 duration of the last hours against the same hours one week earlier."""
    params = ctx.config.rule("p95_regression")
    end = hour_floor(ctx.now) + HOUR_S
    start = end - max(HOUR_S, ctx.config.seconds("p95_regression", "window"))
    now_p95 = _p95_by_function(ctx.db, start, end)
    then_p95 = _p95_by_function(ctx.db, start - WEEK_S, end - WEEK_S)
    minimum = float(params["min_invocations"])
    found = []
    for fid, (p95, n) in now_p95.items():
        before, n_before = then_p95.get(fid, (None, 0.0))
        if p95 is None or before is None or before <= 0 or n < minimum or n_before < minimum:
            continue
        increase = p95 / before - 1.0
        if increase < float(params["min_increase"]) or p95 - before < float(params["min_delta_ms"]):
            continue
        found.append(
            ctx.finding(
                "p95_regression",
                fid,
                f"p95 duration {p95:,.0f} ms since {_clock(start)}, {_pct(increase)} above"
                f" the same hours last week ({before:,.0f} ms)",
                (start, end),
                details={
                    "p95_ms": round(p95, 3),
                    "previous_week_p95_ms": round(before, 3),
                    "increase": round(increase, 6),
                    "invocations": n,
                    "previous_week_invocations": n_before,
                },
            )
        )
    return _present(found)


# --- deploy regressions -----------------------------------------------------------------


@dataclass(frozen=True)
class Deploy:
    """A code or configuration change of one function at ``at`` (epoch seconds)."""

    function_id: int
    at: int
    kinds: tuple[str, ...]
    detail: str


def deploys(db: Database, start: int, end: int, function_id: int | None = None) -> list[Deploy]:
    """Changes in ``[start, end)``: LastModified of the function, a published version,
    and the first hour the logs show a new configured memory size. Changes of one
    function less than an hour apart are one deploy. ``function_id``: only that one."""
    only = "" if function_id is None else f" AND {{column}} = {int(function_id)}"
    raw: dict[int, list[tuple[int, str, str]]] = defaultdict(list)
    for fid, modified in db.conn.execute(
        "SELECT id, last_modified FROM functions WHERE last_modified >= ? AND last_modified < ?"
        + only.format(column="id"),
        (start, end),
    ):
        raw[int(fid)].append((int(modified), "code or configuration", "LastModified"))
    for fid, version, modified in db.conn.execute(
        "SELECT function_id, version, last_modified FROM function_versions"
        " WHERE version != '$LATEST' AND last_modified >= ? AND last_modified < ?"
        + only.format(column="function_id"),
        (start, end),
    ):
        raw[int(fid)].append((int(modified), "version", f"version {version} published"))
    # memory sizes by the first hour the logs saw them, over the window and a day before
    first_hours: dict[int, list[tuple[int, int]]] = defaultdict(list)
    firsts: dict[tuple[int, int], int] = {}
    whose = (
        queries.ALL_WITH_DELETED
        if function_id is None
        else queries.Filters(include_deleted=True, function_ids=(int(function_id),))
    )
    for fid, memory, first in queries.rows_with_packed(
        db,
        start - DAY_S,
        end,
        whose,
        "SELECT function_id, memory_mb, min(hour) FROM hourly_facts"
        " WHERE function_id IN (SELECT id FROM functions)"  # by function: no index by hour
        " AND hour >= ? AND hour < ? AND invocations > 0"
        + only.format(column="function_id")
        + " GROUP BY function_id, memory_mb",
        (start - DAY_S, end),
    ):  # the earliest of the store's rows and the packed hours
        key = (int(fid), int(memory))
        firsts[key] = min(int(first), firsts.get(key, int(first)))
    for (fid, memory), first in sorted(firsts.items(), key=lambda kv: (kv[0][0], kv[1])):
        first_hours[fid].append((first, memory))
    for fid, sizes in first_hours.items():
        for (_, old), (first, new) in pairwise(sizes):
            if first >= start:
                raw[fid].append((first, "memory", f"memory {old} MB -> {new} MB"))
    out: list[Deploy] = []
    for fid, changes in raw.items():
        changes.sort()
        group: list[tuple[int, str, str]] = []
        for change in [*changes, None]:
            if change is not None and (not group or change[0] - group[0][0] < HOUR_S):
                group.append(change)
                continue
            if group:
                kinds = tuple(dict.fromkeys(c[1] for c in group))
                detail = "; ".join(dict.fromkeys(c[2] for c in group))
                out.append(Deploy(fid, group[0][0], kinds, detail))
            group = [change] if change is not None else []
    out.sort(key=lambda d: (d.at, d.function_id))
    return out


_DEPLOY_METRICS: tuple[tuple[str, str, str, str], ...] = (
    # (metric, histogram column, label, unit)
    ("p95_duration", "duration_hist", "p95 duration", "ms"),
    ("p95_max_memory_used", "max_memory_used_hist", "p95 memory used", "MB"),
)


def evaluate_deploy(
    db: Database,
    deploy: Deploy,
    now: int,
    params: dict[str, Any],
    *,
    seconds: Callable[[str], int],
) -> list[detector.Comparison]:
    """The regressions after one deploy: every metric whose test says worse."""
    deploy_hour = hour_floor(deploy.at)
    after = (deploy_hour + HOUR_S, min(hour_floor(now) + HOUR_S, deploy.at + seconds("max_after")))
    if after[1] <= after[0]:
        return []
    # the baseline: the same clock hours on the days before (daily cycles cancel out)
    days = max(1, int(params["baseline_days"]))
    before = (after[0] - days * DAY_S, after[1] - DAY_S)
    after_hours = set(range(after[0], after[1], HOUR_S))
    baseline = {h - d * DAY_S for h in after_hours for d in range(1, days + 1)}
    baseline = {h for h in baseline if h < deploy_hour}
    seed = zlib.crc32(f"{deploy.function_id}:{deploy.at}".encode())
    resamples = max(100, int(params["resamples"]))
    confidence, min_effect = float(params["confidence"]), float(params["min_effect"])
    minimum, min_hours = float(params["min_invocations"]), int(params["min_after_hours"])
    out: list[detector.Comparison] = []
    for metric, column, _, _ in _DEPLOY_METRICS:
        hists_before = {
            h: v
            for h, v in hourly_histograms(db, deploy.function_id, *before, column).items()
            if h in baseline
        }
        hists_after = hourly_histograms(db, deploy.function_id, *after, column)
        if len(hists_after) < min_hours:
            continue
        comparison = detector.compare_quantile(
            metric,
            list(hists_before.values()),
            list(hists_after.values()),
            resamples=resamples,
            seed=seed,
        )
        if (
            comparison is not None
            and comparison.after_count >= minimum
            and comparison.before_count >= minimum
            and detector.is_regression(comparison, confidence=confidence, min_effect=min_effect)
        ):
            out.append(comparison)
    counts = {h.hour: h for h in hourly_counts(db, before[0], after[1]).get(deploy.function_id, [])}
    side = [
        [(c.errors, c.invocations) for hour, c in counts.items() if hour in hours]
        for hours in (baseline, after_hours)
    ]
    if len(side[1]) >= min_hours:
        rate = detector.compare_rate("error_rate", side[0], side[1], resamples=resamples, seed=seed)
        if (
            rate is not None
            and rate.after_count >= minimum
            and rate.before_count >= minimum
            and detector.is_regression(
                rate, confidence=confidence, min_effect=float(params["min_error_rate_increase"])
            )
        ):
            out.append(rate)
    return out


def describe(comparison: detector.Comparison) -> str:
    """One line: the metric, before -> after, effect with its interval and confidence."""
    if comparison.metric == "error_rate":
        return (
            f"error rate {_pct(comparison.before)} -> {_pct(comparison.after)}"
            f" (+{comparison.effect * 100:.1f} points, 90 % interval"
            f" {comparison.low * 100:+.1f}..{comparison.high * 100:+.1f},"
            f" confidence {_pct(comparison.confidence)})"
        )
    label, unit = next((m[2], m[3]) for m in _DEPLOY_METRICS if m[0] == comparison.metric)
    return (
        f"{label} {comparison.before:,.0f} -> {comparison.after:,.0f} {unit}"
        f" ({comparison.effect * 100:+.0f} %, 90 % interval {comparison.low * 100:+.0f}"
        f"..{comparison.high * 100:+.0f} %, confidence {_pct(comparison.confidence)})"
    )


def comparison_details(comparison: detector.Comparison) -> dict[str, Any]:
    return {
        "metric": comparison.metric,
        "before": round(comparison.before, 6),
        "after": round(comparison.after, 6),
        "effect": round(comparison.effect, 6),
        "interval_90": [round(comparison.low, 6), round(comparison.high, 6)],
        "confidence": round(comparison.confidence, 4),
        "before_hours": comparison.before_hours,
        "after_hours": comparison.after_hours,
    }


def rule_deploy_regression(ctx: Context) -> list[Finding]:
    """Deploys of the lookback followed by a worse p95 duration, memory used or error rate."""
    params = ctx.config.rule("deploy_regression")

    def seconds(key: str) -> int:
        return ctx.config.seconds("deploy_regression", key)

    found: list[Finding | None] = []
    for deploy in deploys(ctx.db, ctx.now - seconds("lookback"), ctx.now):
        for comparison in evaluate_deploy(ctx.db, deploy, ctx.now, params, seconds=seconds):
            info = ctx.functions.get(deploy.function_id)
            if info is None:
                continue
            found.append(
                ctx.finding(
                    "deploy_regression",
                    deploy.function_id,
                    f"after the change at {iso(deploy.at)} ({deploy.detail}): "
                    + describe(comparison),
                    (deploy.at, min(ctx.now, deploy.at + seconds("max_after"))),
                    key=f"{info.account_id}/{info.region}/{info.function_name}"
                    f"@{deploy.at}:{comparison.metric}",
                    details={
                        "deploy_at": deploy.at,
                        "deploy": deploy.detail,
                        "kinds": list(deploy.kinds),
                        **comparison_details(comparison),
                    },
                )
            )
    return _present(found)


# --- findings of the analyses -----------------------------------------------------------


def rule_newly_stale(ctx: Context) -> list[Finding]:
    """Functions the stale analysis flags (announced when they become stale)."""
    params = ctx.config.rule("newly_stale")
    report = staleness.find_stale(
        ctx.db,
        ctx.now,
        idle_days=int(params["idle_days"]),
        modified_days=int(params["modified_days"]),
    )
    by_name = {(f.account_id, f.region, f.function_name): f for f in ctx.functions.values()}
    found = []
    for stale in report.functions_to_review:
        info = by_name.get((stale.account_id, stale.region, stale.function_name))
        if info is None:
            continue
        idle = (
            f"no invocation since {iso(stale.last_invoked)[:10]}"  # type: ignore[index]
            if stale.last_invoked
            else "never invoked in the stored history"
        )
        found.append(
            ctx.finding(
                "newly_stale",
                info.function_id,
                f"stale: {idle}; score {stale.score}",
                (ctx.now, ctx.now),
                details={"score": stale.score, "signals": [s.key for s in stale.signals]},
            )
        )
    return _present(found)


def rule_newly_under_provisioned(ctx: Context) -> list[Finding]:
    """Functions the right-sizing analysis finds under-provisioned (at their current size)."""
    window = ctx.config.seconds("newly_under_provisioned", "window")
    end = hour_floor(ctx.now) + HOUR_S
    by_name = {(f.account_id, f.region, f.function_name): f for f in ctx.functions.values()}
    found = []
    for rec in rightsizing.recommend_all(ctx.db, end - window, end):
        info = by_name.get((rec.account_id, rec.region, rec.function_name))
        if rec.finding != "under-provisioned" or info is None:
            continue
        if info.memory_mb is not None and rec.memory_mb != info.memory_mb:
            continue  # an older size: the function has been resized since
        target = f", recommend {rec.recommended_memory_mb} MB" if rec.recommended_memory_mb else ""
        used = f"max used {rec.max_memory_used_mb} MB" if rec.max_memory_used_mb else "no usage"
        found.append(
            ctx.finding(
                "newly_under_provisioned",
                info.function_id,
                f"under-provisioned at {rec.memory_mb} MB ({used},"
                f" {rec.out_of_memory_errors} out-of-memory errors){target}",
                (end - window, end),
                details={
                    "memory_mb": rec.memory_mb,
                    "recommended_memory_mb": rec.recommended_memory_mb,
                    "reasons": list(rec.reasons),
                },
            )
        )
    return _present(found)


RULES: dict[str, Callable[[Context], list[Finding]]] = {
    "oom": rule_oom,
    "timeouts": rule_timeouts,
    "error_rate": rule_error_rate,
    "throttles": rule_throttles,
    "p95_regression": rule_p95_regression,
    "deploy_regression": rule_deploy_regression,
    "newly_stale": rule_newly_stale,
    "newly_under_provisioned": rule_newly_under_provisioned,
}


def evaluate(
    db: Database, config: AlertConfig, now: int, last_check: int | None = None
) -> tuple[list[Finding], list[str], dict[str, str]]:
    """Run every enabled rule. Returns the findings, the rules that ran, and the rules
    that failed with their error (a failing rule never stops the others)."""
    ctx = Context(db, config, now, last_check)
    findings: list[Finding] = []
    ran: list[str] = []
    failed: dict[str, str] = {}
    for name, rule in RULES.items():
        if not config.enabled(name):
            continue
        try:
            findings.extend(rule(ctx))
        except Exception as exc:  # one broken rule must not silence the others
            failed[name] = f"{type(exc).__name__}: {exc}"
            continue
        ran.append(name)
    return findings, ran, failed
