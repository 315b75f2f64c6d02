"""The fake segmentation model: seeded, well-formed, and noisy in the documented ways."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from labkit.errors import DataError
from labkit.segment.simulate import NoisySegmenter


def _gt() -> np.ndarray:
    """120x160 mask: a disc (1), a block (2), a thin rod (4) and an ignore patch (255)."""
    gt = np.zeros((120, 160), dtype=np.uint8)
    cv2.circle(gt, (40, 40), 18, 1, thickness=-1)
    gt[70:110, 90:150] = 2
    cv2.line(gt, (100, 10), (150, 50), 4, thickness=3)
    gt[5:15, 5:15] = 255
    return gt


def test_same_seed_and_image_give_the_same_prediction():
    a, b = NoisySegmenter(seed=1).predict(_gt(), 7), NoisySegmenter(seed=1).predict(_gt(), 7)
    assert np.array_equal(a[0], b[0]) and np.array_equal(a[1], b[1])
    other_image, other_seed = NoisySegmenter(seed=1).predict(_gt(), 8), NoisySegmenter(seed=2).predict(_gt(), 7)
    assert not np.array_equal(a[1], other_image[1]) and not np.array_equal(a[1], other_seed[1])


def test_output_types_and_ranges():
    labels, confidence = NoisySegmenter().predict(_gt(), 0)
    assert labels.dtype == np.uint8 and labels.shape == (120, 160)
    assert confidence.dtype == np.float32 and confidence.shape == (120, 160)
    assert set(np.unique(labels).tolist()) <= set(range(6))
    assert confidence.min() >= 1 / 6 - 1e-6 and confidence.max() <= 1 + 1e-6


def test_without_noise_the_prediction_is_the_ground_truth():
    model = NoisySegmenter(miss=0, flip=0, edge_sigma=0, noise=0, speckles=0)
    labels, confidence = model.predict(_gt(), 0)
    assert np.array_equal(labels, np.where(_gt() == 255, 0, _gt()))
    assert np.allclose(confidence, confidence.max())


def test_default_noise_is_mostly_right_and_unsure_at_boundaries():
    gt = _gt()
    labels, confidence = NoisySegmenter().predict(gt, 3)
    valid = gt != 255
    assert (labels[valid] == gt[valid]).mean() > 0.95
    region = (gt == 2).astype(np.uint8)
    edge = region - cv2.erode(region, np.ones((3, 3), np.uint8))
    interior = cv2.erode(region, np.ones((9, 9), np.uint8))
    assert confidence[edge.astype(bool)].mean() < confidence[interior.astype(bool)].mean() - 0.1


def test_flip_changes_every_region_and_miss_removes_every_region():
    quiet = {"edge_sigma": 0, "noise": 0, "speckles": 0}
    gt = _gt()
    flipped, _ = NoisySegmenter(flip=1.0, miss=0.0, **quiet).predict(gt, 0)
    for cls in (1, 2, 4):
        assert not (flipped[gt == cls] == cls).any() and (flipped[gt == cls] > 0).all()
    missed, _ = NoisySegmenter(flip=0.0, miss=1.0, **quiet).predict(gt, 0)
    assert not missed.any()


def test_speckles_add_false_blobs():
    empty = np.zeros((100, 100), dtype=np.uint8)
    labels, _ = NoisySegmenter(speckles=20.0, noise=0.0).predict(empty, 0)
    assert labels.any()


def test_checkpoint_id_names_the_parameters():
    assert NoisySegmenter().checkpoint_id == NoisySegmenter().checkpoint_id
    assert NoisySegmenter().checkpoint_id != NoisySegmenter(noise=0.5).checkpoint_id
    assert NoisySegmenter().config()["model"] == "NoisySegmenter"


@pytest.mark.parametrize("mask", [np.zeros((4, 4, 3), np.uint8), np.full((4, 4), 9, np.uint8), np.zeros((4, 4), np.float32)])
def test_bad_ground_truth_names_the_image(mask):
    with pytest.raises(DataError, match="record 12"):
        NoisySegmenter().predict(mask, 12)


@pytest.mark.parametrize("kwargs", [{"num_classes": 1}, {"seed": -1}, {"miss": 1.5}, {"noise": -1.0}])
def test_bad_parameters_raise(kwargs):
    with pytest.raises(DataError):
        NoisySegmenter(**kwargs)
