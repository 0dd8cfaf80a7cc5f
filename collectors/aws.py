"""AWS sessions, assumed roles and the accounts x regions fan-out.

``run_collection`` is the one entry point (the ``collect`` command and the scheduler call
it): it resolves accounts (default credentials and/or assumed roles) and regions, then runs
inventory -> metrics -> logs for each account x region, recording one ``collection_runs``
row per account x region x source. Credentials live only in memory. The types the sources
share with this module live in ``collectors.common`` (re-exported here for callers);
``collectors.common.make_client`` makes every client.
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime

from botocore.exceptions import (
    ClientError,
    EndpointConnectionError,
    NoRegionError,
)
from sqlite_utils import Database

from collectors import accounts, cadence, inventory, logs, metrics
from collectors.common import (
    NOT_OFFERED,
    RETRY_CONFIG,
    ROLE_RENEWAL_ACTION,
    SOURCES,
    CallCounter,
    CollectionAborted,
    CollectOptions,
    CredentialsError,
    SourceResult,
    Stop,
    Store,
    Target,
    check_credentials,
    error_code,
    iam_action,
    is_denied,
    is_expired,
    is_not_offered,
    is_role_renewal,
    never,
    record_failure,
    role_renewal_message,
)
from collectors.runs import (
    LOGS_SETTLE_S,
    record_run,
    resolve_window,
    save_watermark,
)
from lambdascope import rollup
from lambdascope.timeutil import Clock, to_epoch, utcnow

__all__ = [
    "NOT_OFFERED",
    "RETRY_CONFIG",
    "SOURCES",
    "CallCounter",
    "CollectOptions",
    "CollectionAborted",
    "CollectionSummary",
    "CredentialsError",
    "SourceResult",
    "Stop",
    "Store",
    "Target",
    "check_credentials",
    "error_code",
    "iam_action",
    "is_denied",
    "is_expired",
    "is_not_offered",
    "never",
    "record_failure",
    "resolve_targets",
    "run_collection",
]

SKIPPED_REGION = accounts.SKIPPED_REGION


@dataclass
class CollectionSummary:
    """Everything a run did; ``exit_code`` is 0 when all parts succeeded, 2 otherwise."""

    results: list[SourceResult] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)  # e.g. regions skipped per account

    @property
    def failed(self) -> list[SourceResult]:
        return [r for r in self.results if r.status not in ("ok", "interrupted", "skipped")]

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
            where = " ".join(part for part in (r.account_id or "?", r.region) if part)
            out.append(
                f"{where} {r.source}: {r.status}, {r.items} items, {r.api_calls} API calls,"
                f" {r.bytes_scanned} bytes scanned, ~${r.estimated_cost_usd:.4f}"
            )
            for err in r.errors:
                if err["code"] == NOT_OFFERED:
                    out.append(f"  not offered by this endpoint: {err['action']}")
                else:
                    out.append(f"  failed {err['action']}: {err['code']} {err['message']}")
        out.extend(self.notes)
        out.extend(self.errors)
        total = sum(r.estimated_cost_usd for r in self.results)
        out.append(f"estimated AWS charge of this run: ${total:.4f}")
        return out


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
    base_accepted: Callable[[], bool] = lambda: False,
    region_enabled: Callable[[Target], bool | None] = lambda _target: None,
) -> list[SourceResult]:
    """Every source of one account x region; an authentication error fails only this part
    when ``base_accepted()`` says the default credentials are still good, and skips it
    (with a note, not a failure) when ``region_enabled(target)`` says the account has not
    enabled the region."""
    results = []
    skipped = ""  # set once the account turns out not to have enabled the region
    for source in options.sources():
        if stop():  # between sources: nothing of this one started, nothing to record
            break
        if source == "logs" and options.logs_mode == "athena":
            continue  # one query for every account x region: see run_collection
        started = to_epoch(now)
        result = SourceResult(target.account_id, target.region, source)
        counter = CallCounter()
        if skipped:
            result.status, result.message = "skipped", skipped
            _finish_part(store, result, started, now, part_done, progress)
            results.append(result)
            continue
        try:
            if source == "inventory":
                resumed = not options.only and options.start is None and options.since is None
                if cadence.details_due(store, target, now=to_epoch(now), resumed=resumed):
                    inventory.collect(store, target, result, counter, now=now)
                    if result.status == "ok":
                        cadence.save_details_at(store, target, to_epoch(now))
                    if result.status != "failed":
                        from collectors import compute_optimizer

                        compute_optimizer.collect(store, target, result, counter, now=to_epoch(now))
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
                    if result.status != "interrupted":
                        from collectors import provisioned

                        provisioned.collect(
                            store, target, result, counter, start=start, end=end, now=to_epoch(now)
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
                    if options.logs_mode == "insights" and result.status == "ok":
                        from collectors import lambda_insights

                        lambda_insights.collect(
                            store,
                            target,
                            result,
                            counter,
                            start=start,
                            end=end,
                            poll_s=options.poll_interval_s,
                        )
                if source == "metrics" and result.status != "interrupted":
                    from collectors import capacity_providers

                    capacity_providers.collect(store, target, result, counter, start=start, end=end)
                    from collectors import insights_metrics

                    insights_metrics.collect(
                        store, target, result, counter, start=start, end=end, now=to_epoch(now)
                    )
                if result.status == "ok":
                    settle = LOGS_SETTLE_S if source == "logs" else 0
                    save_watermark(store, target, source, end, now, settle)
        except (ClientError, EndpointConnectionError, CredentialsError) as exc:
            service = {"inventory": "lambda", "metrics": "cloudwatch", "logs": "logs"}[source]
            operation = getattr(exc, "operation_name", "") or "request"
            action = f"{service}:{operation}"
            rejected = _rejected_code(exc)
            if rejected is not None:
                # Only this account x region, unless the default credentials are rejected too.
                if not base_accepted():
                    raise _as_credentials(exc) from None
                if region_enabled(target) is False:
                    skipped = f"{target.account_id} {target.region}: {SKIPPED_REGION}"
                    result.status, result.message = "skipped", skipped
                    _finish_part(store, result, started, now, part_done, progress)
                    results.append(result)
                    continue
                message = (
                    f"credentials not accepted for {target.account_id} in {target.region}"
                    " (region not enabled for this account, or its role session ended)"
                )
                result.errors.append({"action": action, "code": rejected, "message": message})
            elif isinstance(exc, ClientError) and is_role_renewal(exc):
                code = error_code(exc) or "error"
                message = role_renewal_message(exc)
                result.errors.append(
                    {"action": ROLE_RENEWAL_ACTION, "code": code, "message": message}
                )
            else:
                code = error_code(exc) if isinstance(exc, ClientError) else type(exc).__name__
                result.errors.append({"action": action, "code": code, "message": str(exc)[:300]})
            result.status = "failed"
        result.api_calls = counter.calls
        _finish_part(store, result, started, now, part_done, progress)
        results.append(result)
    return results


def _finish_part(
    store: Store,
    result: SourceResult,
    started: int,
    now: datetime,
    part_done: PartDone | None,
    progress: Progress,
) -> None:
    record_run(store, result, started, to_epoch(now))
    if part_done is not None:
        part_done(result)
    else:
        progress(f"{result.account_id} {result.region} {result.source}: {result.status}")


def _rejected_code(exc: BaseException) -> str | None:
    """AWS's code when the error says the credentials were not accepted, else None."""
    if isinstance(exc, CredentialsError):
        return exc.code or None
    if isinstance(exc, ClientError) and is_expired(exc):
        return error_code(exc)
    return None


