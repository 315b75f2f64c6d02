"""Semantic-segmentation scores from a confusion matrix accumulated over a whole dataset.

Definitions (J. Long, E. Shelhamer, T. Darrell, "Fully Convolutional Networks for Semantic
Segmentation", CVPR 2015, Sec. 5). With ``n_ij`` the number of pixels of true class ``i``
predicted as class ``j``, ``t_i = sum_j n_ij`` the pixels of class ``i`` in the ground truth and
``p_j = sum_i n_ij`` the pixels predicted as class ``j``:

- pixel accuracy           ``sum_i n_ii / sum_i t_i``
- mean (class) accuracy    ``mean_i n_ii / t_i``
- IoU of class ``i``       ``n_ii / (t_i + p_i - n_ii)``; mean IoU is their mean
- frequency-weighted IoU   ``sum_i t_i * IoU_i / sum_i t_i``
- Dice (= F1) of class i   ``2 n_ii / (t_i + p_i)`` (L. R. Dice, Ecology 1945); mean Dice likewise.

The matrix is accumulated over every pixel of every image first and the scores are computed
once at the end (the dataset-level definition; a mean of per-image IoUs is a different number).

Absent classes (documented choice, the one torchmetrics and mmseg make): a class that occurs
neither in the ground truth nor in the predictions has ``0 / 0`` IoU and Dice, reported as NaN and
left out of the means; a class present in only one of them scores 0 and counts. Accuracy of a
class absent from the ground truth is NaN likewise.

Pixels whose ground-truth value is ``ignore_index`` are left out of every count. Predictions
must be class ids in ``[0, K)`` everywhere (also on ignored pixels); anything else, a float
array, or a shape that differs from the ground truth raises :class:`~labkit.errors.DataError`,
never a silent resize or clipping.
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from labkit.errors import DataError


def _class_ids(values: Any, what: str, source: str | None) -> np.ndarray:
    arr = np.asarray(values)
    if arr.dtype == bool:
        arr = arr.astype(np.int64)
    if not np.issubdtype(arr.dtype, np.integer):
        raise DataError(f"{what} must hold integer class ids, got dtype {arr.dtype}", source=source)
    return arr


def check_label_masks(gt: Any, pred: Any, num_classes: int, ignore_index: int | None, *,
                      source: str | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Validate a ground-truth / prediction pair of class-id masks.

    Returns ``(gt, pred, keep)`` with ``keep`` the non-ignored pixels. Raises
    :class:`~labkit.errors.DataError` (naming ``source``) for non-integer arrays, different shapes,
    prediction values outside ``[0, K)`` and ground-truth values that are neither class ids nor
    ``ignore_index``.
    """
    gt = _class_ids(gt, "ground truth", source)
    pred = _class_ids(pred, "prediction", source)
    if gt.shape != pred.shape:
        raise DataError(f"prediction shape {pred.shape} differs from ground-truth shape {gt.shape}", source=source)
    k = int(num_classes)
    if pred.size and (pred.min() < 0 or pred.max() >= k):
        bad = np.unique(pred[(pred < 0) | (pred >= k)])[:10].tolist()
        raise DataError(f"prediction holds values {bad} outside the class ids [0, {k})", source=source)
    keep = gt != ignore_index if ignore_index is not None else np.ones(gt.shape, dtype=bool)
    gt_kept = gt[keep]
    if gt_kept.size and (gt_kept.min() < 0 or gt_kept.max() >= k):
        bad = np.unique(gt_kept[(gt_kept < 0) | (gt_kept >= k)])[:10].tolist()
        raise DataError(f"ground truth holds values {bad} that are neither class ids [0, {k}) nor the ignore "
                        f"index {ignore_index}", source=source)
    return gt, pred, keep


