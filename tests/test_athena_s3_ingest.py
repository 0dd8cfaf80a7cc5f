"""`lambdascope ingest s3://bucket/prefix/` over real HTTP against moto's S3: the same store
as ingesting a local copy of the same objects; re-runs add nothing; a replaced object is
read again; a read that breaks off is completed by the next run; errors are one line."""

from __future__ import annotations

import shutil
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.exceptions import ResponseStreamingError
from click.testing import CliRunner
from moto.server import ThreadedMotoServer
from sqlite_utils import Database

from collectors.local import ingest_paths
from lambdascope.cli import cli
from lambdascope.db import open_db
from tests import firehose_archive

DATA = Path(__file__).parent / "data" / "logs"
BUCKET = "org-lambda-logs"
PREFIX = "firehose/lambda/"


@pytest.fixture(scope="module")
def s3_endpoint() -> Iterator[str]:
    with pytest.MonkeyPatch.context() as patch:
        for key, value in {
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_DEFAULT_REGION": "us-east-1",
            "AWS_CONFIG_FILE": "/nonexistent/aws-config",
            "AWS_SHARED_CREDENTIALS_FILE": "/nonexistent/aws-credentials",
        }.items():
            patch.setenv(key, value)
        patch.delenv("AWS_SESSION_TOKEN", raising=False)
        patch.delenv("AWS_PROFILE", raising=False)
        server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
        server.start()
        host, port = server.get_host_and_port()
        try:
            yield f"http://{host}:{port}"
        finally:
            server.stop()


@pytest.fixture
def bucket(s3_endpoint: str, tmp_path: Path) -> tuple[Any, Path]:
    """The archive (and a few other log files) in a fresh bucket and in a local copy."""
    urllib.request.urlopen(
        urllib.request.Request(f"{s3_endpoint}/moto-api/reset", method="POST")
    ).close()
    s3 = boto3.client("s3", endpoint_url=s3_endpoint)
    s3.create_bucket(Bucket=BUCKET)
    local = tmp_path / "copy"
    archive = firehose_archive.build()
    archive.write(local)
    # other shapes the local reader knows: concatenated envelopes, text and JSON-format logs
    extras = {
        "other/firehose-1": DATA / "envelopes" / "firehose-1",
        "other/firehose-2.gz": DATA / "envelopes" / "firehose-2.gz",
        "orders-api/2024-05-01.log": DATA / "sample" / "orders-api" / "2024-05-01.log",
        "json-fn/json_format.log": DATA / "json" / "json_format.log",
    }
    for key, source in extras.items():
        (local / key).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(source, local / key)
    for path in sorted(p for p in local.rglob("*") if p.is_file()):
        s3.put_object(
            Bucket=BUCKET, Key=PREFIX + str(path.relative_to(local)), Body=path.read_bytes()
        )
    s3.put_object(Bucket=BUCKET, Key=PREFIX + "empty-folder/", Body=b"")  # a console "folder"
    s3.put_object(Bucket=BUCKET, Key="elsewhere/x.log", Body=b"REPORT RequestId: 1\tDuration: 1 ms")
    return s3, local


def store_rows(db: Database) -> dict[str, list[tuple[Any, ...]]]:
    """Everything ingest stores, except where each file came from."""
    out = {}
    for table in ("functions", "invocations", "hourly_facts", "daily_facts"):
        if table in db.table_names():
            out[table] = sorted(db.conn.execute(f"SELECT * FROM [{table}]").fetchall(), key=repr)
    out["ingested_files"] = sorted(
        db.conn.execute(
            "SELECT offset_bytes, lines, reports, skipped, completed, function_name"
            " FROM ingested_files"
        ).fetchall(),
        key=repr,
    )
    return out


def ingest_cli(db_path: Path, endpoint: str, *extra: str) -> Any:
    return CliRunner().invoke(
        cli,
        ["--db", str(db_path), "ingest", f"s3://{BUCKET}/{PREFIX}", "--endpoint-url", endpoint,
         "--account", "111111111111", *extra],
    )  # fmt: skip


def test_athena_archive_ingest_s3_gives_the_store_of_a_local_copy(
    s3_endpoint: str, bucket: tuple[Any, Path], tmp_path: Path
) -> None:
    _s3, local = bucket
    local_db = open_db(tmp_path / "local.db")
    ingest_paths(local_db, [str(local)], account_id="111111111111", workers=0)

    s3_path = tmp_path / "s3.db"
    result = ingest_cli(s3_path, s3_endpoint)
    assert result.exit_code == 0, result.output
    s3_db = open_db(s3_path)
    assert store_rows(s3_db) == store_rows(local_db)
    assert s3_db.conn.execute("SELECT count(*) FROM invocations").fetchone()[0] > 100
    paths = [r[0] for r in s3_db.conn.execute("SELECT path FROM ingested_files ORDER BY path")]
    assert all(p.startswith(f"s3://{BUCKET}/{PREFIX}") for p in paths)
    assert len(paths) == len([p for p in local.rglob("*") if p.is_file()])

    # a re-run reads nothing and adds nothing
    again = ingest_cli(s3_path, s3_endpoint)
    assert again.exit_code == 0, again.output
    assert "(0 new)" in again.output
    assert store_rows(open_db(s3_path)) == store_rows(local_db)


