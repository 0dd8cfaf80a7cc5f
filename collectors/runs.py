"""The bookkeeping every source shares: its window (explicit, or resumed from the
watermark), the watermark it leaves, and its ``collection_runs`` row."""

from __future__ import annotations

import json
from datetime import datetime, timedelta

from sqlite_utils import Database

from collectors.common import CollectOptions, SourceResult, Store, Target
from lambdascope.timeutil import HOUR_S, hour_floor, to_epoch

DEFAULT_SINCE = timedelta(days=14)
# Re-read this much before the last watermark: CloudWatch and log delivery can be late.
WATERMARK_OVERLAP_S = 2 * HOUR_S
# Logs read from CloudWatch Logs resume at the watermark (the start of the last hour not yet
# complete): Logs Insights bills every byte scanned, so complete hours are not scanned
# again. An hour is complete once a run starts LOGS_SETTLE_S after its end (events delivered
# later are found by collectors.late). The Athena archive keeps the overlap: Firehose
# buffers records before writing them to S3.
SOURCE_OVERLAP_S = {"logs": 0}
LOGS_SETTLE_S = 10 * 60


def resolve_window(
    db: Database, options: CollectOptions, target: Target, source: str, now: datetime
) -> tuple[int, int]:
    """[start, end) in epoch seconds, hour-aligned: explicit, or resume from the watermark.

    The end includes the current partial hour; the watermark only advances to the last
    complete hour, so the next run re-reads it.
    """
    now_s = to_epoch(now)
    end = to_epoch(options.end) if options.end else now_s
    end = hour_floor(end - 1) + HOUR_S if end % HOUR_S else end
    if options.start is not None:
        start = to_epoch(options.start)
    elif options.since is not None:
        start = now_s - int(options.since.total_seconds())
    else:
        row = db.conn.execute(
            "SELECT watermark FROM watermarks WHERE account_id = ? AND region = ? AND source = ?",
            (target.account_id, target.region, source),
        ).fetchone()
        overlap = watermark_overlap_s(options, source)
        start = int(row[0]) - overlap if row else now_s - int(DEFAULT_SINCE.total_seconds())
    return hour_floor(start), end


def watermark_overlap_s(options: CollectOptions, source: str) -> int:
    """Seconds re-read before a source's watermark when a run resumes."""
    if source == "logs" and options.logs_mode == "athena":
        return WATERMARK_OVERLAP_S
    return SOURCE_OVERLAP_S.get(source, WATERMARK_OVERLAP_S)


def save_watermark(
    store: Store, target: Target, source: str, end: int, now: datetime, settle_s: int = 0
) -> None:
    """Advance the watermark to the last hour before ``end`` complete ``settle_s`` ago
    (never backwards)."""
    mark = min(end, hour_floor(to_epoch(now) - settle_s))
    with store.write() as db:
        db.conn.execute(
            "INSERT INTO watermarks (account_id, region, source, watermark, updated_at)"
            " VALUES (?, ?, ?, ?, ?) ON CONFLICT (account_id, region, source) DO UPDATE SET"
            " watermark = MAX(watermark, excluded.watermark), updated_at = excluded.updated_at",
            (target.account_id, target.region, source, mark, to_epoch(now)),
        )


def record_run(store: Store, result: SourceResult, started_at: int, finished_at: int) -> None:
    """One collection_runs row for one account x region x source."""
    if result.failures and result.status == "partial" and result.items == 0:
        result.status = "failed"
    with store.write() as db:
        db.conn.execute(
            "INSERT INTO collection_runs (started_at, finished_at, account_id, region, source,"
            " status, window_start, window_end, items, api_calls, bytes_scanned,"
            " estimated_cost_usd, errors_json, message)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                started_at,
                finished_at,
                result.account_id,
                result.region,
                result.source,
                result.status,
                result.window_start,
                result.window_end,
                result.items,
                result.api_calls,
                result.bytes_scanned,
                round(result.estimated_cost_usd, 6),
                json.dumps(result.errors),
                result.message or None,
            ),
        )
