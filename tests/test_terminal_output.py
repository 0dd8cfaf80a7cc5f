"""Terminal output drawn by rich: bars and width-aware tables on a terminal (a real
pseudo-terminal), plain quiet output for pipes, cron and systemd."""

from __future__ import annotations

import os
import pty
import re
import shutil
import subprocess
import sys
from pathlib import Path

from click.testing import CliRunner
from sqlite_utils import Database

from lambdascope.cli import cli
from lambdascope.commands.summary import SummaryRow, render_table
from lambdascope.terminal import TableColumn
from lambdascope.terminal import render_table as render_any_table
from tests.test_summary import UNTIL, fill

SAMPLE = Path(__file__).parent / "data" / "logs" / "sample"
ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")


def _on_a_terminal(args: list[str], stream: str, columns: int = 80) -> tuple[int, str, str]:
    """Run lambdascope with ``stream`` ("stdout" or "stderr") on a pseudo-terminal of
    ``columns`` columns; returns the exit status, the last frame drawn on the terminal
    (without colours and cursor moves) and the other stream."""
    main_fd, child_fd = pty.openpty()
    env = {**os.environ, "COLUMNS": str(columns), "LINES": "24", "TERM": "xterm"}
    on_pty = {stream: child_fd}
    other = "stderr" if stream == "stdout" else "stdout"
    proc = subprocess.run(
        [sys.executable, "-m", "lambdascope.cli", *args],
        **on_pty,
        **{other: subprocess.PIPE},
        text=True,
        timeout=120,
        env=env,
    )
    os.close(child_fd)
    chunks = []
    while True:
        try:
            chunk = os.read(main_fd, 65536)
        except OSError:  # EIO: the other end is closed and drained
            break
        if not chunk:
            break
        chunks.append(chunk)
    os.close(main_fd)
    drawn = b"".join(chunks).decode().replace("\r\n", "\n")
    last_frame = drawn.split("\r")[-1]  # a redraw starts at the line's beginning
    return proc.returncode, ANSI.sub("", last_frame), getattr(proc, other)


def test_ingest_draws_a_bar_on_a_terminal_and_stays_quiet_otherwise(tmp_path: Path) -> None:
    logs = tmp_path / "logs"
    shutil.copytree(SAMPLE, logs)
    code, terminal, stdout = _on_a_terminal(
        ["--db", str(tmp_path / "a.db"), "ingest", str(logs)], "stderr"
    )
    assert code == 0, terminal
    (last,) = [line for line in terminal.splitlines() if "━" in line]  # the bar's last frame
    assert re.match(r"━+ 100% 257\.0/257\.0 kB [\d.]+ [kM]B/s 0:00:00 2 files, ", last), last
    assert len(last) <= 80  # fitted to the terminal
    assert last.endswith(" 4,871 lines, 1,200 reports")  # the final totals
    assert stdout.startswith("2 files, 4,871 lines, 1,200 reports (1,200 new)")
    # not a terminal: the summary line only, nothing drawn
    result = CliRunner().invoke(cli, ["--db", str(tmp_path / "b.db"), "ingest", str(logs)])
    assert result.exit_code == 0
    assert "━" not in result.stderr and "\x1b[" not in result.stderr
    assert result.stdout.count("\n") == 1


def _rows() -> list[SummaryRow]:
    def row(name: str, invocations: int) -> SummaryRow:
        return SummaryRow(
            *(name, "123456789012", "eu-west-1", "python3.12", "arm64", (128, 1024)),
            *(invocations, 3, 0, 1, 0, 2, 10.0, 40.0, 55.5, 1200.0, 700, 680.0),
            *(1_767_225_600, 1_767_232_860, ("local",)),
        )

    return [row("api", 1_234_567), row("a-rather-long-function-name-of-the-billing-team", 7)]


def test_the_table_fits_the_terminal_by_leaving_out_the_least_needed_columns() -> None:
    rows = _rows()
    wide, hidden = render_table(rows)
    assert hidden == [] and len(wide.splitlines()) == 3  # one line per function
    assert max(len(line) for line in wide.splitlines()) > 200

    text, hidden = render_table(rows, width=80)
    lines = text.splitlines()
    assert max(len(line) for line in lines) <= 80
    assert re.split(r"  +", lines[0]) == [
        *("FUNCTION", "INVOCATIONS", "ERRORS", "P95 MS", "MEMORY MB", "MAX USED")
    ]
    assert hidden[:3] == ["FIRST SEEN", "LAST SEEN", "P50 MS"] and "P95 MS" not in hidden
    assert "1,234,567" in text and "128,1024" in text  # figures whole, never cut
    # the long name folds within its column instead of pushing the figures off screen
    assert "".join(re.split(r"\s{2,}", line)[0] for line in lines[2:]).startswith(
        "a-rather-long-function-name-of-the-billing-team"
    )

    at_120, hidden_120 = render_table(rows, width=120)
    assert max(len(line) for line in at_120.splitlines()) <= 120
    assert len(hidden_120) < len(hidden)


def test_a_terminal_narrower_than_the_smallest_table_keeps_every_name_and_figure() -> None:
    columns = [TableColumn("NAME"), TableColumn("COUNT", "right"), TableColumn("X", drop=1)]
    text, hidden = render_any_table(columns, [["orders-api", "12,345", "x"]], width=10)
    assert hidden == ["X"]
    assert text.splitlines() == ["NAME         COUNT", "orders-api  12,345"]


def test_summary_on_a_terminal_fits_its_width(db: Database, db_path: Path) -> None:
    fill(db)
    args = ["--db", str(db_path), "summary", "--until", UNTIL]
    code, terminal, stderr = _on_a_terminal(args, "stdout", columns=80)
    assert code == 0
    lines = terminal.splitlines()
    assert lines[0].split()[:3] == ["FUNCTION", "INVOCATIONS", "ERRORS"]
    assert [line.split()[0] for line in lines[1:]] == ["api", "etl"]
    assert max(len(line) for line in lines) <= 80
    assert stderr == (
        "note: FIRST SEEN, LAST SEEN, P50 MS, MAX MS, COLD, OOM, TIMEOUTS left out to fit"
        " 80 columns"
        " (--format csv or json has every column)\n"
    )
