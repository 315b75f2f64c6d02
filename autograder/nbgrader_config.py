"""nbgrader configuration of the course. Read by ``nbgrader`` run from this folder, by
``scripts/release.py`` (``make release``) and by ``labkit grade`` (the in-memory release view).

Layout: ``source/<lab_id>/`` holds the instructor notebooks (solutions between ``### BEGIN
SOLUTION`` / ``### END SOLUTION``, hidden tests between ``### BEGIN HIDDEN TESTS`` / ``### END
HIDDEN TESTS``); ``release/`` is nbgrader's output (not committed; the student copies that are
committed live in ``notebooks/NN_*/labs/``); ``keys/`` holds quiz answer keys, outside
``source/`` so that they are never released. No exchange: students get the labs with the course.
"""

c = get_config()  # noqa: F821 - injected by traitlets when it loads this file

c.CourseDirectory.course_id = "cv-lab-course"
c.CourseDirectory.source_directory = "source"
c.CourseDirectory.release_directory = "release"
c.ClearSolutions.code_stub = {"python": "# YOUR CODE HERE\nraise NotImplementedError()"}
c.ClearSolutions.text_stub = "YOUR ANSWER HERE"
