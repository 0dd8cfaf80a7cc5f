"""A realistic, deterministic synthetic fleet written straight into the store.

Used by benchmarks, dashboard tests and analyses. The same arguments always give the same
rows. Behaviours mixed into the fleet (see ``BEHAVIOURS``): well-sized, over-provisioned,
under-provisioned with out-of-memory errors, timing out, throttled, cold-start heavy,
memory changed mid-history, and stale (no invocations for a long time, or never).

Speed: each function gets a few precomputed histogram templates (one per traffic level
and memory size); every active hour reuses one, and rows go in with ``executemany``.
"""

from __future__ import annotations

import json
import math
import random
from dataclasses import dataclass
from typing import Any

from sqlite_utils import Database

from lambdascope import histogram, rollup
from lambdascope.timeutil import DAY_S, HOUR_S

DEFAULT_END = 1_767_225_600  # 2026-01-01T00:00:00Z

ACCOUNTS = ("111111111111", "222222222222", "333333333333")
REGIONS = ("us-east-1", "eu-west-1", "ap-southeast-2")
RUNTIMES = (
    ("python3.12", 22),
    ("python3.11", 14),
    ("nodejs20.x", 20),
    ("nodejs18.x", 10),
    ("java21", 6),
    ("provided.al2023", 6),
    ("python3.8", 5),  # deprecated
    ("nodejs16.x", 4),  # deprecated
    ("python3.7", 3),  # deprecated
    ("go1.x", 3),  # deprecated
    ("dotnet8", 4),
    ("ruby3.3", 3),
)
MEMORY_SIZES = (128, 256, 512, 1024, 1536, 2048, 3008, 4096, 10240)
TIMEOUTS_S = (3, 10, 30, 60, 300, 900)
TEAMS = ("payments", "search", "platform", "growth", "data")
BEHAVIOURS = (
    ("normal", 40),
    ("over", 22),
    ("under_oom", 7),
    ("timeouts", 5),
    ("throttled", 5),
    ("cold", 6),
    ("memchange", 5),
    ("stale", 10),
)
LEVELS = (0.3, 0.7, 1.0, 1.6)
SAMPLE_CAP = 400  # values sampled per template; counts are then scaled up


@dataclass(frozen=True)
class SyntheticFunction:
    """The plan of one generated function."""

    name: str
    account_id: str
    region: str
    runtime: str
    architecture: str
    memory_mb: int
    old_memory_mb: int | None
    timeout_s: int
    behaviour: str
    rate_per_hour: float
    active_from: int
    active_to: int


def _weighted(rng: random.Random, options: tuple[tuple[str, int], ...]) -> str:
    return rng.choices([o for o, _ in options], weights=[w for _, w in options])[0]


def _plan(rng: random.Random, index: int, start: int, end: int) -> SyntheticFunction:
    behaviour = _weighted(rng, BEHAVIOURS)
    team = TEAMS[index % len(TEAMS)]
    name = f"{team}-{rng.choice(('api', 'worker', 'etl', 'cron', 'hook', 'auth'))}-{index:04d}"
    memory = rng.choice(MEMORY_SIZES[:7])
    if behaviour == "over":
        memory = rng.choice((1024, 1536, 2048, 3008, 4096, 10240))
    old_memory = None
    if behaviour == "memchange":
        old_memory = memory
        memory = rng.choice([m for m in MEMORY_SIZES[:7] if m != memory])
    timeout = rng.choice(TIMEOUTS_S)
    if behaviour == "timeouts":
        timeout = rng.choice((3, 10, 30))
    rate = math.exp(rng.gauss(2.5, 1.8))
    rate = min(max(rate, 0.05), 20_000.0)
    active_from, active_to = start, end
    if behaviour == "stale":
        if rng.random() < 0.4:
            active_from = active_to = start  # never invoked
        else:
            active_to = start + int((end - start) * rng.uniform(0.05, 0.4)) // HOUR_S * HOUR_S
    return SyntheticFunction(
        name=name,
        account_id=ACCOUNTS[rng.randrange(len(ACCOUNTS))],
        region=REGIONS[rng.randrange(len(REGIONS))],
        runtime=_weighted(rng, RUNTIMES),
        architecture="arm64" if rng.random() < 0.3 else "x86_64",
        memory_mb=memory,
        old_memory_mb=old_memory,
        timeout_s=timeout,
        behaviour=behaviour,
        rate_per_hour=rate,
        active_from=active_from,
        active_to=active_to,
    )


