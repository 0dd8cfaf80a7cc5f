"""`collect` over real HTTP against an in-process moto fleet (two accounts x two regions)."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path
from typing import Any

from click.testing import CliRunner
from sqlite_utils import Database

from collectors.aws import CollectOptions, run_collection
from lambdascope.cli import cli
from lambdascope.timeutil import to_epoch
from tests.moto_fleet import (
    DEFAULT_ACCOUNT,
    FUNCTIONS_PER_TARGET,
    HOUR0,
    NOW,
    OTHER_ACCOUNT,
    REGIONS,
    ROLE_ARN,
    Fleet,
    function_name,
    moto_fleet,
)

__all__ = ["moto_fleet"]


def options(fleet: Fleet, **overrides: Any) -> CollectOptions:
    values: dict[str, Any] = {
        "regions": REGIONS,
        "role_arns": (ROLE_ARN,),
        "since": timedelta(hours=6),
        "endpoint_url": fleet.endpoint_url,
        "poll_interval_s": 0.0,
        "concurrency": 2,
        "metric_set": "full",  # the lean cadence: tests/test_collect_cadence.py
    }
    values.update(overrides)
    return CollectOptions(**values)


def dump(db: Database) -> dict[str, list[tuple[Any, ...]]]:
    tables = [t for t in db.table_names() if t not in ("collection_runs", "_sqlite_migrations")]
    return {t: sorted(db.conn.execute(f"SELECT * FROM [{t}]").fetchall(), key=repr) for t in tables}


def test_collect_fleet_then_recollect_changes_nothing(moto_fleet: Fleet, db: Database) -> None:
    summary = run_collection(db, options(moto_fleet), now=NOW)

    functions = db.conn.execute(
        "SELECT account_id, region, COUNT(*) FROM functions GROUP BY 1, 2 ORDER BY 1, 2"
    ).fetchall()
    assert functions == [
        (account, region, FUNCTIONS_PER_TARGET)
        for account in (DEFAULT_ACCOUNT, OTHER_ACCOUNT)
        for region in sorted(REGIONS)
    ]
    name = function_name(OTHER_ACCOUNT, "eu-west-1", 4)
    row = db.conn.execute(
        "SELECT runtime, architecture, memory_mb, timeout_s, tags_json, last_modified,"
        " package_type, log_group, deleted_at FROM functions WHERE function_name = ?",
        (name,),
    ).fetchone()
    assert row[:5] == (
        "nodejs20.x",
        "x86_64",
        128,
        7,
        json.dumps({"env": "prod", "team": "team-1"}, sort_keys=True),
    )
    assert abs(row[5] - to_epoch(NOW)) < 86400  # moto's 9-digit LastModified parsed
    assert row[6:] == ("Zip", f"/aws/lambda/{name}", None)
    versions = db.conn.execute(
        "SELECT v.version, v.description FROM function_versions v JOIN functions f"
        " ON f.id = v.function_id WHERE f.function_name = ? ORDER BY 1",
        (name,),
    ).fetchall()
    assert versions == [("1", "first"), ("2", "second")]
    alias = db.conn.execute(
        "SELECT a.alias_name, a.function_version, a.routing_json FROM function_aliases a"
        " JOIN functions f ON f.id = a.function_id WHERE f.function_name = ?",
        (name,),
    ).fetchone()
    assert alias == ("live", "1", '{"2": 0.1}')
    reserved = db.conn.execute(
        "SELECT reserved_concurrency FROM functions WHERE function_name = ?",
        (function_name(DEFAULT_ACCOUNT, "us-east-1", 1),),
    ).fetchone()
    assert reserved == (5,)

    metrics = db.conn.execute(
        "SELECT m.hour, m.invocations, m.errors, m.duration_avg_ms, m.duration_p95_ms,"
        " m.duration_max_ms, m.throttles FROM hourly_metrics m JOIN functions f"
        " ON f.id = m.function_id WHERE f.function_name = ? ORDER BY m.hour",
        (function_name(DEFAULT_ACCOUNT, "us-east-1", 0),),
    ).fetchall()
    hour0 = to_epoch(HOUR0)
    assert metrics == [
        (hour0, 10.0, None, 250.0, 400.0, 400.0, None),
        (hour0 + 3600, 20.0, 2.0, 250.25, 400.0, 400.0, None),
        (hour0 + 7200, 30.0, None, 250.5, 400.0, 400.0, None),
    ]
    assert db.conn.execute("SELECT COUNT(*) FROM hourly_metrics").fetchone() == (6,)

    runs = db.conn.execute(
        "SELECT account_id, region, source, status, errors_json FROM collection_runs"
    ).fetchall()
    assert len(runs) == 2 * 2 * 3
    by_source = {(r[0], r[1], r[2]): r for r in runs}
    assert by_source[(DEFAULT_ACCOUNT, "us-east-1", "metrics")][3] == "ok"
    # moto 5.2 does not offer GetAccountSettings, provisioned concurrency or function URL
    # listings, nor Compute Optimizer (HTTP 404): recorded with the IAM action, reported,
    # and nothing failed.
    inventory = by_source[(OTHER_ACCOUNT, "eu-west-1", "inventory")]
    assert inventory[3] == "ok"
    assert {(e["action"], e["code"]) for e in json.loads(inventory[4])} == {
        ("lambda:GetAccountSettings", "NotOffered"),
        ("lambda:ListProvisionedConcurrencyConfigs", "NotOffered"),
        ("lambda:ListFunctionUrlConfigs", "NotOffered"),
        # moto has no Compute Optimizer: noted like an account that is not enrolled
        ("compute-optimizer:GetLambdaFunctionRecommendations", "NotOffered"),
    }
    assert summary.exit_code == 0
    metrics_calls = db.conn.execute(
        "SELECT api_calls, estimated_cost_usd FROM collection_runs WHERE source = 'metrics'"
        " AND account_id = ? AND region = 'us-east-1'",
        (DEFAULT_ACCOUNT,),
    ).fetchone()
    # 16 functions x 14 queries = 224 queries fit in one GetMetricData call; one ListMetrics
    # of the LambdaInsights namespace finds no function with the extension.
    assert metrics_calls == (2, 0.00225)

    before = dump(db)
    run_collection(db, options(moto_fleet), now=NOW)
    assert dump(db) == before
    assert db.conn.execute("SELECT COUNT(*) FROM collection_runs").fetchone() == (24,)


def test_deleted_function_marked_after_complete_listing(moto_fleet: Fleet, db: Database) -> None:
    opts = options(moto_fleet, role_arns=(), regions=("eu-west-1",), only=("inventory",))
    run_collection(db, opts, now=NOW)
    lam = moto_fleet.client("lambda", "eu-west-1")
    gone = function_name(DEFAULT_ACCOUNT, "eu-west-1", 15)
    code = lam.get_function(FunctionName=gone)["Configuration"]
    lam.delete_function(FunctionName=gone)
    later = NOW + timedelta(hours=1)
    run_collection(db, opts, now=later)
    deleted = db.conn.execute(
        "SELECT function_name, deleted_at FROM functions WHERE deleted_at IS NOT NULL"
    ).fetchall()
    assert deleted == [(gone, to_epoch(later))]
    # It comes back: the mark is cleared.
    lam.create_function(
        FunctionName=gone,
        Runtime=code["Runtime"],
        Role=code["Role"],
        Handler=code["Handler"],
        Code={"ZipFile": b"PK\x05\x06" + b"\x00" * 18},
    )
    run_collection(db, opts, now=later + timedelta(hours=1))
    assert db.conn.execute(
        "SELECT COUNT(*) FROM functions WHERE deleted_at IS NOT NULL"
    ).fetchone() == (0,)


def test_cli_collect_prints_summary_and_exit_status(moto_fleet: Fleet, db_path: Path) -> None:
    result = CliRunner().invoke(
        cli,
        [
            "--db",
            str(db_path),
            "collect",
            "--region",
            "us-east-1",
            "--since",
            "6h",
            "--only",
            "inventory",
            "--only",
            "metrics",
            "--endpoint-url",
            moto_fleet.endpoint_url,
        ],
    )
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[0].startswith(f"{DEFAULT_ACCOUNT} us-east-1 inventory: ok, 16 items")
    assert "  not offered by this endpoint: lambda:GetAccountSettings" in lines
    assert lines[-1].startswith("estimated AWS charge of this run: $")
    assert "some parts failed" not in result.stderr


def test_filter_mode_stores_report_lines_like_local_logs(moto_fleet: Fleet, db: Database) -> None:
    opts = options(
        moto_fleet,
        role_arns=(),
        regions=("us-east-1",),
        only=("inventory", "logs"),
        logs_mode="filter",
    )
    run_collection(db, opts, now=NOW)
    facts = db.conn.execute(
        "SELECT h.hour, h.memory_mb, h.source, h.invocations, h.cold_starts,"
        " h.max_memory_used_mb_max, h.duration_ms_max FROM hourly_facts h JOIN functions f"
        " ON f.id = h.function_id WHERE f.function_name = ? ORDER BY h.hour",
        (function_name(DEFAULT_ACCOUNT, "us-east-1", 0),),
    ).fetchall()
    hour0 = to_epoch(HOUR0)
    assert facts == [(hour0 + 3600 * h, 128, "local", 4, 1, 63, 130.0) for h in range(3)]
    logs_run = db.conn.execute(
        "SELECT status, items, message FROM collection_runs WHERE source = 'logs'"
    ).fetchone()
    # Only function 0 has a log group: the other 15 were never invoked, which is no error.
    assert logs_run == ("ok", 12, "1 log groups, 12 REPORT lines, 0 skipped")
    before = dump(db)
    run_collection(db, opts, now=NOW)
    assert dump(db) == before


def test_summary_after_collect_shows_the_collected_metrics(
    moto_fleet: Fleet, db_path: Path
) -> None:
    runner = CliRunner()
    collect = runner.invoke(
        cli,
        [
            "--db",
            str(db_path),
            "collect",
            "--region",
            "us-east-1",
            "--since",
            "6h",
            "--metric-set",
            "full",
            "--endpoint-url",
            moto_fleet.endpoint_url,
        ],
    )
    # Logs Insights mode against moto: its StartQuery ignores the query, so the result rows
    # have none of the query's fields and are skipped (counted in the run's message).
    assert collect.exit_code == 0, collect.output
    summary = runner.invoke(cli, ["--db", str(db_path), "summary", "--since", "2d"])
    assert summary.exit_code == 0, summary.output
    rows = {line.split()[0]: line.split()[2:4] for line in summary.stdout.splitlines()[1:]}
    assert rows[function_name(DEFAULT_ACCOUNT, "us-east-1", 0)] == ["60", "2"]
    assert rows[function_name(DEFAULT_ACCOUNT, "us-east-1", 1)] == ["63", "0"]


def _collect_args(fleet: Fleet, db_path: Path) -> list[str]:
    return [
        *("--db", str(db_path), "collect", "--region", "us-east-1", "--since", "6h"),
        *("--only", "inventory", "--only", "metrics", "--endpoint-url", fleet.endpoint_url),
    ]


def test_progress_is_a_bar_on_a_terminal_and_lines_otherwise(
    moto_fleet: Fleet, db_path: Path
) -> None:
    import os
    import pty
    import re
    import subprocess
    import sys

    # stderr on a real pseudo-terminal: a progress bar over the 2 parts, then the summary
    main_fd, child_fd = pty.openpty()
    proc = subprocess.run(
        [sys.executable, "-m", "lambdascope.cli", *_collect_args(moto_fleet, db_path)],
        stderr=child_fd,
        stdout=subprocess.PIPE,
        text=True,
        timeout=120,
    )
    os.close(child_fd)
    chunks = []
    while True:
        try:
            chunk = os.read(main_fd, 65536)
        except OSError:  # EIO: the terminal's other end is closed and drained
            break
        if not chunk:
            break
        chunks.append(chunk)
    os.close(main_fd)
    terminal = b"".join(chunks).decode()
    assert proc.returncode == 0, terminal
    assert "collecting inventory, metrics for 1 account x region pairs" in terminal
    plain = re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", terminal)  # without colours and moves
    assert "collecting ━" in plain and " 2/2 parts " in plain and "parts/s" in plain
    # one bar per account x region, over its sources
    target_line = [line for line in plain.splitlines() if "us-east-1" in line][-1]
    assert DEFAULT_ACCOUNT in target_line and "━ 2/2 inventory ok, metrics ok" in target_line
    assert proc.stdout.splitlines()[-1].startswith("estimated AWS charge of this run: $")

    # not a terminal (cron, systemd, pipes): one line per part, no bar
    result = CliRunner().invoke(cli, _collect_args(moto_fleet, db_path))
    assert result.exit_code == 0, result.output
    assert result.stderr.splitlines() == [
        "collecting inventory, metrics for 1 account x region pairs (1 accounts)",
        f"{DEFAULT_ACCOUNT} us-east-1 inventory: ok",
        f"{DEFAULT_ACCOUNT} us-east-1 metrics: ok",
    ]


def test_terminal_progress_has_a_bar_per_account_and_region() -> None:
    import io
    from types import SimpleNamespace

    from rich.console import Console

    from lambdascope.commands.collect import TerminalProgress

    out = io.StringIO()
    terminal = Console(file=out, force_terminal=True, width=120, height=12)
    progress = TerminalProgress(terminal, sources=3)
    progress.message("collecting inventory, metrics, logs for 30 account x region pairs")
    part = progress.start(3 * 30)
    for n in range(30):
        for source in ("inventory", "metrics", "logs")[: 1 + n % 3]:
            part(
                SimpleNamespace(
                    account_id=f"{n:012d}", region="us-east-1", source=source, status="ok"
                )
            )
    lines = progress.lines(rows=12)
    progress.close()
    assert lines[0].startswith("collecting ") and " 60/90 parts " in lines[0]
    assert "parts/s" in lines[0] and " ETA " in lines[0]  # rate and time left
    assert len(lines) == 11  # the overall bar, a "more" line, the 9 latest pairs
    assert lines[1] == "  ... 21 more account x region pairs"
    assert lines[-1].startswith("  000000000029 us-east-1")
    assert lines[-1].endswith(" 3/3 inventory ok, metrics ok, logs ok")
    assert lines[-2].endswith(" 2/3 inventory ok, metrics ok")
    drawn = out.getvalue()
    assert drawn.startswith("collecting inventory, metrics, logs for 30 account x region pairs\n")
    assert "\x1b[" in drawn  # drawn in place on the terminal
