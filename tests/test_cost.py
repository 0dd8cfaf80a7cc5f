from __future__ import annotations

from datetime import UTC, datetime

import pytest

from lambdascope.cost import (
    UsageTotals,
    billable_init_ms,
    invocation_cost_usd,
    per_30_days,
    window_cost,
)

BEFORE = datetime(2025, 7, 31, 23, 59, tzinfo=UTC).timestamp()
AFTER = datetime(2025, 8, 1, 0, 0, tzinfo=UTC).timestamp()
X86 = 0.0000166667
ARM = 0.0000133334
REQ = 0.0000002


def test_warm_x86_invocation() -> None:
    # 100.2 ms -> 101 ms billed; 0.101 s x 0.5 GB = 0.0505 GB-s
    usd = invocation_cost_usd(memory_mb=512, duration_ms=100.2, timestamp=AFTER)
    assert usd == pytest.approx(0.0505 * X86 + REQ, rel=1e-12)
    assert usd == pytest.approx(1.0416684e-6, rel=1e-7)


def test_warm_arm_invocation() -> None:
    usd = invocation_cost_usd(
        memory_mb=512, duration_ms=100.2, timestamp=AFTER, architecture="arm64"
    )
    assert usd == pytest.approx(8.733367e-7, rel=1e-7)


def test_cold_start_after_2025_08_01_bills_init() -> None:
    # billed 101 ms + init 250.4 -> 251 ms = 352 ms; 0.176 GB-s
    usd = invocation_cost_usd(
        memory_mb=512,
        duration_ms=100.2,
        billed_duration_ms=101,
        init_duration_ms=250.4,
        timestamp=AFTER,
    )
    assert usd == pytest.approx(0.176 * X86 + REQ, rel=1e-12)
    arm = invocation_cost_usd(
        memory_mb=512,
        duration_ms=100.2,
        billed_duration_ms=101,
        init_duration_ms=250.4,
        timestamp=AFTER,
        architecture="arm64",
    )
    assert arm == pytest.approx(0.176 * ARM + REQ, rel=1e-12)


def test_cold_start_before_2025_08_01_zip_managed_runtime_init_free() -> None:
    usd = invocation_cost_usd(
        memory_mb=512,
        duration_ms=100.2,
        billed_duration_ms=101,
        init_duration_ms=250.4,
        timestamp=BEFORE,
        runtime="python3.12",
    )
    assert usd == pytest.approx(0.0505 * X86 + REQ, rel=1e-12)


def test_cold_start_before_2025_08_01_container_image_init_billed() -> None:
    usd = invocation_cost_usd(
        memory_mb=512,
        duration_ms=100.2,
        billed_duration_ms=101,
        init_duration_ms=250.4,
        timestamp=BEFORE,
        package_type="Image",
    )
    assert usd == pytest.approx(0.176 * X86 + REQ, rel=1e-12)


def test_init_already_in_billed_duration_is_not_counted_twice() -> None:
    usd = invocation_cost_usd(
        memory_mb=512,
        duration_ms=100.2,
        billed_duration_ms=352,
        init_duration_ms=250.4,
        timestamp=AFTER,
    )
    assert usd == pytest.approx(0.176 * X86 + REQ, rel=1e-12)


def test_snapstart_restore_billed_at_duration_price() -> None:
    usd = invocation_cost_usd(
        memory_mb=1024,
        duration_ms=50,
        billed_duration_ms=50,
        billed_restore_duration_ms=95,
        timestamp=AFTER,
    )
    assert usd == pytest.approx(0.145 * X86 + REQ, rel=1e-12)


def test_window_cost_breakdown_and_30_day_projection() -> None:
    usage = UsageTotals(
        invocations=1_000_000,
        memory_mb=1024,
        billed_duration_ms=100_000_000,
        billable_init_ms=2_000_000,
    )
    cost = window_cost(usage, architecture="x86_64")
    assert cost.requests_usd == pytest.approx(0.20)
    assert cost.duration_usd == pytest.approx(100_000 * X86)
    assert cost.init_usd == pytest.approx(2_000 * X86)
    assert cost.total_usd == pytest.approx(0.20 + 102_000 * X86)
    assert per_30_days(cost.total_usd, 15 * 86400) == pytest.approx(2 * cost.total_usd)
    assert per_30_days(1.0, 0) == 0


def test_free_tier_option_is_off_by_default() -> None:
    usage = UsageTotals(invocations=2_000_000, memory_mb=1024, billed_duration_ms=500_000_000)
    assert window_cost(usage).total_usd == pytest.approx(0.4 + 500_000 * X86)
    free = window_cost(usage, free_tier=True)
    assert free.requests_usd == pytest.approx(0.2)
    assert free.duration_usd == pytest.approx(100_000 * X86)


def test_billable_init_only_when_not_in_billed_sum() -> None:
    assert billable_init_ms(1000.2, 5000, 5100) == 1001
    assert billable_init_ms(1000, 5000, 6050) == 0
    assert billable_init_ms(0, 5000, 5000) == 0
