"""labkit.track building blocks against hand-worked cases: Kalman step, gates, assignment, lifecycle."""

from __future__ import annotations

import numpy as np
import pytest

from labkit.data.annotations import Detections
from labkit.track.association import assign, centre_distance, cosine_distance, iou_xywh
from labkit.track.gating import chi2_threshold, class_gate, iou_gate, mahalanobis_gate
from labkit.track.kalman import BoxKalman, measurement_to_xywh, xywh_to_measurement
from labkit.track.lifecycle import TrackState, after_match, after_miss
from labkit.track.tracker import Tracker

T, C, L, D = (int(s) for s in TrackState)


def test_box_state_round_trip():
    xywh = np.array([[10.0, 20.0, 30.0, 60.0]])
    z = xywh_to_measurement(xywh)
    np.testing.assert_allclose(z, [[25.0, 50.0, 0.5, 60.0]])  # centre, aspect w/h, height
    np.testing.assert_allclose(measurement_to_xywh(z), xywh)


def test_kalman_predict_update_matches_a_hand_computed_step():
    # z = [cx, cy, a, h] = [10, 20, 0.5, 100]; sp = 0.05, sv = 0.00625, sm = 0.05 (DeepSORT's weights)
    kf = BoxKalman(0.05, 0.00625, 0.05)
    mean, cov = kf.initiate(np.array([[10.0, 20.0, 0.5, 100.0]]))
    # initial std of cx: 2 * 0.05 * 100 = 10 -> var 100; of vcx: 10 * 0.00625 * 100 = 6.25 -> var 39.0625
    assert cov[0, 0, 0] == pytest.approx(100.0) and cov[0, 4, 4] == pytest.approx(39.0625)
    mean, cov = kf.predict(mean, cov)
    # P'(cx) = 100 + 39.0625 (velocity folded in) + Q = (0.05*100)^2 = 25 -> 164.0625
    # P'(cx, vcx) = 39.0625; P'(vcx) = 39.0625 + (0.00625*100)^2 = 39.453125
    assert cov[0, 0, 0] == pytest.approx(164.0625)
    assert cov[0, 0, 4] == pytest.approx(39.0625)
    assert cov[0, 4, 4] == pytest.approx(39.453125)
    np.testing.assert_allclose(mean[0, :4], [10, 20, 0.5, 100])  # zero velocity: no move
    mean, cov = kf.update(mean, cov, np.array([[12.0, 20.0, 0.5, 100.0]]))
    # S(cx) = 164.0625 + R = (0.05*100)^2 = 25 -> 189.0625; innovation 2
    s = 189.0625
    assert mean[0, 0] == pytest.approx(10 + 2 * 164.0625 / s)
    assert mean[0, 4] == pytest.approx(2 * 39.0625 / s)
    assert cov[0, 0, 0] == pytest.approx(164.0625 * 25 / s)
    np.testing.assert_allclose(mean[0, 1:4], [20, 0.5, 100])  # no innovation there


def test_initial_process_and_measurement_covariances_by_hand():
    """h = 100, sp = 0.05, sv = 0.00625, sm = 0.1 (the module docstring's formulas):
    P0 std = (2 sp h, 2 sp h, 1e-2, 2 sp h, 10 sv h, 10 sv h, 1e-5, 10 sv h) = (10, 10, .01, 10, 6.25, 6.25, 1e-5, 6.25);
    Q std = (sp h, sp h, 1e-2, sp h, sv h, sv h, 1e-5, sv h) = (5, 5, .01, 5, .625, .625, 1e-5, .625);
    R std = (sm h, sm h, 1e-1, sm h) = (10, 10, .1, 10). All diagonal."""
    kf = BoxKalman(0.05, 0.00625, 0.1)
    mean, cov = kf.initiate(np.array([[10.0, 20.0, 0.5, 100.0]]))
    np.testing.assert_allclose(cov[0], np.diag(np.array([10, 10, 1e-2, 10, 6.25, 6.25, 1e-5, 6.25]) ** 2), rtol=1e-12)
    np.testing.assert_allclose(kf.process_cov(mean)[0],
                               np.diag(np.array([5, 5, 1e-2, 5, 0.625, 0.625, 1e-5, 0.625]) ** 2), rtol=1e-12)
    np.testing.assert_allclose(kf.measurement_cov(mean)[0], np.diag(np.array([10, 10, 0.1, 10]) ** 2), rtol=1e-12)


