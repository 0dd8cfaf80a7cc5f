"""Packed hours (lambdascope.packing): the format round-trips, every read answers the same
before and after packing, writers unpack what they touch, and the prune job packs."""

from __future__ import annotations

import dataclasses
import math
import shutil
import sqlite3
import zlib
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from hypothesis import given
from hypothesis import strategies as st

from lambdascope import packing, queries, rollup
from lambdascope.cli import cli
from lambdascope.db import open_db
from lambdascope.storeadmin import check
from lambdascope.tiers import Spans, pack_hours
from tests.histstores import END, build_store
from tests.test_compaction import answers

DAY = 86_400

values = st.one_of(
    st.none(),
    st.integers(min_value=-(2**63), max_value=2**63 - 1),
    st.floats(allow_nan=False),
    st.binary(max_size=40),
    st.text(max_size=12),
)


@given(
    st.lists(
        st.tuples(
            st.integers(0, 2**40), st.floats(allow_nan=False) | st.none(), st.binary(max_size=30)
        ),
        max_size=30,
    ),
    st.lists(st.tuples(values, values), max_size=10),
)
def test_the_format_round_trips_every_column_kind(
    typed: list[tuple[Any, ...]], mixed: list[tuple[Any, ...]]
) -> None:
    tables = {"typed": (["hour", "sum", "hist"], typed), "mixed": (["a", "b"], mixed)}
    assert packing.decode(packing.encode(tables)) == tables


def test_format_1_blobs_without_the_preset_dictionary_still_read() -> None:
    tables = {"hourly_metrics": (["function_id", "hour", "throttles"], [(1, 3600, 2.5)])}
    blob = packing.encode(tables)
    unpacker = zlib.decompressobj(zdict=packing._ZDICT_2)
    body = unpacker.decompress(blob[1:]) + unpacker.flush()
    assert packing.decode(bytes([1]) + zlib.compress(body)) == tables


def test_a_blob_of_another_format_is_refused_in_one_line() -> None:
    blob = bytes([9]) + packing.encode({"t": (["a"], [(1,)])})[1:]
    with pytest.raises(packing.PackedFormatError, match="format 9"):
        packing.decode(blob)


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("packing") / "store.db"
    build_store(path)
    return path


def _close(a: Any, b: Any, where: str = "") -> None:
    """Equal, floats to 1e-9 relative (sums taken in another order)."""
    if dataclasses.is_dataclass(a) and dataclasses.is_dataclass(b):
        _close(dataclasses.asdict(a), dataclasses.asdict(b), where)  # type: ignore[arg-type]
    elif isinstance(a, float) and isinstance(b, float | int):
        assert math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-9), (where, a, b)
    elif isinstance(a, dict) and isinstance(b, dict):
        assert a.keys() == b.keys(), (where, set(a) ^ set(b))
        for k in a:
            _close(a[k], b[k], f"{where}/{k}")
    elif isinstance(a, list | tuple) and isinstance(b, list | tuple):
        assert len(a) == len(b), (where, len(a), len(b))
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            _close(x, y, f"{where}[{i}]")
    else:
        assert a == b, (where, a, b)


def _copy(built: Path, tmp_path: Path) -> Path:
    """A copy of the built store to change."""
    path = tmp_path / "packed.db"
    shutil.copy(built, path)
    return path


def _pack_all(path: Path, before: int) -> packing.PackResult:
    db = open_db(path)
    try:
        return packing.pack(db.conn, 0, before, batch_days=3)
    finally:
        db.conn.close()


def test_every_read_answers_the_same_with_the_older_days_packed(
    built: Path, tmp_path: Path
) -> None:
    path = _copy(built, tmp_path)
    reference = answers(path)
    # every complete day before END's: the answers' windows all reach into packed days
    result = _pack_all(path, END - END % DAY)
    assert result.function_days > 20 and not result.interrupted
    conn = sqlite3.connect(path)
    left = conn.execute(
        "SELECT count(*) FROM hourly_facts WHERE hour < ?", (END - END % DAY,)
    ).fetchone()[0]
    assert left == 0
    conn.close()
    _close(answers(path), reference)
    db = open_db(path, readonly=True)
    assert check(db).problems == []
    db.conn.close()


