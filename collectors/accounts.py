"""Which accounts and regions to collect, and credentials that last as long as the run.

Accounts: the default credentials' own account, roles given with ``--role-arn``, and with
``--org-role-name`` every ACTIVE account of the AWS organisation (organizations:ListAccounts
from the management or a delegated-administrator account), each reached by assuming
``arn:<partition>:iam::<id>:role/<name>``. Assumed-role credentials come from botocore's
AssumeRoleCredentialFetcher inside DeferredRefreshableCredentials: the role is assumed on
first use and again shortly before the session expires, so a run of any length completes.

Regions: ``--region`` as given, or with ``--all-regions`` the regions each account has
enabled (ec2:DescribeRegions with that account's credentials; opt-in regions differ per
account). An account that cannot be reached (role not assumable, regions not listable)
fails alone; the others go on.
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from typing import Any

import boto3
import botocore.session
from botocore.credentials import AssumeRoleCredentialFetcher, DeferredRefreshableCredentials
from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    NoCredentialsError,
    PartialCredentialsError,
)

from collectors import common
from collectors.common import (
    CollectionAborted,
    CollectOptions,
    CredentialsError,
    SourceResult,
    Target,
    check_credentials,
    error_code,
)
from lambdascope.timeutil import Clock, utcnow

ROLE_SESSION_NAME = "lambdascope"
DEFAULT_ROLE_DURATION_S = 3600  # AssumeRole's default DurationSeconds
# The source of an account-level failure in collection_runs (region left empty).
ACCOUNT_SOURCE = "account"
_OPT_IN_NOT_ENABLED = "not-opted-in"
SKIPPED_REGION = "region not enabled in this account, skipped"


@dataclass
class Account:
    """One account to collect: a session (refreshing credentials when assumed)."""

    session: boto3.Session
    account_id: str = ""  # known up front except for --role-arn roles
    role_arn: str | None = None
    name: str = ""  # the organisation's name for it, shown in failures


@dataclass
class Reach:
    """The accounts x regions to collect, the accounts that failed, and notes for the user."""

    targets: list[Target] = field(default_factory=list)
    failures: list[SourceResult] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    base: boto3.Session | None = None
    home_region: str = ""


class RoleCredentials(DeferredRefreshableCredentials):
    """Assumed-role credentials renewed ahead of expiry in proportion to the session length.

    botocore renews 15 min (advisory) / 10 min (mandatory) before expiry: right for the
    default 1 h, but with a 900 s session every call would assume the role again.
    """

    def __init__(
        self, refresh_using: Callable[[], Any], duration_s: int, time_fetcher: Clock
    ) -> None:
        super().__init__(refresh_using, "assume-role", time_fetcher)
        self._advisory_refresh_timeout = min(15 * 60, duration_s // 3)
        self._mandatory_refresh_timeout = min(10 * 60, duration_s // 6)


class _NoCache(dict[str, Any]):
    """The fetcher's cache, always empty: DeferredRefreshableCredentials decides when to
    assume the role again (with the injected clock), so a second cache must not answer."""

    def __contains__(self, key: object) -> bool:
        return False


def base_session(options: CollectOptions) -> boto3.Session:
    """The default credential chain (or ``--profile``)."""
    try:
        return boto3.Session(profile_name=options.profile)
    except Exception as exc:  # ProfileNotFound and friends
        raise CredentialsError(f"cannot use AWS profile {options.profile!r}: {exc}") from None


def home_region(session: boto3.Session, options: CollectOptions) -> str:
    """Where STS, Organizations and region discovery are asked."""
    if options.regions:
        return options.regions[0]
    if session.region_name:
        return session.region_name
    if options.all_regions:
        return "us-east-1"
    raise CollectionAborted("no region: pass --region R (repeatable) or --all-regions")


def caller_identity(session: boto3.Session, options: CollectOptions, region: str) -> dict[str, Any]:
    """sts:GetCallerIdentity; rejected or missing credentials raise CredentialsError."""
    sts = common.make_client(session, "sts", region, options.endpoint_url)
    try:
        return dict(sts.get_caller_identity())
    except (ClientError, NoCredentialsError, PartialCredentialsError) as exc:
        check_credentials(exc)
        raise


def assume_role(
    session: boto3.Session,
    role_arn: str,
    options: CollectOptions,
    region: str,
    clock: Clock = utcnow,
) -> boto3.Session:
    """A session with the role's credentials, assumed on first use and again before expiry.

    ``--role-duration`` is passed as DurationSeconds, ``--external-id`` as ExternalId.
    Credentials stay in memory. ``clock`` (aware UTC) decides when they need refreshing.
    """
    source = session.get_credentials()
    if source is None:
        raise CredentialsError(
            "no AWS credentials found: set a profile (--profile) or the standard AWS"
            " environment variables"
        )
    extra: dict[str, Any] = {"RoleSessionName": ROLE_SESSION_NAME}
    if options.role_duration_s is not None:
        extra["DurationSeconds"] = options.role_duration_s
    if options.external_id is not None:
        extra["ExternalId"] = options.external_id

    def sts_client(service: str, **_source_keys: Any) -> Any:
        # The fetcher passes the source session's own keys: its client carries them.
        return common.make_client(session, service, region, options.endpoint_url)

    fetcher = AssumeRoleCredentialFetcher(
        client_creator=sts_client,
        source_credentials=source,
        role_arn=role_arn,
        extra_args=extra,
        cache=_NoCache(),
    )
    credentials = RoleCredentials(
        fetcher.fetch_credentials, options.role_duration_s or DEFAULT_ROLE_DURATION_S, clock
    )
    core = botocore.session.Session()
    # botocore offers no public setter for refreshable credentials on a session.
    core._credentials = credentials  # type: ignore[attr-defined]
    return boto3.Session(botocore_session=core, region_name=region)


def role_account(role_arn: str) -> str:
    """``arn:aws:iam::222222222222:role/x`` -> ``222222222222`` ('' when not an ARN)."""
    parts = role_arn.split(":")
    return parts[4] if len(parts) > 5 else ""


def organization_accounts(
    session: boto3.Session, options: CollectOptions, region: str
) -> list[dict[str, Any]]:
    """The organisation's ACTIVE accounts (every page of organizations:ListAccounts)."""
    org = common.make_client(session, "organizations", region, options.endpoint_url)
    accounts: list[dict[str, Any]] = []
    try:
        for page in org.get_paginator("list_accounts").paginate():
            accounts.extend(page.get("Accounts", []))
    except ClientError as exc:
        check_credentials(exc)
        raise CollectionAborted(
            f"cannot list the organisation's accounts: organizations:ListAccounts failed with"
            f" {error_code(exc)} (run it from the management account or a delegated"
            " administrator)"
        ) from None
    # State replaces Status (retired in 2026); either may be present.
    return [a for a in accounts if (a.get("State") or a.get("Status")) == "ACTIVE"]


