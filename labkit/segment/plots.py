"""Figures for segmentation runs: training curves, label-map overlays beside the ground truth,
the confusion matrix as a heat map, instance masks of several models side by side, and chosen
classes' masks under several models (e.g. one per training loss).

Every figure is built with :func:`labkit.viz.new_figure` (Agg canvas, outside pyplot's registry,
shown when a notebook cell returns it). Class colours are :func:`labkit.viz.color_for` of the
class id, as in :func:`labkit.segment.predict.overlay_labels`; ignore pixels are drawn grey.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping, Sequence

import cv2
import numpy as np
from matplotlib.figure import Figure
from matplotlib.patches import Patch

from labkit.data.annotations import Dataset, Detections
from labkit.data.images import load_image
from labkit.errors import DataError
from labkit.metrics.segmentation import ConfusionMatrix
from labkit.segment.predict import overlay_labels
from labkit.viz import color_for, new_figure

#: Colour of ignore pixels (e.g. letterbox padding or unlabelled regions, label 255).
IGNORE_COLOUR = (128, 128, 128)


def plot_training_log(rows: list[dict[str, Any]], path: str | Path) -> Path:
    """Training loss and per-class validation IoU per epoch, side by side, saved as a PNG."""
    epochs = [r["epoch"] for r in rows]
    fig = new_figure(10, 3.5)
    ax_loss, ax_iou = fig.subplots(1, 2)
    ax_loss.plot(epochs, [r["train_loss"] for r in rows], marker="o")
    ax_loss.set(xlabel="epoch", ylabel="train loss", title="training loss")
    for key in [k for k in rows[0] if k.startswith("iou_")]:
        ax_iou.plot(epochs, [r[key] if r[key] is not None else float("nan") for r in rows], label=key[4:])
    ax_iou.plot(epochs, [r["val_miou"] for r in rows], "k--", label="mIoU")
    ax_iou.set(xlabel="epoch", ylabel="IoU", ylim=(0, 1), title="validation IoU per class")
    ax_iou.legend(fontsize=7, ncol=2)
    fig.savefig(path, dpi=100)
    return Path(path)


def class_overlay(image: np.ndarray, labels: np.ndarray, *, ignore_index: int | None = 255,
                  classes: Sequence[int] | None = None, alpha: float = 0.5) -> np.ndarray:
    """``image`` with the label map's foreground classes blended in (and outlined), via
    :func:`labkit.segment.predict.overlay_labels`; ``ignore_index`` pixels are painted
    :data:`IGNORE_COLOUR`; with ``classes``, only those classes are drawn."""
    labels = np.asarray(labels)
    ignore = labels == ignore_index if ignore_index is not None else np.zeros(labels.shape, bool)
    drawn = np.where(ignore, 0, labels)
    if classes is not None:
        drawn = np.where(np.isin(drawn, list(classes)), drawn, 0)
    out = overlay_labels(image, drawn.astype(np.int64), alpha=alpha)
    out[ignore] = IGNORE_COLOUR
    return out


def _legend(fig: Figure, class_names: Sequence[str], classes: Sequence[int]) -> None:
    handles = [Patch(color=np.array(color_for(c)) / 255, label=class_names[c]) for c in classes]
    fig.legend(handles=handles, loc="outside lower center", ncol=len(handles), fontsize=8, frameon=False)


def _off(ax: Any) -> None:
    ax.set_xticks([])
    ax.set_yticks([])


def plot_semantic_predictions(images: Sequence[np.ndarray], truths: Sequence[np.ndarray],
                              predictions: Sequence[np.ndarray], class_names: Sequence[str], *,
                              ignore_index: int | None = 255, titles: Sequence[str] | None = None) -> Figure:
    """One row per image: the image, its ground-truth label map and the predicted one, each
    overlaid on the image (:func:`class_overlay`), with a legend of the class colours. The
    prediction panel is titled with the share of labelled pixels it gets right."""
    if not (len(images) == len(truths) == len(predictions)) or not images:
        raise DataError(f"need as many images, truths and predictions (at least one); got {len(images)}, "
                        f"{len(truths)} and {len(predictions)}")
    fig = new_figure(9, 2.6 * len(images) + 0.4)
    axes = fig.subplots(len(images), 3, squeeze=False)
    for i, (image, truth, pred) in enumerate(zip(images, truths, predictions)):
        if truth.shape != pred.shape or truth.shape != image.shape[:2]:
            raise DataError(f"row {i}: image {image.shape[:2]}, truth {truth.shape} and prediction {pred.shape} differ")
        valid = truth != ignore_index if ignore_index is not None else np.ones(truth.shape, bool)
        correct = float((pred == truth)[valid].mean()) if valid.any() else float("nan")
        panels = [(image, titles[i] if titles else f"image {i}"),
                  (class_overlay(image, truth, ignore_index=ignore_index), "ground truth"),
                  (class_overlay(image, pred, ignore_index=None), f"prediction ({correct:.1%} right)")]
        for ax, (data, title) in zip(axes[i], panels):
            ax.imshow(data, interpolation="nearest")
            ax.set_title(title, fontsize=8)
            _off(ax)
    _legend(fig, class_names, range(1, len(class_names)))
    return fig


def plot_confusion(matrix: np.ndarray | ConfusionMatrix, class_names: Sequence[str], *,
                   title: str = "confusion: share of each true class's pixels") -> Figure:
    """The pixel confusion matrix (rows: true class, columns: predicted class) as a heat map,
    each row normalised to sum to 1 (its diagonal is the class's recall, i.e. pixel accuracy of
    that class) and every cell annotated in percent; a class without pixels has an empty row."""
    counts = np.asarray(matrix.matrix if isinstance(matrix, ConfusionMatrix) else matrix, dtype=np.float64)
    k = len(class_names)
    if counts.shape != (k, k):
        raise DataError(f"confusion matrix is {counts.shape}, expected ({k}, {k}) for classes {list(class_names)}")
    totals = counts.sum(axis=1, keepdims=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        shares = np.where(totals > 0, counts / totals, np.nan)
    fig = new_figure(1.0 * k + 2.2, 0.85 * k + 1.2)
    ax = fig.subplots()
    im = ax.imshow(shares, cmap="Blues", vmin=0.0, vmax=1.0)
    for i in range(k):
        for j in range(k):
            if not np.isnan(shares[i, j]):
                ax.text(j, i, f"{100 * shares[i, j]:.0f}", ha="center", va="center", fontsize=8,
                        color="white" if shares[i, j] > 0.5 else "black")
    ax.set_xticks(range(k), class_names, rotation=45, ha="right", fontsize=8)
    ax.set_yticks(range(k), class_names, fontsize=8)
    ax.set(xlabel="predicted class", ylabel="true class", title=title)
    ax.title.set_fontsize(9)
    fig.colorbar(im, ax=ax, shrink=0.8, label="share of the row")
    return fig


def paint_instances(image: np.ndarray, masks: np.ndarray, *, alpha: float = 0.55) -> np.ndarray:
    """``image`` with each instance mask of ``(N, H, W)`` blended in its own colour
    (:func:`labkit.viz.color_for` of its index + 1) and outlined, so two touching objects merged
    into one region show as one colour."""
    out = np.asarray(image, dtype=np.uint8)[:, :, :3].copy()
    for i, mask in enumerate(np.asarray(masks, dtype=bool)):
        colour = np.array(color_for(i + 1), dtype=np.float64)
        out[mask] = ((1 - alpha) * out[mask] + alpha * colour).astype(np.uint8)
        contours, _ = cv2.findContours(mask.astype(np.uint8), cv2.RETR_LIST, cv2.CHAIN_APPROX_NONE)
        cv2.drawContours(out, contours, -1, tuple(int(c) for c in colour), 1)
    return out


def plot_instance_comparison(dataset: Dataset, predictions: Mapping[str, Mapping[int, Detections]],
                             image_ids: Sequence[int] | None = None, *, n: int = 3,
                             min_score: float = 0.5) -> Figure:
    """One row per image: the ground-truth instances (crowd regions left out), then each model's
    instances scoring at least ``min_score``, each instance in its own colour
    (:func:`paint_instances`), titled with the number of instances.

    ``predictions`` maps a model name to its image id -> :class:`Detections` with masks (e.g.
    ``{name: s.predictions for name, s in comparison.scored.items()}``). Without ``image_ids``
    the ``n`` images with the most ground-truth objects are shown (ties: lower id first), where
    merged and split objects are likeliest, one per scene (``extra["scene_id"]``) while there are
    scenes left.
    """
    records = dataset.by_id()
    if image_ids is None:
        ranked = sorted(records.values(), key=lambda r: (-int((r.detections.get("iscrowd") == 0).sum()), r.id))
        firsts: dict[Any, int] = {}  # scene -> its first (most crowded) image
        for r in ranked:
            firsts.setdefault(r.extra.get("scene_id", r.id), r.id)
        chosen = list(firsts.values())
        image_ids = (chosen + [r.id for r in ranked if r.id not in set(chosen)])[:n]
    if not image_ids:
        raise DataError("no images to show", source=dataset.source)
    for name, preds in predictions.items():
        missing = [i for i in image_ids if i not in preds]
        if missing:
            raise DataError(f"model {name!r} has no prediction for image id {missing[0]}", source=dataset.source)
    cols = 1 + len(predictions)
    fig = new_figure(3.0 * cols, 2.5 * len(image_ids))
    axes = fig.subplots(len(image_ids), cols, squeeze=False)
    for row, image_id in zip(axes, image_ids):
        rec = records[image_id]
        image = load_image(dataset.image_path(rec))
        h, w = image.shape[:2]
        truth = rec.detections[rec.detections.get("iscrowd") == 0]
        panels = [(truth, f"{rec.file_name}: ground truth")]
        for name, preds in predictions.items():
            det = preds[image_id]
            keep = det.score >= min_score if det.score is not None else np.ones(len(det), bool)
            panels.append((det[keep], name))
        for ax, (det, title) in zip(row, panels):
            masks = det.masks(h, w) if len(det) else np.zeros((0, h, w), bool)
            ax.imshow(paint_instances(image, masks), interpolation="nearest")
            ax.set_title(f"{title}\n{len(det)} instances", fontsize=8)
            _off(ax)
    return fig


def plot_class_masks(image: np.ndarray, truth: np.ndarray, predictions: Mapping[str, np.ndarray],
                     classes: Sequence[int], class_names: Sequence[str], *, ignore_index: int | None = 255,
                     title: str | None = None) -> Figure:
    """The masks of the chosen ``classes`` only, on one image: the ground truth, then one panel
    per entry of ``predictions`` (name -> label map, e.g. one per training loss), each titled with
    the IoU of every chosen class on this image (``TP / (TP + FP + FN)`` over its labelled pixels,
    :class:`labkit.metrics.segmentation.ConfusionMatrix`; "n/a" where the class is in neither)."""
    if truth.shape != image.shape[:2]:
        raise DataError(f"truth {truth.shape} does not match the image {image.shape[:2]}")
    cols = 1 + len(predictions)
    fig = new_figure(2.8 * cols, 2.9)
    axes = fig.subplots(1, cols, squeeze=False)[0]
    axes[0].imshow(class_overlay(image, truth, ignore_index=ignore_index, classes=classes), interpolation="nearest")
    axes[0].set_title("ground truth", fontsize=8)
    for ax, (name, labels) in zip(axes[1:], predictions.items()):
        if labels.shape != truth.shape:
            raise DataError(f"prediction {name!r} is {labels.shape}, the truth {truth.shape}")
        iou = ConfusionMatrix(len(class_names), ignore_index=ignore_index).update(truth, labels).iou()
        scores = ", ".join(f"{class_names[c]} {'n/a' if np.isnan(iou[c]) else f'{iou[c]:.2f}'}" for c in classes)
        ax.imshow(class_overlay(image, labels, ignore_index=None, classes=classes), interpolation="nearest")
        ax.set_title(f"{name}\nIoU {scores}", fontsize=8)
    for ax in axes:
        _off(ax)
    if title:
        fig.suptitle(title, fontsize=9)
    _legend(fig, class_names, classes)
    return fig


#: Colours of :func:`mask_errors`: right foreground, false positive, missed (right background is black).
RIGHT_COLOUR, FALSE_POSITIVE_COLOUR, MISSED_COLOUR = (220, 220, 220), (220, 40, 40), (40, 80, 220)


def mask_errors(truth: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """An RGB picture of a binary mask against the truth: right foreground light grey, false
    positives red, missed pixels blue, right background black (the colours of lesson 3.4's error map)."""
    truth, mask = np.asarray(truth, bool), np.asarray(mask, bool)
    out = np.zeros(truth.shape + (3,), np.uint8)
    out[truth & mask] = RIGHT_COLOUR
    out[~truth & mask] = FALSE_POSITIVE_COLOUR
    out[truth & ~mask] = MISSED_COLOUR
    return out


def _crop_centres(score: np.ndarray, n: int, side: int) -> list[tuple[int, int]]:
    """Up to ``n`` centres of non-overlapping ``side``-wide windows holding the most ``score``
    (greedy; ties go to the lower flat index)."""
    totals = cv2.boxFilter(score.astype(np.float32), -1, (side, side), normalize=False,
                           borderType=cv2.BORDER_CONSTANT)
    centres: list[tuple[int, int]] = []
    for flat in np.lexsort((np.arange(totals.size), -totals.ravel())):
        if len(centres) == n or totals.flat[flat] <= 0:
            break
        r, c = divmod(int(flat), totals.shape[1])
        if all(max(abs(r - r0), abs(c - c0)) >= side for r0, c0 in centres):
            centres.append((r, c))
    return centres


def plot_refinement_crops(truth: np.ndarray, before: np.ndarray, after: np.ndarray, *, n: int = 3, side: int = 32,
                          labels: tuple[str, str] = ("before", "after"), title: str | None = None) -> Figure:
    """Boundary crops of two probability maps of one class (thresholded at 0.5) against its
    ground-truth mask, as :func:`mask_errors` pictures: one row per crop, ``before`` | ``after``,
    each titled with its wrong pixels in the crop. The crops are the ``n`` non-overlapping
    ``side`` x ``side`` windows where the two masks differ most (where the truth's boundary is,
    on both sides of it, when they never differ)."""
    truth = np.asarray(truth, bool)
    if not (truth.shape == np.shape(before) == np.shape(after)):
        raise DataError(f"truth {truth.shape}, before {np.shape(before)} and after {np.shape(after)} must match")
    masks = [np.asarray(before) >= 0.5, np.asarray(after) >= 0.5]
    changed = masks[0] != masks[1]
    if not changed.any():
        changed = cv2.morphologyEx(truth.astype(np.uint8), cv2.MORPH_GRADIENT, np.ones((3, 3), np.uint8)) > 0
    centres = _crop_centres(changed, n, side) or [(truth.shape[0] // 2, truth.shape[1] // 2)]
    fig = new_figure(4.6, 2.3 * len(centres) + 0.5)
    axes = fig.subplots(len(centres), 2, squeeze=False)
    h, w = truth.shape
    for row, (r, c) in zip(axes, centres):
        top, left = min(max(0, r - side // 2), max(0, h - side)), min(max(0, c - side // 2), max(0, w - side))
        window = np.s_[top:top + side, left:left + side]
        for ax, mask, label in zip(row, masks, labels):
            wrong = int((mask[window] != truth[window]).sum())
            ax.imshow(mask_errors(truth[window], mask[window]), interpolation="nearest")
            ax.set_title(f"{label}: {wrong} px wrong\nrows {top}-{top + side - 1}, cols {left}-{left + side - 1}",
                         fontsize=7)
            _off(ax)
    key = "grey right, red false positive, blue missed"
    fig.suptitle(f"{title}\n{key}" if title else key, fontsize=8)
    return fig


def plot_pointrend_crops(truth: np.ndarray, fine: np.ndarray, factor: int, n_points: int, *, n: int = 3,
                         side: int = 32, title: str | None = None) -> Figure:
    """Lesson 3.4's PointRend experiment on one class of one image, as boundary crops: the
    class's ``fine`` probability map is shrunk ``factor`` times (area averaging), then either
    upsampled bilinearly (before) or refined by adaptive subdivision with ``n_points`` points per
    step read from the fine map (after; :func:`labkit.segment.pointrend.subdivide`, Kirillov et
    al., CVPR 2020); see :func:`plot_refinement_crops`."""
    from labkit.segment.pointrend import from_fine_map, subdivide, upsample

    fine = np.asarray(fine, np.float32)
    h, w = fine.shape
    low = cv2.resize(fine, (max(1, w // factor), max(1, h // factor)), interpolation=cv2.INTER_AREA)
    refined, _ = subdivide(low, (h, w), n_points, from_fine_map(fine))
    return plot_refinement_crops(truth, upsample(low, (h, w)), refined, n=n, side=side,
                                 labels=(f"bilinear x{factor}", "PointRend"), title=title)


def plot_error_map(image: np.ndarray, truth: np.ndarray, pred: np.ndarray, *, band: float = 2.0,
                   ignore_index: int | None = 255, title: str | None = None) -> Figure:
    """A label-map prediction's errors beside its image: right foreground green, a predicted class
    where the truth differs red (false positive), a true object predicted as background blue
    (missed), and, among the remaining pixels, those within ``band`` px of a ground-truth contour
    (:func:`labkit.metrics.boundary.boundary_distance`) grey; ignore pixels count nowhere."""
    from labkit.metrics.boundary import boundary_distance

    truth, pred = np.asarray(truth), np.asarray(pred)
    if truth.shape != pred.shape or np.shape(image)[:2] != truth.shape:
        raise DataError(f"image {np.shape(image)}, truth {truth.shape} and pred {pred.shape} must match")
    valid = truth != ignore_index if ignore_index is not None else np.ones(truth.shape, bool)
    err = np.zeros(truth.shape + (3,), np.uint8)
    err[(pred == truth) & (truth > 0) & valid] = (40, 170, 40)
    err[(pred != truth) & (pred > 0) & valid] = FALSE_POSITIVE_COLOUR
    err[(pred != truth) & (truth > 0) & (pred == 0) & valid] = MISSED_COLOUR
    err[(boundary_distance(truth) <= band) & ~err.any(axis=2) & valid] = (90, 90, 90)
    fig = new_figure(10, 4)
    axes = fig.subplots(1, 2)
    axes[0].imshow(image)
    axes[0].set_title(title or "image", fontsize=9)
    axes[1].imshow(err, interpolation="nearest")
    axes[1].set_title(f"green right, red false positive, blue missed, grey {band:g}-px band", fontsize=9)
    for ax in axes:
        _off(ax)
    return fig
