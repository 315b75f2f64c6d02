"""benchmarks/lever_runs.py, the lever table of issue 11: config changes applied exactly as
written, steps per curve point from hand-worked budgets, bad lever files named, a real lever build
at a tiny budget, and chapter READMEs that show exactly the committed record."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from types import SimpleNamespace

import pytest

from conftest import REPO, load_script
from labkit.errors import DataError

runs = load_script("lever_runs", folder="benchmarks")
RECORD = REPO / "benchmarks" / "results" / "bench_levers.json"


def test_a_lever_replaces_fields_and_merges_overrides_into_the_configs_own():
    base = {"name": "base-yolov8n", "epochs": 8, "imgsz": 320, "overrides": {"close_mosaic": 2}}
    cfg = runs.lever_config(base, "sgd", {"epochs": 32, "overrides": {"optimizer": "SGD", "lr0": 0.01}})
    assert cfg == {"name": "base-yolov8n", "epochs": 32, "imgsz": 320,
                   "overrides": {"close_mosaic": 2, "optimizer": "SGD", "lr0": 0.01}}
    assert base["overrides"] == {"close_mosaic": 2} and base["epochs"] == 8  # the base is untouched
    # an override of a key the config already sets replaces it
    assert runs.lever_config(base, "cm0", {"overrides": {"close_mosaic": 0}})["overrides"] == {"close_mosaic": 0}


def test_a_change_to_a_field_the_config_does_not_have_is_named():
    with pytest.raises(DataError, match=r"wide.*\['width'\]"):
        runs.lever_config({"name": "b", "epochs": 8}, "wide", {"width": 2})


def test_ema_off_makes_the_average_follow_the_weights_only_inside_the_block():
    import torch
    from ultralytics.utils.callbacks.base import get_default_callbacks
    from ultralytics.utils.torch_utils import ModelEMA

    def trained_once(decay_off: bool) -> tuple[torch.nn.Module, ModelEMA]:
        net = torch.nn.Linear(3, 2)
        ema = ModelEMA(net, updates=10_000)  # d = 0.9999 * (1 - exp(-5)): the average barely moves
        if decay_off:
            for fn in get_default_callbacks()["on_train_start"]:  # what a trainer runs when training starts
                fn(SimpleNamespace(ema=ema))
        with torch.no_grad():
            net.weight.add_(1.0)  # one "optimiser step"
        ema.update(net)
        return net, ema

    before = len(get_default_callbacks()["on_train_start"])
    with runs.ema_off():
        net, ema = trained_once(True)
    assert torch.equal(ema.ema.weight, net.weight) and torch.equal(ema.ema.bias, net.bias)
    assert len(get_default_callbacks()["on_train_start"]) == before  # gone after the block
    net, ema = trained_once(False)
    assert (net.weight - ema.ema.weight).abs().min() > 0.9  # the default keeps the old weights (d near 1)


def test_curve_points_get_steps_from_the_builds_steps_per_epoch():
    # 8 epochs of 34 steps: epoch 2 -> 68, epoch 8 -> 272
    points = runs.with_steps([{"epoch": 2, "AP50": 0.1}, {"epoch": 8, "AP50": 0.2}], epochs=8, steps=272)
    assert points == [{"epoch": 2, "steps": 68, "AP50": 0.1}, {"epoch": 8, "steps": 272, "AP50": 0.2}]
    # uneven: 10 steps over 3 epochs -> 3.33 per epoch, rounded per point (3, 7, 10)
    assert [p["steps"] for p in runs.with_steps([{"epoch": e} for e in (1, 2, 3)], 3, 10)] == [3, 7, 10]


@pytest.mark.parametrize("text, message", [
    ("no-such-model:\n  a: {lever: x, changes: {epochs: 1}}\n", "unknown registry model 'no-such-model'"),
    ("detect-tiny: []\n", "expected a mapping of lever id"),
    ("detect-tiny:\n  a: {lever: x}\n", "the keys 'lever' and 'changes'"),
    ("detect-tiny:\n  a: {lever: x, changes: {}, extra: 1}\n", "the keys 'lever' and 'changes' \\(and optionally"),
    ("detect-tiny:\n  a: {lever: x, changes: {epochs: 1}, data: {extra_seeds: []}}\n", "'data' must be"),
    ("detect-tiny:\n  a: {lever: x, changes: {epochs: 1}, data: {seeds: [1]}}\n", "'data' must be"),
    ("detect-tiny:\n  a: {lever: x, changes: {epochs: 1}, data: [1]}\n", "'data' must be"),
    ("detect-tiny:\n  a: {lever: x, changes: {}}\n", "non-empty mapping"),
    ("detect-tiny:\n  a: {lever: x, changes: {}, trainer: {ema: true}}\n", "'trainer' must be \\{ema: false\\}"),
    ("detect-tiny:\n  a: {lever: x, changes: {}, trainer: {ema: false, lr: 1}}\n", "'trainer' must be"),
    ("segment-tiny:\n  a: {lever: x, changes: {}, trainer: {ema: false}}\n", "on an Ultralytics model"),
    ("- a\n- b\n", "expected a mapping of registry model"),
    ("detect-tiny: {a: [unclosed\n", "not valid YAML"),
    ("", "expected a mapping of registry model"),
])
def test_a_bad_lever_file_is_named_with_the_record(tmp_path: Path, text: str, message: str):
    path = tmp_path / "levers.yaml"
    path.write_text(text)
    with pytest.raises(DataError, match=message) as err:
        runs.read_levers(path)
    assert "levers.yaml" in str(err.value)


def test_the_course_lever_file_reads_and_every_change_names_a_config_field():
    from labkit.models import get

    for model, levers in runs.read_levers().items():
        base = get(model).load_config().to_dict()
        for lever_id, entry in levers.items():
            get(model).load_config(runs.lever_config(base, lever_id, entry["changes"]))  # the config class accepts it


def _row(lever_id: str, points: list[dict], epochs: int, metric: float) -> dict:
    return {"lever_id": lever_id, "lever": "schedule", "changes": {"epochs": epochs}, "epochs": epochs,
            "steps": epochs * 10, "train_minutes": 1.5, "torch_threads": 1, "metrics": {"AP50": metric},
            "goals": load_script("model_levers", folder="benchmarks").goal_rows("detect-base", {"AP50": metric}, points),
            "curve": {"source": "x", "points": points}}


def test_render_reports_the_best_point_and_the_first_epoch_at_the_goal_exactly():
    long = [{"epoch": 4, "steps": 40, "AP50": 0.5}, {"epoch": 8, "steps": 80, "AP50": 0.70},
            {"epoch": 12, "steps": 120, "AP50": 0.69}]
    short = [{"epoch": 4, "steps": 40, "AP50": 0.3}]
    record = {"models": {"detect-base": [_row("long", long, 12, 0.69), _row("short", short, 4, 0.3)]}}
    text = runs.render(record)
    assert "| long | schedule | epochs=12 | 12 / 120 | 1.5 | 1 | 0.690 | 0.700 (80) | AP50: epoch 8 |" in text
    assert "| short | schedule | epochs=4 | 4 / 40 | 1.5 | 1 | 0.300 | 0.300 (40) | AP50: not within 4 epochs |" in text
    assert "| lever | 40 | 80 | 120 |" in text and "| long | 0.500 | 0.700 | 0.690 |" in text
    assert "| short | 0.300 |  |  |" in text  # no point where the build did not evaluate
    # the goal is met by an end-of-budget value, reached on a curve by any point; gain over the last two points
    assert ("Highest AP50 at the end of a budget: long, 0.690. The goal AP50 >= 0.7 was met at the end of a budget "
            "by: no lever; first reached on a learning curve by: long (epoch 8). The longest build (long, 12 epochs, "
            "120 steps) changed AP50 by -0.0025 per epoch over its last two evaluated points.") in text
    # with the reference and another seed: levers are judged against the seed's move (0.05 here)
    reference = {**_row("reference", short, 4, 0.30), "lever": "as shipped"}
    seed = {**_row("seed-1", short, 4, 0.25), "lever": "noise (another seed)"}
    text = runs.render({"models": {"detect-base": [reference, seed, _row("long", long, 12, 0.69),
                                                   _row("short", short, 4, 0.34)]}})
    assert "Another seed alone moved AP50 by 0.050; levers that moved it by more: long (+0.390)." in text
    # COCO's small-object AP gets its own column when a row has it
    small = {**_row("small", short, 4, 0.3)}
    small["metrics"] = {"AP50": 0.3, "APs": 0.125}
    assert "| small | schedule | epochs=4 | 4 / 40 | 1.5 | 1 | 0.300 | 0.125 |" in runs.render(
        {"models": {"detect-base": [small]}})
    # a pretraining-split row is set against the same recipe's base-data build nearest in steps (ties: the first
    # lever id; a recipe change, here at exactly the same steps, is no peer)
    pre = {**_row("pre", [{"epoch": 2, "steps": 110, "AP50": 0.61}], 2, 0.61), "train_images": 900,
           "changes": {"epochs": 2, "extra_seeds": [1, 2]}, "lever": "pretraining split"}
    pre["steps"] = 110
    sgd = {**_row("sgd", long, 11, 0.9), "lever": "recipe"}
    text = runs.render({"models": {"detect-base": [_row("long", long, 12, 0.69), _row("b", long, 10, 0.5),
                                                   _row("a", long, 10, 0.4), sgd, pre]}})
    assert "| pre | pretraining split | epochs=2, extra_seeds=[1, 2] (900 train images) | 2 / 110 |" in text
    assert ("With 900 training images, pre (110 steps) got 0.610 against 0.400 for a (100 steps on the base train "
            "split): +0.210.") in text
    # at equal distance the reference wins the tie over a schedule row and another seed
    seed["steps"], reference["steps"] = 120, 100
    text = runs.render({"models": {"detect-base": [_row("a", long, 10, 0.4), seed, reference, pre]}})
    assert "against 0.300 for reference (100 steps" in text
    record["notes"] = ["paused twice"]
    assert runs.render(record).endswith("Note: paused twice")


def test_table_columns_thin_to_the_limit_but_keep_where_builds_ended():
    steps = list(range(10, 310, 10))  # 30 points
    cols = runs.columns(steps, ends={80, 300}, limit=12)
    assert cols == [30, 60, 80, 90, 120, 150, 180, 210, 240, 270, 300]  # every 3rd from the end, plus 80
    assert runs.columns([40, 80], ends={80}) == [40, 80]


def test_the_plot_draws_one_line_per_lever(tmp_path: Path):
    long = [{"epoch": 4, "steps": 40, "AP50": 0.5}, {"epoch": 8, "steps": 80, "AP50": 0.7}]
    path = runs.plot({"models": {"detect-base": [_row("long", long, 8, 0.7)], "segment-base": []}},
                     tmp_path / "levers.png")
    assert path.stat().st_size > 1000 and path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.slow
def test_a_lever_is_built_through_the_registry_at_a_tiny_budget(tmp_path: Path, monkeypatch):
    from labkit.data.coco import read_json
    from labkit.models.dataset import dataset_root

    monkeypatch.setenv("LABKIT_ARTIFACTS", str(tmp_path / "art"))
    (tmp_path / "levers.yaml").write_text("detect-tiny:\n  e3:\n    lever: schedule\n    changes: {epochs: 3}\n")
    (path,) = runs.run_levers("detect-tiny", ["e3"], levers_file=tmp_path / "levers.yaml",
                              cache_root=tmp_path / "cache", out_dir=tmp_path / "out")
    row = json.loads(path.read_text())
    train = read_json(dataset_root("small", 0) / "annotations" / "instances_train.json")
    per_epoch = -(-len(train["images"]) // 8)  # detect_tiny.yaml: batch 8, every train image once an epoch
    assert row["config_name"] == "tiny-yolov8n" and row["epochs"] == 3 and row["steps"] == 3 * per_epoch
    assert [p["steps"] for p in row["curve"]["points"]] == [per_epoch, 2 * per_epoch, 3 * per_epoch]
    assert {"AP50", "AP50_95", "APs"} <= set(row["metrics"]) and row["torch_threads"] >= 1
    # a pretraining lever: trained on seed 0's train split plus every still of seed 1, scored on seed 0's val
    (tmp_path / "levers.yaml").write_text("detect-tiny:\n  pre:\n    lever: pretraining split\n"
                                          "    changes: {epochs: 1}\n    data: {extra_seeds: [1]}\n")
    (path,) = runs.run_levers("detect-tiny", ["pre"], levers_file=tmp_path / "levers.yaml",
                              cache_root=tmp_path / "cache", out_dir=tmp_path / "out")
    row = json.loads(path.read_text())
    extra = sum(len(read_json(dataset_root("small", 1) / "annotations" / f"instances_{s}.json")["images"])
                for s in ("train", "val", "test"))
    assert row["train_images"] == len(train["images"]) + extra
    assert row["steps"] == -(-row["train_images"] // 8) and row["changes"] == {"epochs": 1, "extra_seeds": [1]}
    # EMA off: the same config as another build, so a cache of its own; the row says what changed
    (tmp_path / "levers.yaml").write_text("detect-tiny:\n  noema:\n    lever: recipe\n    changes: {epochs: 3}\n"
                                          "    trainer: {ema: false}\n")
    (path,) = runs.run_levers("detect-tiny", ["noema"], levers_file=tmp_path / "levers.yaml",
                              cache_root=tmp_path / "cache", out_dir=tmp_path / "out")
    row = json.loads(path.read_text())
    assert row["changes"] == {"epochs": 3, "ema": False} and row["steps"] == 3 * per_epoch
    assert len(list((tmp_path / "cache" / "trainer-levers" / "noema").glob("detect-tiny-*/metrics.json"))) == 1
    assert len(list((tmp_path / "cache").glob("detect-tiny-*"))) == 2  # e3 and pre, untouched
    with pytest.raises(DataError, match=r"unknown lever\(s\) \['nope'\]"):
        runs.run_levers("detect-tiny", ["nope"], levers_file=tmp_path / "levers.yaml", out_dir=tmp_path / "out")


def test_chapter_readmes_show_exactly_the_committed_record(tmp_path: Path):
    record = json.loads(RECORD.read_text(encoding="utf-8"))
    for rel in runs.READMES:
        (tmp_path / rel).parent.mkdir(parents=True)
        shutil.copyfile(REPO / rel, tmp_path / rel)
    runs.write_readmes(record, "benchmarks/results/bench_levers.json", repo=tmp_path)
    for rel, names in runs.READMES.items():
        text = (REPO / rel).read_text(encoding="utf-8")
        assert text == (tmp_path / rel).read_text(encoding="utf-8"), f"{rel} is stale: run lever_runs.py --readme"
        assert all(f"**{name}**" in text for name in names)
