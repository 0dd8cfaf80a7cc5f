"""The lambdascope SQLite store: opening, pragmas and append-only schema migrations.

Conventions (see README "Data model"):
- every timestamp is INTEGER epoch seconds, UTC; every hour column is the start of
  the UTC hour;
- unknown account or region (local logs) is the empty string, so natural keys stay unique;
- units are in column names; distributions are histograms stored as bytes
  (lambdascope.histcodec; JSON text before migration 0015).
"""

from __future__ import annotations

import os
import sqlite3
import sys
import zlib
from pathlib import Path

from sqlite_utils import Database, Migrations

from lambdascope import compaction, histcodec

DEFAULT_DB_ENV = "LAMBDASCOPE_DB"
BUSY_TIMEOUT_MS = 30_000

migrations = Migrations("lambdascope")


def default_db_path() -> Path:
    """``$LAMBDASCOPE_DB``, else ``~/.local/share/lambdascope/lambdascope.db``."""
    env = os.environ.get(DEFAULT_DB_ENV)
    if env:
        return Path(env)
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "lambdascope" / "lambdascope.db"


class StoreError(Exception):
    """A database that cannot be opened or is not a lambdascope store (one clear line)."""


PAGE_SIZE = 16_384


def open_db(path: str | Path, readonly: bool = False) -> Database:
    """Open (and, unless read-only, create and migrate) the store at ``path``.

    Read-only opens use ``file:...?mode=ro`` and never block writers (WAL).
    Raises StoreError with a one-line message on failure.
    """
    db_path = Path(path)
    try:
        if readonly:
            if not db_path.exists():
                raise StoreError(
                    f"no database at {db_path} (run `lambdascope ingest` or `collect` first)"
                )
            conn = _connect_readonly(db_path)
            if not _check_schema(conn, db_path):
                conn.close()
                raise StoreError(
                    f"{db_path} holds no lambdascope data yet"
                    " (run `lambdascope ingest` or `collect` first)"
                )
            histcodec.register(conn)
            return Database(conn)
        db_path.parent.mkdir(parents=True, exist_ok=True)
        conn = sqlite3.connect(str(db_path), check_same_thread=False)
        conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
        _check_schema(conn, db_path)  # before any pragma changes another application's file
        # a new store gets larger pages (only possible before its first table and WAL):
        # invocations land all over a (function, request id) b-tree, and with 16 KiB pages
        # an ingest writes about 10 % faster; existing stores keep theirs
        conn.execute(f"PRAGMA page_size = {PAGE_SIZE}")
        # and gives pruned space back in small steps (lambdascope.storeadmin)
        conn.execute("PRAGMA auto_vacuum = INCREMENTAL")
        conn.execute("PRAGMA journal_mode = WAL")
        conn.execute("PRAGMA synchronous = NORMAL")
        conn.execute("PRAGMA foreign_keys = ON")
        histcodec.register(conn)
        db = Database(conn)
        _apply_migrations(db)
        return db
    except sqlite3.DatabaseError as exc:
        raise StoreError(f"cannot open database {db_path}: {exc}") from None
    except OSError as exc:
        raise StoreError(f"cannot open database {db_path}: {exc.strerror or exc}") from None


def _apply_migrations(db: Database) -> None:
    """Apply pending migrations. Two processes opening an older store at once both run a
    migration that is not one transaction (0015); the second to record it as applied
    fails on the unique record, and then goes on with the migrations after it."""
    for attempt in range(3):
        try:
            migrations.apply(db)
            return
        except sqlite3.IntegrityError:
            if attempt == 2 or db.conn.in_transaction:
                raise


def _check_schema(conn: sqlite3.Connection, db_path: Path) -> bool:
    """True for a lambdascope store, False for a database without tables; raises
    StoreError for another application's SQLite file, which is never written to."""
    tables = sorted(
        name
        for (name,) in conn.execute(
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'"
        )
    )
    if not tables:
        return False
    if migrations.migrations_table in tables and conn.execute(
        f"SELECT 1 FROM {migrations.migrations_table} WHERE migration_set = ? LIMIT 1",
        (migrations.name,),
    ).fetchone():
        return True
    shown = ", ".join(tables[:3]) + (f" and {len(tables) - 3} more" if len(tables) > 3 else "")
    conn.close()
    raise StoreError(
        f"{db_path} is not a lambdascope store (it holds another application's tables:"
        f" {shown}); nothing was changed: give --db a new file or a lambdascope store"
    )


def _connect_readonly(db_path: Path) -> sqlite3.Connection:
    """A read-only connection that has read the file's header (a file that is not SQLite
    fails here, with its name, rather than at the first query).

    A store in WAL mode in a folder this user cannot write to (a shared or mounted
    directory) cannot be opened with ``mode=ro`` alone: SQLite needs to create the
    ``-shm`` file next to it. Without a ``-wal`` file no writer is active and every
    committed page is in the main file, so it is then opened ``immutable`` (no locks, no
    ``-shm``). With a ``-wal`` file left beside it, immutable would skip the commits in it,
    so that case is refused with the reason.
    """
    uri = db_path.resolve().as_uri()
    conn = _probe(f"{uri}?mode=ro")
    if isinstance(conn, sqlite3.Connection):
        return conn
    wal = Path(f"{db_path}-wal")
    if _primary_code(conn) not in _CANNOT_OPEN or os.access(db_path.parent, os.W_OK):
        raise conn
    if wal.exists() and wal.stat().st_size > 0:
        raise StoreError(
            f"cannot read {db_path} read-only: its folder is not writable and its last"
            f" writes are still in {wal.name} (a writer is running, or stopped without"
            " closing the store); run any lambdascope command on it with write access"
            " once, or copy the folder somewhere writable"
        )
    immutable = _probe(f"{uri}?mode=ro&immutable=1")
    if isinstance(immutable, sqlite3.Connection):
        return immutable
    raise immutable


_CANNOT_OPEN = frozenset({sqlite3.SQLITE_CANTOPEN, sqlite3.SQLITE_READONLY})


def _primary_code(error: sqlite3.Error) -> int:
    """SQLite's primary result code of an error (the low byte of the extended one)."""
    return int(getattr(error, "sqlite_errorcode", 0) or 0) & 0xFF


