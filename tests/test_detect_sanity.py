"""Pre-training sanity checks, dataset subsets and the stability-grid summary (no training here)."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from labkit.data.annotations import Dataset, Detections, ImageRecord
from labkit.models.dataset import fingerprint, load_split
from labkit.detect.grid import (AUGMENT_DEFAULTS, REFERENCE, augmentation_overrides, grid_conclusion, knob_effects,
                                one_factor_grid, plot_grid)
from labkit.detect.config import DetectConfig
from labkit.detect.sanity import (agreement_summary, box_offsets, class_histogram, compare_runs, curve_health, inject_label_bug,
                                  label_agreement, label_file_histogram, overlay_round_trip, round_trip, total_loss)
from labkit.detect.subset import make_subset, pick_images
from labkit.errors import DataError


@pytest.fixture(scope="module")
def data_root() -> Path:
    from labkit.data.synth import ensure_dataset

    return Path(ensure_dataset(size="small", seed=0))


@pytest.fixture(scope="module")
def train(data_root: Path) -> Dataset:
    return pick_images(load_split(data_root, "train"), 8, seed=0)


def _toy() -> Dataset:
    cats = [{"id": 1, "name": "a"}, {"id": 2, "name": "b"}]
    det = Detections(np.array([[10.0, 20.0, 30.0, 40.0], [50.0, 50.0, 20.0, 10.0], [0.0, 0.0, 5.0, 5.0]]),
                     [1, 2, 2], data={"iscrowd": np.array([0, 0, 1])})
    return Dataset(cats, [ImageRecord(1, "x.jpg", 100, 100, det)])


def test_class_histogram_skips_crowd_and_lists_every_class() -> None:
    ds = _toy()
    ds.categories.append({"id": 3, "name": "c"})
    assert class_histogram(ds).to_dict() == {"a": 1, "b": 1, "c": 0}


def test_xywh_bug_shifts_boxes_by_half_their_size() -> None:
    bad = inject_label_bug(_toy(), "xywh_as_cxcywh")
    np.testing.assert_allclose(bad.images[0].detections.xywh[:2], [[0.0, 0.0, 25.0, 40.0], [40.0, 45.0, 20.0, 10.0]])
    table = label_agreement(_toy(), bad)
    # the unclipped box keeps a quarter of its area: IoU 1/4 / (2 - 1/4) = 1/7
    assert table["iou"].iloc[1] == pytest.approx(1 / 7)
    assert len(table) == 3  # the crowd region of `bad` has no partner in the reference


def test_shuffled_classes_are_seeded_and_keep_boxes() -> None:
    a, b = (inject_label_bug(_toy(), "shuffled_classes", seed=3) for _ in range(2))
    assert a.images[0].detections.class_id.tolist() == b.images[0].detections.class_id.tolist()
    np.testing.assert_array_equal(a.images[0].detections.xywh, _toy().images[0].detections.xywh)
    with pytest.raises(DataError):
        inject_label_bug(_toy(), "upside_down")  # type: ignore[arg-type]


def test_round_trip_is_exact_and_catches_both_bugs(train: Dataset, tmp_path: Path) -> None:
    readback, table = round_trip(train, tmp_path / "ok")
    good = agreement_summary(table)
    assert good["objects"] == sum(class_histogram(train)) and good["min_iou"] > 0.999 and good["class_agreement"] == 1
    assert label_file_histogram(tmp_path / "ok" / "data.yaml", "train").equals(class_histogram(train))
    _, shifted = round_trip(inject_label_bug(train, "xywh_as_cxcywh"), tmp_path / "xywh", reference=train)
    assert agreement_summary(shifted)["mean_iou"] < 0.5
    _, shuffled = round_trip(inject_label_bug(train, "shuffled_classes"), tmp_path / "cls", reference=train)
    assert agreement_summary(shuffled)["class_agreement"] < 0.6
    fig = overlay_round_trip(train, readback, 2, title="ok", path=tmp_path / "overlay.png")
    assert len(fig.axes) == 2 and (tmp_path / "overlay.png").stat().st_size > 0
    # a smaller export into the same folder leaves no stale label files behind
    smaller = train.subset(r.id for r in train.images[:3])
    _, again = round_trip(smaller, tmp_path / "ok")
    assert label_file_histogram(tmp_path / "ok" / "data.yaml", "train").equals(class_histogram(smaller))
    assert len(again) == sum(class_histogram(smaller))
    with pytest.raises(DataError, match="refusing"):
        round_trip(train, tmp_path)  # holds other files


def test_make_subset_is_seeded_and_trainable_layout(data_root: Path, tmp_path: Path) -> None:
    a = make_subset(data_root, tmp_path / "a", {"train": 6, "val": 3}, seed=1)
    b = make_subset(data_root, tmp_path / "b", {"train": 6, "val": 3}, seed=1)
    ma, mb = (json.loads((p / "manifest.json").read_text()) for p in (a, b))
    assert ma["image_ids"] == mb["image_ids"] and len(ma["image_ids"]["train"]) == 6
    sub = load_split(a, "train")
    assert len(sub) == 6 and all(sub.image_path(r).is_file() for r in sub.images)
    assert set(fingerprint(a)["sha256"]) == {"annotations/instances_train.json", "annotations/instances_val.json"}
    broken = inject_label_bug(sub, "shuffled_classes")
    c = make_subset(data_root, a, {"train": 6, "val": 3}, seed=1, replace={"train": broken})  # replaces a subset
    assert json.loads((c / "manifest.json").read_text())["replaced"] == ["train"]
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "keep.txt").write_text("x")
    with pytest.raises(DataError, match="refusing"):
        make_subset(data_root, tmp_path / "other", {"train": 2})


def test_pick_images_bounds(train: Dataset) -> None:
    assert pick_images(train, None) is train and pick_images(train, 100) is train
    with pytest.raises(DataError):
        pick_images(train, 0)


def _curves(train_loss: list[float], ap: list[float]) -> pd.DataFrame:
    n = len(train_loss)
    return pd.DataFrame({"epoch": range(1, n + 1), "train/box_loss": train_loss, "train/cls_loss": [1.0] * n,
                         "val/box_loss": [2.0] * n, "val/cls_loss": [1.0] * n, "coco/AP50": ap})


def test_curve_health_reads_falling_loss_and_ap() -> None:
    health = curve_health(_curves([3.0, 2.0, 1.0], [0.1, np.nan, 0.5]))
    assert health["train_loss_ratio"] == pytest.approx(0.5) and health["val_loss_ratio"] == pytest.approx(1.0)
    assert (health["ap_first"], health["ap_best"], health["ap_last"], health["finite"]) == (0.1, 0.5, 0.5, 1.0)
    assert curve_health(_curves([3.0, np.nan, np.nan], [0.1, 0.0, 0.0]))["finite"] == 0.0
    assert total_loss(_curves([3.0, 2.0], [0.1, 0.2])).tolist() == [4.0, 3.0]
    fig = compare_runs({"a": _curves([3.0, 2.0], [0.1, 0.2]), "b": _curves([3.0, 3e9], [0.1, 0.0])})
    assert len(fig.axes) == 3 and fig.axes[0].get_yscale() == "log" and fig.axes[2].get_yscale() == "linear"
    assert compare_runs({"a": _curves([3.0, 2.0], [0.1, 0.2])}, log_loss=False).axes[0].get_yscale() == "linear"


def test_augmentation_overrides_scale_the_defaults() -> None:
    assert augmentation_overrides(1.0) == AUGMENT_DEFAULTS
    assert set(augmentation_overrides(0.0).values()) == {0.0}
    assert augmentation_overrides(0.5)["mosaic"] == 0.5
    with pytest.raises(DataError):
        augmentation_overrides(2.0)


def test_one_factor_grid_lists_the_reference_first() -> None:
    points = one_factor_grid({"batch": {"4": {"batch": 4}}, "lr": {"1e-2": {"lr0": 0.01}}})
    assert [(p.knob, p.level) for p in points] == [(REFERENCE, REFERENCE), ("batch", "4"), ("lr", "1e-2")]
    assert points[0].changes == {} and points[2].changes == {"lr0": 0.01}
    with pytest.raises(DataError):
        one_factor_grid({REFERENCE: {}})


def _results() -> pd.DataFrame:
    rows = [(REFERENCE, REFERENCE, 0, 0.50), (REFERENCE, REFERENCE, 1, 0.52),
            ("lr", "high", 0, 0.10), ("lr", "high", 1, 0.14), ("lr", "low", 0, 0.45), ("lr", "low", 1, 0.47),
            ("batch", "4", 0, 0.51), ("batch", "4", 1, 0.49)]
    return pd.DataFrame(rows, columns=["knob", "level", "seed", "AP50"])


def test_knob_effects_and_conclusion_come_from_the_table(tmp_path: Path) -> None:
    effects = knob_effects(_results(), "AP50")
    assert effects["knob"].tolist() == ["lr", "batch"]
    top = effects.iloc[0]
    assert top["best_level"] == REFERENCE and top["worst_level"] == "high"
    assert top["effect"] == pytest.approx(0.51 - 0.12)
    assert top["seed_noise"] == pytest.approx((0.02 + 0.04 + 0.02 + 0.02) / 4)
    text = grid_conclusion(effects, "AP50")
    assert "'lr'" in text and "0.390" in text and "batch (0.010)" in text
    assert len(plot_grid(_results(), "AP50", tmp_path / "grid.png").axes) == 2
    with pytest.raises(DataError):
        knob_effects(_results().drop(columns="seed"), "AP50")
    flat = knob_effects(_results().assign(AP50=0.5), "AP50")
    assert flat["effect_over_noise"].tolist() == [0.0, 0.0]
    assert grid_conclusion(flat, "AP50").startswith("No knob moved AP50")
    step = _results().assign(AP50=lambda d: np.where(d["level"] == "high", 0.1, 0.5))
    assert math.isinf(knob_effects(step, "AP50").iloc[0]["effect_over_noise"])


def test_fine_tune_config_makes_every_batch_an_optimizer_step(tmp_path: Path) -> None:
    from labkit.detect.recipes import fine_tune_config

    base = DetectConfig(name="base", imgsz=128, epochs=8)
    cfg = fine_tune_config(base, tmp_path / "w.pt", name="ft", epochs=3, batch=4, lr0=2e-3, augment=0.0, mosaic=0.3)
    assert cfg.model == str(tmp_path / "w.pt") and cfg.epochs == 3 and cfg.imgsz == 128
    assert cfg.overrides["optimizer"] == "AdamW" and cfg.overrides["nbs"] == 4 and cfg.overrides["lr0"] == 2e-3
    assert cfg.overrides["warmup_bias_lr"] == 0.0 and cfg.overrides["hsv_s"] == 0.0 and cfg.overrides["mosaic"] == 0.3


@pytest.mark.slow
def test_overfitting_a_tiny_batch_moves_the_loss(data_root: Path, tmp_path: Path) -> None:
    """Without ``nbs=batch`` Ultralytics would accumulate 16 batches of 4 before a step: the
    training loss of a 4-image run would not move at all."""
    from labkit.detect.recipes import fine_tune_config, run_recipe

    tiny = pick_images(load_split(data_root, "train"), 4, seed=0)
    root = make_subset(data_root, tmp_path / "data", {"train": None, "val": None}, replace={"train": tiny, "val": tiny})
    base = DetectConfig(name="scratch", model="yolov8n.yaml", imgsz=64, device="cpu")
    cfg = fine_tune_config(base, "yolov8n.yaml", name="overfit", epochs=3, batch=4, lr0=2e-3, warmup_epochs=0.0,
                           augment=0.0, eval_every=0)
    run, curves = run_recipe(cfg, root, tmp_path / "run")
    assert run.epochs == 3 and not run.interrupted
    assert total_loss(curves).nunique() == 3 and curve_health(curves)["finite"] == 1.0


def test_release_memory_runs_anywhere() -> None:
    from labkit.detect.recipes import release_memory

    assert isinstance(release_memory(), bool)


def test_box_offsets_measure_a_systematic_shift() -> None:
    truth = _toy()
    shifted = inject_label_bug(truth, "xywh_as_cxcywh")
    preds = {1: shifted.images[0].detections[:2].with_fields(score=np.array([0.9, 0.9]))}
    off = box_offsets(truth, preds, min_iou=0.1)
    # object 2 (not clipped) moved by exactly half its size; object 1 was clipped at the border
    assert off["matched"] == 2 and off["dx"] < -0.3 and off["dy"] < -0.3 and off["h_ratio"] == pytest.approx(1.0)
    same = box_offsets(truth, {1: truth.images[0].detections.with_fields(score=np.ones(3))})
    assert (same["dx"], same["dy"], same["w_ratio"]) == (0.0, 0.0, 1.0) and same["matched"] == 2
    assert box_offsets(truth, {1: preds[1].with_fields(score=np.array([0.1, 0.1]))})["matched"] == 0
