"""Overlays for visual audits: boxes, translucent masks, class names, track ids and scores.

Colours are deterministic: one per track id when ids are shown and present, else one per
class id (golden-ratio hue steps, so neighbouring ids get distant hues). Figures are built on
matplotlib's Agg canvas (no display needed) and are never left open in pyplot's registry.
"""

from __future__ import annotations

import colorsys
from pathlib import Path
from typing import Mapping, Sequence

import cv2
import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from labkit.data.annotations import Dataset, Detections
from labkit.data.coco import load_coco
from labkit.data.images import load_image
from labkit.data.masks import segmentation_to_mask
from labkit.data.splits import DuplicatePair, split_files
from labkit.errors import DataError

_GOLDEN = 0.618033988749895


def new_figure(width: float, height: float, *, dpi: int = 100) -> Figure:
    """An empty figure (``width`` x ``height`` inches, constrained layout) on an Agg canvas, outside
    pyplot's registry, so nothing has to be closed.

    In a Jupyter kernel it also registers IPython's PNG formatter for figures
    (``IPython.core.pylabtools.select_figure_formats``, what the inline backend registers, but only
    once pyplot has drawn something), so a cell that returns the figure shows it as an image.
    """
    fig = Figure(figsize=(width, height), dpi=dpi, layout="constrained")
    FigureCanvasAgg(fig)
    _register_png_formatter()
    return fig


def _register_png_formatter() -> None:
    try:
        from IPython import get_ipython
        from IPython.core.pylabtools import select_figure_formats
    except ImportError:  # IPython is optional outside notebooks
        return
    shell = get_ipython()
    if shell is not None and hasattr(shell, "display_formatter"):
        select_figure_formats(shell, {"png"}, bbox_inches="tight")


def color_for(key: int) -> tuple[int, int, int]:
    """A bright RGB colour for an integer key (class or track id), the same on every call."""
    r, g, b = colorsys.hsv_to_rgb((int(key) * _GOLDEN) % 1.0, 0.75, 0.95)
    return int(r * 255), int(g * 255), int(b * 255)


def _rgb_uint8(image: np.ndarray) -> np.ndarray:
    img = np.asarray(image)
    if img.ndim == 2:
        img = np.repeat(img[:, :, None], 3, axis=2)
    if img.ndim != 3 or img.shape[2] not in (3, 4):
        raise DataError(f"expected an RGB image (H, W, 3), got shape {img.shape}")
    img = img[:, :, :3]
    if np.issubdtype(img.dtype, np.floating):
        return (np.clip(img, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)
    if img.dtype != np.uint8:
        raise DataError(f"expected uint8 or float in [0, 1] pixels, got {img.dtype}")
    return img.copy()


def _label(det: Detections, i: int, class_names: Mapping[int, str] | None, show_ids: bool) -> str:
    cls = int(det.class_id[i])
    text = class_names.get(cls, str(cls)) if class_names else str(cls)
    if show_ids and det.track_id is not None:
        text += f" #{int(det.track_id[i])}"
    if det.score is not None:
        text += f" {det.score[i]:.2f}"
    crowd = det.get("iscrowd")
    if crowd is not None and crowd[i] == 1:
        text += " (crowd)"
    return text


def draw_detections(image: np.ndarray, detections: Detections, class_names: Mapping[int, str] | None = None,
                    show_masks: bool = True, show_ids: bool = True, *, alpha: float = 0.45,
                    thickness: int = 1) -> np.ndarray:
    """A copy of an RGB image with the detections drawn on it.

    Masks (objects with a segmentation) are blended with ``alpha``; boxes are outlined; each
    box is labelled with its class name (``class_names`` maps id -> name, else the id), its
    track id (``#id``, when ``show_ids``), its score and "(crowd)" for ``iscrowd`` objects.
    ``image`` is ``(H, W, 3)`` uint8 RGB (greyscale and float ``[0, 1]`` are converted).
    """
    out = _rgb_uint8(image)
    h, w = out.shape[:2]
    by_track = show_ids and detections.track_id is not None
    keys = detections.track_id if by_track else detections.class_id
    colours = [color_for(k) for k in keys]
    if show_masks and detections.segmentation is not None:
        for i, segm in enumerate(detections.segmentation):
            if segm is not None:
                m = segmentation_to_mask(segm, h, w)
                out[m] = ((1 - alpha) * out[m] + alpha * np.array(colours[i])).astype(np.uint8)
    scale = max(0.3, min(h, w) / 700)
    for i, (x1, y1, x2, y2) in enumerate(np.round(detections.xyxy).astype(int)):
        cv2.rectangle(out, (x1, y1), (x2 - 1, y2 - 1), colours[i], thickness)
        text = _label(detections, i, class_names, show_ids)
        (tw, th), base = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, scale, 1)
        ty = y1 - base if y1 - th - base >= 0 else min(y1 + th + base, h - base)
        tx = max(0, min(x1, w - tw))
        cv2.rectangle(out, (tx, ty - th - base), (tx + tw, ty + base), colours[i], cv2.FILLED)
        cv2.putText(out, text, (tx, ty), cv2.FONT_HERSHEY_SIMPLEX, scale, (0, 0, 0), 1, cv2.LINE_AA)
    return out


