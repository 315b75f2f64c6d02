"""Canonical image loading on files written here: EXIF, 16-bit, grey, alpha, palette, CMYK, broken;
and the frame sources of inference (labkit.data.sources): arrays, files, folders, videos, datasets."""

import re
import sys
import types

import cv2
import numpy as np
import pytest
from PIL import Image, ImageFile

from labkit.data.annotations import Dataset, ImageRecord
from labkit.data import images
from labkit.data.images import BACKGROUND, image_size, load_image, load_label_mask, to_rgb_array
from labkit.data.sources import count_frames, iter_frames, to_rgb
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


def test_premultiplied_alpha_and_transparent_palette_are_composited_on_white():
    """Hand-worked: a premultiplied pixel (value c, alpha a) over white is c + 255 * (1 - a / 255);
    c=50, a=100 gives 205, and c=0 gives 155. A palette colour marked transparent shows the
    background. ("La" used to be a bare ValueError: Pillow converts La to LA only.)"""
    rgba = to_rgb_array(Image.new("RGBa", (2, 1), (50, 0, 0, 100)))
    assert np.abs(rgba[0, 0].astype(int) - [205, 155, 155]).max() <= 1
    la = to_rgb_array(Image.new("La", (2, 1), (50, 100)))
    assert np.abs(la[0, 0].astype(int) - [205, 205, 205]).max() <= 1
    pal = Image.fromarray(np.array([[0, 1]], np.uint8), "P")
    pal.putpalette([10, 20, 30, 200, 0, 0] + [0] * 762)
    pal.info["transparency"] = 0
    assert to_rgb_array(pal).tolist() == [[list(BACKGROUND), [200, 0, 0]]]


def test_float_images_and_exif_failures_are_data_errors(monkeypatch, tmp_path):
    with pytest.raises(DataError, match=re.escape("f.tif: floating-point images have no defined 8-bit scaling; convert them first")):
        to_rgb_array(Image.new("F", (2, 2), 0.5), source="f.tif")
    Image.fromarray(_pattern(2, 3)).save(tmp_path / "a.png")

    def broken(img):
        raise OSError("bad EXIF")

    monkeypatch.setattr(images.ImageOps, "exif_transpose", broken)
    with pytest.raises(DataError, match=re.escape(f"{tmp_path / 'a.png'}: cannot apply EXIF orientation (bad EXIF)")):
        load_image(tmp_path / "a.png")


