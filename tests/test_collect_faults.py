"""Faults moto cannot produce: throttling (real botocore retries), AccessDenied, expired tokens.

Throttling uses a ``before-send`` handler answering HTTP 429 so botocore's real retry
logic runs; AccessDenied and expired tokens are served with ``botocore.stub.Stubber``
(moto never denies or expires). Everything else goes over real HTTP to moto.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from botocore.awsrequest import AWSResponse
from botocore.stub import Stubber
from click.testing import CliRunner
from sqlite_utils import Database

import collectors.common
from collectors.aws import CollectOptions, CredentialsError, run_collection
from lambdascope.cli import cli
from tests.moto_fleet import (
    DEFAULT_ACCOUNT,
    NOW,
    OTHER_ACCOUNT,
    REGIONS,
    ROLE_ARN,
    Fleet,
    small_moto_fleet,
)

__all__ = ["small_moto_fleet"]


class _Body:
    def __init__(self, body: bytes) -> None:
        self.body = body

    def stream(self, **_: Any) -> Iterator[bytes]:
        yield self.body


def options(fleet: Fleet, **overrides: Any) -> CollectOptions:
    values: dict[str, Any] = {
        "regions": REGIONS,
        "since": timedelta(hours=6),
        "endpoint_url": fleet.endpoint_url,
        "poll_interval_s": 0.0,
    }
    return CollectOptions(**(values | overrides))


def patch_clients(monkeypatch: pytest.MonkeyPatch, prepare: Any) -> None:
    original = collectors.common.make_client

    def make_client(session: Any, service: str, region: str, endpoint_url: Any) -> Any:
        client = original(session, service, region, endpoint_url)
        prepare(client, service, region)
        return client

    monkeypatch.setattr(collectors.common, "make_client", make_client)


def test_throttled_listing_is_retried_and_completes(
    small_moto_fleet: Fleet, db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    attempts: list[int] = []

    def throttle(request: Any, **_: Any) -> AWSResponse | None:
        attempts.append(1)
        if len(attempts) > 1:
            return None  # the retry goes through to moto
        return AWSResponse(
            request.url,
            429,
            {"x-amzn-ErrorType": "TooManyRequestsException", "Content-Type": "application/json"},
            _Body(b'{"message": "Rate exceeded", "Type": "User"}'),  # type: ignore[arg-type]
        )

    def prepare(client: Any, service: str, region: str) -> None:
        if service == "lambda":
            client.meta.events.register("before-send.lambda.ListFunctions", throttle)

    patch_clients(monkeypatch, prepare)
    opts = options(small_moto_fleet, regions=("us-east-1",), only=("inventory",))
    summary = run_collection(db, opts, now=NOW)
    assert len(attempts) == 2
    assert summary.results[0].items == 2
    assert db.conn.execute("SELECT COUNT(*) FROM functions").fetchone() == (2,)


def test_access_denied_in_one_region_is_recorded_and_the_rest_continues(
    small_moto_fleet: Fleet, db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    stubbers: list[Stubber] = []

    def prepare(client: Any, service: str, region: str) -> None:
        if service == "cloudwatch" and region == "eu-west-1":
            stubber = Stubber(client)
            stubber.add_client_error(
                "get_metric_data",
                service_error_code="AccessDenied",
                service_message="User is not authorized to perform: cloudwatch:GetMetricData",
                http_status_code=403,
            )
            stubber.activate()
            stubbers.append(stubber)

    patch_clients(monkeypatch, prepare)
    opts = options(small_moto_fleet, only=("inventory", "metrics"), metric_set="full")
    summary = run_collection(db, opts, now=NOW)
    runs = {
        (r[0], r[1]): (r[2], json.loads(r[3]))
        for r in db.conn.execute(
            "SELECT region, source, status, errors_json FROM collection_runs"
        ).fetchall()
    }
    status, errors = runs[("eu-west-1", "metrics")]
    assert status == "failed"
    assert [(e["action"], e["code"]) for e in errors] == [
        ("cloudwatch:GetMetricData", "AccessDenied")
    ]
    assert runs[("us-east-1", "metrics")] == ("ok", [])
    assert db.conn.execute("SELECT COUNT(*) FROM hourly_metrics").fetchone() == (6,)
    assert summary.exit_code == 2
    assert "  failed cloudwatch:GetMetricData: AccessDenied" in "\n".join(summary.lines())
    # The failed window is not skipped next time: its watermark did not move.
    marks = db.conn.execute("SELECT region, source FROM watermarks ORDER BY 1").fetchall()
    assert marks == [("us-east-1", "metrics")]


def test_expired_credentials_stop_with_one_clear_line(
    small_moto_fleet: Fleet, db_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def prepare(client: Any, service: str, region: str) -> None:
        if service == "sts":
            stubber = Stubber(client)
            stubber.add_client_error(
                "get_caller_identity",
                service_error_code="ExpiredToken",
                service_message="The security token included in the request is expired",
                http_status_code=403,
            )
            stubber.activate()
            client._test_stubber = stubber

    patch_clients(monkeypatch, prepare)
    result = CliRunner().invoke(
        cli,
        [
            "--db",
            str(db_path),
            "collect",
            "--region",
            "us-east-1",
            "--endpoint-url",
            small_moto_fleet.endpoint_url,
        ],
    )
    assert result.exit_code == 1
    assert result.stderr == (
        "Error: AWS credentials were rejected (ExpiredToken): refresh them"
        " (e.g. `aws sso login`) and run again\n"
    )
    assert result.stdout == ""


def test_credentials_expiring_mid_run_stop_the_run(
    small_moto_fleet: Fleet, db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The default credentials expire after the run started: Lambda rejects them, and so
    does STS when asked again, so the run stops with one line (nothing half-written)."""
    sts_clients: list[Any] = []

    def prepare(client: Any, service: str, region: str) -> None:
        if service == "lambda":
            stubber = Stubber(client)
            stubber.add_client_error(
                "list_functions", service_error_code="ExpiredTokenException", http_status_code=403
            )
            stubber.activate()
            client._test_stubber = stubber
        if service == "sts":
            sts_clients.append(client)
            if len(sts_clients) > 1:  # the first one resolved the account
                stubber = Stubber(client)
                stubber.add_client_error(
                    "get_caller_identity", service_error_code="ExpiredToken", http_status_code=403
                )
                stubber.activate()
                client._test_stubber = stubber

    patch_clients(monkeypatch, prepare)
    with pytest.raises(CredentialsError, match="ExpiredTokenException"):
        run_collection(db, options(small_moto_fleet, regions=("us-east-1",)), now=NOW)
    assert db.conn.execute(
        "SELECT COUNT(*) FROM functions WHERE account_id = ?", (DEFAULT_ACCOUNT,)
    ).fetchone() == (0,)


