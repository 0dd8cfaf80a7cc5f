from __future__ import annotations

import math
import random
from statistics import NormalDist

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lambdascope import histogram
from lambdascope.rightsizing import (
    MemoryStats,
    Policy,
    estimate_tail_mb,
    fit_duration_model,
    power_tuning_input,
    project_duration,
    recommend,
    round_up_memory,
)

DAY = 86400.0


def make_stats(
    memory_mb: int,
    used: list[float],
    *,
    durations: list[float] | None = None,
    oom: int = 0,
    architecture: str = "x86_64",
    invocations: int | None = None,
) -> MemoryStats:
    durations = durations or [100.0] * len(used)
    n = len(used)
    return MemoryStats(
        function_name="fn",
        account_id="1",
        region="us-east-1",
        architecture=architecture,
        memory_mb=memory_mb,
        invocations=float(n if invocations is None else invocations),
        out_of_memory=oom,
        duration_ms_sum=sum(durations),
        billed_duration_ms_sum=sum(float(int(d) + 1) for d in durations),
        max_memory_used_mb=int(max(used)) if used else None,
        memory_hist=histogram.from_values(used),
        duration_hist=histogram.from_values(durations),
        sampled_invocations=n,
    )


def test_over_provisioned_with_tail_and_headroom() -> None:
    rng = random.Random(1)
    used = [rng.uniform(150, 200) for _ in range(2000)]
    rec = recommend(make_stats(1024, used), window_s=14 * DAY)
    assert rec.finding == "over-provisioned"
    assert rec.estimated_tail_memory_mb is not None
    assert rec.estimated_tail_memory_mb >= max(used)
    assert rec.recommended_memory_mb is not None
    assert rec.recommended_memory_mb >= rec.estimated_tail_memory_mb * 1.1
    assert rec.recommended_memory_mb % 64 == 0
    assert "log-normal fit" in rec.reasons[0]
    assert rec.projected_savings_usd > 0 and rec.monthly_savings_usd > rec.projected_savings_usd
    assert rec.confidence == "high"


def test_few_samples_widen_the_tail() -> None:
    rng = random.Random(2)
    many = [rng.lognormvariate(5.0, 0.1) for _ in range(5000)]
    few = many[:60]
    tail_many, _ = estimate_tail_mb(histogram.from_values(many), max(many))
    tail_few, how = estimate_tail_mb(histogram.from_values(few), max(few))
    # the 99.99th percentile of this log-normal is exp(5 + 3.719 * 0.1) = 215 MB
    true_tail = math.exp(5.0 + 3.719 * 0.1)
    assert true_tail <= tail_many <= true_tail * 1.2
    assert tail_few > tail_many >= max(many)
    assert "95 % upper bound for 60 samples" in how


TRUE_P9999 = NormalDist().inv_cdf(0.9999)
PROFILES = {
    # memory profile -> (sampler, exact 99.99th percentile)
    "log-normal narrow": (lambda r: r.lognormvariate(5.0, 0.1), math.exp(5.0 + TRUE_P9999 * 0.1)),
    "log-normal wide": (lambda r: r.lognormvariate(5.0, 0.3), math.exp(5.0 + TRUE_P9999 * 0.3)),
    "normal": (lambda r: r.gauss(150.0, 10.0), 150.0 + TRUE_P9999 * 10.0),
    "exponential tail": (lambda r: 60.0 + r.expovariate(0.1), 60.0 + 10.0 * math.log(1e4)),
    "bounded": (lambda r: r.uniform(150.0, 200.0), 200.0),
}


