"""The corruption suite: a model's metric at every corruption kind and severity, sliced by the
generator's labels, and its corruption errors relative to a reference model.

**Corruption error** (D. Hendrycks and T. Dietterich, "Benchmarking Neural Network Robustness to
Common Corruptions and Perturbations", ICLR 2019, section 3): with the error ``E = 1 - metric``
(metric = COCO AP for a detector, mIoU for a segmenter) of model ``f`` on kind ``c`` at severity
``s``,

    CE_c = sum_s E_{s,c}(f) / sum_s E_{s,c}(ref),      mCE = mean_c CE_c

and the *relative* corruption error, which discounts the clean error ``E_clean``,

    relCE_c = sum_s (E_{s,c}(f) - E_clean(f)) / sum_s (E_{s,c}(ref) - E_clean(ref)).

A CE below 1 means ``f`` loses less than the reference under that corruption.

**Images**: stills are independent shots, so each image draws its own corruption parameters
(seeded by the suite seed and the image id); ``h264`` encodes the chosen images, in id order, as
one sequence (bursts of near-identical shots are what a video codec exploits).

**Slices** (from the generator's own labels, see the dataset card): *lighting* (the image carries
the generator's ``low_light`` artifact or not), *motion* (``motion_blur`` artifact or not),
*occlusion* of each object (``visibility`` = visible / whole-object pixels: none >= 0.9 > partial
>= 0.5 > heavy) and, for the detector, COCO's own *size* ranges (APs / APm / APl). Image slices
score the subset of images; an object slice scores every image with the objects outside the
slice marked ``iscrowd`` (COCOeval then ignores them and the detections that fall on them, as
it does for objects outside an area range).
"""

from __future__ import annotations

import time
from dataclasses import replace
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

import numpy as np

from labkit.data.annotations import Dataset
from labkit.errors import DataError
from labkit.robust.corruptions import DRAWN, KINDS, SEVERITIES, SEVERITY_LEVELS, check_kind, check_severity, make_corruption
from labkit.robust.models import SuiteModel

#: Object visibility buckets: name -> [low, high).
OCCLUSION_BUCKETS = {"none": (0.9, 1.01), "partial": (0.5, 0.9), "heavy": (0.0, 0.5)}
#: ``max_images`` that means "the model's own default subset size" (``SuiteDetector.default_images``,
#: ``SuiteSegmenter.default_images``: what keeps the default suite of one model near 90 s on a CPU).
AUTO = "auto"


def choose_images(dataset: Dataset, max_images: int | None, seed: int) -> Dataset:
    """The dataset, or a seeded random subset of ``max_images`` images (kept in id order).
    An empty dataset is a :class:`DataError` naming its file."""
    if not dataset.images:
        raise DataError("the split has no images to score", source=dataset.source)
    if max_images is None or max_images >= len(dataset):
        return dataset
    if max_images < 1:
        raise DataError(f"max_images must be >= 1, got {max_images}")
    rng = np.random.default_rng(np.random.SeedSequence([int(seed), 1]))
    return dataset.subset(rng.choice([r.id for r in dataset.images], size=max_images, replace=False).tolist())


def _image_seed(seed: int, image_id: int) -> int:
    return int(np.random.SeedSequence([int(seed), int(image_id)]).generate_state(1)[0])


def corrupt_split(images: Mapping[int, np.ndarray], kind: str, severity: int, seed: int) -> dict[int, np.ndarray]:
    """Corrupted copies of ``{image_id: image}``: one parameter draw per image, except ``h264``
    (the images in id order as one sequence)."""
    ids = sorted(images)
    if kind == "h264":
        return dict(zip(ids, make_corruption(kind, severity, seed).apply_frames([images[i] for i in ids])))
    return {i: make_corruption(kind, severity, _image_seed(seed, i)).apply(images[i]) for i in ids}


def _artifacts(rec: Any) -> dict:
    value = rec.extra.get("artifacts")
    return value if isinstance(value, dict) else {}


