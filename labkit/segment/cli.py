"""``labkit segment predict``: semantic segmentation from the command line (the cached base
models are built and loaded with ``labkit models``).

``predict`` writes into ``--out`` (see :func:`labkit.segment.predict.write_predictions`):
``masks/<name>.png`` (class ids in the ORIGINAL image size), ``overlays/<name>.jpg``, optionally
``confidence/<name>.png``, and ``summary.json`` (per-class pixels and instance counts,
confidence statistics, checkpoint sha256, dataset version, preprocessing and tiling settings).
"""

from __future__ import annotations

import argparse
import pickle
import zipfile
from pathlib import Path
from typing import Any, Mapping

from labkit.cli import UsageError, add_json_flag, emit
from labkit.errors import DataError


def _existing(path: str, what: str) -> Path:
    p = Path(path)
    if not p.exists():
        raise UsageError(f"{what} not found: {p}")
    return p


def _load(weights: Path, device: str) -> tuple[Any, Any]:
    from labkit.segment.semantic import load_checkpoint

    try:
        return load_checkpoint(weights, device=device)
    except (KeyError, TypeError, RuntimeError, pickle.UnpicklingError, zipfile.BadZipFile, EOFError) as exc:
        raise DataError(f"not a labkit semantic-segmentation checkpoint ({type(exc).__name__}: {exc})",
                        source=str(weights)) from exc


def _render_predict(p: Mapping[str, Any]) -> str:
    conf = p["confidence_mean"]
    lines = [f"{p['images']} label maps -> {p['out']}/masks, overlays -> {p['out']}/overlays, summary {p['summary']}",
             "pixels per class: " + ", ".join(f"{k} {v}" for k, v in p["pixels_per_class"].items()),
             "instances per class: " + ", ".join(f"{k} {v}" for k, v in p["instances_per_class"].items()),
             f"mean confidence: {'n/a' if conf is None else f'{conf:.3f}'}"]
    return "\n".join(lines)


def _predict(args: argparse.Namespace) -> int:
    from labkit.segment.predict import SUMMARY, export_predictions

    weights = _existing(args.weights, "weights")
    sources = [_existing(s, "source") for s in args.source]
    if args.tile is not None and not 0 <= args.overlap < args.tile:
        raise UsageError(f"need 0 <= --overlap < --tile, got {args.overlap} and {args.tile}")
    model, config = _load(weights, args.device)
    summary = export_predictions(model, config, sources, args.out, checkpoint=weights, data_root=args.data_root,
                                 batch=args.batch, device=args.device, tile=args.tile, overlap=args.overlap,
                                 resize=args.resize, min_area=args.min_area, save_confidence=args.save_confidence,
                                 progress=not args.json)
    payload = {"images": summary["images"], "out": str(args.out), "summary": str(Path(args.out) / SUMMARY),
               "pixels_per_class": summary["pixels_per_class"], "instances_per_class": summary["instances_per_class"],
               "confidence_mean": (summary["confidence"] or {}).get("mean"), "checkpoint": summary["checkpoint"]}
    emit(args, payload, _render_predict)
    return 0


def register(subparsers: Any) -> None:
    """Add ``labkit segment ...``."""
    parser = subparsers.add_parser("segment", help="semantic segmentation: predict/export (cached models: labkit models)")
    sub = parser.add_subparsers(dest="segment_command", metavar="ACTION")

    p = sub.add_parser("predict", help="label maps in original pixels + overlays + JSON summary")
    p.add_argument("--weights", required=True, help="labkit semantic checkpoint (best.pt / last.pt)")
    p.add_argument("--source", required=True, nargs="+", help="image file(s) or folder(s)")
    p.add_argument("--out", required=True, help="output folder")
    p.add_argument("--tile", type=int, default=None, help="tiled inference: window size in source pixels")
    p.add_argument("--overlap", type=int, default=32, help="overlap of neighbouring windows (pixels)")
    p.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto")
    p.add_argument("--batch", type=int, default=8, help="images per forward pass")
    p.add_argument("--resize", choices=("bilinear", "nearest"), default="bilinear",
                   help="how scores return to the original size")
    p.add_argument("--min-area", type=int, default=10, help="smallest region (pixels) counted as an instance")
    p.add_argument("--save-confidence", action="store_true", help="also write 8-bit confidence PNGs")
    p.add_argument("--data-root", default=None, help="dataset folder whose manifest is recorded (default: found)")
    add_json_flag(p)
    p.set_defaults(func=_predict)
