"""``lambdascope ingest s3://bucket/prefix/``: log objects read straight from S3.

For small and medium archives (a Firehose archive of CloudWatch Logs, CloudWatch export
tasks, any prefix of log files): every object under the prefix is streamed through the
same reader as local files (collectors.local: gzip, envelopes, text and JSON formats) into
the same store rows, in the same order as local ingest of a copy of the prefix would read
them, so the store is the same.

An object is identified by its key and ETag (registry path ``s3://bucket/key``): an object
read to its end is skipped by later runs, one read in part is read again from where it
stopped (decompressed offset, as for local files), and one replaced under the same key
(another ETag) is read again (invocations are keyed by request id: nothing counts twice).
GetObject asks for the listed ETag (``IfMatch``), so an object replaced between listing and
reading fails alone, and the next run reads the new one. Credentials come from the standard
chain (environment, profile, SSO, instance role).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import PurePosixPath
from typing import Any

import boto3
from botocore.config import Config
from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    NoCredentialsError,
    PartialCredentialsError,
)
from sqlite_utils import Database

from collectors.common import RETRY_CONFIG, error_code
from collectors.local import IngestResult, Job, _Writer, iter_batches, prepare
from lambdascope import rollup
from lambdascope.store import rebuild_dirty_hours

ETAG_PREFIX = "etag:"  # ingested_files.head_sha256 of an object: its ETag


class S3AccessError(Exception):
    """The bucket or prefix cannot be listed (one line for the user)."""


@dataclass(frozen=True)
class S3Object:
    bucket: str
    key: str
    etag: str
    size: int
    last_modified: float  # epoch seconds

    @property
    def uri(self) -> str:
        return f"s3://{self.bucket}/{self.key}"


def is_s3_uri(path: str) -> bool:
    return path.startswith("s3://")


def split_uri(uri: str) -> tuple[str, str]:
    """``s3://bucket/prefix`` -> (bucket, prefix); raises S3AccessError when malformed."""
    rest = uri[len("s3://") :] if is_s3_uri(uri) else ""
    bucket, _, prefix = rest.partition("/")
    if not bucket:
        raise S3AccessError(f"not an s3://bucket/prefix location: {uri!r}")
    return bucket, prefix


def make_client(endpoint_url: str | None = None, profile: str | None = None) -> Any:
    """An S3 client from the standard credential chain, with the collectors' retries."""
    session = boto3.Session(profile_name=profile)
    return session.client(
        "s3",
        endpoint_url=endpoint_url,
        config=Config(retries=dict(RETRY_CONFIG)),  # type: ignore[arg-type]  # botocore edits it
    )


def _problem(exc: Exception) -> str:
    if isinstance(exc, NoCredentialsError | PartialCredentialsError):
        return "no AWS credentials found: set a profile or the standard AWS environment variables"
    if isinstance(exc, ClientError):
        code = error_code(exc)
        message = str(exc.response.get("Error", {}).get("Message", "")) or code
        if code in ("AccessDenied", "403"):
            return f"access denied ({message}): needs s3:ListBucket and s3:GetObject"
        return f"{code}: {message}"
    return str(exc)


def list_objects(client: Any, uri: str) -> list[S3Object]:
    """Every object under ``uri`` (ListObjectsV2, paged), in key order; "folder" markers
    (keys ending in /) left out. Raises S3AccessError when the listing fails."""
    bucket, prefix = split_uri(uri)
    found: list[S3Object] = []
    try:
        for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
            for item in page.get("Contents", []):
                key = str(item["Key"])
                if key.endswith("/"):
                    continue
                found.append(
                    S3Object(
                        bucket,
                        key,
                        str(item.get("ETag", "")).strip('"'),
                        int(item.get("Size", 0)),
                        item["LastModified"].timestamp(),
                    )
                )
    except (ClientError, BotoCoreError) as exc:
        raise S3AccessError(f"cannot list {uri}: {_problem(exc)}") from None
    return sorted(found, key=lambda o: o.key)


def plan(
    db: Database, objects: Sequence[S3Object], result: IngestResult, function_name: str | None
) -> list[tuple[Job, S3Object]]:
    """The objects to read and from where; those read to their end before are skipped."""
    jobs = []
    for obj in objects:
        head = ETAG_PREFIX + obj.etag
        row = db.conn.execute(
            "SELECT head_sha256, offset_bytes, completed FROM ingested_files WHERE path = ?",
            (obj.uri,),
        ).fetchone()
        start = 0
        if row is not None and row[0] == head:
            if row[2]:
                result.files += 1
                result.unchanged_files += 1
                continue
            start = int(row[1])
        # as local files: the default function is the name of the object's "directory"
        folder = PurePosixPath(obj.bucket, obj.key).parent
        default = function_name or folder.name or "unknown"
        source = "--function" if function_name else f"the folder s3://{folder}"
        registry = (obj.uri, obj.size, int(obj.last_modified), head)
        job = Job(obj.uri, default, start, obj.last_modified, registry, obj.size, source)
        jobs.append((job, obj))
    return jobs


def _batches(client: Any, job: Job, obj: S3Object) -> Iterator[Any]:
    body = client.get_object(Bucket=obj.bucket, Key=obj.key, IfMatch=f'"{obj.etag}"')["Body"]
    try:
        for batch, _source in iter_batches(
            body,
            start_offset=job.start_offset,
            default_timestamp=job.mtime,
            default_function=job.default_function,
        ):
            yield prepare(batch)
    finally:
        body.close()


def ingest_s3(
    db: Database,
    uris: Sequence[str],
    *,
    function_name: str | None = None,
    account_id: str = "",
    region: str = "",
    architecture: str = "x86_64",
    client: Any = None,
    endpoint_url: str | None = None,
    progress: Callable[[IngestResult], None] | None = None,
    result: IngestResult | None = None,
) -> IngestResult:
    """Ingest every object under each ``s3://bucket/prefix`` (see the module docstring).

    An object that cannot be read is listed in ``result.unreadable`` and the run goes on;
    a prefix that cannot be listed raises S3AccessError before anything is written.
    ``result`` adds this run's totals to an existing one (local paths ingested first).
    """
    started = time.monotonic()
    result = result if result is not None else IngestResult()
    before = result.seconds
    if client is None:
        try:
            client = make_client(endpoint_url)
        except BotoCoreError as exc:
            raise S3AccessError(str(exc)) from None
    objects = [obj for uri in uris for obj in list_objects(client, uri)]
    rebuild_dirty_hours(db)  # a run that died left its touched hours here
    jobs = plan(db, objects, result, function_name)
    result.bytes_total += sum(max(obj.size - job.start_offset, 0) for job, obj in jobs)
    writer = _Writer(db, result, {}, account_id, region, architecture, progress, started)
    try:
        for index, (job, obj) in enumerate(jobs):
            try:
                for batch in _batches(client, job, obj):
                    writer.store(job, batch, index)
                writer.finish(job, index)
            except (ClientError, BotoCoreError, OSError) as exc:
                writer.pending.pop(index, None)
                reason = _problem(exc) if not isinstance(exc, OSError) else str(exc)
                if isinstance(exc, ClientError) and error_code(exc) in (
                    "PreconditionFailed",
                    "412",
                ):
                    reason = "replaced while being read: run again to read the new object"
                result.unreadable.append((job.path, reason))
        writer.commit()
    finally:
        if db.conn.in_transaction:
            db.conn.rollback()  # interrupted: the batches since the last commit are redone
    rebuild_dirty_hours(db)
    rollup.refresh(db)
    result.seconds = before + time.monotonic() - started
    return result
