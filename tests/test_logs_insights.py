"""Logs Insights: the query text and result transform (pure), and the polling loop with Stubber.

moto's Logs Insights ignores the query (no stats, no REPORT fields), so start_query /
get_query_results are served by ``botocore.stub.Stubber`` with response shapes from the
CloudWatch Logs API reference (StartQuery: queryId; GetQueryResults: status, results as
lists of field/value pairs, statistics with bytesScanned). ``insights_rows`` below is a
model of what the one query returns (its grouping and aggregates, computed in Python) so
the transform can be checked against local ingest of the same REPORT lines.
"""

from __future__ import annotations

import json
import math
import random
import re
from collections.abc import Callable, Sequence
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from botocore.stub import Stubber
from sqlite_utils import Database

from collectors.aws import SourceResult, Store
from collectors.logs import (
    MAX_RESULT_ROWS,
    NO_VALUE_BUCKET,
    PARSED,
    QUERY,
    SHARED_QUERY,
    STREAM_PARSE,
    Facts,
    QueryJob,
    collect_insights,
    group_functions,
    load_facts,
    log_group_batches,
    plan_windows,
    run_queries,
    split_timed_out,
    split_truncated,
    transform_rows,
)
from lambdascope import histcodec, histogram
from lambdascope.db import function_id
from lambdascope.logparse import parse_line
from lambdascope.models import PlatformEvent
from lambdascope.store import rebuild_hourly_facts, store_events

HOUR = 1_700_002_800  # 2023-11-14T23:00:00Z, an hour boundary
ACCOUNT = "123456789012"
GROUP_A = "/aws/lambda/orders"
GROUP_B = "/aws/lambda/billing"
FACT_COLUMNS = (
    "invocations, errors, timeouts, out_of_memory, cold_starts, duration_ms_sum,"
    " duration_ms_max, billed_duration_ms_sum, max_memory_used_mb_max, init_duration_ms_sum,"
    " init_duration_ms_max, duration_hist, billed_duration_hist, max_memory_used_hist,"
    " init_duration_hist, restore_duration_ms_sum, billed_restore_duration_ms_sum"
)


def _bin(hour: int) -> str:
    return datetime.fromtimestamp(hour, UTC).strftime("%Y-%m-%d %H:%M:%S.000")


def _bucket(value: float | None) -> int:
    # floor(log(greatest(coalesce(x, 0), 0.0001)) / log(1.02)), as in the query
    return math.floor(math.log(max(value or 0.0, 0.0001)) / math.log(histogram.GAMMA))