def enabled_regions(session: boto3.Session, options: CollectOptions, region: str) -> list[str]:
    """Regions this account has enabled where Lambda exists (ec2:DescribeRegions)."""
    ec2 = common.make_client(session, "ec2", region, options.endpoint_url)
    answered = ec2.describe_regions()["Regions"]
    enabled = {r["RegionName"] for r in answered if r.get("OptInStatus") != _OPT_IN_NOT_ENABLED}
    lambda_regions = set(session.get_available_regions("lambda"))
    return sorted(enabled & lambda_regions) if lambda_regions else sorted(enabled)


def _accounts(
    base: boto3.Session, options: CollectOptions, home: str, clock: Clock
) -> list[Account]:
    """Every account to reach, the caller's own first (deduplicated by id)."""
    identity = caller_identity(base, options, home)
    own = str(identity["Account"])
    accounts: list[Account] = []
    if options.org_role_name:
        excluded = set(options.org_exclude)
        if options.include_default_account and own not in excluded:
            accounts.append(Account(base, own))
        partition = str(identity.get("Arn", "arn:aws:")).split(":")[1] or "aws"
        role_name = options.org_role_name.strip("/")
        for member in organization_accounts(base, options, home):
            account_id = str(member["Id"])
            if account_id == own or account_id in excluded:
                continue
            role_arn = f"arn:{partition}:iam::{account_id}:role/{role_name}"
            session = assume_role(base, role_arn, options, home, clock)
            accounts.append(Account(session, account_id, role_arn, str(member.get("Name", ""))))
    elif options.include_default_account or not options.role_arns:
        accounts.append(Account(base, own))
    for role_arn in options.role_arns:
        session = assume_role(base, role_arn, options, home, clock)
        accounts.append(Account(session, "", role_arn))
    return accounts


