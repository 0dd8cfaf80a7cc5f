from __future__ import annotations

import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lambdascope import histogram
from lambdascope.rightsizing import (
    MemoryStats,
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
    tail_few, _ = estimate_tail_mb(histogram.from_values(few), max(few))
    # the 99.99th percentile of this log-normal is exp(5 + 3.719 * 0.1) = 215 MB
    assert tail_many == pytest.approx(215, rel=0.05)
    assert tail_few > tail_many * 0.98
    assert tail_few >= max(few)


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
    assert rec.recommended_memory_mb == 384
    assert any("2 out-of-memory errors" in r for r in rec.reasons)


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
    assert rec.performance_risk
    assert any("fitted on 2 memory sizes" in r for r in rec.reasons)


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


@settings(max_examples=200, deadline=None)
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
