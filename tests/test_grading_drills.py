"""labkit.grading.drills helpers on hand-worked cases that test_drills.py leaves open (exact values,
integer inputs, empty inputs)."""

from __future__ import annotations

import numpy as np

from labkit.grading import drills as dr


def test_export_logits_of_uint8_pixels_do_not_wrap():
    """Moments in float64 whatever the input's dtype: 200 squared is 40000, not 40000 mod 256."""
    chw = np.stack([np.full((2, 3), v, np.uint8) for v in (200, 10, 0)])
    weights = np.zeros((2, 7))
    weights[0, 3] = 1.0   # mean square of channel 0
    weights[1, [0, 1, 6]] = [1.0, 1.0, 0.5]  # the two means + bias
    assert dr.export_logits(chw, weights).tolist() == [40000.0, 210.5]
