"""Figure builders and number formats, checked on their JSON / text."""

from __future__ import annotations

import pandas as pd

from dashboards import figures
from dashboards import format as fmt
from lambdascope import histogram


def _series() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "time": pd.to_datetime([0, 3600, 7200], unit="s", utc=True),
            "invocations": [100, 200, 50],
            "errors": [1, 0, 3],
            "throttles": [0, 5, 0],
        }
    )


def test_counts_over_time_puts_failures_on_a_second_axis_with_units() -> None:
    fig = figures.counts_over_time(_series(), "Fleet").to_plotly_json()
    names = [t["name"] for t in fig["data"]]
    assert names == ["Invocations", "Errors (all failures)", "Throttles"]
    assert [t.get("yaxis") for t in fig["data"]] == ["y", "y2", "y2"]
    assert fig["layout"]["xaxis"]["title"]["text"] == "Time (UTC)"
    assert fig["layout"]["yaxis2"]["title"]["text"] == "Errors / throttles per hour"
    assert fig["layout"]["yaxis"]["title"]["text"] == "Invocations per hour"


def test_empty_frame_gives_a_figure_that_says_why() -> None:
    fig = figures.counts_over_time(_series().iloc[0:0], "Fleet").to_plotly_json()
    assert fig["data"] == []
    assert "No invocations" in fig["layout"]["annotations"][0]["text"]


def test_memory_scatter_colours_by_finding_and_draws_the_diagonal() -> None:
    frame = pd.DataFrame(
        {
            "function_name": ["a", "b", "c"],
            "memory_mb": [1024, 128, 512],
            "max_memory_used_mb": [200, 120, None],
            "finding": ["over-provisioned", "under-provisioned", "optimized"],
        }
    )
    fig = figures.memory_scatter(frame, "finding").to_plotly_json()
    by_name = {t["name"]: t for t in fig["data"]}
    assert (
        by_name["over-provisioned"]["marker"]["color"]
        == figures.FINDING_COLOURS["over-provisioned"]
    )
    assert "optimized" not in by_name  # no memory report: not plotted
    diagonal = by_name["used = configured"]
    assert list(diagonal["x"]) == list(diagonal["y"])
    assert fig["layout"]["xaxis"]["type"] == "log"
    assert "Max memory used" in fig["layout"]["yaxis"]["title"]["text"]
    assert "128 MB" in fig["layout"]["yaxis"]["ticktext"]  # memory sizes as ticks
    assert "1 GB" in fig["layout"]["xaxis"]["ticktext"]


def test_memory_histogram_marks_the_configured_size() -> None:
    hist = histogram.from_values([100, 101, 180, 190, 191])
    figure = figures.memory_histogram(hist, 256)
    assert sum(figure.data[0].y) == 5
    fig = figure.to_plotly_json()
    assert fig["layout"]["shapes"][0]["x0"] == 256
    assert fig["layout"]["xaxis"]["title"]["text"] == "Max memory used (MB)"
    # an out-of-memory function used exactly its 2,048 MB: the top bar stays at 2,048
    at_limit = figures.memory_histogram(histogram.from_values([1900, 2048, 2048]), 2048, 2048)
    assert max(at_limit.data[0].x) == 2048


def test_savings_by_finding_sums_per_finding() -> None:
    recs = pd.DataFrame(
        {
            "function_name": ["a", "b", "c"],
            "finding": ["over-provisioned", "over-provisioned", "optimized"],
            "monthly_savings_usd": [10.0, 2.5, 0.0],
        }
    )
    bar = figures.savings_by_finding(recs).data[0]
    totals = dict(zip(bar.x, (float(v) for v in bar.y), strict=True))
    assert totals == {"optimized": 0.0, "over-provisioned": 12.5}
    assert "$12.50 · 2 functions" in bar.text


def test_readable_numbers() -> None:
    assert fmt.number(1234) == "1.2 k"
    assert fmt.number(3_400_000) == "3.4 M"
    assert fmt.number(950) == "950"
    assert fmt.duration_ms(3400) == "3.4 s"
    assert fmt.duration_ms(85) == "85 ms"
    assert fmt.usd(12.3) == "$12.30"
    assert fmt.usd(-0.12) == "-$0.12"
    assert fmt.percent(0.0123) == "1.23 %"
    assert fmt.number(None) == fmt.DASH
    assert fmt.size_bytes(75 * 1024**3) == "75.0 GB"


def test_concurrency_vs_reserved_puts_limited_functions_first() -> None:
    frame = pd.DataFrame(
        {
            "function_name": ["busy", "capped", "quiet", "no-metrics"],
            "concurrency_max": [80.0, 9.0, 2.0, None],
            "reserved_concurrency": [None, 10, 50, 5],
        }
    )
    fig = figures.concurrency_vs_reserved(frame)
    bars, reserved = fig.data
    assert list(bars.y) == ["capped", "quiet", "busy"]  # 90 % and 4 % of reserved, then none
    assert list(reserved.y) == ["capped", "quiet"] and list(reserved.x) == [10, 50]
    assert "Concurrent executions" in fig.layout.xaxis.title.text


def test_health_figures_say_when_a_metric_was_not_collected() -> None:
    times = pd.to_datetime([0, 3600], unit="s", utc=True)
    absent = pd.DataFrame(
        {
            "time": times,
            "iterator_age_max_ms": [float("nan")] * 2,
            "async_events_dropped": [float("nan")] * 2,
        }
    )
    for fig in (
        figures.iterator_age_over_time(absent),
        figures.async_delivery_over_time(absent),
        figures.concurrency_vs_reserved(
            pd.DataFrame({"function_name": [], "concurrency_max": [], "reserved_concurrency": []})
        ),
    ):
        assert fig.data == ()
        assert "Not collected" in fig.layout.annotations[0].text
    present = absent.assign(iterator_age_max_ms=[1500.0, 90_000.0], async_events_dropped=[0, 4])
    age = figures.iterator_age_over_time(present)
    assert list(age.data[0].y) == [1.5, 90.0]  # seconds
    assert age.layout.yaxis.title.text == "Iterator age (s)"
    drops = figures.async_delivery_over_time(present)
    assert [t.name for t in drops.data] == ["Async events dropped"]


def test_cold_starts_show_init_p95_on_a_second_axis() -> None:
    frame = pd.DataFrame(
        {
            "time": pd.to_datetime([0, 3600], unit="s", utc=True),
            "cold_starts": [3, 0],
            "init_p95_ms": [420.0, None],
        }
    )
    fig = figures.cold_starts_over_time(frame)
    assert [t.name for t in fig.data] == ["Cold starts", "p95 init duration"]
    assert fig.data[1].yaxis == "y2"
    assert fig.layout.yaxis2.title.text == "Init duration (ms)"


def test_cost_axes_show_plain_dollars_not_si_prefixes() -> None:
    import pandas as pd

    from dashboards.figures import cost_per_day, usd_tickformat

    small = pd.DataFrame(
        {"day": pd.to_datetime(["2026-01-01", "2026-01-02"]), "cost_usd": [0.0004, 0.0005]}
    )
    axis = cost_per_day(small).to_plotly_json()["layout"]["yaxis"]
    assert axis["tickprefix"] == "$" and axis["tickformat"] == ",.4f"  # $0.0005, not $500µ
    assert usd_tickformat([12.5]) == ",.2f" and usd_tickformat([4200.0]) == ",.0f"
    assert usd_tickformat([0.0]) == ",.0f"