def _probe(uri: str) -> sqlite3.Connection | sqlite3.Error:
    """Connect to ``uri`` and read the schema; the error instead of raising it."""
    conn = sqlite3.connect(uri, uri=True, check_same_thread=False)
    try:
        conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
        conn.execute("PRAGMA query_only = ON")
        conn.execute("SELECT count(*) FROM sqlite_master").fetchone()
    except sqlite3.Error as exc:
        conn.close()
        return exc
    return conn


def function_id(
    db: Database,
    function_name: str,
    account_id: str = "",
    region: str = "",
    *,
    seen_at: int | None = None,
    architecture: str | None = None,
) -> int:
    """Id of a function by its natural key, inserting it when new.

    ``seen_at`` (epoch seconds) widens first_seen/last_seen. ``architecture`` is only
    filled when the row has none (inventory data always wins).
    """
    conn = db.conn
    conn.execute(
        "INSERT INTO functions"
        " (account_id, region, function_name, architecture, first_seen, last_seen)"
        " VALUES (?, ?, ?, ?, ?, ?)"
        " ON CONFLICT (account_id, region, function_name) DO UPDATE SET"
        "  first_seen = CASE WHEN excluded.first_seen IS NULL THEN first_seen"
        "    WHEN first_seen IS NULL OR excluded.first_seen < first_seen THEN excluded.first_seen"
        "    ELSE first_seen END,"
        "  last_seen = CASE WHEN excluded.last_seen IS NULL THEN last_seen"
        "    WHEN last_seen IS NULL OR excluded.last_seen > last_seen THEN excluded.last_seen"
        "    ELSE last_seen END,"
        "  architecture = COALESCE(architecture, excluded.architecture)",
        (account_id, region, function_name, architecture, seen_at, seen_at),
    )
    row = conn.execute(
        "SELECT id FROM functions WHERE account_id = ? AND region = ? AND function_name = ?",
        (account_id, region, function_name),
    ).fetchone()
    return int(row[0])


def get_setting(db: Database, key: str, default: str | None = None) -> str | None:
    """A value from the settings table."""
    row = db.conn.execute("SELECT value FROM settings WHERE key = ?", (key,)).fetchone()
    return default if row is None else str(row[0])


def set_setting(db: Database, key: str, value: str) -> None:
    """Store a value in the settings table."""
    with db.conn:
        db.conn.execute(
            "INSERT INTO settings (key, value) VALUES (?, ?)"
            " ON CONFLICT (key) DO UPDATE SET value = excluded.value",
            (key, value),
        )


def _run_script(db: Database, script: str) -> None:
    """Run a multi-statement script inside the migration's transaction (executescript()
    would COMMIT it): statements are split where sqlite3 says they are complete, so
    trigger bodies stay whole."""
    statement = ""
    for line in script.splitlines(keepends=True):
        statement += line
        if sqlite3.complete_statement(statement):
            db.conn.execute(statement)
            statement = ""
    if statement.strip():
        db.conn.execute(statement)


@migrations(name="0001_initial")
def _m0001_initial(db: Database) -> None:
    _run_script(db, _SCHEMA_0001)


