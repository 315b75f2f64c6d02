"""Per-student feedback as one self-contained HTML page per lab.

For every graded item it shows points, status and the test's message (``AssertionError: ...``),
never a test's code or traceback -- hidden tests stay hidden, and a traceback would print their
source lines.
"""

from __future__ import annotations

from html import escape
from typing import Sequence

from labkit.grading.results import ItemResult, format_score

_STYLE = """body{font-family:system-ui,sans-serif;max-width:60rem;margin:2rem auto;padding:0 1rem;color:#222}
table{border-collapse:collapse;width:100%}th,td{border:1px solid #ccc;padding:.35rem .6rem;text-align:left;
vertical-align:top}th{background:#f3f3f3}td.num{text-align:right;white-space:nowrap}
.passed{color:#17692e}.partial,.manual{color:#8a5a00}.failed,.timeout,.crashed,.not_run,.missing,.invalid,
.tampered{color:#a11}.note{color:#555;font-size:.9em}"""


def feedback_html(student: str, lab_id: str, items: Sequence[ItemResult], isolation: str) -> str:
    """The feedback page of one student for one lab."""
    score = sum(i.score or 0.0 for i in items)
    total = sum(i.max_score for i in items)
    rows = "\n".join(
        f"<tr><td>{escape(i.notebook)}</td><td>{escape(i.item)}</td>"
        f"<td class=num>{format_score(i.score)} / {format_score(i.max_score)}</td>"
        f"<td class={escape(i.status)}>{escape(i.status)}</td><td>{escape(i.message)}</td></tr>"
        for i in items)
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{escape(lab_id)}: feedback for {escape(student)}</title>
<style>{_STYLE}</style></head><body>
<h1>{escape(lab_id)}: feedback for {escape(student)}</h1>
<p><strong>Score: {format_score(score)} / {format_score(total)}</strong></p>
<table><thead><tr><th>notebook</th><th>item</th><th>points</th><th>status</th><th>message</th></tr></thead>
<tbody>
{rows}
</tbody></table>
<p class=note>Each item is a test cell of the lab (hidden tests included); its message is what the test
reported. Items marked <em>manual</em> are graded by hand. Graded in isolation: {escape(isolation)}.</p>
</body></html>
"""
