"""compare_with_noise on hand-worked cases: every expected number below is worked out by hand."""

import math

import pandas as pd
import pytest

from labkit.errors import DataError
from labkit.stats import compare_with_noise


def rows(values: dict[str, list[float]]) -> list[dict]:
    return [{"variant": v, "seed": s, "iou": x} for v, xs in values.items() for s, x in enumerate(xs)]


def test_clear_gap_names_the_best_and_asserts_it(capsys):
    # a: 0.5, 0.75 -> mean 0.625, range 0.25
    # b: 0.0, 0.125 -> mean 0.0625, range 0.125; gap 0.5625 > spread 0.25
    v = compare_with_noise(rows({"a": [0.5, 0.75], "b": [0.0, 0.125]}), "iou")
    assert (v.best, v.runner_up, v.gap, v.spread, v.seeds, v.clear) == ("a", "b", 0.5625, 0.25, 2, True)
    assert v.verdict == "clear" and v.check("a") is True
    assert "check passed" in capsys.readouterr().out
    with pytest.raises(AssertionError, match=r"expected \['b'\] to lead; got iou: 'a' 0.6250 vs 'b' 0.0625"):
        v.check("b")


def test_gap_exactly_equal_to_spread_is_within_noise(capsys):
    # a: 1, 3 -> mean 2, range 2; b: 4, 4 -> mean 4, range 0; gap 2 == spread 2: not clear
    v = compare_with_noise(rows({"a": [1.0, 3.0], "b": [4.0, 4.0]}), "iou")
    assert (v.best, v.gap, v.spread, v.clear, v.verdict) == ("b", 2.0, 2.0, False, "within noise")
    assert v.check("a") is False  # a wrong expectation is not asserted inside the noise
    assert "not asserted" in capsys.readouterr().out and "within the seed noise" in v.message()
    # just past the spread it is clear: b at 4.5 -> gap 2.5 > 2
    assert compare_with_noise(rows({"a": [1.0, 3.0], "b": [4.5, 4.5]}), "iou").clear


def test_a_tie_is_within_noise_even_without_spread():
    v = compare_with_noise(rows({"a": [2.0, 2.0], "b": [2.0, 2.0]}), "iou")
    assert (v.gap, v.spread, v.clear) == (0.0, 0.0, False)
    assert {v.best, v.runner_up} == {"a", "b"}


def test_one_seed_gives_no_spread_and_no_verdict(capsys):
    v = compare_with_noise(rows({"a": [0.75], "b": [0.25]}), "iou")
    assert v.best == "a" and v.seeds == 1 and math.isnan(v.spread) and not v.clear
    assert v.verdict == "one seed" and v.check("b") is False
    assert "one seed gives no spread" in capsys.readouterr().out
    assert v.summary() == {"best": "a", "runner_up": "b", "gap": 0.5, "spread": None, "seeds": 1,
                           "verdict": "one seed"}


def test_uneven_seeds_count_the_fewer_and_best_vs_runner_up_of_three():
    # c: 0.5 (one seed); a: 0.6, 0.8 -> 0.7; b: 0.1, 0.3 -> 0.2; best a vs runner-up c
    v = compare_with_noise(rows({"a": [0.6, 0.8], "b": [0.1, 0.3], "c": [0.5]}), "iou")
    assert (v.best, v.runner_up, v.seeds) == ("a", "c", 1)


def test_lower_is_better_and_between():
    # losses per seed: first epoch 2.0, 2.5 (mean 2.25, range 0.5); last epoch 1.0, 1.25 (mean 1.125, range 0.25)
    table = pd.DataFrame([{"variant": "first", "seed": 0, "loss": 2.0}, {"variant": "first", "seed": 1, "loss": 2.5},
                          {"variant": "last", "seed": 0, "loss": 1.0}, {"variant": "last", "seed": 1, "loss": 1.25}])
    v = compare_with_noise(table.to_dict("records"), "loss", higher_is_better=False, between=("first", "last"))
    assert (v.best, v.runner_up, v.gap, v.spread, v.clear) == ("last", "first", 1.125, 0.5, True)


@pytest.mark.parametrize("bad, match", [
    ([], "at least two variants"),
    (rows({"a": [1.0]}), "at least two variants"),
    ([{"variant": "a", "seed": 0}], "has no 'iou' field"),
    ([{"variant": "a", "seed": 0, "iou": float("nan")}], r"row 0 \('a', seed 0\): 'iou' is nan"),
    ([{"variant": "a", "seed": 0, "iou": "high"}], "not a number"),
    ([{"variant": "a", "seed": 0, "iou": 1.0}, {"variant": "a", "seed": 0, "iou": 2.0}], "seed 0 twice"),
    ([{"seed": 0, "iou": 1.0}], "needs the fields"),
])
def test_bad_rows_are_named(bad, match):
    with pytest.raises(DataError, match=match):
        compare_with_noise(bad, "iou")


def test_between_needs_known_variants():
    with pytest.raises(DataError, match=r"no rows for \['z'\]"):
        compare_with_noise(rows({"a": [1.0], "b": [2.0]}), "iou", between=("a", "z"))
