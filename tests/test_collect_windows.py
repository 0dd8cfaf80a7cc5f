"""Collection windows: explicit, --since, and resuming from the watermark with an overlap."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import boto3
from sqlite_utils import Database

from collectors.common import CollectOptions, Store, Target
from collectors.runs import LOGS_SETTLE_S, WATERMARK_OVERLAP_S, resolve_window, save_watermark
from lambdascope.timeutil import to_epoch

NOW = datetime(2026, 3, 10, 12, 40, tzinfo=UTC)
TARGET = Target(boto3.Session(), "123456789012", "us-east-1")


def test_first_run_takes_fourteen_days_up_to_the_current_partial_hour(db: Database) -> None:
    start, end = resolve_window(db, CollectOptions(), TARGET, "metrics", NOW)
    assert start == to_epoch(datetime(2026, 2, 24, 12, tzinfo=UTC))
    assert end == to_epoch(datetime(2026, 3, 10, 13, tzinfo=UTC))


def test_next_run_resumes_from_the_last_complete_hour_with_overlap(db: Database) -> None:
    _, end = resolve_window(db, CollectOptions(), TARGET, "metrics", NOW)
    save_watermark(Store(db), TARGET, "metrics", end, NOW)
    later = NOW + timedelta(hours=3)
    start, _ = resolve_window(db, CollectOptions(), TARGET, "metrics", later)
    assert start == to_epoch(datetime(2026, 3, 10, 12, tzinfo=UTC)) - WATERMARK_OVERLAP_S
    # Other sources and accounts keep their own watermarks.
    other, _ = resolve_window(db, CollectOptions(), TARGET, "logs", later)
    assert other == to_epoch(datetime(2026, 2, 24, 15, tzinfo=UTC))
    # A watermark never goes backwards (an older explicit window re-collected later).
    save_watermark(Store(db), TARGET, "metrics", to_epoch(NOW) - 86400, later)
    again, _ = resolve_window(db, CollectOptions(), TARGET, "metrics", later)
    assert again == start


def test_explicit_windows_are_hour_aligned(db: Database) -> None:
    options = CollectOptions(
        start=datetime(2026, 3, 1, 5, 30, tzinfo=UTC), end=datetime(2026, 3, 1, 7, 10, tzinfo=UTC)
    )
    assert resolve_window(db, options, TARGET, "logs", NOW) == (
        to_epoch(datetime(2026, 3, 1, 5, tzinfo=UTC)),
        to_epoch(datetime(2026, 3, 1, 8, tzinfo=UTC)),
    )
    since = resolve_window(db, CollectOptions(since=timedelta(hours=6)), TARGET, "logs", NOW)
    assert since == (
        to_epoch(datetime(2026, 3, 10, 6, tzinfo=UTC)),
        to_epoch(NOW) // 3600 * 3600 + 3600,
    )


def test_logs_resume_without_overlap_but_the_athena_archive_keeps_it(db: Database) -> None:
    """Logs read from CloudWatch Logs are billed per byte and their late events are looked
    for separately: they resume at the watermark. Firehose buffers records before they
    reach the Athena archive, so Athena mode re-reads the overlap."""
    _, end = resolve_window(db, CollectOptions(), TARGET, "logs", NOW)
    save_watermark(Store(db), TARGET, "logs", end, NOW, LOGS_SETTLE_S)
    mark = to_epoch(datetime(2026, 3, 10, 12, tzinfo=UTC))  # the hour 12:00 is not complete
    later = NOW + timedelta(hours=1)
    for mode in ("insights", "filter"):
        start, _ = resolve_window(db, CollectOptions(logs_mode=mode), TARGET, "logs", later)
        assert start == mark
    athena = CollectOptions(logs_mode="athena", athena_table="db.t", athena_output="s3://b/")
    start, _ = resolve_window(db, athena, TARGET, "logs", later)
    assert start == mark - WATERMARK_OVERLAP_S
