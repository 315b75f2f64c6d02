"""The dataset card of a generated dataset, filled in from its manifest.

Rendered with :mod:`labkit.data.card` (six required sections: sources and capture devices,
label definitions and edge-case policy, annotation types, split strategy, known artifacts,
metrics to report).
"""

from __future__ import annotations

from typing import Any, Mapping

from labkit.data.card import DatasetCard, MetricSpec
from labkit.data.synth.artifacts import KINDS
from labkit.data.synth.config import CAMERAS, HEIGHT, JPEG_QUALITY, MIN_VISIBLE_PIXELS, WIDTH
from labkit.data.synth.shapes import STYLES
from labkit.data.synth.stills import ARTIFACT_PROBABILITY as STILL_ARTIFACTS
from labkit.data.synth.sequences import ARTIFACT_PROBABILITY as SEQUENCE_ARTIFACTS


def _split_sentence(counts: Mapping[str, Any]) -> str:
    stills = ", ".join(f"{s} {c['scenes']} scenes / {c['images']} images" for s, c in counts["stills"].items())
    seqs = ", ".join(f"{s} {c['sequences']} sequences / {c['frames']} frames" for s, c in counts["sequences"].items())
    return (f"Stills are split by scene (group split, seeded): {stills}. Inside a scene, bursts of near-duplicate "
            "shots (same arrangement, objects nudged by about a pixel, camera shifted by up to 3 px, new noise) "
            "would leak across an image-level random split; a split by scene keeps each burst on one side. "
            f"Video is split by sequence: {seqs}. Track ids are unique within a sequence.")


def build_card(manifest: Mapping[str, Any]) -> DatasetCard:
    """The card of the dataset a manifest describes."""
    counts = manifest["counts"]
    total = sum(c["objects"] for c in counts["stills"].values())
    stars = sum(c["per_class"].get("star", 0) for c in counts["stills"].values())
    return DatasetCard(
        name="labkit-synth",
        version=f"{manifest['generator_version']} (seed {manifest['seed']}, size {manifest['size']})",
        summary=(f"Procedurally generated shapes on textured backgrounds, {WIDTH}x{HEIGHT} px: still images with "
                 "instance and semantic masks, and short videos with track ids, for every lesson of the course. "
                 "Regenerate it byte for byte with `labkit data generate --seed N`."),
        sources=[f"the procedural generator `labkit.data.synth` version {manifest['generator_version']}; every pixel "
                 "is drawn by code (no photographs, no people, no third-party content)",
                 "each still belongs to a scene (`scene_id`: one place, with its own palette and background texture) "
                 "and a burst (`burst_id`: one arrangement of objects shot several times)"],
        capture_devices=[f"`{c.camera_id}`: {c.description} (gains {list(c.gains)}, vignette {c.vignette}, "
                         f"read noise sigma {c.noise_sigma}, blur sigma {c.blur_sigma})" for c in CAMERAS],
        label_definitions={**{f"{s.class_id} {s.name}": s.definition for s in STYLES.values()},
                           "0 background": "everything else, including unlabelled clutter polygons and pillars",
                           "255 ignore": "semantic-mask value of crowd regions (not evaluated)"},
        edge_case_policy=[
            "masks are the *visible* part of an object (occluded pixels excluded); `bbox` is the tight box of that "
            "mask, so mask and box agree; `area` is its pixel count",
            "`visibility` = visible pixels / pixels of the whole object, occluded and out-of-frame parts included",
            f"objects with fewer than {MIN_VISIBLE_PIXELS} visible pixels are left out of the COCO annotations; "
            "their few pixels keep their class in the semantic mask",
            "objects cut by the image border are annotated by their visible, in-frame part (truncation lowers "
            "`visibility`)",
            "a dense clump of 8-14 small touching objects of one class is one `iscrowd=1` RLE region (its category "
            "is the clump's class) and 255 (ignore) in the semantic mask; no other pixel is 255 (no ambiguous band)",
            "video ground truth (`gt.txt`): the full (amodal) box clipped to the frame, consider = 1, class, "
            "visibility; fully occluded objects stay in with visibility 0; the COCO frames list only objects with "
            f"at least {MIN_VISIBLE_PIXELS} visible pixels",
        ],
        annotation_types=[
            "COCO instances (`annotations/instances_{train,val,test}.json`): boxes, RLE masks, area, iscrowd, "
            "visibility; image fields scene_id, camera_id, burst_id, split, semantic_mask, artifacts",
            "semantic masks (`masks/<split>/*.png`, uint8): 0 background, 1-5 class ids, 255 ignore",
            "tracking, MOTChallenge layout (`sequences/<split>/<seq>/{img1,gt/gt.txt,seqinfo.ini}`) and the same "
            "frames as COCO with `track_id` (`annotations/sequences_{train,val,test}.json`; frame fields sequence, "
            "frame_index (1-based), camera_id, pan, artifacts)",
            "`io_cases/`: EXIF-rotated JPEGs, 16-bit, grey and RGBA PNGs with their displayed sizes and boxes",
        ],
        split_unit="scene for stills, sequence for video",
        split_strategy=_split_sentence(counts),
        known_artifacts=[
            f"about {STILL_ARTIFACTS:.0%} of the stills and {SEQUENCE_ARTIFACTS:.0%} of the sequences (every frame) "
            f"carry one or two artifacts, recorded with their parameters in the image field `artifacts` ({{}} when "
            f"clean): {', '.join(KINDS)}",
            f"all images are JPEG quality {JPEG_QUALITY} unless a `jpeg` artifact sets 10-35",
            "every camera adds its own colour cast, vignetting, softness and read noise (see the capture devices)",
            f"the class `star` is rare on purpose: {stars} of {total} still instances "
            f"({stars / max(total, 1):.1%})",
            "objects are flat-shaded synthetic shapes: models trained here will not transfer to photographs as is",
        ],
        metrics=[
            MetricSpec("COCO box mAP", "IoU 0.50:0.05:0.95, maxDets 100, area all/small/medium/large (pycocotools); "
                       "also AP at IoU 0.5 and per class"),
            MetricSpec("COCO mask mAP", "iouType segm, IoU 0.50:0.05:0.95, maxDets 100"),
            MetricSpec("star AP", "AP at IoU 0.5 of the rare class, reported separately"),
            MetricSpec("semantic mIoU", "6 classes (background + 5), ignore index 255, confusion over the whole split"),
            MetricSpec("HOTA", "alpha 0.05:0.05:0.95 (TrackEval), with DetA and AssA"),
            MetricSpec("MOTA and IDF1", "IoU threshold 0.5, all gt boxes with consider = 1"),
        ],
        licence="generated by the course's code; no third-party content",
        contact="the course maintainers (issue tracker of the course repository)",
    )
