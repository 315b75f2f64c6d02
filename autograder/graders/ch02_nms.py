"""Grading spec of the Chapter 2 lab (``source/ch02_nms``): IoU, NMS, Soft-NMS, the inference function,
the inference script's loop and its latency, quiz.

Every check runs in the grader's process. Hidden cases come from ``_SEED`` (not in the student
copy); references are torchvision's ``box_iou`` / ``nms`` / ``batched_nms`` and, for Soft-NMS, a
plain-Python transcription of Bodla et al. (ICCV 2017), Algorithm 1. ``torchvision`` is blocked in
the student's kernel (own-work rule of the lab), so an answer cannot call the reference.

The latency item times, in the grader's process, the probe call that runs the student's loop
(decode, stand-in network, post-processing) on every val image, and times the grader's own loop
(same decode, the reference post-processing) on the same images as the peer, stated in the message.
"""

from __future__ import annotations

import math
import time
from functools import lru_cache
from pathlib import Path

import torch
import torchvision

from labkit.grading.labspec import Item, LabSpec, StudentRaised, quiz_items

_SEED = 90517
CONF, IOU, MAX_DET, AP50_TARGET = 0.05, 0.5, 100, 0.70
LATENCY_BUDGET_MS = 100.0  # stated in the notebook (Part E)
_NOTEBOOK_SEED = 0  # the notebook's SEED: its stand-in network returns noisy_detector(val, seed=0)


