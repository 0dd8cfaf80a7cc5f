"""Synthetic Lambda fleets with a known ground truth: one generator for every use.

A ``SyntheticFunction`` says what a function truly is: its memory use (log-normal, so its
true need, the 99.99th percentile, is known), its duration at any memory size
(``io_ms + cpu_ms / cpu_share(memory)``), its traffic and its planted problem (``kind``,
see ``KINDS``). ``sample_invocation`` draws one invocation from that truth; two writers
turn invocations into data:

- ``generate_store``: hourly facts, metrics and inventory straight into a store (fast:
  a few histogram templates per function, reused hour after hour) for benchmarks,
  dashboard tests and the right-sizing evaluation (``bench/bench_rightsizing.py``);
- ``invocation_messages`` / ``write_local_history``: Lambda platform log lines (text
  format) and CloudWatch-subscription files, for ``lambdascope demo`` (its moto seeding
  lives in ``collectors/demo_fleet.py``).

Fleets: ``build_fleet`` (the demo's 60 functions) and ``plan_fleet`` (any size, the mix
of ``KIND_WEIGHTS``). The same arguments always give the same fleet and the same data.
"""

from __future__ import annotations

import dataclasses
import gzip
import json
import math
import random
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from statistics import NormalDist
from typing import Any

from sqlite_utils import Database

from lambdascope import histcodec, histogram, rollup
from lambdascope.pricing import cpu_share
from lambdascope.timeutil import DAY_S, HOUR_S

DEFAULT_END = 1_767_225_600  # 2026-01-01T00:00:00Z
_NORMAL = NormalDist()
TAIL_Z = _NORMAL.inv_cdf(1 - 1e-4)  # the true need: 99.99th percentile of memory use

KINDS = (
    "right_sized",
    "over",
    "under_oom",
    "timeouts",
    "throttled",
    "cold",
    "memory_changed",
    "stale",
)
KIND_WEIGHTS = (
    ("right_sized", 40),
    ("over", 22),
    ("under_oom", 7),
    ("timeouts", 5),
    ("throttled", 5),
    ("cold", 6),
    ("memory_changed", 5),
    ("stale", 10),
)
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
LEVELS = (0.3, 0.7, 1.0, 1.6)
SAMPLE_CAP = 400  # invocations sampled per template; counts are then scaled up
DURATION_NOISE = 0.3  # log-scale spread of one invocation's duration around the truth

Progress = Callable[[str], None]


@dataclass(frozen=True)
class SyntheticFunction:
    """One generated function and its ground truth (memory in MB, durations in ms).

    Memory use is log-normal with median ``memory_median_mb`` and log-scale spread
    ``memory_sigma``; duration at ``m`` MB is ``io_ms + cpu_ms / cpu_share(m)`` times
    noise. ``old_memory_mb`` was configured until ``last_modified_days_ago`` days before
    the end of the data (``memory_changed``).
    """

    name: str
    account_id: str
    region: str
    kind: str
    runtime: str
    architecture: str
    memory_mb: int
    timeout_s: int
    rate_per_hour: float
    memory_median_mb: float
    memory_sigma: float
    io_ms: float
    cpu_ms: float
    cold_start_rate: float = 0.02
    error_rate: float = 0.002
    old_memory_mb: int | None = None
    versions: int = 1
    aliases: tuple[str, ...] = ()
    last_modified_days_ago: int = 10
    reserved_concurrency: int | None = None
    tags: dict[str, str] = field(default_factory=dict)
    active_days: tuple[float, float] | None = None  # share of the history it ran in

    @property
    def log_group(self) -> str:
        return f"/aws/lambda/{self.name}"

    @property
    def invocations_per_hour(self) -> float:
        return self.rate_per_hour

    @property
    def true_need_mb(self) -> float:
        """The 99.99th percentile of memory use (MB): what a safe size must cover."""
        return self.memory_median_mb * math.exp(TAIL_Z * self.memory_sigma)

    def duration_ms(self, memory_mb: int) -> float:
        """True mean duration (ms) at ``memory_mb`` (before noise)."""
        return self.io_ms + self.cpu_ms / cpu_share(memory_mb)

    def memory_at(self, ts_s: int, end_s: int) -> int:
        """Configured memory (MB) at ``ts_s``: the old size before the change."""
        changed_at = end_s - self.last_modified_days_ago * DAY_S
        if self.old_memory_mb is not None and ts_s < changed_at:
            return self.old_memory_mb
        return self.memory_mb


