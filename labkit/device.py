"""The one device resolver: every training and inference path asks it where to run.

Configs name a device as ``"auto"`` (a CUDA GPU when torch sees one, else the CPU), ``"cpu"`` or
``"cuda"`` (``"cuda:N"`` for a given GPU). :func:`resolve_device` turns that name into a checked
``torch.device``: asking for CUDA on a machine without it is a clear error, not a crash deep
inside a training loop.
"""

from __future__ import annotations

from typing import Any

from labkit.errors import DataError

#: Device names a config may hold.
DEVICE_NAMES = ("auto", "cpu", "cuda")


def check_device_name(name: Any) -> str | None:
    """A problem message when ``name`` is not a device a config may name, else ``None``."""
    if isinstance(name, str) and (name in DEVICE_NAMES or (name.startswith("cuda:") and name[5:].isdigit())):
        return None
    return f"device must be 'auto', 'cpu', 'cuda' or 'cuda:N', got {name!r}"


def resolve_device(name: Any = "auto"):  # -> torch.device (torch is imported lazily: the CLI stays fast)
    """``"auto"`` -> ``cuda`` when torch sees a CUDA GPU, else ``cpu``; ``"cpu"`` / ``"cuda"`` /
    ``"cuda:N"`` are checked (CUDA asked for without a GPU is a :class:`DataError`). A
    ``torch.device`` is accepted as it is."""
    import torch

    if isinstance(name, torch.device):
        return name
    problem = check_device_name(name)
    if problem:
        raise DataError(problem)
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise DataError(f"device {name!r} was asked for but torch sees no CUDA GPU")
    return torch.device(name)


def amp_mode(device: Any) -> str | bool:
    """Mixed precision for training: ``"bf16"`` on a CUDA GPU that supports it, else ``False``.

    ``amp=True`` (fp16) would make Ultralytics run its AMP self-check, which downloads
    ``yolo26n.pt``; bf16 autocast needs no check and no gradient scaler, and CPU training is fp32.
    """
    import torch

    return "bf16" if resolve_device(device).type == "cuda" and torch.cuda.is_bf16_supported() else False
