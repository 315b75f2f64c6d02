"""The tracker config: every knob of :class:`labkit.track.tracker.Tracker` in one flat YAML file.

``configs/track_default.yaml`` holds exactly the defaults of :class:`TrackConfig` (a test checks
it), and is the one config every lesson uses unless it says otherwise. The presets
``configs/track_sort.yaml``, ``track_bytetrack.yaml`` and ``track_deepsort.yaml`` set the knobs
that make the tracker behave like SORT (Bewley et al. 2016), ByteTrack (Zhang et al. 2022) and
DeepSORT (Wojke et al. 2017). Read them with :meth:`TrackConfig.load` (the strict reader of
:mod:`labkit.configfile`: an unknown key or a bad value is an error naming the file).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, Mapping

from labkit.configfile import YamlConfig
from labkit.errors import DataError

CAMERA_MOTION = ("none", "orb", "ecc")
APPEARANCE = ("none", "histogram", "reid")
GALLERY = ("ema", "last_k")
OUTPUT_BOX = ("detection", "filtered")


def _in_range(name: str, value: Any, low: float, high: float) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not low <= float(value) <= high:
        raise DataError(f"'{name}' must be a number in [{low}, {high}], got {value!r}")


def _choice(name: str, value: Any, choices: tuple[str, ...]) -> None:
    if value not in choices:
        raise DataError(f"'{name}' must be one of {list(choices)}, got {value!r}")


def _integer(name: str, value: Any, low: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        raise DataError(f"'{name}' must be an integer >= {low}, got {value!r}")


def _flag(name: str, value: Any) -> None:
    if not isinstance(value, bool):
        raise DataError(f"'{name}' must be true or false, got {value!r}")


@dataclass(frozen=True)
class TrackConfig(YamlConfig):
    """Every knob of the tracker (defaults = ``configs/track_default.yaml``).

    Motion (:mod:`labkit.track.kalman`; noise standard deviations are fractions of the box height):
        process_noise_position, process_noise_velocity: process noise of position / velocity.
        measurement_noise: noise of a measured box.
        camera_motion: ``"none"``, ``"orb"`` (ORB features + RANSAC affine) or ``"ecc"``
            (OpenCV's ECC image alignment); needs frames, see :mod:`labkit.track.camera`.

    Detections (scores after normalisation, in [0, 1]):
        high_score: detections at or above it take part in the first association pass.
        low_score: detections in ``[low_score, high_score)`` take part in the second (ByteTrack)
            pass when ``low_score_pass``; lower ones are dropped.
        new_track_score: an unmatched detection at or above it starts a track.

    Gating (:mod:`labkit.track.gating`):
        gate_probability: Mahalanobis chi-square gate on the predicted box (4 degrees of freedom);
            0 switches it off, 0.95 keeps pairs inside the 95 % ellipsoid.
        gate_min_iou: pairs whose IoU is below it are gated out (0 = off).

    Association (:mod:`labkit.track.association`); cost = weighted mean of the parts:
        iou_weight, centre_weight, appearance_weight: weights of the IoU distance ``1 - IoU``, the
            normalised centre distance and the appearance cosine distance.
        max_cost: acceptance threshold of the first pass (a pair costing more stays unmatched).
        score_fusion: first-pass cost ``1 - (1 - cost) * score`` (ByteTrack's ``fuse_score``).
        confirmed_first: in the first pass, confirmed and lost tracks are matched before tentative ones.
        low_score_pass: run the second pass (unmatched tracked tracks vs low-score detections).
        low_score_max_cost: acceptance threshold of the second pass (IoU distance only).
        class_aware: only pairs of the same class may match.

    Appearance (:mod:`labkit.track.appearance`):
        appearance: ``"none"``, ``"histogram"`` (colour histogram) or ``"reid"`` (the course's
            embedding network; needs ``reid_weights``).
        reid_weights: path of the ReID weights (``""`` = none).
        gallery: ``"ema"`` (exponential moving average) or ``"last_k"`` (k most recent embeddings,
            the minimum distance counts).
        ema_momentum: weight of the old gallery embedding in the EMA.
        gallery_size: k of ``last_k``.

    Lifecycle (:mod:`labkit.track.lifecycle`):
        min_hits: a tentative track becomes confirmed on its ``min_hits``-th matched frame.
        max_misses: a confirmed track that misses a frame is lost; a lost track is deleted when it
            has missed more than ``max_misses`` consecutive frames.
        output_tentative_history: when a track is confirmed, also write its boxes of the frames it
            was tentative (an online tracker with a lag of ``min_hits - 1`` frames).
        output_box: ``"detection"`` writes the matched detection's box, ``"filtered"`` the
            Kalman-updated box.
    """

    KIND: ClassVar[str] = "tracker"

    process_noise_position: float = 0.05
    process_noise_velocity: float = 0.00625
    measurement_noise: float = 0.1
    camera_motion: str = "none"
    high_score: float = 0.2
    low_score: float = 0.05
    new_track_score: float = 0.3
    gate_probability: float = 0.0
    gate_min_iou: float = 0.0
    iou_weight: float = 1.0
    centre_weight: float = 0.0
    appearance_weight: float = 0.0
    max_cost: float = 0.8
    score_fusion: bool = False
    confirmed_first: bool = True
    low_score_pass: bool = True
    low_score_max_cost: float = 0.5
    class_aware: bool = False
    appearance: str = "none"
    reid_weights: str = ""
    gallery: str = "ema"
    ema_momentum: float = 0.9
    gallery_size: int = 10
    min_hits: int = 3
    max_misses: int = 30
    output_tentative_history: bool = True
    output_box: str = "filtered"

    def __post_init__(self) -> None:
        for name in ("process_noise_position", "process_noise_velocity", "measurement_noise"):
            _in_range(name, getattr(self, name), 1e-6, 10.0)
        for name in ("high_score", "low_score", "new_track_score", "gate_min_iou", "ema_momentum"):
            _in_range(name, getattr(self, name), 0.0, 1.0)
        _in_range("gate_probability", self.gate_probability, 0.0, 0.999999)
        for name in ("iou_weight", "centre_weight", "appearance_weight"):
            _in_range(name, getattr(self, name), 0.0, 100.0)
        if self.iou_weight + self.centre_weight + self.appearance_weight <= 0:
            raise DataError("at least one of iou_weight, centre_weight, appearance_weight must be > 0")
        _in_range("max_cost", self.max_cost, 0.0, 2.0)
        _in_range("low_score_max_cost", self.low_score_max_cost, 0.0, 1.0)
        if self.low_score > self.high_score:
            raise DataError(f"low_score {self.low_score} must not exceed high_score {self.high_score}")
        _choice("camera_motion", self.camera_motion, CAMERA_MOTION)
        _choice("appearance", self.appearance, APPEARANCE)
        _choice("gallery", self.gallery, GALLERY)
        _choice("output_box", self.output_box, OUTPUT_BOX)
        for name in ("low_score_pass", "class_aware", "output_tentative_history", "score_fusion", "confirmed_first"):
            _flag(name, getattr(self, name))
        _integer("min_hits", self.min_hits, 1)
        _integer("max_misses", self.max_misses, 0)
        _integer("gallery_size", self.gallery_size, 1)
        if not isinstance(self.reid_weights, str):
            raise DataError(f"'reid_weights' must be a path string, got {self.reid_weights!r}")
        if self.appearance_weight > 0 and self.appearance == "none":
            raise DataError("appearance_weight > 0 needs appearance: histogram or reid")
        if self.appearance == "reid" and not self.reid_weights:
            raise DataError("appearance: reid needs reid_weights (the path of the course ReID weights)")


def load_config(config: TrackConfig | Mapping[str, Any] | str | Path | None = None) -> TrackConfig:
    """A :class:`TrackConfig` from an object, a mapping, a YAML path, or ``None`` (the defaults,
    which are ``configs/track_default.yaml``)."""
    return TrackConfig() if config is None else TrackConfig.load(config)
