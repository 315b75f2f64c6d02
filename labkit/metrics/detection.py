"""COCO detection and instance-segmentation metrics, computed by the reference evaluators.

Definition (COCO detection evaluation, https://cocodataset.org/#detection-eval; T.-Y. Lin et al.,
"Microsoft COCO: Common Objects in Context", ECCV 2014): per category, detections are sorted by
score and greedily matched to unmatched ground truth with IoU >= t (crowd regions absorb any
number of detections and count as neither TP nor FN); precision is made monotone and sampled at
101 recall points 0, 0.01, ..., 1; **AP** is the mean of these over the 10 IoU thresholds
t = .50:.05:.95 and over categories. AP50/AP75 fix t; APs/APm/APl keep only objects of area
< 32², 32²-96², > 96² pixels (detections outside the range that match nothing are ignored);
**AR@k** is the recall with at most k detections per image and category, averaged over t and
categories. The 12 numbers are those of ``COCOeval.summarize()``.

labkit never re-implements the matcher: :func:`evaluate_coco` checks and normalises the inputs
(:mod:`labkit.metrics.coco_inputs`) and hands them to faster-coco-eval (default, C++) or
pycocotools; both give the same numbers (tests assert equality to 1e-9).

Undefined values: pycocotools writes -1 where there is nothing to score (no non-crowd ground
truth in a category or a size range; e.g. APs when no object is small). labkit reports those as
``NaN`` in :attr:`CocoReport.stats` and :meth:`CocoReport.per_class` and as ``null`` in JSON, so
that they cannot be averaged by accident; ``raw_stats``, ``precision`` and ``recall`` keep the
library's arrays, -1 included. Empty predictions score AP = AR = 0 wherever ground truth exists.
"""

from __future__ import annotations

import contextlib
import io
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator, Mapping, Sequence

import numpy as np

from labkit.data.annotations import Dataset, Detections
from labkit.metrics.coco_inputs import GroundTruth, Predictions, prepare_ground_truth, prepare_results

#: Evaluator libraries: ``faster`` = faster-coco-eval (C++ port of COCOeval), ``pycocotools``.
BACKENDS = ("faster", "pycocotools")


def stat_names(max_dets: Sequence[int] = (1, 10, 100)) -> tuple[str, ...]:
    """Names of the 12 ``COCOeval.stats`` entries (AR names follow ``max_dets``)."""
    return ("AP", "AP50", "AP75", "APs", "APm", "APl", *(f"AR{m}" for m in max_dets), "ARs", "ARm", "ARl")


def _nan_if_undefined(value: float) -> float:
    return float("nan") if value == -1 else float(value)


def json_number(value: float) -> float | None:
    """NaN (undefined) -> ``None`` for JSON, which has no NaN."""
    return None if math.isnan(value) else value


