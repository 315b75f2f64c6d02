"""The simulated raw detector: seeded, per-image independent, and a fair NMS exercise."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torchvision

from labkit.data.annotations import Dataset, Detections, ImageRecord
from labkit.detect.simulate import noisy_detector
from labkit.errors import DataError
from labkit.metrics.detection import evaluate_coco

CATEGORIES = [{"id": i, "name": n} for i, n in enumerate(["disc", "block", "cone", "rod", "star"], start=1)]


def _dataset(n_images: int = 24, seed: int = 0) -> Dataset:
    """Images of 320x240 with 3-8 random boxes each, plus one crowd region on image 1."""
    rng = np.random.default_rng(seed)
    images = []
    for image_id in range(1, n_images + 1):
        n = int(rng.integers(3, 9))
        xy = rng.uniform([0, 0], [260, 190], size=(n, 2))
        wh = rng.uniform(12, 60, size=(n, 2))
        xywh = np.concatenate([xy, np.minimum(wh, [320, 240] - xy)], axis=1)
        crowd = np.zeros(n, dtype=int)
        if image_id == 1:
            crowd[0] = 1
        det = Detections(xywh, rng.integers(1, 6, size=n), data={"iscrowd": crowd})
        images.append(ImageRecord(image_id, f"{image_id:04d}.jpg", 320, 240, det))
    return Dataset(CATEGORIES, images, source="test")


def _iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return torchvision.ops.box_iou(torch.as_tensor(a), torch.as_tensor(b)).numpy()


def _same(a: dict[int, Detections], b: dict[int, Detections]) -> bool:
    return a.keys() == b.keys() and all(
        np.array_equal(a[k].xywh, b[k].xywh) and np.array_equal(a[k].score, b[k].score)
        and np.array_equal(a[k].class_id, b[k].class_id) for k in a)


def test_same_seed_same_output_other_seed_other_output():
    ds = _dataset()
    assert _same(noisy_detector(ds, seed=3), noisy_detector(ds, seed=3))
    assert not _same(noisy_detector(ds, seed=3), noisy_detector(ds, seed=4))


def test_an_image_does_not_depend_on_the_others():
    ds = _dataset()
    full = noisy_detector(ds, seed=1)
    part = noisy_detector(ds.subset([5, 9]), seed=1)
    assert _same(part, {5: full[5], 9: full[9]})


def test_boxes_scores_and_classes_are_valid():
    ds = _dataset()
    out = noisy_detector(ds, seed=0)
    assert set(out) == {r.id for r in ds}
    det = Detections.concat(list(out.values()))
    assert len(det) > 3 * ds.num_objects()
    xyxy = det.xyxy
    assert (xyxy[:, :2] >= 0).all() and (xyxy[:, 2] <= 320).all() and (xyxy[:, 3] <= 240).all()
    assert (det.xywh[:, 2:] > 0).all()
    assert ((det.score > 0) & (det.score <= 1)).all()
    assert set(det.class_id.tolist()) <= {1, 2, 3, 4, 5}


def test_every_object_gets_a_close_box_of_its_class_when_recall_is_one():
    ds = _dataset()
    out = noisy_detector(ds, seed=2, recall=1.0, confusion=0.0, background=0.0)
    for record in ds:
        gt = record.detections[record.detections.get("iscrowd") == 0]
        pred = out[record.id]
        iou = _iou(gt.xyxy, pred.xyxy)
        same_class = gt.class_id[:, None] == pred.class_id[None, :]
        assert ((iou >= 0.5) & same_class).any(axis=1).all(), record.id


def test_crowd_regions_get_no_candidates():
    ds = _dataset().subset([1])
    crowd = ds.images[0].detections[ds.images[0].detections.get("iscrowd") == 1]
    out = noisy_detector(ds, seed=0, recall=1.0, background=0.0, jitter=0.0, duplicates=0.0)
    assert len(out[1]) == len(ds.images[0].detections) - len(crowd)
    assert _iou(crowd.xyxy, out[1].xyxy).max() < 1.0


def test_nothing_to_find_gives_empty_scored_detections():
    out = noisy_detector(_dataset(4), seed=0, recall=0.0, background=0.0)
    assert all(len(d) == 0 and d.score is not None for d in out.values())


def test_better_placed_candidates_score_higher():
    """Scores decay with the duplicate rank while the box noise grows, as in a real detector."""
    box = Detections(np.array([[100.0, 80.0, 60.0, 40.0]]), [2], data={"iscrowd": np.zeros(1, int)})
    ds = Dataset(CATEGORIES, [ImageRecord(i, f"{i}.jpg", 320, 240, box) for i in range(1, 41)])
    out = noisy_detector(ds, seed=0, recall=1.0, confusion=0.0, background=0.0, duplicates=6.0)
    best, rest = [], []
    for det in out.values():
        ious = _iou(box.xyxy, det.xyxy)[0]
        best.append(ious[det.score.argmax()])
        rest.extend(np.delete(ious, det.score.argmax()))
    assert np.mean(best) > 0.8 and np.mean(best) > np.mean(rest) + 0.1, (np.mean(best), np.mean(rest))


def test_nms_raises_ap50_clearly():
    """The point of the simulator: duplicates cost AP until class-wise NMS removes them."""
    ds = _dataset()
    raw = noisy_detector(ds, seed=0)

    def top(det: Detections, nms: bool) -> Detections:
        boxes, scores = torch.as_tensor(det.xyxy), torch.as_tensor(det.score)
        keep = (torchvision.ops.batched_nms(boxes, scores, torch.as_tensor(det.class_id), 0.5) if nms
                else torch.argsort(scores, descending=True))
        return det[keep[:100].numpy()]

    without = evaluate_coco(ds, {k: top(d, False) for k, d in raw.items()}).stats["AP50"]
    with_nms = evaluate_coco(ds, {k: top(d, True) for k, d in raw.items()}).stats["AP50"]
    assert with_nms > without + 0.15, (without, with_nms)


@pytest.mark.parametrize("kwargs", [{"recall": 1.5}, {"duplicates": -1}, {"score_decay": 2.0}, {"seed": -1},
                                    {"confusion": -0.1}, {"seed": 1.5}])
def test_bad_parameters_raise_data_error(kwargs):
    with pytest.raises(DataError):
        noisy_detector(_dataset(2), **kwargs)


def test_negative_image_id_is_named():
    ds = _dataset(1)
    ds.images[0].id = -4
    with pytest.raises(DataError, match="record -4"):
        noisy_detector(ds)
