"""Mitigations of the three kinds of shift, none of which retrains the model.

*Covariate shift* (``p(x)`` changes, ``p(y | x)`` does not) -- brightness restoration and AdaBN;
*label shift* (``p(y)`` changes, ``p(x | y)`` does not) -- prior-ratio weights and per-class
threshold recalibration; *concept drift* (``p(y | x)`` changes: a new label policy) -- nothing
at test time can fix it, and :func:`irreducible_error` measures the floor it sets.

**Brightness restoration** (gamma correction, e.g. R. C. Gonzalez and R. E. Woods, "Digital Image
Processing", 4th ed., section 3.2, power-law transformations): with grey levels scaled to [0, 1],
``out = in ** gamma`` with ``gamma = ln(target) / ln(mean)`` maps the image's mean grey level
``mean`` (ITU-R BT.601 luma, OpenCV's ``RGB2GRAY``) to ``target``, exactly for a uniform image and
approximately otherwise. It undoes the power-law part of a low-light capture (see the
``low_light`` corruption in :mod:`labkit.robust.corruptions`); the noise it amplifies stays.

**AdaBN** (Y. Li, N. Wang, J. Shi, J. Liu and X. Hou, "Revisiting Batch Normalization for
Practical Domain Adaptation", ICLR workshop 2017): keep every weight, replace each BatchNorm
layer's running mean and variance by statistics of unlabelled *target* frames. With
``momentum=None`` PyTorch keeps the cumulative average over the batches seen, so the new running
mean is the mean of the batch means and the running variance the mean of the (unbiased) batch
variances.

**Label shift** (M. Saerens, P. Latinne and C. Decaestecker, "Adjusting the Outputs of a
Classifier to New a Priori Probabilities", Neural Computation 2002): with class-prior ratio
``w_y = pi_target(y) / pi_source(y)``, the target posterior of a one-vs-rest score ``p`` is
``w p / (w p + 1 - p)``, so the score threshold ``t`` that the target posterior must reach
corresponds to the source score ``t / (t + w (1 - t))`` (:func:`recalibrate_thresholds`). The
target priors need no labels: black-box shift estimation (Z. Lipton, Y.-X. Wang and A. Smola,
"Detecting and Correcting for Label Shift with Black Box Predictors", ICML 2018) solves
``C w = mu`` with ``C[i, j]`` the source joint frequency of (predicted i, true j) and ``mu[i]``
the frequency of prediction ``i`` on the target (:func:`bbse_weights`).

**Concept drift**: when the same inputs are labelled under an old and a new policy, a model
that predicts the old label perfectly can do no better on the new one than predicting, for each
old class, its most frequent new label: ``1 - sum_c max_k N[c, k] / N`` is the error floor
(:func:`irreducible_error`) that no threshold, recalibration or normalisation removes; only new
labels (and retraining) do.
"""

from __future__ import annotations

from typing import Iterable, Mapping

import cv2
import numpy as np

from labkit.errors import DataError


def restore_brightness(image: np.ndarray, target_mean: float) -> np.ndarray:
    """The RGB uint8 ``image`` gamma-corrected so that its mean grey level moves to ``target_mean``
    (0-255). The image's mean is clipped to [1, 254] first (a black or white frame has no finite
    gamma), so such frames come back nearly unchanged. Anything but an ``H x W x 3`` uint8 array, or a
    target outside (0, 255), is a :class:`DataError`."""
    if not isinstance(image, np.ndarray) or image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
        raise DataError(f"expected an H x W x 3 uint8 RGB image, got {getattr(image, 'dtype', type(image).__name__)} "
                        f"of shape {getattr(image, 'shape', None)}")
    if not 0.0 < float(target_mean) < 255.0:
        raise DataError(f"target_mean must lie strictly between 0 and 255, got {target_mean}")
    mean = float(np.clip(cv2.cvtColor(image, cv2.COLOR_RGB2GRAY).mean(), 1.0, 254.0)) / 255.0
    gamma = np.log(float(target_mean) / 255.0) / np.log(mean)
    table = np.rint(255.0 * (np.arange(256) / 255.0) ** gamma).clip(0, 255).astype(np.uint8)
    return cv2.LUT(image, table)


def adapt_batchnorm(model, batches: Iterable) -> int:
    """AdaBN in place: reset the running statistics of every BatchNorm layer of ``model`` (a torch
    module) and re-estimate them from ``batches`` (float tensors as the model takes them,
    unlabelled target frames) as a cumulative average; every other layer stays in eval mode and the
    model is left in eval mode. Returns the number of BatchNorm layers adapted; a model without
    any, or no batch, is a :class:`DataError` (a fused network has no BatchNorm left: adapt before
    fusing)."""
    import torch

    norms = [m for m in model.modules() if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)]
    if not norms:
        raise DataError("the model has no BatchNorm layer to adapt (was it fused?)")
    saved = [(m, m.momentum) for m in norms]
    model.eval()
    for m in norms:
        m.reset_running_stats()
        m.momentum = None  # cumulative average over the batches
        m.train()
    seen = 0
    try:
        with torch.no_grad():
            for x in batches:
                model(x)
                seen += 1
    finally:
        for m, momentum in saved:
            m.momentum = momentum
        model.eval()
    if not seen:
        raise DataError("AdaBN needs at least one batch of target frames")
    return len(norms)


