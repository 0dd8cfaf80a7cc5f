"""Types shared by the alert rules, the alerts table and delivery."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

# Rules whose findings are events (a deploy, a week): one alert per key for ever. The
# others are conditions: an alert opens when the condition starts, stays open (and
# silent) while it holds, resolves when it stops, and a later recurrence is a new alert.
ONCE_RULES = frozenset({"deploy_regression", "digest"})
# Rules whose findings present on the first evaluation of a store are recorded as the
# baseline without being announced (else the first check announces the whole fleet).
BASELINE_RULES = frozenset({"newly_stale", "newly_under_provisioned"})

RULE_TITLES = {
    "oom": "Out of memory",
    "timeouts": "Timeouts",
    "error_rate": "Error rate",
    "throttles": "Throttles",
    "p95_regression": "p95 duration regression",
    "deploy_regression": "Deploy regression",
    "newly_stale": "Newly stale",
    "newly_under_provisioned": "Newly under-provisioned",
    "digest": "Weekly digest",
}


@dataclass(frozen=True)
class Finding:
    """What one rule found about one function (or the fleet, for the digest) in a check.

    ``key`` identifies the alert within its rule (the function, plus the deploy time for
    deploy regressions); ``summary`` is one line with the figures; times are epoch
    seconds.
    """

    rule: str
    key: str
    severity: str
    summary: str
    window_start: int
    window_end: int
    function_id: int | None = None
    function_name: str | None = None
    account_id: str = ""
    region: str = ""
    details: dict[str, Any] = field(default_factory=dict)
    body: str | None = None