@dataclass
class CocoReport:
    """The outcome of one COCO evaluation.

    Attributes:
        stats: the 12 summary numbers by name (``AP`` ... ``ARl``); NaN where undefined.
        raw_stats: ``COCOeval.stats[:12]`` as the library returned it (-1 where undefined).
        precision: ``eval['precision']``, shape ``(T, R, K, A, M)``: IoU thresholds x 101 recall
            points x categories x area ranges x max-detection settings; -1 where undefined.
        recall: ``eval['recall']``, shape ``(T, K, A, M)``.
        iou_thresholds, recall_thresholds: the ``T`` and ``R`` axes.
        category_ids, area_labels, max_dets: the ``K``, ``A`` and ``M`` axes.
        category_names: category id -> name.
        num_gt: non-crowd ground-truth objects per category id; num_predictions likewise.
    """

    stats: dict[str, float]
    raw_stats: np.ndarray
    precision: np.ndarray
    recall: np.ndarray
    iou_thresholds: np.ndarray
    recall_thresholds: np.ndarray
    category_ids: list[int]
    area_labels: list[str]
    max_dets: tuple[int, ...]
    category_names: dict[int, str]
    iou_type: str
    backend: str
    num_images: int
    num_gt: dict[int, int] = field(default_factory=dict)
    num_predictions: dict[int, int] = field(default_factory=dict)

    # ------------------------------------------------------------------ indexing
    def _iou_index(self, iou: float) -> int:
        hits = np.flatnonzero(np.isclose(self.iou_thresholds, iou))
        if not hits.size:
            raise ValueError(f"IoU {iou} is not one of the thresholds {np.round(self.iou_thresholds, 2).tolist()}")
        return int(hits[0])

    def _area_index(self, area: str) -> int:
        if area not in self.area_labels:
            raise ValueError(f"area must be one of {self.area_labels}, got {area!r}")
        return self.area_labels.index(area)

    # ------------------------------------------------------------------ per class
    def class_ap(self, category_id: int, iou: float | None = None, area: str = "all") -> float:
        """AP of one category (mean precision over recall points and, unless ``iou`` is given,
        IoU thresholds; largest max_dets), NaN when it has no ground truth."""
        k = self.category_ids.index(int(category_id))
        p = self.precision[:, :, k, self._area_index(area), -1]
        if iou is not None:
            p = p[self._iou_index(iou)]
        valid = p[p > -1]
        return float(valid.mean()) if valid.size else float("nan")

    def per_class(self) -> list[dict[str, Any]]:
        """One row per category: id, name, #GT, #predictions, AP, AP50, AP75 (NaN without GT).

        The mean of the defined per-class APs is :attr:`stats` ``['AP']``.
        """
        return [{"category_id": c, "name": self.category_names.get(c, str(c)),
                 "num_gt": self.num_gt.get(c, 0), "num_predictions": self.num_predictions.get(c, 0),
                 "AP": self.class_ap(c), "AP50": self.class_ap(c, 0.5), "AP75": self.class_ap(c, 0.75)}
                for c in self.category_ids]

    def pr_curve(self, categories: int | Sequence[int] | None = None, *, iou: float = 0.5,
                 area: str = "all") -> tuple[np.ndarray, np.ndarray]:
        """``(recall_points, precision)`` of one category id, or the mean curve over several
        (default: all) of those with ground truth; precision is NaN where undefined."""
        p = self.precision[self._iou_index(iou), :, :, self._area_index(area), -1]
        if categories is not None:
            ids = [categories] if isinstance(categories, (int, np.integer)) else list(categories)
            p = p[:, [self.category_ids.index(int(c)) for c in ids]]
        valid = (p > -1).all(axis=0)
        curve = p[:, valid].mean(axis=1) if valid.any() else np.full(p.shape[0], np.nan)
        return self.recall_thresholds.copy(), curve

    # ------------------------------------------------------------------ output
    def to_dict(self) -> dict[str, Any]:
        """JSON-ready summary (undefined values become ``None``)."""
        rows = [{k: (json_number(v) if isinstance(v, float) else v) for k, v in row.items()}
                for row in self.per_class()]
        return {"iou_type": self.iou_type, "backend": self.backend, "max_dets": list(self.max_dets),
                "num_images": self.num_images, "num_gt": int(sum(self.num_gt.values())),
                "num_predictions": int(sum(self.num_predictions.values())),
                "stats": {k: json_number(v) for k, v in self.stats.items()}, "per_class": rows}

    def to_markdown(self, digits: int = 3) -> str:
        """The 12 stats and the per-class table as Markdown (undefined values: ``n/a``)."""
        def fmt(v: Any) -> str:
            if isinstance(v, float):
                return "n/a" if math.isnan(v) else f"{v:.{digits}f}"
            return str(v)

        cols = ("category_id", "name", "num_gt", "num_predictions", "AP", "AP50", "AP75")
        lines = [f"COCO {self.iou_type} evaluation ({self.backend}): {self.num_images} images, "
                 f"{sum(self.num_gt.values())} objects, {sum(self.num_predictions.values())} predictions", "",
                 "| " + " | ".join(self.stats) + " |", "|" + "---|" * len(self.stats),
                 "| " + " | ".join(fmt(v) for v in self.stats.values()) + " |", "",
                 "| id | class | GT | pred | AP | AP50 | AP75 |", "|" + "---|" * len(cols)]
        lines += ["| " + " | ".join(fmt(row[k]) for k in cols) + " |" for row in self.per_class()]
        return "\n".join(lines)

    def plot_pr(self, target: Any = None, *, iou: float = 0.5, categories: Sequence[int] | None = None,
                area: str = "all", max_legend: int = 12) -> Any:
        """Precision-recall curves at ``iou``: one per category with ground truth, plus their mean.

        ``target`` is a matplotlib ``Axes`` to draw on, a file path to save to, or None (new
        figure). With more than ``max_legend`` categories the per-class curves are drawn grey
        and unlabelled. Returns the matplotlib ``Figure``.
        """
        from matplotlib.axes import Axes
        from matplotlib.figure import Figure

        fig = target.figure if isinstance(target, Axes) else Figure(figsize=(6, 4.5))
        ax = target if isinstance(target, Axes) else fig.add_subplot()
        curves = [(c, *self.pr_curve(c, iou=iou, area=area)) for c in (categories or self.category_ids)]
        curves = [(c, r, p) for c, r, p in curves if not np.isnan(p).all()]
        labelled = len(curves) <= max_legend
        tag = f"AP{round(iou * 100)}"
        for c, rec, prec in curves:
            style = {"label": f"{self.category_names.get(c, c)} ({tag} {prec.mean():.2f})"} if labelled else {"color": "0.7"}
            ax.plot(rec, prec, lw=1, **style)
        if curves:
            rec, prec = self.pr_curve([c for c, _, _ in curves], iou=iou, area=area)
            ax.plot(rec, prec, color="black", lw=2.5, label=f"mean of {len(curves)} classes ({tag} {prec.mean():.3f})")
            ax.legend(fontsize=7, loc="lower left")
        ax.set(xlabel="recall", ylabel="precision", xlim=(0, 1), ylim=(0, 1.02),
               title=f"COCO {self.iou_type} precision-recall (IoU {iou:.2f}, area {area})")
        ax.grid(alpha=0.3)
        if isinstance(target, (str, Path)):
            Path(target).parent.mkdir(parents=True, exist_ok=True)
            fig.savefig(target, dpi=120, bbox_inches="tight")
        return fig


