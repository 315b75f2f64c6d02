"""Box formats and the letterbox transform with its exact inverse.

Formats: ``xyxy`` corners, ``xywh`` top-left + size (COCO, MOTChallenge), ``cxcywh`` centre +
size (YOLO). Each may be in pixels or normalised by image width/height.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from labkit.errors import DataError


def _boxes(b: np.ndarray) -> np.ndarray:
    b = np.asarray(b, dtype=np.float64)
    if b.size == 0:
        return b.reshape(0, 4)
    if b.shape[-1] != 4:
        raise DataError(f"boxes must have 4 coordinates in the last axis, got shape {b.shape}")
    return b


def xyxy_to_xywh(b: np.ndarray) -> np.ndarray:
    """``[x1, y1, x2, y2]`` -> ``[x, y, w, h]``."""
    b = _boxes(b)
    return np.concatenate([b[..., :2], b[..., 2:] - b[..., :2]], axis=-1)


def xywh_to_xyxy(b: np.ndarray) -> np.ndarray:
    """``[x, y, w, h]`` -> ``[x1, y1, x2, y2]``."""
    b = _boxes(b)
    return np.concatenate([b[..., :2], b[..., :2] + b[..., 2:]], axis=-1)


def xyxy_to_cxcywh(b: np.ndarray) -> np.ndarray:
    """``[x1, y1, x2, y2]`` -> ``[cx, cy, w, h]``."""
    b = _boxes(b)
    return np.concatenate([(b[..., :2] + b[..., 2:]) / 2, b[..., 2:] - b[..., :2]], axis=-1)


def cxcywh_to_xyxy(b: np.ndarray) -> np.ndarray:
    """``[cx, cy, w, h]`` -> ``[x1, y1, x2, y2]``."""
    b = _boxes(b)
    half = b[..., 2:] / 2
    return np.concatenate([b[..., :2] - half, b[..., :2] + half], axis=-1)


def normalize(b: np.ndarray, width: int, height: int) -> np.ndarray:
    """Pixel boxes (any of the three formats) -> fractions of the image size."""
    return _boxes(b) / np.array([width, height, width, height], dtype=np.float64)


def denormalize(b: np.ndarray, width: int, height: int) -> np.ndarray:
    """Normalised boxes (any of the three formats) -> pixels."""
    return _boxes(b) * np.array([width, height, width, height], dtype=np.float64)


def clip_xyxy(b: np.ndarray, width: int, height: int) -> np.ndarray:
    """Clip corner boxes to the image ``[0, width] x [0, height]``."""
    b = _boxes(b).copy()
    b[..., 0::2] = b[..., 0::2].clip(0, width)
    b[..., 1::2] = b[..., 1::2].clip(0, height)
    return b


@dataclass(frozen=True)
class Letterbox:
    """A resize that keeps the aspect ratio, then pads to ``(out_h, out_w)``.

    A source pixel coordinate ``p`` maps to ``p * scale + pad`` (per axis). The inverse is exact
    for boxes; masks come back through :meth:`inverse_mask` with nearest-neighbour sampling.
    """

    src_h: int
    src_w: int
    out_h: int
    out_w: int
    scale: float
    pad_x: int
    pad_y: int

    @classmethod
    def fit(cls, src_hw: tuple[int, int], out_hw: tuple[int, int] | int) -> "Letterbox":
        """The letterbox placing an image of size ``src_hw`` centred in ``out_hw``."""
        out_h, out_w = (out_hw, out_hw) if isinstance(out_hw, int) else out_hw
        src_h, src_w = src_hw
        if min(src_h, src_w, out_h, out_w) <= 0:
            raise DataError(f"letterbox needs positive sizes, got source {src_hw} and output {out_hw}")
        scale = min(out_h / src_h, out_w / src_w)
        new_w, new_h = round(src_w * scale), round(src_h * scale)
        return cls(src_h, src_w, out_h, out_w, scale, (out_w - new_w) // 2, (out_h - new_h) // 2)

    @property
    def resized_hw(self) -> tuple[int, int]:
        return round(self.src_h * self.scale), round(self.src_w * self.scale)

    def image(self, img: np.ndarray, pad_value: int = 114, interpolation: int = cv2.INTER_LINEAR) -> np.ndarray:
        """Apply to an ``(H, W[, C])`` image."""
        if img.shape[:2] != (self.src_h, self.src_w):
            raise DataError(f"image is {img.shape[:2]}, letterbox was fitted for {(self.src_h, self.src_w)}")
        h, w = self.resized_hw
        resized = cv2.resize(img, (w, h), interpolation=interpolation)
        out = np.full((self.out_h, self.out_w) + img.shape[2:], pad_value, dtype=img.dtype)
        out[self.pad_y:self.pad_y + h, self.pad_x:self.pad_x + w] = resized
        return out

    def mask(self, mask: np.ndarray, pad_value: int = 0) -> np.ndarray:
        """Apply to a label/instance mask: nearest neighbour, so ids are never blended."""
        return self.image(mask, pad_value=pad_value, interpolation=cv2.INTER_NEAREST)

    def boxes(self, xyxy: np.ndarray) -> np.ndarray:
        """Source-pixel corner boxes -> letterboxed-pixel corner boxes."""
        offset = np.array([self.pad_x, self.pad_y, self.pad_x, self.pad_y], dtype=np.float64)
        return _boxes(xyxy) * self.scale + offset

    def inverse_boxes(self, xyxy: np.ndarray) -> np.ndarray:
        """Letterboxed-pixel corner boxes -> source pixels (exact inverse of :meth:`boxes`)."""
        offset = np.array([self.pad_x, self.pad_y, self.pad_x, self.pad_y], dtype=np.float64)
        return (_boxes(xyxy) - offset) / self.scale

    def inverse_mask(self, mask: np.ndarray) -> np.ndarray:
        """A mask predicted on the letterboxed image -> source size (crop padding, nearest)."""
        if mask.shape[:2] != (self.out_h, self.out_w):
            raise DataError(f"mask is {mask.shape[:2]}, letterbox output is {(self.out_h, self.out_w)}")
        h, w = self.resized_hw
        crop = mask[self.pad_y:self.pad_y + h, self.pad_x:self.pad_x + w]
        return cv2.resize(crop, (self.src_w, self.src_h), interpolation=cv2.INTER_NEAREST)
