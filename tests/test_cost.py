from __future__ import annotations

from datetime import UTC, datetime

import pytest

from lambdascope.cost import (
    FreeTier,
    UsageTotals,
    billable_init_ms,
    init_in_billed_ms,
    invocation_cost_usd,
    per_30_days,
    share_free_tier,
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


# Hand-computed: 512 MB, 100.2 ms invoke (101 ms billed), a 250.4 ms INIT (251 ms billed).
# Warm: 0.101 s x 0.5 GB = 0.0505 GB-s. Cold with INIT billed: 0.352 s x 0.5 = 0.176 GB-s.
# x86_64: 0.0505 x 0.0000166667 + 0.0000002 = 1.04166835e-06; 0.176 x ... = 3.13333920e-06
# arm64:  0.0505 x 0.0000133334 + 0.0000002 = 8.7333670e-07;  0.176 x ... = 2.54667840e-06
HAND_COMPUTED = [
    # architecture, cold start, when, runtime/package, expected USD
    ("x86_64", False, BEFORE, "python3.12", 1.04166835e-06),
    ("x86_64", False, AFTER, "python3.12", 1.04166835e-06),
    ("arm64", False, BEFORE, "python3.12", 8.7333670e-07),
    ("arm64", False, AFTER, "python3.12", 8.7333670e-07),
    ("x86_64", True, BEFORE, "python3.12", 1.04166835e-06),  # zip, managed: INIT free
    ("arm64", True, BEFORE, "python3.12", 8.7333670e-07),
    ("x86_64", True, BEFORE, "provided.al2023", 3.13333920e-06),  # custom runtime
    ("arm64", True, BEFORE, "Image", 2.54667840e-06),  # container image
    ("x86_64", True, AFTER, "python3.12", 3.13333920e-06),  # every INIT billed
    ("arm64", True, AFTER, "python3.12", 2.54667840e-06),
]


@pytest.mark.parametrize(("architecture", "cold", "when", "kind", "expected"), HAND_COMPUTED)
def test_hand_computed_invocations(
    architecture: str, cold: bool, when: float, kind: str, expected: float
) -> None:
    usd = invocation_cost_usd(
        memory_mb=512,
        duration_ms=100.2,
        billed_duration_ms=101,
        init_duration_ms=250.4 if cold else None,
        timestamp=when,
        architecture=architecture,
        package_type="Image" if kind == "Image" else "Zip",
        runtime=None if kind == "Image" else kind,
    )
    assert usd == pytest.approx(expected, rel=1e-9)


def test_init_detection_is_not_fooled_by_rounding_slack() -> None:
    # 10,000 warm invocations leave ~5,000 ms of rounding in billed - duration; two cold
    # starts of 300 ms are NOT in the billed sum (pre-change REPORT lines): still billed
    assert billable_init_ms(600, 1_000_000, 1_005_000, invocations=10_000) == 600
    # the same invocations with the INIT folded into Billed Duration: nothing to add
    assert billable_init_ms(600, 1_000_000, 1_005_600, invocations=10_000) == 0
    # init well above the rounding: exact either way
    assert billable_init_ms(30_000, 1_000_000, 1_035_000, invocations=10_000) == 0
    assert billable_init_ms(30_000, 1_000_000, 1_005_000, invocations=10_000) == 30_000


def test_init_inside_billed_duration_is_shown_as_init_once() -> None:
    # since 2025-08-01 Billed Duration includes INIT: 1,000 invocations at 100 ms,
    # 10 cold starts of 250 ms -> billed 102,500 ms of which 2,500 ms INIT
    inside = init_in_billed_ms(2_500, 100_000, 102_500, invocations=1_000)
    assert inside == 2_500
    assert init_in_billed_ms(2_500, 100_000, 100_400, invocations=1_000) == 0  # not billed
    assert init_in_billed_ms(2_500, 100_000, 100_400, billable_on_top_ms=2_500) == 0
    usage = UsageTotals(1_000, 1024, 102_500, init_in_billed_ms=inside)
    cost = window_cost(usage, architecture="arm64")
    assert cost.init_usd == pytest.approx(2.5 * ARM)
    assert cost.duration_usd == pytest.approx(100.0 * ARM)
    assert cost.total_usd == pytest.approx(1_000 * REQ + 102.5 * ARM)  # billed once


def test_free_tier_prorated_to_the_window() -> None:
    usage = UsageTotals(invocations=2_000_000, memory_mb=1024, billed_duration_ms=500_000_000)
    half_month = window_cost(usage, free_tier=True, window_s=15 * 86400)
    assert half_month.requests_usd == pytest.approx((2_000_000 - 500_000) * REQ)
    assert half_month.duration_usd == pytest.approx((500_000 - 200_000) * X86)


# Hand-computed outside us-east-1 (prices.json): 512 MB, 101 ms billed = 0.0505 GB-s warm;
# with a 251 ms billed INIT after 2025-08-01, 0.352 s x 0.5 GB = 0.176 GB-s.
# eu-south-1: $0.0000195172 (x86_64) / $0.0000156138 (arm64) per GB-s, $0.23 per 1M requests
#   warm x86: 0.0505 x 0.0000195172 + 0.00000023 = 1.2156186e-06
#   warm arm: 0.0505 x 0.0000156138 + 0.00000023 = 1.0184969e-06
# af-south-1: $0.0000221 / $0.00001768 per GB-s, $0.27 per 1M requests
#   cold x86: 0.176 x 0.0000221 + 0.00000027 = 4.1596e-06
#   cold arm: 0.176 x 0.00001768 + 0.00000027 = 3.38168e-06
REGIONAL = [
    ("eu-south-1", "x86_64", False, 1.2156186e-06),
    ("eu-south-1", "arm64", False, 1.0184969e-06),
    ("af-south-1", "x86_64", True, 4.1596e-06),
    ("af-south-1", "arm64", True, 3.38168e-06),
]


@pytest.mark.parametrize(("region", "architecture", "cold", "expected"), REGIONAL)
def test_hand_computed_regional_invocations(
    region: str, architecture: str, cold: bool, expected: float
) -> None:
    usd = invocation_cost_usd(
        memory_mb=512,
        duration_ms=100.2,
        billed_duration_ms=101,
        init_duration_ms=250.4 if cold else None,
        timestamp=AFTER,
        architecture=architecture,
        region=region,
    )
    assert usd == pytest.approx(expected, rel=1e-9)


def test_unlisted_region_is_priced_as_us_east_1() -> None:
    usage = UsageTotals(invocations=1_000_000, memory_mb=1024, billed_duration_ms=100_000_000)
    for architecture, price in (("x86_64", X86), ("arm64", ARM)):
        cost = window_cost(usage, architecture=architecture, region="il-central-1")
        assert cost.requests_usd == pytest.approx(0.20)
        assert cost.duration_usd == pytest.approx(100_000 * price)
        assert cost == window_cost(usage, architecture=architecture, region="us-east-1")
    # a listed region with its own prices differs
    cape = window_cost(usage, architecture="x86_64", region="af-south-1")
    assert cape.requests_usd == pytest.approx(0.27)
    assert cape.duration_usd == pytest.approx(100_000 * 0.0000221)


def test_free_tier_beyond_30_days_counts_each_month() -> None:
    usage = UsageTotals(invocations=3_000_000, memory_mb=1024, billed_duration_ms=1_000_000_000)
    two_months = window_cost(usage, free_tier=True, window_s=60 * 86400)
    assert two_months.requests_usd == pytest.approx(1_000_000 * REQ)
    assert two_months.duration_usd == pytest.approx((1_000_000 - 800_000) * X86)


def test_free_tier_shared_in_proportion_to_use() -> None:
    # 15 days: 500,000 free requests and 200,000 free GB-s for the account
    a = UsageTotals(invocations=1_500_000, memory_mb=1024, billed_duration_ms=300_000_000)
    b = UsageTotals(invocations=500_000, memory_mb=512, billed_duration_ms=200_000_000)
    share_a, share_b = share_free_tier([a, b], 15 * 86400)
    assert share_a == FreeTier(pytest.approx(375_000), pytest.approx(150_000))
    assert share_b == FreeTier(pytest.approx(125_000), pytest.approx(50_000))
    cost_a = window_cost(a, free_tier=share_a)
    cost_b = window_cost(b, free_tier=share_b, architecture="arm64", region="eu-south-1")
    assert cost_a.requests_usd == pytest.approx(1_125_000 * REQ)
    assert cost_a.duration_usd == pytest.approx(150_000 * X86)
    assert cost_b.requests_usd == pytest.approx(375_000 * 0.00000023)
    assert cost_b.duration_usd == pytest.approx(50_000 * 0.0000156138)
    assert share_free_tier([], 86400) == []
    idle = UsageTotals(invocations=0, memory_mb=128, billed_duration_ms=0)
    assert share_free_tier([idle], 86400) == [FreeTier(0.0, 0.0)]
