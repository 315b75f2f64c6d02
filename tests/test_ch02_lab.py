"""The Chapter 2 graded lab (``autograder/source/ch02_nms``) grades what it claims to, through the grader.

* Two different correct solutions (the instructor's, and one with another IoU formula, the
  coordinate trick for class-wise NMS, top-k post-processing and a PIL-decoding inference loop) get
  every point.
* The blank student copy gets none.
* Plausible wrong answers lose exactly the items they break: a box_iou that drops float64 to
  float32, NMS that suppresses at IoU >= threshold, a threshold with ``>``, linear Soft-NMS that
  ignores N_t, a postprocess that ignores its ``iou`` argument, an answer that calls the blocked
  torchvision, an inference loop with a timing loop left in (over the latency budget), one that
  ignores its settings, one that skips NMS, and one wrong quiz answer.
"""

from __future__ import annotations

import nbformat

from lab_notebooks import (  # noqa: F401 (source: the lab notebook fixture)
    REPO, assert_each_variant_earns, check_metadata, source, student_text, with_answers)
from test_grading import require_bwrap

LAB = "ch02_nms"
ALT = {
    "iou_answer": '''def box_iou(boxes1, boxes2):
    """IoU via widths and heights of the pairwise intersection."""
    x1 = torch.max(boxes1[:, None, 0], boxes2[None, :, 0])
    y1 = torch.max(boxes1[:, None, 1], boxes2[None, :, 1])
    x2 = torch.min(boxes1[:, None, 2], boxes2[None, :, 2])
    y2 = torch.min(boxes1[:, None, 3], boxes2[None, :, 3])
    inter = torch.clamp(x2 - x1, min=0) * torch.clamp(y2 - y1, min=0)
    a1 = (boxes1[:, 2] - boxes1[:, 0]) * (boxes1[:, 3] - boxes1[:, 1])
    a2 = (boxes2[:, 2] - boxes2[:, 0]) * (boxes2[:, 3] - boxes2[:, 1])
    return inter / (a1[:, None] + a2[None, :] - inter)''',
    "nms_answer": [("""    kept = [torch.zeros(0, dtype=torch.int64)]
    for cls in torch.unique(classes):
        members = torch.nonzero(classes == cls).flatten()
        kept.append(members[nms(boxes[members], scores[members], iou_threshold)])
    kept = torch.cat(kept)
    return kept[torch.argsort(scores[kept], descending=True, stable=True)]""",
                    """    if boxes.numel() == 0:
        return torch.zeros(0, dtype=torch.int64)
    offsets = classes.to(boxes.dtype) * (boxes.max() + 1)  # the coordinate trick
    return nms(boxes + offsets[:, None], scores, iou_threshold)""")],
    "postprocess_answer": [("""    keep = batched_nms(boxes, scores, classes, iou)[:max_det]""",
                            """    keep = batched_nms(boxes, scores, classes, iou)
    keep = keep[:min(max_det, len(keep))]""")],
}
ALT_INFERENCE = '''from PIL import Image


def detect_images(records, conf=CONF, iou=IOU, max_det=MAX_DET):
    """Decode with PIL instead of load_image; a comprehension instead of a loop."""
    def decoded(record):
        with Image.open(DATA / "images" / record.file_name) as im:
            return np.asarray(im.convert("RGB"))
    return [postprocess(*network(decoded(r), r), conf, iou, max_det) for r in records]
'''
WRONG = {
    "iou_float32": ({"iou_answer": [("    area1 = (boxes1", "    boxes1, boxes2 = boxes1.float(), boxes2.float()\n    area1 = (boxes1")]},
                    {"iou"}),
    "nms_ge": ({"nms_answer": [("boxes[order]) > iou_threshold", "boxes[order]) >= iou_threshold")]}, {"nms"}),
    "threshold_gt": ({"nms_answer": [("keep = scores >= conf", "keep = scores > conf")]}, {"score_filter"}),
    "soft_linear_no_nt": ({"softnms_answer": [("torch.where(overlap >= iou_threshold, 1 - overlap, torch.ones_like(overlap))",
                                               "1 - overlap")]}, {"soft_nms_linear"}),
    "postprocess_fixed_iou": ({"postprocess_answer": [("batched_nms(boxes, scores, classes, iou)",
                                                       "batched_nms(boxes, scores, classes, IOU)")]}, {"postprocess"}),
    "calls_torchvision": ({"nms_answer": [("def batched_nms(", "import torchvision\n\n\ndef batched_nms("),
                                          ("    kept = [torch.zeros(0, dtype=torch.int64)]",
                                           "    return torchvision.ops.batched_nms(boxes, scores, classes, iou_threshold)\n"
                                           "    kept = [torch.zeros(0, dtype=torch.int64)]")]},
                          # the import fails: batched_nms undefined, and everything built on it
                          {"batched_nms", "postprocess", "postprocess_ap50", "inference_script", "inference_latency"}),
    # a timing loop (timeit) left in the script: each image is post-processed 300 times
    "inference_timing_left_in": ({"inference_answer": [(
        "        results.append(postprocess(*network(image, record), conf=conf, iou=iou, max_det=max_det))",
        "        import timeit\n"
        "        print(timeit.timeit(lambda: postprocess(*network(image, record), conf=conf, iou=iou, max_det=max_det), number=300))\n"
        "        results.append(postprocess(*network(image, record), conf=conf, iou=iou, max_det=max_det))")]},
        {"inference_latency"}),
    "inference_ignores_settings": ({"inference_answer": [("postprocess(*network(image, record), conf=conf, iou=iou, max_det=max_det)",
                                                          "postprocess(*network(image, record))")]}, {"inference_script"}),
    "inference_skips_nms": ({"inference_answer": [("postprocess(*network(image, record), conf=conf, iou=iou, max_det=max_det)",
                                                   "no_nms(*network(image, record), conf=conf, max_det=max_det)")]},
                            {"inference_script"}),
    "quiz_q3": ({"q3_answer": [('answer_q3 = "a"', 'answer_q3 = "b"')]}, {"q3"}),
}


def test_nbgrader_metadata_is_valid(source):
    check_metadata(source, LAB, 19)


def test_student_copy_reveals_nothing(source):
    text = student_text(source, ("BEGIN SOLUTION", "HIDDEN TESTS", "torch.exp(-overlap", "answer_q1 =", "import torchvision"))
    assert "raise NotImplementedError()" in text and "record_answer" in text


def test_student_copy_points_only_to_what_it_contains():
    """The released text never sends the learner to something only the instructor copy or the
    grading spec holds (it once pointed to a reference "(below)" that was a hidden test)."""
    from labkit.grading.coursedir import chapter_labs_dir

    released = nbformat.read(chapter_labs_dir(LAB, REPO / "notebooks") / f"{LAB}.ipynb", as_version=4)
    text = "\n".join(c.source for c in released.cells).lower()
    for pointer in ("(below)", "reference below", "hidden test", "the reference implementation"):
        assert pointer not in text, pointer


def test_grading_earns_exactly_what_each_variant_deserves(source, tmp_path, monkeypatch):
    require_bwrap()
    assert_each_variant_earns(LAB, source, {"alternative": with_answers(source, {**ALT, "inference_answer": ALT_INFERENCE})}, WRONG, tmp_path, monkeypatch)
