"""ONNX export of the course's models and their ONNX Runtime twins, with parity checks.

- the U-Net through ``torch.onnx.export`` (TorchScript exporter, ``dynamo=False``; dynamic batch,
  height and width), with labkit's metadata in the file (``labkit_task``, ``num_classes``,
  ``input_size``) so that a file from another model is refused when loaded;
- the YOLO detector through Ultralytics' own exporter (``format="onnx"``, ``dynamic=True``, no
  NMS in the graph, no onnxslim), whose metadata (``task``, ``names``, ``imgsz``) is checked the
  same way.

:class:`OrtModule` makes an ONNX Runtime session (CPU provider) callable like the torch module it
replaces, so the same pre- and post-processing runs on both: :func:`onnx_detector` gives a
:class:`labkit.detect.predict.Detector` (letterbox, NMS, boxes back in original pixels) and
:func:`onnx_segmenter` a network for :func:`labkit.segment.predict.iter_semantic`.
:func:`max_abs_diff` compares raw outputs of the two runtimes on the same input, and
:func:`box_set_distance` their post-NMS boxes whatever their order.

**INT8** (:func:`quantize_int8`): post-training static quantization with ONNX Runtime's
``quantize_static`` (QDQ format: unsigned 8-bit activations, signed 8-bit weights, the
convolutions quantized and everything after the last convolution -- box decoding, sigmoid,
concatenation -- left in float so box coordinates keep their precision; a convolution that
writes a model output, the U-Net's logits, stays float too). The activation ranges
(scale and zero point of each quantized tensor) are observed on calibration batches: letterboxed
*train* images for the detector (:func:`calibration_batches`) or the U-Net
(:func:`segmenter_calibration_batches`), never the images it is scored on.
The export's metadata is copied to the INT8 file (plus ``labkit_precision: int8``), so the loaders
above accept it and refuse a file from another model just the same.
"""

from __future__ import annotations

import ast
import json
import shutil
import warnings
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np
import torch

from labkit.errors import DataError

PROVIDERS = ["CPUExecutionProvider"]


class OrtModule:
    """An ONNX Runtime session called like a torch module: float32 NCHW tensor in, the first
    output back as a torch tensor (``.to``/``.eval`` are no-ops: it always runs on the CPU).
    ``threads`` sets ONNX Runtime's intra-op threads (default: its own choice, one per core)."""

    def __init__(self, path: str | Path, threads: int | None = None):
        import onnxruntime as ort

        self.path = Path(path)
        options = ort.SessionOptions()
        options.log_severity_level = 3
        if threads:
            options.intra_op_num_threads = int(threads)
        try:
            self.session = ort.InferenceSession(str(self.path), sess_options=options, providers=PROVIDERS)
        except Exception as exc:  # onnxruntime raises its own exception types for unreadable graphs
            raise DataError(f"ONNX Runtime cannot load the model ({type(exc).__name__}: {exc})",
                            source=str(self.path)) from exc
        self.input_name = self.session.get_inputs()[0].name
        self.metadata = dict(self.session.get_modelmeta().custom_metadata_map)

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        out = self.session.run(None, {self.input_name: x.detach().cpu().float().numpy()})[0]
        return torch.from_numpy(out)

    def to(self, *args: Any, **kwargs: Any) -> "OrtModule":
        return self

    def eval(self) -> "OrtModule":
        return self


def _check_file(path: str | Path) -> Path:
    path = Path(path)
    if not path.is_file():
        raise DataError("no such ONNX file", source=str(path))
    return path


# ----------------------------------------------------------------------------------- U-Net
def export_segmenter(model: torch.nn.Module, config: Any, path: str | Path, opset: int = 17) -> Path:
    """Write the U-Net as ONNX (input ``images`` N x 3 x H x W float32, output ``logits``) with
    labkit's metadata; returns the path."""
    import onnx

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    size = int(config.preprocessing.size)
    model = model.to("cpu").eval()
    dummy = torch.zeros(1, 3, size, size)
    axes = {0: "batch", 2: "height", 3: "width"}
    with warnings.catch_warnings():  # the TorchScript exporter is chosen on purpose: the dynamo one needs onnxscript
        warnings.simplefilter("ignore", DeprecationWarning)
        torch.onnx.export(model, (dummy,), str(path), input_names=["images"], output_names=["logits"],
                          opset_version=opset, dynamic_axes={"images": axes, "logits": axes}, dynamo=False)
    graph = onnx.load(str(path))
    for key, value in {"labkit_task": "segment", "num_classes": str(config.num_classes), "input_size": str(size),
                       "arch": f"{config.arch}/{config.encoder}", "labkit_config": json.dumps(asdict(config))}.items():
        meta = graph.metadata_props.add()
        meta.key, meta.value = key, value
    onnx.save(graph, str(path))
    return path


