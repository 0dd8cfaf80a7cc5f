"""AWS sessions, clients, retries, error classification and the accounts x regions fan-out.

``run_collection`` is the one entry point (the ``collect`` command and the scheduler call
it): it resolves accounts (default credentials and/or assumed roles) and regions, then runs
inventory -> metrics -> logs for each account x region, recording one ``collection_runs``
row per account x region x source. Credentials live only in memory.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import boto3
from botocore.config import Config
from botocore.exceptions import (
    ClientError,
    EndpointConnectionError,
    NoCredentialsError,
    NoRegionError,
    PartialCredentialsError,
)
from sqlite_utils import Database

from lambdascope import rollup
from lambdascope.timeutil import HOUR_S, hour_floor, to_epoch

SOURCES = ("inventory", "metrics", "logs")
DEFAULT_SINCE = timedelta(days=14)
# Re-read this much before the last watermark: CloudWatch and log delivery can be late.
WATERMARK_OVERLAP_S = 2 * HOUR_S
# Logs resume at the watermark (the start of the last hour not yet complete): Logs Insights
# bills every byte scanned, so complete hours are not scanned again. An hour is complete
# once a run starts LOGS_SETTLE_S after its end (log events delivered later are missed).
SOURCE_OVERLAP_S = {"logs": 0}
LOGS_SETTLE_S = 10 * 60
RETRY_CONFIG = {"mode": "adaptive", "max_attempts": 10}

_EXPIRED_CODES = {
    "ExpiredToken",
    "ExpiredTokenException",
    "RequestExpired",
    "InvalidClientTokenId",
    "UnrecognizedClientException",
    "InvalidSignatureException",
    "SignatureDoesNotMatch",
}
_DENIED_CODES = {
    "AccessDenied",
    "AccessDeniedException",
    "UnauthorizedOperation",
    "UnauthorizedAccess",
    "AuthorizationError",
}
# An endpoint that does not offer an operation at all: real AWS answers UnknownOperation for
# an API a region or partition does not have (e.g. function URLs where Lambda launched
# without them); moto, LocalStack and proxies answer HTTP 404 with no AWS error body.
_UNSUPPORTED_CODES = {
    "UnknownOperationException",
    "UnknownOperation",
    "UnsupportedOperation",
    "UnsupportedOperationException",
    "InvalidAction",
    "NotImplemented",
}
NOT_OFFERED = "NotOffered"
# IAM uses the service prefix, not botocore's endpoint prefix (cloudwatch is "monitoring").
_IAM_PREFIX = {"monitoring": "cloudwatch", "lambda": "lambda", "logs": "logs", "sts": "sts"}


Stop = Callable[[], bool]


def never() -> bool:
    """The default stop check: collection is never asked to stop."""
    return False


class CollectionAborted(Exception):
    """Collection cannot go on at all (no credentials, no region, AWS unreachable)."""


class CredentialsError(CollectionAborted):
    """Missing, expired or invalid credentials: collection stops with this one line."""


@dataclass(frozen=True)
class CollectOptions:
    """What to collect. Times are aware UTC datetimes; ``since`` counts back from now."""

    profile: str | None = None
    regions: tuple[str, ...] = ()
    all_regions: bool = False
    role_arns: tuple[str, ...] = ()
    include_default_account: bool = True
    start: datetime | None = None
    end: datetime | None = None
    since: timedelta | None = None
    only: tuple[str, ...] = ()
    logs_mode: str = "insights"
    metric_set: str = "lean"
    endpoint_url: str | None = None
    concurrency: int = 4
    max_concurrent_queries: int = 10
    poll_interval_s: float = 1.0

    def sources(self) -> tuple[str, ...]:
        """Sources to run, in dependency order (inventory first)."""
        return tuple(s for s in SOURCES if not self.only or s in self.only)


@dataclass
class SourceResult:
    """Outcome of one source for one account x region (one collection_runs row)."""

    account_id: str
    region: str
    source: str
    status: str = "ok"
    items: int = 0
    api_calls: int = 0
    bytes_scanned: int = 0
    estimated_cost_usd: float = 0.0
    errors: list[dict[str, str]] = field(default_factory=list)
    message: str = ""
    window_start: int | None = None
    window_end: int | None = None

    def fail(self, action: str, code: str, message: str) -> None:
        """Record one failed action; the source becomes partial (or failed if nothing came)."""
        self.errors.append({"action": action, "code": code, "message": message[:300]})
        self.status = "partial"

    def not_offered(self, action: str, code: str) -> None:
        """Record an optional operation the endpoint does not offer (status unchanged).

        There is nothing of that kind to collect there and no permission would change it,
        so it is reported (summary, collection_runs.errors_json) but fails nothing.
        """
        self.errors.append(
            {
                "action": action,
                "code": NOT_OFFERED,
                "message": f"operation not offered by this endpoint ({code}); nothing collected",
            }
        )

    @property
    def failures(self) -> list[dict[str, str]]:
        return [e for e in self.errors if e["code"] != NOT_OFFERED]


@dataclass
class CollectionSummary:
    """Everything a run did; ``exit_code`` is 0 when all parts succeeded, 2 otherwise."""

    results: list[SourceResult] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    @property
    def failed(self) -> list[SourceResult]:
        return [r for r in self.results if r.status not in ("ok", "interrupted")]

    @property
    def interrupted(self) -> list[SourceResult]:
        return [r for r in self.results if r.status == "interrupted"]

    @property
    def exit_code(self) -> int:
        return 2 if self.failed or self.errors or self.interrupted else 0

    def lines(self) -> list[str]:
        """A human summary, one line per account x region x source, then failures."""
        out = []
        for r in self.results:
            where = f"{r.account_id or '?'} {r.region}"
            out.append(
                f"{where} {r.source}: {r.status}, {r.items} items, {r.api_calls} API calls,"
                f" {r.bytes_scanned} bytes scanned, ~${r.estimated_cost_usd:.4f}"
            )
            for err in r.errors:
                if err["code"] == NOT_OFFERED:
                    out.append(f"  not offered by this endpoint: {err['action']}")
                else:
                    out.append(f"  failed {err['action']}: {err['code']} {err['message']}")
        out.extend(self.errors)
        total = sum(r.estimated_cost_usd for r in self.results)
        out.append(f"estimated AWS charge of this run: ${total:.4f}")
        return out


class CallCounter:
    """Counts API operations made by clients it is attached to (botocore before-call)."""

    def __init__(self) -> None:
        self.calls = 0
        self.operations: list[str] = []
        self._lock = threading.Lock()

    def attach(self, client: Any) -> Any:
        client.meta.events.register("before-call.*.*", self._on_call)
        return client

    def _on_call(self, model: Any, **_: Any) -> None:
        with self._lock:
            self.calls += 1
            self.operations.append(model.name)


def iam_action(client: Any, operation_name: str) -> str:
    """``lambda:ListFunctions`` for a client and a botocore operation name."""
    prefix = client.meta.service_model.endpoint_prefix
    return f"{_IAM_PREFIX.get(prefix, prefix)}:{operation_name}"


def error_code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))


def is_expired(exc: ClientError) -> bool:
    return error_code(exc) in _EXPIRED_CODES


def is_denied(exc: ClientError) -> bool:
    return error_code(exc) in _DENIED_CODES


def is_not_offered(exc: ClientError) -> bool:
    """The endpoint does not implement the operation (not a permission or a resource)."""
    code = error_code(exc)
    status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
    return code in _UNSUPPORTED_CODES or (status == 404 and code in ("404", ""))


def check_credentials(exc: BaseException) -> None:
    """Re-raise credential problems as CredentialsError (everything else returns)."""
    if isinstance(exc, ClientError) and is_expired(exc):
        raise CredentialsError(
            f"AWS credentials were rejected ({error_code(exc)}): refresh them"
            " (e.g. `aws sso login`) and run again"
        ) from None
    if isinstance(exc, NoCredentialsError | PartialCredentialsError):
        raise CredentialsError(
            "no AWS credentials found: set a profile (--profile) or the standard AWS"
            " environment variables"
        ) from None


def record_failure(result: SourceResult, client: Any, operation: str, exc: Exception) -> None:
    """Record a failed call with its IAM action; credential problems stop the run."""
    check_credentials(exc)
    if isinstance(exc, ClientError):
        code = error_code(exc) or "error"
        message = str(exc.response.get("Error", {}).get("Message", "")) or str(exc)
        if code == "404" or "<html" in message.lower():
            message = "operation not supported by this endpoint"
        elif is_denied(exc):
            message = f"missing IAM permission {iam_action(client, operation)}"
    else:
        code, message = type(exc).__name__, str(exc)
    result.fail(iam_action(client, operation), code, message)


def make_client(session: boto3.Session, service: str, region: str, endpoint_url: str | None) -> Any:
    """Every AWS client the collectors use: adaptive retries, one endpoint for all services."""
    return session.client(
        service,  # type: ignore[call-overload]
        region_name=region,
        endpoint_url=endpoint_url,
        config=Config(retries=RETRY_CONFIG),  # type: ignore[arg-type]
    )


@dataclass
class Target:
    """One account x region: a session and the clients made from it."""

    session: boto3.Session
    account_id: str
    region: str
    endpoint_url: str | None = None

    def client(self, service: str, counter: CallCounter | None = None) -> Any:
        client = make_client(self.session, service, self.region, self.endpoint_url)
        if counter is not None:
            counter.attach(client)
        return client


class Store:
    """The store plus a lock: fetching runs in threads, writing is serialised."""

    def __init__(self, db: Database) -> None:
        self.db = db
        self.lock = threading.RLock()

    @contextmanager
    def write(self) -> Iterator[Database]:
        with self.lock, self.db.conn:
            yield self.db


def _session(options: CollectOptions) -> boto3.Session:
    try:
        return boto3.Session(profile_name=options.profile)
    except Exception as exc:  # ProfileNotFound and friends
        raise CredentialsError(f"cannot use AWS profile {options.profile!r}: {exc}") from None


def _account_of(session: boto3.Session, options: CollectOptions, region: str) -> str:
    sts = make_client(session, "sts", region, options.endpoint_url)
    try:
        return str(sts.get_caller_identity()["Account"])
    except (ClientError, NoCredentialsError, PartialCredentialsError) as exc:
        check_credentials(exc)
        raise


def assume_role(
    session: boto3.Session, role_arn: str, options: CollectOptions, region: str
) -> boto3.Session:
    """A session with the role's temporary credentials (kept in memory only)."""
    sts = make_client(session, "sts", region, options.endpoint_url)
    creds = sts.assume_role(RoleArn=role_arn, RoleSessionName="lambdascope")["Credentials"]
    return boto3.Session(
        aws_access_key_id=creds["AccessKeyId"],
        aws_secret_access_key=creds["SecretAccessKey"],
        aws_session_token=creds["SessionToken"],
    )


