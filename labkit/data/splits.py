"""Train/val/test splits, leakage checks and trivial-baseline sanity checks.

* :func:`group_split` keeps every group (scene, camera burst, sequence) inside one split;
  :func:`naive_split` splits image by image and is here to *demonstrate* leakage: the
  near-duplicate shots of a burst land on both sides of the split.
* :func:`dhash` / :func:`phash` are 64-bit perceptual hashes; :func:`near_duplicates` compares
  every image of one split with every image of the others by Hamming distance (vectorised).
* :func:`group_overlaps` finds group values (same ``scene_id``, camera burst, ``sequence``)
  present in two splits.
* :func:`majority_class_baseline` and :func:`mean_box_baseline` score predictors that never
  look at the pixels; when one of them does well, the benchmark rewards a shortcut.
* :func:`leakage_report` runs all of it on a generated dataset folder (``check_splits`` on
  in-memory splits) and returns a :class:`LeakageReport`.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from itertools import combinations
from pathlib import Path
from typing import Any, Callable, Hashable, Iterable, Mapping, NamedTuple, Sequence

import cv2
import numpy as np
from pycocotools import mask as mask_utils
from tqdm import tqdm

from labkit.data.annotations import Dataset, ImageRecord
from labkit.data.coco import load_coco
from labkit.data.images import load_image
from labkit.errors import DataError

SPLIT_NAMES = ("train", "val", "test")
DEFAULT_FRACTIONS = (0.7, 0.15, 0.15)
#: Largest Hamming distance (of 64 bits, under every hash used) at which two images count as
#: near-duplicates. Shots of one burst (jitter, noise, JPEG) differ by a few bits; unrelated
#: images by about 32, the mean for independent bits.
DEFAULT_MAX_DISTANCE = 10
#: A trivial baseline scoring at least this much is flagged as a possible shortcut.
DEFAULT_BASELINE_LIMITS = {"majority_class_accuracy": 0.8, "mean_box_hit_rate": 0.5}


# --------------------------------------------------------------------------- splitting
def _check_fractions(fractions: Sequence[float], names: Sequence[str]) -> np.ndarray:
    frac = np.asarray(fractions, dtype=np.float64)
    if frac.shape != (len(names),):
        raise ValueError(f"{len(names)} split names {tuple(names)} need as many fractions, got {tuple(fractions)}")
    if (frac < 0).any() or not np.isclose(frac.sum(), 1.0):
        raise ValueError(f"fractions must be >= 0 and sum to 1, got {tuple(fractions)}")
    return frac


def group_split(keys: Sequence[Hashable], groups: Sequence[Hashable], fractions: Sequence[float] = DEFAULT_FRACTIONS,
                seed: int = 0, names: Sequence[str] = SPLIT_NAMES) -> dict[str, list]:
    """Assign whole groups to splits so that no group is in two splits.

    The groups are shuffled with ``seed``, then each goes to the split that is least full
    relative to its target (``fraction * number of keys``; ties go to the larger fraction),
    so split sizes follow ``fractions`` as closely as whole groups allow and every split with a
    non-zero fraction gets a group while there are enough. Deterministic for a given input
    order and seed.

    Returns ``{split name: [keys in input order]}``.
    """
    keys, groups = list(keys), list(groups)
    if len(keys) != len(groups):
        raise DataError(f"{len(keys)} keys but {len(groups)} group labels")
    frac = _check_fractions(fractions, names)
    members: dict[Hashable, list[int]] = {}
    for i, g in enumerate(groups):
        members.setdefault(g, []).append(i)
    order = list(members)
    rng = np.random.default_rng(seed)
    target = frac * len(keys)
    filled = np.zeros(len(names))
    assignment = np.empty(len(keys), dtype=np.int64)
    active = np.flatnonzero(frac > 0)
    for gi in rng.permutation(len(order)):
        idx = members[order[gi]]
        ratio = filled[active] / target[active]
        best = active[np.lexsort((-frac[active], ratio))[0]]
        assignment[idx] = best
        filled[best] += len(idx)
    return {name: [keys[i] for i in np.flatnonzero(assignment == s)] for s, name in enumerate(names)}


def naive_split(keys: Sequence[Hashable], fractions: Sequence[float] = DEFAULT_FRACTIONS, seed: int = 0,
                names: Sequence[str] = SPLIT_NAMES) -> dict[str, list]:
    """Image-level random split (every key its own group). Leaks when images come in bursts."""
    keys = list(keys)
    return group_split(keys, range(len(keys)), fractions, seed, names)


def record_groups(dataset: Dataset, by: str | Callable[[Any], Hashable]) -> list[Hashable]:
    """The group of every image record: ``record.extra[by]`` or ``by(record)``.

    Raises :class:`DataError` naming the record when an image lacks the field.
    """
    if callable(by):
        return [by(r) for r in dataset.images]
    out = []
    for r in dataset.images:
        if by not in r.extra:
            raise DataError(f"image has no '{by}' field to group by", source=dataset.source, record=r.id)
        out.append(r.extra[by])
    return out


def split_dataset(dataset: Dataset, by: str | Callable[[Any], Hashable] | None = "scene_id",
                  fractions: Sequence[float] = DEFAULT_FRACTIONS, seed: int = 0,
                  names: Sequence[str] = SPLIT_NAMES) -> dict[str, Dataset]:
    """Split a dataset by group (``by``: an image field such as ``"scene_id"``, or a function of
    the record) or, with ``by=None``, image by image (the leaky way). Records keep their
    dataset order; image ids need not be unique (e.g. several COCO files concatenated)."""
    index = range(len(dataset.images))
    if by is None:
        parts = naive_split(index, fractions, seed, names)
    else:
        parts = group_split(index, record_groups(dataset, by), fractions, seed, names)
    return {name: Dataset(dataset.categories, [dataset.images[i] for i in part], dict(dataset.info), dataset.licenses,
                          dataset.root, dataset.source) for name, part in parts.items()}


# --------------------------------------------------------------------------- perceptual hashes
def _gray(image: np.ndarray) -> np.ndarray:
    img = np.asarray(image)
    if img.ndim == 3:
        img = cv2.cvtColor(img[..., :3].astype(np.float32), cv2.COLOR_RGB2GRAY)
    if img.ndim != 2:
        raise DataError(f"expected an HxW or HxWxC image, got shape {np.asarray(image).shape}")
    return img.astype(np.float32)


def _pack(bits: np.ndarray) -> int:
    return int.from_bytes(np.packbits(bits.reshape(-1).astype(np.uint8)).tobytes(), "big")


def dhash(image: np.ndarray) -> int:
    """64-bit difference hash: shrink to 9x8 grey pixels and keep whether each pixel is brighter
    than its left neighbour (N. Krawetz, "Kind of like that", hackerfactor.com, 2013).
    Insensitive to brightness/contrast changes, noise and small shifts."""
    small = cv2.resize(_gray(image), (9, 8), interpolation=cv2.INTER_AREA)
    return _pack(small[:, 1:] > small[:, :-1])


def phash(image: np.ndarray) -> int:
    """64-bit DCT hash: the 8x8 lowest frequencies of the 2-D DCT of a 32x32 grey thumbnail,
    each compared with their median (the DC term excluded from the median)
    (N. Krawetz, "Looks like it", hackerfactor.com, 2011; C. Zauner, pHash, 2010)."""
    small = cv2.resize(_gray(image), (32, 32), interpolation=cv2.INTER_AREA)
    low = cv2.dct(small)[:8, :8]
    return _pack(low > np.median(low.reshape(-1)[1:]))


HASHES: dict[str, Callable[[np.ndarray], int]] = {"dhash": dhash, "phash": phash}
_POPCOUNT16 = np.array([bin(i).count("1") for i in range(1 << 16)], dtype=np.uint8)


def hamming_distances(a: Sequence[int] | np.ndarray, b: Sequence[int] | np.ndarray) -> np.ndarray:
    """``(len(a), len(b))`` Hamming distances between two arrays of 64-bit hashes."""
    a = np.asarray(a, dtype=np.uint64).reshape(-1)
    b = np.asarray(b, dtype=np.uint64).reshape(-1)
    xor = a[:, None] ^ b[None, :]
    return _POPCOUNT16[xor.view(np.uint16).reshape(len(a), len(b), 4)].sum(axis=-1, dtype=np.int64)


def image_hashes(paths: Sequence[str | Path], methods: Sequence[str] = ("dhash", "phash"), *,
                 desc: str = "hashing") -> np.ndarray:
    """``(len(paths), len(methods))`` uint64 hashes of image files (read with ``load_image``)."""
    unknown = [m for m in methods if m not in HASHES]
    if unknown:
        raise ValueError(f"unknown hash method(s) {unknown}; choose from {sorted(HASHES)}")
    out = np.zeros((len(paths), len(methods)), dtype=np.uint64)
    for i, path in enumerate(tqdm(paths, desc=desc, unit="img", disable=None)):
        img = load_image(path)
        out[i] = [HASHES[m](img) for m in methods]
    return out


class DuplicatePair(NamedTuple):
    """Two images in different splits whose hashes differ by at most ``max_distance`` bits."""

    split_a: str
    file_a: str
    split_b: str
    file_b: str
    distance: int


def near_duplicates(paths_by_split: Mapping[str, Sequence[str | Path]], max_distance: int = DEFAULT_MAX_DISTANCE,
                    methods: Sequence[str] = ("dhash", "phash"), *, block: int = 1024) -> list[DuplicatePair]:
    """Pairs of images from *different* splits that look alike.

    A pair's distance is the largest Hamming distance over ``methods`` (both hashes must agree
    that the images are alike, which keeps false alarms rare); pairs with distance
    ``<= max_distance`` are returned, closest first. Files are reported as given.
    """
    hashes = {s: image_hashes(list(p), methods, desc=f"hashing {s}") for s, p in paths_by_split.items()}
    pairs: list[DuplicatePair] = []
    for sa, sb in combinations(list(paths_by_split), 2):
        ha, hb = hashes[sa], hashes[sb]
        for start in range(0, len(ha), block):
            dist = np.zeros((min(block, len(ha) - start), len(hb)), dtype=np.int64)
            for m in range(len(methods)):
                dist = np.maximum(dist, hamming_distances(ha[start:start + block, m], hb[:, m]))
            for i, j in np.argwhere(dist <= max_distance):
                pairs.append(DuplicatePair(sa, str(paths_by_split[sa][start + i]), sb, str(paths_by_split[sb][j]),
                                           int(dist[i, j])))
    return sorted(pairs, key=lambda p: (p.distance, p.split_a, p.file_a, p.split_b, p.file_b))


# --------------------------------------------------------------------------- group overlap
@dataclass
class GroupOverlap:
    """A group value (e.g. one ``scene_id``) found in more than one split, with image counts."""

    field: str
    value: str
    counts: dict[str, int]


def group_overlaps(groups_by_split: Mapping[str, Iterable[Hashable]], field_name: str) -> list[GroupOverlap]:
    """Group values present in two or more splits (``None`` values are ignored)."""
    counts: dict[Hashable, dict[str, int]] = {}
    for split, values in groups_by_split.items():
        for v in values:
            if v is not None:
                per = counts.setdefault(v, {})
                per[split] = per.get(split, 0) + 1
    return [GroupOverlap(field_name, str(v), per) for v, per in sorted(counts.items(), key=lambda kv: str(kv[0]))
            if len(per) > 1]


def _burst_key(extra: Mapping[str, Any]) -> str | None:
    if extra.get("burst_id") is None:
        return None
    return "/".join(str(extra.get(k)) for k in ("scene_id", "camera_id", "burst_id"))


#: Group keys checked for overlap: name -> function of ``ImageRecord.extra`` (``None`` = no group).
GROUP_KEYS: dict[str, Callable[[Mapping[str, Any]], Hashable | None]] = {
    "scene_id": lambda e: e.get("scene_id"),
    "burst (scene_id/camera_id/burst_id)": _burst_key,
    "sequence": lambda e: e.get("sequence"),
}


# --------------------------------------------------------------------------- trivial baselines
@dataclass
class BaselineResult:
    """Score of a pixel-blind predictor on one evaluation split; ``suspicious`` when it reaches
    ``limit``."""

    name: str
    split: str
    score: float
    limit: float
    detail: str

    @property
    def suspicious(self) -> bool:
        return self.score >= self.limit


def _labelled_objects(ds: Dataset) -> Iterable[tuple[ImageRecord, np.ndarray]]:
    """(record, non-crowd object indices) per image."""
    for r in ds.images:
        crowd = r.detections.get("iscrowd")
        keep = np.ones(len(r.detections), bool) if crowd is None else np.array([c != 1 for c in crowd], bool)
        yield r, np.flatnonzero(keep)


def _object_classes(ds: Dataset) -> np.ndarray:
    """Class ids of every non-crowd object of a dataset."""
    return np.concatenate([np.zeros(0, np.int64)] + [r.detections.class_id[k] for r, k in _labelled_objects(ds)])


def _majority_class(train: Dataset) -> int:
    classes = _object_classes(train)
    if classes.size == 0:
        raise DataError("the training split has no (non-crowd) objects", source=train.source)
    values, counts = np.unique(classes, return_counts=True)
    return int(values[np.argmax(counts)])


def majority_class_baseline(train: Dataset, evaluation: Dataset, split: str = "val",
                            limit: float = DEFAULT_BASELINE_LIMITS["majority_class_accuracy"]) -> BaselineResult:
    """Accuracy of labelling every evaluation object (crowd regions excluded) with the most
    frequent training class: the score of a classifier that learnt only the class prior."""
    major = _majority_class(train)
    classes = _object_classes(evaluation)
    acc = float(np.mean(classes == major)) if classes.size else 0.0
    name = evaluation.category_names.get(major, str(major))
    return BaselineResult("majority_class_accuracy", split, acc, limit,
                          f"always '{name}' (id {major}); {classes.size} objects")


def mean_box_baseline(train: Dataset, evaluation: Dataset, split: str = "val", iou_threshold: float = 0.5,
                      limit: float = DEFAULT_BASELINE_LIMITS["mean_box_hit_rate"]) -> BaselineResult:
    """Hit rate of a detector that outputs one fixed box per image.

    The box is the mean of the training boxes of the majority class, in coordinates normalised
    by image size (so it scales to every image). An evaluation image is a hit when that box has
    IoU >= ``iou_threshold`` (pycocotools' box IoU, as COCO evaluation uses) with a ground-truth
    box of that class; the score is hits / evaluation images. Images without the class are
    misses. High values mean objects sit at a fixed place and size.
    """
    major = _majority_class(train)
    norm = [r.detections.xywh[k][r.detections.class_id[k] == major] / [r.width, r.height, r.width, r.height]
            for r, k in _labelled_objects(train)]
    prior = np.concatenate(norm).mean(axis=0)
    hits = 0
    for r, k in _labelled_objects(evaluation):
        gt = r.detections.xywh[k][r.detections.class_id[k] == major]
        if len(gt):
            box = (prior * [r.width, r.height, r.width, r.height]).reshape(1, 4)
            hits += bool((mask_utils.iou(box, gt, np.zeros(len(gt), np.uint8)) >= iou_threshold).any())
    n = len(evaluation.images)
    rate = hits / n if n else 0.0
    return BaselineResult("mean_box_hit_rate", split, rate, limit,
                          f"box {np.round(prior, 3).tolist()} (normalised xywh), IoU >= {iou_threshold}; "
                          f"{hits}/{n} images")


# --------------------------------------------------------------------------- report
@dataclass
class LeakageReport:
    """What :func:`check_splits` found. ``leaks``: near-duplicates or groups across splits;
    ``suspicious``: trivial baselines that score too well; ``ok``: neither."""

    source: str
    pairs: list[DuplicatePair] = field(default_factory=list)
    group_overlaps: list[GroupOverlap] = field(default_factory=list)
    baselines: list[BaselineResult] = field(default_factory=list)
    settings: dict[str, Any] = field(default_factory=dict)

    @property
    def leaks(self) -> bool:
        return bool(self.pairs or self.group_overlaps)

    @property
    def suspicious(self) -> list[BaselineResult]:
        return [b for b in self.baselines if b.suspicious]

    @property
    def ok(self) -> bool:
        return not self.leaks and not self.suspicious

    def to_dict(self) -> dict[str, Any]:
        return {
            "source": self.source, "ok": self.ok, "leaks": self.leaks, "settings": self.settings,
            "pairs": [p._asdict() for p in self.pairs],
            "group_overlaps": [asdict(g) for g in self.group_overlaps],
            "baselines": [{**asdict(b), "suspicious": b.suspicious} for b in self.baselines],
        }

    def to_markdown(self, max_rows: int = 20) -> str:
        verdict = "no leakage found" if not self.leaks else (
            f"LEAKAGE: {len(self.pairs)} near-duplicate pair(s), {len(self.group_overlaps)} group(s) in several splits")
        st = self.settings
        lines = [f"# Leakage report: {self.source}", "", f"**{verdict}**; {len(self.suspicious)} suspicious baseline(s).", "",
                 f"Near-duplicates: Hamming distance <= {st.get('max_distance')} bits under {' and '.join(st.get('hashes', []))}; "
                 f"images per split: {st.get('images')}.", ""]
        if self.group_overlaps:
            lines += ["## Groups in more than one split", "", "| field | value | images per split |", "| --- | --- | --- |"]
            lines += [f"| {g.field} | {g.value} | {g.counts} |" for g in self.group_overlaps[:max_rows]]
            lines += _more(len(self.group_overlaps), max_rows)
        if self.pairs:
            lines += ["## Near-duplicate pairs across splits", "", "| split | file | split | file | distance |",
                      "| --- | --- | --- | --- | ---: |"]
            lines += [f"| {p.split_a} | {p.file_a} | {p.split_b} | {p.file_b} | {p.distance} |" for p in self.pairs[:max_rows]]
            lines += _more(len(self.pairs), max_rows)
        if self.baselines:
            lines += ["## Trivial baselines", "", "| baseline | split | score | flag at | flagged | detail |",
                      "| --- | --- | ---: | ---: | --- | --- |"]
            lines += [f"| {b.name} | {b.split} | {b.score:.3f} | {b.limit:.2f} | {'YES' if b.suspicious else 'no'} | {b.detail} |"
                      for b in self.baselines]
        return "\n".join(lines) + "\n"


def _more(total: int, shown: int) -> list[str]:
    return ["", f"... and {total - shown} more (see --json)", ""] if total > shown else [""]


def check_splits(splits: Mapping[str, Dataset], *, sequences: Mapping[str, Dataset] | None = None,
                 max_distance: int = DEFAULT_MAX_DISTANCE, methods: Sequence[str] = ("dhash", "phash"),
                 baseline_limits: Mapping[str, float] | None = None, source: str = "<memory>",
                 relative_to: str | Path | None = None) -> LeakageReport:
    """Leakage checks on in-memory splits of still images (plus optional video-frame splits).

    Runs :func:`group_overlaps` for every key of :data:`GROUP_KEYS` (separately for stills and
    sequences), :func:`near_duplicates` over all images of all splits, and, when a ``"train"``
    split exists, both trivial baselines on every other still-image split. File names in the
    report are relative to ``relative_to`` when given.
    """
    limits = {**DEFAULT_BASELINE_LIMITS, **dict(baseline_limits or {})}
    collections = {"stills": dict(splits), "sequences": dict(sequences or {})}
    overlaps: list[GroupOverlap] = []
    for kind, parts in collections.items():
        for key, fn in GROUP_KEYS.items():
            found = group_overlaps({s: [fn(r.extra) for r in ds.images] for s, ds in parts.items()}, key)
            overlaps += [GroupOverlap(f"{kind}: {g.field}", g.value, g.counts) for g in found]
    paths: dict[str, list[Path]] = {}
    for parts in collections.values():
        for s, ds in parts.items():
            paths.setdefault(s, []).extend(ds.image_path(r) for r in ds.images)
    pairs = near_duplicates(paths, max_distance, methods)
    if relative_to is not None:
        base = Path(relative_to)
        pairs = [p._replace(file_a=Path(p.file_a).relative_to(base).as_posix(),
                            file_b=Path(p.file_b).relative_to(base).as_posix()) for p in pairs]
    baselines: list[BaselineResult] = []
    if "train" in splits:
        for s, ds in splits.items():
            if s != "train" and len(ds.images):
                baselines.append(majority_class_baseline(splits["train"], ds, s, limits["majority_class_accuracy"]))
                baselines.append(mean_box_baseline(splits["train"], ds, s, limit=limits["mean_box_hit_rate"]))
    settings = {"max_distance": max_distance, "hashes": list(methods), "baseline_limits": limits,
                "images": {s: len(p) for s, p in paths.items()}}
    return LeakageReport(source, pairs, overlaps, baselines, settings)


def split_files(folder: str | Path, prefix: str) -> dict[str, Path]:
    """``{split: path}`` of the ``<prefix><split>.json`` files in ``folder``, train/val/test first."""
    found = {p.stem[len(prefix):]: p for p in Path(folder).glob(f"{prefix}*.json")}
    order = {name: i for i, name in enumerate(SPLIT_NAMES)}
    return dict(sorted(found.items(), key=lambda kv: (order.get(kv[0], len(order)), kv[0])))


def leakage_report(dataset_dir: str | Path, *, max_distance: int = DEFAULT_MAX_DISTANCE,
                   methods: Sequence[str] = ("dhash", "phash"), include_sequences: bool = True,
                   baseline_limits: Mapping[str, float] | None = None) -> LeakageReport:
    """:func:`check_splits` on a dataset folder laid out like the embedded dataset:
    ``annotations/instances_<split>.json`` (images under ``images/``) and, when
    ``include_sequences``, ``annotations/sequences_<split>.json`` (frames under ``sequences/``)."""
    root = Path(dataset_dir)
    ann = root / "annotations"
    stills = {s: load_coco(p, root / "images") for s, p in split_files(ann, "instances_").items()}
    if not stills:
        raise DataError("no annotations/instances_<split>.json files found", source=str(root))
    seqs = {}
    if include_sequences:
        seqs = {s: load_coco(p, root / "sequences") for s, p in split_files(ann, "sequences_").items()}
    return check_splits(stills, sequences=seqs, max_distance=max_distance, methods=methods,
                        baseline_limits=baseline_limits, source=str(root), relative_to=root)
