from __future__ import annotations

import pytest

from lambdascope.pricing import (
    billed_ms,
    cpu_share,
    default_table,
    gb_seconds,
    tiered_duration_usd,
)


def test_table_has_source_date_and_us_east_1_prices() -> None:
    table = default_table()
    assert table.source_date == "2026-11-28"
    assert table.price("us-east-1", "x86_64").usd_per_gb_second == 0.0000166667
    assert table.price("us-east-1", "arm64").usd_per_gb_second == 0.0000133334
    assert table.request_usd == pytest.approx(0.0000002)


def test_unknown_region_and_architecture_fall_back_to_defaults() -> None:
    table = default_table()
    assert table.price("", None) == table.price("us-east-1", "x86_64")
    assert table.price("mars-north-1", "arm64") == table.price("us-east-1", "arm64")


def test_gb_seconds_and_1ms_rounding() -> None:
    assert billed_ms(100.2) == 101
    assert billed_ms(100.0) == 100
    assert gb_seconds(1000, 1024) == 1.0
    assert gb_seconds(101, 512) == pytest.approx(0.0505)


def test_monthly_tiers_x86_and_arm() -> None:
    table = default_table()
    x86 = table.price("us-east-1", "x86_64")
    # 6 B at full price + 4 B at -10 %
    assert tiered_duration_usd(10e9, x86) == pytest.approx(
        6e9 * 0.0000166667 + 4e9 * 0.0000166667 * 0.9
    )
    # beyond 15 B: -20 %
    assert tiered_duration_usd(20e9, x86) == pytest.approx(
        0.0000166667 * (6e9 + 9e9 * 0.9 + 5e9 * 0.8)
    )
    arm = table.price("us-east-1", "arm64")
    assert tiered_duration_usd(8e9, arm) == pytest.approx(0.0000133334 * (7.5e9 + 0.5e9 * 0.9))
    assert tiered_duration_usd(0, arm) == 0


def test_cpu_share_caps_at_one_vcpu() -> None:
    assert cpu_share(1769) == 1.0
    assert cpu_share(10240) == 1.0
    assert cpu_share(884.5) == pytest.approx(0.5)
