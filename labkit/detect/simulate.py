"""A seeded stand-in for a detector's raw (pre-NMS) output, built from the ground truth.

Dense detectors (YOLO, RetinaNet, FCOS ...) emit many overlapping candidate boxes per object
plus scattered false alarms, and rely on score thresholding and Non-Maximum Suppression to turn
them into one box per object. :func:`noisy_detector` imitates that output, offline and
deterministically, so that post-processing can be taught and graded without a trained model:

* each non-crowd ground-truth object is found with probability ``recall``; a found object gets
  one well-placed candidate and ``Poisson(duplicates)`` further ones;
* candidate ``k`` (0 = best) is the ground-truth box with its centre moved by
  ``N(0, s_k * size)`` and its width and height scaled by ``exp(N(0, s_k))``, where
  ``s_k = jitter * (1 + k / 2)``; its score is ``top * score_decay**k * U(0.9, 1)`` with the
  object's top score ``top ~ U(0.4, 0.95)``, so worse-placed duplicates score lower;
* each candidate carries a wrong class with probability ``confusion`` (class confusion);
* ``Poisson(background)`` boxes per image land anywhere, with any class and low scores
  ``0.05 + 0.5 * Beta(1.5, 5)`` (background false positives).

Boxes are clipped to the image; candidates come out in a random order, as raw outputs do.
Every image draws from its own generator seeded by ``(seed, image_id)``, so the output for an
image does not depend on which other images are simulated.

The failure modes mirror the error types of D. Hoiem, Y. Chodpathumwan and Q. Dai, "Diagnosing
Error in Object Detectors", ECCV 2012 (localisation, confusion with other classes, background).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from labkit.data.annotations import Dataset, Detections, ImageRecord
from labkit.data.boxes import clip_xyxy, cxcywh_to_xyxy
from labkit.errors import DataError

#: Top score of a found object: ``U(TOP_SCORE)``.
TOP_SCORE = (0.4, 0.95)
#: Size of background boxes in pixels: log-uniform between these.
BACKGROUND_SIDE = (8.0, 80.0)


def _check(name: str, value: float, high: float = math.inf) -> float:
    value = float(value)
    if not 0.0 <= value <= high:
        raise DataError(f"'{name}' must be in [0, {high}], got {value}")
    return value


def _jittered(cxcywh: np.ndarray, sigma: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Centre moved by ``N(0, sigma * size)``, size scaled by ``exp(N(0, sigma))``."""
    size = cxcywh[:, 2:]
    centre = cxcywh[:, :2] + rng.normal(size=size.shape) * sigma[:, None] * size
    return np.concatenate([centre, size * np.exp(rng.normal(size=size.shape) * sigma[:, None])], axis=1)


def _object_candidates(gt: Detections, rng: np.random.Generator, p: dict[str, float]) -> tuple[np.ndarray, ...]:
    """Candidate boxes (cx, cy, w, h), scores and classes for the found ground-truth objects."""
    found = np.flatnonzero(rng.random(len(gt)) < p["recall"])
    counts = 1 + rng.poisson(p["duplicates"], size=found.size)
    owner = np.repeat(found, counts)
    rank = np.concatenate([np.arange(c) for c in counts]) if counts.size else np.zeros(0, dtype=int)
    top = rng.uniform(*TOP_SCORE, size=found.size)
    scores = np.repeat(top, counts) * p["score_decay"] ** rank * rng.uniform(0.9, 1.0, size=owner.size)
    xywh = gt.xywh[owner]
    cxcywh = np.concatenate([xywh[:, :2] + xywh[:, 2:] / 2, xywh[:, 2:]], axis=1)
    boxes = _jittered(cxcywh, p["jitter"] * (1 + rank / 2), rng)
    return boxes, scores, gt.class_id[owner]


