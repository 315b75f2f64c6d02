"""COCO evaluation: parity with pycocotools on seeded random sets, the official fake results,
input validation (DataError naming file + record) and the report's outputs."""

from __future__ import annotations

import contextlib
import copy
import io
import json
import math
from pathlib import Path

import numpy as np
import pytest
from matplotlib.figure import Figure
from pycocotools import mask as mask_utils
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval

from labkit.data.annotations import Detections
from labkit.data.coco import coco_to_dataset
from labkit.errors import DataError
from labkit.metrics.detection import evaluate_coco, stat_names

H, W = 150, 200
NUM_CATS = 5  # category 5 never occurs in the ground truth


def _mask(rng: np.random.Generator, x: float, y: float, w: float, h: float) -> np.ndarray:
    """A filled ellipse or rectangle inside the box, as an (H, W) uint8 mask (never empty)."""
    yy, xx = np.mgrid[0:H, 0:W]
    cx, cy = x + w / 2, y + h / 2
    if rng.random() < 0.5:
        m = ((xx + 0.5 - cx) / max(w / 2, 0.5)) ** 2 + ((yy + 0.5 - cy) / max(h / 2, 0.5)) ** 2 <= 1
    else:
        m = (xx + 0.5 >= x) & (xx + 0.5 <= x + w) & (yy + 0.5 >= y) & (yy + 0.5 <= y + h)
    if not m.any():
        m[min(int(cy), H - 1), min(int(cx), W - 1)] = True
    return m.astype(np.uint8)


def _rle(m: np.ndarray) -> dict:
    r = mask_utils.encode(np.asfortranarray(m))
    return {"size": [H, W], "counts": r["counts"].decode("ascii")}


def _uncompressed(m: np.ndarray) -> dict:
    """COCO's crowd format: column-major run lengths starting with a 0-run."""
    flat = m.flatten(order="F")
    change = np.flatnonzero(np.diff(flat)) + 1
    runs = np.diff(np.concatenate([[0], change, [flat.size]]))
    counts = runs.tolist() if flat[0] == 0 else [0, *runs.tolist()]
    return {"size": [H, W], "counts": counts}


def _box(rng: np.random.Generator) -> list[float]:
    """Sides log-uniform in [3, 140] px: areas fall in COCO's small, medium and large ranges."""
    w, h = np.exp(rng.uniform(np.log(3), np.log(140), 2))
    w, h = min(w, W - 1), min(h, H - 1)
    return [float(rng.uniform(0, W - w)), float(rng.uniform(0, H - h)), float(w), float(h)]


