"""``labkit detect {predict,train,hog}``: the detection engine from the command line (the cached
base models are built and loaded with ``labkit models``).

``predict`` writes into ``--out``: ``predictions.json`` (COCO results list, boxes in original
pixels, every detection down to ``--conf``), ``images.json`` (the COCO ``images`` entries: id,
file_name = source path or ``<video>#<frame>``, width, height) and, unless ``--no-overlays``,
``overlays/<id>_<name>.jpg`` with the detections scoring at least ``--overlay-conf`` drawn on.
``hog`` writes the same files for the HOG people detector.
"""

from __future__ import annotations

import argparse
import json
import re
from pathlib import Path
from typing import Any, Hashable, Iterable, Iterator, Mapping

import cv2
import numpy as np

from labkit.cli import UsageError, add_json_flag, emit
from labkit.data.annotations import Detections
from labkit.data.coco import detections_to_results
from labkit.detect._ultralytics import logs_to_stderr

OVERLAY_DIR = "overlays"


def _existing(path: str, what: str) -> Path:
    p = Path(path)
    if not p.exists():
        raise UsageError(f"{what} not found: {p}")
    return p


def _out_dir(path: str) -> Path:
    """``--out``: a folder, created when missing; an existing file there is a usage error."""
    p = Path(path)
    if p.exists() and not p.is_dir():
        raise UsageError(f"--out {p} is an existing file; give a folder (it is created when missing)")
    return p


def _overlay_name(image_id: int, key: Hashable) -> str:
    text = str(key)
    stem, _, frame = text.partition("#")
    name = Path(stem).stem + (f"_{int(frame):06d}" if frame else "")
    return f"{image_id:06d}_{re.sub(r'[^A-Za-z0-9_.-]', '_', name)}.jpg"


def write_outputs(out: Path, items: Iterable[tuple[Hashable, np.ndarray, Detections]], *, overlays: bool,
                  overlay_conf: float, class_names: Mapping[int, str] | None) -> dict[str, Any]:
    """Write ``predictions.json``, ``images.json`` and overlays for ``(key, RGB image, Detections)`` items."""
    from labkit.viz import draw_detections

    out.mkdir(parents=True, exist_ok=True)
    if overlays:
        (out / OVERLAY_DIR).mkdir(exist_ok=True)
    images, predictions = [], {}
    for image_id, (key, img, det) in enumerate(items, start=1):
        images.append({"id": image_id, "file_name": str(key), "width": int(img.shape[1]), "height": int(img.shape[0])})
        predictions[image_id] = det
        if overlays:
            shown = draw_detections(img, det[det.score >= overlay_conf], class_names)
            cv2.imwrite(str(out / OVERLAY_DIR / _overlay_name(image_id, key)), cv2.cvtColor(shown, cv2.COLOR_RGB2BGR))
    results = detections_to_results(predictions)
    (out / "predictions.json").write_text(json.dumps(results), encoding="utf-8")
    (out / "images.json").write_text(json.dumps(images, indent=1), encoding="utf-8")
    return {"images": len(images), "detections": len(results), "predictions": str(out / "predictions.json"),
            "overlays": str(out / OVERLAY_DIR) if overlays else None}


def _render_outputs(payload: Mapping[str, Any]) -> str:
    lines = [f"{payload['detections']} detections on {payload['images']} images -> {payload['predictions']}"]
    if payload.get("overlays"):
        lines.append(f"overlays in {payload['overlays']}")
    return "\n".join(lines)


def _predict(args: argparse.Namespace) -> int:
    from labkit.detect.predict import load_detector, predict_iter

    weights = _existing(args.weights, "weights")
    if weights.suffix != ".pt":
        raise UsageError(f"--weights {weights} is not a .pt file: give an Ultralytics checkpoint (e.g. best.pt)")
    out = _out_dir(args.out)
    sources = [_existing(s, "source") for s in args.source]
    with logs_to_stderr(args.json):
        det = load_detector(weights, device=args.device, imgsz=args.imgsz)
        items = predict_iter(det, sources, conf=args.conf, iou=args.iou, classes=args.classes, batch=args.batch,
                             max_frames=args.max_frames, progress=not args.json)
        payload = write_outputs(out, items, overlays=not args.no_overlays,
                                overlay_conf=args.overlay_conf, class_names=det.class_names)
    emit(args, payload, _render_outputs)
    return 0


