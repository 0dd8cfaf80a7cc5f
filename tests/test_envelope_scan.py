"""Envelope messages scanned joined (the fast way) give what reading them one by one gives."""

from __future__ import annotations

import math

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from collectors.local import _scan_messages_one_by_one, scan_messages
from lambdascope.logscan import ChunkColumns, item_event
from tests.test_logscan import _PIECES, REPORT

pytestmark = pytest.mark.usefixtures("scanner")

_MESSAGE = st.lists(st.sampled_from(_PIECES), max_size=8).map("".join)
_SECONDS = st.one_of(st.just(math.nan), st.floats(min_value=1e9, max_value=2e9))


def _seen(found: ChunkColumns) -> tuple[object, ...]:
    return ([item_event(i) for i in found.items()], found.lines, found.skipped)


@settings(
    max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(st.lists(st.tuples(_MESSAGE, _SECONDS), min_size=1, max_size=12))
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
    # a message with a carriage return is read line by line, like str.splitlines
    odd = scan_messages(["a\r" + REPORT], [7.0])
    assert len(odd.text) == 0 and [e.timestamp for e in odd.slow] == [7.0] and odd.lines == 2


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