@dataclass(frozen=True)
class Invocation:
    """One sampled invocation: durations in ms, memory in MB."""

    duration_ms: float
    memory_used_mb: int
    out_of_memory: bool
    timed_out: bool
    init_ms: float | None
    error: bool


def sample_invocation(fn: SyntheticFunction, memory_mb: int, rng: random.Random) -> Invocation:
    """Draw one invocation of ``fn`` configured with ``memory_mb`` from its truth."""
    noise = DURATION_NOISE * (2.0 if fn.kind == "timeouts" else 1.0)
    duration = max(1.0, fn.duration_ms(memory_mb) * math.exp(rng.gauss(0, noise)))
    timed_out = duration >= fn.timeout_s * 1000.0
    if timed_out:
        duration = fn.timeout_s * 1000.0 + rng.uniform(1, 30)
    used = fn.memory_median_mb * math.exp(rng.gauss(0, fn.memory_sigma))
    out_of_memory = used >= memory_mb
    used_mb = memory_mb if out_of_memory else max(30, int(used))
    init = round(rng.uniform(180, 900), 2) if rng.random() < fn.cold_start_rate else None
    error = out_of_memory or timed_out or rng.random() < fn.error_rate
    return Invocation(round(duration, 2), used_mb, out_of_memory, timed_out, init, error)


# ---------------------------------------------------------------- fleets


def _weighted(rng: random.Random, options: tuple[tuple[str, int], ...]) -> str:
    return rng.choices([o for o, _ in options], weights=[w for _, w in options])[0]


def _round_up(memory_mb: float) -> int:
    return int(min(10240, max(128, math.ceil(memory_mb / 64) * 64)))


def _durations(rng: random.Random, memory_mb: int, mean_ms: float) -> tuple[float, float]:
    """(io_ms, cpu_ms) whose sum at ``memory_mb`` is ``mean_ms``: mostly I/O-bound
    functions, some mixed, some CPU-bound (the CPU part scales with the CPU share)."""
    profile = rng.random()
    if profile < 0.5:
        cpu_fraction = rng.uniform(0.0, 0.2)
    elif profile < 0.8:
        cpu_fraction = rng.uniform(0.3, 0.6)
    else:
        cpu_fraction = rng.uniform(0.7, 0.95)
    return mean_ms * (1 - cpu_fraction), mean_ms * cpu_fraction * cpu_share(memory_mb)


def _memory_truth(rng: random.Random, kind: str, memory_mb: int) -> tuple[float, float]:
    """(median MB, sigma) of memory use for a function of ``kind`` at ``memory_mb``."""
    sigma = rng.uniform(0.03, 0.15)
    tail = math.exp(TAIL_Z * sigma)
    if kind == "over":
        need = memory_mb * rng.uniform(0.05, 0.4)
    elif kind == "under_oom":
        # the configured size sits at the 97th to 99.9th percentile: errors now and then
        z = NormalDist().inv_cdf(rng.uniform(0.97, 0.999))
        return memory_mb / math.exp(z * sigma), sigma
    elif kind == "right_sized":
        # sized by someone who measured: 5-20 % above the need, within two 64 MB steps
        need = min(memory_mb / 1.1 - rng.uniform(0, 100), memory_mb / rng.uniform(1.05, 1.2))
    else:
        need = memory_mb * rng.uniform(0.3, 0.7)
    return max(20.0, need / tail), sigma


