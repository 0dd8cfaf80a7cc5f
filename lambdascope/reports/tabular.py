"""JSON, CSV and Markdown renderers."""

from __future__ import annotations

import csv
import io
import json
from typing import Any

from lambdascope.reports import Report


def to_json(report: Report) -> str:
    """The rows as a JSON array (or the report's document), indented, newline-terminated."""
    data: Any = report.document if report.document is not None else report.rows
    return json.dumps(data, indent=2, sort_keys=False) + "\n"


def flat_value(value: Any) -> Any:
    """A cell for CSV/Markdown: lists of text joined with '; ', other structures as JSON."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return round(value, 6)
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return "; ".join(value)
    if isinstance(value, dict | list):
        return json.dumps(value, separators=(",", ":"))
    return value


# A spreadsheet reads a cell that starts with one of these as a formula (CSV injection).
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def csv_cell(value: Any) -> Any:
    """A CSV cell that a spreadsheet shows as text: text starting like a formula gets a
    leading apostrophe (OWASP's advice); numbers, even negative ones, stay numbers."""
    if isinstance(value, str) and value.startswith(FORMULA_STARTS):
        return "'" + value
    return value


def flatten(row: dict[str, Any]) -> dict[str, Any]:
    """Nested {lower, expected, upper} dicts become ``key_lower`` ... columns."""
    out: dict[str, Any] = {}
    for key, value in row.items():
        if isinstance(value, dict) and set(value) == {"lower", "expected", "upper"}:
            for part in ("lower", "expected", "upper"):
                out[f"{key}_{part}"] = value[part]
        elif key == "projected_duration_ms" and value is None:
            for part in ("lower", "expected", "upper"):
                out[f"{key}_{part}"] = None
        else:
            out[key] = value
    return out


def to_csv(report: Report) -> str:
    """One line per row, the same flat columns as the JSON keys."""
    rows = [flatten(r) for r in report.rows]
    buffer = io.StringIO()
    columns = list(rows[0]) if rows else report.columns
    writer = csv.DictWriter(buffer, fieldnames=columns, extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: csv_cell(flat_value(row.get(k))) for k in columns})
    return buffer.getvalue()


def _md_cell(value: Any) -> str:
    text = str(flat_value(value))
    for char in ("\\", "|", "<", ">", "*", "`", "[", "]"):
        text = text.replace(char, "\\" + char)
    # a line break would end the table row: CR, LF and the Unicode separators become spaces
    for char in ("\r\n", "\r", "\n", "\u2028", "\u2029"):
        text = text.replace(char, " ")
    return text


def md_table(rows: list[dict[str, Any]], columns: list[str]) -> list[str]:
    """A GitHub-flavoured Markdown table."""
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    for row in rows:
        lines.append("| " + " | ".join(_md_cell(row.get(c)) for c in columns) + " |")
    return lines


def to_markdown(report: Report) -> str:
    """Title, summary bullets and a table of the main columns (reads well in a PR)."""
    lines = [f"# {report.title}", ""]
    lines += [f"- {_md_cell(s)}" for s in report.summary]
    if report.summary:
        lines.append("")
    if report.rows:
        lines += md_table([flatten(r) for r in report.rows], report.columns)
    else:
        lines.append("No data in the window.")
    for title, rows, columns in report.sections:
        lines += ["", f"## {title}", ""]
        lines += md_table(rows, columns) if rows else ["None."]
    return "\n".join(lines) + "\n"
