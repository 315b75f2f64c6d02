"""``labkit track run`` and ``labkit track render``: the tracker and its review videos.

``labkit track run --seq DIR --out PRED.txt`` tracks one MOTChallenge sequence folder (see
:mod:`labkit.track.sequence`) with detections from ``--det FILE`` (default ``DIR/det/det.txt``),
``--detector base|hog|WEIGHTS`` (the course detector or OpenCV's HOG people detector over the frames,
cached) or ``--simulate PRESET`` (simulated from ``DIR/gt/gt.txt``). A video file as ``--seq`` (e.g.
OpenCV's ``vtest.avi``, ``labkit.datasets.fetch("vtest")``) is first written as a sequence folder
(``--max-frames N``: its first N frames), so ``labkit track run --seq vtest.avi --detector hog
--video review.mp4`` gives a review video of a real scene without ground truth. ``labkit track run --split val --out DIR`` runs every
sequence of a split of the embedded dataset into ``DIR/<seq>.txt`` (score them with
``labkit eval tracking --gt <data>/sequences/val --pred DIR``).

Exit codes: 0 ok, 1 bad data (the message names the file and line), 2 bad usage.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from labkit.artifacts import artifacts_dir
from labkit.cli import UsageError, add_json_flag, emit
from labkit.data.sources import VIDEO_SUFFIXES
from labkit.data.mot import write_mot
from labkit.errors import DataError
from labkit.track.config import load_config
from labkit.track.render import check_video_target, render_video, states_from_log
from labkit.track.run import track_frames, write_log
from labkit.track.sequence import Sequence, open_sequence, read_sequence_file, sequence_from_video
from labkit.track.sources import (SCORE_NORMS, SIMULATE_PRESETS, detector_detections, hog_detections,
                                  normalise_scores, public_detections, simulated_detections)


def _base_weights() -> Path:
    """The course's base detector (registry ``detect-base``): cached build or shipped checkpoint."""
    from labkit.models import load

    return load("detect-base", progress=False, follow_budget=False).weights


def _detections(args: argparse.Namespace, seq: Sequence) -> tuple[dict, dict[str, Any]]:
    chosen = [x for x in (args.det, args.detector, args.simulate) if x]
    if len(chosen) > 1:
        raise UsageError("give at most one of --det, --detector, --simulate")
    info: dict[str, Any] = {}
    if args.simulate:
        if args.simulate not in SIMULATE_PRESETS:
            raise UsageError(f"--simulate must be one of {sorted(SIMULATE_PRESETS)}, got {args.simulate!r}")
        if seq.gt_file is None:
            raise UsageError(f"--simulate needs ground truth ({seq.root / 'gt' / 'gt.txt'} not found)")
        gt = read_sequence_file(seq.gt_file, "gt", seq.length)
        frames = simulated_detections(gt, seq.length, seq.width, seq.height, preset=args.simulate, seed=args.seed)
        info = {"source": f"simulated ({args.simulate}, seed {args.seed})"}
    elif args.detector == "hog":
        frames, info = hog_detections(seq, artifacts_dir() / "track_detections")
        info["source"] = "HOG people detector (OpenCV)"
    elif args.detector:
        weights = _base_weights() if args.detector == "base" else Path(args.detector)
        frames, info = detector_detections(weights, seq, artifacts_dir() / "track_detections")
        info["source"] = f"detector {weights}"
    else:
        det = Path(args.det) if args.det else seq.det_file
        if det is None:
            raise UsageError(f"no detections: {seq.root / 'det' / 'det.txt'} not found; give --det, --detector or --simulate")
        if not det.is_file():
            raise UsageError(f"--det file not found: {det}")
        frames = public_detections(det, seq.length)
        info = {"source": str(det)}
    frames, info["score_norm"] = normalise_scores(frames, args.score_norm)
    info["empty"] = not any(len(d) for d in frames.values())
    return frames, info


