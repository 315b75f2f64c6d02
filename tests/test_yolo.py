"""YOLO export/import: exact round trip of boxes and polygons, mapping of category ids, bad lines."""

import re

import numpy as np
import pytest
import yaml
from PIL import Image

from labkit.data.annotations import Dataset, Detections, ImageRecord
from labkit.data.masks import mask_to_rle, segmentation_to_mask
from labkit.data.yolo import CATEGORY_ID_KEY, export_yolo, import_yolo, label_path, read_label_file
from labkit.errors import DataError

CATEGORIES = [{"id": 3, "name": "cone"}, {"id": 1, "name": "disc"}, {"id": 7, "name": "star"}]
SIZES = [(40, 30), (64, 48), (25, 50)]  # (width, height)


def _dataset(root, rng, *, with_polygons=False) -> Dataset:
    records = []
    for k, (w, h) in enumerate(SIZES, start=1):
        name = f"sub/img{k}.png" if k == 2 else f"img{k}.png"
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(rng.integers(0, 255, (h, w, 3), dtype=np.uint8)).save(root / name)
        n = k + 1
        x1 = rng.uniform(0, w / 2, n)
        y1 = rng.uniform(0, h / 2, n)
        xyxy = np.stack([x1, y1, rng.uniform(x1 + 1, w), rng.uniform(y1 + 1, h)], 1)
        segm = None
        if with_polygons:
            segm = [[[x1[i], y1[i], xyxy[i, 2], y1[i], x1[i], xyxy[i, 3]]] for i in range(n)]
        det = Detections.from_xyxy(xyxy, rng.choice([1, 3, 7], n), segmentation=segm, data={"id": np.arange(n) + 10 * k})
        records.append(ImageRecord(k, name, w, h, det))
    return Dataset([dict(c) for c in CATEGORIES], records, root=root, source="test")


def test_box_round_trip_is_exact_and_ids_are_mapped(tmp_path):
    rng = np.random.default_rng(0)
    src = tmp_path / "src"
    ds = _dataset(src, rng)
    summary = export_yolo({"train": ds, "val": ds.subset([2])}, tmp_path / "yolo")
    assert summary["images"] == 4 and summary["objects"] == 2 + 3 + 4 + 3 and summary["clipped_boxes"] == 0
    config = yaml.safe_load(summary["data_yaml"].read_text())
    assert config["names"] == {0: "disc", 1: "cone", 2: "star"}
    assert config[CATEGORY_ID_KEY] == {0: 1, 1: 3, 2: 7}
    assert config["train"] == "images/train"
    first = (tmp_path / "yolo/labels/train/img1.txt").read_text().splitlines()
    assert len(first) == 2 and all(len(line.split()) == 5 for line in first)
    back = import_yolo(summary["data_yaml"], "train")
    assert [r.file_name for r in back.images] == ["img1.png", "img3.png", "sub/img2.png"]
    assert sorted(back.categories, key=lambda c: c["id"]) == sorted(CATEGORIES, key=lambda c: c["id"])
    originals = {r.file_name: r for r in ds.images}
    for rec in back.images:
        orig = originals[rec.file_name]
        assert (rec.width, rec.height) == (orig.width, orig.height)
        assert np.abs(rec.detections.xywh - orig.detections.xywh).max() < 1e-6
        assert np.array_equal(rec.detections.class_id, orig.detections.class_id)
    assert len(import_yolo(summary["data_yaml"], "val")) == 1


