"""The collection job: collect, prune and report on a schedule (APScheduler 3.x, UTC).

``schedule`` runs a BlockingScheduler, ``serve`` a BackgroundScheduler next to the
dashboard. Jobs are plain callables that receive a :class:`StopFlag`; they check it
between batches so SIGTERM/SIGINT lets the current batch finish and nothing is lost:
every batch commits on its own and the next start resumes from the watermarks.
"""

from __future__ import annotations

import fcntl
import os
import signal
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import FrameType
from typing import IO, Any

from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.schedulers.base import BaseScheduler
from apscheduler.schedulers.blocking import BlockingScheduler
from apscheduler.triggers.base import BaseTrigger
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.interval import IntervalTrigger
from sqlite_utils import Database

from lambdascope.packing import PackResult
from lambdascope.tiers import Progress as TierProgress
from lambdascope.tiers import Spans, TierResult, check_spans, pack_hours
from lambdascope.tiers import move as tier_move
from lambdascope.timeutil import Clock, hour_floor, to_epoch

# A run that wakes up later than this after its due time (e.g. a suspended laptop) still runs once.
MISFIRE_GRACE_S = 15 * 60
PRUNE_BATCH_ROWS = 5_000
# click ``Context.meta`` key under which a job hands its StopFlag to the command it invokes.
STOP_META_KEY = "lambdascope.stop"


class ScheduleError(Exception):
    """A schedule that cannot start (bad trigger, another instance): one clear line."""


class JobInterrupted(Exception):
    """Raised between batches when a stop was requested; the finished batches are kept."""


class StopFlag:
    """Set by SIGTERM/SIGINT (or ``serve`` shutting down); jobs check it between batches."""

    def __init__(self) -> None:
        self._event = threading.Event()

    def set(self) -> None:
        self._event.set()

    def is_set(self) -> bool:
        return self._event.is_set()

    def check(self) -> None:
        """Raise JobInterrupted when a stop was requested."""
        if self._event.is_set():
            raise JobInterrupted("stop requested")


JobFunc = Callable[[StopFlag], str]


@dataclass(frozen=True)
class Job:
    """One scheduled job: ``run(stop)`` returns a one-line summary for the log."""

    name: str
    run: JobFunc
    trigger: BaseTrigger


# ---------------------------------------------------------------- lock


