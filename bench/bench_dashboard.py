"""Server-side time of each dashboard page's main callback on a large generated store.

The main callback of a page is the pages router rendering ``layout(**query)``: all reads,
analyses and figure building happen there. Each page is requested through Dash's own
``/_dash-update-component`` endpoint (Flask test client, no browser), 50 times with the
same URL (p50/p95 in ms: after the first, served from the layout cache, which a write to
the store invalidates), then ``--cold`` times with a unique URL each (uncached renders).
Baseline in the same run: a bare ``SELECT COUNT(*) FROM hourly_facts``
over the same window. First load of the overview = GET / plus the first layout render.

    python bench/bench_dashboard.py --functions 2000 --days 90 --requests 50
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import time
from pathlib import Path
from typing import Any

from dashboards.app import create_app
from lambdascope.db import open_db
from lambdascope.synthetic import DEFAULT_END, generate_store

PAGES = {
    "overview": "/",
    "functions": "/functions",
    "function detail": None,  # filled with the busiest function
    "right-sizing": "/right-sizing",
    "stale": "/stale",
    "errors": "/errors",
    "collection": "/collection",
}


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _router_payload(pathname: str, search: str) -> dict[str, Any]:
    """The request Dash's pages router sends when the URL changes."""
    return {
        "output": ".._pages_content.children..._pages_store.data..",
        "outputs": [
            {"id": "_pages_content", "property": "children"},
            {"id": "_pages_store", "property": "data"},
        ],
        "inputs": [
            {"id": "_pages_location", "property": "pathname", "value": pathname},
            {"id": "_pages_location", "property": "search", "value": search},
        ],
        "changedPropIds": ["_pages_location.pathname"],
        "state": [],
    }


def _p(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--functions", type=int, default=2000)
    parser.add_argument("--days", type=int, default=90)
    parser.add_argument("--requests", type=int, default=50)
    parser.add_argument(
        "--cold", type=int, default=5, help="uncached renders per page (a unique URL each)"
    )
    parser.add_argument("--range", default="7d", help="dashboard time range (24h..90d)")
    parser.add_argument("--db", type=Path, default=None, help="reuse a generated store")
    parser.add_argument(
        "--hours-back",
        type=int,
        default=0,
        help="set the dashboard's clock this many hours before the store's end, so windows"
        " start and end inside a day (edge hours read hour by hour)",
    )
    args = parser.parse_args()

    db_path = args.db or Path(f"/tmp/lambdascope-bench-{args.functions}x{args.days}.db")
    if not db_path.exists():
        started = time.perf_counter()
        generate_store(open_db(db_path), functions=args.functions, days=args.days, seed=7)
        print(f"generated {db_path} in {time.perf_counter() - started:.1f} s")
    conn = open_db(db_path, readonly=True).conn
    busiest = conn.execute(
        "SELECT f.function_name, f.account_id, f.region FROM hourly_facts h"
        " JOIN functions f ON f.id = h.function_id GROUP BY h.function_id"
        " ORDER BY SUM(h.invocations) DESC LIMIT 1"
    ).fetchone()
    PAGES["function detail"] = f"/functions/{busiest[0]}"
    detail_search = f"&account={busiest[1]}&region={busiest[2]}"

    now = DEFAULT_END - 1 - args.hours_back * 3600
    app = create_app(db_path, clock=lambda: now)
    client = app.server.test_client()
    search = f"?range={args.range}"

    started = time.perf_counter()
    assert client.get("/").status_code == 200
    assert client.get("/_dash-layout").status_code == 200
    first = client.post("/_dash-update-component", json=_router_payload("/", search))
    first_load_ms = (time.perf_counter() - started) * 1000
    assert first.status_code == 200, first.data[:300]

    window = (
        7 * 86400
        if args.range == "7d"
        else {"24h": 1, "14d": 14, "30d": 30, "90d": 90}[args.range] * 86400
    )
    baseline: list[float] = []
    for _ in range(args.requests):
        t0 = time.perf_counter()
        conn.execute(
            "SELECT COUNT(*) FROM hourly_facts WHERE hour >= ?", (now + 1 - window,)
        ).fetchone()
        baseline.append((time.perf_counter() - t0) * 1000)

    results: dict[str, dict[str, float]] = {}
    for page, path in PAGES.items():
        assert path is not None
        page_search = search + (detail_search if page == "function detail" else "")
        times: list[float] = []
        for _ in range(args.requests):
            t0 = time.perf_counter()
            response = client.post(
                "/_dash-update-component", json=_router_payload(path, page_search)
            )
            times.append((time.perf_counter() - t0) * 1000)
            assert response.status_code == 200, (page, response.data[:300])
        cold: list[float] = []
        for index in range(args.cold):
            t0 = time.perf_counter()
            response = client.post(
                "/_dash-update-component",
                json=_router_payload(path, f"{page_search}&bench={index}"),
            )
            cold.append((time.perf_counter() - t0) * 1000)
            assert response.status_code == 200, (page, response.data[:300])
        results[page] = {
            "p50_ms": statistics.median(times),
            "p95_ms": _p(times, 0.95),
            "cold_p50_ms": statistics.median(cold) if cold else 0.0,
            "cold_max_ms": max(cold) if cold else 0.0,
        }

    print(f"machine: nproc={os.cpu_count()} cpu={_cpu_model()}")
    print(
        f"store: {args.functions} functions x {args.days} days; range {args.range}"
        f" ({args.hours_back} h before the end); "
        f"{args.requests} requests per page"
    )
    print(f"first load of the overview (GET /, layout, first page render): {first_load_ms:.0f} ms")
    print(
        f"baseline COUNT(*) over the window: p50 {statistics.median(baseline):.1f} ms, "
        f"p95 {_p(baseline, 0.95):.1f} ms"
    )
    print(f"{'page':<16} {'p50 ms':>8} {'p95 ms':>8} {'cold p50':>9} {'cold max':>9}")
    for page, f in results.items():
        print(
            f"{page:<16} {f['p50_ms']:>8.1f} {f['p95_ms']:>8.1f} {f['cold_p50_ms']:>9.0f}"
            f" {f['cold_max_ms']:>9.0f}"
        )
    print(json.dumps({"first_load_ms": first_load_ms, "pages": results}))


if __name__ == "__main__":
    main()
