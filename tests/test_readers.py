"""Real-data readers, each run through the validator: MOTChallenge, COCO, CamVid, Penn-Fudan."""

import re

import numpy as np
import pytest
from PIL import Image

from labkit.data.annotations import Detections
from labkit.data.coco import dataset_to_coco, load_coco
from labkit.data.masks import rle_to_mask
from labkit.data.mot import write_mot, write_seqinfo
from labkit.data.readers import (CAMVID_CLASSES, CAMVID_VOID, MOT_CLASSES, read_camvid, read_mot_sequence,
                                 read_pennfudan)
from labkit.data.validate import validate_coco, validate_dataset, validate_semantic_masks
from labkit.errors import DataError


def test_tud_campus_sequence(shared_data):
    seq = shared_data / "motchallenge-tud-campus/dctracking/data/TUD-Campus"
    ds, det = read_mot_sequence(seq)  # MOT15: no seqinfo.ini, 7-column gt
    assert len(ds) == 71 and ds.num_objects() == 359
    assert sum(len(d) for d in det.values()) == 344 and all(d.score is not None for d in det.values())
    tracks = np.concatenate([r.detections.track_id for r in ds.images])
    assert len(set(tracks.tolist())) == 8
    first = ds.images[0]
    assert (first.file_name, first.width, first.height) == ("img1/000001.jpg", 640, 480)
    assert first.extra == {"sequence": "TUD-Campus", "frame_index": 1}
    assert np.allclose(first.detections.xywh[0], [399, 182, 121, 229])  # gt.txt line 1
    report = validate_dataset(ds)  # decodes all 71 frames and checks their size
    # MOTChallenge boxes keep the full extent of people walking in or out at the left/right
    # edge, so they stick out of the image. That is the benchmark's convention, but it is
    # exactly what the validator must flag for COCO-style use (e.g. before a YOLO export).
    assert {f.code for f in report.findings} == {"bbox-out-of-bounds"}
    assert len(report.findings) == 19
    coco = dataset_to_coco(ds)
    boxes = {a["id"]: a["bbox"] for a in coco["annotations"]}
    for f in report.findings:
        x, y, w, h = boxes[f.record]
        assert (x < 0 or x + w > 640) and 0 <= y and y + h <= 480  # only at the side edges
        assert x + w > 0 and x < 640  # still overlapping the frame


def test_written_sequence_and_its_errors(tmp_path):
    seq = tmp_path / "seq01"
    for k in range(1, 4):
        (seq / "img1").mkdir(parents=True, exist_ok=True)
        Image.fromarray(np.zeros((30, 40, 3), np.uint8)).save(seq / "img1" / f"{k:06d}.jpg")
    write_seqinfo(seq / "seqinfo.ini", name="seq01", length=3, fps=10, width=40, height=30)
    gt = {1: Detections(np.array([[1.0, 2, 5, 6], [10, 10, 4, 4]]), [1, 3], track_id=[1, 2],
                        data={"consider": np.array([1, 0]), "visibility": np.array([1.0, 0.25])}),
          3: Detections(np.array([[2.0, 2, 5, 6]]), [1], track_id=[1])}
    write_mot(gt, seq / "gt" / "gt.txt", "gt")
    ds, det = read_mot_sequence(seq)
    assert det == {} and [len(r.detections) for r in ds.images] == [2, 0, 1]
    d = ds.images[0].detections
    assert d.track_id.tolist() == [1, 2] and d.get("consider").tolist() == [1, 0]
    assert d.get("visibility").tolist() == [1.0, 0.25] and d.get("id").tolist() == [1, 2]
    assert ds.category_names[3] == MOT_CLASSES[3] == "car"
    assert ds.images[2].detections.get("id").tolist() == [3]
    report = validate_dataset(ds)
    assert report.ok and [f.code for f in report.findings] == ["image-no-annotations"]
    write_mot({5: gt[3]}, seq / "gt" / "gt.txt", "gt")
    with pytest.raises(DataError, match="frame 5"):
        read_mot_sequence(seq)
    (seq / "gt" / "gt.txt").unlink()
    with pytest.raises(DataError, match="gt.txt"):
        read_mot_sequence(seq)
    assert read_mot_sequence(seq, require_gt=False)[0].num_objects() == 0


def test_coco_val2014_through_the_canonical_model(shared_data):
    """Real annotations (polygons, crowd RLE) survive load_coco -> dataset_to_coco and validate
    clean: no error, no warning, no info (every image of this file has annotations)."""
    path = shared_data / "coco-val2014-fake100/faster_coco_eval/tests/dataset/cocoapi/instances_val2014_100.json"
    ds = load_coco(path)
    assert len(ds) == 100 and ds.num_objects() == 839
    report = validate_coco(dataset_to_coco(ds), check_files=False)
    assert report.findings == [], report.to_markdown()


def test_camvid_val(shared_data):
    root = shared_data / "camvid-segnet/CamVid"
    pairs = read_camvid(root, "val")
    assert len(pairs) == 101 and pairs[0].image.name == "0016E5_07959.png"  # val.txt order
    image, labels = pairs[0].load()
    assert image.shape == (360, 480, 3) and labels.shape == (360, 480) and labels.max() <= CAMVID_VOID
    assert CAMVID_CLASSES[CAMVID_VOID] == "Unlabelled" and len(CAMVID_CLASSES) == 12
    report = validate_semantic_masks([(p.image, p.mask) for p in pairs], known_ids=range(len(CAMVID_CLASSES)))
    assert report.findings == [], report.to_markdown()
    pixels = report.stats["masks"]["pixels_per_value"]
    assert sorted(pixels) == list(range(12)) and sum(pixels.values()) == 101 * 360 * 480
    with pytest.raises(DataError, match="'test' not found"):
        read_camvid(root, "test")


