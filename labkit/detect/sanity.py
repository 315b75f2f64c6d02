"""Checks to run before a long detector training, and a reading of the curves after it.

Label bugs do not crash a training run: a detector trained on boxes written in the wrong format
or on wrong class ids trains happily, its loss falls, and only the validation AP (or a look at
the labels) gives it away. The checks here catch those bugs in seconds:

- :func:`class_histogram` / :func:`label_file_histogram`: the objects per class in the COCO
  annotations and in the YOLO label files the trainer reads must agree;
- :func:`round_trip`: export to the YOLO layout, read the files back with the parser the
  trainer uses, and compare every box with its source (:func:`label_agreement`); the overlay
  of :func:`overlay_round_trip` shows the same thing to the eye;
- :func:`curve_health`: after (or during) a run, the numbers that separate a healthy learning
  curve from a broken one; :func:`box_offsets`: the systematic shift of a detector's boxes,
  the fingerprint of a box-format bug in its training labels.

:func:`inject_label_bug` produces the two classic bugs on purpose, for teaching and for tests.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal, Mapping

import cv2
import numpy as np
import pandas as pd
import yaml
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from labkit.artifacts import fresh_dir
from labkit.data.annotations import Dataset, Detections, ImageRecord
from labkit.data.boxes import clip_xyxy, xyxy_to_xywh
from labkit.data.images import load_image
from labkit.data.yolo import export_yolo, import_yolo
from labkit.errors import DataError
from labkit.metrics.iou import box_iou
from labkit.viz import draw_detections

LabelBug = Literal["xywh_as_cxcywh", "shuffled_classes"]
LABEL_BUGS: tuple[str, ...] = ("xywh_as_cxcywh", "shuffled_classes")


def _not_crowd(det: Detections) -> np.ndarray:
    crowd = det.get("iscrowd")
    return np.ones(len(det), dtype=bool) if crowd is None else np.asarray(crowd) != 1


def class_histogram(dataset: Dataset) -> pd.Series:
    """Objects per category name (crowd regions left out), every category listed, in id order."""
    counts = {int(c["id"]): 0 for c in dataset.categories}
    for rec in dataset.images:
        for cid in rec.detections.class_id[_not_crowd(rec.detections)]:
            counts[int(cid)] = counts.get(int(cid), 0) + 1
    names = dataset.category_names
    return pd.Series({names.get(k, str(k)): v for k, v in sorted(counts.items())}, name="objects", dtype=int)


def label_file_histogram(data_yaml: str | Path, split: str) -> pd.Series:
    """Objects per class name counted straight from the YOLO label files of one split: the first
    number of every line, named through ``data.yaml``'s ``names`` (what the trainer will see)."""
    data_yaml = Path(data_yaml)
    config = yaml.safe_load(data_yaml.read_text(encoding="utf-8"))
    names = config["names"]
    names = dict(enumerate(names)) if isinstance(names, list) else {int(k): str(v) for k, v in names.items()}
    root = Path(config.get("path") or data_yaml.parent)
    label_dir = (root if root.is_absolute() else data_yaml.parent / root) / "labels" / split
    if not label_dir.is_dir():
        raise DataError(f"no label folder for split '{split}'", source=str(label_dir))
    counts = {k: 0 for k in sorted(names)}
    for path in sorted(label_dir.rglob("*.txt")):
        for line in path.read_text(encoding="utf-8").splitlines():
            if line.strip():
                index = int(float(line.split()[0]))
                counts[index] = counts.get(index, 0) + 1
    return pd.Series({names.get(k, str(k)): v for k, v in counts.items()}, name="objects", dtype=int)


