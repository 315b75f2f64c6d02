"""The Chapter 4 graded lab (``autograder/source/ch04_tracker``) grades what it claims to, through the grader.

* Two different correct solutions (the instructor's, and one with the IoU on corner boxes, the
  assignment on a square matrix padded with dummy rows and columns, a table-driven state machine
  and an OpenCV video writer) get every point.
* The blank student copy gets none.
* Plausible wrong answers lose exactly the items they break: an IoU gate that drops pairs at
  the threshold, a cost without the Mahalanobis gate, greedy per-track matching, an assignment
  that keeps forbidden pairs, an acceptance threshold with ``<``, deletion one miss early, a
  tentative track that survives a miss, a video one frame short, a video that draws no track or
  only one track a frame, an answer that imports the
  blocked ``labkit.track``, and one wrong quiz answer.
"""

from __future__ import annotations


from lab_notebooks import (  # noqa: F401 (source: the lab notebook fixture)
    assert_each_variant_earns, check_metadata, source, student_text, with_answers)
from test_grading import require_bwrap

LAB = "ch04_tracker"
ALT = {
    "cost_answer": '''def gated_cost(track_xywh, det_xywh, d2, min_iou: float, max_d2: float) -> np.ndarray:
    """IoU on corner boxes, then both gates with np.where."""
    a = np.asarray(track_xywh, dtype=np.float64).reshape(-1, 4)
    b = np.asarray(det_xywh, dtype=np.float64).reshape(-1, 4)
    a = np.concatenate([a[:, :2], a[:, :2] + a[:, 2:]], axis=1)
    b = np.concatenate([b[:, :2], b[:, :2] + b[:, 2:]], axis=1)
    lo = np.maximum(a[:, None, :2], b[None, :, :2])
    hi = np.minimum(a[:, None, 2:], b[None, :, 2:])
    inter = np.prod(np.maximum(hi - lo, 0.0), axis=-1)
    area_a = np.prod(a[:, 2:] - a[:, :2], axis=1)
    area_b = np.prod(b[:, 2:] - b[:, :2], axis=1)
    union = area_a[:, None] + area_b[None, :] - inter
    iou = np.divide(inter, union, out=np.zeros_like(inter), where=union > 0)
    d2 = np.asarray(d2, dtype=np.float64).reshape(iou.shape)
    return np.where((iou >= min_iou) & (d2 <= max_d2), 1.0 - iou, np.inf)''',
    "assign_answer": '''def assign(cost, max_cost: float):
    """Square problem: dummy rows/columns at cost max_cost + 1 absorb whatever stays unmatched."""
    cost = np.asarray(cost, dtype=np.float64)
    t, d = cost.shape
    big = 1e5
    square = np.full((t + d, t + d), big)
    square[:t, :d] = np.where(cost <= max_cost, cost, 10 * big)
    rows, cols = linear_sum_assignment(square)
    pairs = [(r, c) for r, c in zip(rows, cols) if r < t and c < d and cost[r, c] <= max_cost]
    matches = np.array(sorted(pairs), dtype=np.int64).reshape(-1, 2)
    matched_t, matched_d = set(matches[:, 0].tolist()), set(matches[:, 1].tolist())
    return (matches, np.array([r for r in range(t) if r not in matched_t], dtype=np.int64),
            np.array([c for c in range(d) if c not in matched_d], dtype=np.int64))''',
    "lifecycle_answer": '''def next_state(state: str, matched: bool, hits: int, misses: int, min_hits: int, max_misses: int) -> str:
    """Table-driven."""
    if not matched and misses > max_misses:
        return "deleted"
    table = {("tentative", True): "confirmed" if hits >= min_hits else "tentative", ("tentative", False): "deleted",
             ("confirmed", True): "confirmed", ("confirmed", False): "lost",
             ("lost", True): "confirmed", ("lost", False): "lost"}
    return table[(state, bool(matched))]''',
    "video_answer": '''def render_review(seq_dir, track_rows, out_path) -> str:
    """OpenCV's own writer (MPEG-4 part 2) and BGR frames throughout."""
    seq_dir, rows = Path(seq_dir), np.asarray(track_rows, dtype=np.float64).reshape(-1, 6)
    info = read_seqinfo(seq_dir / "seqinfo.ini")
    writer = cv2.VideoWriter(str(out_path), cv2.VideoWriter_fourcc(*"mp4v"), 25, (int(info["width"]), int(info["height"])))
    for f in range(1, int(info["length"]) + 1):
        image = cv2.imread(str(seq_dir / "img1" / f"{f:06d}.jpg"))
        for _, tid, x, y, w, h in rows[rows[:, 0] == f]:
            cv2.rectangle(image, (int(x), int(y)), (int(x + w), int(y + h)), (0, 255, 0), 1)
            cv2.putText(image, f"id {int(tid)}", (int(x), int(y) + 10), cv2.FONT_HERSHEY_PLAIN, 0.8, (0, 255, 0), 1)
        writer.write(image)
    writer.release()
    return str(out_path)''',
}
WRONG = {
    "iou_gate_drops_threshold": ({"cost_answer": [("(iou < min_iou)", "(iou <= min_iou)")]}, {"cost_matrix"}),
    "no_mahalanobis_gate": ({"cost_answer": [(" | (np.asarray(d2, dtype=np.float64).reshape(cost.shape) > max_d2)", "")]},
                            {"cost_matrix", "gated_out"}),
    "greedy_per_track": ({"assign_answer": [("""    if allowed.any():
        rows, cols = linear_sum_assignment(np.where(allowed, cost, FORBIDDEN))
        keep = allowed[rows, cols]
        matches = np.stack([rows[keep], cols[keep]], axis=1).astype(np.int64)""", """    pairs, taken = [], set()
    for r in range(n_tracks):
        for c in np.argsort(cost[r], kind="stable"):
            if allowed[r, c] and int(c) not in taken:
                pairs.append((r, int(c)))
                taken.add(int(c))
                break
    if pairs:
        matches = np.array(pairs, dtype=np.int64)""")]}, {"assignment"}),
    "keeps_forbidden_pairs": ({"assign_answer": [("keep = allowed[rows, cols]", "keep = np.ones(len(rows), dtype=bool)")]},
                              {"assignment", "empty_and_ties", "hota_hidden"}),
    "threshold_strict": ({"assign_answer": [("allowed = cost <= max_cost", "allowed = cost < max_cost")]}, {"assignment"}),
    "deleted_one_miss_early": ({"lifecycle_answer": [("misses > max_misses", "misses >= max_misses")]}, {"lifecycle"}),
    "tentative_survives_miss": ({"lifecycle_answer": [('if state == "tentative" or misses > max_misses:',
                                                       "if misses > max_misses:")]}, {"lifecycle"}),
    "video_one_frame_short": ({"video_answer": [("for f in range(1, length + 1):", "for f in range(1, length):")]}, {"video"}),
    "video_draws_no_track": ({"video_answer": [("for _, tid, x, y, w, h in rows[rows[:, 0] == f]:",
                                                "for _, tid, x, y, w, h in rows[:0]:")]}, {"video"}),
    "video_draws_one_track_per_frame": ({"video_answer": [("for _, tid, x, y, w, h in rows[rows[:, 0] == f]:",
                                                           "for _, tid, x, y, w, h in rows[rows[:, 0] == f][:1]:")]},
                                        {"video"}),
    "imports_labkit_track": ({"lifecycle_answer": [("def next_state(", "from labkit.track.lifecycle import TrackState\n\n\ndef next_state(")]},
                             {"lifecycle", "hota_hidden", "crossing"}),  # the import fails: next_state undefined
    "quiz_q2": ({"q2_answer": [('answer_q2 = "c"', 'answer_q2 = "a"')]}, {"q2"}),
}


