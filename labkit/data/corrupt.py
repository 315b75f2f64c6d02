"""Plant known defects into a copy of a valid COCO dict, to test a validator against.

Each defect kind breaks exactly one record in one way; :func:`plant_defects` reports what it
planted as ``{kind, code, record, needs_files}``. ``code`` is the
:data:`labkit.data.validate.CODES` finding that :func:`~labkit.data.validate.validate_coco`
gives for it, ``record`` the id the finding names (``"annotations[i]"`` for an annotation
whose id was deleted), and ``needs_files`` tells the defects that only show when image files
are checked. Records are drawn with the seed, distinct per defect, and annotation defects
avoid images that carry an image defect, so every defect stays detectable.
"""

from __future__ import annotations

import copy
from typing import Any, Callable, Iterable

import numpy as np

from labkit.data.masks import mask_to_rle
from labkit.errors import DataError

# kind -> (target list, validator code, needs image files)
_SPEC: dict[str, tuple[str, str, bool]] = {
    "image-missing-width": ("images", "image-missing-field", False),
    "image-zero-height": ("images", "image-bad-field", False),
    "duplicate-image-id": ("images", "duplicate-image-id", False),
    "image-size-mismatch": ("images", "size-mismatch", True),
    "image-file-missing": ("images", "file-missing", True),
    "category-missing-name": ("categories", "category-missing-field", False),
    "duplicate-category-id": ("categories", "duplicate-category-id", False),
    "ann-missing-bbox": ("annotations", "ann-missing-field", False),
    "ann-missing-area": ("annotations", "ann-missing-field", False),
    "ann-missing-id": ("annotations", "ann-missing-field", False),
    "duplicate-ann-id": ("annotations", "duplicate-ann-id", False),
    "unknown-image-id": ("annotations", "unknown-image-id", False),
    "unknown-category-id": ("annotations", "unknown-category-id", False),
    "category-id-as-string": ("annotations", "ann-bad-field", False),
    "iscrowd-invalid": ("annotations", "ann-bad-field", False),
    "area-negative": ("annotations", "ann-bad-field", False),
    "bbox-nan": ("annotations", "bbox-nan", False),
    "bbox-negative-width": ("annotations", "bbox-nonpositive", False),
    "bbox-zero-height": ("annotations", "bbox-nonpositive", False),
    "bbox-out-of-bounds": ("annotations", "bbox-out-of-bounds", False),
    "bbox-wrong-length": ("annotations", "ann-bad-field", False),
    "bbox-as-string": ("annotations", "ann-bad-field", False),
    "polygon-too-short": ("annotations", "segm-bad-format", False),
    "polygon-odd-length": ("annotations", "segm-bad-format", False),
    "rle-wrong-size": ("annotations", "rle-size-mismatch", False),
    "rle-bad-counts": ("annotations", "rle-bad-counts", False),
    "segm-empty": ("annotations", "segm-empty", False),
    "mask-box-mismatch": ("annotations", "mask-box-mismatch", False),
}
#: Every defect kind :func:`plant_defects` knows.
DEFECT_KINDS: tuple[str, ...] = tuple(_SPEC)
#: Kinds that only a validator reading the image files can find.
FILE_KINDS: tuple[str, ...] = tuple(k for k, (_, _, files) in _SPEC.items() if files)
_MIN_BOX_AREA = 100.0  # a mask-box-mismatch target must be big enough for a 4x4 mask to miss it


def _image_defect(kind: str, img: dict, coco: dict) -> None:
    if kind == "image-missing-width":
        del img["width"]
    elif kind == "image-zero-height":
        img["height"] = 0
    elif kind == "duplicate-image-id":
        coco["images"].append(copy.deepcopy(img))
    elif kind == "image-size-mismatch":
        img["width"] += 7
    else:  # image-file-missing
        img["file_name"] = f"missing/{img['file_name']}"


def _category_defect(kind: str, cat: dict, coco: dict) -> None:
    if kind == "category-missing-name":
        del cat["name"]
    else:  # duplicate-category-id
        coco["categories"].append({**copy.deepcopy(cat), "name": f"{cat['name']} (copy)"})


def _far_square(box: list[float], w: int, h: int) -> list[float]:
    """A 4x4 px square polygon in the image corner farthest from the box centre."""
    x0 = 0.0 if box[0] + box[2] / 2 > w / 2 else w - 4.0
    y0 = 0.0 if box[1] + box[3] / 2 > h / 2 else h - 4.0
    return [x0, y0, x0 + 4, y0, x0 + 4, y0 + 4, x0, y0 + 4]


