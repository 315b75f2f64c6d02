"""A seeded stand-in for a semantic-segmentation model, built from the ground-truth mask.

Exporting and auditing predictions (Chapter 3's QA lab) needs predictions that look like a
network's, are the same on every machine and cost no training. :class:`NoisySegmenter` turns a
ground-truth class-id mask into per-class logits and applies the softmax a network would:

1. Ground-truth ignore pixels (255) start as background. Each connected region of a class
   (8-connectivity) is missed (becomes background) with probability ``miss`` or given another
   class with probability ``flip`` (class confusion).
2. Logits: every class's indicator is blurred (Gaussian, ``edge_sigma`` px) and scaled by
   ``gain``; smooth noise (white noise blurred by ``noise_sigma`` px, standard deviation
   ``noise``) is added per class, which makes boundaries wander and, where it is strong enough,
   carves holes and false blobs; ``Poisson(speckles)`` discs of a random class, whose logit
   beats the background's by ``U(0.1, 0.6) * gain``, are added on top (false positives).
3. ``labels = argmax(logits)`` and ``confidence = max(softmax(logits))``: confidence is close to
   1 inside regions and drops towards 0.5 along boundaries, like a real model's.

Every image draws from a generator seeded by ``(seed, image_id)``. ``checkpoint_id`` names the
parameter set, the way a checkpoint hash names trained weights.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

import cv2
import numpy as np

from labkit.errors import DataError
from labkit.repro import config_hash

#: Value of "not labelled" pixels in ground-truth masks.
IGNORE = 255
#: Radius range (pixels) of the false-positive discs.
SPECKLE_RADIUS = (3, 9)
#: Logit added inside a false-positive disc, in units of ``gain``: enough to beat the background
#: there, with a moderate confidence.
SPECKLE_STRENGTH = (1.1, 1.6)


def _blur(field: np.ndarray, sigma: float) -> np.ndarray:
    return cv2.GaussianBlur(field, (0, 0), sigmaX=sigma, borderType=cv2.BORDER_REFLECT) if sigma > 0 else field


@dataclass(frozen=True)
class NoisySegmenter:
    """Deterministic fake semantic-segmentation model (see the module docstring).

    Attributes:
        num_classes: class ids are ``0`` (background) to ``num_classes - 1``.
        seed: with the image id, seeds every random choice.
        miss, flip: probability that a ground-truth region is missed / gets another class.
        gain: logit of a pixel deep inside a region of its class.
        edge_sigma: softness of the boundaries (pixels).
        noise, noise_sigma: standard deviation and smoothness (pixels) of the logit noise.
        speckles: mean number of false-positive discs per image.
    """

    num_classes: int = 6
    seed: int = 0
    miss: float = 0.05
    flip: float = 0.08
    gain: float = 6.0
    edge_sigma: float = 1.5
    noise: float = 0.7
    noise_sigma: float = 4.0
    speckles: float = 1.5

    def __post_init__(self) -> None:
        if not 2 <= self.num_classes <= IGNORE:
            raise DataError(f"num_classes must be in [2, {IGNORE}], got {self.num_classes}")
        if isinstance(self.seed, bool) or not isinstance(self.seed, (int, np.integer)) or self.seed < 0:
            raise DataError(f"seed must be an integer >= 0, got {self.seed!r}")
        for name in ("miss", "flip"):
            if not 0 <= getattr(self, name) <= 1:
                raise DataError(f"'{name}' must be in [0, 1], got {getattr(self, name)}")
        for name in ("gain", "edge_sigma", "noise", "noise_sigma", "speckles"):
            if getattr(self, name) < 0:
                raise DataError(f"'{name}' must be >= 0, got {getattr(self, name)}")

    def config(self) -> dict[str, Any]:
        """The parameters, JSON-ready (what a checkpoint's config would record)."""
        return {"model": type(self).__name__, **dataclasses.asdict(self)}

    @property
    def checkpoint_id(self) -> str:
        """A stable id of this parameter set, e.g. ``noisy-segmenter-3f2a...``."""
        return f"noisy-segmenter-{config_hash(self.config())}"

    # ------------------------------------------------------------------ steps
    def _check_mask(self, gt: np.ndarray, image_id: int) -> np.ndarray:
        gt = np.asarray(gt)
        if gt.ndim != 2 or not np.issubdtype(gt.dtype, np.integer):
            raise DataError(f"ground truth must be a 2-D integer class-id mask, got {gt.dtype} {gt.shape}",
                            record=image_id)
        bad = np.setdiff1d(np.unique(gt), [*range(self.num_classes), IGNORE])
        if bad.size:
            raise DataError(f"ground truth has ids {bad.tolist()} outside 0..{self.num_classes - 1} and {IGNORE}",
                            record=image_id)
        return np.where(gt == IGNORE, 0, gt).astype(np.uint8)

    def _perturb_regions(self, labels: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        out = labels.copy()
        for cls in range(1, self.num_classes):
            count, regions = cv2.connectedComponents((labels == cls).astype(np.uint8), connectivity=8)
            for region in range(1, count):
                draw = rng.random()
                if draw < self.miss:
                    out[regions == region] = 0
                elif draw < self.miss + self.flip and self.num_classes > 2:
                    out[regions == region] = (cls - 1 + rng.integers(1, self.num_classes - 1)) % (self.num_classes - 1) + 1
        return out

    def _logits(self, labels: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        height, width = labels.shape
        logits = np.empty((self.num_classes, height, width), dtype=np.float32)
        for cls in range(self.num_classes):
            indicator = _blur((labels == cls).astype(np.float32), self.edge_sigma)
            noise = _blur(rng.standard_normal((height, width)).astype(np.float32), self.noise_sigma)
            logits[cls] = self.gain * indicator + self.noise * noise / max(float(noise.std()), 1e-6)
        for _ in range(int(rng.poisson(self.speckles))):
            disc = np.zeros((height, width), dtype=np.uint8)
            centre = (int(rng.integers(0, width)), int(rng.integers(0, height)))
            cv2.circle(disc, centre, int(rng.integers(*SPECKLE_RADIUS)), 1, thickness=-1)
            strength = self.gain * rng.uniform(*SPECKLE_STRENGTH)
            logits[int(rng.integers(1, self.num_classes))] += strength * _blur(disc.astype(np.float32), self.edge_sigma)
        return logits

    # ------------------------------------------------------------------ prediction
    def predict(self, gt_mask: np.ndarray, image_id: int) -> tuple[np.ndarray, np.ndarray]:
        """``(labels, confidence)`` for one image.

        Args:
            gt_mask: ``(H, W)`` ground-truth class ids (``255`` = ignore).
            image_id: the image's id (>= 0), part of the random seed.

        Returns:
            ``labels``: ``(H, W)`` uint8 class ids in ``0..num_classes-1`` (never 255);
            ``confidence``: ``(H, W)`` float32 softmax probability of the predicted class,
            in ``[1 / num_classes, 1]``.
        """
        if int(image_id) < 0:
            raise DataError("image ids must be >= 0 to seed the prediction", record=image_id)
        rng = np.random.default_rng([int(self.seed), int(image_id)])
        labels = self._perturb_regions(self._check_mask(gt_mask, image_id), rng)
        logits = self._logits(labels, rng)
        logits -= logits.max(axis=0, keepdims=True)
        probs = np.exp(logits)
        probs /= probs.sum(axis=0, keepdims=True)
        return probs.argmax(axis=0).astype(np.uint8), probs.max(axis=0).astype(np.float32)