def test_a_log_normal_fit_the_observed_max_contradicts_is_dropped() -> None:
    """Memory that plateaus (uniform 300-714 MB): a log-normal on the median and p90 would
    put the 99.99th percentile near 2x the maximum seen in 600 invocations; the maximum
    rejects that fit, and the estimate stays a bound above it without that blow-up."""
    rng = random.Random(5)
    used = [round(rng.uniform(300.0, 714.0)) for _ in range(600)]
    tail, how = estimate_tail_mb(histogram.from_values(used), max(used))
    assert max(used) <= tail < 1.35 * max(used)
    assert "dropped" in how and "p90" in how
    # log-normal data keeps its log-normal fits
    logn = [rng.lognormvariate(5.0, 0.2) for _ in range(600)]
    _, how = estimate_tail_mb(histogram.from_values(logn), max(logn))
    assert "dropped" not in how


@pytest.mark.parametrize("profile", sorted(PROFILES))
@pytest.mark.parametrize("n", [60, 300])
def test_tail_bound_covers_the_true_p9999(profile: str, n: int) -> None:
    """The estimate is a 95 % upper bound: over 40 windows of n integer-MB samples, the
    true 99.99th percentile stays below it (before headroom) in at least 38."""
    sample, true_tail = PROFILES[profile]
    rng = random.Random(n)
    ratios = []
    for _ in range(40):
        used = [max(1, round(sample(rng))) for _ in range(n)]
        tail, _ = estimate_tail_mb(histogram.from_values(used), max(used))
        ratios.append(tail / true_tail)
    assert sum(r < 1.0 for r in ratios) <= 2
    # a bound, not a blanket: it tightens as samples accumulate
    assert sorted(ratios)[20] < (2.0 if n == 60 else 1.45)


def test_insufficient_data_below_threshold() -> None:
    rec = recommend(make_stats(512, [100.0] * 49), window_s=DAY)
    assert rec.finding == "insufficient-data"
    assert rec.recommended_memory_mb is None
    assert rec.reasons == ("49 invocations in the window, fewer than 50",)
    rec = recommend(make_stats(512, [100.0] * 49), window_s=DAY, min_invocations=10)
    assert rec.finding != "insufficient-data"


def test_out_of_memory_is_under_provisioned_even_with_few_invocations() -> None:
    rec = recommend(make_stats(256, [250.0, 256.0, 256.0], oom=2), window_s=DAY)
    assert rec.finding == "under-provisioned"
    # two of three hit the limit: the need cannot be estimated, one bounded step (1.5x)
    assert rec.recommended_memory_mb == 384
    assert any("2 out-of-memory errors at 256 MB" in r for r in rec.reasons)
    assert any("capped at 1.5x" in r for r in rec.reasons)
    # one error in 62 at 512 MB: one step up, not a leap (was 2,368 MB, 4.6x)
    one = recommend(make_stats(512, [250.0] * 61 + [512.0], oom=1), window_s=DAY)
    assert any(r == "1 out-of-memory error at 512 MB" for r in one.reasons)
    assert one.recommended_memory_mb is not None and 640 <= one.recommended_memory_mb <= 768
    assert one.monthly_savings_usd > -1.6 * one.current_monthly_cost_usd


def test_tail_reaching_configured_memory_is_under_provisioned() -> None:
    rng = random.Random(3)
    used = [rng.uniform(400, 500) for _ in range(500)]
    rec = recommend(make_stats(512, used), window_s=7 * DAY)
    assert rec.finding == "under-provisioned"
    assert rec.recommended_memory_mb is not None and rec.recommended_memory_mb > 512


def test_limits_128_and_10240() -> None:
    rec = recommend(make_stats(128, [40.0] * 100), window_s=DAY)
    assert rec.recommended_memory_mb == 128
    assert rec.finding == "optimized"
    rec = recommend(make_stats(10240, [10240.0] * 100, oom=3), window_s=DAY)
    assert rec.recommended_memory_mb == 10240
    assert rec.finding == "under-provisioned"
    assert any("10,240 MB maximum" in r for r in rec.reasons)


