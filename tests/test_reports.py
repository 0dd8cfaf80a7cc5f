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


def test_markdown_keeps_one_row_per_name_whatever_its_characters() -> None:
    rows = [{"function_name": "a|b\r\nc\rd\ne\u2028f", "memory_mb": 128}]
    text = render(Report("memory", "T", rows, ["function_name", "memory_mb"]), "md")
    table = [line for line in text.splitlines() if line.startswith("|")]
    assert table[2] == "| a\\|b c d e f | 128 |"
    assert len(table) == 3


def test_html_escapes_names_in_cells_and_in_chart_json() -> None:
    name = "</script><img src=x onerror=alert(1)>\"'&"
    report = Report(
        "memory",
        "T",
        [{"function_name": name}],
        ["function_name"],
        [name],
        [Chart(name, [name], {name: [1.0]})],
    )
    text = render(report, "html")
    body = text.split("</head>", 1)[1]  # after the inlined plotly.js
    assert "<img" not in body and "</script><" not in body.replace("</script>\n<", "")
    assert "<td>&lt;/script&gt;&lt;img src=x onerror=alert(1)&gt;&quot;&#x27;&amp;</td>" in body
    assert "<li>&lt;/script&gt;" in body
    # chart labels: entity-escaped for plotly's label markup, then \u003c inside <script>
    assert "\\u0026lt;\\u002fscript\\u0026gt;\\u0026lt;img src=x onerror=alert(1)" in body
