"""The nbgrader course folder (``autograder/``): its configuration, labs and where their copies go.

Layout (nbgrader's ``CourseDirectory`` conventions): ``nbgrader_config.py`` and
``source/<lab_id>/*.ipynb`` (instructor notebooks with solutions and visible checks) plus any
support files of the lab; ``graders/<lab_id>.py`` (the lab's graded items, hidden inputs and
references: :mod:`labkit.grading.labspec`) and ``keys/<lab_id>.yaml`` (quiz answers) stay with the
instructor -- they are never released and never visible inside the grading sandbox. A lab id starts with its chapter, ``chNN_``; its student copies live in the
chapter folder ``notebooks/NN_<name>/labs/``.
"""

from __future__ import annotations

import fnmatch
import re
from dataclasses import dataclass
from pathlib import Path

from labkit.artifacts import REPO_ROOT
from labkit.errors import DataError

#: The course folder of this repository.
DEFAULT_COURSE_ROOT = REPO_ROOT / "autograder"
#: The chapter folders, each with its ``labs/``.
DEFAULT_NOTEBOOKS_ROOT = REPO_ROOT / "notebooks"
_LAB_ID = re.compile(r"ch(\d\d)_[a-z0-9_]+")  # fullmatch: "$" would let a final newline in


@dataclass(frozen=True)
class CourseDir:
    """An nbgrader course folder."""

    root: Path = DEFAULT_COURSE_ROOT

    @property
    def source(self) -> Path:
        return self.root / "source"

    @property
    def config_file(self) -> Path:
        return self.root / "nbgrader_config.py"

    def spec_file(self, lab_id: str) -> Path:
        """The lab's grading spec, ``graders/<lab_id>.py``."""
        return self.root / "graders" / f"{lab_id}.py"

    def key_file(self, lab_id: str) -> Path:
        """The lab's quiz answer key, ``keys/<lab_id>.yaml``."""
        return self.root / "keys" / f"{lab_id}.yaml"

    def load_config(self):  # -> traitlets.config.Config (imported lazily: traitlets comes with nbgrader)
        """The course's nbgrader configuration (empty when it has no ``nbgrader_config.py``)."""
        from traitlets.config import Config
        from traitlets.config.loader import PyFileConfigLoader

        if not self.config_file.is_file():
            return Config()
        return PyFileConfigLoader(self.config_file.name, path=str(self.root)).load_config()

    def labs(self) -> list[str]:
        """Lab ids: the folders under ``source/`` that hold at least one notebook."""
        if not self.source.is_dir():
            return []
        return sorted(p.name for p in self.source.iterdir() if p.is_dir() and any(p.glob("*.ipynb")))

    def lab_dir(self, lab_id: str) -> Path:
        folder = self.source / lab_id
        if lab_id not in self.labs():
            raise DataError(f"no lab {lab_id!r} (labs: {', '.join(self.labs()) or 'none'})", source=str(self.source))
        return folder

    def source_notebooks(self, lab_id: str) -> list[Path]:
        return sorted(self.lab_dir(lab_id).glob("*.ipynb"))

    def support_files(self, lab_id: str) -> list[Path]:
        """The lab's other files (data, helpers), released with it; nbgrader's ignore list applies."""
        from nbgrader.coursedir import CourseDirectory

        ignore = CourseDirectory(config=self.load_config()).ignore
        folder = self.lab_dir(lab_id)
        out = []
        for path in sorted(folder.rglob("*")):
            parts = path.relative_to(folder).parts
            if path.is_file() and path.suffix != ".ipynb" and not any(
                    fnmatch.fnmatch(part, pattern) for part in parts for pattern in ignore):
                out.append(path)
        return out


def chapter_labs_dir(lab_id: str, notebooks_root: Path = DEFAULT_NOTEBOOKS_ROOT) -> Path:
    """``notebooks/NN_<name>/labs`` for a lab id ``chNN_...`` (the chapter folder must exist)."""
    match = _LAB_ID.fullmatch(lab_id)
    if not match:
        raise DataError("a lab id is chNN_<name> (lower case, digits, underscores)", source=lab_id)
    chapters = sorted(notebooks_root.glob(f"{match.group(1)}_*/"))
    if len(chapters) != 1:
        raise DataError(f"expected one chapter folder {match.group(1)}_*, found {len(chapters)}",
                        source=str(notebooks_root), record=lab_id)
    return chapters[0] / "labs"
