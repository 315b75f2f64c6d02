"""Tracking evaluation at its boundaries, worked out by hand: IoU exactly 0.5 to a distractor, the
consider flag's truncation, MOTChallenge's class range, the last frame, and the report of a perfect track."""

from __future__ import annotations

import functools

import pytest

from labkit.data.annotations import Detections
from labkit.data.boxes import xywh_to_xyxy
from labkit.errors import DataError
from labkit.metrics.iou import box_iou
from labkit.metrics.tracking import TrackingSequence, evaluate_sequences, evaluate_tracking, trackeval_data
from test_metrics_tracking import _box


def _one(x: float, cls: int = 1, tid: int = 1, w: float = 10.0, **data) -> Detections:
    return Detections([_box(x, w)], [cls], track_id=[tid], data={k: [v] for k, v in data.items()})


def test_perfect_tracking_report_by_hand():
    """One object, two frames, tracked exactly: every fraction is 1 (100.00), every error count 0,
    the object mostly tracked. With two sequences a COMBINED row follows; preprocessing removals
    are listed per sequence."""
    gt = {1: _one(0), 2: _one(5)}
    report = evaluate_tracking(gt, gt, preprocess="none", name="s")
    s = report.summary()
    assert all(type(s[k]) is int for k in ("TP", "FP", "FN", "IDSW", "Frag", "MT", "PT", "ML", "IDTP", "IDFP", "IDFN"))
    assert (s["TP"], s["IDTP"], s["MT"]) == (2, 2, 1)
    assert report.to_markdown() == "\n".join([
        "preprocess: none, match threshold (CLEAR/Identity): 0.5", "",
        "| sequence | HOTA | DetA | AssA | LocA | MOTA | MOTP | IDF1 | IDSW | Frag | FP | FN | MT | PT | ML |",
        "| --- |" + " --- |" * 14,
        "| s | " + " | ".join(["100.00"] * 7 + ["0"] * 4 + ["1", "0", "0"]) + " |"])
    assert report.counts["s"] == {"num_timesteps": 2, "num_gt_dets": 2, "num_tracker_dets": 2, "num_gt_ids": 1,
                                  "num_tracker_ids": 1, "removed_gt": 0, "removed_pred": 0}
    # a zero-marked gt box (consider 0) is removed under mot15 and reported; its prediction stays, a
    # false positive: b has MOTA 1 - 1 FP / 1 object = 0, the combination 1 - 1 / 3 objects = 66.67 %
    marked = {1: _one(0, consider=0), 2: _one(5, consider=1)}
    two = evaluate_sequences({"a": TrackingSequence(gt, gt), "b": TrackingSequence(marked, gt)}, preprocess="mot15")
    text = two.to_markdown(columns=("MOTA", "FP"))
    assert text.splitlines()[2:] == ["| sequence | MOTA | FP |", "| --- | --- | --- |", "| a | 100.00 | 0 |",
                                     "| b | 0.00 | 1 |", "| COMBINED | 66.67 | 1 |", "",
                                     "b: preprocessing removed 1 gt and 0 predicted boxes"]
    assert two.sequence_names == ["a", "b"]


def test_distractor_match_exactly_at_iou_half_removes_the_prediction():
    """TrackEval removes a prediction matched with IoU >= 0.5 (to eps) to a distractor gt box. A 10 x 10
    distractor (class 8) under a 20 x 10 prediction: IoU 100 / 200 = 0.5 exactly -> removed; a 21 px
    wide prediction (IoU 100 / 210) stays, and is then a false positive."""
    gt = {1: _one(0, cls=8)}
    at = trackeval_data(TrackingSequence(gt, {1: _one(0, w=20.0)}), preprocess="mot17")
    assert (at["removed_gt"], at["removed_pred"], at["num_tracker_dets"]) == (1, 1, 0)
    below = trackeval_data(TrackingSequence(gt, {1: _one(0, w=21.0)}), preprocess="mot17")
    assert (below["removed_gt"], below["removed_pred"], below["num_tracker_dets"]) == (1, 0, 1)
    # mot20 adds class 6 (non_mot_vehicle) to the distractors; mot17 does not
    vehicle = {1: _one(0, cls=6)}
    assert trackeval_data(TrackingSequence(vehicle, {1: _one(0)}), preprocess="mot20")["removed_pred"] == 1
    assert trackeval_data(TrackingSequence(vehicle, {1: _one(0)}), preprocess="mot17")["removed_pred"] == 0


def test_consider_flag_is_truncated_like_trackeval_and_class_range_is_1_to_13():
    """TrackEval reads the consider column with int(): 0.7 -> 0 (removed), 1.0 -> 1 (kept)."""
    gt = {1: Detections([_box(0), _box(50)], [1, 1], track_id=[1, 2], data={"consider": [0.7, 1.0]})}
    data = trackeval_data(TrackingSequence(gt, {}), preprocess="mot15")
    assert data["removed_gt"] == 1 and data["gt_id_values"].tolist() == [2]
    assert trackeval_data(TrackingSequence(gt, {}), preprocess="none")["removed_gt"] == 0
    # classes 1 and 13 are MOTChallenge classes, 0 and 14 are not
    for cls in (1, 13):
        trackeval_data(TrackingSequence({1: _one(0, cls=cls)}, {}), preprocess="mot17")
    for cls in (0, 14):
        with pytest.raises(DataError, match=rf"gt class ids \[{cls}\] are not MOTChallenge classes"):
            trackeval_data(TrackingSequence({1: _one(0, cls=cls)}, {}), preprocess="mot17")


