"""Retention tiers: the move out of the hourly tier on a synthetic store.

Measures the file before and after (size, bytes per function-day per tier), the move's
wall time, its longest single write transaction (what a writer such as a collection may
wait for), and the latency of a reader (one 7-day function_stats) running in another
connection during the move against the same reader with nothing else running.

    python bench/bench_tiers.py --functions 200 --days 120 --keep-hourly 90d
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from lambdascope import queries, storeadmin
from lambdascope.db import open_db
from lambdascope.scheduler import prune_store
from lambdascope.synthetic import generate_store
from lambdascope.tiers import Spans
from lambdascope.timeutil import parse_duration

DAY = 86_400


def _reader(path: Path, start: int, end: int, stop: threading.Event, out: list[float]) -> None:
    db = open_db(path, readonly=True)
    while not stop.is_set():
        t0 = time.perf_counter()
        queries.function_stats(db, start, end, histograms=False)
        out.append(time.perf_counter() - t0)
    db.conn.close()


def _tiers(path: Path) -> str:
    db = open_db(path, readonly=True)
    found = storeadmin.stats(db, path)
    db.conn.close()
    parts = [f"file {found.file_bytes / 1e6:,.1f} MB"]
    for tier in found.tiers:
        per = tier.bytes_per_function_day
        parts.append(
            f"{tier.name} {tier.bytes / 1e6:,.1f} MB"
            + (f" ({per / 1e3:,.2f} KB/fn-day)" if per else "")
        )
    return ", ".join(parts)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--functions", type=int, default=200)
    parser.add_argument("--days", type=int, default=120)
    parser.add_argument("--keep-hourly", default="90d")
    args = parser.parse_args()
    end = int(datetime.now(UTC).timestamp()) // 3600 * 3600
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "store.db"
        db = open_db(path)
        t0 = time.perf_counter()
        generate_store(db, functions=args.functions, days=args.days, seed=7, end=end)
        db.conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        print(f"generated {args.functions} x {args.days} d in {time.perf_counter() - t0:.0f} s")
        print("before:", _tiers(path))
        window = (end - 7 * DAY, end)
        idle: list[float] = []
        stop = threading.Event()
        thread = threading.Thread(target=_reader, args=(path, *window, stop, idle))
        thread.start()
        time.sleep(5)
        stop.set()
        thread.join()
        busy: list[float] = []
        stop = threading.Event()
        thread = threading.Thread(target=_reader, args=(path, *window, stop, busy))
        batches: list[float] = []
        last = [time.perf_counter()]

        def progress(step: str, done: int, total: int) -> None:
            now = time.perf_counter()
            if step.startswith("deleting"):
                batches.append(now - last[0])
            last[0] = now

        thread.start()
        t0 = time.perf_counter()
        spans = Spans(timedelta(days=14), parse_duration(args.keep_hourly))
        summary = prune_store(db, spans, now=datetime.fromtimestamp(end, UTC), progress=progress)
        moved = time.perf_counter() - t0
        stop.set()
        thread.join()
        db.conn.close()
        print(f"move: {moved:.1f} s; {summary.line('14d')}")
        print(
            f"delete batches: {len(batches)}, median {statistics.median(batches) * 1e3:.0f} ms,"
            f" max {max(batches) * 1e3:.0f} ms"
        )
        for label, xs in (("reader alone", idle), ("reader during move", busy)):
            xs = sorted(xs)
            p95 = xs[int(0.95 * (len(xs) - 1))]
            print(
                f"{label}: {len(xs)} reads, median {statistics.median(xs) * 1e3:.0f} ms,"
                f" p95 {p95 * 1e3:.0f} ms, max {xs[-1] * 1e3:.0f} ms"
            )
        print("after:", _tiers(path))


if __name__ == "__main__":
    main()