_SCHEMA_0001 = """
CREATE TABLE functions (
    id INTEGER PRIMARY KEY,
    account_id TEXT NOT NULL DEFAULT '',
    region TEXT NOT NULL DEFAULT '',
    function_name TEXT NOT NULL,
    function_arn TEXT,
    runtime TEXT,
    architecture TEXT,
    memory_mb INTEGER,
    timeout_s INTEGER,
    ephemeral_storage_mb INTEGER,
    code_size_bytes INTEGER,
    package_type TEXT,
    handler TEXT,
    description TEXT,
    role_arn TEXT,
    last_modified INTEGER,
    state TEXT,
    last_update_status TEXT,
    snap_start TEXT,
    layers_json TEXT,
    tags_json TEXT,
    reserved_concurrency INTEGER,
    provisioned_concurrency INTEGER,
    log_group TEXT,
    log_format TEXT,
    first_seen INTEGER,
    last_seen INTEGER,
    inventory_at INTEGER,
    deleted_at INTEGER,
    UNIQUE (account_id, region, function_name)
) STRICT;
CREATE TABLE function_versions (
    function_id INTEGER NOT NULL REFERENCES functions(id) ON DELETE CASCADE,
    version TEXT NOT NULL,
    code_size_bytes INTEGER,
    last_modified INTEGER,
    runtime TEXT,
    memory_mb INTEGER,
    description TEXT,
    deleted_at INTEGER,
    PRIMARY KEY (function_id, version)
) STRICT;
CREATE TABLE function_aliases (
    function_id INTEGER NOT NULL REFERENCES functions(id) ON DELETE CASCADE,
    alias_name TEXT NOT NULL,
    function_version TEXT NOT NULL,
    routing_json TEXT,
    description TEXT,
    PRIMARY KEY (function_id, alias_name)
) STRICT;
CREATE TABLE event_source_mappings (
    uuid TEXT PRIMARY KEY,
    function_id INTEGER NOT NULL REFERENCES functions(id) ON DELETE CASCADE,
    event_source_arn TEXT,
    state TEXT,
    batch_size INTEGER,
    last_modified INTEGER
) STRICT;
CREATE TABLE function_urls (
    function_id INTEGER NOT NULL REFERENCES functions(id) ON DELETE CASCADE,
    qualifier TEXT NOT NULL DEFAULT '',
    url TEXT NOT NULL,
    auth_type TEXT,
    PRIMARY KEY (function_id, qualifier)
) STRICT;
CREATE TABLE account_settings (
    account_id TEXT NOT NULL,
    region TEXT NOT NULL,
    code_storage_bytes INTEGER,
    code_storage_limit_bytes INTEGER,
    concurrent_executions_limit INTEGER,
    unreserved_concurrent_executions INTEGER,
    function_count INTEGER,
    updated_at INTEGER,
    PRIMARY KEY (account_id, region)
) STRICT;
CREATE TABLE invocations (
    function_id INTEGER NOT NULL REFERENCES functions(id) ON DELETE CASCADE,
    request_id TEXT NOT NULL,
    timestamp INTEGER NOT NULL,
    duration_ms REAL,
    billed_duration_ms REAL,
    memory_mb INTEGER,
    max_memory_used_mb INTEGER,
    init_duration_ms REAL,
    restore_duration_ms REAL,
    billed_restore_duration_ms REAL,
    status TEXT,
    error_type TEXT,
    out_of_memory INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (function_id, request_id)
) STRICT, WITHOUT ROWID;
CREATE INDEX invocations_by_time ON invocations (function_id, timestamp);
CREATE TABLE hourly_facts (
    function_id INTEGER NOT NULL REFERENCES functions(id) ON DELETE CASCADE,
    hour INTEGER NOT NULL,
    memory_mb INTEGER NOT NULL,
    source TEXT NOT NULL,
    invocations INTEGER NOT NULL DEFAULT 0,
    errors INTEGER NOT NULL DEFAULT 0,
    timeouts INTEGER NOT NULL DEFAULT 0,
    out_of_memory INTEGER NOT NULL DEFAULT 0,
    cold_starts INTEGER NOT NULL DEFAULT 0,
    duration_ms_sum REAL NOT NULL DEFAULT 0,
    duration_ms_max REAL,
    billed_duration_ms_sum REAL NOT NULL DEFAULT 0,
    max_memory_used_mb_max INTEGER,
    init_duration_ms_sum REAL NOT NULL DEFAULT 0,
    init_duration_ms_max REAL,
    restore_duration_ms_sum REAL NOT NULL DEFAULT 0,
    billed_restore_duration_ms_sum REAL NOT NULL DEFAULT 0,
    duration_hist TEXT NOT NULL DEFAULT '{}',
    billed_duration_hist TEXT NOT NULL DEFAULT '{}',
    max_memory_used_hist TEXT NOT NULL DEFAULT '{}',
    init_duration_hist TEXT NOT NULL DEFAULT '{}',
    PRIMARY KEY (function_id, hour, memory_mb, source)
) STRICT, WITHOUT ROWID;
CREATE INDEX hourly_facts_by_hour ON hourly_facts (hour);
CREATE TABLE hourly_metrics (
    function_id INTEGER NOT NULL REFERENCES functions(id) ON DELETE CASCADE,
    hour INTEGER NOT NULL,
    invocations REAL,
    errors REAL,
    throttles REAL,
    duration_avg_ms REAL,
    duration_p50_ms REAL,
    duration_p95_ms REAL,
    duration_p99_ms REAL,
    duration_max_ms REAL,
    concurrent_executions_max REAL,
    iterator_age_max_ms REAL,
    async_events_dropped REAL,
    dead_letter_errors REAL,
    destination_delivery_failures REAL,
    provisioned_concurrency_spillover_invocations REAL,
    PRIMARY KEY (function_id, hour)
) STRICT, WITHOUT ROWID;
CREATE INDEX hourly_metrics_by_hour ON hourly_metrics (hour);
CREATE TABLE ingested_files (
    path TEXT PRIMARY KEY,
    size_bytes INTEGER NOT NULL,
    mtime INTEGER NOT NULL,
    head_sha256 TEXT NOT NULL,
    offset_bytes INTEGER NOT NULL DEFAULT 0,
    lines INTEGER NOT NULL DEFAULT 0,
    reports INTEGER NOT NULL DEFAULT 0,
    skipped INTEGER NOT NULL DEFAULT 0,
    completed INTEGER NOT NULL DEFAULT 0,
    function_name TEXT,
    updated_at INTEGER NOT NULL
) STRICT;
CREATE TABLE collection_runs (
    id INTEGER PRIMARY KEY,
    started_at INTEGER NOT NULL,
    finished_at INTEGER,
    account_id TEXT NOT NULL DEFAULT '',
    region TEXT NOT NULL DEFAULT '',
    source TEXT NOT NULL,
    status TEXT NOT NULL,
    window_start INTEGER,
    window_end INTEGER,
    items INTEGER NOT NULL DEFAULT 0,
    api_calls INTEGER NOT NULL DEFAULT 0,
    bytes_scanned INTEGER NOT NULL DEFAULT 0,
    estimated_cost_usd REAL NOT NULL DEFAULT 0,
    errors_json TEXT NOT NULL DEFAULT '[]',
    message TEXT
) STRICT;
CREATE INDEX collection_runs_by_time ON collection_runs (started_at);
CREATE TABLE watermarks (
    account_id TEXT NOT NULL,
    region TEXT NOT NULL,
    source TEXT NOT NULL,
    watermark INTEGER NOT NULL,
    updated_at INTEGER NOT NULL,
    PRIMARY KEY (account_id, region, source)
) STRICT;
CREATE TABLE settings (
    key TEXT PRIMARY KEY,
    value TEXT NOT NULL
) STRICT
"""


@migrations(name="0002_rollups")
def _m0002_rollups(db: Database) -> None:
    _run_script(db, _SCHEMA_0002.replace("{hour_triggers}", _hour_triggers()))


def _hour_triggers() -> str:
    """Triggers marking the (function, day) of every row written to the hourly tables."""

    def mark(row: str) -> str:
        day = f"{row}.hour - {row}.hour % 86400"
        return (
            f"    INSERT INTO rollup_dirty SELECT {row}.function_id, {day}\n"
            f"    WHERE NOT EXISTS (SELECT 1 FROM rollup_dirty"
            f" WHERE function_id = {row}.function_id AND day = {day});\n"
        )

    script = ""
    for table in ("hourly_facts", "hourly_metrics"):
        for event, rows in (("INSERT", ("NEW",)), ("UPDATE", ("OLD", "NEW")), ("DELETE", ("OLD",))):
            script += (
                f"CREATE TRIGGER {table}_dirty_{event.lower()} AFTER {event} ON {table} BEGIN\n"
                + "".join(mark(row) for row in rows)
                + "END;\n"
            )
    return script


