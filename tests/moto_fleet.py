"""A Lambda fleet in an in-process moto server (real HTTP on 127.0.0.1) for collector tests.

Two accounts (moto's default 123456789012 and 222222222222 reached with sts.assume_role)
x two regions x 16 functions = 64 functions, with versions, aliases (one weighted), tags,
reserved concurrency, a few hours of CloudWatch metrics and REPORT log lines.

moto 5.2 answers HTTP 500 for percentile statistics in GetMetricData: ``moto_server``
patches ``moto.cloudwatch.models.Statistics.get_statistics_for_type`` to compute
nearest-rank percentiles over the stored samples, as CloudWatch does for raw samples.
"""

from __future__ import annotations

import io
import math
import re
import urllib.request
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import pytest
from botocore.config import Config
from moto.cloudwatch.models import Statistics
from moto.server import ThreadedMotoServer

DEFAULT_ACCOUNT = "123456789012"
OTHER_ACCOUNT = "222222222222"
ROLE_ARN = f"arn:aws:iam::{OTHER_ACCOUNT}:role/lambdascope-collector"
REGIONS = ("us-east-1", "eu-west-1")
FUNCTIONS_PER_TARGET = 16
# put_log_events rejects events older than 14 days: the fleet's clock follows the real one.
NOW = datetime.now(UTC).replace(minute=30, second=0, microsecond=0)
HOUR0 = NOW.replace(minute=0) - timedelta(hours=3)

_PERCENTILE = re.compile(r"^p(\d+(?:\.\d+)?)$")
_original_stat = Statistics.get_statistics_for_type


def _stat_with_percentiles(self: Statistics, stat: str) -> Any:
    match = _PERCENTILE.match(stat)
    if not match:
        return _original_stat(self, stat)
    values = sorted(self.metric_single_values_list)
    if not values:
        return None
    rank = max(1, math.ceil(float(match.group(1)) / 100 * len(values)))
    return values[rank - 1]


@dataclass
class Fleet:
    endpoint_url: str
    sessions: dict[str, boto3.Session] = field(default_factory=dict)
    member_role: str = ROLE_ARN.rsplit("/", 1)[1]  # assumed to reach the other accounts

    def session(self, account: str = DEFAULT_ACCOUNT) -> boto3.Session:
        # Sessions are cached: each new one loads botocore's models again (slow).
        if account not in self.sessions:
            self.sessions[account] = self._new_session(account)
        return self.sessions[account]

    def _new_session(self, account: str) -> boto3.Session:
        base = boto3.Session(region_name=REGIONS[0])
        if account == DEFAULT_ACCOUNT:
            return base
        creds = base.client("sts", endpoint_url=self.endpoint_url).assume_role(
            RoleArn=f"arn:aws:iam::{account}:role/{self.member_role}", RoleSessionName="fleet"
        )["Credentials"]
        return boto3.Session(
            aws_access_key_id=creds["AccessKeyId"],
            aws_secret_access_key=creds["SecretAccessKey"],
            aws_session_token=creds["SessionToken"],
            region_name=REGIONS[0],
        )

    def client(self, service: str, region: str, account: str = DEFAULT_ACCOUNT) -> Any:
        return self.session(account).client(
            service,
            region_name=region,
            endpoint_url=self.endpoint_url,
            config=Config(disable_request_compression=True),
        )


def function_name(account: str, region: str, index: int) -> str:
    return f"svc-{account[:3]}-{region}-{index:02d}"


def _zip(tag: str = "v1") -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("app.py", f"# {tag}\ndef handler(event, context):\n    return event\n")
    return buffer.getvalue()


def report_line(
    request_id: str, duration: float, memory: int, used: int, init: float | None
) -> str:
    line = (
        f"REPORT RequestId: {request_id}\tDuration: {duration:.2f} ms\t"
        f"Billed Duration: {math.ceil(duration)} ms\tMemory Size: {memory} MB\t"
        f"Max Memory Used: {used} MB\t"
    )
    return line + (f"Init Duration: {init:.2f} ms\t" if init is not None else "")


def seed_target(fleet: Fleet, account: str, region: str, count: int = FUNCTIONS_PER_TARGET) -> None:
    iam = fleet.client("iam", region, account)
    try:
        role = iam.create_role(RoleName="fn-role", AssumeRolePolicyDocument="{}")["Role"]["Arn"]
    except iam.exceptions.EntityAlreadyExistsException:
        role = iam.get_role(RoleName="fn-role")["Role"]["Arn"]
    lam = fleet.client("lambda", region, account)
    code = _zip()
    for index in range(count):
        name = function_name(account, region, index)
        lam.create_function(
            FunctionName=name,
            Runtime="python3.12" if index % 2 else "nodejs20.x",
            Role=role,
            Handler="app.handler",
            Code={"ZipFile": code},
            MemorySize=128 * (1 + index % 4),
            Timeout=3 + index,
            Architectures=["arm64" if index % 3 == 0 else "x86_64"],
            Tags={"team": f"team-{index % 3}", "env": "prod"},
        )
        if index % 4 == 0:
            lam.publish_version(FunctionName=name, Description="first")
            # Like AWS, moto publishes a new version only when the code changed.
            lam.update_function_code(FunctionName=name, ZipFile=_zip(f"v2-{name}"))
            lam.publish_version(FunctionName=name, Description="second")
            lam.create_alias(
                FunctionName=name,
                Name="live",
                FunctionVersion="1",
                RoutingConfig={"AdditionalVersionWeights": {"2": 0.1}},
            )
        if index == 1:
            lam.put_function_concurrency(FunctionName=name, ReservedConcurrentExecutions=5)


