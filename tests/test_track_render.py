"""Review-video drawing: colours by lifecycle state, ID-switch flags, ground truth, bad targets."""

from __future__ import annotations

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
