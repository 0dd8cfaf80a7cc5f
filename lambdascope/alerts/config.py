"""Alert rules configuration: defaults that work without a file, and the TOML rules file.

A rules file (``--rules FILE``) may change thresholds, turn rules off, mute functions or
tags, name destinations and route rules or tagged functions to them::

    dashboard_url = "https://lambdascope.example.com"

    [destinations]
    oncall = "json://alerts.internal:8080/hook"
    payments = "slack://T000/B000/XXXX"

    [rules.error_rate]
    threshold = 0.10
    destinations = ["oncall"]

    [rules.newly_stale]
    enabled = false

    [mute]
    functions = ["sandbox-*"]
    tags = ["env=dev"]

    [[routes]]
    tag = "team=payments"
    destinations = ["payments"]

Unknown rules, keys or destinations are errors (one line, naming the key), so a typo
never silently turns a rule off.
"""

from __future__ import annotations

import fnmatch
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lambdascope.timeutil import parse_duration


class RulesError(Exception):
    """A rules file that cannot be read or holds a bad value (one clear line)."""


# Per rule: its parameters with their defaults (the type of a default is the type a file
# must give). Durations are text like "1h", "24h", "14d".
COMMON_DEFAULTS: dict[str, Any] = {
    "enabled": True,
    "severity": "warning",
    "destinations": [],
    "notify_resolved": True,
}
RULE_DEFAULTS: dict[str, dict[str, Any]] = {
    "oom": {"severity": "critical", "lookback": "1h", "min_count": 1},
    "timeouts": {"severity": "critical", "lookback": "1h", "min_count": 1},
    "error_rate": {"lookback": "1h", "threshold": 0.05, "min_invocations": 20},
    "throttles": {"lookback": "1h", "min_count": 1},
    "p95_regression": {
        "window": "3h",
        "min_increase": 0.20,
        "min_invocations": 100,
        "min_delta_ms": 5.0,
    },
    "deploy_regression": {
        "lookback": "24h",
        "baseline_days": 7,
        "max_after": "6h",
        "min_after_hours": 3,
        "min_invocations": 50,
        "confidence": 0.99,
        "min_effect": 0.05,
        "min_error_rate_increase": 0.02,
        "resamples": 1000,
        "notify_resolved": False,
    },
    "newly_stale": {
        "severity": "info",
        "idle_days": 30,
        "modified_days": 30,
        "notify_resolved": False,
    },
    "newly_under_provisioned": {
        "window": "14d",
        "notify_resolved": False,
    },
    "digest": {"severity": "info", "notify_resolved": False, "top": 10},
}
RULE_NAMES = tuple(RULE_DEFAULTS)
SEVERITIES = ("critical", "warning", "info")


@dataclass(frozen=True)
class Route:
    """Alerts of functions matching ``tag`` / ``function`` (glob), optionally only for
    ``rules``, go to ``destinations`` (names from the [destinations] table)."""

    destinations: tuple[str, ...]
    tag: str | None = None
    function: str | None = None
    rules: tuple[str, ...] = ()

    def matches(self, rule: str, function_name: str | None, tags: Mapping[str, str]) -> bool:
        if self.rules and rule not in self.rules:
            return False
        if self.function is not None and (
            function_name is None or not fnmatch.fnmatchcase(function_name, self.function)
        ):
            return False
        return self.tag is None or tag_matches(self.tag, tags)


def tag_matches(spec: str, tags: Mapping[str, str]) -> bool:
    """``"key=value"`` (exact value) or ``"key"`` (tag present)."""
    key, sep, value = spec.partition("=")
    return key in tags and (not sep or tags[key] == value)


@dataclass(frozen=True)
class AlertConfig:
    """Effective rules configuration: parameters per rule, mutes, destinations, routes."""

    rules: dict[str, dict[str, Any]] = field(default_factory=dict)
    mute_functions: tuple[str, ...] = ()
    mute_tags: tuple[str, ...] = ()
    destinations: dict[str, str] = field(default_factory=dict)
    routes: tuple[Route, ...] = ()
    dashboard_url: str | None = None

    def rule(self, name: str) -> dict[str, Any]:
        """The parameters of one rule (defaults merged with the file)."""
        return self.rules.get(name) or _rule_defaults(name)

    def enabled(self, name: str) -> bool:
        return bool(self.rule(name)["enabled"])

    def seconds(self, rule: str, key: str) -> int:
        """A duration parameter in seconds."""
        return int(parse_duration(str(self.rule(rule)[key])).total_seconds())

    def muted(self, function_name: str | None, tags: Mapping[str, str]) -> bool:
        """Whether alerts about this function are muted by name glob or tag."""
        if function_name is not None and any(
            fnmatch.fnmatchcase(function_name, pattern) for pattern in self.mute_functions
        ):
            return True
        return any(tag_matches(spec, tags) for spec in self.mute_tags)

    def destinations_for(
        self, rule: str, function_name: str | None, tags: Mapping[str, str]
    ) -> tuple[str, ...]:
        """Names of the file's destinations an alert goes to: every matching route's,
        else the rule's ``destinations``, else all of them."""
        routed: list[str] = []
        for route in self.routes:
            if route.matches(rule, function_name, tags):
                routed.extend(d for d in route.destinations if d not in routed)
        if routed:
            return tuple(routed)
        own = self.rule(rule)["destinations"]
        return tuple(own) if own else tuple(self.destinations)


