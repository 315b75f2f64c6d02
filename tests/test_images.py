"""Canonical image loading on files written here: EXIF, 16-bit, grey, alpha, palette, CMYK, broken."""

import numpy as np
import pytest
from PIL import Image, ImageFile

from labkit.data.images import BACKGROUND, image_size, load_image, load_label_mask
from labkit.errors import DataError


def _pattern(h: int = 20, w: int = 30) -> np.ndarray:
    """An RGB image whose three channels differ, so a BGR swap or a lost rotation shows."""
    y, x = np.mgrid[0:h, 0:w]
    return np.stack([x * 8, y * 12, np.full_like(x, 200)], axis=-1).astype(np.uint8)


def test_plain_rgb_png_is_returned_as_stored(tmp_path):
    rgb = _pattern()
    Image.fromarray(rgb).save(tmp_path / "a.png")
    out = load_image(tmp_path / "a.png")
    assert out.dtype == np.uint8 and out.shape == (20, 30, 3)
    assert np.array_equal(out, rgb)
    f = load_image(tmp_path / "a.png", as_float=True)
    assert f.dtype == np.float32 and np.allclose(f * 255, rgb)
    assert image_size(tmp_path / "a.png") == (30, 20)


def test_exif_orientation_6_is_applied(tmp_path):
    rgb = _pattern()
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90 CW to display"
    Image.fromarray(rgb).save(tmp_path / "r.png", exif=exif)
    out = load_image(tmp_path / "r.png")
    assert out.shape == (30, 20, 3)
    assert np.array_equal(out, np.rot90(rgb, k=-1))
    assert image_size(tmp_path / "r.png") == (20, 30)
    assert image_size(tmp_path / "r.png", decode=True) == (20, 30)


def test_exif_orientation_in_jpeg(tmp_path):
    exif = Image.Exif()
    exif[0x0112] = 8
    Image.fromarray(_pattern()).save(tmp_path / "r.jpg", exif=exif, quality=95)
    assert load_image(tmp_path / "r.jpg").shape == (30, 20, 3)
    assert image_size(tmp_path / "r.jpg") == (20, 30)


def test_16bit_grey_png_keeps_the_high_byte(tmp_path):
    values = np.array([[0, 255, 256, 4660], [32768, 65280, 65534, 65535]], dtype=np.uint16)
    Image.fromarray(values).save(tmp_path / "g16.png")
    assert Image.open(tmp_path / "g16.png").mode.startswith("I")
    out = load_image(tmp_path / "g16.png")
    assert out.shape == (2, 4, 3) and out.dtype == np.uint8
    assert np.array_equal(out[..., 0], [[0, 0, 1, 18], [128, 255, 255, 255]])
    assert np.array_equal(out[..., 0], out[..., 2])


def test_16bit_rgb_png_is_scaled_not_clipped(tmp_path):
    import cv2

    rgb16 = np.zeros((3, 3, 3), np.uint16)
    rgb16[..., 0], rgb16[..., 1], rgb16[..., 2] = 65535, 32768, 1000  # R, G, B
    cv2.imwrite(str(tmp_path / "c16.png"), rgb16[..., ::-1])  # OpenCV writes BGR
    out = load_image(tmp_path / "c16.png")
    assert out[0, 0].tolist() == [255, 128, 3]


def test_grey_rgba_palette_cmyk(tmp_path):
    Image.fromarray(np.full((4, 5), 77, np.uint8)).save(tmp_path / "g.png")
    assert np.all(load_image(tmp_path / "g.png") == 77)

    rgba = np.zeros((4, 5, 4), np.uint8)
    rgba[..., 0] = 200
    rgba[0, 0, 3] = 255  # opaque red pixel
    rgba[0, 1, 3] = 0  # transparent: shows the background
    rgba[0, 2, 3] = 128
    Image.fromarray(rgba, "RGBA").save(tmp_path / "a.png")
    out = load_image(tmp_path / "a.png")
    assert out[0, 0].tolist() == [200, 0, 0]
    assert out[0, 1].tolist() == list(BACKGROUND)
    assert abs(int(out[0, 2, 1]) - 127) <= 1  # half way between 0 and 255

    pal = Image.fromarray(np.array([[0, 1], [1, 0]], np.uint8), "P")
    pal.putpalette([10, 20, 30, 40, 50, 60] + [0] * 762)
    pal.save(tmp_path / "p.png")
    assert load_image(tmp_path / "p.png")[0, 1].tolist() == [40, 50, 60]
    assert np.array_equal(load_label_mask(tmp_path / "p.png"), [[0, 1], [1, 0]])

    Image.new("CMYK", (3, 2), (0, 255, 255, 0)).save(tmp_path / "c.jpg")
    c = load_image(tmp_path / "c.jpg")
    assert c.shape == (2, 3, 3) and c[0, 0, 0] > 200 and c[0, 0, 1] < 60


def test_truncated_and_not_images_raise_data_error_naming_the_file(tmp_path):
    rng = np.random.default_rng(0)
    Image.fromarray(rng.integers(0, 255, (128, 128, 3), dtype=np.uint8)).save(tmp_path / "ok.jpg", quality=90)
    data = (tmp_path / "ok.jpg").read_bytes()
    (tmp_path / "cut.jpg").write_bytes(data[: len(data) * 2 // 3])
    (tmp_path / "text.jpg").write_text("not an image")
    assert ImageFile.LOAD_TRUNCATED_IMAGES is False
    for name in ("cut.jpg", "text.jpg", "absent.png"):
        with pytest.raises(DataError, match=name):
            load_image(tmp_path / name)
    with pytest.raises(DataError, match="cut.jpg"):
        image_size(tmp_path / "cut.jpg", decode=True)
    assert image_size(tmp_path / "cut.jpg") == (128, 128)  # the header alone is intact
    assert ImageFile.LOAD_TRUNCATED_IMAGES is False


def test_label_mask_rejects_colour(tmp_path):
    Image.fromarray(_pattern()).save(tmp_path / "rgb.png")
    with pytest.raises(DataError, match="single-channel"):
        load_label_mask(tmp_path / "rgb.png")
