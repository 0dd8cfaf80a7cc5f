"""The demo fleet: planted problems, its local log history, moto seeding, the demo command."""

from __future__ import annotations

import gzip
import json
import re
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner
from moto.server import ThreadedMotoServer

from collectors.demo_fleet import (
    ACCOUNTS,
    REGIONS,
    account_session,
    build_fleet,
    seed_moto,
    write_local_history,
)
from lambdascope.cli import cli
from lambdascope.db import open_db

NOW_S = 1_795_000_000  # 2026-11-18T11:06:40Z, fixed so the history is the same every run
REPORT_RE = re.compile(
    r"^REPORT RequestId: [0-9a-f-]{36}\tDuration: [\d.]+ ms\tBilled Duration: \d+ ms\t"
    r"Memory Size: (\d+) MB\tMax Memory Used: (\d+) MB(\tInit Duration: [\d.]+ ms)?"
    r"(\tStatus: (error\tError Type: Runtime.OutOfMemory|timeout))?\t$"
)


def test_fleet_spans_two_accounts_two_regions_with_planted_problems() -> None:
    fleet = build_fleet()
    assert len(fleet) == 60
    assert len({f.name for f in fleet}) == 60
    assert Counter((f.account_id, f.region) for f in fleet) == {
        (a, r): 15 for a in ACCOUNTS for r in REGIONS
    }
    kinds = Counter(f.kind for f in fleet)
    assert kinds["over"] >= 10 and kinds["under_oom"] >= 3 and kinds["stale"] >= 5
    assert {"timeouts", "throttled", "cold", "memory_changed"} <= set(kinds)
    assert {"arm64", "x86_64"} == {f.architecture for f in fleet}
    assert {"python3.7", "nodejs14.x", "go1.x"} & {f.runtime for f in fleet}
    stale = [f for f in fleet if f.kind == "stale"]
    assert all(f.invocations_per_hour == 0 and f.last_modified_days_ago > 180 for f in stale)
    assert all(f.versions > 3 and f.aliases for f in stale)


def _reports(path: Path) -> list[str]:
    with gzip.open(path, "rt", encoding="utf-8") as handle:
        envelope = json.loads(handle.readline())
    assert envelope["messageType"] == "DATA_MESSAGE"
    return [e["message"] for e in envelope["logEvents"] if e["message"].startswith("REPORT")]


def test_local_history_is_lambda_platform_lines_in_subscription_envelopes(tmp_path: Path) -> None:
    fleet = {f.kind: f for f in build_fleet()}
    picked = [fleet["under_oom"], fleet["memory_changed"], fleet["stale"], fleet["timeouts"]]
    roots = write_local_history(picked, tmp_path, now_s=NOW_S, days=14)
    assert set(roots) == {(f.account_id, f.region) for f in picked}

    def lines_of(kind: str) -> list[str]:
        f = fleet[kind]
        return [
            line
            for path in sorted(roots[(f.account_id, f.region)].glob(f"{f.name}-*.json.gz"))
            for line in _reports(path)
        ]

    for kind in ("under_oom", "memory_changed", "timeouts"):
        assert lines_of(kind), kind
        assert all(REPORT_RE.match(line) for line in lines_of(kind)), kind
    oom = [line for line in lines_of("under_oom") if "OutOfMemory" in line]
    assert oom and all(
        REPORT_RE.match(line).group(1) == REPORT_RE.match(line).group(2)  # type: ignore[union-attr]
        for line in oom
    )
    sizes = {REPORT_RE.match(line).group(1) for line in lines_of("memory_changed")}  # type: ignore[union-attr]
    assert sizes == {"2048", "512"}
    assert any("Status: timeout" in line for line in lines_of("timeouts"))
    # stale functions last ran on one day, 45 days before the window's end
    stale = fleet["stale"]
    stale_files = list(roots[(stale.account_id, stale.region)].glob(f"{stale.name}-*.json.gz"))
    assert len(stale_files) == 1 and lines_of("stale")


@pytest.fixture
def moto_endpoint() -> Iterator[str]:
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    try:
        yield f"http://{host}:{port}"
    finally:
        server.stop()


def test_seeded_moto_serves_the_fleet_per_account_and_region(moto_endpoint: str) -> None:
    fleet = build_fleet()
    now_s = int(time.time())
    seed_moto(moto_endpoint, fleet, now_s=now_s)
    for account_id in ACCOUNTS:
        for region in REGIONS:
            client = account_session(moto_endpoint, account_id, region).client(
                "lambda", endpoint_url=moto_endpoint
            )
            names = {f["FunctionName"] for f in client.list_functions()["Functions"]}
            assert names == {
                f.name for f in fleet if (f.account_id, f.region) == (account_id, region)
            }
    stale = next(f for f in fleet if f.kind == "stale")
    session = account_session(moto_endpoint, stale.account_id, stale.region)
    client = session.client("lambda", endpoint_url=moto_endpoint)
    config = client.get_function_configuration(FunctionName=stale.name)
    assert config["LastModified"] < time.strftime("%Y", time.gmtime(now_s - 180 * 86400))
    versions = client.list_versions_by_function(FunctionName=stale.name)["Versions"]
    assert len(versions) == stale.versions  # $LATEST + published versions
    aliases = {a["Name"] for a in client.list_aliases(FunctionName=stale.name)["Aliases"]}
    assert aliases == {"live", "previous"}

    busy = next(f for f in fleet if f.kind == "throttled")
    session = account_session(moto_endpoint, busy.account_id, busy.region)
    logs = session.client("logs", endpoint_url=moto_endpoint)
    events = logs.filter_log_events(
        logGroupName=busy.log_group, filterPattern='"REPORT RequestId"'
    )["events"]
    assert events and all(e["message"].startswith("REPORT") for e in events)
    concurrency = session.client("lambda", endpoint_url=moto_endpoint).get_function_concurrency(
        FunctionName=busy.name
    )
    assert concurrency["ReservedConcurrentExecutions"] == 2


def test_demo_refuses_to_overwrite_a_database_that_is_not_a_demo(db_path: Path) -> None:
    result = CliRunner().invoke(cli, ["demo", "--no-serve", "--db", str(db_path)])
    assert result.exit_code == 1
    assert f"{db_path} exists and is not a demo database: choose another --db" in result.output
    assert open_db(db_path).conn.execute("SELECT COUNT(*) FROM settings").fetchone()[0] == 0


def test_generated_lines_are_understood_by_the_log_parser() -> None:
    import random

    from collectors.demo_fleet import invocation_messages
    from lambdascope.logparse import parse_line

    fleet = {f.kind: f for f in build_fleet()}
    seen: dict[str, Counter[str | None]] = {}
    for kind in ("under_oom", "timeouts", "cold"):
        messages = invocation_messages(
            fleet[kind], NOW_S - 7 * 86400, NOW_S, NOW_S, random.Random(1)
        )
        events = [parse_line(m) for _, m in messages]
        seen[kind] = Counter(e.kind for e in events if e is not None)
    assert seen["under_oom"]["out_of_memory"] > 0 and seen["under_oom"]["report"] > 100
    assert seen["timeouts"]["timeout"] > 0
    assert set(seen["cold"]) == {"report"}
