"""CPU time of the text-file reading step alone (``collectors.local._text_batches``: chunking,
the C scan of REPORT lines, the Lambda Insights byte searches) over a folder of logs, in one
process, without the store: the part of `ingest` a change to the chunk loop can slow down.

Command: python bench/bench_text_batches.py DIR [--repeat 3] (prints the best of the
repeats); run it alternately from two checkouts (PYTHONPATH at each) on the same folder,
e.g. the logs `bench_ingest.py --keep DIR` generated. gzip'd files are decompressed first.
"""

from __future__ import annotations

import argparse
import gzip
import time
from pathlib import Path

from collectors import local

BLOCK_BYTES = 1 << 20


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folder", type=Path)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    datas = []
    for path in sorted(p for p in args.folder.rglob("*") if p.is_file()):
        data = path.read_bytes()
        datas.append(gzip.decompress(data) if data[:2] == b"\x1f\x8b" else data)
    best = float("inf")
    lines = 0
    for _ in range(args.repeat):
        started = time.process_time()
        lines = 0
        for data in datas:
            blocks = iter([data[i : i + BLOCK_BYTES] for i in range(0, len(data), BLOCK_BYTES)])
            for batch in local._text_batches(b"", blocks, 0, None, None):
                lines += batch.lines
        best = min(best, time.process_time() - started)
    megabytes = sum(len(d) for d in datas) / 1e6
    print(f"{best:.3f} s CPU (best of {args.repeat}), {megabytes:.0f} MB, {lines:,} lines")


if __name__ == "__main__":
    main()