def random_case(seed: int) -> tuple[dict, list[dict], list[dict]]:
    """A small COCO ground truth plus bbox and segm results with every awkward case in the mix:
    empty images, images without predictions, a category absent from GT (5) and one absent from
    the predictions (seed-dependent), crowd regions, all area ranges, >100 detections on one image
    (every 4th seed), duplicates, tied scores (scores on a 0.1 grid)."""
    rng = np.random.default_rng(seed)
    images, anns, bbox_res, segm_res = [], [], [], []
    unpredicted_cat = int(rng.integers(1, NUM_CATS)) if seed % 3 == 1 else None  # never predicted
    for k in range(int(rng.integers(3, 7))):
        image_id = 7 + 3 * k
        images.append({"id": image_id, "width": W, "height": H, "file_name": f"{image_id}.jpg"})
        objects = []
        for _ in range(int(rng.integers(0, 9)) if k else 0):  # image 0 is always empty
            box = _box(rng)
            m = _mask(rng, *box)
            crowd = int(rng.random() < 0.12)
            rle = mask_utils.encode(np.asfortranarray(m))
            segm = _uncompressed(m) if crowd else _rle(m)
            if not crowd and rng.random() < 0.3:  # a polygon, as most COCO ground truth is
                x, y, w, h = box
                segm = [[x, y, x + w, y, x + w, y + h, x, y + h]]
                rle = mask_utils.merge(mask_utils.frPyObjects(segm, H, W))
            cat = int(rng.integers(1, NUM_CATS))
            anns.append({"id": 100 * seed + len(anns) + 1, "image_id": image_id, "category_id": cat,
                         "bbox": [float(v) for v in mask_utils.toBbox(rle)], "area": float(mask_utils.area(rle)),
                         "iscrowd": crowd, "segmentation": segm})
            objects.append((cat, box))
        if k and rng.random() < 0.25:
            continue  # no predictions on this image (image 0, empty, always gets false positives)
        dets = []
        for cat, (x, y, w, h) in objects:
            for _ in range(int(rng.choice([0, 1, 1, 2]))):  # missed, found, found twice (duplicate)
                jit = rng.normal(0, 0.08, 4) * [w, h, w, h]
                c = cat if rng.random() < 0.9 else int(rng.integers(1, NUM_CATS + 1))
                dets.append((c, [x + jit[0], y + jit[1], max(w + jit[2], 1.0), max(h + jit[3], 1.0)]))
        n_bg = 110 if (seed % 4 == 0 and k == 1) else int(rng.integers(0 if k else 1, 4))
        dets += [(int(rng.integers(1, NUM_CATS + 1)), _box(rng)) for _ in range(n_bg)]
        for cat, box in dets:
            cat = NUM_CATS if cat == unpredicted_cat else cat
            box = [float(np.clip(box[0], 0, W - 2)), float(np.clip(box[1], 0, H - 2)), float(box[2]), float(box[3])]
            score = round(float(rng.integers(0, 11)) / 10, 1)
            bbox_res.append({"image_id": image_id, "category_id": cat, "bbox": box, "score": score})
            segm = {"image_id": image_id, "category_id": cat, "score": score, "segmentation": _rle(_mask(rng, *box))}
            if seed % 3 == 0:
                segm["bbox"] = box  # pycocotools then takes the box area for the size ranges
            segm_res.append(segm)
    cats = [{"id": c, "name": f"class{c}"} for c in range(1, NUM_CATS + 1)]
    return {"images": images, "annotations": anns, "categories": cats}, bbox_res, segm_res


def pycocotools_eval(gt: dict, results: list[dict], iou_type: str) -> COCOeval:
    """The reference: plain pycocotools on deep copies."""
    with contextlib.redirect_stdout(io.StringIO()):
        coco_gt = COCO()
        coco_gt.dataset = copy.deepcopy(gt)
        coco_gt.createIndex()
        ev = COCOeval(coco_gt, coco_gt.loadRes(copy.deepcopy(results)), iou_type)
        ev.evaluate()
        ev.accumulate()
        ev.summarize()
    return ev


SEEDS = range(50)


@pytest.mark.parametrize("seed", SEEDS)
def test_parity_with_pycocotools(seed: int) -> None:
    gt, bbox_res, segm_res = random_case(seed)
    for iou_type, results in (("bbox", bbox_res), ("segm", segm_res)):
        ref = pycocotools_eval(gt, results, iou_type)
        for backend in ("faster", "pycocotools"):
            report = evaluate_coco(gt, results, iou_type=iou_type, backend=backend)
            np.testing.assert_allclose(report.raw_stats, ref.stats, rtol=0, atol=1e-9, err_msg=f"{iou_type}/{backend}")
            np.testing.assert_allclose(report.precision, ref.eval["precision"], rtol=0, atol=1e-9)
            np.testing.assert_allclose(report.recall, ref.eval["recall"], rtol=0, atol=1e-9)
            for name, value, raw in zip(stat_names(), report.stats.values(), ref.stats):
                assert (math.isnan(value) and raw == -1) or abs(value - raw) <= 1e-9, name


