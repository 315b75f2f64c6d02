import json
import re
import warnings
from pathlib import Path

import numpy as np
import pytest

from labkit.data.annotations import Dataset, Detections, ImageRecord
from labkit.data.boxes import (Letterbox, cxcywh_to_xyxy, denormalize, normalize, xywh_to_xyxy,
                               xyxy_to_cxcywh, xyxy_to_xywh)
from labkit.data.coco import (coco_to_dataset, dataset_to_coco, detections_to_results, load_coco, read_json,
                              results_to_detections)
from labkit.data.masks import box_to_mask, mask_to_polygons, mask_to_rle, rle_to_mask, segmentation_to_mask
from labkit.errors import DataError


def test_detections_shapes_and_subsets():
    d = Detections.from_xyxy([[0, 0, 10, 20], [5, 5, 8, 9]], [1, 2], score=[0.9, 0.1], data={"iscrowd": [0, 1]})
    assert np.allclose(d.xywh, [[0, 0, 10, 20], [5, 5, 3, 4]])
    assert len(d[d.score > 0.5]) == 1 and d[1].get("iscrowd")[0] == 1
    both = Detections.concat([d, d[0]])
    assert len(both) == 3 and both.score is not None


@pytest.mark.parametrize("bad", [
    dict(xywh=np.zeros((2, 3)), class_id=[1, 2]),
    dict(xywh=np.zeros((2, 4)), class_id=[1]),
    dict(xywh=np.zeros((2, 4)), class_id=[1, 2], score=[0.5]),
    dict(xywh=np.zeros((2, 4)), class_id=[1, 2], segmentation=[None]),
    dict(xywh=np.zeros((2, 4)), class_id=[1, 2], data={"visibility": [1.0]}),
])
def test_detections_reject_inconsistent_lengths(bad):
    with pytest.raises(DataError):
        Detections(**bad)


def test_box_formats_round_trip():
    rng = np.random.default_rng(0)
    xyxy = np.sort(rng.uniform(0, 100, (50, 2, 2)), axis=1).transpose(0, 2, 1).reshape(50, 4)[:, [0, 2, 1, 3]]
    assert np.allclose(xywh_to_xyxy(xyxy_to_xywh(xyxy)), xyxy)
    assert np.allclose(cxcywh_to_xyxy(xyxy_to_cxcywh(xyxy)), xyxy)
    assert np.allclose(denormalize(normalize(xyxy, 640, 480), 640, 480), xyxy)