def inject_label_bug(dataset: Dataset, kind: LabelBug, *, seed: int = 0) -> Dataset:
    """A copy of ``dataset`` whose labels carry a classic bug (images unchanged).

    ``"xywh_as_cxcywh"``: COCO's ``[x_min, y_min, w, h]`` written into a YOLO file without moving
    the corner to the centre; a reader then takes the corner for the centre, so every box is
    shifted up and left by half its size (clipped to the image, as the trainer clips it).
    ``"shuffled_classes"``: every object gets a class drawn at random from the category table
    (seeded), as when two lists fall out of step.
    """
    if kind not in LABEL_BUGS:
        raise DataError(f"kind must be one of {LABEL_BUGS}, got {kind!r}")
    rng = np.random.default_rng(seed)
    ids = np.array(sorted(int(c["id"]) for c in dataset.categories), dtype=np.int64)
    records = []
    for rec in dataset.images:
        det = rec.detections
        if len(det) and kind == "xywh_as_cxcywh":
            x1, y1, x2, y2 = det.xyxy.T
            w, h = x2 - x1, y2 - y1
            moved = np.stack([x1 - w / 2, y1 - h / 2, x1 + w / 2, y1 + h / 2], axis=1)
            det = det.with_fields(xywh=xyxy_to_xywh(clip_xyxy(moved, rec.width, rec.height)), segmentation=None)
        elif len(det):
            det = det.with_fields(class_id=rng.choice(ids, size=len(det)))
        records.append(ImageRecord(rec.id, rec.file_name, rec.width, rec.height, det, dict(rec.extra)))
    info = {**dataset.info, "label_bug": kind}
    return Dataset(dataset.categories, records, info, dataset.licenses, dataset.root, dataset.source)


def label_agreement(reference: Dataset, readback: Dataset) -> pd.DataFrame:
    """Object-by-object comparison of labels read back from an export with their source.

    Images are matched on ``file_name``; within an image the non-crowd objects of ``reference``
    are paired in order with those of ``readback`` (the order an export keeps). One row per
    pair: ``file_name``, ``class_ref``, ``class_read``, ``iou`` (reference box clipped to the
    image). An object without a partner gets a row with ``iou`` 0 and the missing class as -1.
    """
    read = {r.file_name: r for r in readback.images}
    rows: list[dict[str, Any]] = []
    for rec in reference.images:
        det = rec.detections[_not_crowd(rec.detections)]
        other = read.get(rec.file_name)
        got = other.detections if other is not None else Detections.empty()
        ref_boxes = clip_xyxy(det.xyxy, rec.width, rec.height)
        for i in range(max(len(det), len(got))):
            if i < len(det) and i < len(got):
                iou = float(box_iou(ref_boxes[i:i + 1], got.xyxy[i:i + 1])[0, 0])
                rows.append({"file_name": rec.file_name, "class_ref": int(det.class_id[i]),
                             "class_read": int(got.class_id[i]), "iou": iou})
            else:
                rows.append({"file_name": rec.file_name, "class_ref": int(det.class_id[i]) if i < len(det) else -1,
                             "class_read": int(got.class_id[i]) if i < len(got) else -1, "iou": 0.0})
    return pd.DataFrame(rows, columns=["file_name", "class_ref", "class_read", "iou"])


def agreement_summary(agreement: pd.DataFrame) -> dict[str, float]:
    """``objects``, ``mean_iou``, ``min_iou``, ``share_iou_below_0_9`` and ``class_agreement``
    (share of pairs whose classes match) of a :func:`label_agreement` table."""
    if agreement.empty:
        return {"objects": 0, "mean_iou": float("nan"), "min_iou": float("nan"),
                "share_iou_below_0_9": float("nan"), "class_agreement": float("nan")}
    return {"objects": int(len(agreement)), "mean_iou": float(agreement["iou"].mean()),
            "min_iou": float(agreement["iou"].min()), "share_iou_below_0_9": float((agreement["iou"] < 0.9).mean()),
            "class_agreement": float((agreement["class_ref"] == agreement["class_read"]).mean())}