def test_random_cases_cover_the_awkward_cases() -> None:
    """The parity sets really contain what they claim to."""
    seen = dict.fromkeys(["empty image", "image without predictions", "category absent from GT",
                          "category absent from predictions", "crowd", "small", "medium", "large",
                          ">100 detections", "duplicate detections", "tied scores"], False)
    for seed in SEEDS:
        gt, res, _ = random_case(seed)
        gt_imgs = {a["image_id"] for a in gt["annotations"]}
        pred_imgs = [r["image_id"] for r in res]
        seen["empty image"] |= any(im["id"] not in gt_imgs for im in gt["images"])
        seen["image without predictions"] |= any(im["id"] in gt_imgs and im["id"] not in pred_imgs for im in gt["images"])
        gt_cats = {a["category_id"] for a in gt["annotations"]}
        pred_cats = {r["category_id"] for r in res}
        seen["category absent from GT"] |= NUM_CATS not in gt_cats and NUM_CATS in pred_cats
        seen["category absent from predictions"] |= bool(gt_cats - pred_cats)
        seen["crowd"] |= any(a["iscrowd"] for a in gt["annotations"])
        for a in gt["annotations"]:
            seen["small" if a["area"] < 32**2 else "medium" if a["area"] < 96**2 else "large"] = True
        seen[">100 detections"] |= max(np.unique(pred_imgs, return_counts=True)[1], default=0) > 100
        seen["duplicate detections"] |= len({(r["image_id"], r["category_id"]) for r in res}) < len(res)
        seen["tied scores"] |= len({r["score"] for r in res}) < len(res)
    assert all(seen.values()), [k for k, v in seen.items() if not v]


def test_empty_predictions_score_zero_and_undefined_is_nan() -> None:
    gt = {"images": [{"id": 1, "width": 100, "height": 100}],
          "annotations": [{"id": 1, "image_id": 1, "category_id": 1, "bbox": [10, 10, 50, 50], "area": 2500, "iscrowd": 0}],
          "categories": [{"id": 1, "name": "a"}, {"id": 2, "name": "b"}]}
    for backend in ("faster", "pycocotools"):
        report = evaluate_coco(gt, [], backend=backend)
        assert report.stats["AP"] == 0 and report.stats["AR100"] == 0 and report.stats["APm"] == 0
        assert math.isnan(report.stats["APs"]) and math.isnan(report.stats["APl"])  # no small/large objects
        assert report.raw_stats[3] == -1
        rows = {r["category_id"]: r for r in report.per_class()}
        assert rows[1]["AP"] == 0 and math.isnan(rows[2]["AP"])
        assert report.to_dict()["stats"]["APs"] is None


def test_detections_input_equals_results_list_and_inputs_are_untouched() -> None:
    gt, res, segm = random_case(2)
    before = copy.deepcopy((gt, res))
    by_list = evaluate_coco(gt, res)
    preds = {im["id"]: Detections.empty(with_score=True) for im in gt["images"]}
    for image_id in preds:
        mine = [r for r in res if r["image_id"] == image_id]
        if mine:
            preds[image_id] = Detections([r["bbox"] for r in mine], [r["category_id"] for r in mine],
                                         score=[r["score"] for r in mine])
    np.testing.assert_array_equal(evaluate_coco(coco_to_dataset(gt), preds).raw_stats, by_list.raw_stats)
    assert by_list.stats["AP"] > 0.4
    assert (gt, res) == before
    segm_preds = {im["id"]: Detections.empty(with_score=True) for im in gt["images"]}
    segm_preds.update({r["image_id"]: Detections.concat([segm_preds[r["image_id"]], Detections(
        [[0, 0, 1, 1]], [r["category_id"]], score=[r["score"]], segmentation=[r["segmentation"]])]) for r in segm[:1]})
    with pytest.raises(DataError, match="segmentation for every prediction"):
        evaluate_coco(gt, segm_preds, iou_type="segm")