def test_one_invocation_and_only_timeouts_do_not_crash() -> None:
    rec = recommend(make_stats(512, [90.0]), window_s=DAY, min_invocations=1)
    assert rec.recommended_memory_mb is not None and rec.recommended_memory_mb >= 90
    empty = MemoryStats("fn", "", "", None, 512, invocations=80.0, timeouts=80)
    rec = recommend(empty, window_s=DAY)
    assert rec.finding == "insufficient-data"
    assert rec.current_cost_usd >= 0


def test_options_ranked_with_arm64_what_if() -> None:
    rng = random.Random(4)
    used = [rng.uniform(150, 200) for _ in range(500)]
    rec = recommend(make_stats(1024, used), window_s=14 * DAY)
    assert [o.rank for o in rec.options] == list(range(1, len(rec.options) + 1))
    same_arch = [o for o in rec.options if not o.what_if]
    assert [o.projected_cost_usd for o in same_arch] == sorted(
        o.projected_cost_usd for o in same_arch
    )
    arm = [o for o in rec.options if o.what_if]
    assert len(arm) == 1 and arm[0].architecture == "arm64"
    assert arm[0].memory_mb == rec.recommended_memory_mb
    for o in rec.options:
        d = o.projected_duration_ms
        assert 0 < d.lower <= d.expected <= d.upper


def test_projection_bounds_io_vs_cpu() -> None:
    # halving memory below 1 vCPU: CPU-bound doubles, I/O-bound unchanged
    rng = project_duration(100.0, 1024, 512, None)
    assert rng.lower == 100.0 and rng.upper == pytest.approx(200.0)
    assert rng.expected == pytest.approx(150.0)
    # above 1,769 MB single-threaded code does not speed up
    rng = project_duration(100.0, 2048, 4096, None)
    assert rng.lower == rng.upper == 100.0


def test_natural_experiment_fits_and_narrows() -> None:
    # 600 ms at 256 MB and 300 ms at 512 MB: fully CPU-bound below 1 vCPU
    model = fit_duration_model([(256, 600.0, 100.0), (512, 300.0, 100.0)])
    assert model is not None
    assert model.io_ms == pytest.approx(0.0, abs=1e-6)
    assert model.at(1024) == pytest.approx(150.0)
    wide = project_duration(300.0, 512, 1024, None)
    narrow = project_duration(300.0, 512, 1024, model)
    assert narrow.expected == pytest.approx(150.0)
    assert narrow.upper - narrow.lower < wide.upper - wide.lower
    assert fit_duration_model([(2048, 100.0, 1.0), (4096, 100.0, 1.0)]) is None


def test_recommend_uses_history_and_flags_cpu_risk() -> None:
    rng = random.Random(5)
    used = [rng.uniform(100, 120) for _ in range(400)]
    now = make_stats(1024, used, durations=[300.0] * 400)
    before = make_stats(512, used, durations=[600.0] * 400)
    rec = recommend(now, [now, before], window_s=14 * DAY)
    assert rec.natural_experiment
    assert rec.finding == "over-provisioned"
    assert any("fitted on 2 memory sizes" in r for r in rec.reasons)
    # fully CPU-bound: balanced stays within 1.25x of today's 300 ms (>= 1024 / 1.25 MB)
    assert rec.strategy == "balanced"
    assert rec.recommended_memory_mb is not None and 820 <= rec.recommended_memory_mb < 1024
    assert rec.projected_duration_ms is not None
    assert rec.projected_duration_ms.expected <= 1.25 * 300.0
    assert not rec.performance_risk
    # the cost strategy cuts to the safe size, 5x slower: an honest risk
    cheap = recommend(now, [now, before], window_s=14 * DAY, policy=Policy("cost"))
    assert cheap.recommended_memory_mb == rec.strategies["cost"].memory_mb == 192
    assert cheap.performance_risk
    assert any("slower than today" in r and "beyond the 1.25x limit" in r for r in cheap.reasons)
    assert set(rec.strategies) == {"cost", "balanced", "speed"}


