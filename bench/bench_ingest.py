"""End-to-end `lambdascope ingest` time vs `grep -c REPORT` on the same files, same run.

Usage: python bench/bench_ingest.py --megabytes 200 [--keep DIR]
Prints lines/s, the ratio to grep, and the ingest child's peak RSS.
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from gen_logs import generate


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return "unknown"


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--megabytes", type=float, default=200)
    parser.add_argument("--keep", type=Path, default=None, help="Reuse/keep logs here.")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="lambdascope-bench-"))
    logs = args.keep or work / "logs"
    if not logs.exists():
        generate(logs, args.megabytes)
    files = sorted(str(p) for p in logs.rglob("*") if p.is_file())
    on_disk = sum(os.path.getsize(f) for f in files)

    cpu0 = _children_cpu()
    started = time.perf_counter()
    plain = subprocess.run(["grep", "-c", "REPORT", *files], capture_output=True, check=False)
    plain_s = time.perf_counter() - started
    plain_cpu = _children_cpu() - cpu0
    assert plain.stdout
    started = time.perf_counter()
    # zgrep also counts inside the gzip'd files, as ingest reads them
    grep = subprocess.run(
        ["zgrep", "-c", "REPORT", *files], capture_output=True, text=True, check=False
    )
    grep_s = time.perf_counter() - started
    grep_count = sum(int(line.rsplit(":", 1)[1]) for line in grep.stdout.splitlines())

    db = work / "bench.db"
    started = time.perf_counter()
    before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    cpu0 = _children_cpu()
    done = subprocess.run(
        [sys.executable, "-m", "lambdascope.cli", "--db", str(db), "ingest", str(logs)],
        capture_output=True,
        text=True,
        check=False,
    )
    ingest_s = time.perf_counter() - started
    ingest_cpu = _children_cpu() - cpu0
    peak_kb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    print(done.stdout.strip())
    if done.returncode:
        print(done.stderr.strip())
    lines = int(done.stdout.split(" files, ", 1)[1].split(" lines", 1)[0].replace(",", ""))
    print(f"nproc {os.cpu_count()}  cpu {_cpu_model()}")
    print(f"input {len(files)} files, {on_disk / 1e6:.0f} MB on disk, {lines:,} lines")
    print(f"grep -c REPORT: {plain_s:.2f} s wall, {plain_cpu:.2f} s CPU")
    print(f"zgrep -c REPORT: {grep_count:,} in {grep_s:.2f} s")
    print(f"ingest: {ingest_s:.2f} s wall, {ingest_cpu:.2f} s CPU, {lines / ingest_s:,.0f} lines/s")
    print(f"ratio ingest / grep, CPU time: {ingest_cpu / max(plain_cpu, 1e-3):.1f}x")
    print(f"ratio ingest / grep: {ingest_s / plain_s:.1f}x")
    print(f"ratio ingest / zgrep: {ingest_s / grep_s:.1f}x")
    print(f"peak RSS of ingest: {max(peak_kb, before) / 1024:.0f} MB")
    shutil.rmtree(work, ignore_errors=True)  # the store, and the logs unless --keep


if __name__ == "__main__":
    main()
