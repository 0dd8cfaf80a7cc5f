"""AWS Lambda Power Tuning results: parsing the real output shapes, storing them, and
memory projections that use the measured points before the model."""

from __future__ import annotations

import base64
import json
import struct
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from lambdascope import histogram
from lambdascope.cli import cli
from lambdascope.db import open_db
from lambdascope.evidence.power_tuning import (
    MeasuredCurve,
    MeasuredPoint,
    PowerTuningError,
    decode_visualization,
    latest_curves,
    parse_function_ref,
    parse_run,
)
from lambdascope.pricing import cpu_share
from lambdascope.rightsizing import MemoryStats, project_measured, recommend
from tests.test_cli_report import UNTIL, add_hours

# The example in the project's README-EXECUTE.md ("results.stateMachine.visualization")
README_URL = (
    "https://lambda-power-tuning.show/#gAAAAQACAAQABsAL;ZooQR4yvkUa/pQRGRC5zRaADHUVjOftE;"
    "QdWhOEMkoziDT5Q4xhiIOMYYiDi6RNc4"
)
ARN = "arn:aws:lambda:us-east-1:111111111111:function:orders-api"


def visualization(sizes: list[int], times: list[float], costs: list[float]) -> str:
    """What Power Tuning's utils.buildVisualizationURL writes (Int16; Float32; Float32)."""
    parts = [
        struct.pack(f"<{len(sizes)}h", *sizes),
        struct.pack(f"<{len(times)}f", *times),
        struct.pack(f"<{len(costs)}f", *costs),
    ]
    return "https://lambda-power-tuning.show/#" + ";".join(
        base64.b64encode(p).decode() for p in parts
    )


def analyzer_output(
    sizes: list[int], times: list[float], *, power: int, stats: bool = False
) -> dict[str, Any]:
    """The state machine's output as lambda/analyzer.js builds it."""
    costs = [2.1e-9 * m / 128 * t for m, t in zip(sizes, times, strict=True)]
    out: dict[str, Any] = {
        "power": power,
        "cost": costs[sizes.index(power)],
        "duration": times[sizes.index(power)],
        "stateMachine": {
            "executionCost": 0.00045,
            "lambdaCost": sum(costs) * 20,
            "visualization": visualization(sizes, times, costs),
        },
    }
    if stats:
        out["stats"] = [
            {"value": m, "averagePrice": c, "averageDuration": t}
            for m, t, c in zip(sizes, times, costs, strict=True)
        ]
    return out


def test_readme_visualization_url_decodes_to_its_six_sizes() -> None:
    points = decode_visualization(README_URL)
    assert [p.memory_mb for p in points] == [128, 256, 512, 1024, 1536, 3008]
    assert points[0].average_duration_ms == pytest.approx(37002.4, abs=0.01)
    assert points[-1].average_duration_ms == pytest.approx(2009.79, abs=0.01)
    assert points[3].average_cost_usd == pytest.approx(6.4896e-05, rel=1e-4)


def test_bare_output_without_stats_reads_the_visualization() -> None:
    out = analyzer_output([256, 512, 1024], [800.0, 400.0, 210.0], power=512)
    run = parse_run(json.dumps(out))
    assert [(p.memory_mb, round(p.average_duration_ms)) for p in run.points] == [
        (256, 800),
        (512, 400),
        (1024, 210),
    ]
    assert run.chosen_memory_mb == 512 and run.function is None


def test_stats_win_and_string_power_values_are_sizes() -> None:
    out = analyzer_output([512, 256], [400.0, 800.0], power=256, stats=True)
    out["power"] = "256"  # the README's example writes it as a string
    out["stats"].append({"value": 1024, "averagePrice": 0, "averageDuration": 0})  # empty
    run = parse_run(json.dumps({"results": out}))
    assert [p.memory_mb for p in run.points] == [256, 512]  # sorted; empty result skipped
    assert run.chosen_memory_mb == 256


def test_describe_execution_names_the_function_and_the_time() -> None:
    out = analyzer_output([256, 512], [800.0, 400.0], power=512)
    described = {
        "executionArn": "arn:aws:states:us-east-1:111111111111:execution:powerTuning:abc",
        "status": "SUCCEEDED",
        "startDate": "2026-11-30T10:00:00.000000+00:00",
        "stopDate": "2026-11-30T10:04:00.500000+00:00",
        "input": json.dumps({"lambdaARN": ARN, "num": 20, "strategy": "cost"}),
        "output": json.dumps(out),
    }
    run = parse_run(json.dumps(described))
    assert run.function == parse_function_ref(ARN)
    assert run.function is not None and run.function.account_id == "111111111111"
    assert run.strategy == "cost"
    assert run.measured_at == 1796033040  # 2026-11-30T10:04:00Z
    assert run.run_key == described["executionArn"]


