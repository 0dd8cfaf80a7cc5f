"""A simulated fleet for ``lambdascope demo``: the spec, its local log history, moto seeding.

Which part goes through which path:
- inventory (functions, versions, aliases, concurrency, tags) is created in an in-process
  moto server and read back by the real inventory collector over HTTP;
- CloudWatch metrics for the last ``RECENT_HOURS`` hours are put into moto and read by the
  real metrics collector (moto's GetMetricData is too slow for weeks of data);
- platform log lines for the last ``RECENT_HOURS`` hours are put into moto's CloudWatch Logs
  and read by the filter-mode log collector (moto cannot run Logs Insights statistics);
- the 14-day history before that is written as CloudWatch-subscription JSON files and read
  by the real local ingest path.
"""

from __future__ import annotations

import dataclasses
import gzip
import json
import math
import random
import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ACCOUNTS = ("111111111111", "222222222222")
REGIONS = ("us-east-1", "eu-west-1")
HISTORY_DAYS = 15
RECENT_HOURS = 3
SEED = 7
STALE_LAST_RUN_DAYS = 45
ROLE_NAME = "lambdascope-demo"

Progress = Callable[[str], None]


@dataclass(frozen=True)
class DemoFunction:
    """One simulated function and how it behaves (durations in ms, memory in MB)."""

    name: str
    account_id: str
    region: str
    kind: (
        str  # right_sized | over | under_oom | timeouts | throttled | cold | memory_changed | stale
    )
    runtime: str
    architecture: str
    memory_mb: int
    timeout_s: int
    invocations_per_hour: int
    duration_ms: float
    memory_used_mb: int
    cold_start_rate: float = 0.02
    error_rate: float = 0.0
    old_memory_mb: int | None = None  # memory before the mid-window change
    versions: int = 1
    aliases: tuple[str, ...] = ()
    last_modified_days_ago: int = 10
    reserved_concurrency: int | None = None
    tags: dict[str, str] = field(default_factory=dict)

    @property
    def log_group(self) -> str:
        return f"/aws/lambda/{self.name}"


_RUNTIMES = ("python3.12", "python3.11", "nodejs20.x", "nodejs22.x", "java21", "provided.al2023")
_DEPRECATED = ("python3.7", "nodejs14.x", "go1.x")
_TEAMS = ("payments", "catalog", "search", "identity", "growth")
_VERBS = ("api", "worker", "ingest", "resize", "notify", "sync", "export", "webhook", "cron")


def build_fleet(seed: int = SEED) -> list[DemoFunction]:
    """The demo fleet: 60 functions over 2 accounts x 2 regions with planted problems."""
    rng = random.Random(seed)
    fleet: list[DemoFunction] = []
    places = [(a, r) for a in ACCOUNTS for r in REGIONS]
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
        team = _TEAMS[n % len(_TEAMS)]
        name = f"{team}-{_VERBS[n % len(_VERBS)]}-{kind.replace('_', '-')}-{n:02d}"
        runtime = _DEPRECATED[n % 3] if n % 9 == 4 else _RUNTIMES[n % len(_RUNTIMES)]
        arch = "arm64" if n % 3 == 0 else "x86_64"
        fleet.append(_shape(rng, kind, name, account_id, region, runtime, arch, team))
    return fleet


def _shape(
    rng: random.Random,
    kind: str,
    name: str,
    account_id: str,
    region: str,
    runtime: str,
    arch: str,
    team: str,
) -> DemoFunction:
    base: dict[str, Any] = {
        "name": name,
        "account_id": account_id,
        "region": region,
        "kind": kind,
        "runtime": runtime,
        "architecture": arch,
        "tags": {"team": team, "env": "prod"},
        "invocations_per_hour": rng.randint(2, 7),
        "duration_ms": rng.uniform(40, 400),
        "timeout_s": 30,
    }
    if kind == "over":
        memory = rng.choice((1024, 2048, 3008))
        return DemoFunction(**base, memory_mb=memory, memory_used_mb=rng.randint(70, 140))
    if kind == "under_oom":
        base["duration_ms"] = 900.0
        return DemoFunction(**base, memory_mb=256, memory_used_mb=250, error_rate=0.08)
    if kind == "timeouts":
        base.update(timeout_s=3, duration_ms=2400.0)
        return DemoFunction(**base, memory_mb=512, memory_used_mb=300, error_rate=0.1)
    if kind == "throttled":
        base["invocations_per_hour"] = 12
        return DemoFunction(**base, memory_mb=512, memory_used_mb=260, reserved_concurrency=2)
    if kind == "cold":
        base["invocations_per_hour"] = 1
        return DemoFunction(**base, memory_mb=1024, memory_used_mb=600, cold_start_rate=0.7)
    if kind == "memory_changed":
        return DemoFunction(
            **base, memory_mb=512, memory_used_mb=180, old_memory_mb=2048, last_modified_days_ago=7
        )
    if kind == "stale":
        base["invocations_per_hour"] = 0
        return DemoFunction(
            **base,
            memory_mb=256,
            memory_used_mb=0,
            versions=rng.randint(6, 12),
            aliases=("live", "previous"),
            last_modified_days_ago=rng.randint(200, 700),
        )
    memory = rng.choice((256, 512, 1024))
    used = int(memory * rng.uniform(0.6, 0.8))
    return DemoFunction(**base, memory_mb=memory, memory_used_mb=used)


