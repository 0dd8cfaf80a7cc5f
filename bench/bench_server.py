"""The dashboard over real HTTP: waitress (``--threads`` 1, 4, 8) against Flask's
development server (werkzeug, threaded) as the baseline, in the same run.

Each server runs in this process on 127.0.0.1 (any free port) over one generated store.
``--clients`` threads each send ``--requests`` requests on a keep-alive connection,
cycling through what a browser asks when it opens a page: GET / (the index), GET
/_dash-layout, and the pages router callback for the overview and the functions grid
(served from the layout cache after the first render, so the figures compare the servers,
not the queries). Then the same load runs while ``--idle`` extra connections are open
and send nothing (clients on a slow network, or a port scanner). Servers are measured in
alternating rounds so a change in the machine's load hits all of them alike.

    python bench/bench_server.py --functions 300 --days 14 --clients 8 --requests 40
"""

from __future__ import annotations

import argparse
import http.client
import json
import logging
import os
import socket
import statistics
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from werkzeug.serving import make_server

sys.path.insert(0, str(Path(__file__).parent))
from bench_dashboard import _cpu_model, _router_payload

from dashboards.app import create_app
from dashboards.server import bind, listening_on
from lambdascope.db import open_db
from lambdascope.synthetic import DEFAULT_END, generate_store


def _requests() -> list[tuple[str, str, bytes | None]]:
    def router(path: str) -> bytes:
        return json.dumps(_router_payload(path, "?range=7d")).encode()

    return [
        ("GET", "/", None),
        ("GET", "/_dash-layout", None),
        ("POST", "/_dash-update-component", router("/")),
        ("POST", "/_dash-update-component", router("/functions")),
    ]


def _client(port: int, count: int, latencies: list[float], errors: list[str]) -> None:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
    plan = _requests()
    for index in range(count):
        method, path, body = plan[index % len(plan)]
        headers = {"Content-Type": "application/json"} if body else {}
        started = time.perf_counter()
        try:
            conn.request(method, path, body=body, headers=headers)
            answer = conn.getresponse()
            answer.read()
        except (OSError, http.client.HTTPException) as exc:
            errors.append(repr(exc))
            conn.close()
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
            continue
        latencies.append((time.perf_counter() - started) * 1000)
        if answer.status != 200:
            errors.append(f"{path}: {answer.status}")
    conn.close()


def _load(port: int, clients: int, requests: int, idle: int) -> dict[str, float]:
    idlers = []
    for _ in range(idle):  # connections that never send a request
        sock = socket.create_connection(("127.0.0.1", port))
        idlers.append(sock)
    latencies: list[float] = []
    errors: list[str] = []
    threads = [
        threading.Thread(target=_client, args=(port, requests, latencies, errors))
        for _ in range(clients)
    ]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - started
    for sock in idlers:
        sock.close()
    ordered = sorted(latencies)
    return {
        "requests_per_s": len(latencies) / elapsed,
        "p50_ms": statistics.median(ordered) if ordered else float("nan"),
        "p95_ms": ordered[int(0.95 * (len(ordered) - 1))] if ordered else float("nan"),
        "errors": float(len(errors)),
    }


def _werkzeug(app: Any) -> tuple[int, Callable[[], None]]:
    server = make_server("127.0.0.1", 0, app.server, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    return server.server_port, server.shutdown


def _waitress(app: Any, threads: int) -> tuple[int, Callable[[], None]]:
    server: Any = bind(app.server, "127.0.0.1", 0, threads)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()

    def stop() -> None:
        # waitress has no stop that is safe from another thread (closing its sockets under
        # its select loop raises there); an idle server only wakes once a second
        pass

    return listening_on(server)[0][1], stop


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--functions", type=int, default=300)
    parser.add_argument("--days", type=int, default=14)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--requests", type=int, default=40, help="per client")
    parser.add_argument("--idle", type=int, default=50, help="idle connections, 2nd load")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--db", type=Path, default=None)
    args = parser.parse_args()
    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # no line per request
    logging.getLogger("waitress.queue").setLevel(logging.ERROR)  # as the commands do

    db_path = args.db or Path(f"/tmp/lambdascope-bench-{args.functions}x{args.days}.db")
    if not db_path.exists():
        generate_store(open_db(db_path), functions=args.functions, days=args.days, seed=7)
    app = create_app(db_path, clock=lambda: DEFAULT_END - 1)
    servers: dict[str, Callable[[], tuple[int, Callable[[], None]]]] = {
        "werkzeug dev server (threaded, baseline)": lambda: _werkzeug(app),
        "waitress --threads 1": lambda: _waitress(app, 1),
        "waitress --threads 4": lambda: _waitress(app, 4),
        "waitress --threads 8": lambda: _waitress(app, 8),
    }
    results: dict[str, dict[str, list[dict[str, float]]]] = {
        name: {"plain": [], "idle": []} for name in servers
    }
    for _ in range(args.rounds):
        for name, start in servers.items():
            port, stop = start()
            _load(port, 1, 8, 0)  # warm the layout cache and the connection pool
            results[name]["plain"].append(_load(port, args.clients, args.requests, 0))
            results[name]["idle"].append(_load(port, args.clients, args.requests, args.idle))
            stop()
    print(
        f"# {_cpu_model()}, {os.cpu_count()} cores, load {os.getloadavg()[0]:.1f};"
        f" store {args.functions} functions x {args.days} days;"
        f" {args.clients} clients x {args.requests} requests, {args.rounds} rounds"
    )
    print(
        "| server | req/s | p50 ms | p95 ms | with idle conns: req/s | p50 ms | p95 ms | errors |"
    )
    for name, by_load in results.items():
        cells = []
        for load in ("plain", "idle"):
            runs = by_load[load]
            cells += [
                f"{statistics.median(r['requests_per_s'] for r in runs):.1f}",
                f"{statistics.median(r['p50_ms'] for r in runs):.1f}",
                f"{statistics.median(r['p95_ms'] for r in runs):.1f}",
            ]
        errors = sum(r["errors"] for load in by_load.values() for r in load)
        print(f"| {name} | {' | '.join(cells)} | {errors:.0f} |")


if __name__ == "__main__":
    main()