def test_credentials_rejected_in_one_account_and_region_fail_that_part_only(
    small_moto_fleet: Fleet, db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A member account that has not enabled a region answers UnrecognizedClientException
    there; STS still accepts the default credentials, so only that part fails."""

    def prepare(client: Any, service: str, region: str) -> None:
        if service == "lambda" and region == "eu-west-1":
            stubber = Stubber(client)
            stubber.add_client_error(
                "list_functions",
                service_error_code="UnrecognizedClientException",
                service_message="The security token included in the request is invalid.",
                http_status_code=403,
            )
            stubber.activate()
            client._test_stubber = stubber

    patch_clients(monkeypatch, prepare)
    opts = options(small_moto_fleet, role_arns=(ROLE_ARN,), only=("inventory",))
    summary = run_collection(db, opts, now=NOW)
    statuses = sorted((r.account_id, r.region, r.status) for r in summary.results)
    assert statuses == [
        (DEFAULT_ACCOUNT, "eu-west-1", "failed"),
        (DEFAULT_ACCOUNT, "us-east-1", "ok"),
        (OTHER_ACCOUNT, "eu-west-1", "failed"),
        (OTHER_ACCOUNT, "us-east-1", "ok"),
    ]
    failed = next(r for r in summary.results if r.status == "failed")
    assert failed.errors[0]["code"] == "UnrecognizedClientException"
    assert "region not enabled for this account" in failed.errors[0]["message"]
    assert db.conn.execute(
        "SELECT account_id, region, COUNT(*) FROM functions GROUP BY 1, 2 ORDER BY 1, 2"
    ).fetchall() == [(DEFAULT_ACCOUNT, "us-east-1", 2), (OTHER_ACCOUNT, "us-east-1", 2)]
    assert summary.exit_code == 2


def test_missing_credentials_stop_with_one_clear_line(
    db_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for key in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE"):
        monkeypatch.delenv(key, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", "/nonexistent/aws-config")
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent/aws-credentials")
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")  # never probe the metadata service
    monkeypatch.delenv("AWS_CONTAINER_CREDENTIALS_FULL_URI", raising=False)
    result = CliRunner().invoke(
        cli,
        [
            "--db",
            str(db_path),
            "collect",
            "--region",
            "us-east-1",
            "--endpoint-url",
            "http://127.0.0.1:9",
        ],
    )
    assert result.exit_code == 1
    assert result.stderr == (
        "Error: no AWS credentials found: set a profile (--profile) or the standard AWS"
        " environment variables\n"
    )


def test_a_region_the_account_has_not_enabled_is_skipped_with_a_note(
    small_moto_fleet: Fleet, db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    """--region eu-west-1 for an account that has not enabled it (an opt-in region stands in
    for it): Lambda there answers UnrecognizedClientException and ec2:DescribeRegions says
    not-opted-in, so that account x region is skipped with a note; nothing failed."""
    original = collectors.common.make_client
    described: list[Any] = []

    def make_client(session: Any, service: str, region: str, endpoint_url: Any) -> Any:
        client = original(session, service, region, endpoint_url)
        member = session.get_credentials().method == "assume-role"
        if member and service == "lambda" and region == "eu-west-1":
            stubber = Stubber(client)
            stubber.add_client_error(
                "list_functions",
                service_error_code="UnrecognizedClientException",
                service_message="The security token included in the request is invalid.",
                http_status_code=403,
            )
            stubber.activate()
            client._test_stubber = stubber
        if member and service == "ec2":

            def not_opted_in(parsed: dict[str, Any], params: Any = None, **_: Any) -> None:
                described.append(parsed)
                for region_info in parsed.get("Regions", []):
                    if region_info["RegionName"] == "eu-west-1":
                        region_info["OptInStatus"] = "not-opted-in"

            client.meta.events.register("after-call.ec2.DescribeRegions", not_opted_in)
        return client

    monkeypatch.setattr(collectors.common, "make_client", make_client)
    opts = options(small_moto_fleet, role_arns=(ROLE_ARN,), only=("inventory", "metrics"))
    summary = run_collection(db, opts, now=NOW)

    statuses = sorted((r.account_id, r.region, r.source, r.status) for r in summary.results)
    assert statuses == [
        (account, region, source, "skipped" if skip else "ok")
        for account in (DEFAULT_ACCOUNT, OTHER_ACCOUNT)
        for region in sorted(REGIONS)
        for source in ("inventory", "metrics")
        for skip in [(account, region) == (OTHER_ACCOUNT, "eu-west-1")]
    ]
    assert len(described) == 1  # asked once, after the rejection
    note = f"{OTHER_ACCOUNT} eu-west-1: region not enabled in this account, skipped"
    assert summary.notes == [note]
    assert note in summary.lines()
    assert summary.exit_code == 0
