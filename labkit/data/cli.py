"""``labkit data generate|validate|leakage|card``: make, check and document a dataset.

Exit codes follow :mod:`labkit.cli`: 0 clean, 1 findings (validation errors, leakage or a
suspicious baseline, an incomplete card), 2 bad usage (e.g. a path that does not exist).
Heavy modules are imported inside the handlers so ``labkit --help`` stays fast.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from labkit.cli import UsageError, add_json_flag, emit


def _existing(path: str, what: str) -> Path:
    p = Path(path)
    if not p.exists():
        raise UsageError(f"{what} {p} does not exist")
    return p


def _generate(args: argparse.Namespace) -> int:
    from labkit.data.synth import generate_dataset

    if args.seed < 0:
        raise UsageError(f"--seed must be >= 0, got {args.seed}")
    manifest = generate_dataset(Path(args.out), seed=args.seed, size=args.size)
    counts = manifest.get("counts", {})
    emit(args, manifest, f"generated {args.out} (seed {args.seed}, size {args.size}): {counts}")
    return 0


def _validate(args: argparse.Namespace) -> int:
    from labkit.data.validate import validate_coco, validate_dataset_dir

    path = _existing(args.path, "dataset path")
    if path.is_dir():
        if args.image_root:
            raise UsageError("--image-root applies to a COCO file; a dataset folder has its own images/")
        report = validate_dataset_dir(path, check_files=not args.no_files)
    else:
        image_root = _existing(args.image_root, "--image-root") if args.image_root else None
        report = validate_coco(path, image_root=image_root, check_files=not args.no_files)
    emit(args, report.to_dict(), lambda _: report.to_markdown())
    return 0 if report.ok else 1


def _leakage(args: argparse.Namespace) -> int:
    from labkit.data.splits import leakage_report

    root = _existing(args.path, "dataset folder")
    if not root.is_dir():
        raise UsageError(f"{root} is not a dataset folder")
    if args.max_distance is not None and not 0 <= args.max_distance <= 64:
        raise UsageError(f"--max-distance must be in [0, 64] bits, got {args.max_distance}")
    options = {} if args.max_distance is None else {"max_distance": args.max_distance}
    report = leakage_report(root, include_sequences=not args.no_sequences, **options)
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(report.to_markdown(), encoding="utf-8")
    emit(args, report.to_dict(), lambda _: report.to_markdown())
    return 0 if report.ok else 1


def _card(args: argparse.Namespace) -> int:
    from labkit.data.card import check_card, findings_to_dicts, render_card
    from labkit.data.coco import read_json

    path = _existing(args.path, "dataset card")
    if args.render:
        if path.suffix != ".json":
            raise UsageError("--render needs a JSON file of dataset-card fields (see labkit.data.card.DatasetCard)")
        markdown = render_card(read_json(path))
        if args.out:
            Path(args.out).parent.mkdir(parents=True, exist_ok=True)
            Path(args.out).write_text(markdown, encoding="utf-8")
        emit(args, {"markdown": markdown}, markdown)
        return 0
    if path.is_dir() and not (path / "dataset_card.md").is_file():
        raise UsageError(f"{path} has no dataset_card.md")
    findings = check_card(path)
    errors = [f for f in findings if f.severity == "error"]
    text = "\n".join(f"[{f.severity}] {f.code} ({f.section}): {f.message}" for f in findings)
    emit(args, {"ok": not errors, "findings": findings_to_dicts(findings)}, text or "dataset card complete")
    return 1 if errors else 0


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("data", help="generate, validate and document datasets")
    sub = parser.add_subparsers(dest="data_command", metavar="SUBCOMMAND", required=True)

    p = sub.add_parser("generate", help="generate the embedded dataset into a folder")
    p.add_argument("--out", required=True, help="output folder")
    p.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    p.add_argument("--size", choices=("small", "default"), default="default", help="dataset size")
    add_json_flag(p)
    p.set_defaults(func=_generate)

    p = sub.add_parser("validate", help="validate a COCO file or a dataset folder; exit 1 on errors")
    p.add_argument("path", help="a dataset folder or a COCO instances JSON")
    p.add_argument("--image-root", help="folder the COCO file_name entries are relative to (COCO file only)")
    p.add_argument("--no-files", action="store_true", help="skip the checks that open image files")
    add_json_flag(p)
    p.set_defaults(func=_validate)

    p = sub.add_parser("leakage", help="near-duplicates and shared groups across splits; exit 1 when found")
    p.add_argument("path", help="a dataset folder (annotations/instances_<split>.json ...)")
    p.add_argument("--max-distance", type=int, help="largest Hamming distance (bits of 64, under both dHash and "
                   "pHash) of a near-duplicate pair (default: labkit.data.splits.DEFAULT_MAX_DISTANCE)")
    p.add_argument("--no-sequences", action="store_true", help="leave out the video sequences")
    p.add_argument("--out", help="also write the Markdown report to this file")
    add_json_flag(p)
    p.set_defaults(func=_leakage)

    p = sub.add_parser("card", help="check a dataset card (exit 1 on error findings; "
                       "missing metadata is a warning) or render one from JSON")
    p.add_argument("path", help="a dataset folder (its dataset_card.md), a Markdown card, or a JSON card")
    p.add_argument("--render", action="store_true", help="render a JSON card to Markdown instead of checking")
    p.add_argument("--out", help="with --render: write the Markdown here too")
    add_json_flag(p)
    p.set_defaults(func=_card)
