"""Checks of values a user types (account, region, function name): each gives a warning
line, or None when the value has the shape AWS uses. Values are still accepted (logs may
come from elsewhere); the warning only says a typo is likely."""

from __future__ import annotations

import re

# Partitions' region names: us-east-1, eu-central-2, us-gov-west-1, cn-north-1,
# us-isob-east-1, ap-southeast-7, mx-central-1 ...
_REGION_RE = re.compile(r"[a-z]{2}(?:-gov|-iso[a-z]?)?-[a-z]+-\d{1,2}")
_ACCOUNT_RE = re.compile(r"\d{12}")
# Lambda's FunctionName (the name part, without an ARN): 1-64 of letters, digits, - and _
_FUNCTION_RE = re.compile(r"[A-Za-z0-9_-]{1,64}")


def account_warning(account_id: str) -> str | None:
    """A warning when ``account_id`` is given and is not 12 digits."""
    if not account_id or _ACCOUNT_RE.fullmatch(account_id):
        return None
    return f"warning: --account {account_id!r} is not a 12-digit AWS account id"


def region_warning(region: str) -> str | None:
    """A warning when ``region`` is given and is not shaped like a region (us-east-1)."""
    if not region or _REGION_RE.fullmatch(region):
        return None
    return f"warning: --region {region!r} is not an AWS region name such as us-east-1"


def function_name_warning(function_name: str | None) -> str | None:
    """A warning when ``function_name`` has characters (or a length) Lambda does not
    allow in a function name."""
    if function_name is None or _FUNCTION_RE.fullmatch(function_name):
        return None
    return (
        f"warning: function name {function_name!r} is not a Lambda function name"
        " (1-64 letters, digits, - and _)"
    )


def filter_warnings(accounts: tuple[str, ...], regions: tuple[str, ...]) -> list[str]:
    """Warnings for ``--account`` / ``--region`` filters that cannot match AWS's values."""
    found = [account_warning(a) for a in accounts] + [region_warning(r) for r in regions]
    return [warning for warning in found if warning is not None]