def test_per_class_mean_is_ap_and_outputs(tmp_path: Path) -> None:
    gt, res, _ = random_case(8)
    report = evaluate_coco(gt, res)
    aps = [r["AP"] for r in report.per_class()]
    assert np.nanmean(aps) == pytest.approx(report.stats["AP"], abs=1e-12)
    json.dumps(report.to_dict(), allow_nan=False)
    md = report.to_markdown()
    assert "| AP | AP50 |" in md and "class5" in md and "n/a" in md
    rec, prec = report.pr_curve(iou=0.5)
    assert rec.shape == prec.shape == (101,)
    assert np.mean(prec) == pytest.approx(report.stats["AP50"], abs=1e-12)
    fig = report.plot_pr(tmp_path / "pr.png")
    assert (tmp_path / "pr.png").stat().st_size > 1000 and fig.axes
    ax = Figure().add_subplot()
    assert report.plot_pr(ax, iou=0.75, categories=[1, 2]) is ax.figure and len(ax.lines) == 3
    with pytest.raises(ValueError, match="not one of the thresholds"):
        report.pr_curve(iou=0.52)


# --------------------------------------------------------------------------- validation
def _gt() -> dict:
    return {"images": [{"id": 1, "width": 100, "height": 80}, {"id": 2, "width": 100, "height": 80}],
            "annotations": [{"id": 1, "image_id": 1, "category_id": 1, "bbox": [10, 10, 30, 20], "area": 600, "iscrowd": 0},
                            {"id": 2, "image_id": 2, "category_id": 2, "bbox": [50, 40, 20, 20], "area": 400, "iscrowd": 0}],
            "categories": [{"id": 1, "name": "a"}, {"id": 2, "name": "b"}]}


def _res() -> list[dict]:
    return [{"image_id": 1, "category_id": 1, "bbox": [11, 10, 30, 20], "score": 0.9},
            {"image_id": 2, "category_id": 2, "bbox": [50, 41, 20, 20], "score": 0.5}]


def _edit(obj, path, value):
    obj = copy.deepcopy(obj)
    target = obj
    for key in path[:-1]:
        target = target[key]
    if value is KeyError:
        del target[path[-1]]
    else:
        target[path[-1]] = value
    return obj


BAD_GT = {
    "duplicate annotation id": (("annotations", 1, "id"), 1, "annotation 1", "duplicate annotation id"),
    "annotation id 0": (("annotations", 0, "id"), 0, "annotation 0", ">= 1"),
    "unknown image": (("annotations", 1, "image_id"), 9, "annotation 2", "image id 9"),
    "unknown category": (("annotations", 1, "category_id"), 7, "annotation 2", "category id 7"),
    "nan box": (("annotations", 0, "bbox"), [1, float("nan"), 3, 4], "annotation 1", "NaN or infinite"),
    "negative box": (("annotations", 0, "bbox"), [1, 2, -3, 4], "annotation 1", "negative width"),
    "missing area": (("annotations", 0, "area"), KeyError, "annotation 1", "lacks 'area'"),
    "bad crowd": (("annotations", 0, "iscrowd"), 2, "annotation 1", "iscrowd"),
    "duplicate image": (("images", 1, "id"), 1, "images[1]", "duplicate image id"),
    "string box": (("annotations", 1, "bbox"), "10 10 5 5", "annotation 2", "list of 4 numbers"),
}


@pytest.mark.parametrize("case", BAD_GT)
def test_bad_ground_truth_names_file_and_record(case: str, tmp_path: Path) -> None:
    path, value, record, message = BAD_GT[case]
    gt_file = tmp_path / "gt.json"
    gt_file.write_text(json.dumps(_edit(_gt(), path, value)))
    with pytest.raises(DataError, match=message) as err:
        evaluate_coco(gt_file, _res())
    assert str(gt_file) in str(err.value) and f"record {record}" in str(err.value)


BAD_RESULTS = {
    "unknown image": ((1, "image_id"), 5, "result #1", "image id 5"),
    "unknown category": ((0, "category_id"), 3, "result #0", "category id 3"),
    "nan box": ((1, "bbox"), [1, 2, float("inf"), 4], "result #1", "NaN or infinite"),
    "negative box": ((1, "bbox"), [1, 2, 3, -4], "result #1", "negative width"),
    "score above 1": ((0, "score"), 1.5, "result #0", r"outside \[0, 1\]"),
    "negative score": ((1, "score"), -0.1, "result #1", r"outside \[0, 1\]"),
    "nan score": ((1, "score"), float("nan"), "result #1", "not finite"),
    "missing score": ((1, "score"), KeyError, "result #1", "lacks 'score'"),
    "null score": ((0, "score"), None, "result #0", "must be a number"),
    "missing box": ((1, "bbox"), KeyError, "result #1", "lacks 'bbox'"),
}


