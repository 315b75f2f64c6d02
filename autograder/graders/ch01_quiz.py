"""Grading spec of the Chapter 1 quiz: five questions, answers checked against keys/ch01_quiz.yaml."""

from pathlib import Path

from labkit.grading.labspec import LabSpec, quiz_items

LAB = LabSpec(items=quiz_items(Path(__file__).resolve().parents[1] / "keys" / "ch01_quiz.yaml"),
              skip_cells=tuple(f"q{k}_check" for k in range(1, 6)))
