"""Overlays and audit grids (labkit.viz)."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
from matplotlib.figure import Figure

from labkit.data.annotations import Dataset, Detections, ImageRecord
from labkit.data.coco import save_coco
from labkit.data.masks import mask_to_rle
from labkit.data.splits import DuplicatePair
from labkit.errors import DataError
from labkit.viz import audit_grids, color_for, draw_detections, pairs_figure, sample_grid

H, W = 60, 80


def _detections(track: bool = False) -> Detections:
    mask = np.zeros((H, W), bool)
    mask[30:50, 40:70] = True
    return Detections([[5, 20, 20, 15], [40, 30, 30, 20]], [1, 2], segmentation=[None, mask_to_rle(mask)],
                      track_id=[7, 9] if track else None, data={"iscrowd": np.array([0, 1])})


def test_colours_by_hand_and_distinct_for_neighbouring_ids():
    # hue 0, saturation 0.75, value 0.95 (colorsys.hsv_to_rgb): red 0.95 * 255 = 242.25, green and
    # blue 0.95 * 0.25 * 255 = 60.6; int() truncates
    assert color_for(0) == (242, 60, 60)
    colours = [color_for(k) for k in range(200)]
    assert len(set(colours)) == 200  # 200 track ids, 200 colours
    # consecutive ids (tracks born one after another) differ by >= 100 in some channel
    assert min(np.abs(np.subtract(colours[k], colours[k + 1])).max() for k in range(199)) >= 100
    assert all(0 <= c <= 255 for c in color_for(12345))


def test_colours_are_the_same_in_another_process():
    """A track keeps its colour across runs: no hash() or random state behind color_for."""
    import json
    import os
    import subprocess
    import sys

    code = "import json; from labkit.viz import color_for; print(json.dumps([color_for(k) for k in range(50)]))"
    env = {**os.environ, "PYTHONHASHSEED": "12345"}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True).stdout
    assert json.loads(out) == [list(color_for(k)) for k in range(50)]


def test_draw_detections_draws_boxes_masks_and_leaves_input_alone():
    img = np.full((H, W, 3), 50, np.uint8)
    out = draw_detections(img, _detections(), {1: "disc", 2: "block"}, show_masks=True)
    assert out.shape == img.shape and out.dtype == np.uint8 and (img == 50).all()
    assert tuple(out[27, 5]) == color_for(1)  # left edge of box 1 (rows 20..34 below its label)
    inside = out[45, 55].astype(int)  # inside the mask of object 2, away from lines and text
    expected = (0.55 * 50 + 0.45 * np.array(color_for(2))).astype(int)
    assert np.abs(inside - expected).max() <= 1
    assert (out[10:15, 30:35] == 50).all()  # untouched background
    no_mask = draw_detections(img, _detections(), show_masks=False)
    assert (no_mask[45, 55] == 50).all()


def test_track_ids_choose_the_colour_and_appear_in_labels():
    img = np.zeros((H, W), np.uint8)  # greyscale input is accepted
    with_ids = draw_detections(img, _detections(track=True), show_masks=False)
    assert tuple(with_ids[27, 5]) == color_for(7)
    by_class = draw_detections(img, _detections(track=True), show_masks=False, show_ids=False)
    assert tuple(by_class[27, 5]) == color_for(1)
    float_img = draw_detections(np.zeros((H, W, 3), np.float32), Detections.empty())
    assert float_img.dtype == np.uint8 and not float_img.any()
    with pytest.raises(ValueError, match="expected an RGB image"):
        draw_detections(np.zeros((H, W, 2), np.uint8), Detections.empty())


def _dataset(root, split: str, n: int) -> Dataset:
    rng = np.random.default_rng(0)
    (root / "images" / split).mkdir(parents=True, exist_ok=True)
    recs = []
    for i in range(n):
        name = f"{split}/{i:03d}.png"
        cv2.imwrite(str(root / "images" / name), rng.integers(0, 255, (H, W, 3), dtype=np.uint8))
        recs.append(ImageRecord(i + 1, name, W, H, _detections()))
    ds = Dataset([{"id": 1, "name": "disc"}, {"id": 2, "name": "block"}], recs, root=root / "images")
    save_coco(ds, root / "annotations" / f"instances_{split}.json")
    return ds


def test_sample_grid_is_seeded_and_saves(tmp_path):
    ds = _dataset(tmp_path, "train", 7)
    fig = sample_grid(ds, n=5, seed=1, path=tmp_path / "grid.png", cols=3)
    assert isinstance(fig, Figure) and len(fig.axes) == 5
    titles = [ax.get_title() for ax in fig.axes]
    assert titles == [ax.get_title() for ax in sample_grid(ds, n=5, seed=1).axes]
    assert titles != [ax.get_title() for ax in sample_grid(ds, n=5, seed=2).axes]
    assert cv2.imread(str(tmp_path / "grid.png")) is not None
    assert len(sample_grid(ds, n=50).axes) == 7
    with pytest.raises(ValueError, match="no images"):
        sample_grid(Dataset([], []))


def test_audit_grids_one_png_per_split(tmp_path):
    for split, n in (("val", 2), ("train", 4), ("test", 1)):
        _dataset(tmp_path / "ds", split, n)
    paths = audit_grids(tmp_path / "ds", tmp_path / "audit", n=3)
    assert [p.name for p in paths] == ["audit_train.png", "audit_val.png", "audit_test.png"]
    assert all(cv2.imread(str(p)).shape[2] == 3 for p in paths)
    with pytest.raises(ValueError, match="no annotations"):
        audit_grids(tmp_path / "audit", tmp_path / "x")


def test_pairs_figure_one_row_per_pair_left_and_right(tmp_path):
    files = []
    for i, colour in enumerate(((255, 0, 0), (0, 0, 255), (0, 255, 0))):
        img = np.zeros((12, 16, 3), np.uint8)
        img[:] = colour
        files.append(tmp_path / f"img{i}.png")
        cv2.imwrite(str(files[-1]), img[..., ::-1])
    pairs = [DuplicatePair("train", str(files[0]), "test", str(files[1]), 3),
             DuplicatePair("train", str(files[2]), "val", str(files[1]), 5)]
    fig = pairs_figure(pairs, n=5, path=tmp_path / "out" / "pairs.png")
    axes = fig.axes
    assert len(axes) == 4 and (tmp_path / "out" / "pairs.png").stat().st_size > 0
    assert axes[0].get_title() == "train: img0.png" and axes[1].get_title() == "test: img1.png  (distance 3 bits)"
    assert axes[2].get_title() == "train: img2.png" and axes[3].get_title().startswith("val: img1.png")
    assert tuple(axes[0].images[0].get_array()[0, 0]) == (255, 0, 0)  # RGB order kept
    assert tuple(axes[1].images[0].get_array()[0, 0]) == (0, 0, 255)
    assert len(pairs_figure(pairs, n=1).axes) == 2


def test_pairs_figure_without_pairs_is_an_error():
    with pytest.raises(DataError, match="no near-duplicate pairs"):
        pairs_figure([])