def test_health_and_freshness_are_the_same_with_the_older_days_packed(
    built: Path, tmp_path: Path
) -> None:
    path = _copy(built, tmp_path)

    def reads() -> dict[str, Any]:
        db = open_db(path, readonly=True)
        out: dict[str, Any] = {}
        for start, end in ((END - 3 * DAY, END), (END - 2 * DAY - 5 * 3600, END - 7 * 3600)):
            out[f"health {start}"] = queries.function_health(db, start, end)
            for bucket in (3600, 5 * 3600, DAY):
                out[f"health series {start} {bucket}"] = queries.health_timeseries(
                    db, start, end, bucket_s=bucket
                )
                out[f"fleet {start} {bucket}"] = queries.fleet_timeseries(
                    db, start, end, bucket_s=bucket
                )
        fresh = queries.data_freshness(db)
        out["freshness"] = {k: v for k, v in fresh.items() if k.endswith("_hour")}
        out["latest"] = queries.latest_data_hour(db)
        out["activity"] = queries.activity(db)
        db.conn.close()
        return out

    reference = reads()
    assert reference["health series " + str(END - 3 * DAY) + " 3600"], "no metrics to compare"
    _pack_all(path, END - END % DAY + DAY)  # today's hours too: every row packed
    _close(reads(), reference)


def test_a_writer_unpacks_the_days_it_touches_and_rows_beside_a_packed_day_are_refused(
    built: Path, tmp_path: Path
) -> None:
    path = tmp_path / "a dir ?#1" / "packed store.db"  # read through a URI: quoted
    path.parent.mkdir()
    shutil.copy(built, path)
    _pack_all(path, END - END % DAY)
    db = open_db(path)
    conn = db.conn
    fid, day, hour = conn.execute(
        "SELECT function_id, day, first_hour FROM packed_hours ORDER BY day LIMIT 1"
    ).fetchone()
    with pytest.raises(sqlite3.IntegrityError, match="packed function-day"), conn:
        conn.execute(
            "INSERT INTO hourly_metrics (function_id, hour, invocations) VALUES (?, ?, 1)",
            (fid, hour),
        )
    before = queries.function_timeseries(db, fid, day, day + DAY)
    with conn:
        assert packing.unpack_hours(conn, [(fid, hour)]) == 1
    assert (
        conn.execute(
            "SELECT count(*) FROM packed_hours WHERE function_id = ? AND day = ?", (fid, day)
        ).fetchone()[0]
        == 0
    )
    _close(queries.function_timeseries(db, fid, day, day + DAY), before)
    conn.close()


def test_the_prune_job_packs_days_older_than_the_span_and_rerunning_changes_nothing(
    built: Path, tmp_path: Path
) -> None:
    path = _copy(built, tmp_path)
    db = open_db(path)
    now = datetime.fromtimestamp(END, UTC)
    spans = Spans(keep_raw=timedelta(days=2), pack_after=timedelta(days=2))
    first = pack_hours(db, spans, now=now)
    days = {d for (d,) in db.conn.execute("SELECT DISTINCT day FROM packed_hours")}
    assert first.function_days > 0
    assert max(days) < END - END % DAY - 2 * DAY + 1
    again = pack_hours(db, spans, now=now)
    assert again.function_days == 0
    never = pack_hours(db, Spans(keep_raw=timedelta(days=2), pack_after=None), now=now)
    assert never.function_days == 0
    db.conn.close()


def test_store_prune_packs_counts_in_a_dry_run_and_refuses_a_pack_span_under_two_days(
    built: Path, tmp_path: Path
) -> None:
    path = _copy(built, tmp_path)
    runner = CliRunner()
    base = ["--db", str(path), "store", "prune", "--keep-raw", "3000d", "--keep-hourly", "3000d"]
    refused = runner.invoke(cli, [*base, "--pack-after", "1d"])
    assert refused.exit_code == 2 and "--pack-after shorter than 2d" in refused.output
    days = _function_days(path)
    dry = runner.invoke(cli, [*base, "--pack-after", "3d", "--dry-run"])
    assert dry.exit_code == 0, dry.output
    assert f"would pack the hours of {days:,} function-days" in dry.output
    assert _function_days(path) == days  # nothing changed
    never = runner.invoke(cli, [*base, "--pack-after", "never"])
    assert never.exit_code == 0 and "packed the hours" not in never.output
    done = runner.invoke(cli, [*base, "--pack-after", "3d"])
    assert done.exit_code == 0, done.output
    assert f"packed the hours of {days:,} function-days" in done.output
    conn = sqlite3.connect(path)
    assert conn.execute("SELECT count(*) FROM packed_hours").fetchone()[0] == days
    assert conn.execute("SELECT count(*) FROM hourly_facts").fetchone()[0] == 0
    conn.close()
    stats = runner.invoke(cli, ["--db", str(path), "store", "stats"])
    assert stats.exit_code == 0 and "packed_hours" in stats.output
    checked = runner.invoke(cli, ["--db", str(path), "store", "check"])
    assert checked.exit_code == 0, checked.output


