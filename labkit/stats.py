"""Comparing variants measured over several seeds: is the gap larger than the seed noise?

A lesson that compares close variants (four losses, a loss before and after a short fine-tune)
from one seed states an ordering the experiment cannot establish. :func:`compare_with_noise`
averages each variant over its seeds and compares the gap between the two means with the seed
spread, the largest range (max - min over seeds) of the two variants compared. This is the
same noise measure as :func:`labkit.detect.grid.knob_effects` (range across seeds), here per
variant and without averaging it away, so a check built on it errs towards "within noise".

The gap counts as clear only when it is strictly larger than the spread and every compared
variant has at least two seeds; a gap equal to the spread, a tie or a single seed is "within
noise". A check then asserts the expected ordering only for a clear gap and otherwise prints
that the difference is within the seed noise (:meth:`NoiseVerdict.check`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Collection, Iterable, Mapping

from labkit.errors import DataError


@dataclass(frozen=True)
class NoiseVerdict:
    """The outcome of :func:`compare_with_noise`.

    ``best`` and ``runner_up`` are the variants compared (the better mean first, in the direction
    ``higher_is_better`` says); ``gap`` is the difference of their means (>= 0); ``spread`` is
    the larger of their seed ranges (``nan`` with one seed); ``seeds`` the fewest seeds either has;
    ``clear`` is ``seeds >= 2 and gap > spread``.
    """

    key: str
    means: dict[str, float]
    best: str
    runner_up: str
    gap: float
    spread: float
    seeds: int
    clear: bool

    @property
    def verdict(self) -> str:
        """``clear``, ``within noise`` or ``one seed`` (no spread to compare with)."""
        if self.seeds < 2:
            return "one seed"
        return "clear" if self.clear else "within noise"

    def summary(self) -> dict[str, Any]:
        """JSON-safe numbers for ``log_metrics``: best, runner_up, gap, spread (``None`` with one
        seed, as JSON has no NaN), seeds and verdict."""
        return {"best": self.best, "runner_up": self.runner_up, "gap": self.gap,
                "spread": None if math.isnan(self.spread) else self.spread, "seeds": self.seeds,
                "verdict": self.verdict}

    def message(self) -> str:
        """One sentence with the numbers: which variant leads, by how much, against what spread."""
        head = (f"{self.key}: {self.best!r} {self.means[self.best]:.4f} vs {self.runner_up!r} "
                f"{self.means[self.runner_up]:.4f} (mean over {self.seeds} seed{'s' if self.seeds != 1 else ''}), "
                f"gap {self.gap:.4f}")
        if self.seeds < 2:
            return f"{head}; one seed gives no spread, so the ordering is not established"
        relation = "exceeds" if self.clear else "does not exceed"
        tail = "" if self.clear else ": the difference is within the seed noise"
        return f"{head} {relation} the seed spread {self.spread:.4f}{tail}"

    def check(self, expected_best: str | Collection[str]) -> bool:
        """Assert the expected leader only when the gap is clear; otherwise print that it is noise.

        Returns ``True`` when the ordering was asserted (and held), ``False`` when it was within
        the noise or came from one seed. Raises ``AssertionError`` with the numbers when the gap
        is clear and the leader is not an expected one.
        """
        allowed = {expected_best} if isinstance(expected_best, str) else set(expected_best)
        if not self.clear:
            print(f"not asserted: {self.message()}")
            return False
        assert self.best in allowed, f"expected {sorted(allowed)} to lead; got {self.message()}"
        print(f"check passed: {self.message()}")
        return True


def _value(row: Mapping[str, Any], key: str, where: str) -> float:
    if key not in row:
        raise DataError(f"{where} has no {key!r} field")
    try:
        value = float(row[key])
    except (TypeError, ValueError):
        raise DataError(f"{where}: {key!r} is {row[key]!r}, not a number") from None
    if not math.isfinite(value):
        raise DataError(f"{where}: {key!r} is {value}, a comparison needs finite values")
    return value


def compare_with_noise(rows: Iterable[Mapping[str, Any]], key: str, *, by: str = "variant", seed: str = "seed",
                       higher_is_better: bool = True, between: tuple[str, str] | None = None) -> NoiseVerdict:
    """Compare variants by the mean of ``key`` over seeds, against the seed spread.

    Args:
        rows: one mapping per (variant, seed) run, e.g. ``DataFrame.to_dict("records")``, with
            fields ``by``, ``seed`` and ``key``.
        key: the measured number (e.g. ``"IoU star"``).
        by: the field naming the variant.
        seed: the field naming the seed; a (variant, seed) pair may appear once.
        higher_is_better: direction of ``key`` (``False`` for a loss or an error).
        between: compare these two variants; default: the best mean against the runner-up.

    Returns:
        A :class:`NoiseVerdict`. Gap = |mean(a) - mean(b)|; spread = max(range(a), range(b)),
        range = max - min over a variant's seeds; clear = (both have >= 2 seeds) and gap > spread.

    Raises:
        DataError: no rows, a missing or non-finite value, a repeated (variant, seed), fewer
            than two variants, or a ``between`` variant that has no rows.
    """
    values: dict[str, dict[Any, float]] = {}
    for index, row in enumerate(rows):
        where = f"row {index}"
        if by not in row or seed not in row:
            raise DataError(f"{where} needs the fields {by!r} and {seed!r}")
        variant, s = str(row[by]), row[seed]
        per_seed = values.setdefault(variant, {})
        if s in per_seed:
            raise DataError(f"{where}: variant {variant!r} has seed {s!r} twice")
        per_seed[s] = _value(row, key, f"{where} ({variant!r}, seed {s!r})")
    if len(values) < 2:
        raise DataError(f"need at least two variants to compare, got {sorted(values)}")
    means = {v: sum(x.values()) / len(x) for v, x in values.items()}
    if between is not None:
        missing = [v for v in between if v not in values]
        if missing:
            raise DataError(f"no rows for {missing}; variants are {sorted(values)}")
        pair = list(between)
    else:
        pair = sorted(means, key=lambda v: means[v], reverse=higher_is_better)[:2]
    sign = 1.0 if higher_is_better else -1.0
    best, runner_up = sorted(pair, key=lambda v: sign * means[v], reverse=True)
    if means[best] == means[runner_up]:  # a tie: keep the caller's (or the sorted) order
        best, runner_up = pair
    seeds = min(len(values[best]), len(values[runner_up]))
    spread = (max(max(values[v].values()) - min(values[v].values()) for v in (best, runner_up))
              if seeds >= 2 else float("nan"))
    gap = abs(means[best] - means[runner_up])
    return NoiseVerdict(key=key, means=means, best=best, runner_up=runner_up, gap=gap, spread=spread, seeds=seeds,
                        clear=seeds >= 2 and gap > spread)