def _boxes(n: int, case: int, size: float = 100.0, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    g = torch.Generator().manual_seed(_SEED + case)
    xy = torch.rand(n, 2, generator=g, dtype=torch.float64) * size * 0.7
    wh = 1 + torch.rand(n, 2, generator=g, dtype=torch.float64) * size * 0.3
    return torch.cat([xy, xy + wh], dim=1).to(dtype)


def _scores(n: int, case: int, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    g = torch.Generator().manual_seed(_SEED + 7919 * case)
    return ((torch.randperm(n, generator=g) + 1).to(torch.float64) / (n + 1)).to(dtype)


def _classes(n: int, k: int, case: int) -> torch.Tensor:
    return torch.randint(0, k, (n,), generator=torch.Generator().manual_seed(_SEED - case))


def _tensor(value, what: str) -> torch.Tensor:
    if isinstance(value, StudentRaised):
        raise value
    assert isinstance(value, torch.Tensor), f"{what} must return a torch.Tensor"
    return value


def check_iou(probe) -> None:
    cases = [(_boxes(n, k, dtype=dt), _boxes(m, k + 100, dtype=dt))
             for k, (n, m) in enumerate([(1, 1), (7, 3), (64, 50), (3, 200)]) for dt in (torch.float32, torch.float64)]
    cases += [(torch.zeros(0, 4), _boxes(5, 9)), (_boxes(5, 9), torch.zeros(0, 4))]
    results = probe.map("box_iou", [((a, b), {}) for a, b in cases])
    for (a, b), got in zip(cases, results):
        got = _tensor(got, "box_iou")
        assert got.shape == (len(a), len(b)), f"box_iou of {len(a)} and {len(b)} boxes has shape {tuple(got.shape)}"
        assert got.dtype == a.dtype, f"box_iou turned {a.dtype} boxes into {got.dtype}: keep the input dtype"
        assert torch.allclose(got, torchvision.ops.box_iou(a, b), atol=1e-6), \
            f"box_iou differs from the reference on hidden {a.dtype} boxes ({len(a)} x {len(b)})"
    big1, big2 = _boxes(400, 31), _boxes(400, 32)
    start = time.perf_counter()
    probe.call("box_iou", big1, big2)
    elapsed = time.perf_counter() - start
    assert elapsed < 5.0, f"box_iou took {elapsed:.1f} s for 400 x 400 boxes: vectorise it"


def check_iou_degenerate(probe) -> None:
    deg = torch.tensor([[5.0, 5.0, 5.0, 9.0], [2.0, 2.0, 8.0, 2.0], [3.0, 3.0, 3.0, 3.0]])
    mixed = torch.cat([deg, _boxes(6, 40)])
    got, ref = _tensor(probe.call("box_iou", mixed, mixed), "box_iou"), torchvision.ops.box_iou(mixed, mixed)
    undefined = torch.isnan(ref)
    assert got.shape == ref.shape, "box_iou returned the wrong shape for degenerate boxes"
    assert torch.allclose(got[~undefined], ref[~undefined], atol=1e-6), \
        "a degenerate box against a box of positive area must give IoU 0 (clamp the intersection)"
    assert (torch.isnan(got[undefined]) | (got[undefined] == 0)).all(), "0/0 pairs must be NaN or 0"


def check_score_filter(probe) -> None:
    cases = []
    for k, (n, conf) in enumerate([(0, 0.5), (10, 0.5), (50, 0.3), (50, 0.99)]):
        s = _scores(n, 50 + k)
        cases.append((_boxes(n, 50 + k), s, _classes(n, 4, 50 + k), conf))
    s = torch.tensor([0.2, 0.5, 0.7, 0.49])
    cases.append((_boxes(4, 58), s, torch.tensor([1, 2, 1, 3]), 0.5))  # a score equal to conf is kept
    results = probe.map("score_filter", [(c, {}) for c in cases])
    for (b, s, c, conf), got in zip(cases, results):
        if isinstance(got, StudentRaised):
            raise got
        assert isinstance(got, (tuple, list)) and len(got) == 3, "score_filter returns (boxes, scores, classes)"
        keep = s >= conf
        for name, x, y in zip(("boxes", "scores", "classes"), got, (b[keep], s[keep], c[keep])):
            assert torch.equal(_tensor(x, "score_filter"), y), f"score_filter: {name} differ (keep score >= conf, in order)"


def check_nms(probe) -> None:
    cases = [(_boxes(n, 60 + k), _scores(n, 60 + k), thr) for k, n in enumerate([1, 2, 17, 200, 1000])
             for thr in (0.3, 0.5, 0.7)]
    half = torch.tensor([[0.0, 0.0, 10.0, 10.0], [0.0, 0.0, 10.0, 20.0]])  # IoU exactly 0.5
    cases += [(half, torch.tensor([0.9, 0.8]), 0.5), (half, torch.tensor([0.9, 0.8]), 0.49),
              (torch.zeros(0, 4), torch.zeros(0), 0.5),
              (_boxes(30, 66, dtype=torch.float64), _scores(30, 66, torch.float64), 0.5)]
    results = probe.map("nms", [(c, {}) for c in cases])
    for (b, s, thr), got in zip(cases, results):
        got = _tensor(got, "nms")
        assert got.dtype == torch.int64, "nms must return int64 indices"
        assert torch.equal(got, torchvision.ops.nms(b, s, thr)), \
            f"nms differs from greedy NMS on a hidden case ({len(b)} boxes, IoU threshold {thr})"


def check_batched_nms(probe) -> None:
    cases = [(_boxes(n, 70 + k), _scores(n, 70 + k), _classes(n, c, 70 + k), thr)
             for k, (n, c, thr) in enumerate([(50, 1, 0.5), (300, 3, 0.45), (2000, 80, 0.6), (400, 400, 0.5)])]
    twins = torch.tensor([[0.0, 0.0, 10.0, 10.0], [0.0, 0.0, 10.0, 10.0]])
    cases += [(twins, torch.tensor([0.9, 0.8]), torch.tensor([1, 2]), 0.5),
              (torch.zeros(0, 4), torch.zeros(0), torch.zeros(0, dtype=torch.int64), 0.5)]
    results = probe.map("batched_nms", [(c, {}) for c in cases])
    for (b, s, c, thr), got in zip(cases, results):
        got = _tensor(got, "batched_nms")
        assert got.dtype == torch.int64, "batched_nms must return int64 indices"
        assert torch.equal(got, torchvision.ops.batched_nms(b, s, c, thr)), \
            f"batched_nms differs from class-wise NMS on a hidden case ({len(b)} boxes, {len(set(c.tolist()))} classes)"


def _reference_soft_nms(boxes, scores, method, sigma, nt, threshold):
    """Bodla et al. 2017, Algorithm 1, one box at a time in plain Python floats."""
    def iou(p, q):
        w = max(0.0, min(p[2], q[2]) - max(p[0], q[0]))
        h = max(0.0, min(p[3], q[3]) - max(p[1], q[1]))
        return w * h / ((p[2] - p[0]) * (p[3] - p[1]) + (q[2] - q[0]) * (q[3] - q[1]) - w * h)
    b, s = boxes.tolist(), scores.tolist()
    alive, keep, kept = list(range(len(s))), [], []
    while alive:
        i = max(alive, key=lambda j: (s[j], -j))
        if s[i] < threshold:
            break
        keep.append(i)
        kept.append(s[i])
        alive.remove(i)
        for j in alive:
            o = iou(b[i], b[j])
            s[j] *= ((1 - o) if o >= nt else 1.0) if method == "linear" else math.exp(-o * o / sigma)
    return keep, kept


def _check_soft(probe, method: str, cases: list[tuple[int, float, float, float]]) -> None:
    calls = []
    for k, (n, sigma, nt, thr) in enumerate(cases):
        b = _boxes(n, 80 + k, size=60.0, dtype=torch.float64)
        s = _scores(n, 80 + k, torch.float64)
        calls.append(((b, s), {"method": method, "sigma": sigma, "iou_threshold": nt, "score_threshold": thr}))
    calls.append(((torch.zeros(0, 4, dtype=torch.float64), torch.zeros(0, dtype=torch.float64)), {"method": method}))
    for (args, kwargs), got in zip(calls, probe.map("soft_nms", calls)):
        if isinstance(got, StudentRaised):
            raise got
        assert isinstance(got, (tuple, list)) and len(got) == 2, "soft_nms returns (keep, new_scores)"
        keep, new = _tensor(got[0], "soft_nms"), _tensor(got[1], "soft_nms")
        ref_keep, ref_new = _reference_soft_nms(*args, method, kwargs.get("sigma", 0.5),
                                                kwargs.get("iou_threshold", 0.3), kwargs.get("score_threshold", 0.001))
        assert keep.dtype == torch.int64 and keep.tolist() == ref_keep, \
            f"{method} Soft-NMS picks boxes in another order than Algorithm 1 on a hidden case ({len(args[0])} boxes)"
        assert new.dtype == args[1].dtype and torch.allclose(new, torch.tensor(ref_new, dtype=new.dtype), atol=1e-9), \
            f"{method} Soft-NMS: the scores at pick time differ on a hidden case"


def check_soft_linear(probe) -> None:
    _check_soft(probe, "linear", [(1, 0.5, 0.3, 0.001), (40, 0.5, 0.3, 0.001), (40, 0.5, 0.5, 0.001),
                                  (120, 0.5, 0.1, 0.2)])
    try:
        probe.call("soft_nms", _boxes(3, 89), _scores(3, 89), method="hard")
    except StudentRaised as exc:
        assert exc.exc_type == "ValueError", f"an unknown method must raise ValueError, not {exc.exc_type}"
    else:
        raise AssertionError("an unknown method must raise ValueError")


def check_soft_gaussian(probe) -> None:
    _check_soft(probe, "gaussian", [(5, 0.5, 0.3, 0.001), (40, 0.5, 0.3, 0.001), (40, 0.2, 0.3, 0.001),
                                    (120, 0.5, 0.3, 0.2)])


def _reference_postprocess(boxes, scores, classes, conf, iou, max_det):
    keep = scores >= conf
    boxes, scores, classes = boxes[keep], scores[keep], classes[keep]
    order = torchvision.ops.batched_nms(boxes, scores, classes, iou)[:max_det]
    return boxes[order], scores[order], classes[order]


def check_postprocess(probe) -> None:
    cases = []
    for k, (n, c, conf, iou, max_det) in enumerate([(0, 3, 0.05, 0.5, 100), (1, 1, 0.0, 0.5, 100),
                                                     (500, 80, 0.3, 0.6, 50), (300, 5, 0.05, 0.4, 10),
                                                     (200, 5, 0.99, 0.5, 100), (200, 2, 0.0, 0.3, 1000)]):
        cases.append(((_boxes(n, 90 + k), _scores(n, 90 + k), _classes(n, c, 90 + k)),
                      {"conf": conf, "iou": iou, "max_det": max_det}))
    for (args, kwargs), got in zip(cases, probe.map("postprocess", cases)):
        if isinstance(got, StudentRaised):
            raise got
        assert isinstance(got, (tuple, list)) and len(got) == 3, "postprocess returns (boxes, scores, classes)"
        ref = _reference_postprocess(*args, kwargs["conf"], kwargs["iou"], kwargs["max_det"])
        for name, x, y in zip(("boxes", "scores", "classes"), got, ref):
            assert torch.equal(_tensor(x, "postprocess"), y), \
                f"postprocess: {name} differ from threshold -> class-wise NMS -> top max_det (conf {kwargs['conf']}, " \
                f"iou {kwargs['iou']}, max_det {kwargs['max_det']})"


@lru_cache(maxsize=1)
def _val_and_raw():
    from labkit.budget import pick
    from labkit.data.coco import load_coco
    from labkit.data.synth import ensure_dataset
    from labkit.detect.simulate import noisy_detector

    data = ensure_dataset(size=pick("default", "small"))
    val = load_coco(data / "annotations" / "instances_val.json", data / "images")
    return val, noisy_detector(val, seed=_SEED % 1000)


def check_ap50(probe) -> None:
    from labkit.data.annotations import Detections
    from labkit.metrics.detection import evaluate_coco

    val, raw = _val_and_raw()
    ids = list(raw)
    calls = [((torch.as_tensor(raw[i].xyxy, dtype=torch.float32), torch.as_tensor(raw[i].score, dtype=torch.float32),
               torch.as_tensor(raw[i].class_id)), {"conf": CONF, "iou": IOU, "max_det": MAX_DET}) for i in ids]
    predictions = {}
    for image_id, got in zip(ids, probe.map("postprocess", calls)):
        if isinstance(got, StudentRaised):
            raise got
        boxes, scores, classes = (_tensor(t, "postprocess") for t in got)
        predictions[image_id] = Detections.from_xyxy(boxes.numpy(), classes.numpy(), score=scores.numpy())
    ap50 = evaluate_coco(val, predictions).stats["AP50"]
    assert ap50 >= AP50_TARGET, f"AP50 {ap50:.3f} on the grader's detector output is below the target {AP50_TARGET}"


@lru_cache(maxsize=1)
def _network_outputs():
    """The raw candidates the notebook's stand-in network returns, recomputed here (deterministic)."""
    from labkit.detect.simulate import noisy_detector

    val, _ = _val_and_raw()
    return noisy_detector(val, seed=_NOTEBOOK_SEED)


def _records() -> list:
    return sorted(_val_and_raw()[0].images, key=lambda r: r.id)


def _raw_tensors(record) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    det = _network_outputs()[record.id]
    return (torch.as_tensor(det.xyxy, dtype=torch.float32), torch.as_tensor(det.score, dtype=torch.float32),
            torch.as_tensor(det.class_id))


def check_inference(probe) -> None:
    records = _records()
    # other conf and max_det than the defaults; IOU stays (the postprocess item already tests iou)
    got = probe.call("detect_images", records, conf=0.3, iou=IOU, max_det=20)
    assert isinstance(got, (list, tuple)) and len(got) == len(records), \
        f"detect_images returns one (boxes, scores, classes) per record, in order ({len(records)} records)"
    for record, result in zip(records, got):
        assert isinstance(result, (tuple, list)) and len(result) == 3, "each result is (boxes, scores, classes)"
        ref = _reference_postprocess(*_raw_tensors(record), 0.3, IOU, 20)
        for name, x, y in zip(("boxes", "scores", "classes"), result, ref):
            assert torch.equal(_tensor(x, "detect_images"), y), \
                f"detect_images: {name} of {record.file_name} differ from post-processing the network's output " \
                "at the given conf, iou and max_det"


def check_latency(probe) -> None:
    from labkit.data.images import load_image

    val, _ = _val_and_raw()
    records = _records()
    probe.call("detect_images", records[:1])  # warm-up: first-call costs are not the loop's
    start = time.perf_counter()
    probe.call("detect_images", records)
    per_image = 1000 * (time.perf_counter() - start) / len(records)
    start = time.perf_counter()
    for record in records:
        load_image(val.root / record.file_name)
        _reference_postprocess(*_raw_tensors(record), CONF, IOU, MAX_DET)
    peer = 1000 * (time.perf_counter() - start) / len(records)
    assert per_image <= LATENCY_BUDGET_MS, \
        f"detect_images took {per_image:.0f} ms per image, over the budget of {LATENCY_BUDGET_MS:.0f} ms " \
        f"(the grader's own loop: {peer:.1f} ms per image): is once-per-run work done per image?"


LAB = LabSpec(
    items=[Item("iou", 2, check_iou), Item("iou_degenerate", 1, check_iou_degenerate),
           Item("score_filter", 1, check_score_filter), Item("nms", 2, check_nms),
           Item("batched_nms", 1, check_batched_nms), Item("soft_nms_linear", 1, check_soft_linear),
           Item("soft_nms_gaussian", 1, check_soft_gaussian), Item("postprocess", 1, check_postprocess),
           Item("postprocess_ap50", 2, check_ap50, timeout=120.0),
           Item("inference_script", 1, check_inference, timeout=120.0), Item("inference_latency", 1, check_latency, timeout=120.0),
           *quiz_items(Path(__file__).resolve().parents[1] / "keys" / "ch02_nms.yaml")],
    blocked_modules=("torchvision",),
    skip_cells=("iou_visible", "threshold_visible", "nms_visible", "softnms_visible", "postprocess_visible",
                "evaluate_run", "explore_run", "inference_visible", *(f"q{k}_check" for k in range(1, 6))),
    prepare=_val_and_raw,
)
