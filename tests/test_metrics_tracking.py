"""Tracking scores: parity with TrackEval's file-based evaluation, motmetrics and the official
MOTChallenge devkit numbers, and the definitional differences between them (pinned below).

Definitional differences found (motmetrics 1.4.0 vs TrackEval, whose numbers labkit reports):

1. Match continuation: TrackEval keeps a gt<->track pair only if it was matched in the previous
   frame; motmetrics keeps the last pair ever matched, across gaps -> different IDSW.
2. Assignment: TrackEval maximises the summed IoU; motmetrics first maximises the number of
   matches, then minimises the summed distance -> different TP/FP/FN in rare crowded frames.
3. MT/PT: TrackEval's MT is "tracked > 80 %", motmetrics' ">= 80 %".
4. Frag: TrackEval counts a new fragment when a gt object reappears after an annotation gap;
   motmetrics counts only tracked -> missed transitions on frames where the object exists.
5. TrackEval skips frames with no gt or no predictions without resetting its "matched in the
   previous frame" state, so a frame with no predictions does not fragment a track (motmetrics
   counts the misses as a fragmentation).
6. MOTP: motmetrics reports the mean distance 1 - IoU; TrackEval (and the devkit) the mean IoU.

On sequences where none of these situations occurs (lane-separated objects, continuous tracks,
predictions in every frame) motmetrics and labkit agree to 1e-9 on everything but MT/PT at a
ratio of exactly 0.8, which the test accounts for.
"""

from __future__ import annotations

import json
from pathlib import Path

import matplotlib
import motmetrics as mm
import numpy as np
import pytest
import trackeval
from trackeval.datasets._base_dataset import _BaseDataset

from labkit.data.annotations import Detections
from labkit.errors import DataError
from labkit.metrics.id_events import id_events
from labkit.data.boxes import xywh_to_xyxy
from labkit.metrics.iou import box_iou
from labkit.metrics.tracking import TrackingSequence, evaluate_sequences, evaluate_tracking, trackeval_data

matplotlib.use("Agg")

TUD = ("TUD-Campus", "TUD-Stadtmitte")
#: motmetrics' own regression values (SOURCE.md (2)), py-motmetrics' names -> labkit summary names.
MOTMETRICS_TUD = {
    "TUD-Campus": [0.557659, 0.729730, 0.451253, 0.582173, 0.941441, 8, 1, 6, 1, 13, 150, 7, 7, 0.526462, 0.277201],
    "TUD-Stadtmitte": [0.644619, 0.819760, 0.531142, 0.608997, 0.939920, 10, 5, 4, 1, 45, 452, 7, 6, 0.564014, 0.345904],
    "COMBINED": [0.624296, 0.799176, 0.512211, 0.602640, 0.940268, 18, 6, 10, 2, 58, 602, 14, 13, 0.555116, 0.330177],
}
#: TrackEval HOTA table of SOURCE.md (3): HOTA, DetA, AssA, LocA, HOTA(alpha=0.5), MOTA, MOTP, IDF1.
TRACKEVAL_TUD = {
    "TUD-Campus": [0.391397, 0.418047, 0.369121, 0.770052, 0.520610, 0.526462, 0.722799, 0.557659],
    "TUD-Stadtmitte": [0.397849, 0.392268, 0.408841, 0.737521, 0.573517, 0.564014, 0.654096, 0.644619],
    "COMBINED": [0.399957, 0.397683, 0.412450, 0.732480, 0.561536, 0.555116, 0.669823, 0.624296],
}
#: Official MATLAB devkit table of SOURCE.md (1) (percent, 1 decimal): IDF1 IDP IDR Rcll Prcn MOTA MOTP.
DEVKIT_TUD = {
    "TUD-Stadtmitte": [64.5, 82.0, 53.1, 60.9, 94.0, 56.4, 65.4],
    "TUD-Campus": [55.8, 73.0, 45.1, 58.2, 94.1, 52.6, 72.3],
}