def adabn_checkpoint(weights, frames: Iterable[np.ndarray], out, *, batch: int = 8) -> "Path":
    """AdaBN for an Ultralytics detection checkpoint: load it unfused, re-estimate its BatchNorm
    statistics (:func:`adapt_batchnorm`) on unlabelled target ``frames`` (RGB uint8, letterboxed
    to the checkpoint's input size as :class:`labkit.detect.predict.Detector` does) in batches of
    ``batch``, and save the adapted checkpoint to ``out`` (its ``categories.json`` beside it), ready
    for :func:`labkit.detect.predict.load_detector`."""
    import shutil
    from pathlib import Path

    import torch

    from labkit.data.boxes import Letterbox
    from labkit.detect.predict import PAD_VALUE

    weights, out = Path(weights), Path(out)
    if not weights.is_file():
        raise DataError("no such checkpoint file", source=str(weights))
    ckpt = torch.load(weights, map_location="cpu", weights_only=False)
    model = ckpt.get("ema") or ckpt.get("model")
    if not isinstance(model, torch.nn.Module):
        raise DataError("not an Ultralytics checkpoint (no model)", source=str(weights))
    model = model.float()
    size = int((ckpt.get("train_args") or {}).get("imgsz", 640))
    canvases = [Letterbox.fit(f.shape[:2], size).image(f, pad_value=PAD_VALUE) for f in frames]
    tensors = [torch.from_numpy(np.stack(canvases[k:k + batch])).permute(0, 3, 1, 2).float() / 255.0
               for k in range(0, len(canvases), batch)]
    adapt_batchnorm(model, tensors)
    out.parent.mkdir(parents=True, exist_ok=True)
    torch.save({**ckpt, "model": model, "ema": None}, out)
    if (weights.parent / "categories.json").is_file():
        shutil.copyfile(weights.parent / "categories.json", out.parent / "categories.json")
    return out


def prior_weights(source_counts: Mapping[int, float], target_counts: Mapping[int, float]) -> dict[int, float]:
    """``w_y = pi_target(y) / pi_source(y)`` per class from (object) counts; every class needs a
    positive source count, else :class:`DataError`."""
    classes = sorted(set(source_counts) | set(target_counts))
    s_total, t_total = float(sum(source_counts.values())), float(sum(target_counts.values()))
    if s_total <= 0 or t_total <= 0:
        raise DataError("prior weights need positive source and target counts")
    weights = {}
    for c in classes:
        if source_counts.get(c, 0) <= 0:
            raise DataError(f"class {c} never occurs in the source: its prior ratio is undefined")
        weights[c] = (target_counts.get(c, 0) / t_total) / (source_counts[c] / s_total)
    return weights


def recalibrate_thresholds(threshold: float, weights: Mapping[int, float]) -> dict[int, float]:
    """Per class, the source-score threshold ``t / (t + w (1 - t))`` at which the label-shift
    corrected posterior reaches ``threshold`` (Saerens et al.): a class that became more frequent
    (``w > 1``) gets a lower threshold, a rarer one a higher threshold."""
    t = float(threshold)
    if not 0.0 < t < 1.0:
        raise DataError(f"the threshold must lie strictly between 0 and 1, got {threshold}")
    out = {}
    for c, w in weights.items():
        if not w >= 0:
            raise DataError(f"class {c}: prior weight must be >= 0, got {w}")
        out[c] = t / (t + float(w) * (1.0 - t))
    return out


def bbse_weights(joint: np.ndarray, target_predicted: np.ndarray) -> np.ndarray:
    """Black-box shift estimation: solve ``joint @ w = target_predicted`` (``joint[i, j]`` = source
    frequency of predicting ``i`` when the truth is ``j``; ``target_predicted[i]`` = frequency of
    predicting ``i`` on the target), least squares, negative weights clipped to 0."""
    c = np.asarray(joint, dtype=np.float64)
    mu = np.asarray(target_predicted, dtype=np.float64)
    if c.ndim != 2 or c.shape[0] != c.shape[1] or mu.shape != (c.shape[0],):
        raise DataError(f"need a square joint matrix and a matching vector, got {c.shape} and {mu.shape}")
    if np.linalg.matrix_rank(c) < c.shape[0]:
        raise DataError("the source confusion matrix is singular: the classes cannot be told apart")
    return np.clip(np.linalg.lstsq(c, mu, rcond=None)[0], 0.0, None)


def irreducible_error(old_labels: Iterable, new_labels: Iterable) -> dict:
    """The confusion between an old and a new label policy on the same objects and the error
    floor it sets (see the module docstring): ``{"classes_old", "classes_new", "confusion"
    (rows old, columns new), "floor"}``."""
    old, new = list(old_labels), list(new_labels)
    if len(old) != len(new) or not old:
        raise DataError(f"need the same, non-zero number of old and new labels, got {len(old)} and {len(new)}")
    rows, cols = sorted(set(old), key=str), sorted(set(new), key=str)
    confusion = np.zeros((len(rows), len(cols)), dtype=np.int64)
    for a, b in zip(old, new):
        confusion[rows.index(a), cols.index(b)] += 1
    return {"classes_old": rows, "classes_new": cols, "confusion": confusion,
            "floor": 1.0 - float(confusion.max(axis=1).sum()) / len(old)}