def _flatten(obj: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """JSON fields as Logs Insights names them: nested ones joined with dots."""
    out: dict[str, Any] = {}
    for key, value in obj.items():
        if isinstance(value, dict):
            out.update(_flatten(value, f"{prefix}{key}."))
        else:
            out[f"{prefix}{key}"] = value
    return out


def discovered(message: str) -> dict[str, Any]:
    """The fields Logs Insights gives one event (CloudWatch Logs user guide, "Supported logs
    and discovered fields"): a text REPORT line gets @type and the Lambda fields, memory in
    bytes (MB x 1,000,000); a JSON-format record gets its JSON fields in dot notation."""
    fields: dict[str, Any] = {"@message": message}
    if message.startswith("{"):
        fields.update(_flatten(json.loads(message)))
        return fields
    names = {
        "Duration": "@duration",
        "Billed Duration": "@billedDuration",
        "Memory Size": "@memorySize",
        "Max Memory Used": "@maxMemoryUsed",
        "Init Duration": "@initDuration",
    }
    if message.startswith("REPORT RequestId:"):
        fields["@type"] = "REPORT"
        for part in message.split("\t"):
            key, _, value = part.partition(": ")
            if key in names:
                number, unit = value.split()
                fields[names[key]] = float(number) * (1_000_000 if unit == "MB" else 1)
    # the query's parse commands (fields stay absent when the pattern does not match)
    for command in PARSED:
        pattern = command.split(" /", 1)[1].rsplit("/", 1)[0].replace("(?<", "(?P<")
        match = re.search(pattern, message)
        if match:
            fields.update({k: float(v) for k, v in match.groupdict().items()})
    return fields


def _coalesce(*values: Any) -> Any:
    return next((v for v in values if v is not None), None)


def _scaled(megabytes: Any) -> Any:
    return None if megabytes is None else megabytes * 1_000_000


def insights_rows(
    group: str,
    lines: Sequence[tuple[float, str]],
    *,
    missing: int | None = None,
    streams: Sequence[str] | None = None,
) -> list[list[dict[str, str]]]:
    """What the query returns for these (timestamp, message) events, sorted by hour.

    Text REPORT lines and JSON ``platform.report`` records alike: each value is the text
    field or else the JSON field, memory in MB. ``missing`` is what strcontains() of a field
    the event lacks gives (null or 0: not documented; the result must not depend on it).
    Aggregates without a value are left out of the row, as Insights does. ``streams``: the
    log stream of each line, for SHARED_QUERY (grouped by the function the stream names).
    """
    stream_pattern = STREAM_PARSE.split(" /", 1)[1].rsplit("/", 1)[0].replace("(?<", "(?P<")

    def contains(text: Any, part: str) -> int | None:
        return missing if text is None else int(part in text)

    def plus(a: int | None, b: int | None) -> int | None:
        return None if a is None or b is None else a + b

    groups: dict[tuple[Any, ...], dict[str, list[float]]] = {}
    for index, (at, message) in enumerate(lines):
        f = discovered(message)
        stream = None
        if streams is not None:
            match = re.match(stream_pattern, streams[index])
            stream = match.group("named_function") if match else f"{ACCOUNT}:{group}"
        if f.get("@type") != "REPORT" and f.get("type") != "platform.report":
            continue
        size = _coalesce(f.get("@memorySize"), _scaled(f.get("record.metrics.memorySizeMB")))
        used = _coalesce(f.get("@maxMemoryUsed"), _scaled(f.get("record.metrics.maxMemoryUsedMB")))
        used_mb = None if used is None else used / 1_000_000
        duration = _coalesce(f.get("@duration"), f.get("record.metrics.durationMs"))
        billed = _coalesce(f.get("@billedDuration"), f.get("record.metrics.billedDurationMs"))
        init = _coalesce(f.get("@initDuration"), f.get("record.metrics.initDurationMs"))
        restore = _coalesce(
            f.get("text_restore_duration_ms"), f.get("record.metrics.restoreDurationMs")
        )
        billed_restore = _coalesce(
            f.get("text_billed_restore_duration_ms"),
            f.get("record.metrics.billedRestoreDurationMs"),
        )
        status = f.get("record.status")
        key = (
            stream,
            int(at // 3600 * 3600),
            None if size is None else size / 1_000_000,
            _bucket(duration),
            _bucket(billed),
            _bucket(used_mb),
            _bucket(init),
        )
        text_error = plus(contains(message, "Status: error"), contains(message, "Status: failure"))
        values = {
            "errors": text_error,
            "json_errors": plus(contains(status, "error"), contains(status, "failure")),
            "timeouts": contains(message, "Status: timeout"),
            "json_timeouts": contains(status, "timeout"),
            "out_of_memory": contains(message, "OutOfMemory"),
            "duration": duration,
            "billed": billed,
            "used": used_mb,
            "init": init,
            "restore": restore,
            "billed_restore": billed_restore,
        }
        row = groups.setdefault(key, {"n": []})
        row["n"].append(1)
        for name, value in values.items():
            if value is not None:
                row.setdefault(name, []).append(value)
    out = []
    for (stream, hour, memory, d, b, m, i), row in sorted(groups.items(), key=lambda kv: kv[0][1]):
        cells = {
            "hour": _bin(hour),
            "@log": f"{ACCOUNT}:{group}",
            "stream_function": stream,
            "memory_mb": None if memory is None else repr(memory),
            "d": str(d),
            "b": str(b),
            "m": str(m),
            "i": str(i),
            "invocations": str(len(row["n"])),
        }
        for name in ("errors", "json_errors", "timeouts", "json_timeouts", "out_of_memory"):
            cells[name] = str(sum(row[name])) if name in row else None
        aggregates: dict[str, tuple[str, Callable[[list[float]], float]]] = {
            "duration_ms_sum": ("duration", sum),
            "duration_ms_max": ("duration", max),
            "billed_duration_ms_sum": ("billed", sum),
            "max_memory_used_mb_max": ("used", max),
            "init_duration_ms_sum": ("init", sum),
            "init_duration_ms_max": ("init", max),
            "restore_duration_ms_sum": ("restore", sum),
            "billed_restore_duration_ms_sum": ("billed_restore", sum),
        }
        for name, (source, aggregate) in aggregates.items():
            cells[name] = repr(aggregate(row[source])) if source in row else None
        # Insights leaves out a field whose aggregate has no value
        out.append([{"field": k, "value": v} for k, v in cells.items() if v is not None])
    return out


def report(
    request: str,
    duration: float,
    used: int,
    *,
    init: float | None = None,
    restore: float | None = None,
    status: str | None = None,
    error_type: str | None = None,
) -> str:
    """A text-format REPORT line (memory size 512 MB); ``restore``: a SnapStart restore."""
    line = (
        f"REPORT RequestId: {request}\tDuration: {duration:.2f} ms\t"
        f"Billed Duration: {math.ceil(duration)} ms\tMemory Size: 512 MB\t"
        f"Max Memory Used: {used} MB\t"
    )
    line += f"Init Duration: {init:.2f} ms\t" if init is not None else ""
    if restore is not None:
        line += f"Restore Duration: {restore:.2f} ms\t"
        line += f"Billed Restore Duration: {restore // 4:.0f} ms\t"
    line += f"Status: {status}\t" if status is not None else ""
    return line + (f"Error Type: {error_type}\t" if error_type is not None else "")


def json_report(
    request: str,
    duration: float,
    used: int | None,
    *,
    at: float = HOUR,
    init: float | None = None,
    restore: float | None = None,
    status: str = "success",
    error_type: str | None = None,
    memory: int | None = 512,
) -> str:
    """A JSON-format ``platform.report`` record, as Lambda writes it."""
    metrics: dict[str, Any] = {"durationMs": round(duration, 2)}
    metrics["billedDurationMs"] = math.ceil(duration)
    if memory is not None:
        metrics["memorySizeMB"] = memory
    if used is not None:
        metrics["maxMemoryUsedMB"] = used
    if init is not None:
        metrics["initDurationMs"] = round(init, 2)
    if restore is not None:
        metrics["restoreDurationMs"] = round(restore, 2)
        metrics["billedRestoreDurationMs"] = restore // 4
    record: dict[str, Any] = {"requestId": request, "metrics": metrics, "status": status}
    if error_type is not None:
        record["errorType"] = error_type
    stamp = datetime.fromtimestamp(at, UTC).isoformat(timespec="milliseconds")
    event = {"time": stamp.replace("+00:00", "Z"), "type": "platform.report", "record": record}
    return json.dumps(event, separators=(",", ":"))


def sample_lines(
    seed: int = 7, count: int = 400, *, json_from: int | None = None
) -> list[tuple[float, str]]:
    """A busy function over two hours: spread durations, memory creeping up, a few failures.

    Lines from index ``json_from`` on are in JSON log format (a function switched over).
    """
    rng = random.Random(seed)
    lines = []
    for index in range(count):
        at = HOUR + index * (7200 / count)
        duration = rng.lognormvariate(4.5, 0.6)
        used = 150 + index // 40 + rng.randint(0, 3)
        init = rng.uniform(150, 400) if index % 25 == 0 else None
        restore = rng.uniform(200, 600) if index % 33 == 5 else None  # SnapStart restores
        status, error_type = None, None
        if index % 50 == 7:
            status, error_type = "error", "Runtime.OutOfMemory"
        elif index % 60 == 11:
            status = "timeout"
        elif index % 70 == 13:
            status, error_type = "error", "Runtime.ExitError"
        elif index % 90 == 17:
            status = "failure"
        if json_from is not None and index >= json_from:
            line = json_report(
                f"r{index}",
                duration,
                used,
                at=at,
                init=init,
                restore=restore,
                status=status or "success",
                error_type=error_type,
            )
        else:
            line = report(
                f"r{index}",
                duration,
                used,
                init=init,
                restore=restore,
                status=status,
                error_type=error_type,
            )
        lines.append((at, line))
    return lines


# The documented Logs Insights QL, from the CloudWatch Logs user guide, "CloudWatch Logs
# Insights language query syntax":
#   https://docs.aws.amazon.com/AmazonCloudWatch/latest/logs/CWL_QuerySyntax.html (commands)
#   https://docs.aws.amazon.com/AmazonCloudWatch/latest/logs/CWL_QuerySyntax-operations-functions.html
#   https://docs.aws.amazon.com/AmazonCloudWatch/latest/logs/CWL_QuerySyntax-Parse.html
# Only what the query needs is listed: a new command or function needs a deliberate look at
# its documentation before it joins the list.
DOCUMENTED_COMMANDS = {"fields", "filter", "parse", "stats", "sort", "limit", "display"}
DOCUMENTED_FUNCTIONS = {
    # numeric operations
    "abs", "ceil", "floor", "greatest", "least", "log", "sqrt",
    # general functions ("coalesce(fieldName1, ...)": arguments are log fields)
    "ispresent", "coalesce",
    # string functions
    "isempty", "isblank", "concat", "ltrim", "rtrim", "trim", "strlen", "toupper", "tolower",
    "substr", "replace", "strcontains",
    # datetime functions
    "datefloor", "dateceil", "bin",
}  # fmt: skip
AGGREGATION_FUNCTIONS = {"avg", "count", "count_distinct", "max", "min", "pct", "stddev", "sum"}
KEYWORDS = {"as", "by", "and", "or", "not", "asc", "desc", "like"}
# Fields the events have: discovered fields (CWL_AnalyzeLogData-discoverable-fields.html, and
# @initDuration) and JSON-format Lambda records in dot notation.
EVENT_FIELD = re.compile(
    r"^(@(message|logStream|log|timestamp|type|duration|billedDuration|memorySize"
    r"|maxMemoryUsed|initDuration)|type|record(\.[A-Za-z]+)+)$"
)
FIELD_NAME = re.compile(r"^@?[A-Za-z_][A-Za-z0-9_.]*$")


def query_problems(query: str) -> list[str]:
    """What in ``query`` is not documented Logs Insights QL, or uses a field before it exists."""
    problems: list[str] = []
    defined: set[str] = set()
    regex = re.compile(r"^parse\s+(@?[\w.]+)\s+/((?:[^/\\]|\\.)*)/$")
    masked = re.sub(r'"(?:[^"\\]|\\.)*"', '"S"', query)  # string literals
    for command in (c.strip() for c in masked.split(" | ")):
        name = command.split()[0]
        if name not in DOCUMENTED_COMMANDS:
            problems.append(f"command {name!r} is not in the documented list")
        if name == "parse":
            match = regex.match(command)
            if match is None:
                problems.append(f"parse not in the form parse FIELD /regex/: {command}")
                continue
            if not EVENT_FIELD.match(match.group(1)) and match.group(1) not in defined:
                problems.append(f"parse of unknown field {match.group(1)}")
            defined.update(re.findall(r"\(\?<([A-Za-z_]\w*)>", match.group(2)))
            continue
        body = command[len(name) :]
        for call in re.findall(r"([A-Za-z_]\w*)\s*\(", body):
            allowed = DOCUMENTED_FUNCTIONS | (AGGREGATION_FUNCTIONS if name == "stats" else set())
            if call not in allowed or (call == "bin" and name != "stats"):
                problems.append(f"function {call}() is not documented for {name}")
        for args in re.findall(r"coalesce\(([^)]*)\)", body):
            for arg in (a.strip() for a in args.split(",")):
                if "(" in arg or not FIELD_NAME.match(arg):
                    problems.append(f"coalesce() of {arg!r}: documented for log fields only")
        if body.count("coalesce(") != len(re.findall(r"coalesce\(([^()]*)\)", body)):
            problems.append("coalesce() of an expression: documented for log fields only")
        aliases = set(re.findall(r"\bas\s+([A-Za-z_]\w*)", body))
        words = re.sub(r"\bas\s+[A-Za-z_]\w*", " ", body.replace('"S"', " "))
        words = re.sub(r"[A-Za-z_]\w*\s*\(", "(", words)  # function names
        words = re.sub(r"(?<![\w.@])\d+(\.\d+)?[mh]?(?![\w.])", " ", words)  # 0.5, 1h
        for word in re.findall(r"@?[A-Za-z_][\w.]*", words):
            if word in KEYWORDS:
                continue
            if not EVENT_FIELD.match(word) and word not in defined:
                problems.append(f"field {word!r} used before any command defines it")
        defined |= aliases
    return problems


def test_query_uses_only_documented_commands_and_coalesces_fields_only() -> None:
    for query in (QUERY, SHARED_QUERY):
        assert query_problems(query) == []
        assert query.count("| stats ") == 1 and len(query) < 10_000  # StartQuery's limit
    # the checker itself: what the query once had, and what Insights does not document
    assert query_problems(
        'filter @type = "REPORT" | fields coalesce(@memorySize,'
        " record.metrics.memorySizeMB * 1000000, 0) / 1000000 as memory_mb"
    ) == [
        "coalesce() of 'record.metrics.memorySizeMB * 1000000': documented for log fields only",
        "coalesce() of '0': documented for log fields only",
    ]
    assert query_problems("fields median(@duration) as x | eval y = x | stats sum(z)") == [
        "function median() is not documented for fields",
        "command 'eval' is not in the documented list",
        "field 'y' used before any command defines it",
        "field 'z' used before any command defines it",
    ]
    assert query_problems("fields a2 as b2 | stats pct(b2, 95) by bin(1h) | fields sum(b2)") == [
        "field 'a2' used before any command defines it",
        "function sum() is not documented for fields",
    ]


def test_one_query_reads_both_log_formats_buckets_inside_insights_and_sorts() -> None:
    assert QUERY.startswith('filter @type = "REPORT" or type = "platform.report" | parse ')
    # values: the text field, else the JSON field; text memory turned into MB first
    assert "@memorySize / 1000000 as text_memory_mb" in QUERY
    assert "coalesce(text_memory_mb, record.metrics.memorySizeMB, zero) as memory_mb" in QUERY
    assert (
        "coalesce(text_max_memory_used_mb, record.metrics.maxMemoryUsedMB) as max_memory_used_mb"
        in QUERY
    )
    assert "coalesce(@duration, record.metrics.durationMs) as duration_ms" in QUERY
    assert "coalesce(@initDuration, record.metrics.initDurationMs) as init_duration_ms" in QUERY
    # SnapStart restore: parsed from the text line, or the JSON record's metrics
    assert (
        "coalesce(text_restore_duration_ms, record.metrics.restoreDurationMs)"
        " as restore_duration_ms" in QUERY
    )
    assert "sum(billed_restore_duration_ms) as billed_restore_duration_ms_sum" in QUERY
    assert (
        'strcontains(record.status, "error") + strcontains(record.status, "failure")'
        " as is_json_error" in QUERY
    )
    assert "strlen(@message) * 0 as zero" in QUERY
    assert "floor(log(greatest(coalesce(duration_ms, zero), 0.0001)) / log(1.02)) as d" in QUERY
    assert "max(max_memory_used_mb) as max_memory_used_mb_max" in QUERY
    assert "by bin(1h) as hour, @log, memory_mb, d, b, m, i | sort hour asc" in QUERY
    assert NO_VALUE_BUCKET == _bucket(None) == -466


def test_restore_durations_are_parsed_from_text_lines_only_where_present() -> None:
    text = report("a", 40.0, 100, restore=310.1)
    assert "\tRestore Duration: 310.10 ms\tBilled Restore Duration: 77 ms\t" in text
    fields = discovered(text)
    assert (fields["text_restore_duration_ms"], fields["text_billed_restore_duration_ms"]) == (
        310.1,
        77.0,
    )
    assert "text_restore_duration_ms" not in discovered(report("b", 40.0, 100))


def test_log_groups_are_batched_fifty_per_query() -> None:
    groups = [f"/aws/lambda/f{i}" for i in range(120)]
    assert [len(b) for b in log_group_batches(groups)] == [50, 50, 20]


@pytest.mark.parametrize(
    ("json_from", "missing"),
    [(None, None), (0, None), (0, 0), (200, None), (200, 0)],
    ids=["text", "json", "json-strcontains-0", "switched", "switched-strcontains-0"],
)
def test_transform_fills_the_same_facts_as_local_ingest(
    db: Database, json_from: int | None, missing: int | None
) -> None:
    # text lines, JSON-format records, or a function switched to JSON in the middle (both
    # formats in one hour); compared with local ingest (the core parser) of the same lines
    lines = sample_lines(json_from=json_from)
    facts = Facts()
    rows = insights_rows(GROUP_A, lines, missing=missing)
    assert len(rows) > 100  # several rows per hour: one per combination of buckets
    malformed = [[{"field": "@log", "value": "x"}, {"field": "memory_mb", "value": "1"}]]
    assert transform_rows([*rows, *malformed], facts) == 1
    insights_fid = function_id(db, "orders", ACCOUNT, "us-east-1")
    local_fid = function_id(db, "orders-local", ACCOUNT, "us-east-1")
    load_facts(Store(db), facts, {GROUP_A: insights_fid})
    events: list[PlatformEvent] = []
    for at, line in lines:
        event = parse_line(line)
        assert event is not None and event.kind == "report"
        events.append(replace(event, timestamp=at))
    with db.conn:
        store_events(db, local_fid, events)
        rebuild_hourly_facts(db, local_fid, [HOUR, HOUR + 3600])

    def facts_of(fid: int) -> list[tuple[Any, ...]]:
        return db.conn.execute(
            f"SELECT hour, memory_mb, {FACT_COLUMNS} FROM hourly_facts WHERE function_id = ?"
            " ORDER BY hour",
            (fid,),
        ).fetchall()

    insights, local = facts_of(insights_fid), facts_of(local_fid)
    # memory in MB whatever the format: 512 configured, at most 158 + 3 used
    assert [r[:3] for r in insights] == [(HOUR, 512, 200), (HOUR + 3600, 512, 200)]
    assert [r[10] for r in insights] == [157, 162]  # max_memory_used_mb_max
    assert set(histcodec.decode(insights[1][15])) == {  # max_memory_used_hist, MB buckets
        histogram.bucket_of(float(mb)) for mb in range(155, 163)
    }
    # hour 0: errors 4 OOM + 3 other + 2 "failure", timeouts 4, OOM 4, cold starts 8
    assert insights[0][3:7] == (4 + 3 + 2, 4, 4, 8)
    assert len(insights) == len(local) == 2
    for got, want in zip(insights, local, strict=True):
        for a, b in zip(got, want, strict=True):  # sums may differ in the last float digit
            assert math.isclose(a, b) if isinstance(a, float) else a == b, (a, b)


def test_absent_values_go_in_no_histogram() -> None:
    facts = Facts()
    rows = insights_rows(GROUP_A, [(HOUR + 5, report("a", 50.0, 100))])
    rows += insights_rows(GROUP_B, [(HOUR + 6, json_report("b", 60.0, 90))])
    transform_rows(rows, facts)
    for group, duration in ((GROUP_A, 50.0), (GROUP_B, 60.0)):
        row = facts.rows[(group, "", HOUR, 512)]
        assert row["init_duration_hist"] == {} and row["cold_starts"] == 0
        assert row["init_duration_ms_max"] is None
        assert row["duration_hist"] == {histogram.bucket_of(duration): 1}


def test_a_json_record_without_memory_fields_is_kept_under_memory_zero() -> None:
    # JSON records may leave metrics out (Lambda Managed Instances report fewer): local
    # ingest stores such a report under memory 0, so the Insights facts do too.
    facts = Facts()
    lines = [(HOUR + 5, json_report("a", 40.0, None, memory=None, init=120.0))]
    assert transform_rows(insights_rows(GROUP_B, lines), facts) == 0
    row = facts.rows[(GROUP_B, "", HOUR, 0)]
    assert (row["invocations"], row["cold_starts"], row["max_memory_used_mb_max"]) == (1, 1, None)
    assert row["max_memory_used_hist"] == {}
    assert row["init_duration_hist"] == {histogram.bucket_of(120.0): 1}


def _rows_over_hours(hours: int, per_hour: int) -> list[list[dict[str, str]]]:
    return [
        [
            {"field": "hour", "value": _bin(HOUR + 3600 * h)},
            {"field": "@log", "value": f"{ACCOUNT}:{GROUP_A}"},
            {"field": "memory_mb", "value": "512"},
            {"field": "d", "value": str(300 + i)},
            {"field": "invocations", "value": "1"},
        ]
        for h in range(hours)
        for i in range(per_hour)
    ]


def test_truncated_result_keeps_complete_hours_and_plans_the_rest() -> None:
    job = QueryJob(0, [GROUP_A], HOUR, HOUR + 48 * 3600)
    job.rows = _rows_over_hours(3, 4_000)[:MAX_RESULT_ROWS]  # hours 0, 1 whole; 2 cut
    kept, windows = split_truncated(job)
    assert len(kept) == 8_000
    # 4,000 rows an hour, 6,000 rows a piece: 46 hours left -> 1-hour pieces
    assert windows[0] == (HOUR + 2 * 3600, HOUR + 3 * 3600)
    assert windows[-1][1] == HOUR + 48 * 3600 and len(windows) == 46


def test_an_hour_over_the_limit_is_cut_into_quarters_down_to_a_minute() -> None:
    job = QueryJob(0, [GROUP_A], HOUR, HOUR + 3 * 3600)
    job.rows = _rows_over_hours(1, MAX_RESULT_ROWS)
    kept, windows = split_truncated(job)
    assert kept == []
    assert windows == [
        (HOUR, HOUR + 900),
        (HOUR + 900, HOUR + 1800),
        (HOUR + 1800, HOUR + 2700),
        (HOUR + 2700, HOUR + 3600),
        (HOUR + 3600, HOUR + 3 * 3600),
    ]
    minute = QueryJob(0, [GROUP_A], HOUR, HOUR + 60)
    minute.rows = job.rows
    assert split_truncated(minute) == (job.rows, [])


def test_later_batches_are_cut_to_fit_from_the_density_seen() -> None:
    assert plan_windows(HOUR, HOUR + 3 * 3600, 0.0) == [(HOUR, HOUR + 3 * 3600)]
    assert plan_windows(HOUR, HOUR + 3 * 3600, 0.5) == [(HOUR, HOUR + 3 * 3600)]  # 5,400 rows
    # 6,000 rows a piece: at 1 row/s 6,000 s fit, cut to whole hours
    assert plan_windows(HOUR, HOUR + 2 * 3600, 1.0) == [
        (HOUR, HOUR + 3600),
        (HOUR + 3600, HOUR + 7200),
    ]
    # at 2 rows/s not an hour fits: 50-minute pieces
    assert plan_windows(HOUR, HOUR + 3600, 2.0) == [(HOUR, HOUR + 3000), (HOUR + 3000, HOUR + 3600)]
    hours = plan_windows(HOUR, HOUR + 48 * 3600, 0.5)  # 12,000 s fit: 3-hour pieces
    assert hours[0] == (HOUR, HOUR + 3 * 3600) and len(hours) == 16


def _client() -> Any:
    return boto3.client(
        "logs",
        region_name="us-east-1",
        aws_access_key_id="x",
        aws_secret_access_key="x",
        endpoint_url="http://127.0.0.1:9",
    )


def _start(
    stubber: Stubber,
    query_id: str,
    groups: list[str],
    start: int,
    end: int,
    query: str = QUERY,
) -> None:
    stubber.add_response(
        "start_query",
        {"queryId": query_id},
        {
            "logGroupNames": groups,
            "startTime": start,
            "endTime": end - 1,
            "queryString": query,
            "limit": MAX_RESULT_ROWS,
        },
    )


def _results(stubber: Stubber, query_id: str, status: str, rows: list[Any], scanned: float) -> None:
    response: dict[str, Any] = {"status": status, "results": rows}
    if status == "Complete":
        response["statistics"] = {
            "recordsMatched": float(len(rows)),
            "recordsScanned": 10.0,
            "bytesScanned": scanned,
        }
    stubber.add_response("get_query_results", response, {"queryId": query_id})


def test_one_query_per_batch_polled_with_backoff_and_stored(db: Database) -> None:
    # one batch mixing a text-format function (A) and a JSON-format one (B, 256 MB)
    client = _client()
    ids = {
        GROUP_A: function_id(db, "orders", ACCOUNT, "us-east-1"),
        GROUP_B: function_id(db, "billing", ACCOUNT, "us-east-1"),
    }
    db.conn.commit()
    stubber = Stubber(client)
    _start(stubber, "q0", sorted(ids), HOUR, HOUR + 7200)
    json_lines = [
        (HOUR + 10, json_report("b1", 20.0, 64, at=HOUR + 10, init=300.0, memory=256)),
        (HOUR + 20, json_report("b2", 900.0, 250, at=HOUR + 20, memory=256, status="timeout")),
    ]
    rows = insights_rows(GROUP_A, sample_lines(count=40)) + insights_rows(GROUP_B, json_lines)
    _results(stubber, "q0", "Running", [], 0)
    _results(stubber, "q0", "Running", [], 0)
    _results(stubber, "q0", "Complete", rows, 2e9)
    slept: list[float] = []
    result = SourceResult(ACCOUNT, "us-east-1", "logs")
    with stubber:
        collect_insights(
            Store(db),
            client,
            ids,
            result,
            start=HOUR,
            end=HOUR + 7200,
            max_concurrent=10,
            sleep=slept.append,
        )
    stubber.assert_no_pending_responses()
    assert slept == [1.0, 2.0, 4.0]  # doubled while waiting
    assert result.bytes_scanned == 2 * 10**9  # the logs were scanned once
    assert result.estimated_cost_usd == 2 * 0.005
    assert result.message == "2 log groups, 1 batches, 1 queries (0 results over 10000 rows split)"
    stored = db.conn.execute(
        "SELECT function_id, hour, memory_mb, source, invocations, max_memory_used_mb_max,"
        " timeouts, cold_starts, init_duration_hist, max_memory_used_hist FROM hourly_facts"
        " ORDER BY function_id, hour"
    ).fetchall()
    assert [r[:8] for r in stored] == [
        (ids[GROUP_A], HOUR, 512, "insights", 20, 153, 1, 1),
        (ids[GROUP_A], HOUR + 3600, 512, "insights", 20, 153, 0, 1),
        (ids[GROUP_B], HOUR, 256, "insights", 2, 250, 1, 1),
    ]
    assert stored[2][8:] == (
        histcodec.encode({histogram.bucket_of(300.0): 1}),
        histcodec.encode({histogram.bucket_of(64.0): 1, histogram.bucket_of(250.0): 1}),
    )


def test_truncated_result_is_split_recorded_and_adds_up(db: Database) -> None:
    client = _client()
    ids = {GROUP_A: function_id(db, "orders", ACCOUNT, "us-east-1")}
    db.conn.commit()
    stubber = Stubber(client)
    full = _rows_over_hours(3, 4_000)
    _start(stubber, "q0", [GROUP_A], HOUR, HOUR + 3 * 3600)
    _results(stubber, "q0", "Complete", full[:MAX_RESULT_ROWS], 3e9)
    # the rest, hour 2, queried again (rows of hours 0 and 1 were kept)
    _start(stubber, "q1", [GROUP_A], HOUR + 2 * 3600, HOUR + 3 * 3600)
    _results(stubber, "q1", "Complete", full[8_000:], 1e9)
    result = SourceResult(ACCOUNT, "us-east-1", "logs")
    with stubber:
        collect_insights(
            Store(db),
            client,
            ids,
            result,
            start=HOUR,
            end=HOUR + 3 * 3600,
            max_concurrent=10,
            sleep=lambda _s: None,
        )
    stubber.assert_no_pending_responses()
    assert result.status == "ok" and result.bytes_scanned == 4 * 10**9
    assert result.message == "1 log groups, 1 batches, 2 queries (1 results over 10000 rows split)"
    counts = db.conn.execute("SELECT hour, invocations FROM hourly_facts ORDER BY hour").fetchall()
    assert counts == [(HOUR, 4_000), (HOUR + 3600, 4_000), (HOUR + 7200, 4_000)]


def test_stop_lets_started_batches_finish_and_leaves_the_rest(db: Database) -> None:
    client = _client()
    groups = {
        f"/aws/lambda/f{i:03d}": function_id(db, f"f{i:03d}", ACCOUNT, "r") for i in range(120)
    }
    db.conn.commit()
    batches = log_group_batches(sorted(groups))
    stubber = Stubber(client)
    _start(stubber, "q0", batches[0], HOUR, HOUR + 3600)
    _results(stubber, "q0", "Complete", [], 1e6)
    asked: list[bool] = []

    def stop() -> bool:
        asked.append(True)
        return len(asked) > 1  # asked before each round: stop after the first batch started

    result = SourceResult(ACCOUNT, "r", "logs")
    with stubber:
        collect_insights(
            Store(db),
            client,
            groups,
            result,
            start=HOUR,
            end=HOUR + 3600,
            max_concurrent=1,
            sleep=lambda _s: None,
            stop=stop,
        )
    stubber.assert_no_pending_responses()
    assert result.status == "interrupted"
    assert result.message.endswith("stopped after 1 of 3 batches")


SHARED = "/app/shared"


def test_log_groups_shared_or_custom_are_read_by_stream_and_default_ones_by_group() -> None:
    groups = group_functions(
        [
            (1, "orders", "/aws/lambda/orders", "Text"),
            (2, "checkout", SHARED, "Text"),
            (3, "payments", SHARED, "JSON"),
            (4, "audit", "/custom/audit", None),  # a custom group of one function
            (5, "billing", None, None),  # never inventoried: its default group
            (6, "invoices", "/aws/lambda/billing", "Text"),  # writes to billing's group
        ]
    )
    assert groups.dedicated == {"/aws/lambda/orders": 1}
    assert groups.shared == {
        SHARED: {"checkout": 2, "payments": 3},
        "/custom/audit": {"audit": 4},
        # billing's own streams carry no function name: "" is billing
        "/aws/lambda/billing": {"billing": 5, "invoices": 6, "": 5},
    }
    assert groups.formats[SHARED] == frozenset({"Text", "JSON"})
    assert groups.only(["/custom/audit"]).names() == ["/custom/audit"]
    # the shared query parses the function out of the stream name and groups by it
    assert (
        "parse @logStream /^[0-9]{4}.[0-9]{2}.[0-9]{2}.(?<named_function>[A-Za-z0-9_-]+)\\[/"
        in SHARED_QUERY
    )
    # a stream without a function name is keyed by @log: no stats group with a missing key
    assert "coalesce(named_function, @log) as stream_function" in SHARED_QUERY
    assert "by bin(1h) as hour, @log, stream_function, memory_mb, d, b, m, i" in SHARED_QUERY
    assert "stream_function" not in QUERY


def test_a_shared_log_group_books_each_invocation_to_the_function_of_its_stream(
    db: Database,
) -> None:
    # Stubber: moto's Insights ignores the query (see the module docstring)
    client = _client()
    ids = {
        name: function_id(db, name, ACCOUNT, "us-east-1")
        for name in ("orders", "checkout", "payments")
    }
    db.conn.commit()
    groups = group_functions(
        [
            (ids["orders"], "orders", GROUP_A, "Text"),
            (ids["checkout"], "checkout", SHARED, "Text"),
            (ids["payments"], "payments", SHARED, "JSON"),
        ]
    )
    day = datetime.fromtimestamp(HOUR, UTC).strftime("%Y/%m/%d")
    shared_lines = [
        (HOUR + 1, report("c1", 30.0, 90, init=200.0)),
        (HOUR + 2, report("c2", 40.0, 95)),
        (HOUR + 3, json_report("p1", 700.0, 300, at=HOUR + 3, memory=1024, restore=400.0)),
        (HOUR + 4, report("x1", 10.0, 60)),  # a function deleted since the inventory
        (HOUR + 6, report("x2", 10.0, 60)),  # a stream without a function name
    ]
    streams = [
        f"{day}/checkout[$LATEST]4f1c2e0d9a8b4c6e8f0a1b2c3d4e5f60",
        f"{day}/checkout[$LATEST]4f1c2e0d9a8b4c6e8f0a1b2c3d4e5f60",
        f"{day}/payments[12]0aa1b2c3d4e5f60718293a4b5c6d7e8f",
        f"{day}/retired[$LATEST]77aa",
        f"{day}/[$LATEST]77ab",
    ]
    stubber = Stubber(client)
    _start(stubber, "q0", [GROUP_A], HOUR, HOUR + 3600)
    orders_lines = [(HOUR + 5, report("o1", 20.0, 80))]
    _results(stubber, "q0", "Complete", insights_rows(GROUP_A, orders_lines), 1e6)
    _start(stubber, "q1", [SHARED], HOUR, HOUR + 3600, SHARED_QUERY)
    rows = insights_rows(SHARED, shared_lines, streams=streams)
    _results(stubber, "q1", "Complete", rows, 1e6)
    result = SourceResult(ACCOUNT, "us-east-1", "logs")
    with stubber:
        collect_insights(
            Store(db),
            client,
            groups.dedicated,
            result,
            start=HOUR,
            end=HOUR + 3600,
            max_concurrent=10,
            shared=groups.shared,
            sleep=lambda _s: None,
        )
    stubber.assert_no_pending_responses()
    stored = db.conn.execute(
        "SELECT f.function_name, h.memory_mb, h.invocations, h.cold_starts,"
        " h.max_memory_used_mb_max, h.restore_duration_ms_sum, h.billed_restore_duration_ms_sum"
        " FROM hourly_facts h JOIN functions f ON f.id = h.function_id ORDER BY 1"
    ).fetchall()
    assert stored == [
        ("checkout", 512, 2, 1, 95, 0.0, 0.0),
        ("orders", 512, 1, 0, 80, 0.0, 0.0),
        ("payments", 1024, 1, 0, 300, 400.0, 100.0),
    ]
    assert result.status == "ok"
    assert result.message == (
        "2 log groups, 2 batches, 2 queries (0 results over 10000 rows split),"
        " 1 shared log groups, 2 invocations of functions not in the inventory skipped"
    )


class FakeTime:
    """An injected clock that moves only when the code under test sleeps."""

    def __init__(self) -> None:
        self.now = 0.0
        self.slept: list[float] = []

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds

    def clock(self) -> float:
        return self.now


def _limit_exceeded(stubber: Stubber) -> None:
    # StartQuery's LimitExceededException (CloudWatch Logs API reference, StartQuery errors)
    stubber.add_client_error(
        "start_query",
        service_error_code="LimitExceededException",
        service_message="You have reached the maximum number of resources that can be created.",
        http_status_code=400,
    )


def _hour_rows(group: str, hour: int, count: int) -> list[list[dict[str, str]]]:
    lines = [(hour + 60 + i, report(f"{hour}-{i}", 25.0 + i, 70)) for i in range(count)]
    return insights_rows(group, lines)


def test_start_query_waits_for_a_free_slot_when_other_users_hold_them_all(
    db: Database,
) -> None:
    # the account's concurrent queries are all someone else's: none of ours is running
    client = _client()
    ids = {GROUP_A: function_id(db, "orders", ACCOUNT, "us-east-1")}
    db.conn.commit()
    stubber = Stubber(client)
    _limit_exceeded(stubber)
    _limit_exceeded(stubber)
    _start(stubber, "q0", [GROUP_A], HOUR, HOUR + 3600)
    _results(stubber, "q0", "Complete", _hour_rows(GROUP_A, HOUR, 3), 1e6)
    time_ = FakeTime()
    result = SourceResult(ACCOUNT, "us-east-1", "logs")
    with stubber:
        collect_insights(
            Store(db),
            client,
            ids,
            result,
            start=HOUR,
            end=HOUR + 3600,
            max_concurrent=10,
            sleep=time_.sleep,
            clock=time_.clock,
        )
    stubber.assert_no_pending_responses()
    assert time_.slept == [1.0, 2.0, 4.0]  # two waits for a slot, then the poll
    assert result.status == "ok"
    assert db.conn.execute("SELECT invocations FROM hourly_facts").fetchall() == [(3,)]


def test_start_query_gives_up_after_waiting_too_long_for_a_slot() -> None:
    client = _client()
    stubber = Stubber(client)
    for _ in range(6):
        _limit_exceeded(stubber)
    time_ = FakeTime()
    jobs = [QueryJob(0, [GROUP_A], HOUR, HOUR + 3600)]
    with stubber, pytest.raises(ClientError) as failure:
        run_queries(
            client, jobs, sleep=time_.sleep, clock=time_.clock, max_poll_s=8.0, slot_wait_s=20.0
        )
    assert failure.value.response["Error"]["Code"] == "LimitExceededException"
    # refused at t = 0, 1, 3, 7, 15 and 23 s: past 20 s of waiting, the error is raised
    assert time_.slept == [1.0, 2.0, 4.0, 8.0, 8.0]
    stubber.assert_no_pending_responses()


def test_limit_exceeded_while_ours_run_lowers_the_queries_in_flight(db: Database) -> None:
    client = _client()
    groups = {
        f"/aws/lambda/f{i:03d}": function_id(db, f"f{i:03d}", ACCOUNT, "r") for i in range(150)
    }
    db.conn.commit()
    batches = log_group_batches(sorted(groups))
    stubber = Stubber(client)
    _start(stubber, "q0", batches[0], HOUR, HOUR + 3600)
    _results(stubber, "q0", "Complete", _hour_rows(batches[0][0], HOUR, 1), 1e6)
    _start(stubber, "q1", batches[1], HOUR, HOUR + 3600)
    _limit_exceeded(stubber)  # q2: the account is full; one of ours (q1) is running
    _results(stubber, "q1", "Complete", _hour_rows(batches[1][0], HOUR, 2), 1e6)
    _start(stubber, "q2", batches[2], HOUR, HOUR + 3600)  # only once q1 has finished
    _results(stubber, "q2", "Complete", _hour_rows(batches[2][0], HOUR, 4), 1e6)
    result = SourceResult(ACCOUNT, "r", "logs")
    time_ = FakeTime()
    with stubber:
        collect_insights(
            Store(db),
            client,
            groups,
            result,
            start=HOUR,
            end=HOUR + 3600,
            max_concurrent=10,
            sleep=time_.sleep,
            clock=time_.clock,
        )
    stubber.assert_no_pending_responses()
    assert result.status == "ok" and result.errors == []
    assert db.conn.execute("SELECT SUM(invocations) FROM hourly_facts").fetchone() == (7,)


def test_a_query_stuck_in_scheduled_is_stopped_at_its_deadline(db: Database) -> None:
    client = _client()
    ids = {GROUP_A: function_id(db, "orders", ACCOUNT, "us-east-1")}
    db.conn.commit()
    stubber = Stubber(client)
    _start(stubber, "q0", [GROUP_A], HOUR, HOUR + 3600)
    # polled at t = 1, 3, 7, 15, 30, 45, ... 900, 915 s: queued since t = 1, so 900 s have
    # passed at the 64th poll
    for _ in range(63):
        _results(stubber, "q0", "Scheduled", [], 0)
    _results(stubber, "q0", "Unknown", [], 0)
    stubber.add_response("stop_query", {"success": True}, {"queryId": "q0"})
    result = SourceResult(ACCOUNT, "us-east-1", "logs")
    time_ = FakeTime()
    with stubber:
        collect_insights(
            Store(db),
            client,
            ids,
            result,
            start=HOUR,
            end=HOUR + 3600,
            max_concurrent=10,
            sleep=time_.sleep,
            clock=time_.clock,
        )
    stubber.assert_no_pending_responses()
    assert result.status == "partial"  # the watermark does not move past the window
    assert result.errors == [
        {
            "action": "logs:GetQueryResults",
            "code": "Expired",
            "message": "query still Scheduled or Unknown after 900 s: stopped"
            " (1 log groups, 3600 s)",
        }
    ]
    assert db.conn.execute("SELECT COUNT(*) FROM hourly_facts").fetchone() == (0,)


def test_a_timed_out_query_is_split_and_run_again(db: Database) -> None:
    client = _client()
    ids = {GROUP_A: function_id(db, "orders", ACCOUNT, "us-east-1")}
    db.conn.commit()
    stubber = Stubber(client)
    _start(stubber, "q0", [GROUP_A], HOUR, HOUR + 2 * 3600)
    _results(stubber, "q0", "Running", [], 0)
    # after 60 minutes: Timeout, with whatever partial rows (dropped)
    stubber.add_response(
        "get_query_results",
        {
            "status": "Timeout",
            "results": _hour_rows(GROUP_A, HOUR, 1),
            "statistics": {"recordsMatched": 1.0, "recordsScanned": 9.0, "bytesScanned": 5e9},
        },
        {"queryId": "q0"},
    )
    _start(stubber, "q1", [GROUP_A], HOUR, HOUR + 3600)
    _start(stubber, "q2", [GROUP_A], HOUR + 3600, HOUR + 2 * 3600)
    _results(stubber, "q1", "Complete", _hour_rows(GROUP_A, HOUR, 5), 3e9)
    _results(stubber, "q2", "Complete", _hour_rows(GROUP_A, HOUR + 3600, 6), 3e9)
    result = SourceResult(ACCOUNT, "us-east-1", "logs")
    time_ = FakeTime()
    with stubber:
        collect_insights(
            Store(db),
            client,
            ids,
            result,
            start=HOUR,
            end=HOUR + 2 * 3600,
            max_concurrent=10,
            sleep=time_.sleep,
            clock=time_.clock,
        )
    stubber.assert_no_pending_responses()
    assert result.status == "ok" and result.bytes_scanned == 11 * 10**9  # timeouts bill too
    assert result.message == (
        "1 log groups, 1 batches, 3 queries (0 results over 10000 rows split),"
        " 1 timed-out queries split"
    )
    counts = db.conn.execute("SELECT hour, invocations FROM hourly_facts ORDER BY hour")
    assert counts.fetchall() == [(HOUR, 5), (HOUR + 3600, 6)]


def test_timed_out_queries_split_their_window_then_their_log_groups() -> None:
    def windows(job: QueryJob) -> list[tuple[list[str], int, int]]:
        return [(j.log_groups, j.start - HOUR, j.end - HOUR) for j in split_timed_out(job)]

    day = QueryJob(0, [GROUP_A, GROUP_B], HOUR, HOUR + 86400 + 1800, query=SHARED_QUERY)
    assert windows(day) == [
        ([GROUP_A, GROUP_B], 0, 12 * 3600),  # cut at an hour boundary
        ([GROUP_A, GROUP_B], 12 * 3600, 86400 + 1800),
    ]
    assert {j.query for j in split_timed_out(day)} == {SHARED_QUERY}
    assert windows(QueryJob(0, [GROUP_A], HOUR, HOUR + 3600)) == [
        ([GROUP_A], 0, 1800),
        ([GROUP_A], 1800, 3600),
    ]
    minute = QueryJob(0, [GROUP_A, GROUP_B], HOUR, HOUR + 60)
    assert windows(minute) == [([GROUP_A], 0, 60), ([GROUP_B], 0, 60)]
    assert split_timed_out(QueryJob(0, [GROUP_A], HOUR, HOUR + 60)) == []
