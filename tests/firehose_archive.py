"""A small Firehose archive of CloudWatch Logs subscription records, as S3 holds it.

Objects are gzip'd, one ``DATA_MESSAGE`` JSON record per line (Firehose with CloudWatch
Logs decompression and a new-line delimiter), under ``YYYY/MM/DD/HH/`` by the hour
Firehose received them. Two accounts, each with its own delivery stream into the one
bucket (so an object holds one account's records). Covered: text and JSON log formats,
cold starts, timeouts (REPORT status and ``Task timed out`` lines), out of memory (error
type and runtime messages), errors, SnapStart restores, a record delivered twice, a record
filed in the hour after its events, a JSON report whose ``time`` is in another hour than
its log event, a shared log group (function from the stream name), control messages and
application lines.
"""

from __future__ import annotations

import gzip
import json
import random
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ACCOUNTS = ("111111111111", "222222222222")
BASE = int(datetime(2026, 11, 20, 10, tzinfo=UTC).timestamp())  # 2026-11-20T10:00Z
HOURS = 3
SHARED_GROUP = "/org/shared-app"
SHARED_FUNCTION = "shared-worker"


def _rid(rng: random.Random) -> str:
    h = f"{rng.getrandbits(128):032x}"
    return f"{h[:8]}-{h[8:12]}-4{h[13:16]}-a{h[17:20]}-{h[20:32]}"


