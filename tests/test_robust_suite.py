"""The corruption suite: corruption errors on a hand-worked table, ground-truth oracles whose
scores are known, slices counted from the raw annotation JSON, the CLI and its bad inputs."""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path

import numpy as np
import pytest
from robust_helpers import CATEGORIES, untrained_detector
import torch

from labkit.cli import main
from labkit.configfile import config_path
from labkit.data.annotations import Detections
from labkit.data.images import load_label_mask
from labkit.models.dataset import load_split
from labkit.errors import DataError
from labkit.metrics.boundary import BoundaryScores
from labkit.robust.models import SuiteDetector, SuiteSegmenter
from labkit.robust.suite import OCCLUSION_BUCKETS, corruption_errors, run_suite



@pytest.fixture(scope="module")
def data_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from labkit.data.synth import generate_dataset

    root = tmp_path_factory.mktemp("robust") / "small"
    generate_dataset(root, seed=0, size="small")
    return root


class DaylightOracle(SuiteDetector):
    """Returns every non-crowd ground-truth box (score 1) of an image whose mean grey level is at
    least ``min_mean``; nothing on darker images."""

    def __init__(self, dataset, min_mean: float = 40.0):
        super().__init__("oracle", detector=None)
        self.truth = {r.id: r.detections for r in dataset.images}
        self.min_mean = min_mean

    def predict(self, images):
        out = {}
        for k, img in images.items():
            det = self.truth[k]
            keep = np.asarray(det.get("iscrowd", np.zeros(len(det))), dtype=int) == 0
            found = det[keep] if img.mean() >= self.min_mean else det[np.zeros(len(det), bool)]
            out[k] = Detections.from_xyxy(found.xyxy, found.class_id, score=np.ones(len(found)))
        return out


class MaskOracle(SuiteSegmenter):
    """Returns the ground-truth semantic mask (ignore pixels as background)."""

    def __init__(self, dataset, data_root: Path):
        from labkit.segment.semantic import SemanticConfig

        super().__init__("mask-oracle", model=None, config=SemanticConfig(num_classes=6))
        self.paths = {r.id: data_root / r.extra["semantic_mask"] for r in dataset.images}

    def predict(self, images):
        out = {}
        for k in images:
            mask = load_label_mask(self.paths[k]).copy()
            mask[mask == 255] = 0
            out[k] = mask
        return out


def _rows(table: dict) -> list[dict]:
    return [{"kind": k, "severity": s, "error": e} for (k, s), e in table.items()]


def test_corruption_errors_on_a_hand_worked_table() -> None:
    model = _rows({("clean", 0): 0.2, ("a", 1): 0.3, ("a", 2): 0.5, ("b", 1): 0.4, ("b", 2): 0.4})
    ref = _rows({("clean", 0): 0.1, ("a", 1): 0.4, ("a", 2): 0.6, ("b", 1): 0.2, ("b", 2): 0.2})
    ce = corruption_errors(model, ref)
    # CE_a = (0.3 + 0.5) / (0.4 + 0.6) = 0.8; CE_b = 0.8 / 0.4 = 2.0; mCE = 1.4
    assert ce["per_kind"]["a"]["CE"] == pytest.approx(0.8)
    assert ce["per_kind"]["b"]["CE"] == pytest.approx(2.0)
    assert ce["mCE"] == pytest.approx(1.4)
    # relative: a: (0.1 + 0.3) / (0.3 + 0.5) = 0.5; b: (0.2 + 0.2) / (0.1 + 0.1) = 2.0; mean 1.25
    assert ce["per_kind"]["a"]["relative_CE"] == pytest.approx(0.5)
    assert ce["per_kind"]["b"]["relative_CE"] == pytest.approx(2.0)
    assert ce["relative_mCE"] == pytest.approx(1.25)


def test_corruption_errors_skip_undefined_kinds_and_need_every_reference_cell() -> None:
    model = _rows({("clean", 0): 0.0, ("a", 1): 0.5, ("b", 1): None})
    ref = _rows({("clean", 0): 0.0, ("a", 1): 0.25, ("b", 1): 0.5})
    ce = corruption_errors(model, ref)
    assert ce["per_kind"]["b"]["CE"] is None and ce["mCE"] == pytest.approx(2.0)  # only kind a counts
    zero_ref = _rows({("clean", 0): 0.0, ("a", 1): 0.0, ("b", 1): 0.5})
    assert corruption_errors(model, zero_ref)["per_kind"]["a"]["CE"] is None  # 0 / 0 is not a ratio
    with pytest.raises(DataError, match="reference has no result for"):
        corruption_errors(model, _rows({("clean", 0): 0.0, ("a", 1): 0.2}))


