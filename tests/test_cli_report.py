"""``lambdascope report ...`` and ``power-tuning`` on real SQLite files."""

from __future__ import annotations

import csv
import io
import json
import math
import random
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from sqlite_utils import Database

from lambdascope import histcodec, histogram
from lambdascope.cli import cli
from lambdascope.db import function_id, open_db

END = 1767225600  # 2026-01-01T00:00:00Z
UNTIL = "2026-01-01T00:00:00Z"
HOUR = 3600
DAY = 86400


def add_hours(
    db: Database,
    name: str,
    *,
    memory_mb: int,
    hours: int,
    per_hour: int,
    memory_used: tuple[float, float],
    duration_ms: float = 100.0,
    end: int = END,
    first_hour_offset: int = 0,
    oom_per_hour: int = 0,
    cold_per_hour: int = 0,
    init_ms: float = 300.0,
    architecture: str = "x86_64",
    account_id: str = "111111111111",
    region: str = "us-east-1",
    seed: int = 1,
    runtime: str | None = "python3.12",
    timeout_s: int | None = 30,
) -> int:
    """Write ``hours`` hourly_facts rows (source local) ending before ``end``."""
    rng = random.Random(seed)
    fid = function_id(db, name, account_id, region, seen_at=end - HOUR, architecture=architecture)
    with db.conn:
        db.conn.execute(
            "UPDATE functions SET runtime = ?, timeout_s = ?, memory_mb = ? WHERE id = ?",
            (runtime, timeout_s, memory_mb, fid),
        )
        for h in range(hours):
            hour = end - (h + 1 + first_hour_offset) * HOUR
            mem = [rng.uniform(*memory_used) for _ in range(per_hour)]
            dur = [duration_ms * rng.uniform(0.9, 1.1) for _ in range(per_hour)]
            inits = [init_ms] * cold_per_hour
            db.conn.execute(
                "INSERT INTO hourly_facts (function_id, hour, memory_mb, source, invocations,"
                " errors, out_of_memory, cold_starts, duration_ms_sum, duration_ms_max,"
                " billed_duration_ms_sum, max_memory_used_mb_max, init_duration_ms_sum,"
                " init_duration_ms_max, duration_hist, max_memory_used_hist,"
                " init_duration_hist) VALUES (?, ?, ?, 'local', ?, ?, ?, ?, ?, ?, ?, ?, ?, ?,"
                " ?, ?, ?)",
                (
                    fid,
                    hour,
                    memory_mb,
                    per_hour,
                    oom_per_hour,
                    oom_per_hour,
                    cold_per_hour,
                    sum(dur),
                    max(dur),
                    sum(int(d) + 1 for d in dur),
                    int(max(mem)),
                    sum(inits),
                    max(inits, default=None),
                    histcodec.encode(histogram.from_values(dur)),
                    histcodec.encode(histogram.from_values(mem)),
                    histcodec.encode(histogram.from_values(inits)),
                ),
            )
    return fid


@pytest.fixture
def fleet(db_path: Path) -> Path:
    db = open_db(db_path)
    add_hours(
        db,
        "orders-api",
        memory_mb=1024,
        hours=48,
        per_hour=20,
        memory_used=(150, 200),
        cold_per_hour=1,
    )
    add_hours(
        db,
        "thumbs",
        memory_mb=256,
        hours=24,
        per_hour=10,
        memory_used=(200, 256),
        oom_per_hour=1,
        seed=2,
    )
    add_hours(
        db,
        "<script>alert(1)</script>",
        memory_mb=512,
        hours=10,
        per_hour=10,
        memory_used=(100, 120),
        seed=3,
    )
    db.conn.close()
    return db_path


