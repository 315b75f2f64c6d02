"""The Chapter 3 graded lab (``autograder/source/ch03_qa_export``) grades what it claims to, through the grader.

* The visible Part D checks (feedback only) name a shifted or flipped mask and an interpolated
  mask or image, and pass the instructor's answers.
* Two different correct solutions get every point; the blank student copy gets none.
* Plausible wrong answers lose exactly the items they break: an overlay shifted by one pixel, a
  mask written upside down or shifted, labels or an image scaled with bilinear interpolation, a "fraction" that is a count, 4-connected instance counts, a mask
  saved as RGB, and one wrong quiz answer.
"""

from __future__ import annotations

import pytest

from lab_notebooks import check_metadata, grade_variants, item_points, load, lost, student_view, with_answers
from test_grading import require_bwrap

LAB = "ch03_qa_export"
ALT = {
    "overlay_answer": [("""    edge = np.zeros(labels.shape, dtype=bool)
    vertical = labels[1:, :] != labels[:-1, :]
    horizontal = labels[:, 1:] != labels[:, :-1]
    edge[1:, :] |= vertical
    edge[:-1, :] |= vertical
    edge[:, 1:] |= horizontal
    edge[:, :-1] |= horizontal
    return edge & (labels > 0)""", """    padded = np.pad(labels, 1, mode="edge")
    h, w = labels.shape
    neighbours = [padded[:-2, 1:-1], padded[2:, 1:-1], padded[1:-1, :-2], padded[1:-1, 2:]]
    return (labels > 0) & np.any([n != labels for n in neighbours], axis=0)""")],
    "summary_answer": [("counts = np.bincount(labels.ravel(), minlength=len(CLASS_NAMES))",
                        "counts = np.array([int((labels == c).sum()) for c in range(len(CLASS_NAMES))])")],
}
BILINEAR_LABELS = """    labels, confidence = predict(record)
    half = cv2.resize(labels, (record.width // 2, record.height // 2), interpolation=cv2.INTER_NEAREST)
    labels = cv2.resize(half, (record.width, record.height), interpolation=cv2.INTER_LINEAR)
"""
BILINEAR_IMAGE = ("cv2.resize(cv2.resize(image, (record.width // 2, record.height // 2)), "
                  "(record.width, record.height), interpolation=cv2.INTER_LINEAR)")
WRONG = {
    "overlay_shifted": ({"overlay_answer": [("    return out\n", "    return np.roll(out, 1, axis=1)\n")]},
                        {"overlay", "export_overlays"}),
    "mask_flipped": ({"export_answer": [("save_label_png(labels, out_dir", "save_label_png(labels[::-1], out_dir")]},
                     {"export_masks"}),
    "fraction_is_count": ({"summary_answer": [("float((confidence < LOW_CONFIDENCE).mean())",
                                               "float((confidence < LOW_CONFIDENCE).sum())")]},
                          {"summary", "export_summaries"}),
    # the grader's random arrays have corner-only contacts; the exported val images it picks have none
    "four_connected": ({"summary_answer": [("connectivity=8", "connectivity=4")]}, {"summary"}),
    "rgb_mask": ({"png_answer": [("Image.fromarray(labels.astype(np.uint8)).save(path)",
                                  "Image.fromarray(labels.astype(np.uint8)).convert('RGB').save(path)")]},
                 {"png", "export_masks"}),
    "mask_shifted": ({"export_answer": [("save_label_png(labels, out_dir", "save_label_png(np.roll(labels, 1, axis=1), out_dir")]},
                     {"export_masks"}),
    # the model "ran at half resolution" and its labels were scaled back up bilinearly: every file is off
    "mask_interpolated": ({"export_answer": [("    labels, confidence = predict(record)\n", BILINEAR_LABELS)]},
                          {"export_masks", "export_overlays", "export_summaries"}),
    "image_interpolated": ({"export_answer": [("make_overlay(image, labels)", f"make_overlay({BILINEAR_IMAGE}, labels)")]},
                           {"export_overlays"}),
    "quiz_q2": ({"q2_answer": [('answer_q2 = "b"', 'answer_q2 = "c"')]}, {"q2"}),
}


@pytest.fixture(scope="module")
def source():
    return load(LAB)


def test_nbgrader_metadata_is_valid(source):
    check_metadata(source, LAB, 15)


def test_student_copy_reveals_nothing(source):
    text = "\n".join(c.source for c in student_view(source).cells)
    for secret in ("BEGIN SOLUTION", "HIDDEN TESTS", "_reference_overlay", "answer_q1 ="):
        assert secret not in text, secret
    assert "raise NotImplementedError()" in text and "record_answer" in text


def test_grading_earns_exactly_what_each_variant_deserves(source, tmp_path, monkeypatch):
    require_bwrap()
    variants = {"instructor": source, "alternative": with_answers(source, ALT), "blank": student_view(source),
                **{name: with_answers(source, edits) for name, (edits, _) in WRONG.items()}}
    scores, points = grade_variants(LAB, variants, tmp_path, monkeypatch), item_points(LAB)
    assert not lost(scores["instructor"], points) and not lost(scores["alternative"], points), scores
    assert lost(scores["blank"], points) == set(points)
    for name, (_, expected) in WRONG.items():
        assert lost(scores[name], points) == expected, (name, scores[name])


def run_visible_export(nb, tmp_path, monkeypatch) -> dict[str, Exception | None]:
    """Run a variant's setup, answers and export on two images in this process, then each visible
    Part D check; what each check raised (None: it passed)."""
    monkeypatch.setenv("LABKIT_BUDGET", "ci")
    cells = {c.metadata.get("nbgrader", {}).get("grade_id"): c.source for c in nb.cells}
    namespace: dict = {}
    for cell_id in ("setup_data", "png_answer", "overlay_answer", "summary_answer", "export_answer"):
        exec(cells[cell_id], namespace)
    namespace["RECORDS"], namespace["EXPORT_DIR"] = namespace["RECORDS"][:2], tmp_path / "export"
    exec("SUMMARIES = [export_image(r, EXPORT_DIR) for r in RECORDS]", namespace)
    raised = {}
    for cell_id in ("export_masks", "export_overlays", "export_summaries"):
        try:
            exec(cells[cell_id], namespace)
        except AssertionError as exc:
            raised[cell_id] = exc
        else:
            raised[cell_id] = None
    return raised


@pytest.mark.parametrize("variant, failing, phrase", [
    ("instructor", set(), None),
    ("mask_shifted", {"export_masks"}, "shifted by (dy, dx) = (0, 1)"),
    ("mask_flipped", {"export_masks"}, "flipped upside down"),
    ("mask_interpolated", {"export_masks", "export_overlays", "export_summaries"}, "nearest-neighbour"),
    ("image_interpolated", {"export_overlays"}, "background pixels differ from the image"),
])
def test_visible_export_checks_name_the_bug(source, tmp_path, monkeypatch, variant, failing, phrase):
    nb = source if variant == "instructor" else with_answers(source, WRONG[variant][0])
    raised = run_visible_export(nb, tmp_path, monkeypatch)
    assert {cell for cell, exc in raised.items() if exc is not None} == failing, raised
    if phrase:
        assert any(phrase in str(exc) for exc in raised.values() if exc is not None), raised