def _iso(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def _text_invocation(rng: random.Random, ms: int, memory: int, kind: str) -> list[tuple[int, str]]:
    rid = _rid(rng)
    duration = round(rng.uniform(1, 900), 2)
    used = rng.randint(40, memory)
    lines = [(ms, f"START RequestId: {rid} Version: $LATEST\n")]
    lines.append((ms + 1, f"{_iso(ms + 1)}\t{rid}\tINFO\thandling order {rng.randint(1, 99)}\n"))
    extra = ""
    if kind == "cold":
        extra = f"\tInit Duration: {rng.uniform(100, 900):.2f} ms"
    elif kind == "timeout_line":
        lines.append((ms + 2, f"{_iso(ms + 2)}\t{rid}\tTask timed out after 3.00 seconds\n"))
        duration = 3000.0
    elif kind == "timeout_status":
        extra = "\tStatus: timeout"
    elif kind == "oom_report":
        extra = "\tStatus: error\tError Type: Runtime.OutOfMemory"
        used = memory
    elif kind == "oom_line":
        lines.append((ms + 2, f"{_iso(ms + 2)}\t{rid}\tERROR\tjava.lang.OutOfMemoryError: heap\n"))
    elif kind == "error":
        extra = "\tStatus: error\tError Type: Runtime.Unknown"
    elif kind == "snapstart":
        extra = "\tRestore Duration: 310.10 ms\tBilled Restore Duration: 95 ms"
    billed = int(duration) + 1
    report = (
        f"REPORT RequestId: {rid}\tDuration: {duration:.2f} ms\tBilled Duration: {billed} ms"
        f"\tMemory Size: {memory} MB\tMax Memory Used: {used} MB{extra}\t\n"
    )
    lines.append((ms + 3, report))
    return lines


def _json_invocation(rng: random.Random, ms: int, memory: int, kind: str) -> list[tuple[int, str]]:
    rid = _rid(rng)
    metrics: dict[str, Any] = {
        "durationMs": round(rng.uniform(1, 500), 3),
        "billedDurationMs": rng.randint(2, 501),
        "memorySizeMB": memory,
        "maxMemoryUsedMB": rng.randint(30, memory),
    }
    status, error_type = "success", None
    if kind == "cold":
        metrics["initDurationMs"] = round(rng.uniform(50, 700), 3)
    elif kind in ("timeout_line", "timeout_status"):
        status = "timeout"
    elif kind in ("oom_report", "oom_line"):
        status, error_type = "error", "Runtime.OutOfMemory"
    elif kind == "error":
        status, error_type = "failure", "Runtime.ExitError"
    record: dict[str, Any] = {"requestId": rid, "metrics": metrics, "status": status}
    if error_type:
        record["errorType"] = error_type
    app = {"timestamp": _iso(ms + 1), "level": "INFO", "requestId": rid, "message": "ok"}
    start = {"time": _iso(ms), "type": "platform.start", "record": {"requestId": rid}}
    report = {"time": _iso(ms + 3), "type": "platform.report", "record": record}
    return [
        (ms, json.dumps(start)),
        (ms + 1, json.dumps(app)),
        (ms + 3, json.dumps(report)),
    ]


@dataclass
class Archive:
    """Objects by key (``YYYY/MM/DD/HH/name.gz``) and the account each belongs to."""

    objects: dict[str, bytes] = field(default_factory=dict)
    account_of: dict[str, str] = field(default_factory=dict)

    def write(self, root: Path) -> list[Path]:
        paths = []
        for key, body in sorted(self.objects.items()):
            path = root / key
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(body)
            paths.append(path)
        return paths


_SPECIAL = ["timeout_line", "timeout_status", "oom_report", "oom_line", "error", "snapstart"]


def build(seed: int = 7) -> Archive:
    """The archive described in the module docstring (deterministic)."""
    rng = random.Random(seed)
    archive = Archive()
    functions = {
        ACCOUNTS[0]: [("orders-api", "text", 512), ("image-resizer", "json", 1024)],
        ACCOUNTS[1]: [("orders-api", "json", 256), ("billing", "text", 128)],
    }
    for account in ACCOUNTS:
        # records by the hour Firehose files them under
        by_hour: dict[int, list[dict[str, Any]]] = {}
        for name, log_format, memory in functions[account]:
            for hour in range(HOURS):
                events: list[tuple[int, str]] = []
                # every special kind in every function-hour, then warm and cold starts
                kinds = _SPECIAL + [rng.choice(("warm", "warm", "warm", "cold")) for _ in range(8)]
                rng.shuffle(kinds)
                for kind in kinds:
                    ms = (BASE + hour * 3600) * 1000 + rng.randint(0, 3_599_000)
                    make = _text_invocation if log_format == "text" else _json_invocation
                    # a configuration change within the hour: a second memory size
                    size = memory * 2 if rng.random() < 0.15 else memory
                    events.extend(make(rng, ms, size, kind))
                events.sort()
                record = _record(
                    account,
                    f"/aws/lambda/{name}",
                    f"2026/11/20/[$LATEST]{rng.getrandbits(64):016x}",
                    events,
                )
                by_hour.setdefault(hour, []).append(record)
        # the shared log group: function from the stream name
        shared = _text_invocation(rng, (BASE + 1800) * 1000, 768, "cold")
        shared += _text_invocation(rng, (BASE + 1900) * 1000, 768, "timeout_line")
        stream = f"2026/11/20/{SHARED_FUNCTION}[$LATEST]{rng.getrandbits(64):016x}"
        by_hour[0].append(_record(account, SHARED_GROUP, stream, shared))
        # edge cases: a REPORT at the last millisecond of an hour filed in the next hour's
        # prefix, a record delivered twice, a JSON report whose time is in the next hour
        edge_ms = (BASE + 3600) * 1000 - 1
        late = _text_invocation(rng, edge_ms - 3, 512, "cold")
        by_hour[1].append(
            _record(account, "/aws/lambda/orders-api", "2026/11/20/[$LATEST]late", late)
        )
        twice = _record(
            account,
            "/aws/lambda/billing",
            "2026/11/20/[$LATEST]dup",
            _text_invocation(rng, (BASE + 60) * 1000, 128, "warm"),
        )
        by_hour[0].extend([twice, twice])
        skew = _json_invocation(rng, (BASE + 2 * 3600) * 1000 - 2, 1024, "warm")
        skew = [(ms, msg) for ms, msg in skew]
        report_ms, report = skew[-1]
        parsed = json.loads(report)
        parsed["time"] = _iso(report_ms + 5)  # 12:00:00.006, while the log event is at 11:59:59
        skew[-1] = (report_ms - 5, json.dumps(parsed))
        by_hour[1].append(
            _record(account, "/aws/lambda/image-resizer", "2026/11/20/[$LATEST]skew", skew)
        )
        control = {
            "messageType": "CONTROL_MESSAGE",
            "owner": "CloudwatchLogs",
            "logGroup": "",
            "logStream": "",
            "subscriptionFilters": [],
            "logEvents": [{"id": "", "timestamp": BASE * 1000, "message": "CWL CONTROL MESSAGE"}],
        }
        by_hour[0].insert(0, control)
        for hour, records in by_hour.items():
            when = datetime.fromtimestamp(BASE + hour * 3600, UTC)
            for part in range(2):
                chunk = records[part::2]
                if not chunk:
                    continue
                key = (
                    f"{when:%Y/%m/%d/%H}/lambda-logs-{account}-1-{when:%Y-%m-%d-%H}-00-00-{part}.gz"
                )
                text = "".join(json.dumps(r) + "\n" for r in chunk)
                archive.objects[key] = gzip.compress(text.encode(), mtime=0)
                archive.account_of[key] = account
    return archive


def _record(account: str, group: str, stream: str, events: list[tuple[int, str]]) -> dict[str, Any]:
    return {
        "messageType": "DATA_MESSAGE",
        "owner": account,
        "logGroup": group,
        "logStream": stream,
        "subscriptionFilters": ["to-firehose"],
        "logEvents": [
            {"id": f"{ms}{i:04d}", "timestamp": ms, "message": message}
            for i, (ms, message) in enumerate(events)
        ],
    }