def run(db_path: Path, *args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(cli, ["--db", str(db_path), *args], catch_exceptions=False)
    return result.exit_code, result.stdout, result.stderr


def test_memory_json_has_the_documented_keys(fleet: Path) -> None:
    code, out, _ = run(fleet, "report", "memory", "--until", UNTIL)
    assert code == 0
    rows = json.loads(out)
    keys = {
        "function_name",
        "account_id",
        "region",
        "architecture",
        "memory_mb",
        "invocations",
        "errors",
        "out_of_memory_errors",
        "max_memory_used_mb",
        "p99_memory_used_mb",
        "finding",
        "reasons",
        "recommended_memory_mb",
        "confidence",
        "performance_risk",
        "projected_duration_ms",
        "options",
        "current_cost_usd",
        "projected_cost_usd",
        "projected_savings_usd",
        "monthly_savings_usd",
    }
    keys |= {"estimated_tail_memory_mb", "natural_experiment"}  # also documented in README
    keys |= {
        "strategy",
        "strategies",
        "history",
        "current_duration_ms",
        "timeout_s",
        "current_monthly_cost_usd",
    }
    keys |= {"duration_evidence"}  # power-tuning / natural-experiment / bounds
    keys |= {  # side by side (None without Compute Optimizer data)
        "compute_optimizer_finding",
        "compute_optimizer_memory_mb",
        "compute_optimizer_monthly_savings_usd",
        "compute_optimizer_differs_because",
    }
    assert len(rows) == 3
    for row in rows:
        assert set(row) == keys
        assert set(row["projected_duration_ms"] or {}) <= {"lower", "expected", "upper"}
        for option in row["options"]:
            assert set(option["projected_duration_ms"]) == {"lower", "expected", "upper"}
            assert {"projected_cost_usd", "projected_savings_usd", "monthly_savings_usd"} <= set(
                option
            )
    by_name = {r["function_name"]: r for r in rows}
    for row in rows:
        assert row["strategy"] == "balanced"
        if row["finding"] != "insufficient-data":
            assert set(row["strategies"]) == {"cost", "balanced", "speed"}
            assert row["strategies"]["balanced"]["memory_mb"] == row["recommended_memory_mb"]
    orders = by_name["orders-api"]
    assert orders["finding"] == "over-provisioned"
    assert orders["invocations"] == 960
    assert orders["max_memory_used_mb"] <= orders["recommended_memory_mb"] < 1024
    assert orders["monthly_savings_usd"] > 0
    assert set(orders["projected_duration_ms"]) == {"lower", "expected", "upper"}
    assert any(o["architecture"] == "arm64" and o["what_if"] for o in orders["options"])
    thumbs = by_name["thumbs"]
    assert thumbs["finding"] == "under-provisioned"
    assert thumbs["out_of_memory_errors"] == 24
    assert thumbs["recommended_memory_mb"] > 256
    # 100 invocations of the third function pass the default 50, not a raised bar
    assert by_name["<script>alert(1)</script>"]["finding"] != "insufficient-data"
    code, out, _ = run(fleet, "report", "memory", "--until", UNTIL, "--min-invocations", "500")
    assert {r["function_name"]: r["finding"] for r in json.loads(out)}[
        "<script>alert(1)</script>"
    ] == "insufficient-data"


def test_memory_csv_has_flat_columns(fleet: Path) -> None:
    code, out, _ = run(fleet, "report", "memory", "--until", UNTIL, "--format", "csv")
    assert code == 0
    rows = list(csv.DictReader(io.StringIO(out)))
    assert len(rows) == 3
    # the same keys as the JSON, with projected_duration_ms flattened
    _, js, _ = run(fleet, "report", "memory", "--until", UNTIL)
    json_keys = list(json.loads(js)[0])
    i = json_keys.index("projected_duration_ms")
    flat = [f"projected_duration_ms_{p}" for p in ("lower", "expected", "upper")]
    assert list(rows[0]) == json_keys[:i] + flat + json_keys[i + 1 :]
    assert {
        "function_name",
        "finding",
        "recommended_memory_mb",
        "projected_duration_ms_lower",
        "projected_duration_ms_expected",
        "projected_duration_ms_upper",
        "monthly_savings_usd",
        "reasons",
        "options",
    } <= set(rows[0])
    orders = next(r for r in rows if r["function_name"] == "orders-api")
    assert orders["finding"] == "over-provisioned"
    assert "log-normal" in orders["reasons"]


def test_memory_markdown_and_output_file(fleet: Path, tmp_path: Path) -> None:
    target = tmp_path / "memory.md"
    code, out, err = run(
        fleet, "report", "memory", "--until", UNTIL, "--format", "md", "--output", str(target)
    )
    assert code == 0
    assert out == ""
    assert f"wrote {target}" in err
    text = target.read_text()
    assert text.startswith("# Lambda memory right-sizing\n")
    assert "| orders-api | 111111111111 | us-east-1 | x86_64 | 1024 |" in text
    assert "\\<script\\>alert(1)\\</script\\>" in text


def test_html_report_is_self_contained_and_escapes_names(fleet: Path, tmp_path: Path) -> None:
    target = tmp_path / "memory.html"
    code, _, _ = run(
        fleet, "report", "memory", "--until", UNTIL, "--format", "html", "-o", str(target)
    )
    assert code == 0
    text = target.read_text()
    assert "<script>alert(1)</script>" not in text
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in text
    # inside chart JSON: entities for plotly's label markup, \u003c-escaped for <script>
    assert "\\u0026lt;script\\u0026gt;alert(1)\\u0026lt;\\u002fscript\\u0026gt;" in text
    assert "<script src=" not in text and "<link" not in text  # nothing fetched
    assert len(text) > 1_000_000  # plotly.js is inlined
    assert "Plotly.newPlot('memory-savings'" in text and "Plotly.newPlot('memory-scatter'" in text
    # human headers, units, each function's details folded under its row
    assert "<th>Memory now → recommended</th>" in text and "max_memory_used_mb" not in text
    assert text.count('<tr class="fn">') == 3 and text.count("<details>") == 3


@pytest.mark.parametrize("kind", ["cost", "cold-starts", "stale"])
@pytest.mark.parametrize("fmt", ["json", "csv", "md", "html"])
def test_every_report_in_every_format(fleet: Path, kind: str, fmt: str) -> None:
    code, out, _ = run(fleet, "report", kind, "--until", UNTIL, "--format", fmt)
    assert code == 0
    assert "orders-api" in out
    assert "<script>alert(1)</script>" not in out or fmt in ("json", "csv")


def test_cost_report_totals(fleet: Path) -> None:
    code, out, _ = run(fleet, "report", "cost", "--until", UNTIL, "--function", "orders-api")
    rows = json.loads(out)
    assert code == 0 and len(rows) == 1
    row = rows[0]
    assert row["invocations"] == 960
    assert row["requests_usd"] == pytest.approx(960 * 0.0000002, abs=1e-6)
    assert row["init_usd"] > 0  # 48 cold starts after 2025-08-01
    assert row["total_usd"] == pytest.approx(
        row["requests_usd"] + row["duration_usd"] + row["init_usd"] + row["restore_usd"],
        abs=1e-5,
    )
    assert row["monthly_usd"] == pytest.approx(row["total_usd"] * 30 / 14, rel=1e-3)


def test_cold_start_report_rates(fleet: Path) -> None:
    _, out, _ = run(fleet, "report", "cold-starts", "--until", UNTIL, "--function", "orders-api")
    row = json.loads(out)[0]
    assert row["cold_starts"] == 48
    assert row["cold_start_rate"] == pytest.approx(0.05)
    assert row["init_p50_ms"] == pytest.approx(300, rel=0.02)
    assert any("cold starts 5.0%" in w for w in row["warnings"])


def test_filters_and_unknown_function(fleet: Path) -> None:
    code, out, _ = run(fleet, "report", "memory", "--until", UNTIL, "--region", "eu-west-1")
    assert code == 0 and json.loads(out) == []
    result = CliRunner().invoke(cli, ["--db", str(fleet), "report", "memory", "--function", "nope"])
    assert result.exit_code == 1
    assert result.stderr.strip() == "Error: unknown function: nope"


def test_empty_store_gives_empty_report_and_message(db_path: Path) -> None:
    code, out, err = run(db_path, "report", "memory")
    assert code == 0
    assert json.loads(out) == []
    assert "no functions yet" in err
    code, out, _ = run(db_path, "report", "stale", "--format", "md")
    assert code == 0 and "# Stale Lambda functions" in out


def test_missing_database_is_one_line_error(tmp_path: Path) -> None:
    result = CliRunner().invoke(cli, ["--db", str(tmp_path / "x.db"), "report", "cost"])
    assert result.exit_code == 1
    assert result.stderr.startswith("Error: no database at ")
    assert "Traceback" not in result.output


def test_bad_since_is_a_usage_error(fleet: Path) -> None:
    result = CliRunner().invoke(cli, ["--db", str(fleet), "report", "memory", "--since", "x"])
    assert result.exit_code == 2
    assert "not a duration" in result.stderr


def test_power_tuning_input(fleet: Path) -> None:
    code, out, _ = run(fleet, "power-tuning", "orders-api", "--until", UNTIL, "--num", "20")
    assert code == 0
    payload = json.loads(out)
    assert payload["lambdaARN"] == "arn:aws:lambda:us-east-1:111111111111:function:orders-api"
    assert payload["num"] == 20 and payload["strategy"] == "balanced"
    assert 1024 in payload["powerValues"]
    assert all(128 <= v <= 10240 for v in payload["powerValues"])
    assert payload["powerValues"] == sorted(payload["powerValues"])


def _exact_hour(
    db: Database,
    name: str,
    hour: int,
    *,
    architecture: str,
    billed_ms: float,
    runtime: str,
    region: str = "us-east-1",
    account_id: str = "111111111111",
) -> None:
    """One hour of 1,000 invocations of 100 ms at 1,024 MB with 10 cold starts of 250 ms."""
    fid = function_id(db, name, account_id, region, seen_at=hour, architecture=architecture)
    with db.conn:
        db.conn.execute(
            "UPDATE functions SET runtime = ?, package_type = 'Zip', memory_mb = 1024 WHERE id = ?",
            (runtime, fid),
        )
        db.conn.execute(
            "INSERT INTO hourly_facts (function_id, hour, memory_mb, source, invocations,"
            " cold_starts, duration_ms_sum, duration_ms_max, billed_duration_ms_sum,"
            " max_memory_used_mb_max, init_duration_ms_sum, init_duration_ms_max,"
            " duration_hist, max_memory_used_hist, init_duration_hist)"
            " VALUES (?, ?, 1024, 'local', 1000, 10, 100000, 100, ?, 200, 2500, 250, ?, ?, ?)",
            (
                fid,
                hour,
                billed_ms,
                histcodec.encode({histogram.bucket_of(100.0): 1000}),
                histcodec.encode({histogram.bucket_of(200.0): 1000}),
                histcodec.encode({histogram.bucket_of(250.0): 10}),
            ),
        )


def test_cost_report_reproduces_hand_computed_values(db_path: Path) -> None:
    db = open_db(db_path)
    # after 2025-08-01 (arm64): Billed Duration folds the 2,500 ms of INIT in
    _exact_hour(
        db, "after", END - HOUR, architecture="arm64", billed_ms=102_500, runtime="python3.13"
    )
    # before (x86_64, zip, managed runtime): INIT not billed; 400 ms of 1 ms rounding
    before_end = 1752624000  # 2025-07-16T00:00:00Z
    _exact_hour(
        db,
        "before",
        before_end - HOUR,
        architecture="x86_64",
        billed_ms=100_400,
        runtime="python3.12",
    )
    db.conn.close()
    _, out, _ = run(db_path, "report", "cost", "--until", UNTIL, "--since", "1d")
    (after,) = json.loads(out)
    # requests 1,000 x $0.20/M; invoke 100 GB-s and INIT 2.5 GB-s at $0.0000133334
    assert after["requests_usd"] == pytest.approx(0.0002, abs=1e-9)
    assert after["duration_usd"] == pytest.approx(0.00133334, abs=1e-6)
    assert after["init_usd"] == pytest.approx(0.0000333335, abs=1e-6)
    assert after["total_usd"] == pytest.approx(0.0015666735, abs=1e-6)
    assert after["monthly_usd"] == pytest.approx(0.0015666735 * 30, abs=1e-6)
    assert after["gb_seconds"] == pytest.approx(102.5)
    _, out, _ = run(db_path, "report", "cost", "--until", "2025-07-16T00:00:00Z", "--since", "1d")
    (before,) = json.loads(out)
    # 100.4 GB-s at $0.0000166667, no INIT
    assert before["init_usd"] == 0
    assert before["duration_usd"] == pytest.approx(0.00167333668, abs=1e-6)
    assert before["total_usd"] == pytest.approx(0.00187333668, abs=1e-6)
    _, out, _ = run(db_path, "report", "cold-starts", "--until", UNTIL, "--since", "1d")
    (cold,) = json.loads(out)
    assert cold["init_cost_usd"] == pytest.approx(0.0000333335, abs=1e-6)
    assert cold["cold_start_rate"] == pytest.approx(0.01)


def _raw_hour(db: Database, fid: int, hour: int, memory_mb: int, **values: float) -> None:
    columns = {
        "invocations": 1,
        "errors": 0,
        "timeouts": 0,
        "out_of_memory": 0,
        "duration_ms_sum": 100.0,
        "duration_ms_max": 100.0,
        "billed_duration_ms_sum": 100.0,
        "max_memory_used_mb_max": 64,
        **values,
    }
    n = int(columns["invocations"])
    used = float(columns["max_memory_used_mb_max"])
    mean = float(columns["duration_ms_sum"]) / max(1, n)
    with db.conn:
        db.conn.execute(
            f"INSERT INTO hourly_facts (function_id, hour, memory_mb, source,"
            f" {', '.join(columns)}, duration_hist, max_memory_used_hist)"
            f" VALUES (?, ?, ?, 'local', {', '.join('?' for _ in columns)}, ?, ?)",
            (
                fid,
                hour,
                memory_mb,
                *columns.values(),
                histcodec.encode({histogram.bucket_of(mean): n}),
                histcodec.encode({histogram.bucket_of(used): n}),
            ),
        )


@pytest.fixture
def odd_store(db_path: Path) -> Path:
    """Functions with only timeouts, only errors, one invocation, 10,240 MB out of memory,
    128 MB, week-long gaps, and CloudWatch counts without any log line."""
    db = open_db(db_path)

    def fn(name: str, memory_mb: int, timeout_s: int = 30) -> int:
        fid = function_id(db, name, "111111111111", "us-east-1", seen_at=END - HOUR)
        with db.conn:
            db.conn.execute(
                "UPDATE functions SET memory_mb = ?, timeout_s = ? WHERE id = ?",
                (memory_mb, timeout_s, fid),
            )
        return fid

    t = fn("only-timeouts", 512, timeout_s=3)
    for h in range(1, 7):
        _raw_hour(
            db,
            t,
            END - h * HOUR,
            512,
            invocations=10,
            errors=10,
            timeouts=10,
            duration_ms_sum=30_000.0,
            duration_ms_max=3_000.0,
            billed_duration_ms_sum=30_000.0,
            max_memory_used_mb_max=90,
        )
    e = fn("only-errors", 256)
    for h in range(1, 7):
        _raw_hour(
            db,
            e,
            END - h * HOUR,
            256,
            invocations=10,
            errors=10,
            duration_ms_sum=50.0,
            duration_ms_max=5.0,
            billed_duration_ms_sum=60.0,
        )
    _raw_hour(db, fn("one-call", 1024), END - HOUR, 1024)
    big = fn("max-size", 10240, timeout_s=900)
    for h in range(1, 7):
        _raw_hour(
            db,
            big,
            END - h * HOUR,
            10240,
            invocations=20,
            errors=2,
            out_of_memory=2,
            duration_ms_sum=2e6,
            duration_ms_max=2e5,
            billed_duration_ms_sum=2e6,
            max_memory_used_mb_max=10240,
        )
    small = fn("min-size", 128)
    gappy = fn("gappy", 512)
    for h in range(1, 80):
        _raw_hour(
            db,
            small,
            END - h * HOUR,
            128,
            invocations=5,
            max_memory_used_mb_max=60,
            duration_ms_sum=400.0,
            duration_ms_max=80.0,
            billed_duration_ms_sum=405.0,
        )
        if h % 24 == 0:  # one hour a day, long gaps between
            _raw_hour(
                db,
                gappy,
                END - h * HOUR * 4,
                512,
                invocations=30,
                max_memory_used_mb_max=100,
                duration_ms_sum=3000.0,
                duration_ms_max=100.0,
                billed_duration_ms_sum=3030.0,
            )
    metrics_only = fn("metrics-only", 512)
    with db.conn:
        db.conn.execute(
            "INSERT INTO hourly_metrics (function_id, hour, invocations, errors, throttles)"
            " VALUES (?, ?, 500, 5, 100)",
            (metrics_only, END - HOUR),
        )
    db.conn.close()
    return db_path


def _numbers(value: object, key: str = "") -> list[tuple[str, float]]:
    if isinstance(value, dict):
        return [n for k, v in value.items() for n in _numbers(v, k)]
    if isinstance(value, list):
        return [n for v in value for n in _numbers(v, key)]
    if isinstance(value, int | float) and not isinstance(value, bool):
        return [(key, float(value))]
    return []


@pytest.mark.parametrize("kind", ["memory", "cost", "cold-starts", "stale"])
def test_odd_functions_give_sane_reports(odd_store: Path, kind: str) -> None:
    for fmt in ("csv", "md", "html"):
        code, out, _ = run(odd_store, "report", kind, "--until", UNTIL, "--format", fmt)
        assert code == 0 and "only-timeouts" in out
    code, out, _ = run(odd_store, "report", kind, "--until", UNTIL)
    assert code == 0
    doc = json.loads(out)
    for key, number in _numbers(doc):
        assert math.isfinite(number), key
        if "cost" in key or (key.endswith("_usd") and "savings" not in key):
            assert number >= 0, key
    if kind == "memory":
        by_name = {r["function_name"]: r for r in doc}
        assert by_name["max-size"]["finding"] == "under-provisioned"
        assert by_name["max-size"]["recommended_memory_mb"] == 10240
        assert by_name["one-call"]["finding"] == "insufficient-data"
        assert by_name["min-size"]["recommended_memory_mb"] == 128
        assert by_name["only-timeouts"]["finding"] == "over-provisioned"
        # CloudWatch counts without a REPORT line: counted, but nothing to size from
        assert by_name["metrics-only"]["invocations"] == 500
        assert by_name["metrics-only"]["finding"] == "insufficient-data"
        assert sorted(by_name) == [
            "gappy",
            "max-size",
            "metrics-only",
            "min-size",
            "one-call",
            "only-errors",
            "only-timeouts",
        ]
    if kind == "cold-starts":
        by_name = {r["function_name"]: r for r in doc}
        timeouts = by_name["only-timeouts"]
        assert timeouts["timeouts"] == 60 and timeouts["recommended_timeout_s"] > 3
        assert any("passes 90 % of the 3 s timeout" in w for w in timeouts["warnings"])
        assert by_name["only-errors"]["error_rate"] == 1.0
        throttled = by_name["metrics-only"]
        assert throttled["throttle_rate"] == pytest.approx(100 / 600, rel=1e-5)
        assert any("throttles 16.7% of requests" in w for w in throttled["warnings"])


def test_unwritable_output_is_one_line_error(fleet: Path, tmp_path: Path) -> None:
    target = tmp_path / "missing-dir" / "memory.html"
    result = CliRunner().invoke(
        cli, ["--db", str(fleet), "report", "memory", "--until", UNTIL, "-o", str(target)]
    )
    assert result.exit_code == 1
    assert result.stderr.startswith(f"Error: cannot write {target}: ")
    assert len(result.stderr.strip().splitlines()) == 1


def test_power_tuning_uses_the_configured_size(db_path: Path) -> None:
    db = open_db(db_path)
    # ran at 512 MB most of the window, now configured at 1024 MB
    add_hours(
        db,
        "moved",
        memory_mb=512,
        hours=40,
        per_hour=10,
        memory_used=(100, 120),
        account_id="",
        region="",
        first_hour_offset=10,
    )
    add_hours(
        db,
        "moved",
        memory_mb=1024,
        hours=10,
        per_hour=10,
        memory_used=(100, 120),
        account_id="",
        region="",
    )
    db.conn.close()
    code, out, err = run(db_path, "power-tuning", "moved", "--until", UNTIL)
    assert code == 0
    payload = json.loads(out)
    assert 1024 in payload["powerValues"]  # the current size is part of the run
    assert payload["lambdaARN"] == "arn:aws:lambda:<region>:<account-id>:function:moved"
    assert "fill in <region> / <account-id>" in err


def test_store_older_than_the_window_reports_its_latest_data(fleet: Path) -> None:
    # The fleet's data ends 2026-01-01; "now" is later, so the last 14 days hold nothing.
    code, out, err = run(fleet, "report", "memory")
    assert code == 0
    assert "showing the 14d up to the latest data (2026-01-01T00:00:00Z)" in err
    assert {r["function_name"] for r in json.loads(out)} >= {"orders-api", "thumbs"}
    # with --until the window is the one asked for, even when empty
    code, out, err = run(fleet, "report", "memory", "--until", "2025-06-01T00:00:00Z")
    assert code == 0 and json.loads(out) == [] and "showing" not in err


ROUNDED = 5e-7  # the reports round USD to 6 decimals


def test_cost_report_regional_prices_and_fallback(db_path: Path) -> None:
    db = open_db(db_path)
    for name, arch, region in [
        ("cape-x86", "x86_64", "af-south-1"),
        ("cape-arm", "arm64", "af-south-1"),
        ("far-away", "x86_64", "mars-north-1"),
    ]:
        _exact_hour(
            db,
            name,
            END - HOUR,
            architecture=arch,
            billed_ms=102_500,
            runtime="python3.13",
            region=region,
        )
    db.conn.close()
    _, out, _ = run(db_path, "report", "cost", "--until", UNTIL, "--since", "1d")
    rows = {r["function_name"]: r for r in json.loads(out)}
    # af-south-1: $0.27 per 1M requests, $0.0000221 (x86_64) / $0.00001768 (arm64) per GB-s;
    # 1,000 requests, 100 GB-s invoke + 2.5 GB-s INIT
    x86 = rows["cape-x86"]
    assert x86["requests_usd"] == pytest.approx(0.00027, abs=ROUNDED)
    assert x86["duration_usd"] == pytest.approx(0.00221, abs=ROUNDED)
    assert x86["init_usd"] == pytest.approx(0.00005525, abs=ROUNDED)
    assert x86["total_usd"] == pytest.approx(0.00253525, abs=ROUNDED)
    arm = rows["cape-arm"]
    assert arm["requests_usd"] == pytest.approx(0.00027, abs=ROUNDED)
    assert arm["duration_usd"] == pytest.approx(0.001768, abs=ROUNDED)
    assert arm["total_usd"] == pytest.approx(0.0020822, abs=ROUNDED)
    # a region not in the table is priced as us-east-1, and the report says so
    far = rows["far-away"]
    assert far["requests_usd"] == pytest.approx(0.0002, abs=ROUNDED)
    assert far["total_usd"] == pytest.approx(0.0002 + 102.5 * 0.0000166667, abs=ROUNDED)
    _, md, _ = run(db_path, "report", "cost", "--until", UNTIL, "--since", "1d", "--format", "md")
    assert "not in the table, priced as us-east-1: mars-north-1" in md
    assert "af-south-1" not in md.split("priced as us-east-1")[1].splitlines()[0]
    assert "no free tier" in md


def test_free_tier_option_is_shared_per_account_and_prorated(db_path: Path) -> None:
    db = open_db(db_path)
    hour = END - HOUR
    # account 1: "big" 1,000 GB-s and "small" 102.5 GB-s, 1,000 requests each
    _exact_hour(db, "big", hour, architecture="x86_64", billed_ms=1_000_000, runtime="python3.13")
    _exact_hour(db, "small", hour, architecture="x86_64", billed_ms=102_500, runtime="python3.13")
    # account 2: its own free tier covers it all
    _exact_hour(
        db,
        "other",
        hour,
        architecture="x86_64",
        billed_ms=102_500,
        runtime="python3.13",
        account_id="222222222222",
    )
    db.conn.close()
    args = ("report", "cost", "--until", UNTIL, "--since", "1h")
    _, out, _ = run(db_path, *args)
    listed = {r["function_name"]: r for r in json.loads(out)}
    assert listed["other"]["total_usd"] > 0
    code, out, _ = run(db_path, *args, "--free-tier")
    assert code == 0
    free = {r["function_name"]: r for r in json.loads(out)}
    # one hour = 1/720 of 30 days: 1,388.89 free requests and 555.56 free GB-s per account,
    # shared in proportion to requests (1/2 each) and GB-s (1,000 : 102.5)
    free_requests, free_gbs = 1_000_000 / 720, 400_000 / 720
    billed_requests = 1000 - free_requests / 2
    share = 1 - free_gbs / 1102.5
    assert free["big"]["requests_usd"] == pytest.approx(billed_requests * 0.0000002, abs=ROUNDED)
    assert free["small"]["requests_usd"] == pytest.approx(billed_requests * 0.0000002, abs=ROUNDED)
    assert free["big"]["total_usd"] == pytest.approx(
        billed_requests * 0.0000002 + 1000 * share * 0.0000166667, abs=2 * ROUNDED
    )
    assert free["small"]["total_usd"] == pytest.approx(
        billed_requests * 0.0000002 + 102.5 * share * 0.0000166667, abs=2 * ROUNDED
    )
    # the account pays list price for what exceeds its free tier, once
    assert free["big"]["total_usd"] + free["small"]["total_usd"] == pytest.approx(
        (2000 - free_requests) * 0.0000002 + (1102.5 - free_gbs) * 0.0000166667, abs=2 * ROUNDED
    )
    assert free["other"]["total_usd"] == 0
    # the memory report applies the same shares to the current cost
    _, out, _ = run(db_path, "report", "memory", "--until", UNTIL, "--since", "1h", "--free-tier")
    memory = {r["function_name"]: r for r in json.loads(out)}
    for name in ("big", "small", "other"):
        assert memory[name]["current_cost_usd"] == pytest.approx(
            free[name]["total_usd"], abs=ROUNDED
        )
    _, out, _ = run(db_path, "report", "memory", "--until", UNTIL, "--since", "1h")
    assert json.loads(out)[0]["current_cost_usd"] > 0
    _, md, _ = run(db_path, *args, "--free-tier", "--format", "md")
    assert "prorated to the window" in md


def test_free_tier_help_explains_proration() -> None:
    for kind in ("cost", "memory"):
        result = CliRunner().invoke(cli, ["report", kind, "--help"])
        assert result.exit_code == 0
        text = " ".join(result.output.split())
        assert "--free-tier" in text
        assert "prorated to the window" in text and "per account and month" in text


def test_stale_modified_days_option(db_path: Path) -> None:
    db = open_db(db_path)
    fid = function_id(db, "old-job", "111111111111", "us-east-1", seen_at=END - 100 * DAY)
    with db.conn:
        db.conn.execute(
            "UPDATE functions SET last_modified = ? WHERE id = ?", (END - 45 * DAY, fid)
        )
    db.conn.close()

    def signals(*extra: str) -> set[str]:
        code, out, _ = run(db_path, "report", "stale", "--until", UNTIL, *extra)
        assert code == 0
        (row,) = [r for r in json.loads(out)["functions"] if r["function_name"] == "old-job"]
        return {s["key"] for s in row["signals"]}

    assert "not_modified" in signals()  # 45 days >= the default 30
    assert "not_modified" in signals("--modified-days", "45")
    assert "not_modified" not in signals("--modified-days", "60")
    assert "idle" in signals("--modified-days", "60", "--idle-days", "90")
    result = CliRunner().invoke(
        cli, ["--db", str(db_path), "report", "stale", "--modified-days", "0"]
    )
    assert result.exit_code == 2


def test_power_tuning_on_a_store_older_than_the_window(fleet: Path) -> None:
    code, out, err = run(fleet, "power-tuning", "orders-api")
    assert code == 0
    assert "showing the 14d up to the latest data" in err
    assert json.loads(out)["lambdaARN"].endswith(":function:orders-api")


def test_invocations_of_unknown_memory_size_are_not_right_sized(db_path: Path) -> None:
    db = open_db(db_path)
    # logs that did not say the memory size are stored at memory 0
    add_hours(db, "no-size", memory_mb=0, hours=10, per_hour=20, memory_used=(50, 60))
    add_hours(db, "sized", memory_mb=512, hours=10, per_hour=20, memory_used=(50, 60), seed=2)
    db.conn.close()
    code, out, _ = run(db_path, "report", "memory", "--until", UNTIL)
    assert code == 0
    assert [(r["function_name"], r["memory_mb"]) for r in json.loads(out)] == [("sized", 512)]


def test_p99_memory_used_is_never_above_the_maximum(fleet: Path) -> None:
    code, out, _ = run(fleet, "report", "memory", "--until", UNTIL)
    assert code == 0
    rows = json.loads(out)
    assert rows and all(r["p99_memory_used_mb"] <= r["max_memory_used_mb"] for r in rows)


def test_a_memory_change_mid_window_gives_one_answer_with_history(db_path: Path) -> None:
    db = open_db(db_path)
    # 2,048 MB for the first four days, then 512 MB (the current size) for three
    add_hours(
        db,
        "resize",
        memory_mb=2048,
        hours=96,
        per_hour=10,
        memory_used=(150, 180),
        duration_ms=200.0,
        first_hour_offset=72,
    )
    add_hours(
        db,
        "resize",
        memory_mb=512,
        hours=72,
        per_hour=10,
        memory_used=(150, 185),
        duration_ms=300.0,
        seed=2,
    )
    db.conn.close()
    for fmt in ("json", "csv"):
        code, out, _ = run(db_path, "report", "memory", "--until", UNTIL, "--format", fmt)
        assert code == 0
        rows = json.loads(out) if fmt == "json" else list(csv.DictReader(io.StringIO(out)))
        assert [r["function_name"] for r in rows] == ["resize"]
    (row,) = json.loads(run(db_path, "report", "memory", "--until", UNTIL)[1])
    assert row["memory_mb"] == 512  # the size it runs with now
    assert row["invocations"] == 720
    assert [h["memory_mb"] for h in row["history"]] == [2048]
    earlier = row["history"][0]
    assert earlier["invocations"] == 960 and earlier["max_memory_used_mb"] >= 150
    assert earlier["last_seen"] == "2025-12-28T23:00:00Z"  # its last hour, 73 h before the end
    assert row["natural_experiment"]
    code, md, _ = run(db_path, "report", "memory", "--until", UNTIL, "--format", "md")
    assert "2048 MB" in md


def test_strategies_and_their_limits(db_path: Path) -> None:
    db = open_db(db_path)
    # fully CPU-bound: 600 ms at 512 MB before, 300 ms at 1,024 MB now; needs ~200 MB
    add_hours(
        db,
        "crunch",
        memory_mb=512,
        hours=48,
        per_hour=20,
        memory_used=(150, 180),
        duration_ms=600.0,
        first_hour_offset=48,
    )
    add_hours(
        db,
        "crunch",
        memory_mb=1024,
        hours=48,
        per_hour=20,
        memory_used=(150, 180),
        duration_ms=300.0,
        seed=2,
    )
    db.conn.close()

    def answer(*args: str) -> dict[str, Any]:
        code, out, err = run(db_path, "report", "memory", "--until", UNTIL, *args)
        assert code == 0, err
        (row,) = json.loads(out)
        return dict(row)

    balanced = answer()
    cost = answer("--strategy", "cost")
    speed = answer("--strategy", "speed", "--max-cost-increase", "50%")
    loose = answer("--max-slowdown", "2x")
    assert balanced["strategy"] == "balanced" and cost["strategy"] == "cost"
    # balanced: within 1.25x of today's 300 ms; cost: the cheapest safe size, flagged
    assert balanced["projected_duration_ms"]["expected"] <= 1.25 * 300 * 1.01
    assert not balanced["performance_risk"]
    assert cost["recommended_memory_mb"] < balanced["recommended_memory_mb"] < 1024
    assert cost["performance_risk"]
    assert any("slower than today" in r for r in cost["reasons"])
    assert loose["recommended_memory_mb"] < balanced["recommended_memory_mb"]
    # speed: faster than today, at most +50 % cost
    assert speed["recommended_memory_mb"] > 1024
    assert speed["projected_duration_ms"]["expected"] < 300
    assert (
        speed["strategies"]["speed"]["monthly_cost_usd"] <= 1.5 * speed["current_monthly_cost_usd"]
    )
    # every answer names what the other strategies would pick
    assert balanced["strategies"]["cost"]["memory_mb"] == cost["recommended_memory_mb"]
    for bad in (("--max-slowdown", "0.5"), ("--max-cost-increase", "lots")):
        code, _, err = run(db_path, "report", "memory", "--until", UNTIL, *bad)
        assert code == 2 and "Traceback" not in err and bad[0] in err


def test_cold_starts_warn_only_when_they_cost_latency_or_money(db_path: Path) -> None:
    db = open_db(db_path)
    # 5 % cold starts of 20 ms on 2 s requests: 0.05 % more latency, nothing to act on
    add_hours(
        db,
        "cheap-inits",
        memory_mb=512,
        hours=24,
        per_hour=20,
        memory_used=(100, 120),
        duration_ms=2000.0,
        cold_per_hour=1,
        init_ms=20.0,
    )
    # 5 % cold starts of 900 ms on 50 ms requests: +90 % mean latency
    add_hours(
        db,
        "slow-inits",
        memory_mb=512,
        hours=24,
        per_hour=20,
        memory_used=(100, 120),
        duration_ms=50.0,
        cold_per_hour=1,
        init_ms=900.0,
        seed=2,
    )
    db.conn.close()
    _, out, _ = run(db_path, "report", "cold-starts", "--until", UNTIL)
    warnings = {r["function_name"]: r["warnings"] for r in json.loads(out)}
    assert not any("cold starts" in w for w in warnings["cheap-inits"])
    (warning,) = [w for w in warnings["slow-inits"] if "cold starts" in w]
    assert warning.startswith("cold starts 5.0% of invocations add 90% to the mean latency")


def test_lambda_managed_instances_get_request_prices_and_no_memory_advice(db_path: Path) -> None:
    db = open_db(db_path)
    fid = add_hours(
        db, "on-instances", memory_mb=2048, hours=48, per_hour=20, memory_used=(150, 200)
    )
    provider = "arn:aws:lambda:us-east-1:111111111111:capacity-provider:fleet-a"
    with db.conn:  # what the inventory stores for a function with a CapacityProviderConfig
        db.conn.execute(
            "UPDATE functions SET capacity_provider_arn = ?, memory_gib_per_vcpu = 4 WHERE id = ?",
            (provider, fid),
        )
    db.conn.close()
    _, out, _ = run(db_path, "report", "memory", "--until", UNTIL)
    (row,) = json.loads(out)
    assert row["finding"] == "managed-instances"
    assert row["recommended_memory_mb"] is None and row["options"] == []
    assert any("billed by the capacity provider's EC2 instances" in r for r in row["reasons"])
    assert row["current_cost_usd"] == pytest.approx(960 * 0.2 / 1e6)  # requests only
    _, out, _ = run(db_path, "report", "cost", "--until", UNTIL)
    (cost,) = json.loads(out)
    assert cost["duration_usd"] == 0 and cost["init_usd"] == 0
    assert cost["total_usd"] == pytest.approx(960 * 0.2 / 1e6, abs=1e-6)


def test_memory_reports_rank_what_to_do_first_in_every_format(fleet: Path) -> None:
    _, out, _ = run(fleet, "report", "memory", "--until", UNTIL)
    rows = json.loads(out)
    # under-provisioned (most out-of-memory errors first), then the largest savings
    assert rows[0]["function_name"] == "thumbs"
    assert rows[0]["finding"] == "under-provisioned"
    savings = [r["monthly_savings_usd"] for r in rows if r["finding"] == "over-provisioned"]
    assert savings == sorted(savings, reverse=True)
    _, md, _ = run(fleet, "report", "memory", "--until", UNTIL, "--format", "md")
    table = [line for line in md.splitlines() if line.startswith("| ")][1:]
    names = [line.split(" | ")[0].removeprefix("| ") for line in table]
    assert names == [r["function_name"].replace("<", "\\<").replace(">", "\\>") for r in rows]
    assert "- first: give more memory to 1 under-provisioned function (thumbs first)" in md
