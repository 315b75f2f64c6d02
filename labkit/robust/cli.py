"""``labkit robust {corrupt,suite,monitor}``: corrupt images or videos, run the corruption suite,
log monitoring features and drift alarms.

``corrupt`` writes PNG files (lossless, so nothing but the corruption changes the pixels) and
``corruption.json`` (the applied parameters and the files). An image is corrupted on its own; a
folder of frames or a video is one sequence with one parameter set (see
:mod:`labkit.robust.corruptions`). ``suite`` writes ``suite.json``, ``suite.md`` and
``severity_curves.png`` (see :mod:`labkit.robust.suite` and :mod:`labkit.robust.report`).
``monitor`` writes per-frame features as JSON Lines and, with ``--reference``, the drift
statistics and alarms beside them (see :mod:`labkit.robust.monitor`).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any, Mapping

import numpy as np

from labkit.cli import UsageError, add_json_flag, emit
from labkit.errors import DataError
from labkit.robust.corruptions import KINDS, check_severity, make_corruption

CORRUPTION_JSON = "corruption.json"


def _severity(value: Any) -> int:
    try:
        return check_severity(value)
    except DataError as exc:
        raise UsageError(str(exc)) from exc


def _read_input(path: Path) -> tuple[list[tuple[str, np.ndarray]], bool]:
    """``(name, RGB frame)`` pairs of an image, a folder of images or a video, and whether they
    form a sequence (folder or video)."""
    from labkit.data.sources import VIDEO_SUFFIXES, iter_frames

    if not path.exists():
        raise UsageError(f"input not found: {path}")
    sequence = path.is_dir() or path.suffix.lower() in VIDEO_SUFFIXES
    frames = []
    for key, frame in iter_frames(path):
        key = str(key)
        if "#" in key and Path(key.split("#")[0]).suffix.lower() in VIDEO_SUFFIXES:
            video, number = key.rsplit("#", 1)
            name = f"{Path(video).stem}_{int(number):06d}"
        else:
            name = Path(key).relative_to(path).with_suffix("").as_posix().replace("/", "_") if path.is_dir() else Path(key).stem
        frames.append((name, frame))
    return frames, sequence


def _corrupt(args: argparse.Namespace) -> int:
    from labkit.data.synth.writer import write_png

    severity = _severity(args.severity)
    source = Path(args.input)
    frames, sequence = _read_input(source)
    corruption = make_corruption(args.kind, severity, args.seed)
    images = [f for _, f in frames]
    if sequence:
        sizes = {f.shape for f in images}
        if args.kind == "h264" and len(sizes) > 1:
            raise DataError(f"frames of different sizes {sorted(sizes)} cannot be one h264 sequence", source=str(source))
        out_frames = corruption.apply_frames(images)
    else:
        out_frames = [corruption.apply(images[0])]
    out = Path(args.out)
    files = []
    for (name, _), frame in zip(frames, out_frames):
        write_png(out / f"{name}.png", frame)
        files.append(f"{name}.png")
    payload = {"input": str(source), "mode": "sequence" if sequence else "image", **corruption.record(),
               "frames": len(files), "files": files, "out": str(out)}
    (out / CORRUPTION_JSON).write_text(json.dumps(payload, indent=2), encoding="utf-8")
    emit(args, payload, lambda p: f"{p['kind']} severity {p['severity']} {p['params']} -> {p['frames']} "
                                  f"file(s) in {p['out']} (record: {CORRUPTION_JSON})")
    return 0


def _load_split(data_root: Path, split: str) -> Any:
    from labkit.models.dataset import load_split

    path = data_root / "annotations" / f"instances_{split}.json"
    if not path.is_file():
        raise UsageError(f"no '{split}' split: {path} not found")
    return load_split(data_root, split)


def _model(name: str) -> tuple[Any, Path | None]:
    from labkit.robust.models import UnknownModel, resolve_model

    try:
        return resolve_model(name)
    except UnknownModel as exc:
        raise UsageError(str(exc)) from exc


def _reference_rows(args: argparse.Namespace, model: Any, dataset: Any, data_root: Path, config: Any) -> tuple[str, list]:
    """The reference's suite rows: read from an earlier ``suite.json``, or run for a named model."""
    from labkit.robust.report import SUITE_JSON
    from labkit.robust.suite import run_suite

    ref = Path(args.reference)
    if ref.is_dir() and (ref / SUITE_JSON).is_file():
        ref = ref / SUITE_JSON
    if ref.suffix == ".json":
        if not ref.is_file():
            raise UsageError(f"reference results not found: {ref}")
        try:
            earlier = json.loads(ref.read_text(encoding="utf-8"))
            rows, primary = earlier["rows"], earlier["primary"]
        except (ValueError, KeyError, TypeError) as exc:
            raise DataError(f"not a suite.json ({type(exc).__name__}: {exc})", source=str(ref)) from exc
        if primary != model.primary:
            raise DataError(f"the reference scores {primary}, the model {model.primary}", source=str(ref))
        return str(ref), rows
    ref_model, _ = _model(args.reference)
    if ref_model.task != model.task:
        raise UsageError(f"reference {args.reference} is a {ref_model.task} model, {args.model} a {model.task} model")
    result = run_suite(ref_model, dataset, data_root, kinds=config.kinds, severities=config.severities,
                       seed=config.seed, max_images=config.max_images, with_slices=False)
    return args.reference, result["rows"]