@pytest.mark.parametrize(
    ("document", "message"),
    [
        ("not json", "not JSON"),
        ("[1, 2]", "not a JSON object"),
        ('{"status": "FAILED", "executionArn": "x", "output": null}', "ended FAILED"),
        ('{"power": 512, "stateMachine": {}}', "no per-size results"),
        ('{"cost": 1}', "no 'power'"),
        ('{"power": 100000, "stats": [{"value": 128, "averageDuration": 5}]}', "memory size"),
        ('{"power": 512, "stateMachine": {"visualization": "https://x/#a;b"}}', "no #sizes"),
    ],
)
def test_unusable_input_is_one_clear_error(document: str, message: str) -> None:
    with pytest.raises(PowerTuningError, match=message):
        parse_run(document)


def test_placeholder_arn_from_an_unknown_account_is_a_name() -> None:
    ref = parse_function_ref("arn:aws:lambda:<region>:<account-id>:function:moved")
    assert (ref.function_name, ref.account_id, ref.region) == ("moved", "", "")
    with pytest.raises(PowerTuningError):
        parse_function_ref("arn:aws:s3:::bucket")


def test_curve_interpolates_exactly_for_io_plus_cpu() -> None:
    def truth(m: float) -> float:
        return 50.0 + 300.0 / cpu_share(m)

    curve = MeasuredCurve(tuple(MeasuredPoint(m, truth(m), 0.0) for m in (256, 1024)))
    assert curve.at(512) == pytest.approx(truth(512))  # between measured sizes
    assert curve.at(128) == pytest.approx(truth(128))  # beyond: the model through them
    assert curve.at(1024) == truth(1024)
    assert curve.covers(512) and not curve.covers(128)


def stats_at(memory_mb: int, mean_ms: float, n: int = 2000) -> MemoryStats:
    mem = histogram.from_values([90.0 + (i % 40) for i in range(n)])
    dur = histogram.from_values([mean_ms] * n)
    return MemoryStats(
        function_name="fn",
        account_id="1",
        region="us-east-1",
        architecture="x86_64",
        memory_mb=memory_mb,
        invocations=n,
        errors=0,
        throttles=0,
        timeouts=0,
        out_of_memory=0,
        cold_starts=0,
        duration_ms_sum=mean_ms * n,
        duration_ms_max=mean_ms,
        billed_duration_ms_sum=mean_ms * n,
        init_duration_ms_sum=0.0,
        billable_init_ms=0.0,
        billed_restore_duration_ms_sum=0.0,
        max_memory_used_mb=129,
        memory_hist=mem,
        duration_hist=dur,
        init_hist={},
        runtime="python3.12",
        timeout_s=30,
        first_hour=0,
        last_hour=3600,
        sampled_invocations=n,
    )


def test_measured_points_replace_the_bounds_and_narrow_the_range() -> None:
    # An I/O-bound function (100 ms whatever the size) at 1,024 MB, tuned at 4 sizes.
    stats = stats_at(1024, 100.0)
    without = recommend(stats, window_s=7 * 86400)
    curve = MeasuredCurve(
        tuple(MeasuredPoint(m, d, 0.0) for m, d in ((128, 41.0), (256, 40.5), (1024, 40.0)))
    )
    with_curve = recommend(stats, window_s=7 * 86400, measured=curve)
    assert without.duration_evidence == "bounds"
    assert with_curve.duration_evidence == "power-tuning"
    # the bounds cannot rule out a CPU-bound function: balanced stops at 704 MB; measured,
    # the function is I/O-bound and the safe size is as fast
    assert (without.recommended_memory_mb, with_curve.recommended_memory_mb) == (704, 192)
    assert without.projected_duration_ms is not None and with_curve.projected_duration_ms
    # the tuning payload ran ~40 ms, production 100 ms: the ratio is what carries over
    expected = 100.0 * curve.at(192) / 40.0
    assert with_curve.projected_duration_ms.expected == pytest.approx(expected)
    assert 40.5 < curve.at(192) < 41.0
    width = with_curve.projected_duration_ms.upper - with_curve.projected_duration_ms.lower
    assert width == pytest.approx(0.1 * expected)  # +-5 % between measured sizes
    assert any(
        "measured by AWS Lambda Power Tuning at 128, 256, 1,024 MB" in r for r in with_curve.reasons
    )


