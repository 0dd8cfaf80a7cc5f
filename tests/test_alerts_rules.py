"""Each alert rule on a synthetic store with a known answer."""

from __future__ import annotations

import random
from pathlib import Path

from sqlite_utils import Database

from lambdascope.alerts import rules
from lambdascope.alerts.config import AlertConfig, default_config, parse_config
from lambdascope.alerts.model import Finding
from tests.alerts_store import HOUR, add_function, add_hour, add_metrics, lognormal

# 2026-12-04 15:20 UTC: the current hour is 15:00, a 1 h lookback reads 14:00 and 15:00
NOW = 1796397600 + 20 * 60
H = NOW - NOW % HOUR


def _only(
    config: AlertConfig, rule: str, db: Database, last_check: int | None = None
) -> list[Finding]:
    findings, ran, failed = rules.evaluate(db, _just(config, rule), NOW, last_check)
    assert failed == {}
    assert ran == [rule]
    return findings


def _just(config: AlertConfig, rule: str) -> AlertConfig:
    return AlertConfig(
        rules={name: {**params, "enabled": name == rule} for name, params in config.rules.items()},
        mute_functions=config.mute_functions,
        mute_tags=config.mute_tags,
    )


def _names(findings: list[Finding]) -> list[str]:
    return sorted(f.function_name or "" for f in findings)


def test_oom_counts_the_lookback_and_since_the_last_check(db: Database) -> None:
    a, b, c = (add_function(db, n) for n in ("a", "b", "c"))
    add_hour(db, a, H - HOUR, durations=[10.0] * 40, out_of_memory=2)
    add_hour(db, b, H, durations=[10.0] * 40)
    add_hour(db, c, H - 3 * HOUR, durations=[10.0] * 40, out_of_memory=1)
    found = _only(default_config(), "oom", db)
    assert _names(found) == ["a"]
    assert found[0].summary == "2 out-of-memory errors since 14:00Z at 512 MB (max used 100 MB)"
    assert found[0].severity == "critical"
    assert found[0].key == "123456789012/us-east-1/a"
    # the last check was 4 h ago: its OOMs since then are new
    assert _names(_only(default_config(), "oom", db, last_check=NOW - 4 * HOUR)) == ["a", "c"]
    # ... but never more than a day back
    assert _names(_only(default_config(), "oom", db, last_check=NOW - 9 * 86400)) == ["a", "c"]


def test_timeouts(db: Database) -> None:
    a, b = add_function(db, "a", timeout_s=3), add_function(db, "b")
    add_hour(db, a, H, durations=[3000.0] * 5, timeouts=5)
    add_hour(db, b, H, durations=[10.0] * 5)
    found = _only(default_config(), "timeouts", db)
    assert [f.summary for f in found] == ["5 timeouts since 14:00Z (timeout 3 s)"]


def test_error_rate_threshold_and_minimum_invocations(db: Database) -> None:
    above, few, at, calm = (add_function(db, n) for n in ("above", "few", "at", "calm"))
    add_hour(db, above, H - HOUR, durations=[10.0] * 100, errors=6)
    add_hour(db, few, H, durations=[10.0] * 10, errors=5)  # 50 % of 10: below 20 invocations
    add_hour(db, at, H, durations=[10.0] * 100, errors=5)  # exactly 5 %: not above
    add_hour(db, calm, H - 2 * HOUR, durations=[10.0] * 100, errors=50)  # outside the lookback
    found = _only(default_config(), "error_rate", db)
    assert [(f.function_name, f.summary) for f in found] == [
        ("above", "6.0 % errors (6 of 100) in the hour from 14:00Z (threshold 5.0 %)")
    ]
    assert found[0].details["error_rate"] == 0.06
    stricter = parse_config({"rules": {"error_rate": {"threshold": 0.1}}})
    assert _only(stricter, "error_rate", db) == []
    looser = parse_config({"rules": {"error_rate": {"min_invocations": 5}}})
    assert _names(_only(looser, "error_rate", db)) == ["above", "few"]


def test_throttles_come_from_cloudwatch(db: Database) -> None:
    a, b = add_function(db, "a"), add_function(db, "b")
    add_metrics(db, a, H, invocations=200, throttles=4)
    add_metrics(db, b, H, invocations=200, throttles=0)
    found = _only(default_config(), "throttles", db)
    assert [f.summary for f in found] == ["4 throttled invocations since 14:00Z (200 ran)"]


def test_p95_regression_against_the_same_hours_last_week(db: Database) -> None:
    rng = random.Random(7)
    slower, same = add_function(db, "slower"), add_function(db, "same")
    week = 7 * 86400
    for hour in (H - 2 * HOUR, H - HOUR, H):
        add_hour(db, slower, hour - week, durations=lognormal(rng, 200, 100.0, 0.2))
        add_hour(db, slower, hour, durations=lognormal(rng, 200, 130.0, 0.2))
        add_hour(db, same, hour - week, durations=lognormal(rng, 200, 100.0, 0.2))
        add_hour(db, same, hour, durations=lognormal(rng, 200, 100.0, 0.2))
    found = _only(default_config(), "p95_regression", db)
    assert _names(found) == ["slower"]
    increase = found[0].details["increase"]
    assert 0.22 < increase < 0.38  # +30 % by construction, within sampling and 2 % buckets
    assert "above the same hours last week" in found[0].summary


