"""The six drills of the Chapter 6 mock exam, built for one student (:func:`exam`).

Every drill's stage is written out as source code (the "refactored" version with the student's
planted bug, :attr:`Drill.source`) and compiled here, so the learner reads the same code that
runs. Data and settings come from the student's seed (:func:`labkit.grading.drills.student_seed`);
see :mod:`labkit.grading.drills` for the table of drills.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np

from labkit.grading import drills as dr

#: Every stage with the line(s) a refactor changed left out (``{LINE}``), and the planted replacement
#: of each bug. The correct lines are not here: learners install labkit, so it holds no answer (the
#: grader, ``autograder/graders/ch06_mock_exam.py``, and the tests keep their own references).
_TEMPLATES: dict[str, tuple[str, dict[str, str]]] = {
    "letterbox": ('''def unletterbox(boxes_xyxy, scale, pad_x, pad_y):
    """Corner boxes in the model's letterboxed input -> corner boxes in the original frame."""
    b = np.asarray(boxes_xyxy, dtype=np.float64).reshape(-1, 4)
    {LINE}''',
        {"pad_not_removed": "return b / scale",
         "pad_axes_swapped": "return (b - np.array([pad_y, pad_x, pad_y, pad_x])) / scale",
         "pad_doubled": "return (b - 2 * np.array([pad_x, pad_y, pad_x, pad_y])) / scale"}),
    "export": ('''def preprocess(image_rgb, contract):
    """An RGB uint8 frame -> the 1x3xHxW float32 input the exported model was trained on."""
    {LINE}
    return np.ascontiguousarray(x.transpose(2, 0, 1)[None], dtype=np.float32)''',
        {"channel_order": '''x = image_rgb.astype(np.float32) / 255.0
    if contract["channel_order"] == "RGB":
        x = x[..., ::-1]
    x = (x - np.float32(contract["mean"])) / np.float32(contract["std"])''',
         "no_scaling": '''x = image_rgb.astype(np.float32)
    if contract["channel_order"] == "BGR":
        x = x[..., ::-1]
    x = (x - np.float32(contract["mean"])) / np.float32(contract["std"])''',
         "std_missing": '''x = image_rgb.astype(np.float32) / 255.0
    if contract["channel_order"] == "BGR":
        x = x[..., ::-1]
    x = x - np.float32(contract["mean"])'''}),
    "tracker": ('''def tracker_settings(fps):
    """Gates of the drill's tracker (labkit.grading.drills.track_clip) for a clip at fps frames a second."""
    {LINE}''',
        {"gate_fixed_30fps": 'return {"max_dist_px": 1.5 * MAX_SPEED_PX_S / 30.0, "min_iou": 0.0}',
         "iou_too_strict": 'return {"max_dist_px": 1.5 * MAX_SPEED_PX_S / fps, "min_iou": 0.5}'}),
    "mask_resize": ('''def resize_mask(mask, height, width):
    """A low-resolution boolean mask -> a boolean mask of height x width covering the same area."""
    m = np.asarray(mask, dtype=bool)
    {LINE}''',
        {"corner_aligned": '''ys = np.floor(np.arange(height) * m.shape[0] / height).astype(int)
    xs = np.floor(np.arange(width) * m.shape[1] / width).astype(int)
    return m[np.clip(ys, 0, m.shape[0] - 1)][:, np.clip(xs, 0, m.shape[1] - 1)]''',
         "align_corners": '''ys = np.round(np.arange(height) * (m.shape[0] - 1) / (height - 1)).astype(int)
    xs = np.round(np.arange(width) * (m.shape[1] - 1) / (width - 1)).astype(int)
    return m[ys][:, xs]''',
         "bilinear_any": '''import cv2
    return cv2.resize(m.astype(np.float32), (width, height), interpolation=cv2.INTER_LINEAR) > 0'''}),
    "leakage": ('''def split(groups, val_fraction, seed):
    """Train and validation frame indices of frames from the sequences ``groups`` (one id per frame)."""
    groups = np.asarray(groups)
    rng, idx = np.random.default_rng(seed), np.arange(len(groups))
    {LINE}''',
        {"frame_random": '''val = rng.random(len(groups)) < val_fraction
    return idx[~val], idx[val]''',
         "every_kth": '''val = idx % int(round(1 / val_fraction)) == 0
    return idx[~val], idx[val]''',
         "val_in_train": '''seqs = np.unique(groups)
    val_seqs = rng.choice(seqs, size=max(1, int(round(val_fraction * len(seqs)))), replace=False)
    return idx, idx[np.isin(groups, val_seqs)]'''}),
    "map": ('''def ap50(pred_xywh, scores, gt_xywh):
    """AP at IoU 0.5 (all-point interpolation, greedy matching in score order) of one image and class."""
    {LINE}''',
        {"xywh_as_xyxy": "return average_precision(pair_iou(pred_xywh, gt_xywh), scores, 0.5)",
         "iou_075": "return average_precision(pair_iou(xywh_to_xyxy(pred_xywh), xywh_to_xyxy(gt_xywh)), scores, 0.75)",
         "gt_not_converted": "return average_precision(pair_iou(xywh_to_xyxy(pred_xywh), gt_xywh), scores, 0.5)"}),
}
MAX_SPEED_PX_S = 150.0
SYMPTOMS = {
    "letterbox": "after a refactor of the post-processing, the mean IoU of the boxes with the ground truth collapsed",
    "export": "the exported model's logits no longer match the PyTorch model's on the same frames",
    "tracker": "ID switches explode on one clip while the other clips are fine",
    "mask_resize": "masks look shifted or swollen after resizing to the frame size; they no longer match the masks from before the refactor",
    "leakage": "validation accuracy is far above what the model reaches on new sequences",
    "map": "the evaluation reports an AP50 that disagrees with a hand count",
}


def stage_source(drill: str, bug: str) -> str:
    """The source of ``drill``'s stage with ``bug`` planted (one of ``drills.VARIANTS[drill]``)."""
    template, planted = _TEMPLATES[drill]
    if bug not in planted:
        raise ValueError(f"drill {drill!r} has no bug {bug!r}; its bugs: {sorted(planted)}")
    return template.replace("{LINE}", planted[bug])


def compile_stage(drill: str, bug: str) -> Callable:
    """The stage function of :func:`stage_source`, compiled with the drill helpers in scope."""
    namespace = {"np": np, "MAX_SPEED_PX_S": MAX_SPEED_PX_S, "pair_iou": dr.pair_iou,
                 "xywh_to_xyxy": dr.xywh_to_xyxy, "average_precision": dr.average_precision}
    code = stage_source(drill, bug)
    exec(compile(code, f"<drill {drill}>", "exec"), namespace)  # noqa: S102 - our own template
    return namespace[code.split("(")[0].removeprefix("def ")]


@dataclass
class Drill:
    """One broken pipeline stage of a student's exam (see the module docstring)."""

    name: str
    symptom: str
    source: str
    broken: Callable
    inputs: dict[str, Any]
    candidates: dict[str, str]
    _metric: Callable[[Callable, dict[str, Any]], float] = field(repr=False)

    def metric(self, stage: Callable) -> float:
        """The drill's symptom metric with ``stage`` in the pipeline (``self.broken`` reproduces)."""
        return float(self._metric(stage, self.inputs))


def _boxes(rng: np.random.Generator, n: int, w: float, h: float, lo: float = 20, hi: float = 90) -> np.ndarray:
    size = rng.uniform(lo, hi, (n, 2))
    xy = rng.uniform(0, 1, (n, 2)) * (np.array([w, h]) - size)
    return np.concatenate([xy, size], axis=1)


def _letterbox(rng: np.random.Generator) -> dict[str, Any]:
    w, h = [(640, 360), (480, 640), (800, 600), (1280, 720), (360, 480)][int(rng.integers(5))]
    s = int(rng.choice([256, 320, 416]))
    scale = min(s / w, s / h)
    gt = dr.xywh_to_xyxy(_boxes(rng, 12, w, h))
    pred = gt * scale + np.array([(s - w * scale) / 2, (s - h * scale) / 2] * 2) + rng.normal(0, 0.4, gt.shape)
    return {"boxes_xyxy": pred, "scale": scale, "pad_x": (s - w * scale) / 2, "pad_y": (s - h * scale) / 2, "gt_xyxy": gt}


def _letterbox_metric(stage: Callable, d: dict[str, Any]) -> float:
    mapped = np.asarray(stage(d["boxes_xyxy"], d["scale"], d["pad_x"], d["pad_y"]), dtype=np.float64).reshape(-1, 4)
    return float(np.mean(np.diag(dr.pair_iou(mapped, d["gt_xyxy"]))))


_CONTRACTS = [([0.485, 0.456, 0.406], [0.229, 0.224, 0.225]), ([0.5, 0.5, 0.5], [0.5, 0.5, 0.5]),
              ([0.45, 0.45, 0.45], [0.225, 0.225, 0.225])]


def _export(rng: np.random.Generator) -> dict[str, Any]:
    mean, std = _CONTRACTS[int(rng.integers(len(_CONTRACTS)))]
    contract = {"channel_order": str(rng.choice(["RGB", "BGR"])), "mean": mean, "std": std}
    images = [np.clip(rng.normal(rng.uniform(40, 215, 3), 30, (48, 64, 3)), 0, 255).astype(np.uint8) for _ in range(6)]
    weights = rng.normal(0, 1, (5, 7))
    logits = np.stack([weights @ _contract_moments(im, contract) for im in images])
    return {"images": images, "contract": contract, "weights": weights, "reference_logits": logits}


def _contract_moments(image: np.ndarray, contract: dict[str, Any]) -> np.ndarray:
    """The features :func:`~labkit.grading.drills.export_logits` reads (per-channel mean and mean
    square, then 1) of the model input the contract defines, from the raw pixels' moments: with
    ``u`` a channel in [0, 1] (in the contract's order), mean ``(E[u] - m) / s`` and mean square
    ``(E[u^2] - 2 m E[u] + m^2) / s^2``."""
    u = image.reshape(-1, 3).astype(np.float64) / 255.0
    if contract["channel_order"] == "BGR":
        u = u[:, ::-1]
    m, s = np.asarray(contract["mean"], dtype=np.float64), np.asarray(contract["std"], dtype=np.float64)
    e1, e2 = u.mean(0), (u ** 2).mean(0)
    return np.concatenate([(e1 - m) / s, (e2 - 2 * m * e1 + m * m) / (s * s), [1.0]])


def _export_metric(stage: Callable, d: dict[str, Any]) -> float:
    got = np.stack([dr.export_logits(np.asarray(stage(im, d["contract"]))[0], d["weights"]) for im in d["images"]])
    return float(np.abs(got - d["reference_logits"]).max())


def tracker_clip(rng: np.random.Generator, fps: float, frames: int = 40, objects: int = 6) -> dict[str, Any]:
    """Objects of 24-32 px moving straight at up to MAX_SPEED_PX_S, observed at ``fps``: per frame
    the corner boxes (1 px noise) and their ground-truth ids."""
    start = rng.uniform([60, 60], [580, 420], (objects, 2))
    velocity = rng.uniform(0.6, 1.0, (objects, 1)) * MAX_SPEED_PX_S / np.sqrt(2) * rng.choice([-1, 1], (objects, 2))
    size = rng.uniform(24, 32, (objects, 1))
    boxes, ids = [], []
    for f in range(frames):
        centre = start + velocity * f / fps
        b = np.concatenate([centre - size / 2, centre + size / 2], axis=1) + rng.normal(0, 1.0, (objects, 4))
        boxes.append(b)
        ids.append(np.arange(1, objects + 1))
    return {"fps": float(fps), "detections": boxes, "truth_ids": ids}


def _tracker(rng: np.random.Generator) -> dict[str, Any]:
    return tracker_clip(rng, float(rng.choice([5.0, 8.0, 10.0])))


def _tracker_metric(stage: Callable, d: dict[str, Any]) -> float:
    return float(dr.id_switches(d["truth_ids"], dr.track_clip(d["detections"], dict(stage(d["fps"])))))


def disc_masks(rng: np.random.Generator, n: int, height: int, width: int) -> list[np.ndarray]:
    """``n`` boolean masks of ``height x width``, each a disc, sometimes with a rectangle."""
    yy, xx = np.mgrid[:height, :width]
    out = []
    for _ in range(n):
        cy, cx, r = rng.uniform(0.3, 0.7) * height, rng.uniform(0.3, 0.7) * width, rng.uniform(0.1, 0.25) * height
        m = (yy + 0.5 - cy) ** 2 + (xx + 0.5 - cx) ** 2 <= r * r
        if rng.random() < 0.5:
            y0, x0 = int(rng.integers(0, height // 2)), int(rng.integers(0, width // 2))
            m[y0:y0 + height // 4, x0:x0 + width // 3] = True
        out.append(m)
    return out


def _mask_resize(rng: np.random.Generator) -> dict[str, Any]:
    """Low-resolution masks and the frame-size masks the stage produced before the refactor."""
    height, width = 240, 320
    low_h, low_w = [(72, 96), (84, 112), (108, 144), (66, 88)][int(rng.integers(4))]
    low = disc_masks(rng, 8, low_h, low_w)
    rows, cols = (_source_index(low_h, height), _source_index(low_w, width))
    return {"masks": low, "height": height, "width": width, "before_refactor": [m[np.ix_(rows, cols)] for m in low]}


def _source_index(size_in: int, size_out: int) -> np.ndarray:
    """For each of ``size_out`` output pixels, the input pixel under its centre, in integers:
    ``floor((2 i + 1) size_in / (2 size_out))``."""
    return (2 * np.arange(size_out) + 1) * size_in // (2 * size_out)


def mask_iou(a: np.ndarray, b: np.ndarray) -> float:
    """IoU of two boolean masks of the same shape (0 when the shapes differ)."""
    a, b = np.asarray(a, bool), np.asarray(b, bool)
    if a.shape != b.shape:
        return 0.0
    return float((a & b).sum() / max((a | b).sum(), 1))


def _mask_metric(stage: Callable, d: dict[str, Any]) -> float:
    return float(np.mean([mask_iou(stage(m, d["height"], d["width"]), f)
                          for m, f in zip(d["masks"], d["before_refactor"])]))


def _leakage(rng: np.random.Generator) -> dict[str, Any]:
    n_seq, per_seq = 12, 20
    centres = rng.normal(0, 0.6, (3, 8))
    labels_seq = rng.integers(0, 3, n_seq)
    feats, groups, labels = [], [], []
    for s in range(n_seq):
        base = centres[labels_seq[s]] + rng.normal(0, 1.5, 8)
        drift = rng.normal(0, 0.03, 8)
        for t in range(per_seq):
            feats.append(base + drift * t + rng.normal(0, 0.05, 8))
            groups.append(s)
            labels.append(labels_seq[s])
    return {"groups": np.asarray(groups), "val_fraction": 0.25, "seed": int(rng.integers(1 << 31)),
            "features": np.asarray(feats), "labels": np.asarray(labels)}


def _leakage_metric(stage: Callable, d: dict[str, Any]) -> float:
    train, val = stage(d["groups"], d["val_fraction"], d["seed"])
    return dr.nn_accuracy(d["features"], d["labels"], train, val)


def _map(rng: np.random.Generator) -> dict[str, Any]:
    gt = _boxes(rng, 15, 640, 480)
    keep = rng.random(15) < 0.85
    pred = gt[keep] + rng.normal(0, 1, (int(keep.sum()), 4)) * gt[keep][:, [2, 3, 2, 3]] * 0.08
    pred = np.concatenate([pred, _boxes(rng, 5, 640, 480)])
    scores = np.concatenate([rng.uniform(0.4, 1.0, int(keep.sum())), rng.uniform(0.1, 0.7, 5)])
    return {"pred_xywh": pred, "scores": scores, "gt_xywh": gt}


def _map_metric(stage: Callable, d: dict[str, Any]) -> float:
    return float(stage(d["pred_xywh"], d["scores"], d["gt_xywh"]))


_BUILDERS = {"letterbox": (_letterbox, _letterbox_metric), "export": (_export, _export_metric),
             "tracker": (_tracker, _tracker_metric), "mask_resize": (_mask_resize, _mask_metric),
             "leakage": (_leakage, _leakage_metric), "map": (_map, _map_metric)}


def build_drill(name: str, seed: int) -> Drill:
    """Drill ``name`` of the exam with seed ``seed`` (bug, data and candidate order drawn from it)."""
    make, metric = _BUILDERS[name]
    bug = dr.planted_bug(name, seed)
    rng = np.random.default_rng([seed, dr.DRILLS.index(name), 1])
    options = {**dr.VARIANTS[name], **dr.DECOYS}
    order = rng.permutation(sorted(options))
    return Drill(name, SYMPTOMS[name], stage_source(name, bug), compile_stage(name, bug), make(rng),
                 {str(k): options[str(k)] for k in order}, metric)


def exam(student_id: str) -> dict[str, Drill]:
    """The six drills of ``student_id`` (the id of the submission folder), in exam order."""
    seed = dr.student_seed(student_id)
    return {name: build_drill(name, seed) for name in dr.DRILLS}