def _ratio(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    """``num / den`` element-wise, NaN where ``den == 0``."""
    out = np.full(num.shape, np.nan, dtype=np.float64)
    np.divide(num, den, out=out, where=den > 0)
    return out


class ConfusionMatrix:
    """A ``K x K`` pixel confusion matrix (rows: ground truth, columns: prediction).

    Memory is ``O(K^2)`` whatever the number of images; :meth:`update` is one ``np.bincount``.

    Args:
        num_classes: ``K``; valid class ids are ``0 .. K-1``.
        ignore_index: ground-truth value whose pixels are skipped (``None``: no such value).
    """

    def __init__(self, num_classes: int, ignore_index: int | None = 255):
        if int(num_classes) < 1:
            raise ValueError(f"num_classes must be >= 1, got {num_classes}")
        self.num_classes = int(num_classes)
        self.ignore_index = ignore_index
        self.matrix = np.zeros((self.num_classes, self.num_classes), dtype=np.int64)

    def update(self, gt: Any, pred: Any, *, source: str | None = None) -> "ConfusionMatrix":
        """Add one mask pair (any equal shapes, e.g. ``(H, W)`` or a batch ``(N, H, W)``).

        ``source`` names the file (or item) in error messages. Returns ``self``.
        """
        gt, pred, keep = check_label_masks(gt, pred, self.num_classes, self.ignore_index, source=source)
        k = self.num_classes
        flat = gt[keep].astype(np.int64) * k + pred[keep].astype(np.int64)
        self.matrix += np.bincount(flat, minlength=k * k).reshape(k, k)
        return self

    # ----------------------------------------------------------------- counts
    @property
    def gt_pixels(self) -> np.ndarray:
        """``t_i``: ground-truth pixels per class."""
        return self.matrix.sum(axis=1)

    @property
    def pred_pixels(self) -> np.ndarray:
        """``p_j``: predicted pixels per class (on non-ignored pixels)."""
        return self.matrix.sum(axis=0)

    @property
    def true_positives(self) -> np.ndarray:
        """``n_ii``: correctly labelled pixels per class."""
        return np.diag(self.matrix)

    # ----------------------------------------------------------------- scores
    def iou(self) -> np.ndarray:
        """Per-class IoU ``n_ii / (t_i + p_i - n_ii)``; NaN for a class absent from both."""
        tp = self.true_positives
        return _ratio(tp, self.gt_pixels + self.pred_pixels - tp)

    def dice(self) -> np.ndarray:
        """Per-class Dice ``2 n_ii / (t_i + p_i)``; NaN for a class absent from both."""
        return _ratio(2 * self.true_positives, self.gt_pixels + self.pred_pixels)

    def class_accuracy(self) -> np.ndarray:
        """Per-class accuracy (recall) ``n_ii / t_i``; NaN for a class absent from the ground truth."""
        return _ratio(self.true_positives, self.gt_pixels)

    def pixel_accuracy(self) -> float:
        """Fraction of non-ignored pixels labelled correctly (NaN when no pixel was counted)."""
        total = self.matrix.sum()
        return float(self.true_positives.sum() / total) if total else float("nan")

    def mean_accuracy(self) -> float:
        """Mean of :meth:`class_accuracy` over the classes present in the ground truth."""
        return _nanmean(self.class_accuracy())

    def mean_iou(self) -> float:
        """mIoU: mean of :meth:`iou` over the classes present in ground truth or prediction."""
        return _nanmean(self.iou())

    def mean_dice(self) -> float:
        """Mean of :meth:`dice` over the classes present in ground truth or prediction."""
        return _nanmean(self.dice())

    def frequency_weighted_iou(self) -> float:
        """fwIoU: IoU weighted by each class's share of ground-truth pixels."""
        t = self.gt_pixels
        if t.sum() == 0:
            return float("nan")
        return float(np.nansum(t * self.iou()) / t.sum())

    def summary(self, class_names: Sequence[str] | None = None) -> dict[str, Any]:
        """All scores as JSON-ready numbers (NaN becomes ``None``), with a per-class table."""
        names = list(class_names) if class_names is not None else [None] * self.num_classes
        if len(names) != self.num_classes:
            raise ValueError(f"{len(names)} class names for {self.num_classes} classes")
        per_class = [
            {"class_id": i, "name": names[i], "iou": _num(iou), "dice": _num(dice), "accuracy": _num(acc),
             "gt_pixels": int(t), "pred_pixels": int(p)}
            for i, (iou, dice, acc, t, p) in enumerate(zip(
                self.iou(), self.dice(), self.class_accuracy(), self.gt_pixels, self.pred_pixels))
        ]
        return {
            "num_classes": self.num_classes,
            "ignore_index": self.ignore_index,
            "pixels": int(self.matrix.sum()),
            "pixel_accuracy": _num(self.pixel_accuracy()),
            "mean_accuracy": _num(self.mean_accuracy()),
            "mean_iou": _num(self.mean_iou()),
            "frequency_weighted_iou": _num(self.frequency_weighted_iou()),
            "mean_dice": _num(self.mean_dice()),
            "per_class": per_class,
        }


def _nanmean(values: np.ndarray) -> float:
    present = values[~np.isnan(values)]
    return float(present.mean()) if present.size else float("nan")


def _num(value: float) -> float | None:
    """A float for JSON: NaN becomes ``None``."""
    value = float(value)
    return None if np.isnan(value) else value


def _cell(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.4f}"


def summary_to_markdown(summary: dict[str, Any]) -> str:
    """A markdown rendering of :meth:`ConfusionMatrix.summary` (plus boundary scores if merged in)."""
    lines = [
        f"pixels counted: {summary['pixels']} (ignore index {summary['ignore_index']})",
        "",
        "| metric | value |",
        "| --- | --- |",
    ]
    for key in ("pixel_accuracy", "mean_accuracy", "mean_iou", "frequency_weighted_iou", "mean_dice",
                "mean_boundary_f", "mean_boundary_iou"):
        if key in summary:
            lines.append(f"| {key} | {_cell(summary[key])} |")
    extra = [k for k in ("boundary_f", "boundary_iou") if k in summary.get("per_class", [{}])[0]]
    head = ["class", "IoU", "Dice", "accuracy", *extra, "gt pixels", "pred pixels"]
    lines += ["", "| " + " | ".join(head) + " |", "|" + " --- |" * len(head)]
    for row in summary["per_class"]:
        label = str(row["class_id"]) + (f" {row['name']}" if row["name"] else "")
        cells = [label, _cell(row["iou"]), _cell(row["dice"]), _cell(row["accuracy"]),
                 *(_cell(row[k]) for k in extra), str(row["gt_pixels"]), str(row["pred_pixels"])]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)