def _textbook_update(kf: BoxKalman, mean, cov, z):
    """K = P H^T S^-1, x + K (z - H x), (I - K H) P with NumPy's general inverse: the reference."""
    h = np.hstack([np.eye(4), np.zeros((4, 4))])
    s = h @ cov @ h.T + np.diag(kf.measurement_cov(mean[None])[0].diagonal())
    k = cov @ h.T @ np.linalg.inv(s)
    new_cov = (np.eye(8) - k @ h) @ cov
    return mean + k @ (z - h @ mean), (new_cov + new_cov.T) / 2


@pytest.mark.parametrize("coupled", [False, True], ids=["diagonal S", "coupled S (camera warp)"])
def test_kalman_update_equals_the_textbook_update(coupled: bool):
    kf = BoxKalman()
    mean, cov = kf.predict(*kf.initiate(np.array([[10.0, 20.0, 0.5, 100.0], [300.0, 40.0, 0.4, 50.0]])))
    if coupled:  # a rotation-like warp couples cx and cy, as warp_states does with a camera affine
        cov = cov.copy()
        cov[:, 0, 1] = cov[:, 1, 0] = 0.3 * cov[:, 0, 0]
    z = np.array([[12.0, 19.0, 0.52, 104.0], [297.0, 41.0, 0.41, 49.0]])
    new_mean, new_cov = kf.update(mean, cov, z)
    for i in range(2):
        ref_mean, ref_cov = _textbook_update(kf, mean[i], cov[i], z[i])
        np.testing.assert_allclose(new_mean[i], ref_mean, rtol=1e-12, atol=1e-12)
        np.testing.assert_allclose(new_cov[i], ref_cov, rtol=1e-10, atol=1e-12)


def test_kalman_is_vectorised_over_tracks():
    kf = BoxKalman()
    z = np.array([[10.0, 20.0, 0.5, 100.0], [300.0, 40.0, 0.4, 50.0]])
    m2, c2 = kf.predict(*kf.initiate(z))
    for i in range(2):
        m1, c1 = kf.predict(*kf.initiate(z[i:i + 1]))
        np.testing.assert_allclose(m2[i], m1[0])
        np.testing.assert_allclose(c2[i], c1[0])


def test_squared_mahalanobis_of_a_diagonal_case():
    kf = BoxKalman(0.05, 0.00625, 0.05)
    mean = np.array([[0.0, 0.0, 1.0, 100.0, 0, 0, 0, 0]])
    cov = np.zeros((1, 8, 8))
    cov[0, [0, 1, 3], [0, 1, 3]] = 75.0  # + R = 25 -> S = 100 on cx, cy, h
    cov[0, 2, 2] = 0.0  # + R = 0.01 on a
    d2 = kf.squared_mahalanobis(mean, cov, np.array([[20.0, 10.0, 1.0, 100.0], [0, 0, 1.1, 100.0]]))
    np.testing.assert_allclose(d2, [[20 ** 2 / 100 + 10 ** 2 / 100, 0.1 ** 2 / 0.01]])


def test_mahalanobis_gate_keeps_a_pair_exactly_at_the_chi_square_quantile():
    threshold = chi2_threshold(0.95)
    assert threshold == pytest.approx(9.487729036781154)  # chi2.ppf(0.95, 4), statistical tables: 9.488
    d2 = np.array([[threshold, np.nextafter(threshold, np.inf), 0.0]])
    assert mahalanobis_gate(d2, 0.95).tolist() == [[True, False, True]]
    assert mahalanobis_gate(np.array([[1e9]]), 0.0).all()  # probability 0 = gate off


def test_iou_gate_boundary_and_off():
    iou = np.array([[0.3, 0.2999, 0.0]])
    assert iou_gate(iou, 0.3).tolist() == [[True, False, False]]
    assert iou_gate(iou, 0.0).all()
    for gate in (iou_gate(iou, 0.3), iou_gate(iou, 0.0)):
        assert gate.dtype == bool and gate.shape == (1, 3)  # a mask, combined with & by the tracker


def test_class_gate_allows_only_same_class_pairs():
    assert class_gate(np.array([1, 2]), np.array([1, 2, 1])).tolist() == [[True, False, True], [False, True, False]]
    assert class_gate(np.array([3]), np.zeros(0, int)).shape == (1, 0)


