"""Grading spec of the Chapter 1 lab (``source/ch01_dataset_card``): dataset card, validator, leak-free split.

Every check runs in the grader's process. The grader generates the lab's dataset itself (same
generator and seed as the notebook), plants the defects with its own seeds (``_PLANT_SEEDS``, not
in the student copy) into the train split, sends the broken COCO dict to the student's
``validate`` and compares the findings with the planted list, which never leaves this process.
``labkit.data.validate`` is blocked in the student's kernel (own-work rule of part B).
"""

from __future__ import annotations

import atexit
import json
import shutil
import tempfile
from functools import lru_cache
from pathlib import Path

from labkit.grading.labspec import Item, LabSpec, StudentRaised

_PLANT_SEEDS = {"schema and ids": 4411, "references and types": 5209, "geometry": 6151, "all": 7793}
_SPLIT_SEEDS = (17, 29)
DEFECT_GROUPS = {
    "schema and ids": ("image-missing-width", "image-zero-height", "duplicate-image-id", "category-missing-name",
                       "duplicate-category-id", "ann-missing-bbox", "duplicate-ann-id"),
    "references and types": ("unknown-image-id", "unknown-category-id", "category-id-as-string", "iscrowd-invalid"),
    "geometry": ("bbox-nan", "bbox-negative-width", "bbox-out-of-bounds", "rle-wrong-size", "segm-empty",
                 "mask-box-mismatch"),
}
ALL_KINDS = tuple(kind for group in DEFECT_GROUPS.values() for kind in group)


@lru_cache(maxsize=1)
def _data() -> dict:
    """The lab's dataset, generated once per grading run in a folder of the grader's (removed at exit)."""
    from labkit.data.synth import generate_dataset

    scratch = Path(tempfile.mkdtemp(prefix="ch01-grader-"))
    atexit.register(shutil.rmtree, scratch, ignore_errors=True)
    root = scratch / "data"
    generate_dataset(root, seed=0, size="small")
    coco = {split: json.loads((root / "annotations" / f"instances_{split}.json").read_text())
            for split in ("train", "val", "test")}
    return {"root": root, "coco": coco, "stills": [img for split in ("train", "val", "test")
                                                   for img in coco[split]["images"]]}


def _card(probe) -> str:
    card = probe.value("CARD")
    assert isinstance(card, str) and card.strip(), "CARD must be a non-empty string"
    return card


def check_card_complete(probe) -> None:
    from labkit.data.card import check_card

    findings = check_card(_card(probe))
    errors = [f for f in findings if f.severity == "error"]
    assert not errors, f"the card has {len(errors)} missing, empty or unfinished section(s), e.g. {errors[0].code}"


def check_card_content(probe) -> None:
    from labkit.data.card import check_card, parse_card

    card, coco = _card(probe), _data()["coco"]
    assert not check_card(card), "name, version, licence and contact are required too"
    parsed = parse_card(card)
    text = {k: v.lower() for k, v in parsed["sections"].items()}
    labels = text.get("Label definitions and edge-case policy", "")
    for cat in coco["train"]["categories"]:
        assert cat["name"].lower() in labels, f"no definition of '{cat['name']}'"
    assert "occlu" in labels, "no policy for occluded objects"
    assert "crowd" in labels, "no policy for crowd regions"
    for word in ("box", "mask", "rle", "visibility"):
        assert word in text.get("Annotation types", ""), f"annotation types do not mention '{word}'"
    split = text.get("Split strategy", "")
    assert "scene" in split, "the split unit (scene) is not stated"
    assert any(w in split for w in ("leak", "duplicate")), "the split strategy does not say why"
    kinds = {k for s in coco.values() for img in s["images"] for k in img.get("artifacts") or {}}
    named = {k for k in kinds if k.lower() in text.get("Known artifacts", "")}
    assert len(named) >= 3, f"name at least three of the artifact types; found {len(named)}"
    metrics = parsed["metrics"]
    maps = [m for m in metrics if "ap" in m["name"].lower()]
    assert maps and any("0.5" in m["settings"] and "0.95" in m["settings"] for m in maps), "COCO mAP needs 0.50:0.95"
    assert any("maxdet" in m["settings"].lower().replace(" ", "") for m in maps), "COCO mAP needs maxDets"
    assert any(w in m["name"].lower() for m in metrics for w in ("iou", "dice", "boundary", "segm", "pq")), \
        "no segmentation metric"


