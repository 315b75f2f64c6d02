"""Review-video drawing: colours by lifecycle state, ID-switch flags, ground truth, bad targets."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest

from labkit.data.annotations import Detections
from labkit.errors import DataError
from labkit.track.lifecycle import TrackState
from labkit.track.render import COLOURS, GT_COLOUR, SWITCH_COLOUR, check_video_target, draw_frame


def _has(img: np.ndarray, colour) -> bool:
    return bool((img.reshape(-1, 3) == np.array(colour, np.uint8)).all(axis=1).any())


def test_draw_frame_colours_states_switches_and_gt():
    canvas = np.zeros((120, 160, 3), np.uint8)
    tracks = Detections(np.array([[10.0, 10.0, 30.0, 60.0]]), np.ones(1, int), track_id=np.array([7]))
    states = Detections(np.array([[10.0, 10.0, 30.0, 60.0], [90.0, 20.0, 30.0, 60.0]]), np.ones(2, int),
                        track_id=np.array([7, 8]),
                        data={"state": np.array([int(TrackState.CONFIRMED), int(TrackState.LOST)]),
                              "detection": np.array([0, -1]),
                              "predicted_xywh": np.array([[12.0, 10.0, 30.0, 60.0], [90.0, 20.0, 30.0, 60.0]])})
    gt = Detections(np.array([[50.0, 40.0, 30.0, 60.0]]), np.ones(1, int), track_id=np.array([1]))
    img = draw_frame(canvas, 5, tracks, states, gt, [{"frame": 5, "previous_track_id": 3, "new_track_id": 7}])
    assert _has(img, COLOURS[TrackState.CONFIRMED]) and _has(img, COLOURS[TrackState.LOST])
    assert _has(img, SWITCH_COLOUR) and _has(img, GT_COLOUR)
    assert not _has(draw_frame(canvas, 5, tracks), SWITCH_COLOUR)  # no events: no flag
    assert canvas.sum() == 0  # the input frame is not drawn on


@pytest.mark.parametrize("name", ["out.avi", "out", "out.gif"])
def test_only_mp4_targets(tmp_path: Path, name: str):
    with pytest.raises(DataError, match="must be an .mp4"):
        check_video_target(tmp_path / name)
    (tmp_path / "d.mp4").mkdir()
    with pytest.raises(DataError, match="folder"):
        check_video_target(tmp_path / "d.mp4")


# ------------------------------------------------------------------ hand-placed pixels, logs, videos
def _state_tracks(state_7: int = int(TrackState.CONFIRMED), det_7: int = 0) -> Detections:
    """Track 7 (predicted box [100, 80, 20, 20]) and lost track 8 (predicted box [90, 20, 30, 40])."""
    return Detections(np.zeros((2, 4)), np.ones(2, int), track_id=np.array([7, 8]),
                      data={"state": np.array([state_7, int(TrackState.LOST)]), "detection": np.array([det_7, -1]),
                            "predicted_xywh": np.array([[100.0, 80.0, 20.0, 20.0], [90.0, 20.0, 30.0, 40.0]])})


TRACK_7 = Detections(np.array([[10.0, 60.0, 30.0, 40.0]]), np.ones(1, int), track_id=np.array([7]))


def test_matched_tracks_show_their_predicted_box_and_lost_ones_a_dashed_box():
    canvas = np.zeros((120, 160, 3), np.uint8)
    img = draw_frame(canvas, 1, TRACK_7, _state_tracks())
    np.testing.assert_array_equal(img[80, 110], (255, 255, 255))  # thin predicted box of the matched track
    # the lost box's bottom edge (y = 60, x 90..120, 30 px): 3 parts of 10 px, dashes on the 1st and 3rd
    np.testing.assert_array_equal(img[60, 90], COLOURS[TrackState.LOST])
    assert not (img[60, 101:109] == COLOURS[TrackState.LOST]).all(axis=1).any()
    np.testing.assert_array_equal(img[60, 112], COLOURS[TrackState.LOST])
    unmatched = draw_frame(canvas, 1, TRACK_7, _state_tracks(det_7=-1))
    np.testing.assert_array_equal(unmatched[80, 110], (0, 0, 0))


def test_track_colour_follows_its_state():
    canvas = np.zeros((120, 160, 3), np.uint8)
    img = draw_frame(canvas, 1, TRACK_7, _state_tracks(state_7=int(TrackState.TENTATIVE)))
    np.testing.assert_array_equal(img[80, 10], COLOURS[TrackState.TENTATIVE])  # left edge of track 7's box
    assert not _has(img, COLOURS[TrackState.CONFIRMED])
    img = draw_frame(canvas, 1, TRACK_7)  # no states: confirmed
    np.testing.assert_array_equal(img[80, 10], COLOURS[TrackState.CONFIRMED])
    no_ids = Detections(np.array([[10.0, 60.0, 30.0, 40.0]]), np.ones(1, int))
    np.testing.assert_array_equal(draw_frame(canvas, 1, no_ids)[80, 10], COLOURS[TrackState.CONFIRMED])


def test_trails_need_two_points_and_switch_flags_need_the_new_track():
    canvas = np.zeros((120, 160, 3), np.uint8)
    img = draw_frame(canvas, 1, TRACK_7, trails={7: [(50, 110), (90, 110)]})
    assert (img[109:112, 60:80, 1] > 150).any()  # an anti-aliased green line along y = 110
    img = draw_frame(canvas, 1, TRACK_7, trails={7: [(50, 110)]})
    assert img[105:115, 45:95].max() == 0
    img = draw_frame(canvas, 1, TRACK_7, switches=[{"previous_track_id": 7, "new_track_id": 9}])
    assert not _has(img, SWITCH_COLOUR)
    gt_no_ids = Detections(np.array([[50.0, 40.0, 30.0, 60.0]]), np.ones(1, int))
    np.testing.assert_array_equal(draw_frame(canvas, 1, TRACK_7, gt=gt_no_ids)[70, 50], GT_COLOUR)


def test_video_target_messages(tmp_path: Path):
    import re

    with pytest.raises(DataError, match=re.escape(f"{tmp_path / 'out'}: a review video must be an .mp4 file, "
                                                  "got suffix '(none)'")):
        check_video_target(tmp_path / "out")
    with pytest.raises(DataError, match=re.escape(f"{tmp_path / 'o.gif'}: a review video must be an .mp4 file, "
                                                  "got suffix '.gif'")):
        check_video_target(tmp_path / "o.gif")
    (tmp_path / "d.mp4").mkdir()
    with pytest.raises(DataError, match=re.escape(f"{tmp_path / 'd.mp4'}: is a folder, not a video file")):
        check_video_target(tmp_path / "d.mp4")
    assert check_video_target(str(tmp_path / "R.MP4")) == tmp_path / "R.MP4"


def test_states_from_log(tmp_path: Path):
    import json

    from labkit.track.render import states_from_log

    log = tmp_path / "log.jsonl"
    log.write_text(json.dumps({"frame": 2, "tracks": [
        {"track_id": 4, "state_after": "tentative", "predicted_xywh": [1, 2, 3, 4], "detection": 0},
        {"track_id": 5, "state_after": "lost", "predicted_xywh": [5, 6, 7, 8], "detection": None}]}) + "\n"
        + json.dumps({"frame": 3, "tracks": []}) + "\n")
    states = states_from_log(log)
    assert sorted(states) == [2, 3] and len(states[3]) == 0
    assert states[3].data["state"].dtype == np.int64 and states[3].data["detection"].dtype == np.int64
    s = states[2]
    assert s.track_id.tolist() == [4, 5] and s.class_id.tolist() == [1, 1]
    assert s.data["state"].tolist() == [int(TrackState.TENTATIVE), int(TrackState.LOST)]
    assert s.data["detection"].tolist() == [0, -1]
    np.testing.assert_array_equal(s.data["predicted_xywh"], [[1, 2, 3, 4], [5, 6, 7, 8]])
    np.testing.assert_array_equal(s.xywh, [[1, 2, 3, 4], [5, 6, 7, 8]])
    for bad in ("not json", '{"frame": 1}', '{"frame": 1, "tracks": [{"track_id": 1, "state_after": "gone", '
                '"predicted_xywh": [0, 0, 1, 1], "detection": null}]}'):
        log.write_text('{"frame": 1, "tracks": []}\n' + bad + "\n")
        with pytest.raises(DataError, match=re.escape(f"{log}: record line 2: not an association log record (")):
            states_from_log(log)


def test_render_video_draws_every_frame_with_its_trail(tmp_path: Path, monkeypatch):
    pytest.importorskip("imageio_ffmpeg")
    import imageio.v2 as imageio

    import labkit.track.render as render

    seen = []

    def fake_draw(image, frame, det, states, gt, switches, trails):
        seen.append((image.shape, int(image[0, 0, 0]), frame, None if det.track_id is None else det.track_id.tolist(), states, gt, list(switches),
                     {k: list(v) for k, v in trails.items()}))
        return image

    monkeypatch.setattr(render, "draw_frame", fake_draw)
    tracks = {1: Detections(np.array([[0.0, 0, 4, 2]]), np.ones(1, int), track_id=np.array([3])),
              2: Detections(np.array([[2.0, 2, 4, 2]]), np.ones(1, int), track_id=np.array([3]))}
    switches = [{"frame": 2, "previous_track_id": 1, "new_track_id": 3, "switch": True},
                {"frame": 2, "previous_track_id": 3, "new_track_id": 3, "switch": False},
                {"frame": 3, "previous_track_id": 2, "new_track_id": 3}]
    out = tmp_path / "v" / "r.mp4"
    info = render.render_video(out, 3, tracks, size=(16, 24), switches=switches, fps=10, states={2: "S2"}, gt={3: "G3"})
    assert info == {"path": str(out), "frames": 3, "fps": 10, "codec": "h264"}
    assert [p.name for p in out.parent.iterdir()] == ["r.mp4"]
    assert [s[:4] for s in seen] == [((16, 24, 3), 96, 1, [3]), ((16, 24, 3), 96, 2, [3]), ((16, 24, 3), 96, 3, None)]
    assert [(s[4], s[5]) for s in seen] == [(None, None), ("S2", None), (None, "G3")]
    assert [len(s[6]) for s in seen] == [0, 1, 1] and seen[1][6][0]["previous_track_id"] == 1
    assert seen[0][7] == {3: [(2.0, 1.0)]} and seen[2][7] == {3: [(2.0, 1.0), (4.0, 3.0)]}
    monkeypatch.undo()
    info = render.render_video(out, 2, {}, read_frame=lambda f: np.full((48, 64, 3), 200, np.uint8), fps=5)
    reader = imageio.get_reader(str(out))
    try:
        frames = [frame for frame in reader]
    finally:
        reader.close()
    assert len(frames) == 2 and frames[0].shape == (48, 64, 3)
    assert abs(int(frames[0][40, 50, 1]) - 200) <= 8  # away from the frame label, lossy H.264


def test_switch_flag_has_a_ring_and_a_label_above_the_box():
    canvas = np.zeros((140, 160, 3), np.uint8)
    track = Detections(np.array([[10.0, 80.0, 30.0, 40.0]]), np.ones(1, int), track_id=np.array([7]))
    img = draw_frame(canvas, 1, track, switches=[{"previous_track_id": 3, "new_track_id": 7}])
    magenta = (img[..., 0] > 150) & (img[..., 1] < 80) & (img[..., 2] > 150)
    # ring: centre (25, 100), radius 40 / 2 + 6 = 26, so rows 74..126; the label's baseline is at 80 - 12 - 3 = 65
    assert magenta[74:127].any()
    assert magenta[50:67].any()
    assert not magenta[:45].any() and not magenta[128:].any()