def resolve_regions(session: boto3.Session, options: CollectOptions) -> list[str]:
    """Regions from --region, or with --all-regions those enabled for the account."""
    if not options.all_regions:
        if options.regions:
            return list(dict.fromkeys(options.regions))
        if session.region_name:
            return [session.region_name]
        raise CollectionAborted("no region: pass --region R (repeatable) or --all-regions")
    home = options.regions[0] if options.regions else (session.region_name or "us-east-1")
    ec2 = make_client(session, "ec2", home, options.endpoint_url)
    enabled = {r["RegionName"] for r in ec2.describe_regions()["Regions"]}
    lambda_regions = set(session.get_available_regions("lambda"))
    return sorted(enabled & lambda_regions) if lambda_regions else sorted(enabled)


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
        overlap = SOURCE_OVERLAP_S.get(source, WATERMARK_OVERLAP_S)
        start = int(row[0]) - overlap if row else now_s - int(DEFAULT_SINCE.total_seconds())
    return hour_floor(start), end


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


Progress = Callable[[str], None]
PartDone = Callable[[SourceResult], None]


def _collect_target(
    store: Store,
    target: Target,
    options: CollectOptions,
    now: datetime,
    progress: Progress,
    stop: Stop = never,
    part_done: PartDone | None = None,
) -> list[SourceResult]:
    from collectors import cadence, inventory, logs, metrics

    results = []
    for source in options.sources():
        if stop():  # between sources: nothing of this one started, nothing to record
            break
        started = to_epoch(now)
        result = SourceResult(target.account_id, target.region, source)
        counter = CallCounter()
        try:
            if source == "inventory":
                resumed = not options.only and options.start is None and options.since is None
                if cadence.details_due(store, target, now=to_epoch(now), resumed=resumed):
                    inventory.collect(store, target, result, counter, now=now)
                    if result.status == "ok":
                        cadence.save_details_at(store, target, to_epoch(now))
                else:
                    cadence.list_functions(store, target, result, counter, now=to_epoch(now))
            else:
                with store.lock:  # one connection is shared by the collection threads
                    start, end = resolve_window(store.db, options, target, source, now)
                result.window_start, result.window_end = start, end
                if source == "metrics" and options.metric_set == "lean":
                    cadence.collect(
                        store,
                        target,
                        result,
                        counter,
                        start=start,
                        end=end,
                        now=to_epoch(now),
                        explicit=options.start is not None or options.since is not None,
                        stop=stop,
                    )
                elif source == "metrics":
                    metrics.collect(
                        store,
                        target,
                        result,
                        counter,
                        start=start,
                        end=end,
                        stop=stop,
                        now=to_epoch(now),
                    )
                else:
                    logs.collect(
                        store,
                        target,
                        result,
                        counter,
                        start=start,
                        end=end,
                        options=options,
                        stop=stop,
                    )
                if result.status == "ok":
                    settle = LOGS_SETTLE_S if source == "logs" else 0
                    save_watermark(store, target, source, end, now, settle)
        except CredentialsError:
            raise
        except (ClientError, EndpointConnectionError) as exc:
            check_credentials(exc)
            operation = getattr(exc, "operation_name", "") or "request"
            service = {"inventory": "lambda", "metrics": "cloudwatch", "logs": "logs"}[source]
            action = f"{service}:{operation}"
            code = error_code(exc) if isinstance(exc, ClientError) else type(exc).__name__
            result.errors.append({"action": action, "code": code, "message": str(exc)[:300]})
            result.status = "failed"
        result.api_calls = counter.calls
        record_run(store, result, started, to_epoch(now))
        if part_done is not None:
            part_done(result)
        else:
            progress(f"{target.account_id} {target.region} {source}: {result.status}")
        results.append(result)
    return results


