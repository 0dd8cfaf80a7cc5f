"""AWS Lambda Power Tuning results: parse an execution's output, store it as a measured
duration curve, read the latest curve per function back.

Accepted shapes (all JSON):
- the state machine's output (the analyzer's result): ``{"power", "cost", "duration",
  "stateMachine": {"executionCost", "lambdaCost", "visualization"}, "stats"?}``;
  ``stats`` (``[{"value", "averagePrice", "averageDuration"}]``) only with
  ``includeOutputResults``, otherwise the per-size averages are read from the
  visualization URL's hash (base64 of little-endian Int16 sizes; Float32 durations;
  Float32 costs, separated by ``;``);
- the same wrapped as ``{"results": {...}}`` (the project's README);
- ``aws stepfunctions describe-execution`` JSON, whose ``output`` and ``input`` are JSON
  strings: the input's ``lambdaARN`` and ``strategy`` identify the function and strategy.

Units: MB, milliseconds, USD per invocation; times are epoch seconds (UTC).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import math
import struct
from dataclasses import dataclass
from datetime import datetime
from itertools import pairwise
from typing import Any

from sqlite_utils import Database

from lambdascope.db import function_id
from lambdascope.evidence import has_table
from lambdascope.pricing import MAX_MEMORY_MB, MIN_MEMORY_MB, cpu_share
from lambdascope.timeutil import parse_timestamp, to_epoch


class PowerTuningError(ValueError):
    """Input that is not a usable Power Tuning result (one line for the user)."""


@dataclass(frozen=True)
class MeasuredPoint:
    """Power Tuning's averages at one size: duration (ms, trimmed mean) and cost (USD per
    invocation)."""

    memory_mb: int
    average_duration_ms: float
    average_cost_usd: float


@dataclass(frozen=True)
class FunctionRef:
    """The function a run measured: name, and account and region when an ARN said so."""

    function_name: str
    account_id: str = ""
    region: str = ""


@dataclass(frozen=True)
class PowerTuningRun:
    """One Power Tuning execution's result."""

    points: tuple[MeasuredPoint, ...]
    chosen_memory_mb: int
    chosen_cost_usd: float | None
    chosen_duration_ms: float | None
    strategy: str | None
    lambda_cost_usd: float | None
    execution_cost_usd: float | None
    visualization_url: str | None
    function: FunctionRef | None
    execution_arn: str | None
    measured_at: int | None

    @property
    def run_key(self) -> str:
        """The execution ARN, else a digest of the results (a re-import is a no-op)."""
        if self.execution_arn:
            return self.execution_arn
        body = json.dumps(
            [[p.memory_mb, p.average_duration_ms, p.average_cost_usd] for p in self.points]
            + [self.chosen_memory_mb, self.visualization_url],
        )
        return "sha256:" + hashlib.sha256(body.encode()).hexdigest()


def parse_function_ref(text: str) -> FunctionRef:
    """A function name or ARN (``arn:aws:lambda:<region>:<account>:function:<name>[:qual]``)."""
    parts = text.strip().split(":")
    if text.startswith("arn:"):
        if len(parts) < 7 or parts[2] != "lambda" or parts[5] != "function" or not parts[6]:
            raise PowerTuningError(f"not a Lambda function ARN: {text}")
        # `lambdascope power-tuning` writes <account-id> / <region> when it does not know them
        account, region = (p if not p.startswith("<") else "" for p in (parts[4], parts[3]))
        return FunctionRef(parts[6], account, region)
    if not text.strip() or ":" in text:
        raise PowerTuningError(f"not a function name or ARN: {text!r}")
    return FunctionRef(text.strip())