def image_slices(dataset: Dataset) -> dict[str, dict[str, list[int]]]:
    """Image ids per bucket of the image-level slices (lighting, motion)."""
    lighting: dict[str, list[int]] = {"low_light": [], "normal": []}
    motion: dict[str, list[int]] = {"motion_blur": [], "sharp": []}
    for rec in dataset.images:
        art = _artifacts(rec)
        lighting["low_light" if "low_light" in art else "normal"].append(rec.id)
        motion["motion_blur" if "motion_blur" in art else "sharp"].append(rec.id)
    return {"lighting": lighting, "motion": motion}


def occlusion_views(dataset: Dataset) -> dict[str, tuple[Dataset, int]]:
    """Per occlusion bucket: the dataset with every object outside the bucket marked ``iscrowd``
    (ignored by COCOeval), and how many objects the bucket holds. Objects without a
    ``visibility`` field count as fully visible."""
    views = {}
    for name, (low, high) in OCCLUSION_BUCKETS.items():
        images, count = [], 0
        for rec in dataset.images:
            det = rec.detections
            vis = np.asarray(det.get("visibility", np.ones(len(det))), dtype=object)
            vis = np.array([1.0 if v is None else float(v) for v in vis], dtype=np.float64)
            crowd = np.asarray(det.get("iscrowd", np.zeros(len(det))), dtype=object)
            crowd = np.array([0 if c is None else int(c) for c in crowd], dtype=np.int64)
            inside = (vis >= low) & (vis < high) & (crowd == 0)
            count += int(inside.sum())
            images.append(replace(rec, detections=det.with_fields(iscrowd=np.where(inside, crowd, 1))))
        views[name] = (Dataset(dataset.categories, images, dict(dataset.info), dataset.licenses, dataset.root,
                               dataset.source), count)
    return views


