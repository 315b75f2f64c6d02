"""Benchmark: the course's base models as they are here, against the quality goals of issue 11.

For each model of :data:`labkit.models.specs.COURSE_MODELS` (or ``--models``), nothing is trained:

- the **shipped** checkpoint (``checkpoints.json``, sha256-verified; not pulled) when there is one
  for this config and data, else the finished **cache** build under ``artifacts/models/``; its
  headline val metrics, budget (epochs, steps, training minutes, device), weights size and dtype,
  and each goal of the issue (met or not, and the shortfall);
- its **learning curve**, the metric against epochs: from the training history of a build here
  (``run/`` of the cache folder: Ultralytics ``results.csv`` merged with labkit's COCO AP of
  ``epochs.csv`` for YOLO, ``log.csv`` for the U-Net), else from what the checkpoint carries
  (``ap_vs_minutes.json``, ``metrics.json`` details); for each goal, the first epoch that reached
  it (``None``: not within the budget) and the gain per epoch over the last two points;
- with ``--reevaluate``, the val evaluation run again on the checkpoint file loaded afresh (the
  shipped copy, fp16 where it was shipped so), beside the metrics it records.

Writes ``artifacts/bench_models.json`` and ``artifacts/bench_models.md``. ``--readme RECORD``
writes the tables of a record (e.g. the committed ``benchmarks/results/bench_models.json``) into
the chapter 2 and 3 READMEs between ``<!-- bench_models:start -->`` and ``<!-- bench_models:end -->``,
so every figure there comes from a logged run. Usage::

    python benchmarks/model_levers.py [--models NAME ...] [--data-root DIR] [--reevaluate]
    python benchmarks/model_levers.py --readme benchmarks/results/bench_models.json
"""

from __future__ import annotations

import argparse
import json
import operator
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
START, END = "<!-- bench_models:start -->", "<!-- bench_models:end -->"
#: Which models each chapter README shows.
READMES = {"notebooks/02_detection/README.md": ("detect-base", "detect-frcnn"),
           "notebooks/03_segmentation/README.md": ("segment-base", "segment-instance")}
#: Issue 11's goals on the val split: (metric, comparison, threshold). Per-class IoU reads ``iou_<class>``.
GOALS: dict[str, list[tuple[str, str, float]]] = {
    "detect-base": [("AP50", ">=", 0.70)],
    "detect-frcnn": [("AP50", ">=", 0.40)],
    "segment-base": [("val_miou", ">=", 0.70), ("iou_rod", ">", 0.30), ("iou_star", ">", 0.30)],
    "segment-instance": [("mask_AP50", ">=", 0.45)],
}
_OPS = {">=": operator.ge, ">": operator.gt}


def meets(value: float | None, op: str, threshold: float) -> bool:
    """Whether ``value`` passes ``op threshold`` (an undefined value never does)."""
    return value is not None and _OPS[op](value, threshold)


def headline(info: dict[str, Any]) -> dict[str, float | None]:
    """A ``metrics.json``'s headline metrics plus its per-class IoU as ``iou_<class>`` (U-Net)."""
    per_class = info.get("details", {}).get("iou", {})
    return {**info["metrics"], **{f"iou_{k}": v for k, v in per_class.items()}}


