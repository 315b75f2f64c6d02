"""Benchmark: ``labkit.metrics.detection.evaluate_coco`` vs pycocotools vs faster-coco-eval.

Synthetic COCO sets (default 2,000 and 5,000 images of 640 x 480, ~6 objects and ~12 detections per
image, 20 classes) are evaluated by each tool from the same in-memory dicts; the libraries get
fresh deep copies made outside the timer (they write into their inputs), labkit does not need
them. Each tool runs ``--repeats`` times, interleaved; the best and median wall times are kept.
labkit's time includes its input checks and report; the budget is <= 1.2 x faster-coco-eval.

Writes ``artifacts/bench_metrics_detection.json``. Usage::

    python benchmarks/metrics_detection.py [--sizes 2000 5000] [--repeats 3] [--seed 0]
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import gc
import io
import platform
import statistics
import sys
import time
from typing import Any, Callable

import numpy as np
from tqdm import tqdm

from labkit.artifacts import artifacts_dir, write_json
from labkit.metrics.detection import evaluate_coco

WIDTH, HEIGHT = 640, 480


def synthetic_set(num_images: int, *, seed: int = 0, gt_per_image: float = 6, det_per_image: float = 12,
                  num_classes: int = 20) -> tuple[dict, list[dict]]:
    """A COCO ground truth and a results list: half the detections are jittered copies of objects
    (10 % with a wrong class), the rest random boxes; scores favour the copies."""
    rng = np.random.default_rng(seed)
    n_gt = rng.poisson(gt_per_image, num_images)
    gt_img = np.repeat(np.arange(1, num_images + 1), n_gt)
    wh = np.exp(rng.uniform(np.log(8), np.log(300), (gt_img.size, 2)))
    xy = rng.uniform(0, 1, (gt_img.size, 2)) * ([WIDTH, HEIGHT] - wh)
    gt_box = np.hstack([xy, wh])
    gt_cls = rng.integers(1, num_classes + 1, gt_img.size)

    copies = rng.random(gt_img.size) < det_per_image / (2 * gt_per_image)
    jitter = rng.normal(0, 0.1, (copies.sum(), 4)) * np.hstack([wh[copies], wh[copies]])
    det_box = [gt_box[copies] + jitter]
    det_cls = [np.where(rng.random(copies.sum()) < 0.9, gt_cls[copies], rng.integers(1, num_classes + 1, copies.sum()))]
    det_img = [gt_img[copies]]
    n_bg = rng.poisson(det_per_image / 2, num_images)
    bg_wh = np.exp(rng.uniform(np.log(8), np.log(300), (n_bg.sum(), 2)))
    det_box.append(np.hstack([rng.uniform(0, 1, (n_bg.sum(), 2)) * ([WIDTH, HEIGHT] - bg_wh), bg_wh]))
    det_cls.append(rng.integers(1, num_classes + 1, n_bg.sum()))
    det_img.append(np.repeat(np.arange(1, num_images + 1), n_bg))
    scores = np.concatenate([rng.beta(5, 2, copies.sum()), rng.beta(2, 5, n_bg.sum())])
    boxes = np.concatenate(det_box)
    boxes[:, 2:] = np.maximum(boxes[:, 2:], 1.0)

    gt = {"images": [{"id": i, "width": WIDTH, "height": HEIGHT, "file_name": f"{i:06d}.jpg"} for i in range(1, num_images + 1)],
          "categories": [{"id": c, "name": f"class{c:02d}"} for c in range(1, num_classes + 1)],
          "annotations": [{"id": k + 1, "image_id": i, "category_id": c, "bbox": b, "area": b[2] * b[3], "iscrowd": 0}
                          for k, (i, c, b) in enumerate(zip(gt_img.tolist(), gt_cls.tolist(), gt_box.tolist()))]}
    results = [{"image_id": i, "category_id": c, "bbox": b, "score": s} for i, c, b, s in
               zip(np.concatenate(det_img).tolist(), np.concatenate(det_cls).tolist(), boxes.tolist(), scores.tolist())]
    return gt, results


def _library(coco_cls: type, eval_cls: type) -> Callable[[dict, list], np.ndarray]:
    def run(gt: dict, results: list) -> np.ndarray:
        with contextlib.redirect_stdout(io.StringIO()):
            coco_gt = coco_cls()
            coco_gt.dataset = gt
            coco_gt.createIndex()
            ev = eval_cls(coco_gt, coco_gt.loadRes(results), "bbox")
            ev.evaluate()
            ev.accumulate()
            ev.summarize()
        return np.asarray(ev.stats[:12], dtype=np.float64)
    return run


def tools() -> dict[str, tuple[Callable[[dict, list], np.ndarray], bool]]:
    """Tool name -> (run(gt, results) -> 12 stats, needs fresh copies of its inputs)."""
    from faster_coco_eval import COCO as FasterCOCO, COCOeval_faster
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    return {"labkit": (lambda gt, res: evaluate_coco(gt, res).raw_stats, False),
            "faster_coco_eval": (_library(FasterCOCO, COCOeval_faster), True),
            "pycocotools": (_library(COCO, COCOeval), True)}


def bench_size(num_images: int, repeats: int, seed: int) -> dict[str, Any]:
    gt, results = synthetic_set(num_images, seed=seed)
    times: dict[str, list[float]] = {name: [] for name in tools()}
    stats: dict[str, np.ndarray] = {}
    for _ in tqdm(range(repeats), desc=f"{num_images} images", unit="round"):
        for name, (run, needs_copy) in tools().items():
            args = copy.deepcopy((gt, results)) if needs_copy else (gt, results)
            gc.collect()
            start = time.perf_counter()
            stats[name] = run(*args)
            times[name].append(time.perf_counter() - start)
    ref = stats["pycocotools"]
    return {
        "images": num_images, "annotations": len(gt["annotations"]), "detections": len(results),
        "classes": len(gt["categories"]),
        "seconds_best": {k: round(min(v), 4) for k, v in times.items()},
        "seconds_median": {k: round(statistics.median(v), 4) for k, v in times.items()},
        "labkit_over_faster_best": round(min(times["labkit"]) / min(times["faster_coco_eval"]), 3),
        "labkit_over_faster_median": round(statistics.median(times["labkit"]) / statistics.median(times["faster_coco_eval"]), 3),
        "identical_to_pycocotools": {k: bool(np.array_equal(v, ref)) for k, v in stats.items()},
        "max_abs_diff_to_pycocotools": {k: float(np.abs(v - ref).max()) for k, v in stats.items()},
        "AP": float(stats["labkit"][0]),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[2000, 5000], help="numbers of images")
    parser.add_argument("--repeats", type=int, default=3, help="timed runs per tool and size")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    runs = [bench_size(n, args.repeats, args.seed) for n in args.sizes]
    payload = {"benchmark": "COCO bbox evaluation", "python": platform.python_version(),
               "machine": platform.machine(), "repeats": args.repeats, "seed": args.seed,
               "budget": "labkit <= 1.2 x faster_coco_eval", "runs": runs,
               "within_budget": all(r["labkit_over_faster_best"] <= 1.2 for r in runs)}
    path = write_json(artifacts_dir() / "bench_metrics_detection.json", payload)
    for r in runs:
        print(f"{r['images']} images: {r['seconds_best']} s (best of {args.repeats}); labkit/faster "
              f"{r['labkit_over_faster_best']}; identical {r['identical_to_pycocotools']}")
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