def score_slices(model: SuiteModel, dataset: Dataset, predictions: Mapping[int, Any], data_root: Path,
                 views: Mapping[str, tuple[Dataset, int]], buckets: Mapping[str, Mapping[str, list[int]]],
                 overall: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Rows ``{slice, bucket, count, <primary metric>}`` for one condition."""
    metric = model.primary
    rows = []
    for slice_name, groups in buckets.items():
        for bucket, ids in groups.items():
            value = model.score(dataset.subset(ids), predictions, data_root)[metric] if ids else None
            rows.append({"slice": slice_name, "bucket": bucket, "unit": "images", "count": len(ids), metric: value})
    if model.task == "detect":
        for bucket, (view, count) in views.items():
            value = model.score(view, predictions, data_root)[metric] if count else None
            rows.append({"slice": "occlusion", "bucket": bucket, "unit": "objects", "count": count, metric: value})
        for bucket, key in (("small", "APs"), ("medium", "APm"), ("large", "APl")):
            rows.append({"slice": "size", "bucket": bucket, "unit": "COCO area range", "count": None,
                         metric: overall.get(key)})
    return rows


def _row(kind: str, severity: int, scores: Mapping[str, Any], model: SuiteModel) -> dict[str, Any]:
    value = scores.get(model.primary)
    return {"kind": kind, "severity": severity, **{m: scores.get(m) for m in model.metrics},
            "error": None if value is None else 1.0 - float(value)}


def run_suite(model: SuiteModel, dataset: Dataset, data_root: str | Path, *, kinds: Sequence[str] = KINDS,
              severities: Sequence[int] = SEVERITY_LEVELS, seed: int = 0, max_images: int | str | None = AUTO,
              with_slices: bool = True) -> dict[str, Any]:
    """Score ``model`` on the clean images and on every (kind, severity) corruption of them
    (no ``kinds``: the clean pass alone), on a seeded subset of ``max_images`` images (``None``:
    all; :data:`AUTO`: the model's ``default_images``).

    Returns a JSON-ready dict: ``model``, ``task``, ``primary`` metric, ``images`` (ids scored),
    ``seed``, ``rows`` (one per condition, the clean one first with kind ``"clean"`` and severity
    0: the metrics and ``error`` = 1 - primary), ``slices`` (one per slice bucket, for the clean
    images and for each kind at the highest severity run: where a slice's weakness shows most),
    ``corruptions`` (per kind: the fixed parameters of each severity and the ranges drawn per
    image) and ``seconds`` (corrupting, predicting, scoring).
    """
    kinds = [check_kind(k) for k in dict.fromkeys(kinds)]
    severities = sorted({check_severity(s) for s in severities})
    if kinds and not severities:
        raise DataError("the suite needs at least one severity (or no kinds: the clean pass alone)")
    data_root = Path(data_root)
    chosen = choose_images(dataset, model.default_images if max_images == AUTO else max_images, seed)
    from labkit.data.sources import iter_frames

    clean = dict(iter_frames(chosen))
    buckets = image_slices(chosen) if with_slices else {}
    views = occlusion_views(chosen) if with_slices and model.task == "detect" else {}
    seconds = {"corrupt": 0.0, "predict": 0.0, "score": 0.0}
    rows, slices = [], []
    for kind, severity in [("clean", 0)] + [(k, s) for k in kinds for s in severities]:
        start = time.perf_counter()
        images = clean if kind == "clean" else corrupt_split(clean, kind, severity, seed)
        mid = time.perf_counter()
        predictions = model.predict(images)
        end = time.perf_counter()
        scores = model.score(chosen, predictions, data_root)
        rows.append(_row(kind, severity, scores, model))
        if with_slices and severity in (0, severities[-1] if severities else 0):
            slices += [{"kind": kind, "severity": severity, **r}
                       for r in score_slices(model, chosen, predictions, data_root, views, buckets, scores)]
        seconds["corrupt"] += mid - start
        seconds["predict"] += end - mid
        seconds["score"] += time.perf_counter() - end
    return {"model": model.name, "task": model.task, "primary": model.primary, "metrics": list(model.metrics),
            "split_source": dataset.source, "images": [r.id for r in chosen.images], "seed": int(seed),
            "kinds": kinds, "severities": severities, "rows": rows, "slices": slices,
            "corruptions": {k: {"severities": [dict(p) for p in SEVERITIES[k]], "drawn_per_image": DRAWN.get(k, {})}
                            for k in kinds},
            "seconds": {k: round(v, 3) for k, v in seconds.items()}}


def _errors(rows: Iterable[Mapping[str, Any]]) -> dict[tuple[str, int], float | None]:
    return {(r["kind"], int(r["severity"])): r["error"] for r in rows}


def corruption_errors(rows: Sequence[Mapping[str, Any]], reference_rows: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """CE and relative CE per kind and their means (see the module docstring) of a model's suite
    rows against a reference model's rows (both from :func:`run_suite`, same primary metric).

    Every (kind, severity) of ``rows`` must be in ``reference_rows`` (else :class:`DataError`);
    a kind whose errors include an undefined metric, or whose reference denominator is 0, gets
    ``None`` and is left out of the means.
    """
    mine, ref = _errors(rows), _errors(reference_rows)
    missing = sorted(set(mine) - set(ref))
    if missing:
        raise DataError(f"the reference has no result for {missing[:5]}{' ...' if len(missing) > 5 else ''}")
    per_kind = {}
    for kind in dict.fromkeys(k for k, _ in mine if k != "clean"):
        keys = [key for key in mine if key[0] == kind]
        e_f, e_r = [mine[k] for k in keys], [ref[k] for k in keys]
        ce = rel = None
        if None not in e_f and None not in e_r:
            ce = sum(e_f) / sum(e_r) if sum(e_r) > 0 else None
            clean_f, clean_r = mine.get(("clean", 0)), ref.get(("clean", 0))
            if clean_f is not None and clean_r is not None:
                den = sum(e - clean_r for e in e_r)
                rel = sum(e - clean_f for e in e_f) / den if den > 0 else None
        per_kind[kind] = {"CE": ce, "relative_CE": rel, "severities": [s for _, s in keys]}
    ces = [v["CE"] for v in per_kind.values() if v["CE"] is not None]
    rels = [v["relative_CE"] for v in per_kind.values() if v["relative_CE"] is not None]
    return {"per_kind": per_kind, "mCE": float(np.mean(ces)) if ces else None,
            "relative_mCE": float(np.mean(rels)) if rels else None}
