"""How fast packed hours could be read back: the merged rows of (a) one UTC day for the
whole fleet (the start edge of a 30-day window) and (b) one function's days older than
two weeks (the function page's 90-day series), read four ways, alternated in rounds:

- ``rows``: the store's merged rows as every read gets them today (merged_hourly with
  CloudWatch's percentiles joined from hourly_metrics, lambdascope.queries);
- ``python``: the same rows packed one blob per function-day (columns, marshal, zlib; in
  an in-memory SQLite table) and decoded in Python;
- ``sql``: the same blobs expanded into rows inside SQL (a Python function returning
  JSON, then json_each: the only table-valued function the stdlib sqlite3 module has);
- ``temp``: decoded in Python into a TEMP table that SQL then reads (what SQL reads of
  packed days could join; a read-only store connection has ``query_only`` on, which
  refuses TEMP tables too, so it would have to be lifted for the load).

Also prints what the three hourly tables weigh packed per function-day this way. A
measurement made for the design of packing older hours (issue 18), before
lambdascope.packing existed; it packs its own way, in memory, not the store.

    python bench/estimate_packed_reads.py --db /tmp/fleet-2000x90.db --rounds 5
"""

from __future__ import annotations

import argparse
import json
import marshal
import sqlite3
import statistics
import time
import zlib
from collections.abc import Callable
from pathlib import Path

from estimate_packing import DAY, day_rows

from lambdascope import queries
from lambdascope.db import open_db

TABLES = ("hourly_facts", "hourly_metrics", "merged_hourly")
HOWS = ("rows", "python", "sql", "temp")


def pack(rows: list[tuple[object, ...]]) -> bytes:
    """Rows of one function-day, column by column, marshalled and compressed."""
    return zlib.compress(marshal.dumps([list(c) for c in zip(*rows, strict=True)]), 9)


def unpack(blob: bytes) -> list[tuple[object, ...]]:
    return list(zip(*marshal.loads(zlib.decompress(blob)), strict=True))


def _unpack_json(blob: bytes) -> str:
    return json.dumps([list(r) for r in unpack(blob)])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db", type=Path, required=True)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--days-back", type=int, default=30, help="the fleet edge day")
    args = parser.parse_args()

    db = open_db(args.db, readonly=True)
    conn = db.conn
    last = queries.latest_data_hour(db)
    if last is None:
        raise SystemExit(f"{args.db} holds no hourly data")
    edge = last - last % DAY - args.days_back * DAY
    fid = int(
        conn.execute(
            "SELECT function_id FROM merged_hourly WHERE function_id IN"
            " (SELECT id FROM functions ORDER BY id LIMIT 50)"
            " GROUP BY function_id ORDER BY count(*) DESC LIMIT 1"
        ).fetchone()[0]
    )
    old_end = last - last % DAY - 14 * DAY
    shapes = {
        "fleet, one day": (queries.ALL, edge, edge + DAY),
        "one function, days before the last 14": (
            queries.Filters(include_deleted=True, function_ids=(fid,)),
            queries.hourly_from(db),
            old_end,
        ),
    }

    def rows_sql(filters: queries.Filters, start: int, end: int) -> tuple[str, dict[str, object]]:
        return queries._hourly_rows(conn, start, end, filters)

    # pack each shape's function-days: merged rows with CloudWatch's percentiles (what a
    # read needs) and, for the size figure, the three tables as stored
    mem = sqlite3.connect(":memory:")
    mem.create_function("unpack_json", 1, _unpack_json, deterministic=True)
    mem.execute(
        "CREATE TABLE packed (shape TEXT, function_id INTEGER, day INTEGER, rows BLOB,"
        " PRIMARY KEY (shape, function_id, day)) WITHOUT ROWID"
    )
    columns: list[str] = []
    sizes = {"packed": 0, "function_days": 0}
    for shape, (filters, start, end) in shapes.items():
        sql, params = rows_sql(filters, start, end)
        cur = conn.execute(f"SELECT * FROM ({sql}) ORDER BY function_id, hour", params)
        columns = [d[0] for d in cur.description]
        by_day: dict[tuple[int, int], list[tuple[object, ...]]] = {}
        for row in cur:
            by_day.setdefault((int(row[0]), int(row[1]) - int(row[1]) % DAY), []).append(row)
        mem.executemany(
            "INSERT INTO packed VALUES (?, ?, ?, ?)",
            [(shape, f, d, pack(rows)) for (f, d), rows in by_day.items()],
        )
        if shape.startswith("fleet"):
            for f, d in by_day:
                sizes["function_days"] += 1
                for table in TABLES:
                    sizes["packed"] += len(pack(day_rows(conn, table, f, d)))
    selected = ", ".join(f"j.value ->> {i} AS {c}" for i, c in enumerate(columns))

    def reader(how: str, shape: str) -> Callable[[], int]:
        filters, start, end = shapes[shape]

        def today() -> int:
            sql, params = rows_sql(filters, start, end)
            return len(conn.execute(f"SELECT * FROM ({sql})", params).fetchall())

        def python() -> int:
            n = 0
            for (blob,) in mem.execute("SELECT rows FROM packed WHERE shape = ?", (shape,)):
                n += len(unpack(blob))
            return n

        def in_sql() -> int:
            return len(
                mem.execute(
                    f"SELECT {selected} FROM packed p, json_each(unpack_json(p.rows)) j"
                    " WHERE p.shape = ?",
                    (shape,),
                ).fetchall()
            )

        def temp() -> int:
            marks = ", ".join("?" for _ in columns)
            mem.execute("DROP TABLE IF EXISTS temp.unpacked")
            mem.execute(f"CREATE TEMP TABLE unpacked ({', '.join(columns)})")
            for (blob,) in mem.execute("SELECT rows FROM packed WHERE shape = ?", (shape,)):
                mem.executemany(f"INSERT INTO temp.unpacked VALUES ({marks})", unpack(blob))
            return len(mem.execute("SELECT * FROM temp.unpacked").fetchall())

        return {"rows": today, "python": python, "sql": in_sql, "temp": temp}[how]

    times: dict[tuple[str, str], list[float]] = {}
    counts: dict[tuple[str, str], int] = {}
    for _ in range(args.rounds):
        for shape in shapes:
            for how in HOWS:
                t0 = time.perf_counter()
                counts[shape, how] = reader(how, shape)()
                times.setdefault((shape, how), []).append(time.perf_counter() - t0)
    for shape in shapes:
        found = {counts[shape, how] for how in HOWS}
        assert len(found) == 1, f"{shape}: the reads disagree on the row count {found}"
        print(json.dumps({
            "shape": shape,
            "rows": counts[shape, "rows"],
            **{f"{how}_ms_median": round(statistics.median(times[shape, how]) * 1000, 1)
               for how in HOWS},
        }))  # fmt: skip
    print(json.dumps({
        "packed_three_tables_bytes_per_function_day": round(
            sizes["packed"] / max(sizes["function_days"], 1)
        ),
        "function_days": sizes["function_days"],
    }))  # fmt: skip
    conn.close()


if __name__ == "__main__":
    main()
