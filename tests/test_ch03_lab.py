"""The Chapter 3 graded lab (``autograder/source/ch03_qa_export``) grades what it claims to, through the grader.

* The visible Part D checks (feedback only) name a shifted or flipped mask and an interpolated
  mask or image, and pass the instructor's answers.
* Three different correct solutions get every point; the blank student copy gets none.
* Plausible wrong answers lose exactly the items they break: an overlay shifted by one pixel, a
  mask written upside down or shifted, labels or an image scaled with bilinear interpolation, a
  "fraction" that is a count, 4-connected instance counts, a mask saved as RGB, one wrong quiz
  answer, and Part E's scores with the ignore label counted as background, an absent class scored
  0 instead of left out, Dice computed as IoU, presence judged from the ground truth only, and a
  mean of per-image scores instead of dataset-level counts, and an answer that wraps the blocked
  ``labkit.metrics.segmentation`` (it cannot import it).
* Part E's visible check (a case worked by hand) passes the correct answers and stops the wrong ones.
"""

from __future__ import annotations

import numpy as np
import pytest

from lab_notebooks import (  # noqa: F401 (source: the lab notebook fixture)
    assert_each_variant_earns, check_metadata, source, student_text, with_answers)
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
SCORES_BY_MASKS = """def segmentation_scores(gt_masks, pred_masks, num_classes=len(CLASS_NAMES), ignore_index=IGNORE_INDEX):
    if len(gt_masks) != len(pred_masks) or any(np.shape(g) != np.shape(p) for g, p in zip(gt_masks, pred_masks)):
        raise ValueError("ground truth and predictions do not pair up")
    gt = np.concatenate([np.ravel(g) for g in gt_masks]).astype(int)
    pred = np.concatenate([np.ravel(p) for p in pred_masks]).astype(int)
    pred, gt = pred[gt != ignore_index], gt[gt != ignore_index]
    iou, dice = [], []
    for c in range(num_classes):
        inter, a, b = int(((gt == c) & (pred == c)).sum()), int((gt == c).sum()), int((pred == c).sum())
        iou.append(inter / (a + b - inter) if a + b else None)
        dice.append(2 * inter / (a + b) if a + b else None)
    scored_iou, scored_dice = [v for v in iou if v is not None], [v for v in dice if v is not None]
    return {"iou": iou, "dice": dice, "miou": sum(scored_iou) / len(scored_iou) if scored_iou else None,
            "mean_dice": sum(scored_dice) / len(scored_dice) if scored_dice else None}
"""
SCORES_ADD_AT = """def segmentation_scores(gt_masks, pred_masks, num_classes=len(CLASS_NAMES), ignore_index=IGNORE_INDEX):
    if len(gt_masks) != len(pred_masks):
        raise ValueError("unequal lists")
    counts = np.zeros((num_classes, num_classes))
    for g, p in zip(gt_masks, pred_masks):
        g, p = np.asarray(g), np.asarray(p)
        if g.shape != p.shape:
            raise ValueError(f"shapes {g.shape} and {p.shape}")
        valid = g != ignore_index
        np.add.at(counts, (g[valid], p[valid]), 1)
    tp, t, p = np.diag(counts), counts.sum(1), counts.sum(0)
    with np.errstate(invalid="ignore", divide="ignore"):
        iou, dice = tp / (t + p - tp), 2 * tp / (t + p)
    as_list = lambda v: [None if np.isnan(x) else float(x) for x in v]
    mean = lambda v: None if np.isnan(v).all() else float(np.nanmean(v))
    return {"iou": as_list(iou), "dice": as_list(dice), "miou": mean(iou), "mean_dice": mean(dice)}
"""
SCORES_PER_IMAGE_MEAN = """def segmentation_scores(gt_masks, pred_masks, num_classes=len(CLASS_NAMES), ignore_index=IGNORE_INDEX):
    per_image = []
    for g, p in zip(gt_masks, pred_masks):
        g, p = np.asarray(g), np.asarray(p)
        if g.shape != p.shape:
            raise ValueError("shapes differ")
        keep = g != ignore_index
        g, p = g[keep], p[keep]
        rows = []
        for c in range(num_classes):
            inter, a, b = ((g == c) & (p == c)).sum(), (g == c).sum(), (p == c).sum()
            rows.append((inter / (a + b - inter), 2 * inter / (a + b)) if a + b else (np.nan, np.nan))
        per_image.append(rows)
    scores = np.nanmean(np.array(per_image, dtype=float), axis=0)  # the mean of per-image scores
    iou = [None if np.isnan(v) else float(v) for v in scores[:, 0]]
    dice = [None if np.isnan(v) else float(v) for v in scores[:, 1]]
    return {"iou": iou, "dice": dice, "miou": float(np.nanmean(scores[:, 0])), "mean_dice": float(np.nanmean(scores[:, 1]))}
"""
SCORES_BY_THE_REFERENCE = """def segmentation_scores(gt_masks, pred_masks, num_classes=len(CLASS_NAMES), ignore_index=IGNORE_INDEX):
    from labkit.metrics.segmentation import ConfusionMatrix  # hidden from the kernel when grading

    matrix = ConfusionMatrix(num_classes, ignore_index=ignore_index)
    for g, p in zip(gt_masks, pred_masks):
        matrix.update(g, p)
    summary = matrix.summary()
    return {"iou": [c["iou"] for c in summary["per_class"]], "dice": [c["dice"] for c in summary["per_class"]],
            "miou": summary["mean_iou"], "mean_dice": summary["mean_dice"]}
"""
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
    # Part E: the reference metric's definition broken one way at a time
    "scores_ignore_counted": ({"scores_answer": [("        keep = gt != ignore_index\n",
                                                  "        gt = np.where(gt == ignore_index, 0, gt)  # ignored as background\n"
                                                  "        keep = np.ones(gt.shape, dtype=bool)\n")]},
                              {"scores_ignore"}),
    "scores_absent_as_zero": ({"scores_answer": [("if present[c] else None for c in range(num_classes)]",
                                                  "if present[c] else 0.0 for c in range(num_classes)]")]},
                              {"scores_absent"}),
    "scores_dice_is_iou": ({"scores_answer": [("dice = [float(2 * tp[c] / total[c])", "dice = [float(tp[c] / (total[c] - tp[c]))")]},
                           {"scores_dice"}),
    "scores_present_in_gt_only": ({"scores_answer": [("present = total > 0", "present = matrix.sum(axis=1) > 0")]},
                                  {"scores_absent"}),
    "scores_uses_blocked_reference": ({"scores_answer": SCORES_BY_THE_REFERENCE},
                                      {"scores_iou", "scores_dice", "scores_ignore", "scores_absent"}),
    "scores_per_image_mean": ({"scores_answer": SCORES_PER_IMAGE_MEAN}, {"scores_iou", "scores_dice"}),
    "quiz_q2": ({"q2_answer": [('answer_q2 = "b"', 'answer_q2 = "c"')]}, {"q2"}),
}


