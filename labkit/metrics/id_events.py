"""Where identities break: the ID-switch and fragmentation events behind CLEAR's IDSW and Frag.

The events come from the same per-frame matching as TrackEval's ``CLEAR`` metric (and the
same preprocessing as :func:`labkit.metrics.tracking.evaluate_tracking`), so
``sum(e.switch) == IDSW`` and ``sum(e.fragmentation) == Frag`` of the report.

Matching rule (Bernardin & Stiefelhagen, CLEAR MOT, EURASIP JIVP 2008, Sec. 2.1.1, as coded in
TrackEval): in each frame, a gt object keeps the track it was matched to in the *previous frame*
if their IoU is still >= the threshold (those pairs get a bonus of 1000 in the cost matrix);
all other pairs with IoU >= threshold are then assigned by the Hungarian algorithm maximising
the summed IoU. An **ID switch** is a match whose track differs from the object's last matched
track (however long ago); a **fragmentation** is a match that resumes tracking after the object
was unmatched (or absent) in the previous frame, counted from the object's second tracked run on.
TrackEval quirk, kept for exact agreement: a frame with no gt boxes or no predictions leaves the
"previous frame" state untouched, so such frames neither break a run nor count as unmatched.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
from scipy.optimize import linear_sum_assignment

from labkit.metrics.tracking import EPS, Frames, Similarity, TrackingSequence, trackeval_data


@dataclass(frozen=True)
class IdEvent:
    """One identity event of one gt object.

    ``previous_track_id`` is the object's last matched track (for a fragmentation: the track
    before the interruption), ``new_track_id`` the track matched now, ``iou`` the overlap of the
    new match, ``gap`` the number of frames since the last match (1 = consecutive frames).
    Ids are the original gt / tracker ids.
    """

    frame: int
    gt_id: int
    previous_track_id: int
    new_track_id: int
    iou: float
    switch: bool
    fragmentation: bool
    gap: int

    @property
    def kind(self) -> str:
        """``"switch"``, ``"fragmentation"`` or ``"switch+fragmentation"``."""
        return "+".join(k for k, on in (("switch", self.switch), ("fragmentation", self.fragmentation)) if on)


def clear_matches(data: dict[str, Any], threshold: float = 0.5):
    """Yield ``(t, gt_labels, tracker_labels, ious)`` of CLEAR's matches in each frame ``t`` (0-based).

    ``data`` is TrackEval's per-sequence dict (:func:`labkit.metrics.tracking.trackeval_data`);
    labels are its contiguous ids. Frames skipped by TrackEval's quirk yield nothing.
    """
    prev_timestep = np.full(data["num_gt_ids"], -1)
    for t, (gt_t, trk_t) in enumerate(zip(data["gt_ids"], data["tracker_ids"])):
        if len(gt_t) == 0 or len(trk_t) == 0:
            continue
        sim = data["similarity_scores"][t]
        score = 1000.0 * (trk_t[None, :] == prev_timestep[gt_t][:, None]) + sim
        score[sim < threshold - EPS] = 0
        rows, cols = linear_sum_assignment(-score)
        ok = score[rows, cols] > 0 + EPS
        rows, cols = rows[ok], cols[ok]
        prev_timestep[:] = -1
        prev_timestep[gt_t[rows]] = trk_t[cols]
        yield t, gt_t[rows], trk_t[cols], sim[rows, cols]


def events_from_data(data: dict[str, Any], threshold: float = 0.5) -> list[IdEvent]:
    """ID-switch / fragmentation events of one TrackEval ``data`` dict, in frame order."""
    gt_values, trk_values = data["gt_id_values"], data["tracker_id_values"]
    last_track = np.full(data["num_gt_ids"], -1)
    last_frame = np.full(data["num_gt_ids"], -1)
    tracked_before = np.zeros(data["num_gt_ids"], dtype=bool)  # matched in the previous (non-skipped) frame
    events: list[IdEvent] = []
    for t, gt_ids, trk_ids, ious in clear_matches(data, threshold):
        for g, k, iou in zip(gt_ids, trk_ids, ious):
            switch = last_track[g] >= 0 and last_track[g] != k
            fragmentation = last_track[g] >= 0 and not tracked_before[g]
            if switch or fragmentation:
                events.append(IdEvent(
                    frame=t + 1, gt_id=int(gt_values[g]), previous_track_id=int(trk_values[last_track[g]]),
                    new_track_id=int(trk_values[k]), iou=float(iou), switch=bool(switch),
                    fragmentation=bool(fragmentation), gap=int(t - last_frame[g])))
            last_track[g], last_frame[g] = k, t
        tracked_before[:] = False
        tracked_before[gt_ids] = True
    return events


def id_events(gt: Frames, pred: Frames, *, num_frames: int | None = None, similarity: str | Similarity = "iou",
              preprocess: str = "mot17", threshold: float = 0.5) -> list[IdEvent]:
    """The ID-switch and fragmentation events of one sequence (same options as ``evaluate_tracking``)."""
    data = trackeval_data(TrackingSequence(gt, pred, num_frames), similarity=similarity, preprocess=preprocess)
    return events_from_data(data, threshold)


def events_to_records(events: list[IdEvent]) -> list[dict[str, Any]]:
    """Plain dicts (one per event, with its ``kind``), e.g. for ``pandas.DataFrame``."""
    return [{**asdict(e), "kind": e.kind} for e in events]
