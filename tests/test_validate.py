"""The validator on a corpus of malformed inputs (one defect each), clean data and real COCO."""

import json
import re

import numpy as np
import pytest
from PIL import Image

from labkit.data.corrupt import DEFECT_KINDS, FILE_KINDS, plant_defects
from labkit.data.masks import mask_to_rle, segmentation_area
from labkit.data.synth import generate_dataset
from labkit.data.validate import (CODES, ValidationReport, plot_stats, rle_counts_from_string, validate_coco,
                                  validate_dataset_dir, validate_semantic_masks)
from labkit.errors import DataError

SIZES = [(64, 48), (80, 60), (48, 64), (72, 40), (60, 60), (96, 50), (50, 50), (64, 32), (40, 70), (56, 56)]  # (w, h)


def _make(root, seed=0):
    """A valid COCO dict (10 images, 3 classes, 6 objects each: polygons, RLE, one crowd) with
    its image files under ``root/images`` and semantic masks under ``root/masks``."""
    rng = np.random.default_rng(seed)
    (root / "images").mkdir(parents=True, exist_ok=True)
    (root / "masks").mkdir(exist_ok=True)
    images, anns = [], []
    for image_id, (w, h) in enumerate(SIZES, start=1):
        Image.fromarray(rng.integers(0, 255, (h, w, 3), dtype=np.uint8)).save(root / "images" / f"{image_id}.png")
        semantic = np.zeros((h, w), np.uint8)
        for k in range(6):
            bw, bh = int(rng.integers(12, w // 2)), int(rng.integers(12, h // 2))
            x, y = int(rng.integers(0, w - bw)), int(rng.integers(0, h - bh))
            cat = int(rng.integers(1, 4))
            semantic[y:y + bh, x:x + bw] = cat
            if k % 2:
                mask = np.zeros((h, w), bool)
                mask[y:y + bh, x:x + bw] = True
                segm = mask_to_rle(mask)
            else:
                segm = [[x, y, x + bw, y, x + bw, y + bh, x, y + bh]]
            anns.append({"id": len(anns) + 1, "image_id": image_id, "category_id": cat, "bbox": [x, y, bw, bh],
                         "area": segmentation_area(segm, h, w), "iscrowd": int(k == 5 and image_id == 1),
                         "segmentation": segm})
        semantic[0, 0] = 255
        Image.fromarray(semantic).save(root / "masks" / f"{image_id}.png")
        images.append({"id": image_id, "file_name": f"{image_id}.png", "width": w, "height": h,
                       "semantic_mask": f"masks/{image_id}.png"})
    cats = [{"id": 1, "name": "disc"}, {"id": 2, "name": "block"}, {"id": 3, "name": "cone"}]
    return {"info": {}, "images": images, "annotations": anns, "categories": cats}


@pytest.fixture(scope="module")
def clean(tmp_path_factory):
    root = tmp_path_factory.mktemp("clean")
    return _make(root), root


def _validate(coco, root, **kw):
    return validate_coco(coco, image_root=root / "images", mask_root=root, **kw)


def test_clean_input_has_no_findings(clean):
    coco, root = clean
    report = _validate(coco, root)
    assert report.findings == [], report.to_markdown()
    assert report.ok
    s = report.stats["data"]
    assert s["images"] == 10 and s["objects"] == 60 and s["crowd"] == 1
    assert sum(s["class_counts"].values()) == 60 and sum(s["size_histogram"].values()) == 60
    assert s["boxes_per_image"] == {6: 10}


@pytest.mark.parametrize("kind", DEFECT_KINDS)
def test_each_planted_defect_is_found_with_its_record(clean, kind):
    coco, root = clean
    snapshot = json.dumps(coco)
    broken, planted = plant_defects(coco, seed=1, kinds=[kind])
    assert broken != coco and json.dumps(coco) == snapshot  # the input is left alone
    [p] = planted
    report = _validate(broken, root)
    assert report.has(p["code"], p["record"]), (p, report.to_markdown())
    assert not report.ok
    assert CODES[p["code"]][0] == "error"
    if p["needs_files"]:
        assert not validate_coco(broken, check_files=False).has(p["code"])


def test_all_defects_at_once_are_all_found(clean):
    coco, root = clean
    broken, planted = plant_defects(coco, seed=7)
    assert len(planted) == len(DEFECT_KINDS) >= 20
    assert len({(p["kind"]) for p in planted}) == len(planted)
    report = _validate(broken, root)
    missed = [p for p in planted if not report.has(p["code"], p["record"])]
    assert not missed, missed
    assert set(FILE_KINDS) == {"image-size-mismatch", "image-file-missing"}


def test_plant_defects_is_seeded_and_checks_kinds(clean):
    coco, _ = clean
    assert plant_defects(coco, 3)[1] == plant_defects(coco, 3)[1]
    assert plant_defects(coco, 3)[1] != plant_defects(coco, 4)[1]
    with pytest.raises(DataError, match="unknown defect"):
        plant_defects(coco, 0, kinds=["no-such-defect"])
    tiny = {**coco, "annotations": coco["annotations"][:2]}
    with pytest.raises(DataError, match="too small"):
        plant_defects(tiny, 0)


def _edit(coco, fn):
    out = json.loads(json.dumps(coco))
    fn(out)
    return out


# (edit of the JSON, expected code, expected record): defects plant_defects does not make
JSON_CASES = {
    "top-level list": (lambda c: None, "not-an-object", None),
    "missing annotations": (lambda c: c.pop("annotations"), "missing-key", "annotations"),
    "images not a list": (lambda c: c.update(images={"1": c["images"][0]}), "wrong-type", "images"),
    "annotation not an object": (lambda c: c["annotations"].insert(2, "oops"), "bad-entry", "annotations[2]"),
    "image id is a list": (lambda c: c["images"][1].update(id=[2]), "image-bad-field", "images[1]"),
    "duplicate file name": (lambda c: c["images"][3].update(file_name="1.png"), "duplicate-file-name", 4),
    "duplicate category name": (lambda c: c["categories"][2].update(name="disc"), "duplicate-category-name", 3),
    "category id float": (lambda c: c["categories"][0].update(id=1.0), "category-bad-field", "categories[0]"),
    "track id twice in a frame": (lambda c: [a.update(track_id=7) for a in c["annotations"][:2]], "duplicate-track-id", 2),
    "visibility above 1": (lambda c: c["annotations"][4].update(visibility=1.5), "ann-bad-field", 5),
    "polygon outside image": (lambda c: c["annotations"][0].update(segmentation=[[0, 0, 500, 0, 500, 500]]),
                              "segm-out-of-bounds", 1),
    "garbage RLE string": (lambda c: c["annotations"][1]["segmentation"].update(counts="\x01\x02"), "segm-bad-format", 2),
    "RLE string cut short": (lambda c: c["annotations"][1]["segmentation"].update(counts="o"), "segm-bad-format", 2),
    "RLE size not a pair": (lambda c: c["annotations"][3]["segmentation"].update(size=[48]), "segm-bad-format", 4),
    "segmentation a number": (lambda c: c["annotations"][0].update(segmentation=3), "segm-bad-format", 1),
    "bbox with null": (lambda c: c["annotations"][0].update(bbox=[0, 0, None, 4]), "ann-bad-field", 1),
    "area far from mask": (lambda c: c["annotations"][0].update(area=c["annotations"][0]["area"] * 3), "area-mismatch", 1),
    "image without annotations": (lambda c: c.update(annotations=[a for a in c["annotations"] if a["image_id"] != 2]),
                                  "image-no-annotations", 2),
}


@pytest.mark.parametrize("case", JSON_CASES)
def test_json_defects(clean, case):
    coco, root = clean
    edit, code, record = JSON_CASES[case]
    broken = [] if case == "top-level list" else _edit(coco, edit)
    report = _validate(broken, root)
    assert report.has(code, record), report.to_markdown()
    assert all(f.file == "<memory>" for f in report.findings)


def test_file_defects(tmp_path):
    coco = _make(tmp_path)
    images, masks = tmp_path / "images", tmp_path / "masks"
    rng = np.random.default_rng(0)
    big = rng.integers(0, 255, (48, 64, 3), dtype=np.uint8)
    Image.fromarray(big).save(images / "1.jpg", quality=95)
    data = (images / "1.jpg").read_bytes()
    (images / "1.png").write_bytes(data[: len(data) // 2])  # truncated (and a JPEG under a .png name)
    (images / "2.png").write_text("not an image")
    exif = Image.Exif()
    exif[0x0112] = 6  # image 3's entry says 48x64 (w x h); stored 48x64 but displayed rotated: 64x48
    Image.fromarray(rng.integers(0, 255, (64, 48, 3), dtype=np.uint8)).save(images / "3.png", exif=exif)
    Image.fromarray(np.full((40, 72), 9, np.uint8)).save(masks / "4.png")  # value 9 is no class
    Image.fromarray(np.zeros((10, 10), np.uint8)).save(masks / "5.png")  # wrong size
    (masks / "6.png").unlink()
    report = _validate(coco, tmp_path)
    expected = [("file-unreadable", 1), ("file-unreadable", 2), ("size-mismatch", 3), ("mask-bad-values", 4),
                ("mask-size-mismatch", 5), ("mask-missing", 6)]
    for code, record in expected:
        assert report.has(code, record), (code, record, report.to_markdown())
    assert "EXIF" in next(f.message for f in report.findings if f.code == "size-mismatch")
    assert all(f.file == "<memory>" for f in report.findings)
    Image.fromarray(rng.integers(0, 255, (40, 72, 3), dtype=np.uint8)).save(masks / "4.png")
    assert _validate(coco, tmp_path).has("mask-unreadable", 4)


def test_garbage_never_raises(clean):
    coco, root = clean
    garbage = [
        {"images": None, "annotations": "x", "categories": 5},
        {"images": [None, 1, {"id": None}, {"id": 1, "width": "a", "height": -1, "file_name": 3}],
         "annotations": [None, {}, {"id": "x", "image_id": [1], "category_id": {}, "bbox": {}, "segmentation": {"counts": 1}}],
         "categories": [[], {"id": "1", "name": None}]},
        {"images": coco["images"], "categories": coco["categories"],
         "annotations": [{**a, "segmentation": {"size": [48, 64], "counts": [1.5, "x"]}} for a in coco["annotations"][:2]]},
    ]
    for g in garbage:
        report = _validate(g, root)
        assert not report.ok
        assert all(f.code in CODES for f in report.findings)
        json.dumps(report.to_dict())


def test_report_outputs_and_entry_points(clean, tmp_path):
    coco, root = clean
    broken, _ = plant_defects(coco, 0, kinds=["bbox-nan", "image-file-missing"])
    path = tmp_path / "annotations" / "instances_val.json"
    path.parent.mkdir()
    path.write_text(json.dumps(broken))
    report = validate_coco(path, image_root=root / "images", mask_root=root)
    assert all(f.file == str(path) for f in report.findings)
    d = json.loads(json.dumps(report.to_dict()))
    assert d["ok"] is False and d["errors"] == 2 and "instances_val" in d["stats"]
    md = report.to_markdown()
    assert "bbox-nan" in md and "file-missing" in md and "FAILED" in md
    png = plot_stats(report, tmp_path / "stats.png")
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert validate_coco(broken, check_files=False).has("bbox-nan")
    assert validate_coco(broken).has("files-not-checked")
    (tmp_path / "bad.json").write_text("{oops")
    with pytest.raises(DataError, match="bad.json"):
        validate_coco(tmp_path / "bad.json")
    with pytest.raises(DataError):
        plot_stats(ValidationReport(), tmp_path / "none.png")


def test_dataset_dir(clean, tmp_path):
    coco, root = clean
    (root / "annotations").mkdir(exist_ok=True)
    (root / "annotations" / "instances_val.json").write_text(json.dumps(coco))
    report = validate_dataset_dir(root)
    assert report.ok and report.findings == [] and list(report.stats) == ["instances_val"]
    assert validate_dataset_dir(tmp_path).has("no-annotation-files")
    with pytest.raises(DataError):
        validate_dataset_dir(tmp_path / "absent")


def test_rle_string_decoder_matches_pycocotools():
    """Run lengths of the column-major mask, starting with a (maybe empty) run of zeros."""
    rng = np.random.default_rng(0)
    for _ in range(30):
        mask = rng.random((int(rng.integers(1, 40)), int(rng.integers(1, 40)))) < rng.random()
        flat = mask.flatten(order="F").astype(np.int8)
        edges = np.concatenate([[0], np.flatnonzero(np.diff(flat)) + 1, [flat.size]])
        runs = ([0] if flat[0] else []) + np.diff(edges).tolist()
        assert rle_counts_from_string(mask_to_rle(mask)["counts"]) == runs
    with pytest.raises(ValueError):
        rle_counts_from_string("o")


def test_semantic_mask_pairs(tmp_path):
    pairs = []
    for k, values in enumerate([[0, 1], [2, 255], [0, 7]]):
        Image.fromarray(np.zeros((6, 8, 3), np.uint8)).save(tmp_path / f"{k}.png")
        Image.fromarray(np.array(values * 24, np.uint8).reshape(6, 8)).save(tmp_path / f"{k}_m.png")
        pairs.append((tmp_path / f"{k}.png", tmp_path / f"{k}_m.png"))
    report = validate_semantic_masks(pairs, known_ids=[0, 1, 2, 255])
    assert [(f.code, f.record) for f in report.findings] == [("mask-bad-values", "2.png")]
    assert report.stats["masks"]["pixels_per_value"] == {0: 48, 1: 24, 2: 24, 7: 24, 255: 24}


def test_real_coco_val2014_annotations_are_clean(shared_data):
    """100 real val2014 images' annotations (polygons, RLE crowds): no finding at all. The
    smallest box-vs-mask IoU in this file is 0.73 (tiny objects), above the 0.5 default."""
    path = shared_data / "coco-val2014-fake100/faster_coco_eval/tests/dataset/cocoapi/instances_val2014_100.json"
    report = validate_coco(path, check_files=False)
    assert report.findings == [], report.to_markdown()
    s = report.stats["instances_val2014_100"]
    assert (s["images"], s["objects"], s["crowd"]) == (100, 839, 9)
    assert s["class_counts"]["person"] == 256
    assert s["size_histogram"] == {"small": 408, "medium": 243, "large": 188}
    broken, planted = plant_defects(json.loads(path.read_text()), seed=0,
                                    kinds=[k for k in DEFECT_KINDS if k not in FILE_KINDS])
    report = validate_coco(broken, check_files=False)
    assert all(report.has(p["code"], p["record"]) for p in planted)


def test_generated_dataset_is_clean(tmp_path):
    generate_dataset(tmp_path / "ds", seed=0, size="small")
    report = validate_dataset_dir(tmp_path / "ds")
    errors = [f for f in report.findings if f.severity == "error"]
    assert not errors, report.to_markdown()


@pytest.mark.parametrize("bbox, tolerance, out_of_bounds", [
    ([60.0, 10.0, 5.0, 10.0], 1.0, False),   # right edge 65 on a 64-px image: exactly 1 px over
    ([60.0, 10.0, 5.25, 10.0], 1.0, True),   # 1.25 px over
    ([-1.0, -1.0, 10.0, 10.0], 1.0, False),  # 1 px left of and above the image
    ([5.0, -1.5, 10.0, 10.0], 1.0, True),    # 1.5 px above
    ([5.0, 40.0, 10.0, 8.0], 0.0, False),    # bottom edge exactly on the 48-px border
    ([5.0, 40.0, 10.0, 8.5], 0.0, True),     # half a pixel past it, no tolerance
    ([5.0, 40.0, 10.0, 10.0], 2.0, False),   # 2 px over with a 2 px tolerance
])
def test_bbox_tolerance_boundary(bbox, tolerance, out_of_bounds):
    """``bbox_tolerance`` is how far a box may stick out: exactly that far passes, any further fails."""
    coco = {"images": [{"id": 1, "file_name": "1.png", "width": 64, "height": 48}],
            "categories": [{"id": 1, "name": "disc"}],
            "annotations": [{"id": 1, "image_id": 1, "category_id": 1, "bbox": bbox, "area": bbox[2] * bbox[3],
                             "iscrowd": 0}]}
    report = validate_coco(coco, check_files=False, bbox_tolerance=tolerance)
    assert report.has("bbox-out-of-bounds", 1) is out_of_bounds, report.to_markdown()
    assert not [f for f in report.findings if f.severity == "error" and f.code != "bbox-out-of-bounds"]


@pytest.mark.parametrize("bbox", [[5.0, 5.0, 0.0, 10.0], [5.0, 5.0, 10.0, 0.0], [5.0, 5.0, -1.0, 10.0]])
def test_zero_or_negative_box_size_is_an_error(bbox):
    """A box of width or height exactly 0 holds no pixel: the boundary of bbox-nonpositive."""
    coco = {"images": [{"id": 1, "file_name": "1.png", "width": 64, "height": 48}],
            "categories": [{"id": 1, "name": "disc"}],
            "annotations": [{"id": 1, "image_id": 1, "category_id": 1, "bbox": bbox, "area": 0, "iscrowd": 0}]}
    report = validate_coco(coco, check_files=False)
    assert report.has("bbox-nonpositive", 1) and not report.ok
    tiny = json.loads(json.dumps(coco))
    tiny["annotations"][0]["bbox"] = [5.0, 5.0, 0.5, 0.5]  # small but positive: fine
    assert not validate_coco(tiny, check_files=False).has("bbox-nonpositive")


def test_findings_say_what_is_wrong(clean):
    """Each finding's message carries the numbers a user needs to fix the record."""
    coco, root = clean
    broken = _edit(coco, lambda c: (c["annotations"][0].update(area=999999),
                                    c["annotations"][1]["segmentation"].update(counts="o"),
                                    c.update(annotations=[a for a in c["annotations"] if a["image_id"] != 2])))
    report = _validate(broken, root)
    message = {f.code: f.message for f in report.findings}
    assert message["area-mismatch"].startswith("area 999999 vs the mask's ")
    assert message["segm-bad-format"] == "compressed RLE counts are malformed (the string ends inside a run length)"
    assert message["image-no-annotations"] == "image 2 has no annotations"


def test_rle_string_decoder_errors_say_why():
    with pytest.raises(ValueError, match="ends inside a run length"):
        rle_counts_from_string("o")  # 'o' = 63: continuation bit set, nothing follows
    with pytest.raises(ValueError, match="a run length is negative"):
        rle_counts_from_string("@")  # '@' = 16: no continuation, sign bit set -> the first run is -16
    with pytest.raises(ValueError, match="not in the RLE alphabet"):
        rle_counts_from_string("\x01")


def test_report_without_objects_states_none_and_counts_info():
    coco = {"images": [{"id": 1, "file_name": "1.png", "width": 64, "height": 48}], "categories": [],
            "annotations": []}
    report = validate_coco(coco, check_files=False)
    assert "- class counts: none" in report.to_markdown()
    d = report.to_dict()
    assert set(d) == {"ok", "errors", "warnings", "info", "findings", "stats"}
    assert d["info"] == sum(f.severity == "info" for f in report.findings) >= 1  # files-not-checked


def test_segmentation_pycocotools_cannot_read_is_a_finding(clean, monkeypatch):
    """Input that passes the structural checks but on which pycocotools raises is reported as
    segm-bad-format on that annotation, not a crash."""
    import labkit.data.validate as validate

    def refuse(*args, **kwargs):
        raise ValueError("cannot parse")

    coco, root = clean
    monkeypatch.setattr(validate, "segmentation_to_rle", refuse)
    report = _validate(coco, root)
    bad = [f.record for f in report.findings if f.code == "segm-bad-format"]
    assert bad == [a["id"] for a in coco["annotations"]]  # every annotation has a segmentation
    assert "ValueError: cannot parse" in next(f.message for f in report.findings if f.code == "segm-bad-format")


def test_semantic_mask_pair_with_truncated_image_is_unreadable(tmp_path):
    """The image of a pair is decoded, not only its header read: a truncated PNG whose header
    is intact is file-unreadable."""
    rng = np.random.default_rng(0)
    Image.fromarray(rng.integers(0, 256, (40, 50, 3), dtype=np.uint8)).save(tmp_path / "a.png")
    data = (tmp_path / "a.png").read_bytes()
    (tmp_path / "a.png").write_bytes(data[: len(data) // 2])
    Image.fromarray(np.zeros((40, 50), np.uint8)).save(tmp_path / "a_m.png")
    assert Image.open(tmp_path / "a.png").size == (50, 40)  # the header alone reads fine
    report = validate_semantic_masks([(tmp_path / "a.png", tmp_path / "a_m.png")], known_ids=[0])
    assert [(f.code, f.record) for f in report.findings] == [("file-unreadable", "a.png")]


def _stats_figure(monkeypatch):
    """Keep the figure plot_stats saves, to read its bars."""
    from matplotlib.figure import Figure

    saved = []
    original = Figure.savefig
    monkeypatch.setattr(Figure, "savefig", lambda self, *a, **kw: (saved.append(self), original(self, *a, **kw))[1])
    return saved


def test_plot_stats_bars_and_size(tmp_path, monkeypatch):
    """Objects per class: the most frequent on top (barh draws bottom-up, so ascending counts),
    cut to ``max_classes``; the PNG is 100 dpi whatever matplotlib's default figure dpi is."""
    import matplotlib

    stats = {"class_counts": {"a": 1, "b": 5, "c": 3}, "size_histogram": {"small": 2, "medium": 4, "large": 3},
             "boxes_per_image": {1: 3, 2: 3}}
    report = ValidationReport([], {"val": stats})
    saved = _stats_figure(monkeypatch)
    with matplotlib.rc_context({"figure.dpi": 50}):
        png = plot_stats(report, tmp_path / "all.png")
    assert Image.open(png).size == (1400, 350)  # figsize 14 x 3.5 in at 100 dpi
    ax_cls = saved[-1].axes[0]
    assert [p.get_width() for p in ax_cls.patches] == [1, 3, 5]
    assert ax_cls.get_title() == "val: objects per class (all)"
    plot_stats(report, tmp_path / "top2.png", max_classes=2)
    ax_cls = saved[-1].axes[0]
    assert [p.get_width() for p in ax_cls.patches] == [3, 5]
    assert ax_cls.get_title() == "val: objects per class (top 2 of 3)"


def _one_image_coco(boxes, w=40, h=30):
    return {"images": [{"id": 1, "file_name": "a.png", "width": w, "height": h}],
            "annotations": [{"id": k + 1, "image_id": 1, "category_id": 1, "bbox": list(b), "area": b[2] * b[3], "iscrowd": 0}
                            for k, b in enumerate(boxes)],
            "categories": [{"id": 1, "name": "disc"}]}


@pytest.mark.parametrize("box, square", [
    # centre (31, 7) is right of and above the middle (20, 15): the square goes bottom-left
    ([25, 2, 12, 10], [0, 26, 4, 26, 4, 30, 0, 30]),
    # centre (8, 22) is left of and below the middle: the square goes top-right
    ([2, 17, 12, 10], [36, 0, 40, 0, 40, 4, 36, 4]),
])
def test_mask_box_mismatch_puts_a_4px_square_in_the_farthest_corner(box, square):
    broken, planted = plant_defects(_one_image_coco([box]), seed=0, kinds=["mask-box-mismatch"])
    assert planted == [{"kind": "mask-box-mismatch", "code": "mask-box-mismatch", "record": 1, "needs_files": False}]
    assert broken["annotations"][0]["segmentation"] == [square] and broken["annotations"][0]["bbox"] == box


def test_plant_defects_errors_say_what_ran_out():
    coco = _one_image_coco([[1, 1, 5, 5]])
    with pytest.raises(DataError, match=re.escape("cannot plant 'bbox-zero-height': no annotation left to break "
                                                  "(the COCO dict is too small)")):
        plant_defects(coco, 0, kinds=["bbox-nan", "bbox-zero-height"])
    with pytest.raises(DataError, match=re.escape("cannot plant 'image-missing-width': no image left to break")):
        plant_defects(coco, 0, kinds=["image-zero-height", "image-missing-width"])
    with pytest.raises(DataError, match=re.escape("cannot plant 'duplicate-category-id': no category left to break")):
        plant_defects(coco, 0, kinds=["category-missing-name", "duplicate-category-id"])
    with pytest.raises(DataError, match=re.escape("unknown defect kind(s) ['nope']; known: image-missing-width, "
                                                  "image-zero-height, duplicate-image-id, ")):
        plant_defects(coco, 0, kinds=["nope"])