def _render_suite(p: Mapping[str, Any]) -> str:
    from labkit.robust.report import severity_table

    lines = [f"{p['model']} ({p['task']}) on {len(p['images'])} images, {p['primary']} vs severity:",
             severity_table(p, p["primary"])]
    if p.get("corruption_errors"):
        ce = p["corruption_errors"]
        lines.append(f"mCE vs {p['reference']}: {ce['mCE']:.3f}" if ce["mCE"] is not None else "mCE: undefined")
    if p.get("checks"):
        c = p["checks"]
        lines.append(f"thresholds: {'PASSED' if c['passed'] else 'FAILED'} ({len(c['failures'])} of {c['checked']} "
                     "checks failed)")
        lines += [f"  {f['kind']} {f['severity']}: {p['primary']} {f[p['primary']]} breaks {f['rule']}"
                  for f in c["failures"]]
    lines.append(f"report: {p['files']['markdown']}, figure: {p['files']['figure']}")
    return "\n".join(lines)


def _suite_config(args: argparse.Namespace) -> Any:
    """The config file's settings (default: :class:`SuiteConfig` defaults) with the flags given on
    the command line taking precedence."""
    from labkit.robust.checks import SuiteConfig

    try:
        config = SuiteConfig.load(args.config) if args.config else SuiteConfig()
        flags = {"split": args.split, "kinds": args.kinds, "severities": args.severities, "seed": args.seed}
        changes = {k: (tuple(v) if isinstance(v, list) else v) for k, v in flags.items() if v is not None}
        if args.max_images is not None:
            if args.max_images < 0:
                raise UsageError(f"--max-images must be >= 0 (0 = all), got {args.max_images}")
            changes["max_images"] = args.max_images or None
        if args.no_slices:
            changes["slices"] = False
        return config.replace(**changes) if changes else config
    except DataError as exc:
        if args.config and str(args.config) in str(exc):
            raise
        raise UsageError(str(exc)) from exc


def _suite(args: argparse.Namespace) -> int:
    from labkit.robust.checks import assess
    from labkit.robust.report import write_report
    from labkit.robust.suite import corruption_errors, run_suite

    config = _suite_config(args)
    model, built_on = _model(args.model)
    if args.data is not None:
        data_root = Path(args.data)
    elif built_on is not None:
        data_root = built_on
    else:
        from labkit.data.synth import ensure_dataset

        data_root = Path(ensure_dataset())
    dataset = _load_split(data_root, config.split)
    result = run_suite(model, dataset, data_root, kinds=config.kinds, severities=config.severities, seed=config.seed,
                       max_images=config.max_images, with_slices=config.slices)
    result["config"] = {**config.to_dict(), "source": args.config}
    if args.reference:
        name, rows = _reference_rows(args, model, dataset, data_root, config)
        result["reference"] = name
        result["corruption_errors"] = corruption_errors(result["rows"], rows)
    if config.has_thresholds:
        result["checks"] = assess(result, config)
    result["files"] = write_report(result, args.out)
    emit(args, result, _render_suite)
    return 1 if result.get("checks") and not result["checks"]["passed"] else 0