def test_oracle_detector_scores_one_clean_and_zero_in_the_dark(data_root: Path) -> None:
    val = load_split(data_root, "val")
    result = run_suite(DaylightOracle(val), val, data_root, kinds=["low_light"], severities=[5], max_images=None)
    rows = {(r["kind"], r["severity"]): r for r in result["rows"]}
    assert rows[("clean", 0)]["AP"] == pytest.approx(1.0) and rows[("clean", 0)]["error"] == pytest.approx(0.0)
    # severity 5: 0.3 * (x / 255) ** 3 keeps every image far below a mean grey of 40
    assert rows[("low_light", 5)]["AP"] == pytest.approx(0.0) and rows[("low_light", 5)]["error"] == pytest.approx(1.0)
    ref = _rows({("clean", 0): 0.0, ("low_light", 5): 0.5})
    assert corruption_errors(result["rows"], ref)["mCE"] == pytest.approx(2.0)


def test_slices_count_what_the_annotation_file_says(data_root: Path) -> None:
    val = load_split(data_root, "val")
    result = run_suite(DaylightOracle(val), val, data_root, kinds=["jpeg"], severities=[3, 1], max_images=6, seed=3)
    chosen = set(result["images"])
    assert len(chosen) == 6
    assert {(s["kind"], s["severity"]) for s in result["slices"]} == {("clean", 0), ("jpeg", 3)}  # clean + worst
    raw = json.loads((data_root / "annotations" / "instances_val.json").read_text())
    dark = sum("low_light" in im["artifacts"] for im in raw["images"] if im["id"] in chosen)
    objects = [a for a in raw["annotations"] if a["image_id"] in chosen and not a["iscrowd"]]
    clean = {(s["slice"], s["bucket"]): s for s in result["slices"] if s["kind"] == "clean"}
    assert clean[("lighting", "low_light")]["count"] == dark
    assert clean[("lighting", "normal")]["count"] == 6 - dark
    for bucket, (low, high) in OCCLUSION_BUCKETS.items():
        n = sum(low <= a["visibility"] < high for a in objects)
        row = clean[("occlusion", bucket)]
        assert row["count"] == n
        assert row["AP"] == (pytest.approx(1.0) if n else None)  # the oracle finds every object of every bucket


def test_subset_is_seeded(data_root: Path) -> None:
    val = load_split(data_root, "val")
    a = run_suite(DaylightOracle(val), val, data_root, kinds=["jpeg"], severities=[1], max_images=4, seed=1,
                  with_slices=False)
    b = run_suite(DaylightOracle(val), val, data_root, kinds=["jpeg"], severities=[1], max_images=4, seed=1,
                  with_slices=False)
    assert a["images"] == b["images"] and a["rows"] == b["rows"]


def test_mask_oracle_scores_one(data_root: Path) -> None:
    val = load_split(data_root, "val")
    result = run_suite(MaskOracle(val, data_root), val, data_root, kinds=["fog"], severities=[1], max_images=None)
    clean = result["rows"][0]
    assert clean["mean_iou"] == pytest.approx(1.0)
    # boundary F straight from the metric over all images (the suite adds up per-image counts)
    oracle = MaskOracle(val, data_root)
    direct = BoundaryScores(6, ignore_index=255)
    for rec in val.images:
        direct.update(load_label_mask(oracle.paths[rec.id]), oracle.predict({rec.id: None})[rec.id])
    assert clean["mean_boundary_f"] == pytest.approx(float(np.nanmean(direct.boundary_f())))
    assert {s["slice"] for s in result["slices"]} == {"lighting", "motion"}


def test_empty_split_names_the_file(data_root: Path, tmp_path: Path) -> None:
    val = load_split(data_root, "val")
    with pytest.raises(DataError, match="instances_val.json.*no images"):
        run_suite(DaylightOracle(val), val.subset([]), data_root, kinds=["jpeg"], severities=[1])