def _function_days(path: Path) -> int:
    conn = sqlite3.connect(path)
    try:
        return len(packing.candidates(conn, 0, 2**62))
    finally:
        conn.close()


def test_an_interrupted_pack_reads_correctly_and_resumes(built: Path, tmp_path: Path) -> None:
    path = _copy(built, tmp_path)
    reference = answers(path)
    db = open_db(path)
    calls = iter(range(100))
    first = packing.pack(db.conn, 0, END, stop=lambda: next(calls) >= 2, batch_days=4)
    assert first.interrupted and first.function_days == 8
    db.conn.close()
    _close(answers(path), reference)  # half packed, half rows
    db = open_db(path)
    rest = packing.pack(db.conn, 0, END)
    db.conn.close()
    assert not rest.interrupted and rest.function_days > 0
    _close(answers(path), reference)


def test_a_packed_day_rewritten_and_packed_again_is_never_read_stale(
    built: Path, tmp_path: Path
) -> None:
    path = _copy(built, tmp_path)
    _pack_all(path, END - END % DAY)
    db = open_db(path)
    conn = db.conn
    fid, day = conn.execute(
        "SELECT function_id, day FROM packed_hours ORDER BY rows DESC LIMIT 1"
    ).fetchone()
    window = (day + 5 * 3600, day + DAY + 3 * 3600)  # starts inside the packed day
    one = queries.Filters(include_deleted=True, function_ids=(fid,))

    def logged() -> int:
        return sum(s.log_invocations for s in queries.function_stats(db, *window, one))

    before = logged()  # read once: its packed hours are now kept decoded
    with conn:
        packing.unpack_hours(conn, [(fid, day)])
        conn.execute(
            "UPDATE hourly_facts SET invocations = invocations + 5 WHERE function_id = ?"
            " AND hour = (SELECT min(hour) FROM hourly_facts WHERE function_id = ?"
            " AND hour >= ? AND hour < ?) AND source = 'local'",
            (fid, fid, day + 6 * 3600, day + DAY),
        )
    assert logged() == before + 5  # rows now, their rollups computed on the fly
    rollup.refresh(db)
    assert packing.pack(conn, 0, END - END % DAY).function_days == 1
    assert logged() == before + 5  # packed again: the new blob, not the kept decoding
    conn.close()


def test_a_damaged_packed_day_is_named_by_check_and_by_the_read_that_meets_it(
    built: Path, tmp_path: Path
) -> None:
    path = _copy(built, tmp_path)
    _pack_all(path, END - END % DAY)
    conn = sqlite3.connect(path)
    fid, day = conn.execute("SELECT function_id, day FROM packed_hours LIMIT 1").fetchone()
    with conn:
        conn.execute(
            "UPDATE packed_hours SET blob = substr(blob, 1, 40) WHERE function_id = ? AND day = ?",
            (fid, day),
        )
    conn.close()
    db = open_db(path, readonly=True)
    problems = check(db).problems
    assert len(problems) == 1 and "cannot be read" in problems[0], problems
    with pytest.raises(packing.PackedFormatError, match=f"function {fid} on day {day}"):
        queries.function_timeseries(db, fid, day, day + DAY)
    db.conn.close()


