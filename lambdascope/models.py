"""Frozen dataclasses shared by the parser, the store and the analyses."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

EventKind = Literal["report", "init_report", "timeout", "out_of_memory"]


@dataclass(frozen=True, slots=True)
class PlatformEvent:
    """One platform event understood from a log line.

    ``kind``: ``report`` (a REPORT line / platform.report), ``init_report``
    (INIT_REPORT / platform.initReport), ``timeout`` (``Task timed out after``),
    ``out_of_memory`` (a runtime out-of-memory message in an application line).
    Times are epoch seconds (float, UTC) or None when the line carries none;
    durations in milliseconds, memory in MB (decimal MB as Lambda reports it).
    ``status`` is ``success`` | ``error`` | ``timeout`` when the line says so, else None.
    """

    kind: EventKind
    request_id: str | None = None
    timestamp: float | None = None
    function_name: str | None = None
    duration_ms: float | None = None
    billed_duration_ms: float | None = None
    memory_size_mb: int | None = None
    max_memory_used_mb: int | None = None
    init_duration_ms: float | None = None
    restore_duration_ms: float | None = None
    billed_restore_duration_ms: float | None = None
    status: str | None = None
    error_type: str | None = None
    timeout_s: float | None = None