def test_iou_and_centre_distance_hand_values():
    a = np.array([[0.0, 0.0, 2.0, 2.0]])
    b = np.array([[1.0, 0.0, 2.0, 2.0], [2.0, 0.0, 2.0, 2.0], [0.0, 0.0, 0.0, 0.0]])
    # overlap 1x2 = 2, union 4 + 4 - 2 = 6; touching boxes 0; a zero box 0
    np.testing.assert_allclose(iou_xywh(a, b), [[2 / 6, 0.0, 0.0]])
    # centres (1,1) and (3,1): distance 2, enclosing box 4 x 2 -> diagonal sqrt(20)
    assert centre_distance(a, b[1:2])[0, 0] == pytest.approx(2 / np.sqrt(20))


def test_xywh_iou_agrees_with_the_metrics_helper():
    from labkit.data.boxes import xywh_to_xyxy
    from labkit.metrics.iou import box_iou

    rng = np.random.default_rng(0)
    a = np.hstack([rng.uniform(0, 50, (7, 2)), rng.uniform(0, 30, (7, 2))])
    b = np.hstack([rng.uniform(0, 50, (5, 2)), rng.uniform(0, 30, (5, 2))])
    np.testing.assert_allclose(iou_xywh(a, b), box_iou(xywh_to_xyxy(a), xywh_to_xyxy(b)), atol=1e-12)


def test_cosine_distance():
    d = cosine_distance(np.array([[1.0, 0.0]]), np.array([[2.0, 0.0], [0.0, 3.0], [1.0, 1.0]]))
    np.testing.assert_allclose(d, [[0.0, 1.0, 1 - 1 / np.sqrt(2)]])
    # no tracks (an empty list) or no detections: an empty (T, D) matrix
    assert cosine_distance([], np.ones((2, 3))).shape == (0, 2)
    assert cosine_distance(np.ones((2, 3)), []).shape == (2, 0)


def test_assign_ties_go_to_the_same_index_pairing():
    one = assign(np.array([[0.5, 0.5]]), 0.8)
    assert one.matches.tolist() == [[0, 0]] and one.unmatched_detections.tolist() == [1]
    square = assign(np.full((2, 2), 0.5), 0.8)
    assert square.matches.tolist() == [[0, 0], [1, 1]]


def test_assign_empty_inputs():
    no_dets = assign(np.zeros((2, 0)), 0.8)
    assert no_dets.matches.shape == (0, 2) and no_dets.unmatched_tracks.tolist() == [0, 1]
    no_tracks = assign(np.zeros((0, 3)), 0.8)
    assert no_tracks.matches.shape == (0, 2) and no_tracks.unmatched_detections.tolist() == [0, 1, 2]
    assert no_dets.costs.shape == no_tracks.costs.shape == (0,)  # one cost per match, none here


def test_assign_everything_gated_out():
    result = assign(np.zeros((2, 2)), 0.8, allowed=np.zeros((2, 2), bool))
    assert result.matches.shape == (0, 2)
    assert result.unmatched_tracks.tolist() == [0, 1] and result.unmatched_detections.tolist() == [0, 1]


def test_assign_threshold_is_inclusive_and_forbidden_pairs_never_match():
    at = assign(np.array([[0.8, np.nextafter(0.8, 1.0)]]).T, 0.8)  # 2 tracks, 1 detection
    assert at.matches.tolist() == [[0, 0]] and at.costs.tolist() == [0.8]
    # cheapest single pair (0,0) = 0.1, but (0,1) + (1,0) = 0.9 matches both: more matches first
    both = assign(np.array([[0.1, 0.7], [0.2, 0.9]]), 0.8)
    assert both.matches.tolist() == [[0, 1], [1, 0]]
    # with a gate mask the threshold stays inclusive
    gated = assign(np.array([[0.8, 0.1]]), 0.8, allowed=np.array([[True, False]]))
    assert gated.matches.tolist() == [[0, 0]] and gated.costs.tolist() == [0.8]


def test_lifecycle_transitions_at_the_boundaries():
    # matched: tentative confirmed exactly at hits == min_hits; lost re-activated
    assert after_match(np.array([T, T, L, C]), np.array([2, 3, 1, 9]), 3).tolist() == [T, C, C, C]
    # unmatched: tentative deleted at once; confirmed lost; lost deleted only past max_misses
    assert after_miss(np.array([T, C, L, L]), np.array([1, 1, 2, 3]), 2).tolist() == [D, L, L, D]
    assert after_miss(np.array([C]), np.array([1]), 0).tolist() == [D]
    # states stay integer codes (the ``state`` column of logs and videos)
    assert after_match(np.array([T]), np.array([1]), 3).dtype == np.int64
    assert after_miss(np.array([T]), np.array([1]), 3).dtype == np.int64