def test_nbgrader_metadata_is_valid(source):
    check_metadata(source, LAB, 17)


def test_student_copy_reveals_nothing(source):
    text = student_text(source, ("BEGIN SOLUTION", "linear_sum_assignment(np.where", "answer_q1 =", "61907", "misses > max_misses:"))
    assert "raise NotImplementedError()" in text and "record_answer" in text


def test_grading_earns_exactly_what_each_variant_deserves(source, tmp_path, monkeypatch):
    require_bwrap()
    assert_each_variant_earns(LAB, source, {"alternative": with_answers(source, ALT)}, WRONG, tmp_path, monkeypatch)


def _grader():
    """The grading spec's module namespace (its helpers, as the grader runs them)."""
    from types import SimpleNamespace

    from lab_notebooks import COURSE

    from labkit.grading.labspec import load_spec

    return SimpleNamespace(**load_spec(COURSE.spec_file(LAB)).items[0].check.__globals__)


def test_video_check_finds_the_undrawn_id_after_h264(tmp_path):
    """Hand-made case: a noisy sequence of 6 frames with two tracks; only id 7's box is drawn, and the
    frames go through H.264 (the codec's error must not count as drawing, nor hide a drawn box)."""
    import cv2
    import imageio.v2 as imageio
    import numpy as np

    grader = _grader()
    rng = np.random.default_rng(0)
    (tmp_path / "img1").mkdir()
    rows = np.array([[f, tid, x + 3 * f, 60.0, 40.0, 80.0] for f in range(1, 7) for tid, x in ((7, 30.0), (99, 200.0))])
    writer = imageio.get_writer(str(tmp_path / "v.mp4"), fps=25, codec="libx264", macro_block_size=1, ffmpeg_log_level="error")
    for f in range(1, 7):
        image = cv2.GaussianBlur(rng.integers(0, 255, (240, 320, 3), dtype=np.uint8), (5, 5), 0)
        cv2.imwrite(str(tmp_path / "img1" / f"{f:06d}.jpg"), image)
        image = cv2.imread(str(tmp_path / "img1" / f"{f:06d}.jpg"))
        _, _, x, y, w, h = rows[(rows[:, 0] == f) & (rows[:, 1] == 7)][0]
        cv2.rectangle(image, (int(x), int(y)), (int(x + w), int(y + h)), (0, 255, 0), 1)
        writer.append_data(cv2.cvtColor(image, cv2.COLOR_BGR2RGB))
    writer.close()
    capture, frames = cv2.VideoCapture(str(tmp_path / "v.mp4")), []
    while (got := capture.read())[0]:
        frames.append(got[1])
    assert len(frames) == 6
    assert grader.undrawn_ids(frames, tmp_path, rows) == [99]
    assert grader.box_drawn(frames[0], frames[0], [500, 500, 10, 10]) is None  # outline outside the picture