def sample_grid(dataset: Dataset, n: int = 12, seed: int = 0, path: str | Path | None = None, *,
                cols: int = 4, show_masks: bool = True, dpi: int = 100) -> Figure:
    """A figure of ``n`` randomly chosen images (seeded) with their annotations drawn on.

    Images are read with :func:`labkit.data.images.load_image` from ``dataset.root``; each
    panel is titled with its file name and object count. Saved as PNG when ``path`` is given.
    """
    if not dataset.images:
        raise DataError("dataset has no images to show", source=dataset.source)
    rng = np.random.default_rng(seed)
    picks = sorted(rng.choice(len(dataset.images), size=min(n, len(dataset.images)), replace=False))
    cols = max(1, min(cols, len(picks)))
    rows = -(-len(picks) // cols)
    fig = new_figure(3.2 * cols, 2.7 * rows, dpi=dpi)
    names = dataset.category_names
    for k, idx in enumerate(picks):
        rec = dataset.images[idx]
        ax = fig.add_subplot(rows, cols, k + 1)
        ax.imshow(draw_detections(load_image(dataset.image_path(rec)), rec.detections, names, show_masks))
        ax.set_title(f"{rec.file_name} ({len(rec.detections)})", fontsize=7)
        ax.axis("off")
    if path is not None:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(path)
    return fig


def audit_grids(dataset_dir: str | Path, out_dir: str | Path, n: int = 12, seed: int = 0) -> list[Path]:
    """One ``audit_<split>.png`` grid per ``annotations/instances_<split>.json`` of a dataset
    folder (images under ``<dataset_dir>/images``); returns the written paths, train/val/test first."""
    root = Path(dataset_dir)
    files = split_files(root / "annotations", "instances_")
    if not files:
        raise DataError("no annotations/instances_<split>.json files found", source=str(root))
    out = []
    for split, ann in files.items():
        path = Path(out_dir) / f"audit_{split}.png"
        sample_grid(load_coco(ann, root / "images"), n, seed, path)
        out.append(path)
    return out


def pairs_figure(pairs: Sequence[DuplicatePair], n: int = 4, path: str | Path | None = None, *,
                 dpi: int = 100) -> Figure:
    """The first ``n`` near-duplicate pairs side by side, one row per pair: the image of
    ``split_a`` left, the one of ``split_b`` right, titled with split, file name and the pair's
    Hamming distance (see :func:`labkit.data.splits.near_duplicates`). Saved as PNG when ``path``
    is given. No pairs is a :class:`DataError` (there is nothing to look at)."""
    shown = list(pairs)[:n]
    if not shown:
        raise DataError("no near-duplicate pairs to show")
    fig = Figure(figsize=(6.4, 2.6 * len(shown)), dpi=dpi, layout="constrained")
    FigureCanvasAgg(fig)
    for row, pair in enumerate(shown):
        for col, (split, file) in enumerate(((pair.split_a, pair.file_a), (pair.split_b, pair.file_b))):
            ax = fig.add_subplot(len(shown), 2, 2 * row + col + 1)
            ax.imshow(load_image(file))
            ax.set_title(f"{split}: {Path(file).name}" + (f"  (distance {pair.distance} bits)" if col else ""),
                         fontsize=7)
            ax.axis("off")
    if path is not None:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(path)
    return fig


#: Largest video embedded inline (bytes); a notebook stores its outputs, so bigger files are linked.
MAX_INLINE_VIDEO = 20_000_000


def video_html(path: str | Path, width: int = 480) -> str:
    """An HTML5 ``<video>`` element playing the MP4 at ``path`` inline (base64 data URI), for a
    notebook's ``IPython.display.HTML``. A missing file, another format or a file above
    :data:`MAX_INLINE_VIDEO` bytes is a :class:`DataError` naming the file."""
    import base64

    path = Path(path)
    if not path.is_file():
        raise DataError("video not found", source=str(path))
    if path.suffix.lower() != ".mp4":
        raise DataError(f"only MP4 videos can be embedded, got suffix {path.suffix or '(none)'!r}", source=str(path))
    size = path.stat().st_size
    if size > MAX_INLINE_VIDEO:
        raise DataError(f"{size} bytes is above the {MAX_INLINE_VIDEO}-byte limit for an inline video: link it instead",
                        source=str(path))
    data = base64.b64encode(path.read_bytes()).decode("ascii")
    return f'<video controls width="{int(width)}" src="data:video/mp4;base64,{data}"></video>'
