"""Organisation-wide collection over real HTTP against an in-process moto organisation.

The management account (moto's default 123456789012) creates an organisation and three
member accounts; each member's functions are created through AssumeRole into its
``OrganizationAccountAccessRole``, so they live under the member's own account id. Faults
moto cannot produce (a role that cannot be assumed, credentials that expire, a region a
member has not enabled) are added with botocore event handlers on the collectors' clients.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.awsrequest import AWSResponse
from botocore.stub import Stubber
from click.testing import CliRunner
from sqlite_utils import Database

import collectors.common
from collectors.accounts import organization_accounts
from collectors.aws import CollectOptions, resolve_accounts, run_collection
from lambdascope.cli import cli
from tests.moto_fleet import (
    DEFAULT_ACCOUNT,
    NOW,
    REGIONS,
    Fleet,
    function_name,
    moto_cloud,
    seed_target,
)

ORG_ROLE = "OrganizationAccountAccessRole"
FUNCTIONS_PER_MEMBER = 3


class OrgFleet(Fleet):
    members: list[str]


@pytest.fixture(scope="module")
def moto_org() -> Iterator[OrgFleet]:
    """Management account + 3 ACTIVE members, 3 functions in us-east-1 in each (the
    management account has 2), created with each account's own credentials."""
    with moto_cloud() as endpoint:
        fleet = OrgFleet(endpoint, member_role=ORG_ROLE)
        org = fleet.client("organizations", "us-east-1")
        org.create_organization(FeatureSet="ALL")
        fleet.members = []
        for index in range(3):
            status = org.create_account(
                AccountName=f"member-{index}", Email=f"member-{index}@example.com"
            )["CreateAccountStatus"]
            fleet.members.append(status["AccountId"])
        for member in fleet.members:
            seed_target(fleet, member, "us-east-1", FUNCTIONS_PER_MEMBER)
        seed_target(fleet, DEFAULT_ACCOUNT, "us-east-1", 2)
        yield fleet


def expected_functions(fleet: OrgFleet) -> list[tuple[str, str]]:
    rows = [(DEFAULT_ACCOUNT, function_name(DEFAULT_ACCOUNT, "us-east-1", i)) for i in range(2)]
    for member in fleet.members:
        rows += [
            (member, function_name(member, "us-east-1", i)) for i in range(FUNCTIONS_PER_MEMBER)
        ]
    return sorted(rows)


def stored_functions(db: Database) -> list[tuple[str, str]]:
    return sorted(db.conn.execute("SELECT account_id, function_name FROM functions").fetchall())


def test_collect_with_org_role_stores_every_account_under_its_own_id(
    moto_org: OrgFleet, db_path: Path
) -> None:
    result = CliRunner().invoke(
        cli,
        [
            "--db",
            str(db_path),
            "collect",
            "--endpoint-url",
            moto_org.endpoint_url,
            "--region",
            "us-east-1",
            "--org-role-name",
            ORG_ROLE,
        ],
    )
    assert result.exit_code == 0, result.output
    db = Database(db_path)
    assert stored_functions(db) == expected_functions(moto_org)
    assert len(moto_org.members) == 3 and DEFAULT_ACCOUNT not in moto_org.members
    summary_lines = [line for line in result.stdout.splitlines() if " inventory: " in line]
    assert sorted(line.split()[0] for line in summary_lines) == sorted(
        [DEFAULT_ACCOUNT, *moto_org.members]
    )


def patch_clients(monkeypatch: pytest.MonkeyPatch, prepare: Callable[..., None]) -> None:
    original = collectors.common.make_client

    def make_client(session: Any, service: str, region: str, endpoint_url: Any) -> Any:
        client = original(session, service, region, endpoint_url)
        prepare(client, service, region)
        return client

    monkeypatch.setattr(collectors.common, "make_client", make_client)


class _Body:
    def __init__(self, body: bytes) -> None:
        self.body = body

    def stream(self, **_: Any) -> Iterator[bytes]:
        yield self.body


def sts_error(request: Any, code: str, message: str) -> AWSResponse:
    body = (
        f'<ErrorResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/"><Error>'
        f"<Type>Sender</Type><Code>{code}</Code><Message>{message}</Message></Error>"
        f"<RequestId>1</RequestId></ErrorResponse>"
    ).encode()
    return AWSResponse(request.url, 403, {"Content-Type": "text/xml"}, _Body(body))  # type: ignore[arg-type]


