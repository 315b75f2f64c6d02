"""Appearance cues: crops, embedders, and the per-track embedding gallery.

An *embedder* is any callable ``embed(image (H, W, 3) uint8 RGB, xywh (N, 4)) -> (N, E)``.
Two ship with labkit:

* :class:`HistogramEmbedder`: a colour histogram in HSV (8 x 8 x 4 bins over hue, saturation,
  value), L2-normalised; the colour-indexing baseline of M. Swain and D. Ballard, "Color
  Indexing", IJCV 1991. No training, fast, blind to shape.
* the course ReID network (:mod:`labkit.track.reid`), trained on crops of the train sequences.

:class:`Gallery` keeps what a track looks like: either an exponential moving average of its
embeddings (``ema``, JDE/FairMOT style: ``g <- m g + (1 - m) e``, re-normalised) or its ``k``
latest embeddings (``last_k``, DeepSORT's gallery; the distance to a detection is the smallest
over the gallery). Aggressive updates (small ``m``, small ``k``) follow appearance changes but
drift to the wrong object after a wrong match.
"""

from __future__ import annotations

from collections import deque

import cv2
import numpy as np

from labkit.track.association import cosine_distance

#: Side of the square crops the embedders see (height x width = 2:1 for people-like boxes).
CROP_SIZE = (64, 32)


def crops(image: np.ndarray, xywh: np.ndarray, size: tuple[int, int] = CROP_SIZE) -> np.ndarray:
    """``(N, h, w, 3)`` uint8 crops of the boxes (clipped to the image; an empty box gives a black crop)."""
    image = np.asarray(image)
    height, width = image.shape[:2]
    out = np.zeros((len(xywh), size[0], size[1], 3), dtype=np.uint8)
    for i, (x, y, w, h) in enumerate(np.asarray(xywh, dtype=np.float64).reshape(-1, 4)):
        x0, y0 = int(np.clip(np.floor(x), 0, width)), int(np.clip(np.floor(y), 0, height))
        x1, y1 = int(np.clip(np.ceil(x + w), 0, width)), int(np.clip(np.ceil(y + h), 0, height))
        if x1 > x0 and y1 > y0:
            out[i] = cv2.resize(image[y0:y1, x0:x1], (size[1], size[0]), interpolation=cv2.INTER_AREA)
    return out


class HistogramEmbedder:
    """HSV colour histogram (8 x 8 x 4 bins), L2-normalised: the no-training appearance baseline."""

    bins = (8, 8, 4)

    def embed_crops(self, patches: np.ndarray) -> np.ndarray:
        """``(N, h, w, 3)`` RGB crops -> ``(N, 256)`` embeddings."""
        out = np.zeros((len(patches), int(np.prod(self.bins))))
        for i, patch in enumerate(patches):
            hsv = cv2.cvtColor(np.ascontiguousarray(patch), cv2.COLOR_RGB2HSV)
            hist = cv2.calcHist([hsv], [0, 1, 2], None, list(self.bins), [0, 180, 0, 256, 0, 256]).ravel()
            out[i] = hist / max(np.linalg.norm(hist), 1e-12)
        return out

    def __call__(self, image: np.ndarray, xywh: np.ndarray) -> np.ndarray:
        return self.embed_crops(crops(image, xywh))


class Gallery:
    """Embeddings per track id: ``mode="ema"`` (moving average, ``momentum``) or ``"last_k"``."""

    def __init__(self, mode: str = "ema", momentum: float = 0.9, size: int = 10) -> None:
        if mode not in ("ema", "last_k"):
            raise ValueError(f"gallery mode must be 'ema' or 'last_k', got {mode!r}")
        self.mode, self.momentum, self.size = mode, momentum, size
        self._items: dict[int, deque] = {}

    def update(self, track_id: int, embedding: np.ndarray) -> None:
        """Add a matched detection's embedding to a track's gallery."""
        e = np.asarray(embedding, dtype=np.float64)
        e = e / max(np.linalg.norm(e), 1e-12)
        items = self._items.setdefault(int(track_id), deque(maxlen=1 if self.mode == "ema" else self.size))
        if self.mode == "ema" and items:
            mixed = self.momentum * items[0] + (1 - self.momentum) * e
            e = mixed / max(np.linalg.norm(mixed), 1e-12)
        items.append(e)

    def forget(self, track_id: int) -> None:
        self._items.pop(int(track_id), None)

    def distance(self, track_ids: np.ndarray, det_embeddings: np.ndarray) -> np.ndarray:
        """``(T, D)`` smallest cosine distance between each track's gallery and each detection
        (1.0, the neutral maximum, for a track without a gallery)."""
        out = np.ones((len(track_ids), len(det_embeddings)))
        if len(det_embeddings) == 0:
            return out
        for row, tid in enumerate(track_ids):
            items = self._items.get(int(tid))
            if items:
                out[row] = cosine_distance(np.stack(items), det_embeddings).min(axis=0)
        return out