def _box(x: float, y: float = 100.0) -> np.ndarray:
    return np.array([[x, y, 20.0, 40.0]])


def _run(frames: dict[int, np.ndarray], length: int, **config) -> list:
    tracker = Tracker(config)
    return [tracker.step(Detections(frames.get(f, np.zeros((0, 4))), np.ones(len(frames.get(f, [])), int),
                                    score=np.ones(len(frames.get(f, [])))), frame=f) for f in range(1, length + 1)]


def test_tracker_confirms_on_the_nth_hit_and_backfills_the_tentative_frames():
    frames = {f: _box(10.0 + 2 * f) for f in range(1, 6)}
    plain = _run(frames, 5, min_hits=3, output_tentative_history=False)
    assert [len(r.output) for r in plain] == [0, 0, 1, 1, 1]
    history = _run(frames, 5, min_hits=3, output_tentative_history=True)
    assert sorted(history[2].backfill) == [1, 2]  # confirmed on frame 3: frames 1-2 handed out then
    assert history[2].log["tracks"][0]["decision"] == "confirmed"


@pytest.mark.parametrize("gap, same_id", [(2, True), (3, False)])
def test_lost_track_survives_max_misses_frames_then_is_deleted(gap: int, same_id: bool):
    # seen on frames 1-4, missing for `gap` frames, back afterwards at the predicted place
    seen = [f for f in range(1, 12) if not 4 < f <= 4 + gap]
    frames = {f: _box(10.0 + 2 * f) for f in seen}
    results = _run(frames, 11, min_hits=1, max_misses=2)
    states = [r.tracks.data["state"].tolist() for r in results]
    assert states[4] == [L] and states[5] == [L]  # misses 1 and 2: lost
    ids = {int(i) for r in results for i in r.output.track_id}
    assert (len(ids) == 1) == same_id
    if not same_id:
        assert results[6].log["tracks"][0]["decision"] == "deleted"  # miss 3 > max_misses
        assert results[6].log["tracks"][0]["state_after"] == TrackState.DELETED.label
        assert states[6] == []  # gone from the live tracks
    else:
        assert results[6].log["tracks"][0]["decision"] == "reactivated"


def test_no_detections_coast_and_no_tracks_start():
    results = _run({1: _box(10.0)}, 4, min_hits=1, max_misses=5)
    assert [len(r.output) for r in results] == [1, 0, 0, 0]
    assert [r.tracks.data["state"].tolist() for r in results] == [[C], [L], [L], [L]]
    assert _run({}, 3)[-1].tracks.track_id.size == 0


def test_crossing_objects_keep_their_ids():
    from labkit.metrics.id_events import id_events

    # two people walk towards each other on nearly the same line and cross around frame 20
    gt, dets = {}, {}
    for f in range(1, 41):
        boxes = np.array([[20.0 + 5 * f, 100.0, 20.0, 40.0], [220.0 - 5 * f, 104.0, 20.0, 40.0]])
        gt[f] = Detections(boxes, np.ones(2, int), track_id=np.array([1, 2]))
        dets[f] = boxes
    results = _run(dets, 40)
    pred = {r.frame: r.output for r in results}
    for r in results:
        for frame, extra in r.backfill.items():
            pred[frame] = Detections(np.vstack([pred[frame].xywh, extra.xywh]),
                                     np.concatenate([pred[frame].class_id, extra.class_id]),
                                     track_id=np.concatenate([pred[frame].track_id, extra.track_id]))
    switches = [e for e in id_events(gt, pred, num_frames=40, preprocess="none") if e.switch]
    assert len(switches) <= 1


def test_same_input_gives_identical_output():
    rng = np.random.default_rng(3)
    frames = {f: np.hstack([rng.uniform(0, 300, (5, 2)), rng.uniform(10, 40, (5, 2))]) for f in range(1, 21)}
    a = _run(frames, 20)
    b = _run(frames, 20)
    assert [r.log for r in a] == [r.log for r in b]
    for ra, rb in zip(a, b):
        np.testing.assert_array_equal(ra.output.xywh, rb.output.xywh)
        np.testing.assert_array_equal(ra.output.track_id, rb.output.track_id)