def plan_fleet(
    functions: int, seed: int = 7, *, days: int = 90, kinds: tuple[tuple[str, int], ...] = ()
) -> list[SyntheticFunction]:
    """``functions`` functions over three accounts and regions, kinds drawn with
    ``kinds`` weights (default ``KIND_WEIGHTS``), each with its ground truth."""
    rng = random.Random(seed)
    return [_plan(rng, index, days, kinds or KIND_WEIGHTS) for index in range(functions)]


def _plan(
    rng: random.Random, index: int, days: int, weights: tuple[tuple[str, int], ...]
) -> SyntheticFunction:
    kind = _weighted(rng, weights)
    team = TEAMS[index % len(TEAMS)]
    name = f"{team}-{rng.choice(('api', 'worker', 'etl', 'cron', 'hook', 'auth'))}-{index:04d}"
    memory = rng.choice(MEMORY_SIZES[:7])
    if kind == "over":
        memory = rng.choice((1024, 1536, 2048, 3008, 4096, 10240))
    elif kind == "right_sized":
        memory = _round_up(rng.choice(MEMORY_SIZES[:6]) * rng.uniform(0.6, 1.0))
    old_memory = None
    if kind == "memory_changed":
        old_memory = memory
        memory = rng.choice([m for m in MEMORY_SIZES[:7] if m != memory])
    timeout = rng.choice(TIMEOUTS_S)
    if kind == "timeouts":
        timeout = rng.choice((3, 10, 30))
    rate = min(max(math.exp(rng.gauss(2.5, 1.8)), 0.05), 20_000.0)
    median, sigma = _memory_truth(rng, kind, memory)
    if kind == "memory_changed":  # fits the new size with room, as a deliberate change
        median, sigma = min(0.8 * memory, 300.0) / math.exp(TAIL_Z * 0.05), 0.05
    mean_ms = {"timeouts": timeout * 300.0, "cold": 80.0}.get(kind, 120.0)
    io_ms, cpu_ms = _durations(rng, memory, mean_ms * math.exp(rng.gauss(0, 0.8)))
    active: tuple[float, float] | None = None
    if kind == "stale":
        active = (0.0, 0.0) if rng.random() < 0.4 else (0.0, rng.uniform(0.05, 0.4))
    return SyntheticFunction(
        name=name,
        account_id=ACCOUNTS[rng.randrange(len(ACCOUNTS))],
        region=REGIONS[rng.randrange(len(REGIONS))],
        kind=kind,
        runtime=_weighted(rng, RUNTIMES),
        architecture="arm64" if rng.random() < 0.3 else "x86_64",
        memory_mb=memory,
        timeout_s=timeout,
        rate_per_hour=rate,
        memory_median_mb=median,
        memory_sigma=sigma,
        io_ms=io_ms,
        cpu_ms=cpu_ms,
        cold_start_rate=0.25 if kind == "cold" else 0.02,
        error_rate=0.002 + (0.03 if kind == "under_oom" else 0.0),
        old_memory_mb=old_memory,
        last_modified_days_ago=days // 2 if kind == "memory_changed" else days + 100,
        reserved_concurrency=5 if kind == "throttled" else None,
        active_days=active,
    )


_DEMO_RUNTIMES = (
    "python3.12",
    "python3.11",
    "nodejs20.x",
    "nodejs22.x",
    "java21",
    "provided.al2023",
)
_DEMO_DEPRECATED = ("python3.7", "nodejs14.x", "go1.x")
_DEMO_TEAMS = ("payments", "catalog", "search", "identity", "growth")
_DEMO_VERBS = ("api", "worker", "ingest", "resize", "notify", "sync", "export", "webhook", "cron")
DEMO_ACCOUNTS = ("111111111111", "222222222222")
DEMO_REGIONS = ("us-east-1", "eu-west-1")


