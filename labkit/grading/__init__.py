"""Grading machinery of the course: points decided outside the student's process.

* :mod:`labkit.grading.grader` -- ``labkit grade``: every submission runs in a throw-away kernel
  under bubblewrap (:mod:`labkit.grading.sandbox`), cell by cell with time and memory limits;
  then the grader *probes* it (:mod:`labkit.grading.probe`): it calls the student's functions
  with its own hidden inputs, gets plain data back and scores each item in its own process
  against references the student's process never sees.
* :mod:`labkit.grading.labspec` -- how a lab declares its graded items, probes and blocked
  modules (``autograder/graders/<lab_id>.py``), with a worked example.
* :mod:`labkit.grading.quiz` -- quizzes graded at grading time only; the student copy holds no
  answer and no hash.
* :mod:`labkit.grading.release` -- ``nbgrader generate_assignment`` for every lab under
  ``autograder/source/`` and the student copies under ``notebooks/<chapter>/labs/``.
* :mod:`labkit.grading.drills` and :mod:`labkit.grading.mock_exam` -- the Chapter 6 mock exam's
  troubleshooting drills: broken pipeline stages with one planted bug each, drawn per student
  from the student id (the grader derives the same drills from the submission's folder name).

Only :mod:`labkit.grading.quiz` is imported here: student notebooks use it, and they should not
pay for importing nbgrader.
"""

from labkit.grading.quiz import record_answer

__all__ = ["record_answer"]
