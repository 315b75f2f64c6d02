"""Per-student feedback as one self-contained HTML page per lab, and the rule for every message.

For every graded item the page shows points, status and the message of the grader's check --
never a check's code or a traceback. Messages pass :func:`clean_message` before they reach
``grades.csv``, ``summary.json`` or a page: student-controlled text (an exception message of the
student's function) is cut short, file-system paths become ``<path>`` and control characters go,
so a submission cannot smuggle text (another lab's files, the grader's temporary paths) into the
reports. Quiz checks never put an answer in their message.
"""

from __future__ import annotations

import re
from html import escape
from typing import Sequence

from labkit.grading.results import ItemResult, format_score

#: Characters of one message kept in the reports.
MAX_MESSAGE = 240
_PATH = re.compile(r"(?:[A-Za-z]:)?(?:[\\/][^\s'\"\\/:,;()\[\]<>]+){2,}[\\/]?|(?:~|\.\.?)[\\/]\S*")
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")


def clean_message(text: str, limit: int = MAX_MESSAGE) -> str:
    """``text`` fit for a report: paths replaced, control characters dropped, one line, at most ``limit`` characters."""
    text = _CONTROL.sub("", _PATH.sub("<path>", str(text)))
    text = " ".join(text.split())
    return text if len(text) <= limit else text[:limit - 3].rstrip() + "..."


_STYLE = """body{font-family:system-ui,sans-serif;max-width:60rem;margin:2rem auto;padding:0 1rem;color:#222}
table{border-collapse:collapse;width:100%}th,td{border:1px solid #ccc;padding:.35rem .6rem;text-align:left;
vertical-align:top}th{background:#f3f3f3}td.num{text-align:right;white-space:nowrap}
.passed{color:#17692e}.failed,.no_answer,.missing,.invalid{color:#a11}.tampered{color:#8a5a00}.note{color:#555;font-size:.9em}"""


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
<p class=note>Each item is checked by the grader, outside your notebook, by calling your functions on
its own inputs; its message is what the check reported. Visible checks in the notebook award no points.
Graded in isolation: {escape(isolation)}.</p>
</body></html>
"""