@pytest.mark.parametrize("method", ["orb", "ecc"])
def test_camera_motion_recovers_a_known_shift(method: str):
    import cv2

    from labkit.track.camera import CameraMotion

    rng = np.random.default_rng(0)
    base = cv2.GaussianBlur(rng.integers(0, 255, (240, 320)).astype(np.uint8), (0, 0), 1.5)
    base = cv2.cvtColor(cv2.equalizeHist(base), cv2.COLOR_GRAY2RGB)
    shifted = cv2.warpAffine(base, np.float32([[1, 0, 3], [0, 1, -2]]), (320, 240), borderMode=cv2.BORDER_REFLECT)
    camera = CameraMotion(method)
    camera.estimate(base)
    affine = camera.estimate(shifted)  # previous -> current: content moved by (+3, -2)
    assert camera.last_status.startswith("ok"), camera.last_status
    np.testing.assert_allclose(affine[:, 2], [3, -2], atol=0.5)
    np.testing.assert_allclose(affine[:, :2], np.eye(2), atol=0.02)
    assert affine.dtype == np.float64


def test_camera_motion_statuses_and_excluded_boxes():
    """First frame: identity. A blank frame has no features: identity, "too few features". Boxes
    (the tracked objects) are left out of the ORB features: a box covering the whole textured frame,
    even one reaching past its top-left corner, leaves none."""
    import cv2

    from labkit.track.camera import CameraMotion

    rng = np.random.default_rng(1)
    textured = cv2.cvtColor(cv2.GaussianBlur(rng.integers(0, 255, (120, 160)).astype(np.uint8), (0, 0), 1.5),
                            cv2.COLOR_GRAY2RGB)
    blank = np.zeros((120, 160, 3), np.uint8)
    camera = CameraMotion("orb")
    np.testing.assert_array_equal(camera.estimate(textured), np.eye(2, 3))
    assert camera.last_status == "first frame"
    np.testing.assert_array_equal(camera.estimate(blank), np.eye(2, 3))
    assert camera.last_status == "too few features"
    masked = CameraMotion("orb")
    masked.estimate(textured, np.array([[-10.0, -10.0, 200.0, 150.0]]))
    masked.estimate(textured, np.array([[-10.0, -10.0, 200.0, 150.0]]))
    assert masked.last_status == "too few features"
    visible = CameraMotion("orb")
    visible.estimate(textured, np.array([[-10.0, -10.0, 30.0, 30.0]]))  # a small box leaves most features
    visible.estimate(textured, np.array([[-10.0, -10.0, 30.0, 30.0]]))
    assert visible.last_status.startswith("ok"), visible.last_status
    ecc = CameraMotion("ecc")
    np.testing.assert_array_equal(ecc.estimate(textured), np.eye(2, 3))
    assert ecc.last_status == "first frame"


def test_warp_states_moves_centres_and_scales_heights():
    from labkit.track.camera import warp_states

    mean = np.array([[10.0, 20.0, 0.5, 40.0, 1.0, 0.0, 0.0, 0.0]])
    affine = np.array([[2.0, 0.0, 5.0], [0.0, 2.0, -1.0]])  # zoom x2, then shift
    new_mean, new_cov = warp_states(mean, np.eye(8)[None], affine)
    np.testing.assert_allclose(new_mean[0], [25.0, 39.0, 0.5, 80.0, 2.0, 0.0, 0.0, 0.0])
    assert new_cov[0, 0, 0] == pytest.approx(4.0) and new_cov[0, 2, 2] == pytest.approx(1.0)


def test_log_records_gated_out_and_over_threshold_candidates():
    track = np.array([[100.0, 100.0, 20.0, 40.0]])
    # frame 2: detection 0 overlaps the prediction with IoU 1/3 (x shifted by 10: 10*40 / (2*800 - 400));
    # detection 1 sits exactly on it
    frames = {1: track, 2: np.array([[110.0, 100.0, 20.0, 40.0], [100.0, 100.0, 20.0, 40.0]])}
    gated = _run(frames, 2, min_hits=1, gate_min_iou=0.5)[1].log["tracks"][0]
    assert gated["detection"] == 1 and gated["gated_out"] == [0] and gated["iou"] == 1.0
    over = _run(frames, 2, min_hits=1, max_cost=0.5)[1].log["tracks"][0]
    assert over["gated_out"] == [] and over["over_threshold"] == [0]  # cost 1 - 1/3 > 0.5


