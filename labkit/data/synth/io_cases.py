"""Awkward image files for the image-I/O lesson, all showing the *same* picture.

``io_cases/`` holds one small scene saved five ways, and ``io_cases/annotations.json`` (COCO,
``file_name`` relative to ``io_cases/``) gives, for every file, the size and the boxes of the
picture *as displayed*. A loader is right when every file yields that picture:

* ``exif_orientation_6.jpg`` - pixels stored turned 90 degrees counter-clockwise, EXIF
  Orientation = 6 ("rotate 90 degrees clockwise to display"); stored width and height swapped;
* ``exif_orientation_3.jpg`` - pixels stored upside down, EXIF Orientation = 3;
* ``rgb16.png`` - 16 bits per channel (a naive ``uint8`` cast wraps around);
* ``gray.png`` - one channel (code expecting ``H x W x 3`` breaks);
* ``rgba.png`` - a fourth, alpha channel (objects opaque, background 60 % opaque).

EXIF orientation values follow the EXIF 2.3 standard (JEITA CP-3451C), tag 0x0112.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

from labkit.data.synth.scene import composite, instance_annotation
from labkit.data.synth.shapes import render_sprite, sample_object
from labkit.data.synth.textures import background, scene_palette
from labkit.data.synth.writer import coco_file, write_json, write_png

WIDTH, HEIGHT = 200, 150
_ORIENTATION_TAG = 0x0112


def _scene(rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, list[dict]]:
    """The displayed picture (uint8 RGB), its object mask and its annotations."""
    canvas = background(rng, HEIGHT, WIDTH, scene_palette(rng))
    specs = [sample_object(rng, 1, 50, 45, 22), sample_object(rng, 2, 140, 95, 30), sample_object(rng, 3, 95, 120, 18)]
    sprites = [render_sprite(s) for s in specs]
    img, label = composite(canvas, sprites)
    anns = [instance_annotation(label == i, sp.full_area, s.class_id) for i, (s, sp) in enumerate(zip(specs, sprites))]
    return np.round(img * 255).astype(np.uint8), label >= 0, [a for a in anns if a is not None]


def _save_exif_jpeg(path: Path, stored: np.ndarray, orientation: int) -> None:
    exif = Image.Exif()
    exif[_ORIENTATION_TAG] = orientation
    Image.fromarray(stored).save(path, "JPEG", quality=90, exif=exif.tobytes())


def write_io_cases(out_dir: Path, rng: np.random.Generator, info: dict) -> int:
    """Write the files and ``annotations.json`` into ``out_dir``; return the number of images."""
    out_dir.mkdir(parents=True, exist_ok=True)
    rgb, objects, anns = _scene(rng)
    _save_exif_jpeg(out_dir / "exif_orientation_6.jpg", np.ascontiguousarray(np.rot90(rgb, k=1)), 6)
    _save_exif_jpeg(out_dir / "exif_orientation_3.jpg", np.ascontiguousarray(rgb[::-1, ::-1]), 3)
    ramp = np.linspace(0, 255, WIDTH, dtype=np.uint16)[None, :, None]  # fills the low byte: real 16-bit content
    write_png(out_dir / "rgb16.png", rgb.astype(np.uint16) * 256 + ramp)
    write_png(out_dir / "gray.png", np.round(rgb @ np.array([0.299, 0.587, 0.114])).astype(np.uint8))
    alpha = np.where(objects, 255, 153).astype(np.uint8)[..., None]
    write_png(out_dir / "rgba.png", np.concatenate([rgb, alpha], axis=2))
    cases = [
        ("exif_orientation_6.jpg", "exif_orientation", "stored 150 wide x 200 high, EXIF Orientation 6"),
        ("exif_orientation_3.jpg", "exif_orientation", "stored upside down, EXIF Orientation 3"),
        ("rgb16.png", "bit_depth_16", "RGB, 16 bits per channel"),
        ("gray.png", "grayscale", "one channel, 8 bits"),
        ("rgba.png", "alpha_channel", "RGBA, alpha 255 on objects and 153 on the background"),
    ]
    items = [({"file_name": name, "width": WIDTH, "height": HEIGHT, "case": case, "note": note}, anns)
             for name, case, note in cases]
    write_json(out_dir / "annotations.json", coco_file(items, info))
    return len(items)
