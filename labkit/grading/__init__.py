"""Grading machinery of the course: hashed quizzes, the nbgrader release, and a robust autograder.

* :mod:`labkit.grading.quiz` -- answers checked against salted hashes, so a student copy never
  holds the answers (``labkit quiz-key KEY.yaml`` turns an instructor key into hashes).
* :mod:`labkit.grading.release` -- ``nbgrader generate_assignment`` for every lab under
  ``autograder/source/`` and the student copies under ``notebooks/<chapter>/labs/``.
* :mod:`labkit.grading.grader` -- ``labkit grade``: every submission runs cell by cell in a
  throw-away, sandboxed kernel (:mod:`labkit.grading.sandbox`) with a per-cell timeout and a
  memory cap; hidden tests come from the instructor source; tampered test cells are reported.

Only :mod:`labkit.grading.quiz` is imported here: student notebooks use it, and they should not
pay for importing nbgrader.
"""

from labkit.grading.quiz import Quiz, check, hash_answer

__all__ = ["Quiz", "check", "hash_answer"]