def _as_credentials(exc: BaseException) -> CredentialsError:
    if isinstance(exc, CredentialsError):
        return exc
    try:
        check_credentials(exc)
    except CredentialsError as error:
        return error
    return CredentialsError(str(exc))


def resolve_accounts(options: CollectOptions, clock: Clock = utcnow) -> accounts.Reach:
    """Every account x region to collect, the accounts that failed, and notes."""
    try:
        return accounts.resolve(options, clock)
    except NoRegionError:
        raise CollectionAborted("no region: pass --region R or --all-regions") from None
    except EndpointConnectionError as exc:
        raise CollectionAborted(f"cannot reach AWS: {exc}") from None
    except ClientError as exc:
        operation = getattr(exc, "operation_name", "request")
        raise CollectionAborted(
            f"cannot resolve accounts and regions: {operation} failed with {error_code(exc)}"
        ) from None


def resolve_targets(options: CollectOptions, clock: Clock = utcnow) -> list[Target]:
    """Every account x region to collect (STS, Organizations and EC2 calls only)."""
    return resolve_accounts(options, clock).targets


def run_collection(
    db: Database,
    options: CollectOptions,
    *,
    now: datetime,
    progress: Progress | None = None,
    stop: Stop = never,
    parts: Callable[[int], PartDone] | None = None,
    clock: Clock = utcnow,
) -> CollectionSummary:
    """Collect every selected source for every account x region into ``db``.

    ``stop()`` is checked between sources, regions and batches: once it is true the
    batches under way finish and are stored, nothing new starts, and the sources cut short
    are recorded as 'interrupted' without advancing their watermarks, so the next run
    resumes where this one stopped. ``progress`` gets one line per event; with ``parts``,
    ``parts(total)`` is called once the account x region x source parts are known and the
    callback it returns gets each finished part instead of a line (a progress bar).

    Raises CollectionAborted / CredentialsError (one line) when collection cannot start
    or the default credentials are missing or rejected; any other failure (an account
    that cannot be reached, an account x region whose credentials are not accepted, a
    denied call) is recorded in collection_runs and the summary, and the rest continues.
    ``clock`` (aware UTC) decides when assumed-role credentials are refreshed.
    """
    report = progress or (lambda _message: None)
    reach = resolve_accounts(options, clock)
    targets = reach.targets
    account_ids = sorted({t.account_id for t in targets})
    report(
        f"collecting {', '.join(options.sources())} for {len(targets)} account x region"
        f" pairs ({len(account_ids)} accounts)"
    )
    for note in reach.notes:
        report(note)
    store = Store(db)
    summary = CollectionSummary(notes=list(reach.notes))
    for failure in reach.failures:
        record_run(store, failure, to_epoch(now), to_epoch(now))
        report(f"{failure.account_id} {failure.source}: failed ({failure.errors[0]['code']})")
        summary.results.append(failure)
    total = len(targets) * len(options.sources())
    if options.logs_mode == "athena" and "logs" in options.sources():
        total -= len(targets) - 1  # one Athena query for every account x region
    part_done = parts(total) if parts is not None else None
    base_accepted = accounts.base_accepted(reach, options)
    region_enabled = accounts.region_enabled(reach, options)
    with ThreadPoolExecutor(max_workers=max(1, options.concurrency)) as pool:
        futures = [
            pool.submit(
                _collect_target,
                store,
                target,
                options,
                now,
                report,
                stop,
                part_done,
                base_accepted,
                region_enabled,
            )
            for target in targets
        ]
        for future in futures:
            summary.results.extend(future.result())
    if options.logs_mode == "athena" and "logs" in options.sources() and not stop():
        from collectors import athena

        summary.results.append(athena.collect_run(store, targets, options, now=now, stop=stop))
        if part_done is not None:
            part_done(summary.results[-1])
        else:
            report(
                f"{targets[0].account_id} {targets[0].region} logs (athena): "
                f"{summary.results[-1].status}"
            )
    for result in summary.results:
        if result.status == "skipped" and result.message not in summary.notes:
            summary.notes.append(result.message)
    rollup.refresh(db)  # the daily rollups of the days this run touched
    return summary
