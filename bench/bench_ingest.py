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


def _rss_kb(pid: int) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def _tree(pid: int) -> list[int]:
    found = [pid]
    try:
        children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    except OSError:
        return found
    for child in children:
        found.extend(_tree(int(child)))
    return found


def _watch_tree_rss(child: subprocess.Popen[str]) -> int:
    """Peak of the summed RSS of the child and its descendants, sampled every 20 ms (kB).
    Output is small (one line), so the pipes cannot fill while we poll."""
    peak = 0
    while child.poll() is None:
        peak = max(peak, sum(_rss_kb(pid) for pid in _tree(child.pid)))
        time.sleep(0.02)
    return peak


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
    print(f"load average before: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    on_disk = sum(os.path.getsize(f) for f in files)

    # grep three times, the fastest counts (the strictest baseline)
    plain_s = plain_cpu = float("inf")
    for _ in range(3):
        cpu0 = _children_cpu()
        started = time.perf_counter()
        plain = subprocess.run(["grep", "-c", "REPORT", *files], capture_output=True, check=False)
        plain_s = min(plain_s, time.perf_counter() - started)
        plain_cpu = min(plain_cpu, _children_cpu() - cpu0)
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
    with subprocess.Popen(
        [sys.executable, "-m", "lambdascope.cli", "--db", str(db), "ingest", str(logs)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    ) as child:
        tree_peak = _watch_tree_rss(child)
        stdout, stderr = child.communicate()
    done = subprocess.CompletedProcess(child.args, child.returncode, stdout, stderr)
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
    print(f"peak RSS of ingest (largest process): {max(peak_kb, before) / 1024:.0f} MB")
    print(f"peak RSS of ingest (all its processes together, sampled): {tree_peak / 1024:.0f} MB")
    print(f"load average after: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    shutil.rmtree(work, ignore_errors=True)  # the store, and the logs unless --keep


if __name__ == "__main__":
    main()
