"""What the collectors share: options, targets, results, the store lock, error handling.

The sources (inventory, metrics, logs) and the fan-out in ``collectors.aws`` both import
this module; it imports neither, so the collectors have no import circle.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import boto3
from botocore.config import Config
from botocore.exceptions import ClientError, NoCredentialsError, PartialCredentialsError
from sqlite_utils import Database

SOURCES = ("inventory", "metrics", "logs")
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
    """Missing, expired or invalid credentials: collection stops with this one line.

    ``code`` is AWS's error code when AWS rejected them (empty when none were found).
    """

    def __init__(self, message: str, code: str = "") -> None:
        super().__init__(message)
        self.code = code


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
    athena_table: str | None = None  # logs_mode "athena": DATABASE.TABLE of the archive
    athena_output: str | None = None  # s3://bucket/prefix/ for the query results
    athena_workgroup: str = "primary"
    # "lean": only the CloudWatch metrics logs cannot give, on their cadence; "full": all
    # metrics of every function each run (stores fed without logs)
    metric_set: str = "lean"
    endpoint_url: str | None = None
    # AWS Organizations: assume this role in every ACTIVE member account.
    org_role_name: str | None = None
    org_exclude: tuple[str, ...] = ()
    external_id: str | None = None
    role_duration_s: int | None = None  # AssumeRole DurationSeconds (AWS default 3,600)
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
            " (e.g. `aws sso login`) and run again",
            error_code(exc),
        ) from None
    if isinstance(exc, NoCredentialsError | PartialCredentialsError):
        raise CredentialsError(
            "no AWS credentials found: set a profile (--profile) or the standard AWS"
            " environment variables"
        ) from None


ROLE_RENEWAL_ACTION = "sts:AssumeRole"


def is_role_renewal(exc: BaseException) -> bool:
    """The call failed because its role session could not be renewed (AssumeRole failed
    inside the credentials' refresh), not because of the operation itself."""
    return isinstance(exc, ClientError) and exc.operation_name == "AssumeRole"


def role_renewal_message(exc: ClientError) -> str:
    detail = str(exc.response.get("Error", {}).get("Message", "")) or str(exc)
    return f"renewing the role session failed: {detail}"[:300]


def record_failure(result: SourceResult, client: Any, operation: str, exc: Exception) -> None:
    """Record a failed call with its IAM action; credential problems stop the run."""
    check_credentials(exc)
    if isinstance(exc, ClientError) and is_role_renewal(exc):
        result.fail(ROLE_RENEWAL_ACTION, error_code(exc) or "error", role_renewal_message(exc))
        return
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


def metric_query(
    query_id: str,
    namespace: str,
    metric: str,
    dimensions: list[dict[str, str]],
    period_s: int,
    stat: str,
) -> dict[str, Any]:
    """One GetMetricData MetricDataQuery: ``stat`` of a metric per ``period_s`` seconds."""
    return {
        "Id": query_id,
        "MetricStat": {
            "Metric": {"Namespace": namespace, "MetricName": metric, "Dimensions": dimensions},
            "Period": period_s,
            "Stat": stat,
        },
        "ReturnData": True,
    }


def make_client(session: boto3.Session, service: str, region: str, endpoint_url: str | None) -> Any:
    """Every AWS client the collectors use: adaptive retries, one endpoint for all services."""
    return session.client(
        service,  # type: ignore[call-overload]
        region_name=region,
        endpoint_url=endpoint_url,
        # A copy: botocore rewrites the dict it is given (max_attempts -> total_max_attempts).
        config=Config(retries=dict(RETRY_CONFIG)),  # type: ignore[arg-type]
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