# Derived tables (see lambdascope.rollup): the merged view per function x hour x memory
# without histograms, and per function x UTC day x memory with merged histograms. Every
# write to a base table marks the (function, day) it touches in rollup_dirty through a
# trigger; lambdascope.rollup.refresh() recomputes those days, and readers fall back to
# the base tables while any day is dirty. Existing data is marked dirty here. The
# triggers insert only missing marks (never a conflict), because a conflict clause of the
# statement that fires a trigger would override one written in the trigger.
_SCHEMA_0002 = """
CREATE TABLE rollup_dirty (
    function_id INTEGER NOT NULL,
    day INTEGER NOT NULL,
    PRIMARY KEY (function_id, day)
) STRICT, WITHOUT ROWID;
CREATE TABLE merged_hourly (
    function_id INTEGER NOT NULL REFERENCES functions(id) ON DELETE CASCADE,
    hour INTEGER NOT NULL,
    memory_mb INTEGER,
    source TEXT NOT NULL,
    invocations REAL NOT NULL,
    errors REAL NOT NULL,
    throttles REAL NOT NULL,
    timeouts INTEGER NOT NULL,
    out_of_memory INTEGER NOT NULL,
    cold_starts INTEGER NOT NULL,
    log_invocations INTEGER NOT NULL,
    duration_ms_sum REAL NOT NULL,
    duration_ms_max REAL,
    billed_duration_ms_sum REAL NOT NULL,
    max_memory_used_mb_max INTEGER,
    init_duration_ms_sum REAL NOT NULL,
    init_duration_ms_max REAL,
    restore_duration_ms_sum REAL NOT NULL,
    billed_restore_duration_ms_sum REAL NOT NULL,
    has_metrics INTEGER NOT NULL,
    duration_p50_ms REAL,
    duration_p95_ms REAL,
    duration_p99_ms REAL,
    duration_max_ms REAL
) STRICT;
CREATE INDEX merged_hourly_by_function ON merged_hourly (function_id, hour);
CREATE INDEX merged_hourly_by_hour ON merged_hourly (hour);
CREATE TABLE daily_facts (
    function_id INTEGER NOT NULL REFERENCES functions(id) ON DELETE CASCADE,
    day INTEGER NOT NULL,
    memory_mb INTEGER,
    invocations REAL NOT NULL,
    errors REAL NOT NULL,
    throttles REAL NOT NULL,
    timeouts INTEGER NOT NULL,
    out_of_memory INTEGER NOT NULL,
    cold_starts INTEGER NOT NULL,
    log_invocations INTEGER NOT NULL,
    duration_ms_sum REAL NOT NULL,
    duration_ms_max REAL,
    billed_duration_ms_sum REAL NOT NULL,
    max_memory_used_mb_max INTEGER,
    init_duration_ms_sum REAL NOT NULL,
    init_duration_ms_max REAL,
    restore_duration_ms_sum REAL NOT NULL,
    billed_restore_duration_ms_sum REAL NOT NULL,
    active_first_hour INTEGER,
    active_last_hour INTEGER,
    hours INTEGER NOT NULL,
    has_local INTEGER NOT NULL,
    has_insights INTEGER NOT NULL,
    has_metrics INTEGER NOT NULL,
    cw_p50_weighted REAL,
    cw_p50_weight REAL,
    cw_p95_max REAL,
    cw_p99_max REAL,
    cw_max REAL,
    duration_hist TEXT NOT NULL DEFAULT '{}',
    billed_duration_hist TEXT NOT NULL DEFAULT '{}',
    max_memory_used_hist TEXT NOT NULL DEFAULT '{}',
    init_duration_hist TEXT NOT NULL DEFAULT '{}'
) STRICT;
CREATE INDEX daily_facts_by_function ON daily_facts (function_id, day);
CREATE INDEX daily_facts_by_day ON daily_facts (day, function_id, memory_mb);
CREATE INDEX daily_facts_activity
    ON daily_facts (function_id, active_last_hour, duration_ms_max, cw_max);
{hour_triggers}CREATE TRIGGER functions_memory_dirty AFTER UPDATE OF memory_mb ON functions
WHEN OLD.memory_mb IS NOT NEW.memory_mb BEGIN
    INSERT INTO rollup_dirty
    SELECT DISTINCT m.function_id, m.hour - m.hour % 86400 FROM hourly_metrics m
    WHERE m.function_id = NEW.id AND NOT EXISTS (SELECT 1 FROM rollup_dirty d
        WHERE d.function_id = NEW.id AND d.day = m.hour - m.hour % 86400);
END;
INSERT OR IGNORE INTO rollup_dirty
SELECT DISTINCT function_id, hour - hour % 86400 FROM hourly_facts
UNION SELECT DISTINCT function_id, hour - hour % 86400 FROM hourly_metrics
"""


# Hours whose raw invocation rows the prune job deleted: their local hourly facts are
# final, since the request ids that would tell a repeated report from a new one are gone.
_SCHEMA_0003 = """
CREATE TABLE sealed_hours (
    function_id INTEGER NOT NULL REFERENCES functions(id) ON DELETE CASCADE,
    hour INTEGER NOT NULL,
    PRIMARY KEY (function_id, hour)
) STRICT, WITHOUT ROWID;
INSERT INTO sealed_hours (function_id, hour)
SELECT f.function_id, f.hour FROM hourly_facts f
WHERE f.source = 'local'
GROUP BY f.function_id, f.hour
HAVING SUM(f.invocations) > (
    SELECT COUNT(*) FROM invocations i
    WHERE i.function_id = f.function_id AND i.timestamp >= f.hour AND i.timestamp < f.hour + 3600
)
"""


@migrations(name="0003_sealed_hours")
def _m0003_sealed_hours(db: Database) -> None:
    # stores pruned before this table existed: an hour whose local facts count more
    # invocations than its raw rows lost some to a prune
    _run_script(db, _SCHEMA_0003)


@migrations(name="0007_cli_robustness")
def _m0007_cli_robustness(db: Database) -> None:
    # The merged view's log-derived errors now include timeouts (as CloudWatch's Errors
    # does): the days with timeouts are recomputed by the next rollup refresh.
    db.conn.execute(
        "INSERT OR IGNORE INTO rollup_dirty"
        " SELECT DISTINCT function_id, hour - hour % 86400 FROM hourly_facts"
        " WHERE timeouts > 0"
    )


@migrations(name="0009_alerts")
def _m0009_alerts(db: Database) -> None:
    _run_script(db, _SCHEMA_0009)


