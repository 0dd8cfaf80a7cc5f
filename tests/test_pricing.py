from __future__ import annotations

import json
from importlib import resources

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


def test_regional_prices_differ_where_aws_prices_differ() -> None:
    table = default_table()
    assert table.price("af-south-1", "x86_64").usd_per_gb_second == 0.0000221
    assert table.price("af-south-1", "arm64").usd_per_gb_second == 0.00001768
    assert table.request_usd_for("af-south-1") == pytest.approx(0.00000027)
    assert table.price("eu-south-1", "x86_64").usd_per_gb_second == 0.0000195172
    assert table.price("ap-southeast-5", "arm64").usd_per_gb_second == 0.000012
    assert table.request_usd_for("ap-east-1") == pytest.approx(0.00000028)
    assert table.price("eu-west-1", "arm64") == table.price("us-east-1", "arm64")
    # volume tiers keep their thresholds and discounts on a region's own price
    cape = table.price("af-south-1", "x86_64")
    assert tiered_duration_usd(10e9, cape) == pytest.approx(0.0000221 * (6e9 + 4e9 * 0.9))


def test_unlisted_region_falls_back_to_default_and_is_named() -> None:
    table = default_table()
    assert table.priced_as("il-central-1") == "us-east-1"
    assert table.priced_as("af-south-1") == "af-south-1"
    assert table.request_usd_for("il-central-1") == table.request_usd_for("us-east-1")
    assert table.request_usd_for("") == pytest.approx(0.0000002)
    line = table.describe(["af-south-1", "il-central-1", "", "us-east-1"])
    assert line.startswith("prices: lambdascope/data/prices.json (2026-11-28")
    assert line.endswith("priced as us-east-1: (unknown), il-central-1")
    assert "not in the table" not in table.describe(["af-south-1"])


def test_every_listed_region_is_complete_and_sourced() -> None:
    text = resources.files("lambdascope").joinpath("data/prices.json").read_text("utf-8")
    data = json.loads(text)
    table = default_table()
    assert len(table.regions) == len(data["regions"]) >= 20
    for region, entry in data["regions"].items():
        assert set(table.regions[region]) == {"x86_64", "arm64"}, region
        assert 0.1 <= entry["request_usd_per_million"] <= 0.3, region
        assert all(key in data["sources"] for key in entry["source"].split(", ")), region
        for arch in ("x86_64", "arm64"):
            price = table.price(region, arch)
            assert 0.00001 < price.usd_per_gb_second < 0.00003, region
            assert len(price.tier_discounts) == len(price.tiers_gb_seconds) + 1 == 3
        x86, arm = (table.price(region, a).usd_per_gb_second for a in ("x86_64", "arm64"))
        assert arm == pytest.approx(0.8 * x86, rel=5e-3), region  # arm64 about 20 % cheaper
