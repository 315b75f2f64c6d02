"""Camera motion compensation: the frame-to-frame image motion, applied to track predictions.

A panning or shaking camera moves every box in the image although nobody moved; a
constant-velocity filter then predicts the boxes in the wrong place. Following BoT-SORT
(N. Aharon, R. Orfaig, B.-Z. Bobrovsky, "BoT-SORT: Robust Associations Multi-Pedestrian
Tracking", arXiv:2206.14651, Sec. 3.2), we estimate a 2x3 affine ``A`` mapping the previous
frame onto the current one from the *background*, and warp the predicted states with it before
association:

* ``"orb"``: ORB keypoints (E. Rublee et al., ICCV 2011) outside the detection boxes, matched
  with a brute-force Hamming matcher and Lowe's ratio test, then a similarity transform
  (rotation, uniform scale, translation) fitted with RANSAC
  (``cv2.estimateAffinePartial2D``; M. Fischler, R. Bolles 1981).
* ``"ecc"``: OpenCV's ``findTransformECC`` (G. Evangelidis, E. Psarakis, "Parametric Image
  Alignment Using Enhanced Correlation Coefficient Maximization", TPAMI 2008), Euclidean
  motion, on frames downscaled to at most 320 pixels wide.

When the estimate fails (too few features, no convergence) the identity is returned and the
reason is recorded in :attr:`CameraMotion.last_status`.
"""

from __future__ import annotations

import cv2
import numpy as np

IDENTITY = np.array([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]])
_MIN_MATCHES = 12


def _gray(image: np.ndarray) -> np.ndarray:
    return image if image.ndim == 2 else cv2.cvtColor(image, cv2.COLOR_RGB2GRAY)


class CameraMotion:
    """Frame-to-frame affine estimator (``method`` ``"orb"`` or ``"ecc"``); feed frames in order."""

    def __init__(self, method: str = "orb", seed: int = 0) -> None:
        if method not in ("orb", "ecc"):
            raise ValueError(f"camera motion method must be 'orb' or 'ecc', got {method!r}")
        self.method = method
        self.seed = seed
        self._previous: np.ndarray | None = None
        self._previous_features: tuple | None = None
        self._orb = cv2.ORB_create(nfeatures=1000, fastThreshold=7, edgeThreshold=15) if method == "orb" else None
        self.last_status = "first frame"

    def estimate(self, image: np.ndarray, boxes_xywh: np.ndarray | None = None) -> np.ndarray:
        """Affine ``(2, 3)`` from the previous frame given to this one (identity on the first)."""
        gray = _gray(np.asarray(image))
        if self.method == "orb":
            return self._orb_step(gray, boxes_xywh)
        previous, self._previous = self._previous, gray
        if previous is None:
            self.last_status = "first frame"
            return IDENTITY.copy()
        return self._ecc(previous, gray)

    def _orb_step(self, gray: np.ndarray, boxes_xywh: np.ndarray | None) -> np.ndarray:
        mask = np.full(gray.shape, 255, dtype=np.uint8)
        for x, y, w, h in np.asarray(boxes_xywh if boxes_xywh is not None else np.zeros((0, 4))).reshape(-1, 4):
            mask[max(int(y), 0):max(int(y + h), 0), max(int(x), 0):max(int(x + w), 0)] = 0
        keypoints, descriptors = self._orb.detectAndCompute(gray, mask)
        previous, self._previous_features = self._previous_features, (keypoints, descriptors)
        if previous is None:
            self.last_status = "first frame"
            return IDENTITY.copy()
        (kp0, d0), (kp1, d1) = previous, (keypoints, descriptors)
        if d0 is None or d1 is None or len(kp0) < _MIN_MATCHES or len(kp1) < _MIN_MATCHES:
            self.last_status = "too few features"
            return IDENTITY.copy()
        pairs = cv2.BFMatcher(cv2.NORM_HAMMING).knnMatch(d0, d1, k=2)
        good = [p[0] for p in pairs if len(p) == 2 and p[0].distance < 0.75 * p[1].distance]
        if len(good) < _MIN_MATCHES:
            self.last_status = f"{len(good)} good matches (< {_MIN_MATCHES})"
            return IDENTITY.copy()
        src = np.float32([kp0[m.queryIdx].pt for m in good])
        dst = np.float32([kp1[m.trainIdx].pt for m in good])
        cv2.setRNGSeed(self.seed)
        affine, inliers = cv2.estimateAffinePartial2D(src, dst, method=cv2.RANSAC, ransacReprojThreshold=3.0)
        if affine is None:
            self.last_status = "RANSAC found no model"
            return IDENTITY.copy()
        self.last_status = f"ok ({int(inliers.sum())}/{len(good)} inliers)"
        return affine.astype(np.float64)

    def _ecc(self, previous: np.ndarray, gray: np.ndarray) -> np.ndarray:
        scale = min(1.0, 320.0 / gray.shape[1])
        small = [cv2.resize(g, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA).astype(np.float32) / 255
                 for g in (previous, gray)]
        warp = np.eye(2, 3, dtype=np.float32)
        criteria = (cv2.TERM_CRITERIA_EPS | cv2.TERM_CRITERIA_COUNT, 50, 1e-4)
        try:
            _, warp = cv2.findTransformECC(small[0], small[1], warp, cv2.MOTION_EUCLIDEAN, criteria, None, 1)
        except cv2.error:
            self.last_status = "ECC did not converge"
            return IDENTITY.copy()
        # template(x) = input(W x): W maps previous-frame coordinates to current-frame ones
        affine = warp.astype(np.float64)
        affine[:, 2] /= scale
        self.last_status = "ok"
        return affine


def warp_states(mean: np.ndarray, cov: np.ndarray, affine: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Kalman states ``[cx, cy, a, h, v...]`` moved by ``affine``: centres through ``A``, velocities
    through its linear part, heights by its scale ``sqrt|det|``; covariances as ``L P L^T``."""
    if len(mean) == 0:
        return mean, cov
    linear, shift = affine[:, :2], affine[:, 2]
    scale = float(np.sqrt(abs(np.linalg.det(linear))))
    transform = np.eye(8)
    for block in (0, 4):
        transform[block:block + 2, block:block + 2] = linear
        transform[block + 3, block + 3] = scale
    new_mean = mean @ transform.T
    new_mean[:, :2] += shift
    return new_mean, transform @ cov @ transform.T
