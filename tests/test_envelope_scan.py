"""Envelope messages scanned joined (the fast way) give what reading them one by one gives."""

from __future__ import annotations

import math
import re

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from collectors.local import scan_messages
from lambdascope import logparse, logscan
from lambdascope.logscan import ChunkColumns, item_event
from tests.test_logscan import _PIECES, REPORT

pytestmark = pytest.mark.usefixtures("scanner")

# Whatever logparse can read an event from contains one of these (its out-of-memory
# messages also without a word boundary: "\\tMemoryError" is a tab written as two characters)
_MAYBE_EVENT_RE = re.compile(
    'REPORT|"platform\\.|Task timed out|' + logparse._OOM_RE.pattern + "|MemoryError"
)


def _scan_messages_one_by_one(messages: list[str], seconds: list[float]) -> ChunkColumns:
    """The reference: each message on its own, line by line (str.splitlines), as the
    envelope reader did before messages were scanned together."""
    maybe_event = _MAYBE_EVENT_RE.search
    found = logscan.ChunkColumns(logscan.empty_columns(), logscan.empty_columns(json_format=True))
    for message, second in zip(messages, seconds, strict=True):
        stamp = None if second != second else second  # NaN: no event time
        if not message.isascii():
            message = message.encode("utf-8", "replace").decode("utf-8")
        split = message.splitlines()
        if maybe_event(message) is None:
            found.lines += len(split) or 1  # no line of it can hold an event
            continue
        for line in split or [""]:
            found.lines += 1
            fast = logscan.fast_report(line)
            if fast is not None:
                if fast[1] is None and stamp is not None:
                    fast = (fast[0], stamp, *fast[2:])
                event = logscan.item_event(fast)
            else:
                parsed = logparse.parse_line_or_reason(line)
                if parsed is None:
                    continue
                if isinstance(parsed, str):
                    found.skipped[parsed] += 1
                    continue
                if parsed.timestamp is None and stamp is not None:
                    object.__setattr__(parsed, "timestamp", stamp)
                event = parsed
            found.slow_positions.append(len(found.slow))
            found.slow.append(event)
    return found


_MESSAGE = st.lists(
    st.sampled_from([*_PIECES, "\r\n", "\x85", "\u2028", "\udcff", "\n\n", "\x0c"]), max_size=8
).map("".join)
_SECONDS = st.one_of(st.just(math.nan), st.floats(min_value=1e9, max_value=2e9))


def _seen(found: ChunkColumns) -> tuple[object, ...]:
    return ([item_event(i) for i in found.items()], found.lines, found.skipped)


@settings(
    max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(st.lists(st.tuples(_MESSAGE, _SECONDS), min_size=1, max_size=12))
@example([("\\tMemoryError", math.nan)])  # an escaped tab before an out-of-memory message
def test_joined_scan_matches_message_by_message(events: list[tuple[str, float]]) -> None:
    messages = [m for m, _s in events]
    seconds = [s for _m, s in events]
    assert _seen(scan_messages(messages, seconds)) == _seen(
        _scan_messages_one_by_one(messages, seconds)
    )


def test_plain_messages_take_the_joined_scan_and_their_event_time() -> None:
    messages = ["START RequestId: x", REPORT, "2024-05-01T10:00:00.500Z " + REPORT, "done"]
    found = scan_messages(messages, [1.5, 2.5, 3.5, math.nan])
    assert len(found.text) == 2 and not found.slow  # the fast path took both REPORT lines
    assert found.text.timestamps.tolist() == [2.5, 1714557600.5]
    assert found.lines == 4
    # as CloudWatch keeps them: a newline at the end, CRLF, non-ASCII text around
    real = scan_messages(
        [REPORT + "\t\n", "a\r\n" + REPORT + "\r\n", "caf\u00e9\n" + REPORT + "\n"],
        [7.0, 8.0, 9.0],
    )
    assert real.text.timestamps.tolist() == [7.0, 8.0, 9.0] and not real.slow
    assert real.lines == 5


def test_event_times_beyond_any_float_are_read_as_unknown() -> None:
    import io
    import json

    from collectors.local import iter_batches

    envelope = {
        "logGroup": "/aws/lambda/f",
        "logEvents": [
            {"timestamp": 10**400, "message": REPORT},
            {"timestamp": 1714557600000, "message": "START RequestId: y"},
        ],
    }
    batches = list(iter_batches(io.BytesIO(json.dumps(envelope).encode())))
    events = [e for batch, _source in batches for e in batch.events]
    assert [(e.request_id, e.timestamp, e.function_name) for e in events] == [
        (REPORT.split()[2], None, "f")
    ]
