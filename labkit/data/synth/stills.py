"""Still images: scenes, bursts of near-duplicate shots, instance and semantic masks.

A *scene* is one place (its own palette and textured background). It is photographed in
several *bursts*: each burst is one arrangement of objects shot a few times by one camera,
with tiny changes between shots (objects nudged by about a pixel, the camera shifted by up
to 3 px, light and noise varying, artifacts drawn per shot). Shots of a burst are
near-duplicates, so only a split by scene keeps them on one side.

A burst is ``normal`` (3-12 objects), ``crowded`` (15-30 objects, heavy occlusion) or a
``closeup`` (1-4 objects, one of them large); a burst may hold a *crowd clump*, 8-14 small
touching objects of one class annotated as one ``iscrowd=1`` region, and 0-3 clutter blobs
that belong to no class (0 in the semantic mask).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from labkit.data.synth.artifacts import develop, jpeg_quality, sample_artifacts
from labkit.data.synth.config import CAMERAS, HEIGHT, WIDTH, SizeSpec
from labkit.data.synth.scene import IGNORE, composite, instance_annotation, semantic_mask, union_mask, visible_mask
from labkit.data.synth.shapes import ObjectSpec, render_sprite, sample_class, sample_object, with_area
from labkit.data.synth.textures import background, scene_palette
from labkit.data.synth.writer import write_jpeg, write_png

#: Pixels of background around the frame, so the camera can shift between shots.
JITTER = 3
#: Fraction of still images that get camera artifacts.
ARTIFACT_PROBABILITY = 0.35
BURST_KINDS = {"normal": 0.6, "crowded": 0.2, "closeup": 0.2}
CROWD_CLUMP_PROBABILITY = 0.15
STAR_CLASS = 5
LARGE_AREA = 96 ** 2  #: COCO "large" objects are bigger than this (px²)


@dataclass(frozen=True)
class SceneTask:
    """What one worker renders: scene number, split, seed, size settings and output folder.
    ``force_star`` puts a star in the scene's first burst (every split gets the rare class)."""

    index: int
    split: str
    seed: np.random.SeedSequence
    spec: SizeSpec
    out_dir: Path
    force_star: bool


@dataclass(frozen=True)
class Item:
    """One thing in a burst's arrangement: ``role`` is ``"object"``, ``"clutter"`` or
    ``"crowd"`` (a member of the burst's crowd clump)."""

    role: str
    spec: ObjectSpec


def _radius(rng: np.random.Generator, kind: str, class_id: int) -> float:
    if class_id == 4:  # rods: half-length; always thin, so always a COCO "small" area
        return float(rng.uniform(6, 45))
    if kind == "crowded":
        return float(rng.uniform(6, 28))
    bucket = rng.choice(3, p=[0.4, 0.55, 0.05])
    return float(rng.uniform(*[(5, 16), (18, 45), (50, 80)][bucket]))


def _arrangement(rng: np.random.Generator, kind: str, force_star: bool) -> list[Item]:
    """Objects, clutter and maybe a crowd clump of one burst, in back-to-front order."""
    n = {"normal": (3, 12), "crowded": (15, 30), "closeup": (1, 4)}[kind]
    classes = [sample_class(rng) for _ in range(int(rng.integers(n[0], n[1] + 1)))]
    if force_star and STAR_CLASS not in classes:
        classes[0] = STAR_CLASS
    items = []
    if kind == "closeup" and classes[0] == 4:
        classes[0] = sample_class(rng, exclude=(4,))
    for k, c in enumerate(classes):
        if kind == "closeup" and k == 0:  # one large object (COCO area > 96²), mostly inside the frame
            x, y = rng.uniform(0.25, 0.75) * WIDTH, rng.uniform(0.3, 0.7) * HEIGHT
            spec = with_area(sample_object(rng, c, x, y, 50.0), rng.uniform(1.1, 2.2) * LARGE_AREA)
        else:
            x, y = rng.uniform(-0.05, 1.05) * WIDTH, rng.uniform(-0.05, 1.05) * HEIGHT
            spec = sample_object(rng, c, x, y, _radius(rng, kind, c))
        items.append(Item("object", spec))
    for _ in range(int(rng.integers(0, 4))):
        x, y = rng.uniform(0, WIDTH), rng.uniform(0, HEIGHT)
        items.append(Item("clutter", sample_object(rng, 0, x, y, rng.uniform(8, 30))))
    if kind != "closeup" and rng.random() < CROWD_CLUMP_PROBABILITY:
        c = int(rng.choice([1, 2, 3]))
        centre = rng.uniform([40, 40], [WIDTH - 40, HEIGHT - 40])
        for _ in range(int(rng.integers(8, 15))):
            x, y = centre + rng.normal(0, 9, 2)
            items.append(Item("crowd", sample_object(rng, c, x, y, rng.uniform(4, 8))))
    order = rng.permutation(len(items))
    return [items[i] for i in order]


