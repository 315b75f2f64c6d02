"""Timed troubleshooting drills of the Chapter 6 mock exam: six small broken pipelines, one planted
bug each, drawn per student.

Each drill is one pipeline stage whose code was "refactored" with a bug planted in it, a symptom
metric that reveals the bug, and the data to measure it on. Which bug (of the drill's variants)
and the data (image sizes, model contract, frame rate, boxes) are drawn from
:func:`student_seed` of the student's id, so two students rarely share a drill and the numbers
they record always differ; the grader derives the same seed from the submission's folder name.

=============  =======================================================  =================================
drill          stage (the learner writes ``fix_<drill>``)               symptom metric
=============  =======================================================  =================================
letterbox      ``(boxes_xyxy, scale, pad_x, pad_y) -> boxes`` in the    mean IoU of mapped boxes with the
               original frame                                           ground truth
export         ``(image_rgb_uint8, contract) -> 1x3xHxW float32``       max |logit| gap exported vs reference
tracker        ``(fps) -> {"max_dist_px", "min_iou"}``                  ID switches on the clip
mask_resize    ``(mask, height, width) -> bool mask``                   mean IoU with full-resolution masks
leakage        ``(groups, val_fraction, seed) -> (train_idx, val_idx)`` 1-NN validation accuracy
map            ``(pred_xywh, scores, gt_xywh) -> AP50``                 the AP50 the stage reports
=============  =======================================================  =================================

``exam(student_id)`` gives the six :class:`Drill` s. A drill shows its broken code
(:attr:`Drill.source`), runs it (:attr:`Drill.broken`) and measures any stage function on its data
(:meth:`Drill.metric`). The learner reproduces the symptom (``metric(broken)``), isolates the bug
(one id of :attr:`Drill.candidates`), fixes the stage and measures again.
"""

from __future__ import annotations

import hashlib

import numpy as np

DRILLS = ("letterbox", "export", "tracker", "mask_resize", "leakage", "map")

#: Bug variants of every drill (id -> what the refactor did); the decoys of a drill's candidate
#: list are the other variants plus :data:`DECOYS`.
VARIANTS: dict[str, dict[str, str]] = {
    "letterbox": {"pad_not_removed": "the letterbox padding is not subtracted before unscaling",
                  "pad_axes_swapped": "the horizontal and vertical paddings are swapped",
                  "pad_doubled": "the full padding is subtracted where only half was added on each side"},
    "export": {"channel_order": "the channels reach the model in the opposite order (RGB vs BGR)",
               "no_scaling": "pixel values are not divided by 255 before normalisation",
               "std_missing": "the mean is subtracted but the standard deviation is not divided"},
    "tracker": {"gate_fixed_30fps": "the distance gate assumes 30 frames per second",
                "iou_too_strict": "the IoU gate rejects fast objects (threshold too high)"},
    "mask_resize": {"corner_aligned": "nearest-neighbour sampling from pixel corners, not pixel centres",
                    "align_corners": "source and target corners aligned (scale (n-1)/(m-1))",
                    "bilinear_any": "bilinear interpolation thresholded at > 0 (masks grow)"},
    "leakage": {"frame_random": "frames are split at random, so neighbours of a validation frame are in training",
                "every_kth": "every k-th frame goes to validation",
                "val_in_train": "the validation sequences are also used for training"},
    "map": {"xywh_as_xyxy": "COCO [x, y, w, h] boxes are read as corners",
            "iou_075": "the IoU threshold is 0.75, not 0.5",
            "gt_not_converted": "predictions are converted to corners but the ground truth is not"},
}
DECOYS = {"class_mismatch": "class ids are off by one between the model and the evaluation",
          "stale_cache": "a stale cache holds the old outputs"}


def student_seed(student_id: str) -> int:
    """The exam seed of a student: a 63-bit integer from the SHA-256 of the stripped id."""
    student_id = str(student_id).strip()
    if not student_id:
        raise ValueError("the student id is empty: set STUDENT_ID to your course login")
    digest = hashlib.sha256(f"labkit-ch06-mock:{student_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big") >> 1


def planted_bug(drill: str, seed: int) -> str:
    """The bug id planted in ``drill`` for exam seed ``seed``."""
    names = sorted(VARIANTS[drill])
    rng = np.random.default_rng([seed, DRILLS.index(drill), 0])
    return names[int(rng.integers(len(names)))]


# --- shared pieces: box IoU, AP, the toy tracker and the 1-NN scorer (the stages' surroundings) ---

def xywh_to_xyxy(b: np.ndarray) -> np.ndarray:
    b = np.asarray(b, dtype=np.float64).reshape(-1, 4)
    return np.concatenate([b[:, :2], b[:, :2] + b[:, 2:]], axis=1)


