"""Functions sharing one log group (Lambda advanced logging controls), over real HTTP to moto.

Covers the inventory -> logs path in filter mode end to end: moto keeps the functions, log
groups, streams and FilterLogEvents (with each event's logStreamName), but its ListFunctions
drops ``LoggingConfig`` (TESTING_NOTES.md). An ``after-call`` hook on the session adds to
each listed function the LoggingConfig it was created with, as the Lambda API reference's
FunctionConfiguration carries it; everything else is moto's own answer. The Insights path
of shared groups is in test_logs_insights.py (Stubber: moto's Insights ignores the query).
"""

from __future__ import annotations

import io
import json
import urllib.request
import zipfile
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import pytest
from moto.server import ThreadedMotoServer
from sqlite_utils import Database

from collectors import inventory, logs
from collectors.aws import CallCounter, CollectOptions, SourceResult, Store, Target
from collectors.runs import LOGS_SETTLE_S, resolve_window, save_watermark
from lambdascope.timeutil import to_epoch

ACCOUNT = "123456789012"
REGION = "us-east-1"
SHARED = "/app/shop"
# put_log_events rejects events older than 14 days: follow the real clock
NOW = datetime.now(UTC).replace(minute=30, second=0, microsecond=0)
HOUR0 = NOW.replace(minute=0) - timedelta(hours=2)
# function -> its LoggingConfig (moto accepts it on create_function, drops it on listing)
LOGGING = {
    "checkout": {"LogGroup": SHARED, "LogFormat": "Text"},
    "payments": {"LogGroup": SHARED, "LogFormat": "JSON"},
    "orders": {"LogGroup": "/aws/lambda/orders", "LogFormat": "Text"},
}


def _zip() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("app.py", "def handler(event, context):\n    return event\n")
    return buffer.getvalue()


def _with_logging_config(parsed: dict[str, Any], **_: Any) -> None:
    for config in parsed.get("Functions", []):
        if config["FunctionName"] in LOGGING and "LoggingConfig" not in config:
            config["LoggingConfig"] = LOGGING[config["FunctionName"]]


@pytest.fixture
def endpoint(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    for key, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_CONFIG_FILE": "/nonexistent/aws-config",
        "AWS_SHARED_CREDENTIALS_FILE": "/nonexistent/aws-credentials",
    }.items():
        monkeypatch.setenv(key, value)
    monkeypatch.delenv("AWS_SESSION_TOKEN", raising=False)
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    url = f"http://{host}:{port}"
    # moto's backends are process-wide: start from an empty cloud
    urllib.request.urlopen(urllib.request.Request(f"{url}/moto-api/reset", method="POST")).close()
    try:
        yield url
    finally:
        server.stop()


def _report(request_id: str, duration: float, used: int, init: float | None = None) -> str:
    line = (
        f"REPORT RequestId: {request_id}\tDuration: {duration:.2f} ms\t"
        f"Billed Duration: {int(duration) + 1} ms\tMemory Size: 512 MB\t"
        f"Max Memory Used: {used} MB\t"
    )
    return line + (f"Init Duration: {init:.2f} ms\t" if init is not None else "")


def _json_report(request_id: str, at: datetime, duration: float, used: int) -> str:
    record = {
        "requestId": request_id,
        "status": "success",
        "metrics": {
            "durationMs": duration,
            "billedDurationMs": int(duration) + 1,
            "memorySizeMB": 1024,
            "maxMemoryUsedMB": used,
        },
    }
    stamp = at.isoformat(timespec="milliseconds").replace("+00:00", "Z")
    return json.dumps({"time": stamp, "type": "platform.report", "record": record})


