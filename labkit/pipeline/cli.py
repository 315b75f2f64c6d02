"""``labkit run`` and ``labkit render``: the capstone pipeline from the command line.

``labkit run --config configs/capstone.yaml --source SRC --out DIR`` writes every deliverable
of :func:`labkit.pipeline.run.run` into ``DIR``; ``labkit render --predictions FILE --out
VIDEO`` redraws the demo video from a ``predictions.jsonl`` alone.
"""

from __future__ import annotations

import argparse
import shlex
from pathlib import Path
from typing import Any, Mapping

from labkit.cli import UsageError, add_json_flag, emit
from labkit.configfile import configs_dir

DEFAULT_CONFIG = configs_dir() / "capstone.yaml"


def _render_run(s: Mapping[str, Any]) -> str:
    lat = s["latency"]
    lines = [f"{s['frames']} frames, {s['objects']} objects -> {s['out']} ({', '.join(s['outputs'])})",
             f"{lat['fps']:.1f} frames per second; per stage p50/p95 ms: "
             + ", ".join(f"{k} {v['p50_ms']:.1f}/{v['p95_ms']:.1f}" for k, v in lat["stages"].items())]
    metrics = s.get("metrics")
    if metrics:
        box = metrics["box"]
        lines.append(f"box AP {box['AP']:.3f}, AP50 {box['AP50']:.3f}" if box["AP"] is not None else "box AP n/a")
        if "semantic" in metrics and metrics["semantic"]["mean_iou"] is not None:
            lines.append(f"mIoU {metrics['semantic']['mean_iou']:.3f}")
    return "\n".join(lines)


def _run(args: argparse.Namespace) -> int:
    from labkit.pipeline.loader import SourceError
    from labkit.pipeline.run import run

    if not Path(args.config).is_file():
        raise UsageError(f"config not found: {args.config}")
    if args.gt is not None and not Path(args.gt).is_file():
        raise UsageError(f"ground truth not found: {args.gt}")
    if args.spec is not None and not Path(args.spec).is_file():
        raise UsageError(f"capstone spec not found: {args.spec}")
    if args.max_frames is not None and args.max_frames < 1:
        raise UsageError(f"--max-frames must be >= 1, got {args.max_frames}")
    words = ["labkit", "run", "--config", args.config, "--source", args.source, "--out", str(args.out)]
    words += ["--gt", args.gt] if args.gt is not None else []
    words += ["--max-frames", str(args.max_frames)] if args.max_frames is not None else []
    words += ["--spec", args.spec] if args.spec is not None else []
    command = shlex.join(words)
    try:
        summary = run(args.config, args.source, args.out, gt=args.gt, max_frames=args.max_frames, command=command,
                      spec=args.spec)
    except SourceError as exc:
        raise UsageError(str(exc)) from exc
    emit(args, {**summary, "out": str(args.out)}, _render_run)
    return 0


def _render(args: argparse.Namespace) -> int:
    from labkit.pipeline.render import render_predictions

    if not Path(args.predictions).is_file():
        raise UsageError(f"predictions not found: {args.predictions}")
    if args.fps is not None and args.fps <= 0:
        raise UsageError(f"--fps must be > 0, got {args.fps}")
    info = render_predictions(args.predictions, args.out, fps=args.fps, show_masks=not args.no_masks)
    emit(args, info, lambda p: f"{p['frames']} frames at {p['fps']} fps -> {p['video']}")
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("run", help="run the capstone pipeline on a source (predictions, video, metrics, report)",
                       description=__doc__.splitlines()[0])
    p.add_argument("--config", default=str(DEFAULT_CONFIG), help="pipeline config (default: configs/capstone.yaml)")
    p.add_argument("--source", required=True,
                   help="MOTChallenge sequence folder (seqinfo.ini), folder of images, video file, or camera index "
                        "(with --max-frames)")
    p.add_argument("--out", required=True, type=Path, help="run folder to (re)create")
    p.add_argument("--gt", default=None, help="COCO instances file with the frames' ground truth (boxes, masks)")
    p.add_argument("--max-frames", type=int, default=None, help="stop after this many frames")
    p.add_argument("--spec", default=None, help="capstone spec YAML (scenario, success metrics and protocol, "
                                                "dataset card, ablations, weaknesses) for the report")
    add_json_flag(p)
    p.set_defaults(func=_run)

    r = sub.add_parser("render", help="redraw a run's demo video from its predictions.jsonl alone")
    r.add_argument("--predictions", required=True, help="predictions.jsonl of a pipeline run")
    r.add_argument("--out", required=True, type=Path, help="MP4 file to write")
    r.add_argument("--fps", type=float, default=None, help="frame rate (default: from the records' timestamps)")
    r.add_argument("--no-masks", action="store_true", help="draw boxes and labels only")
    add_json_flag(r)
    r.set_defaults(func=_render)
