"""Fixed settings of the generator: version, image size, dataset sizes, splits and cameras.

Any change to ``labkit.data.synth`` that alters the output must bump :data:`GENERATOR_VERSION`, so that
:func:`labkit.data.synth.ensure_dataset` regenerates datasets made by the older version.
"""

from __future__ import annotations

from dataclasses import dataclass

GENERATOR_VERSION = "1.1.0"
WIDTH, HEIGHT = 320, 240
SPLITS = ("train", "val", "test")
#: Objects whose visible part has fewer pixels are left out of the COCO annotations.
MIN_VISIBLE_PIXELS = 10
#: JPEG quality of every image without a ``jpeg`` artifact.
JPEG_QUALITY = 90
#: Frame rate written to ``seqinfo.ini``.
FPS = 25


@dataclass(frozen=True)
class SizeSpec:
    """How much to generate. Ranges are inclusive ``(low, high)``."""

    scenes: int
    scene_split: tuple[int, int, int]  #: scenes in train, val, test
    bursts_per_scene: tuple[int, int]
    shots_per_burst: tuple[int, int]
    sequence_split: tuple[int, int, int]  #: sequences in train, val, test
    frames: int
    #: sequence indices (0-based, in split order) whose camera pans over a wider canvas
    pan_sequences: tuple[int, ...]


SIZES: dict[str, SizeSpec] = {
    "default": SizeSpec(scenes=36, scene_split=(26, 5, 5), bursts_per_scene=(3, 5), shots_per_burst=(4, 6),
                        sequence_split=(4, 2, 2), frames=150, pan_sequences=(1, 4, 6)),
    # one sequence per split (not 2), so that every split file of the small set is non-empty
    "small": SizeSpec(scenes=6, scene_split=(4, 1, 1), bursts_per_scene=(2, 2), shots_per_burst=(5, 5),
                      sequence_split=(1, 1, 1), frames=30, pan_sequences=(1,)),
}


@dataclass(frozen=True)
class Camera:
    """A virtual capture device: what it does to every image it takes (not an artifact)."""

    camera_id: str
    description: str
    gains: tuple[float, float, float]  #: white-balance gain per R, G, B channel
    vignette: float  #: brightness lost in the corners (0 = none)
    noise_sigma: float  #: Gaussian read noise, in 8-bit grey levels
    blur_sigma: float  #: optics softness, Gaussian sigma in pixels (0 = sharp)


CAMERAS: tuple[Camera, ...] = (
    Camera("c0", "neutral reference camera: sharp, little noise, light vignetting", (1.0, 1.0, 1.0), 0.12, 1.5, 0.0),
    Camera("c1", "warm webcam: orange white balance, soft optics, strong vignetting", (1.08, 1.0, 0.88), 0.3, 3.0, 0.7),
    Camera("c2", "cool machine-vision camera: blue white balance, sharp, no vignetting", (0.9, 1.0, 1.1), 0.0, 2.0, 0.0),
    Camera("c3", "cheap sensor: noisy, soft, dark corners", (1.0, 0.97, 1.0), 0.4, 5.0, 0.5),
)