def _seed(session: boto3.Session, url: str) -> None:
    iam = session.client("iam", endpoint_url=url)
    role = iam.create_role(RoleName="fn", AssumeRolePolicyDocument="{}")["Role"]["Arn"]
    lam = session.client("lambda", endpoint_url=url)
    for name, logging in LOGGING.items():
        lam.create_function(
            FunctionName=name,
            Runtime="python3.12",
            Role=role,
            Handler="app.handler",
            Code={"ZipFile": _zip()},
            MemorySize=1024 if name == "payments" else 512,
            LoggingConfig=logging,
        )
    client = session.client("logs", endpoint_url=url)
    client.create_log_group(logGroupName=SHARED)
    day = HOUR0.strftime("%Y/%m/%d")
    streams: dict[str, list[tuple[datetime, str]]] = {
        f"{day}/checkout[$LATEST]5b1e0c2d3f4a49d1a2b3c4d5e6f7a8b9": [
            (HOUR0 + timedelta(minutes=1), "START RequestId: c1 Version: $LATEST"),
            (HOUR0 + timedelta(minutes=2), _report("c1", 31.5, 90, init=220.0)),
            (HOUR0 + timedelta(minutes=3), _report("c2", 12.0, 91)),
            (HOUR0 + timedelta(hours=1, minutes=3), _report("c3", 14.0, 93)),
        ],
        f"{day}/payments[3]0f9e8d7c6b5a49382716a5b4c3d2e1f0": [
            (HOUR0 + timedelta(minutes=4), _json_report("p1", HOUR0, 700.0, 300)),
        ],
        # a function deleted before the inventory ran: not booked to anyone
        f"{day}/retired[$LATEST]77aa": [(HOUR0 + timedelta(minutes=5), _report("r1", 5.0, 60))],
    }
    for stream, events in streams.items():
        client.create_log_stream(logGroupName=SHARED, logStreamName=stream)
        client.put_log_events(
            logGroupName=SHARED,
            logStreamName=stream,
            logEvents=[{"timestamp": int(at.timestamp() * 1000), "message": m} for at, m in events],
        )


def test_filter_mode_books_each_function_of_a_shared_log_group_by_its_stream(
    endpoint: str, db: Database
) -> None:
    session = boto3.Session(region_name=REGION)
    _seed(session, endpoint)
    session.events.register("after-call.lambda.ListFunctions", _with_logging_config)
    target = Target(session, ACCOUNT, REGION, endpoint)
    store = Store(db)
    listed = SourceResult(ACCOUNT, REGION, "inventory")
    inventory.collect(store, target, listed, CallCounter(), now=NOW)
    assert listed.status == "ok"
    recorded = db.conn.execute(
        "SELECT function_name, log_group, log_format FROM functions ORDER BY 1"
    ).fetchall()
    assert recorded == [
        ("checkout", SHARED, "Text"),
        ("orders", "/aws/lambda/orders", "Text"),
        ("payments", SHARED, "JSON"),
    ]

    def collect_logs() -> SourceResult:
        result = SourceResult(ACCOUNT, REGION, "logs")
        logs.collect(
            store,
            target,
            result,
            CallCounter(),
            start=to_epoch(HOUR0),
            end=to_epoch(NOW),
            options=CollectOptions(logs_mode="filter"),
        )
        return result

    result = collect_logs()
    facts = db.conn.execute(
        "SELECT f.function_name, h.hour, h.memory_mb, h.invocations, h.cold_starts,"
        " h.max_memory_used_mb_max FROM hourly_facts h JOIN functions f ON f.id = h.function_id"
        " ORDER BY 1, 2"
    ).fetchall()
    hour0 = to_epoch(HOUR0)
    assert facts == [
        ("checkout", hour0, 512, 2, 1, 91),
        ("checkout", hour0 + 3600, 512, 1, 0, 93),
        ("payments", hour0, 1024, 1, 0, 300),
    ]
    # orders never ran (no log group): not an error. moto answers the two-format pattern
    # (?"a" ?"b") with every event, so the START line is read and skipped.
    assert (result.status, result.items) == ("ok", 4)
    assert result.message == (
        "1 log groups, 6 REPORT lines, 1 skipped, 1 of functions not in the inventory"
    )
    before = db.conn.execute("SELECT * FROM hourly_facts ORDER BY 1, 2").fetchall()
    collect_logs()
    assert db.conn.execute("SELECT * FROM hourly_facts ORDER BY 1, 2").fetchall() == before


