"""Quizzes checked against salted hashes: the student copy holds hashes and the salt, never answers.

An answer is first put in a canonical form, then hashed with SHA-256 (FIPS 180-4) together with
the quiz's salt and the question id, so the same answer to two questions, or in two quizzes, gives
different hashes:

* text: lower-cased, surrounding whitespace stripped and inner runs of whitespace collapsed
  (``" B "`` and ``"b"`` are the same answer);
* a number (``bool`` excluded): rounded to ``decimals`` places (3 by default), so two numeric
  answers agree when they round to the same value at that precision -- the stated tolerance;
* a ``bool``: ``true`` / ``false``;
* a set, list or tuple of texts (a multi-select question): each text normalised, order ignored.

What hashing does and does not protect: the answers cannot be read off the notebook, but a
multiple-choice question has a handful of candidates and the salt is public, so a student who
tries every option offline finds the right one. That is by design -- the quiz is formative and the
check cells give instant feedback; graded weight belongs in hidden tests.
"""

from __future__ import annotations

import hashlib
import hmac
import math
import numbers
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

from labkit.errors import DataError

DEFAULT_DECIMALS = 3
_SEPARATOR = "\x1f"  # ASCII unit separator: cannot occur in a YAML key or a typed answer by accident


def _text(value: str) -> str:
    return " ".join(value.lower().split())


def canonical_answer(answer: Any, *, decimals: int = DEFAULT_DECIMALS) -> str:
    """The canonical form that is hashed (see the module docstring); ``TypeError`` for other types."""
    if isinstance(answer, bool):
        return f"bool:{str(answer).lower()}"
    if isinstance(answer, numbers.Real):
        value = float(answer)
        if not math.isfinite(value):
            raise ValueError(f"a numeric answer must be finite, got {value}")
        return f"num:{round(value, decimals) + 0.0:.{decimals}f}"  # + 0.0 turns -0.0 into 0.0
    if isinstance(answer, str):
        return f"text:{_text(answer)}"
    if isinstance(answer, (set, frozenset, list, tuple)) and all(isinstance(a, str) for a in answer):
        return "set:" + "|".join(sorted({_text(a) for a in answer}))
    raise TypeError(f"an answer must be text, a number, a bool or a set of texts, got {type(answer).__name__}")


def hash_answer(question_id: str, answer: Any, salt: str, *, decimals: int = DEFAULT_DECIMALS) -> str:
    """Hex SHA-256 of ``salt``, ``question_id`` and the canonical form of ``answer``."""
    payload = _SEPARATOR.join([salt, question_id, canonical_answer(answer, decimals=decimals)])
    return hashlib.sha256(payload.encode("utf-8")).hexdigest()


def check(question_id: str, answer: Any, expected_hash: str, salt: str, *, decimals: int = DEFAULT_DECIMALS) -> bool:
    """Whether ``answer`` hashes to ``expected_hash``. ``None`` (not answered) is simply wrong."""
    if answer is None:
        return False
    return hmac.compare_digest(hash_answer(question_id, answer, salt, decimals=decimals), expected_hash.lower())


@dataclass(frozen=True)
class Quiz:
    """The quiz object a notebook builds in a locked cell; its check cells call :meth:`assert_correct`."""

    salt: str
    hashes: Mapping[str, str]
    decimals: int = DEFAULT_DECIMALS

    def assert_correct(self, question_id: str, answer: Any) -> None:
        """Print ``correct`` or raise ``AssertionError`` saying why not (the message the feedback shows)."""
        if question_id not in self.hashes:
            raise KeyError(f"this quiz has no question {question_id!r}; it has {sorted(self.hashes)}")
        if answer is None:
            raise AssertionError(f"{question_id}: no answer given")
        try:
            ok = check(question_id, answer, self.hashes[question_id], self.salt, decimals=self.decimals)
        except (TypeError, ValueError) as exc:
            raise AssertionError(f"{question_id}: {exc}") from None
        if not ok:
            raise AssertionError(f"{question_id}: {answer!r} is not the expected answer")
        print(f"{question_id}: correct")


@dataclass(frozen=True)
class QuizKey:
    """An instructor answer key: ``salt``, ``answers`` (question id -> answer) and ``decimals``."""

    salt: str
    answers: Mapping[str, Any] = field(default_factory=dict)
    decimals: int = DEFAULT_DECIMALS

    def hashes(self) -> dict[str, str]:
        return {q: hash_answer(q, a, self.salt, decimals=self.decimals) for q, a in self.answers.items()}

    def quiz(self) -> Quiz:
        return Quiz(self.salt, self.hashes(), self.decimals)


def load_key(path: str | Path) -> QuizKey:
    """Read an answer key (YAML: ``salt``, ``answers`` mapping, optional ``decimals``)."""
    import yaml

    path = Path(path)
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise DataError(f"cannot read the answer key: {exc}", source=str(path)) from None
    if not isinstance(raw, dict):
        raise DataError("an answer key is a mapping with 'salt' and 'answers'", source=str(path))
    salt, answers, decimals = raw.get("salt"), raw.get("answers"), raw.get("decimals", DEFAULT_DECIMALS)
    if not isinstance(salt, str) or not salt.strip():
        raise DataError("'salt' must be a non-empty string", source=str(path), record="salt")
    if not isinstance(answers, dict) or not answers:
        raise DataError("'answers' must map question ids to answers", source=str(path), record="answers")
    if not isinstance(decimals, int) or isinstance(decimals, bool) or not 0 <= decimals <= 12:
        raise DataError(f"'decimals' must be an integer in [0, 12], got {decimals!r}", source=str(path),
                        record="decimals")
    for question, answer in answers.items():
        try:
            canonical_answer(answer, decimals=decimals)
        except (TypeError, ValueError) as exc:
            raise DataError(str(exc), source=str(path), record=f"answers.{question}") from None
    return QuizKey(salt, {str(q): a for q, a in answers.items()}, decimals)


def quiz_cell_source(key: QuizKey) -> str:
    """Python source of the locked notebook cell that builds the :class:`Quiz` (hashes only)."""
    lines = ["from labkit.grading.quiz import Quiz", "", "quiz = Quiz(", f"    salt={key.salt!r},", "    hashes={"]
    lines += [f"        {q!r}: {h!r}," for q, h in key.hashes().items()]
    lines.append("    },")
    if key.decimals != DEFAULT_DECIMALS:
        lines.append(f"    decimals={key.decimals},")
    lines.append(")")
    return "\n".join(lines)