def test_a_multithreaded_speedup_above_one_vcpu_is_kept() -> None:
    curve = MeasuredCurve((MeasuredPoint(1792, 1000.0, 0.0), MeasuredPoint(3584, 520.0, 0.0)))
    rng = project_measured(900.0, 1792, 3584, curve)
    assert rng.expected == pytest.approx(900.0 * 0.52)  # the bounds would say "unchanged"


def invoke(db_path: Path, *args: str, stdin: str | None = None) -> tuple[int, str, str]:
    result = CliRunner().invoke(cli, ["--db", str(db_path), *args], input=stdin)
    return result.exit_code, result.stdout, result.stderr


def test_round_trip_input_execution_import_report(db_path: Path, tmp_path: Path) -> None:
    db = open_db(db_path)
    add_hours(db, "orders-api", memory_mb=1024, hours=48, per_hour=20, memory_used=(150, 200))
    db.conn.close()
    before = json.loads(invoke(db_path, "report", "memory", "--until", UNTIL)[1])[0]
    code, out, _ = invoke(db_path, "power-tuning", "orders-api", "--until", UNTIL)
    assert code == 0
    payload = json.loads(out)
    sizes = payload["powerValues"]
    # what the state machine measures for an I/O-bound function with this input
    times = [100.0 for _ in sizes]
    described = {
        "executionArn": "arn:aws:states:us-east-1:111111111111:execution:powerTuning:r1",
        "status": "SUCCEEDED",
        "stopDate": 1767100000.0,
        "input": json.dumps(payload),
        "output": json.dumps(analyzer_output(sizes, times, power=sizes[0])),
    }
    path = tmp_path / "execution.json"
    path.write_text(json.dumps(described))
    code, out, err = invoke(db_path, "power-tuning", "import", str(path))
    assert (code, err) == (0, "")
    assert out == (
        f"imported Power Tuning run for orders-api: {len(sizes)} sizes"
        f" ({', '.join(map(str, sizes))} MB), picked {sizes[0]} MB (balanced)\n"
    )
    code, out, _ = invoke(db_path, "power-tuning", "import", "-", stdin=json.dumps(described))
    assert out.startswith("already imported")
    check = open_db(db_path)
    assert check.conn.execute("SELECT COUNT(*) FROM power_tuning_runs").fetchone() == (1,)
    assert list(latest_curves(check)) == [("111111111111", "us-east-1", "orders-api")]
    code, out, _ = invoke(db_path, "report", "memory", "--until", UNTIL)
    after = json.loads(out)[0]
    assert (before["duration_evidence"], after["duration_evidence"]) == ("bounds", "power-tuning")
    assert any("AWS Lambda Power Tuning" in r for r in after["reasons"])
    assert not any("AWS Lambda Power Tuning" in r for r in before["reasons"])

    def width(row: dict[str, Any]) -> float:
        rng = row["projected_duration_ms"]
        return float(rng["upper"] - rng["lower"]) / float(rng["expected"])

    assert width(after) <= 0.2 + 1e-3 and width(after) * 2 <= width(before)


def test_bare_output_needs_the_function(db_path: Path, tmp_path: Path) -> None:
    path = tmp_path / "out.json"
    path.write_text(json.dumps(analyzer_output([256, 512], [2.0, 1.0], power=512)))
    code, _, err = invoke(db_path, "power-tuning", "import", str(path))
    assert code == 1 and err.count("\n") == 1 and "--function" in err
    code, out, _ = invoke(db_path, "power-tuning", "import", str(path), "--function", "fn")
    assert code == 0 and "picked 512 MB" in out


def test_bad_file_is_one_line_and_keeps_the_store(db_path: Path, tmp_path: Path) -> None:
    good = tmp_path / "out.json"
    good.write_text(json.dumps(analyzer_output([256, 512], [2.0, 1.0], power=512)))
    assert invoke(db_path, "power-tuning", "import", str(good), "--function", "fn")[0] == 0
    bad = tmp_path / "bad.json"
    bad.write_bytes(b'{"power": 512, "stateMachine": {"visualization": "https://x/#%%;;"')
    for args in ((str(bad),), (str(tmp_path / "missing.json"),)):
        code, _, err = invoke(db_path, "power-tuning", "import", *args, "--function", "fn")
        assert code == 1
        assert err.startswith("Error: ") and err.count("\n") == 1 and "Traceback" not in err
    check = open_db(db_path)
    assert check.conn.execute("SELECT COUNT(*) FROM power_tuning_points").fetchone() == (2,)
