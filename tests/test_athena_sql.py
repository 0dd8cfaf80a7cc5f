"""The Athena query's meaning: run on DuckDB over a local copy of a Firehose archive, it
gives the same hourly facts and histograms as ``lambdascope ingest`` of the same files.

Athena runs Trino SQL; sqlglot transpiles the query to DuckDB. One difference is mapped:
Trino's json_extract_scalar gives NULL for text that is not JSON, DuckDB's raises, so the
DuckDB side wraps it in TRY (the same NULL).
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import duckdb
import pytest
import sqlglot
from sqlglot import exp
from sqlite_utils import Database

from collectors.athena import (
    FACT_COLUMNS,
    HISTOGRAMS,
    KEY_COLUMNS,
    athena_table_ddl,
    build_query,
    transform_rows,
    window_partitions,
)
from collectors.local import ingest_paths
from lambdascope import histcodec
from lambdascope.db import open_db
from tests import firehose_archive
from tests.firehose_archive import ACCOUNTS, BASE, HOURS, SHARED_FUNCTION

TABLE = "lambda_archive.cwl_firehose"
_FLOATS = {c for c in FACT_COLUMNS if c.endswith("_sum") or c.endswith("_ms_max")}


def to_duckdb(query: str) -> str:
    tree = sqlglot.parse_one(query, read="trino")
    tree = tree.transform(
        lambda node: (
            exp.Anonymous(this="TRY", expressions=[node.copy()])
            if isinstance(node, exp.JSONExtractScalar)
            else node
        )
    )
    return tree.sql(dialect="duckdb")


def duckdb_archive(root: Path) -> duckdb.DuckDBPyConnection:
    """The archive as the Athena table: columns by the lower-cased JSON keys, ``dt`` from
    the object's date/hour path (what partition projection gives)."""
    con = duckdb.connect()
    con.execute("CREATE SCHEMA lambda_archive")
    columns = (
        "{'messageType': 'VARCHAR', 'owner': 'VARCHAR', 'logGroup': 'VARCHAR',"
        " 'logStream': 'VARCHAR', 'logEvents': 'STRUCT(id VARCHAR, \"timestamp\" BIGINT,"
        " message VARCHAR)[]'}"
    )
    con.execute(
        "CREATE VIEW lambda_archive.cwl_firehose AS SELECT messagetype, owner, loggroup,"
        " logstream, logevents,"
        " regexp_extract(filename, '([0-9]{4}/[0-9]{2}/[0-9]{2}/[0-9]{2})/[^/]*$', 1) AS dt"
        f" FROM read_json('{root}/**/*.gz', format = 'newline_delimited', filename = true,"
        f" columns = {columns})"
    )
    return con


def athena_facts(root: Path, start: int, end: int) -> dict[tuple[Any, ...], dict[str, Any]]:
    con = duckdb_archive(root)
    rows = con.execute(to_duckdb(build_query(TABLE, start, end))).fetchall()
    assert [d[0] for d in con.description] == [*KEY_COLUMNS, *FACT_COLUMNS]
    # as GetQueryResults hands them over: every cell as text
    text_rows = [[None if v is None else str(v) for v in row] for row in rows]
    facts, skipped = transform_rows(text_rows)
    assert skipped == 0
    return facts


def ingested_facts(db: Database) -> dict[tuple[Any, ...], dict[str, Any]]:
    columns = ", ".join(f"hf.{c}" for c in FACT_COLUMNS)
    out = {}
    for row in db.conn.execute(
        f"SELECT f.account_id, f.function_name, hf.hour, hf.memory_mb, {columns}"
        " FROM hourly_facts hf JOIN functions f ON f.id = hf.function_id"
        " WHERE hf.source = 'local'"
    ):
        values = dict(zip(FACT_COLUMNS, row[4:], strict=True))
        for column in HISTOGRAMS:
            values[column] = histcodec.decode(values[column])
        out[tuple(row[:4])] = values
    return out


def assert_same(athena: dict[Any, dict[str, Any]], local: dict[Any, dict[str, Any]]) -> None:
    assert sorted(athena) == sorted(local)
    for key, values in local.items():
        for column in FACT_COLUMNS:
            mine, theirs = athena[key][column], values[column]
            if column in _FLOATS and mine is not None and theirs is not None:
                assert math.isclose(mine, theirs, rel_tol=1e-9, abs_tol=1e-9), (key, column)
            else:
                assert mine == theirs, (key, column, mine, theirs)


@pytest.fixture
def archive_dir(tmp_path: Path) -> tuple[Path, firehose_archive.Archive]:
    archive = firehose_archive.build()
    root = tmp_path / "archive"
    archive.write(root)
    return root, archive


