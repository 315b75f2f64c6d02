import numpy as np
import pytest

from labkit.errors import DataError
from labkit.segment.postprocess import (apply_per_class, clean_label_map, closing, connected_components, fill_holes, opening,
                                        remove_small_components)
from labkit.segment.tiling import predict_tiled, tile_origins


def _blob_with_speck_and_rod():
    m = np.zeros((40, 60), bool)
    m[5:25, 5:25] = True      # a square
    m[30, 40] = True          # a one-pixel speck
    m[5:35, 45:47] = True     # a rod 2 px wide
    return m


def test_opening_removes_specks_and_thin_rods():
    m = _blob_with_speck_and_rod()
    opened = opening(m, 3)
    assert not opened[30, 40] and opened[15, 15]
    assert not opened[5:35, 45:47].any()  # the thin rod is gone: a 3-px kernel is wider than it
    assert opening(m, 1)[5:35, 45:47].all()


def test_closing_fills_a_gap_without_touching_the_border():
    m = np.zeros((20, 20), bool)
    m[5:15, 0:8] = True
    m[5:15, 9:20] = True  # a 1-px gap at column 8
    closed = closing(m, 3)
    assert closed[6:14, 8].all() and not closed[0].any() and closed[5:15, 0].all()


def test_components_and_small_removal():
    m = _blob_with_speck_and_rod()
    count, labels = connected_components(m)
    assert count == 3 and labels.max() == 3
    kept = remove_small_components(m, min_area=5)
    assert not kept[30, 40] and kept[5:35, 45:47].all()  # the thin rod survives area filtering
    assert not remove_small_components(np.zeros((4, 4)), 1).any()


def test_fill_holes_with_and_without_limit():
    m = np.zeros((30, 30), bool)
    m[2:28, 2:28] = True
    m[5:7, 5:7] = False       # a 4-px hole
    m[10:20, 10:20] = False   # a 100-px hole
    assert fill_holes(m).all() == False and fill_holes(m)[2:28, 2:28].all()  # noqa: E712
    limited = fill_holes(m, max_area=10)
    assert limited[5:7, 5:7].all() and not limited[10:20, 10:20].any()


def test_clean_label_map_keeps_ignore():
    lab = np.zeros((10, 10), np.uint8)
    lab[0:5, 0:5] = 2
    lab[8, 8] = 3
    lab[9, 0] = 255
    out = clean_label_map(lab, min_area=3)
    assert out[8, 8] == 0 and out[0, 0] == 2 and out[9, 0] == 255


@pytest.mark.parametrize("call", [lambda: opening(np.zeros((2, 2, 2))), lambda: opening(np.zeros((4, 4)), 0),
                                  lambda: opening(np.zeros((4, 4)), 3, "hexagon"),
                                  lambda: connected_components(np.zeros((4, 4)), 6)])
def test_bad_arguments(call):
    with pytest.raises(DataError):
        call()


def test_tile_origins_cover_the_image():
    assert tile_origins(100, 40, 10) == [0, 30, 60]
    assert tile_origins(30, 40, 10) == [0]
    with pytest.raises(DataError):
        tile_origins(100, 40, 40)


def test_tiling_has_no_seams_on_a_constant_model():
    img = np.random.default_rng(0).random((97, 131, 3))
    const = lambda crop: np.broadcast_to(np.array([0.2, 0.7, 0.1])[:, None, None], (3,) + crop.shape[:2])  # noqa: E731
    scores = predict_tiled(img, const, tile=32, overlap=8, num_classes=3)
    assert np.allclose(scores[1], 0.7, atol=1e-12) and (scores.argmax(0) == 1).all()


def test_tiling_matches_whole_image_for_a_pixelwise_model():
    img = np.random.default_rng(1).random((70, 90, 3))
    pixelwise = lambda crop: np.moveaxis(crop, -1, 0) * 2.0  # noqa: E731 - depends only on the pixel itself
    scores = predict_tiled(img, pixelwise, tile=32, overlap=12, num_classes=3)
    assert np.allclose(scores, np.moveaxis(img, -1, 0) * 2.0)


def test_tiling_rejects_wrong_model_output():
    with pytest.raises(DataError, match="model returned shape"):
        predict_tiled(np.zeros((40, 40, 3)), lambda c: np.zeros((2, 5, 5)), tile=32, overlap=8, num_classes=2)


def test_apply_per_class_keeps_ignore_and_lets_the_higher_class_win() -> None:
    labels = np.zeros((8, 8), np.uint8)
    labels[1:3, 2:4] = 1
    labels[1:3, 4:6] = 2
    labels[7, :] = 255
    grown = apply_per_class(labels, lambda m: np.roll(m, 1, axis=1) | m, 3)
    assert grown[1, 3] == 1 and grown[1, 4] == 2 and grown[1, 6] == 2  # class 2 wins col 4 where class 1 grew into it
    assert (grown[7] == 255).all() and grown[0].sum() == 0
    emptied = apply_per_class(labels, lambda m: np.zeros_like(m), 3)
    assert set(np.unique(emptied)) == {0, 255}
    with pytest.raises(DataError, match="2-D"):
        apply_per_class(labels[None], lambda m: m, 3)