def _hog(args: argparse.Namespace) -> int:
    from labkit.detect.hog import detect_people, people_detector
    from labkit.detect.predict import frames

    out = _out_dir(args.out)
    sources = [_existing(s, "source") for s in args.source]
    hog = people_detector()

    def items() -> Iterator[tuple[Hashable, np.ndarray, Detections]]:
        for key, img in frames(sources, args.max_frames, desc="HOG", progress=not args.json):
            yield key, img, detect_people(img, hog=hog, max_side=args.max_side, scale=args.scale)

    payload = write_outputs(out, items(), overlays=not args.no_overlays, overlay_conf=0.0,
                            class_names={1: "person"})
    emit(args, payload, _render_outputs)
    return 0


def _train(args: argparse.Namespace) -> int:
    from labkit.detect.train import train

    with logs_to_stderr(args.json):
        result = train(_existing(args.config, "config"), data_root=args.data_root, run_dir=args.run_dir,
                       resume=args.resume, stop_after_epoch=args.stop_after_epoch)
    payload = {"run_dir": str(result.run_dir), "weights": str(result.weights), "epochs": result.epochs,
               "interrupted": result.interrupted, "metrics": result.metrics}
    emit(args, payload, lambda p: f"{'interrupted' if p['interrupted'] else 'trained'} {p['epochs']} epochs; "
                                  f"weights {p['weights']}; COCO {p['metrics'].get('coco', {})}")
    return 0


def _source_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--source", required=True, nargs="+", help="image file(s), folder(s) or video(s)")
    p.add_argument("--out", required=True, help="output folder")
    p.add_argument("--max-frames", type=int, default=None, help="stop after this many images/frames")
    p.add_argument("--no-overlays", action="store_true", help="skip the overlay images")
    add_json_flag(p)


def register(subparsers: Any) -> None:
    """Add ``labkit detect ...``."""
    parser = subparsers.add_parser("detect", help="object detection: predict, train, HOG (cached models: labkit models)")
    sub = parser.add_subparsers(dest="detect_command", metavar="ACTION")

    p = sub.add_parser("predict", help="run a YOLO checkpoint; COCO results + overlays (boxes in original pixels)")
    p.add_argument("--weights", required=True, help="Ultralytics .pt checkpoint")
    _source_options(p)
    p.add_argument("--conf", type=float, default=0.001, help="minimum confidence kept in predictions.json")
    p.add_argument("--overlay-conf", type=float, default=0.25, help="minimum confidence drawn on overlays")
    p.add_argument("--iou", type=float, default=0.7, help="NMS IoU threshold")
    p.add_argument("--classes", type=int, nargs="+", default=None, help="keep only these category ids")
    p.add_argument("--batch", type=int, default=8, help="images per forward pass")
    p.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto")
    p.add_argument("--imgsz", type=int, default=None, help="network input size (default: training size)")
    p.set_defaults(func=_predict)

    p = sub.add_parser("hog", help="OpenCV HOG people detector (Dalal & Triggs 2005) as a baseline")
    _source_options(p)
    p.add_argument("--max-side", type=int, default=640, help="shrink images to this longer side first")
    p.add_argument("--scale", type=float, default=1.05, help="image pyramid step")
    p.set_defaults(func=_hog)

    p = sub.add_parser("train", help="train a YOLO detector from a YAML config (resumable)")
    p.add_argument("--config", required=True, help="configs/detect_*.yaml")
    p.add_argument("--data-root", default=None, help="dataset folder (default: the embedded dataset)")
    p.add_argument("--run-dir", default=None, help="run folder (default: artifacts/runs/detect/<name>)")
    p.add_argument("--resume", action="store_true", help="continue the interrupted run in --run-dir")
    p.add_argument("--stop-after-epoch", type=int, default=None, help="interrupt after this epoch")
    add_json_flag(p)
    p.set_defaults(func=_train)