def decode_visualization(url: str) -> tuple[MeasuredPoint, ...]:
    """The per-size averages encoded in a visualization URL's hash (Power Tuning's
    ``utils.buildVisualizationURL``: base64 of Int16 sizes, Float32 durations and Float32
    costs, little-endian, joined by ``;``)."""
    _, sep, fragment = url.partition("#")
    fields = fragment.split(";")
    if not sep or len(fields) != 3:
        raise PowerTuningError("the visualization URL carries no results (no #sizes;times;costs)")
    try:
        raw = [base64.b64decode(f, validate=True) for f in fields]
    except (binascii.Error, ValueError):
        raise PowerTuningError("the visualization URL's results are not base64") from None
    n = len(raw[0]) // 2
    if n == 0 or len(raw[0]) != 2 * n or len(raw[1]) != 4 * n or len(raw[2]) != 4 * n:
        raise PowerTuningError("the visualization URL's results have mismatched lengths")
    sizes = struct.unpack(f"<{n}h", raw[0])
    times = struct.unpack(f"<{n}f", raw[1])
    costs = struct.unpack(f"<{n}f", raw[2])
    return tuple(
        MeasuredPoint(int(m), float(d), float(c))
        for m, d, c in zip(sizes, times, costs, strict=True)
    )


def _number(value: Any, what: str) -> float:
    if isinstance(value, bool):
        raise PowerTuningError(f"{what} is not a number: {value!r}")
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise PowerTuningError(f"{what} is not a number: {value!r}") from None
    if not math.isfinite(number) or number < 0:
        raise PowerTuningError(f"{what} is not a non-negative number: {value!r}")
    return number


def _size(value: Any, what: str) -> int:
    number = _number(value, what)
    if number != int(number) or not MIN_MEMORY_MB <= number <= MAX_MEMORY_MB:
        raise PowerTuningError(f"{what} is not a memory size of 128..10240 MB: {value!r}")
    return int(number)


def _json_object(text: Any, what: str) -> dict[str, Any]:
    if isinstance(text, dict):
        return text
    if not isinstance(text, str):
        raise PowerTuningError(f"{what} is not a JSON object")
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise PowerTuningError(f"{what} is not JSON: {exc.msg} at line {exc.lineno}") from None
    if not isinstance(value, dict):
        raise PowerTuningError(f"{what} is not a JSON object")
    return value


def _epoch(value: Any) -> int | None:
    """describe-execution dates: ISO-8601 (aws-cli) or epoch seconds (boto3 JSON dumps)."""
    if value is None:
        return None
    if isinstance(value, int | float) and not isinstance(value, bool):
        return int(value)
    try:
        return to_epoch(parse_timestamp(str(value)))
    except ValueError:
        try:
            return to_epoch(datetime.fromisoformat(str(value)))
        except ValueError:
            raise PowerTuningError(f"not a date: {value!r}") from None


def parse_run(text: str, *, execution_input: str | None = None) -> PowerTuningRun:
    """A Power Tuning result from JSON text in any accepted shape (see the module doc).

    ``execution_input``: the execution's input JSON (e.g. what ``lambdascope power-tuning``
    printed) when ``text`` is the bare output; its ``lambdaARN`` names the function.
    Raises PowerTuningError with a one-line message.
    """
    document = _json_object(text, "the input")
    execution_arn = None
    measured_at = None
    given_input: dict[str, Any] = {}
    if "output" in document and ("executionArn" in document or "status" in document):
        status = document.get("status")
        if status not in (None, "SUCCEEDED"):
            raise PowerTuningError(f"the execution ended {status}: it has no results to import")
        execution_arn = str(document.get("executionArn") or "") or None
        measured_at = _epoch(document.get("stopDate") or document.get("startDate"))
        if document.get("input") is not None:
            given_input = _json_object(document["input"], "the execution's input")
        document = _json_object(document["output"], "the execution's output")
    if "results" in document and isinstance(document["results"], dict):
        document = document["results"]
    if execution_input is not None:
        given_input = _json_object(execution_input, "the execution input")
    if "power" not in document:
        raise PowerTuningError(
            "not a Power Tuning output: no 'power' (was the execution a dryRun?)"
        )
    machine = document.get("stateMachine") or {}
    if not isinstance(machine, dict):
        raise PowerTuningError("'stateMachine' is not an object")
    url = machine.get("visualization")
    points = _points(document.get("stats"), url)
    arn = given_input.get("lambdaARN")
    strategy = given_input.get("strategy")
    return PowerTuningRun(
        points=points,
        chosen_memory_mb=_size(document["power"], "'power'"),
        chosen_cost_usd=_optional(document.get("cost"), "'cost'"),
        chosen_duration_ms=_optional(document.get("duration"), "'duration'"),
        strategy=str(strategy) if strategy else None,
        lambda_cost_usd=_optional(machine.get("lambdaCost"), "'lambdaCost'"),
        execution_cost_usd=_optional(machine.get("executionCost"), "'executionCost'"),
        visualization_url=str(url) if url else None,
        function=parse_function_ref(str(arn)) if arn else None,
        execution_arn=execution_arn,
        measured_at=measured_at,
    )