def test_filter_pattern_matches_the_formats_of_the_group() -> None:
    assert logs.filter_pattern(frozenset({"Text"})) == '"REPORT RequestId"'
    assert logs.filter_pattern(frozenset({"JSON"})) == '"platform.report"'
    assert logs.filter_pattern(frozenset({"Text", "JSON"})) == (
        '?"REPORT RequestId" ?"platform.report"'
    )
    assert logs.stream_function("2026/12/04/checkout[$LATEST]5b1e") == "checkout"
    assert logs.stream_function("2026/12/04/[$LATEST]5b1e") == ""


def test_late_events_in_a_shared_log_group_are_read_again_for_their_function(
    endpoint: str, db: Database
) -> None:
    """A resumed run looks for late events in shared log groups too: a REPORT line that
    reaches a shared group's stream after its hour was read is booked to the function the
    stream names, and only that group's hours are read again."""
    session = boto3.Session(region_name=REGION)
    _seed(session, endpoint)
    session.events.register("after-call.lambda.ListFunctions", _with_logging_config)
    target = Target(session, ACCOUNT, REGION, endpoint)
    store = Store(db)
    listed = SourceResult(ACCOUNT, REGION, "inventory")
    inventory.collect(store, target, listed, CallCounter(), now=NOW)
    options = CollectOptions(logs_mode="filter")

    def resumed_run(now: datetime, first: bool = False) -> SourceResult:
        """The logs part of a resumed run, with its window and watermark as collectors.aws
        keeps them (moto stamps ingestion with the real clock: runs follow it)."""
        result = SourceResult(ACCOUNT, REGION, "logs")
        start, end = resolve_window(db, options, target, "logs", now)
        if first:
            start = to_epoch(HOUR0)  # from the seeded hours on
        logs.collect(store, target, result, CallCounter(), start=start, end=end, options=options)
        assert result.status == "ok", result.errors
        save_watermark(store, target, "logs", end, now, LOGS_SETTLE_S)
        return result

    first_at = datetime.now(UTC)
    resumed_run(first_at, first=True)
    hour0_invocations = (
        "SELECT h.invocations FROM hourly_facts h JOIN functions f ON f.id = h.function_id"
        " WHERE f.function_name = ? AND h.hour = ?"
    )
    assert db.conn.execute(hour0_invocations, ("checkout", to_epoch(HOUR0))).fetchone() == (2,)
    # A REPORT line of an hour read long ago arrives now, in a new stream of the shared group.
    late_stream = f"{HOUR0:%Y/%m/%d}/checkout[$LATEST]1a2b3c4d5e6f47a8b9c0d1e2f3a4b5c6"
    client = session.client("logs", endpoint_url=endpoint)
    client.create_log_stream(logGroupName=SHARED, logStreamName=late_stream)
    client.put_log_events(
        logGroupName=SHARED,
        logStreamName=late_stream,
        logEvents=[
            {
                "timestamp": int((HOUR0 + timedelta(minutes=20)).timestamp() * 1000),
                "message": _report("c-late", 40.0, 95),
            }
        ],
    )
    before = {
        name: db.conn.execute(hour0_invocations, (name, to_epoch(HOUR0))).fetchone()
        for name in ("payments", "orders")
    }
    result = resumed_run(first_at + timedelta(hours=1))
    assert db.conn.execute(hour0_invocations, ("checkout", to_epoch(HOUR0))).fetchone() == (3,)
    assert {
        name: db.conn.execute(hour0_invocations, (name, to_epoch(HOUR0))).fetchone()
        for name in ("payments", "orders")
    } == before
    assert "; late events: 1 log groups re-read over " in result.message
