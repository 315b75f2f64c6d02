"""Preprocessing as part of the contract: what a model's input looks like, and the way back.

Each model of the pipeline carries an :class:`InputSpec` (letterbox size, padding value,
normalisation and channel order, recorded in the run manifest); the frame loader applies it
(:meth:`InputSpec.prepare`) and predictions come back to the ORIGINAL frame's pixels through
the :class:`Geometry` of that frame.

The geometry is that of :class:`labkit.data.boxes.Letterbox` (aspect ratio kept, resized
image centred on the canvas), with one refinement: the resized image is ``round(W * s)`` by
``round(H * s)`` pixels, so the scale that maps the frame onto it is ``round(W * s) / W``
horizontally and ``round(H * s) / H`` vertically, not exactly ``s``. :class:`Geometry` uses
these per-axis scales in pixel-edge coordinates (a point ``x`` of the frame lands at
``x * sx + pad_x`` of the canvas, which is where ``cv2.resize`` puts it), so
:meth:`Geometry.to_original` is the exact inverse of the resize that made the canvas.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Literal, Mapping

import cv2
import numpy as np
import torch
import torch.nn.functional as F

from labkit.data.boxes import Letterbox
from labkit.errors import DataError

ChannelOrder = Literal["RGB", "BGR"]


@dataclass(frozen=True)
class Geometry:
    """Where a frame sits on a model's canvas: per-axis scale and padding (see module docstring)."""

    src_h: int
    src_w: int
    canvas: int
    new_h: int
    new_w: int
    pad_x: int
    pad_y: int

    @classmethod
    def fit(cls, src_hw: tuple[int, int], canvas: int) -> "Geometry":
        lb = Letterbox.fit(src_hw, canvas)
        new_h, new_w = lb.resized_hw
        return cls(lb.src_h, lb.src_w, canvas, new_h, new_w, lb.pad_x, lb.pad_y)

    @property
    def scale_xy(self) -> tuple[float, float]:
        """``(sx, sy)``: canvas pixels per frame pixel along x and y."""
        return self.new_w / self.src_w, self.new_h / self.src_h

    def _affine(self) -> tuple[np.ndarray, np.ndarray]:
        sx, sy = self.scale_xy
        return (np.array([sx, sy, sx, sy], dtype=np.float64),
                np.array([self.pad_x, self.pad_y, self.pad_x, self.pad_y], dtype=np.float64))

    def to_canvas(self, xyxy: np.ndarray) -> np.ndarray:
        """Frame-pixel corner boxes -> canvas pixels."""
        scale, offset = self._affine()
        return np.asarray(xyxy, dtype=np.float64).reshape(-1, 4) * scale + offset

    def to_original(self, xyxy: np.ndarray) -> np.ndarray:
        """Canvas-pixel corner boxes -> frame pixels (exact inverse of :meth:`to_canvas`)."""
        scale, offset = self._affine()
        return (np.asarray(xyxy, dtype=np.float64).reshape(-1, 4) - offset) / scale

    def image(self, image: np.ndarray, pad_value: int) -> np.ndarray:
        """The frame resized (bilinear) and padded onto the ``canvas x canvas`` square."""
        if image.shape[:2] != (self.src_h, self.src_w):
            raise DataError(f"frame is {image.shape[:2]}, geometry was fitted for {(self.src_h, self.src_w)}")
        out = np.full((self.canvas, self.canvas) + image.shape[2:], pad_value, dtype=image.dtype)
        resized = cv2.resize(image, (self.new_w, self.new_h), interpolation=cv2.INTER_LINEAR)
        out[self.pad_y:self.pad_y + self.new_h, self.pad_x:self.pad_x + self.new_w] = resized.reshape(
            (self.new_h, self.new_w) + image.shape[2:])
        return out

    def scores_to_original(self, scores: torch.Tensor) -> torch.Tensor:
        """``(K, canvas, canvas)`` per-pixel scores -> ``(K, H, W)``: padding cropped, the rest
        resized bilinearly (pixel-centre aligned, the inverse of :meth:`image`'s resize)."""
        crop = scores[:, self.pad_y:self.pad_y + self.new_h, self.pad_x:self.pad_x + self.new_w]
        return F.interpolate(crop[None], size=(self.src_h, self.src_w), mode="bilinear", align_corners=False)[0]


@dataclass(frozen=True)
class InputSpec:
    """How a model wants its input: the recorded preprocessing contract.

    Attributes:
        size: square canvas side the frame is letterboxed to.
        pad_value: value (0-255, before normalisation) of the padding.
        mean, std: per-channel normalisation applied after dividing by 255, in ``channel_order``.
        channel_order: ``"RGB"`` or ``"BGR"``: the order of the network's three input channels.
    """

    size: int
    pad_value: int
    mean: tuple[float, float, float] = (0.0, 0.0, 0.0)
    std: tuple[float, float, float] = (1.0, 1.0, 1.0)
    channel_order: ChannelOrder = "RGB"

    def __post_init__(self) -> None:
        if not isinstance(self.size, int) or self.size <= 0:
            raise DataError(f"input size must be a positive integer, got {self.size!r}")
        if not 0 <= int(self.pad_value) <= 255:
            raise DataError(f"pad_value must be in [0, 255], got {self.pad_value!r}")
        if self.channel_order not in ("RGB", "BGR"):
            raise DataError(f"channel_order must be 'RGB' or 'BGR', got {self.channel_order!r}")
        if len(self.mean) != 3 or len(self.std) != 3 or min(self.std) <= 0:
            raise DataError(f"mean and std need 3 values (std > 0), got {self.mean!r} and {self.std!r}")
        object.__setattr__(self, "mean", tuple(float(v) for v in self.mean))
        object.__setattr__(self, "std", tuple(float(v) for v in self.std))

    @classmethod
    def from_dict(cls, values: Mapping[str, Any]) -> "InputSpec":
        return cls(**{**values, "mean": tuple(values.get("mean", (0, 0, 0))), "std": tuple(values.get("std", (1, 1, 1)))})

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "mean": list(self.mean), "std": list(self.std)}

    def prepare(self, image_rgb: np.ndarray) -> tuple[np.ndarray, Geometry]:
        """An RGB uint8 frame -> the network input ``(3, size, size)`` float32 and its geometry."""
        geometry = Geometry.fit(image_rgb.shape[:2], self.size)
        canvas = geometry.image(image_rgb, self.pad_value)
        if self.channel_order == "BGR":
            canvas = canvas[:, :, ::-1]
        x = canvas.astype(np.float32) / 255.0
        x = (x - np.asarray(self.mean, np.float32)) / np.asarray(self.std, np.float32)
        return np.ascontiguousarray(x.transpose(2, 0, 1)), geometry
