"""Test-time mitigations of a covariate shift that need no labels and no retraining.

**Brightness restoration** (gamma correction, e.g. R. C. Gonzalez and R. E. Woods, "Digital Image
Processing", 4th ed., section 3.2, power-law transformations): with grey levels scaled to [0, 1],
``out = in ** gamma`` with ``gamma = ln(target) / ln(mean)`` maps the image's mean grey level
``mean`` (ITU-R BT.601 luma, OpenCV's ``RGB2GRAY``) to ``target``, exactly for a uniform image and
approximately otherwise. It undoes the power-law part of a low-light capture (see the
``low_light`` corruption in :mod:`labkit.robust.corruptions`); the noise it amplifies stays.
"""

from __future__ import annotations

import cv2
import numpy as np

from labkit.errors import DataError


def restore_brightness(image: np.ndarray, target_mean: float) -> np.ndarray:
    """The RGB uint8 ``image`` gamma-corrected so that its mean grey level moves to ``target_mean``
    (0-255). The image's mean is clipped to [1, 254] first (a black or white frame has no finite
    gamma), so such frames come back nearly unchanged. Anything but an ``H x W x 3`` uint8 array, or a
    target outside (0, 255), is a :class:`DataError`."""
    if not isinstance(image, np.ndarray) or image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
        raise DataError(f"expected an H x W x 3 uint8 RGB image, got {getattr(image, 'dtype', type(image).__name__)} "
                        f"of shape {getattr(image, 'shape', None)}")
    if not 0.0 < float(target_mean) < 255.0:
        raise DataError(f"target_mean must lie strictly between 0 and 255, got {target_mean}")
    mean = float(np.clip(cv2.cvtColor(image, cv2.COLOR_RGB2GRAY).mean(), 1.0, 254.0)) / 255.0
    gamma = np.log(float(target_mean) / 255.0) / np.log(mean)
    table = np.rint(255.0 * (np.arange(256) / 255.0) ** gamma).clip(0, 255).astype(np.uint8)
    return cv2.LUT(image, table)
