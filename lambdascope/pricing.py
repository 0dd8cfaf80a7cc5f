"""AWS Lambda price table (data-driven) and the billing arithmetic that needs no store.

Prices live in ``lambdascope/data/prices.json`` with their sources and date, per region
(first-tier duration price per architecture and request price; us-east-1 is the default
for regions not listed) with the monthly volume tiers shared by all regions unless a
region gives its own. Units: USD,
GB-seconds (``billed_ms / 1000 * memory_mb / 1024``), milliseconds.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import cache
from importlib import resources
from typing import Any

ARCHITECTURES = ("x86_64", "arm64")
MIN_MEMORY_MB = 128
MAX_MEMORY_MB = 10240
ONE_VCPU_MB = 1769
PRICES_FILE = "lambdascope/data/prices.json"


@dataclass(frozen=True)
class ArchPrice:
    """Duration price for one region x architecture: base USD per GB-s and monthly tiers."""

    usd_per_gb_second: float
    tiers_gb_seconds: tuple[float, ...]
    tier_discounts: tuple[float, ...]


@dataclass(frozen=True)
class PriceTable:
    """The whole table; ``price(region, architecture)`` falls back to the default region."""

    source: str
    source_date: str
    default_region: str
    request_usd_per_million: float
    free_requests: int
    free_gb_seconds: float
    init_billed_for_all_since: int
    regions: dict[str, dict[str, ArchPrice]]
    region_request_usd_per_million: dict[str, float] = field(default_factory=dict)
    region_sources: dict[str, str] = field(default_factory=dict)

    def price(self, region: str, architecture: str | None) -> ArchPrice:
        """Duration price for a region (default region when unknown) and architecture
        (x86_64 when unknown)."""
        table = self.regions.get(region) or self.regions[self.default_region]
        return table.get(architecture or "x86_64") or table["x86_64"]

    def priced_as(self, region: str) -> str:
        """The region whose prices ``region`` is billed at: itself when listed, else the
        default region."""
        return region if region in self.regions else self.default_region

    def request_usd_for(self, region: str) -> float:
        """USD per request in a region (the default region's price when unknown)."""
        per_million = self.region_request_usd_per_million.get(
            self.priced_as(region), self.request_usd_per_million
        )
        return per_million / 1_000_000

    @property
    def request_usd(self) -> float:
        """USD per request in the default region."""
        return self.request_usd_per_million / 1_000_000

    def describe(self, regions: Iterable[str]) -> str:
        """One line saying which prices were used for ``regions``: the table's source
        and date, and the regions not in the table (billed at the default region's)."""
        unlisted = sorted({r or "(unknown)" for r in regions if r not in self.regions})
        text = f"prices: {PRICES_FILE} ({self.source_date}; per-region sources listed there)"
        if unlisted:
            text += f"; not in the table, priced as {self.default_region}: " + ", ".join(unlisted)
        return text


def _arch_price(p: dict[str, Any], tiers: dict[str, Any]) -> ArchPrice:
    shape = p if "tier_discounts" in p else tiers
    return ArchPrice(
        float(p["usd_per_gb_second"]),
        tuple(float(t) for t in shape.get("tiers_gb_seconds", ())),
        tuple(float(d) for d in shape.get("tier_discounts", (0.0,))),
    )


def _parse(data: dict[str, Any]) -> PriceTable:
    since = datetime.strptime(data["init_billed_for_all_since"], "%Y-%m-%d").replace(tzinfo=UTC)
    shared_tiers: dict[str, Any] = data.get("volume_tiers", {})
    regions = {
        region: {
            arch: _arch_price(entry[arch], shared_tiers.get(arch, {}))
            for arch in ARCHITECTURES
            if arch in entry
        }
        for region, entry in data["regions"].items()
    }
    return PriceTable(
        source=str(data["source"]),
        source_date=str(data["source_date"]),
        default_region=str(data["default_region"]),
        request_usd_per_million=float(data["request_usd_per_million"]),
        free_requests=int(data["free_tier"]["requests"]),
        free_gb_seconds=float(data["free_tier"]["gb_seconds"]),
        init_billed_for_all_since=int(since.timestamp()),
        regions=regions,
        region_request_usd_per_million={
            region: float(entry["request_usd_per_million"])
            for region, entry in data["regions"].items()
            if "request_usd_per_million" in entry
        },
        region_sources={
            region: str(entry["source"])
            for region, entry in data["regions"].items()
            if "source" in entry
        },
    )


@cache
def default_table() -> PriceTable:
    """The bundled price table."""
    text = resources.files("lambdascope").joinpath("data/prices.json").read_text("utf-8")
    return _parse(json.loads(text))


def gb_seconds(billed_ms: float, memory_mb: float) -> float:
    """GB-seconds for a billed duration (ms) at a memory size (MB)."""
    return max(0.0, billed_ms) / 1000.0 * memory_mb / 1024.0


def billed_ms(duration_ms: float) -> float:
    """Billed duration of a raw duration: rounded up to the next 1 ms (since Dec 2020)."""
    return float(math.ceil(max(0.0, duration_ms) - 1e-9))


def tiered_duration_usd(total_gb_seconds: float, price: ArchPrice) -> float:
    """USD for one account's monthly GB-seconds, applying the volume tiers."""
    remaining = max(0.0, total_gb_seconds)
    usd = 0.0
    lower = 0.0
    bounds = [*price.tiers_gb_seconds, math.inf]
    for bound, discount in zip(bounds, price.tier_discounts, strict=False):
        in_tier = min(remaining, bound - lower)
        usd += in_tier * price.usd_per_gb_second * (1.0 - discount)
        remaining -= in_tier
        lower = bound
        if remaining <= 0:
            break
    return usd


def cpu_share(memory_mb: float) -> float:
    """vCPU share a single-threaded function gets at a memory size (1,769 MB = 1 vCPU)."""
    return min(float(memory_mb), ONE_VCPU_MB) / ONE_VCPU_MB


def vcpus(memory_mb: float) -> float:
    """vCPU-seconds of CPU per second an execution environment gets at a memory size: in
    proportion to memory, 1 at 1,769 MB, 5.79 at 10,240 MB ("up to 6 vCPUs")."""
    return min(float(memory_mb), MAX_MEMORY_MB) / ONE_VCPU_MB


def cpu_throughput(memory_mb: float, threads: float) -> float:
    """vCPUs code that keeps ``threads`` threads busy at once can use at a memory size:
    the environment's allotment, at most one vCPU per thread (single-threaded code gains
    nothing above 1,769 MB)."""
    return min(max(1.0, threads), vcpus(memory_mb))