def resolve_targets(options: CollectOptions) -> list[Target]:
    """Every account x region to collect (STS and EC2 calls only)."""
    try:
        return _resolve_targets(options)
    except NoRegionError:
        raise CollectionAborted("no region: pass --region R or --all-regions") from None
    except EndpointConnectionError as exc:
        raise CollectionAborted(f"cannot reach AWS: {exc}") from None
    except ClientError as exc:
        operation = getattr(exc, "operation_name", "request")
        raise CollectionAborted(
            f"cannot resolve accounts and regions: {operation} failed with {error_code(exc)}"
        ) from None


def _resolve_targets(options: CollectOptions) -> list[Target]:
    base = _session(options)
    try:
        regions = resolve_regions(base, options)
    except (ClientError, NoCredentialsError, PartialCredentialsError) as exc:
        check_credentials(exc)
        raise
    home = regions[0]
    sessions: list[tuple[boto3.Session, str]] = []
    if options.include_default_account or not options.role_arns:
        sessions.append((base, _account_of(base, options, home)))
    for role_arn in options.role_arns:
        try:
            assumed = assume_role(base, role_arn, options, home)
        except ClientError as exc:
            check_credentials(exc)
            raise CredentialsError(
                f"cannot assume role {role_arn}: {error_code(exc)} (needs sts:AssumeRole)"
            ) from None
        sessions.append((assumed, _account_of(assumed, options, home)))
    return [
        Target(session, account, region, options.endpoint_url)
        for session, account in sessions
        for region in regions
    ]


