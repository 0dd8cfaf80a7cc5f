"""A failed inventory call never deletes or overwrites stored rows; a completed one replaces.

Every Lambda listing is served by ``botocore.stub.Stubber`` (response and error shapes from
the Lambda API reference; moto has no provisioned concurrency or URL listings): a first
complete inventory is stored, then a second one in which one call fails (throttled after
retries, or denied) must leave every stored row as it was and mark the part partial. The
throttling path with botocore's real retries runs over HTTP against moto at the end.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import pytest
from botocore.awsrequest import AWSResponse
from botocore.stub import Stubber
from sqlite_utils import Database

import collectors.common
from collectors.aws import CollectOptions, SourceResult, Store, Target, run_collection
from collectors.inventory import get_inventory, load_inventory
from tests.moto_fleet import DEFAULT_ACCOUNT, NOW, Fleet, function_name, small_moto_fleet

__all__ = ["small_moto_fleet"]

ACCOUNT, REGION = "123456789012", "us-east-1"
ARN = f"arn:aws:lambda:{REGION}:{ACCOUNT}:function"
FIRST = datetime(2026, 1, 1, tzinfo=UTC)
TABLES = ("functions", "function_versions", "function_aliases", "function_urls")


def configuration(name: str, version: str = "$LATEST") -> dict[str, Any]:
    arn = f"{ARN}:{name}" if version == "$LATEST" else f"{ARN}:{name}:{version}"
    return {
        "FunctionName": name,
        "FunctionArn": arn,
        "Runtime": "python3.12",
        "Role": f"arn:aws:iam::{ACCOUNT}:role/r",
        "Handler": "app.handler",
        "CodeSize": 100,
        "MemorySize": 256,
        "Timeout": 10,
        "LastModified": "2025-08-14T22:26:11.234+0000",
        "Version": version,
    }


# Per-function calls in the order get_inventory makes them, with a complete answer.
def answers(name: str, *, alias: bool = True, url: bool = True) -> list[tuple[str, Any]]:
    return [
        ("list_tags", {"Tags": {"team": name}}),
        ("get_function_concurrency", {"ReservedConcurrentExecutions": 5}),
        (
            "list_aliases",
            {
                "Aliases": [
                    {
                        "AliasArn": f"{ARN}:{name}:live",
                        "Name": "live",
                        "FunctionVersion": "1",
                        "Description": "",
                    }
                ]
                if alias
                else []
            },
        ),
        (
            "list_provisioned_concurrency_configs",
            {
                "ProvisionedConcurrencyConfigs": [
                    {
                        "FunctionArn": f"{ARN}:{name}:live",
                        "AllocatedProvisionedConcurrentExecutions": 3,
                    }
                ]
            },
        ),
        (
            "list_function_url_configs",
            {
                "FunctionUrlConfigs": [
                    {
                        "FunctionUrl": f"https://{name * 32}.lambda-url.{REGION}.on.aws/",
                        "FunctionArn": f"{ARN}:{name}",
                        "AuthType": "AWS_IAM",
                        "CreationTime": "2024-01-01T00:00:00.000+0000",
                        "LastModifiedTime": "2024-01-01T00:00:00.000+0000",
                    }
                ]
                if url
                else []
            },
        ),
    ]


def mappings(names: list[str]) -> dict[str, Any]:
    return {
        "EventSourceMappings": [
            {
                "UUID": f"uuid-{name}",
                "FunctionArn": f"{ARN}:{name}",
                "EventSourceArn": f"arn:aws:sqs:{REGION}:{ACCOUNT}:{name}",
                "State": "Enabled",
                "BatchSize": 10,
            }
            for name in names
        ]
    }


def client() -> Any:
    return boto3.client(
        "lambda",
        region_name=REGION,
        aws_access_key_id="x",
        aws_secret_access_key="x",
        endpoint_url="http://127.0.0.1:9",
    )


THROTTLED = ("TooManyRequestsException", 429, "Rate exceeded")
DENIED = ("AccessDeniedException", 403, "not authorized")


def run_inventory(
    db: Database,
    now: datetime,
    *,
    fail: str | None = None,
    error: tuple[str, int, str] = THROTTLED,
    alias: bool = True,
    url: bool = True,
    mapped: tuple[str, ...] = ("a", "b"),
) -> SourceResult:
    """One inventory of functions a and b (versions 1 and 2 each) through a Stubber."""
    lam = client()
    stubber = Stubber(lam)
    listing = [configuration(n) for n in "ab"]
    listing += [configuration(n, v) for n in "ab" for v in ("1", "2")]
    if fail == "list_functions":  # the second page never comes
        stubber.add_response(
            "list_functions",
            {"Functions": listing[:1], "NextMarker": "m"},
            {"FunctionVersion": "ALL"},
        )
        stubber.add_client_error("list_functions", error[0], error[2], error[1])
    else:
        stubber.add_response("list_functions", {"Functions": listing}, {"FunctionVersion": "ALL"})
        failed = False
        for name in "ab":
            for operation, response in answers(name, alias=alias, url=url):
                if operation == fail:
                    if not failed:  # asked once; not again for the next function
                        stubber.add_client_error(operation, error[0], error[2], error[1])
                    failed = True
                    continue
                stubber.add_response(operation, response)
        if fail == "list_event_source_mappings":
            stubber.add_client_error(fail, error[0], error[2], error[1])
        else:
            stubber.add_response("list_event_source_mappings", mappings(list(mapped)))
        stubber.add_response("get_account_settings", {"AccountLimit": {}, "AccountUsage": {}})
    result = SourceResult(ACCOUNT, REGION, "inventory")
    with stubber:
        inventory = get_inventory(lam, result)
        stubber.assert_no_pending_responses()
    if inventory.listing_complete:
        target = Target(boto3.Session(), ACCOUNT, REGION)
        result.items = load_inventory(Store(db), target, inventory, now)
    return result


def snapshot(db: Database) -> dict[str, list[tuple[Any, ...]]]:
    """Every stored inventory row, without the time of the listing itself."""
    rows = {
        "functions": db.conn.execute(
            "SELECT function_name, tags_json, reserved_concurrency, provisioned_concurrency,"
            " deleted_at FROM functions ORDER BY 1"
        ).fetchall(),
        "function_versions": db.conn.execute(
            "SELECT function_id, version, deleted_at FROM function_versions ORDER BY 1, 2"
        ).fetchall(),
        "function_aliases": db.conn.execute(
            "SELECT function_id, alias_name, function_version FROM function_aliases ORDER BY 1, 2"
        ).fetchall(),
        "function_urls": db.conn.execute(
            "SELECT function_id, qualifier, url FROM function_urls ORDER BY 1, 2"
        ).fetchall(),
        "event_source_mappings": db.conn.execute(
            "SELECT uuid, function_id, state FROM event_source_mappings ORDER BY 1"
        ).fetchall(),
    }
    return rows


def test_first_inventory_stores_every_kind_of_row(db: Database) -> None:
    result = run_inventory(db, FIRST)
    assert result.status == "ok"
    rows = snapshot(db)
    assert rows["functions"] == [
        ("a", '{"team": "a"}', 5, 3, None),
        ("b", '{"team": "b"}', 5, 3, None),
    ]
    assert len(rows["function_versions"]) == 4
    assert len(rows["function_aliases"]) == 2
    assert len(rows["function_urls"]) == 2
    assert len(rows["event_source_mappings"]) == 2


@pytest.mark.parametrize("error", [THROTTLED, DENIED], ids=["throttled", "denied"])
@pytest.mark.parametrize(
    "operation",
    [
        "list_functions",  # versions (and functions) come from this listing
        "list_tags",
        "get_function_concurrency",
        "list_aliases",
        "list_provisioned_concurrency_configs",
        "list_function_url_configs",
        "list_event_source_mappings",
    ],
)
def test_a_failed_call_leaves_stored_rows_as_they_were(
    db: Database, operation: str, error: tuple[str, int, str]
) -> None:
    run_inventory(db, FIRST)
    before = snapshot(db)
    # The second listing would remove aliases, URLs and mappings if it were trusted.
    result = run_inventory(
        db,
        FIRST + timedelta(hours=1),
        fail=operation,
        error=error,
        alias=False,
        url=False,
        mapped=(),
    )
    # (collect() then records an incomplete function listing as failed as a whole)
    assert result.status == "partial"
    assert [e["code"] for e in result.failures] == [error[0]]
    after = snapshot(db)
    kept = {
        "list_functions": (*TABLES, "event_source_mappings"),
        "list_tags": ("functions",),
        "get_function_concurrency": ("functions",),
        "list_provisioned_concurrency_configs": ("functions",),
        "list_aliases": ("function_aliases",),
        "list_function_url_configs": ("function_urls",),
        "list_event_source_mappings": ("event_source_mappings",),
    }[operation]
    for table in kept:
        assert after[table] == before[table], table


def test_a_completed_listing_replaces_what_it_no_longer_lists(db: Database) -> None:
    run_inventory(db, FIRST)
    result = run_inventory(db, FIRST + timedelta(hours=1), alias=False, url=False, mapped=("a",))
    assert result.status == "ok"
    rows = snapshot(db)
    assert rows["function_aliases"] == []
    assert rows["function_urls"] == []
    assert [uuid for uuid, _, _ in rows["event_source_mappings"]] == ["uuid-a"]


class _Body:
    def __init__(self, body: bytes) -> None:
        self.body = body

    def stream(self, **_: Any) -> Iterator[bytes]:
        yield self.body


def test_throttled_after_retries_over_http_keeps_aliases_and_reserved_concurrency(
    small_moto_fleet: Fleet, db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    """ListAliases and GetFunctionConcurrency answer 429 to every attempt; botocore's real
    retries give up (two retries here) and the stored alias and reserved concurrency of
    the functions collected before stay."""
    options = CollectOptions(
        regions=("us-east-1",), only=("inventory",), endpoint_url=small_moto_fleet.endpoint_url
    )
    run_collection(db, options, now=NOW)
    first, second = (function_name(DEFAULT_ACCOUNT, "us-east-1", i) for i in (0, 1))
    stored = (
        "SELECT f.function_name, a.alias_name, f.reserved_concurrency FROM functions f"
        " LEFT JOIN function_aliases a ON a.function_id = f.id ORDER BY 1"
    )
    before = db.conn.execute(stored).fetchall()
    assert before == [(first, "live", None), (second, None, 5)]
    attempts: list[str] = []

    def throttle(request: Any, **_: Any) -> AWSResponse:
        attempts.append(request.url)
        return AWSResponse(
            request.url,
            429,
            {"x-amzn-ErrorType": "TooManyRequestsException", "Content-Type": "application/json"},
            _Body(b'{"message": "Rate exceeded", "Type": "User"}'),  # type: ignore[arg-type]
        )

    original = collectors.common.make_client

    def make_client(session: Any, service: str, region: str, endpoint_url: Any) -> Any:
        made = original(session, service, region, endpoint_url)
        if service == "lambda":
            made.meta.events.register("before-send.lambda.ListAliases", throttle)
            made.meta.events.register("before-send.lambda.GetFunctionConcurrency", throttle)
        return made

    monkeypatch.setattr(collectors.common, "make_client", make_client)
    monkeypatch.setitem(collectors.common.RETRY_CONFIG, "max_attempts", 2)
    summary = run_collection(db, options, now=NOW + timedelta(hours=1))

    assert len(attempts) == 6  # each operation: the call and two retries, then not again
    (result,) = summary.results
    assert result.status == "partial"
    assert sorted(e["code"] for e in result.failures) == ["TooManyRequestsException"] * 2
    assert db.conn.execute(stored).fetchall() == before
    assert "keeps its stored values" in result.message