def _shot(items: list[Item], rng: np.random.Generator, canvas: np.ndarray) -> tuple[np.ndarray, np.ndarray, list]:
    """Render one shot: nudged sprites composited over the shifted canvas crop."""
    dx, dy = rng.integers(-JITTER, JITTER + 1, 2)
    crop = canvas[JITTER + dy:JITTER + dy + HEIGHT, JITTER + dx:JITTER + dx + WIDTH]
    sprites = [render_sprite(it.spec.moved(*rng.normal(0, 0.7, 2), rng.normal(0, 2.0))) for it in items]
    img, label = composite(crop * np.float32(rng.normal(1.0, 0.03)), sprites)
    return img, label, sprites


def _annotations(items: list[Item], label: np.ndarray, sprites: list) -> list[dict]:
    anns = []
    for i, it in enumerate(items):
        if it.role == "object":
            ann = instance_annotation(label == i, sprites[i].full_area, it.spec.class_id)
            if ann is not None:
                anns.append(ann)
    members = [i for i, it in enumerate(items) if it.role == "crowd"]
    if members:
        full = union_mask([sprites[i] for i in members], *label.shape)  # the clump is placed inside the frame
        ann = instance_annotation(visible_mask(label, members), int(full.sum()), items[members[0]].spec.class_id,
                                  iscrowd=1)
        if ann is not None:
            anns.append(ann)
    return anns


def render_scene(task: SceneTask) -> list[tuple[dict, list[dict]]]:
    """Render and write every shot of one scene (JPEG under ``images/<split>/``, semantic
    PNG under ``masks/<split>/``); return ``(image entry, annotations)`` pairs without ids."""
    rng = np.random.default_rng(task.seed)
    scene_id = f"s{task.index:02d}"
    canvas = background(rng, HEIGHT + 2 * JITTER, WIDTH + 2 * JITTER, scene_palette(rng))
    out = []
    for burst in range(int(rng.integers(task.spec.bursts_per_scene[0], task.spec.bursts_per_scene[1] + 1))):
        camera = CAMERAS[int(rng.integers(len(CAMERAS)))]
        kind = str(rng.choice(list(BURST_KINDS), p=list(BURST_KINDS.values())))
        items = _arrangement(rng, kind, task.force_star and burst == 0)
        values = [it.spec.class_id if it.role == "object" else IGNORE if it.role == "crowd" else 0 for it in items]
        for _ in range(int(rng.integers(task.spec.shots_per_burst[0], task.spec.shots_per_burst[1] + 1))):
            img, label, sprites = _shot(items, rng, canvas)
            artifacts = sample_artifacts(rng, ARTIFACT_PROBABILITY)
            stem = f"{scene_id}_{camera.camera_id}_{len(out):04d}"
            write_jpeg(task.out_dir / "images" / task.split / f"{stem}.jpg", develop(img, camera, artifacts, rng),
                       jpeg_quality(artifacts))
            mask_rel = f"masks/{task.split}/{stem}.png"
            write_png(task.out_dir / mask_rel, semantic_mask(label, values))
            image = {"file_name": f"{task.split}/{stem}.jpg", "width": WIDTH, "height": HEIGHT, "scene_id": scene_id,
                     "camera_id": camera.camera_id, "burst_id": burst, "burst_kind": kind, "split": task.split,
                     "semantic_mask": mask_rel, "artifacts": artifacts}
            out.append((image, _annotations(items, label, sprites)))
    return out
