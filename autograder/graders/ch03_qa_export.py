"""Grading spec of the Chapter 3 lab (``source/ch03_qa_export``): mask PNG, overlay, summary, export, scores, quiz.

Every check runs in the grader's process: it makes its own arrays and picks its own val images
(``_SEED``, not in the student copy), calls the student's functions across the process boundary,
decodes the files they wrote (read without following links, size-capped) and compares them with
references computed here from the model's output (``NoisySegmenter``, deterministic). Part E's
scores are compared with :mod:`labkit.metrics.segmentation`, imported here (the student's kernel
cannot import it), on masks made here: several pairs of different sizes, the ignore label, a class
absent from both masks and a class that is only predicted.
"""

from __future__ import annotations

import io
import json
from functools import lru_cache
from pathlib import Path

import cv2
import numpy as np
from PIL import Image

from labkit.grading.labspec import Item, LabSpec, StudentRaised, quiz_items
from labkit.grading.probe import ProbeDataError, read_plain_file

_SEED = 31337
ALPHA, BOUNDARY_COLOR, LOW_CONFIDENCE = 0.45, (255, 255, 255), 0.5
PREPROCESSING = {"color": "RGB", "dtype": "uint8", "resize": None, "normalization": None,
                 "mask_interpolation": "nearest", "output_size": "input size"}


@lru_cache(maxsize=1)
def _world() -> dict:
    from labkit.budget import pick
    from labkit.data.coco import load_coco, read_json
    from labkit.data.synth import ensure_dataset
    from labkit.segment.simulate import NoisySegmenter
    from labkit.viz import color_for

    data = ensure_dataset(size=pick("default", "small"))
    manifest = read_json(data / "manifest.json")
    val = load_coco(data / "annotations" / "instances_val.json", data / "images")
    names = {0: "background", **val.category_names}
    records = sorted(val.images, key=lambda r: r.id)
    picked = np.random.default_rng(_SEED).choice(len(records), size=min(3, len(records)), replace=False)
    return {
        "data": data, "names": names, "model": NoisySegmenter(num_classes=len(names), seed=0),
        "palette": np.array([(0, 0, 0)] + [color_for(c) for c in range(1, len(names))], dtype=np.uint8),
        "records": [records[k] for k in sorted(picked)],
        "dataset_version": {"name": manifest["name"], "generator_version": manifest["generator_version"],
                            "size": manifest["size"], "seed": manifest["seed"], "split": "val",
                            "annotations_sha256": manifest["sha256"]["annotations/instances_val.json"]},
    }


def _image(path: Path, what: str) -> np.ndarray:
    try:
        data = read_plain_file(path, 32 << 20)
    except FileNotFoundError:
        raise AssertionError(f"no {what} was written") from None
    except ProbeDataError:
        raise AssertionError(f"the {what} is not a plain file") from None
    with Image.open(io.BytesIO(data)) as im:
        assert im.format == "PNG", f"the {what} is a {im.format}, not a PNG"
        return np.asarray(im.convert(im.mode)), im.mode


def _boundaries(labels: np.ndarray) -> np.ndarray:
    padded = np.pad(labels, 1, mode="edge")
    edge = np.zeros(labels.shape, dtype=bool)
    for dy, dx in ((0, 1), (2, 1), (1, 0), (1, 2)):
        edge |= padded[dy:dy + labels.shape[0], dx:dx + labels.shape[1]] != labels
    return edge & (labels > 0)


def _overlay(image: np.ndarray, labels: np.ndarray) -> np.ndarray:
    out = image.astype(np.float64)
    inside = labels > 0
    out[inside] = (1 - ALPHA) * out[inside] + ALPHA * _world()["palette"][labels[inside]]
    out = np.rint(out).astype(np.uint8)
    out[_boundaries(labels)] = BOUNDARY_COLOR
    return out


def _names(record) -> dict[str, str]:
    stem = Path(record.file_name).stem
    return {"mask_file": f"masks/{stem}.png", "overlay_file": f"overlays/{stem}.png",
            "summary_file": f"summaries/{stem}.json"}


