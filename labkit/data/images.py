"""Canonical image loading: every file becomes RGB ``uint8`` ``(H, W, 3)``, as displayed.

Decoding goes through Pillow only (never OpenCV), so BGR order cannot leak out. The rules:

- EXIF orientation is applied (``ImageOps.exif_transpose``), so arrays and sizes are what an
  image viewer shows; :func:`image_size` reports that displayed size too.
- 16-bit samples are scaled to 8 bits by keeping the high byte (``v >> 8``), never clipped.
  (Pillow already reads 16-bit RGB PNGs that way; 16-bit greyscale gets the same rule here.)
- Greyscale and bi-level images are repeated into 3 channels; palette and CMYK images are
  converted to RGB by Pillow.
- Transparency (RGBA, LA, palette with a transparent colour) is alpha-composited onto
  :data:`BACKGROUND` (white, what a viewer shows), not dropped: a transparent pixel's hidden
  colour is meaningless.
- Truncated or unreadable files raise :class:`~labkit.errors.DataError` naming the file:
  decoding is forced in full and ``ImageFile.LOAD_TRUNCATED_IMAGES`` is left ``False``.

Label masks are different: :func:`load_label_mask` returns their raw integer values
(palette indices, class ids) with no colour conversion at all.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from labkit.errors import DataError

#: RGB colour transparent pixels are composited onto.
BACKGROUND = (255, 255, 255)

#: EXIF orientation values (tag 274) that swap width and height (transpose / rotate 90 / 270).
_SWAPPING_ORIENTATIONS = (5, 6, 7, 8)
_EXIF_ORIENTATION = 0x0112
_SIXTEEN_BIT_MODES = ("I;16", "I;16L", "I;16B", "I;16N", "I")
_DECODE_ERRORS = (OSError, SyntaxError, ValueError, Image.DecompressionBombError)


def _pil_open(path: Path) -> Image.Image:
    """Pillow's own ``Image.open``. Importing Ultralytics replaces it with a wrapper that, on any
    file Pillow cannot identify, tries to install a HEIF plugin (offline: ``ModuleNotFoundError``
    instead of a clear error); labkit calls the original underneath."""
    patches = sys.modules.get("ultralytics.utils.patches")
    if patches is not None and Image.open is getattr(patches, "image_open", None):
        return patches._image_open(path)  # noqa: SLF001 - the original, which the patch keeps
    return Image.open(path)


def _open(path: Path, *, decode: bool = True) -> Image.Image:
    """Open one image file and, when ``decode``, decode every pixel (no EXIF handling yet)."""
    try:
        img = _pil_open(path)
        if decode:
            img.load()
    except FileNotFoundError as exc:
        raise DataError("image file not found", source=str(path)) from exc
    except UnidentifiedImageError as exc:
        raise DataError("not an image file Pillow can read", source=str(path)) from exc
    except _DECODE_ERRORS as exc:
        raise DataError(f"cannot decode image ({exc})", source=str(path)) from exc
    return img


def _orientation(img: Image.Image) -> int:
    try:
        return int(img.getexif().get(_EXIF_ORIENTATION, 1))
    except _DECODE_ERRORS:  # a broken EXIF block: show the pixels as stored
        return 1


def open_image(path: str | Path) -> Image.Image:
    """The fully decoded Pillow image with its EXIF orientation applied (mode unchanged)."""
    path = Path(path)
    img = _open(path)
    try:
        return ImageOps.exif_transpose(img)
    except _DECODE_ERRORS as exc:
        raise DataError(f"cannot apply EXIF orientation ({exc})", source=str(path)) from exc


def image_size(path: str | Path, *, decode: bool = False) -> tuple[int, int]:
    """``(width, height)`` as displayed, i.e. after the EXIF orientation.

    By default only the header is read (fast). ``decode=True`` decodes every pixel first, so a
    truncated or corrupt file raises :class:`DataError` (the validator uses this).
    """
    img = _open(Path(path), decode=decode)
    with img:
        w, h = img.size
        return (h, w) if _orientation(img) in _SWAPPING_ORIENTATIONS else (w, h)


def _composite(img: Image.Image) -> Image.Image:
    if img.mode == "La":  # premultiplied grey + alpha: Pillow converts it to LA only (not to RGBA)
        img = img.convert("LA")
    rgba = img.convert("RGBA")
    canvas = Image.new("RGBA", rgba.size, BACKGROUND + (255,))
    return Image.alpha_composite(canvas, rgba).convert("RGB")


def to_rgb_array(img: Image.Image, *, source: str = "<memory>") -> np.ndarray:
    """A decoded Pillow image -> ``(H, W, 3)`` RGB ``uint8`` following the module's rules."""
    if img.mode in _SIXTEEN_BIT_MODES:
        values = np.asarray(img).astype(np.int64)
        if values.min() < 0 or values.max() > 65535:
            raise DataError(f"{img.mode} image values span [{values.min()}, {values.max()}], not 16-bit", source=source)
        gray = (values >> 8).astype(np.uint8)
        return np.repeat(gray[:, :, None], 3, axis=2)
    if img.mode == "F":
        raise DataError("floating-point images have no defined 8-bit scaling; convert them first", source=source)
    has_alpha = img.mode in ("RGBA", "LA", "PA", "RGBa", "La") or (img.mode == "P" and "transparency" in img.info)
    rgb = _composite(img) if has_alpha else img.convert("RGB")
    return np.asarray(rgb, dtype=np.uint8).copy()


def load_image(path: str | Path, *, as_float: bool = False) -> np.ndarray:
    """Read any image file as RGB ``(H, W, 3)``: ``uint8``, or ``float32`` in ``[0, 1]`` with
    ``as_float=True``. See the module docstring for EXIF, 16-bit, alpha and CMYK handling."""
    path = Path(path)
    arr = to_rgb_array(open_image(path), source=str(path))
    return arr.astype(np.float32) / 255.0 if as_float else arr


def load_label_mask(path: str | Path) -> np.ndarray:
    """A label image (class ids or instance ids, e.g. a semantic mask PNG) as a 2-D integer
    array of its raw stored values: palette indices stay indices, nothing is colour-converted.

    Raises :class:`DataError` for colour (RGB/RGBA) masks, whose values are not ids.
    """
    path = Path(path)
    img = _open(path)
    if img.mode not in ("L", "P", "1") + _SIXTEEN_BIT_MODES:
        raise DataError(f"a label mask must be single-channel (L, P or 16-bit), got mode {img.mode}", source=str(path))
    arr = np.asarray(img)
    return arr.astype(np.uint8) if img.mode == "1" else arr.copy()
