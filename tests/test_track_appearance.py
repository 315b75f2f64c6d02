"""Appearance cues on hand-built images: crops clipped to the image, colour histograms, and the
per-track gallery (moving average and last-k) with distances worked out by hand."""

from __future__ import annotations

import numpy as np
import pytest

from labkit.track.appearance import Gallery, HistogramEmbedder, crops


def _image() -> np.ndarray:
    """20 x 30 RGB: left half (x < 15) red, right half blue."""
    image = np.zeros((20, 30, 3), np.uint8)
    image[:, :15] = (255, 0, 0)
    image[:, 15:] = (0, 0, 255)
    return image


def test_crops_are_clipped_resized_and_black_when_empty():
    boxes = np.array([[2.0, 2.0, 8.0, 10.0],      # inside the red half
                      [-5.0, -5.0, 10.0, 10.0],   # reaches past the top-left corner: clipped to x, y 0..5 (red)
                      [25.0, 15.0, 20.0, 20.0],   # past the bottom-right corner: x 25..30, y 15..20 (blue)
                      [40.0, 40.0, 5.0, 5.0],     # entirely outside: black
                      [3.0, 3.0, 0.0, 4.0],       # zero width: black
                      [-20.0, 2.0, 10.0, 5.0],    # entirely left of the image: black
                      [5.0, 25.0, 5.0, 5.0]])     # entirely below it (inside its columns): black
    out = crops(_image(), boxes, size=(4, 2))
    assert out.shape == (7, 4, 2, 3) and out.dtype == np.uint8
    assert (out[0] == (255, 0, 0)).all() and (out[1] == (255, 0, 0)).all()
    assert (out[2] == (0, 0, 255)).all()
    assert (out[3] == 0).all() and (out[4] == 0).all() and (out[5] == 0).all() and (out[6] == 0).all()
    # a box over the boundary (x 10..20) holds both colours, red on the left
    mixed = crops(_image(), np.array([[10.0, 0.0, 10.0, 20.0]]), size=(2, 2))[0]
    assert (mixed[:, 0] == (255, 0, 0)).all() and (mixed[:, 1] == (0, 0, 255)).all()


def test_histograms_are_unit_vectors_that_tell_colours_apart():
    embed = HistogramEmbedder()
    e = embed(_image(), np.array([[0.0, 0.0, 10.0, 10.0], [2.0, 5.0, 8.0, 8.0], [20.0, 0.0, 10.0, 10.0]]))
    assert e.shape == (3, 256)
    np.testing.assert_allclose(np.linalg.norm(e, axis=1), 1.0)
    assert e[0] @ e[1] == pytest.approx(1.0)  # two red patches: the same histogram
    assert e[0] @ e[2] == pytest.approx(0.0)  # red and blue share no bin


def test_ema_gallery_by_hand():
    """momentum 0.5: g = [1, 0], then e = [0, 3] (normalised to [0, 1]) -> g = [.5, .5] / |.| = [1, 1] / sqrt 2.
    Distance to [1, 0]: 1 - 1 / sqrt 2; a track without a gallery is at the neutral 1."""
    gallery = Gallery("ema", momentum=0.5)
    gallery.update(7, np.array([1.0, 0.0]))
    gallery.update(7, np.array([0.0, 3.0]))
    d = gallery.distance(np.array([7, 8]), np.array([[1.0, 0.0], [0.0, 1.0]]))
    np.testing.assert_allclose(d, [[1 - 1 / np.sqrt(2), 1 - 1 / np.sqrt(2)], [1.0, 1.0]])
    assert gallery.distance(np.array([7]), np.zeros((0, 2))).shape == (1, 0)
    gallery.forget(7)
    np.testing.assert_allclose(gallery.distance(np.array([7]), np.array([[1.0, 0.0]])), [[1.0]])


def test_last_k_gallery_takes_the_closest_of_the_k_latest():
    gallery = Gallery("last_k", size=2)
    for e in ([1.0, 0.0], [0.0, 1.0], [-1.0, 0.0]):  # the first falls out of a gallery of 2
        gallery.update(1, np.array(e))
    d = gallery.distance(np.array([1]), np.array([[1.0, 0.0], [0.0, 2.0], [-1.0, 0.0]]))
    np.testing.assert_allclose(d, [[1.0, 0.0, 0.0]])  # [1, 0] is at distance 1 from [0, 1], 2 (clipped 1) from [-1, 0]
    with pytest.raises(ValueError, match="gallery mode must be 'ema' or 'last_k', got 'median'"):
        Gallery("median")