def _rule_defaults(name: str) -> dict[str, Any]:
    return {**COMMON_DEFAULTS, **RULE_DEFAULTS[name]}


def default_config() -> AlertConfig:
    """The configuration used without a rules file."""
    return AlertConfig(rules={name: _rule_defaults(name) for name in RULE_NAMES})


def _check_value(where: str, default: Any, value: Any) -> Any:
    if isinstance(default, bool):
        if not isinstance(value, bool):
            raise RulesError(f"{where} must be true or false")
        return value
    if isinstance(default, int):
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise RulesError(f"{where} must be a whole number >= 0")
        return value
    if isinstance(default, float):
        if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
            raise RulesError(f"{where} must be a number >= 0")
        return float(value)
    if isinstance(default, list):
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise RulesError(f"{where} must be a list of names")
        return list(value)
    if not isinstance(value, str):
        raise RulesError(f"{where} must be text")
    return value


def _check_rule(name: str, raw: Any) -> dict[str, Any]:
    if name not in RULE_DEFAULTS:
        raise RulesError(f"unknown rule [rules.{name}] (rules: {', '.join(RULE_NAMES)})")
    if not isinstance(raw, dict):
        raise RulesError(f"[rules.{name}] must be a table")
    params = _rule_defaults(name)
    for key, value in raw.items():
        if key not in params:
            raise RulesError(
                f"unknown key {key!r} in [rules.{name}] (keys: {', '.join(sorted(params))})"
            )
        params[key] = _check_value(f"rules.{name}.{key}", params[key], value)
    if params["severity"] not in SEVERITIES:
        raise RulesError(f"rules.{name}.severity must be one of {', '.join(SEVERITIES)}")
    for key, default in RULE_DEFAULTS[name].items():
        if isinstance(default, str) and key != "severity":
            try:
                parse_duration(params[key])
            except ValueError as exc:
                raise RulesError(f"rules.{name}.{key}: {exc}") from None
    return params


def _names(where: str, value: Any) -> tuple[str, ...]:
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise RulesError(f"{where} must be a list of text")
    return tuple(value)


def parse_config(data: Mapping[str, Any]) -> AlertConfig:
    """Check a parsed rules document and merge it with the defaults."""
    known = {"rules", "mute", "destinations", "routes", "dashboard_url"}
    for key in data:
        if key not in known:
            raise RulesError(f"unknown top-level key {key!r} (keys: {', '.join(sorted(known))})")
    rules_raw = data.get("rules", {})
    if not isinstance(rules_raw, dict):
        raise RulesError("[rules] must be a table of rule tables")
    rules = {name: _rule_defaults(name) for name in RULE_NAMES}
    for name, raw in rules_raw.items():
        rules[name] = _check_rule(name, raw)
    mute = data.get("mute", {})
    if not isinstance(mute, dict) or set(mute) - {"functions", "tags"}:
        raise RulesError("[mute] takes only `functions` and `tags` lists")
    destinations = data.get("destinations", {})
    if not isinstance(destinations, dict) or not all(
        isinstance(v, str) and v for v in destinations.values()
    ):
        raise RulesError("[destinations] must map names to notification URLs")
    routes: list[Route] = []
    routes_raw = data.get("routes", [])
    if not isinstance(routes_raw, list):
        raise RulesError("routes must be an array of tables ([[routes]])")
    for i, raw in enumerate(routes_raw):
        if not isinstance(raw, dict) or set(raw) - {"tag", "function", "rules", "destinations"}:
            raise RulesError(f"routes[{i}] takes tag, function, rules and destinations")
        for text_key in ("tag", "function"):
            if text_key in raw and not isinstance(raw[text_key], str):
                raise RulesError(f"routes[{i}].{text_key} must be text")
        route = Route(
            destinations=_names(f"routes[{i}].destinations", raw.get("destinations")),
            tag=raw.get("tag"),
            function=raw.get("function"),
            rules=_names(f"routes[{i}].rules", raw.get("rules", [])),
        )
        for rule in route.rules:
            if rule not in RULE_DEFAULTS:
                raise RulesError(f"routes[{i}] names an unknown rule {rule!r}")
        routes.append(route)
    named = [d for r in routes for d in r.destinations]
    named += [d for params in rules.values() for d in params["destinations"]]
    for name in named:
        if name not in destinations:
            raise RulesError(f"destination {name!r} is not defined in [destinations]")
    dashboard_url = data.get("dashboard_url")
    if dashboard_url is not None and not isinstance(dashboard_url, str):
        raise RulesError("dashboard_url must be text")
    return AlertConfig(
        rules=rules,
        mute_functions=_names("mute.functions", mute.get("functions", [])),
        mute_tags=_names("mute.tags", mute.get("tags", [])),
        destinations=dict(destinations),
        routes=tuple(routes),
        dashboard_url=dashboard_url,
    )


def load_config(path: str | Path | None) -> AlertConfig:
    """The defaults, or the defaults changed by the TOML rules file at ``path``."""
    if path is None:
        return default_config()
    try:
        with open(path, "rb") as handle:
            data = tomllib.load(handle)
    except OSError as exc:
        raise RulesError(f"cannot read rules file {path}: {exc.strerror or exc}") from None
    except tomllib.TOMLDecodeError as exc:
        raise RulesError(f"rules file {path} is not valid TOML: {exc}") from None
    return parse_config(data)