def _check_summary(summary, record, labels: np.ndarray, conf: np.ndarray) -> None:
    world, where = _world(), record.file_name
    assert isinstance(summary, dict), f"{where}: the summary must be a dict"
    keys = {"image_id", "file_name", "width", "height", "mask_file", "overlay_file", "pixel_counts",
            "instance_counts", "confidence", "model_checkpoint", "dataset_version", "preprocessing"}
    assert set(summary) == keys, f"{where}: keys {sorted(set(summary) ^ keys)} are wrong"
    assert (summary["image_id"], summary["file_name"], summary["width"], summary["height"]) == \
        (record.id, record.file_name, record.width, record.height), f"{where}: image fields"
    names = _names(record)
    assert summary["mask_file"] == names["mask_file"] and summary["overlay_file"] == names["overlay_file"], \
        f"{where}: file references"
    counts = {name: int((labels == cls).sum()) for cls, name in world["names"].items()}
    assert summary["pixel_counts"] == counts, f"{where}: pixel counts differ from the mask"
    inst = {name: cv2.connectedComponents((labels == cls).astype(np.uint8), connectivity=8)[0] - 1
            for cls, name in world["names"].items() if cls > 0}
    assert summary["instance_counts"] == inst, f"{where}: instance counts (8-connectivity) differ from the mask"
    c = summary["confidence"]
    expect = {"mean": float(conf.mean()), "min": float(conf.min()), "max": float(conf.max()),
              "low_fraction": float((conf < LOW_CONFIDENCE).mean())}
    for key, value in expect.items():
        assert np.isclose(c[key], value, rtol=1e-4, atol=1e-6), f"{where}: confidence {key} is wrong"
    assert set(c["per_class_mean"]) == set(world["names"].values()), f"{where}: per_class_mean needs every class"
    for cls, name in world["names"].items():
        px = conf[labels == cls]
        if px.size:
            assert np.isclose(c["per_class_mean"][name], float(px.mean()), rtol=1e-4), f"{where}: {name} mean confidence"
        else:
            assert c["per_class_mean"][name] is None, f"{where}: {name} has no pixel, expected null"
    assert summary["model_checkpoint"] == world["model"].checkpoint_id, f"{where}: model checkpoint"
    assert summary["dataset_version"] == world["dataset_version"], f"{where}: dataset version"
    assert summary["preprocessing"] == PREPROCESSING, f"{where}: preprocessing"


def check_png(probe) -> None:
    rng = np.random.default_rng(_SEED)
    labels = rng.integers(0, 6, size=(17, 23)).astype(np.int64)
    folder = probe.scratch_dir()
    probe.call("save_label_png", labels, folder / "sub" / "mask.png")
    got, mode = _image(folder / "sub" / "mask.png", "mask PNG")
    assert mode == "L", f"the mask PNG has mode {mode}, expected a single-channel 8-bit image (L)"
    assert np.array_equal(got, labels), "the PNG's pixel values must be the class ids themselves"
    bad = [np.array([[0, 7]]), np.zeros((3, 3, 3), np.uint8), np.full((2, 2), 1.0, np.float64), np.array([[0, 200]])]
    results = probe.map("save_label_png", [((b, folder / f"bad{k}.png"), {}) for k, b in enumerate(bad)])
    for k, (b, result) in enumerate(zip(bad, results)):
        assert isinstance(result, StudentRaised) and result.exc_type == "ValueError", \
            f"save_label_png must raise ValueError for a {b.dtype} array of shape {b.shape} with ids {np.unique(b).tolist()}"
        assert not (folder / f"bad{k}.png").exists(), "nothing may be written for bad input"


def check_overlay(probe) -> None:
    rng = np.random.default_rng(_SEED + 1)
    image = rng.integers(0, 256, size=(21, 30, 3), dtype=np.uint8)
    labels = np.zeros((21, 30), dtype=np.uint8)
    labels[3:12, 4:15], labels[8:18, 12:25], labels[0:4, 26:30] = 2, 5, 1
    edge = probe.call("mask_boundaries", labels)
    assert isinstance(edge, np.ndarray) and edge.dtype == bool and edge.shape == labels.shape, \
        "mask_boundaries returns a bool array of the mask's shape"
    assert np.array_equal(edge, _boundaries(labels)), "mask_boundaries differs from the inner-boundary rule"
    over = probe.call("make_overlay", image, labels)
    assert isinstance(over, np.ndarray) and over.dtype == np.uint8 and over.shape == image.shape, \
        "make_overlay returns an RGB uint8 image of the input's size"
    assert (np.abs(over.astype(int) - _overlay(image, labels).astype(int)) <= 1).all(), \
        "make_overlay differs from the overlay rule (blend, then boundaries)"
    try:
        probe.call("make_overlay", image[:, :29], labels)
    except StudentRaised as exc:
        assert exc.exc_type == "ValueError", f"misaligned image and mask must raise ValueError, not {exc.exc_type}"
    else:
        raise AssertionError("an image and a mask of different sizes must raise ValueError")


