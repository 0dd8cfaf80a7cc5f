"""docs/iam-policy.json allows exactly the AWS operations the collectors make.

Every operation is recorded with a botocore ``before-call`` hook on every client the
collectors create, during full collections over real HTTP against moto (both log modes,
an assumed role, --all-regions).
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

import collectors.aws
from collectors.aws import CollectOptions, iam_action, resolve_targets, run_collection
from tests.moto_fleet import NOW, REGIONS, ROLE_ARN, Fleet, small_moto_fleet

__all__ = ["small_moto_fleet"]

POLICY = Path(__file__).resolve().parents[1] / "docs" / "iam-policy.json"


def allowed_actions() -> list[str]:
    policy = json.loads(POLICY.read_text())
    actions: list[str] = []
    for statement in policy["Statement"]:
        assert statement["Effect"] == "Allow"
        value = statement["Action"]
        actions.extend([value] if isinstance(value, str) else value)
    return actions


def is_allowed(action: str, actions: list[str]) -> bool:
    return any(fnmatch.fnmatchcase(action.lower(), pattern.lower()) for pattern in actions)


@pytest.fixture
def recorded(monkeypatch: pytest.MonkeyPatch) -> Iterator[set[str]]:
    seen: set[str] = set()
    original = collectors.aws.make_client

    def recording_client(*args: Any, **kwargs: Any) -> Any:
        client = original(*args, **kwargs)

        def record(model: Any, **_: Any) -> None:
            seen.add(iam_action(client, model.name))

        client.meta.events.register("before-call.*.*", record)
        return client

    monkeypatch.setattr(collectors.aws, "make_client", recording_client)
    yield seen


def test_policy_allows_exactly_the_operations_collectors_make(
    small_moto_fleet: Fleet, db: Database, recorded: set[str]
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
    # A resumed run also looks for late log events (DescribeLogStreams).
    resumed = {k: v for k, v in base.items() if k != "since"}
    later = NOW + timedelta(hours=1)
    run_collection(db, CollectOptions(**resumed, logs_mode="filter", only=("logs",)), now=later)
    # --all-regions only adds region discovery; resolving the targets makes that call.
    all_regions = {**base, "all_regions": True, "regions": ("us-east-1",)}
    assert len(resolve_targets(CollectOptions(**all_regions))) > 2 * len(REGIONS)

    actions = allowed_actions()
    assert sorted(a for a in recorded if not is_allowed(a, actions)) == []
    # Nothing in the policy that the collectors never call: least privilege.
    assert sorted(actions) == sorted(recorded)
