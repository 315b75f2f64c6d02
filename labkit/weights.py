"""Pretrained weights for online learners, with an honest offline story.

``resolve_pretrained(name)`` returns a local file for a known pretrained checkpoint: a copy already in
labkit's cache (or in the folder the library itself caches into), else a verified download (mirror
honoured, see :mod:`labkit.datasets.fetch`). Offline, it raises :class:`PretrainedUnavailable` with
what to do, or, where the caller passes ``fallback``, warns and returns what the fallback builds
(the course trains its own base models that way).

Checks: torchvision's files carry the first hex digits of their sha256 in the file name, and
those are verified; Ultralytics' releases publish no checksums, so their first download's sha256 is
recorded and later copies must match it (trust on first use).

| name | what |
| --- | --- |
| ``yolov8n.pt``, ``yolov8n-seg.pt``, ``yolo11n.pt``, ``yolo11n-seg.pt`` | Ultralytics COCO checkpoints |
| ``resnet18``, ``mobilenet_v3_large`` | torchvision ImageNet classifiers (backbones / smp encoders) |
"""

from __future__ import annotations

import re
import warnings
from pathlib import Path
from typing import Callable

from labkit.datasets.fetch import DownloadError, cache_dir, download, resolve_url
from labkit.errors import LabkitError
from labkit.repro import sha256_file

ULTRALYTICS_RELEASE = "https://github.com/ultralytics/assets/releases/download/v8.3.0/"
ULTRALYTICS = ("yolov8n.pt", "yolov8n-seg.pt", "yolo11n.pt", "yolo11n-seg.pt")
TORCHVISION = {"resnet18": "ResNet18_Weights", "mobilenet_v3_large": "MobileNet_V3_Large_Weights"}


class PretrainedUnavailable(LabkitError):
    """No local copy of the weights and no way to download them."""


def known() -> tuple[str, ...]:
    """Names :func:`resolve_pretrained` understands."""
    return ULTRALYTICS + tuple(TORCHVISION)


def _url(name: str) -> str:
    if name in ULTRALYTICS:
        return ULTRALYTICS_RELEASE + name
    import torchvision.models as tvm

    return getattr(tvm, TORCHVISION[name]).IMAGENET1K_V1.url


def _candidates(filename: str) -> list[Path]:
    """Where a copy may already be: labkit's cache, torch hub's, and Ultralytics' weights folder."""
    import torch

    places = [cache_dir() / "weights" / filename, Path(torch.hub.get_dir()) / "checkpoints" / filename]
    try:
        from ultralytics.utils import SETTINGS

        places.append(Path(SETTINGS["weights_dir"]) / filename)
    except (ImportError, KeyError):
        pass
    return places


def _verify(name: str, path: Path) -> None:
    digest = sha256_file(path)
    prefix = re.search(r"-([0-9a-f]{8,})\.pth$", path.name)
    if prefix:
        if not digest.startswith(prefix.group(1)):
            raise DownloadError(f"{path}: sha256 {digest} does not start with {prefix.group(1)} as its name says")
        return
    record = cache_dir() / "weights" / f"{name}.sha256"
    if record.exists() and record.read_text().strip() != digest:
        raise DownloadError(f"{path}: sha256 {digest} differs from the first copy's ({record.read_text().strip()})")
    if not record.exists():
        record.parent.mkdir(parents=True, exist_ok=True)
        record.write_text(digest + "\n")


def resolve_pretrained(name: str, *, fallback: Callable[[], Path] | None = None, progress: bool = True) -> Path:
    """A verified local file of pretrained weights ``name`` (see :func:`known`).

    ``fallback`` (for example "build the course's own base model") is used, with a warning, when the
    weights can be neither found nor downloaded; without it that is a :class:`PretrainedUnavailable`.
    """
    if name not in known():
        raise KeyError(f"unknown pretrained weights {name!r}; known: {', '.join(known())}")
    url = _url(name)
    filename = url.rsplit("/", 1)[-1]
    for path in _candidates(filename):
        if path.is_file():
            _verify(name, path)
            return path
    target = cache_dir() / "weights" / filename
    try:
        download(resolve_url(url), target, None, progress=progress)
        try:
            _verify(name, target)
        except DownloadError:
            target.unlink()
            raise
        return target
    except DownloadError as exc:
        places = ", ".join(str(p) for p in _candidates(filename))
        message = (f"pretrained weights {name!r} are not available offline: no copy in {places}, and the "
                   f"download failed ({exc}). Put {filename} in one of those folders, set LABKIT_DATA_MIRROR, "
                   f"or use the course's own base model (pretrained=False).")
        if fallback is None:
            raise PretrainedUnavailable(message) from exc
        warnings.warn(message + " Falling back to training from scratch.", stacklevel=2)
        return fallback()


def resolve_model(model: str) -> str:
    """An Ultralytics ``model`` argument with pretrained names resolved to local files: a model
    YAML or an existing path is returned unchanged; ``yolov8n.pt`` (and the like) must resolve."""
    if model in ULTRALYTICS and not Path(model).exists():
        return str(resolve_pretrained(model))
    return model