def test_polygon_round_trip_and_rle_tracing(tmp_path):
    rng = np.random.default_rng(1)
    ds = _dataset(tmp_path / "src", rng, with_polygons=True)
    rec = ds.images[1]
    mask = np.zeros((rec.height, rec.width), bool)
    mask[5:20, 3:12] = True
    mask[30:40, 30:50] = True  # a second part: the two are joined into one ring
    rec.detections.segmentation[0] = mask_to_rle(mask)
    summary = export_yolo({"train": ds}, tmp_path / "yolo", segments=True, images="symlink")
    line = (tmp_path / "yolo/labels/train/img1.txt").read_text().splitlines()[0].split()
    assert len(line) == 7  # class + 3 points
    back = {r.file_name: r for r in import_yolo(summary["data_yaml"], "train").images}
    for orig in ds.images:
        got = back[orig.file_name].detections
        for i, segm in enumerate(orig.detections.segmentation):
            if isinstance(segm, list):
                assert np.abs(np.array(got.segmentation[i][0]) - np.array(segm[0])).max() < 1e-6
    traced = segmentation_to_mask(back["sub/img2.png"].detections.segmentation[0], rec.height, rec.width)
    iou = (traced & mask).sum() / (traced | mask).sum()
    assert iou > 0.75, iou  # tracing through pixel centres loses about a half-pixel border


def test_crowd_is_skipped_and_boxes_clipped(tmp_path):
    det = Detections(np.array([[-5.0, 2, 20, 10], [1, 1, 5, 5]]), [1, 1], data={"iscrowd": np.array([0, 1])})
    ds = Dataset([{"id": 1, "name": "a"}], [ImageRecord(1, "a.png", 10, 20, det)], root=tmp_path)
    summary = export_yolo({"train": ds}, tmp_path / "yolo", images="none")
    assert summary["skipped_crowd"] == 1 and summary["clipped_boxes"] == 1 and summary["objects"] == 1
    line = [float(v) for v in (tmp_path / "yolo/labels/train/a.txt").read_text().split()]
    assert np.allclose(line, [0, 0.5, 0.35, 1.0, 0.5])


@pytest.mark.parametrize("text, match", [
    ("0 0.5 0.5 0.2", "4 values"),
    ("0 0.5 0.5 0.2 0.2 0.1 0.1 0.3", "8 values"),
    ("0 0.5 x 0.2 0.2", "not all values are numbers"),
    ("3 0.5 0.5 0.2 0.2", "class '3'"),
    ("1.5 0.5 0.5 0.2 0.2", "class '1.5'"),
    ("-1 0.5 0.5 0.2 0.2", "class '-1'"),
    ("0 0.5 0.5 1.2 0.2", r"coordinates must be normalised to \[0, 1\]$"),
    ("0 0.5 0.5 0 0.2", "box has zero or negative size w=0.0, h=0.2$"),
    ("0 nan 0.5 0.2 0.2", "non-finite"),
])
def test_bad_label_lines_name_file_and_line(tmp_path, text, match):
    path = tmp_path / "labels" / "x.txt"
    path.parent.mkdir()
    path.write_text("0 0.5 0.5 0.2 0.2\n\n" + text + "\n")
    with pytest.raises(DataError, match=re.escape(f"{path}: record line 3: ") + match) as info:
        read_label_file(path, 100, 50, n_classes=3)
    assert info.value.source == str(path) and info.value.record == "line 3"


def test_label_path_and_bad_yaml(tmp_path):
    assert label_path(tmp_path / "images" / "a" / "images" / "x.jpg") == tmp_path / "images" / "a" / "labels" / "x.txt"
    (tmp_path / "data.yaml").write_text("names: [a]\ntrain: [images/a, images/b]\n")
    with pytest.raises(DataError, match="one image folder"):
        import_yolo(tmp_path / "data.yaml", "train")
    (tmp_path / "data.yaml").write_text("train: images\n")
    with pytest.raises(DataError, match="names"):
        import_yolo(tmp_path / "data.yaml", "train")


