"""Seeding moto with the demo fleet for ``lambdascope demo``.

The fleet, its ground truth and its log lines come from ``lambdascope.synthetic`` (the one
synthetic-fleet generator); this module puts them where the collectors read them.

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

import json
import math
import random
import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from lambdascope import synthetic
from lambdascope.synthetic import (
    STALE_LAST_RUN_DAYS,
    SyntheticFunction,
    build_fleet,
    invocation_messages,
    memory_at,
)

__all__ = ["STALE_LAST_RUN_DAYS", "build_fleet", "invocation_messages", "memory_at"]

ACCOUNTS = synthetic.DEMO_ACCOUNTS
REGIONS = synthetic.DEMO_REGIONS
DemoFunction = SyntheticFunction
HISTORY_DAYS = 15
RECENT_HOURS = 3
SEED = 7
ROLE_NAME = "lambdascope-demo"

Progress = Callable[[str], None]


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
    """The demo's local history (``lambdascope.synthetic.write_local_history``)."""
    return synthetic.write_local_history(
        fleet,
        directory,
        now_s=now_s,
        days=days,
        recent_hours=recent_hours,
        seed=seed,
        progress=progress,
    )


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
        modified = synthetic.iso_ms((now_s - function.last_modified_days_ago * 86400) * 1000)
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