# ---------------------------------------------------------------- log lines


def _request_id(rng: random.Random) -> str:
    digits = f"{rng.getrandbits(128):032x}"
    return f"{digits[:8]}-{digits[8:12]}-{digits[12:16]}-{digits[16:20]}-{digits[20:]}"


def memory_at(function: DemoFunction, ts_s: int, now_s: int) -> int:
    """Configured memory (MB) at ``ts_s``: the old size before the mid-window change."""
    changed_at = now_s - function.last_modified_days_ago * 86400
    if function.old_memory_mb is not None and ts_s < changed_at:
        return function.old_memory_mb
    return function.memory_mb


def invocation_messages(
    function: DemoFunction, start_s: int, end_s: int, now_s: int, rng: random.Random
) -> Iterator[tuple[int, str]]:
    """(epoch ms, message) platform log lines for ``[start_s, end_s)``, hour by hour."""
    for hour in range(start_s - start_s % 3600, end_s, 3600):
        # a daily rhythm: busier in the working day, UTC
        busy = 1.6 if 8 <= (hour // 3600) % 24 <= 18 else 0.5
        count = int(function.invocations_per_hour * busy + rng.random())
        for _ in range(count):
            ts_ms = (hour + rng.randrange(3600)) * 1000 + rng.randrange(1000)
            if not start_s * 1000 <= ts_ms < end_s * 1000:
                continue
            yield from _one_invocation(
                function, ts_ms, memory_at(function, ts_ms // 1000, now_s), rng
            )


def _one_invocation(
    function: DemoFunction, ts_ms: int, memory_mb: int, rng: random.Random
) -> Iterator[tuple[int, str]]:
    rid = _request_id(rng)
    # CPU scales with memory: the function that lost memory mid-window got slower
    scale = (function.old_memory_mb or memory_mb) / memory_mb
    duration = max(1.0, rng.lognormvariate(0, 0.35) * function.duration_ms * min(scale, 2.0))
    used = max(40, int(function.memory_used_mb * rng.uniform(0.85, 1.0)))
    status = ""
    yield ts_ms, f"START RequestId: {rid} Version: $LATEST"
    if function.kind == "under_oom" and rng.random() < function.error_rate:
        used = memory_mb
        yield ts_ms + 5, f"{rid}\tRuntime.OutOfMemory: memory limit exceeded"
        status = "\tStatus: error\tError Type: Runtime.OutOfMemory"
    elif function.kind == "timeouts" and rng.random() < function.error_rate:
        duration = function.timeout_s * 1000.0 + rng.uniform(1, 30)
        stamp = _iso(ts_ms + int(duration))
        yield (
            ts_ms + int(duration),
            f"{stamp} {rid} Task timed out after {duration / 1000:.2f} seconds",
        )
        status = "\tStatus: timeout"
    init = ""
    if rng.random() < function.cold_start_rate:
        init = f"\tInit Duration: {rng.uniform(180, 900):.2f} ms"
    end = ts_ms + int(duration)
    yield end, f"END RequestId: {rid}"
    yield (
        end,
        (
            f"REPORT RequestId: {rid}\tDuration: {duration:.2f} ms\t"
            f"Billed Duration: {int(duration) + 1} ms\tMemory Size: {memory_mb} MB\t"
            f"Max Memory Used: {used} MB{init}{status}\t"
        ),
    )


def _iso(ts_ms: int) -> str:
    from datetime import UTC, datetime

    return datetime.fromtimestamp(ts_ms / 1000, UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def write_local_history(
    fleet: list[DemoFunction],
    directory: Path,
    *,
    now_s: int,
    days: int = HISTORY_DAYS,
    recent_hours: int = RECENT_HOURS,
    seed: int = SEED,
    progress: Progress | None = None,
) -> dict[tuple[str, str], Path]:
    """Write the history before the recent hours as gzip'd CloudWatch-subscription JSON.

    One file per function and day under ``<dir>/<account>/<region>/``; returns the
    directory of each (account, region). Returns the line count in ``progress`` messages.
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
            once = dataclasses.replace(function, invocations_per_hour=3)
            day_start = end_s - STALE_LAST_RUN_DAYS * 86400
            events = list(invocation_messages(once, day_start, day_start + 86400, now_s, rng))
            lines += len(events)
            _write_envelopes(
                root / f"{function.name}-{day_start // 86400}.json.gz", function, events
            )
    if progress:
        progress(f"wrote {lines} local log lines ({days} days) under {directory}")
    return roots


def _write_envelopes(path: Path, function: DemoFunction, events: list[tuple[int, str]]) -> None:
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


# ---------------------------------------------------------------- moto seeding


def _zip_bytes() -> bytes:
    import io
    import zipfile

    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("index.py", "def handler(event, context):\n    return event\n")
    return buffer.getvalue()


def configure_moto(endpoint: str) -> None:
    """Reset the moto server, then have it run Lambda without Docker (before create_function)."""
    import urllib.request

    # moto keeps its state per process, not per server: start from an empty fleet.
    reset = urllib.request.Request(f"{endpoint}/moto-api/reset", method="POST")  # noqa: S310
    with urllib.request.urlopen(reset, timeout=30) as response:  # noqa: S310 - local moto
        response.read()
    request = urllib.request.Request(  # noqa: S310 - the in-process moto server
        f"{endpoint}/moto-api/config",
        data=json.dumps({"lambda": {"use_docker": False}}).encode(),
        headers={"Content-Type": "application/json"},
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310 - local moto
        response.read()


def account_session(endpoint: str, account_id: str, region: str) -> Any:
    """A boto3 session whose calls land in ``account_id`` (moto honours assumed roles)."""
    import boto3

    base = boto3.Session(aws_access_key_id="demo", aws_secret_access_key="demo", region_name=region)  # noqa: S106
    sts = base.client("sts", endpoint_url=endpoint)
    creds = sts.assume_role(RoleArn=role_arn(account_id), RoleSessionName="lambdascope-demo")[
        "Credentials"
    ]
    return boto3.Session(
        aws_access_key_id=creds["AccessKeyId"],
        aws_secret_access_key=creds["SecretAccessKey"],
        aws_session_token=creds["SessionToken"],
        region_name=region,
    )


def role_arn(account_id: str) -> str:
    """The role the demo assumes in each account (and the functions' execution role)."""
    return f"arn:aws:iam::{account_id}:role/{ROLE_NAME}"


def seed_moto(
    endpoint: str,
    fleet: list[DemoFunction],
    *,
    now_s: int,
    recent_hours: int = RECENT_HOURS,
    seed: int = SEED,
    progress: Progress | None = None,
) -> None:
    """Create the fleet in moto and put its recent metrics and log lines."""
    configure_moto(endpoint)
    code = _zip_bytes()
    for account_id in ACCOUNTS:
        iam = account_session(endpoint, account_id, "us-east-1").client(
            "iam", endpoint_url=endpoint
        )
        iam.create_role(
            RoleName=ROLE_NAME,
            AssumeRolePolicyDocument=json.dumps({"Version": "2012-10-17", "Statement": []}),
        )
        for region in REGIONS:
            members = [f for f in fleet if f.account_id == account_id and f.region == region]
            session = account_session(endpoint, account_id, region)
            _seed_functions(session, endpoint, members, code, now_s)
            _seed_metrics(session, endpoint, members, now_s, recent_hours, seed)
            _seed_logs(session, endpoint, members, now_s, recent_hours, seed)
            if progress:
                progress(f"moto: {len(members)} functions in {account_id}/{region}")


def _seed_functions(
    session: Any, endpoint: str, members: list[DemoFunction], code: bytes, now_s: int
) -> None:
    from moto.awslambda.utils import get_backend as lambda_backend

    client = session.client("lambda", endpoint_url=endpoint)
    for function in members:
        account_id, region = function.account_id, function.region
        client.create_function(
            FunctionName=function.name,
            Runtime=function.runtime,
            Role=role_arn(account_id),
            Handler="index.handler",
            Code={"ZipFile": code},
            MemorySize=function.old_memory_mb or function.memory_mb,
            Timeout=function.timeout_s,
            Architectures=[function.architecture],
            Tags=function.tags,
        )
        for n in range(1, function.versions):
            client.update_function_configuration(
                FunctionName=function.name, Description=f"release {n}"
            )
            client.publish_version(FunctionName=function.name, Description=f"release {n}")
        if function.old_memory_mb is not None:
            client.update_function_configuration(
                FunctionName=function.name, MemorySize=function.memory_mb
            )
        for n, alias in enumerate(function.aliases):
            version = str(max(1, function.versions - 1 - n))
            client.create_alias(FunctionName=function.name, Name=alias, FunctionVersion=version)
        if function.reserved_concurrency is not None:
            client.put_function_concurrency(
                FunctionName=function.name,
                ReservedConcurrentExecutions=function.reserved_concurrency,
            )
        # moto stamps LastModified with the wall clock and has no API to change it:
        # set the simulated age on the in-process backend.
        modified = _iso((now_s - function.last_modified_days_ago * 86400) * 1000)
        stored = lambda_backend(account_id, region)._lambdas._functions[function.name]
        for version in [stored["latest"], *stored["versions"]]:
            version.last_modified = modified


def _seed_metrics(
    session: Any,
    endpoint: str,
    members: list[DemoFunction],
    now_s: int,
    recent_hours: int,
    seed: int,
) -> None:
    from botocore.config import Config

    client = session.client(
        "cloudwatch", endpoint_url=endpoint, config=Config(disable_request_compression=True)
    )
    data: list[dict[str, Any]] = []
    start = now_s - now_s % 3600 - recent_hours * 3600
    for function in members:
        rng = random.Random(f"{seed}:metrics:{function.name}")
        dims = [{"Name": "FunctionName", "Value": function.name}]
        for hour in range(start, now_s, 3600):
            reports = [
                m
                for _, m in invocation_messages(function, hour, hour + 3600, now_s, rng)
                if m.startswith("REPORT")
            ]
            if not reports:
                continue
            errors = sum("Status:" in m for m in reports)
            durations = [float(m.split("Duration: ")[1].split(" ms")[0]) for m in reports]
            throttles = len(reports) // 3 if function.kind == "throttled" else 0
            stamp = hour + 1800
            data += [
                _datum("Invocations", dims, stamp, value=len(reports), unit="Count"),
                _datum("Errors", dims, stamp, value=errors, unit="Count"),
                _datum("Throttles", dims, stamp, value=throttles, unit="Count"),
                # Values, not StatisticValues: moto computes statistics from samples only.
                _datum("Duration", dims, stamp, unit="Milliseconds", values=durations),
            ]
    for n in range(0, len(data), 500):
        client.put_metric_data(Namespace="AWS/Lambda", MetricData=data[n : n + 500])


def _datum(
    name: str,
    dims: list[dict[str, str]],
    stamp: int,
    *,
    unit: str,
    value: float | None = None,
    values: list[float] | None = None,
) -> dict[str, Any]:
    from datetime import UTC, datetime

    datum: dict[str, Any] = {
        "MetricName": name,
        "Dimensions": dims,
        "Timestamp": datetime.fromtimestamp(stamp, UTC),
        "Unit": unit,
    }
    if values is not None:
        datum["Values"] = [round(v, 2) for v in values]
        datum["Counts"] = [1.0] * len(values)
    else:
        datum["Value"] = value
    return datum


def _seed_logs(
    session: Any,
    endpoint: str,
    members: list[DemoFunction],
    now_s: int,
    recent_hours: int,
    seed: int,
) -> None:
    client = session.client("logs", endpoint_url=endpoint)
    start = now_s - now_s % 3600 - recent_hours * 3600
    for function in members:
        rng = random.Random(f"{seed}:metrics:{function.name}")
        events = sorted(invocation_messages(function, start, now_s, now_s, rng))
        client.create_log_group(logGroupName=function.log_group)
        if not events:
            continue
        stream = "2026/01/01/[$LATEST]recent"
        client.create_log_stream(logGroupName=function.log_group, logStreamName=stream)
        for n in range(0, len(events), 5000):
            client.put_log_events(
                logGroupName=function.log_group,
                logStreamName=stream,
                logEvents=[{"timestamp": ts, "message": m} for ts, m in events[n : n + 5000]],
            )


@contextmanager
def moto_percentiles() -> Iterator[None]:
    """Let the in-process moto compute ``pNN`` statistics, as real CloudWatch does.

    moto 5 answers percentile queries with HTTP 500; the demo computes them (nearest rank)
    from the stored samples while it runs, then restores moto.
    """
    from moto.cloudwatch.models import Statistics

    original = Statistics.get_statistics_for_type

    def with_percentiles(self: Any, stat: str) -> Any:
        match = re.fullmatch(r"p(\d+(?:\.\d+)?)", stat)
        if match is None:
            return original(self, stat)
        values = sorted(self.metric_single_values_list)
        if not values:
            return None
        rank = max(1, math.ceil(float(match.group(1)) / 100 * len(values)))
        return values[rank - 1]

    Statistics.get_statistics_for_type = with_percentiles  # type: ignore[method-assign]
    try:
        yield
    finally:
        Statistics.get_statistics_for_type = original  # type: ignore[method-assign]