# --------------------------------------------------------------------------- running the library
def _api(backend: str) -> tuple[type, type]:
    if backend == "faster":
        from faster_coco_eval import COCO, COCOeval_faster

        return COCO, COCOeval_faster
    if backend == "pycocotools":
        from pycocotools.coco import COCO
        from pycocotools.cocoeval import COCOeval

        return COCO, COCOeval
    raise ValueError(f"backend must be one of {BACKENDS}, got {backend!r}")


@contextlib.contextmanager
def quiet() -> Iterator[None]:
    """pycocotools prints progress to stdout; keep it off the course's output."""
    with contextlib.redirect_stdout(io.StringIO()):
        yield


def coco_objects(gt: GroundTruth, preds: Predictions, backend: str = "faster", *,
                 fresh: bool = True) -> tuple[Any, Any]:
    """The library's ``(cocoGt, cocoDt)`` objects, built from the checked inputs.

    The libraries write into the dicts they get: with ``fresh`` they get copies, without it
    ``gt`` and ``preds`` must not be evaluated again. An empty prediction list gives an empty
    result set (pycocotools' ``loadRes`` cannot read one).
    """
    coco_cls, _ = _api(backend)
    with quiet():
        coco_gt = coco_cls()
        coco_gt.dataset = gt.fresh_coco() if fresh else gt.coco
        coco_gt.createIndex()
        if preds.records:
            coco_dt = coco_gt.loadRes(preds.fresh_records() if fresh else preds.records)
        else:
            coco_dt = coco_cls()
            coco_dt.dataset = {"images": gt.coco["images"], "categories": gt.coco["categories"], "annotations": []}
            coco_dt.createIndex()
    return coco_gt, coco_dt


