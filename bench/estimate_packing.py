"""What the hourly tier would weigh packed: each function-day's hourly_facts and
hourly_metrics rows stored column by column and zlib-compressed in one blob, against the
same rows as SQLite stores them today. An estimate for the ≤ 4 KB per function-day
target (issue 18), made before lambdascope.packing existed (its own format, in memory).

    python bench/estimate_packing.py --db /tmp/fleet-2000x90.db --sample 500
"""

from __future__ import annotations

import argparse
import json
import random
import sqlite3
import struct
import zlib
from pathlib import Path

DAY = 86400
TABLES = ("hourly_facts", "hourly_metrics")


def _column_bytes(values: list[object]) -> bytes:
    """One column of a function-day as bytes: NULL/int/float/text/blob each tagged, ints
    as deltas from the previous row (hours, counts), floats as 8 bytes."""
    out = bytearray()
    prev = 0
    for v in values:
        if v is None:
            out += b"n"
        elif isinstance(v, int):
            out += b"i" + struct.pack("<q", v - prev)
            prev = v
        elif isinstance(v, float):
            out += b"f" + struct.pack("<d", v)
        elif isinstance(v, bytes):
            out += b"b" + struct.pack("<H", len(v)) + v
        else:
            raw = str(v).encode()
            out += b"t" + struct.pack("<H", len(raw)) + raw
    return bytes(out)


def pack(rows: list[tuple[object, ...]]) -> bytes:
    columns = list(zip(*rows, strict=True)) if rows else []
    return zlib.compress(b"".join(_column_bytes(list(c)) for c in columns), 6)


def day_rows(
    conn: sqlite3.Connection, table: str, function_id: int, day: int
) -> list[tuple[object, ...]]:
    """The rows of one hourly ``table`` for one function-day, in hour order."""
    return conn.execute(
        f"SELECT * FROM {table} WHERE function_id = ? AND hour >= ? AND hour < ? ORDER BY hour",
        (function_id, day, day + DAY),
    ).fetchall()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db", type=Path, required=True)
    parser.add_argument("--sample", type=int, default=500, help="function-days packed")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()

    conn = sqlite3.connect(f"{args.db.resolve().as_uri()}?mode=ro", uri=True)
    days = conn.execute(
        "SELECT DISTINCT function_id, hour - hour % 86400 FROM hourly_facts"
        " WHERE function_id IN (SELECT id FROM functions ORDER BY id LIMIT 200)"
    ).fetchall()
    picked = random.Random(args.seed).sample(days, min(args.sample, len(days)))
    packed = 0
    rows_seen = 0
    for fid, day in picked:
        for table in TABLES:
            rows = day_rows(conn, table, fid, day)
            rows_seen += len(rows) if table == "hourly_facts" else 0
            packed += len(pack(rows))
    n = len(picked)
    print(json.dumps({
        "function_days": n,
        "hourly_facts_rows_per_function_day": round(rows_seen / n, 1),
        "packed_facts_and_metrics_bytes_per_function_day": round(packed / n),
    }))  # fmt: skip
    conn.close()


if __name__ == "__main__":
    main()