def test_open_errors_say_why(tmp_path):
    rng = np.random.default_rng(0)
    Image.fromarray(rng.integers(0, 255, (64, 64), dtype=np.uint8)).save(tmp_path / "mask.png")
    data = (tmp_path / "mask.png").read_bytes()
    (tmp_path / "cut.png").write_bytes(data[: len(data) // 2])
    (tmp_path / "text.png").write_text("not an image")
    for name, message in (("absent.png", "image file not found"), ("text.png", "not an image file Pillow can read"),
                          ("cut.png", "cannot decode image (")):
        for load in (load_image, load_label_mask):
            with pytest.raises(DataError, match=re.escape(f"{tmp_path / name}: {message}")):
                load(tmp_path / name)


def test_bilevel_label_mask_is_uint8_zeros_and_ones(tmp_path):
    bits = np.array([[0, 1, 1], [1, 0, 0]], bool)
    Image.fromarray(bits).convert("1").save(tmp_path / "m.png")
    mask = load_label_mask(tmp_path / "m.png")
    assert mask.dtype == np.uint8 and mask.tolist() == [[0, 1, 1], [1, 0, 0]]


def test_ultralytics_open_patch_is_bypassed(monkeypatch, tmp_path):
    """With Ultralytics' Image.open wrapper installed, labkit calls the original it keeps; a
    patches module without the wrapper changes nothing."""
    Image.fromarray(_pattern(2, 3)).save(tmp_path / "a.png")
    calls = []
    original = Image.open
    fake = types.ModuleType("ultralytics.utils.patches")
    fake._image_open = lambda path: calls.append(path) or original(path)
    fake.image_open = lambda *a, **k: pytest.fail("the wrapper must not be called")
    monkeypatch.setitem(sys.modules, "ultralytics.utils.patches", fake)
    monkeypatch.setattr(Image, "open", fake.image_open)
    assert np.array_equal(load_image(tmp_path / "a.png"), _pattern(2, 3)) and calls == [tmp_path / "a.png"]
    bare = types.ModuleType("ultralytics.utils.patches")
    monkeypatch.setitem(sys.modules, "ultralytics.utils.patches", bare)
    monkeypatch.setattr(Image, "open", original)
    assert np.array_equal(load_image(tmp_path / "a.png"), _pattern(2, 3))


# ----------------------------------------------------------------------------- labkit.data.sources
def test_to_rgb_repeats_grey_and_rejects_other_arrays():
    grey = np.array([[0, 255], [7, 9]], np.uint8)
    expected = np.stack([grey] * 3, axis=-1)
    assert np.array_equal(to_rgb(grey), expected) and np.array_equal(to_rgb(grey[:, :, None]), expected)
    rgb = np.asfortranarray(_pattern(3, 4))
    out = to_rgb(rgb)
    assert np.array_equal(out, rgb) and out.flags["C_CONTIGUOUS"] and to_rgb(grey).flags["C_CONTIGUOUS"]
    with pytest.raises(DataError, match=re.escape("record cam1: images must be uint8, got float32")):
        to_rgb(np.zeros((2, 2, 3), np.float32), record="cam1")
    with pytest.raises(DataError, match=re.escape("record cam2: expected an RGB (H, W, 3) or grey (H, W) image, got shape (2, 2, 4)")):
        to_rgb(np.zeros((2, 2, 4), np.uint8), record="cam2")
    with pytest.raises(DataError, match=re.escape("got shape (4,)")):
        to_rgb(np.zeros(4, np.uint8))


def test_iter_frames_of_arrays_files_folders_and_videos(tmp_path):
    """Keys: the mapping key, the path string, '<video>#<n>' from 1; folders are walked in sorted order."""
    grey = np.full((2, 3), 50, np.uint8)
    frames = list(iter_frames({"a": grey, 7: _pattern(2, 3)}))
    assert [k for k, _ in frames] == ["a", 7] and frames[0][1].shape == (2, 3, 3) and frames[0][1].max() == 50
    assert count_frames({"a": grey, 7: grey}) == 2
    Image.fromarray(_pattern(4, 5)).save(tmp_path / "b.png")
    (tmp_path / "sub").mkdir()
    Image.fromarray(_pattern(4, 5)).save(tmp_path / "sub" / "a.PNG")
    (tmp_path / "notes.txt").write_text("skipped")
    writer = cv2.VideoWriter(str(tmp_path / "clip.avi"), cv2.VideoWriter_fourcc(*"MJPG"), 5, (8, 6))
    for _ in range(3):
        writer.write(np.dstack([np.zeros((6, 8), np.uint8), np.zeros((6, 8), np.uint8), np.full((6, 8), 200, np.uint8)]))
    writer.release()  # BGR (0, 0, 200) is red
    keys = [k for k, _ in iter_frames(tmp_path)]
    video = str(tmp_path / "clip.avi")
    assert keys == [str(tmp_path / "b.png"), f"{video}#1", f"{video}#2", f"{video}#3", str(tmp_path / "sub" / "a.PNG")]
    assert count_frames(tmp_path) == 5 and count_frames([tmp_path / "b.png", str(tmp_path / "clip.avi")]) == 4
    key, first = next(iter_frames(tmp_path / "clip.avi"))
    assert key == f"{video}#1" and first.shape == (6, 8, 3) and first[0, 0, 0] > 150 and first[0, 0, 2] < 60
    (key, img), = iter_frames(str(tmp_path / "b.png"))
    assert key == str(tmp_path / "b.png") and np.array_equal(img, _pattern(4, 5))


def test_iter_frames_bad_sources_name_the_path(tmp_path):
    (tmp_path / "empty").mkdir()
    (tmp_path / "notes.txt").write_text("x")
    (tmp_path / "broken.mp4").write_text("not a video")
    cases = [(tmp_path / "empty", "the folder holds no image or video file"), (tmp_path / "gone.png", "no such file or folder"),
             (tmp_path / "notes.txt", "unknown image/video suffix '.txt'"), (tmp_path / "broken.mp4", "cannot open the video")]
    for path, message in cases:
        with pytest.raises(DataError, match=re.escape(f"{path}: {message}")):
            list(iter_frames(path))
    with pytest.raises(DataError, match=re.escape(f"{tmp_path / 'gone.png'}: no such file or folder")):
        count_frames(tmp_path / "gone.png")


def test_iter_frames_of_a_dataset_checks_the_recorded_size(tmp_path):
    Image.fromarray(_pattern(4, 5)).save(tmp_path / "a.png")
    good = Dataset([{"id": 1, "name": "x"}], [ImageRecord(3, "a.png", 5, 4)], root=tmp_path)
    (key, img), = iter_frames(good)
    assert key == 3 and np.array_equal(img, _pattern(4, 5)) and count_frames(good) == 1
    bad = Dataset([{"id": 1, "name": "x"}], [ImageRecord(3, "a.png", 4, 5)], root=tmp_path)
    with pytest.raises(DataError, match=re.escape(f"{tmp_path / 'a.png'}: record 3: image is 5x4 but the record says 4x5")):
        list(iter_frames(bad))


def test_a_one_frame_video_yields_its_frame(tmp_path):
    writer = cv2.VideoWriter(str(tmp_path / "one.avi"), cv2.VideoWriter_fourcc(*"MJPG"), 5, (8, 6))
    writer.write(np.full((6, 8, 3), 90, np.uint8))
    writer.release()
    frames = list(iter_frames(tmp_path / "one.avi"))
    assert [k for k, _ in frames] == [f"{tmp_path / 'one.avi'}#1"] and abs(int(frames[0][1][0, 0, 0]) - 90) <= 3


def test_32bit_integer_values_outside_16_bits_are_an_error_naming_the_source():
    img = Image.fromarray(np.array([[-1, 5], [70000, 0]], np.int32), "I")
    with pytest.raises(DataError, match=re.escape("deep.tif: I image values span [-1, 70000], not 16-bit")):
        to_rgb_array(img, source="deep.tif")
