"""``labkit data generate|validate|leakage|card`` through :func:`labkit.cli.main` (exit codes, --json).

The leakage command's own fixture tests live in tests/test_splits.py.
"""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from labkit.cli import main
from labkit.data.annotations import Dataset, Detections, ImageRecord
from labkit.data.card import DatasetCard, MetricSpec, save_card
from labkit.data.coco import save_coco


def _json(capsys) -> dict:
    return json.loads(capsys.readouterr().out)


@pytest.mark.parametrize("sub", ["generate", "validate", "leakage", "card"])
def test_every_subcommand_has_help_and_json(sub, capsys):
    with pytest.raises(SystemExit) as exc:
        main(["data", sub, "--help"])
    assert exc.value.code == 0 and "--json" in capsys.readouterr().out


@pytest.mark.parametrize("argv", [["validate", "nope.json"], ["leakage", "nope"], ["card", "nope.md"]])
def test_missing_path_is_a_usage_error(argv, tmp_path, capsys):
    assert main(["data", argv[0], str(tmp_path / argv[1])]) == 2
    assert "does not exist" in capsys.readouterr().err


# --------------------------------------------------------------------------- validate
@pytest.fixture()
def coco_file(tmp_path) -> Path:
    (tmp_path / "images").mkdir()
    cv2.imwrite(str(tmp_path / "images" / "a.png"), np.zeros((40, 50, 3), np.uint8))
    rec = ImageRecord(1, "a.png", 50, 40, Detections([[5, 5, 10, 10]], [1], data={"id": np.array([1])}))
    return save_coco(Dataset([{"id": 1, "name": "disc"}], [rec]), tmp_path / "annotations" / "instances.json")


def test_validate_clean_and_broken_coco(coco_file, tmp_path, capsys):
    assert main(["data", "validate", str(coco_file), "--image-root", str(tmp_path / "images"), "--json"]) == 0
    assert _json(capsys)["ok"] is True
    coco = json.loads(coco_file.read_text())
    coco["annotations"][0]["category_id"] = 9
    broken = tmp_path / "broken.json"
    broken.write_text(json.dumps(coco))
    assert main(["data", "validate", str(broken), "--no-files", "--json"]) == 1
    assert _json(capsys)["ok"] is False
    assert main(["data", "validate", str(broken), "--no-files"]) == 1
    assert "FAILED" in capsys.readouterr().out


# --------------------------------------------------------------------------- card
def _card_dict() -> dict:
    card = DatasetCard(
        "toy", "1.0", sources=["hand-made"], capture_devices=["phone camera"], label_definitions={"disc": "a circle"},
        edge_case_policy=["truncated objects are boxed to the border"], annotation_types=["boxes"],
        split_unit="scene", split_strategy="group split 70/15/15", known_artifacts=["JPEG quality 90"],
        metrics=[MetricSpec("mAP", "COCO, IoU 0.50:0.05:0.95")], licence="CC0-1.0", contact="me")
    return card.to_dict()


def test_card_render_and_check(tmp_path, capsys):
    spec = save_card(_card_dict(), tmp_path / "card.json")
    out_md = tmp_path / "ds" / "dataset_card.md"
    assert main(["data", "card", str(spec), "--render", "--out", str(out_md)]) == 0
    assert capsys.readouterr().out.startswith("# Dataset card: toy")
    assert main(["data", "card", str(out_md.parent), "--json"]) == 0
    assert _json(capsys) == {"ok": True, "findings": []}
    assert main(["data", "card", str(out_md), "--render"]) == 2  # --render takes a JSON card
    out_md.write_text(out_md.read_text().replace("## Known artifacts", "## Other notes"))
    assert main(["data", "card", str(out_md), "--json"]) == 1
    assert [f["code"] for f in _json(capsys)["findings"]] == ["missing-section"]
    assert main(["data", "card", str(tmp_path)]) == 2  # a folder without dataset_card.md


def test_card_warnings_alone_pass(tmp_path, capsys):
    card = _card_dict() | {"contact": ""}
    path = save_card(card, tmp_path / "dataset_card.md")
    assert main(["data", "card", str(path)]) == 0
    assert "[warning] missing-metadata (contact)" in capsys.readouterr().out


