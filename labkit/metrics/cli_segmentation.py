"""``labkit eval segmentation``: score folders of PNG class-id masks (mIoU, Dice, boundary scores).

Ground-truth and predicted masks are paired by their path relative to ``--gt`` / ``--pred``
(``*.png``, sub-folders included). A mask without its counterpart, a size mismatch, a colour
PNG or a value outside the class ids is bad data: the command names the file and exits 1.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
from tqdm import tqdm

from labkit.cli import UsageError, add_json_flag, emit
from labkit.errors import DataError
from labkit.metrics.boundary import BoundaryScores
from labkit.data.images import load_label_mask
from labkit.metrics.segmentation import ConfusionMatrix, summary_to_markdown

def read_id_mask(path: Path) -> np.ndarray:
    """A single-channel PNG of class ids as a 2-D integer array (palette PNGs give their indices)."""
    return load_label_mask(path).astype(np.int64)


def pair_masks(gt_dir: Path, pred_dir: Path) -> list[tuple[Path, Path]]:
    """``(gt, pred)`` file pairs matched by relative path; a missing counterpart is a DataError."""
    for name, folder in (("--gt", gt_dir), ("--pred", pred_dir)):
        if not folder.is_dir():
            raise UsageError(f"{name} {folder} is not a folder")
    gt = {p.relative_to(gt_dir).as_posix() for p in gt_dir.rglob("*.png")}
    pred = {p.relative_to(pred_dir).as_posix() for p in pred_dir.rglob("*.png")}
    if not gt:
        raise DataError("no *.png ground-truth masks found", source=str(gt_dir))
    for missing, have, where in ((gt - pred, gt_dir, pred_dir), (pred - gt, pred_dir, gt_dir)):
        if missing:
            shown = ", ".join(sorted(missing)[:5]) + (" ..." if len(missing) > 5 else "")
            raise DataError(f"{len(missing)} mask(s) of {have} have no counterpart here: {shown}", source=str(where))
    return [(gt_dir / rel, pred_dir / rel) for rel in sorted(gt)]


def evaluate_folders(gt_dir: Path, pred_dir: Path, num_classes: int, *, ignore_index: int | None = 255,
                     boundary: bool = False, tolerance: float = 2.0, dilation: int = 2,
                     class_names: list[str] | None = None) -> dict:
    """Accumulate the confusion matrix (and optionally boundary scores) over paired mask folders."""
    cm = ConfusionMatrix(num_classes, ignore_index)
    bnd = BoundaryScores(num_classes, ignore_index, tolerance, dilation) if boundary else None
    pairs = pair_masks(gt_dir, pred_dir)
    for gt_path, pred_path in tqdm(pairs, desc="masks", unit="img", disable=None):
        gt, pred = read_id_mask(gt_path), read_id_mask(pred_path)
        cm.update(gt, pred, source=str(pred_path))
        if bnd is not None:
            bnd.update(gt, pred, source=str(pred_path))
    summary = cm.summary(class_names)
    if bnd is not None:
        bnd.merge_into(summary)
    summary["files"] = len(pairs)
    return summary


def _run(args: argparse.Namespace) -> int:
    if args.num_classes < 1:
        raise UsageError(f"--num-classes must be >= 1, got {args.num_classes}")
    names = [n.strip() for n in args.class_names.split(",")] if args.class_names else None
    if names is not None and len(names) != args.num_classes:
        raise UsageError(f"--class-names lists {len(names)} names for --num-classes {args.num_classes}")
    summary = evaluate_folders(
        Path(args.gt), Path(args.pred), args.num_classes,
        ignore_index=None if args.ignore_index < 0 else args.ignore_index,
        boundary=args.boundary, tolerance=args.tolerance, dilation=args.dilation, class_names=names)
    emit(args, summary, lambda s: f"{s['files']} mask pairs\n" + summary_to_markdown(s))
    return 0


def register(eval_subparsers: argparse._SubParsersAction) -> None:
    p = eval_subparsers.add_parser("segmentation", help="mIoU / Dice / pixel accuracy of PNG class-id masks",
                                   description=__doc__.splitlines()[0])
    p.add_argument("--gt", required=True, help="folder of ground-truth PNG masks")
    p.add_argument("--pred", required=True, help="folder of predicted PNG masks (same relative paths)")
    p.add_argument("--num-classes", type=int, required=True, help="K: class ids are 0..K-1")
    p.add_argument("--ignore-index", type=int, default=255, help="ground-truth void value (negative: none)")
    p.add_argument("--class-names", help="comma-separated names of classes 0..K-1")
    p.add_argument("--boundary", action="store_true", help="also boundary F-score and Boundary IoU (slower)")
    p.add_argument("--tolerance", type=float, default=2.0, help="boundary-F tolerance in pixels (default 2)")
    p.add_argument("--dilation", type=int, default=2, help="Boundary-IoU band width in pixels (default 2)")
    add_json_flag(p)
    p.set_defaults(func=_run)