class _AccountFailed(Exception):
    def __init__(self, action: str, code: str, message: str) -> None:
        super().__init__(message)
        self.action, self.code, self.message = action, code, message


def _reach(account: Account, options: CollectOptions, home: str) -> list[str]:
    """Assume the account's role, learn its id and its regions; _AccountFailed otherwise."""
    action = "sts:AssumeRole"
    try:
        credentials = account.session.get_credentials()
        if account.role_arn is not None and credentials is not None:
            credentials.get_frozen_credentials()  # assumes the role
        action = "sts:GetCallerIdentity"
        if not account.account_id:
            sts = common.make_client(account.session, "sts", home, options.endpoint_url)
            account.account_id = str(sts.get_caller_identity()["Account"])
        action = "ec2:DescribeRegions"
        if options.all_regions:
            return enabled_regions(account.session, options, home)
    except ClientError as exc:
        code = error_code(exc) or "error"
        what = f"cannot assume {account.role_arn}" if action == "sts:AssumeRole" else action
        detail = str(exc.response.get("Error", {}).get("Message", "")) or str(exc)
        raise _AccountFailed(action, code, f"{what}: {detail}"[:300]) from None
    return list(dict.fromkeys(options.regions))


def resolve(options: CollectOptions, clock: Clock = utcnow) -> Reach:
    """Every account x region to collect (STS, Organizations and EC2 calls only).

    Missing or rejected default credentials, no region, or an organisation that cannot be
    listed raise CollectionAborted / CredentialsError; an account that cannot be reached
    becomes a failure of that account alone.
    """
    base = base_session(options)
    home = home_region(base, options)
    if not options.regions and not options.all_regions:
        options = replace(options, regions=(home,))
    accounts = _accounts(base, options, home, clock)
    reach = Reach(base=base, home_region=home)
    regions_of: dict[int, list[str]] = {}

    def reach_one(index: int) -> None:
        account = accounts[index]
        try:
            regions_of[index] = _reach(account, options, home)
        except _AccountFailed as failed:
            account.account_id = account.account_id or role_account(account.role_arn or "")
            result = SourceResult(account.account_id, "", ACCOUNT_SOURCE, status="failed")
            result.errors.append(
                {"action": failed.action, "code": failed.code, "message": failed.message}
            )
            named = f" ({account.name})" if account.name else ""
            result.message = f"account{named} not reached; nothing collected there"
            reach.failures.append(result)

    with ThreadPoolExecutor(max_workers=max(1, options.concurrency)) as pool:
        list(pool.map(reach_one, range(len(accounts))))
    reach.failures.sort(key=lambda failure: failure.account_id)
    seen: set[str] = set()
    every_region = sorted({r for regions in regions_of.values() for r in regions})
    for index, account in enumerate(accounts):
        if index not in regions_of or account.account_id in seen:
            continue
        seen.add(account.account_id)
        regions = regions_of[index]
        if options.all_regions:
            reach.notes.extend(
                f"{account.account_id} {region}: {SKIPPED_REGION}"
                for region in every_region
                if region not in regions
            )
        reach.targets.extend(
            Target(account.session, account.account_id, region, options.endpoint_url)
            for region in regions
        )
    return reach


def base_accepted(reach: Reach, options: CollectOptions) -> Callable[[], bool]:
    """A check, made after an authentication error in one part, that the default
    credentials themselves are still accepted (then only that part failed)."""

    def check() -> bool:
        if reach.base is None:
            return False
        try:
            caller_identity(reach.base, options, reach.home_region)
        except CredentialsError:
            return False
        except ClientError:
            return True  # not a credentials problem
        return True

    return check


def region_enabled(reach: Reach, options: CollectOptions) -> Callable[[Target], bool | None]:
    """A check, made after credentials were not accepted in one account x region, whether
    that account has enabled the region (ec2:DescribeRegions from the home region):
    False = not enabled (skip it), True = enabled, None = could not tell."""

    def check(target: Target) -> bool | None:
        ec2 = common.make_client(target.session, "ec2", reach.home_region, options.endpoint_url)
        try:
            answered = ec2.describe_regions(RegionNames=[target.region], AllRegions=True)
        except (ClientError, BotoCoreError):
            return None
        statuses = {
            r.get("OptInStatus") for r in answered["Regions"] if r["RegionName"] == target.region
        }
        if not statuses:
            return None
        return _OPT_IN_NOT_ENABLED not in statuses

    return check