def goal_rows(name: str, values: dict[str, float | None], curve: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Each goal of ``name``: the measured value, met or not, the shortfall, and the first curve
    epoch that reached it (the curve's points hold the same metric names)."""
    rows = []
    for metric, op, threshold in GOALS.get(name, []):
        value = values.get(metric)
        reached = [p["epoch"] for p in curve if meets(curve_value(p, metric), op, threshold)]
        rows.append({"metric": metric, "goal": f"{op} {threshold:g}", "value": value,
                     "met": meets(value, op, threshold),
                     "shortfall": None if value is None else max(0.0, threshold - value),
                     "first_epoch_reaching": reached[0] if reached else None})
    return rows


def curve_value(point: dict[str, Any], metric: str) -> float | None:
    """``metric`` at a curve point; a U-Net curve holds the in-training (letterboxed) value instead."""
    return point[metric] if metric in point else point.get(f"{metric}_letterboxed")


def gain_per_epoch(curve: list[dict[str, Any]], metric: str) -> float | None:
    """The change of ``metric`` per epoch between the last two points that have it (is it still rising?)."""
    points = [p for p in curve if curve_value(p, metric) is not None]
    if len(points) < 2:
        return None
    a, b = points[-2], points[-1]
    return (curve_value(b, metric) - curve_value(a, metric)) / (b["epoch"] - a["epoch"])


def _none_if_nan(value: Any) -> float | None:
    value = float(value)
    return None if value != value else value


def ultralytics_curve(run: Path, kind: str) -> list[dict[str, Any]]:
    """Per epoch of an Ultralytics run folder: its own val mAP50 (``metrics/mAP50(B)`` for boxes,
    ``(M)`` for masks) and, where labkit evaluated that epoch, the COCO AP50 / AP50-95 of
    ``epochs.csv``; ``minutes`` is Ultralytics' elapsed ``time``."""
    from labkit.detect.curves import learning_curves

    df = learning_curves(run)
    suffix = "M" if kind == "mask" else "B"
    head = "mask_AP50" if kind == "mask" else "AP50"
    rows = []
    for _, r in df.iterrows():
        row = {"epoch": int(r["epoch"]), "ultralytics_" + head: _none_if_nan(r.get(f"metrics/mAP50({suffix})", "nan"))}
        seconds = _none_if_nan(r.get("time", "nan"))
        row["minutes"] = None if seconds is None else seconds / 60.0
        if "coco/AP50" in r and _none_if_nan(r["coco/AP50"]) is not None:
            row.update({head: float(r["coco/AP50"]), head.replace("50", "50_95"): _none_if_nan(r["coco/AP"])})
        rows.append(row)
    return rows


def learning_curve(name: str, model: Any, run: Path | None) -> dict[str, Any]:
    """The metric-vs-epochs history of ``model`` (see the module docstring) and where it came from."""
    from labkit.artifacts import shown_path
    from labkit.segment.base import miou_vs_epochs

    details = model.info.get("details", {})
    if run is not None and (run / "results.csv").is_file():
        kind = "mask" if name.startswith("segment") else "box"
        return {"source": shown_path(run / "results.csv"), "points": ultralytics_curve(run, kind)}
    if run is not None and (run / "log.csv").is_file():
        return {"source": shown_path(run / "log.csv"), "points": _unet_points(miou_vs_epochs(run / "log.csv"))}
    if (model.folder / "ap_vs_minutes.json").is_file():
        path = model.folder / "ap_vs_minutes.json"
        return {"source": shown_path(path), "points": json.loads(path.read_text(encoding="utf-8"))}
    if "ap_vs_minutes" in details:
        return {"source": "metrics.json details.ap_vs_minutes", "points": details["ap_vs_minutes"]}
    if "miou_vs_epochs" in details:
        return {"source": "metrics.json details.miou_vs_epochs", "points": _unet_points(details["miou_vs_epochs"])}
    if "loss_per_epoch" in details:
        return {"source": "metrics.json details.loss_per_epoch",
                "points": [{"epoch": i + 1, "train_loss": v} for i, v in enumerate(details["loss_per_epoch"])]}
    return {"source": None, "points": []}


def _unet_points(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """U-Net log rows: the in-training val scores (letterboxed, as trained) of the goals' metrics."""
    return [{"epoch": r["epoch"], "minutes": r["minutes"], "val_miou_letterboxed": r["val_miou_letterboxed"],
             **{f"{k}_letterboxed": r[k] for k in ("iou_rod", "iou_star") if k in r}} for r in rows]


def reevaluate(model: Any, data_root: Path | None = None) -> dict[str, Any]:
    """The spec's val evaluation run again on the checkpoint file, loaded afresh, beside the metrics
    its ``metrics.json`` records (``max_abs_change``: the largest difference)."""
    from labkit.models import get
    from labkit.models.dataset import dataset_root

    spec = get(model.name)
    cfg = spec.load_config(model.info["config"])
    root = dataset_root(cfg.dataset_size, cfg.dataset_seed, data_root)
    again = spec.evaluate_fn()(model.weights, cfg, root, False).metrics
    changes = [abs(again[k] - v) for k, v in model.metrics.items() if v is not None and again.get(k) is not None
               and k != "ms_per_crop"]  # a timing, not a score
    return {"metrics": again, "max_abs_change": max(changes, default=None)}


def measure(name: str, data_root: Path | None = None, again: bool = False) -> dict[str, Any] | None:
    """One model's row (``None`` when it is neither shipped nor built here: nothing is trained);
    ``again``: also :func:`reevaluate` it."""
    from labkit.artifacts import finished_model
    from labkit.models import Model, cache_dir, get, read_info
    from labkit.models.checkpoints import locate, read_manifest
    from labkit.models.flow import model_key
    from labkit.models.dataset import dataset_root

    spec = get(name)
    cfg = spec.load_config()
    key = model_key(spec, cfg, dataset_root(cfg.dataset_size, cfg.dataset_seed, data_root))
    cached = cache_dir(name, data_root=data_root) / spec.weights
    shipped = locate(name, key=key, allow_pull=False, progress=False)
    if shipped is not None:
        model = Model(name, shipped / spec.weights, read_info(shipped / spec.weights), "shipped")
        entry = read_manifest()[name]
        size, dtype = entry["files"][spec.weights]["size"], entry.get("precision", "as built")
    elif finished_model(cached):
        model = Model(name, cached, read_info(cached), "cache")
        size, dtype = cached.stat().st_size, "as built"
    else:
        return None
    run = cached.parent / "run" if (cached.parent / "run").is_dir() else None
    curve = learning_curve(name, model, run)
    values = headline(model.info)
    info = model.info
    return {"name": name, "source": model.source, "key": key, "epochs": info["epochs"], "steps": info["steps"],
            "train_minutes": info["train_minutes"], "device": info["device"], "weights_bytes": size, "dtype": dtype,
            "metrics": values, "goals": goal_rows(name, values, curve["points"]), "curve": curve,
            "gain_per_epoch": {m: gain_per_epoch(curve["points"], m) for m, _, _ in GOALS.get(name, [])},
            "reevaluated": reevaluate(model, data_root) if again else None}


def _fmt(value: Any) -> str:
    if value is None:
        return "n/a"
    return f"{value:.3f}" if isinstance(value, float) else str(value)


def render(record: dict[str, Any], names: tuple[str, ...] | None = None) -> str:
    """Markdown: the goal table, then each model's learning curve."""
    rows = [r for r in record["models"] if names is None or r["name"] in names]
    out = ["| model | source | epochs / steps | train min | device | weights | metric | measured | re-measured from "
           "the file | goal | met | first epoch reaching it | gain per epoch at the end |",
           "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
    for r in rows:
        goals = r["goals"] or [{"metric": m, "value": v, "goal": "-", "met": None, "first_epoch_reaching": None}
                               for m, v in r["metrics"].items() if not m.startswith("iou_")]
        for g in goals:
            met = "-" if g["met"] is None else ("yes" if g["met"] else "no")
            first = g["first_epoch_reaching"]
            reach = "-" if g["met"] is None else (f"not within {r['epochs']}" if first is None else str(first))
            again = _fmt((r.get("reevaluated") or {}).get("metrics", {}).get(g["metric"], "-"))
            out.append(f"| {r['name']} | {r['source']} | {r['epochs']} / {r['steps']} | {r['train_minutes']:.1f} | "
                       f"{r['device']} | {r['weights_bytes'] / 1e6:.1f} MB {r['dtype']} | {g['metric']} | "
                       f"{_fmt(g['value'])} | {again} | {g['goal']} | {met} | {reach} | "
                       f"{_fmt(r['gain_per_epoch'].get(g['metric']))} |")
    for r in rows:
        points = r["curve"]["points"]
        if not points:
            continue
        columns = [c for c in points[0] if c != "epoch"] + sorted({c for p in points for c in p} - set(points[0]))
        out += ["", f"{r['name']}, learning curve (from `{Path(r['curve']['source']).name}`):", "",
                "| epoch | " + " | ".join(columns) + " |", "| --- |" + " --- |" * len(columns)]
        out += [f"| {p['epoch']} | " + " | ".join(_fmt(p.get(c)) for c in columns) + " |" for p in points]
    return "\n".join(out) + "\n"


def write_readmes(record: dict[str, Any], record_path: str, repo: Path = REPO) -> list[Path]:
    """Replace the text between the markers of each chapter README (a new last section when missing)."""
    from labkit.course import write_section_blocks

    blocks = {rel: (f"Measured by `benchmarks/model_levers.py` (record: `{record_path}`, {record['created']}); "
                   f"goals from issue 11, val split:\n\n{render(record, names).rstrip()}")
              for rel, names in READMES.items()}
    return write_section_blocks(repo, blocks, START, END, "Base models: measured quality")


def main(argv: list[str] | None = None) -> int:
    from labkit.artifacts import artifacts_dir, write_json
    from labkit.models.specs import COURSE_MODELS
    from labkit.repro import package_versions

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--models", nargs="+", default=list(COURSE_MODELS))
    parser.add_argument("--data-root", type=Path, default=None)
    parser.add_argument("--reevaluate", action="store_true",
                        help="run each model's val evaluation again on its checkpoint file (minutes)")
    parser.add_argument("--readme", metavar="RECORD", default=None,
                        help="write the tables of this bench_models.json into the chapter 2/3 READMEs, then stop")
    args = parser.parse_args(argv)
    if args.readme:
        record = json.loads(Path(args.readme).read_text(encoding="utf-8"))
        from labkit.artifacts import shown_path

        shown = shown_path(args.readme)  # as the committed README names it: never a machine folder
        for path in write_readmes(record, shown):
            print(f"wrote {path}")
        return 0
    import datetime

    rows = [measure(name, args.data_root, args.reevaluate) for name in args.models]
    record = {"created": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
              "models": [r for r in rows if r is not None],
              "missing": [n for n, r in zip(args.models, rows) if r is None], "versions": package_versions()}
    out = artifacts_dir()
    write_json(out / "bench_models.json", record)
    (out / "bench_models.md").write_text(render(record), encoding="utf-8")
    print(render(record))
    if record["missing"]:
        print(f"neither shipped nor built here (not measured): {', '.join(record['missing'])}")
    print(f"wrote {out / 'bench_models.json'} and {out / 'bench_models.md'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