def check_summary(probe) -> None:
    from labkit.data.annotations import ImageRecord

    rng = np.random.default_rng(_SEED + 2)
    record = ImageRecord(41, "val/hidden_probe.jpg", width=19, height=13)
    labels = rng.integers(0, 4, size=(13, 19)).astype(np.uint8)  # classes 4 and 5 absent: null means
    conf = rng.uniform(0.2, 1.0, size=(13, 19)).astype(np.float32)
    summary = probe.call("summarize", record, labels, conf)
    json.dumps(summary)
    _check_summary(summary, record, labels, conf)
    try:
        probe.call("summarize", record, labels[:, :18], conf[:, :18])
    except StudentRaised as exc:
        assert exc.exc_type == "ValueError", f"a mask of the wrong size must raise ValueError, not {exc.exc_type}"
    else:
        raise AssertionError("a mask of the wrong size must raise ValueError")


_EXPORTS: dict[Path, tuple[Path, list]] = {}


def _export(probe) -> tuple[Path, list]:
    """Call export_image once per submission on the grader's records (shared by the three items)."""
    if probe.scratch not in _EXPORTS:
        out = probe.scratch_dir()
        records = _world()["records"]
        _EXPORTS[probe.scratch] = (out, probe.map("export_image", [((r, out), {}) for r in records]))
    out, results = _EXPORTS[probe.scratch]
    for result in results:
        if isinstance(result, StudentRaised):
            raise result
    return out, results


def _prediction(record):
    from labkit.data.images import load_label_mask

    world = _world()
    return world["model"].predict(load_label_mask(world["data"] / record.extra["semantic_mask"]), record.id)


def check_export_masks(probe) -> None:
    out, _ = _export(probe)
    for record in _world()["records"]:
        mask, mode = _image(out / _names(record)["mask_file"], f"mask of {record.file_name}")
        assert mode == "L", f"{record.file_name}: mask mode {mode}, expected L"
        expected, _ = _prediction(record)
        assert mask.shape == expected.shape, f"{record.file_name}: mask shape {mask.shape} vs image {expected.shape}"
        assert np.array_equal(mask, expected), \
            f"{record.file_name}: {(mask != expected).sum()} mask pixels differ from the model's output"


def check_export_overlays(probe) -> None:
    from labkit.data.images import load_image

    out, _ = _export(probe)
    for record in _world()["records"]:
        over, mode = _image(out / _names(record)["overlay_file"], f"overlay of {record.file_name}")
        assert mode == "RGB", f"{record.file_name}: overlay mode {mode}, expected RGB"
        labels, _ = _prediction(record)
        ref = _overlay(load_image(_world()["data"] / "images" / record.file_name), labels)
        assert over.shape == ref.shape, f"{record.file_name}: overlay shape {over.shape} vs {ref.shape}"
        bad = (np.abs(over.astype(int) - ref.astype(int)) > 1).any(axis=2)
        assert not bad.any(), f"{record.file_name}: {bad.sum()} overlay pixels differ from the overlay rule"


def check_export_summaries(probe) -> None:
    out, results = _export(probe)
    for record, returned in zip(_world()["records"], results):
        try:
            written = json.loads(read_plain_file(out / _names(record)["summary_file"], 1 << 20))
        except (FileNotFoundError, ProbeDataError, ValueError):
            raise AssertionError(f"{record.file_name}: no readable JSON summary was written") from None
        labels, conf = _prediction(record)
        _check_summary(written, record, labels, conf)
        assert returned == written, f"{record.file_name}: the returned summary differs from the file"


NUM_CLASSES, IGNORE_INDEX = 6, 255


def _score_cases() -> dict[str, list[tuple[np.ndarray, np.ndarray]]]:
    """Hidden mask pairs: ``plain`` (3 sizes, every class in both masks, nothing ignored),
    ``ignore`` (a band and specks of the ignore label over varied predictions) and ``absent``
    (class 4 in neither mask, class 5 only predicted)."""
    rng = np.random.default_rng(_SEED + 3)

    def pair(h: int, w: int) -> tuple[np.ndarray, np.ndarray]:
        gt = rng.integers(0, NUM_CLASSES, size=(h, w)).astype(np.uint8)
        pred = np.where(rng.random((h, w)) < 0.6, gt, rng.integers(0, NUM_CLASSES, size=(h, w))).astype(np.uint8)
        return gt, pred

    plain = [pair(23, 31), pair(9, 40), pair(29, 12)]
    ignored_gt, ignored_pred = pair(26, 26)
    ignored_gt[:, 20:] = IGNORE_INDEX
    ignored_gt[rng.random(ignored_gt.shape) < 0.05] = IGNORE_INDEX
    absent_gt, absent_pred = pair(21, 17)
    absent_gt[absent_gt >= 4] = 0
    absent_pred[absent_pred == 4] = 1
    return {"plain": plain, "ignore": [(ignored_gt, ignored_pred)], "absent": [(absent_gt, absent_pred)]}