def round_trip(labels: Dataset, out_dir: str | Path, *, reference: Dataset | None = None,
               split: str = "train") -> tuple[Dataset, pd.DataFrame]:
    """Export ``labels`` to the YOLO layout in ``out_dir`` (images symlinked), read the split back
    with :func:`labkit.data.yolo.import_yolo` and compare it with ``reference`` (default:
    ``labels`` itself) using :func:`label_agreement`.

    ``out_dir`` is a scratch folder: an earlier export there (it has a ``data.yaml``) is deleted
    first, since label files left over from it would be read back too; any other non-empty
    folder is an error. Returns the read-back dataset and the agreement table. ``reference`` is
    the ground truth the files were meant to hold: pass it when checking labels written by
    other code.
    """
    out = fresh_dir(out_dir, marker="data.yaml", what="YOLO export")
    summary = export_yolo({split: labels}, out, images="symlink")
    readback = import_yolo(summary["data_yaml"], split)
    return readback, label_agreement(reference if reference is not None else labels, readback)


def _draw_reference(image: np.ndarray, det: Detections) -> np.ndarray:
    out = image.copy()
    for x1, y1, x2, y2 in np.round(det.xyxy).astype(int):
        cv2.rectangle(out, (x1, y1), (x2 - 1, y2 - 1), (255, 255, 255), 1, cv2.LINE_4)
    return out