# Alerts (lambdascope.alerts): one row per alert episode; deliveries per destination and
# kind ('open' or 'resolved'), pending until delivered_at is set after a successful send;
# a check sending them holds them (claimed_until) so a concurrent check does not.
# Destinations are known by a hash of their URL (secrets in URLs are never stored) and a
# redacted form for display.
_SCHEMA_0009 = """
CREATE TABLE alerts (
    id INTEGER PRIMARY KEY,
    rule TEXT NOT NULL,
    alert_key TEXT NOT NULL,
    function_id INTEGER REFERENCES functions(id) ON DELETE SET NULL,
    function_name TEXT,
    account_id TEXT NOT NULL DEFAULT '',
    region TEXT NOT NULL DEFAULT '',
    severity TEXT NOT NULL,
    summary TEXT NOT NULL,
    body TEXT,
    details_json TEXT NOT NULL DEFAULT '{}',
    window_start INTEGER,
    window_end INTEGER,
    first_seen INTEGER NOT NULL,
    last_seen INTEGER NOT NULL,
    resolved_at INTEGER,
    announced INTEGER NOT NULL DEFAULT 1,
    notify_resolved INTEGER NOT NULL DEFAULT 1
) STRICT;
CREATE UNIQUE INDEX alerts_open_key ON alerts (rule, alert_key) WHERE resolved_at IS NULL;
CREATE INDEX alerts_by_key ON alerts (rule, alert_key);
CREATE INDEX alerts_by_time ON alerts (first_seen);
CREATE INDEX alerts_by_function ON alerts (function_id, first_seen);
CREATE TABLE alert_destinations (
    id TEXT PRIMARY KEY,
    display TEXT NOT NULL,
    name TEXT,
    first_used INTEGER NOT NULL,
    last_used INTEGER NOT NULL
) STRICT;
CREATE TABLE alert_deliveries (
    alert_id INTEGER NOT NULL REFERENCES alerts(id) ON DELETE CASCADE,
    destination_id TEXT NOT NULL REFERENCES alert_destinations(id),
    kind TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    delivered_at INTEGER,
    attempts INTEGER NOT NULL DEFAULT 0,
    last_attempt_at INTEGER,
    last_error TEXT,
    claimed_until INTEGER,
    PRIMARY KEY (alert_id, destination_id, kind)
) STRICT;
CREATE INDEX alert_deliveries_pending ON alert_deliveries (destination_id, delivered_at);
CREATE TABLE alert_checks (
    id INTEGER PRIMARY KEY,
    started_at INTEGER NOT NULL,
    evaluated_at INTEGER NOT NULL,
    finished_at INTEGER,
    kind TEXT NOT NULL DEFAULT 'check',
    rules_json TEXT NOT NULL DEFAULT '[]',
    failed_rules_json TEXT NOT NULL DEFAULT '{}',
    new_alerts INTEGER NOT NULL DEFAULT 0,
    resolved_alerts INTEGER NOT NULL DEFAULT 0,
    delivered INTEGER NOT NULL DEFAULT 0,
    failed_deliveries INTEGER NOT NULL DEFAULT 0
) STRICT;
"""


@migrations(name="0008_rightsizing2")
def _m0008_rightsizing2(db: Database) -> None:
    """Lambda Managed Instances: the capacity provider a function runs on (None: on-demand
    Lambda), its memory per vCPU (GiB) and requests per execution environment."""
    _run_script(
        db,
        """
ALTER TABLE functions ADD COLUMN capacity_provider_arn TEXT;
ALTER TABLE functions ADD COLUMN memory_gib_per_vcpu REAL;
ALTER TABLE functions ADD COLUMN max_concurrency_per_environment INTEGER;
""",
    )


# Measured evidence about a function's duration at other sizes (lambdascope.evidence):
# AWS Lambda Power Tuning runs, one row per imported execution, and their per-size
# averages. ``run_key`` (the execution ARN, else a digest of the results) makes a
# re-import a no-op; ``measured_at`` is when the execution ran (epoch seconds) when known.
_SCHEMA_0012 = """
CREATE TABLE power_tuning_runs (
    id INTEGER PRIMARY KEY,
    function_id INTEGER NOT NULL REFERENCES functions(id) ON DELETE CASCADE,
    run_key TEXT NOT NULL,
    imported_at INTEGER NOT NULL,
    measured_at INTEGER,
    strategy TEXT,
    chosen_memory_mb INTEGER NOT NULL,
    chosen_cost_usd REAL,
    chosen_duration_ms REAL,
    lambda_cost_usd REAL,
    execution_cost_usd REAL,
    visualization_url TEXT,
    UNIQUE (function_id, run_key)
) STRICT;
CREATE TABLE power_tuning_points (
    run_id INTEGER NOT NULL REFERENCES power_tuning_runs(id) ON DELETE CASCADE,
    memory_mb INTEGER NOT NULL,
    average_duration_ms REAL NOT NULL,
    average_cost_usd REAL NOT NULL,
    PRIMARY KEY (run_id, memory_mb)
) STRICT, WITHOUT ROWID
"""


@migrations(name="0012_evidence")
def _m0012_evidence(db: Database) -> None:
    _run_script(db, _SCHEMA_0012)


# Provisioned concurrency per alias or version (lambdascope.evidence.provisioned): the
# configuration as last listed, and CloudWatch's hourly metrics for its Resource
# dimension (function:qualifier). Absent datapoints stay NULL, as in hourly_metrics.
# Compute Optimizer's latest recommendation per function version, as collected
# (lambdascope.evidence.compute_optimizer), options and utilisation as API JSON.
# Lambda Insights performance events, one row per invocation (request id: re-reading a
# file adds nothing), for the CPU share of duration (lambdascope.evidence.insights), and
# the same summed per function x hour x memory by a Logs Insights query (collect).
_SCHEMA_0013 = """
CREATE TABLE provisioned_concurrency_configs (
    function_id INTEGER NOT NULL REFERENCES functions(id) ON DELETE CASCADE,
    qualifier TEXT NOT NULL,
    requested INTEGER,
    allocated INTEGER,
    available INTEGER,
    status TEXT,
    status_reason TEXT,
    last_modified INTEGER,
    seen_at INTEGER NOT NULL,
    PRIMARY KEY (function_id, qualifier)
) STRICT;
CREATE TABLE provisioned_concurrency_hourly (
    function_id INTEGER NOT NULL REFERENCES functions(id) ON DELETE CASCADE,
    qualifier TEXT NOT NULL,
    hour INTEGER NOT NULL,
    concurrent_executions_max REAL,
    provisioned_executions_max REAL,
    utilization_max REAL,
    spillover_invocations REAL,
    provisioned_invocations REAL,
    invocations REAL,
    duration_avg_ms REAL,
    PRIMARY KEY (function_id, qualifier, hour)
) STRICT;
CREATE TABLE compute_optimizer_recommendations (
    function_id INTEGER NOT NULL REFERENCES functions(id) ON DELETE CASCADE,
    function_version TEXT NOT NULL,
    collected_at INTEGER NOT NULL,
    last_refresh INTEGER,
    finding TEXT,
    finding_reasons_json TEXT NOT NULL DEFAULT '[]',
    current_memory_mb INTEGER,
    invocations INTEGER,
    lookback_days REAL,
    performance_risk TEXT,
    utilization_json TEXT NOT NULL DEFAULT '[]',
    options_json TEXT NOT NULL DEFAULT '[]',
    PRIMARY KEY (function_id, function_version)
) STRICT;
CREATE TABLE insights_invocations (
    function_id INTEGER NOT NULL REFERENCES functions(id) ON DELETE CASCADE,
    request_id TEXT NOT NULL,
    hour INTEGER NOT NULL,
    memory_mb INTEGER NOT NULL,
    duration_ms REAL NOT NULL,
    cpu_total_ms REAL NOT NULL,
    used_memory_max_mb REAL,
    PRIMARY KEY (function_id, request_id)
) STRICT, WITHOUT ROWID;
CREATE INDEX insights_invocations_by_hour ON insights_invocations (hour, function_id);
CREATE TABLE insights_hourly (
    function_id INTEGER NOT NULL REFERENCES functions(id) ON DELETE CASCADE,
    hour INTEGER NOT NULL,
    memory_mb INTEGER NOT NULL,
    invocations INTEGER NOT NULL,
    duration_ms_sum REAL NOT NULL,
    cpu_total_ms_sum REAL NOT NULL,
    cpu_wall_share_sum REAL NOT NULL,
    cpu_wall_share_sq_sum REAL NOT NULL,
    PRIMARY KEY (function_id, hour, memory_mb)
) STRICT
"""


