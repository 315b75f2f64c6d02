"""Benchmark: what each lever of a base model's quality gives (issue 11), as metric-vs-steps curves.

``configs/levers.yaml`` names, per registry model, one-change variants of its config (a longer
schedule, another input resolution, another optimiser or augmentation, a wider network). ``run``
builds each variant through the registry (:func:`labkit.models.build`, so the recipe, data, val
split and scorer are the course's own) into ``--cache-root`` and writes one JSON file per lever
under ``artifacts/levers/<model>/``, right after its build (two queues can run side by side, e.g.
one per CPU core). ``collect`` merges those files with a reference row (the model as shipped:
nothing trained) into ``artifacts/bench_levers.json``, ``.md`` and a plot ``.png``;
``--readme RECORD`` writes the tables of a record into the chapter 2 and 3 READMEs between
``<!-- bench_levers:start -->`` and ``<!-- bench_levers:end -->``. A lever may also train on a
pretraining split (``data: {extra_seeds: [...]}``) or switch off the Ultralytics trainer's EMA of the
weights (``trainer: {ema: false}``, see :func:`ema_off`). Usage::

    python benchmarks/lever_runs.py run --model detect-base --levers imgsz-160 no-mosaic [--cache-root DIR]
    python benchmarks/lever_runs.py collect
    python benchmarks/lever_runs.py --readme benchmarks/results/bench_levers.json

Each curve point carries ``steps`` (epoch x the build's optimisation steps per epoch): budgets are
steps, never minutes. Minutes are recorded as measured, with the torch thread count of the build.
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import importlib.util
import json
import sys
from pathlib import Path
from typing import Any, Iterator

REPO = Path(__file__).resolve().parents[1]
LEVERS = REPO / "configs" / "levers.yaml"
START, END = "<!-- bench_levers:start -->", "<!-- bench_levers:end -->"
#: The kind of the reference row (the model as shipped), which other rows are compared with.
REFERENCE = "as shipped"
READMES = {"notebooks/02_detection/README.md": ("detect-base", "detect-frcnn"),
           "notebooks/03_segmentation/README.md": ("segment-base", "segment-instance")}


def _model_levers():
    """``benchmarks/model_levers.py`` (goals, learning curves, the shipped model's row)."""
    if "model_levers" not in sys.modules:
        spec = importlib.util.spec_from_file_location("model_levers", Path(__file__).with_name("model_levers.py"))
        module = importlib.util.module_from_spec(spec)
        sys.modules["model_levers"] = module
        spec.loader.exec_module(module)
    return sys.modules["model_levers"]


def read_levers(path: str | Path = LEVERS) -> dict[str, dict[str, dict[str, Any]]]:
    """The lever file: ``{model: {lever id: {"lever": kind, "changes": {...}}}}``, checked. A lever
    may add ``data: {extra_seeds: [...]}`` and, for an Ultralytics model, ``trainer: {ema: false}``
    (then ``changes`` may be empty)."""
    from labkit.configfile import read_yaml_mapping
    from labkit.detect.config import DetectConfig
    from labkit.errors import DataError
    from labkit.models import get, names

    path = Path(path)
    data = read_yaml_mapping(path)
    if not isinstance(data, dict) or not data:
        raise DataError("expected a mapping of registry model -> levers", source=str(path))
    for model, levers in data.items():
        if model not in names():
            raise DataError(f"unknown registry model {model!r}", source=str(path), record=str(model))
        if not isinstance(levers, dict) or not levers:
            raise DataError("expected a mapping of lever id -> {lever, changes}", source=str(path), record=str(model))
        for lever_id, entry in levers.items():
            where = f"{model}.{lever_id}"
            if not isinstance(entry, dict) or not {"lever", "changes"} <= set(entry) <= {"lever", "changes", "data",
                                                                                          "trainer"}:
                raise DataError("a lever has the keys 'lever' and 'changes' (and optionally 'data', 'trainer')",
                                source=str(path), record=where)
            if "trainer" in entry and (entry["trainer"] != {"ema": False}
                                       or not isinstance(get(model).load_config(), DetectConfig)):
                raise DataError("'trainer' must be {ema: false}, on an Ultralytics model (its trainer keeps the EMA)",
                                source=str(path), record=where)
            if not isinstance(entry["changes"], dict) or not (entry["changes"] or "trainer" in entry):
                raise DataError("'changes' must be a non-empty mapping of config fields", source=str(path),
                                record=where)
            data_spec = entry.get("data")
            if data_spec is not None and not (isinstance(data_spec, dict) and set(data_spec) == {"extra_seeds"}
                                              and isinstance(data_spec["extra_seeds"], list) and data_spec["extra_seeds"]):
                raise DataError("'data' must be {extra_seeds: [seed, ...]} (a pretraining dataset)", source=str(path),
                                record=where)
    return data


def lever_config(base: dict[str, Any], lever_id: str, changes: dict[str, Any]) -> dict[str, Any]:
    """``base`` (a config as a dict) with ``changes`` applied: fields replaced, ``overrides``
    merged into the base's own (the name stays: the same config is the same cached model, e.g. a
    seed built earlier). A field the config does not have is an error naming it."""
    from labkit.errors import DataError

    unknown = sorted(set(changes) - set(base))
    if unknown:
        raise DataError(f"no such config field(s) {unknown}", record=lever_id)
    out = copy.deepcopy(base)
    for key, value in changes.items():
        if key == "overrides":
            out["overrides"] = {**out.get("overrides", {}), **value}
        else:
            out[key] = value
    return out


@contextlib.contextmanager
def ema_off() -> Iterator[None]:
    """Ultralytics trains with an exponential moving average of the weights and validates and saves
    only that average (``ModelEMA``: ``ema = d * ema + (1 - d) * weights`` after each optimiser step,
    ``d`` ramping up to 0.9999); no training argument turns it off. Inside this block every
    Ultralytics trainer started in this process sets ``d`` to 0 when training starts, so the saved
    "average" is the weights themselves: training without EMA."""
    from ultralytics.utils.callbacks.base import default_callbacks

    def follow_the_weights(trainer: Any) -> None:
        trainer.ema.decay = lambda updates: 0.0

    default_callbacks["on_train_start"].append(follow_the_weights)
    try:
        yield
    finally:
        default_callbacks["on_train_start"].remove(follow_the_weights)


def with_steps(points: list[dict[str, Any]], epochs: int, steps: int) -> list[dict[str, Any]]:
    """Curve points with ``steps`` added: epoch x (``steps`` / ``epochs``), the build's steps per epoch."""
    per_epoch = steps / epochs
    return [{"epoch": p["epoch"], "steps": round(p["epoch"] * per_epoch), **{k: v for k, v in p.items() if k != "epoch"}}
            for p in points]


def _row(model_name: str, lever_id: str, kind: str, changes: dict[str, Any], model: Any) -> dict[str, Any]:
    ml = _model_levers()
    run = model.folder / "run"
    curve = ml.learning_curve(model_name, model, run if run.is_dir() else None)
    info = model.info
    points = with_steps(curve["points"], info["epochs"], info["steps"])
    values = ml.headline(info)
    small = info.get("details", {}).get("coco", {}).get("APs")
    if small is not None:  # COCO's AP@[.5:.95] of small objects: what input resolution changes most
        values["APs"] = small
    return {"lever_id": lever_id, "lever": kind, "changes": changes, "source": model.source,
            "config_name": info["config_name"], "epochs": info["epochs"], "steps": info["steps"],
            "train_minutes": info["train_minutes"], "device": info["device"], "metrics": values,
            "goals": ml.goal_rows(model_name, values, points),
            "curve": {"source": curve["source"], "points": points}}


def run_levers(model_name: str, lever_ids: list[str], *, levers_file: Path = LEVERS, cache_root: Path | None = None,
               data_root: Path | None = None, out_dir: Path | None = None) -> list[Path]:
    """Build each lever of ``model_name`` (a finished build in ``cache_root`` is reused) and write
    its row to ``<out_dir>/<model>/<lever id>.json``."""
    import torch

    from labkit.artifacts import artifacts_dir, write_json
    from labkit.errors import DataError
    from labkit.data.synth.pretrain import pretraining_dataset
    from labkit.models import build, get, models_root
    from labkit.data.coco import read_json

    levers = read_levers(levers_file).get(model_name)
    if levers is None:
        raise DataError(f"no levers for {model_name!r}", source=str(levers_file))
    missing = [lever for lever in lever_ids if lever not in levers]
    if missing:
        raise DataError(f"unknown lever(s) {missing}; known: {sorted(levers)}", source=str(levers_file),
                        record=model_name)
    out_dir = Path(out_dir) if out_dir is not None else artifacts_dir() / "levers"
    base = get(model_name).load_config().to_dict()
    written = []
    for lever_id in lever_ids or sorted(levers):
        entry = levers[lever_id]
        config = lever_config(base, lever_id, entry["changes"])
        root = data_root
        if "data" in entry:  # the base dataset's train split plus the scenes of other seeds; val as it is
            root = pretraining_dataset((Path(cache_root) if cache_root else out_dir) / "data" / f"{model_name}-{lever_id}",
                                       entry["data"]["extra_seeds"], seed=config["dataset_seed"],
                                       size=config["dataset_size"])
        builds = cache_root
        if "trainer" in entry:  # same config and data as another build: a cache of its own, never mistaken for it
            builds = models_root(cache_root) / "trainer-levers" / lever_id
        with ema_off() if "trainer" in entry else contextlib.nullcontext():
            model = build(model_name, config=config, data_root=root, cache_root=builds)
        changes = {**entry["changes"], **entry.get("data", {}), **entry.get("trainer", {})}
        row = {**_row(model_name, lever_id, entry["lever"], changes, model),
               "torch_threads": torch.get_num_threads() if model.source == "built" else None}  # of a build made here
        if "data" in entry:  # counted by pretraining_dataset in its manifest
            row["train_images"] = read_json(root / "manifest.json")["counts"]["train"]["images"]
        path = out_dir / model_name / f"{lever_id}.json"
        write_json(path, row)
        written.append(path)
        print(f"{model_name} {lever_id}: {_metrics_line(row)} -> {path}", flush=True)
    return written


def _metrics_line(row: dict[str, Any]) -> str:
    return ", ".join(f"{k} {v:.3f}" for k, v in row["metrics"].items() if isinstance(v, float))


def reference_row(model_name: str, data_root: Path | None = None) -> dict[str, Any] | None:
    """The model as shipped (or built here with its own config): the reference the levers change."""
    from labkit.models import find

    model = find(model_name, data_root=data_root, progress=False, pull=False)
    if model is None:
        return None
    return _row(model_name, "reference", REFERENCE, {}, model)


def collect(out_dir: Path, models: list[str], data_root: Path | None = None) -> dict[str, Any]:
    """One record: per model its reference row and every lever file under ``out_dir/<model>/``."""
    import datetime

    from labkit.repro import package_versions

    record: dict[str, Any] = {"created": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
                              "models": {}, "versions": package_versions()}
    for name in models:
        rows = [json.loads(p.read_text(encoding="utf-8")) for p in sorted((out_dir / name).glob("*.json"))]
        reference = reference_row(name, data_root)
        record["models"][name] = ([reference] if reference else []) + rows
    return record


def _fmt(value: Any) -> str:
    if value is None:
        return "n/a"
    return f"{value:.3f}" if isinstance(value, float) else str(value)


def _change(changes: dict[str, Any]) -> str:
    flat = {**{k: v for k, v in changes.items() if k != "overrides"}, **changes.get("overrides", {})}
    return ", ".join(f"{k}={v}" for k, v in flat.items()) or "-"


def columns(steps: list[int], ends: set[int], limit: int = 12) -> list[int]:
    """At most about ``limit`` of the sorted curve ``steps`` for a table: every k-th one (k so that
    ``limit`` remain), always keeping the steps where a build ended (``ends``)."""
    k = -(-len(steps) // limit)
    return [s for i, s in enumerate(steps) if s in ends or (len(steps) - 1 - i) % k == 0]


def _same_recipe(row: dict[str, Any]) -> bool:
    """A row trained by the model's own recipe: the reference, another seed, or only a longer or shorter schedule."""
    return row["lever"] in (REFERENCE, "schedule") or row["lever"].startswith("noise")


def summary(name: str, rows: list[dict[str, Any]]) -> str:
    """One sentence from the rows: the best end-of-budget value of the first goal's metric, the
    reference's, which levers reached the goal, and whether the longest schedule was still rising."""
    ml = _model_levers()
    metric, op, threshold = (ml.GOALS.get(name) or [(next(iter(rows[0]["metrics"])), ">=", float("inf"))])[0]
    scored = [r for r in rows if r["metrics"].get(metric) is not None]
    if not scored:
        return f"No lever has a {metric}."
    best = max(scored, key=lambda r: r["metrics"][metric])
    reference = next((r for r in rows if r["lever_id"] == "reference"), None)
    met = [r["lever_id"] for r in rows for g in r["goals"] if g["metric"] == metric and g["met"]]
    on_curve = [f"{r['lever_id']} (epoch {g['first_epoch_reaching']})" for r in rows for g in r["goals"]
                if g["metric"] == metric and g["first_epoch_reaching"] is not None]
    longest = max(rows, key=lambda r: r["steps"])
    gain = ml.gain_per_epoch(longest["curve"]["points"], metric)
    text = (f"Highest {metric} at the end of a budget: {best['lever_id']}, {best['metrics'][metric]:.3f}"
            + ("" if reference is None or reference is best else f" (reference {_fmt(reference['metrics'].get(metric))})")
            + f". The goal {metric} {op} {threshold:g} was met at the end of a budget by: {', '.join(met) or 'no lever'};"
            f" first reached on a learning curve by: {', '.join(on_curve) or 'no lever'}.")
    noise = [r for r in scored if r["lever"].startswith("noise")]
    if reference is not None and reference["metrics"].get(metric) is not None and noise:
        ref = reference["metrics"][metric]
        spread = max(abs(r["metrics"][metric] - ref) for r in noise)
        beyond = [f"{r['lever_id']} ({r['metrics'][metric] - ref:+.3f})" for r in scored
                  if r is not reference and r not in noise and abs(r["metrics"][metric] - ref) > spread]
        text += (f" Another seed alone moved {metric} by {spread:.3f}; levers that moved it by more: "
                 f"{', '.join(beyond) or 'none'}.")
    for r in scored:
        if "train_images" in r:  # more scenes: against the build of the same recipe on the base data nearest
            # in steps (the reference, another seed or a schedule change; ties: the reference, then the lever id)
            peer = min((p for p in scored if "train_images" not in p and _same_recipe(p)),
                       key=lambda p: (abs(p["steps"] - r["steps"]), p["lever"] != REFERENCE, p["lever_id"]),
                       default=None)
            if peer is not None:
                text += (f" With {r['train_images']} training images, {r['lever_id']} ({r['steps']} steps) got "
                         f"{r['metrics'][metric]:.3f} against {peer['metrics'][metric]:.3f} for {peer['lever_id']} "
                         f"({peer['steps']} steps on the base train split): {r['metrics'][metric] - peer['metrics'][metric]:+.3f}.")
    if gain is not None:
        text += (f" The longest build ({longest['lever_id']}, {longest['epochs']} epochs, {longest['steps']} steps) "
                 f"changed {metric} by {gain:+.4f} per epoch over its last two evaluated points.")
    return text


def plot(record: dict[str, Any], path: Path) -> Path:
    """Each model's first goal metric against optimisation steps, one line per lever (PNG)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    ml = _model_levers()
    models = {n: rows for n, rows in record["models"].items() if rows}
    fig, axes = plt.subplots(1, max(1, len(models)), figsize=(6 * max(1, len(models)), 4), squeeze=False)
    for ax, (name, rows) in zip(axes[0], models.items()):
        metric = (ml.GOALS.get(name) or [(next(iter(rows[0]["metrics"])),)])[0][0]
        for r in rows:
            pts = [(p["steps"], ml.curve_value(p, metric)) for p in r["curve"]["points"]
                   if ml.curve_value(p, metric) is not None]
            if pts:
                ax.plot(*zip(*pts), marker="o", label=r["lever_id"])
        for _, _, threshold in ml.GOALS.get(name, [])[:1]:
            ax.axhline(threshold, color="grey", linestyle="--", label=f"goal {threshold:g}")
        ax.set(title=name, xlabel="optimisation steps", ylabel=f"val {metric}")
        ax.legend(fontsize=7)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def render(record: dict[str, Any], names: tuple[str, ...] | None = None) -> str:
    """Markdown per model: one row per lever (end-of-budget metrics, each goal's first epoch and
    step reaching it), then every curve as metric against steps."""
    ml = _model_levers()
    out: list[str] = []
    for name, rows in record["models"].items():
        if names is not None and name not in names or not rows:
            continue
        goals = [m for m, _, _ in ml.GOALS.get(name, [])] or [next(iter(rows[0]["metrics"]))]
        goals += [m for m in ("APs",) if any(m in r["metrics"] for r in rows)]
        stated = ", ".join(f"{m} {op} {t:g}" for m, op, t in ml.GOALS.get(name, [])) or "none set"
        out += [f"**{name}** (val split; goals: {stated})",
                "", "| lever | kind | change | epochs / steps | train min | threads | " + " | ".join(goals)
                + " | best on the curve (step) | goal first reached |", "| --- " * (7 + len(goals)) + "| --- |"]
        for r in rows:
            head = goals[0]
            curve = [(ml.curve_value(p, head), p["steps"]) for p in r["curve"]["points"]
                     if ml.curve_value(p, head) is not None]
            best = max(curve, default=None)
            reached = [f"{g['metric']}: {'not within ' + str(r['epochs']) + ' epochs' if g['first_epoch_reaching'] is None else 'epoch ' + str(g['first_epoch_reaching'])}"
                       for g in r["goals"]]
            change = _change(r["changes"]) + (f" ({r['train_images']} train images)" if "train_images" in r else "")
            out.append(f"| {r['lever_id']} | {r['lever']} | {change} | {r['epochs']} / {r['steps']} | "
                       f"{r['train_minutes']:.1f} | {_fmt(r.get('torch_threads'))} | "
                       + " | ".join(_fmt(r["metrics"].get(g)) for g in goals)
                       + f" | {'n/a' if best is None else f'{best[0]:.3f} ({best[1]})'} | {'; '.join(reached)} |")
        metric = goals[0]
        out += ["", summary(name, rows)]
        steps = columns(sorted({p["steps"] for r in rows for p in r["curve"]["points"]
                                if ml.curve_value(p, metric) is not None}), {r["steps"] for r in rows})
        as_trained = not any(metric in p for r in rows for p in r["curve"]["points"])
        label = f"{metric} as measured during training (letterboxed)" if as_trained else metric
        out += ["", f"{name}: {label} on the learning curve against optimisation steps (a point where the "
                "lever's build evaluated):", "", "| lever | " + " | ".join(map(str, steps)) + " |",
                "| --- |" + " --- |" * len(steps)]
        for r in rows:
            at = {p["steps"]: ml.curve_value(p, metric) for p in r["curve"]["points"]}
            out.append(f"| {r['lever_id']} | " + " | ".join(_fmt(at.get(s)) if at.get(s) is not None else "" for s in steps)
                       + " |")
        out.append("")
    out += [f"Note: {n}" for n in record.get("notes", [])]
    return "\n".join(out)


def write_readmes(record: dict[str, Any], record_path: str, repo: Path = REPO) -> list[Path]:
    """Replace the text between the markers of each chapter README (a new last section when missing)."""
    from labkit.course import write_section_blocks

    blocks = {rel: (f"Measured by `benchmarks/lever_runs.py` (levers: `configs/levers.yaml`, record: `{record_path}`, "
                   f"{record['created']}):\n\n{render(record, names).rstrip()}")
              for rel, names in READMES.items()}
    return write_section_blocks(repo, blocks, START, END, "Base models: what each lever gives")


def main(argv: list[str] | None = None) -> int:
    from labkit.artifacts import artifacts_dir, write_json

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--readme", metavar="RECORD", default=None,
                        help="write the tables of this bench_levers.json into the chapter 2/3 READMEs, then stop")
    parser.add_argument("--levers-file", type=Path, default=LEVERS)
    parser.add_argument("--data-root", type=Path, default=None)
    parser.add_argument("--out-dir", type=Path, default=None, help="lever files (default artifacts/levers)")
    sub = parser.add_subparsers(dest="command")
    p_run = sub.add_parser("run", help="build levers of one model")
    p_run.add_argument("--model", required=True)
    p_run.add_argument("--levers", nargs="*", default=[], help="lever ids (default: all of the model's)")
    p_run.add_argument("--cache-root", type=Path, default=None, help="model folders (default artifacts/models)")
    p_collect = sub.add_parser("collect", help="merge the lever files into artifacts/bench_levers.json")
    p_collect.add_argument("--models", nargs="+", default=None)
    p_collect.add_argument("--note", action="append", default=[], help="a line the record and its tables carry "
                           "(e.g. how the builds shared the machine)")
    args = parser.parse_args(argv)
    if args.readme:
        record = json.loads(Path(args.readme).read_text(encoding="utf-8"))
        from labkit.artifacts import shown_path

        shown = shown_path(args.readme)  # as the committed README names it: never a machine folder
        for path in write_readmes(record, shown):
            print(f"wrote {path}")
        return 0
    out_dir = args.out_dir or artifacts_dir() / "levers"
    if args.command == "run":
        run_levers(args.model, args.levers, levers_file=args.levers_file, cache_root=args.cache_root,
                   data_root=args.data_root, out_dir=out_dir)
        return 0
    if args.command == "collect":
        record = {**collect(out_dir, args.models or list(read_levers(args.levers_file)), args.data_root),
                  "notes": args.note}
        write_json(artifacts_dir() / "bench_levers.json", record)
        (artifacts_dir() / "bench_levers.md").write_text(render(record), encoding="utf-8")
        plot(record, artifacts_dir() / "bench_levers.png")
        print(render(record))
        print(f"wrote bench_levers.json, .md and .png in {artifacts_dir()}")
        return 0
    parser.error("give a command (run, collect) or --readme RECORD")
    return 2


if __name__ == "__main__":
    raise SystemExit(main())
