from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from lambdascope.timeutil import hour_floor, iso, parse_duration, parse_timestamp


def test_parse_timestamp_aws_and_moto_forms() -> None:
    expected = datetime(2019, 8, 14, 22, 26, 11, 234000, tzinfo=UTC)
    assert parse_timestamp("2019-08-14T22:26:11.234+0000") == expected
    assert parse_timestamp("2019-08-14T22:26:11.234000000Z") == expected
    assert parse_timestamp("2019-08-14 22:26:11.234") == expected


def test_durations_and_hours() -> None:
    assert parse_duration("14d") == timedelta(days=14)
    assert parse_duration("36h") == timedelta(hours=36)
    with pytest.raises(ValueError, match="not a duration"):
        parse_duration("fortnight")
    assert hour_floor(7322.5) == 7200
    assert iso(0) == "1970-01-01T00:00:00Z"
    assert iso(1.5) == "1970-01-01T00:00:01.500Z"