@migrations(name="0013_evidence_more")
def _m0013_evidence_more(db: Database) -> None:
    _run_script(db, _SCHEMA_0013)


@migrations(name="0006_collection_cadence")
def _m0006_collection_cadence(db: Database) -> None:
    _run_script(db, _SCHEMA_0006)


# The collection cadence (collectors.cadence): per account x region x CloudWatch metric, up
# to which hour the metric was fetched (``fetched_until``); in the row with an empty
# metric_name, when ListMetrics last ran (``listed_at``) and since when listings covered
# every hour without a gap (``covered_from``); per function x metric, the last listing that
# saw it active; per log group, its size as DescribeLogGroups reported it (``collect --plan``);
# per account x region, when the last full inventory (with per-function details) ran.
_SCHEMA_0006 = """
CREATE TABLE metric_cadence (
    account_id TEXT NOT NULL,
    region TEXT NOT NULL,
    metric_name TEXT NOT NULL,
    listed_at INTEGER,
    covered_from INTEGER,
    fetched_until INTEGER,
    PRIMARY KEY (account_id, region, metric_name)
) STRICT;
CREATE TABLE metric_activity (
    function_id INTEGER NOT NULL REFERENCES functions(id) ON DELETE CASCADE,
    metric_name TEXT NOT NULL,
    active_at INTEGER NOT NULL,
    PRIMARY KEY (function_id, metric_name)
) STRICT, WITHOUT ROWID;
CREATE TABLE log_groups (
    account_id TEXT NOT NULL,
    region TEXT NOT NULL,
    log_group TEXT NOT NULL,
    stored_bytes INTEGER,
    creation_time INTEGER,
    retention_days INTEGER,
    PRIMARY KEY (account_id, region, log_group)
) STRICT;
CREATE TABLE inventory_cadence (
    account_id TEXT NOT NULL,
    region TEXT NOT NULL,
    details_at INTEGER NOT NULL,
    PRIMARY KEY (account_id, region)
) STRICT
"""


# Lambda Managed Instances: a capacity provider's hourly utilisation (collectors.
# capacity_providers), per account x region x capacity provider name x hour, aggregated over
# its instance types: utilisation averages are the mean of the instance types' hourly
# averages (each type weighted equally), maxima the largest maximum; the capacity columns
# (vCPUs, bytes) are the sum of the instance types' hourly averages. Absent datapoints stay NULL.
_SCHEMA_0014 = """
CREATE TABLE capacity_provider_hourly (
    account_id TEXT NOT NULL,
    region TEXT NOT NULL,
    capacity_provider_name TEXT NOT NULL,
    hour INTEGER NOT NULL,
    instance_types INTEGER NOT NULL,
    cpu_utilization_avg REAL,
    cpu_utilization_max REAL,
    memory_utilization_avg REAL,
    memory_utilization_max REAL,
    vcpu_available REAL,
    vcpu_allocated REAL,
    memory_available_bytes REAL,
    memory_allocated_bytes REAL,
    PRIMARY KEY (account_id, region, capacity_provider_name, hour)
) STRICT
"""


@migrations(name="0014_capacity_providers")
def _m0014_capacity_providers(db: Database) -> None:
    _run_script(db, _SCHEMA_0014)