@pytest.mark.parametrize("src", [(240, 320), (320, 240), (100, 100), (37, 301)])
def test_letterbox_inverse_is_exact(src):
    lb = Letterbox.fit(src, 256)
    boxes = np.array([[3.5, 7.25, 30.0, 31.0], [0, 0, src[1], src[0]]])
    assert np.allclose(lb.inverse_boxes(lb.boxes(boxes)), boxes, atol=1e-9)
    img = np.zeros(src + (3,), np.uint8)
    out = lb.image(img)
    assert out.shape == (256, 256, 3)
    mask = np.zeros(src, np.uint8)
    mask[src[0] // 4: src[0] // 2, src[1] // 4: src[1] // 2] = 3
    back = lb.inverse_mask(lb.mask(mask))
    assert back.shape == src and set(np.unique(back)) <= {0, 3}
    assert (back == mask).mean() > 0.95


def test_letterbox_rejects_wrong_image():
    with pytest.raises(DataError):
        Letterbox.fit((10, 20), 32).image(np.zeros((11, 20), np.uint8))


def test_letterbox_centres_the_resized_image():
    """Hand-worked: a 100x50 (h x w) image in a 100x100 square keeps scale 1 and gets 25 px of
    padding left and right; an 40x80 one in 60x100 scales by min(60/40, 100/80) = 1.25 to 50x100
    and gets 5 px above and below."""
    tall = Letterbox.fit((100, 50), 100)
    assert tall == Letterbox(100, 50, 100, 100, 1.0, 25, 0)
    assert tall.boxes(np.array([[0, 0, 50, 100]])).tolist() == [[25, 0, 75, 100]]
    out = tall.image(np.full((100, 50), 7, np.uint8))
    assert (out[:, 25:75] == 7).all() and (out[:, :25] == 114).all() and (out[:, 75:] == 114).all()
    wide = Letterbox.fit((40, 80), (60, 100))
    assert wide == Letterbox(40, 80, 60, 100, 1.25, 0, 5)
    assert wide.boxes(np.array([[0, 0, 80, 40]])).tolist() == [[0, 5, 100, 55]]


@pytest.mark.parametrize("src, out", [((0, 10), 8), ((10, 0), 8), ((10, 10), (0, 8)), ((10, 10), (8, 0))])
def test_letterbox_needs_positive_sizes(src, out):
    with pytest.raises(DataError, match="positive sizes"):
        Letterbox.fit(src, out)


def test_box_conversions_widen_small_integer_types():
    """Boxes given in uint8 are computed in float64: 200 + 100 is 300, not 300 - 256."""
    b = np.array([[200, 200, 100, 100]], np.uint8)
    assert xywh_to_xyxy(b).tolist() == [[200, 200, 300, 300]]
    assert xywh_to_xyxy(b).dtype == np.float64


def test_mask_encodings_round_trip():
    m = np.zeros((40, 50), bool)
    m[5:20, 10:30] = True
    m[25:35, 2:6] = True
    rle = mask_to_rle(m)
    assert isinstance(rle["counts"], str)
    assert (rle_to_mask(rle) == m).all()
    polys = mask_to_polygons(m)
    assert len(polys) == 2
    back = segmentation_to_mask(polys, 40, 50)
    assert (back & m).sum() / (back | m).sum() > 0.8
    d = Detections.from_masks(m[None], [1])
    assert np.allclose(d.xywh, [[2, 5, 28, 30]]) and (d.masks(40, 50)[0] == m).all()


def test_segmentation_to_mask_is_silent_under_numpy_2():
    """pycocotools 2.0.x's decode trips NumPy 2's copy-keyword DeprecationWarning; students must not
    see it on every mask (the warning is filtered inside segmentation_to_mask, and only there)."""
    rle = mask_to_rle(np.ones((3, 4), bool))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        mask = segmentation_to_mask(rle, 3, 4)
    assert mask.shape == (3, 4) and mask.all()


def test_segmentation_size_mismatch_is_an_error():
    rle = mask_to_rle(np.ones((4, 4), bool))
    with pytest.raises(DataError, match="differs from the image size"):
        segmentation_to_mask(rle, 5, 4)


def _tiny_coco():
    return {
        "info": {"description": "tiny"},
        "images": [{"id": 1, "file_name": "a.jpg", "width": 20, "height": 10, "scene_id": "s1"},
                   {"id": 2, "file_name": "b.jpg", "width": 20, "height": 10}],
        "annotations": [
            {"id": 7, "image_id": 1, "category_id": 3, "bbox": [0.1, 0.2, 5.3, 4.7], "area": 24.91, "iscrowd": 0,
             "segmentation": [[0.1, 0.2, 5.4, 0.2, 5.4, 4.9]], "visibility": 0.5, "attributes": {"occluded": True}},
            {"id": 9, "image_id": 1, "category_id": 1, "bbox": [1, 1, 2, 2], "area": 4, "iscrowd": 0},
        ],
        "categories": [{"id": 1, "name": "disc"}, {"id": 3, "name": "cone"}],
    }


def test_coco_round_trip_is_lossless():
    coco = _tiny_coco()
    back = dataset_to_coco(coco_to_dataset(coco))
    assert json.loads(json.dumps(back)) == coco


def test_coco_round_trip_real_val2014(shared_data):
    path = shared_data / "coco-val2014-fake100/faster_coco_eval/tests/dataset/cocoapi/instances_val2014_100.json"
    original = read_json(path)
    back = dataset_to_coco(load_coco(path))
    by_id = lambda anns: {a["id"]: a for a in anns}  # noqa: E731 - annotation order carries no meaning in COCO
    assert by_id(back["annotations"]) == by_id(original["annotations"])
    assert {k: v for k, v in back.items() if k != "annotations"} == {k: v for k, v in original.items() if k != "annotations"}


@pytest.mark.parametrize("mutate, message", [
    (lambda c: c.pop("images"), "missing top-level key 'images'"),
    (lambda c: c["annotations"][0].update(image_id=99), "unknown image id 99"),
    (lambda c: c["annotations"][0].update(bbox=[0, 0, "x", 1]), "record 7"),
    (lambda c: c["annotations"][0].update(bbox=[0, 0, float("nan"), 1]), "not finite"),
    (lambda c: c["images"].append(dict(c["images"][0])), "duplicate image id"),
])
def test_coco_structural_errors_name_the_record(mutate, message):
    coco = _tiny_coco()
    mutate(coco)
    with pytest.raises(DataError, match=message):
        coco_to_dataset(coco, source="tiny.json")


def test_coco_errors_name_the_file_and_the_record():
    """Every structural error names the source and, where there is one, the record (id) at fault."""
    coco = _tiny_coco()
    del coco["images"][1]["width"]
    with pytest.raises(DataError, match=re.escape("tiny.json: record 2: image entry lacks 'width'")):
        coco_to_dataset(coco, source="tiny.json")
    coco = _tiny_coco()
    coco["annotations"][0]["score"] = 0.9  # annotation 7 has a score, annotation 9 has none
    with pytest.raises(DataError, match=re.escape("tiny.json: record 9: 'score' is missing while other records have it")):
        coco_to_dataset(coco, source="tiny.json")
    coco = _tiny_coco()
    coco["annotations"][0]["score"], coco["annotations"][1]["score"] = 0.9, "high"
    with pytest.raises(DataError, match=re.escape("tiny.json: record 9: score must be a number, got 'high'")):
        coco_to_dataset(coco, source="tiny.json")
    coco = _tiny_coco()
    del coco["annotations"][0]["bbox"]
    with pytest.raises(DataError, match=re.escape("tiny.json: record 7: annotation lacks 'bbox'")):
        coco_to_dataset(coco, source="tiny.json")
    coco = _tiny_coco()
    coco["images"] = {}
    with pytest.raises(DataError, match=re.escape("tiny.json: 'images' must be a list")):
        coco_to_dataset(coco, source="tiny.json")
    coco = _tiny_coco()
    coco["annotations"][1]["category_id"] = "cone"
    with pytest.raises(DataError, match=re.escape("tiny.json: malformed annotation fields")):
        coco_to_dataset(coco, source="tiny.json")


def test_coco_keypoints_become_an_n_k_3_array_or_stay_as_written():
    """Hand-worked: [x1, y1, v1, x2, y2, v2] is two (x, y, v) rows. Equal counts on every
    annotation stack to (N, K, 3); unequal counts cannot stack, so they stay per-record data
    and are written back unchanged; a count that is not a multiple of 3 is an error naming the record."""
    coco = _coco_one_image([{"id": 1, "keypoints": [1, 2, 2, 3, 4, 1]}, {"id": 2, "keypoints": [5, 6, 0, 7, 8, 2]}])
    det = coco_to_dataset(coco).images[0].detections
    assert det.keypoints.shape == (2, 2, 3)
    assert det.keypoints.tolist() == [[[1, 2, 2], [3, 4, 1]], [[5, 6, 0], [7, 8, 2]]]
    assert json.loads(json.dumps(dataset_to_coco(coco_to_dataset(coco)))) == dict(coco, info={})
    uneven = _coco_one_image([{"id": 1, "keypoints": [1, 2, 2]}, {"id": 2, "keypoints": [5, 6, 0, 7, 8, 2]}])
    det = coco_to_dataset(uneven).images[0].detections
    assert det.keypoints is None
    assert [a["keypoints"] for a in dataset_to_coco(coco_to_dataset(uneven))["annotations"]] == [[1, 2, 2], [5, 6, 0, 7, 8, 2]]
    bad = _coco_one_image([{"id": 1, "keypoints": [1, 2, 2]}, {"id": 4, "keypoints": [5, 6]}])
    with pytest.raises(DataError, match=re.escape("kp.json: record 4: keypoints must be (x, y, visibility) triples, got 2 values")):
        coco_to_dataset(bad, source="kp.json")
    bad = _coco_one_image([{"id": 3, "keypoints": ["a", 2, 2]}])
    with pytest.raises(DataError, match=re.escape("kp.json: record 3: keypoints must be a list of numbers")):
        coco_to_dataset(bad, source="kp.json")


def test_read_json_errors(tmp_path):
    empty = tmp_path / "empty.json"
    empty.write_text("")
    with pytest.raises(DataError, match="empty.json: file is empty"):
        read_json(empty)
    bad = tmp_path / "bad.json"
    bad.write_text("{")
    with pytest.raises(DataError, match="not valid JSON"):
        read_json(bad)
    missing = tmp_path / "missing.json"
    with pytest.raises(DataError, match=re.escape(f"{missing}: cannot read file (No such file or directory)")):
        read_json(missing)


@pytest.mark.parametrize("result, message", [
    ({"image_id": 5, "category_id": 1, "bbox": [0, 0, 1, 1], "score": 0.5}, "image id 5"),
    ({"image_id": 1, "category_id": 1, "bbox": [0, 0, 1, 1], "score": 1.5}, "outside"),
    ({"image_id": 1, "category_id": 1, "bbox": [0, 0, 1, 1]}, "lacks 'score'"),
    ({"image_id": 1, "category_id": 1, "bbox": [0, 0, -1, 1], "score": 0.5}, "negative size"),
])
def test_results_errors(result, message):
    with pytest.raises(DataError, match=message):
        results_to_detections([result], [1, 2], source="pred.json")


@pytest.mark.parametrize("results, message", [
    ({"image_id": 1}, "pred.json: a results file must hold a JSON list"),
    (["x"], "pred.json: record result #0: result is not an object"),
    ([{"image_id": 1, "category_id": 1, "score": 0.5}], "pred.json: record result #0: result has neither 'bbox' nor 'segmentation'"),
    ([{"image_id": 1, "category_id": 1, "bbox": [0, 0, 1, 1], "score": 0.5},
      {"image_id": 1, "category_id": 1, "bbox": [0, 0, 1, 1], "score": "high"}],
     "pred.json: record result #1: score must be a number, got 'high'"),
])
def test_results_errors_name_the_file_and_the_result(results, message):
    with pytest.raises(DataError, match=re.escape(message)):
        results_to_detections(results, [1, 2], source="pred.json")


def test_results_on_an_unknown_image_name_the_result():
    with pytest.raises(DataError, match=re.escape("pred.json: record result #1: result refers to image id 5, which is not in the ground truth")):
        results_to_detections([{"image_id": 1, "category_id": 1, "bbox": [0, 0, 1, 1], "score": 0.5},
                               {"image_id": 5, "category_id": 1, "bbox": [0, 0, 1, 1], "score": 0.5}], [1, 2], source="pred.json")


def test_segmentation_only_results_get_an_all_zero_box():
    """A segm result may leave out 'bbox'; it then gets the placeholder box [0, 0, 0, 0]."""
    poly = [[1, 1, 4, 1, 4, 3]]
    dets = results_to_detections([{"image_id": 1, "category_id": 2, "segmentation": poly, "score": 0.5}], [1])
    assert dets[1].xywh.tolist() == [[0.0, 0.0, 0.0, 0.0]] and dets[1].segmentation == [poly]
    assert dets[1].score.tolist() == [0.5] and dets[1].class_id.tolist() == [2]


def test_results_errors_without_a_source_say_memory():
    with pytest.raises(DataError, match=re.escape("<memory>: record result #0: result is not an object")):
        results_to_detections([3], [1])


def test_detections_to_results_hand_worked():
    """One prediction on image 7 -> one COCO result with plain ints and floats; masks on request."""
    det = Detections(np.array([[1, 2, 3, 4]]), np.array([5]), score=np.array([0.25]),
                     segmentation=[[[1, 2, 4, 2, 4, 6]]])
    assert detections_to_results({7: det}) == [{"image_id": 7, "category_id": 5, "bbox": [1.0, 2.0, 3.0, 4.0], "score": 0.25}]
    assert detections_to_results({7: det}, with_masks=True) == [
        {"image_id": 7, "category_id": 5, "bbox": [1.0, 2.0, 3.0, 4.0], "score": 0.25, "segmentation": [[1, 2, 4, 2, 4, 6]]}]
    no_mask = Detections(np.array([[1, 2, 3, 4]]), np.array([5]), score=np.array([0.25]), segmentation=[None])
    with pytest.raises(DataError, match=re.escape("record image 7: segm results need a segmentation for every prediction")):
        detections_to_results({7: no_mask}, with_masks=True)
    with pytest.raises(DataError, match=re.escape("record image 7: predictions need scores")):
        detections_to_results({7: Detections(np.array([[1, 2, 3, 4]]), np.array([5]))})


def test_results_group_by_image():
    dets = results_to_detections([{"image_id": 2, "category_id": 1, "bbox": [0, 0, 1, 1], "score": 0.5}], [1, 2])
    assert len(dets[1]) == 0 and dets[1].score is not None and len(dets[2]) == 1


def test_dataset_helpers():
    ds = Dataset([{"id": 1, "name": "disc"}], [ImageRecord(1, "a.jpg", 4, 4), ImageRecord(2, "b.jpg", 4, 4)])
    assert ds.category_names == {1: "disc"} and len(ds.subset([2])) == 1
    with pytest.raises(DataError, match="no image root"):
        ds.image_path(ds.images[0])


def _coco_one_image(anns, **top):
    return {"images": [{"id": 1, "file_name": "a.png", "width": 20, "height": 10}],
            "annotations": [{"image_id": 1, "category_id": 1, "bbox": [0, 0, 4, 4], "area": 16.0, "iscrowd": 0, **a}
                            for a in anns],
            "categories": [{"id": 1, "name": "disc"}], **top}


def test_subset_keeps_info_source_root_and_licenses():
    """A subset is the same dataset with fewer images: its info (a copy), licenses, root and source stay."""
    ds = Dataset([{"id": 1, "name": "disc"}], [ImageRecord(1, "a.jpg", 4, 4), ImageRecord(2, "b.jpg", 4, 4)],
                 info={"description": "tiny"}, licenses=[{"id": 1}], root=Path("/data"), source="gt.json")
    sub = ds.subset([2])
    assert [r.id for r in sub.images] == [2]
    assert sub.info == {"description": "tiny"} and sub.info is not ds.info
    assert (sub.licenses, sub.root, sub.source) == ([{"id": 1}], Path("/data"), "gt.json")
    with pytest.raises(DataError, match=re.escape("gt.json: record 2: dataset has no image root folder")):
        Dataset(ds.categories, ds.images, source="gt.json").subset([2]).image_path(ds.images[1])


def test_detections_indexing_concat_and_dtypes():
    """Indexing keeps the chosen objects' segmentations in the chosen order; concat keeps the data
    fields every part has; scores are float64 and class ids int64 whatever the input type;
    an empty keypoint list for N objects is (N, 0, 3)."""
    polys = [[[0, 0, 1, 0, 1, 1]], [[2, 2, 3, 2, 3, 3]], [[4, 4, 5, 4, 5, 5]]]
    det = Detections(np.zeros((3, 4)), [1, 2, 3], score=[1, 0, 1], segmentation=polys, data={"id": np.array([7, 8, 9])})
    assert det.score.dtype == np.float64 and det.class_id.dtype == np.int64
    picked = det[[2, 0]]
    assert picked.segmentation == [polys[2], polys[0]] and picked.data["id"].tolist() == [9, 7]
    both = Detections.concat([det[[0]], Detections(np.ones((1, 4)), [5], data={"id": np.array([4]), "area": np.array([1.0])})])
    assert sorted(both.data) == ["id"] and both.data["id"].tolist() == [7, 4] and both.class_id.tolist() == [1, 5]
    assert Detections(np.zeros((2, 4)), [1, 1], keypoints=[]).keypoints.shape == (2, 0, 3)


def test_masks_of_box_only_objects_are_their_boxes():
    """Hand-worked: box x=1, y=0, w=2, h=2 covers the pixel centres x in {1.5, 2.5}, y in {0.5, 1.5};
    the second object's polygon is rasterised by pycocotools instead."""
    rle = mask_to_rle(np.eye(3, 4, dtype=bool))
    det = Detections(np.array([[1.0, 0, 2, 2], [0, 0, 4, 3]]), [1, 1], segmentation=[None, rle])
    masks = det.masks(3, 4)
    expected = np.zeros((3, 4), bool)
    expected[0:2, 1:3] = True
    assert (masks[0] == expected).all() and (masks[1] == np.eye(3, 4, dtype=bool)).all()
    assert (Detections(np.array([[1.0, 0, 2, 2]]), [1]).masks(3, 4)[0] == expected).all()


def test_dataset_to_coco_numbers_new_annotations_and_keeps_track_ids():
    """Detections without ids get 1, 2, ... (after the largest existing id); track ids are written."""
    det = Detections(np.array([[0, 0, 4, 4], [5, 5, 2, 2]], float), np.array([1, 1]), track_id=np.array([7, 9]))
    coco = dataset_to_coco(Dataset([{"id": 1, "name": "disc"}], [ImageRecord(1, "a.png", 20, 10, det)]))
    assert [(a["id"], a["track_id"]) for a in coco["annotations"]] == [(1, 7), (2, 9)]
    ds = coco_to_dataset(_coco_one_image([{"id": 5}, {}]))
    assert [a["id"] for a in dataset_to_coco(ds)["annotations"]] == [5, 6]


def test_coco_round_trip_keeps_partial_track_ids_and_extra_top_level_keys():
    """A track id on some annotations only stays on those; unknown top-level keys come back at the top."""
    coco = _coco_one_image([{"id": 1, "track_id": 7}, {"id": 2}], type="instances")
    back = dataset_to_coco(coco_to_dataset(coco))
    assert [a.get("track_id") for a in back["annotations"]] == [7, None]
    assert back["type"] == "instances" and "_extra_top_level" not in back["info"]


def test_box_to_mask_takes_pixels_whose_centres_are_inside():
    """Hand-worked: pixel centres are at 0.5, 1.5, ...; [1.2, 3.2) x [0.6, 1.6) holds the centres
    (1.5, 1.5) and (2.5, 1.5). A box partly outside is clipped; one wholly outside marks nothing
    (it used to wrap around to the far side: a negative slice end)."""
    expected = np.zeros((4, 5), bool)
    expected[1, 1:3] = True
    assert (box_to_mask([1.2, 0.6, 2.0, 1.0], 4, 5) == expected).all()
    clipped = np.zeros((4, 5), bool)
    clipped[:, :2] = True
    assert (box_to_mask([-3, -3, 5, 10], 4, 5) == clipped).all()
    assert box_to_mask([0, -10, 3, 2], 20, 5).sum() == 0 and box_to_mask([-10, 0, 2, 3], 5, 20).sum() == 0
    assert box_to_mask([30, 0, 2, 2], 5, 20).sum() == 0
