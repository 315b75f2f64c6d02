"""``labkit eval tracking``: HOTA / CLEAR / Identity scores of MOTChallenge tracker files.

Two forms:

- ``--gt gt.txt --pred pred.txt``: one sequence. Its length is ``seqLength`` of the
  ``seqinfo.ini`` beside the ``gt/`` folder when there is one (else ``--num-frames``, else the
  last frame seen).
- ``--gt DIR --pred DIR``: every ``DIR/<seq>/gt/gt.txt`` (MOTChallenge layout, with
  ``DIR/<seq>/seqinfo.ini``) against ``PRED/<seq>.txt``, plus the combination of all sequences.
  A sequence without its tracker file is bad data (an empty file is a tracker that found nothing);
  so is an empty ground-truth file.

``--preprocess`` picks TrackEval's preprocessing (see :mod:`labkit.metrics.tracking`); with
``mot15`` or ``none`` the class column is not used, so MOT15 ground truth with world coordinates
in columns 8-10 reads fine.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from labkit.cli import UsageError, add_json_flag, emit
from labkit.data.mot import read_mot, read_seqinfo
from labkit.errors import DataError
from labkit.metrics.id_events import events_from_data, events_to_records
from labkit.metrics.tracking import PREPROCESSING, TrackingReport, TrackingSequence, evaluate_sequences, trackeval_data


def _sequence(gt_file: Path, pred_file: Path, preprocess: str, num_frames: int | None) -> TrackingSequence:
    layout = "mot16" if PREPROCESSING[preprocess].pedestrian_only else "mot15"
    seqinfo = gt_file.parent.parent / "seqinfo.ini"
    if num_frames is None and seqinfo.is_file():
        num_frames = read_seqinfo(seqinfo)["length"]
    gt = read_mot(gt_file, "gt", layout=layout)
    if not gt:
        raise DataError("the ground-truth file is empty: there is nothing to score against (CLEAR and Identity "
                        "scores divide by the number of ground-truth boxes)", source=str(gt_file))
    return TrackingSequence(gt, read_mot(pred_file, "pred", layout=layout), num_frames, str(gt_file), str(pred_file))


def collect_sequences(gt: Path, pred: Path, preprocess: str, num_frames: int | None = None) -> dict[str, TrackingSequence]:
    """The sequences named by ``--gt`` / ``--pred`` (two files, or two folders)."""
    if gt.is_file() and pred.is_file():
        name = gt.parent.parent.name if gt.parent.name == "gt" else gt.parent.name
        return {name: _sequence(gt, pred, preprocess, num_frames)}
    if not (gt.is_dir() and pred.is_dir()):
        raise UsageError("--gt and --pred must be two existing files or two existing folders")
    if num_frames is not None:
        raise UsageError("--num-frames applies to one sequence; folders take the length from seqinfo.ini")
    gt_files = sorted(gt.glob("*/gt/gt.txt"))
    if not gt_files:
        raise DataError("no <seq>/gt/gt.txt found (MOTChallenge layout expected)", source=str(gt))
    sequences = {}
    for gt_file in gt_files:
        name = gt_file.parent.parent.name
        pred_file = pred / f"{name}.txt"
        if not pred_file.is_file():
            raise DataError(f"no tracker file for sequence {name} (expected {pred_file.name})", source=str(pred))
        sequences[name] = _sequence(gt_file, pred_file, preprocess, None)
    return sequences


def _render(payload: dict) -> str:
    text = payload["markdown"]
    for name, events in payload.get("events", {}).items():
        text += f"\n\nID events of {name} ({len(events)}):\n\n| frame | gt id | previous track | new track | IoU | kind |\n"
        text += "| --- | --- | --- | --- | --- | --- |\n"
        text += "\n".join(f"| {e['frame']} | {e['gt_id']} | {e['previous_track_id']} | {e['new_track_id']} | "
                          f"{e['iou']:.3f} | {e['kind']} |" for e in events)
    return text


def _run(args: argparse.Namespace) -> int:
    if not 0 < args.threshold <= 1:
        raise UsageError(f"--threshold must be in (0, 1], got {args.threshold}")
    sequences = collect_sequences(Path(args.gt), Path(args.pred), args.preprocess, args.num_frames)
    report: TrackingReport = evaluate_sequences(sequences, preprocess=args.preprocess, threshold=args.threshold)
    payload = report.to_dict()
    payload["markdown"] = report.to_markdown()
    if args.events:
        payload["events"] = {
            name: events_to_records(events_from_data(
                trackeval_data(seq, preprocess=args.preprocess, name=name), args.threshold))
            for name, seq in sequences.items()}
    if args.plot:
        import matplotlib.pyplot as plt

        ax = report.plot_alpha_curves()
        ax.figure.savefig(args.plot, dpi=120, bbox_inches="tight")
        plt.close(ax.figure)
        payload["plot"] = str(args.plot)
    emit(args, payload, _render)
    return 0


def register(eval_subparsers: argparse._SubParsersAction) -> None:
    p = eval_subparsers.add_parser("tracking", help="HOTA / MOTA / IDF1 of MOTChallenge tracker files (TrackEval)",
                                   description=__doc__.splitlines()[0])
    p.add_argument("--gt", required=True, help="gt.txt, or a folder of <seq>/gt/gt.txt")
    p.add_argument("--pred", required=True, help="tracker .txt, or a folder of <seq>.txt")
    p.add_argument("--preprocess", choices=sorted(PREPROCESSING), default="mot17",
                   help="TrackEval preprocessing (default mot17; mot15 or none for non-pedestrian data)")
    p.add_argument("--threshold", type=float, default=0.5, help="IoU for a CLEAR/Identity match (default 0.5)")
    p.add_argument("--num-frames", type=int, help="sequence length (one-sequence form; default from seqinfo.ini)")
    p.add_argument("--events", action="store_true", help="also list the ID-switch / fragmentation events")
    p.add_argument("--plot", help="save the HOTA alpha curves (combined) to this image file")
    add_json_flag(p)
    p.set_defaults(func=_run)
