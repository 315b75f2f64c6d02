"""Image and sequence corruptions at five severities, with the parameters of each recorded.

The kinds follow the common-corruption benchmark of D. Hendrycks and T. Dietterich,
"Benchmarking Neural Network Robustness to Common Corruptions and Perturbations", ICLR 2019
(ImageNet-C: five severities per kind), restricted to what a camera in this course meets:
blur (``motion_blur``, ``defocus_blur``), sensor noise (``gaussian_noise``), ``low_light``
(gamma + gain + noise, as :mod:`labkit.data.synth.artifacts` simulates it), weather (``fog``,
``rain``, ``snow``) and compression (``jpeg`` quality tiers; ``h264`` bitrate tiers through the
ffmpeg binary that ``imageio-ffmpeg`` ships).

Every kind but ``h264`` is an albumentations transform (``MotionBlur``, ``Defocus``,
``GaussNoise``, ``RandomGamma`` + ``MultiplicativeNoise`` + ``GaussNoise``, ``RandomFog``,
``RandomRain``, ``RandomSnow``, ``ImageCompression``) whose ranges are collapsed to the single
values of one :class:`Corruption`: the severity table :data:`SEVERITIES` fixes the strength, and
the few free choices (blur angle, rain slant) are drawn from the seed into ``params``, so what is
recorded is what is applied. The pixel-level randomness left (which noise sample, where the
drops fall) comes from the same seed. The ladders overlap the ranges the dataset generator
draws its own camera artifacts from (``labkit.data.synth.artifacts``), so the mild end is what the
val split already holds and severity 5 goes beyond it: motion blur 5-15 px (severities 1-3),
defocus radius 2-5 (2-4), noise sigma 6-20 (1-3), low-light gamma 1.6-2.8 (2-4), JPEG quality
10-35 (1-4).

**Sequences** (:func:`corrupt_sequence`) draw one :class:`Corruption` per sequence, applied to
every frame: the change is consistent in time (same blur angle, same fog, same gain), never
per-frame jitter; only the noise sample and the rain drops and snow flakes differ between frames
(:data:`FRAME_VARYING`), as they do in a real camera.
"""

from __future__ import annotations

import subprocess
from dataclasses import dataclass, field
from typing import Any, Sequence

import albumentations as A
import numpy as np

from labkit.errors import DataError

KINDS = ("motion_blur", "defocus_blur", "gaussian_noise", "low_light", "fog", "rain", "snow", "jpeg", "h264")
SEVERITY_LEVELS = (1, 2, 3, 4, 5)

#: Fixed parameters per kind and severity (index 0 = severity 1). Free choices drawn per
#: image or sequence are listed in :data:`DRAWN`.
SEVERITIES: dict[str, tuple[dict[str, Any], ...]] = {
    # kernel length in px (odd, as MotionBlur needs)
    "motion_blur": tuple({"length": n} for n in (5, 9, 13, 17, 23)),
    # disc radius in px; alias_blur = sigma of the Gaussian that softens the disc's edge
    "defocus_blur": tuple({"radius": r, "alias_blur": a} for r, a in ((1, 0.1), (2, 0.1), (3, 0.2), (5, 0.3), (7, 0.4))),
    # standard deviation in 8-bit grey levels
    "gaussian_noise": tuple({"sigma": s} for s in (8, 14, 20, 30, 45)),
    # out = gain * in**gamma + noise(sigma) (in [0, 1]); the generator's low_light artifact
    "low_light": tuple({"gamma": g, "gain": k, "noise_sigma": s}
                       for g, k, s in ((1.4, 0.8, 3), (1.8, 0.65, 5), (2.2, 0.5, 7), (2.6, 0.4, 9), (3.0, 0.3, 12))),
    # RandomFog fog_coef (density) and alpha_coef (transparency of each fog blob)
    "fog": tuple({"fog_coef": c, "alpha_coef": 0.08} for c in (0.2, 0.35, 0.5, 0.65, 0.8)),
    # RandomRain: rain_type sets the number of drops (drizzle H/4, heavy H, torrential 2H)
    "rain": tuple({"rain_type": t, "drop_length": n, "brightness": b}
                  for t, n, b in (("drizzle", 8, 0.9), ("drizzle", 14, 0.85), ("heavy", 14, 0.8), ("heavy", 20, 0.75),
                                  ("torrential", 24, 0.7))),
    # RandomSnow (texture method): snow_point = lightness threshold, brightness = snow brightening
    "snow": tuple({"snow_point": p, "brightness": b} for p, b in ((0.1, 1.5), (0.2, 1.7), (0.3, 1.9), (0.4, 2.1), (0.5, 2.3))),
    # JPEG quality (0-100, lower = stronger compression)
    "jpeg": tuple({"quality": q} for q in (30, 20, 15, 10, 6)),
    # H.264 (libx264) target bitrate in kbit/s at FPS frames per second
    "h264": tuple({"kbps": b} for b in (300, 150, 80, 40, 20)),
}
#: Parameters drawn from the seed once per image (or once per sequence): kind -> name -> (low, high).
DRAWN: dict[str, dict[str, tuple[float, float]]] = {
    "motion_blur": {"angle": (0.0, 180.0)},
    "rain": {"slant": (-10.0, 10.0)},
}
#: Kinds whose pixel-level randomness is new in every frame of a sequence (noise, falling drops
#: and flakes); the others (fog's blobs included) stay the same in every frame.
FRAME_VARYING = frozenset({"gaussian_noise", "low_light", "rain", "snow"})
#: Frame rate a sequence is encoded at for ``h264`` (the generator's, see labkit.data.synth.config).
FPS = 25


