"""The pipeline's data contracts: frame records (schema, JSON Lines, Detections converters) and
the preprocessing contract (letterbox geometry, normalisation, channel order)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from labkit.data.annotations import Detections
from labkit.data.masks import mask_to_rle, rle_to_mask
from labkit.errors import DataError
from labkit.pipeline.models import attach_masks
from labkit.pipeline.preprocess import Geometry, InputSpec
from labkit.pipeline.records import (SCHEMA_VERSION, detections_to_record, read_jsonl, record_to_detections,
                                     validate_record, write_jsonl)

NAMES = {1: "disc", 2: "block"}


def _record(frame_id: int = 1, h: int = 9, w: int = 13) -> dict:
    mask = np.zeros((h, w), bool)
    mask[2:5, 3:8] = True
    det = Detections(np.array([[3.0, 2.0, 5.0, 3.0], [0.25, 0.5, 1.125, 2.0]]), [1, 2], score=[0.9, 0.1],
                     track_id=[4, 0], segmentation=[mask_to_rle(mask), None],
                     data={"track_state": np.array(["confirmed", "tentative"], dtype=object)})
    return detections_to_record(det, frame_id=frame_id, timestamp_s=(frame_id - 1) / 25, source=f"f{frame_id}.png",
                                width=w, height=h, class_names=NAMES, semantic={1: mask_to_rle(mask)})


def test_record_round_trips_through_detections() -> None:
    rec = _record()
    assert rec["schema_version"] == SCHEMA_VERSION
    det = record_to_detections(rec)
    np.testing.assert_array_equal(det.xywh, [[3.0, 2.0, 5.0, 3.0], [0.25, 0.5, 1.125, 2.0]])
    assert det.class_id.tolist() == [1, 2] and det.score.tolist() == [0.9, 0.1] and det.track_id.tolist() == [4, 0]
    assert det.get("track_state").tolist() == ["confirmed", "tentative"]
    assert rle_to_mask(det.segmentation[0]).sum() == 15 and det.segmentation[1] is None
    again = detections_to_record(det, frame_id=1, timestamp_s=0.0, source="f1.png", width=13, height=9,
                                 class_names=NAMES, semantic={1: rec["semantic"]["1"]})
    assert again == rec


def test_empty_frame_is_a_valid_record() -> None:
    rec = detections_to_record(Detections.empty(with_score=True), frame_id=3, timestamp_s=0.08, source="x",
                               width=4, height=4, class_names=NAMES)
    assert rec["objects"] == [] and len(record_to_detections(rec)) == 0


def test_jsonl_round_trip_is_byte_stable(tmp_path: Path) -> None:
    records = [_record(1), _record(2)]
    first = write_jsonl(tmp_path / "a.jsonl", records).read_bytes()
    back = read_jsonl(tmp_path / "a.jsonl")
    assert back == records
    assert write_jsonl(tmp_path / "b.jsonl", back).read_bytes() == first
    assert first.count(b"\n") == 2


@pytest.mark.parametrize("change, message", [
    (lambda r: r["objects"][0].update(score=1.5), "objects/0/score: 1.5 is greater than the maximum of 1"),
    (lambda r: r.update(schema_version="0.9"), "schema_version"),
    (lambda r: r["objects"][1].pop("track_id"), "'track_id' is a required property"),
    (lambda r: r["objects"][0]["box_xywh"].__setitem__(2, -1.0), "objects/0/box_xywh/2"),
    (lambda r: r.update(extra=1), "Additional properties"),
    (lambda r: r["objects"][0].update(track_state="gone"), "objects/0/track_state"),
    (lambda r: r["objects"][0]["mask"].update(size=[10, 13]), "objects/0/mask: mask size [10, 13] differs"),
])
def test_a_record_breaking_the_schema_is_named_by_file_and_line(tmp_path: Path, change, message: str) -> None:
    bad = _record(2)
    change(bad)
    path = tmp_path / "predictions.jsonl"
    from labkit.pipeline.records import dumps

    path.write_text(json.dumps(_record(1), sort_keys=True) + "\n" + dumps(bad) + "\n")
    with pytest.raises(DataError) as err:
        read_jsonl(path)
    assert str(path) in str(err.value) and "line 2" in str(err.value) and message in str(err.value)


@pytest.mark.parametrize("text, message", [
    ("{not json\n", "line 1: not valid JSON"),
    ("\n", "line 1: blank line"),
])
def test_malformed_lines_are_named(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "p.jsonl"
    path.write_text(text)
    with pytest.raises(DataError, match=message):
        read_jsonl(path)


def test_frames_must_come_in_order(tmp_path: Path) -> None:
    path = tmp_path / "p.jsonl"
    path.write_text(json.dumps(_record(2)) + "\n" + json.dumps(_record(2)) + "\n")
    with pytest.raises(DataError, match="line 2: frame_id 2 does not follow frame 2"):
        read_jsonl(path)


def test_writing_refuses_a_bad_record(tmp_path: Path) -> None:
    bad = _record(1)
    bad["frame_id"] = 0
    with pytest.raises(DataError, match="line 1: frame_id: 0 is less than the minimum of 1"):
        write_jsonl(tmp_path / "p.jsonl", [bad])
    with pytest.raises(DataError, match="predictions need scores"):
        detections_to_record(Detections(np.zeros((1, 4)), [1]), frame_id=1, timestamp_s=0, source="x", width=2,
                             height=2, class_names=NAMES)
    assert validate_record(_record(1)) is not None


# ------------------------------------------------------------------ preprocessing contract
@pytest.mark.parametrize("hw, size", [((251, 333), 128), ((77, 101), 64), ((999, 17), 160), ((1, 1), 32),
                                      ((240, 320), 128)])
def test_letterbox_geometry_round_trip_is_exact_on_odd_sizes(hw: tuple[int, int], size: int) -> None:
    g = Geometry.fit(hw, size)
    rng = np.random.default_rng(0)
    h, w = hw
    xy = rng.uniform(0, 1, (200, 2)) * [w, h]
    wh = rng.uniform(0, 1, (200, 2)) * [w, h]
    boxes = np.concatenate([xy, xy + wh], axis=1)
    assert np.abs(g.to_original(g.to_canvas(boxes)) - boxes).max() < 1e-6
    # the whole frame maps exactly onto the resized region of the canvas, padding on either side
    full = g.to_canvas(np.array([[0, 0, w, h]]))[0]
    np.testing.assert_allclose(full, [g.pad_x, g.pad_y, g.pad_x + g.new_w, g.pad_y + g.new_h], atol=1e-9)
    assert max(g.new_w, g.new_h) == size and g.pad_x + g.new_w <= size and g.pad_y + g.new_h <= size


def test_canvas_pixels_follow_the_geometry() -> None:
    """A white frame on the canvas: exactly the region to_canvas(frame) is white, the rest padding."""
    spec = InputSpec(size=64, pad_value=114)
    frame = np.full((77, 101, 3), 255, np.uint8)
    x, g = spec.prepare(frame)
    x0, y0, x1, y1 = g.to_canvas(np.array([[0, 0, 101, 77]]))[0].astype(int)
    inside = np.zeros((64, 64), bool)
    inside[y0:y1, x0:x1] = True
    np.testing.assert_allclose(x[:, inside], 1.0)
    np.testing.assert_allclose(x[:, ~inside], 114 / 255, rtol=1e-6)
    # by hand: scale min(64/77, 64/101) = 0.6337; 101 -> 64 columns, 77 -> round(48.79) = 49 rows, pad (64-49)//2 = 7
    assert (y0, y1, x0, x1) == (7, 56, 0, 64)


def test_normalisation_and_channel_order_are_applied() -> None:
    red = np.zeros((8, 8, 3), np.uint8)
    red[..., 0] = 255
    rgb = InputSpec(size=8, pad_value=0, mean=(0.5, 0.5, 0.5), std=(0.5, 0.25, 0.5))
    bgr = InputSpec(size=8, pad_value=0, mean=(0.5, 0.5, 0.5), std=(0.5, 0.25, 0.5), channel_order="BGR")
    assert rgb.prepare(red)[0][:, 0, 0].tolist() == [1.0, -2.0, -1.0]  # (1-.5)/.5, (0-.5)/.25, (0-.5)/.5
    assert bgr.prepare(red)[0][:, 0, 0].tolist() == [-1.0, -2.0, 1.0]  # blue first, red last
    with pytest.raises(DataError, match="channel_order"):
        InputSpec(size=8, pad_value=0, channel_order="RBG")


def test_attach_masks_clips_the_class_map_to_each_box() -> None:
    labels = np.zeros((10, 12), np.uint8)
    labels[1:6, 1:9] = 1  # disc region
    labels[7:9, 0:3] = 5  # star, which no detector category carries
    det = Detections(np.array([[0, 0, 4, 4], [5, 0, 7, 10]], float), [1, 2], score=[0.5, 0.6])
    out, semantic = attach_masks(det, labels, ["background", "disc", "block", "cone", "rod", "star"],
                                 {1: "disc", 2: "block"})
    first = rle_to_mask(out.segmentation[0])
    assert first.sum() == 9 and first[1:4, 1:4].all()  # disc pixels inside the 4x4 box
    assert rle_to_mask(out.segmentation[1]).sum() == 0  # no block pixels in the second box
    assert sorted(semantic) == [1, 5] and rle_to_mask(semantic[5]).sum() == 6