def _background(record: ImageRecord, rng: np.random.Generator, n: int, class_ids: np.ndarray) -> tuple[np.ndarray, ...]:
    """``n`` boxes (cx, cy, w, h) anywhere in the image, random classes, low scores."""
    side = np.exp(rng.uniform(*np.log(BACKGROUND_SIDE), size=(n, 2)))
    centre = rng.uniform(size=(n, 2)) * [record.width, record.height]
    scores = 0.05 + 0.5 * rng.beta(1.5, 5.0, size=n)
    return np.concatenate([centre, side], axis=1), scores, rng.choice(class_ids, size=n)


def _simulate_image(record: ImageRecord, seed: int, class_ids: np.ndarray, p: dict[str, float]) -> Detections:
    if record.id < 0:
        raise DataError("image ids must be >= 0 to seed the simulation", record=record.id)
    rng = np.random.default_rng([seed, record.id])
    gt = record.detections
    crowd = gt.get("iscrowd")
    if crowd is not None:
        gt = gt[np.asarray(crowd, dtype=int) == 0]
    boxes, scores, classes = _object_candidates(gt, rng, p)
    wrong = rng.random(classes.size) < p["confusion"]
    if wrong.any() and class_ids.size > 1:
        shift = rng.integers(1, class_ids.size, size=int(wrong.sum()))
        position = np.searchsorted(class_ids, classes[wrong])
        classes = classes.copy()
        classes[wrong] = class_ids[(position + shift) % class_ids.size]
    bg_boxes, bg_scores, bg_classes = _background(record, rng, int(rng.poisson(p["background"])), class_ids)
    boxes = np.concatenate([boxes, bg_boxes]).reshape(-1, 4)
    scores, classes = np.concatenate([scores, bg_scores]), np.concatenate([classes, bg_classes])
    boxes[:, 0] = boxes[:, 0].clip(0, record.width)
    boxes[:, 1] = boxes[:, 1].clip(0, record.height)
    xyxy = clip_xyxy(cxcywh_to_xyxy(boxes), record.width, record.height)
    order = rng.permutation(len(scores))
    return Detections.from_xyxy(xyxy[order], classes[order].astype(np.int64), score=scores[order])


def noisy_detector(dataset: Dataset, seed: int = 0, *, recall: float = 0.9, duplicates: float = 4.0,
                   jitter: float = 0.05, score_decay: float = 0.9, confusion: float = 0.05,
                   background: float = 3.0, show_progress: bool = False) -> dict[int, Detections]:
    """Raw, pre-NMS "detections" for every image of ``dataset``, simulated from its ground truth.

    Args:
        dataset: images with ground-truth boxes (crowd regions, ``iscrowd == 1``, are skipped).
        seed: with the image id, seeds every random choice (same inputs -> same output).
        recall: probability that an object gets any candidate at all.
        duplicates: mean number of extra candidates per found object (Poisson).
        jitter: noise of the best candidate's centre and size, as a fraction of the box size.
        score_decay: score ratio between successive duplicates of one object.
        confusion: probability that a candidate has a wrong class.
        background: mean number of background false positives per image (Poisson).
        show_progress: show a tqdm bar over images.

    Returns:
        image id -> :class:`Detections` with scores (boxes clipped to the image, random order),
        one entry per image, possibly empty. See the module docstring for the noise model.

    Raises:
        DataError: for a parameter out of range or a dataset without categories.
    """
    from tqdm.auto import tqdm

    params: dict[str, Any] = {
        "recall": _check("recall", recall, 1.0), "duplicates": _check("duplicates", duplicates),
        "jitter": _check("jitter", jitter), "score_decay": _check("score_decay", score_decay, 1.0),
        "confusion": _check("confusion", confusion, 1.0), "background": _check("background", background),
    }
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise DataError(f"seed must be an integer >= 0, got {seed!r}")
    class_ids = np.array(sorted(dataset.category_names), dtype=np.int64)
    if class_ids.size == 0:
        raise DataError("the dataset has no categories to draw classes from", source=dataset.source)
    records = tqdm(dataset.images, desc="simulating detections", disable=not show_progress)
    return {record.id: _simulate_image(record, int(seed), class_ids, params) for record in records}