def check_kind(kind: str) -> str:
    """``kind`` if known, else a :class:`DataError` listing the known kinds."""
    if kind not in SEVERITIES:
        raise DataError(f"unknown corruption kind {kind!r}; known kinds: {', '.join(KINDS)}")
    return kind


def check_severity(severity: Any) -> int:
    """``severity`` as an int in 1..5, else a :class:`DataError`."""
    if isinstance(severity, bool) or not isinstance(severity, (int, np.integer)) or not 1 <= int(severity) <= 5:
        raise DataError(f"severity must be an integer from 1 to 5, got {severity!r}")
    return int(severity)


@dataclass(frozen=True)
class Corruption:
    """One corruption with all its parameters fixed: apply it to images with :meth:`apply`.

    Attributes:
        kind, severity: what it is (see :data:`KINDS`, 1..5).
        params: the applied parameters (the severity's fixed values plus the drawn ones).
        seed: seeds the pixel-level randomness (noise sample, drop positions).
    """

    kind: str
    severity: int
    params: dict[str, Any] = field(hash=False)
    seed: int = 0

    def record(self) -> dict[str, Any]:
        """JSON-ready description: kind, severity, params, seed."""
        return {"kind": self.kind, "severity": self.severity, "params": dict(self.params), "seed": self.seed}

    def transform(self) -> A.Compose:
        """The albumentations pipeline of this corruption (not for ``h264``), applied with p = 1."""
        return A.Compose([_albumentation(self.kind, self.params)], p=1.0, seed=self.seed)

    def apply(self, image: np.ndarray, index: int = 0) -> np.ndarray:
        """Corrupt one RGB uint8 image. ``index`` (a frame number) varies the pixel-level
        randomness between the frames of a sequence; the parameters stay those of ``params``."""
        return self.apply_frames([image], start=index)[0]

    def apply_frames(self, frames: Sequence[np.ndarray], start: int = 0) -> list[np.ndarray]:
        """Corrupt frames of one sequence with these parameters (frame ``k`` uses index ``start + k``)."""
        frames = [_check_image(f, k) for k, f in enumerate(frames)]
        if self.kind == "h264":
            return h264_roundtrip(frames, self.params["kbps"])
        pipeline = self.transform()
        out = []
        for k, frame in enumerate(frames):
            pipeline.set_random_seed(_mix(self.seed, start + k if self.kind in FRAME_VARYING else 0))
            out.append(pipeline(image=frame)["image"])
        return out


def _mix(seed: int, index: int) -> int:
    return int(np.random.SeedSequence([int(seed), int(index)]).generate_state(1)[0])


def _check_image(image: Any, index: int) -> np.ndarray:
    img = np.asarray(image)
    if img.dtype != np.uint8 or img.ndim != 3 or img.shape[2] != 3:
        raise DataError(f"expected an RGB uint8 (H, W, 3) image, got {img.dtype} {img.shape}", record=index)
    return np.ascontiguousarray(img)


def _albumentation(kind: str, p: dict[str, Any]) -> A.BasicTransform | A.Compose:
    if kind == "motion_blur":
        # direction 0: the kernel is centred (blur on both sides); angle fixed by the drawn value
        return A.MotionBlur(blur_limit=(p["length"], p["length"]), angle_range=(p["angle"], p["angle"]),
                            direction_range=(0.0, 0.0), allow_shifted=False, p=1.0)
    if kind == "defocus_blur":
        return A.Defocus(radius=(p["radius"], p["radius"]), alias_blur=(p["alias_blur"], p["alias_blur"]), p=1.0)
    if kind == "gaussian_noise":
        s = p["sigma"] / 255.0
        return A.GaussNoise(std_range=(s, s), per_channel=True, p=1.0)
    if kind == "low_light":
        g, k, s = 100.0 * p["gamma"], p["gain"], p["noise_sigma"] / 255.0
        return A.Compose([A.RandomGamma(gamma_limit=(g, g), p=1.0),
                          A.MultiplicativeNoise(multiplier=(k, k), per_channel=False, elementwise=False, p=1.0),
                          A.GaussNoise(std_range=(s, s), per_channel=True, p=1.0)], p=1.0)
    if kind == "fog":
        return A.RandomFog(fog_coef_range=(p["fog_coef"], p["fog_coef"]), alpha_coef=p["alpha_coef"], p=1.0)
    if kind == "rain":
        return A.RandomRain(slant_range=(p["slant"], p["slant"]), drop_length=p["drop_length"], drop_width=1,
                            blur_value=3, brightness_coefficient=p["brightness"], rain_type=p["rain_type"], p=1.0)
    if kind == "snow":
        return A.RandomSnow(snow_point_range=(p["snow_point"], p["snow_point"]), brightness_coeff=p["brightness"],
                            method="texture", p=1.0)
    if kind == "jpeg":
        return A.ImageCompression(compression_type="jpeg", quality_range=(p["quality"], p["quality"]), p=1.0)
    raise DataError(f"{kind!r} has no albumentations transform")  # h264 goes through ffmpeg