# Histogram columns from JSON text to bytes (lambdascope.histcodec): hourly_facts and
# daily_facts are rebuilt in chunks of rows, each its own transaction, so this migration
# runs outside one (an interrupted rebuild is continued by the next opening).
@migrations(name="0015_compact_histograms", transactional=False)
def _m0015_compact_histograms(db: Database) -> None:
    conn = db.conn
    if not compaction.pending(conn):
        return
    rows = sum(
        int(conn.execute(f"SELECT count(*) FROM {t.name}").fetchone()[0]) for t in compaction.TABLES
    )
    if rows < _PROGRESS_ROWS or not sys.stderr.isatty():
        compaction.compact(conn)
        return
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeRemainingColumn,
    )

    with Progress(
        TextColumn("compacting histograms: {task.fields[table]}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
        console=Console(file=sys.stderr),
        transient=True,
    ) as bar:
        task = bar.add_task("compact", total=2 * rows, table="")  # copied, then freed
        finished: dict[str, int] = {}

        def show(table: str, done: int, total: int) -> None:
            finished[table] = done
            bar.update(task, completed=sum(finished.values()), table=table)

        compaction.compact(conn, progress=show)


# Stores with more rows than this show a progress bar on a terminal while they migrate.
_PROGRESS_ROWS = 200_000

# Retention tiers (lambdascope.tiers): ``retention_tiers`` remembers, per tier, from which
# UTC day on it keeps data ('hourly': hours before it live only in daily_facts and
# daily_metrics; 'daily': days before it are deleted). ``daily_metrics`` keeps the
# CloudWatch health figures of hourly_metrics per function x UTC day once their hours
# leave the hourly tier (maxima of hourly maxima, sums of hourly sums). A write to
# hourly_facts or hourly_metrics for an hour before the hourly boundary is dropped by a
# trigger and counted in ``late_writes`` (its day's rollup is final). The rollup triggers
# of migration 0002 are re-created so that rows before the boundary never mark their day
# for a refresh: a tiered day must never be recomputed from (now empty) hourly tables.
_SCHEMA_0016 = """
CREATE TABLE retention_tiers (
    tier TEXT PRIMARY KEY,
    kept_from INTEGER NOT NULL,
    updated_at INTEGER NOT NULL
) STRICT;
CREATE TABLE daily_metrics (
    function_id INTEGER NOT NULL REFERENCES functions(id) ON DELETE CASCADE,
    day INTEGER NOT NULL,
    hours INTEGER NOT NULL,
    concurrent_executions_max REAL,
    iterator_age_max_ms REAL,
    async_events_dropped REAL,
    dead_letter_errors REAL,
    destination_delivery_failures REAL,
    provisioned_concurrency_spillover_invocations REAL,
    PRIMARY KEY (function_id, day)
) STRICT, WITHOUT ROWID;
CREATE INDEX daily_metrics_by_day ON daily_metrics (day);
CREATE TABLE late_writes (
    table_name TEXT PRIMARY KEY,
    rows INTEGER NOT NULL DEFAULT 0,
    last_at INTEGER
) STRICT;
INSERT INTO late_writes (table_name) VALUES ('hourly_facts'), ('hourly_metrics');
DROP TRIGGER IF EXISTS functions_memory_dirty;
CREATE TRIGGER functions_memory_dirty AFTER UPDATE OF memory_mb ON functions
WHEN OLD.memory_mb IS NOT NEW.memory_mb BEGIN
    INSERT INTO rollup_dirty
    SELECT DISTINCT m.function_id, m.hour - m.hour % 86400 FROM hourly_metrics m
    WHERE m.function_id = NEW.id
      AND m.hour >= coalesce((SELECT kept_from FROM retention_tiers WHERE tier = 'hourly'), 0)
      AND NOT EXISTS (SELECT 1 FROM rollup_dirty d
        WHERE d.function_id = NEW.id AND d.day = m.hour - m.hour % 86400);
END;
{tier_triggers}"""

_HOURLY_FROM = "(SELECT kept_from FROM retention_tiers WHERE tier = 'hourly')"


def _tier_triggers() -> str:
    """The rollup triggers of 0002 with rows before the hourly boundary left unmarked, and
    triggers dropping (and counting) writes of hours before the boundary."""

    def mark(row: str) -> str:
        day = f"{row}.hour - {row}.hour % 86400"
        return (
            f"    INSERT INTO rollup_dirty SELECT {row}.function_id, {day}\n"
            f"    WHERE {row}.hour >= coalesce({_HOURLY_FROM}, 0)\n"
            f"      AND NOT EXISTS (SELECT 1 FROM rollup_dirty"
            f" WHERE function_id = {row}.function_id AND day = {day});\n"
        )

    script = ""
    for table in ("hourly_facts", "hourly_metrics"):
        for event, rows in (("INSERT", ("NEW",)), ("UPDATE", ("OLD", "NEW")), ("DELETE", ("OLD",))):
            name = f"{table}_dirty_{event.lower()}"
            script += (
                f"DROP TRIGGER IF EXISTS {name};\n"
                f"CREATE TRIGGER {name} AFTER {event} ON {table} BEGIN\n"
                + "".join(mark(row) for row in rows)
                + "END;\n"
            )
        for event in ("INSERT", "UPDATE"):
            script += (
                f"CREATE TRIGGER {table}_tiered_{event.lower()} BEFORE {event} ON {table}\n"
                f"WHEN NEW.hour < {_HOURLY_FROM} BEGIN\n"
                "    UPDATE late_writes SET rows = rows + 1,"
                " last_at = CAST(strftime('%s', 'now') AS INTEGER)"
                f" WHERE table_name = '{table}';\n"
                f"    SELECT RAISE(IGNORE);\n"
                "END;\n"
            )
    return script


@migrations(name="0016_retention_tiers")
def _m0016_retention_tiers(db: Database) -> None:
    _run_script(db, _SCHEMA_0016.replace("{tier_triggers}", _tier_triggers()))

# Lambda Insights metrics (CloudWatch namespace LambdaInsights, dimension function_name) per
# function x hour, for functions whose performance events are not read: the extension's
# CPU time and memory as hourly statistics, with the hour's AWS/Lambda Duration next to
# them so the CPU share can be computed. ``total_memory_min_mb`` and ``total_memory_max_mb``
# differ when the hour saw two sizes. Units in the names; an absent datapoint stays NULL.
# ``insights_metrics_fetched``: per account x region, up to which hour they were fetched
# (they are fetched once a day: GetMetricData bills per metric, whatever the hours).
_SCHEMA_0017 = """
CREATE TABLE insights_metrics_hourly (
    function_id INTEGER NOT NULL REFERENCES functions(id) ON DELETE CASCADE,
    hour INTEGER NOT NULL,
    invocations REAL,
    cpu_total_ms_sum REAL,
    total_memory_min_mb REAL,
    total_memory_max_mb REAL,
    used_memory_max_mb REAL,
    memory_utilization_max_pct REAL,
    init_duration_max_ms REAL,
    init_count REAL,
    total_network_bytes_sum REAL,
    duration_ms_sum REAL,
    duration_count REAL,
    PRIMARY KEY (function_id, hour)
) STRICT;
CREATE TABLE insights_metrics_fetched (
    account_id TEXT NOT NULL,
    region TEXT NOT NULL,
    fetched_until INTEGER NOT NULL,
    PRIMARY KEY (account_id, region)
) STRICT
"""


@migrations(name="0017_insights_metrics")
def _m0017_insights_metrics(db: Database) -> None:
    _run_script(db, _SCHEMA_0017)


# A slimmer hourly tier. merged_hourly stops copying CloudWatch's duration percentiles
# (readers that want them join hourly_metrics on its primary key, lambdascope.queries) and
# every hourly table loses its by-hour index: reads of an hour range go function by
# function through the primary keys (function_id first), and the tier move deletes
# function by function. merged_hourly is derived data, rebuilt here in one transaction in
# its stored order (readers keep reading the old table meanwhile; a killed rebuild leaves
# the old table and runs again at the next opening).
_MERGED_STORED_0018 = (
    "function_id, hour, memory_mb, source, invocations, errors, throttles, timeouts,"
    " out_of_memory, cold_starts, log_invocations, duration_ms_sum, duration_ms_max,"
    " billed_duration_ms_sum, max_memory_used_mb_max, init_duration_ms_sum,"
    " init_duration_ms_max, restore_duration_ms_sum, billed_restore_duration_ms_sum,"
    " has_metrics"
)
_SCHEMA_0018 = f"""
CREATE TABLE merged_hourly_slim (
    function_id INTEGER NOT NULL REFERENCES functions(id) ON DELETE CASCADE,
    hour INTEGER NOT NULL,
    memory_mb INTEGER,
    source TEXT NOT NULL,
    invocations REAL NOT NULL,
    errors REAL NOT NULL,
    throttles REAL NOT NULL,
    timeouts INTEGER NOT NULL,
    out_of_memory INTEGER NOT NULL,
    cold_starts INTEGER NOT NULL,
    log_invocations INTEGER NOT NULL,
    duration_ms_sum REAL NOT NULL,
    duration_ms_max REAL,
    billed_duration_ms_sum REAL NOT NULL,
    max_memory_used_mb_max INTEGER,
    init_duration_ms_sum REAL NOT NULL,
    init_duration_ms_max REAL,
    restore_duration_ms_sum REAL NOT NULL,
    billed_restore_duration_ms_sum REAL NOT NULL,
    has_metrics INTEGER NOT NULL
) STRICT;
INSERT INTO merged_hourly_slim ({_MERGED_STORED_0018})
SELECT {_MERGED_STORED_0018} FROM merged_hourly ORDER BY rowid;
DROP TABLE merged_hourly;
ALTER TABLE merged_hourly_slim RENAME TO merged_hourly;
CREATE INDEX merged_hourly_by_function ON merged_hourly (function_id, hour);
DROP INDEX IF EXISTS hourly_facts_by_hour;
DROP INDEX IF EXISTS hourly_metrics_by_hour;
"""


@migrations(name="0018_slim_hourly")
def _m0018_slim_hourly(db: Database) -> None:
    _run_script(db, _SCHEMA_0018)


# Packed hours (lambdascope.packing): a function-day of the hourly tier older than the pack
# span is kept as one compressed row instead of its hourly_facts, hourly_metrics and
# merged_hourly rows (never both). first_hour/last_hour bound the hours it holds, the
# last_*_hour columns are the latest hour of each source (hourly_facts 'local' and
# 'insights', hourly_metrics) in it, rows counts them. A row written to hourly_facts or
# hourly_metrics for a packed function-day is refused: writers unpack the day first
# (lambdascope.packing.unpack), so nothing is ever counted twice.
_SCHEMA_0019 = """
CREATE TABLE packed_hours (
    id INTEGER PRIMARY KEY,
    function_id INTEGER NOT NULL REFERENCES functions(id) ON DELETE CASCADE,
    day INTEGER NOT NULL,
    first_hour INTEGER NOT NULL,
    last_hour INTEGER NOT NULL,
    last_local_hour INTEGER,
    last_insights_hour INTEGER,
    last_metrics_hour INTEGER,
    rows INTEGER NOT NULL,
    blob BLOB NOT NULL
) STRICT;
CREATE UNIQUE INDEX packed_hours_key ON packed_hours (function_id, day);
"""


def _packed_guards() -> str:
    script = ""
    for table in ("hourly_facts", "hourly_metrics"):
        for event in ("INSERT", "UPDATE"):
            script += (
                f"CREATE TRIGGER {table}_packed_{event.lower()} BEFORE {event} ON {table}\n"
                "WHEN EXISTS (SELECT 1 FROM packed_hours p WHERE p.function_id ="
                " NEW.function_id AND p.day = NEW.hour - NEW.hour % 86400) BEGIN\n"
                f"    SELECT RAISE(ABORT, 'lambdascope: {table} row for a packed"
                " function-day; unpack it first');\n"
                "END;\n"
            )
    return script


@migrations(name="0019_packed_hours")
def _m0019_packed_hours(db: Database) -> None:
    _run_script(db, _SCHEMA_0019 + _packed_guards())


# The CloudWatch health figures of packed function-days (lambdascope.packing), one row per
# hourly_metrics row packed, so that health reads over packed days stay plain SQL: the
# hourly_metrics rows of a packed day live in its packed row, these six columns here too.
_SCHEMA_0020 = """
CREATE TABLE packed_health (
    function_id INTEGER NOT NULL REFERENCES functions(id) ON DELETE CASCADE,
    hour INTEGER NOT NULL,
    concurrent_executions_max REAL,
    iterator_age_max_ms REAL,
    async_events_dropped REAL,
    dead_letter_errors REAL,
    destination_delivery_failures REAL,
    provisioned_concurrency_spillover_invocations REAL,
    PRIMARY KEY (function_id, hour)
) STRICT, WITHOUT ROWID;
"""


@migrations(name="0020_packed_health")
def _m0020_packed_health(db: Database) -> None:
    _run_script(db, _SCHEMA_0020)
    # packed days from before this migration: their health rows from the packed rows
    from lambdascope import packing

    packing.backfill_health(db.conn)


# Whether a window holds packed days at all, found without reading them (health reads
# leave packed_health out when it does not).
@migrations(name="0021_packed_hours_by_day")
def _m0021_packed_hours_by_day(db: Database) -> None:
    _run_script(db, "CREATE INDEX packed_hours_by_day ON packed_hours (day);")


# A checksum of each packed row's blob (CRC-32), so that readers keeping decoded packed
# days (lambdascope.packing.scratch) know them unchanged without reading the blobs.
@migrations(name="0022_packed_checksum")
def _m0022_packed_checksum(db: Database) -> None:
    conn = db.conn
    conn.execute("ALTER TABLE packed_hours ADD COLUMN checksum INTEGER")
    for rowid, blob in conn.execute("SELECT id, blob FROM packed_hours").fetchall():
        conn.execute("UPDATE packed_hours SET checksum = ? WHERE id = ?", (zlib.crc32(blob), rowid))