# --------------------------------------------------------------------------- generate (+ the whole chain)
def test_generate_then_validate_leakage_and_card(tmp_path, capsys):
    out = tmp_path / "gen"
    assert main(["data", "generate", "--out", str(out), "--size", "small", "--seed", "3", "--json"]) == 0
    manifest = _json(capsys)
    assert manifest["seed"] == 3 and (out / "manifest.json").is_file()
    assert main(["data", "validate", str(out), "--json"]) == 0, capsys.readouterr().out
    assert _json(capsys)["ok"] is True
    assert main(["data", "leakage", str(out), "--json"]) == 0, capsys.readouterr().out
    report = _json(capsys)
    assert report["pairs"] == [] and report["group_overlaps"] == []
    assert main(["data", "card", str(out), "--json"]) == 0, capsys.readouterr().out
    assert main(["data", "generate", "--out", str(out), "--seed", "-1"]) == 2


def test_generate_passes_its_options(monkeypatch, tmp_path, capsys):
    """The handler forwards --out/--seed/--size unchanged (checked without the real generator)."""
    import sys
    import types

    calls = []
    fake = types.ModuleType("labkit.data.synth")
    fake.generate_dataset = lambda out, seed, size: calls.append((out, seed, size)) or {"counts": {"images": 1}}
    monkeypatch.setitem(sys.modules, "labkit.data.synth", fake)
    assert main(["data", "generate", "--out", str(tmp_path), "--seed", "5", "--size", "small"]) == 0
    assert calls == [(tmp_path, 5, "small")] and "'images': 1" in capsys.readouterr().out
    with pytest.raises(SystemExit) as exc:
        main(["data", "generate", "--out", str(tmp_path), "--size", "huge"])
    assert exc.value.code == 2



# --------------------------------------------------------------------------- help and usage errors
def _data_subcommands():
    import argparse

    from labkit.cli import build_parser

    top = next(a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction))
    data = next(a for a in top.choices["data"]._actions if isinstance(a, argparse._SubParsersAction))
    return data


def test_every_data_subcommand_and_option_has_help():
    """`labkit data --help` lists every subcommand with a line of help, and every option says what it does."""
    data = _data_subcommands()
    listed = {a.dest: a.help for a in data._choices_actions}
    assert set(listed) == {"generate", "validate", "leakage", "card"} and all(listed.values()), listed
    for name, parser in data.choices.items():
        undocumented = [a.option_strings or a.dest for a in parser._actions if not a.help]
        assert undocumented == [], (name, undocumented)
    seed = next(a for a in data.choices["generate"]._actions if a.dest == "seed")
    assert seed.default == 0 and "(default 0)" in seed.help  # the help states the real default


def test_generate_defaults_and_required_out(monkeypatch, tmp_path, capsys):
    import sys
    import types

    calls = []
    fake = types.ModuleType("labkit.data.synth")
    fake.generate_dataset = lambda out, seed, size: calls.append((out, seed, size)) or {"counts": {}}
    monkeypatch.setitem(sys.modules, "labkit.data.synth", fake)
    assert main(["data", "generate", "--out", str(tmp_path)]) == 0 and calls == [(tmp_path, 0, "default")]
    with pytest.raises(SystemExit) as exc:
        main(["data", "generate"])
    assert exc.value.code == 2 and "--out" in capsys.readouterr().err
    assert main(["data", "generate", "--out", str(tmp_path), "--seed", "-1"]) == 2
    assert capsys.readouterr().err == "labkit: error: --seed must be >= 0, got -1\n" and len(calls) == 1


@pytest.mark.parametrize("argv, what", [(["validate", "nope.json"], "dataset path"), (["leakage", "nope"], "dataset folder"),
                                        (["card", "nope.md"], "dataset card")])
def test_missing_path_error_says_what_was_expected(argv, what, tmp_path, capsys):
    assert main(["data", argv[0], str(tmp_path / argv[1])]) == 2
    assert capsys.readouterr().err == f"labkit: error: {what} {tmp_path / argv[1]} does not exist\n"


def test_validate_image_root_is_for_coco_files_only(tmp_path, capsys):
    assert main(["data", "validate", str(tmp_path), "--image-root", str(tmp_path)]) == 2
    assert capsys.readouterr().err == ("labkit: error: --image-root applies to a COCO file; a dataset folder has its "
                                       "own images/\n")


def test_leakage_help_names_the_real_default_constant():
    """--max-distance's help points at the constant that holds its default: that name must exist."""
    import re

    from labkit.data import splits

    help_text = next(a for a in _data_subcommands().choices["leakage"]._actions if a.dest == "max_distance").help
    name = re.search(r"default: labkit\.data\.splits\.(\w+)", help_text).group(1)
    assert isinstance(getattr(splits, name), int)