def _pennfudan(root, rng):
    """Three images in the official layout; masks are palette PNGs (value k = pedestrian k)."""
    (root / "PNGImages").mkdir(parents=True)
    (root / "PedMasks").mkdir()
    boxes = {1: [(5, 4, 20, 30)], 2: [(2, 2, 10, 12), (30, 5, 45, 40)], 3: []}  # x1, y1, x2, y2 (exclusive)
    for k, objects in boxes.items():
        name = f"FudanPed{k:05d}"
        Image.fromarray(rng.integers(0, 255, (48, 64, 3), dtype=np.uint8)).save(root / "PNGImages" / f"{name}.png")
        labels = np.zeros((48, 64), np.uint8)
        for value, (x1, y1, x2, y2) in enumerate(objects, start=1):
            labels[y1:y2, x1:x2] = value
        mask = Image.fromarray(labels, "P")
        mask.putpalette([0, 0, 0, 255, 0, 0, 0, 255, 0] + [0] * 759)
        mask.save(root / "PedMasks" / f"{name}_mask.png")
    return boxes


def test_pennfudan_fixture(tmp_path):
    boxes = _pennfudan(tmp_path / "PennFudanPed", np.random.default_rng(0))
    ds = read_pennfudan(tmp_path / "PennFudanPed")
    assert [r.file_name for r in ds.images] == [f"PNGImages/FudanPed{k:05d}.png" for k in (1, 2, 3)]
    assert ds.category_names == {1: "person"} and ds.num_objects() == 3
    for rec, objects in zip(ds.images, boxes.values()):
        assert np.array_equal(rec.detections.xyxy, np.array(objects, float).reshape(-1, 4))
        for i, (x1, y1, x2, y2) in enumerate(objects):
            mask = rle_to_mask(rec.detections.segmentation[i])
            assert mask.sum() == (x2 - x1) * (y2 - y1) == rec.detections.get("area")[i]
    assert np.concatenate([r.detections.get("id") for r in ds.images]).tolist() == [1, 2, 3]
    report = validate_dataset(ds)
    assert [(f.code, f.record) for f in report.findings] == [("image-no-annotations", 3)]
    Image.fromarray(np.zeros((10, 10), np.uint8)).save(tmp_path / "PennFudanPed/PedMasks/FudanPed00003_mask.png")
    with pytest.raises(DataError, match="FudanPed00003"):
        read_pennfudan(tmp_path / "PennFudanPed")
    (tmp_path / "PennFudanPed/PedMasks/FudanPed00003_mask.png").unlink()
    with pytest.raises(DataError, match="mask file not found"):
        read_pennfudan(tmp_path / "PennFudanPed")


def test_sequence_without_seqinfo_reads_img1_and_names_what_is_wrong(tmp_path):
    """MOT15 style: no seqinfo.ini, so name, length, size and suffix come from img1/ (the first frame)."""
    seq = tmp_path / "seq02"
    with pytest.raises(DataError, match=re.escape(f"{seq}: sequence folder not found")):
        read_mot_sequence(seq)
    (seq / "img1").mkdir(parents=True)
    with pytest.raises(DataError, match=re.escape(f"{seq}: neither seqinfo.ini nor frames in img1/")):
        read_mot_sequence(seq)
    Image.fromarray(np.zeros((30, 40, 3), np.uint8)).save(seq / "img1" / "000001.jpg")
    with pytest.raises(DataError, match=re.escape(f"{seq}: no ground truth gt/gt.txt (pass require_gt=False for a test sequence)")):
        read_mot_sequence(seq)
    ds, det = read_mot_sequence(seq, require_gt=False)
    assert ds.info["sequence"] == {"name": "seq02", "im_dir": "img1", "fps": None, "length": 1, "width": 40, "height": 30,
                                   "im_ext": ".jpg"}
    assert [(r.id, r.file_name, r.width, r.height) for r in ds.images] == [(1, "img1/000001.jpg", 40, 30)] and det == {}
    Image.fromarray(np.zeros((30, 40, 3), np.uint8)).save(seq / "img1" / "000003.jpg")
    with pytest.raises(DataError, match=re.escape(f"{seq}: img1/ frames are not numbered 1..2 without gaps")):
        read_mot_sequence(seq, require_gt=False)
    Image.fromarray(np.zeros((30, 40, 3), np.uint8)).save(seq / "img1" / "first.jpg")
    with pytest.raises(DataError, match=re.escape(f"{seq / 'img1' / 'first.jpg'}: frame files must be named by their "
                                                  "1-based number (000001.jpg)")):
        read_mot_sequence(seq, require_gt=False)


def test_pennfudan_errors_name_the_file_and_the_image(tmp_path):
    root = tmp_path / "PennFudanPed"
    root.mkdir()
    with pytest.raises(DataError, match=re.escape(f"{root}: no PNGImages/*.png")):
        read_pennfudan(root)
    _pennfudan(tmp_path / "ok", np.random.default_rng(0))
    assert read_pennfudan(tmp_path / "ok").info == {"description": "Penn-Fudan Database for Pedestrian Detection and Segmentation"}
    (tmp_path / "ok/PedMasks/FudanPed00002_mask.png").unlink()
    mask = tmp_path / "ok/PedMasks/FudanPed00002_mask.png"
    with pytest.raises(DataError, match=re.escape(f"{mask}: record FudanPed00002.png: mask file not found")):
        read_pennfudan(tmp_path / "ok")