def pair_iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """IoU of every pair of corner boxes: ``(len(a), len(b))``."""
    a, b = np.asarray(a, dtype=np.float64).reshape(-1, 4), np.asarray(b, dtype=np.float64).reshape(-1, 4)
    lo, hi = np.maximum(a[:, None, :2], b[None, :, :2]), np.minimum(a[:, None, 2:], b[None, :, 2:])
    inter = np.prod(np.clip(hi - lo, 0, None), axis=-1)
    area = lambda x: np.prod(np.clip(x[:, 2:] - x[:, :2], 0, None), axis=1)  # noqa: E731
    union = area(a)[:, None] + area(b)[None, :] - inter
    return np.divide(inter, union, out=np.zeros_like(inter), where=union > 0)


def average_precision(iou: np.ndarray, scores: np.ndarray, threshold: float) -> float:
    """All-point interpolated AP of one image and class: predictions matched greedily in score
    order (stable) to the unmatched ground truth of highest IoU >= ``threshold``."""
    n_pred, n_gt = iou.shape
    if n_gt == 0:
        return 0.0
    taken, hits = np.zeros(n_gt, bool), np.zeros(n_pred, bool)
    for p in np.argsort(-np.asarray(scores), kind="stable"):
        cand = np.where(~taken & (iou[p] >= threshold), iou[p], -1.0)
        if cand.max() >= 0:
            taken[int(cand.argmax())] = hits[p] = True
    order = np.argsort(-np.asarray(scores), kind="stable")
    tp = np.cumsum(hits[order])
    recall = np.concatenate([[0.0], tp / n_gt])
    precision = np.concatenate([[1.0], tp / np.arange(1, n_pred + 1)])
    precision = np.maximum.accumulate(precision[::-1])[::-1]
    return float(np.sum(np.diff(recall) * precision[1:]))


def track_clip(detections: list[np.ndarray], settings: dict[str, float]) -> list[np.ndarray]:
    """The drill's tracker: each frame's corner boxes matched greedily (closest centres first) to
    the previous frame's tracks within ``max_dist_px`` and with IoU >= ``min_iou``; unmatched boxes
    start new ids. Returns the track id of every box, frame by frame."""
    max_dist, min_iou = float(settings["max_dist_px"]), float(settings["min_iou"])
    prev_boxes, prev_ids, next_id, out = np.zeros((0, 4)), np.zeros(0, int), 1, []
    for boxes in detections:
        ids = np.zeros(len(boxes), int)
        centre = lambda b: (b[:, :2] + b[:, 2:]) / 2  # noqa: E731
        dist = np.linalg.norm(centre(boxes)[:, None] - centre(prev_boxes)[None], axis=-1)
        ok = (dist <= max_dist) & (pair_iou(boxes, prev_boxes) >= min_iou)
        used_new, used_old = set(), set()
        for flat in np.argsort(np.where(ok, dist, np.inf), axis=None, kind="stable")[:int(ok.sum())]:
            i, j = divmod(int(flat), len(prev_boxes))
            if i not in used_new and j not in used_old:
                ids[i] = prev_ids[j]
                used_new.add(i)
                used_old.add(j)
        for i in range(len(boxes)):
            if i not in used_new:
                ids[i], next_id = next_id, next_id + 1
        prev_boxes, prev_ids = boxes, ids
        out.append(ids)
    return out


def id_switches(truth_ids: list[np.ndarray], track_ids: list[np.ndarray]) -> int:
    """Times a ground-truth object's track id differs from the one it had in its previous frame."""
    last: dict[int, int] = {}
    switches = 0
    for gt, tr in zip(truth_ids, track_ids):
        for g, t in zip(gt.tolist(), tr.tolist()):
            switches += int(g in last and last[g] != t)
            last[g] = t
    return switches


def nn_accuracy(features: np.ndarray, labels: np.ndarray, train_idx, val_idx) -> float:
    """Validation accuracy of a 1-nearest-neighbour classifier fitted on ``train_idx``."""
    train_idx, val_idx = np.asarray(train_idx, int), np.asarray(val_idx, int)
    if not len(train_idx) or not len(val_idx):
        return float("nan")
    d = np.linalg.norm(features[val_idx][:, None] - features[train_idx][None], axis=-1)
    return float(np.mean(labels[train_idx][d.argmin(1)] == labels[val_idx]))


def export_logits(chw: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """The exported toy model: a linear layer on the per-channel means and mean squares."""
    x = np.asarray(chw, dtype=np.float64).reshape(3, -1)
    return weights @ np.concatenate([x.mean(1), (x ** 2).mean(1), [1.0]])