@pytest.mark.parametrize("case", BAD_RESULTS)
def test_bad_results_name_file_and_record(case: str, tmp_path: Path) -> None:
    path, value, record, message = BAD_RESULTS[case]
    res_file = tmp_path / "pred.json"
    res_file.write_text(json.dumps(_edit(_res(), path, value)))
    with pytest.raises(DataError, match=message) as err:
        evaluate_coco(_gt(), res_file)
    assert str(res_file) in str(err.value) and f"record {record}" in str(err.value)


@pytest.mark.parametrize("text, message", [("", "file is empty"), ("[{", "not valid JSON"),
                                           ('{"annotations": []}', "JSON list")])
def test_empty_or_malformed_results_file(text: str, message: str, tmp_path: Path) -> None:
    res_file = tmp_path / "pred.json"
    res_file.write_text(text)
    with pytest.raises(DataError, match=message) as err:
        evaluate_coco(_gt(), res_file)
    assert str(res_file) in str(err.value)


def test_masks_of_the_wrong_size_are_rejected() -> None:
    gt = _gt()
    m = np.zeros((80, 100), np.uint8)
    m[10:30, 10:40] = 1
    good = mask_utils.encode(np.asfortranarray(m))
    good["counts"] = good["counts"].decode()
    for a in gt["annotations"]:
        a["segmentation"] = good
    res = [{"image_id": 1, "category_id": 1, "score": 0.8, "segmentation": good}]
    assert evaluate_coco(gt, res, iou_type="segm").stats["AP"] == pytest.approx(0.5)  # class 1 perfect, class 2 missed
    wrong = {"size": [100, 80], "counts": good["counts"]}
    with pytest.raises(DataError, match=r"mask size \[100, 80\].*\[80, 100\]") as err:
        evaluate_coco(gt, [dict(res[0], segmentation=wrong)], iou_type="segm")
    assert "result #0" in str(err.value)
    with pytest.raises(DataError, match="mask size") as err:
        evaluate_coco(_edit(gt, ("annotations", 1, "segmentation"), wrong), res, iou_type="segm")
    assert "annotation 2" in str(err.value)
    with pytest.raises(DataError, match="lacks 'segmentation'"):
        evaluate_coco(_gt(), res, iou_type="segm")


def test_detections_without_scores_and_bad_options() -> None:
    with pytest.raises(DataError, match="need scores") as err:
        evaluate_coco(_gt(), {1: Detections([[0, 0, 5, 5]], [1])})
    assert "image 1" in str(err.value)
    with pytest.raises(ValueError, match="backend"):
        evaluate_coco(_gt(), _res(), backend="detectron")
    with pytest.raises(ValueError, match="iou_type"):
        evaluate_coco(_gt(), _res(), iou_type="keypoints")
    with pytest.raises(ValueError, match="max_dets"):
        evaluate_coco(_gt(), _res(), max_dets=(10, 1, 100))
    report = evaluate_coco(_gt(), _res(), max_dets=(1, 5, 20))
    assert list(report.stats)[6:9] == ["AR1", "AR5", "AR20"]


# --------------------------------------------------------------------------- real reference values
FAKE100 = ("coco-val2014-fake100", "faster_coco_eval/tests/dataset/cocoapi/instances_val2014_100.json")
REFERENCE = {  # SOURCE.md: asserted to 10 places in faster_coco_eval/tests/test_cocoapi_fake_data.py
    "bbox": [0.5045806987249628, 0.6969727247299577, 0.5729816669904824, 0.5856257209410443,
             0.5193996948036719, 0.5013978986347466, 0.38681277964578054, 0.5936795762842003,
             0.595352982877607, 0.6398109626113442, 0.5664205978994309, 0.5642905982905982],
    "segm": [0.3195452758576433, 0.5622883972521636, 0.29892653412086784, 0.3873740315997838,
             0.31018272403369485, 0.3269339071005138, 0.2682297225711534, 0.41544868114906375,
             0.4168394992198818, 0.4694498622754236, 0.37675922666197265, 0.3814715099715099],
}


