"""Function names from local logs: where each came from, stdin needs one, and a wrong
guess can be renamed or deleted with its facts; --architecture applies to known ones."""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner
from sqlite_utils import Database

from lambdascope.cli import cli
from lambdascope.db import function_id, open_db

REPORT = (
    "2026-11-20T10:{minute:02d}:00.000Z\tREPORT RequestId: {rid}\tDuration: 10.00 ms\t"
    "Billed Duration: 10 ms\tMemory Size: 128 MB\tMax Memory Used: 60 MB\t\n"
)


def _log(count: int, prefix: str = "a") -> str:
    return "".join(
        REPORT.format(minute=n % 60, rid=f"{prefix}{n:07d}-aaaa-4bbb-8ccc-000000000000")
        for n in range(count)
    )


def _run(db_path: Path, *args: str, stdin: str | None = None) -> tuple[int, str, str]:
    result = CliRunner().invoke(cli, ["--db", str(db_path), *args], input=stdin)
    return result.exit_code, result.stdout, result.stderr


def _functions(db_path: Path) -> dict[str, int]:
    code, out, err = _run(db_path, "summary", "--until", "2026-11-21", "--format", "json")
    assert code == 0, err
    return {row["function_name"]: row["invocations"] for row in json.loads(out)["functions"]}


def _folder_log(tmp_path: Path, count: int = 4) -> Path:
    path = tmp_path / "dl" / "export.log"
    path.parent.mkdir(exist_ok=True)
    path.write_text(_log(count))
    return path


def test_ingest_says_where_each_name_came_from(db_path: Path, tmp_path: Path) -> None:
    code, _out, err = _run(db_path, "ingest", str(_folder_log(tmp_path)))
    assert code == 0
    assert f"names: dl from the folder {tmp_path / 'dl'} (give --function NAME" in err
    code, _out, err = _run(db_path, "ingest", "--function", "api", "-", stdin=_log(2, "b"))
    assert code == 0
    assert "names:" not in err  # the user named it
    envelope = {
        "messageType": "DATA_MESSAGE",
        "logGroup": "/aws/lambda/checkout",
        "logStream": "2026/11/20/[$LATEST]abc",
        "logEvents": [{"id": "1", "timestamp": 1_763_632_800_000, "message": _log(1, "c")}],
    }
    code, _out, err = _run(db_path, "ingest", "-", stdin=json.dumps(envelope))
    assert code == 0, err
    assert "names: checkout from its log group" in err


def test_stdin_without_function_or_envelope_is_refused(db_path: Path) -> None:
    code, out, err = _run(db_path, "ingest", "-", stdin=_log(3))
    assert code == 1
    assert "Error: 3 events read from stdin have no function: give --function NAME" in err
    assert "(0 new)" in out
    db = open_db(db_path)
    assert db.conn.execute("SELECT COUNT(*) FROM functions").fetchone() == (0,)


def test_rename_a_folder_name_keeps_every_fact(db_path: Path, tmp_path: Path) -> None:
    log = _folder_log(tmp_path)
    _run(db_path, "ingest", str(log))
    assert _functions(db_path) == {"dl": 4}
    code, out, _err = _run(db_path, "function", "rename", "dl", "orders-api")
    assert (code, out) == (0, "renamed dl to orders-api\n")
    assert _functions(db_path) == {"orders-api": 4}
    # the same file again is known under its new name: nothing doubles, no "dl" comes back
    code, out, _err = _run(db_path, "ingest", str(log))
    assert code == 0 and "(0 new)" in out
    assert _functions(db_path) == {"orders-api": 4}


def test_rename_refusals(db_path: Path, tmp_path: Path, db: Database) -> None:
    _run(db_path, "ingest", str(_folder_log(tmp_path)))
    _run(db_path, "ingest", "--function", "api", "-", stdin=_log(2, "b"))
    code, _out, err = _run(db_path, "function", "rename", "dl", "api")
    assert code == 1
    assert err == (
        "Error: 'api' already exists in the store: delete one of the two first"
        " (`lambdascope function delete`), then re-ingest its logs under the kept name\n"
    )
    code, _out, err = _run(db_path, "function", "rename", "nope", "x")
    assert code == 1
    assert err == "Error: no function 'nope' in the store (see `lambdascope summary`)\n"
    with db.conn:
        function_id(db, "api", "111111111111", "eu-west-1")
        db.conn.execute("UPDATE functions SET inventory_at = 1 WHERE account_id != ''")
    code, _out, err = _run(db_path, "function", "rename", "api", "api2")
    assert code == 1 and "choose one with --account and --region" in err
    code, _out, err = _run(
        db_path, "function", "rename", "api", "api2", "--account", "111111111111"
    )
    assert code == 1 and "listed by the AWS inventory" in err


def test_delete_removes_facts_and_lets_the_file_be_ingested_again(
    db_path: Path, tmp_path: Path
) -> None:
    log = _folder_log(tmp_path, 6)
    _run(db_path, "ingest", str(log))
    code, _out, err = _run(db_path, "function", "delete", "dl")
    assert code == 1 and "add --yes to confirm" in err
    assert _functions(db_path) == {"dl": 6}
    code, out, _err = _run(db_path, "function", "delete", "dl", "--yes")
    assert code == 0
    assert out.startswith("deleted dl: 6 raw invocations,")
    assert "1 ingested files forgotten" in out
    db = open_db(db_path)
    for table in ("functions", "invocations", "hourly_facts", "daily_facts", "merged_hourly"):
        assert db.conn.execute(f"SELECT COUNT(*) FROM {table}").fetchone() == (0,), table
    code, out, _err = _run(db_path, "ingest", "--function", "orders-api", str(log))
    assert code == 0 and "6 reports (6 new)" in out
    assert _functions(db_path) == {"orders-api": 6}


def test_architecture_applies_to_known_functions_unless_inventory_says_otherwise(
    db_path: Path, tmp_path: Path
) -> None:
    log = _folder_log(tmp_path)
    _run(db_path, "ingest", "--function", "api", str(log))
    db = open_db(db_path)
    assert db.conn.execute("SELECT architecture FROM functions").fetchone() == ("x86_64",)
    code, _out, err = _run(
        db_path, "ingest", "--function", "api", "--architecture", "arm64", str(log)
    )
    assert code == 0
    assert "note: api: architecture changed from x86_64 to arm64" in err
    assert db.conn.execute("SELECT architecture FROM functions").fetchone() == ("arm64",)
    with db.conn:
        db.conn.execute("UPDATE functions SET inventory_at = 1")
    code, _out, err = _run(
        db_path, "ingest", "--function", "api", "--architecture", "x86_64", str(log)
    )
    assert "note: api: --architecture x86_64 not applied: the AWS inventory says arm64" in err
    assert db.conn.execute("SELECT architecture FROM functions").fetchone() == ("arm64",)
