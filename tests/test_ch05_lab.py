"""The Chapter 5 graded lab (``autograder/source/ch05_robustness``) grades what it claims to, through the grader.

* Two different correct solutions (the instructor's, and one with other kinds -- noise, JPEG and
  defocus --, absolute thresholds, a camera slice, and a sheet timed with ``time.perf_counter_ns``
  and an equal split of the budget) get every point.
* The blank student copy gets none.
* Plausible wrong answers lose exactly the items they break: a suite without a noise test (the
  planted variant goes through), thresholds at the clean value (the base model fails), a suite
  that ignores the corruption seed (its numbers are not the grader's), only two corruption
  kinds, a sheet whose percentiles are swapped (p95 below p50), a sheet of typed numbers, and one
  wrong quiz answer.

The planted variant itself is checked in ``tests/test_planted.py``.
"""

from __future__ import annotations


from lab_notebooks import (  # noqa: F401 (source: the lab notebook fixture)
    assert_each_variant_earns, check_metadata, source, student_text, with_answers)
from test_grading import require_bwrap

LAB = "ch05_robustness"
ALT = {
    "suite_answer": '''def robustness_suite(model_path, image_ids, seed: int) -> dict:
    """Absolute AP50 floors per severity; a camera slice."""
    floors = {"gaussian_noise": [0.12, 0.08, 0.04], "jpeg": [0.10, 0.08, 0.06], "defocus_blur": [0.06, 0.04, 0.02]}
    ids = sorted(image_ids)
    model = load_model(model_path)
    images = load_images(ids)
    base = predict_images(model, images)
    out = [dict(name="clean images", kind="clean", severity=0, value=ap50(ids, base), threshold=0.08,
                reason="a detector below 0.08 AP50 on clean val images is not worth stress testing")]
    for kind, levels in floors.items():
        for s, floor in zip((1, 2, 3), levels):
            bad = {i: corrupt_image(im, kind, s, seed + i)[0] for i, im in images.items()}
            out.append(dict(name=f"{kind}@{s}", kind=kind, severity=s, value=ap50(ids, predict_images(model, bad)),
                            threshold=floor, reason=f"an absolute floor for {kind} that the base model clears with room"))
    cam = [i for i in ids if image_info(i)["camera_id"] == "c3"]
    out.append(dict(name="camera c3", kind="slice", severity=0, value=ap50(cam, base) if cam else None, threshold=0.05,
                    reason="the cheap noisy camera must still find half of what a clean frame gives"))
    for t in out:
        t["passed"] = (t["value"] is None) if t["value"] is None else bool(t["value"] >= t["threshold"])
    return {"tests": out, "passed": all(t["passed"] for t in out)}''',
    "sheet_answer": '''def latency_sheet(model_path, frames_dir, n_frames: int, fps_target: float) -> list:
    """Nanosecond timers, an equal split of the budget, two warm-up frames."""
    det = load_model(model_path)
    files = sorted(Path(frames_dir).glob("*.jpg"))
    names = ["decode", "preprocess", "inference", "postprocess", "serialise"]
    per_frame = []
    for path in files[: n_frames + 2]:
        marks = [time.perf_counter_ns()]
        img = read_frame(path); marks.append(time.perf_counter_ns())
        x, lb = preprocess(det, img); marks.append(time.perf_counter_ns())
        raw = infer(det, x); marks.append(time.perf_counter_ns())
        dets = postprocess(det, raw, lb); marks.append(time.perf_counter_ns())
        serialise(dets); marks.append(time.perf_counter_ns())
        per_frame.append(np.diff(marks) / 1e6)
    ms = np.array(per_frame[2:])
    budget = 1000.0 / fps_target
    table = [(n, ms[:, k], budget / len(names)) for k, n in enumerate(names)] + [("end_to_end", ms.sum(axis=1), budget)]
    return [{"stage": n, "target_ms": t, "p50_ms": float(np.median(v)), "p95_ms": float(np.percentile(v, 95)),
             "verdict": "within budget" if np.percentile(v, 95) <= t else "over budget"} for n, v, t in table]''',
}
NO_NOISE = [('keep = {"gaussian_noise": (0.6, 0.5, 0.3), ', 'keep = {"jpeg": (0.6, 0.5, 0.3), '),
            ('why = {"gaussian_noise": ', 'why = {"jpeg": ')]
WRONG = {
    "no_noise_test": ({"suite_answer": NO_NOISE}, {"suite_catches_brittle"}),
    "thresholds_at_clean": ({"suite_answer": [('"threshold": fraction * clean', '"threshold": clean')]},
                            {"suite_passes_base"}),
    "ignores_seed": ({"suite_answer": [("corrupt_image(img, kind, severity, seed + i)", "corrupt_image(img, kind, severity, i)")]},
                     {"suite_measured"}),
    "two_kinds": ({"suite_answer": [(', "motion_blur": (0.4, 0.3, 0.25)}', "}")]}, {"suite_structure"}),
    "percentiles_swapped": ({"sheet_answer": [("p50, p95 = np.percentile(values, [50, 95])",
                                               "p95, p50 = np.percentile(values, [50, 95])")]}, {"sheet_consistent"}),
    "typed_sheet": ({"sheet_answer": [("    return rows\n", """    typed = (2.0, 2.0, 2.0, 2.0, 2.0, 10.0)
    return [dict(r, p50_ms=v, p95_ms=1.2 * v, verdict="within budget" if 1.2 * v <= r["target_ms"] else "over budget")
            for r, v in zip(rows, typed)]
""")]}, {"sheet_measured"}),
    "quiz_q3": ({"q3_answer": [('answer_q3 = "a"', 'answer_q3 = "b"')]}, {"q3"}),
}


def test_nbgrader_metadata_is_valid(source):
    check_metadata(source, LAB, 14)


def test_student_copy_reveals_nothing(source):
    text = student_text(source, ("BEGIN SOLUTION", "keep = {", "answer_q1 =", "52817", "NoiseGate", "np.percentile(values"))
    assert "raise NotImplementedError()" in text and "record_answer" in text


def test_grading_earns_exactly_what_each_variant_deserves(source, tmp_path, monkeypatch):
    require_bwrap()
    assert_each_variant_earns(LAB, source, {"alternative": with_answers(source, ALT)}, WRONG, tmp_path, monkeypatch)