def _check_max_dets(max_dets: Sequence[int]) -> tuple[int, int, int]:
    md = tuple(int(m) for m in max_dets)
    if len(md) != 3 or any(m < 1 for m in md) or list(md) != sorted(set(md)):
        raise ValueError(f"max_dets must be 3 increasing positive integers (COCO: 1, 10, 100), got {max_dets!r}")
    return md  # type: ignore[return-value]


def _counts(ids: np.ndarray) -> dict[int, int]:
    values, counts = np.unique(ids, return_counts=True)
    return {int(v): int(c) for v, c in zip(values, counts)}


def evaluate_prepared(gt: GroundTruth, preds: Predictions, *, backend: str = "faster",
                      max_dets: Sequence[int] = (1, 10, 100), fresh: bool = True) -> CocoReport:
    """Run the reference evaluator on already checked inputs (see :func:`evaluate_coco`);
    ``fresh=False`` saves copying them when they are not evaluated again (see :func:`coco_objects`)."""
    md = _check_max_dets(max_dets)
    _, eval_cls = _api(backend)
    coco_gt, coco_dt = coco_objects(gt, preds, backend, fresh=fresh)
    with quiet():
        ev = eval_cls(coco_gt, coco_dt, gt.iou_type)
        ev.params.maxDets = list(md)
        ev.evaluate()
        ev.accumulate()
        ev.summarize()
    raw = np.asarray(ev.stats[:12], dtype=np.float64)
    p = ev.params
    return CocoReport(
        stats={name: _nan_if_undefined(v) for name, v in zip(stat_names(md), raw.tolist())},
        raw_stats=raw,
        precision=np.asarray(ev.eval["precision"], dtype=np.float64),
        recall=np.asarray(ev.eval["recall"], dtype=np.float64),
        iou_thresholds=np.asarray(p.iouThrs, dtype=np.float64),
        recall_thresholds=np.asarray(p.recThrs, dtype=np.float64),
        category_ids=[int(c) for c in p.catIds],
        area_labels=list(p.areaRngLbl),
        max_dets=md,
        category_names=gt.category_names,
        iou_type=gt.iou_type,
        backend=backend,
        num_images=len(gt.image_ids),
        num_gt=_counts(gt.ann_category[gt.ann_iscrowd == 0]),
        num_predictions=_counts(preds.category_id),
    )


def evaluate_coco(gt: Dataset | Mapping | str | Path,
                  predictions: Mapping[int, Detections] | Sequence[Mapping] | str | Path,
                  iou_type: str = "bbox", backend: str = "faster",
                  max_dets: Sequence[int] = (1, 10, 100)) -> CocoReport:
    """COCO AP/AR of ``predictions`` against ``gt``, by faster-coco-eval or pycocotools.

    Args:
        gt: a :class:`Dataset`, a parsed COCO dict, or the path of a COCO instances JSON.
        predictions: ``{image_id: Detections}`` (with scores), a COCO results list, or the path of
            a results JSON (https://cocodataset.org/#format-results).
        iou_type: ``"bbox"`` (box IoU) or ``"segm"`` (mask IoU; RLE or polygon masks).
        backend: ``"faster"`` (faster-coco-eval) or ``"pycocotools"``.
        max_dets: the three max-detections-per-image settings (AP uses the last).

    Raises :class:`~labkit.errors.DataError` naming file and record for any bad input, before the
    library runs (see :func:`~labkit.metrics.coco_inputs.prepare_ground_truth` and
    :func:`~labkit.metrics.coco_inputs.prepare_results` for the list of checks).
    """
    ground_truth = prepare_ground_truth(gt, iou_type=iou_type)
    return evaluate_prepared(ground_truth, prepare_results(predictions, ground_truth),
                             backend=backend, max_dets=max_dets, fresh=False)