def _run_one(args: argparse.Namespace, seq_dir: Path, out: Path, video: Path | None, log: Path | None) -> dict[str, Any]:
    config = load_config(args.config)
    seq = open_sequence(seq_dir)
    frames, info = _detections(args, seq)
    read = seq.read_frame if seq.frames_dir is not None else None
    run = track_frames(frames, seq.length, config, read_frame=read, record=log is not None or video is not None)
    write_mot(run.tracks, out, "pred")
    payload = {"sequence": seq.name, "out": str(out), "sequence_info": seq.info_source, "detection_source": info,
               **run.stats, "frames_available": seq.frames_dir is not None,
               "config": str(args.config) if args.config else "default (configs/track_default.yaml)"}
    if info["empty"]:
        payload["note"] = "no detections at all: every frame is empty, no track is started"
    if log is not None:
        payload["log"] = str(write_log(run.log, log))
    if video is not None:
        gt, switches = _gt_and_switches(args, seq, run.tracks)
        payload["video"] = render_video(video, seq.length, run.tracks, read_frame=read, size=(seq.height, seq.width),
                                        states=run.states, gt=gt, switches=switches, fps=seq.fps)
    return payload


def _gt_and_switches(args: argparse.Namespace, seq: Sequence, pred: dict) -> tuple[dict | None, list[dict]]:
    """Ground truth and the ID-switch events of ``pred`` when ``--gt-overlay`` (and gt exists)."""
    if not (args.gt_overlay and seq.gt_file):
        return None, []
    from labkit.metrics.id_events import events_to_records, id_events

    gt = read_sequence_file(seq.gt_file, "gt", seq.length, layout="mot15")
    return gt, events_to_records(id_events(gt, pred, num_frames=seq.length, preprocess="none"))


def _render_run(payload: Any) -> str:
    items = payload["sequences"] if "sequences" in payload else [payload]
    lines = []
    for p in items:
        mode = "motion-only" if p["motion_only"] else "with frames"
        lines.append(f"{p['sequence']}: {p['frames']} frames, {p['detection_source']['source']}, scores "
                     f"{p['detection_source']['score_norm']['action']}; {p['tracks']} tracks, {p['output_boxes']} boxes, "
                     f"{p['frames_per_second']:.0f} frames/s ({mode}) -> {p['out']}")
        if p["motion_only"] and p.get("motion_only_reason"):
            lines.append(f"  motion-only: {p['motion_only_reason']}")
        for key in ("note", "log"):
            if p.get(key):
                lines.append(f"  {key}: {p[key]}")
        if p.get("video"):
            lines.append(f"  video: {p['video']['path']} ({p['video']['frames']} frames)")
    return "\n".join(lines)


def _run(args: argparse.Namespace) -> int:
    if args.config and not Path(args.config).is_file():
        raise UsageError(f"--config file not found: {args.config}")
    load_config(args.config)  # a bad config fails before any work
    if bool(args.seq) == bool(args.split):
        raise UsageError("give exactly one of --seq DIR or --split NAME")
    if args.video:
        try:
            check_video_target(args.video)
        except DataError as exc:
            raise UsageError(str(exc)) from None
    if args.seq:
        seq_dir = Path(args.seq)
        if seq_dir.suffix.lower() in VIDEO_SUFFIXES:
            if not seq_dir.is_file():
                raise UsageError(f"--seq video not found: {seq_dir}")
            limit = f"-first{args.max_frames}" if args.max_frames else ""
            seq_dir = sequence_from_video(seq_dir, artifacts_dir() / "track_sequences" / f"{seq_dir.stem}{limit}",
                                          max_frames=args.max_frames)
        elif args.max_frames:
            raise UsageError("--max-frames applies to a video given as --seq")
        payload = _run_one(args, seq_dir, Path(args.out), Path(args.video) if args.video else None,
                           Path(args.log) if args.log else None)
    else:
        if args.video or args.log or args.det or args.max_frames:
            raise UsageError("--det, --video, --log and --max-frames apply to one sequence (--seq)")
        from labkit.data.synth import default_root

        root = Path(args.data) if args.data else default_root()
        seq_dirs = sorted((root / "sequences" / args.split).glob("*/seqinfo.ini"))
        if not seq_dirs:
            raise DataError(f"no sequences in split {args.split!r} (expected sequences/{args.split}/<seq>/seqinfo.ini)",
                            source=str(root))
        if not (args.det or args.detector or args.simulate):
            args.simulate = "typical"
        out = Path(args.out)
        payload = {"split": args.split, "data": str(root), "out": str(out),
                   "sequences": [_run_one(args, s.parent, out / f"{s.parent.name}.txt", None, None) for s in seq_dirs]}
    emit(args, payload, _render_run)
    return 0