@pytest.mark.parametrize("confirmed_first, winner", [(True, 1), (False, 2)])
def test_confirmed_tracks_choose_before_tentative_ones(confirmed_first: bool, winner: int):
    # track 1 is confirmed on frame 3; a duplicate box on frame 3 starts tentative track 2 exactly
    # where the only detection of frame 4 is. IoU(track 1, det) = 16*40 / (2*800 - 16*40) = 0.5.
    frames = {1: _box(100.0), 2: _box(100.0), 3: np.vstack([_box(100.0), _box(104.0)]), 4: _box(104.0)}
    result = _run(frames, 4, min_hits=3, confirmed_first=confirmed_first)[3]
    matched = [t["track_id"] for t in result.log["tracks"] if t["detection"] == 0]
    assert matched == [winner]


def _step_all(tracker: Tracker, frames: list[tuple[np.ndarray, list[int], list[float]]]) -> list:
    return [tracker.step(Detections(boxes, cls, score=scores), frame=f)
            for f, (boxes, cls, scores) in enumerate(frames, start=1)]


BYTE = {"min_hits": 1, "high_score": 0.6, "low_score": 0.1, "new_track_score": 0.7, "low_score_pass": True,
        "score_fusion": True}


def test_second_pass_gives_each_track_its_own_low_score_detection():
    """ByteTrack's second pass: two confirmed tracks far apart, then only low-score detections, listed
    in the other order. Each track keeps its own object: ids follow the boxes, not the list order."""
    a, b = (lambda f: _box(10.0 + 2 * f)), (lambda f: _box(400.0 + 2 * f))
    frames = [(np.concatenate([a(f), b(f)]), [1, 1], [0.9, 0.9]) for f in (1, 2, 3)]
    frames.append((np.concatenate([b(4), a(4)]), [1, 1], [0.3, 0.3]))
    results = _step_all(Tracker(BYTE), frames)

    def ids_by_x(r):
        return {round(float(x) / 100): int(i) for x, i in zip(r.output.xywh[:, 0], r.output.track_id)}

    assert len(results[3].output) == 2
    assert ids_by_x(results[3]) == ids_by_x(results[2])
    low = [entry for entry in results[3].log["tracks"] if entry.get("stage")]
    assert [entry["stage"] for entry in low] == ["low", "low"]
    # the log reports the second pass's own cost, the IoU distance (not the score-fused first-pass cost)
    assert all(entry["cost"] == pytest.approx(1 - entry["iou"], abs=1e-4) for entry in low)


def test_second_pass_respects_the_gates():
    """With class_aware, a low-score detection of another class on top of a confirmed track does not
    continue it: the track is lost on that frame (no output)."""
    frames = [(_box(10.0 + 2 * f), [1], [0.9]) for f in (1, 2, 3)] + [(_box(18.0), [2], [0.3])]
    results = _step_all(Tracker(dict(BYTE, class_aware=True)), frames)
    assert len(results[2].output) == 1 and len(results[3].output) == 0
    assert results[3].tracks.data["state"].tolist() == [L]


def test_mahalanobis_gate_stops_a_jump_in_height_that_iou_would_accept():
    """A steady 20 x 40 box, then the same centre 60 px tall: IoU 40 / 60 = 0.67 (cost 0.33, accepted
    without the gate), but a height jump of 20 px against the filter's few-px uncertainty is far
    outside the 95 % ellipsoid (d^2 >> 9.49): with the gate the track misses that frame."""
    frames = [(_box(10.0), [1], [0.9]) for _ in range(4)] + [(np.array([[10.0, 90.0, 20.0, 60.0]]), [1], [0.9])]
    off = _step_all(Tracker({"min_hits": 1}), frames)
    on = _step_all(Tracker({"min_hits": 1, "gate_probability": 0.95}), frames)
    assert [len(r.output) for r in off] == [1] * 5 and len({int(r.output.track_id[0]) for r in off}) == 1
    assert [len(r.output) for r in on[:4]] == [1] * 4
    first = int(on[0].output.track_id[0])
    assert first not in on[4].output.track_id.tolist()  # the old track did not take the jumped box
    assert on[4].tracks.data["state"][on[4].tracks.track_id.tolist().index(first)] == L