def onnx_segmenter(path: str | Path, config: Any | None = None, threads: int | None = None) -> OrtModule:
    """The ONNX U-Net for :func:`labkit.segment.predict.iter_semantic` with ``config`` (default:
    the config stored in the file, :func:`exported_config`), run with ``threads`` intra-op threads
    (default: ONNX Runtime's choice); a file that is not a labkit U-Net of the same classes and
    input size is a :class:`DataError` naming it."""
    module = OrtModule(_check_file(path), threads=threads)
    meta = module.metadata
    if meta.get("labkit_task") != "segment":
        raise DataError(f"not a labkit segmentation export (task {meta.get('labkit_task') or meta.get('task')!r})",
                        source=str(path))
    config = exported_config(module) if config is None else config
    if meta.get("num_classes") != str(config.num_classes) or meta.get("input_size") != str(config.preprocessing.size):
        raise DataError(f"exported for {meta.get('num_classes')} classes at {meta.get('input_size')} px, the config "
                        f"has {config.num_classes} at {config.preprocessing.size}", source=str(path))
    return module


def exported_config(module: OrtModule) -> Any:
    """The :class:`labkit.segment.semantic.SemanticConfig` a labkit U-Net export records."""
    from labkit.segment.semantic import SemanticConfig

    try:
        return SemanticConfig(**json.loads(module.metadata["labkit_config"]))
    except (KeyError, ValueError, TypeError) as exc:
        raise DataError(f"the export records no usable labkit config ({type(exc).__name__}: {exc})",
                        source=str(module.path)) from exc


def onnx_task(path: str | Path) -> str | None:
    """``"detect"`` or ``"segment"`` from an ONNX file's metadata (None when neither is recorded)."""
    meta = OrtModule(_check_file(path)).metadata
    return meta.get("labkit_task") or meta.get("task")


# -------------------------------------------------------------------------------- detector
def export_detector(weights: str | Path, path: str | Path, imgsz: int | None = None, opset: int | None = None) -> Path:
    """Export an Ultralytics detection checkpoint with Ultralytics' exporter to ``path``
    (raw head output ``output0``: N x (4 + classes) x anchors; NMS stays in labkit)."""
    from labkit.detect._ultralytics import ul

    weights = Path(weights)
    if not weights.is_file():
        raise DataError("no such checkpoint file", source=str(weights))
    ckpt = torch.load(weights, map_location="cpu", weights_only=False)
    size = int(imgsz or (ckpt.get("train_args") or {}).get("imgsz", 640))
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    work = path.parent / f".{path.stem}-export"
    work.mkdir(exist_ok=True)
    try:
        copy = work / "model.pt"
        shutil.copyfile(weights, copy)
        yolo = ul("ultralytics").YOLO(str(copy), task="detect")
        out = yolo.export(format="onnx", imgsz=size, dynamic=True, simplify=False, nms=False,
                          device="cpu", opset=opset, verbose=False)
        shutil.move(str(out), path)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return path


def onnx_detector(path: str | Path, categories: list[dict[str, Any]] | None = None, imgsz: int | None = None,
                  threads: int | None = None) -> Any:
    """A :class:`labkit.detect.predict.Detector` whose network is the ONNX file (CPU, ``threads``
    intra-op threads); the file must be an Ultralytics detection export (its ``task``
    metadata), else :class:`DataError`."""
    from labkit.detect.predict import Detector

    module = OrtModule(_check_file(path), threads=threads)
    meta = module.metadata
    if meta.get("task") != "detect":
        raise DataError(f"not an Ultralytics detection export (task {meta.get('task') or meta.get('labkit_task')!r})",
                        source=str(path))
    names = {int(k): str(v) for k, v in ast.literal_eval(meta["names"]).items()}
    if categories is not None and len(categories) != len(names):
        raise DataError(f"{len(categories)} categories for an export with {len(names)} classes", source=str(path))
    class_ids = np.array([int(c["id"]) for c in categories], dtype=np.int64) if categories else np.arange(len(names))
    size = int(imgsz or ast.literal_eval(meta.get("imgsz", "[640, 640]"))[0])
    return Detector(model=module, device=torch.device("cpu"), half=False, imgsz=size, names=names, class_ids=class_ids,
                    end2end=meta.get("end2end") == "True")


def max_abs_diff(a: Any, b: Any) -> float:
    """Largest absolute difference of two outputs (tensors, arrays, or a tuple whose first item is one)."""
    first = lambda x: x[0] if isinstance(x, (tuple, list)) else x  # noqa: E731
    x, y = (np.asarray(first(v).detach().cpu() if torch.is_tensor(first(v)) else first(v), dtype=np.float64)
            for v in (a, b))
    if x.shape != y.shape:
        raise DataError(f"outputs differ in shape: {x.shape} vs {y.shape}")
    return float(np.abs(x - y).max()) if x.size else 0.0


