"""`lambdascope parse` and `lambdascope ingest` through the CLI, with exact output."""

from __future__ import annotations

import json
import re
from pathlib import Path

from click.testing import CliRunner

from lambdascope.cli import cli

DATA = Path(__file__).parent / "data" / "logs"
KEYS = [
    "kind",
    "function_name",
    "timestamp",
    "request_id",
    "duration_ms",
    "billed_duration_ms",
    "memory_size_mb",
    "max_memory_used_mb",
    "init_duration_ms",
    "restore_duration_ms",
    "billed_restore_duration_ms",
    "status",
    "error_type",
]


def test_parse_prints_one_json_object_per_platform_event() -> None:
    result = CliRunner().invoke(cli, ["parse", str(DATA / "text" / "report_variants.log")])
    assert result.exit_code == 0
    objects = [json.loads(line) for line in result.output.splitlines()]
    assert all(list(obj) == KEYS for obj in objects)
    assert [o["kind"] for o in objects] == ["report"] * 4 + ["timeout", "report", "report"] + [
        "init_report"
    ]
    assert objects[0] == {
        "kind": "report",
        "function_name": "text",  # what ingest stores: the folder's name
        "timestamp": "2024-05-01T10:00:00.100Z",
        "request_id": "8f5a6a2e-6c1f-4b0e-9f58-4a1d7a7b1c01",
        "duration_ms": 102.25,
        "billed_duration_ms": 103.0,
        "memory_size_mb": 512,
        "max_memory_used_mb": 187,
        "init_duration_ms": 221.4,
        "restore_duration_ms": None,
        "billed_restore_duration_ms": None,
        "status": None,
        "error_type": None,
    }
    assert objects[3]["restore_duration_ms"] == 310.1
    assert (objects[6]["status"], objects[6]["error_type"]) == ("error", "Runtime.OutOfMemory")


def test_parse_names_functions_from_envelopes_and_reads_gzip() -> None:
    result = CliRunner().invoke(cli, ["parse", str(DATA / "envelopes" / "firehose-2.gz")])
    assert result.exit_code == 0
    names = [(o["kind"], o["function_name"]) for o in map(json.loads, result.output.splitlines())]
    assert names == [("timeout", "checkout"), ("report", "checkout"), ("report", "payments")]


def test_parse_reads_stdin() -> None:
    line = "REPORT RequestId: abc\tDuration: 1.50 ms\tBilled Duration: 2 ms\t"
    line += "Memory Size: 128 MB\tMax Memory Used: 30 MB\n"
    result = CliRunner().invoke(cli, ["parse", "--function", "f", "-"], input=line)
    assert result.exit_code == 0
    obj = json.loads(result.output)
    assert (obj["function_name"], obj["request_id"], obj["duration_ms"]) == ("f", "abc", 1.5)


def test_parse_unreadable_path_is_one_line_and_non_zero(tmp_path: Path) -> None:
    missing = tmp_path / "missing.log"
    result = CliRunner().invoke(cli, ["parse", str(missing)])
    assert result.exit_code == 1
    assert result.output == f"Error: cannot read {missing}: no such file or directory\n"


def _normalise(text: str) -> str:
    return re.sub(r"in [\d.]+ s \([\d,]+ lines/s\)", "in S s (N lines/s)", text)


def test_ingest_summary_line_and_idempotent_rerun(tmp_path: Path) -> None:
    db = tmp_path / "store.db"
    args = ["--db", str(db), "ingest", str(DATA / "text"), str(DATA / "json")]
    first = CliRunner().invoke(cli, args)
    assert first.exit_code == 0
    assert _normalise(first.stdout) == (
        "2 files, 21 lines, 9 reports (9 new), skipped 0 lines, 2 functions in S s (N lines/s)\n"
    )
    assert f"names: json from the folder {DATA / 'json'} (give --function NAME" in first.stderr
    assert f"names: text from the folder {DATA / 'text'} (give --function NAME" in first.stderr
    again = CliRunner().invoke(cli, args)
    assert again.stderr == ""
    assert _normalise(again.output) == (
        "2 files, 0 lines, 0 reports (0 new), skipped 0 lines, 0 functions in S s (N lines/s)\n"
    )


def test_ingest_unreadable_path_exits_non_zero_after_the_rest(tmp_path: Path) -> None:
    db = tmp_path / "store.db"
    missing = tmp_path / "gone"
    result = CliRunner().invoke(
        cli,
        ["--db", str(db), "ingest", "--function", "api", str(missing), str(DATA / "export")],
    )
    assert result.exit_code == 1
    assert _normalise(result.output) == (
        f"Error: cannot read {missing}: no such file or directory\n"
        "2 files, 10 lines, 4 reports (2 new), skipped 0 lines, 1 functions in S s (N lines/s)\n"
    )


def test_a_reader_that_stops_early_ends_the_output_quietly(tmp_path: Path) -> None:
    import subprocess
    import sys

    log = tmp_path / "many.log"
    line = (
        "REPORT RequestId: {0}\tDuration: 1.0 ms\tBilled Duration: 1 ms\t"
        "Memory Size: 128 MB\tMax Memory Used: 60 MB\t\n"
    )
    log.write_text("".join(line.format(f"req-{i}") for i in range(20000)))
    parse = subprocess.Popen(
        [sys.executable, "-m", "lambdascope.cli", "parse", str(log)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    assert parse.stdout is not None and parse.stderr is not None
    first = parse.stdout.readline()
    parse.stdout.close()  # like `| head -1`
    assert parse.wait(timeout=60) == 0
    assert b'"request_id": "req-0"' in first
    assert parse.stderr.read() == b""