def build_fleet(seed: int = 7) -> list[SyntheticFunction]:
    """The demo fleet: 60 functions over 2 accounts x 2 regions with planted problems."""
    rng = random.Random(seed)
    fleet: list[SyntheticFunction] = []
    places = [(a, r) for a in DEMO_ACCOUNTS for r in DEMO_REGIONS]
    kinds = (
        ["over"] * 12
        + ["under_oom"] * 4
        + ["timeouts"] * 3
        + ["throttled"] * 2
        + ["cold"] * 4
        + ["memory_changed"] * 1
        + ["stale"] * 8
        + ["right_sized"] * 26
    )
    for n, kind in enumerate(kinds):
        account_id, region = places[n % len(places)]
        team = _DEMO_TEAMS[n % len(_DEMO_TEAMS)]
        name = f"{team}-{_DEMO_VERBS[n % len(_DEMO_VERBS)]}-{kind.replace('_', '-')}-{n:02d}"
        runtime = _DEMO_DEPRECATED[n % 3] if n % 9 == 4 else _DEMO_RUNTIMES[n % len(_DEMO_RUNTIMES)]
        arch = "arm64" if n % 3 == 0 else "x86_64"
        fleet.append(_demo_shape(rng, kind, name, account_id, region, runtime, arch, team))
    return fleet


def _demo_shape(
    rng: random.Random,
    kind: str,
    name: str,
    account_id: str,
    region: str,
    runtime: str,
    arch: str,
    team: str,
) -> SyntheticFunction:
    base: dict[str, Any] = {
        "name": name,
        "account_id": account_id,
        "region": region,
        "kind": kind,
        "runtime": runtime,
        "architecture": arch,
        "tags": {"team": team, "env": "prod"},
        "rate_per_hour": float(rng.randint(2, 7)),
        "timeout_s": 30,
    }
    duration = rng.uniform(40, 400)
    memory, used, sigma = rng.choice((256, 512, 1024)), 0.0, 0.04
    if kind == "over":
        memory, used = rng.choice((1024, 2048, 3008)), float(rng.randint(70, 140))
    elif kind == "under_oom":
        # the limit at about the 96th percentile: one invocation in 25 runs out of memory
        memory, used, sigma, duration = 256, 256 / math.exp(1.75 * 0.09), 0.09, 900.0
        base["error_rate"] = 0.02
    elif kind == "timeouts":
        memory, used, duration = 512, 300.0, 1500.0
        base.update(timeout_s=3, error_rate=0.05)
    elif kind == "throttled":
        memory, used = 512, 260.0
        base.update(rate_per_hour=12.0, reserved_concurrency=2)
    elif kind == "cold":
        memory, used = 1024, 600.0
        base.update(rate_per_hour=1.0, cold_start_rate=0.7)
    elif kind == "memory_changed":
        memory, used = 512, 180.0
        base.update(old_memory_mb=2048, last_modified_days_ago=7)
    elif kind == "stale":
        memory, used = 256, 60.0
        base.update(
            rate_per_hour=0.0,
            versions=rng.randint(6, 12),
            aliases=("live", "previous"),
            last_modified_days_ago=rng.randint(200, 700),
        )
    else:
        used = memory * rng.uniform(0.6, 0.8)
    if kind == "timeouts":
        io_ms, cpu_ms = duration, 0.0
    else:
        io_ms, cpu_ms = duration * 0.5, duration * 0.5 * cpu_share(memory)
    return SyntheticFunction(
        **base,
        memory_mb=memory,
        memory_median_mb=used,
        memory_sigma=sigma,
        io_ms=io_ms,
        cpu_ms=cpu_ms,
    )


# ---------------------------------------------------------------- log lines


def _request_id(rng: random.Random) -> str:
    digits = f"{rng.getrandbits(128):032x}"
    return f"{digits[:8]}-{digits[8:12]}-{digits[12:16]}-{digits[16:20]}-{digits[20:]}"


def memory_at(function: SyntheticFunction, ts_s: int, now_s: int) -> int:
    """Configured memory (MB) at ``ts_s``: the old size before the change."""
    return function.memory_at(ts_s, now_s)