def _render(args: argparse.Namespace) -> int:
    check_video_target(args.out)
    seq = open_sequence(args.seq)
    pred = read_sequence_file(args.pred, "pred", seq.length)
    for frame, det in pred.items():
        if len(det) and (det.track_id < 0).any():
            raise DataError("a tracker result needs track ids (id -1 found: is this a detection file?)",
                            source=str(args.pred), record=f"frame {frame}")
    gt, switches = _gt_and_switches(args, seq, pred)
    states = states_from_log(args.log) if args.log else None
    read = seq.read_frame if seq.frames_dir is not None else None
    payload = render_video(args.out, seq.length, pred, read_frame=read, size=(seq.height, seq.width), states=states,
                           gt=gt, switches=switches, fps=seq.fps)
    payload.update(id_switches=sum(1 for e in switches if e["switch"]), frames_available=read is not None)
    emit(args, payload, lambda p: f"{p['path']}: {p['frames']} frames at {p['fps']} fps, "
                                  f"{p['id_switches']} ID switches flagged" + ("" if read else " (no frames: grey canvas)"))
    return 0


def register(subparsers: Any) -> None:
    """Add ``labkit track ...``."""
    parser = subparsers.add_parser("track", help="multi-object tracking: run the tracker, render review videos")
    sub = parser.add_subparsers(dest="track_command", metavar="ACTION")

    p = sub.add_parser("run", help="track a MOTChallenge sequence (or a split of the embedded dataset)",
                       description=__doc__.splitlines()[0])
    p.add_argument("--seq", help="MOTChallenge sequence folder (img1/, seqinfo.ini, det/det.txt, gt/gt.txt), or a video "
                                 "file (its frames are written as a sequence under artifacts/track_sequences/)")
    p.add_argument("--max-frames", type=int, help="with a video as --seq: use its first N frames")
    p.add_argument("--split", help="run every sequence of this embedded-dataset split (train, val, test); detections "
                                   "are simulated (typical preset) unless --simulate or --detector says otherwise")
    p.add_argument("--data", help="embedded dataset root for --split (default: the generated dataset)")
    p.add_argument("--out", required=True, help="results file (--seq) or folder of <seq>.txt (--split)")
    p.add_argument("--det", help="MOTChallenge detection file (default: DIR/det/det.txt)")
    p.add_argument("--detector", help="'base' (the course base detector), 'hog' (OpenCV's HOG people detector) or a "
                                      "checkpoint path, run over the frames")
    p.add_argument("--simulate", help=f"simulate detections from gt.txt: one of {sorted(SIMULATE_PRESETS)}")
    p.add_argument("--seed", type=int, default=0, help="seed of --simulate (default 0)")
    p.add_argument("--config", help="tracker YAML (default: configs/track_default.yaml values)")
    p.add_argument("--log", help="write the association log here (JSON Lines, one frame per line)")
    p.add_argument("--video", help="also render a review video (.mp4)")
    p.add_argument("--gt-overlay", action="store_true", help="draw the ground truth in the video")
    p.add_argument("--score-norm", choices=SCORE_NORMS, default="auto",
                   help="auto: divide by the sequence max only when a score exceeds 1 (default); max: always; none")
    add_json_flag(p)
    p.set_defaults(func=_run)

    r = sub.add_parser("render", help="review video (MP4, H.264) of a tracker result")
    r.add_argument("--seq", required=True, help="MOTChallenge sequence folder")
    r.add_argument("--pred", required=True, help="tracker results (MOTChallenge)")
    r.add_argument("--out", required=True, help="output .mp4")
    r.add_argument("--log", help="association log of the run (adds lifecycle states and predicted boxes)")
    r.add_argument("--gt-overlay", action="store_true", help="draw the ground truth and flag ID switches")
    add_json_flag(r)
    r.set_defaults(func=_render)
