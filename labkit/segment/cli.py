"""``labkit segment {predict,base}``: semantic segmentation from the command line.

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
from labkit.configfile import config_path
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


def _score(value: float | None) -> str:
    """A score for a message: three decimals, or ``undefined`` for None (NaN: nothing to score)."""
    return "undefined" if value is None else f"{value:.3f}"


def _base(args: argparse.Namespace) -> int:
    from labkit.segment.base import base_metrics, build_base_segmenter

    weights = build_base_segmenter(_existing(args.config, "config"), args.data_root, progress=not args.json)
    m = base_metrics(weights)
    payload = {"weights": str(weights), **{k: m[k] for k in ("val_miou", "iou", "val_mean_boundary_f", "epochs",
                                                               "train_minutes", "device")}}
    emit(args, payload, lambda p: f"{p['weights']}: val mIoU {p['val_miou']:.3f} (rod {_score(p['iou'].get('rod'))}, "
                                  f"star {_score(p['iou'].get('star'))}), boundary F {p['val_mean_boundary_f']:.3f}, "
                                  f"{p['epochs']} epochs / {p['train_minutes']:.1f} min on {p['device']}")
    return 0


def _instance(args: argparse.Namespace) -> int:
    from labkit.artifacts import read_model_metrics
    from labkit.detect._ultralytics import logs_to_stderr
    from labkit.segment.instance import build_instance_model

    with logs_to_stderr(args.json):
        weights = build_instance_model(_existing(args.config, "config"), args.data_root)
    m = read_model_metrics(weights)
    payload = {"weights": str(weights), "device": m["device"], "epochs": m["epochs"], "train_minutes": m["train_minutes"],
               **{k: m["val"].get(k) for k in ("mask_AP", "mask_AP50")}}
    emit(args, payload, lambda p: f"{p['weights']}: val mask AP {_score(p['mask_AP'])}, "
                                  f"mask AP50 {_score(p['mask_AP50'])}; {p['epochs']} epochs / "
                                  f"{p['train_minutes']:.1f} min on {p['device']}")
    return 0


def register(subparsers: Any) -> None:
    """Add ``labkit segment ...``."""
    parser = subparsers.add_parser("segment", help="semantic segmentation: predict/export, cached base U-Net")
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

    p = sub.add_parser("base", help="build (once) the cached base U-Net and print its val IoU")
    p.add_argument("--config", default=str(config_path("segment_base.yaml")), help="base model config")
    p.add_argument("--data-root", default=None, help="dataset folder (default: the embedded dataset)")
    add_json_flag(p)
    p.set_defaults(func=_base)

    p = sub.add_parser("instance", help="build (once) the cached YOLO-seg instance model and print its val mask AP")
    p.add_argument("--config", default=str(config_path("segment_instance.yaml")), help="instance model config")
    p.add_argument("--data-root", default=None, help="dataset folder (default: the embedded dataset)")
    add_json_flag(p)
    p.set_defaults(func=_instance)
