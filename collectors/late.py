"""Late log events: re-read only the log groups, and only the hours, that received events
after those hours were read.

A resumed logs run reads from its watermark on; the hours before it were read once, at
least LOGS_SETTLE_S after they ended. An event delivered later than that would be missed.
DescribeLogStreams (ordered by last event time, newest first) tells, per stream, the time
of its first and last event and when it last received data (``lastIngestionTime``). A
stream whose last event lies before the watermark but which received data more than
LOGS_SETTLE_S after the end of that event's hour got at least one event too late for the
run that completed the hour: the hours from its first to its last event are read again for
that log group only (rows of a log group x hour are replaced whole, so a re-read is exact).

Both stream times are eventually consistent (AWS: "typically updates in less than an hour
from ingestion"), so streams that received data since one hour before the previous run are
considered; a stream can be re-read by two consecutive runs, never missed for that reason.
Events older than LATE_HORIZON_S before the watermark are not looked for.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from typing import Any

from lambdascope import packing
from lambdascope.timeutil import HOUR_S, hour_floor

LATE_HORIZON_S = 24 * HOUR_S
# Stream times lag ingestion by up to about an hour (eventual consistency).
CONSISTENCY_S = HOUR_S


def recent_streams(client: Any, group: str, horizon: int) -> Iterator[dict[str, Any]]:
    """Streams of ``group`` whose last event is at or after ``horizon`` (epoch s), newest first."""
    paginator = client.get_paginator("describe_log_streams")
    for page in paginator.paginate(logGroupName=group, orderBy="LastEventTime", descending=True):
        for stream in page.get("logStreams", []):
            last = stream.get("lastEventTimestamp")
            if last is None or last // 1000 < horizon:
                return
            yield stream


def late_hours(
    streams: Sequence[dict[str, Any]],
    *,
    watermark: int,
    previous_run: int,
    settle_s: int,
) -> list[tuple[int, int]]:
    """[start, end) spans of hours before ``watermark`` to read again (pure, merged).

    ``previous_run`` is when the run that moved the watermark there started (epoch s).
    """
    horizon = watermark - LATE_HORIZON_S
    spans: list[tuple[int, int]] = []
    for stream in streams:
        last_ms, ingested_ms = stream.get("lastEventTimestamp"), stream.get("lastIngestionTime")
        if last_ms is None or ingested_ms is None:
            continue
        last, ingested = int(last_ms) // 1000, int(ingested_ms) // 1000
        first = int(stream.get("firstEventTimestamp") or last_ms) // 1000
        if not horizon <= last < watermark:
            continue  # still being written in the hours this run reads, or too old
        if ingested <= hour_floor(last) + HOUR_S + settle_s:
            continue  # everything arrived in time for the run that completed its hours
        if ingested <= previous_run - CONSISTENCY_S:
            continue  # seen (and re-read) by an earlier run
        spans.append((hour_floor(max(first, horizon)), min(watermark, hour_floor(last) + HOUR_S)))
    merged: list[tuple[int, int]] = []
    for start, end in sorted(spans):
        if merged and start <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], end))
        else:
            merged.append((start, end))
    return merged


def previous_logs_run(store: Any, account_id: str, region: str) -> tuple[int, int] | None:
    """(watermark, time of the run that set it) of an account x region's logs, if any."""
    with store.lock:
        row = store.db.conn.execute(
            "SELECT watermark, updated_at FROM watermarks WHERE account_id = ? AND region = ?"
            " AND source = 'logs'",
            (account_id, region),
        ).fetchone()
    return (int(row[0]), int(row[1])) if row else None


def recently_active(store: Any, account_id: str, region: str, since: int, until: int) -> set[int]:
    """Functions with REPORT facts in [since, until) or listed with invocations since then."""
    with store.lock:
        rows = store.db.conn.execute(
            "SELECT DISTINCT h.function_id FROM hourly_facts h JOIN functions f"
            " ON f.id = h.function_id WHERE f.account_id = ? AND f.region = ? AND h.hour >= ?"
            " AND h.hour < ? UNION SELECT a.function_id FROM metric_activity a JOIN functions f"
            " ON f.id = a.function_id WHERE f.account_id = ? AND f.region = ?"
            " AND a.metric_name = 'Invocations' AND a.active_at >= ?",
            (account_id, region, since, until, account_id, region, since),
        ).fetchall()
        if packing.has_packing(store.db.conn):  # facts of packed days (a long pause)
            rows += store.db.conn.execute(
                "SELECT p.function_id FROM packed_hours p JOIN functions f"
                " ON f.id = p.function_id WHERE f.account_id = ? AND f.region = ?"
                " AND p.day >= ? AND p.day < ? AND (p.last_local_hour >= ?"
                " OR p.last_insights_hour >= ?) AND p.first_hour < ?",
                (account_id, region, since - since % 86400, until, since, since, until),
            ).fetchall()
    return {int(r[0]) for r in rows}


# reread(start, end, log groups): read those log groups again over [start, end)
Reread = Callable[[int, int, set[str]], None]


def reread_late(
    store: Any,
    client: Any,
    target: Any,
    result: Any,
    writers: dict[str, set[int]],
    reread: Reread,
    settle_s: int,
) -> None:
    """Re-read the hours before the logs watermark that received late events, for the log
    groups (``writers``: log group -> ids of the functions writing to it) of functions active
    in the day before it, one DescribeLogStreams listing each; ``reread`` reads a set of
    log groups over a window the way the run read its own window."""
    previous = previous_logs_run(store, target.account_id, target.region)
    if previous is None:
        return
    watermark, previous_run = previous
    horizon = watermark - LATE_HORIZON_S
    active = recently_active(store, target.account_id, target.region, horizon, watermark)
    spans: dict[tuple[int, int], set[str]] = {}
    for group, ids in sorted(writers.items()):
        if not ids & active:
            continue
        streams = list(recent_streams(client, group, horizon))
        found = late_hours(
            streams, watermark=watermark, previous_run=previous_run, settle_s=settle_s
        )
        for span in found:
            spans.setdefault(span, set()).add(group)
    if not spans:
        return
    message = result.message
    for (start, end), chosen in sorted(spans.items()):
        reread(start, end, chosen)
    groups = set().union(*spans.values())
    hours = sum((end - start) // HOUR_S for start, end in spans)
    result.message = f"{message}; late events: {len(groups)} log groups re-read over {hours} hours"
