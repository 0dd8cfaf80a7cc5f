"""`lambdascope ingest s3://…` against a local S3 (moto server in its own process) vs
`lambdascope ingest` of the same files on disk, same run, alternated.

Usage: python bench/bench_s3_ingest.py --megabytes 50 [--rounds 2]
Both read serially in one process (the S3 path has no reading processes), so the
difference is what fetching from S3 costs; the local run with reading processes (the
default for large inputs) is timed as well.
"""

from __future__ import annotations

import argparse
import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import boto3
from gen_logs import generate

from collectors.local import ingest_paths
from collectors.s3 import ingest_s3
from lambdascope.db import open_db


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _start_moto() -> tuple[subprocess.Popen[bytes], str]:
    port = _free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    endpoint = f"http://127.0.0.1:{port}"
    for _ in range(100):
        try:
            urllib.request.urlopen(f"{endpoint}/moto-api/").close()
            return process, endpoint
        except OSError:
            time.sleep(0.1)
    process.kill()
    raise SystemExit("moto server did not start")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--megabytes", type=float, default=50)
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    os.environ.update(
        AWS_ACCESS_KEY_ID="testing", AWS_SECRET_ACCESS_KEY="testing", AWS_DEFAULT_REGION="us-east-1"
    )
    work = Path(tempfile.mkdtemp(prefix="bench-s3-"))
    logs = work / "logs"
    size = generate(logs, args.megabytes)
    files = sorted(p for p in logs.rglob("*") if p.is_file())
    process, endpoint = _start_moto()
    try:
        s3 = boto3.client("s3", endpoint_url=endpoint)
        s3.create_bucket(Bucket="bench")
        for path in files:
            s3.upload_file(str(path), "bench", f"logs/{path.relative_to(logs)}")
        print(
            f"{len(files)} files, {size / 1e6:.0f} MB; machine: {os.cpu_count()} cores;"
            f" load {os.getloadavg()[0]:.2f}"
        )
        for round_ in range(args.rounds):
            for label in ("local, one process", "s3", "local, default (reading processes)"):
                db_path = work / f"{round_}-{label[:5]}-{time.monotonic_ns()}.db"
                db = open_db(db_path)
                started = time.monotonic()
                if label == "s3":
                    result = ingest_s3(db, ["s3://bench/logs/"], endpoint_url=endpoint)
                elif label.startswith("local, one"):
                    result = ingest_paths(db, [str(logs)], workers=0)
                else:
                    result = ingest_paths(db, [str(logs)])
                seconds = time.monotonic() - started
                print(
                    f"round {round_ + 1} {label:36s} {seconds:6.2f} s"
                    f"  {size / 1e6 / seconds:6.1f} MB/s  {result.reports:,} reports"
                )
                db.conn.close()
                db_path.unlink()
    finally:
        process.kill()
        process.wait()


if __name__ == "__main__":
    main()
