"""Write a realistic mix of Lambda runtime logs (deterministic for a seed).

REPORT is about 1 in 4 lines with application lines between; some files are gzip'd,
some use the JSON log format, some are CloudWatch subscription envelopes.

Usage: python bench/gen_logs.py OUT_DIR --megabytes 200 [--seed 1] [--functions 8]
"""

from __future__ import annotations

import argparse
import gzip
import json
import random
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

START = datetime(2024, 5, 1, tzinfo=UTC)
APP_MESSAGES = [
    "processing record batch",
    "fetched item from table in 12 ms",
    "cache miss for key user#4821",
    "validated payload against schema v3",
]


def _iso(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def invocation_text(rng: random.Random, moment: datetime, memory: int) -> list[str]:
    """The text-format lines of one invocation (START, app lines, END, REPORT)."""
    request_id = str(uuid.UUID(int=rng.getrandbits(128), version=4))
    duration = rng.lognormvariate(4.0, 0.8)
    used = min(memory, int(memory * rng.uniform(0.2, 0.7)))
    lines = [f"START RequestId: {request_id} Version: $LATEST"]
    for _ in range(rng.randint(0, 2)):
        lines.append(f"{_iso(moment)}\t{request_id}\tINFO\t{rng.choice(APP_MESSAGES)}")
    status = ""
    if rng.random() < 0.01:
        lines.append(f"{_iso(moment)} {request_id} Task timed out after 3.00 seconds")
        status = "\tStatus: timeout"
        duration = 3000.0
    lines.append(f"END RequestId: {request_id}")
    init = f"\tInit Duration: {rng.uniform(100, 900):.2f} ms" if rng.random() < 0.05 else ""
    lines.append(
        f"REPORT RequestId: {request_id}\tDuration: {duration:.2f} ms\t"
        f"Billed Duration: {int(duration) + 1} ms\tMemory Size: {memory} MB\t"
        f"Max Memory Used: {used} MB{init}{status}\t"
    )
    return lines


def invocation_json(rng: random.Random, moment: datetime, memory: int) -> list[str]:
    """The JSON-format lines of one invocation."""
    request_id = str(uuid.UUID(int=rng.getrandbits(128), version=4))
    duration = round(rng.lognormvariate(4.0, 0.8), 2)
    time_text = _iso(moment)
    metrics = {
        "durationMs": duration,
        "billedDurationMs": int(duration) + 1,
        "memorySizeMB": memory,
        "maxMemoryUsedMB": int(memory * rng.uniform(0.2, 0.7)),
    }
    records = [
        {"time": time_text, "type": "platform.start", "record": {"requestId": request_id}},
        {"timestamp": time_text, "level": "INFO", "requestId": request_id, "message": "ok"},
        {
            "time": time_text,
            "type": "platform.report",
            "record": {"requestId": request_id, "metrics": metrics, "status": "success"},
        },
    ]
    return [json.dumps(r, separators=(",", ":")) for r in records]


def generate(out: Path, megabytes: float, seed: int = 1, functions: int = 8) -> int:
    """Write about ``megabytes`` of logs under ``out/<function>/``; returns bytes written."""
    rng = random.Random(seed)
    target = int(megabytes * 1024 * 1024)
    written = 0
    file_index = 0
    moment = START
    while written < target:
        name = f"fn-{file_index % functions:02d}"
        memory = [128, 256, 512, 1024, 1769][file_index % functions % 5]
        kind = ("text", "text", "text", "gz", "json", "envelope")[file_index % 6]
        lines: list[str] = []
        size = 0
        per_file = min(8 * 1024 * 1024, target - written)
        while size < per_file:
            moment += timedelta(milliseconds=rng.randint(50, 400))
            block = (invocation_json if kind == "json" else invocation_text)(rng, moment, memory)
            lines.extend(block)
            size += sum(len(line) + 1 for line in block)
        folder = out / name
        folder.mkdir(parents=True, exist_ok=True)
        stem = f"{file_index:05d}"
        if kind == "envelope":
            data = b"".join(
                json.dumps(
                    {
                        "messageType": "DATA_MESSAGE",
                        "logGroup": f"/aws/lambda/{name}",
                        "logStream": "2024/05/01/[$LATEST]0",
                        "logEvents": [
                            {
                                "id": str(i),
                                "timestamp": int(moment.timestamp() * 1000),
                                "message": m,
                            }
                            for i, m in enumerate(lines[k : k + 500])
                        ],
                    }
                ).encode()
                for k in range(0, len(lines), 500)
            )
            (folder / f"{stem}.firehose").write_bytes(data)
        else:
            data = ("\n".join(lines) + "\n").encode()
            if kind == "gz":
                with gzip.open(folder / f"{stem}.log.gz", "wb", compresslevel=1) as handle:
                    handle.write(data)
            else:
                (folder / f"{stem}.log").write_bytes(data)
        written += len(data)
        file_index += 1
    return written


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("out", type=Path)
    parser.add_argument("--megabytes", type=float, default=200)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--functions", type=int, default=8)
    args = parser.parse_args()
    written = generate(args.out, args.megabytes, args.seed, args.functions)
    print(f"wrote {written / 1024 / 1024:.1f} MB (uncompressed) under {args.out}")


if __name__ == "__main__":
    main()