def org_options(fleet: OrgFleet, **overrides: Any) -> CollectOptions:
    values: dict[str, Any] = {
        "regions": ("us-east-1",),
        "org_role_name": ORG_ROLE,
        "only": ("inventory",),
        "endpoint_url": fleet.endpoint_url,
    }
    return CollectOptions(**(values | overrides))


def test_one_account_failing_never_stops_the_others_and_excluded_ones_are_skipped(
    moto_org: OrgFleet, db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    denied, excluded, reached = moto_org.members
    assumed: list[dict[str, Any]] = []

    def record(params: dict[str, Any], **_: Any) -> None:
        assumed.append(params)

    def deny(request: Any, **_: Any) -> AWSResponse | None:
        body = request.body.decode() if isinstance(request.body, bytes) else str(request.body)
        if denied in body:  # the RoleArn names the account
            return sts_error(request, "AccessDenied", "not authorized to perform sts:AssumeRole")
        return None

    def prepare(client: Any, service: str, region: str) -> None:
        if service == "sts":
            client.meta.events.register("before-parameter-build.sts.AssumeRole", record)
            client.meta.events.register("before-send.sts.AssumeRole", deny)

    patch_clients(monkeypatch, prepare)
    options = org_options(
        moto_org, org_exclude=(excluded,), external_id="lambdascope-ext", role_duration_s=7200
    )
    summary = run_collection(db, options, now=NOW)

    assert {a for a, _ in stored_functions(db)} == {DEFAULT_ACCOUNT, reached}
    failures = [r for r in summary.results if r.status != "ok"]
    assert [(r.account_id, r.source, r.errors[0]["code"]) for r in failures] == [
        (denied, "account", "AccessDenied")
    ]
    assert (
        f"cannot assume arn:aws:iam::{denied}:role/{ORG_ROLE}" in failures[0].errors[0]["message"]
    )
    assert summary.exit_code == 2
    row = db.conn.execute(
        "SELECT account_id, region, source, status, errors_json FROM collection_runs"
        " WHERE source = 'account'"
    ).fetchone()
    assert row[:4] == (denied, "", "account", "failed")
    assert json.loads(row[4])[0]["action"] == "sts:AssumeRole"
    # The excluded account is never asked; every role assumed carries the options.
    assert sorted(p["RoleArn"] for p in assumed) == sorted(
        f"arn:aws:iam::{a}:role/{ORG_ROLE}" for a in (denied, reached)
    )
    assert {(p["ExternalId"], p["DurationSeconds"], p["RoleSessionName"]) for p in assumed} == {
        ("lambdascope-ext", 7200, "lambdascope")
    }


def test_org_listing_denied_stops_with_one_clear_line(
    moto_org: OrgFleet, db_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def deny(request: Any, **_: Any) -> AWSResponse:
        return AWSResponse(
            request.url,
            400,
            {"x-amzn-ErrorType": "AccessDeniedException", "Content-Type": "application/json"},
            _Body(b'{"__type": "AccessDeniedException", "Message": "denied"}'),  # type: ignore[arg-type]
        )

    def prepare(client: Any, service: str, region: str) -> None:
        if service == "organizations":
            client.meta.events.register("before-send.organizations.ListAccounts", deny)

    patch_clients(monkeypatch, prepare)
    result = CliRunner().invoke(
        cli,
        [
            "--db",
            str(db_path),
            "collect",
            "--endpoint-url",
            moto_org.endpoint_url,
            "--region",
            "us-east-1",
            "--org-role-name",
            ORG_ROLE,
        ],
    )
    assert result.exit_code == 1
    assert result.stderr == (
        "Error: cannot list the organisation's accounts: organizations:ListAccounts failed"
        " with AccessDeniedException (run it from the management account or a delegated"
        " administrator)\n"
    )


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--org-exclude", "12345"], "not a 12-digit AWS account id: '12345'"),
        (["--org-role-name", "R", "--role-duration", "60"], "60 is not in the range 900<=x<=43200"),
        (["--org-role-name", "R", "--external-id", "a b"], "2 to 1224 letters"),
    ],
)
def test_bad_org_options_are_one_line(args: list[str], message: str, db_path: Path) -> None:
    result = CliRunner().invoke(cli, ["--db", str(db_path), "collect", *args])
    assert result.exit_code == 2
    assert message in result.stderr and "Traceback" not in result.output


