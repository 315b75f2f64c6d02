"""The Faster R-CNN run config: every knob of one two-stage training run (``configs/detect_frcnn*.yaml``).

The budget is ``epochs`` (never wall-clock minutes): the same config, seed and data give the same
weights on a busy or a quiet machine.
"""

from __future__ import annotations

from dataclasses import dataclass

from labkit.configfile import YamlConfig, config_path
from labkit.device import check_device_name
from labkit.errors import DataError

#: torchvision builders the config may name (both MobileNetV3-Large + FPN).
ARCHS = ("fasterrcnn_mobilenet_v3_large_320_fpn", "fasterrcnn_mobilenet_v3_large_fpn")
#: Anchor sizes per feature map in those builders (the box head expects this many per location).
N_ANCHOR_SIZES = 5
#: The shipped recipe of the registry's ``detect-frcnn`` (found through the package).
FRCNN_CONFIG = config_path("detect_frcnn.yaml")


@dataclass(frozen=True)
class FrcnnConfig(YamlConfig):
    """Every knob of one Faster R-CNN run (``configs/detect_frcnn*.yaml``).

    Attributes:
        name: run name (and prefix of the cached model's folder).
        arch: a torchvision builder from :data:`ARCHS`.
        pretrained_backbone: start the backbone from ImageNet weights
            (:func:`labkit.weights.resolve_pretrained` ``"mobilenet_v3_large"``; offline without a
            local copy that is a clear error). ``False``: from scratch, like the YOLO base model.
        dataset_size, dataset_seed: the embedded dataset (``"default"`` or ``"small"``).
        imgsz: square canvas the images are letterboxed to (a multiple of 32).
        epochs: number of epochs: the whole training budget.
        batch: images per step.
        lr, momentum, weight_decay: SGD settings; ``lr`` is the peak after warm-up.
        warmup_iters: steps of linear learning-rate warm-up.
        grad_clip: gradient-norm clipping (``None``: off).
        hflip: probability of a horizontal flip of a training image.
        anchor_sizes: RPN anchor sizes in canvas pixels (5 of them; ``None``: torchvision's
            32..512, made for COCO objects, large for the course's small shapes).
        representation_size: width of the two-layer box head (torchvision: 1024).
        box_batch_size_per_image: proposals sampled per image to train the box head (torchvision: 512).
        roi_sampling_ratio: bilinear samples per RoIAlign bin side (torchvision: 2; 1 is 4x cheaper,
            and RoIAlign's backward pass dominates a CPU training step).
        seed: seeds Python, NumPy, torch, the shuffling and the flips.
        device: ``"auto"`` (CUDA if present), ``"cpu"`` or ``"cuda"``.
        amp: bf16 mixed precision on a CUDA GPU that supports it (ignored on CPU).
        eval_every: COCO evaluation on val every k epochs (0: only after the last one).
        eval_conf: lowest score kept by the box head when evaluating (AP needs the low tail).
        max_det: detections kept per image (COCO counts 100).
    """

    KIND = "Faster R-CNN"

    name: str = "frcnn-mnv3"
    arch: str = "fasterrcnn_mobilenet_v3_large_320_fpn"
    pretrained_backbone: bool = False
    dataset_size: str = "small"
    dataset_seed: int = 0
    imgsz: int = 320
    epochs: int = 10
    batch: int = 8
    lr: float = 0.01
    momentum: float = 0.9
    weight_decay: float = 1e-4
    warmup_iters: int = 50
    grad_clip: float | None = 10.0
    hflip: float = 0.5
    anchor_sizes: list[int] | None = None
    representation_size: int = 1024
    box_batch_size_per_image: int = 512
    roi_sampling_ratio: int = 2
    seed: int = 0
    device: str = "auto"
    amp: bool = True
    eval_every: int = 1
    eval_conf: float = 0.001
    max_det: int = 100

    def __post_init__(self) -> None:
        problems = []
        if self.arch not in ARCHS:
            problems.append(f"arch must be one of {ARCHS}, got {self.arch!r}")
        if self.dataset_size not in ("default", "small"):
            problems.append(f"dataset_size must be 'default' or 'small', got {self.dataset_size!r}")
        if not isinstance(self.imgsz, int) or self.imgsz <= 0 or self.imgsz % 32:
            problems.append(f"imgsz must be a positive multiple of 32, got {self.imgsz}")
        if self.epochs < 1 or self.batch < 1 or self.eval_every < 0 or self.warmup_iters < 0:
            problems.append("epochs and batch must be >= 1, eval_every and warmup_iters >= 0")
        if self.lr <= 0 or not 0 <= self.hflip <= 1 or not 0 <= self.eval_conf < 1 or self.max_det < 1:
            problems.append("lr must be > 0, hflip in [0, 1], eval_conf in [0, 1) and max_det >= 1")
        if self.anchor_sizes is not None and (len(self.anchor_sizes) != N_ANCHOR_SIZES
                                              or any(not isinstance(s, int) or s <= 0 for s in self.anchor_sizes)):
            problems.append(f"anchor_sizes must be {N_ANCHOR_SIZES} positive integers, got {self.anchor_sizes}")
        if min(self.representation_size, self.box_batch_size_per_image, self.roi_sampling_ratio) < 1:
            problems.append("representation_size, box_batch_size_per_image and roi_sampling_ratio must be >= 1")
        if check_device_name(self.device):
            problems.append(check_device_name(self.device))
        if problems:
            raise DataError("; ".join(problems), record=self.name)