def make_corruption(kind: str, severity: int, seed: int = 0) -> Corruption:
    """The corruption of ``kind`` at ``severity`` (1..5): the table's fixed values plus the free
    ones (:data:`DRAWN`) drawn from ``seed`` (rounded to 0.1, so the record is what is applied).
    The drawn values depend on the seed and kind only, not on the severity: the five severities
    of one seed differ in strength alone (same blur direction, same rain slant)."""
    check_kind(kind)
    severity = check_severity(severity)
    rng = np.random.default_rng(np.random.SeedSequence([int(seed), KINDS.index(kind)]))
    params = dict(SEVERITIES[kind][severity - 1])
    for name, (low, high) in DRAWN.get(kind, {}).items():
        params[name] = round(float(rng.uniform(low, high)), 1)
    return Corruption(kind, severity, params, int(seed))


def corrupt_image(image: np.ndarray, kind: str, severity: int, seed: int = 0) -> tuple[np.ndarray, dict[str, Any]]:
    """One corrupted image and the record of what was applied (:meth:`Corruption.record`).
    ``h264`` encodes the image as a one-frame video."""
    c = make_corruption(kind, severity, seed)
    return c.apply(image), c.record()


def corrupt_sequence(frames: Sequence[np.ndarray], kind: str, severity: int,
                     seed: int = 0) -> tuple[list[np.ndarray], dict[str, Any]]:
    """Corrupt the frames of one sequence with ONE parameter set drawn from ``seed`` (consistent
    change over time). Returns the frames and the record of the parameters."""
    c = make_corruption(kind, severity, seed)
    return c.apply_frames(frames), c.record()


def _ffmpeg() -> str:
    import imageio_ffmpeg

    return imageio_ffmpeg.get_ffmpeg_exe()


def h264_roundtrip(frames: Sequence[np.ndarray], kbps: int, fps: int = FPS) -> list[np.ndarray]:
    """Encode RGB frames with libx264 at ``kbps`` kbit/s (one thread, so the bytes are
    reproducible; yuv420p, the usual camera stream) and decode them back.

    Frames must share one size; odd sizes are edge-padded to even (4:2:0 needs it) and cropped back.
    """
    if not frames:
        return []
    h, w = frames[0].shape[:2]
    if any(f.shape != frames[0].shape for f in frames):
        raise DataError("all frames of a sequence must have the same size for h264")
    ph, pw = h + h % 2, w + w % 2
    raw = b"".join(np.pad(f, ((0, ph - h), (0, pw - w), (0, 0)), mode="edge").tobytes() for f in frames)
    rate = f"{int(kbps)}k"
    encode = [_ffmpeg(), "-v", "error", "-f", "rawvideo", "-pix_fmt", "rgb24", "-s", f"{pw}x{ph}", "-r", str(fps),
              "-i", "-", "-c:v", "libx264", "-preset", "medium", "-threads", "1", "-b:v", rate, "-maxrate", rate,
              "-bufsize", f"{2 * int(kbps)}k", "-pix_fmt", "yuv420p", "-f", "h264", "-"]
    stream = _run_ffmpeg(encode, raw, "encode")
    decode = [_ffmpeg(), "-v", "error", "-threads", "1", "-f", "h264", "-i", "-", "-f", "rawvideo", "-pix_fmt", "rgb24", "-"]
    out = np.frombuffer(_run_ffmpeg(decode, stream, "decode"), np.uint8)
    if out.size != len(frames) * ph * pw * 3:
        raise DataError(f"ffmpeg gave back {out.size // (ph * pw * 3)} frames for {len(frames)}")
    return [np.ascontiguousarray(f[:h, :w]) for f in out.reshape(len(frames), ph, pw, 3)]


def _run_ffmpeg(cmd: list[str], data: bytes, what: str) -> bytes:
    done = subprocess.run(cmd, input=data, capture_output=True, check=False)
    if done.returncode != 0:
        raise DataError(f"ffmpeg could not {what} the h264 stream: {done.stderr.decode(errors='replace').strip()[-300:]}")
    return done.stdout