@dataclass(frozen=True)
class _Template:
    """Precomputed hourly fact values for ``invocations`` calls at one memory size."""

    invocations: int
    errors: int
    timeouts: int
    out_of_memory: int
    cold_starts: int
    duration_ms_sum: float
    duration_ms_max: float
    billed_duration_ms_sum: float
    max_memory_used_mb_max: int
    init_duration_ms_sum: float
    init_duration_ms_max: float | None
    duration_hist: str
    billed_hist: str
    memory_hist: str
    init_hist: str
    p50: float
    p95: float
    p99: float


def _template(
    rng: random.Random, fn: SyntheticFunction, memory: int, n: int, mem_frac: float
) -> _Template:
    k = min(n, SAMPLE_CAP)
    scale = n / k
    base_ms = {"timeouts": fn.timeout_s * 300.0, "cold": 80.0}.get(fn.behaviour, 120.0)
    # More memory -> more CPU -> faster, down to a floor.
    speed = min(1.0, memory / 1769.0) ** 0.6 if memory < 1769 else 1.0
    durations: list[float] = []
    timeouts = 0
    for _ in range(k):
        d = base_ms * math.exp(rng.gauss(0, 0.6)) / max(speed, 0.15)
        if d >= fn.timeout_s * 1000.0:
            d = fn.timeout_s * 1000.0
            timeouts += 1
        durations.append(round(d, 2))
    used: list[int] = []
    ooms = 0
    for _ in range(k):
        u = int(memory * mem_frac * math.exp(rng.gauss(0, 0.08)))
        if u >= memory:
            u = memory
            ooms += 1
        used.append(max(u, 30))
    cold_rate = {"cold": 0.25}.get(fn.behaviour, 0.02)
    colds = sum(1 for _ in range(k) if rng.random() < cold_rate)
    if n > 0 and colds == 0 and rng.random() < 0.3:
        colds = 1
    inits = [round(150.0 * math.exp(rng.gauss(0, 0.4)), 2) for _ in range(colds)]
    billed = [float(math.ceil(d)) for d in durations]
    err_rate = 0.002 + (0.03 if fn.behaviour == "under_oom" else 0.0)
    # hourly_facts keep timeouts apart from the other errors (CloudWatch's Errors: both)
    errs = sum(1 for _ in range(k) if rng.random() < err_rate) + ooms

    def scaled(values: list[float] | list[int]) -> str:
        hist: dict[str, int] = {}
        for v in values:
            histogram.add(hist, float(v))
        # Scale to ``n`` samples, keeping the total exact (largest remainders).
        exact = {key: c * scale for key, c in hist.items()}
        out = {key: math.floor(v) for key, v in exact.items()}
        missing = round(sum(hist.values()) * scale) - sum(out.values())
        by_remainder = sorted(exact, key=lambda key: (out[key] - exact[key], key))
        for key in by_remainder[:missing]:
            out[key] += 1
        out = {key: c for key, c in out.items() if c}
        return histogram.to_json(out)

    srt = sorted(durations)

    def pct(q: float) -> float:
        return srt[max(0, math.ceil(q * len(srt)) - 1)] if srt else 0.0

    return _Template(
        invocations=n,
        errors=min(n, round(errs * scale)),
        timeouts=round(timeouts * scale),
        out_of_memory=round(ooms * scale),
        cold_starts=min(n, round(colds * scale)),
        duration_ms_sum=sum(durations) * scale,
        duration_ms_max=max(durations) if durations else 0.0,
        billed_duration_ms_sum=sum(billed) * scale,
        max_memory_used_mb_max=max(used) if used else 0,
        init_duration_ms_sum=sum(inits) * scale,
        init_duration_ms_max=max(inits) if inits else None,
        duration_hist=scaled(durations),
        billed_hist=scaled(billed),
        memory_hist=scaled(used),
        init_hist=scaled(inits) if inits else "{}",
        p50=pct(0.5),
        p95=pct(0.95),
        p99=pct(0.99),
    )


