"""Alert episodes and delivery: real local HTTP (json://) and SMTP (mailto://) receivers,
dedupe across checks, resolutions, failing and interrupted deliveries, routing."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlite_utils import Database

from lambdascope.alerts import default_config, run_check, run_digest, state
from lambdascope.alerts.config import AlertConfig, parse_config
from lambdascope.db import open_db
from lambdascope.timeutil import to_epoch, utcnow
from tests.alerts_store import HOUR, add_function, add_hour
from tests.notify_receivers import http_receiver, smtp_receiver

NOW = 1796397600 + 20 * 60
H = NOW - NOW % HOUR
QUIET = {
    "rules": {"newly_stale": {"enabled": False}, "newly_under_provisioned": {"enabled": False}}
}


def _config(**extra: object) -> AlertConfig:
    return parse_config({**QUIET, **extra})


def _oom_store(db: Database) -> tuple[int, int]:
    failing = add_function(db, "checkout", tags={"team": "payments"})
    healthy = add_function(db, "healthy")
    add_hour(db, failing, H, durations=[10.0] * 40, out_of_memory=3)
    add_hour(db, healthy, H, durations=[10.0] * 40)
    return failing, healthy


def _deliveries(db: Database) -> list[tuple[object, ...]]:
    """(rule, function, kind, delivered, attempts), sorted."""
    return sorted(
        db.conn.execute(
            "SELECT a.rule, a.function_name, d.kind, d.delivered_at IS NOT NULL, d.attempts"
            " FROM alert_deliveries d JOIN alerts a ON a.id = d.alert_id"
        ).fetchall()
    )


def test_json_and_mail_get_one_message_each_and_nothing_twice(db: Database) -> None:
    _oom_store(db)
    config = _config()
    with http_receiver() as hook, smtp_receiver() as mail:
        notify = [hook.url(), mail.url()]
        result = run_check(db, config, notify=notify, now=NOW)
        assert [(a["rule"], a["function_name"]) for a in result.new] == [("oom", "checkout")]
        assert [d.ok for d in result.deliveries] == [True, True]
        assert len(hook.posts) == 1 and len(mail.messages) == 1
        assert (
            hook.posts[0]["title"]
            == "lambdascope: Out of memory: checkout (123456789012 us-east-1)"
        )
        assert mail.messages[0]["Subject"] == hook.posts[0]["title"]
        body = mail.messages[0].get_payload(decode=True).decode()
        assert "3 out-of-memory errors since 14:00Z" in body and "healthy" not in body

        later = run_check(db, config, notify=notify, now=NOW + 600)
        assert later.new == [] and later.ongoing == 1 and later.deliveries == []
        assert len(hook.posts) == 1 and len(mail.messages) == 1


def test_resolution_is_announced_once_and_a_recurrence_is_a_new_alert(db: Database) -> None:
    failing, _ = _oom_store(db)
    config = _config()
    with http_receiver() as hook:
        run_check(db, config, notify=[hook.url()], now=NOW)
        # two hours later: no OOM since the last check -> resolved, announced once
        resolved = run_check(db, config, notify=[hook.url()], now=NOW + 2 * HOUR)
        assert [a["rule"] for a in resolved.resolved] == ["oom"]
        assert len(hook.posts) == 2
        assert hook.posts[1]["title"] == (
            "lambdascope: Out of memory: checkout (123456789012 us-east-1) resolved"
        )
        assert hook.posts[1]["type"] == "success"
        run_check(db, config, notify=[hook.url()], now=NOW + 3 * HOUR)
        assert len(hook.posts) == 2
        add_hour(db, failing, H + 3 * HOUR, durations=[10.0] * 40, out_of_memory=1)
        again = run_check(db, config, notify=[hook.url()], now=NOW + 3 * HOUR + 60)
        assert [a["summary"] for a in again.new] == [
            "1 out-of-memory error since 17:00Z at 512 MB (max used 100 MB)"
        ]
        assert len(hook.posts) == 3
    assert db.conn.execute("SELECT count(*) FROM alerts WHERE rule = 'oom'").fetchone()[0] == 2


def test_a_failing_destination_is_retried_and_never_blocks_the_others(db: Database) -> None:
    _oom_store(db)
    config = _config()
    with http_receiver() as good, http_receiver() as bad:
        bad.status = 500
        notify = [good.url(), bad.url("down")]
        first = run_check(db, config, notify=notify, now=NOW)
        assert [d.ok for d in first.deliveries] == [True, False]
        assert "error=500" in (first.deliveries[1].error or "")
        assert len(good.posts) == 1 and bad.posts == []
        assert _deliveries(db) == [
            ("oom", "checkout", "open", 0, 1),
            ("oom", "checkout", "open", 1, 1),
        ]
        bad.status = 200
        second = run_check(db, config, notify=notify, now=NOW + 300)
        assert second.new == []
        assert [(d.ok, d.alerts) for d in second.deliveries] == [(True, 1)]
        assert len(good.posts) == 1 and len(bad.posts) == 1
        assert "checkout" in bad.posts[0]["message"]
        assert _deliveries(db) == [
            ("oom", "checkout", "open", 1, 1),
            ("oom", "checkout", "open", 1, 2),
        ]


def test_an_unreachable_destination_fails_that_delivery_only(db: Database) -> None:
    _oom_store(db)
    with http_receiver() as good:
        result = run_check(
            db,
            _config(),
            notify=["json://127.0.0.1:9/closed", good.url()],
            now=NOW,
        )
    assert [d.ok for d in result.deliveries] == [False, True]
    assert "Connection error" in (result.deliveries[0].error or "")


def test_an_interrupted_check_marks_nothing_delivered_that_was_not(db: Database) -> None:
    _oom_store(db)
    config = _config()
    sent: list[str] = []

    def interrupted(url: str, title: str, body: str, severity: str) -> str | None:
        if "second" in url:
            raise KeyboardInterrupt  # the process stops while sending to the 2nd destination
        sent.append(url)
        return None

    with http_receiver() as first, http_receiver() as second:
        notify = [first.url("first"), second.url("second")]
        with pytest.raises(KeyboardInterrupt):
            run_check(db, config, notify=notify, now=NOW, sender=interrupted)
        assert _deliveries(db) == [
            ("oom", "checkout", "open", 0, 0),
            ("oom", "checkout", "open", 1, 1),
        ]
        resumed = run_check(db, config, notify=notify, now=NOW + 60)
        assert [(d.destination.split("?")[0], d.alerts) for d in resumed.deliveries] == [
            (f"json://127.0.0.1:{second.port}/second", 1)
        ]
        assert first.posts == [] and len(second.posts) == 1


def test_routes_mutes_and_rule_destinations_from_the_rules_file(db: Database) -> None:
    _oom_store(db)
    other = add_function(db, "search", tags={"team": "search"})
    add_hour(db, other, H, durations=[10.0] * 40, out_of_memory=1)
    muted = add_function(db, "sandbox-1")
    add_hour(db, muted, H, durations=[10.0] * 40, out_of_memory=1)
    with http_receiver() as payments, http_receiver() as oncall:
        config = parse_config(
            {
                **QUIET,
                "destinations": {"payments": payments.url(), "oncall": oncall.url()},
                "routes": [{"tag": "team=payments", "destinations": ["payments"]}],
                "mute": {"functions": ["sandbox-*"]},
            }
        )
        result = run_check(db, config, now=NOW)
        assert sorted(a["function_name"] for a in result.new) == ["checkout", "search"]
        # routed alerts go to their route's destinations only; unrouted ones to every one
        assert len(payments.posts) == 1 and "checkout" in payments.posts[0]["message"]
        assert "search" in payments.posts[0]["message"]
        assert "sandbox" not in payments.posts[0]["message"]
        assert len(oncall.posts) == 1 and "search" in oncall.posts[0]["message"]
        assert "checkout" not in oncall.posts[0]["message"]
    stored = db.conn.execute("SELECT display FROM alert_destinations ORDER BY name").fetchall()
    assert all("127.0.0.1" in row[0] for row in stored)


def test_secrets_in_urls_are_not_stored(db: Database) -> None:
    _oom_store(db)
    with smtp_receiver() as mail:
        url = f"mailto://alerts:s3cret-pass@127.0.0.1:{mail.port}?to=ops@example.com&from=lambdascope@example.com"
        run_check(db, _config(), notify=[url], now=NOW)
    dump = "\n".join(db.conn.iterdump())
    assert "s3cret-pass" not in dump


def test_the_first_evaluation_of_finding_rules_is_a_silent_baseline(db: Database) -> None:
    old = NOW - 200 * 86400
    add_function(db, "forgotten", last_modified=old)
    config = parse_config({"rules": {"newly_under_provisioned": {"enabled": False}}})
    with http_receiver() as hook:
        first = run_check(db, config, notify=[hook.url()], now=NOW)
        assert first.new == [] and first.baseline == 1 and hook.posts == []
        add_function(db, "abandoned", last_modified=old)
        second = run_check(db, config, notify=[hook.url()], now=NOW + HOUR)
        assert [a["function_name"] for a in second.new] == ["abandoned"]
        assert len(hook.posts) == 1


def test_weekly_digest_is_delivered_once_per_week(db: Database) -> None:
    _oom_store(db)
    config = default_config()
    with http_receiver() as hook:
        run_check(db, config, now=NOW)
        first = run_digest(db, config, notify=[hook.url()], now=NOW + HOUR)
        assert [a["rule"] for a in first.new] == ["digest"]
        assert len(hook.posts) == 1
        message = hook.posts[0]["message"]
        assert "Top savings (right-sizing, last 14 days)" in message
        assert "New findings this week: " in message and "Out of memory: 1 (checkout)" in message
        assert "What got better: 0 alerts resolved" in message
        run_digest(db, config, notify=[hook.url()], now=NOW + 2 * HOUR)
        assert len(hook.posts) == 1
        run_digest(db, config, notify=[hook.url()], now=NOW + 7 * 86400)
        assert len(hook.posts) == 2


def test_a_delivery_another_check_is_sending_is_not_sent_twice(db: Database, db_path: Path) -> None:
    _oom_store(db)
    config = _config()
    with http_receiver() as hook:
        hook.status = 500
        run_check(db, config, notify=[hook.url()], now=NOW)
        hook.status = 200
        # another process (its own connection) is sending this destination's deliveries
        other = open_db(db_path)
        destination = state.destination(hook.url())
        taken = state.claim(other, destination.id, now=to_epoch(utcnow()))
        assert [i.rule for i in taken] == ["oom"]
        meanwhile = run_check(db, config, notify=[hook.url()], now=NOW + 60)
        assert meanwhile.deliveries == [] and hook.posts == []
        # it gives them back without sending (interrupted): the next check sends them
        state.release(other, destination.id, taken)
        after = run_check(db, config, notify=[hook.url()], now=NOW + 120)
        assert [(d.ok, d.alerts) for d in after.deliveries] == [(True, 1)]
        assert len(hook.posts) == 1
        assert state.claim(other, destination.id, now=to_epoch(utcnow())) == []
