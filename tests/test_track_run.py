"""labkit.track.run: a whole sequence tracked frame by frame (backfill of tentative frames, coasting
through missing frames, frames read only when the config uses them, the run's stats) and the
association log as JSON Lines. Expected tracks are hand-worked for still boxes far apart (IoU 0
between objects, 1 between frames), with the default min_hits = 3."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from labkit.data.annotations import Detections
from labkit.track.run import TrackRun, track_frames, write_log

A, B = [10.0, 10, 20, 20], [100.0, 10, 20, 20]


def _d(*boxes) -> Detections:
    return Detections(np.array(boxes, float).reshape(-1, 4), np.ones(len(boxes), np.int64),
                      score=np.full(len(boxes), 0.9))


def test_one_still_object_is_backfilled_once_confirmed_and_coasts_after():
    run = track_frames({f: _d(A) for f in range(1, 5)}, 5)
    assert isinstance(run, TrackRun)
    assert sorted(run.tracks) == [1, 2, 3, 4, 5]
    for f in range(1, 5):  # frames 1-2 come as backfill when frame 3 confirms the track
        np.testing.assert_allclose(run.tracks[f].xywh, [A])
        assert run.tracks[f].track_id.tolist() == [1]
    assert len(run.tracks[5]) == 0  # no detection in frame 5 (missing key): the track coasts, no output
    s = run.stats
    assert (s["frames"], s["detections"], s["output_boxes"], s["tracks"]) == (5, 4, 4, 1)
    assert s["motion_only"] is True
    assert s["motion_only_reason"] == "config uses no frames (camera_motion: none, appearance: none)"
    assert s["seconds_reading_frames"] == 0.0
    assert s["seconds"] > 0 and s["frames_per_second"] == pytest.approx(5 / s["seconds"])
    assert len(run.log) == 5 and run.log[0]["frame"] == 1 and run.log[4]["frame"] == 5
    assert sorted(run.states) == [1, 2, 3, 4, 5] and all(len(run.states[f]) == 1 for f in range(1, 6))


def test_backfill_joins_the_boxes_already_output():
    run = track_frames({1: _d(A), 2: _d(A, B), 3: _d(A, B), 4: _d(A, B)}, 4)
    # A confirmed at frame 3 (backfills 1, 2), B at frame 4 (backfills 2, 3 next to A's boxes)
    assert [run.tracks[f].track_id.tolist() for f in range(1, 5)] == [[1], [1, 2], [1, 2], [1, 2]]
    np.testing.assert_allclose(run.tracks[2].xywh, [A, B])
    assert (run.stats["output_boxes"], run.stats["tracks"], run.stats["detections"]) == (7, 2, 7)


def test_without_tentative_history_only_confirmed_frames_are_output():
    run = track_frames({f: _d(A) for f in range(1, 4)}, 3, {"output_tentative_history": False})
    assert [run.tracks[f].track_id.tolist() for f in (1, 2, 3)] == [[], [], [1]]
    assert run.stats["output_boxes"] == 1


def test_no_record_leaves_every_frame_record_and_state_empty():
    run = track_frames({f: _d(A) for f in range(1, 5)}, 4, record=False)
    assert run.log == [{}, {}, {}, {}]
    assert all(len(run.states[f]) == 0 for f in range(1, 5))
    assert run.tracks[4].track_id.tolist() == [1]


def _reader(calls: list):
    def read_frame(f: int) -> np.ndarray:
        calls.append(f)
        return np.zeros((50, 150, 3), np.uint8)
    return read_frame


def test_frames_are_read_only_when_the_config_uses_them():
    calls: list[int] = []
    run = track_frames({1: _d(A)}, 3, read_frame=_reader(calls))
    assert calls == [] and run.stats["motion_only"] is True
    appearance = {"appearance": "histogram", "appearance_weight": 0.5}
    run = track_frames({1: _d(A)}, 3, appearance, read_frame=_reader(calls))
    assert calls == [1, 2, 3]
    assert run.stats["motion_only"] is False and run.stats["motion_only_reason"] is None
    assert run.stats["seconds_reading_frames"] >= 0.0
    run = track_frames({1: _d(A)}, 3, appearance)
    assert run.stats["motion_only"] is True
    assert run.stats["motion_only_reason"] == ("no frames available: camera motion compensation and appearance "
                                               "are off")


def test_zero_frames():
    run = track_frames({}, 0)
    assert run.tracks == {} and run.log == []
    assert (run.stats["frames"], run.stats["tracks"], run.stats["output_boxes"]) == (0, 0, 0)


def test_write_log_is_json_lines_with_sorted_keys(tmp_path: Path):
    path = tmp_path / "deep" / "log.jsonl"
    assert write_log([{"b": 2, "a": 1}, {"frame": 2}], path) == path
    assert path.read_text(encoding="utf-8") == '{"a": 1, "b": 2}\n{"frame": 2}\n'
    assert [p.name for p in path.parent.iterdir()] == ["log.jsonl"]  # no temporary file left
    write_log([], path)
    assert path.read_text(encoding="utf-8") == ""
    run = track_frames({1: _d(A)}, 2)
    write_log(run.log, path)
    assert [json.loads(line)["frame"] for line in path.read_text().splitlines()] == [1, 2]


def test_the_given_embedder_sees_every_frame_with_detections():
    seen = []

    def embed(image, xywh):
        seen.append((image.shape, np.asarray(xywh).tolist()))
        return np.ones((len(xywh), 4))

    appearance = {"appearance": "histogram", "appearance_weight": 0.5}
    track_frames({1: _d(A), 3: _d(A)}, 3, appearance, read_frame=_reader([]), embedder=embed)
    assert seen == [((50, 150, 3), [A]), ((50, 150, 3), [A])]  # frame 2 has no detection to embed


class _Clock:
    """time.perf_counter stand-in: every call advances ``step`` seconds."""

    def __init__(self, step: float):
        self.now, self.step = 100.0, step

    def perf_counter(self) -> float:
        self.now += self.step
        return self.now


def test_timings_with_a_stepped_clock(monkeypatch):
    import labkit.track.run as run_module

    monkeypatch.setattr(run_module, "time", _Clock(1.0))
    appearance = {"appearance": "histogram", "appearance_weight": 0.5}
    run = track_frames({1: _d(A)}, 3, appearance, read_frame=_reader([]))
    # calls: start 101; per frame t0, after (102/103, 104/105, 106/107); end 108
    assert run.stats["seconds"] == 7.0
    assert run.stats["seconds_reading_frames"] == 3.0
    assert run.stats["frames_per_second"] == 3 / 7
    monkeypatch.setattr(run_module, "time", _Clock(0.0))
    run = track_frames({1: _d(A)}, 3)
    assert run.stats["seconds"] == 0.0 and run.stats["frames_per_second"] is None