_FACT_SQL = (
    "INSERT OR REPLACE INTO hourly_facts (function_id, hour, memory_mb, source, invocations,"
    " errors, timeouts, out_of_memory, cold_starts, duration_ms_sum, duration_ms_max,"
    " billed_duration_ms_sum, max_memory_used_mb_max, init_duration_ms_sum,"
    " init_duration_ms_max, duration_hist, billed_duration_hist, max_memory_used_hist,"
    " init_duration_hist) VALUES (?, ?, ?, 'local', ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
)
_METRIC_SQL = (
    "INSERT OR REPLACE INTO hourly_metrics (function_id, hour, invocations, errors, throttles,"
    " duration_avg_ms, duration_p50_ms, duration_p95_ms, duration_p99_ms, duration_max_ms,"
    " concurrent_executions_max) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
)


def generate_store(
    db: Database,
    functions: int = 2000,
    days: int = 90,
    seed: int = 7,
    end: int = DEFAULT_END,
    *,
    metrics: bool = True,
    metrics_share: float = 0.9,
    refresh_rollups: bool = True,
) -> dict[str, Any]:
    """Write a synthetic fleet of ``functions`` functions with ``days`` days of hourly data
    ending at ``end`` (epoch seconds, floored to the hour) into ``db``.

    Writes inventory (functions with tags, versions, aliases), hourly_facts (source
    'local'), hourly_metrics for ``metrics_share`` of the functions when ``metrics`` (the
    rest are log-only), and a few collection_runs, then refreshes the daily rollups
    (``refresh_rollups``). Returns counts and the plan:
    ``{"functions": n, "hourly_facts": n, "hourly_metrics": n, "plan": [SyntheticFunction]}``.
    """
    rng = random.Random(seed)
    end = end // HOUR_S * HOUR_S
    start = end - days * DAY_S
    conn = db.conn
    plans = [_plan(rng, i, start, end) for i in range(functions)]
    n_facts = n_metrics = 0
    with conn:
        fids: list[int] = []
        for p in plans:
            tags = {"team": p.name.split("-")[0], "env": rng.choice(("prod", "prod", "staging"))}
            if rng.random() < 0.2:
                tags["cost-center"] = f"cc-{rng.randrange(10, 20)}"
            last_modified = start - rng.randrange(0, 400) * DAY_S
            if p.behaviour == "memchange":
                last_modified = start + (end - start) // 2
            arn = f"arn:aws:lambda:{p.region}:{p.account_id}:function:{p.name}"
            cur = conn.execute(
                "INSERT INTO functions (account_id, region, function_name, function_arn,"
                " runtime, architecture, memory_mb, timeout_s, ephemeral_storage_mb,"
                " code_size_bytes, package_type, handler, last_modified, state,"
                " last_update_status, snap_start, layers_json, tags_json, reserved_concurrency,"
                " log_group, log_format, first_seen, last_seen, inventory_at)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, 512, ?, 'Zip', 'app.handler', ?, 'Active',"
                " 'Successful', 'None', '[]', ?, ?, ?, 'Text', ?, ?, ?)"
                " ON CONFLICT (account_id, region, function_name) DO UPDATE SET"
                " memory_mb = excluded.memory_mb RETURNING id",
                (
                    p.account_id,
                    p.region,
                    p.name,
                    arn,
                    p.runtime,
                    p.architecture,
                    p.memory_mb,
                    p.timeout_s,
                    rng.randrange(2_000, 50_000_000),
                    last_modified,
                    json.dumps(tags, sort_keys=True),
                    5 if p.behaviour == "throttled" else None,
                    f"/aws/lambda/{p.name}",
                    p.active_from if p.active_to > p.active_from else None,
                    p.active_to - HOUR_S if p.active_to > p.active_from else None,
                    end,
                ),
            )
            fid = int(cur.fetchone()[0])
            fids.append(fid)
            versions = rng.randrange(0, 4)
            conn.executemany(
                "INSERT OR REPLACE INTO function_versions (function_id, version,"
                " code_size_bytes, last_modified, runtime, memory_mb) VALUES (?, ?, ?, ?, ?, ?)",
                [
                    (
                        fid,
                        v,
                        10_000 + i,
                        last_modified - (versions - i) * DAY_S,
                        p.runtime,
                        p.memory_mb,
                    )
                    for i, v in enumerate(["$LATEST", *[str(k + 1) for k in range(versions)]])
                ],
            )
            if versions:
                routing = (
                    json.dumps({"AdditionalVersionWeights": {str(versions - 1): 0.1}})
                    if versions > 1 and rng.random() < 0.3
                    else None
                )
                conn.execute(
                    "INSERT OR REPLACE INTO function_aliases (function_id, alias_name,"
                    " function_version, routing_json) VALUES (?, 'live', ?, ?)",
                    (fid, str(versions), routing),
                )

        hours = list(range(start, end, HOUR_S))
        for fid, p in zip(fids, plans, strict=True):
            if p.active_to <= p.active_from:
                continue
            frac = {"over": 0.12, "under_oom": 0.93, "normal": 0.55}.get(p.behaviour, 0.45)
            memories = [p.memory_mb] if p.old_memory_mb is None else [p.old_memory_mb, p.memory_mb]
            templates: dict[int, list[_Template]] = {}
            chance = [min(1.0, p.rate_per_hour * lv) for lv in LEVELS]
            for mem in memories:
                f = frac if p.behaviour != "memchange" else min(0.8, 300 / mem)
                templates[mem] = [
                    _template(rng, p, mem, max(1, round(p.rate_per_hour * lv)), f) for lv in LEVELS
                ]
            with_metrics = metrics and rng.random() < metrics_share
            change_at = start + (end - start) // 2
            fact_rows: list[tuple[Any, ...]] = []
            metric_rows: list[tuple[Any, ...]] = []
            level_rng = random.Random(rng.random())
            for hour in hours:
                if hour < p.active_from or hour >= p.active_to:
                    continue
                hod = (hour // HOUR_S) % 24
                busy = 8 <= hod < 20
                r = level_rng.random()
                idx = (2 if r < 0.6 else 3) if busy else (0 if r < 0.6 else 1)
                mem = memories[-1] if hour >= change_at or len(memories) == 1 else memories[0]
                if chance[idx] < 1.0 and level_rng.random() >= chance[idx]:
                    continue
                t = templates[mem][idx]
                fact_rows.append(
                    (
                        fid,
                        hour,
                        mem,
                        t.invocations,
                        t.errors,
                        t.timeouts,
                        t.out_of_memory,
                        t.cold_starts,
                        t.duration_ms_sum,
                        t.duration_ms_max,
                        t.billed_duration_ms_sum,
                        t.max_memory_used_mb_max,
                        t.init_duration_ms_sum,
                        t.init_duration_ms_max,
                        t.duration_hist,
                        t.billed_hist,
                        t.memory_hist,
                        t.init_hist,
                    )
                )
                if with_metrics:
                    throttles = (
                        round(t.invocations * 0.15) if p.behaviour == "throttled" and busy else 0
                    )
                    metric_rows.append(
                        (
                            fid,
                            hour,
                            float(t.invocations),
                            float(t.errors + t.timeouts),
                            float(throttles),
                            t.duration_ms_sum / t.invocations,
                            t.p50,
                            t.p95,
                            t.p99,
                            t.duration_ms_max,
                            float(max(1, round(t.invocations * t.p50 / 3_600_000 * 4))),
                        )
                    )
            conn.executemany(_FACT_SQL, fact_rows)
            conn.executemany(_METRIC_SQL, metric_rows)
            n_facts += len(fact_rows)
            n_metrics += len(metric_rows)

        runs: list[tuple[Any, ...]] = []
        for account in ACCOUNTS:
            for region in REGIONS:
                for k, source in enumerate(("inventory", "metrics", "insights")):
                    for day in (2, 1):
                        t0 = end - day * DAY_S + k * 60
                        denied = account == ACCOUNTS[-1] and source == "insights" and day == 1
                        errors = (
                            [{"action": "logs:StartQuery", "error": "AccessDeniedException"}]
                            if denied
                            else []
                        )
                        runs.append(
                            (
                                t0,
                                t0 + 42,
                                account,
                                region,
                                source,
                                "partial" if denied else "ok",
                                t0 - DAY_S,
                                t0,
                                rng.randrange(10, 800),
                                rng.randrange(3, 60),
                                rng.randrange(0, 5_000_000_000) if source == "insights" else 0,
                                round(rng.uniform(0.0, 0.05), 4),
                                json.dumps(errors),
                            )
                        )
        conn.executemany(
            "INSERT INTO collection_runs (started_at, finished_at, account_id, region, source,"
            " status, window_start, window_end, items, api_calls, bytes_scanned,"
            " estimated_cost_usd, errors_json) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            runs,
        )
    if refresh_rollups:
        rollup.refresh(db)
    return {
        "functions": len(plans),
        "hourly_facts": n_facts,
        "hourly_metrics": n_metrics,
        "start": start,
        "end": end,
        "plan": plans,
    }
