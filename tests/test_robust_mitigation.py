"""Brightness restoration: hand-worked gamma on uniform images, the clipped extremes, bad input."""

import numpy as np
import pytest

from labkit.errors import DataError
from labkit.robust.mitigation import restore_brightness


def _uniform(value: int) -> np.ndarray:
    return np.full((4, 6, 3), value, dtype=np.uint8)


def test_uniform_image_lands_on_the_target():
    # 64/255 -> 128/255: gamma = ln(128/255) / ln(64/255) = 0.4983; 255 * (64/255)**0.4983 = 128.0
    out = restore_brightness(_uniform(64), 128.0)
    assert out.dtype == np.uint8 and out.shape == (4, 6, 3)
    assert np.all(out == 128)


def test_darkening_and_order_kept():
    img = np.zeros((1, 3, 3), dtype=np.uint8)
    img[0, :, :] = np.array([[40, 40, 40], [120, 120, 120], [200, 200, 200]], dtype=np.uint8)
    out = restore_brightness(img, 60.0)  # mean 120 -> 60: gamma > 1 darkens
    grey = out[0, :, 0].astype(int)
    assert grey[1] < 120 and np.all(np.diff(grey) > 0)
    assert out[0, 0, 0] == 0 or out[0, 0, 0] < 40


def test_black_and_white_frames_stay_finite():
    assert np.all(restore_brightness(_uniform(0), 128.0) == 0)  # 0 ** gamma = 0
    out = restore_brightness(_uniform(255), 128.0)  # mean clipped to 254: gamma finite
    assert np.all(out == 255)


@pytest.mark.parametrize("image, target", [
    (np.zeros((4, 4), dtype=np.uint8), 100.0),
    (np.zeros((4, 4, 3), dtype=np.float32), 100.0),
    (np.zeros((4, 4, 3), dtype=np.uint8), 0.0),
    (np.zeros((4, 4, 3), dtype=np.uint8), 255.0),
])
def test_bad_input_is_a_data_error(image, target):
    with pytest.raises(DataError):
        restore_brightness(image, target)



# --- the checkpoint behind a model name (labkit.robust.models.model_weights) -------------------------

def test_model_weights_of_a_file_is_the_file(tmp_path):
    from labkit.robust.models import model_weights

    ckpt = tmp_path / "best.pt"
    ckpt.write_bytes(b"x")
    assert model_weights(str(ckpt)) == ckpt


def test_model_weights_of_an_unknown_name_lists_the_known_ones(tmp_path):
    from labkit.robust.models import KNOWN_MODELS, UnknownModel, model_weights

    with pytest.raises(UnknownModel, match="detect-base") as info:
        model_weights(str(tmp_path / "missing.pt"))
    assert all(name in str(info.value) for name in KNOWN_MODELS)