def test_athena_archive_ingest_s3_rereads_a_replaced_object_and_resumes_a_broken_read(
    s3_endpoint: str, bucket: tuple[Any, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    s3, local = bucket
    db_path = tmp_path / "s3.db"

    # the connection drops half-way through one object: that object is reported, the
    # others are stored, and the next run completes it
    import collectors.s3

    broken = f"s3://{BUCKET}/{PREFIX}other/firehose-2.gz"
    original = collectors.s3.make_client

    def breaking_client(*args: Any, **kwargs: Any) -> Any:
        client = original(*args, **kwargs)

        keys: list[str] = []

        def cut(parsed: dict[str, Any], **_: Any) -> None:
            if keys[-1].endswith("other/firehose-2.gz"):
                parsed["Body"] = _Breaking(parsed["Body"], parsed["ContentLength"] // 2)

        client.meta.events.register(
            "before-parameter-build.s3.GetObject", lambda params, **_: keys.append(params["Key"])
        )
        client.meta.events.register("after-call.s3.GetObject", cut)
        return client

    monkeypatch.setattr(collectors.s3, "make_client", breaking_client)
    first = ingest_cli(db_path, s3_endpoint)
    assert first.exit_code == 1
    assert f"Error: cannot read {broken}: An error occurred while reading" in first.output
    monkeypatch.setattr(collectors.s3, "make_client", original)
    second = ingest_cli(db_path, s3_endpoint)
    assert second.exit_code == 0, second.output

    local_db = open_db(tmp_path / "local.db")
    ingest_paths(local_db, [str(local)], account_id="111111111111", workers=0)
    assert store_rows(open_db(db_path)) == store_rows(local_db)

    # an object replaced under the same key (new ETag) is read again: only what is new counts
    key = PREFIX + "orders-api/2024-05-01.log"
    extra = (
        "2024-05-01T13:00:00.000Z\tREPORT RequestId: 9f0c1d2e-0000-4000-8000-000000000001"
        "\tDuration: 10.00 ms\tBilled Duration: 10 ms\tMemory Size: 512 MB"
        "\tMax Memory Used: 80 MB\t\n"
    )
    body = (local / "orders-api" / "2024-05-01.log").read_bytes() + extra.encode()
    s3.put_object(Bucket=BUCKET, Key=key, Body=body)
    (local / "orders-api" / "2024-05-01.log").write_bytes(body)
    third = ingest_cli(db_path, s3_endpoint)
    assert third.exit_code == 0, third.output
    assert "(1 new)" in third.output
    ingest_paths(local_db, [str(local)], account_id="111111111111", workers=0)
    # the same rows; only the registry's line counters differ (the local file grew and was
    # read on from its offset, the replaced object was read again from its start)
    s3_rows, local_rows = store_rows(open_db(db_path)), store_rows(local_db)
    del s3_rows["ingested_files"], local_rows["ingested_files"]
    assert s3_rows == local_rows


class _Breaking:
    """A response body whose connection breaks after ``limit`` bytes."""

    def __init__(self, body: Any, limit: int) -> None:
        self.body, self.limit, self.read_bytes = body, limit, 0

    def read(self, size: int = -1) -> bytes:
        if self.read_bytes >= self.limit:
            raise ResponseStreamingError(error="Connection broken: IncompleteRead")
        data = self.body.read(min(size, self.limit - self.read_bytes) if size > 0 else self.limit)
        self.read_bytes += len(data)
        return bytes(data)

    def close(self) -> None:
        self.body.close()


def test_athena_archive_ingest_s3_errors_are_one_line(s3_endpoint: str, tmp_path: Path) -> None:
    db_path = tmp_path / "s3.db"
    missing = CliRunner().invoke(
        cli,
        ["--db", str(db_path), "ingest", "s3://no-such-bucket/x/", "--endpoint-url", s3_endpoint],
    )
    assert missing.exit_code == 1
    assert (
        missing.output.strip()
        .splitlines()[-1]
        .startswith("Error: cannot list s3://no-such-bucket/x/: NoSuchBucket")
    )
    assert "Traceback" not in missing.output
    bad = CliRunner().invoke(cli, ["--db", str(db_path), "ingest", "s3://"])
    assert bad.exit_code == 1
    assert "Error: not an s3://bucket/prefix location: 's3://'" in bad.output