def test_deploy_regression_finds_a_slower_deploy_and_not_an_unchanged_one(db: Database) -> None:
    rng = random.Random(11)
    deploy_at = H - 5 * HOUR + 600
    slower = add_function(db, "slower", last_modified=deploy_at)
    same = add_function(db, "same", last_modified=deploy_at)
    for hour in range(H - 29 * HOUR, H + HOUR, HOUR):
        after = hour > deploy_at
        for fid, factor in ((slower, 1.25 if after else 1.0), (same, 1.0)):
            add_hour(db, fid, hour, durations=lognormal(rng, 150, 80.0 * factor, 0.25))
    found = _only(default_config(), "deploy_regression", db)
    assert _names(found) == ["slower"]
    details = found[0].details
    assert details["metric"] == "p95_duration"
    assert details["deploy_at"] == deploy_at
    assert 0.15 < details["effect"] < 0.35
    assert details["confidence"] >= 0.99
    assert details["interval_90"][0] > 0
    assert found[0].key == f"123456789012/us-east-1/slower@{deploy_at}:p95_duration"
    assert "after the change at 2026-12-04T10:10:00Z (LastModified): p95 duration" in (
        found[0].summary
    )


def test_deploys_from_versions_and_memory_changes(db: Database) -> None:
    fid = add_function(db, "resized", memory_mb=1024)
    with db.conn:
        db.conn.execute(
            "INSERT INTO function_versions (function_id, version, last_modified)"
            " VALUES (?, '7', ?), (?, '$LATEST', ?)",
            (fid, H - 10 * HOUR + 5, fid, H - 10 * HOUR + 5),
        )
    for hour in range(H - 30 * HOUR, H, HOUR):
        add_hour(
            db, fid, hour, durations=[50.0] * 10, memory_mb=512 if hour < H - 4 * HOUR else 1024
        )
    found = rules.deploys(db, H - 24 * HOUR, NOW)
    assert [(d.at, d.kinds, d.detail) for d in found] == [
        (H - 10 * HOUR + 5, ("version",), "version 7 published"),
        (H - 4 * HOUR, ("memory",), "memory 512 MB -> 1024 MB"),
    ]


def test_error_rate_regression_after_a_deploy(db: Database) -> None:
    rng = random.Random(3)
    deploy_at = H - 4 * HOUR
    fid = add_function(db, "flaky", last_modified=deploy_at)
    for hour in range(H - 28 * HOUR, H + HOUR, HOUR):
        errors = 12 if hour > deploy_at else 1
        add_hour(db, fid, hour, durations=lognormal(rng, 200, 50.0, 0.2), errors=errors)
    found = _only(default_config(), "deploy_regression", db)
    assert [f.details["metric"] for f in found] == ["error_rate"]
    assert found[0].details["after"] == 0.06


def test_newly_stale_and_mutes(db: Database) -> None:
    old = NOW - 200 * 86400
    add_function(db, "forgotten", last_modified=old)
    add_function(db, "sandbox-x", last_modified=old)
    add_function(db, "dev-only", last_modified=old, tags={"env": "dev"})
    busy = add_function(db, "busy", last_modified=old)
    add_hour(db, busy, H, durations=[10.0] * 5)
    found = _only(default_config(), "newly_stale", db)
    assert _names(found) == ["dev-only", "forgotten", "sandbox-x"]
    muted = parse_config({"mute": {"functions": ["sandbox-*"], "tags": ["env=dev"]}})
    assert _names(_only(muted, "newly_stale", db)) == ["forgotten"]


def test_newly_under_provisioned_from_the_right_sizing_analysis(db: Database) -> None:
    tight, roomy = add_function(db, "tight", memory_mb=256), add_function(db, "roomy")
    for hour in range(H - 48 * HOUR, H, HOUR):
        add_hour(
            db,
            tight,
            hour,
            durations=[100.0] * 60,
            memory_used=[250.0] * 60,
            memory_mb=256,
            out_of_memory=1,
            errors=1,
        )
        add_hour(db, roomy, hour, durations=[100.0] * 60, memory_used=[200.0] * 60)
    found = _only(default_config(), "newly_under_provisioned", db)
    assert _names(found) == ["tight"]
    assert found[0].summary.startswith(
        "under-provisioned at 256 MB (max used 250 MB, 48 out-of-memory"
    )


def test_a_failing_rule_does_not_silence_the_others(db: Database, tmp_path: Path) -> None:
    a = add_function(db, "a")
    add_hour(db, a, H, durations=[10.0] * 40, out_of_memory=1)
    original = rules.RULES["timeouts"]

    def broken(ctx: rules.Context) -> list[Finding]:
        raise RuntimeError("boom")

    rules.RULES["timeouts"] = broken
    try:
        findings, ran, failed = rules.evaluate(db, default_config(), NOW)
    finally:
        rules.RULES["timeouts"] = original
    assert failed == {"timeouts": "RuntimeError: boom"}
    assert "timeouts" not in ran and "oom" in ran
    assert [f.rule for f in findings if f.function_name == "a"][:1] == ["oom"]


def test_deploy_regression_in_memory_used(db: Database) -> None:
    rng = random.Random(13)
    deploy_at = H - 4 * HOUR + 300
    fid = add_function(db, "leaky", last_modified=deploy_at)
    for hour in range(H - 7 * 24 * HOUR, H + HOUR, HOUR):
        used_mb = 260.0 if hour > deploy_at else 200.0
        durations = lognormal(rng, 100, 50.0, 0.2)
        used = [used_mb * (1 + rng.uniform(-0.05, 0.05)) for _ in durations]
        add_hour(db, fid, hour, durations=durations, memory_used=used)
    found = _only(default_config(), "deploy_regression", db)
    assert [f.details["metric"] for f in found] == ["p95_max_memory_used"]
    assert 0.25 < found[0].details["effect"] < 0.35
    assert "p95 memory used 2" in found[0].summary and " MB (+3" in found[0].summary