def run_collection(
    db: Database,
    options: CollectOptions,
    *,
    now: datetime,
    progress: Progress | None = None,
    stop: Stop = never,
    parts: Callable[[int], PartDone] | None = None,
) -> CollectionSummary:
    """Collect every selected source for every account x region into ``db``.

    ``stop()`` is checked between sources, regions and batches: once it is true the
    batches under way finish and are stored, nothing new starts, and the sources cut short
    are recorded as 'interrupted' without advancing their watermarks, so the next run
    resumes where this one stopped. ``progress`` gets one line per event; with ``parts``,
    ``parts(total)`` is called once the account x region x source parts are known and the
    callback it returns gets each finished part instead of a line (a progress bar).

    Raises CollectionAborted / CredentialsError (one line) when collection cannot start
    or credentials are missing or expired; any other
    failure is recorded in collection_runs and the summary, and the rest continues.
    """
    report = progress or (lambda _message: None)
    targets = resolve_targets(options)
    accounts = sorted({t.account_id for t in targets})
    report(
        f"collecting {', '.join(options.sources())} for {len(targets)} account x region"
        f" pairs ({len(accounts)} accounts)"
    )
    part_done = parts(len(targets) * len(options.sources())) if parts is not None else None
    store = Store(db)
    summary = CollectionSummary()
    with ThreadPoolExecutor(max_workers=max(1, options.concurrency)) as pool:
        futures = [
            pool.submit(_collect_target, store, target, options, now, report, stop, part_done)
            for target in targets
        ]
        for future in futures:
            summary.results.extend(future.result())
    rollup.refresh(db)  # the daily rollups of the days this run touched
    return summary