# ---------------------------------------------------------------------------------------- CLI
@pytest.fixture(scope="module")
def detector_weights(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An untrained 5-class YOLOv8n checkpoint (seeded) with its categories.json."""
    return untrained_detector(tmp_path_factory.mktemp("yolo"), imgsz=64)


@pytest.fixture(scope="module")
def unet_weights(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An untrained U-Net checkpoint in the layout labkit.segment.semantic saves."""
    from labkit.segment.semantic import SemanticConfig, build_model

    torch.manual_seed(0)
    config = SemanticConfig(size=64, encoder_weights=None, device="cpu")
    path = tmp_path_factory.mktemp("unet") / "best.pt"
    torch.save({"model": build_model(config, pretrained=False).state_dict(), "config": asdict(config),
                "preprocessing": {}, "epoch": 0}, path)
    return path


def _suite(capsys: pytest.CaptureFixture, *argv: str) -> tuple[int, dict | None, str]:
    code = main(["robust", "suite", *argv, "--json"])
    out, err = capsys.readouterr()
    return code, (json.loads(out) if code == 0 else None), err


def test_cli_suite_detector_with_reference_json(data_root: Path, detector_weights: Path, tmp_path: Path,
                                                capsys: pytest.CaptureFixture) -> None:
    args = ["--model", str(detector_weights), "--data", str(data_root), "--kinds", "jpeg", "rain",
            "--severities", "1", "4", "--max-images", "3"]
    code, first, _ = _suite(capsys, *args, "--out", str(tmp_path / "a"))
    assert code == 0
    assert [(r["kind"], r["severity"]) for r in first["rows"]] == [("clean", 0), ("jpeg", 1), ("jpeg", 4),
                                                                    ("rain", 1), ("rain", 4)]
    assert first["task"] == "detect" and len(first["images"]) == 3
    for f in ("suite.json", "suite.md", "severity_curves.png"):
        assert (tmp_path / "a" / f).stat().st_size > 0
    code, second, _ = _suite(capsys, *args, "--out", str(tmp_path / "b"), "--reference", str(tmp_path / "a"))
    assert code == 0
    ce = second["corruption_errors"]
    assert ce["mCE"] == pytest.approx(1.0)  # the same model, images and seed as its reference
    assert "Corruption errors relative to" in (tmp_path / "b" / "suite.md").read_text()


def test_cli_suite_segmenter(data_root: Path, unet_weights: Path, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    code, result, _ = _suite(capsys, "--model", str(unet_weights), "--data", str(data_root), "--kinds", "snow",
                             "--severities", "2", "--max-images", "2", "--out", str(tmp_path))
    assert code == 0 and result["task"] == "segment" and result["primary"] == "mean_iou"
    assert all(0.0 <= r["mean_iou"] <= 1.0 and 0.0 <= r["mean_boundary_f"] <= 1.0 for r in result["rows"])


def test_cli_suite_unknown_model_lists_known_names(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    code, _, err = _suite(capsys, "--model", "resnet9000", "--out", str(tmp_path))
    assert code == 2 and "resnet9000" in err and "detect-base" in err and "segment-tiny" in err


def test_cli_suite_missing_and_empty_split(data_root: Path, detector_weights: Path, tmp_path: Path,
                                           capsys: pytest.CaptureFixture) -> None:
    code, _, err = _suite(capsys, "--model", str(detector_weights), "--data", str(data_root), "--split", "nosuch",
                          "--out", str(tmp_path))
    assert code == 2 and "instances_nosuch.json" in err
    empty = data_root / "annotations" / "instances_empty.json"
    empty.write_text(json.dumps({"images": [], "annotations": [], "categories": CATEGORIES}))
    try:
        code, _, err = _suite(capsys, "--model", str(detector_weights), "--data", str(data_root), "--split", "empty",
                              "--out", str(tmp_path))
    finally:
        empty.unlink()
    assert code == 1 and "instances_empty.json" in err and "no images" in err


def test_cli_suite_bad_severity(detector_weights: Path, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    code, _, err = _suite(capsys, "--model", str(detector_weights), "--severities", "0", "--out", str(tmp_path))
    assert code == 2 and "severity must be an integer from 1 to 5" in err


# ---------------------------------------------------------------------------------- thresholds
def test_assess_hand_checked() -> None:
    from labkit.robust.checks import SuiteConfig, assess

    result = {"primary": "AP", "rows": [{"kind": "clean", "severity": 0, "AP": 0.6},
                                        {"kind": "fog", "severity": 1, "AP": 0.5},
                                        {"kind": "fog", "severity": 5, "AP": 0.3},
                                        {"kind": "jpeg", "severity": 5, "AP": 0.4},
                                        {"kind": "rain", "severity": 5, "AP": None}]}
    config = SuiteConfig(kinds=("fog", "jpeg", "rain"), min_clean=0.5, max_drop={"default": 0.2, "fog": 0.3})
    out = assess(result, config)
    # fog 1: drop .1 <= .3 ok; fog 5: drop .3 <= .3 ok (boundary); jpeg 5: .2 <= .2 ok; rain: undefined -> fails
    assert out["checked"] == 5 and not out["passed"]
    assert [(f["kind"], f["severity"]) for f in out["failures"]] == [("rain", 5)]
    strict = assess(result, config.replace(max_drop={"default": 0.19}, min_clean=0.7))
    assert [(f["kind"], f["severity"]) for f in strict["failures"]] == [("clean", 0), ("fog", 5), ("jpeg", 5), ("rain", 5)]


def test_suite_config_file_and_bad_values(tmp_path: Path) -> None:
    from labkit.robust.checks import SuiteConfig

    repo_config = SuiteConfig.load(config_path("robust_suite.yaml"))
    assert repo_config == SuiteConfig()  # the shipped file states the defaults
    bad = tmp_path / "bad.yaml"
    bad.write_text("kinds: [fog, haze]\n")
    with pytest.raises(DataError, match=r"bad.yaml.*unknown corruption kind 'haze'"):
        SuiteConfig.load(bad)
    bad.write_text("max_drop: {fog: 1.5}\n")
    with pytest.raises(DataError, match=r"bad.yaml.*max_drop\['fog'\]"):
        SuiteConfig.load(bad)
    bad.write_text("severites: [1]\n")
    with pytest.raises(DataError, match=r"bad.yaml.*unknown config keys \['severites'\]"):
        SuiteConfig.load(bad)


def test_cli_suite_thresholds_fail_with_exit_1(data_root: Path, detector_weights: Path, tmp_path: Path,
                                               capsys: pytest.CaptureFixture) -> None:
    config = tmp_path / "suite.yaml"
    config.write_text("kinds: [jpeg]\nseverities: [2]\nmax_images: 2\nslices: false\nmin_clean: 0.9\n")
    code = main(["robust", "suite", "--model", str(detector_weights), "--data", str(data_root), "--config", str(config),
                 "--out", str(tmp_path / "o"), "--json"])
    result = json.loads(capsys.readouterr().out)
    assert code == 1 and not result["checks"]["passed"]  # an untrained detector is far from AP 0.9
    assert result["config"]["min_clean"] == 0.9 and result["slices"] == []


def test_report_tables_show_the_rows_given(tmp_path: Path) -> None:
    from labkit.robust.report import render_markdown, write_report

    result = {"model": "m", "task": "detect", "primary": "AP", "metrics": ["AP"], "split_source": "val.json",
              "images": [1, 2], "seed": 0, "kinds": ["fog"], "severities": [1, 2],
              "rows": [{"kind": "clean", "severity": 0, "AP": 0.5, "error": 0.5},
                       {"kind": "fog", "severity": 1, "AP": 0.4, "error": 0.6},
                       {"kind": "fog", "severity": 2, "AP": None, "error": None}],
              "slices": [{"kind": "clean", "severity": 0, "slice": "lighting", "bucket": "normal", "unit": "images",
                          "count": 2, "AP": 0.5},
                         {"kind": "fog", "severity": 2, "slice": "lighting", "bucket": "normal", "unit": "images",
                          "count": 2, "AP": 0.25}],
              "reference": "ref.json",
              "corruption_errors": {"per_kind": {"fog": {"CE": 1.2, "relative_CE": None}}, "mCE": 1.2,
                                    "relative_mCE": None}}
    text = render_markdown(result)
    assert "| fog | 0.500 | 0.400 | – |" in text
    assert "| **mean** | **1.200** | **–** |" in text
    assert "| lighting | normal | 2 | 0.500 | 0.250 |" in text
    files = write_report(result, tmp_path)
    assert json.loads(Path(files["json"]).read_text())["rows"][1]["AP"] == 0.4
    assert Path(files["figure"]).read_bytes()[:4] == b"\x89PNG"