def invocation_messages(
    function: SyntheticFunction, start_s: int, end_s: int, now_s: int, rng: random.Random
) -> Iterator[tuple[int, str]]:
    """(epoch ms, message) platform log lines for ``[start_s, end_s)``, hour by hour."""
    for hour in range(start_s - start_s % 3600, end_s, 3600):
        # a daily rhythm: busier in the working day, UTC
        busy = 1.6 if 8 <= (hour // 3600) % 24 <= 18 else 0.5
        count = int(function.rate_per_hour * busy + rng.random())
        for _ in range(count):
            ts_ms = (hour + rng.randrange(3600)) * 1000 + rng.randrange(1000)
            if not start_s * 1000 <= ts_ms < end_s * 1000:
                continue
            yield from _one_invocation(
                function, ts_ms, function.memory_at(ts_ms // 1000, now_s), rng
            )


def _one_invocation(
    function: SyntheticFunction, ts_ms: int, memory_mb: int, rng: random.Random
) -> Iterator[tuple[int, str]]:
    rid = _request_id(rng)
    call = sample_invocation(function, memory_mb, rng)
    status = ""
    yield ts_ms, f"START RequestId: {rid} Version: $LATEST"
    if call.out_of_memory:
        yield ts_ms + 5, f"{rid}\tRuntime.OutOfMemory: memory limit exceeded"
        status = "\tStatus: error\tError Type: Runtime.OutOfMemory"
    elif call.timed_out:
        done = ts_ms + int(call.duration_ms)
        yield (
            done,
            f"{iso_ms(done)} {rid} Task timed out after {call.duration_ms / 1000:.2f} seconds",
        )
        status = "\tStatus: timeout"
    init = "" if call.init_ms is None else f"\tInit Duration: {call.init_ms:.2f} ms"
    end = ts_ms + int(call.duration_ms)
    yield end, f"END RequestId: {rid}"
    yield (
        end,
        (
            f"REPORT RequestId: {rid}\tDuration: {call.duration_ms:.2f} ms\t"
            f"Billed Duration: {int(call.duration_ms) + 1} ms\tMemory Size: {memory_mb} MB\t"
            f"Max Memory Used: {call.memory_used_mb} MB{init}{status}\t"
        ),
    )


def iso_ms(ts_ms: int) -> str:
    """Epoch ms -> ``YYYY-MM-DDTHH:MM:SS.mmmZ``."""
    return datetime.fromtimestamp(ts_ms / 1000, UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


STALE_LAST_RUN_DAYS = 45


def write_local_history(
    fleet: list[SyntheticFunction],
    directory: Path,
    *,
    now_s: int,
    days: int = 15,
    recent_hours: int = 3,
    seed: int = 7,
    progress: Progress | None = None,
) -> dict[tuple[str, str], Path]:
    """Write the history before the recent hours as gzip'd CloudWatch-subscription JSON.

    One file per function and day under ``<dir>/<account>/<region>/``; returns the
    directory of each (account, region). Reports the line count through ``progress``.
    """
    end_s = now_s - now_s % 3600 - recent_hours * 3600
    start_s = end_s - days * 86400
    roots: dict[tuple[str, str], Path] = {}
    lines = 0
    for function in fleet:
        rng = random.Random(f"{seed}:{function.name}")
        root = directory / function.account_id / function.region
        roots[(function.account_id, function.region)] = root
        root.mkdir(parents=True, exist_ok=True)
        for day_start in range(start_s, end_s, 86400):
            events = list(
                invocation_messages(function, day_start, min(day_start + 86400, end_s), now_s, rng)
            )
            if not events:
                continue
            lines += len(events)
            _write_envelopes(
                root / f"{function.name}-{day_start // 86400}.json.gz", function, events
            )
        if function.kind == "stale":
            # Stale functions last ran weeks before the window: one busy day long ago.
            once = dataclasses.replace(function, rate_per_hour=3.0)
            day_start = end_s - STALE_LAST_RUN_DAYS * 86400
            events = list(invocation_messages(once, day_start, day_start + 86400, now_s, rng))
            lines += len(events)
            _write_envelopes(
                root / f"{function.name}-{day_start // 86400}.json.gz", function, events
            )
    if progress:
        progress(f"wrote {lines} local log lines ({days} days) under {directory}")
    return roots


def _write_envelopes(
    path: Path, function: SyntheticFunction, events: list[tuple[int, str]]
) -> None:
    envelope = {
        "messageType": "DATA_MESSAGE",
        "owner": function.account_id,
        "logGroup": function.log_group,
        "logStream": "2026/01/01/[$LATEST]demo",
        "subscriptionFilters": ["lambdascope-demo"],
        "logEvents": [
            {"id": str(n), "timestamp": ts, "message": message}
            for n, (ts, message) in enumerate(sorted(events))
        ],
    }
    with gzip.open(path, "wt", encoding="utf-8") as handle:
        handle.write(json.dumps(envelope) + "\n")


# ---------------------------------------------------------------- the store


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
    duration_hist: bytes
    billed_hist: bytes
    memory_hist: bytes
    init_hist: bytes
    p50: float
    p95: float
    p99: float


def _scaled(values: list[float], scale: float) -> bytes:
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
    return histcodec.encode({key: c for key, c in out.items() if c})


def _template(rng: random.Random, fn: SyntheticFunction, memory: int, n: int) -> _Template:
    k = min(n, SAMPLE_CAP)
    scale = n / k
    calls = [sample_invocation(fn, memory, rng) for _ in range(k)]
    if n > 0 and not any(c.init_ms for c in calls) and rng.random() < 0.3:
        first = calls[0]
        calls[0] = dataclasses.replace(first, init_ms=round(rng.uniform(180, 900), 2))
    durations = [c.duration_ms for c in calls]
    used = [float(c.memory_used_mb) for c in calls]
    inits = [c.init_ms for c in calls if c.init_ms is not None]
    billed = [float(math.ceil(d)) for d in durations]
    srt = sorted(durations)

    def pct(q: float) -> float:
        return srt[max(0, math.ceil(q * len(srt)) - 1)] if srt else 0.0

    return _Template(
        invocations=n,
        # hourly_facts keep timeouts apart from the other errors (CloudWatch's Errors: both)
        errors=min(n, round(sum(c.error and not c.timed_out for c in calls) * scale)),
        timeouts=round(sum(c.timed_out for c in calls) * scale),
        out_of_memory=round(sum(c.out_of_memory for c in calls) * scale),
        cold_starts=min(n, round(len(inits) * scale)),
        duration_ms_sum=sum(durations) * scale,
        duration_ms_max=max(durations) if durations else 0.0,
        billed_duration_ms_sum=sum(billed) * scale,
        max_memory_used_mb_max=int(max(used)) if used else 0,
        init_duration_ms_sum=sum(inits) * scale,
        init_duration_ms_max=max(inits) if inits else None,
        duration_hist=_scaled(durations, scale),
        billed_hist=_scaled(billed, scale),
        memory_hist=_scaled(used, scale),
        init_hist=_scaled(inits, scale) if inits else histcodec.EMPTY,
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
    fleet: list[SyntheticFunction] | None = None,
) -> dict[str, Any]:
    """Write a synthetic fleet of ``functions`` functions with ``days`` days of hourly data
    ending at ``end`` (epoch seconds, floored to the hour) into ``db``.

    Writes inventory (functions with tags, versions, aliases), hourly_facts (source
    'local'), hourly_metrics for ``metrics_share`` of the functions when ``metrics`` (the
    rest are log-only), and a few collection_runs, then refreshes the daily rollups
    (``refresh_rollups``). ``fleet``: these functions instead of ``plan_fleet``'s.
    Returns counts and the plan:
    ``{"functions": n, "hourly_facts": n, "hourly_metrics": n, "plan": [SyntheticFunction]}``.
    """
    end = end // HOUR_S * HOUR_S
    start = end - days * DAY_S
    conn = db.conn
    plans = fleet if fleet is not None else plan_fleet(functions, seed, days=days)
    rng = random.Random(seed + 1)
    n_facts = n_metrics = 0
    with conn:
        fids: list[int] = []
        for p in plans:
            tags = {"team": p.name.split("-")[0], "env": rng.choice(("prod", "prod", "staging"))}
            if rng.random() < 0.2:
                tags["cost-center"] = f"cc-{rng.randrange(10, 20)}"
            last_modified = start - rng.randrange(0, 400) * DAY_S
            if p.kind == "memory_changed":
                last_modified = end - p.last_modified_days_ago * DAY_S
            active_from, active_to = _active(p, start, end)
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
                    p.reserved_concurrency,
                    f"/aws/lambda/{p.name}",
                    active_from if active_to > active_from else None,
                    active_to - HOUR_S if active_to > active_from else None,
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
            active_from, active_to = _active(p, start, end)
            if active_to <= active_from:
                continue
            memories = [p.memory_mb] if p.old_memory_mb is None else [p.old_memory_mb, p.memory_mb]
            # per memory size and traffic level, templates holding SAMPLE_CAP invocations in
            # all: quiet functions get many small ones, so their hours are not all alike
            templates: dict[int, list[list[_Template]]] = {}
            chance = [min(1.0, p.rate_per_hour * lv) for lv in LEVELS]
            for mem in memories:
                templates[mem] = []
                for lv in LEVELS:
                    n = max(1, round(p.rate_per_hour * lv))
                    variants = math.ceil(SAMPLE_CAP / min(n, SAMPLE_CAP))
                    templates[mem].append([_template(rng, p, mem, n) for _ in range(variants)])
            with_metrics = metrics and rng.random() < metrics_share
            fact_rows: list[tuple[Any, ...]] = []
            metric_rows: list[tuple[Any, ...]] = []
            level_rng = random.Random(rng.random())
            for hour in hours:
                if hour < active_from or hour >= active_to:
                    continue
                hod = (hour // HOUR_S) % 24
                busy = 8 <= hod < 20
                r = level_rng.random()
                idx = (2 if r < 0.6 else 3) if busy else (0 if r < 0.6 else 1)
                mem = p.memory_at(hour, end)
                if chance[idx] < 1.0 and level_rng.random() >= chance[idx]:
                    continue
                choices = templates[mem][idx]
                t = choices[level_rng.randrange(len(choices))] if len(choices) > 1 else choices[0]
                if t.invocations > SAMPLE_CAP:
                    t = _with_hourly_peak(t, p, mem, level_rng)
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
                    throttles = round(t.invocations * 0.15) if p.kind == "throttled" and busy else 0
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


def _with_hourly_peak(
    t: _Template, fn: SyntheticFunction, memory_mb: int, rng: random.Random
) -> _Template:
    """A busy hour's template with its own peak memory use: a template scaled from
    SAMPLE_CAP samples to ``t.invocations`` has the peak of SAMPLE_CAP samples, and reusing
    it hour after hour would give the window the peak of a few thousand invocations while
    its counts say hundreds of thousands. The hour's peak is drawn as the maximum of
    ``t.invocations`` samples (the top uniform of n is about 1 - E/n, E exponential)."""
    tail = max(-math.log(1.0 - rng.random()), 1e-12) / t.invocations
    peak = fn.memory_median_mb * math.exp(fn.memory_sigma * _NORMAL.inv_cdf(1.0 - tail))
    if peak <= t.max_memory_used_mb_max:
        return t
    out_of_memory = peak >= memory_mb
    peak = float(memory_mb) if out_of_memory else peak
    hist = histcodec.decode(t.memory_hist)
    top = max(hist, key=histogram.bucket_value)
    hist[top] -= 1
    if not hist[top]:
        del hist[top]
    histogram.add(hist, peak)
    return dataclasses.replace(
        t,
        memory_hist=histcodec.encode(hist),
        max_memory_used_mb_max=int(peak),
        out_of_memory=t.out_of_memory + out_of_memory,
        errors=min(t.invocations, t.errors + out_of_memory),
    )


def _active(p: SyntheticFunction, start: int, end: int) -> tuple[int, int]:
    """The hours [from, to) a function ran in (stale ones stopped early, or never ran)."""
    if p.active_days is None:
        return start, end
    first, last = p.active_days
    return (
        start + int((end - start) * first) // HOUR_S * HOUR_S,
        start + int((end - start) * last) // HOUR_S * HOUR_S,
    )