def _reference_scores(pairs) -> dict:
    from labkit.metrics.segmentation import ConfusionMatrix

    matrix = ConfusionMatrix(NUM_CLASSES, ignore_index=IGNORE_INDEX)
    for gt, pred in pairs:
        matrix.update(gt, pred)
    return {"iou": matrix.iou(), "dice": matrix.dice(), "miou": matrix.mean_iou(), "mean_dice": matrix.mean_dice()}


def _student_scores(probe, case: str) -> tuple[dict, dict]:
    pairs = _score_cases()[case]
    got = probe.call("segmentation_scores", [g for g, _ in pairs], [p for _, p in pairs], NUM_CLASSES, IGNORE_INDEX)
    assert isinstance(got, dict) and {"iou", "dice", "miou", "mean_dice"} <= set(got), \
        "segmentation_scores returns a dict with iou, dice, miou and mean_dice"
    return got, _reference_scores(pairs)


def _agree(got, ref: float, what: str) -> None:
    if np.isnan(ref):
        assert got is None, f"{what}: expected None (no pixel of the class in either mask), got {got!r}"
    else:
        assert got is not None, f"{what}: expected a number, got None (the class has pixels in a mask)"
        try:
            value = float(got)
        except (TypeError, ValueError):
            raise AssertionError(f"{what}: expected a float, got {type(got).__name__}") from None
        assert np.isclose(value, ref, rtol=1e-9, atol=1e-12), f"{what} differs from the reference metric on a hidden case"


def _agree_per_class(got, ref: np.ndarray, what: str, classes=None) -> None:
    assert isinstance(got, (list, tuple)) and len(got) == len(ref), f"{what}: expected a list of {len(ref)} values"
    for cls in range(len(ref)) if classes is None else classes:
        _agree(got[cls], ref[cls], f"{what} of class {cls}")


def check_iou(probe) -> None:
    got, ref = _student_scores(probe, "plain")
    _agree_per_class(got["iou"], ref["iou"], "IoU")
    _agree(got["miou"], ref["miou"], "mIoU")
    gt, pred = _score_cases()["plain"][0]
    try:
        probe.call("segmentation_scores", [gt], [pred[:, :-1]], NUM_CLASSES, IGNORE_INDEX)
    except StudentRaised as exc:
        assert exc.exc_type == "ValueError", f"masks of different shapes must raise ValueError, not {exc.exc_type}"
    else:
        raise AssertionError("masks of different shapes must raise ValueError")


def check_dice(probe) -> None:
    got, ref = _student_scores(probe, "plain")
    _agree_per_class(got["dice"], ref["dice"], "Dice")
    _agree(got["mean_dice"], ref["mean_dice"], "mean Dice")


def check_ignore(probe) -> None:
    got, ref = _student_scores(probe, "ignore")
    _agree_per_class(got["iou"], ref["iou"], "IoU with ignored pixels")
    _agree(got["miou"], ref["miou"], "mIoU with ignored pixels")


def check_absent(probe) -> None:
    got, ref = _student_scores(probe, "absent")
    _agree_per_class(got["iou"], ref["iou"], "IoU with an absent and a predicted-only class")
    _agree_per_class(got["dice"], ref["dice"], "Dice of the absent class", classes=[4])
    _agree(got["miou"], ref["miou"], "mIoU with an absent and a predicted-only class")


LAB = LabSpec(
    items=[Item("png", 1, check_png), Item("overlay", 1, check_overlay), Item("summary", 1, check_summary),
           Item("export_masks", 2, check_export_masks, timeout=120.0),
           Item("export_overlays", 2, check_export_overlays, timeout=120.0),
           Item("export_summaries", 3, check_export_summaries, timeout=120.0),
           Item("scores_iou", 1, check_iou), Item("scores_dice", 1, check_dice),
           Item("scores_ignore", 1, check_ignore), Item("scores_absent", 1, check_absent),
           *quiz_items(Path(__file__).resolve().parents[1] / "keys" / "ch03_qa_export.yaml")],
    # Part E is the learner's own metric: the reference and the usual shortcuts are hidden
    blocked_modules=("labkit.metrics.segmentation", "sklearn.metrics"),
    skip_cells=("png_visible", "overlay_visible", "summary_visible", "run_export", "look_overlays",
                "export_masks", "export_overlays", "export_summaries", "scores_visible", *(f"q{k}_check" for k in range(1, 6))),
    prepare=_world,
)