def _optional(value: Any, what: str) -> float | None:
    return None if value is None else _number(value, what)


def _points(stats: Any, url: Any) -> tuple[MeasuredPoint, ...]:
    if isinstance(stats, list) and stats:
        out = {}
        for i, item in enumerate(stats):
            if not isinstance(item, dict):
                raise PowerTuningError(f"stats[{i}] is not an object")
            if not item.get("averageDuration"):  # the analyzer drops empty executor results
                continue
            size = _size(item.get("value"), f"stats[{i}].value")
            out[size] = MeasuredPoint(
                size,
                _number(item.get("averageDuration"), f"stats[{i}].averageDuration"),
                _number(item.get("averagePrice", 0.0), f"stats[{i}].averagePrice"),
            )
        points = tuple(out[m] for m in sorted(out))
    elif isinstance(url, str) and url:
        points = tuple(sorted(decode_visualization(url), key=lambda p: p.memory_mb))
        for p in points:
            _size(p.memory_mb, "a size in the visualization URL")
    else:
        raise PowerTuningError(
            "no per-size results: the output has neither 'stats' (includeOutputResults)"
            " nor a visualization URL"
        )
    if not points:
        raise PowerTuningError("no per-size results with a duration")
    return points


# ---------------------------------------------------------------- store


@dataclass(frozen=True)
class StoredRun:
    """Where an import landed: the function, the run id and whether it was new."""

    function: FunctionRef
    run_id: int
    created: bool


def store_run(
    db: Database, run: PowerTuningRun, function: FunctionRef | None, *, now: int
) -> StoredRun:
    """Store ``run`` for ``function`` (default: the function its input named); idempotent.

    A name without account and region matches the one stored function of that name when
    there is exactly one; an ARN matches its account and region, or a function of that
    name from local logs (account and region unknown).
    """
    target = function or run.function
    if target is None:
        raise PowerTuningError(
            "which function was tuned? pass --function NAME|ARN or --input with the"
            " execution input (its lambdaARN)"
        )
    target = _resolve(db, target)
    with db.conn:
        fid = function_id(db, target.function_name, target.account_id, target.region)
        existing = db.conn.execute(
            "SELECT id FROM power_tuning_runs WHERE function_id = ? AND run_key = ?",
            (fid, run.run_key),
        ).fetchone()
        if existing:
            return StoredRun(target, int(existing[0]), False)
        cursor = db.conn.execute(
            "INSERT INTO power_tuning_runs (function_id, run_key, imported_at, measured_at,"
            " strategy, chosen_memory_mb, chosen_cost_usd, chosen_duration_ms,"
            " lambda_cost_usd, execution_cost_usd, visualization_url)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                fid,
                run.run_key,
                now,
                run.measured_at,
                run.strategy,
                run.chosen_memory_mb,
                run.chosen_cost_usd,
                run.chosen_duration_ms,
                run.lambda_cost_usd,
                run.execution_cost_usd,
                run.visualization_url,
            ),
        )
        run_id = int(cursor.lastrowid or 0)
        db.conn.executemany(
            "INSERT INTO power_tuning_points"
            " (run_id, memory_mb, average_duration_ms, average_cost_usd) VALUES (?, ?, ?, ?)",
            [(run_id, p.memory_mb, p.average_duration_ms, p.average_cost_usd) for p in run.points],
        )
    return StoredRun(target, run_id, True)


def _resolve(db: Database, ref: FunctionRef) -> FunctionRef:
    rows = db.conn.execute(
        "SELECT account_id, region FROM functions WHERE function_name = ?",
        (ref.function_name,),
    ).fetchall()
    keys = {(str(a), str(r)) for a, r in rows}
    if ref.account_id or ref.region:
        if (ref.account_id, ref.region) in keys or ("", "") not in keys:
            return ref
        return FunctionRef(ref.function_name)  # only known from local logs
    if len(keys) > 1:
        raise PowerTuningError(
            f"{len(keys)} functions are named {ref.function_name}: pass its ARN with --function"
        )
    if keys:
        account, region = keys.pop()
        return FunctionRef(ref.function_name, account, region)
    return ref


