"""Grading results: one row per graded item, and the files a grading run writes.

Item statuses: ``passed`` (full points), ``failed`` (the grader's check of the student's answer
failed, or the student's function raised), ``no_answer`` (nothing came back from the notebook's
kernel: the name is undefined, a time limit, a crash), ``missing`` (no such notebook in the
submission), ``invalid`` (the submission is not a readable notebook) and ``tampered`` (a locked
cell was changed, deleted or duplicated: the original ran instead; 0 of 0 points, instructor to
review). Warnings and output on stderr cost nothing.
"""

from __future__ import annotations

import csv
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

#: Statuses that need the instructor's attention (``labkit grade`` exits 1 when one occurs).
REVIEW_STATUSES = ("tampered", "invalid")
CSV_COLUMNS = ("student", "notebook", "item", "score", "max", "status", "message", "isolation")


def format_score(value: float | None) -> str:
    """``2``, ``0.5``, or empty for no score."""
    return "" if value is None else f"{value:g}"


@dataclass
class ItemResult:
    """One graded item (an nbgrader ``grade_id``) of one notebook."""

    notebook: str
    item: str
    score: float | None
    max_score: float
    status: str
    message: str = ""


@dataclass
class StudentResult:
    student: str
    items: list[ItemResult] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def score(self) -> float:
        return sum(i.score or 0.0 for i in self.items)

    @property
    def max_score(self) -> float:
        return sum(i.max_score for i in self.items)


@dataclass
class LabReport:
    """Everything a ``labkit grade`` run found."""

    lab: str
    isolation: str
    isolation_description: str
    settings: dict[str, Any]
    students: list[StudentResult] = field(default_factory=list)

    @property
    def needs_review(self) -> bool:
        return any(i.status in REVIEW_STATUSES for s in self.students for i in s.items)

    def to_dict(self) -> dict[str, Any]:
        return {
            "lab": self.lab, "isolation": self.isolation, "isolation_description": self.isolation_description,
            "settings": self.settings, "needs_review": self.needs_review,
            "students": [{"student": s.student, "score": s.score, "max": s.max_score, "seconds": round(s.seconds, 2),
                          "items": [asdict(i) for i in s.items]} for s in self.students],
        }

    def write_csv(self, path: Path) -> Path:
        """``grades.csv``: student, notebook, item, score, max, status, message, isolation."""
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("w", newline="", encoding="utf-8") as f:
            writer = csv.writer(f)
            writer.writerow(CSV_COLUMNS)
            for s in self.students:
                for i in s.items:
                    writer.writerow([s.student, i.notebook, i.item, format_score(i.score), format_score(i.max_score),
                                     i.status, i.message, self.isolation])
        return path