def _monitor(args: argparse.Namespace) -> int:
    from labkit.robust.monitor import INPUT_FEATURES, DriftMonitor, first_alarm, frame_record, read_jsonl, write_jsonl

    if args.window < 2:
        raise UsageError(f"--window must be >= 2, got {args.window}")
    frames, _ = _read_input(Path(args.input))
    scores: list[Any] = [None] * len(frames)
    if args.model:
        model, _ = _model(args.model)
        if model.task != "detect":
            raise UsageError(f"--model must be a detector for output features, {args.model} is a {model.task} model")
        found = model.predict({k: f for k, (_, f) in enumerate(frames)})
        scores = [found[k].score for k in range(len(frames))]
    records = [frame_record(name, frame, s) for (name, frame), s in zip(frames, scores)]
    out = write_jsonl(args.out, records)
    payload: dict[str, Any] = {"input": args.input, "frames": len(records), "features": str(out)}
    if args.reference:
        reference = read_jsonl(args.reference)
        names = [n for n in INPUT_FEATURES + ("detections", "mean_score") if n in records[0] and n in reference[0]]
        ref = {n: [r.get(n) for r in reference] for n in names}
        table = DriftMonitor(ref, window=args.window, psi_alarm=args.psi_alarm, ks_alpha=args.ks_alpha).run(records)
        drift = Path(args.out).with_name(Path(args.out).stem + "_drift.jsonl")
        write_jsonl(drift, table.to_dict("records"))
        payload.update({"reference": args.reference, "drift": str(drift), "first_alarm": first_alarm(table),
                        "alarm_frames": int(table["alarm"].sum())})
    emit(args, payload, lambda p: f"{p['frames']} frames -> {p['features']}" + (
        f"; drift -> {p['drift']}, first alarm: {p['first_alarm']}, frames in alarm: {p['alarm_frames']}"
        if "drift" in p else ""))
    return 1 if args.fail_on_alarm and payload.get("alarm_frames") else 0


def _latency(args: argparse.Namespace) -> int:
    from labkit.robust.latency import LatencyBudget, budget_sheet, measure_latency, summarise, write_sheet

    if args.frames < 1 or args.warmup < 0:
        raise UsageError(f"need --frames >= 1 and --warmup >= 0, got {args.frames} and {args.warmup}")
    if not Path(args.source).exists():
        raise UsageError(f"source not found: {args.source}")
    budget = LatencyBudget.load(args.budget) if args.budget else LatencyBudget()
    model, _ = _model(args.model)
    samples = measure_latency(model, Path(args.source), max_frames=args.frames, warmup=args.warmup)
    rows = summarise(samples)
    sheet = budget_sheet(rows, budget)
    files = write_sheet(sheet, rows, args.out, title=f"{model.name} on {args.source}")
    payload = {"model": model.name, "task": model.task, "source": args.source, "stages": rows, "sheet": sheet,
               "budget": {**budget.to_dict(), "frame_ms": budget.frame_ms, "source": args.budget}, "files": files}
    if args.batches:
        from labkit.robust.latency import throughput_curve

        payload["throughput"] = throughput_curve(model, Path(args.source), args.batches, frames=args.frames)
        path = Path(args.out) / "latency_throughput.csv"
        path.write_text("batch,images,seconds,images_per_s\n" + "".join(
            f"{r['batch']},{r['images']},{r['seconds']:.6f},{r['images_per_s']:.3f}\n" for r in payload["throughput"]),
            encoding="utf-8")
        files["latency_throughput.csv"] = str(path)
    emit(args, payload, lambda p: Path(p["files"]["latency_budget.md"]).read_text(encoding="utf-8"))
    over = [s["stage"] for s in sheet if s["verdict"] != "within budget"]
    return 1 if args.fail_over_budget and over else 0


