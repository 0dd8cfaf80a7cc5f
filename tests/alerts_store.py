"""Synthetic stores with known answers for the alert tests: hourly facts and metrics
written directly, with seeded random durations."""

from __future__ import annotations

import json
import random
from collections.abc import Sequence

from sqlite_utils import Database

from lambdascope import histcodec, histogram
from lambdascope.db import function_id

HOUR = 3600


def add_function(
    db: Database,
    name: str,
    *,
    memory_mb: int = 512,
    last_modified: int | None = None,
    tags: dict[str, str] | None = None,
    timeout_s: int = 30,
) -> int:
    with db.conn:
        fid = function_id(db, name, "123456789012", "us-east-1")
        db.conn.execute(
            "UPDATE functions SET memory_mb = ?, last_modified = ?, tags_json = ?,"
            " timeout_s = ?, runtime = 'python3.12', architecture = 'x86_64' WHERE id = ?",
            (memory_mb, last_modified, json.dumps(tags or {}), timeout_s, fid),
        )
    return fid


def add_hour(
    db: Database,
    fid: int,
    hour: int,
    *,
    durations: Sequence[float] = (),
    memory_used: Sequence[float] = (),
    memory_mb: int = 512,
    invocations: int | None = None,
    errors: int = 0,
    timeouts: int = 0,
    out_of_memory: int = 0,
) -> None:
    """One 'local' hourly fact row."""
    n = len(durations) if invocations is None else invocations
    used = list(memory_used) or [100.0] * len(durations)
    with db.conn:
        db.conn.execute(
            "INSERT INTO hourly_facts (function_id, hour, memory_mb, source, invocations, errors,"
            " timeouts, out_of_memory, duration_ms_sum, duration_ms_max, billed_duration_ms_sum,"
            " max_memory_used_mb_max, duration_hist, billed_duration_hist, max_memory_used_hist)"
            " VALUES (?, ?, ?, 'local', ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                fid,
                hour,
                memory_mb,
                n,
                errors,
                timeouts,
                out_of_memory,
                float(sum(durations)),
                max(durations) if durations else None,
                float(sum(int(d) + 1 for d in durations)),
                int(max(used)) if used else None,
                histcodec.encode(histogram.from_values(durations)),
                histcodec.encode(histogram.from_values([int(d) + 1 for d in durations])),
                histcodec.encode(histogram.from_values(used)),
            ),
        )


def add_metrics(db: Database, fid: int, hour: int, *, invocations: float, throttles: float) -> None:
    with db.conn:
        db.conn.execute(
            "INSERT INTO hourly_metrics (function_id, hour, invocations, errors, throttles)"
            " VALUES (?, ?, ?, 0, ?)",
            (fid, hour, invocations, throttles),
        )


def lognormal(rng: random.Random, n: int, median_ms: float, sigma: float = 0.3) -> list[float]:
    import math

    return [math.exp(rng.gauss(math.log(median_ms), sigma)) for _ in range(n)]
