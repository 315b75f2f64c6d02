"""labkit.track.sources: score normalisation, public detections with every frame present, greedy NMS,
the simulated detector's visibility/consider filter and the cache of detector runs. Expected values
are hand-worked (IoUs of axis-aligned boxes, scores divided by a stated maximum)."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest

from labkit.data.annotations import Detections
from labkit.data.mot import write_seqinfo
from labkit.errors import DataError
from labkit.track.sequence import open_sequence
from labkit.track.sources import (SIMULATE_PRESETS, _cached_detections, _nms, detector_detections, empty_frames,
                                  normalise_scores, public_detections, simulated_detections)


def _det(scores, boxes=None) -> Detections:
    scores = np.asarray(scores, float)
    if boxes is None:
        boxes = [[10.0 * i, 0, 5, 5] for i in range(len(scores))]
    return Detections(np.asarray(boxes, float).reshape(-1, 4), np.ones(len(scores), np.int64), score=scores)


def test_empty_frames_are_one_based():
    frames = empty_frames(3)
    assert sorted(frames) == [1, 2, 3]
    assert all(len(d) == 0 for d in frames.values())
    assert empty_frames(0) == {}


def test_auto_divides_by_a_maximum_above_one_and_clips_negatives():
    frames = {1: _det([65.0, 130.0]), 2: _det([-13.0]), 3: Detections.empty()}
    out, report = normalise_scores(frames)
    np.testing.assert_allclose(out[1].score, [0.5, 1.0])
    np.testing.assert_allclose(out[2].score, [0.0])
    assert len(out[3]) == 0
    assert report == {"mode": "auto", "max_score": 130.0, "divided_by": 130.0, "clipped_negative": 1,
                      "action": "divided by the sequence maximum 130"}


def test_auto_leaves_scores_up_to_one():
    frames = {1: _det([0.5, 1.0]), 2: _det([-0.25])}
    out, report = normalise_scores(frames, "auto")
    np.testing.assert_allclose(out[1].score, [0.5, 1.0])
    np.testing.assert_allclose(out[2].score, [0.0])
    assert report == {"mode": "auto", "max_score": 1.0, "divided_by": 1.0, "clipped_negative": 1,
                      "action": "unchanged"}


def test_max_always_divides_and_none_changes_nothing():
    frames = {1: _det([0.25, 0.5]), 2: _det([-0.5])}
    out, report = normalise_scores(frames, "max")
    np.testing.assert_allclose(out[1].score, [0.5, 1.0])
    np.testing.assert_allclose(out[2].score, [0.0])
    assert report["divided_by"] == 0.5 and report["clipped_negative"] == 1
    assert report["action"] == "divided by the sequence maximum 0.5"
    out, report = normalise_scores(frames, "none")
    np.testing.assert_allclose(out[2].score, [-0.5])
    assert out[1] is frames[1]
    assert report == {"mode": "none", "max_score": 0.5, "divided_by": 1.0, "clipped_negative": 0,
                      "action": "unchanged"}


def test_max_of_no_positive_score_divides_by_one():
    out, report = normalise_scores({1: _det([-2.0, 0.0])}, "max")
    np.testing.assert_allclose(out[1].score, [0.0, 0.0])
    assert (report["max_score"], report["divided_by"], report["clipped_negative"]) == (0.0, 1.0, 1)
    out, report = normalise_scores({1: Detections.empty()}, "max")
    assert (report["max_score"], report["divided_by"]) == (0.0, 1.0)


def test_frames_without_scores_pass_through():
    no_score = Detections(np.array([[0.0, 0, 5, 5]]), np.array([1]))
    out, report = normalise_scores({1: no_score, 2: _det([4.0])})
    assert out[1] is no_score
    np.testing.assert_allclose(out[2].score, [1.0])
    assert report["max_score"] == 4.0


def test_unknown_normalisation():
    with pytest.raises(DataError, match=re.escape("score normalisation must be one of ['auto', 'none', 'max'], "
                                                  "got 'sum'")):
        normalise_scores({}, "sum")


def test_public_detections_fill_every_frame(tmp_path: Path):
    p = tmp_path / "det.txt"
    p.write_text("2,-1,1,2,3,4,0.9,-1,-1,-1\n2,-1,5,6,7,8,0.8,-1,-1,-1\n")
    frames = public_detections(p, 3)
    assert sorted(frames) == [1, 2, 3]
    assert (len(frames[1]), len(frames[2]), len(frames[3])) == (0, 2, 0)
    np.testing.assert_allclose(frames[2].xywh, [[1, 2, 3, 4], [5, 6, 7, 8]])
    np.testing.assert_allclose(frames[2].score, [0.9, 0.8])
    with pytest.raises(DataError, match=re.escape(f"{p}: record line 1: frame 2 is beyond the sequence length 1")):
        public_detections(p, 1)


def test_nms_keeps_the_best_of_overlapping_boxes_in_input_order():
    # 0: far away; 1 and 2: IoU 50/100 = 0.5 (box 2 is the top half of box 1)
    det = _det([0.7, 0.5, 0.9], [[50, 50, 10, 10], [0, 0, 10, 10], [0, 0, 10, 5]])
    kept = _nms(det, 0.4)
    np.testing.assert_allclose(kept.score, [0.7, 0.9])  # box 1 suppressed; kept boxes in input order
    np.testing.assert_allclose(kept.xywh, [[50, 50, 10, 10], [0, 0, 10, 5]])
    assert len(_nms(det, 0.5)) == 3  # an IoU equal to the threshold is kept
    # IoU 90/110 = 0.818: suppressed at 0.8, kept at 0.85
    pair = _det([0.8, 0.9], [[1, 0, 10, 10], [0, 0, 10, 10]])
    np.testing.assert_allclose(_nms(pair, 0.8).score, [0.9])
    assert len(_nms(pair, 0.85)) == 2


def test_nms_equal_scores_keep_the_first():
    det = _det([0.5, 0.5], [[0, 0, 10, 10], [0, 0, 10, 10]])
    kept = _nms(det, 0.5)
    assert len(kept) == 1


PERFECT = {"recall": 1.0, "duplicates": 0.0, "jitter": 0.0, "score_decay": 0.9, "confusion": 0.0,
           "background": 0.0, "min_visibility": 0.5, "nms_iou": 0.6}


def _gt():
    xywh = np.array([[10.0, 10, 20, 40], [60, 10, 20, 40], [110, 10, 20, 40], [160, 10, 20, 40]])
    return Detections(xywh, np.array([1, 1, 1, 1]), track_id=np.array([1, 2, 3, 4]),
                      data={"visibility": np.array([1.0, 0.5, 0.49, 1.0]), "consider": np.array([1, 1, 1, 0])})


def test_simulated_perfect_detector_sees_visible_considered_objects():
    frames = simulated_detections({1: _gt()}, 2, 200, 100, preset=PERFECT, seed=0)
    assert sorted(frames) == [1, 2]
    assert len(frames[2]) == 0
    d = frames[1]
    order = np.argsort(d.xywh[:, 0])
    # visibility 0.5 is at the threshold (kept), 0.49 below it, consider 0 never counted
    np.testing.assert_allclose(d.xywh[order], [[10, 10, 20, 40], [60, 10, 20, 40]])
    assert d.class_id.tolist() == [1, 1]
    assert d.score is not None and len(d.score) == 2


def test_simulated_keeps_class_ids_and_is_seeded():
    gt = {1: Detections(np.array([[10.0, 10, 20, 40]]), np.array([3]))}
    a = simulated_detections(gt, 1, 200, 100, preset=PERFECT, seed=4)
    assert a[1].class_id.tolist() == [3]
    b = simulated_detections(gt, 1, 200, 100, preset="typical", seed=4)
    c = simulated_detections(gt, 1, 200, 100, preset="typical", seed=4)
    np.testing.assert_array_equal(b[1].xywh, c[1].xywh)
    assert PERFECT["min_visibility"] == 0.5 and "min_visibility" in SIMULATE_PRESETS["typical"]


def test_simulated_presets_and_bad_preset():
    assert sorted(SIMULATE_PRESETS) == ["clean", "hard", "typical"]
    with pytest.raises(DataError, match=re.escape("unknown simulate preset 'easy'; known: ['clean', 'hard', 'typical']")):
        simulated_detections({}, 1, 10, 10, preset="easy")
    # the preset dict is not consumed by a run
    simulated_detections({}, 1, 10, 10, preset="clean")
    assert "min_visibility" in SIMULATE_PRESETS["clean"] and "nms_iou" in SIMULATE_PRESETS["clean"]
    own = dict(PERFECT)
    simulated_detections({}, 1, 10, 10, preset=own)
    assert own == PERFECT


def _sequence(tmp_path: Path, n: int = 2):
    import cv2

    root = tmp_path / "seq"
    (root / "img1").mkdir(parents=True)
    for i in range(1, n + 1):
        cv2.imwrite(str(root / "img1" / f"{i:06d}.png"), np.full((8, 8, 3), i, np.uint8))
    write_seqinfo(root / "seqinfo.ini", name="S", length=n, fps=25, width=8, height=8)
    return open_sequence(root)


def test_cached_detections_run_once_per_key_and_frames(tmp_path: Path):
    seq = _sequence(tmp_path)
    calls = []

    def detect(paths):
        calls.append([p.name for p in paths])
        return [_det([0.5], [[1, 1, 2, 2]]), _det([])]

    frames, info = _cached_detections(seq, tmp_path / "cache", "t", b"key", detect)
    assert calls == [["000001.png", "000002.png"]]
    assert info["cached"] is False
    assert re.fullmatch(r"S-t-[0-9a-f]{16}\.txt", Path(info["cache"]).name)
    assert Path(info["cache"]).parent == tmp_path / "cache"
    assert sorted(frames) == [1, 2] and len(frames[1]) == 1 and len(frames[2]) == 0
    np.testing.assert_allclose(frames[1].xywh, [[1, 1, 2, 2]])
    again, info2 = _cached_detections(seq, tmp_path / "cache", "t", b"key", detect)
    assert len(calls) == 1 and info2 == {"cache": info["cache"], "cached": True}
    np.testing.assert_allclose(again[1].score, [0.5])
    _, info3 = _cached_detections(seq, tmp_path / "cache", "t", b"other", detect)
    assert len(calls) == 2 and info3["cache"] != info["cache"]
    import cv2

    cv2.imwrite(str(seq.root / "img1" / "000002.png"), np.full((8, 8, 3), 99, np.uint8))
    _, info4 = _cached_detections(seq, tmp_path / "cache", "t", b"key", detect)
    assert len(calls) == 3 and info4["cache"] != info["cache"]


def test_cached_detections_need_frames(tmp_path: Path):
    root = tmp_path / "bare"
    write_seqinfo(root / "seqinfo.ini", name="b", length=2, fps=25, width=8, height=8)
    with pytest.raises(DataError, match=re.escape(f"{root / 'img1'}: the detector needs frames, and the folder has none")):
        _cached_detections(open_sequence(root), tmp_path / "cache", "t", b"k", lambda paths: [])


def test_detector_weights_must_exist(tmp_path: Path):
    seq = _sequence(tmp_path)
    missing = tmp_path / "best.pt"
    with pytest.raises(DataError, match=re.escape(f"{missing}: detector weights not found")):
        detector_detections(missing, seq, tmp_path / "cache")


def test_nms_of_no_boxes_is_no_boxes():
    kept = _nms(_det([]), 0.5)
    assert len(kept) == 0 and kept.score is not None


def test_detector_runs_once_with_its_threshold_and_device(tmp_path: Path, monkeypatch):
    import labkit.detect.predict as predict_module

    seq = _sequence(tmp_path)
    weights = tmp_path / "best.pt"
    weights.write_bytes(b"weights")
    calls = []

    def fake_predict(w, sources, **kwargs):
        calls.append((Path(w), [Path(s).name for s in sources], kwargs))
        return {s: _det([0.25 * (i + 1)], [[i, i, 3, 3]]) for i, s in enumerate(sources)}

    monkeypatch.setattr(predict_module, "predict", fake_predict)
    frames, info = detector_detections(weights, seq, tmp_path / "cache")
    assert calls == [(weights, ["000001.png", "000002.png"], {"conf": 0.05, "device": "cpu", "progress": False})]
    assert info["cached"] is False and Path(info["cache"]).name.startswith("S-detector-")
    np.testing.assert_allclose(frames[1].score, [0.25])
    np.testing.assert_allclose(frames[2].xywh, [[1, 1, 3, 3]])
    detector_detections(weights, seq, tmp_path / "cache")
    assert len(calls) == 1  # cached
    _, info = detector_detections(weights, seq, tmp_path / "cache", conf=0.3, device="cuda:0")
    assert len(calls) == 2 and info["cached"] is False  # another threshold is another cache
    assert calls[1][2] == {"conf": 0.3, "device": "cuda:0", "progress": False}
