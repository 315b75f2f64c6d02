"""``labkit models {list,build,load,pull,verify,ship}``: the model registry from the command line.

- ``list``: every registered model, its config, tiny variant and shipped checkpoint (if any);
- ``build NAME ... | --all``: train here (an interrupted build resumes; ``--force`` starts over),
  with an overall progress bar whose ETA comes from each spec's expected minutes;
- ``load [NAME ...]``: what a notebook gets (cached build, else verified shipped checkpoint,
  else a build); without a name, the models the chapters need (``make models``);
- ``pull [NAME ...]``: fetch shipped checkpoints from the release location (``course.yaml``
  ``models_release``, or ``LABKIT_MODELS_MIRROR``), verified against ``checkpoints.json``;
- ``verify [NAME ...]``: sizes and sha256 of the shipped checkpoints found here, and of the cached
  builds' weights against their ``metrics.json``;
- ``ship NAME ... [--packaged | --to DIR]``: copy finished builds into a checkpoint folder (fp16
  where the measured val metrics do not move) and record sizes, sha256 and metrics in
  ``checkpoints.json``.

Exit codes: 0 ok, 1 a failed build / download / verification, 2 bad usage (e.g. an unknown name).
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any, Iterable

from labkit.cli import UsageError, add_json_flag, emit


def _names(requested: Iterable[str], default: Iterable[str]) -> list[str]:
    from labkit.models import names

    known = names()
    chosen = list(requested) or list(default)
    unknown = [n for n in chosen if n not in known]
    if unknown:
        raise UsageError(f"unknown model {', '.join(map(repr, unknown))}; known models: {', '.join(known)}")
    return chosen


def _summary(model: Any) -> dict[str, Any]:
    info = model.info
    return {"name": model.name, "source": model.source, "weights": str(model.weights), "epochs": info["epochs"],
            "steps": info["steps"], "train_minutes": info["train_minutes"], "device": info["device"],
            "metrics": info["metrics"]}


def _fmt_metrics(metrics: dict[str, Any]) -> str:
    return ", ".join(f"{k} {'n/a' if v is None else f'{v:.3f}'}" for k, v in metrics.items())


def _render_models(rows: list[dict[str, Any]]) -> str:
    return "\n".join(f"{r['name']} ({r['source']}): {_fmt_metrics(r['metrics'])}; {r['epochs']} epochs / "
                     f"{r['steps']} steps, {r['train_minutes']:.1f} min on {r['device']} -> {r['weights']}"
                     for r in rows)


def _list(args: argparse.Namespace) -> int:
    from labkit.models import get, names
    from labkit.models.checkpoints import read_manifest

    shipped = read_manifest()
    rows = []
    for name in names():
        spec = get(name)
        entry = shipped.get(name)
        rows.append({"name": name, "config": spec.config, "ci_variant": spec.ci, "expected_minutes": spec.minutes,
                     "description": spec.description,
                     "shipped": None if entry is None else {
                         "packaged": entry.get("packaged", False),
                         "bytes": sum(int(f["size"]) for f in entry["files"].values()), "metrics": entry["metrics"]}})
    emit(args, rows, lambda rs: "\n".join(
        f"{r['name']:<22} {r['config']:<27} ci: {r['ci_variant'] or '-':<22} "
        f"{'shipped' if r['shipped'] else 'built here':<10} {r['description']}" for r in rs))
    return 0


def _build(args: argparse.Namespace) -> int:
    from tqdm.auto import tqdm

    from labkit.detect._ultralytics import logs_to_stderr
    from labkit.models import build, get
    from labkit.models.specs import COURSE_MODELS

    if not args.name and not args.all:
        raise UsageError("name the models to build, or pass --all for the models the chapters need")
    chosen = _names(args.name, COURSE_MODELS)
    total = sum(get(n).minutes for n in chosen)
    rows = []
    with tqdm(total=total, unit="min", desc="models", disable=args.json,
              bar_format="{desc}: {percentage:3.0f}%|{bar}| {n:.0f}/{total:.0f} expected min [{elapsed}<{remaining}]") as bar:
        for name in chosen:
            bar.set_description(f"models: {name}")
            with logs_to_stderr(args.json):
                model = build(name, data_root=args.data_root, progress=not args.json, force=args.force)
            rows.append(_summary(model))
            bar.update(get(name).minutes)
    emit(args, rows, _render_models)
    return 0


def _load(args: argparse.Namespace) -> int:
    from labkit.detect._ultralytics import logs_to_stderr
    from labkit.models import load
    from labkit.models.specs import COURSE_MODELS

    rows = []
    for name in _names(args.name, COURSE_MODELS):
        with logs_to_stderr(args.json):
            rows.append(_summary(load(name, data_root=args.data_root, progress=not args.json,
                                      follow_budget=not args.exact)))
    emit(args, rows, _render_models)
    return 0


def _pull(args: argparse.Namespace) -> int:
    from labkit.datasets.fetch import DownloadError
    from labkit.models.checkpoints import pull, read_manifest

    shipped = read_manifest()
    chosen = _names(args.name, shipped)
    rows, failed = [], False
    for name in chosen:
        if name not in shipped:
            rows.append({"name": name, "ok": False, "problem": "no shipped checkpoint in checkpoints.json"})
            failed = True
            continue
        try:
            rows.append({"name": name, "ok": True, "folder": str(pull(name, progress=not args.json))})
        except DownloadError as exc:
            rows.append({"name": name, "ok": False, "problem": str(exc)})
            failed = True
    emit(args, rows, lambda rs: "\n".join(f"{r['name']}: " + (f"ok -> {r['folder']}" if r["ok"] else
                                                                  f"FAILED: {r['problem']}") for r in rs))
    return 1 if failed else 0


def _verify(args: argparse.Namespace) -> int:
    from labkit.artifacts import finished_model
    from labkit.models import cache_dir, get, names, read_info
    from labkit.models.checkpoints import candidates, read_manifest, verify
    from labkit.repro import sha256_file

    shipped = read_manifest()
    chosen = _names(args.name, [n for n in names() if n in shipped])
    rows = []
    for name in chosen:
        row: dict[str, Any] = {"name": name, "shipped": None, "cached": None, "problems": []}
        if name in shipped:
            found = {str(folder): verify(folder, shipped[name]) for folder in candidates(name) if folder.is_dir()}
            good = [f for f, problems in found.items() if not problems]
            row["shipped"] = good[0] if good else None
            if not good:
                row["problems"] += [p for problems in found.values() for p in problems] or [
                    f"shipped checkpoint not here (run: labkit models pull {name})"]
        weights = cache_dir(name, data_root=args.data_root) / get(name).weights
        if finished_model(weights):
            info = read_info(weights)
            row["cached"] = str(weights)
            if sha256_file(weights) != info.get("weights_sha256"):
                row["problems"].append(f"{weights}: sha256 differs from its metrics.json")
        if row["shipped"] is None and row["cached"] is None and not row["problems"]:
            row["problems"].append("neither shipped nor built here")
        rows.append(row)
    emit(args, rows, lambda rs: "\n".join(
        f"{r['name']}: " + ("ok" if not r["problems"] else "PROBLEM: " + "; ".join(r["problems"]))
        + "".join(f"\n  {k}: {r[k]}" for k in ("shipped", "cached") if r[k]) for r in rs))
    return 1 if any(r["problems"] for r in rows) else 0


def _ship(args: argparse.Namespace) -> int:
    from labkit.artifacts import artifacts_dir, finished_model
    from labkit.models import cache_dir, get
    from labkit.models.checkpoints import PACKAGED, ship

    rows = []
    for name in _names(args.name, []):
        weights = cache_dir(name, data_root=args.data_root) / get(name).weights
        if not finished_model(weights):
            raise UsageError(f"{name} is not built here yet (labkit models build {name})")
        dest = PACKAGED if args.packaged else Path(args.to or artifacts_dir() / "release")
        entry = ship(weights, dest, packaged=args.packaged, half=args.half, data_root=args.data_root,
                     progress=not args.json)
        rows.append({"name": name, "folder": str(dest / name), **entry})
    emit(args, rows, lambda rs: "\n".join(
        f"{r['name']} -> {r['folder']} ({r['precision']}; "
        f"{sum(f['size'] for f in r['files'].values()) / 1e6:.1f} MB): {_fmt_metrics(r['metrics'])}" for r in rs))
    return 0


def register(subparsers: Any) -> None:
    """Add ``labkit models ...``."""
    parser = subparsers.add_parser("models", help="the model registry: list, build, load, pull, verify")
    sub = parser.add_subparsers(dest="models_command", metavar="ACTION")

    p = sub.add_parser("list", help="registered models, their configs and shipped checkpoints")
    add_json_flag(p)
    p.set_defaults(func=_list)

    p = sub.add_parser("build", help="train models here (resumes an interrupted build)")
    p.add_argument("name", nargs="*", help="registered model names (labkit models list)")
    p.add_argument("--all", action="store_true", help="every model the chapters need")
    p.add_argument("--force", action="store_true", help="delete a finished build and train again")
    p.add_argument("--data-root", type=Path, default=None, help="dataset folder (default: the embedded dataset)")
    add_json_flag(p)
    p.set_defaults(func=_build)

    p = sub.add_parser("load", help="cached build, else verified shipped checkpoint, else build")
    p.add_argument("name", nargs="*", help="registered model names (default: those the chapters need)")
    p.add_argument("--exact", action="store_true", help="load NAME itself, not its tiny variant under LABKIT_BUDGET=ci")
    p.add_argument("--data-root", type=Path, default=None, help="dataset folder (default: the embedded dataset)")
    add_json_flag(p)
    p.set_defaults(func=_load)

    p = sub.add_parser("pull", help="fetch shipped checkpoints (sha256-verified, resumable)")
    p.add_argument("name", nargs="*", help="model names (default: every shipped checkpoint)")
    add_json_flag(p)
    p.set_defaults(func=_pull)

    p = sub.add_parser("verify", help="check shipped checkpoints and cached builds against their sha256")
    p.add_argument("name", nargs="*", help="model names (default: every shipped checkpoint)")
    p.add_argument("--data-root", type=Path, default=None, help="dataset folder (default: the embedded dataset)")
    add_json_flag(p)
    p.set_defaults(func=_verify)

    p = sub.add_parser("ship", help="copy finished builds into a checkpoint folder and record them in checkpoints.json")
    p.add_argument("name", nargs="+", help="registered model names, built here")
    where = p.add_mutually_exclusive_group()
    where.add_argument("--packaged", action="store_true", help="into labkit/models/checkpoints/ (committed with the course)")
    where.add_argument("--to", default=None, help="folder to upload to the release location (default: artifacts/release)")
    p.add_argument("--half", choices=("auto", "always", "never"), default="auto",
                   help="fp16 weights: auto keeps them only when the val metrics do not move (measured)")
    p.add_argument("--data-root", type=Path, default=None, help="dataset folder (default: the embedded dataset)")
    add_json_flag(p)
    p.set_defaults(func=_ship)
