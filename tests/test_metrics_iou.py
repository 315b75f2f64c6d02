"""labkit.metrics.iou.coco_iou, COCOeval's IoU: hand-counted boxes and masks, the crowd rule
(intersection over the detection's area) and empty inputs."""

from __future__ import annotations

import numpy as np
import pytest
from pycocotools import mask as mask_utils

from labkit.metrics.iou import coco_iou


def test_boxes_hand_counted_with_and_without_the_crowd_rule():
    det, gts = [[0, 0, 2, 2]], [[1, 0, 2, 2], [0, 0, 1, 1]]  # [x, y, w, h]
    # det ∩ gt0 = 1 x 2 = 2, union 4 + 4 - 2 = 6; det ∩ gt1 = 1, union 4
    assert coco_iou(det, gts) == pytest.approx(np.array([[2 / 6, 1 / 4]]))
    # a crowd gt: the intersection over the detection's area (4)
    assert coco_iou(det, gts, iscrowd=[1, 0]) == pytest.approx(np.array([[2 / 4, 1 / 4]]))
    assert coco_iou([[0, 0, 2, 2], [5, 5, 1, 1]], gts[:1]).shape == (2, 1)


def _rle(mask: np.ndarray, as_text: bool) -> dict:
    rle = mask_utils.encode(np.asfortranarray(mask.astype(np.uint8)))
    return {"size": rle["size"], "counts": rle["counts"].decode("ascii") if as_text else rle["counts"]}


@pytest.mark.parametrize("as_text", [True, False])
def test_masks_hand_counted_from_text_or_bytes_rle(as_text: bool):
    left, top = np.zeros((4, 4), bool), np.zeros((4, 4), bool)
    left[:, :2] = True
    top[:2, :] = True
    # 8 pixels each, 4 shared: 4 / 12; as a crowd region: 4 / 8 (the detection's area)
    got = coco_iou([_rle(left, as_text)], [_rle(top, as_text), _rle(left, as_text)])
    assert got == pytest.approx(np.array([[1 / 3, 1.0]]))
    assert coco_iou([_rle(left, as_text)], [_rle(top, as_text)], iscrowd=[1]) == pytest.approx(np.array([[0.5]]))


@pytest.mark.parametrize("dets, gts, shape", [([], [[0, 0, 1, 1]] * 3, (0, 3)), ([[0, 0, 1, 1]] * 2, [], (2, 0)),
                                              ([], [], (0, 0))])
def test_empty_inputs_give_an_empty_matrix_of_the_right_shape(dets, gts, shape):
    assert coco_iou(dets, gts).shape == shape
