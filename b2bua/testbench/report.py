"""The lab's report: a text table for the terminal, `lab-report.json`, `lab-report.html`.

The HTML page is self-contained (inline CSS, no script, no external resource) and every
piece of text in it is escaped: SIP headers and PIDF-LO content come from callers.
"""

from __future__ import annotations

import html
import json
import shutil
import textwrap
from collections.abc import Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

COLUMNS = ("scenario", "route taken", "ECRC recorded", "expected", "result")


def _rows(results: Sequence[Any]) -> list[tuple[str, str, str, str, str]]:
    rows = []
    for result in results:
        verdict = "PASS" if result.passed else "FAIL: " + "; ".join(result.problems)
        rows.append((result.name, result.route, result.recorded, result.expected, verdict))
    return rows


def render_table(results: Sequence[Any], width: int | None = None) -> str:
    """A plain-text table, cells wrapped to fit `width` (the terminal's, at least 100)."""
    width = width or max(100, shutil.get_terminal_size((160, 24)).columns)
    rows = _rows(results)
    # Scenario names and PASS stay on one line; the three text columns share the rest.
    first = max([len(COLUMNS[0]), *(len(row[0]) for row in rows)])
    last = 6
    text_width = max(30, width - first - last - 4 * 3)
    shares = (0.3, 0.4, 0.3)
    widths = [first, *(max(12, int(text_width * share)) for share in shares), last]
    out = []

    def emit(cells: Sequence[str], *, wrap_last: bool = True) -> None:
        wrapped = []
        for index, (cell, size) in enumerate(zip(cells, widths)):
            if index == len(cells) - 1 and not wrap_last:
                wrapped.append([cell])
            else:
                wrapped.append(textwrap.wrap(cell, size, break_long_words=True, break_on_hyphens=False) or [""])
        for line in range(max(len(lines) for lines in wrapped)):
            parts = [(lines[line] if line < len(lines) else "").ljust(size)
                     for lines, size in zip(wrapped, widths)]
            out.append(" | ".join(parts).rstrip())

    emit(COLUMNS)
    out.append("-+-".join("-" * size for size in widths))
    for row in rows:
        result = row[4]
        emit((*row[:4], "PASS" if result == "PASS" else "FAIL"))
        if result != "PASS":
            for problem in result.removeprefix("FAIL: ").split("; "):
                out.append(" " * (widths[0] + 3) + "!! " + problem)
    return "\n".join(out)


def lab_report(lab: Any, results: Sequence[Any]) -> dict[str, Any]:
    from .lab import summary_of

    now = datetime.now(timezone.utc)
    duration = sum(result.duration_s for result in results)
    return {
        "generated_at": now.isoformat(timespec="seconds"),
        "passed": all(result.passed for result in results),
        "scenarios_passed": sum(1 for result in results if result.passed),
        "scenarios": [result.to_json() for result in results],
        "duration_s": round(duration, 3),
        "lab": summary_of(lab),
    }


def write_json(path: str | Path, document: dict[str, Any]) -> None:
    Path(path).write_text(json.dumps(document, indent=2, ensure_ascii=False, default=str) + "\n", encoding="utf-8")


_CSS = """
body { font-family: system-ui, sans-serif; margin: 2em; color: #222; }
table { border-collapse: collapse; width: 100%; }
th, td { border: 1px solid #bbb; padding: .4em .6em; vertical-align: top; text-align: left; font-size: 90%; }
th { background: #eee; }
td.pass { background: #dfd; font-weight: bold; }
td.fail { background: #fdd; font-weight: bold; }
code, .mono { font-family: ui-monospace, monospace; }
ul { margin: .2em 0; padding-left: 1.2em; }
"""


def render_html(document: dict[str, Any]) -> str:
    e = html.escape
    scenarios = document.get("scenarios") or []
    rows = []
    for item in scenarios:
        status = "PASS" if item.get("passed") else "FAIL"
        problems = "".join(f"<li>{e(str(p))}</li>" for p in item.get("problems") or [])
        notes = "".join(f"<li>{e(str(n))}</li>" for n in item.get("notes") or [])
        rows.append(
            "<tr>"
            f"<td class=\"mono\">{e(str(item.get('name')))}<br><small>{e(str(item.get('title')))}</small></td>"
            f"<td>{e(str(item.get('route')))}</td>"
            f"<td>{e(str(item.get('recorded')))}{'<ul>' + notes + '</ul>' if notes else ''}</td>"
            f"<td>{e(str(item.get('expected')))}</td>"
            f"<td class=\"{status.lower()}\">{status}{'<ul>' + problems + '</ul>' if problems else ''}</td>"
            "</tr>"
        )
    parts = "".join(f"<tr><td>{e(str(p.get('what')))}</td><td class=\"mono\">{e(str(p.get('where')))}</td></tr>"
                    for p in (document.get("lab") or {}).get("parts") or [])
    passed = document.get("scenarios_passed", 0)
    title = f"E9-1-1 lab: {passed}/{len(scenarios)} scenarios passed"
    return (
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
        f"<title>{e(title)}</title><style>{_CSS}</style></head><body>"
        f"<h1>{e(title)}</h1>"
        f"<p>Generated {e(str(document.get('generated_at')))}; scenarios took {e(str(document.get('duration_s')))} s; "
        f"configuration <code>{e(str((document.get('lab') or {}).get('config')))}</code>.</p>"
        "<table><thead><tr>" + "".join(f"<th>{e(c)}</th>" for c in COLUMNS) + "</tr></thead><tbody>"
        + "".join(rows) + "</tbody></table>"
        "<h2>Lab</h2><table><tbody>" + parts + "</tbody></table>"
        "<p>Every call's details (caller outcome, B2BUA CDR, ECRC records) are in lab-report.json.</p>"
        "</body></html>\n"
    )


def write_html(path: str | Path, document: dict[str, Any]) -> None:
    Path(path).write_text(render_html(document), encoding="utf-8")
