"""The Chapter 1 graded lab (``autograder/source/ch01_dataset_card``) grades what it claims to, through the grader.

* Two different correct solutions (another split algorithm) get every point; the blank copy none.
* Plausible wrong answers lose exactly the items they break: a validator that wraps the blocked
  ``labkit.data.validate`` (it cannot import it), an image-level (leaking) split, an unseeded
  split, a card whose split unit is the image, a validator that misses duplicate annotation ids.
"""

from __future__ import annotations

import numpy as np
import pytest

from lab_notebooks import (  # noqa: F401 (source: the lab notebook fixture)
    assert_each_variant_earns, check_metadata, source, with_answers)
from test_grading import require_bwrap

LAB = "ch01_dataset_card"
CHEATING_VALIDATOR = '''
from labkit.data.validate import validate_coco


def validate(coco):
    return [(f.code, f.record) for f in validate_coco(coco, check_files=False).findings if f.severity == "error"]
'''
LEAKING_SPLIT = '''
def split_by_scene(images, fractions=(0.7, 0.15, 0.15), seed=0):
    names = [img["file_name"] for img in images]
    order = [names[k] for k in np.random.default_rng(seed).permutation(len(names))]
    a, b = round(fractions[0] * len(names)), round((fractions[0] + fractions[1]) * len(names))
    return {"train": order[:a], "val": order[a:b], "test": order[b:]}
'''
ALT_SPLIT = '''
import random


def split_by_scene(images, fractions=(0.7, 0.15, 0.15), seed=0):
    """Largest scenes first (ties in seeded order), each to the split furthest below its target size."""
    scenes = {}
    for img in images:
        scenes.setdefault(str(img["scene_id"]), []).append(img["file_name"])
    keys = sorted(scenes)
    random.Random(seed).shuffle(keys)
    keys.sort(key=lambda k: -len(scenes[k]))
    names = ("train", "val", "test")
    out = {name: [] for name in names}
    for key in keys:
        deficit = [fractions[i] * len(images) - len(out[name]) for i, name in enumerate(names)]
        out[names[deficit.index(max(deficit))]].extend(scenes[key])
    return out
'''
WRONG = {
    "uses_blocked_validator": ({"validator_answer": CHEATING_VALIDATOR},
                               {"validator_clean", "validator_schema", "validator_references", "validator_geometry",
                                "validator_no_false_alarms"}),
    "leaking_split": ({"split_answer": LEAKING_SPLIT}, {"split_no_leak"}),
    "unseeded_split": ({"split_answer": [("np.random.default_rng(seed)", "np.random.default_rng()")]},
                       {"split_deterministic"}),
    "image_level_card": ({"card_answer": [(
        "Unit: scene (`scene_id`). Whole scenes go to train, val or test, about 70/15/15 % of the images.\n"
        "The shots of a burst are near-duplicates, so an image-level random split would put copies of one\n"
        "scene on both sides and inflate the test score (leakage).",
        "Unit: image. A random 70/15/15 split of the images.")]}, {"card_content"}),
    "no_duplicate_ann_ids": ({"validator_answer": [
        ('    out += [("duplicate-ann-id", i) for i in _duplicates([a.get("id") for a in coco["annotations"]])]\n', "")]},
        {"validator_schema", "validator_no_false_alarms"}),
}


def test_nbgrader_metadata_is_valid(source):
    check_metadata(source, LAB, 13)


def test_grading_earns_exactly_what_each_variant_deserves(source, tmp_path, monkeypatch):
    require_bwrap()
    assert_each_variant_earns(LAB, source, {"alternative": with_answers(source, {"split_answer": ALT_SPLIT})}, WRONG, tmp_path, monkeypatch)


def test_visible_split_check_catches_scene_leakage(source):
    """Part C's visible check (feedback only) on a hand-made pool: 6 scenes of 4 shots each."""
    stills = [{"file_name": f"s{scene}_{shot}.jpg", "scene_id": scene} for scene in range(6) for shot in range(4)]
    cells = {c.metadata.get("nbgrader", {}).get("grade_id"): c.source for c in source.cells}
    for answer, leaks in ((cells["split_answer"], False), (LEAKING_SPLIT, True)):
        namespace = {"np": np, "STILLS": stills}
        exec(answer, namespace)
        if leaks:
            with pytest.raises(AssertionError, match="scene leakage"):
                exec(cells["split_visible"], namespace)
        else:
            exec(cells["split_visible"], namespace)
