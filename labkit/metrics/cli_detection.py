"""``labkit eval detection``: COCO AP/AR of a results file against a COCO ground truth.

The inputs are checked before the evaluator runs: a bad file (empty, malformed, an unknown image
or category id, a NaN box, a score outside [0, 1], a mask of the wrong size ...) is reported with
the file and the record at fault, and the command exits 1. ``--errors`` adds the TIDE-style error
breakdown (:mod:`labkit.metrics.errors`).
"""

from __future__ import annotations

import argparse
from pathlib import Path

from labkit.cli import UsageError, add_json_flag, emit
from labkit.metrics.detection import BACKENDS, evaluate_coco
from labkit.metrics.coco_inputs import IOU_TYPES


def _run(args: argparse.Namespace) -> int:
    for flag, path in (("--gt", args.gt), ("--pred", args.pred)):
        if not Path(path).is_file():
            raise UsageError(f"{flag} {path} is not a file")
    report = evaluate_coco(args.gt, args.pred, iou_type=args.iou_type, backend=args.backend)
    payload = report.to_dict()
    text = report.to_markdown()
    if args.errors:
        from labkit.metrics.errors import analyze_errors

        errors = analyze_errors(args.gt, args.pred, iou_type=args.iou_type, backend=args.backend)
        payload["errors"] = errors.to_dict()
        text += "\n\nError analysis (TIDE, t_f = 0.5, t_b = 0.1)\n\n" + errors.to_markdown()
    emit(args, payload, text)
    return 0


def register(eval_subparsers: argparse._SubParsersAction) -> None:
    p = eval_subparsers.add_parser("detection", help="COCO AP/AR of detections or instance masks",
                                   description=__doc__.splitlines()[0])
    p.add_argument("--gt", required=True, help="COCO instances JSON (ground truth)")
    p.add_argument("--pred", required=True, help="COCO results JSON: a list of {image_id, category_id, bbox|segmentation, score}")
    p.add_argument("--iou-type", choices=IOU_TYPES, default="bbox", help="box or mask IoU (default bbox)")
    p.add_argument("--backend", choices=BACKENDS, default="faster", help="reference evaluator (default faster-coco-eval)")
    p.add_argument("--errors", action="store_true", help="also classify the errors (TIDE) and their AP50 cost")
    add_json_flag(p)
    p.set_defaults(func=_run)