def test_power_tuning_values_around_recommendation() -> None:
    rng = random.Random(6)
    rec = recommend(make_stats(1024, [rng.uniform(150, 200) for _ in range(500)]), window_s=DAY)
    payload = power_tuning_input(rec, "arn:aws:lambda:us-east-1:1:function:fn")
    assert payload["lambdaARN"] == "arn:aws:lambda:us-east-1:1:function:fn"
    assert rec.recommended_memory_mb in payload["powerValues"]
    assert 1024 in payload["powerValues"]
    assert payload["strategy"] == "balanced" and payload["num"] == 50


def test_round_up_memory() -> None:
    assert round_up_memory(1) == 128
    assert round_up_memory(129) == 192
    assert round_up_memory(20000) == 10240


def test_tail_without_headroom_is_under_provisioned() -> None:
    # tail ~ 495 MB is below 512 MB, tail + 10 % is not: no error is coming, so it stays
    # "optimized" (under-provisioned needs errors or a tail that reaches the size)
    rec = recommend(make_stats(512, [470.0] * 400), window_s=7 * DAY)
    assert rec.estimated_tail_memory_mb is not None and rec.estimated_tail_memory_mb < 512
    assert rec.finding == "optimized"
    assert rec.recommended_memory_mb == 512
    assert any("less than 10% headroom" in r for r in rec.reasons)


def test_memory_at_the_limit_is_under_provisioned_even_with_few_invocations() -> None:
    # memory use is capped at the configured size: 512 of 512 MB is a censored sample
    rec = recommend(make_stats(512, [300.0] * 9 + [512.0]), window_s=DAY)
    assert rec.finding == "under-provisioned"
    assert rec.recommended_memory_mb is not None and rec.recommended_memory_mb >= 768
    assert any("reached the configured 512 MB" in r for r in rec.reasons)


def test_same_size_option_costs_what_the_function_costs_now() -> None:
    rng = random.Random(8)
    used = [rng.uniform(800, 850) for _ in range(300)]
    durations = [rng.uniform(100.0, 140.0) for _ in range(300)]
    rec = recommend(make_stats(1024, used, durations=durations), window_s=DAY)
    assert rec.finding == "optimized" and rec.recommended_memory_mb == 1024
    same = next(o for o in rec.options if o.memory_mb == 1024 and not o.what_if)
    assert same.projected_cost_usd == pytest.approx(rec.current_cost_usd, rel=1e-12)
    assert same.projected_savings_usd == pytest.approx(0.0, abs=1e-15)
    assert rec.projected_savings_usd == 0.0


def test_power_tuning_skips_sizes_that_would_run_out_of_memory() -> None:
    rec = recommend(make_stats(256, [250.0] * 60 + [256.0], oom=3), window_s=DAY)
    payload = power_tuning_input(rec)
    assert payload["lambdaARN"] == "arn:aws:lambda:us-east-1:1:function:fn"
    assert rec.estimated_tail_memory_mb is not None
    assert min(payload["powerValues"]) >= rec.estimated_tail_memory_mb
    assert 256 not in payload["powerValues"]  # the size that runs out of memory
    assert rec.recommended_memory_mb in payload["powerValues"]
    assert payload["balancedWeight"] == 0.5
    unknown = MemoryStats("fn", "", "", None, 512)
    arn = power_tuning_input(recommend(unknown, window_s=DAY))["lambdaARN"]
    assert arn == "arn:aws:lambda:<region>:<account-id>:function:fn"