def test_collectors_writing_into_packed_days_unpack_them_first(built: Path, tmp_path: Path) -> None:
    from collectors.common import Store
    from collectors.metrics import load_metrics

    path = _copy(built, tmp_path)
    _pack_all(path, END - END % DAY)
    db = open_db(path)
    conn = db.conn
    fid, day, first = conn.execute(
        "SELECT function_id, day, first_hour FROM packed_hours"
        " WHERE last_metrics_hour IS NOT NULL LIMIT 1"
    ).fetchone()
    other = conn.execute(
        "SELECT function_id, day FROM packed_hours WHERE function_id != ? LIMIT 1", (fid,)
    ).fetchone()
    # CloudWatch answers the day again, one hour revised: a revision clears and rewrites
    load_metrics(
        Store(db), {(fid, first): {"throttles": 7.0}}, ({fid: {"throttles"}}, day, day + DAY)
    )
    assert (
        conn.execute(
            "SELECT count(*) FROM packed_hours WHERE function_id = ? AND day = ?", (fid, day)
        ).fetchone()[0]
        == 0
    )
    assert (
        conn.execute(
            "SELECT throttles FROM hourly_metrics WHERE function_id = ? AND hour = ?", (fid, first)
        ).fetchone()[0]
        == 7.0
    )
    # only the day written was unpacked
    assert (
        conn.execute(
            "SELECT count(*) FROM packed_hours WHERE function_id = ? AND day = ?", other
        ).fetchone()[0]
        == 1
    )
    rollup.refresh(db)
    hour = queries.function_timeseries(db, fid, first, first + 3600)
    assert sum(p.throttles for p in hour) == pytest.approx(7.0)
    assert check(db).problems == []
    conn.close()


def test_a_store_packed_before_packed_health_existed_gets_it_from_its_packed_rows(
    built: Path, tmp_path: Path
) -> None:
    path = _copy(built, tmp_path)
    _pack_all(path, END - END % DAY + DAY)
    window = (END - 3 * DAY, END)

    def health() -> Any:
        db = open_db(path, readonly=True)
        found = (
            queries.function_health(db, *window),
            queries.health_timeseries(db, *window),
        )
        db.conn.close()
        return found

    reference = health()
    conn = sqlite3.connect(path)
    expected = conn.execute("SELECT * FROM packed_health ORDER BY 1, 2").fetchall()
    assert expected
    with conn:  # as migration 0019 left it
        conn.execute("DROP TABLE packed_health")
        conn.execute("DELETE FROM _sqlite_migrations WHERE name = '0020_packed_health'")
    conn.close()
    open_db(path).conn.close()  # migrates
    conn = sqlite3.connect(path)
    assert conn.execute("SELECT * FROM packed_health ORDER BY 1, 2").fetchall() == expected
    conn.close()
    _close(health(), reference)


def test_a_reader_of_a_store_packed_before_checksums_reads_it(built: Path, tmp_path: Path) -> None:
    path = _copy(built, tmp_path)
    reference = answers(path)
    _pack_all(path, END - END % DAY)
    conn = sqlite3.connect(path)
    with conn:  # as migration 0021 left it, opened read-only since (not migrated)
        conn.execute("ALTER TABLE packed_hours DROP COLUMN checksum")
        conn.execute("DELETE FROM _sqlite_migrations WHERE name = '0022_packed_checksum'")
    conn.close()
    _close(answers(path), reference)


def test_the_prune_line_counts_packed_days_the_tier_move_deletes(
    built: Path, tmp_path: Path
) -> None:
    path = _copy(built, tmp_path)
    _pack_all(path, END - END % DAY)
    runner = CliRunner()
    # a span ending inside the packed days: the oldest of them leave the hourly tier
    keep = f"{(int(datetime.now(UTC).timestamp()) - (END - 2 * DAY)) // DAY}d"
    base = ["--db", str(path), "store", "prune", "--keep-raw", keep, "--pack-after", "never"]
    conn = sqlite3.connect(path)
    old = conn.execute("SELECT count(*) FROM packed_hours WHERE day < ?", (END - 2 * DAY,))
    expected = old.fetchone()[0]
    conn.close()
    assert expected > 0
    dry = runner.invoke(cli, [*base, "--keep-hourly", keep, "--dry-run"])
    assert dry.exit_code == 0, dry.output
    done = runner.invoke(cli, [*base, "--keep-hourly", keep])
    assert done.exit_code == 0, done.output
    assert f"(and {expected:,} packed function-days)" in done.output
    assert f"(and {expected:,} packed function-days)" in dry.output


def test_check_finds_the_packed_facts_of_raw_invocations_from_the_start_of_their_hour(
    tmp_path: Path,
) -> None:
    path = tmp_path / "sample.db"
    runner = CliRunner()
    sample = Path(__file__).parent / "data" / "logs" / "sample"
    assert runner.invoke(cli, ["--db", str(path), "ingest", str(sample)]).exit_code == 0
    db = open_db(path)
    first = db.conn.execute("SELECT min(timestamp) FROM invocations").fetchone()[0]
    assert first % 3600, "the first invocation should not fall on a whole hour"
    assert packing.pack(db.conn, 0, 2**40).function_days > 0
    assert check(db).problems == []
    db.conn.close()