def ingest_by_account(db: Database, root: Path, archive: firehose_archive.Archive) -> None:
    # Local ingest takes the account from --account: one run per account's objects.
    for account in ACCOUNTS:
        paths = [str(root / k) for k, a in sorted(archive.account_of.items()) if a == account]
        result = ingest_paths(db, paths, account_id=account)
        assert result.unreadable == []


def test_athena_query_on_duckdb_matches_local_ingest(
    archive_dir: tuple[Path, firehose_archive.Archive], tmp_path: Path
) -> None:
    root, archive = archive_dir
    db = open_db(tmp_path / "local.db")
    ingest_by_account(db, root, archive)
    local = ingested_facts(db)

    athena = athena_facts(root, BASE, BASE + HOURS * 3600)

    assert_same(athena, local)
    # what the archive holds shows up: both formats, both accounts, every kind of fact
    assert {k[0] for k in athena} == set(ACCOUNTS)
    assert (ACCOUNTS[0], SHARED_FUNCTION) in {k[:2] for k in athena}
    totals = {
        c: sum(v[c] for v in athena.values())
        for c in ("invocations", "errors", "timeouts", "out_of_memory", "cold_starts")
    }
    assert all(n > 0 for n in totals.values()), totals
    assert sum(v["restore_duration_ms_sum"] for v in athena.values()) > 0
    assert {len({k[3] for k in athena if k[:3] == key[:3]}) for key in athena} >= {1, 2}


def test_athena_query_window_keeps_whole_hours(
    archive_dir: tuple[Path, firehose_archive.Archive], tmp_path: Path
) -> None:
    """A window of one hour gives exactly that hour's facts of the full run, including the
    report filed under the next hour's prefix and the JSON report timed in the next hour."""
    root, archive = archive_dir
    db = open_db(tmp_path / "local.db")
    ingest_by_account(db, root, archive)
    local = ingested_facts(db)
    for hour in range(HOURS):
        start = BASE + hour * 3600
        athena = athena_facts(root, start, start + 3600)
        assert_same(athena, {k: v for k, v in local.items() if k[2] == start})


def test_athena_query_prunes_partitions() -> None:
    query = build_query(TABLE, BASE, BASE + 2 * 3600)
    assert "dt >= '2026/11/20/09' AND dt <= '2026/11/20/12'" in query
    assert window_partitions(BASE, BASE + 2 * 3600) == [
        "2026/11/20/09",
        "2026/11/20/10",
        "2026/11/20/11",
        "2026/11/20/12",
    ]
    # the partition predicate is on the table scan, where Athena prunes projections
    tree = sqlglot.parse_one(query, read="trino")
    scans = [w for w in tree.find_all(exp.Where) if w.find(exp.Column, bfs=True)]
    assert any("dt" in {c.name for c in w.find_all(exp.Column)} for w in scans)


def test_athena_table_ddl_parses_as_athena_sql() -> None:
    ddl = athena_table_ddl("s3://org-logs/firehose/lambda/", TABLE)
    tree = sqlglot.parse_one(ddl, read="athena")
    assert isinstance(tree, exp.Create)
    assert "'storage.location.template' = 's3://org-logs/firehose/lambda/${dt}/'" in ddl
    assert "'projection.dt.format' = 'yyyy/MM/dd/HH'" in ddl
    assert "org.openx.data.jsonserde.JsonSerDe" in ddl
    # and the query, as Trino
    assert isinstance(
        sqlglot.parse_one(build_query(TABLE, BASE, BASE + 3600), read="trino"), exp.Select
    )


def test_athena_table_command_prints_the_statement(tmp_path: Path) -> None:
    from click.testing import CliRunner

    from lambdascope.cli import cli

    runner = CliRunner()
    result = runner.invoke(
        cli, ["athena-table", "--location", "s3://org-logs/fh", "--since", "2025/06/01/00"]
    )
    assert result.exit_code == 0, result.output
    assert result.output == athena_table_ddl("s3://org-logs/fh/", TABLE, "2025/06/01/00") + "\n"
    assert "'projection.dt.range' = '2025/06/01/00,NOW'" in result.output
    bad = runner.invoke(cli, ["athena-table", "--location", "org-logs/fh"])
    assert bad.exit_code == 2
    assert bad.output.strip().splitlines()[-1] == (
        "Error: --location must be an s3://bucket/prefix/ location, not 'org-logs/fh'"
    )


def test_athena_shared_log_group_function_comes_from_the_stream() -> None:
    from lambdascope.logparse import function_from_log_group

    assert function_from_log_group("/aws/lambda/orders") == "orders"
    stream = "2026/11/20/shared-worker[$LATEST]0123456789abcdef"
    assert function_from_log_group("/org/shared-app", stream) == "shared-worker"
    assert function_from_log_group("/org/shared-app", "2026/11/20/w[7]abc") == "w"
    assert function_from_log_group("/org/other", "i-0123456789") is None
    assert function_from_log_group("/org/other") is None