class FakeClock:
    """The time AWS and the credential refresher both see."""

    def __init__(self) -> None:
        self.now = datetime(2026, 12, 1, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now


@pytest.mark.parametrize(
    ("duration_s", "call_minutes"), [(3600, 10), (900, 2)], ids=["1h-sessions", "15min-sessions"]
)
def test_assumed_role_credentials_are_renewed_so_a_long_run_completes(
    moto_org: OrgFleet,
    db: Database,
    monkeypatch: pytest.MonkeyPatch,
    duration_s: int,
    call_minutes: int,
) -> None:
    """Sessions last --role-duration; each Lambda call takes ``call_minutes``, so the
    member's inventory (11 calls) outlasts a session.

    STS answers with an Expiration on the fake clock; Lambda rejects a token past its
    Expiration with ExpiredTokenException, as AWS does. A session assumed once aborts the
    run; refreshing credentials assume the role again before it ends, but not on every
    call (even with the shortest sessions).
    """
    clock = FakeClock()
    expiry_of_token: dict[str, datetime] = {}
    assume_calls: list[datetime] = []

    def issued(parsed: dict[str, Any], **_: Any) -> None:
        credentials = parsed["Credentials"]
        credentials["Expiration"] = clock.now + timedelta(seconds=duration_s)
        expiry_of_token[credentials["SessionToken"]] = credentials["Expiration"]
        assume_calls.append(clock.now)

    def lambda_call(request: Any, **_: Any) -> AWSResponse | None:
        token = request.headers.get("X-Amz-Security-Token")
        token = token.decode() if isinstance(token, bytes) else token
        expired = token in expiry_of_token and clock.now >= expiry_of_token[token]
        clock.now += timedelta(minutes=call_minutes)
        if not expired:
            return None
        return AWSResponse(
            request.url,
            403,
            {"x-amzn-ErrorType": "ExpiredTokenException", "Content-Type": "application/json"},
            _Body(b'{"message": "The security token included in the request is expired"}'),  # type: ignore[arg-type]
        )

    def prepare(client: Any, service: str, region: str) -> None:
        if service == "sts":
            client.meta.events.register("after-call.sts.AssumeRole", issued)
        if service == "lambda":
            client.meta.events.register("before-send.lambda.*", lambda_call)

    patch_clients(monkeypatch, prepare)
    member = moto_org.members[0]
    options = org_options(
        moto_org,
        org_exclude=tuple(m for m in moto_org.members if m != member),
        include_default_account=False,
        role_duration_s=duration_s,
        concurrency=1,
    )
    summary = run_collection(db, options, now=NOW, clock=clock)

    assert [(r.account_id, r.status) for r in summary.results] == [(member, "ok")]
    assert {a for a, _ in stored_functions(db)} == {member}
    elapsed = clock.now - assume_calls[0]
    assert elapsed > timedelta(seconds=duration_s * 1.4)
    assert len(assume_calls) >= 2  # assumed again before the first session ended
    # Renewed about when a third of the session is left: not on every call.
    renewals_at_most = 1 + elapsed / timedelta(seconds=duration_s * 2 / 3)
    assert len(assume_calls) <= renewals_at_most


def test_all_regions_are_asked_of_each_account(
    moto_org: OrgFleet, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A member that has not enabled eu-west-1 (an opt-in region stands in for it) gets no
    eu-west-1 part and a note; the others keep it. DescribeRegions runs with each
    account's own credentials."""
    lacking = moto_org.members[1]
    described_by: list[str] = []

    original = collectors.common.make_client

    def make_client(session: Any, service: str, region: str, endpoint_url: Any) -> Any:
        client = original(session, service, region, endpoint_url)
        if service == "ec2":
            key = session.get_credentials().get_frozen_credentials().access_key
            account = owner_of_key.get(key, DEFAULT_ACCOUNT)
            described_by.append(account)

            def drop(parsed: dict[str, Any], **_: Any) -> None:
                if account == lacking:
                    parsed["Regions"] = [
                        r for r in parsed["Regions"] if r["RegionName"] != "eu-west-1"
                    ]

            client.meta.events.register("after-call.ec2.DescribeRegions", drop)
        if service == "sts":

            def issued(parsed: dict[str, Any], **_: Any) -> None:
                owner = parsed["AssumedRoleUser"]["Arn"].split(":")[4]
                owner_of_key[parsed["Credentials"]["AccessKeyId"]] = owner

            client.meta.events.register("after-call.sts.AssumeRole", issued)
        return client

    owner_of_key: dict[str, str] = {}
    monkeypatch.setattr(collectors.common, "make_client", make_client)
    options = org_options(moto_org, regions=(), all_regions=True)
    reach = resolve_accounts(options)

    regions = {}
    for target in reach.targets:
        regions.setdefault(target.account_id, set()).add(target.region)
    assert sorted(described_by) == sorted([DEFAULT_ACCOUNT, *moto_org.members])
    assert "eu-west-1" not in regions[lacking] and "us-east-1" in regions[lacking]
    for account in (DEFAULT_ACCOUNT, *moto_org.members):
        if account != lacking:
            assert {"eu-west-1", "us-east-1"} <= regions[account]
    assert regions[lacking] == regions[DEFAULT_ACCOUNT] - {"eu-west-1"}
    assert reach.notes == [f"{lacking} eu-west-1: region not enabled in this account, skipped"]
    assert len(REGIONS) == 2


def test_accounts_are_reached_in_parallel(
    moto_org: OrgFleet, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With --concurrency 3 the three members' roles are assumed at the same time: each
    AssumeRole waits at a barrier for the other two (a sequential run would break it)."""
    barrier = threading.Barrier(len(moto_org.members), timeout=10)

    def meet(**_: Any) -> None:
        barrier.wait()

    def prepare(client: Any, service: str, region: str) -> None:
        if service == "sts":
            client.meta.events.register("before-send.sts.AssumeRole", meet)

    patch_clients(monkeypatch, prepare)
    reach = resolve_accounts(org_options(moto_org, concurrency=3))
    assert reach.failures == []
    assert sorted(t.account_id for t in reach.targets) == sorted(
        [DEFAULT_ACCOUNT, *moto_org.members]
    )


def test_only_active_accounts_of_every_page_are_collected() -> None:
    """ListAccounts pages with NextToken; State (Status before 2026) says which accounts
    are ACTIVE. Shapes from the Organizations API reference, served by Stubber."""
    session = boto3.Session(
        aws_access_key_id="x", aws_secret_access_key="x", region_name="us-east-1"
    )
    org = collectors.common.make_client(session, "organizations", "us-east-1", None)
    stubber = Stubber(org)

    def account(number: int, **state: str) -> dict[str, Any]:
        return {"Id": f"{number:012d}", "Name": f"a{number}", **state}

    stubber.add_response(
        "list_accounts",
        {
            "Accounts": [
                account(1, State="ACTIVE", Status="ACTIVE"),
                account(2, State="SUSPENDED", Status="SUSPENDED"),
                account(3, State="PENDING_CLOSURE", Status="PENDING_CLOSURE"),
            ],
            "NextToken": "page-2",
        },
        {},
    )
    stubber.add_response(
        "list_accounts",
        {"Accounts": [account(4, Status="ACTIVE"), account(5, State="CLOSED")]},
        {"NextToken": "page-2"},
    )

    def made(*_: Any) -> Any:
        return org

    with stubber, pytest.MonkeyPatch.context() as patch:
        patch.setattr(collectors.common, "make_client", made)
        accounts = organization_accounts(session, CollectOptions(), "us-east-1")
    assert [a["Id"] for a in accounts] == ["000000000001", "000000000004"]


def test_cli_passes_exclusions_external_id_and_role_duration(
    moto_org: OrgFleet, db_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assumed: list[dict[str, Any]] = []

    def record(params: dict[str, Any], **_: Any) -> None:
        assumed.append(params)

    def prepare(client: Any, service: str, region: str) -> None:
        if service == "sts":
            client.meta.events.register("before-parameter-build.sts.AssumeRole", record)

    patch_clients(monkeypatch, prepare)
    kept, *skipped = moto_org.members
    result = CliRunner().invoke(
        cli,
        [
            "--db",
            str(db_path),
            "collect",
            "--endpoint-url",
            moto_org.endpoint_url,
            "--region",
            "us-east-1",
            "--only",
            "inventory",
            "--org-role-name",
            ORG_ROLE,
            *(arg for account in skipped for arg in ("--org-exclude", account)),
            "--external-id",
            "ext-42",
            "--role-duration",
            "1800",
            "--no-default-account",
        ],
    )
    assert result.exit_code == 0, result.output
    assert [(p["RoleArn"], p["ExternalId"], p["DurationSeconds"]) for p in assumed] == [
        (f"arn:aws:iam::{kept}:role/{ORG_ROLE}", "ext-42", 1800)
    ]
    assert {a for a, _ in stored_functions(Database(db_path))} == {kept}


def test_a_role_session_that_cannot_be_renewed_fails_that_account_only(
    moto_org: OrgFleet, db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The member's role is assumed once, then renewing it is denied (the role was changed
    mid-run): the member's part fails naming sts:AssumeRole, not a Lambda permission, and
    the caller's own account is still collected."""
    clock = FakeClock()
    expiry_of_token: dict[str, datetime] = {}
    member = moto_org.members[0]

    def issued(parsed: dict[str, Any], **_: Any) -> None:
        if "Credentials" not in parsed:  # the denied renewal
            return
        credentials = parsed["Credentials"]
        credentials["Expiration"] = clock.now + timedelta(seconds=3600)
        expiry_of_token[credentials["SessionToken"]] = credentials["Expiration"]

    def deny_renewal(request: Any, **_: Any) -> AWSResponse | None:
        if expiry_of_token:
            return sts_error(request, "AccessDenied", "not authorized to perform sts:AssumeRole")
        return None

    def lambda_call(request: Any, **_: Any) -> AWSResponse | None:
        token = request.headers.get("X-Amz-Security-Token")
        token = token.decode() if isinstance(token, bytes) else token
        expired = token in expiry_of_token and clock.now >= expiry_of_token[token]
        if token in expiry_of_token:
            clock.now += timedelta(minutes=10)
        if not expired:
            return None
        return AWSResponse(
            request.url,
            403,
            {"x-amzn-ErrorType": "ExpiredTokenException", "Content-Type": "application/json"},
            _Body(b'{"message": "The security token included in the request is expired"}'),  # type: ignore[arg-type]
        )

    def prepare(client: Any, service: str, region: str) -> None:
        if service == "sts":
            client.meta.events.register("after-call.sts.AssumeRole", issued)
            client.meta.events.register("before-send.sts.AssumeRole", deny_renewal)
        if service == "lambda":
            client.meta.events.register("before-send.lambda.*", lambda_call)

    patch_clients(monkeypatch, prepare)
    options = org_options(
        moto_org, org_exclude=tuple(m for m in moto_org.members if m != member), concurrency=1
    )
    summary = run_collection(db, options, now=NOW, clock=clock)

    status = {r.account_id: r for r in summary.results}
    assert status[DEFAULT_ACCOUNT].status == "ok"
    failed = status[member]
    assert failed.status in ("partial", "failed")
    assert ("sts:AssumeRole", "AccessDenied") in {(e["action"], e["code"]) for e in failed.errors}
    assert not any("missing IAM permission lambda" in e["message"] for e in failed.errors)
    assert {a for a, _ in stored_functions(db)} >= {DEFAULT_ACCOUNT}


def test_plan_covers_every_account_a_run_would_collect(moto_org: OrgFleet, db_path: Path) -> None:
    """`collect --plan` resolves accounts as a run does: the caller's own account and every
    ACTIVE member through its role, each priced from its own listing; nothing is stored."""
    result = CliRunner().invoke(
        cli,
        [
            "--db",
            str(db_path),
            "collect",
            "--endpoint-url",
            moto_org.endpoint_url,
            "--region",
            "us-east-1",
            "--org-role-name",
            ORG_ROLE,
            "--plan",
            "--format",
            "json",
        ],
    )
    assert result.exit_code == 0, result.output
    plan = json.loads(result.stdout)
    assert {t["account_id"]: t["functions"] for t in plan["targets"]} == {
        DEFAULT_ACCOUNT: 2,
        **dict.fromkeys(moto_org.members, FUNCTIONS_PER_MEMBER),
    }
    assert plan["functions"] == 2 + 3 * FUNCTIONS_PER_MEMBER
    assert plan["notes"] == []
    assert stored_functions(Database(db_path)) == []