def _findings(value) -> set[tuple]:
    if isinstance(value, StudentRaised):
        raise value
    assert isinstance(value, (list, tuple)), "validate must return a list of (code, record_id) pairs"
    out = set()
    for pair in value:
        assert isinstance(pair, (list, tuple)) and len(pair) == 2, "validate must return (code, record_id) pairs"
        code, record = pair
        assert isinstance(code, str), "each finding's code must be a string"
        out.add((code, record if isinstance(record, (int, str, type(None))) else repr(record)))
    return out


def _planted(group: str):
    from labkit.data.corrupt import plant_defects

    kinds = ALL_KINDS if group == "all" else DEFECT_GROUPS[group]
    return plant_defects(_data()["coco"]["train"], seed=_PLANT_SEEDS[group], kinds=kinds)


def _check_group(probe, group: str) -> tuple[set, list]:
    broken, planted = _planted(group)
    found = _findings(probe.call("validate", broken))
    missed = [p for p in planted if (p["code"], p["record"]) not in found]
    assert not missed, f"missed {len(missed)} planted defect(s) of {len(planted)} on hidden data, e.g. {missed[0]['kind']}"
    return found, planted


def check_validator_clean(probe) -> None:
    coco = _data()["coco"]
    for split in ("train", "test"):
        found = _findings(probe.call("validate", coco[split]))
        assert not found, f"a clean split ({split}) must give no findings; got {len(found)}"


def check_validator_schema(probe) -> None:
    _check_group(probe, "schema and ids")


def check_validator_references(probe) -> None:
    _check_group(probe, "references and types")


def check_validator_geometry(probe) -> None:
    _check_group(probe, "geometry")


def check_validator_no_false_alarms(probe) -> None:
    found, planted = _check_group(probe, "all")
    bad_records = {p["record"] for p in planted}
    false = [f for f in found if f[1] not in bad_records]
    assert not false, f"{len(false)} false alarm(s) on healthy records of a broken file, e.g. {false[0][0]}"


def _splits(probe) -> list[dict]:
    stills = _data()["stills"]
    calls = [((stills,), {"seed": s}) for s in (*_SPLIT_SEEDS, _SPLIT_SEEDS[0])]
    out = []
    for result in probe.map("split_by_scene", calls):
        if isinstance(result, StudentRaised):
            raise result
        assert isinstance(result, dict) and set(result) == {"train", "val", "test"}, \
            "split_by_scene returns a dict with train, val and test"
        assert all(isinstance(v, list) and all(isinstance(n, str) for n in v) for v in result.values()), \
            "each split is a list of file names"
        out.append(result)
    return out


def check_split_partition(probe) -> None:
    names = sorted(img["file_name"] for img in _data()["stills"])
    for split in _splits(probe)[:2]:
        assert sorted(n for v in split.values() for n in v) == names, "every image exactly once"
        assert all(split.values()), "every split gets at least one image"
        assert abs(len(split["train"]) / len(names) - 0.7) <= 0.15, "train should hold about 70 % of the images"


def check_split_no_leak(probe) -> None:
    from labkit.data.splits import near_duplicates

    data = _data()
    by_name = {img["file_name"]: img for img in data["stills"]}
    for split in _splits(probe)[:2]:
        assert set(n for v in split.values() for n in v) <= set(by_name), "unknown file names in the split"
        scenes = {k: {by_name[n]["scene_id"] for n in v} for k, v in split.items()}
        shared = (scenes["train"] & scenes["val"]) | (scenes["train"] & scenes["test"]) | (scenes["val"] & scenes["test"])
        assert not shared, f"{len(shared)} scene(s) in two splits"
        pairs = near_duplicates({k: [data["root"] / "images" / n for n in v] for k, v in split.items()})
        assert not pairs, f"{len(pairs)} near-duplicate pair(s) across splits"


def check_split_deterministic(probe) -> None:
    first, _, again = _splits(probe)
    assert first == again, "the same seed must give the same split"


LAB = LabSpec(
    items=[Item("card_complete", 1, check_card_complete), Item("card_content", 2, check_card_content),
           Item("validator_clean", 1, check_validator_clean), Item("validator_schema", 2, check_validator_schema),
           Item("validator_references", 1, check_validator_references),
           Item("validator_geometry", 2, check_validator_geometry),
           Item("validator_no_false_alarms", 1, check_validator_no_false_alarms),
           Item("split_partition", 1, check_split_partition), Item("split_no_leak", 1, check_split_no_leak),
           Item("split_deterministic", 1, check_split_deterministic)],
    blocked_modules=("labkit.data.validate",),
    skip_cells=("card_complete", "validator_visible", "split_visible"),
    prepare=_data,
)