def box_set_distance(a_xyxy: Any, b_xyxy: Any) -> float:
    """How far apart two sets of boxes are, whatever their order: the largest, over the boxes of
    either set, of the distance to the nearest box of the other set, a box's distance being its
    largest coordinate difference (pixels). 0.0 for two empty sets; a :class:`DataError` when only
    one is empty or a set is not ``(N, 4)``.

    Post-NMS boxes of two runtimes are compared this way because their *order* is not part of the
    parity: scores that differ in the 7th digit may swap two nearly tied boxes, and comparing by
    index would then report the distance between two different objects."""
    a, b = (np.asarray(v, dtype=np.float64).reshape(-1, 4) if np.size(v) else np.zeros((0, 4)) for v in (a_xyxy, b_xyxy))
    if len(a) == 0 or len(b) == 0:
        if len(a) or len(b):
            raise DataError(f"one set of boxes is empty and the other has {len(a) + len(b)}")
        return 0.0
    gaps = np.abs(a[:, None, :] - b[None, :, :]).max(axis=-1)  # (A, B) Chebyshev distance of every pair
    return float(max(gaps.min(axis=1).max(), gaps.min(axis=0).max()))


# ------------------------------------------------------------------------------------ INT8
def calibration_batches(detector: Any, images: Any) -> list[np.ndarray]:
    """One float32 ``1 x 3 x S x S`` batch per RGB image, letterboxed exactly as ``detector``
    (a :class:`labkit.detect.predict.Detector`) prepares its input."""
    from labkit.detect.predict import PAD_VALUE

    out = []
    for image in images:
        lb = detector.letterbox(image)
        out.append(detector._batch_tensor([lb.image(image, pad_value=PAD_VALUE)]).float().cpu().numpy())
    return out


def segmenter_calibration_batches(config: Any, images: Any) -> list[np.ndarray]:
    """One float32 ``1 x 3 x S x S`` batch per RGB image, letterboxed (zero padding) and normalised
    with ``config``'s preprocessing (a :class:`labkit.segment.semantic.SemanticConfig`) exactly as
    :func:`labkit.segment.predict.network_input` prepares the U-Net's input: the segmenter's
    counterpart of :func:`calibration_batches`."""
    from labkit.segment.predict import network_input

    return [network_input(image, config.preprocessing)[0][None].astype(np.float32) for image in images]


def quantize_int8(fp32: str | Path, out: str | Path, batches: Any, *, per_channel: bool = False) -> Path:
    """Write the static INT8 twin of the ONNX export ``fp32`` (a labkit U-Net or an Ultralytics
    detector: its task metadata says so, else :class:`DataError`) to ``out``, with activation
    ranges calibrated on ``batches`` (float32 arrays shaped like the model's input). No batch, or
    batches the model cannot take (another model's input), is a :class:`DataError` naming the file."""
    import onnx
    from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static

    module = OrtModule(_check_file(fp32))
    task = module.metadata.get("labkit_task") or module.metadata.get("task")
    if task not in ("detect", "segment"):
        raise DataError("not a labkit or Ultralytics export (no task in its metadata)", source=str(fp32))
    feeds = [{module.input_name: np.ascontiguousarray(b, dtype=np.float32)} for b in batches]
    if not feeds:
        raise DataError("INT8 calibration needs at least one batch", source=str(fp32))
    try:
        module.session.run(None, feeds[0])
    except Exception as exc:  # onnxruntime's own exception types: wrong rank, channels or dtype
        raise DataError(f"the calibration batches do not fit the model's input ({type(exc).__name__}: {exc})",
                        source=str(fp32)) from exc

    class Reader(CalibrationDataReader):
        def __init__(self) -> None:
            self.feeds = iter(feeds)

        def get_next(self) -> dict | None:
            return next(self.feeds, None)

    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    graph = onnx.load(str(fp32)).graph
    outputs = {o.name for o in graph.output}  # a convolution that writes a model output stays float (U-Net logits)
    keep_float = [n.name for n in graph.node if n.op_type == "Conv" and set(n.output) & outputs]
    quantize_static(str(fp32), str(out), Reader(), quant_format=QuantFormat.QDQ, activation_type=QuantType.QUInt8,
                    weight_type=QuantType.QInt8, per_channel=per_channel, op_types_to_quantize=["Conv"],
                    nodes_to_exclude=keep_float)
    graph = onnx.load(str(out))
    del graph.metadata_props[:]
    for key, value in {**module.metadata, "labkit_precision": "int8", "calibration_batches": str(len(feeds))}.items():
        meta = graph.metadata_props.add()
        meta.key, meta.value = key, value
    onnx.save(graph, str(out))
    return out


def export_record(path: str | Path) -> dict[str, Any]:
    """Size and metadata of an ONNX file (for a report)."""
    module = OrtModule(_check_file(path))
    return {"path": str(path), "bytes": Path(path).stat().st_size, "metadata": module.metadata,
            "inputs": [(i.name, i.shape) for i in module.session.get_inputs()],
            "outputs": [(o.name, o.shape) for o in module.session.get_outputs()]}