@pytest.mark.shared
@pytest.mark.parametrize("backend", ["faster", "pycocotools"])
@pytest.mark.parametrize("iou_type", ["bbox", "segm"])
def test_official_fake_results_reproduce_reference(shared_data: Path, iou_type: str, backend: str) -> None:
    folder = shared_data / FAKE100[0]
    results = folder / f"cocoapi/results/instances_val2014_fake{iou_type}100_results.json"
    report = evaluate_coco(folder / FAKE100[1], results, iou_type=iou_type, backend=backend)
    np.testing.assert_allclose(list(report.stats.values()), REFERENCE[iou_type], rtol=0, atol=1e-9)
    assert round(report.stats["AP"], 3) == {"bbox": 0.505, "segm": 0.320}[iou_type]


@pytest.mark.shared
def test_padilla_variant_ground_truth_reproduces_reference(shared_data: Path) -> None:
    """Crowd boxes dropped and box areas: SOURCE.md's second reference set (to 1e-6)."""
    folder = shared_data / FAKE100[0] / "review_object_detection_metrics/tests/test_coco_eval"
    dets = json.loads((folder / "dets/sampled_bbox_results.json").read_text())["annotations"]
    report = evaluate_coco(folder / "gts/sampled_gts_bbox_area.json", dets)
    expected = [0.503647, 0.696973, 0.571667, 0.593252, 0.557991, 0.489363,
                0.386813, 0.593680, 0.595353, 0.654764, 0.603130, 0.553744]
    np.testing.assert_allclose(list(report.stats.values()), expected, rtol=0, atol=1e-6)


def _segm_gt(segmentation) -> dict:
    return {"images": [{"id": 1, "width": 20, "height": 20}], "categories": [{"id": 1, "name": "a"}],
            "annotations": [{"id": 1, "image_id": 1, "category_id": 1, "bbox": [2, 2, 8, 8], "area": 32,
                             "iscrowd": 0, "segmentation": segmentation},
                            {"id": 2, "image_id": 1, "category_id": 1, "bbox": [2, 2, 8, 8], "area": 64,
                             "iscrowd": 0, "segmentation": [[2, 2, 10, 2, 10, 10, 2, 10]]}]}


def test_segm_polygon_needs_three_points_and_names_the_annotation() -> None:
    """A triangle (6 numbers, the fewest a polygon can have) is accepted; 2 points are not."""
    from labkit.metrics.coco_inputs import prepare_ground_truth

    gt = prepare_ground_truth(_segm_gt([[2, 2, 10, 2, 2, 10]]), iou_type="segm")
    assert gt.coco["annotations"][0]["segmentation"] == [[2, 2, 10, 2, 2, 10]]
    with pytest.raises(DataError, match=r"record annotation 1: segmentation must be .* >= 3 \(x, y\) points"):
        prepare_ground_truth(_segm_gt([[2, 2, 10, 2]]), iou_type="segm")
    with pytest.raises(DataError, match="record annotation 1: polygon has a NaN or infinite coordinate"):
        prepare_ground_truth(_segm_gt([[2, 2, 10, 2, 2, float("nan")]]), iou_type="segm")


def test_non_object_entries_are_named_by_position() -> None:
    from labkit.metrics.coco_inputs import prepare_ground_truth

    coco = _segm_gt([[2, 2, 10, 2, 2, 10]])
    coco["annotations"].insert(1, "oops")
    coco["annotations"].append(7)
    with pytest.raises(DataError, match=r"record annotations\[1\]: entry is not a JSON object"):
        prepare_ground_truth(coco)
