"""docs/iam-policy.json allows exactly the AWS operations the collectors make.

Every operation is recorded with a botocore ``before-call`` hook on every client the
collectors create, during full collections over real HTTP against moto (the three log
modes, an Athena query stopped on request, an assumed role, --all-regions). The statements
for what Athena does with the caller's permissions (Glue catalog, reading the archive,
writing the results; ``ON_BEHALF``) cannot be recorded here: a test of their own checks
them against what the Athena user guide lists.
"""

from __future__ import annotations

import fnmatch
import json
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlite_utils import Database

import collectors.common
from collectors.aws import CollectOptions, iam_action, resolve_targets, run_collection
from tests.moto_fleet import NOW, REGIONS, ROLE_ARN, Fleet, small_moto_fleet
from tests.test_athena_collect import set_athena_transition

__all__ = ["small_moto_fleet"]

POLICY = Path(__file__).resolve().parents[1] / "docs" / "iam-policy.json"
# Made only on faults: StopQuery for an Insights query stuck in Scheduled
# (test_logs_insights.py::test_a_query_stuck_in_scheduled_is_stopped_at_its_deadline).
FAULT_ONLY = {"logs:StopQuery"}


READ_ONLY = "LambdascopeReadOnly"  # the member role's policy (and the caller's own account)


def allowed_actions(sid: str | None = None) -> list[str]:
    """The actions of the policy's statements (of one statement with ``sid``)."""
    policy = json.loads(POLICY.read_text())
    actions: list[str] = []
    for statement in policy["Statement"]:
        if statement.get("Sid") in ON_BEHALF:
            continue
        assert statement["Effect"] == "Allow"
        if sid is not None and statement["Sid"] != sid:
            continue
        value = statement["Action"]
        actions.extend([value] if isinstance(value, str) else value)
    return actions


def is_allowed(action: str, actions: list[str]) -> bool:
    return any(fnmatch.fnmatchcase(action.lower(), pattern.lower()) for pattern in actions)


# Statements for the calls Athena makes with the caller's permissions (and ingest s3://)
ON_BEHALF = ("LambdascopeAthenaCatalog", "LambdascopeArchiveRead", "LambdascopeAthenaResults")


def test_policy_lets_athena_read_the_archive_and_write_results() -> None:
    """Athena user guide, "Identity and access management in Athena": the Glue catalog,
    the source data in S3, the results location (GetQueryResults reads the result object)."""
    policy = json.loads(POLICY.read_text())
    by_sid = {s.get("Sid"): s for s in policy["Statement"]}
    assert set(ON_BEHALF) <= set(by_sid)
    catalog = by_sid["LambdascopeAthenaCatalog"]["Action"]
    archive = by_sid["LambdascopeArchiveRead"]["Action"]
    results = by_sid["LambdascopeAthenaResults"]["Action"]
    assert {"glue:GetDatabase", "glue:GetTable"} <= set(catalog)
    assert {"s3:GetObject", "s3:ListBucket", "s3:GetBucketLocation"} <= set(archive)
    assert {"s3:PutObject", "s3:GetObject", "s3:GetBucketLocation"} <= set(results)
    assert "s3:PutObject" not in archive  # the archive is only read


@pytest.fixture
def recorded(monkeypatch: pytest.MonkeyPatch) -> Iterator[set[tuple[str, str]]]:
    """(principal, action) of every call: principal "member" for an assumed role's
    credentials, "caller" for the default credentials."""
    seen: set[tuple[str, str]] = set()
    original = collectors.common.make_client

    def recording_client(*args: Any, **kwargs: Any) -> Any:
        client = original(*args, **kwargs)
        credentials = args[0].get_credentials()
        principal = "member" if credentials.method == "assume-role" else "caller"

        def record(model: Any, **_: Any) -> None:
            seen.add((principal, iam_action(client, model.name)))

        client.meta.events.register("before-call.*.*", record)
        return client

    monkeypatch.setattr(collectors.common, "make_client", recording_client)
    yield seen


