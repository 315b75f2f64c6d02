"""A small, seeded stability grid: which training knob moves AP, and by more than the seed does?

A one-factor-at-a-time grid varies one knob (augmentation strength, batch size, learning-rate
schedule ...) away from a reference recipe while the others stay put, and repeats every point
with several seeds. :func:`knob_effects` then compares, per knob, how far the level means lie
apart (the knob's effect) with how far runs that differ only in their seed lie apart (the
noise); :func:`grid_conclusion` writes the result as sentences, so a notebook's conclusion is
computed from its own run.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Mapping

import numpy as np
import pandas as pd
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from labkit.errors import DataError

#: Ultralytics' default augmentation hyper-parameters (``ultralytics/cfg/default.yaml``): the
#: values :func:`augmentation_overrides` scales.
AUGMENT_DEFAULTS: dict[str, float] = {
    "hsv_h": 0.015, "hsv_s": 0.7, "hsv_v": 0.4, "translate": 0.1, "scale": 0.5, "fliplr": 0.5, "mosaic": 1.0,
}

REFERENCE = "reference"


def augmentation_overrides(strength: float) -> dict[str, float]:
    """Ultralytics augmentation arguments at ``strength`` times their defaults (0: none, 1: the
    defaults); mosaic and flip are probabilities, so they scale the same way."""
    if not 0.0 <= strength <= 1.5:
        raise DataError(f"augmentation strength must lie in [0, 1.5], got {strength}")
    return {k: round(min(v * strength, 1.0) if k in ("mosaic", "fliplr") else v * strength, 6)
            for k, v in AUGMENT_DEFAULTS.items()}


@dataclass(frozen=True)
class GridPoint:
    """One recipe of the grid: ``knob`` and ``level`` name it (``knob == "reference"`` for the
    reference); ``changes`` are the keyword arguments of the recipe (e.g. of
    :func:`labkit.detect.recipes.fine_tune_config`) that differ from the reference's."""

    knob: str
    level: str
    changes: dict[str, Any] = field(default_factory=dict)


def one_factor_grid(knobs: Mapping[str, Mapping[str, Mapping[str, Any]]]) -> list[GridPoint]:
    """The reference point followed by every knob's levels, e.g.::

        one_factor_grid({"batch": {"4": {"batch": 4}}, "lr": {"1e-2": {"lr0": 0.01}}})
    """
    points = [GridPoint(REFERENCE, REFERENCE)]
    for knob, levels in knobs.items():
        if knob == REFERENCE:
            raise DataError(f"'{REFERENCE}' is reserved for the reference point")
        points += [GridPoint(knob, str(level), dict(changes)) for level, changes in levels.items()]
    return points


def knob_effects(results: pd.DataFrame, metric: str, *, reference_level: str = REFERENCE) -> pd.DataFrame:
    """Per knob: the mean of ``metric`` at each level (over seeds), the effect (best level mean
    minus worst, reference included), the best and worst levels, and the seed noise.

    ``results`` has columns ``knob``, ``level``, ``seed`` and ``metric``; the reference rows have
    ``knob == "reference"``. Seed noise is the mean, over every grid point, of the range of
    ``metric`` across its seeds. ``effect_over_noise`` is their ratio (``inf`` for an effect without noise).
    Rows are sorted by effect, largest first.
    """
    missing = {"knob", "level", "seed", metric} - set(results)
    if missing:
        raise DataError(f"results lack the columns {sorted(missing)}")
    ref = results[results["knob"] == REFERENCE]
    if ref.empty:
        raise DataError("results have no reference rows")
    spread = results.groupby(["knob", "level"])[metric].agg(lambda s: float(s.max() - s.min()))
    noise = float(spread.mean())
    rows = []
    for knob, group in results[results["knob"] != REFERENCE].groupby("knob", sort=False):
        means = group.groupby("level", sort=False)[metric].mean()
        means.loc[reference_level] = float(ref[metric].mean())
        effect = float(means.max() - means.min())
        rows.append({"knob": knob, "effect": effect, "best_level": str(means.idxmax()),
                     "worst_level": str(means.idxmin()), "best_mean": float(means.max()),
                     "worst_mean": float(means.min()), "seed_noise": noise,
                     "effect_over_noise": effect / noise if noise > 0 else (float("inf") if effect > 0 else 0.0)})
    if not rows:
        raise DataError("results vary no knob")
    return pd.DataFrame(rows).sort_values("effect", ascending=False).reset_index(drop=True)


def grid_conclusion(effects: pd.DataFrame, metric: str, *, factor: float = 2.0) -> str:
    """A written conclusion from a :func:`knob_effects` table: which knob moved ``metric`` most,
    by how much against the seed noise, and which effects stay within ``factor`` times the noise
    (not distinguishable from luck at this many seeds)."""
    top = effects.iloc[0]
    noise = float(top["seed_noise"])
    if float(top["effect"]) == 0.0 and noise == 0.0:
        return (f"No knob moved {metric}, and neither did the seed: every run scored {top['best_mean']:.3f}, "
                "so this grid cannot rank the knobs.")
    lines = [f"The knob that moved {metric} most is '{top['knob']}': {top['effect']:.3f} between its best level "
             f"('{top['best_level']}', {top['best_mean']:.3f}) and its worst ('{top['worst_level']}', "
             f"{top['worst_mean']:.3f}).",
             f"Runs that differ only in their seed lie {noise:.3f} apart on average."]
    clear = effects[effects["effect"] > factor * noise]
    unclear = effects[effects["effect"] <= factor * noise]
    if len(clear):
        lines.append("Effects larger than " + f"{factor:g}x the seed noise: "
                     + ", ".join(f"{k} ({e:.3f})" for k, e in zip(clear["knob"], clear["effect"])) + ".")
    if len(unclear):
        lines.append("Within " + f"{factor:g}x the seed noise, so not distinguishable from luck with these seeds: "
                     + ", ".join(f"{k} ({e:.3f})" for k, e in zip(unclear["knob"], unclear["effect"])) + ".")
    return " ".join(lines)


def plot_grid(results: pd.DataFrame, metric: str, path: Any = None) -> Figure:
    """One panel per knob: every run's ``metric`` per level (dots, one per seed) and the level
    means (bars), the reference level drawn in every panel for comparison."""
    knobs = [k for k in dict.fromkeys(results["knob"]) if k != REFERENCE]
    if not knobs:
        raise DataError("results vary no knob")
    ref = results[results["knob"] == REFERENCE]
    fig = Figure(figsize=(3.6 * len(knobs), 3.2), dpi=100)
    FigureCanvasAgg(fig)
    axes = np.atleast_1d(fig.subplots(1, len(knobs), sharey=True))
    for ax, knob in zip(axes, knobs):
        group = pd.concat([ref.assign(level=REFERENCE), results[results["knob"] == knob]])
        levels = list(dict.fromkeys(group["level"]))
        means = group.groupby("level")[metric].mean().reindex(levels)
        ax.bar(range(len(levels)), means.to_numpy(), color="#9ecae1", label="mean over seeds")
        for x, level in enumerate(levels):
            values = group.loc[group["level"] == level, metric].to_numpy(dtype=np.float64)
            ax.plot(np.full(len(values), x), values, "o", color="#08519c", ms=4)
        ax.set_xticks(range(len(levels)), levels, rotation=20, fontsize=8)
        ax.set_title(knob)
        ax.grid(axis="y", alpha=0.3)
    axes[0].set_ylabel(metric)
    fig.tight_layout()
    if path is not None:
        fig.savefig(path)
    return fig