class ScheduleLock:
    """An exclusive ``flock`` on ``<db>.schedule.lock``.

    The OS releases it when the holder dies, so a crashed process never blocks the next start.
    """

    def __init__(self, db_path: Path) -> None:
        self.path = Path(f"{db_path}.schedule.lock")
        self._file: IO[str] | None = None

    def acquire(self) -> None:
        """Take the lock or raise ScheduleError naming the holder's pid."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        handle = open(self.path, "a+", encoding="utf-8")  # noqa: SIM115 - held until release()
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            holder = handle.read().strip() or "unknown"
            handle.close()
            raise ScheduleError(
                f"another lambdascope schedule/serve (pid {holder}) is already running"
                f" on this database (lock {self.path})"
            ) from None
        handle.seek(0)
        handle.truncate()
        handle.write(str(os.getpid()))
        handle.flush()
        self._file = handle

    def release(self) -> None:
        if self._file is not None:
            fcntl.flock(self._file.fileno(), fcntl.LOCK_UN)
            self._file.close()
            self._file = None

    def __enter__(self) -> ScheduleLock:
        self.acquire()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()


# ---------------------------------------------------------------- triggers


def make_trigger(every: str | None, cron: str | None) -> BaseTrigger:
    """``--every 1h`` (interval) or ``--cron "0 * * * *"`` (crontab, UTC) -> trigger."""
    from lambdascope.timeutil import parse_duration

    if every and cron:
        raise ScheduleError("use either --every or --cron, not both")
    if cron:
        try:
            return CronTrigger.from_crontab(cron, timezone=UTC)
        except ValueError as exc:
            raise ScheduleError(f"bad --cron {cron!r}: {exc}") from None
    try:
        interval = parse_duration(every or "1h")
    except ValueError as exc:
        raise ScheduleError(str(exc)) from None
    if interval.total_seconds() < 1:
        raise ScheduleError("--every must be at least 1s")
    return IntervalTrigger(seconds=int(interval.total_seconds()), timezone=UTC)


def daily_trigger(hour: int = 6, minute: int = 0) -> BaseTrigger:
    """Once a day at ``hour:minute`` UTC (the report job)."""
    return CronTrigger(hour=hour, minute=minute, timezone=UTC)


def next_fire_times(trigger: BaseTrigger, start: datetime, count: int) -> list[datetime]:
    """The next ``count`` fire times of ``trigger`` after ``start`` (for previews and tests)."""
    times: list[datetime] = []
    previous: datetime | None = None
    now = start
    for _ in range(count):
        fire = trigger.get_next_fire_time(previous, now)
        if fire is None:
            break
        times.append(fire)
        previous = fire
        now = fire + timedelta(microseconds=1)
    return times


# ---------------------------------------------------------------- runs table


def record_run(
    db: Database,
    source: str,
    *,
    started_at: int,
    finished_at: int,
    status: str,
    items: int = 0,
    message: str | None = None,
    window_start: int | None = None,
    window_end: int | None = None,
) -> None:
    """Add a ``collection_runs`` row (prune and report runs; collectors write their own)."""
    with db.conn:
        db.conn.execute(
            "INSERT INTO collection_runs (started_at, finished_at, source, status, items,"
            " window_start, window_end, message) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (started_at, finished_at, source, status, items, window_start, window_end, message),
        )


# ---------------------------------------------------------------- prune


MIN_KEEP_RAW = timedelta(days=1)


def prune_raw_invocations(
    db: Database, keep: timedelta, *, now: datetime, stop: StopFlag | None = None
) -> int:
    """Delete raw ``invocations`` rows older than ``now - keep`` (rounded down to the
    hour); hourly facts are kept.

    Each hour that loses rows is sealed first (``sealed_hours``): its facts are final, and
    a later ingest of the same logs (a copy, a .gz, an overlapping export) adds nothing to
    it, although the request ids that dedupe it are gone. Deletes in batches of
    PRUNE_BATCH_ROWS, each its own transaction, and records a ``collection_runs`` row with
    source ``prune``. Returns the number of rows deleted. ``keep`` shorter than
    MIN_KEEP_RAW raises ValueError: late timeout and out-of-memory lines are matched
    against recent raw rows.
    """
    if keep < MIN_KEEP_RAW:
        raise ValueError(
            f"keeping raw invocations for less than {MIN_KEEP_RAW.days} day is refused: late"
            " timeout and out-of-memory lines are matched against them"
        )
    started = to_epoch(now)
    cutoff = hour_floor(started - int(keep.total_seconds()))
    deleted = 0
    status = "ok"
    try:
        while True:
            if stop is not None:
                stop.check()
            with db.conn:
                # invocations is WITHOUT ROWID: select a batch by its primary key.
                batch = db.conn.execute(
                    "SELECT function_id, request_id, timestamp FROM invocations"
                    " WHERE timestamp < ? LIMIT ?",
                    (cutoff, PRUNE_BATCH_ROWS),
                ).fetchall()
                db.conn.executemany(
                    "INSERT OR IGNORE INTO sealed_hours (function_id, hour) VALUES (?, ?)",
                    sorted({(fid, hour_floor(stamp)) for fid, _rid, stamp in batch}),
                )
                db.conn.executemany(
                    "DELETE FROM invocations WHERE function_id = ? AND request_id = ?",
                    [(fid, rid) for fid, rid, _stamp in batch],
                )
            deleted += len(batch)
            if len(batch) < PRUNE_BATCH_ROWS:
                break
    except JobInterrupted:
        status = "interrupted"
    record_run(
        db,
        "prune",
        started_at=started,
        finished_at=started,
        status=status,
        items=deleted,
        window_end=cutoff,
        message=f"deleted {deleted} raw invocation rows older than {keep}",
    )
    return deleted


def iso_day(epoch: int) -> str:
    """The UTC date of ``epoch`` (2026-11-04)."""
    return datetime.fromtimestamp(epoch, UTC).date().isoformat()


@dataclass
class PruneSummary:
    """What one prune did: raw rows, the tier move, the space given back."""

    raw_rows: int
    tiers: TierResult
    bytes_given_back: int = 0
    packed: PackResult = field(default_factory=PackResult)

    def line(self, keep_raw: str) -> str:
        """One summary line (the schedule's log, ``store prune``); ``keep_raw`` as the
        user wrote it."""
        verb = "would delete" if self.tiers.dry_run else "deleted"
        hourly = self.tiers.hourly_from
        text = (
            f"{verb} {self.raw_rows:,} raw invocation rows older than {keep_raw},"
            f" {self.tiers.hourly_rows:,} hourly rows before {iso_day(hourly) if hourly else '-'}"
        )
        if self.tiers.deleted.get("packed_hours"):  # days that were packed, gone as a whole
            text += f" (and {self.tiers.deleted['packed_hours']:,} packed function-days)"
        if self.tiers.daily_from:
            text += (
                f", {self.tiers.daily_rows:,} daily rows before {iso_day(self.tiers.daily_from)}"
            )
        if self.packed.function_days:
            verb = "would pack" if self.tiers.dry_run else "packed"
            text += f", {verb} the hours of {self.packed.function_days:,} function-days"
        if self.tiers.dry_run:
            return text + " (dry run: nothing changed)"
        text += f"; {self.bytes_given_back / 1e6:,.1f} MB given back"
        return text + ("; interrupted, run again to finish" if self.tiers.interrupted else "")


def prune_store(
    db: Database,
    spans: Spans,
    *,
    now: datetime,
    stop: StopFlag | None = None,
    progress: TierProgress | None = None,
    dry_run: bool = False,
) -> PruneSummary:
    """Prune raw invocations older than ``spans.keep_raw``, move days older than
    ``spans.keep_hourly`` to the daily tier, delete daily rows older than
    ``spans.keep_daily`` (lambdascope.tiers), then give the freed pages back in short
    incremental-vacuum steps. Raises SpanError for spans that make no sense together."""
    from lambdascope.storeadmin import incremental_vacuum

    check_spans(spans, MIN_KEEP_RAW)
    stopped = None if stop is None else stop.is_set
    if dry_run:
        cutoff = hour_floor(to_epoch(now) - int(spans.keep_raw.total_seconds()))
        raw = int(
            db.conn.execute(
                "SELECT count(*) FROM invocations WHERE timestamp < ?", (cutoff,)
            ).fetchone()[0]
        )
        moved = tier_move(db, spans, now=now, dry_run=True)
        packed = pack_hours(db, spans, now=now, dry_run=True)
        return PruneSummary(raw, moved, packed=packed)
    raw = prune_raw_invocations(db, spans.keep_raw, now=now, stop=stop)
    moved = tier_move(db, spans, now=now, stop=stopped, progress=progress)
    packed = PackResult()
    if not moved.interrupted:
        packed = pack_hours(db, spans, now=now, stop=stopped, progress=progress)
        moved.interrupted = packed.interrupted
    given = incremental_vacuum(db, stop=stopped)
    return PruneSummary(raw, moved, given, packed)


# ---------------------------------------------------------------- running


def run_once(jobs: Sequence[Job], stop: StopFlag, log: Callable[[str], None]) -> bool:
    """Run every job once, in order (``--once``). Returns False when one failed."""
    ok = True
    for job in jobs:
        if stop.is_set():
            break
        ok = _run_job(job, stop, log) and ok
    return ok


@contextmanager
def stop_on_signals(
    stop: StopFlag, log: Callable[[str], None], on_stop: Callable[[], None] | None = None
) -> Iterator[StopFlag]:
    """SIGTERM/SIGINT set ``stop`` (then call ``on_stop`` once) while the block runs.

    The running job sees the flag at its next batch boundary and returns; the previous
    handlers are restored on exit. Only the main thread can install handlers.
    """

    def _on_signal(signum: int, frame: FrameType | None) -> None:
        if stop.is_set():
            return
        log(f"received {signal.Signals(signum).name}: finishing the current batch")
        stop.set()
        if on_stop is not None:
            on_stop()

    previous = {sig: signal.signal(sig, _on_signal) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        yield stop
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def _run_job(job: Job, stop: StopFlag, log: Callable[[str], None]) -> bool:
    log(f"{job.name}: started")
    try:
        summary = job.run(stop)
    except JobInterrupted:
        log(f"{job.name}: stopped after its current batch")
        return True
    except Exception as exc:  # a failing run is logged; the schedule keeps going
        log(f"{job.name}: failed: {exc}")
        return False
    log(f"{job.name}: {summary}")
    return True


def build_scheduler(
    jobs: Sequence[Job],
    stop: StopFlag,
    log: Callable[[str], None],
    *,
    background: bool = False,
    misfire_grace_s: int = MISFIRE_GRACE_S,
) -> BaseScheduler:
    """A UTC scheduler with one entry per job: coalesced, never overlapping itself."""
    job_defaults: dict[str, Any] = {
        "coalesce": True,
        "max_instances": 1,
        "misfire_grace_time": misfire_grace_s,
    }
    scheduler: BaseScheduler
    if background:
        scheduler = BackgroundScheduler(timezone=UTC, job_defaults=job_defaults)
    else:
        scheduler = BlockingScheduler(timezone=UTC, job_defaults=job_defaults)
    # One worker per job: jobs never overlap themselves (max_instances=1) and
    # collect/prune/report share the single SQLite writer through busy_timeout.
    for job in jobs:
        scheduler.add_job(_run_job, job.trigger, args=(job, stop, log), id=job.name, name=job.name)
    return scheduler


def run_blocking(
    jobs: Sequence[Job],
    log: Callable[[str], None],
    *,
    run_first: bool = True,
    clock: Clock | None = None,
) -> None:
    """Run the jobs on their triggers until SIGTERM/SIGINT, then exit cleanly.

    With ``run_first`` every job also runs once right away (a fresh store fills at once).
    """
    stop = StopFlag()
    scheduler = build_scheduler(jobs, stop, log)
    now = (clock or (lambda: datetime.now(UTC)))()
    if run_first:
        for job in jobs:
            scheduler.modify_job(job.name, next_run_time=now)

    def _shutdown() -> None:
        # Runs on the main thread while the loop waits: joins the worker that is
        # finishing its batch, then the loop sees the shutdown and start() returns.
        scheduler.shutdown(wait=True)

    with stop_on_signals(stop, log, _shutdown):
        log("scheduler started: " + ", ".join(f"{job.name} {job.trigger}" for job in jobs))
        scheduler.start()
    log("scheduler stopped")
