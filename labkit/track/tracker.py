"""The tracking-by-detection loop: predict, (compensate), gate, associate, update, manage.

One call of :meth:`Tracker.step` per frame (SORT's loop, Bewley et al. 2016, with ByteTrack's
second pass, Zhang et al. 2022, "ByteTrack: Multi-Object Tracking by Associating Every Detection
Box", ECCV 2022):

1. predict every live track one frame ahead (:mod:`labkit.track.kalman`); with camera motion
   compensation, warp the predictions by the estimated frame-to-frame affine
   (:mod:`labkit.track.camera`);
2. split the detections by score: *high* (``>= high_score``), *low*
   (``[low_score, high_score)``), the rest is dropped;
3. first pass: the live tracks against the high detections, cost = blend of IoU distance, centre
   distance and appearance distance (optionally fused with the detection score, ``score_fusion``),
   gated (:mod:`labkit.track.gating`), solved by :func:`labkit.track.association.assign` with
   ``max_cost``; with ``confirmed_first`` the confirmed and lost tracks are matched before the
   tentative ones (DeepSORT's priority for established tracks; ByteTrack's separate matching of
   unconfirmed tracks), so a track born from a duplicate cannot take an established track's
   detection;
4. second pass (``low_score_pass``): the confirmed tracks still unmatched against the low
   detections, IoU distance only, ``low_score_max_cost``;
5. update the matched tracks (Kalman update, appearance gallery), age the unmatched ones, run the
   lifecycle (:mod:`labkit.track.lifecycle`), start a tentative track from every unmatched high
   detection scoring ``>= new_track_score``;
6. output the confirmed tracks matched in this frame (lost tracks coast silently); when a track is
   confirmed its tentative boxes can be output too (``output_tentative_history``).

Every decision is written to a per-frame log record (:attr:`FrameResult.log`), the evidence the
association log (``--log``, JSON Lines) and the ID-switch analysis rest on.

Determinism: the loop has no random choice; the same detections (and frames) give the same ids.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np

from labkit.data.annotations import Detections
from labkit.track.appearance import Gallery, HistogramEmbedder
from labkit.track.association import assign, blend, centre_distance, iou_distance
from labkit.track.camera import CameraMotion, warp_states
from labkit.track.config import TrackConfig, load_config
from labkit.track.gating import class_gate, iou_gate, mahalanobis_gate
from labkit.track.kalman import BoxKalman, measurement_to_xywh, xywh_to_measurement
from labkit.track.lifecycle import TrackState, after_match, after_miss

Embedder = Callable[[np.ndarray, np.ndarray], np.ndarray]
_TENTATIVE, _CONFIRMED, _DELETED = int(TrackState.TENTATIVE), int(TrackState.CONFIRMED), int(TrackState.DELETED)
#: ``FrameResult.tracks`` of a tracker that does not record (one shared empty snapshot).
_NO_SNAPSHOT = Detections.empty()


@dataclass
class FrameResult:
    """What one frame produced.

    ``output``: the boxes to write for this frame (:class:`Detections` with ``track_id``, scores
    and ``data["state"]``). ``backfill``: ``{frame: Detections}`` boxes of earlier frames of
    tracks confirmed now (``output_tentative_history``). ``tracks``: every live track after the
    frame (``track_id``, ``state``, predicted box, box, matched detection index or -1) as
    :class:`Detections` with ``data`` fields ``state``, ``detection``, ``predicted_xywh``.
    ``log``: the frame's association record (JSON-ready).
    """

    frame: int
    output: Detections
    backfill: dict[int, Detections]
    tracks: Detections
    log: dict[str, Any]


@dataclass
class _Tracks:
    """Live tracks as parallel arrays (one row per track)."""

    ids: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    state: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    hits: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    misses: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    class_id: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    mean: np.ndarray = field(default_factory=lambda: np.zeros((0, 8)))
    cov: np.ndarray = field(default_factory=lambda: np.zeros((0, 8, 8)))

    def keep(self, mask: np.ndarray) -> None:
        for name in ("ids", "state", "hits", "misses", "class_id", "mean", "cov"):
            setattr(self, name, getattr(self, name)[mask])

    def add(self, ids, class_id, mean, cov, state) -> None:
        n = len(ids)
        self.ids = np.concatenate([self.ids, ids])
        self.state = np.concatenate([self.state, np.full(n, state, dtype=np.int64)])
        self.hits = np.concatenate([self.hits, np.ones(n, dtype=np.int64)])
        self.misses = np.concatenate([self.misses, np.zeros(n, dtype=np.int64)])
        self.class_id = np.concatenate([self.class_id, class_id])
        self.mean = np.concatenate([self.mean, mean])
        self.cov = np.concatenate([self.cov, cov])


def concat_outputs(a: Detections, b: Detections) -> Detections:
    """Two output Detections (scores, track ids, ``state``) one after the other."""
    return Detections(np.concatenate([a.xywh, b.xywh]), np.concatenate([a.class_id, b.class_id]),
                      score=np.concatenate([a.score, b.score]), track_id=np.concatenate([a.track_id, b.track_id]),
                      data={"state": np.concatenate([a.data["state"], b.data["state"]])})


def _round(values: np.ndarray) -> list[float]:
    return [round(float(v), 4) for v in np.asarray(values).ravel()]


class Tracker:
    """Online multi-object tracker configured by :class:`~labkit.track.config.TrackConfig`.

    ``embedder``: appearance model for ``appearance != "none"`` (default: the histogram embedder
    for ``"histogram"``; ``"reid"`` needs one, see :func:`labkit.track.reid.load_reid`).
    Frames are only needed for camera motion compensation and appearance; without them the
    tracker runs motion-only (and says so in :attr:`motion_only`). ``record=False`` skips the
    association log and the per-track snapshot (:attr:`FrameResult.log` and ``tracks`` are then
    empty), for speed.
    """

    def __init__(self, config: TrackConfig | dict | str | None = None, *, embedder: Embedder | None = None,
                 record: bool = True) -> None:
        self.config = load_config(config)
        self.record = record
        c = self.config
        self.kalman = BoxKalman(c.process_noise_position, c.process_noise_velocity, c.measurement_noise)
        if embedder is None and c.appearance == "histogram":
            embedder = HistogramEmbedder()
        if embedder is None and c.appearance == "reid":
            from labkit.track.reid import load_reid

            embedder = load_reid(c.reid_weights)
        self.embedder = embedder if c.appearance != "none" else None
        self.camera = CameraMotion(c.camera_motion) if c.camera_motion != "none" else None
        self.gallery = Gallery(c.gallery, c.ema_momentum, c.gallery_size)
        self.tracks = _Tracks()
        self.next_id = 1
        self.frame = 0
        self.motion_only = True
        self._pending: dict[int, list[tuple[int, np.ndarray, float]]] = {}

    # ----------------------------------------------------------------- one frame
    def step(self, detections: Detections, image: np.ndarray | None = None, frame: int | None = None) -> FrameResult:
        """Track one frame. ``detections`` need scores in [0, 1] (``None`` counts as 1)."""
        c, t = self.config, self.tracks
        self.frame = self.frame + 1 if frame is None else int(frame)
        scores = np.ones(len(detections)) if detections.score is None else np.asarray(detections.score, dtype=np.float64)
        log: dict[str, Any] = {"frame": self.frame, "detections": len(detections), "tracks": []} if self.record else {}
        t.mean, t.cov = self.kalman.predict(t.mean, t.cov)
        if self.camera is not None and image is not None:
            affine = self.camera.estimate(image, detections.xywh)
            t.mean, t.cov = warp_states(t.mean, t.cov, affine)
            if self.record:
                log["camera_motion"] = {"affine": _round(affine), "status": self.camera.last_status}
        predicted = measurement_to_xywh(t.mean)
        embeddings = None
        if self.embedder is not None and image is not None and len(detections):
            embeddings = np.asarray(self.embedder(image, detections.xywh), dtype=np.float64)
            self.motion_only = False
        z = xywh_to_measurement(detections.xywh)
        a = self._associate(detections, scores, z, predicted, embeddings)
        match_det = a["match_det"]

        # update the matched tracks, age the others, run the lifecycle
        matched = match_det >= 0
        old_state = t.state.copy()
        if matched.any():
            m_idx = matched.nonzero()[0]
            t.mean[m_idx], t.cov[m_idx] = self.kalman.update(t.mean[m_idx], t.cov[m_idx], z[match_det[m_idx]])
            t.hits[m_idx] += 1
            t.misses[m_idx] = 0
            t.state[m_idx] = after_match(t.state[m_idx], t.hits[m_idx], c.min_hits)
            if embeddings is not None:
                for row in m_idx:
                    self.gallery.update(t.ids[row], embeddings[match_det[row]])
        if not matched.all():
            u_idx = (~matched).nonzero()[0]
            t.misses[u_idx] += 1
            t.state[u_idx] = after_miss(t.state[u_idx], t.misses[u_idx], c.max_misses)
        if self.record:
            log["tracks"] = [self._track_log(row, old_state[row], a, predicted) for row in range(len(t.ids))]

        # output, then drop the deleted tracks and start new ones
        out_rows = (matched & (t.state == _CONFIRMED)).nonzero()[0]
        boxes = self._output_boxes(detections, match_det)
        backfill = self._collect_history(matched, old_state, boxes, scores, match_det)
        output = Detections(boxes[out_rows], t.class_id[out_rows], score=scores[match_det[out_rows]],
                            track_id=t.ids[out_rows].copy(), data={"state": t.state[out_rows].copy()})
        alive = t.state != _DELETED
        if not alive.all():
            for tid in t.ids[~alive]:
                self.gallery.forget(tid)
                self._pending.pop(int(tid), None)
            t.keep(alive)
        used = np.zeros(len(detections), dtype=bool)
        used[match_det[matched]] = True
        high = a["high"]
        born = high[~used[high] & (scores[high] >= c.new_track_score)]
        self._start_tracks(born, detections, z, scores, embeddings)
        if len(born) and c.min_hits <= 1:  # born confirmed: output on the birth frame too
            output = concat_outputs(output, self._newborn_output(born, detections, scores))
        snapshot = _NO_SNAPSHOT
        if self.record:  # every live track after this frame (deleted ones dropped, newborn ones added)
            log["born"] = [{"track_id": int(tid), "detection": int(i)} for tid, i in zip(t.ids[len(t.ids) - len(born):], born)]
            log["unmatched_detections"] = [int(i) for i in (~used).nonzero()[0] if i not in set(born.tolist())]
            snapshot = Detections(measurement_to_xywh(t.mean), t.class_id.copy(), track_id=t.ids.copy(), data={
                "state": t.state.copy(), "detection": np.concatenate([match_det[alive], born]),
                "predicted_xywh": np.concatenate([predicted[alive], measurement_to_xywh(t.mean[len(t.ids) - len(born):])])})
        return FrameResult(self.frame, output, backfill, snapshot, log)

    def _associate(self, detections: Detections, scores: np.ndarray, z: np.ndarray, predicted: np.ndarray,
                   embeddings: np.ndarray | None) -> dict[str, Any]:
        """Gates, costs and the two assignment passes; ``match_det[row]`` = detection index or -1."""
        c, t = self.config, self.tracks
        high = (scores >= c.high_score).nonzero()[0]
        low = ((scores >= c.low_score) & (scores < c.high_score)).nonzero()[0] if c.low_score_pass else high[:0]
        cost_iou, iou = iou_distance(predicted, detections.xywh)
        allowed = iou_gate(iou, c.gate_min_iou)
        if c.gate_probability > 0:
            allowed &= mahalanobis_gate(self.kalman.squared_mahalanobis(t.mean, t.cov, z), c.gate_probability)
        if c.class_aware:
            allowed &= class_gate(t.class_id, detections.class_id)
        app = None if embeddings is None else self.gallery.distance(t.ids, embeddings)
        cost = self._cost(cost_iou, predicted, detections.xywh, app)
        if c.score_fusion and cost.size:  # ByteTrack's fuse_score: similarity (1 - cost) times the score
            cost = 1.0 - (1.0 - cost) * scores[None, :]
        match_det = np.full(len(t.ids), -1, dtype=np.int64)
        stage = [""] * len(t.ids)
        groups = [np.arange(len(t.ids))]
        tentative = t.state == _TENTATIVE
        if c.confirmed_first and tentative.any():  # confirmed and lost tracks first, tentative ones take the rest
            groups = [(~tentative).nonzero()[0], tentative.nonzero()[0]]
        free = high
        for rows in groups:
            if not len(rows) or not len(free):
                continue
            pairs = (rows[:, None], free[None, :])
            found = assign(cost[pairs], c.max_cost, allowed[pairs])
            match_det[rows[found.matches[:, 0]]] = free[found.matches[:, 1]]
            for row in rows[found.matches[:, 0]]:
                stage[row] = "high"
            free = free[found.unmatched_detections]
        if len(low):  # ByteTrack's second pass: unmatched confirmed tracks vs low-score detections, IoU only
            rows = ((match_det < 0) & (t.state == _CONFIRMED)).nonzero()[0]
            pairs = (rows[:, None], low[None, :])
            second = assign(cost_iou[pairs], c.low_score_max_cost, allowed[pairs])
            match_det[rows[second.matches[:, 0]]] = low[second.matches[:, 1]]
            for row in rows[second.matches[:, 0]]:
                stage[row] = "low"
        return {"match_det": match_det, "stage": stage, "high": high, "iou": iou, "cost": cost, "allowed": allowed,
                "appearance": app}

    def _newborn_output(self, born: np.ndarray, detections: Detections, scores: np.ndarray) -> Detections:
        t, n = self.tracks, len(born)
        boxes = detections.xywh[born] if self.config.output_box == "detection" else measurement_to_xywh(t.mean[-n:])
        return Detections(boxes, t.class_id[-n:], score=scores[born], track_id=t.ids[-n:].copy(),
                          data={"state": t.state[-n:].copy()})

    # ----------------------------------------------------------------- helpers
    def _cost(self, cost_iou: np.ndarray, predicted: np.ndarray, det_xywh: np.ndarray, app: np.ndarray | None) -> np.ndarray:
        """The blended cost matrix (parts with weight 0 are not computed)."""
        c = self.config
        if cost_iou.size == 0:
            return cost_iou
        if c.centre_weight == 0 and (app is None or c.appearance_weight == 0):
            return cost_iou
        parts = {"iou": (c.iou_weight, cost_iou)}
        if c.centre_weight > 0:
            parts["centre"] = (c.centre_weight, centre_distance(predicted, det_xywh))
        if app is not None:
            parts["appearance"] = (c.appearance_weight, app)
        return blend(parts)

    def _output_boxes(self, detections: Detections, match_det: np.ndarray) -> np.ndarray:
        boxes = measurement_to_xywh(self.tracks.mean)
        if self.config.output_box == "detection":
            rows = (match_det >= 0).nonzero()[0]
            boxes[rows] = detections.xywh[match_det[rows]]
        return boxes

    def _collect_history(self, matched, old_state, boxes, scores, match_det) -> dict[int, Detections]:
        """Keep tentative tracks' boxes; when a track is confirmed, hand them out as backfill."""
        t, out = self.tracks, {}
        for row in (matched & ((t.state == _TENTATIVE) | (old_state == _TENTATIVE))).nonzero()[0]:
            tid = int(t.ids[row])
            if t.state[row] == _TENTATIVE:
                self._pending.setdefault(tid, []).append((self.frame, boxes[row], scores[match_det[row]]))
            elif old_state[row] == _TENTATIVE and tid in self._pending:
                history = self._pending.pop(tid)
                if self.config.output_tentative_history:
                    for frame, box, score in history:
                        out.setdefault(frame, []).append((box, score, tid, t.class_id[row]))
        return {f: Detections(np.array([r[0] for r in rows]), np.array([r[3] for r in rows], dtype=np.int64),
                              score=np.array([r[1] for r in rows]), track_id=np.array([r[2] for r in rows], dtype=np.int64),
                              data={"state": np.full(len(rows), int(TrackState.TENTATIVE))})
                for f, rows in sorted(out.items())}

    def _start_tracks(self, born, detections, z, scores, embeddings) -> None:
        if len(born) == 0:
            return
        ids = np.arange(self.next_id, self.next_id + len(born), dtype=np.int64)
        self.next_id += len(born)
        mean, cov = self.kalman.initiate(z[born])
        state = _CONFIRMED if self.config.min_hits <= 1 else _TENTATIVE
        self.tracks.add(ids, detections.class_id[born], mean, cov, state)
        for tid, i in zip(ids, born):
            if state == _TENTATIVE:
                box = detections.xywh[i] if self.config.output_box == "detection" else measurement_to_xywh(z[i:i + 1])[0]
                self._pending[int(tid)] = [(self.frame, box, scores[i])]
            if embeddings is not None:
                self.gallery.update(tid, embeddings[i])

    def _track_log(self, row: int, old_state: int, a: dict[str, Any], predicted: np.ndarray) -> dict[str, Any]:
        """One track's line of the association log: its match (IoU, cost, appearance distance), the
        overlapping detections a gate removed (``gated_out``) or whose cost exceeded the pass's
        threshold (``over_threshold``), and the decision."""
        t, c = self.tracks, self.config
        det, stage, iou, app = int(a["match_det"][row]), a["stage"][row], a["iou"], a["appearance"]
        cost = a["cost"] if stage != "low" else 1.0 - iou  # the second pass uses the IoU distance only
        overlapping = (iou[row] > 0).nonzero()[0] if iou.size else np.zeros(0, int)
        allowed = a["allowed"][row]
        entry: dict[str, Any] = {
            "track_id": int(t.ids[row]), "state_before": TrackState(old_state).label,
            "state_after": TrackState(t.state[row]).label, "predicted_xywh": _round(predicted[row]),
            "detection": det if det >= 0 else None, "stage": stage or None,
            "gated_out": [int(j) for j in overlapping if not allowed[j]],
            "over_threshold": [int(j) for j in overlapping if allowed[j] and j != det and a["cost"][row, j] > c.max_cost],
        }
        if det >= 0:
            entry.update(iou=round(float(iou[row, det]), 4), cost=round(float(cost[row, det]), 4),
                         appearance_distance=None if app is None else round(float(app[row, det]), 4))
        if t.state[row] == _DELETED:
            entry["decision"] = "deleted"
        elif det < 0:
            entry["decision"] = "missed"
        elif old_state == TrackState.LOST:
            entry["decision"] = "reactivated"
        elif old_state == _TENTATIVE and t.state[row] == _CONFIRMED:
            entry["decision"] = "confirmed"
        else:
            entry["decision"] = "matched"
        return entry
