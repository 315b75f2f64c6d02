"""From an error breakdown to a targeted fix: galleries of each error type and the prediction-time
change (no retraining) that addresses the type costing the most AP.

:func:`plot_error_gallery` draws the examples :func:`labkit.metrics.errors.error_gallery` (or
:func:`diverse_gallery`, one per scene) picks,
one row per error type: a crop around the detection (red, predicted class and score) and the
ground truth it was judged against (green). :data:`TARGETED_FIXES` maps error types to a change
of :class:`~labkit.detect.report.EvalSettings`; :func:`pick_targeted_fix` chooses the type with the
largest measured AP gain among those with a fix, and :func:`fixed_settings` applies it, changing
exactly one field.
"""

from __future__ import annotations

import dataclasses
from typing import Mapping, Sequence

import cv2
import numpy as np
from matplotlib.figure import Figure

from labkit.data.annotations import Dataset
from labkit.data.images import load_image
from labkit.detect.report import EvalSettings
from labkit.metrics.errors import ERROR_TYPES, ErrorCase, ErrorReport, error_gallery
from labkit.viz import new_figure

PRED_COLOUR = (230, 40, 40)
GT_COLOUR = (40, 200, 60)
#: Test-time input scale used against misses and poor localisation (small objects get more pixels).
UPSCALE = 1.5


@dataclasses.dataclass(frozen=True)
class Fix:
    """A prediction-time change aimed at one error type.

    Attributes:
        name: what changes, in words.
        field: the :class:`EvalSettings` field it changes.
        why: why it should reduce the error type.
    """

    name: str
    field: str
    why: str


#: Error type -> the fix that targets it. Background errors have none here: a score threshold
#: removes them but cannot raise AP (it only cuts the tail of the precision-recall curve).
TARGETED_FIXES: dict[str, Fix] = {
    "dupe": Fix("NMS IoU lowered to 0.5", "nms_iou",
                "duplicates overlap their true positive by less than the NMS IoU; a lower IoU suppresses them"),
    "cls": Fix("class-agnostic NMS", "nms",
               "a wrong-class box on a found object is suppressed by the higher-scoring right-class box"),
    "both": Fix("class-agnostic NMS", "nms",
                "a wrong-class, misplaced box next to a found object is suppressed by the better box"),
    "miss": Fix(f"test-time input size x{UPSCALE}", "imgsz",
                "missed objects are mostly small; a larger input spreads them over more cells of the finest feature map"),
    "loc": Fix(f"test-time input size x{UPSCALE}", "imgsz",
               "box edges are regressed on a finer grid when the input is larger"),
}


def fixed_settings(kind: str, settings: EvalSettings) -> EvalSettings:
    """``settings`` with the fix of error type ``kind`` applied (exactly one field changes)."""
    if kind not in TARGETED_FIXES:
        raise ValueError(f"no fix for error type {kind!r}; fixes exist for {sorted(TARGETED_FIXES)}")
    field = TARGETED_FIXES[kind].field
    if field == "nms_iou":  # 0.5, or 0.1 lower when the settings are already at or below 0.5
        return dataclasses.replace(settings, nms_iou=0.5 if settings.nms_iou > 0.5 else round(settings.nms_iou - 0.1, 6))
    if field == "nms":
        return dataclasses.replace(settings, nms="class-agnostic")
    return dataclasses.replace(settings, imgsz=int(round(settings.imgsz * UPSCALE / 32)) * 32)


def pick_targeted_fix(report: ErrorReport, candidates: Sequence[str] | None = None) -> str:
    """The error type with a fix (among ``candidates``, default all of :data:`TARGETED_FIXES`)
    whose removal gains the most (``report.delta``); ties go to the most frequent type."""
    kinds = [k for k in (candidates or TARGETED_FIXES) if k in TARGETED_FIXES]
    if not kinds:
        raise ValueError("no candidate error type has a fix")
    gain = {k: report.delta[k] if np.isfinite(report.delta[k]) else -np.inf for k in kinds}
    return max(kinds, key=lambda k: (gain[k], report.counts[k]))