@st.composite
def memory_profiles(draw: st.DrawFn) -> tuple[MemoryStats, int]:
    """A configured size and a merged memory histogram as the store holds it: integer MB
    samples (a few distinct values with counts, possibly at the limit), out-of-memory
    counts, invocations beyond the logged samples (metrics), durations."""
    memory_mb = draw(
        st.sampled_from([128, 129, 256, 512, 1000, 1769, 3008, 10240]) | st.integers(128, 10240)
    )
    values = draw(st.lists(st.integers(1, memory_mb), min_size=1, max_size=12))
    counts = draw(st.lists(st.integers(1, 400), min_size=len(values), max_size=len(values)))
    hist: dict[str, int] = {}
    for value, count in zip(values, counts, strict=True):
        histogram.add(hist, float(value), count)
    samples = sum(counts)
    oom = draw(st.integers(0, 3))
    extra = draw(st.integers(0, 2000))
    mean_ms = draw(st.floats(0.5, 60_000.0))
    stats = MemoryStats(
        "fn",
        "1",
        draw(st.sampled_from(["us-east-1", "eu-west-1", "", "ap-south-2"])),
        draw(st.sampled_from(["x86_64", "arm64", None])),
        memory_mb,
        invocations=float(samples + extra),
        out_of_memory=oom,
        duration_ms_sum=mean_ms * samples,
        billed_duration_ms_sum=math.ceil(mean_ms) * samples,
        max_memory_used_mb=max(values),
        memory_hist=hist,
        duration_hist=histogram.from_values([mean_ms]),
        sampled_invocations=samples,
    )
    return stats, draw(st.integers(1, 100))


@settings(max_examples=300, deadline=None)
@given(memory_profiles())
def test_property_recommendation_on_histograms(profile: tuple[MemoryStats, int]) -> None:
    stats, min_invocations = profile
    rec = recommend(stats, window_s=7 * DAY, min_invocations=min_invocations)
    observed_max = stats.max_memory_used_mb or 0
    at_limit = observed_max >= stats.memory_mb
    if stats.out_of_memory or at_limit:
        assert rec.finding == "under-provisioned"
    if rec.finding == "insufficient-data":
        assert rec.recommended_memory_mb is None and not stats.out_of_memory
        return
    recommended = rec.recommended_memory_mb
    assert recommended is not None and 128 <= recommended <= 10240
    assert recommended >= min(10240, observed_max)
    if stats.out_of_memory or at_limit:
        # one bounded step: 1.25x to 2x today's size (64 MB steps, up to the ceiling)
        assert min(10240, 1.25 * stats.memory_mb) <= recommended
        assert recommended <= max(round_up_memory(1.5 * stats.memory_mb), 192)
    else:
        assert rec.estimated_tail_memory_mb is not None
        # a change covers the estimate's upper bound with headroom; "optimized" keeps the
        # size (its central estimate fits, the reasons say when the upper bound does not)
        if rec.finding != "optimized":
            assert recommended >= min(10240, rec.estimated_tail_memory_mb * 1.1)
    if rec.finding == "over-provisioned":
        assert recommended < stats.memory_mb
    elif rec.finding == "optimized":
        assert recommended == stats.memory_mb
    else:
        assert recommended > stats.memory_mb or recommended == 10240
    assert rec.current_cost_usd >= 0 and rec.projected_cost_usd >= 0
    assert any(o.memory_mb == recommended and not o.what_if for o in rec.options)
    for o in rec.options:
        assert 128 <= o.memory_mb <= 10240 and o.memory_mb >= min(10240, observed_max)
        assert o.projected_cost_usd >= 0
        d = o.projected_duration_ms
        assert 0 <= d.lower <= d.expected <= d.upper


@settings(max_examples=100, deadline=None)
@given(
    memory_mb=st.integers(128, 10240),
    used=st.lists(st.floats(1, 10240), min_size=1, max_size=300),
    oom=st.integers(0, 5),
    extra_invocations=st.integers(0, 1000),
    min_invocations=st.integers(1, 100),
)
def test_property_recommendation_bounds(
    memory_mb: int, used: list[float], oom: int, extra_invocations: int, min_invocations: int
) -> None:
    used = [min(u, memory_mb) for u in used]
    stats = make_stats(memory_mb, used, oom=oom, invocations=len(used) + extra_invocations)
    rec = recommend(stats, window_s=DAY, min_invocations=min_invocations)
    if rec.recommended_memory_mb is not None:
        assert 128 <= rec.recommended_memory_mb <= 10240
        assert rec.recommended_memory_mb >= int(max(used))
        assert rec.projected_cost_usd >= 0
    if oom:
        assert rec.finding == "under-provisioned"
    assert rec.current_cost_usd >= 0
    for o in rec.options:
        assert o.projected_cost_usd >= 0
        assert 128 <= o.memory_mb <= 10240