def test_nbgrader_metadata_is_valid(source):
    check_metadata(source, LAB, 19)


def test_student_copy_reveals_nothing(source):
    text = student_text(source, ("BEGIN SOLUTION", "HIDDEN TESTS", "_reference_overlay", "answer_q1 =", "np.bincount(flat"))
    assert "raise NotImplementedError()" in text and "record_answer" in text


def test_grading_earns_exactly_what_each_variant_deserves(source, tmp_path, monkeypatch):
    require_bwrap()
    assert_each_variant_earns(LAB, source, {"alternative": with_answers(source, {**ALT, "scores_answer": SCORES_BY_MASKS}),
                "alternative_2": with_answers(source, {"scores_answer": SCORES_ADD_AT})}, WRONG, tmp_path, monkeypatch)


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


@pytest.mark.parametrize("variant", ["instructor", "alternative", "alternative_2", *(w for w in WRONG if w.startswith("scores_") and w != "scores_uses_blocked_reference")])
def test_visible_scores_check_passes_right_and_stops_wrong(source, variant):
    answers = {"instructor": None, "alternative": SCORES_BY_MASKS, "alternative_2": SCORES_ADD_AT}
    nb = source if answers.get(variant) is None and variant == "instructor" else \
        with_answers(source, {"scores_answer": answers[variant]} if variant in answers else WRONG[variant][0])
    cells = {c.metadata.get("nbgrader", {}).get("grade_id"): c.source for c in nb.cells}
    namespace = {"np": np, "CLASS_NAMES": dict.fromkeys(range(6)), "IGNORE_INDEX": 255}
    exec(cells["scores_answer"], namespace)
    if variant in answers:
        exec(cells["scores_visible"], namespace)
    else:
        with pytest.raises(AssertionError):
            exec(cells["scores_visible"], namespace)