def diverse_gallery(report: ErrorReport, dataset: Dataset, per_type: int = 4, *, key: str = "scene_id",
                    pool: int = 200) -> dict[str, list[ErrorCase]]:
    """Like :func:`labkit.metrics.errors.error_gallery` (most confident first; largest first for
    misses), but at most one example per value of the image field ``key`` (default: one per scene,
    so that burst shots of one scene do not fill a row with the same object); images without the
    field count as their own scene. Looks at the ``pool`` best cases of each type."""
    records = dataset.by_id()
    out = {}
    for kind, cases in error_gallery(report, per_type=pool).items():
        seen: set = set()
        picked = []
        for case in cases:
            group = records[case.image_id].extra.get(key, ("image", case.image_id))
            if group not in seen:
                seen.add(group)
                picked.append(case)
            if len(picked) == per_type:
                break
        out[kind] = picked
    return out


def _xyxy(box: Sequence[float]) -> np.ndarray:
    x, y, w, h = box
    return np.array([x, y, x + w, y + h], dtype=np.float64)


def crop_case(image: np.ndarray, case: ErrorCase, *, margin: float = 0.6, min_side: int = 48,
              out_side: int = 128) -> np.ndarray:
    """An ``out_side``-high crop of ``image`` around a case's boxes (prediction red, ground truth
    green), with ``margin`` times the boxes' size of context on each side."""
    boxes = [_xyxy(b) for b in (case.box, case.gt_box) if b is not None]
    x1, y1 = min(b[0] for b in boxes), min(b[1] for b in boxes)
    x2, y2 = max(b[2] for b in boxes), max(b[3] for b in boxes)
    side = max(x2 - x1, y2 - y1, min_side / (1 + 2 * margin))
    cx, cy, half = (x1 + x2) / 2, (y1 + y2) / 2, side * (0.5 + margin)
    h, w = image.shape[:2]
    left, top = int(max(0, np.floor(cx - half))), int(max(0, np.floor(cy - half)))
    right, bottom = int(min(w, np.ceil(cx + half))), int(min(h, np.ceil(cy + half)))
    crop = np.ascontiguousarray(image[top:bottom, left:right, :3])
    scale = out_side / max(1, crop.shape[0])
    crop = cv2.resize(crop, (max(1, round(crop.shape[1] * scale)), out_side), interpolation=cv2.INTER_NEAREST)
    for box, colour in ((case.gt_box, GT_COLOUR), (case.box, PRED_COLOUR)):
        if box is None:
            continue
        b = np.round((_xyxy(box) - [left, top, left, top]) * scale).astype(int)
        cv2.rectangle(crop, (b[0], b[1]), (b[2] - 1, b[3] - 1), colour, 2)
    return crop


def plot_error_gallery(dataset: Dataset, gallery: Mapping[str, Sequence[ErrorCase]], *,
                       class_names: Mapping[int, str] | None = None, out_side: int = 128,
                       row_labels: Mapping[str, str] | None = None) -> Figure:
    """One row per error type, one crop per example (see :func:`crop_case`), titled with the
    predicted class and score (or the missed object's class) and the IoU it was judged by.
    Built with :func:`labkit.viz.new_figure`, so a notebook cell that returns it shows it.

    Rows are labelled with the error type's long name, or with ``row_labels[key]`` when given:
    then the keys of ``gallery`` may be any names, e.g. ``{"before": [...], "after": [...]}`` to
    show one error type before and after a fix."""
    kinds = [k for k, cases in gallery.items() if cases]
    cols = max((len(gallery[k]) for k in kinds), default=1)
    fig = new_figure(1.9 * cols, 2.1 * max(1, len(kinds)))
    names = class_names or dataset.category_names
    records = dataset.by_id()
    for r, kind in enumerate(kinds):
        for c, case in enumerate(gallery[kind]):
            ax = fig.add_subplot(len(kinds), cols, r * cols + c + 1)
            image = load_image(dataset.image_path(records[case.image_id]))
            ax.imshow(crop_case(image, case, out_side=out_side))
            what = names.get(case.class_id, str(case.class_id))
            if case.score is not None:
                what += f" {case.score:.2g}"
                if case.gt_class is not None:
                    what += f"\nvs {names.get(case.gt_class, str(case.gt_class))}, IoU {case.iou:.2f}"
            ax.set_title(what, fontsize=7)
            ax.set_xticks([])
            ax.set_yticks([])
            if c == 0:
                ax.set_ylabel((row_labels or ERROR_TYPES).get(kind, kind), fontsize=8)
    if not kinds:
        fig.add_subplot().text(0.5, 0.5, "no errors to show", ha="center")
    else:
        fig.suptitle("red: prediction, green: ground truth", fontsize=8)
    return fig