def test_reasons_read_as_sentences() -> None:
    rng = random.Random(12)
    # a plateau: the observed max rejects the log-normal fits (named once, no "the the")
    used = [min(rng.lognormvariate(math.log(200), 0.3), 260.0) for _ in range(5000)]
    rec = recommend(make_stats(1024, used), window_s=14 * DAY)
    text = " ".join(rec.reasons)
    assert "dropped" in text
    assert "the the" not in text
    one = recommend(make_stats(512, [250.0] * 61 + [512.0], oom=1), window_s=DAY)
    assert "1 out-of-memory errors" not in " ".join(one.reasons)
    assert any(r.startswith("1 of 62 invocations hit the configured 512 MB") for r in one.reasons)


def test_a_deep_cut_projected_far_slower_is_a_performance_risk() -> None:
    rng = random.Random(14)
    stats = make_stats(1024, [rng.uniform(50, 60) for _ in range(2000)])
    cheap = recommend(stats, window_s=14 * DAY, policy=Policy("cost"))
    assert cheap.recommended_memory_mb == 128
    assert cheap.projected_duration_ms is not None
    assert cheap.projected_duration_ms.expected == pytest.approx(450.0)  # 4.5x today's 100 ms
    assert cheap.performance_risk
    assert any("4.5x slower than today" in r for r in cheap.reasons)
    # the default keeps the expected duration within 1.25x: no risk, a smaller cut
    balanced = recommend(stats, window_s=14 * DAY)
    # midpoint of I/O- and CPU-bound: (1 + 1024 / m) / 2 <= 1.25 -> m >= 683 -> 704 MB
    assert balanced.recommended_memory_mb == 704
    assert not balanced.performance_risk
    assert balanced.strategies["cost"].memory_mb == 128


def test_a_projected_p99_near_the_timeout_is_a_performance_risk() -> None:
    stats = make_stats(1024, [100.0] * 400, durations=[2500.0] * 400)
    stats.timeout_s = 3  # p99 2.5 s today: at 1.25x it would pass 90 % of 3 s
    rec = recommend(stats, window_s=7 * DAY, policy=Policy("cost", max_slowdown=10.0))
    assert rec.performance_risk
    assert any("90% of the 3 s timeout" in r for r in rec.reasons)


def test_power_tuning_after_out_of_memory_errors_tries_the_sizes_in_between() -> None:
    rec = recommend(make_stats(512, [250.0] * 61 + [512.0], oom=1), window_s=DAY)
    payload = power_tuning_input(rec)
    assert rec.recommended_memory_mb is not None
    values = payload["powerValues"]
    assert min(values) > 512 and rec.recommended_memory_mb in values
    assert any(512 < v < rec.recommended_memory_mb for v in values)
    assert payload["strategy"] == rec.strategy == "balanced"


def test_two_64_mb_steps_above_the_safe_size_is_still_optimized() -> None:
    rng = random.Random(15)
    used = [rng.uniform(350, 380) for _ in range(2000)]
    safe = recommend(make_stats(4096, used), window_s=7 * DAY).strategies["cost"].memory_mb
    near = recommend(make_stats(safe + 128, used), window_s=7 * DAY)
    assert near.finding == "optimized" and near.recommended_memory_mb == safe + 128
    far = recommend(make_stats(safe + 192, used), window_s=7 * DAY)
    assert far.finding == "over-provisioned"
    assert far.strategies["cost"].memory_mb == safe
