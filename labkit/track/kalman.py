"""A constant-velocity Kalman filter over boxes, vectorised over tracks (NumPy).

State of one track (8 numbers), as in DeepSORT (N. Wojke, A. Bewley, D. Paulus, "Simple Online
and Realtime Tracking with a Deep Association Metric", ICIP 2017)::

    x = [cx, cy, a, h, vcx, vcy, va, vh]

``cx, cy`` the box centre (pixels), ``a = w / h`` the aspect ratio, ``h`` the height (pixels),
and their velocities per frame. A measurement is ``z = [cx, cy, a, h]``.

Model (R. E. Kalman, 1960; notation of Welch & Bishop, "An Introduction to the Kalman Filter")::

    predict:  x' = F x,          P' = F P F^T + Q
    update:   S = H P' H^T + R,  K = P' H^T S^-1,  x = x' + K (z - H x'),  P = (I - K H) P'

with ``F = [[I, I], [0, I]]`` (constant velocity, one frame per step) and ``H = [I, 0]``.
The noise is proportional to the box height, so that near (large) and far (small) objects get
the same relative uncertainty: with ``sp`` = ``process_noise_position``, ``sv`` =
``process_noise_velocity`` and ``sm`` = ``measurement_noise``,

* ``Q = diag(sp h, sp h, 1e-2, sp h, sv h, sv h, 1e-5, sv h)^2`` (h of the current estimate),
* ``R = diag(sm h, sm h, 1e-1, sm h)^2``,
* a new track starts at ``x = [z, 0]`` with
  ``P = diag(2 sp h, 2 sp h, 1e-2, 2 sp h, 10 sv h, 10 sv h, 1e-5, 10 sv h)^2``.

All functions take and return stacked arrays: ``mean (N, 8)``, ``cov (N, 8, 8)``.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import numpy as np

NDIM = 4
F = np.eye(2 * NDIM)
F[:NDIM, NDIM:] = np.eye(NDIM)
H = np.eye(NDIM, 2 * NDIM)


def xywh_to_measurement(xywh: np.ndarray) -> np.ndarray:
    """``(N, 4)`` COCO boxes -> ``(N, 4)`` measurements ``[cx, cy, a, h]``."""
    xywh = np.asarray(xywh, dtype=np.float64).reshape(-1, 4)
    z = np.empty_like(xywh)
    z[:, :2] = xywh[:, :2] + xywh[:, 2:] / 2
    z[:, 2] = xywh[:, 2] / np.maximum(xywh[:, 3], 1e-6)
    z[:, 3] = xywh[:, 3]
    return z


def measurement_to_xywh(z: np.ndarray) -> np.ndarray:
    """``(N, >=4)`` ``[cx, cy, a, h, ...]`` -> ``(N, 4)`` COCO boxes."""
    z = np.asarray(z, dtype=np.float64)
    z = z.reshape(len(z), -1) if z.size else np.zeros((len(z), 4))
    out = np.empty((len(z), 4))
    out[:, 2] = z[:, 2] * z[:, 3]
    out[:, 3] = z[:, 3]
    out[:, :2] = z[:, :2] - out[:, 2:] / 2
    return out


@dataclass(frozen=True)
class BoxKalman:
    """The filter's noise knobs (fractions of the box height; see the module docstring)."""

    process_noise_position: float = 0.05
    process_noise_velocity: float = 0.00625
    measurement_noise: float = 0.1

    def initiate(self, z: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """New tracks from measurements ``z (N, 4)``: zero velocity, wide velocity uncertainty."""
        z = np.asarray(z, dtype=np.float64).reshape(-1, NDIM)
        h = z[:, 3]
        sp, sv = self.process_noise_position, self.process_noise_velocity
        std = np.stack([2 * sp * h, 2 * sp * h, np.full_like(h, 1e-2), 2 * sp * h,
                        10 * sv * h, 10 * sv * h, np.full_like(h, 1e-5), 10 * sv * h], axis=1)
        mean = np.concatenate([z, np.zeros_like(z)], axis=1)
        return mean, _diag(std ** 2)

    @cached_property
    def _process_weights(self) -> tuple[np.ndarray, np.ndarray]:
        """Q's standard deviations as ``h * scale + offset`` (the aspect ratio's are constants)."""
        sp, sv = self.process_noise_position, self.process_noise_velocity
        return np.array([sp, sp, 0.0, sp, sv, sv, 0.0, sv]), np.array([0, 0, 1e-2, 0, 0, 0, 1e-5, 0])

    @cached_property
    def _measurement_weights(self) -> tuple[np.ndarray, np.ndarray]:
        sm = self.measurement_noise
        return np.array([sm, sm, 0.0, sm]), np.array([0, 0, 1e-1, 0])

    def _process_var(self, mean: np.ndarray) -> np.ndarray:
        scale, offset = self._process_weights
        return (mean[:, 3:4] * scale + offset) ** 2

    def _measurement_var(self, mean: np.ndarray) -> np.ndarray:
        scale, offset = self._measurement_weights
        return (mean[:, 3:4] * scale + offset) ** 2

    def process_cov(self, mean: np.ndarray) -> np.ndarray:
        """``Q (N, 8, 8)`` for the current estimates."""
        return _diag(self._process_var(mean))

    def measurement_cov(self, mean: np.ndarray) -> np.ndarray:
        """``R (N, 4, 4)`` for the current estimates."""
        return _diag(self._measurement_var(mean))

    def predict(self, mean: np.ndarray, cov: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """One frame ahead: ``x' = F x``, ``P' = F P F^T + Q`` (Q from the current estimate)."""
        # F P F^T with F = [[I, I], [0, I]], written with blocks (same numbers, fewer operations)
        p = cov.copy()
        p[:, :NDIM, :] += cov[:, NDIM:, :]
        p[:, :, :NDIM] += p[:, :, NDIM:]
        new_mean = mean.copy()
        new_mean[:, :NDIM] += mean[:, NDIM:]
        p.reshape(len(p), 4 * NDIM * NDIM)[:, ::2 * NDIM + 1] += self._process_var(mean)  # + Q on the diagonal (p is a fresh C-order copy: reshape is a view)
        return new_mean, p

    def project(self, mean: np.ndarray, cov: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Measurement-space mean ``H x (N, 4)`` and innovation covariance ``S = H P H^T + R (N, 4, 4)``."""
        s = cov[:, :NDIM, :NDIM].copy()
        s.reshape(len(s), NDIM * NDIM)[:, ::NDIM + 1] += self._measurement_var(mean)  # + R on the diagonal
        return mean[:, :NDIM].copy(), s

    def update(self, mean: np.ndarray, cov: np.ndarray, z: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Correct the predictions ``mean, cov`` (N tracks) with their measurements ``z (N, 4)``."""
        if len(mean) == 0:
            return mean, cov
        z_pred, s = self.project(mean, cov)
        pht = cov[:, :, :NDIM]  # P H^T, (N, 8, 4)
        diagonal = s.reshape(len(s), NDIM * NDIM)[:, ::NDIM + 1]
        if np.count_nonzero(s) == diagonal.size:  # S diagonal (no camera warp couples the coordinates)
            gain = pht / diagonal[:, None, :]  # K = P H^T S^-1 with S^-1 = diag(1 / s_ii)
        else:
            gain = pht @ np.linalg.inv(s)  # K = P H^T S^-1
        innovation = np.asarray(z, dtype=np.float64).reshape(-1, NDIM) - z_pred
        new_mean = mean + (gain @ innovation[:, :, None])[:, :, 0]
        new_cov = cov - gain @ cov[:, :NDIM, :]  # (I - K H) P
        return new_mean, (new_cov + new_cov.transpose(0, 2, 1)) / 2

    def squared_mahalanobis(self, mean: np.ndarray, cov: np.ndarray, z: np.ndarray) -> np.ndarray:
        """``(N tracks, M measurements)`` squared Mahalanobis distances ``d^T S^-1 d``, ``d = z - H x``."""
        z = np.asarray(z, dtype=np.float64).reshape(-1, NDIM)
        if len(mean) == 0 or len(z) == 0:
            return np.zeros((len(mean), len(z)))
        z_pred, s = self.project(mean, cov)
        d = z[None, :, :] - z_pred[:, None, :]  # (N, M, 4)
        solved = np.linalg.solve(s[:, None], d[..., None])[..., 0]
        return np.einsum("nmi,nmi->nm", d, solved)


def _diag(values: np.ndarray) -> np.ndarray:
    out = np.zeros(values.shape + (values.shape[-1],))
    idx = np.arange(values.shape[-1])
    out[..., idx, idx] = values
    return out
