"""Corruptions: seeded determinism, severity measured by independent statistics, sequences, bad input."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from labkit.errors import DataError
from labkit.robust.corruptions import (KINDS, SEVERITIES, SEVERITY_LEVELS, corrupt_image, corrupt_sequence,
                                       h264_roundtrip, make_corruption)


def _scene(h: int = 96, w: int = 128, seed: int = 0) -> np.ndarray:
    """Textured background with sharp-edged shapes: enough detail for blur and compression to remove."""
    rng = np.random.default_rng(seed)
    img = cv2.GaussianBlur(rng.integers(40, 200, (h, w, 3), dtype=np.uint8), (0, 0), 1.0)
    for _ in range(12):
        colour = tuple(int(v) for v in rng.integers(0, 255, 3))
        x, y = int(rng.integers(0, w)), int(rng.integers(0, h))
        if rng.random() < 0.5:
            cv2.circle(img, (x, y), int(rng.integers(4, 14)), colour, -1)
        else:
            cv2.rectangle(img, (x, y), (x + int(rng.integers(4, 20)), y + int(rng.integers(4, 20))), colour, -1)
    return img


def _laplacian_var(img: np.ndarray) -> float:
    return float(cv2.Laplacian(cv2.cvtColor(img, cv2.COLOR_RGB2GRAY), cv2.CV_64F).var())


@pytest.fixture(scope="module")
def scene() -> np.ndarray:
    return _scene()


def test_every_kind_has_five_severities_and_records_what_it_applies(scene: np.ndarray) -> None:
    assert set(SEVERITIES) == set(KINDS) and all(len(v) == 5 for v in SEVERITIES.values())
    for kind in KINDS:
        out, record = corrupt_image(scene, kind, 3, seed=7)
        assert out.shape == scene.shape and out.dtype == np.uint8
        assert record["kind"] == kind and record["severity"] == 3 and record["seed"] == 7
        assert SEVERITIES[kind][2].items() <= record["params"].items()


@pytest.mark.parametrize("kind", KINDS)
def test_same_seed_same_pixels(kind: str, scene: np.ndarray) -> None:
    a, ra = corrupt_image(scene, kind, 4, seed=3)
    b, rb = corrupt_image(scene, kind, 4, seed=3)
    np.testing.assert_array_equal(a, b)
    assert ra == rb


@pytest.mark.parametrize("kind", ["motion_blur", "gaussian_noise", "low_light", "fog", "rain", "snow"])
def test_another_seed_draws_other_randomness(kind: str, scene: np.ndarray) -> None:
    a, _ = corrupt_image(scene, kind, 4, seed=3)
    b, _ = corrupt_image(scene, kind, 4, seed=4)
    assert np.abs(a.astype(int) - b).max() > 0


@pytest.mark.parametrize("kind", KINDS)
def test_psnr_to_the_clean_image_falls_with_severity(kind: str, scene: np.ndarray) -> None:
    psnr = [cv2.PSNR(scene, corrupt_image(scene, kind, s, seed=1)[0]) for s in SEVERITY_LEVELS]
    assert all(a > b for a, b in zip(psnr, psnr[1:])), psnr


@pytest.mark.parametrize("kind", ["motion_blur", "defocus_blur"])
def test_blur_lowers_laplacian_variance_with_severity(kind: str, scene: np.ndarray) -> None:
    var = [_laplacian_var(scene)] + [_laplacian_var(corrupt_image(scene, kind, s, seed=1)[0]) for s in SEVERITY_LEVELS]
    assert all(a > b for a, b in zip(var, var[1:])), var


def test_gaussian_noise_has_the_recorded_sigma() -> None:
    grey = np.full((200, 200, 3), 128, np.uint8)  # mid-grey: no clipping at sigma <= 45
    for s in SEVERITY_LEVELS:
        out, record = corrupt_image(grey, "gaussian_noise", s, seed=0)
        sigma = record["params"]["sigma"]
        assert np.std(out.astype(float) - 128) == pytest.approx(sigma, rel=0.05)


def test_low_light_is_gain_times_gamma_on_a_flat_image() -> None:
    flat = np.full((200, 200, 3), 180, np.uint8)
    for s in SEVERITY_LEVELS:
        out, record = corrupt_image(flat, "low_light", s, seed=0)
        p = record["params"]
        expected = 255 * p["gain"] * (180 / 255) ** p["gamma"]  # hand formula of the generator's low_light
        assert out.mean() == pytest.approx(expected, abs=1.5)
        assert np.std(out.astype(float)) == pytest.approx(p["noise_sigma"], rel=0.15)


def test_jpeg_matches_opencv_at_the_recorded_quality(scene: np.ndarray) -> None:
    for s in SEVERITY_LEVELS:
        out, record = corrupt_image(scene, "jpeg", s)
        ok, buf = cv2.imencode(".jpg", scene, [cv2.IMWRITE_JPEG_QUALITY, record["params"]["quality"]])
        assert ok
        reference = cv2.imdecode(buf, cv2.IMREAD_UNCHANGED)
        assert np.abs(out.astype(int) - reference).max() <= 1


def test_severity_does_not_change_the_drawn_direction() -> None:
    angles = {make_corruption("motion_blur", s, seed=5).params["angle"] for s in SEVERITY_LEVELS}
    slants = {make_corruption("rain", s, seed=5).params["slant"] for s in SEVERITY_LEVELS}
    assert len(angles) == 1 and len(slants) == 1


def test_sequence_mode_draws_one_parameter_set_for_every_frame(scene: np.ndarray) -> None:
    frames = [scene] * 4
    blurred, record = corrupt_sequence(frames, "motion_blur", 3, seed=2)
    for f in blurred[1:]:  # same angle, same length: identical frames stay identical (no jitter)
        np.testing.assert_array_equal(f, blurred[0])
    fogged, _ = corrupt_sequence(frames, "fog", 3, seed=2)
    np.testing.assert_array_equal(fogged[0], fogged[3])  # the fog layer does not flicker
    noisy, noise_record = corrupt_sequence(frames, "gaussian_noise", 3, seed=2)
    assert np.abs(noisy[0].astype(int) - noisy[1]).max() > 0  # a new noise sample per frame ...
    sigmas = [np.std(f.astype(float) - scene) for f in noisy]
    assert max(sigmas) - min(sigmas) < 1.0  # ... of one sigma
    assert record == make_corruption("motion_blur", 3, seed=2).record()
    assert noise_record["params"] == SEVERITIES["gaussian_noise"][2]


def test_h264_round_trip_is_reproducible_and_keeps_odd_sizes() -> None:
    frames = [_scene(45, 61, seed=k) for k in range(3)]
    a = h264_roundtrip(frames, 40)
    b = h264_roundtrip(frames, 40)
    assert [f.shape for f in a] == [(45, 61, 3)] * 3
    for x, y in zip(a, b):
        np.testing.assert_array_equal(x, y)


def test_h264_lower_bitrate_loses_more_over_a_sequence() -> None:
    frames = [np.roll(_scene(seed=0), 2 * k, axis=1) for k in range(6)]  # a slow pan
    mean_psnr = []
    for s in (1, 3, 5):
        out, _ = corrupt_sequence(frames, "h264", s)
        mean_psnr.append(np.mean([cv2.PSNR(f, o) for f, o in zip(frames, out)]))
    assert mean_psnr[0] > mean_psnr[1] > mean_psnr[2]


def test_unknown_kind_lists_the_known_kinds(scene: np.ndarray) -> None:
    with pytest.raises(DataError, match="unknown corruption kind 'haze'.*motion_blur.*h264"):
        corrupt_image(scene, "haze", 1)


@pytest.mark.parametrize("severity", [0, 6, 2.5, True, "3"])
def test_severity_outside_one_to_five_is_refused(severity: object, scene: np.ndarray) -> None:
    with pytest.raises(DataError, match="severity must be an integer from 1 to 5"):
        corrupt_image(scene, "jpeg", severity)  # type: ignore[arg-type]


def test_non_rgb_input_is_refused() -> None:
    with pytest.raises(DataError, match="RGB uint8"):
        corrupt_image(np.zeros((8, 8), np.float32), "jpeg", 1)