# ----------------------------------------------------------------------------- builders
def frames_from_rows(rows: np.ndarray, gt: bool) -> dict[int, Detections]:
    """``{frame: Detections}`` from MOT rows ``frame, id, x, y, w, h, conf/consider, class, ...``."""
    out = {}
    for frame in np.unique(rows[:, 0]).astype(int):
        r = rows[rows[:, 0] == frame]
        data = {"consider": r[:, 6].astype(int)} if gt else {}
        out[int(frame)] = Detections(r[:, 2:6], r[:, 7].astype(int), track_id=r[:, 1].astype(int),
                                     score=None if gt else r[:, 6], data=data)
    return out


def random_rows(seed: int, n_frames: int = 40, n_objects: int = 6, *, mot_classes: bool = False,
                lanes: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """Seeded gt and tracker rows. ``lanes``: objects in separate horizontal lanes, continuous
    tracks and at least one prediction per frame (matching is then unambiguous)."""
    rng = np.random.default_rng(seed)
    gt, pred = [], []
    fp_id = 1000
    for k in range(n_objects):
        start = int(rng.integers(1, n_frames // 2))
        end = min(n_frames, start + int(rng.integers(6, n_frames)))
        w, h = rng.uniform(20, 60), rng.uniform(30, 60)
        x, y = rng.uniform(0, 500), (k * 100 + 20 if lanes else rng.uniform(0, 380))
        vx, vy = rng.normal(0, 3, size=2)
        cls = int(rng.choice([1, 1, 1, 1, 2, 7, 8, 12, 3, 6])) if mot_classes else 1
        sigma = rng.uniform(0.02, 0.3)
        switch_at = int(rng.integers(start, end + 1)) if rng.random() < 0.4 else n_frames + 1
        for f in range(start, end + 1):
            x, y = x + vx + rng.normal(0, 1), (y if lanes else y + vy + rng.normal(0, 1))
            if not lanes and rng.random() < 0.05:
                continue  # annotation gap
            consider = int(rng.random() > 0.1) if mot_classes else 1
            gt.append([f, k + 1, x, y, w, h, consider, cls, 1.0])
            if rng.random() < 0.85:
                jitter = np.clip(rng.normal(0, sigma, size=4), -0.4, 0.4) * [w, h, w, h]
                tid = 100 + k if f < switch_at else 200 + k
                pred.append([f, tid, x + jitter[0], y + jitter[1], w + jitter[2], h + jitter[3], 0.9, -1, -1, -1])
    for f in range(1, n_frames + 1):
        n_fp = 1 if lanes else int(rng.poisson(0.5))
        for _ in range(n_fp):
            fy = n_objects * 100 + 20 if lanes else rng.uniform(0, 400)
            pred.append([f, fp_id, rng.uniform(0, 500), fy, rng.uniform(20, 60), rng.uniform(30, 60), 0.3, -1, -1, -1])
            fp_id += 1
    pred_rows = np.array(pred, dtype=float)
    if not lanes:  # a few frames with no predictions at all
        empty = rng.choice(np.arange(1, n_frames + 1), size=2, replace=False)
        pred_rows = pred_rows[~np.isin(pred_rows[:, 0], empty)]
    return np.array(gt, dtype=float), pred_rows


def _write_rows(path: Path, rows: np.ndarray, gt: bool) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    lines = []
    for r in rows:
        head = f"{int(r[0])},{int(r[1])}," + ",".join(repr(float(v)) for v in r[2:6])
        tail = f",{int(r[6])},{int(r[7])},{float(r[8])!r}" if gt else f",{float(r[6])!r},-1,-1,-1"
        lines.append(head + tail + "\n")
    path.write_text("".join(lines))


def trackeval_file_based(tmp: Path, seqs: dict[str, tuple[np.ndarray, np.ndarray, int]], benchmark: str,
                         gt_folder: Path | None = None, gt_format: str = "{gt_folder}/{seq}/gt/gt.txt") -> dict:
    """TrackEval's own path: files in the MotChallenge2DBox layout -> Evaluator -> results per sequence."""
    if gt_folder is None:
        gt_folder = tmp / "gt"
        for name, (gt_rows, pred_rows, _) in seqs.items():
            _write_rows(gt_folder / name / "gt" / "gt.txt", gt_rows, gt=True)
    for name, (_, pred_rows, _) in seqs.items():
        _write_rows(tmp / "trackers" / "labkit" / "data" / f"{name}.txt", pred_rows, gt=False)
    eval_config = {"USE_PARALLEL": False, "PRINT_RESULTS": False, "PRINT_CONFIG": False, "TIME_PROGRESS": False,
                   "OUTPUT_SUMMARY": False, "OUTPUT_DETAILED": False, "PLOT_CURVES": False, "LOG_ON_ERROR": None,
                   "DISPLAY_LESS_PROGRESS": True}
    dataset_config = {"GT_FOLDER": str(gt_folder), "TRACKERS_FOLDER": str(tmp / "trackers"),
                      "OUTPUT_FOLDER": str(tmp / "out"), "TRACKERS_TO_EVAL": ["labkit"], "BENCHMARK": benchmark,
                      "SKIP_SPLIT_FOL": True, "SEQ_INFO": {n: s[2] for n, s in seqs.items()}, "DO_PREPROC": True,
                      "PRINT_CONFIG": False, "GT_LOC_FORMAT": gt_format}
    metric_config = {"THRESHOLD": 0.5, "PRINT_CONFIG": False}
    evaluator = trackeval.Evaluator(eval_config)
    dataset = trackeval.datasets.MotChallenge2DBox(dataset_config)
    metrics = [trackeval.metrics.HOTA(), trackeval.metrics.CLEAR(metric_config), trackeval.metrics.Identity(metric_config)]
    res, msg = evaluator.evaluate([dataset], metrics)
    assert msg["MotChallenge2DBox"]["labkit"] == "Success"
    return {("COMBINED" if k == "COMBINED_SEQ" else k): v["pedestrian"] for k, v in res["MotChallenge2DBox"]["labkit"].items()}


def assert_same_as_trackeval(report, theirs: dict) -> int:
    """Every field of HOTA / CLEAR / Identity equal to 1e-9, per sequence and combined; returns #checks."""
    assert set(report.results) == set(theirs)
    checked = 0
    for name, per_metric in theirs.items():
        for metric in ("HOTA", "CLEAR", "Identity"):
            for key, value in per_metric[metric].items():
                np.testing.assert_allclose(np.asarray(report.results[name][metric][key], float), np.asarray(value, float),
                                           rtol=0, atol=1e-9, err_msg=f"{name} {metric} {key}")
                checked += 1
    return checked


def motmetrics_summary(gt: dict[int, Detections], pred: dict[int, Detections], num_frames: int) -> dict:
    """motmetrics' MOTChallenge metrics, fed with IoU distances from TrackEval's own box IoU."""
    acc = mm.MOTAccumulator(auto_id=False)
    for f in range(1, num_frames + 1):
        g, p = gt.get(f, Detections.empty()), pred.get(f, Detections.empty())
        iou = _BaseDataset._calculate_box_ious(g.xywh.copy(), p.xywh.copy(), box_format="xywh")
        dist = np.where(iou >= 0.5, 1 - iou, np.nan)
        acc.update([] if g.track_id is None else g.track_id, [] if p.track_id is None else p.track_id, dist, frameid=f)
    out = mm.metrics.create().compute(acc, metrics=mm.metrics.motchallenge_metrics + ["num_matches"], name="x")
    summary = out.iloc[0].to_dict()
    summary["TP"] = summary["num_matches"] + summary["num_switches"]  # motmetrics' "matches" exclude switches
    events = acc.mot_events[acc.mot_events.Type.isin(["MATCH", "SWITCH", "MISS"])]
    present = events.groupby("OId").size()
    tracked = events[events.Type != "MISS"].groupby("OId").size().reindex(present.index, fill_value=0)
    summary["exact_08"] = int(np.isclose(tracked / present, 0.8, rtol=0, atol=1e-12).sum())
    return summary


# ----------------------------------------------------------------------------- IoU
def box_iou_xywh(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return box_iou(xywh_to_xyxy(a), xywh_to_xyxy(b))


def test_box_iou_is_bit_identical_to_trackeval():
    """The similarity labkit feeds TrackEval equals TrackEval's own, float for float."""
    rng = np.random.default_rng(0)
    a = np.vstack([rng.uniform(0, 50, (30, 4)), [[1, 1, 0, 5], [0, 0, 0, 0], [3, 3, 4, 4]]])
    b = np.vstack([rng.uniform(0, 50, (20, 4)), [[3, 3, 4, 4], [1, 1, 5, 0], [0, 0, 0, 0]]])
    np.testing.assert_array_equal(box_iou_xywh(a, b), _BaseDataset._calculate_box_ious(a.copy(), b.copy()))
    assert box_iou_xywh(np.zeros((0, 4)), b).shape == (0, 23)


# ----------------------------------------------------------------------------- TUD (real data)
@pytest.fixture(scope="module")
def tud(shared_data):
    root = shared_data / "motchallenge-tud-campus" / "py-motmetrics" / "motmetrics" / "data"
    from labkit.data.mot import read_mot

    seqs = {}
    for name in TUD:
        gt = read_mot(root / name / "gt.txt", "gt", layout="mot15")
        pred = read_mot(root / name / "test.txt", "pred", layout="mot15")
        seqs[name] = TrackingSequence(gt, pred, max(gt), str(root / name / "gt.txt"), str(root / name / "test.txt"))
    return root, seqs


def test_tud_reproduces_devkit_motmetrics_and_trackeval_reference_values(tud):
    _, seqs = tud
    report = evaluate_sequences(seqs, preprocess="mot15")
    names = ["IDF1", "IDP", "IDR", "Recall", "Precision", "GT_IDS", "MT", "PT", "ML", "FP", "FN", "IDSW", "Frag",
             "MOTA", "MOTP"]
    for seq, expected in MOTMETRICS_TUD.items():
        s = report.summary(None if seq == "COMBINED" else seq)
        s["GT_IDS"] = s["MT"] + s["PT"] + s["ML"]
        s["MOTP"] = 1 - s["MOTP"]  # motmetrics reports the mean distance 1 - IoU
        np.testing.assert_allclose([s[n] for n in names], expected, rtol=0, atol=1e-6, err_msg=seq)
    for seq, expected in TRACKEVAL_TUD.items():
        s = report.summary(None if seq == "COMBINED" else seq)
        alpha_05 = report.curves(None if seq == "COMBINED" else seq)["HOTA"][9]
        got = [s["HOTA"], s["DetA"], s["AssA"], s["LocA"], alpha_05, s["MOTA"], s["MOTP"], s["IDF1"]]
        np.testing.assert_allclose(got, expected, rtol=0, atol=1e-6, err_msg=seq)
    for seq, expected in DEVKIT_TUD.items():
        s = report.summary(seq)
        got = [100 * s[n] for n in ("IDF1", "IDP", "IDR", "Recall", "Precision", "MOTA", "MOTP")]
        np.testing.assert_allclose(got, expected, rtol=0, atol=0.05 + 1e-9, err_msg=seq)


def test_tud_equals_trackeval_file_based_evaluation(tud, tmp_path):
    root, seqs = tud
    spec = {name: (None, _rows_of(seq.pred), seq.num_frames) for name, seq in seqs.items()}
    theirs = trackeval_file_based(tmp_path, spec, "MOT15", gt_folder=root, gt_format="{gt_folder}/{seq}/gt.txt")
    assert assert_same_as_trackeval(evaluate_sequences(seqs, preprocess="mot15"), theirs) > 100


def test_tud_equals_motmetrics(tud):
    _, seqs = tud
    for name, seq in seqs.items():
        ours = evaluate_tracking(seq.gt, seq.pred, num_frames=seq.num_frames, preprocess="mot15").summary()
        theirs = motmetrics_summary(seq.gt, seq.pred, seq.num_frames)
        _assert_same_as_motmetrics(ours, theirs)


def _rows_of(frames: dict[int, Detections]) -> np.ndarray:
    rows = [[f, d.track_id[i], *d.xywh[i], d.score[i], -1, -1, -1] for f, d in frames.items() for i in range(len(d))]
    return np.array(rows, dtype=float)


def _assert_same_as_motmetrics(ours: dict, theirs: dict) -> None:
    pairs = {"IDF1": "idf1", "IDP": "idp", "IDR": "idr", "Recall": "recall", "Precision": "precision",
             "FP": "num_false_positives", "FN": "num_misses", "IDSW": "num_switches", "Frag": "num_fragmentations",
             "MOTA": "mota", "TP": "TP", "ML": "mostly_lost"}
    for ours_key, mm_key in pairs.items():
        assert ours[ours_key] == pytest.approx(theirs[mm_key], abs=1e-9), ours_key
    assert ours["MOTP"] == pytest.approx(1 - theirs["motp"], abs=1e-9)
    # MT: TrackEval "> 80 %", motmetrics ">= 80 %"; objects at exactly 80 % move from PT to MT.
    assert ours["MT"] + theirs["exact_08"] == theirs["mostly_tracked"]
    assert ours["PT"] - theirs["exact_08"] == theirs["partially_tracked"]


# ----------------------------------------------------------------------------- random sequences
GROUPS = {"MOT17": ("mot17", range(0, 12)), "MOT15": ("mot15", range(100, 108)), "MOT20": ("mot20", range(200, 204))}


@pytest.mark.parametrize("benchmark", GROUPS)
def test_random_sequences_equal_trackeval_file_based(benchmark, tmp_path):
    preprocess, seeds = GROUPS[benchmark]
    rows = {f"seq{s:03d}": (*random_rows(s, mot_classes=preprocess != "mot15"), 40) for s in seeds}
    theirs = trackeval_file_based(tmp_path, rows, benchmark)
    seqs = {n: TrackingSequence(frames_from_rows(g, True), frames_from_rows(p, False), n_frames)
            for n, (g, p, n_frames) in rows.items()}
    report = evaluate_sequences(seqs, preprocess=preprocess)
    assert assert_same_as_trackeval(report, theirs) >= 40 * (len(seeds) + 1)
    if preprocess != "mot15":
        assert sum(c["removed_pred"] for c in report.counts.values()) > 0
        assert sum(c["removed_gt"] for c in report.counts.values()) > 0
    # id_events counts the same switches and fragmentations as TrackEval's CLEAR
    for name, seq in seqs.items():
        events = id_events(seq.gt, seq.pred, num_frames=seq.num_frames, preprocess=preprocess)
        assert sum(e.switch for e in events) == theirs[name]["CLEAR"]["IDSW"]
        assert sum(e.fragmentation for e in events) == theirs[name]["CLEAR"]["Frag"]


def test_preprocess_none_equals_trackeval_when_nothing_is_zero_marked(tmp_path):
    rows = {f"seq{s}": (*random_rows(s), 40) for s in (300, 301)}
    theirs = trackeval_file_based(tmp_path, rows, "MOT15")
    seqs = {n: TrackingSequence(frames_from_rows(g, True), frames_from_rows(p, False), k) for n, (g, p, k) in rows.items()}
    assert_same_as_trackeval(evaluate_sequences(seqs, preprocess="none"), theirs)


@pytest.mark.parametrize("seed", range(400, 420))
def test_lane_sequences_equal_motmetrics(seed):
    gt_rows, pred_rows = random_rows(seed, lanes=True)
    gt, pred = frames_from_rows(gt_rows, True), frames_from_rows(pred_rows, False)
    ours = evaluate_tracking(gt, pred, num_frames=40, preprocess="none").summary()
    theirs = motmetrics_summary(gt, pred, 40)
    _assert_same_as_motmetrics(ours, theirs)


# ----------------------------------------------------------------------------- pinned differences
def _box(x: float, w: float = 10.0) -> list[float]:
    return [x, 0.0, w, 10.0]


def _frames(spec: dict[int, list[tuple[int, list[float]]]]) -> dict[int, Detections]:
    return {f: Detections([b for _, b in objs], np.ones(len(objs), int), track_id=[i for i, _ in objs])
            for f, objs in spec.items()}


DIFFERENCES = {
    # 1. gt 1 matched to track 1, unmatched in frame 2, then track 1 (IoU 0.67) and 2 (IoU 1) overlap it.
    "continuation across a gap": (
        {1: [(1, _box(0))], 2: [(1, _box(0))], 3: [(1, _box(0))]},
        {1: [(1, _box(0))], 2: [(9, _box(500))], 3: [(1, _box(2)), (2, _box(0))]},
        {"IDSW": (1, 0)}),
    # 2. three gt / three tracks: 2 perfect matches (sum 2.0) vs 3 matches of IoU 0.54 (sum 1.6).
    "max IoU vs max matches": (
        {1: [(1, _box(0)), (2, _box(3)), (3, _box(-3))]},
        {1: [(1, _box(0)), (2, _box(3)), (3, _box(6))]},
        {"TP": (2, 3), "FN": (1, 0)}),
    # 3. tracked in 4 of 5 frames: exactly 80 %.
    "MT at exactly 80 %": (
        {f: [(1, _box(0))] for f in range(1, 6)},
        {f: [(1, _box(0) if f != 3 else _box(300))] for f in range(1, 6)},
        {"MT": (0, 1), "PT": (1, 0)}),
    # 4. gt 1 not annotated in frame 2 (gt 2 is), tracked before and after.
    "fragment over an annotation gap": (
        {1: [(1, _box(0))], 2: [(2, _box(100))], 3: [(1, _box(0))]},
        {1: [(1, _box(0))], 2: [(2, _box(100))], 3: [(1, _box(0))]},
        {"Frag": (1, 0)}),
    # 5. no predictions at all in frame 2: TrackEval's skipped frame does not fragment.
    "frame without predictions": (
        {f: [(1, _box(0))] for f in (1, 2, 3)},
        {1: [(1, _box(0))], 3: [(1, _box(0))]},
        {"Frag": (0, 1), "FN": (1, 1)}),
}


@pytest.mark.parametrize("case", DIFFERENCES)
def test_pinned_definitional_differences_with_motmetrics(case):
    gt_spec, pred_spec, expected = DIFFERENCES[case]
    gt, pred = _frames(gt_spec), _frames(pred_spec)
    n = max(max(gt), max(pred))
    ours = evaluate_tracking(gt, pred, num_frames=n, preprocess="none").summary()
    theirs = motmetrics_summary(gt, pred, n)
    names = {"IDSW": "num_switches", "TP": "TP", "FN": "num_misses", "MT": "mostly_tracked",
             "PT": "partially_tracked", "Frag": "num_fragmentations"}
    for key, (labkit_value, motmetrics_value) in expected.items():
        assert (ours[key], theirs[names[key]]) == (labkit_value, motmetrics_value), key
    events = id_events(gt, pred, num_frames=n, preprocess="none")
    assert sum(e.switch for e in events) == ours["IDSW"] and sum(e.fragmentation for e in events) == ours["Frag"]


# ----------------------------------------------------------------------------- behaviour
def test_id_events_hand_checked():
    gt = {f: Detections([_box(0), _box(100)], [1, 1], track_id=[7, 8]) for f in range(1, 6)}
    pred = {1: Detections([_box(0), _box(100)], [1, 1], track_id=[1, 2]),
            2: Detections([_box(0), _box(100)], [1, 1], track_id=[1, 2]),
            3: Detections([_box(101)], [1], track_id=[2]),
            4: Detections([_box(1), _box(100)], [1, 1], track_id=[3, 2]),
            5: Detections([_box(0), _box(100)], [1, 1], track_id=[3, 2])}
    (event,) = id_events(gt, pred, preprocess="none")
    assert (event.frame, event.gt_id, event.previous_track_id, event.new_track_id) == (4, 7, 1, 3)
    assert event.switch and event.fragmentation and event.kind == "switch+fragmentation" and event.gap == 2
    assert event.iou == pytest.approx(90 / 110)


def test_mot17_preprocessing_hand_checked():
    gt = {1: Detections([_box(0), _box(100), _box(200)], [1, 8, 1], track_id=[1, 2, 3], data={"consider": [1, 1, 0]})}
    pred = {1: Detections([_box(0), _box(100), _box(200)], [1, 1, 1], track_id=[1, 2, 3])}
    data = trackeval_data(TrackingSequence(gt, pred), preprocess="mot17")
    assert (data["removed_gt"], data["removed_pred"]) == (2, 1)
    s = evaluate_tracking(gt, pred).summary()
    assert (s["TP"], s["FP"], s["FN"]) == (1, 1, 0)  # the box on the zero-marked pedestrian stays a FP
    s = evaluate_tracking(gt, pred, preprocess="none").summary()
    assert (s["TP"], s["FP"], s["FN"]) == (3, 0, 0)


@pytest.mark.parametrize("gt, pred, kwargs, message", [
    ({1: Detections([_box(0), _box(5)], [1, 1], track_id=[4, 4])}, {}, {}, r"<gt>: record frame 1: track id\(s\) \[4\]"),
    ({}, {1: Detections([_box(0)], [1])}, {}, "<pred>: record frame 1: detections have no track ids"),
    ({3: Detections([_box(0)], [1], track_id=[1])}, {}, {"num_frames": 2}, "<gt>: record frame 3: frame 3 is outside"),
    ({0: Detections([_box(0)], [1], track_id=[1])}, {}, {}, "frame 0 is outside"),
    ({1: Detections([_box(0)], [42], track_id=[1])}, {}, {"preprocess": "mot17"}, r"gt class ids \[42\]"),
    ({1: Detections([_box(0)], [1], track_id=[1])}, {1: Detections([_box(0)], [1], track_id=[1])},
     {"similarity": lambda g, p: np.full((1, 1), 2.0)}, r"similarity must be a \(1, 1\) array in \[0, 1\]"),
])
def test_bad_input_raises_dataerror_naming_source_and_frame(gt, pred, kwargs, message):
    with pytest.raises(DataError, match=message):
        evaluate_tracking(gt, pred, **kwargs)


def test_bad_options_raise():
    with pytest.raises(ValueError, match="preprocess"):
        evaluate_tracking({}, {}, preprocess="mot99")
    with pytest.raises(ValueError, match="similarity"):
        evaluate_tracking({1: Detections([_box(0)], [1], track_id=[1])}, {}, similarity="giou")


def test_report_outputs_and_custom_similarity():
    gt_rows, pred_rows = random_rows(7)
    gt, pred = frames_from_rows(gt_rows, True), frames_from_rows(pred_rows, False)
    report = evaluate_tracking(gt, pred, num_frames=40, preprocess="none", name="demo")
    assert report.summary("demo") == pytest.approx(report.summary())
    payload = json.loads(json.dumps(report.to_dict()))
    assert len(payload["alphas"]) == 19 and len(payload["sequences"]["demo"]["curves"]["HOTA"]) == 19
    assert payload["sequences"]["COMBINED"]["summary"]["HOTA"] == pytest.approx(report.summary()["HOTA"])
    assert "| demo |" in report.to_markdown() and "COMBINED" not in report.to_markdown()
    ax = report.plot_alpha_curves()
    assert len(ax.lines) == 8
    same = evaluate_tracking(gt, pred, num_frames=40, preprocess="none", similarity=box_iou_xywh)
    assert same.summary() == pytest.approx(report.summary())
    assert same.settings["similarity"] == "box_iou_xywh"


def test_empty_prediction_scores_zero():
    gt = {1: Detections([_box(0)], [1], track_id=[1]), 2: Detections([_box(0)], [1], track_id=[1])}
    s = evaluate_tracking(gt, {}, preprocess="none").summary()
    assert (s["HOTA"], s["MOTA"], s["IDF1"], s["FN"], s["ML"]) == (0.0, 0.0, 0.0, 2, 1)
