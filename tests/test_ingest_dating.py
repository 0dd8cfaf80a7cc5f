"""Platform lines without a time: dated by the nearest timestamped line (before, then
after), then by a date in the file's path, then by the file's modification time."""

from __future__ import annotations

import json
import os
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

from click.testing import CliRunner

from collectors.local import default_time
from lambdascope.cli import cli
from lambdascope.db import open_db


def _report(memory_used: int) -> str:
    return (
        f"REPORT RequestId: {uuid.uuid4()}\tDuration: 120.50 ms\tBilled Duration: 121 ms\t"
        f"Memory Size: 512 MB\tMax Memory Used: {memory_used} MB\t"
    )


def _iso(seconds: float) -> str:
    return datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%dT%H:%M:%S.000Z")


def test_default_time_reads_dates_in_paths() -> None:
    noon = datetime(2025, 11, 4, 12, tzinfo=UTC).timestamp()
    assert default_time("/x/2025/11/04/[$LATEST]abc", 1.0) == (
        noon,
        "the date in the file's path (2025/11/04)",
    )
    assert default_time("/exports/api-2025-11-04T10.log", 1.0)[0] == noon
    assert default_time("/x/2025/13/45/stream", 7.0) == (7.0, "the file's modification time")
    assert default_time("/x/build-12025-11-04/log", 7.0)[1] == "the file's modification time"


def test_month_old_logs_with_untimed_files_are_reported_without_window_options(
    tmp_path: Path,
) -> None:
    now = time.time()
    month_ago = int(now - 30 * 86400) // 86400 * 86400  # midnight UTC, 30 days back
    day = datetime.fromtimestamp(month_ago, UTC).strftime("%Y-%m-%d")
    logs = tmp_path / "logs"
    # api: a CloudWatch export, every line timestamped
    (logs / "api").mkdir(parents=True)
    (logs / "api" / "export.log").write_text(
        "".join(f"{_iso(month_ago + 600 * i)} {_report(150)}\n" for i in range(60))
    )
    # worker: no timestamps at all, a date in its file name (copied today: mtime is now)
    (logs / "worker").mkdir()
    (logs / "worker" / f"{day}.log").write_text("".join(f"{_report(200)}\n" for _ in range(60)))
    # thumbs: the first reports have no time; a timestamped application line follows them
    (logs / "thumbs").mkdir()
    (logs / "thumbs" / "run.log").write_text(
        "".join(f"{_report(300)}\n" for _ in range(55))
        + f"{_iso(month_ago + 7200)} INFO resized 55 images\n"
        + "".join(f"{_report(300)}\n" for _ in range(5))
    )
    db_path = tmp_path / "store.db"
    runner = CliRunner()
    ingest = runner.invoke(cli, ["--db", str(db_path), "ingest", str(logs)])
    assert ingest.exit_code == 0, ingest.output
    assert (
        "reports without a time of their own dated 60 from the date in the file's path"
        f" ({day}), 55 from a later line of the same file" in ingest.output
    )
    stamps = dict(
        open_db(db_path).conn.execute(
            "SELECT f.function_name, max(i.timestamp) FROM invocations i"
            " JOIN functions f ON f.id = i.function_id GROUP BY f.function_name"
        )
    )
    assert stamps["worker"] == month_ago + 12 * 3600  # noon of the path's date
    assert stamps["thumbs"] == month_ago + 7200  # the timestamped line, before and after
    assert all(value < now - 29 * 86400 for value in stamps.values())  # none dated "now"

    report = runner.invoke(cli, ["--db", str(db_path), "report", "memory", "--format", "json"])
    assert report.exit_code == 0
    rows = json.loads(report.stdout)
    assert sorted(r["function_name"] for r in rows) == ["api", "thumbs", "worker"]
    assert all(r["invocations"] == 60 for r in rows)
    assert "showing the 14d up to the latest data" in report.stderr


def test_the_window_follows_data_more_than_a_day_old_even_inside_it(tmp_path: Path) -> None:
    now = time.time()
    logs = tmp_path / "logs" / "api"
    logs.mkdir(parents=True)
    # data from 3 days ago only: inside the default 14 days, but more than a day old
    start = int(now - 3 * 86400) // 3600 * 3600
    (logs / "export.log").write_text(
        "".join(f"{_iso(start + 60 * i)} {_report(150)}\n" for i in range(60))
    )
    older = tmp_path / "logs" / "old"
    older.mkdir()
    (older / "export.log").write_text(
        "".join(f"{_iso(start - 12 * 86400 + 60 * i)} {_report(150)}\n" for i in range(60))
    )
    os.utime(logs / "export.log", (start, start))
    db_path = tmp_path / "store.db"
    runner = CliRunner()
    assert (
        runner.invoke(cli, ["--db", str(db_path), "ingest", str(tmp_path / "logs")]).exit_code == 0
    )
    report = runner.invoke(cli, ["--db", str(db_path), "report", "memory"])
    assert "note: no data in the last day; showing the 14d up to the latest data" in report.stderr
    # the window now reaches back 14 days from the latest data: both functions answer
    assert sorted(r["function_name"] for r in json.loads(report.stdout)) == ["api", "old"]