def test_policy_allows_exactly_the_operations_collectors_make(
    small_moto_fleet: Fleet, db: Database, recorded: set[tuple[str, str]]
) -> None:
    base: dict[str, Any] = {
        "regions": REGIONS,
        "role_arns": (ROLE_ARN,),
        "since": timedelta(hours=6),
        "endpoint_url": small_moto_fleet.endpoint_url,
        "poll_interval_s": 0.0,
    }
    run_collection(db, CollectOptions(**base), now=NOW)
    run_collection(db, CollectOptions(**base, logs_mode="filter", only=("logs",)), now=NOW)
    athena: dict[str, Any] = {
        **base,
        "logs_mode": "athena",
        "only": ("logs",),
        "athena_table": "lambda_archive.cwl_firehose",
        "athena_output": "s3://bucket/results/",
    }
    # stopped while the query is queued: StopQueryExecution; then a run to its end
    set_athena_transition(small_moto_fleet, {"progression": "manual", "times": 3})
    try:
        started = lambda: ("caller", "athena:StartQueryExecution") in recorded  # noqa: E731
        run_collection(db, CollectOptions(**athena), now=NOW, stop=started)
    finally:
        set_athena_transition(small_moto_fleet, None)
    run_collection(db, CollectOptions(**athena), now=NOW)
    # A resumed run also looks for late log events (DescribeLogStreams).
    resumed = {k: v for k, v in base.items() if k != "since"}
    later = NOW + timedelta(hours=1)
    run_collection(db, CollectOptions(**resumed, logs_mode="filter", only=("logs",)), now=later)
    # --all-regions only adds region discovery; resolving the targets makes that call.
    all_regions = {**base, "all_regions": True, "regions": ("us-east-1",)}
    assert len(resolve_targets(CollectOptions(**all_regions))) > 2 * len(REGIONS)
    # --org-role-name adds the organisation's account list (from the caller) and AssumeRole.
    org = small_moto_fleet.client("organizations", "us-east-1")
    org.create_organization(FeatureSet="ALL")
    org.create_account(AccountName="member", Email="member@example.com")
    org_options = {**base, "role_arns": (), "org_role_name": "OrganizationAccountAccessRole"}
    assert len(resolve_targets(CollectOptions(**org_options))) == 2 * len(REGIONS)

    # Compute Optimizer is only asked at AWS's own endpoints (moto has none): its call is
    # made on a client from the same factory, answered by botocore's Stubber.
    collect_compute_optimizer(small_moto_fleet)

    actions = allowed_actions()
    assert sorted(a for _, a in recorded if not is_allowed(a, actions)) == []
    # Nothing in the policy that the collectors never call: least privilege. Calls made only
    # on faults moto cannot produce are covered by their own tests (see FAULT_ONLY).
    assert sorted(actions) == sorted({a for _, a in recorded} | FAULT_ONLY)
    # The member role needs only the read-only statement; the caller adds the other two.
    member = {a for principal, a in recorded if principal == "member"}
    assert sorted(a for a in member if not is_allowed(a, allowed_actions(READ_ONLY))) == []
    assert "lambda:ListFunctions" in member and "ec2:DescribeRegions" in member
    caller_only = {a for _, a in recorded} - set(allowed_actions(READ_ONLY))
    caller_only -= set(allowed_actions("LambdascopeAthenaQueries"))  # athena mode's own
    assert sorted(caller_only) == ["organizations:ListAccounts", "sts:AssumeRole"]


def collect_compute_optimizer(fleet: Fleet) -> None:
    from botocore.stub import Stubber

    from collectors import compute_optimizer

    session = fleet.session()
    target = collectors.common.Target(session, "123456789012", REGIONS[0])
    client = target.client("compute-optimizer")
    stubber = Stubber(client)
    stubber.add_response(
        "get_lambda_function_recommendations", {"lambdaFunctionRecommendations": []}
    )
    with stubber:
        assert compute_optimizer.get_recommendations(client, target.account_id) == []