def register(subparsers: Any) -> None:
    """Add ``labkit robust ...`` and ``labkit bench latency``."""
    bench = subparsers.add_parser("bench", help="measurements: per-stage latency and the latency budget sheet")
    bench_sub = bench.add_subparsers(dest="bench_command", metavar="ACTION")
    p = bench_sub.add_parser("latency", help="per-stage p50/p95/p99 at batch 1 and the latency budget sheet (MD + CSV)")
    p.add_argument("--model", required=True, help="model name, checkpoint or ONNX export (see labkit robust suite)")
    p.add_argument("--source", required=True, help="video file, folder of frames (e.g. a sequence's img1/) or image")
    p.add_argument("--out", required=True, help="output folder for latency_budget.md/.csv and latency_stages.csv")
    p.add_argument("--frames", type=int, default=100, help="frames measured (after the warm-up)")
    p.add_argument("--warmup", type=int, default=5, help="frames run first and not measured")
    p.add_argument("--budget", default=None, help="budget config (e.g. configs/robust_latency.yaml)")
    p.add_argument("--fail-over-budget", action="store_true", help="exit 1 when a stage is over its budget")
    p.add_argument("--batches", nargs="+", type=int, default=None,
                   help="also measure throughput (images/s) at these batch sizes, e.g. 1 2 4 8 16")
    add_json_flag(p)
    p.set_defaults(func=_latency)

    parser = subparsers.add_parser("robust", help="corruptions and the corruption suite (chapter 5)")
    sub = parser.add_subparsers(dest="robust_command", metavar="ACTION")

    p = sub.add_parser("corrupt", help="corrupt an image, a folder of frames or a video (PNG out + corruption.json)")
    p.add_argument("--kind", required=True, choices=KINDS, help="corruption kind")
    p.add_argument("--severity", required=True, type=int, help="1 (mild) to 5 (severe)")
    p.add_argument("--in", dest="input", required=True, help="image file, folder of frames, or video file")
    p.add_argument("--out", required=True, help="output folder")
    p.add_argument("--seed", type=int, default=0, help="seed of the drawn parameters and the pixel noise")
    add_json_flag(p)
    p.set_defaults(func=_corrupt)

    p = sub.add_parser("suite", help="metric vs severity for every kind, corruption errors, slices, thresholds "
                       "(exit 1 when one fails)")
    p.add_argument("--model", required=True,
                   help="detect-base, detect-tiny, detect-yolo11n, segment-base, segment-tiny, or a checkpoint / ONNX path")
    p.add_argument("--config", default=None, help="suite settings and thresholds (e.g. configs/robust_suite.yaml); "
                   "flags given here override it")
    p.add_argument("--split", default=None, help="still-image split to score (default val)")
    p.add_argument("--data", default=None, help="dataset folder (default: the one the model was built on)")
    p.add_argument("--kinds", nargs="+", choices=KINDS, default=None, help="corruption kinds (default all)")
    p.add_argument("--severities", nargs="+", type=int, default=None, help="severities (default 1-5)")
    p.add_argument("--seed", type=int, default=None, help="seed of the image subset and the corruptions (default 0)")
    p.add_argument("--max-images", type=int, default=None,
                   help="seeded subset of the split (default: 32 images for a detector, 16 for a segmenter; 0 = all)")
    p.add_argument("--reference", default=None,
                   help="reference model for the corruption errors: a model name/path or an earlier suite.json")
    p.add_argument("--no-slices", action="store_true", help="skip the lighting/motion/occlusion/size slices")
    p.add_argument("--out", required=True, help="output folder")
    add_json_flag(p)
    p.set_defaults(func=_suite)

    p = sub.add_parser("monitor", help="per-frame features as JSON Lines, drift alarms against a reference")
    p.add_argument("--in", dest="input", required=True, help="video file, folder of frames or image")
    p.add_argument("--out", required=True, help="features file (.jsonl); drift goes beside it as <stem>_drift.jsonl")
    p.add_argument("--model", default=None, help="detector (name or weights) for the output features")
    p.add_argument("--reference", default=None, help="features .jsonl of a reference stretch: run the drift alarms")
    p.add_argument("--window", type=int, default=50, help="frames per drift window")
    p.add_argument("--psi-alarm", type=float, default=0.25, help="alarm when PSI exceeds this")
    p.add_argument("--ks-alpha", type=float, default=0.001, help="alarm when the KS p-value is below this")
    p.add_argument("--fail-on-alarm", action="store_true", help="exit 1 when any frame raised an alarm")
    add_json_flag(p)
    p.set_defaults(func=_monitor)
