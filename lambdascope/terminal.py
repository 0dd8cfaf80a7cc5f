"""Terminal output drawn by rich: progress columns, one-frame text, width-aware tables.

Commands use these only on a terminal; pipes, cron and systemd get plain lines.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal, TextIO

from rich.console import Console, RenderableType
from rich.progress import ProgressColumn, Task
from rich.table import Table
from rich.text import Text

# Wide enough that no table is ever wrapped when it is not shown on a terminal.
UNLIMITED_WIDTH = 100_000


def terminal_console(file: TextIO, height: int | None = None) -> Console:
    """A console drawing on ``file`` (a terminal) with its colours and size."""
    return Console(file=file, height=height, highlight=False)


def frame_text(renderable: RenderableType, width: int) -> list[str]:
    """The plain-text lines of one frame of ``renderable`` at ``width`` columns."""
    console = Console(width=width, color_system=None, highlight=False, legacy_windows=False)
    with console.capture() as capture:
        console.print(renderable)
    return [line.rstrip() for line in capture.get().splitlines()]


class RateColumn(ProgressColumn):
    """Units completed per second, e.g. ``3.2 parts/s`` (rich's own rate column is bytes)."""

    def __init__(self, unit: str) -> None:
        super().__init__()
        self.unit = unit

    def render(self, task: Task) -> Text:
        speed = task.finished_speed or task.speed
        shown = "-" if speed is None else f"{speed:,.1f}"
        return Text(f"{shown} {self.unit}/s", style="progress.data.speed")


@dataclass(frozen=True)
class TableColumn:
    """A column of :func:`render_table`. ``drop`` orders the columns left out on a narrow
    terminal (1 first); ``None`` is always shown."""

    header: str
    justify: Literal["left", "right"] = "left"
    drop: int | None = None


NAME_FOLD_WIDTH = 24


def _widths(columns: Sequence[TableColumn], rows: Sequence[Sequence[str]]) -> list[int]:
    return [
        max([len(column.header), *(len(row[i]) for row in rows)])
        for i, column in enumerate(columns)
    ]


def _table(columns: Sequence[TableColumn], rows: Sequence[Sequence[str]], bold: bool) -> Table:
    widths = _widths(columns, rows)
    table = Table(
        box=None,
        pad_edge=False,
        show_edge=False,
        padding=(0, 1),
        header_style="bold" if bold else "",
    )
    for index, column in enumerate(columns):
        table.add_column(
            column.header,
            justify=column.justify,
            # the first column (a name) folds; figures never wrap or lose digits
            no_wrap=index > 0,
            overflow="fold",
            min_width=min(widths[index], NAME_FOLD_WIDTH) if index == 0 else widths[index],
        )
    for row in rows:
        table.add_row(*row)
    return table


def render_table(
    columns: Sequence[TableColumn],
    rows: Sequence[Sequence[str]],
    width: int | None = None,
    color: bool = False,
) -> tuple[str, list[str]]:
    """``rows`` as an aligned table: one line per row, columns two spaces apart.

    With a ``width`` (a terminal's), columns are left out in their ``drop`` order until
    the figures and at least ``NAME_FOLD_WIDTH`` characters of the first column fit; the
    first column then folds into the room left. Without one nothing is wrapped (pipes,
    files). Returns the text and the headers left out, in the order they were."""
    widths = _widths(columns, rows)
    kept = list(range(len(columns)))
    droppable = sorted(
        (i for i, c in enumerate(columns) if c.drop is not None),
        key=lambda i: columns[i].drop or 0,
    )

    def needed() -> int:
        name = min(widths[kept[0]], NAME_FOLD_WIDTH) if kept[0] == 0 else widths[kept[0]]
        return name + sum(widths[i] for i in kept[1:]) + 2 * (len(kept) - 1)

    dropped: list[int] = []
    while width is not None and droppable and needed() > width:
        dropped.append(droppable.pop(0))
        kept.remove(dropped[-1])
    # Narrower than the smallest table: lines longer than the terminal beat lost names.
    fits = width is not None and needed() <= width
    console = Console(
        width=width if fits and width is not None else UNLIMITED_WIDTH,
        color_system="standard" if color else None,
        highlight=False,
        legacy_windows=False,
    )
    table = _table([columns[i] for i in kept], [[row[i] for i in kept] for row in rows], color)
    with console.capture() as capture:
        console.print(table)
    text = "".join(line.rstrip() + "\n" for line in capture.get().splitlines())
    hidden = [columns[i].header for i in dropped]
    return text, hidden


__all__ = [
    "RateColumn",
    "TableColumn",
    "frame_text",
    "render_table",
    "terminal_console",
]
