"""Video sequences with track ids, in MOTChallenge layout and as COCO frames.

Objects move with smooth, slowly turning headings (the turn rate is a damped random walk),
speed up and slow down a little, spin, cross each other (every sequence has one pair set on
a collision course), hide behind static textured pillars drawn on top of them and behind
each other (fixed depth order), and enter and leave the frame. In *pan* sequences the
background is a wider canvas and the view window slides across it (ease-in-out), so static
pillars move in the image too.

Ground truth per frame (MOTChallenge ``gt.txt``): the full (amodal) box clipped to the frame,
consider = 1, class, visibility = visible / full pixels; every object whose clipped box is
non-empty is listed, fully occluded ones included (visibility 0). The COCO frames list the
objects with at least 10 visible pixels, with their visible masks, like the stills.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from labkit.data.annotations import Detections
from labkit.data.mot import write_mot, write_seqinfo
from labkit.data.synth.artifacts import develop, jpeg_quality, sample_artifacts
from labkit.data.synth.config import CAMERAS, FPS, HEIGHT, WIDTH
from labkit.data.synth.scene import amodal_box, composite, instance_annotation
from labkit.data.synth.shapes import ObjectSpec, Sprite, render_sprite, sample_class, sample_object
from labkit.data.synth.textures import background, scene_palette
from labkit.data.synth.writer import write_jpeg

#: Extra canvas width (px) of a pan sequence of 150 frames: the view slides this far (shorter
#: sequences pan proportionally less, so the pan speed stays the same).
PAN_EXTRA = 200
#: Mean number of frames between two objects entering.
SPAWN_EVERY = 15
#: Probability that a sequence has artifacts (then on every frame), and the kinds it may get.
ARTIFACT_PROBABILITY = 0.5
ARTIFACT_KINDS = ("defocus_blur", "sensor_noise", "low_light", "jpeg", "rain", "fog")
_MARGIN = 8  # px beyond the view at which an object moving away ends its track


@dataclass(frozen=True)
class SequenceTask:
    """What one worker renders: sequence number (0-based), split, seed, length, pan flag,
    output folder."""

    index: int
    split: str
    seed: np.random.SeedSequence
    frames: int
    pan: bool
    out_dir: Path

    @property
    def name(self) -> str:
        return f"seq{self.index + 1:02d}"


@dataclass
class Track:
    """An object's appearance, its depth (larger = nearer) and its ``(cx, cy, angle)`` per
    frame (world coordinates)."""

    spec: ObjectSpec
    depth: float
    states: dict[int, tuple[float, float, float]] = field(default_factory=dict)


def view_offset(t: int, frames: int, extra: int) -> float:
    """Left edge of the view on the canvas at frame ``t`` (1-based): ease-in-out over ``extra``."""
    return extra * 0.5 * (1 - math.cos(math.pi * (t - 1) / max(frames - 1, 1)))


def _leaving(x: float, y: float, vx: float, vy: float, pan_v: float, left: float, r: float) -> bool:
    """Outside the view (by more than the margin) and moving further away from it."""
    if x < left - r - _MARGIN and vx < pan_v or x > left + WIDTH + r + _MARGIN and vx > pan_v:
        return True
    return y < -r - _MARGIN and vy < 0 or y > HEIGHT + r + _MARGIN and vy > 0


def _simulate(rng: np.random.Generator, track: Track, start: int, x: float, y: float, heading: float,
              speed: float, wiggle: float, frames: int, extra: int) -> Track:
    """Move an object from frame ``start`` until it leaves the view for good or the sequence ends."""
    omega, angle, spin = 0.0, track.spec.angle, rng.normal(0, 0.8)
    for t in range(start, frames + 1):
        vx, vy = speed * math.cos(heading), speed * math.sin(heading)
        pan_v = view_offset(t + 1, frames, extra) - view_offset(t, frames, extra)
        if t > start and _leaving(x, y, vx, vy, pan_v, view_offset(t, frames, extra), track.spec.radius):
            break
        track.states[t] = (x, y, angle)
        omega = 0.95 * omega + rng.normal(0, wiggle)
        heading += omega
        speed = float(np.clip(speed + rng.normal(0, 0.04), 0.5, 3.5))
        x, y, angle = x + vx, y + vy, angle + spin
    return track


def _max_pan_speed(frames: int, extra: int) -> float:
    """Largest per-frame shift of the view (px), at mid-sequence."""
    return extra * math.pi / (2 * max(frames - 1, 1))


def _new_track(rng: np.random.Generator) -> Track:
    c = sample_class(rng)
    r = float(rng.uniform(8, 40) if c == 4 else rng.choice([rng.uniform(6, 14), rng.uniform(14, 32)], p=[0.3, 0.7]))
    return Track(sample_object(rng, c, 0.0, 0.0, r), float(rng.random()))


def plan_tracks(rng: np.random.Generator, frames: int, extra: int) -> list[Track]:
    """All tracks of a sequence: some in view at frame 1, a crossing pair, and objects
    entering from the view's edges at random frames."""
    tracks = []
    for _ in range(int(rng.integers(4, 8))):
        x, y = rng.uniform(20, WIDTH - 20), rng.uniform(20, HEIGHT - 20)
        tracks.append(_simulate(rng, _new_track(rng), 1, x, y, rng.uniform(0, 2 * np.pi), rng.uniform(0.8, 2.5),
                                0.006, frames, extra))
    meet = int(rng.integers(max(frames // 4, 1), frames // 2 + 2))  # the crossing pair meets here
    pan_max = _max_pan_speed(frames, extra)
    speed, y = max(rng.uniform(1.5, 2.5), pan_max + 0.3), rng.uniform(60, HEIGHT - 60)
    centre = view_offset(meet, frames, extra) + WIDTH / 2
    for side in (-1, 1):
        x = centre + side * speed * (meet - 1)
        heading = (0.0 if side < 0 else math.pi) + rng.normal(0, 0.03)
        tracks.append(_simulate(rng, _new_track(rng), 1, x, y + side * rng.uniform(0, 6), heading, speed, 0.0005,
                                frames, extra))
    for t in range(2, frames + 1):
        if rng.random() >= 1 / SPAWN_EVERY:
            continue
        track, left, edge = _new_track(rng), view_offset(t, frames, extra), int(rng.integers(4))
        r = track.spec.radius
        x, y, heading = [(left - r, rng.uniform(0, HEIGHT), 0.0), (left + WIDTH + r, rng.uniform(0, HEIGHT), math.pi),
                         (left + rng.uniform(0, WIDTH), -r, math.pi / 2),
                         (left + rng.uniform(0, WIDTH), HEIGHT + r, -math.pi / 2)][edge]
        speed = rng.uniform(0.8, 2.5) + (pan_max if edge == 0 else 0.0)  # entering from the left, outrun the pan
        tracks.append(_simulate(rng, track, t, x, y, heading + rng.uniform(-0.6, 0.6), speed, 0.006, frames, extra))
    return [t for t in tracks if t.states]


def pillars(rng: np.random.Generator, canvas_width: int, palette: np.ndarray) -> list[Sprite]:
    """One or two static, banded, shaded pillars (canvas coordinates)."""
    out = []
    for _ in range(int(rng.integers(1, 3))):
        w, top = int(rng.integers(14, 27)), int(rng.choice([0, rng.integers(0, HEIGHT // 3)]))
        x0 = int(rng.integers(WIDTH // 6, canvas_width - WIDTH // 6 - w))
        h = HEIGHT - top
        across = 1.1 - 0.5 * (np.linspace(-1, 1, w, dtype=np.float32) ** 2)
        bands = np.where((np.arange(h) // int(rng.integers(6, 16))) % 2 == 0, 1.0, 0.8).astype(np.float32)
        colour = palette[int(rng.integers(4))] * rng.uniform(0.5, 0.9)
        rgb = np.clip(colour * (bands[:, None] * across[None, :])[..., None], 0, 1).astype(np.float32)
        out.append(Sprite(x0, top, np.ones((h, w), bool), rgb))
    return out


def render_sequence(task: SequenceTask) -> list[tuple[dict, list[dict]]]:
    """Render and write one sequence (frames, ``gt/gt.txt``, ``seqinfo.ini`` under
    ``sequences/<split>/<name>/``); return ``(frame entry, annotations)`` pairs without ids."""
    rng = np.random.default_rng(task.seed)
    extra = int(PAN_EXTRA * min(1.0, task.frames / 150)) if task.pan else 0
    palette = scene_palette(rng)
    canvas = background(rng, HEIGHT, WIDTH + extra, palette)
    occluders = pillars(rng, WIDTH + extra, palette)
    camera = CAMERAS[int(rng.integers(len(CAMERAS)))]
    artifacts = sample_artifacts(rng, ARTIFACT_PROBABILITY, ARTIFACT_KINDS)
    tracks = plan_tracks(rng, task.frames, extra)  # created in order of their first frame: ids 1, 2, ...
    seq_dir = task.out_dir / "sequences" / task.split / task.name
    out, gt = [], {}
    for t in range(1, task.frames + 1):
        left = int(round(view_offset(t, task.frames, extra)))
        alive = sorted(((tid, tr) for tid, tr in enumerate(tracks, start=1) if t in tr.states), key=lambda a: a[1].depth)
        sprites = [render_sprite(replace(tr.spec, cx=tr.states[t][0] - left, cy=tr.states[t][1], angle=tr.states[t][2]))
                   for _, tr in alive]
        sprites += [Sprite(p.x0 - left, p.y0, p.mask, p.rgb) for p in occluders]
        img, label = composite(canvas[:, left:left + WIDTH], sprites)
        anns, rows = [], []
        for i, (tid, tr) in enumerate(alive):
            box = amodal_box(sprites[i], HEIGHT, WIDTH)
            if box is None:
                continue
            visible = int((label == i).sum())
            rows.append((box, tr.spec.class_id, tid, round(min(visible / sprites[i].full_area, 1.0), 4)))
            ann = instance_annotation(label == i, sprites[i].full_area, tr.spec.class_id)
            if ann is not None:
                anns.append({**ann, "track_id": tid})
        if rows:
            gt[t] = Detections([r[0] for r in rows], [r[1] for r in rows], track_id=[r[2] for r in rows],
                               data={"consider": np.ones(len(rows), np.int64), "visibility": np.array([r[3] for r in rows])})
        rel = f"{task.split}/{task.name}/img1/{t:06d}.jpg"
        write_jpeg(task.out_dir / "sequences" / rel, develop(img, camera, artifacts, rng), jpeg_quality(artifacts))
        out.append(({"file_name": rel, "width": WIDTH, "height": HEIGHT, "sequence": task.name, "frame_index": t,
                     "split": task.split, "camera_id": camera.camera_id, "pan": task.pan, "artifacts": artifacts}, anns))
    write_mot(gt, seq_dir / "gt" / "gt.txt", "gt")
    write_seqinfo(seq_dir / "seqinfo.ini", name=task.name, length=task.frames, fps=FPS, width=WIDTH, height=HEIGHT)
    return out
