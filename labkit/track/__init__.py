"""Multi-object tracking by detection: every part visible, swappable and measured (Chapter 4).

The loop (:class:`~labkit.track.tracker.Tracker`, one ``step`` per frame): predict every track
with a Kalman filter -> (optionally) warp the predictions by the camera motion -> gate the
track-detection pairs -> build a cost matrix and solve the assignment (high-score detections
first, then ByteTrack's second pass with the low-score ones) -> update, age and manage the
tracks -> output the confirmed ones, and log every decision.

Map of the package (one concern per module):

============================  ======================================================================
module                        what it holds
============================  ======================================================================
:mod:`~.config`               :class:`TrackConfig`: every knob; ``configs/track_default.yaml`` = its
                              defaults, presets ``track_sort / track_bytetrack / track_deepsort.yaml``
:mod:`~.kalman`               :class:`BoxKalman`: constant-velocity filter on ``[cx, cy, a, h, v...]``,
                              vectorised over tracks; box <-> measurement conversions
:mod:`~.camera`               :class:`CameraMotion` (ORB + RANSAC or ECC affine), :func:`warp_states`
:mod:`~.gating`               Mahalanobis chi-square gate, IoU gate, class gate (boolean masks)
:mod:`~.association`          cost matrices (IoU, centre, appearance distance, blend) and
                              :func:`assign` (``linear_sum_assignment`` + acceptance threshold)
:mod:`~.lifecycle`            :class:`TrackState` and the tentative/confirmed/lost/deleted rules
:mod:`~.appearance`           crops, :class:`HistogramEmbedder`, per-track :class:`Gallery` (EMA/last-k)
:mod:`~.reid`                 the course ReID network (registry ``track-reid``, :mod:`labkit.models`):
                              :func:`build_reid`, :func:`load_reid`, rank-1 / mAP retrieval scores
:mod:`~.tracker`              :class:`Tracker` and :class:`FrameResult` (output, backfill, states, log)
:mod:`~.run`                  :func:`track_frames` over a sequence -> :class:`TrackRun`; :func:`write_log`
:mod:`~.sequence`             MOTChallenge sequence folders and strict reading of det/gt files;
                              :func:`sequence_from_video` turns a video file into one
:mod:`~.sources`              detections: public ``det.txt``, simulated from gt (presets), a course
                              detector or OpenCV's HOG over the frames (cached); :func:`normalise_scores`
:mod:`~.render`               review videos (MP4 / H.264): states, trails, predictions, ID switches, gt
:mod:`~.analysis`             ID switches by cause and occlusion level; detector-threshold trade-off
:mod:`~.cli`                  ``labkit track run`` and ``labkit track render``
============================  ======================================================================

Typical use::

    from labkit.track import Tracker, track_frames, open_sequence, public_detections, normalise_scores
    seq = open_sequence("data/MOT17-02")
    dets, report = normalise_scores(public_detections(seq.det_file, seq.length))
    run = track_frames(dets, seq.length, "configs/track_default.yaml", read_frame=seq.read_frame)
    run.tracks  # {frame: Detections with track_id}; run.log: the association log; run.stats

Everything uses the canonical :class:`labkit.data.annotations.Detections` (``track_id`` holds the
identities); scoring stays with :mod:`labkit.metrics.tracking` (TrackEval) and
:mod:`labkit.metrics.id_events`.
"""

from labkit.track.appearance import Gallery, HistogramEmbedder
from labkit.track.association import assign, blend, centre_distance, cosine_distance, iou_distance
from labkit.track.config import TrackConfig, load_config
from labkit.track.gating import chi2_threshold, iou_gate, mahalanobis_gate
from labkit.track.kalman import BoxKalman
from labkit.track.lifecycle import TrackState
from labkit.track.run import TrackRun, track_frames, write_log
from labkit.track.sequence import Sequence, open_sequence, read_sequence_file, sequence_from_video
from labkit.track.sources import normalise_scores, public_detections, simulated_detections
from labkit.track.tracker import FrameResult, Tracker

__all__ = [
    "BoxKalman", "FrameResult", "Gallery", "HistogramEmbedder", "Sequence", "TrackConfig", "TrackRun", "TrackState",
    "Tracker", "assign", "blend", "centre_distance", "chi2_threshold", "cosine_distance", "iou_distance", "iou_gate",
    "load_config", "mahalanobis_gate", "normalise_scores", "open_sequence", "public_detections", "read_sequence_file",
    "sequence_from_video", "simulated_detections", "track_frames", "write_log",
]
