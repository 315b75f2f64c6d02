"""The data of the mock exam's drills (labkit.grading.mock_exam) against what their docstrings promise,
measured on the data itself: letterboxed predictions off by zero-mean 0.4 px noise, AP predictions
off by 8 % of the box size, tracker objects each at their own speed under MAX_SPEED_PX_S, and disc
masks with a rectangle in about half of them."""

from __future__ import annotations

import numpy as np

from labkit.grading import drills as dr
from labkit.grading import mock_exam as me

SEEDS = (1, 2, 3, 4, 5)


def test_letterboxed_predictions_are_the_truth_plus_small_zero_mean_noise():
    errors = []
    for seed in SEEDS:
        d = me.build_drill("letterbox", seed).inputs
        pads = np.array([d["pad_x"], d["pad_y"]] * 2)
        errors.append(d["boxes_xyxy"] - (d["gt_xyxy"] * d["scale"] + pads))  # letterboxing by hand
    errors = np.concatenate(errors).ravel()  # 240 values of N(0, 0.4): mean within 0.03 (1 sd), sd 0.4
    assert abs(errors.mean()) < 0.15 and 0.3 < errors.std() < 0.5


def test_ap_predictions_are_the_kept_truth_off_by_8_percent_of_its_size():
    relative = []
    for seed in SEEDS:
        d = me.build_drill("map", seed).inputs
        gt, pred = d["gt_xywh"], d["pred_xywh"]
        assert gt.shape == (15, 4) and len(pred) >= 5
        for box in pred[:-5]:  # the last five are the false positives
            err = (box - gt) / gt[:, [2, 3, 2, 3]]
            relative.append(err[np.abs(err).sum(1).argmin()])  # its own ground truth: the nearest
    relative = np.concatenate(relative)
    assert abs(relative.mean()) < 0.03 and 0.06 < relative.std() < 0.10


def test_tracker_clip_objects_and_ids():
    clip = me.tracker_clip(np.random.default_rng(0), fps=10.0, frames=12, objects=5)
    assert clip["fps"] == 10.0 and len(clip["detections"]) == len(clip["truth_ids"]) == 12
    assert all(b.shape == (5, 4) for b in clip["detections"])
    assert all(ids.tolist() == [1, 2, 3, 4, 5] for ids in clip["truth_ids"])


def test_tracker_objects_move_straight_each_at_its_own_speed():
    fps, frames = 8.0, 40
    clip = me.tracker_clip(np.random.default_rng(3), fps=fps, frames=frames, objects=6)
    centres = [(b[:, :2] + b[:, 2:]) / 2 for b in clip["detections"]]
    sizes = clip["detections"][0][:, 2:] - clip["detections"][0][:, :2]
    assert np.all((sizes > 24 - 5) & (sizes < 32 + 5))  # 24-32 px, 1 px noise on each corner
    speed = np.linalg.norm(centres[-1] - centres[0], axis=1) / ((frames - 1) / fps)  # px/s, noise ~0.3 px/s
    limit = me.MAX_SPEED_PX_S
    assert np.all((speed > 0.6 * limit - 2) & (speed < limit + 2))
    assert np.min(np.diff(np.sort(speed))) > 0.05 and np.ptp(speed) > 5  # six different speeds
    diagonal = np.abs(centres[-1] - centres[0])  # each axis moves speed / sqrt(2)
    assert np.allclose(diagonal[:, 0], diagonal[:, 1], atol=3)


def test_disc_masks_get_a_rectangle_about_half_the_time():
    """40 x 300 masks: a disc is at most 20 px wide, the rectangle 100 px wide and 10 rows high
    (never clipped), so a row holds 100 or more pixels only where there is a rectangle."""
    masks = me.disc_masks(np.random.default_rng(7), 40, 40, 300)
    assert len(masks) == 40 and all(m.shape == (40, 300) and m.dtype == bool for m in masks)
    wide_rows = [int((m.sum(1) >= 100).sum()) for m in masks]
    assert set(wide_rows) == {0, 10} and 10 <= wide_rows.count(10) <= 30
    discs = [m for m, w in zip(masks, wide_rows) if w == 0]
    assert all(8 <= m.sum(1).max() <= 21 for m in discs)  # a radius of 0.1-0.25 of the height: 4-10 px


def test_source_index_samples_pixel_centres():
    # 3 -> 6 pixels: output centres 0.25, 0.75, ..., 2.75 of the input -> 0, 0, 1, 1, 2, 2
    assert me._source_index(3, 6).tolist() == [0, 0, 1, 1, 2, 2]
    # 4 -> 3: centres at 4/6, 2, 20/6 -> 0, 2, 3
    assert me._source_index(4, 3).tolist() == [0, 2, 3]


def test_mask_iou():
    a = np.zeros((2, 3), bool)
    b = a.copy()
    a[0, :2] = True
    b[0, 1:] = True
    assert me.mask_iou(a, b) == 1 / 3 and me.mask_iou(a, a) == 1.0
    assert me.mask_iou(np.zeros((2, 2)), np.zeros((2, 2))) == 0.0  # both empty
    assert me.mask_iou(a, np.ones((3, 2), bool)) == 0.0  # shapes differ


def test_an_exam_is_six_drills_in_order_with_their_symptoms():
    exam = me.exam("bob")
    assert list(exam) == list(dr.DRILLS)
    for name, drill in exam.items():
        assert drill.name == name and drill.symptom == me.SYMPTOMS[name]
        assert drill.candidates == {**dr.VARIANTS[name], **dr.DECOYS}  # the table's texts (in a drawn order)
        assert drill.source == me.stage_source(name, dr.planted_bug(name, dr.student_seed("bob")))


def test_boxes_lie_in_the_frame_with_sizes_in_range():
    boxes = me._boxes(np.random.default_rng(5), 200, 640, 480, lo=20, hi=90)
    x, y, w, h = boxes.T
    assert boxes.shape == (200, 4) and np.all((w >= 20) & (w <= 90) & (h >= 20) & (h <= 90))
    assert np.all((x >= 0) & (y >= 0) & (x + w <= 640) & (y + h <= 480))
    assert x.max() > 0.8 * (640 - 90) and y.max() > 0.8 * (480 - 90)  # spread over the whole frame


def test_discs_are_centred_in_the_middle_of_the_frame():
    """Disc centres are drawn in [0.3, 0.7] of each side: the centroid of a disc's pixel centres
    (discs of 4-10 px radius in a 40 x 300 frame lie inside it) is there too, to a pixel."""
    masks = me.disc_masks(np.random.default_rng(7), 40, 40, 300)
    discs = [m for m in masks if m.sum(1).max() < 100]  # no rectangle (see the test above)
    assert len(discs) >= 10
    for m in discs:
        ys, xs = np.nonzero(m)
        assert 0.3 * 40 - 1 <= ys.mean() + 0.5 <= 0.7 * 40 + 1 and 0.3 * 300 - 1 <= xs.mean() + 0.5 <= 0.7 * 300 + 1
