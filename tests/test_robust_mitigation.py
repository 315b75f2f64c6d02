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


# ---------------------------------------------------------------- AdaBN, label shift, concept drift
def _bn_model():
    import torch

    return torch.nn.Sequential(torch.nn.BatchNorm2d(1), torch.nn.Dropout(0.5))


def test_adabn_running_stats_are_the_mean_of_the_batch_statistics():
    import torch

    from labkit.robust.mitigation import adapt_batchnorm

    model = _bn_model()
    # batch 1: values 1 and 3 -> mean 2, unbiased variance ((1-2)^2 + (3-2)^2) / 1 = 2
    # batch 2: values 5 and 5 -> mean 5, variance 0; cumulative: mean 3.5, variance 1
    batches = [torch.tensor([1.0, 3.0]).reshape(2, 1, 1, 1), torch.tensor([5.0, 5.0]).reshape(2, 1, 1, 1)]
    assert adapt_batchnorm(model, batches) == 1
    bn = model[0]
    assert bn.running_mean.item() == pytest.approx(3.5) and bn.running_var.item() == pytest.approx(1.0)
    assert bn.momentum == 0.1 and not model.training and not model[1].training  # restored; dropout stayed off
    out = model(torch.tensor([3.5, 4.5]).reshape(2, 1, 1, 1)).flatten()
    assert out.tolist() == pytest.approx([0.0, 1.0 / np.sqrt(1.0 + bn.eps)], abs=1e-6)  # float32


def test_adabn_bad_input():
    import torch

    from labkit.robust.mitigation import adapt_batchnorm

    with pytest.raises(DataError, match="no BatchNorm"):
        adapt_batchnorm(torch.nn.Conv2d(1, 1, 1), [torch.zeros(1, 1, 2, 2)])
    with pytest.raises(DataError, match="at least one batch"):
        adapt_batchnorm(_bn_model(), [])


def test_prior_weights_and_recalibrated_thresholds_by_hand():
    from labkit.robust.mitigation import prior_weights, recalibrate_thresholds

    # source: class 1 is 3/4 of the objects, class 2 1/4; target: 1/4 and 3/4
    w = prior_weights({1: 30, 2: 10}, {1: 5, 2: 15})
    assert w == pytest.approx({1: 1 / 3, 2: 3.0})
    # t = 0.5: t / (t + w (1 - t)) = 0.5 / (0.5 + 0.5 w): w = 3 -> 0.25, w = 1/3 -> 0.75, w = 1 -> 0.5
    assert recalibrate_thresholds(0.5, {**w, 3: 1.0}) == pytest.approx({1: 0.75, 2: 0.25, 3: 0.5})
    # t = 0.8, w = 4: 0.8 / (0.8 + 0.8) = 0.5
    assert recalibrate_thresholds(0.8, {1: 4.0})[1] == pytest.approx(0.5)


def test_bbse_recovers_the_weights_of_a_hand_worked_shift():
    from labkit.robust.mitigation import bbse_weights

    # source priors (0.5, 0.5); the classifier is right 80 % of the time for each class:
    # joint = [[0.4, 0.1], [0.1, 0.4]]. Target priors (0.2, 0.8) -> w = (0.4, 1.6) and predicted
    # frequencies mu = joint @ w = (0.16 + 0.16, 0.04 + 0.64) = (0.32, 0.68)
    w = bbse_weights(np.array([[0.4, 0.1], [0.1, 0.4]]), np.array([0.32, 0.68]))
    assert w == pytest.approx([0.4, 1.6])


def test_label_shift_bad_input():
    from labkit.robust.mitigation import bbse_weights, prior_weights, recalibrate_thresholds

    with pytest.raises(DataError, match="never occurs in the source"):
        prior_weights({1: 10}, {1: 3, 2: 4})
    for bad in (0.0, 1.0, 1.5):
        with pytest.raises(DataError, match="strictly between 0 and 1"):
            recalibrate_thresholds(bad, {1: 1.0})
    with pytest.raises(DataError, match="singular"):
        bbse_weights(np.array([[0.25, 0.25], [0.25, 0.25]]), np.array([0.5, 0.5]))
    with pytest.raises(DataError, match="square"):
        bbse_weights(np.ones((2, 3)), np.ones(2))


def test_changed_label_policy_sets_an_error_floor():
    from labkit.robust.mitigation import irreducible_error

    # the new policy splits "cone" into "cone" and "marker" by a criterion the old label does not
    # carry: 2 of the 4 old cones are now markers; blocks are unchanged -> floor 2/6
    old = ["cone", "cone", "cone", "cone", "block", "block"]
    new = ["cone", "cone", "marker", "marker", "block", "block"]
    out = irreducible_error(old, new)
    assert out["classes_old"] == ["block", "cone"] and out["classes_new"] == ["block", "cone", "marker"]
    assert out["confusion"].tolist() == [[2, 0, 0], [0, 2, 2]]
    assert out["floor"] == pytest.approx(1 / 3)
    assert irreducible_error(old, old)["floor"] == 0.0  # the same policy: no floor
    with pytest.raises(DataError, match="same, non-zero number"):
        irreducible_error(old, new[:-1])


def test_adabn_checkpoint_sets_the_first_batchnorm_to_the_target_statistics(tmp_path):
    import torch
    from robust_helpers import untrained_detector

    from labkit.data.boxes import Letterbox
    from labkit.detect.predict import PAD_VALUE, load_detector
    from labkit.robust.mitigation import adabn_checkpoint

    weights = untrained_detector(tmp_path, imgsz=64)
    rng = np.random.default_rng(0)
    frames = [rng.integers(0, 60, (48, 64, 3), dtype=np.uint8) for _ in range(3)]  # dark target frames
    out = adabn_checkpoint(weights, frames, tmp_path / "adapted" / "weights.pt", batch=3)
    model = torch.load(out, weights_only=False)["model"]
    conv = model.model[0].conv  # the first layer: Conv2d -> BatchNorm2d, adapted on one batch of 3
    x = torch.stack([torch.from_numpy(Letterbox.fit((48, 64), 64).image(f, pad_value=PAD_VALUE)) for f in frames])
    x = x.permute(0, 3, 1, 2).float() / 255.0
    with torch.no_grad():
        y = conv(x)  # computed here with the convolution alone, independently of adapt_batchnorm
    bn = model.model[0].bn
    assert torch.allclose(bn.running_mean, y.mean(dim=(0, 2, 3)), atol=1e-5)
    assert torch.allclose(bn.running_var, y.var(dim=(0, 2, 3), unbiased=True), atol=1e-5)
    assert (out.parent / "categories.json").is_file() and load_detector(out, device="cpu").imgsz == 64
    with pytest.raises(DataError, match="no such checkpoint"):
        adabn_checkpoint(tmp_path / "missing.pt", frames, tmp_path / "x.pt")
