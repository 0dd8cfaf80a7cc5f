"""Lambda Insights performance events through Logs Insights: one query per window over the
``/aws/lambda-insights`` log group, summed per function x hour x memory in the query (the
CPU share's sums included), stored in ``insights_hourly``. Runs with the ``logs`` source
in Insights mode when the account/region has that log group; it scans (and AWS bills,
$0.005 per GB) the whole group for the window, once per window.
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from typing import Any

from botocore.exceptions import ClientError

from collectors.common import CallCounter, SourceResult, Store, Target, record_failure
from collectors.logs import (
    PRICE_PER_GB_SCANNED_USD,
    QueryJob,
    Sleep,
    hour_of,
    run_queries,
)
from lambdascope.evidence.insights import INSIGHTS_LOG_GROUP

# JSON fields of the performance events are discovered by Logs Insights; the share is
# computed in `fields` first (expressions inside stats() are not allowed everywhere)
QUERY = (
    'filter event_type = "performance" and duration > 0 and ispresent(cpu_total_time)'
    " | fields least(1, cpu_total_time / duration / least(1, total_memory / 1769)) as share"
    " | fields share * share as share_sq"
    " | stats count(*) as invocations, sum(duration) as duration_ms_sum,"
    " sum(cpu_total_time) as cpu_total_ms_sum, sum(share) as share_sum,"
    " sum(share_sq) as share_sq_sum by bin(1h) as hour, function_name, total_memory"
    " | sort hour asc"
)

Row = tuple[str, int, int, int, float, float, float, float]  # name, hour, MB, n, sums


def _float(value: str | None) -> float | None:
    try:
        number = float(value) if value not in (None, "") else None
    except ValueError:
        return None
    return number if number is not None and math.isfinite(number) else None


def transform_rows(rows: Sequence[Sequence[dict[str, str]]]) -> tuple[list[Row], int]:
    """Result rows -> (function, hour, memory MB, invocations, sums) and rows skipped (pure)."""
    out: list[Row] = []
    skipped = 0
    for row in rows:
        fields = {cell["field"]: cell.get("value", "") for cell in row}
        hour = hour_of(fields)
        values = [
            _float(fields.get(k))
            for k in (
                "total_memory",
                "invocations",
                "duration_ms_sum",
                "cpu_total_ms_sum",
                "share_sum",
                "share_sq_sum",
            )
        ]
        name = fields.get("function_name")
        if hour is None or not name or any(v is None for v in values):
            skipped += 1
            continue
        memory, n, d, c, s, sq = (float(v or 0.0) for v in values)
        if memory <= 0 or n <= 0:
            skipped += 1
            continue
        out.append((name, hour, int(memory), int(n), d, c, s, sq))
    return out, skipped


def load_rows(store: Store, target: Target, rows: Sequence[Row]) -> tuple[int, int]:
    """Upsert the hourly sums of the account/region's known functions: (stored, unknown)."""
    stored = unknown = 0
    with store.write() as db:
        ids = {
            str(name): int(fid)
            for fid, name in db.conn.execute(
                "SELECT id, function_name FROM functions WHERE account_id = ? AND region = ?",
                (target.account_id, target.region),
            )
        }
        for name, hour, memory, n, d, c, s, sq in rows:
            fid = ids.get(name)
            if fid is None:
                unknown += 1
                continue
            db.conn.execute(
                "INSERT INTO insights_hourly (function_id, hour, memory_mb, invocations,"
                " duration_ms_sum, cpu_total_ms_sum, cpu_wall_share_sum, cpu_wall_share_sq_sum)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (function_id, hour, memory_mb)"
                " DO UPDATE SET invocations = excluded.invocations,"
                " duration_ms_sum = excluded.duration_ms_sum,"
                " cpu_total_ms_sum = excluded.cpu_total_ms_sum,"
                " cpu_wall_share_sum = excluded.cpu_wall_share_sum,"
                " cpu_wall_share_sq_sum = excluded.cpu_wall_share_sq_sum",
                (fid, hour, memory, n, d, c, s, sq),
            )
            stored += 1
    return stored, unknown


def has_log_group(client: Any) -> bool:
    """Whether the account/region has the Lambda Insights log group (one small call)."""
    page = client.describe_log_groups(logGroupNamePrefix=INSIGHTS_LOG_GROUP)
    return any(g.get("logGroupName") == INSIGHTS_LOG_GROUP for g in page.get("logGroups", []))


def collect(
    store: Store,
    target: Target,
    result: SourceResult,
    counter: CallCounter,
    *,
    start: int,
    end: int,
    sleep: Sleep = time.sleep,
    poll_s: float = 1.0,
    client: Any = None,
) -> int:
    """Hourly CPU-share sums from the account/region's Lambda Insights events over
    [start, end); nothing (and no query) when the log group does not exist. Failures are
    recorded on ``result``. Returns the function-hours stored."""
    client = client or target.client("logs", counter)
    try:
        if not has_log_group(client):
            return 0
        jobs = run_queries(
            client,
            [QueryJob(0, [INSIGHTS_LOG_GROUP], start, end, query=QUERY)],
            max_concurrent=1,
            sleep=sleep,
            poll_s=poll_s,
        )
    except ClientError as exc:
        record_failure(result, client, "StartQuery", exc)
        return 0
    stored = 0
    for job in jobs:
        scanned = job.bytes_scanned
        result.bytes_scanned += scanned
        result.estimated_cost_usd += scanned / 1e9 * PRICE_PER_GB_SCANNED_USD
        if job.status not in ("Complete", "Truncated"):
            result.fail("logs:StartQuery", job.status, f"Lambda Insights query ended {job.status}")
            continue
        rows, skipped = transform_rows(job.rows)
        added, unknown = load_rows(store, target, rows)
        stored += added
        if skipped or unknown:
            result.message += (
                f"; Lambda Insights: {skipped} malformed rows, {unknown} rows of functions"
                " not in the inventory"
            )
    result.message += f"; Lambda Insights: {stored} function-hours"
    return stored
