from __future__ import annotations

import csv
import io
import json

import pytest

from lambdascope.reports import Chart, Report, render
from lambdascope.reports.tabular import flatten


def sample() -> Report:
    rows = [
        {
            "function_name": "a|b",
            "memory_mb": 512,
            "reasons": ["one", "two"],
            "projected_duration_ms": {"lower": 1.0, "expected": 2.0, "upper": 3.0},
            "options": [{"memory_mb": 256}],
            "performance_risk": False,
            "p99": None,
        },
    ]
    return Report(
        "memory",
        "Title <x>",
        rows,
        ["function_name", "memory_mb", "reasons"],
        ["a summary"],
        [Chart("c", ["a|b"], {"s": [1.0]})],
    )


def test_flatten_duration_range() -> None:
    flat = flatten(sample().rows[0])
    assert flat["projected_duration_ms_lower"] == 1.0
    assert flat["projected_duration_ms_upper"] == 3.0
    assert "projected_duration_ms" not in flat


def test_json_is_the_rows() -> None:
    assert json.loads(render(sample(), "json")) == sample().rows


def test_csv_cells() -> None:
    rows = list(csv.DictReader(io.StringIO(render(sample(), "csv"))))
    assert rows == [
        {
            "function_name": "a|b",
            "memory_mb": "512",
            "reasons": "one; two",
            "projected_duration_ms_lower": "1.0",
            "projected_duration_ms_expected": "2.0",
            "projected_duration_ms_upper": "3.0",
            "options": '[{"memory_mb":256}]',
            "performance_risk": "false",
            "p99": "",
        }
    ]


def test_markdown_escapes_pipes_and_lists_summary() -> None:
    text = render(sample(), "md")
    assert text.splitlines()[:3] == ["# Title <x>", "", "- a summary"]
    assert "| a\\|b | 512 | one; two |" in text


def test_empty_report_says_so() -> None:
    empty = Report("memory", "T", [], ["function_name"])
    assert render(empty, "json") == "[]\n"
    assert render(empty, "csv") == "function_name\n"
    assert "No data in the window." in render(empty, "md")
    assert "No data in the window." in render(empty, "html")


def test_html_escapes_title_and_cells() -> None:
    text = render(sample(), "html")
    assert "<title>Title &lt;x&gt;</title>" in text
    assert "<td>a|b</td>" in text


def test_unknown_format() -> None:
    with pytest.raises(ValueError, match="unknown format 'xml'"):
        render(sample(), "xml")