def test_last_frame_is_inside_and_one_more_is_outside():
    gt = {2: _one(0)}
    assert trackeval_data(TrackingSequence(gt, {}, num_frames=2), preprocess="none")["num_timesteps"] == 2
    with pytest.raises(DataError, match="<pred>: record frame 3: frame 3 is outside the sequence's frames 1..2"):
        trackeval_data(TrackingSequence(gt, {3: _one(0)}, num_frames=2), preprocess="none")
    with pytest.raises(ValueError, match="no sequences"):
        evaluate_sequences({})
    with pytest.raises(ValueError, match="reserved"):
        evaluate_sequences({"COMBINED": TrackingSequence(gt, {})})


def test_empty_sequence_frame_lists_and_class_check_only_for_mot17():
    """No frames at all: 0 timesteps (not a crash). The per-frame lists have one entry per frame.
    Classes outside 1..13 are checked only by the rules that keep pedestrians (mot17/mot20)."""
    empty = trackeval_data(TrackingSequence({}, {}), preprocess="none")
    assert (empty["num_timesteps"], empty["gt_ids"], empty["similarity_scores"]) == (0, [], [])
    data = trackeval_data(TrackingSequence({2: _one(0, cls=42)}, {3: _one(0)}), preprocess="mot15")
    assert data["num_timesteps"] == 3
    assert len(data["gt_ids"]) == len(data["tracker_ids"]) == len(data["similarity_scores"]) == 3
    assert [len(ids) for ids in data["gt_ids"]] == [0, 1, 0] and [len(ids) for ids in data["tracker_ids"]] == [0, 0, 1]


def test_custom_similarity_is_named_in_the_settings():
    def scaled(gt, pred, factor):
        return factor * box_iou(xywh_to_xyxy(gt), xywh_to_xyxy(pred))

    gt = {1: _one(0)}
    report = evaluate_tracking(gt, gt, preprocess="none", similarity=functools.partial(scaled, factor=1.0))
    assert report.settings["similarity"] == "custom"  # a partial has no __name__


def test_alpha_curve_plot_draws_each_curve_over_the_alphas():
    gt = {1: _one(0), 2: _one(5)}
    report = evaluate_tracking(gt, gt, preprocess="none")
    ax = report.plot_alpha_curves()
    lines = {line.get_label().split(" ")[0]: line for line in ax.lines}
    assert set(lines) == {"HOTA", "DetA", "AssA", "LocA", "DetRe", "DetPr", "AssRe", "AssPr"}
    for name, values in report.curves().items():
        assert list(lines[name].get_xdata()) == report.alphas.tolist()
        assert list(lines[name].get_ydata()) == values.tolist()
        assert lines[name].get_linestyle() == ("-" if name in ("HOTA", "DetA", "AssA", "LocA") else "--")
    assert ax.get_ylim() == (0, 1.02)


def _switch_case(**data):
    """Two pedestrians; track 1 on GT 7 is lost in frame 3 and track 3 takes it over in frame 4
    (IoU 90/110 there): one switch + fragmentation, as in test_id_events_hand_checked."""
    gt = {f: Detections([_box(0), _box(100)], [1, 1], track_id=[7, 8], data=data) for f in range(1, 6)}
    pred = {1: Detections([_box(0), _box(100)], [1, 1], track_id=[1, 2]),
            2: Detections([_box(0), _box(100)], [1, 1], track_id=[1, 2]),
            3: Detections([_box(101)], [1], track_id=[2]),
            4: Detections([_box(1), _box(100)], [1, 1], track_id=[3, 2]),
            5: Detections([_box(0), _box(100)], [1, 1], track_id=[3, 2])}
    return gt, pred


def test_id_events_default_to_the_mot17_rule_and_a_half_iou_threshold():
    from labkit.metrics.id_events import clear_matches, events_from_data, id_events

    gt, pred = _switch_case(consider=[1, 1])  # MOT17 preprocessing reads the consider flags
    (event,) = id_events(gt, pred)
    assert (event.frame, event.gt_id, event.previous_track_id, event.new_track_id) == (4, 7, 1, 3)
    data = trackeval_data(TrackingSequence(gt, pred), preprocess="none")
    (again,) = events_from_data(data)  # default threshold 0.5: a threshold above 1 would match nothing
    assert again.iou == pytest.approx(90 / 110)
    first = next(clear_matches(data))
    assert first[0] == 0 and sorted(first[1].tolist()) == [0, 1] and first[3] == pytest.approx([1.0, 1.0])