def _annotation_defect(kind: str, ann: dict, img: dict, coco: dict, other: dict) -> None:
    x, y, bw, bh = ann["bbox"]
    w, h = img["width"], img["height"]
    changes: dict[str, Callable[[], None]] = {
        "ann-missing-bbox": lambda: ann.pop("bbox"),
        "ann-missing-area": lambda: ann.pop("area"),
        "ann-missing-id": lambda: ann.pop("id"),
        "duplicate-ann-id": lambda: ann.update(id=other["id"]),
        "unknown-image-id": lambda: ann.update(image_id=max(i["id"] for i in coco["images"]) + 1000),
        "unknown-category-id": lambda: ann.update(category_id=max(c["id"] for c in coco["categories"]) + 1000),
        "category-id-as-string": lambda: ann.update(category_id=str(ann["category_id"])),
        "iscrowd-invalid": lambda: ann.update(iscrowd=2),
        "area-negative": lambda: ann.update(area=-float(ann["area"])),
        "bbox-nan": lambda: ann.update(bbox=[x, y, float("nan"), bh]),
        "bbox-negative-width": lambda: ann.update(bbox=[x, y, -bw, bh]),
        "bbox-zero-height": lambda: ann.update(bbox=[x, y, bw, 0.0]),
        "bbox-out-of-bounds": lambda: ann.update(bbox=[x, y, w - x + 10.0, bh]),
        "bbox-wrong-length": lambda: ann.update(bbox=[x, y, bw]),
        "bbox-as-string": lambda: ann.update(bbox=f"{x},{y},{bw},{bh}"),
        "polygon-too-short": lambda: ann.update(segmentation=[[x, y, x + bw, y + bh]]),
        "polygon-odd-length": lambda: ann.update(segmentation=[[x, y, x + bw, y, x + bw, y + bh, x]]),
        "rle-wrong-size": lambda: ann.update(segmentation=mask_to_rle(np.zeros((h + 1, w), bool))),
        "rle-bad-counts": lambda: ann.update(segmentation={"size": [h, w], "counts": [h * w - 10, 5]}),
        "segm-empty": lambda: ann.update(segmentation=[[x, y, x, y, x, y]]),
        "mask-box-mismatch": lambda: ann.update(segmentation=[_far_square(ann["bbox"], w, h)]),
    }
    changes[kind]()


def _pick(candidates: list[int], used: set[int], rng: np.random.Generator, kind: str, what: str) -> int:
    free = [c for c in candidates if c not in used]
    if not free:
        raise DataError(f"cannot plant '{kind}': no {what} left to break (the COCO dict is too small)")
    choice = free[int(rng.integers(len(free)))]
    used.add(choice)
    return choice


def plant_defects(coco: dict[str, Any], seed: int, kinds: Iterable[str] | None = None) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """A deep copy of a valid COCO dict with one defect of each kind in ``kinds`` (default:
    :data:`DEFECT_KINDS`), and the list of what was planted, in ``kinds`` order.

    Raises :class:`DataError` for an unknown kind, or when the dict has too few images,
    categories or annotations to give every defect its own record.
    """
    kinds = list(dict.fromkeys(DEFECT_KINDS if kinds is None else kinds))
    unknown = [k for k in kinds if k not in _SPEC]
    if unknown:
        raise DataError(f"unknown defect kind(s) {unknown}; known: {', '.join(DEFECT_KINDS)}")
    out = copy.deepcopy(coco)
    rng = np.random.default_rng(seed)
    images, anns, cats = list(out["images"]), list(out["annotations"]), list(out["categories"])
    by_id = {img["id"]: img for img in images}
    used: dict[str, set[int]] = {"images": set(), "categories": set(), "annotations": set()}
    planted = []
    for kind in [k for k in kinds if _SPEC[k][0] == "images"]:
        k = _pick(list(range(len(images))), used["images"], rng, kind, "image")
        planted.append((kind, images[k]["id"]))
        _image_defect(kind, images[k], out)
    for kind in [k for k in kinds if _SPEC[k][0] == "categories"]:
        k = _pick(list(range(len(cats))), used["categories"], rng, kind, "category")
        planted.append((kind, cats[k]["id"]))
        _category_defect(kind, cats[k], out)
    broken_images = {images[k]["id"] for k in used["images"]}
    healthy = [k for k, a in enumerate(anns) if a["image_id"] not in broken_images]
    big = [k for k in healthy if anns[k]["bbox"][2] * anns[k]["bbox"][3] >= _MIN_BOX_AREA]
    # the one constrained kind picks first, so the others cannot use up its candidates
    ann_kinds = sorted((k for k in kinds if _SPEC[k][0] == "annotations"), key=lambda k: k != "mask-box-mismatch")
    # the annotation whose id a duplicate copies must itself stay intact
    source = _pick(healthy, used["annotations"], rng, "duplicate-ann-id", "annotation") if "duplicate-ann-id" in ann_kinds else None
    for kind in ann_kinds:
        k = _pick(big if kind == "mask-box-mismatch" else healthy, used["annotations"], rng, kind, "annotation")
        ann = anns[k]
        record = f"annotations[{k}]" if kind == "ann-missing-id" else (anns[source]["id"] if kind == "duplicate-ann-id" else ann["id"])
        _annotation_defect(kind, ann, by_id[ann["image_id"]], out, anns[source] if source is not None else {})
        planted.append((kind, record))
    order = {kind: i for i, kind in enumerate(kinds)}
    planted.sort(key=lambda p: order[p[0]])
    return out, [{"kind": kind, "code": _SPEC[kind][1], "record": record, "needs_files": _SPEC[kind][2]}
                 for kind, record in planted]