# ---------------------------------------------------------------- measured curve


@dataclass(frozen=True)
class MeasuredCurve:
    """A function's duration measured at several sizes (the latest Power Tuning run).

    ``at(memory_mb)``: the measured mean at a measured size; between two measured sizes,
    linear in 1 / CPU share (exact for duration = I/O + CPU / share); beyond them, the
    I/O + CPU model through the two outermost points.
    """

    points: tuple[MeasuredPoint, ...]
    measured_at: int | None = None
    run_id: int | None = None

    @property
    def sizes(self) -> tuple[int, ...]:
        return tuple(p.memory_mb for p in self.points)

    def measured(self, memory_mb: int) -> bool:
        return memory_mb in self.sizes

    def covers(self, memory_mb: int) -> bool:
        """Whether ``memory_mb`` lies within the measured sizes (no extrapolation)."""
        return bool(self.points) and self.sizes[0] <= memory_mb <= self.sizes[-1]

    def at(self, memory_mb: float) -> float:
        pts = [(1.0 / cpu_share(p.memory_mb), p.average_duration_ms) for p in self.points]
        x = 1.0 / cpu_share(memory_mb)
        for m, d in ((p.memory_mb, p.average_duration_ms) for p in self.points):
            if m == memory_mb:
                return d
        if len(pts) == 1:
            return pts[0][1]
        pts.sort()
        if x <= pts[0][0]:  # larger than every measured size
            (x0, y0), (x1, y1) = pts[0], pts[1]
        elif x >= pts[-1][0]:  # smaller than every measured size
            (x0, y0), (x1, y1) = pts[-2], pts[-1]
        else:
            for (xa, ya), (xb, yb) in pairwise(pts):
                if xa <= x <= xb:
                    return ya if xb == xa else ya + (yb - ya) * (x - xa) / (xb - xa)
            return pts[-1][1]  # not reached: x lies between the ends
        # beyond the measured sizes: I/O + CPU through the two outermost points, with
        # non-negative parts (a curve rising with memory is held flat)
        slope = 0.0 if x1 == x0 else max(0.0, (y1 - y0) / (x1 - x0))
        io = max(0.0, y0 - slope * x0)
        anchor = io + slope * x0
        model = io + slope * x
        return y0 * model / anchor if anchor > 0 else y0


def latest_curves(
    db: Database, function_ids: list[int] | None = None
) -> dict[tuple[str, str, str], MeasuredCurve]:
    """The latest Power Tuning run with at least two sizes per function, keyed by
    (account_id, region, function_name)."""
    if not has_table(db, "power_tuning_runs"):
        return {}
    where = ""
    params: list[Any] = []
    if function_ids is not None:
        if not function_ids:
            return {}
        where = f" AND r.function_id IN ({', '.join('?' * len(function_ids))})"
        params = list(function_ids)
    rows = db.conn.execute(
        "SELECT f.account_id, f.region, f.function_name, r.id,"
        " COALESCE(r.measured_at, r.imported_at) AS t"
        " FROM power_tuning_runs r JOIN functions f ON f.id = r.function_id"
        " WHERE (SELECT COUNT(*) FROM power_tuning_points p WHERE p.run_id = r.id) >= 2"
        + where
        + " ORDER BY t, r.id",
        params,
    ).fetchall()
    latest: dict[tuple[str, str, str], tuple[int, int]] = {}
    for account, region, name, run_id, t in rows:
        latest[(str(account), str(region), str(name))] = (int(run_id), int(t))
    out = {}
    for key, (run_id, t) in latest.items():
        points = tuple(
            MeasuredPoint(int(m), float(d), float(c))
            for m, d, c in db.conn.execute(
                "SELECT memory_mb, average_duration_ms, average_cost_usd"
                " FROM power_tuning_points WHERE run_id = ? ORDER BY memory_mb",
                (run_id,),
            )
        )
        out[key] = MeasuredCurve(points, t, run_id)
    return out