def overlay_round_trip(reference: Dataset, readback: Dataset, n: int = 4, *, seed: int = 0, cols: int = 4,
                       title: str | None = None, path: str | Path | None = None) -> Figure:
    """``n`` seeded images with the source boxes in white and the read-back labels drawn over
    them in class colours with class names: where the two disagree, the export is wrong."""
    read = {r.file_name: r for r in readback.images}
    pool = [r for r in reference.images if r.file_name in read and len(r.detections)]
    if not pool:
        raise DataError("no image with objects is in both datasets", source=reference.source)
    rng = np.random.default_rng(seed)
    picks = sorted(rng.choice(len(pool), size=min(n, len(pool)), replace=False))
    cols = max(1, min(cols, len(picks)))
    rows = -(-len(picks) // cols)
    fig = Figure(figsize=(3.2 * cols, 2.6 * rows + (0.3 if title else 0)), dpi=100, layout="constrained")
    FigureCanvasAgg(fig)
    names = reference.category_names
    for k, idx in enumerate(picks):
        rec = pool[int(idx)]
        image = _draw_reference(load_image(reference.image_path(rec)), rec.detections)
        ax = fig.add_subplot(rows, cols, k + 1)
        ax.imshow(draw_detections(image, read[rec.file_name].detections, names, show_masks=False))
        ax.set_title(rec.file_name, fontsize=7)
        ax.axis("off")
    if title:
        fig.suptitle(title, fontsize=9)
    if path is not None:
        fig.savefig(path)
    return fig


def box_offsets(dataset: Dataset, predictions: Mapping[int, Detections], *, min_iou: float = 0.3,
                min_score: float = 0.25) -> dict[str, float]:
    """The systematic part of a detector's box error: for every ground-truth object, the
    prediction (score >= ``min_score``) that overlaps it most, if its IoU is at least ``min_iou``;
    then the mean offset of the predicted centre from the true centre, in units of the true box's
    width (``dx``) and height (``dy``), and the mean ratio of predicted to true width and height.

    A healthy detector has offsets near 0 and ratios near 1; a detector trained on labels
    shifted by a format bug has a clear, one-signed offset. Returns ``matched`` (objects with a
    partner), ``dx``, ``dy``, ``w_ratio`` and ``h_ratio`` (NaN when nothing matched).
    """
    dx, dy, rw, rh = [], [], [], []
    for rec in dataset.images:
        gt = rec.detections[_not_crowd(rec.detections)]
        pred = predictions.get(rec.id, Detections.empty())
        if pred.score is not None:
            pred = pred[pred.score >= min_score]
        if not len(gt) or not len(pred):
            continue
        iou = box_iou(gt.xyxy, pred.xyxy)
        for i, j in enumerate(iou.argmax(axis=1)):
            if iou[i, j] < min_iou:
                continue
            gx, gy, gw, gh = gt.xywh[i]
            px, py, pw, ph = pred.xywh[j]
            dx.append((px + pw / 2 - gx - gw / 2) / gw)
            dy.append((py + ph / 2 - gy - gh / 2) / gh)
            rw.append(pw / gw)
            rh.append(ph / gh)

    def mean(values: list[float]) -> float:
        return float(np.mean(values)) if values else float("nan")

    return {"matched": len(dx), "dx": mean(dx), "dy": mean(dy), "w_ratio": mean(rw), "h_ratio": mean(rh)}


def total_loss(curves: pd.DataFrame, prefix: str = "train/") -> pd.Series:
    """Sum of the ``<prefix>*_loss`` columns per epoch (``train/`` or ``val/``), indexed by epoch."""
    cols = [c for c in curves if c.startswith(prefix) and c.endswith("_loss")]
    if not cols:
        raise DataError(f"no '{prefix}*_loss' columns in the learning curves")
    return curves.set_index("epoch")[cols].sum(axis=1, min_count=len(cols)).rename(f"{prefix}loss")


def curve_health(curves: pd.DataFrame, ap_column: str = "coco/AP50") -> dict[str, float]:
    """The numbers that tell a healthy run from a broken one, from a run's learning curves.

    ``train_loss_ratio`` and ``val_loss_ratio``: last epoch's total loss over the first one's
    (below 1: falling); ``ap_first``, ``ap_best``, ``ap_last``: the validation AP column at the
    first and last epoch where it was measured and its best value; ``finite``: 1.0 when every
    loss is finite (a NaN loss is the mark of a diverged run), else 0.0.
    """
    train, val = total_loss(curves, "train/"), total_loss(curves, "val/")
    ap = curves[ap_column].dropna() if ap_column in curves else pd.Series(dtype=float)
    losses = pd.concat([train, val])

    def ratio(s: pd.Series) -> float:
        s = s.dropna()
        return float(s.iloc[-1] / s.iloc[0]) if len(s) >= 2 and s.iloc[0] != 0 else float("nan")

    return {"train_loss_ratio": ratio(train), "val_loss_ratio": ratio(val),
            "ap_first": float(ap.iloc[0]) if len(ap) else float("nan"),
            "ap_best": float(ap.max()) if len(ap) else float("nan"),
            "ap_last": float(ap.iloc[-1]) if len(ap) else float("nan"),
            "finite": float(bool(np.isfinite(losses.to_numpy(dtype=np.float64)).all()))}


def compare_runs(curves: Mapping[str, pd.DataFrame], ap_column: str = "coco/AP50", *, log_loss: bool = True,
                 path: str | Path | None = None) -> Figure:
    """Three panels, one line per run: total train loss, total val loss and the validation AP
    column, per epoch. The quickest way to see which of several runs is broken.

    ``log_loss`` draws the loss axes on a log scale (when every loss is positive), so that a run
    whose loss explodes does not flatten the others into one line."""
    fig = Figure(figsize=(12, 3.4), dpi=100)
    FigureCanvasAgg(fig)
    axes = fig.subplots(1, 3)
    for name, df in curves.items():
        for ax, series in ((axes[0], total_loss(df, "train/")), (axes[1], total_loss(df, "val/"))):
            ax.plot(series.index, series.to_numpy(dtype=np.float64), marker="o", ms=3, label=name)
        if ap_column in df:
            ap = df.set_index("epoch")[ap_column].dropna()
            axes[2].plot(ap.index, ap.to_numpy(dtype=np.float64), marker="o", ms=3, label=name)
    for ax in axes[:2]:
        values = np.concatenate([line.get_ydata() for line in ax.get_lines()] or [np.zeros(0)])
        if log_loss and values.size and np.nanmin(values) > 0:
            ax.set_yscale("log")
    for ax, title in zip(axes, ("train loss (box + cls + dfl)", "val loss (box + cls + dfl)", f"val {ap_column}")):
        ax.set_title(title)
        ax.set_xlabel("epoch")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    fig.tight_layout()
    if path is not None:
        fig.savefig(path)
    return fig
