"""The synthetic fleet: deterministic, consistent, and showing every behaviour."""

from __future__ import annotations

import hashlib
from pathlib import Path

from sqlite_utils import Database

from lambdascope import histcodec, histogram, queries
from lambdascope.db import open_db
from lambdascope.synthetic import DEFAULT_END, generate_store

DAY = 86400


def digest(db: Database) -> str:
    h = hashlib.sha256()
    for table in (
        "functions",
        "function_versions",
        "function_aliases",
        "hourly_facts",
        "hourly_metrics",
        "collection_runs",
    ):
        for row in db.conn.execute(f"SELECT * FROM {table} ORDER BY 1, 2, 3"):
            h.update(repr(row).encode())
    return h.hexdigest()


def test_same_seed_same_store_other_seed_differs(tmp_path: Path) -> None:
    stores = []
    for name, seed in (("a", 3), ("b", 3), ("c", 4)):
        db = open_db(tmp_path / f"{name}.db")
        generate_store(db, functions=40, days=3, seed=seed)
        stores.append(digest(db))
    assert stores[0] == stores[1]
    assert stores[0] != stores[2]


def test_fleet_is_consistent_and_diverse(db: Database) -> None:
    result = generate_store(db, functions=120, days=7, seed=11)
    end = DEFAULT_END
    start = end - 7 * DAY
    assert (result["start"], result["end"]) == (start, end)
    assert result["functions"] == 120
    conn = db.conn
    assert conn.execute("SELECT count(*) FROM functions").fetchone()[0] == 120
    assert conn.execute("SELECT count(*) FROM hourly_facts").fetchone()[0] == result["hourly_facts"]
    # Histogram totals equal the invocation counts, CloudWatch agrees with the logs.
    bad = 0
    for inv, dur, mem in conn.execute(
        "SELECT invocations, duration_hist, max_memory_used_hist FROM hourly_facts"
    ):
        dcount = histogram.count(histcodec.decode(dur))
        mcount = histogram.count(histcodec.decode(mem))
        bad += dcount != inv or mcount != inv
    assert bad == 0
    mismatch = conn.execute(
        "SELECT count(*) FROM hourly_metrics m JOIN hourly_facts f USING (function_id, hour)"
        " WHERE m.invocations != f.invocations"
    ).fetchone()[0]
    assert mismatch == 0
    # Memory used never exceeds the configured memory; out-of-memory rows hit the limit.
    assert (
        conn.execute(
            "SELECT count(*) FROM hourly_facts WHERE max_memory_used_mb_max > memory_mb"
        ).fetchone()[0]
        == 0
    )
    assert (
        conn.execute(
            "SELECT count(*) FROM hourly_facts WHERE out_of_memory > 0"
            " AND max_memory_used_mb_max != memory_mb"
        ).fetchone()[0]
        == 0
    )

    plans = {p.name: p for p in result["plan"]}
    behaviours = {p.kind for p in plans.values()}
    assert behaviours >= {
        "right_sized",
        "over",
        "under_oom",
        "timeouts",
        "throttled",
        "cold",
        "memory_changed",
        "stale",
    }
    stats = queries.function_stats(db, start, end)
    by_name: dict[str, list[queries.FunctionStats]] = {}
    for s in stats:
        by_name.setdefault(s.function_name, []).append(s)

    def total(kind: str, field: str) -> float:
        return sum(
            getattr(s, field)
            for name, rows in by_name.items()
            if plans[name].kind == kind
            for s in rows
        )

    assert total("under_oom", "out_of_memory") > 0
    assert total("timeouts", "timeouts") > 0
    assert total("throttled", "throttles") > 0
    cold_share = total("cold", "cold_starts") / max(total("cold", "log_invocations"), 1)
    right_sized = total("right_sized", "log_invocations")
    normal_share = total("right_sized", "cold_starts") / max(right_sized, 1)
    assert cold_share > 3 * normal_share
    over = [
        s
        for n, rows in by_name.items()
        if plans[n].kind == "over"
        for s in rows
        if s.max_memory_used_mb
    ]
    assert over and all(s.max_memory_used_mb < 0.5 * (s.memory_mb or 0) for s in over)
    changed = [
        n for n, p in plans.items() if p.kind == "memory_changed" if plans[n].rate_per_hour > 1
    ]
    assert changed
    assert all(len({s.memory_mb for s in by_name[n]}) == 2 for n in changed)
    stale = [n for n, p in plans.items() if p.kind == "stale"]
    recent = queries.function_stats(
        db, end - 2 * DAY, end, queries.Filters(function_names=tuple(stale))
    )
    assert recent and all(s.invocations == 0 for s in recent)
    # Deprecated runtimes, both architectures, versions, aliases and runs are there.
    options = queries.filter_options(db)
    assert {"python3.7", "go1.x"} & set(options.runtimes)
    assert set(options.architectures) == {"arm64", "x86_64"}
    assert "team" in options.tag_keys
    assert conn.execute("SELECT count(*) FROM function_aliases").fetchone()[0] > 0
    runs = queries.collection_runs(db)
    assert {r["status"] for r in runs} == {"ok", "partial"}
