"""The Chapter 1 graded lab (``autograder/source/ch01_dataset_card``) grades what it claims to, through the grader.

* Two different correct solutions (another split algorithm) get every point; the blank copy none.
* Plausible wrong answers lose exactly the items they break: a validator that wraps the blocked
  ``labkit.data.validate`` (it cannot import it), an image-level (leaking) split, an unseeded
  split, a card whose split unit is the image, a validator that misses duplicate annotation ids.
"""

from __future__ import annotations

import pytest

from lab_notebooks import check_metadata, grade_variants, item_points, load, lost, student_view, with_answers
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
    scenes = {}
    for img in images:
        scenes.setdefault(str(img["scene_id"]), []).append(img["file_name"])
    keys = sorted(scenes)
    random.Random(seed).shuffle(keys)
    out, total, done = {"train": [], "val": [], "test": []}, len(images), 0
    bounds = (fractions[0] * total, (fractions[0] + fractions[1]) * total)
    for key in keys:
        name = "train" if done < bounds[0] else "val" if done < bounds[1] else "test"
        out[name].extend(scenes[key])
        done += len(scenes[key])
    for name in ("test", "val"):  # every split gets a scene
        if not out[name]:
            out[name] = scenes[keys[-1 if name == "test" else -2]]
            out["train"] = [n for n in out["train"] if n not in out[name]]
    return out
'''
WRONG = {
    "uses_blocked_validator": ({"validator_answer": CHEATING_VALIDATOR},
                               {"validator_clean", "validator_schema", "validator_references", "validator_geometry",
                                "validator_no_false_alarms"}),
    "leaking_split": ({"split_answer": LEAKING_SPLIT}, {"split_no_leak"}),
    "unseeded_split": ({"split_answer": [("np.random.default_rng(seed)", "np.random.default_rng()")]},
                       {"split_deterministic"}),
    "image_level_card": ({"card_answer": [("Unit: scene (`scene_id`).", "Unit: image.")]}, {"card_content"}),
    "no_duplicate_ann_ids": ({"validator_answer": [
        ('    out += [("duplicate-ann-id", i) for i in _duplicates([a.get("id") for a in coco["annotations"]])]\n', "")]},
        {"validator_schema", "validator_no_false_alarms"}),
}


@pytest.fixture(scope="module")
def source():
    return load(LAB)


def test_nbgrader_metadata_is_valid(source):
    check_metadata(source, LAB, 13)


def test_grading_earns_exactly_what_each_variant_deserves(source, tmp_path, monkeypatch):
    require_bwrap()
    variants = {"instructor": source, "alternative": with_answers(source, {"split_answer": ALT_SPLIT}),
                "blank": student_view(source),
                **{name: with_answers(source, edits) for name, (edits, _) in WRONG.items()}}
    scores, points = grade_variants(LAB, variants, tmp_path, monkeypatch), item_points(LAB)
    assert not lost(scores["instructor"], points) and not lost(scores["alternative"], points), scores
    assert lost(scores["blank"], points) == set(points)
    for name, (_, expected) in WRONG.items():
        assert lost(scores[name], points) == expected, (name, scores[name])