def test_bad_inputs_name_the_file_and_the_record(tmp_path):
    """Errors of the export and import name the file (and the record) at fault, with the full message."""
    data_yaml = tmp_path / "data.yaml"
    data_yaml.write_text("train: images\n")
    with pytest.raises(DataError, match=re.escape(f"{data_yaml}: a YOLO data.yaml must be a mapping with 'names'") + "$"):
        import_yolo(data_yaml, "train")
    data_yaml.write_text("names: {0: a, 2: b}\ntrain: images\n")  # index 1 missing
    with pytest.raises(DataError, match=re.escape(f"{data_yaml}: 'names' must be a list or a mapping {{0: name, 1: name, ...}}") + "$"):
        import_yolo(data_yaml, "train")
    image = tmp_path / "pics" / "x.jpg"
    with pytest.raises(DataError, match=re.escape(f"{image}: image path has no 'images' folder to map to 'labels'") + "$"):
        label_path(image)
    det = Detections(np.array([[1.0, 1, 2, 2]]), [1])
    missing = Dataset([{"id": 1, "name": "a"}], [ImageRecord(1, "gone.png", 10, 10, det)], root=tmp_path, source="gt.json")
    with pytest.raises(DataError, match=re.escape(f"{tmp_path / 'gone.png'}: image file not found") + "$"):
        export_yolo({"train": missing}, tmp_path / "out")
    clash = Dataset([{"id": 1, "name": "a"}], [ImageRecord(1, "a.png", 10, 10, det), ImageRecord(2, "a.jpg", 10, 10, det)],
                    root=tmp_path, source="gt.json")
    label = (tmp_path / "out2").resolve() / "labels" / "train" / "a.txt"
    with pytest.raises(DataError, match=re.escape(f"gt.json: record 2: two images map to the label file {label}") + "$"):
        export_yolo({"train": clash}, tmp_path / "out2", images="none")


def test_segment_export_joins_two_polygons_by_a_zero_width_bridge(tmp_path):
    """Hand-worked: unit squares at x in [0, 1] and [3, 4]. The nearest points are (1, 0) of the
    first (its 2nd point) and (3, 0) of the second (its 1st point), so the ring goes round the first
    square to (1, 0), over to (3, 0), round the second square back to (3, 0), and back to (1, 0):
    10 points, normalised by the 10 x 10 image."""
    segm = [[0, 0, 1, 0, 1, 1, 0, 1], [3, 0, 4, 0, 4, 1, 3, 1]]
    det = Detections(np.array([[0.0, 0, 4, 1]]), [1], segmentation=[segm])
    ds = Dataset([{"id": 1, "name": "a"}], [ImageRecord(1, "a.png", 10, 10, det)], root=tmp_path)
    export_yolo({"train": ds}, tmp_path / "yolo", segments=True, images="none")
    ring = [(0, 0), (1, 0), (3, 0), (4, 0), (4, 1), (3, 1), (3, 0), (1, 0), (1, 1), (0, 1)]
    expected = "0 " + " ".join(f"{v / 10:g}" for xy in ring for v in xy)
    assert (tmp_path / "yolo/labels/train/a.txt").read_text() == expected + "\n"


def test_import_ultralytics_coco8(tmp_path, shared_data):
    """The real COCO8 sample (Ultralytics layout): 4 + 4 images, 13 + 17 boxes, 0-based ids kept."""
    root = shared_data / "coco8" / "datasets" / "coco8"
    names = {k: f"class{k}" for k in range(80)}
    (tmp_path / "coco8.yaml").write_text(yaml.safe_dump({"path": str(root), "train": "images/train",
                                                        "val": "images/val", "names": names}))
    from labkit.data.coco import dataset_to_coco
    from labkit.data.validate import validate_coco

    for split, n_boxes in (("train", 13), ("val", 17)):
        ds = import_yolo(tmp_path / "coco8.yaml", split)
        assert len(ds) == 4 and ds.num_objects() == n_boxes
        report = validate_coco(dataset_to_coco(ds), image_root=ds.root)
        assert report.ok, report.to_markdown()
    person = import_yolo(tmp_path / "coco8.yaml", "val")
    assert 0 in np.concatenate([r.detections.class_id for r in person.images])  # class 0 = person
