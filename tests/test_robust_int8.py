"""INT8 post-training static quantization (labkit.robust.export.quantize_int8) at tiny size: the
quantized detector runs, its raw head output stays within a stated tolerance of the fp32 export
on val images it was not calibrated on, it keeps the export's metadata (the U-Net's too, with its
own tolerance), and bad input -- a file
from another model, calibration batches another model takes, none at all -- is refused by name."""

from __future__ import annotations

from itertools import islice
from pathlib import Path

import numpy as np
import pytest
from robust_helpers import CATEGORIES, untrained_detector

pytest.importorskip("onnxruntime")

from labkit.data.sources import iter_frames  # noqa: E402
from labkit.errors import DataError  # noqa: E402
from labkit.models.dataset import load_split  # noqa: E402
from labkit.robust.export import (OrtModule, calibration_batches, export_detector, max_abs_diff,  # noqa: E402
                                  onnx_detector, quantize_int8)

#: INT8 raw head output vs fp32: at most this fraction of the fp32 output's largest magnitude
#: (8-bit activations: 255 levels per tensor range, errors add up over the network's depth)
RELATIVE_TOLERANCE = 0.05
#: the same for the untrained U-Net on Gaussian inputs: twice the depth, skip connections added in
#: 8 bits, broad random activations (8.4 % when first measured): a looser bound, stated here
UNET_RELATIVE_TOLERANCE = 0.12


@pytest.fixture(scope="module")
def data_root() -> Path:
    from labkit.data.synth import ensure_dataset

    return Path(ensure_dataset(size="small"))


@pytest.fixture(scope="module")
def exports(tmp_path_factory: pytest.TempPathFactory, data_root: Path):
    folder = tmp_path_factory.mktemp("int8")
    untrained_detector(folder, imgsz=96)
    fp32 = export_detector(folder / "weights.pt", folder / "yolo.onnx")
    detector = onnx_detector(fp32, CATEGORIES)
    train = [img for _, img in islice(iter_frames(load_split(data_root, "train")), 8)]
    int8 = quantize_int8(fp32, folder / "yolo-int8.onnx", calibration_batches(detector, train))
    return fp32, int8, detector


def test_int8_detector_runs_close_to_fp32(exports, data_root: Path) -> None:
    fp32, int8, detector = exports
    val = [img for _, img in islice(iter_frames(load_split(data_root, "val")), 4)]
    x = np.concatenate(calibration_batches(detector, val))
    import torch

    a, b = OrtModule(fp32)(torch.from_numpy(x)), OrtModule(int8)(torch.from_numpy(x))
    scale = float(a.abs().max())
    assert scale > 0 and max_abs_diff(a, b) <= RELATIVE_TOLERANCE * scale, (max_abs_diff(a, b), scale)
    assert max_abs_diff(a, b) > 0, "the INT8 file must differ from fp32 (it was quantized)"
    quantized = onnx_detector(int8, CATEGORIES)
    found = quantized(val, conf=0.001)
    assert len(found) == len(val) and quantized.imgsz == 96
    meta = OrtModule(int8).metadata
    assert meta["labkit_precision"] == "int8" and meta["task"] == "detect" and meta["calibration_batches"] == "8"
    assert Path(int8).stat().st_size < 0.5 * Path(fp32).stat().st_size  # 8-bit weights


def test_int8_bad_input_is_named(exports, tmp_path: Path) -> None:
    import onnx
    from onnx import TensorProto, helper

    fp32, _, detector = exports
    plain = tmp_path / "other.onnx"  # another model: a valid graph without any task metadata
    graph = helper.make_graph([helper.make_node("Identity", ["x"], ["y"])], "other",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 8, 8])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 3, 8, 8])])
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), str(plain))
    with pytest.raises(DataError, match=r"other.onnx: not a labkit or Ultralytics export"):
        quantize_int8(plain, tmp_path / "q.onnx", [np.zeros((1, 3, 8, 8), np.float32)])
    with pytest.raises(DataError, match=r"yolo.onnx: the calibration batches do not fit"):
        quantize_int8(fp32, tmp_path / "q.onnx", [np.zeros((1, 1, 96, 96), np.float32)])  # a one-channel model's input
    with pytest.raises(DataError, match=r"yolo.onnx: INT8 calibration needs at least one batch"):
        quantize_int8(fp32, tmp_path / "q.onnx", [])
    with pytest.raises(DataError, match=r"missing.onnx: no such ONNX file"):
        quantize_int8(tmp_path / "missing.onnx", tmp_path / "q.onnx", [])


def test_int8_unet_keeps_its_labkit_metadata_and_stays_near_fp32(tmp_path: Path) -> None:
    import torch

    from labkit.robust.export import export_segmenter, onnx_segmenter
    from labkit.segment.semantic import SemanticConfig, build_model

    torch.manual_seed(0)
    config = SemanticConfig(size=64, encoder_weights=None, device="cpu")
    fp32 = export_segmenter(build_model(config, pretrained=False).eval(), config, tmp_path / "unet.onnx")
    rng = np.random.default_rng(0)
    batches = [rng.normal(0, 1, (1, 3, 64, 64)).astype(np.float32) for _ in range(6)]
    int8 = quantize_int8(fp32, tmp_path / "unet-int8.onnx", batches)
    module = onnx_segmenter(int8, config)  # the labkit metadata came along: accepted as a U-Net export
    assert module.metadata["labkit_precision"] == "int8"
    x = torch.from_numpy(rng.normal(0, 1, (2, 3, 64, 64)).astype(np.float32))
    a, b = OrtModule(fp32)(x), module(x)
    assert 0 < max_abs_diff(a, b) <= UNET_RELATIVE_TOLERANCE * float(a.abs().max()), (max_abs_diff(a, b), float(a.abs().max()))


def test_segmenter_calibration_batches_hand_worked() -> None:
    """A uniform 2 x 4 image of grey level 51 (0.2) at size 4: scale 1, two content rows centred
    (rows 1-2) and one zero-padded row above and below; ImageNet normalisation per channel."""
    from labkit.robust.export import segmenter_calibration_batches
    from labkit.segment.semantic import SemanticConfig

    config = SemanticConfig(size=4, encoder_weights=None, device="cpu")
    (batch,) = segmenter_calibration_batches(config, [np.full((2, 4, 3), 51, np.uint8)])
    assert batch.shape == (1, 3, 4, 4) and batch.dtype == np.float32
    mean, std = np.array([0.485, 0.456, 0.406]), np.array([0.229, 0.224, 0.225])
    for c in range(3):
        np.testing.assert_allclose(batch[0, c, 1:3], (0.2 - mean[c]) / std[c], rtol=1e-5)
        np.testing.assert_allclose(batch[0, c, [0, 3]], -mean[c] / std[c], rtol=1e-5)