def seed_metrics(fleet: Fleet, region: str = REGIONS[0]) -> None:
    """Three hours of metrics for functions 0 and 1 of the default account (few series)."""
    cloudwatch = fleet.client("cloudwatch", region)
    for index in (0, 1):
        name = function_name(DEFAULT_ACCOUNT, region, index)
        dims = [{"Name": "FunctionName", "Value": name}]
        data = []
        for hour in range(3):
            at = HOUR0 + timedelta(hours=hour, minutes=10)
            data.append(
                {
                    "MetricName": "Invocations",
                    "Dimensions": dims,
                    "Timestamp": at,
                    "Value": 10.0 * (hour + 1) + index,
                    "Unit": "Count",
                }
            )
            data.append(
                {
                    "MetricName": "Duration",
                    "Dimensions": dims,
                    "Timestamp": at,
                    "Values": [100.0 + hour, 200.0, 300.0, 400.0],
                    "Counts": [1, 1, 1, 1],
                    "Unit": "Milliseconds",
                }
            )
            if index == 1:
                # A metric the logs cannot give (collected by the lean metric set).
                data.append(
                    {
                        "MetricName": "ConcurrentExecutions",
                        "Dimensions": dims,
                        "Timestamp": at,
                        "Value": 3.0 + hour,
                        "Unit": "Count",
                    }
                )
            if index == 0 and hour == 1:
                data.append(
                    {
                        "MetricName": "Errors",
                        "Dimensions": dims,
                        "Timestamp": at,
                        "Value": 2.0,
                        "Unit": "Count",
                    }
                )
        cloudwatch.put_metric_data(Namespace="AWS/Lambda", MetricData=data)


def seed_logs(fleet: Fleet, region: str = REGIONS[0]) -> None:
    """REPORT lines for function 0 of the default account (function 2 has an empty group)."""
    logs = fleet.client("logs", region)
    name = function_name(DEFAULT_ACCOUNT, region, 0)
    group = f"/aws/lambda/{name}"
    logs.create_log_group(logGroupName=group)
    logs.create_log_stream(logGroupName=group, logStreamName="s1")
    events = []
    for hour in range(3):
        base = HOUR0 + timedelta(hours=hour, minutes=5)
        for i in range(4):
            at = base + timedelta(seconds=i)
            line = report_line(
                f"req-{hour}-{i}", 100.0 + 10 * i, 128, 60 + i, 250.0 if i == 0 else None
            )
            events.append({"timestamp": int(at.timestamp() * 1000), "message": line})
    logs.put_log_events(logGroupName=group, logStreamName="s1", logEvents=events)


@contextmanager
def moto_cloud() -> Iterator[str]:
    """A fresh, empty in-process moto server on 127.0.0.1 (its endpoint URL), with dummy
    credentials in the environment and percentile statistics patched in."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(Statistics, "get_statistics_for_type", _stat_with_percentiles)
        for key, value in {
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_DEFAULT_REGION": REGIONS[0],
            "AWS_CONFIG_FILE": "/nonexistent/aws-config",
            "AWS_SHARED_CREDENTIALS_FILE": "/nonexistent/aws-credentials",
        }.items():
            patch.setenv(key, value)
        patch.delenv("AWS_SESSION_TOKEN", raising=False)
        patch.delenv("AWS_PROFILE", raising=False)
        server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
        server.start()
        host, port = server.get_host_and_port()
        endpoint = f"http://{host}:{port}"
        # moto's backends are process-wide: start from an empty cloud.
        urllib.request.urlopen(
            urllib.request.Request(f"{endpoint}/moto-api/reset", method="POST")
        ).close()
        try:
            yield endpoint
        finally:
            server.stop()


@contextmanager
def running_fleet(functions_per_target: int) -> Iterator[Fleet]:
    """A seeded fleet behind a fresh in-process moto server on 127.0.0.1."""
    with moto_cloud() as endpoint:
        fleet = Fleet(endpoint)
        for account in (DEFAULT_ACCOUNT, OTHER_ACCOUNT):
            for region in REGIONS:
                seed_target(fleet, account, region, functions_per_target)
        seed_metrics(fleet)
        seed_logs(fleet)
        yield fleet


@pytest.fixture(scope="module")
def moto_fleet() -> Iterator[Fleet]:
    """64 functions: 16 per account x region."""
    with running_fleet(FUNCTIONS_PER_TARGET) as fleet:
        yield fleet


@pytest.fixture(scope="module")
def small_moto_fleet() -> Iterator[Fleet]:
    """8 functions: 2 per account x region (metrics and logs for the first two)."""
    with running_fleet(2) as fleet:
        yield fleet
