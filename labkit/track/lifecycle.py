"""The life of a track: tentative -> confirmed -> lost -> deleted, with re-activation.

State machine (vectorised over tracks; ``hits`` counts matched frames, ``misses`` consecutive
unmatched frames, both *after* the current frame is counted)::

    matched:   TENTATIVE -> CONFIRMED   when hits >= min_hits   (else stays TENTATIVE)
               CONFIRMED -> CONFIRMED
               LOST      -> CONFIRMED   (re-activation: the same id continues)
    unmatched: TENTATIVE -> DELETED     (one miss ends a track that was never confirmed)
               CONFIRMED -> LOST        (or DELETED when misses > max_misses, i.e. max_misses = 0)
               LOST      -> LOST        while misses <= max_misses, then DELETED

So with ``min_hits = N`` a track is confirmed on its N-th consecutive matched frame, and a
confirmed track survives ``max_misses = T`` unmatched frames as LOST (it may still be
re-activated on the next frame) and is deleted on miss T + 1. This is SORT's ``min_hits`` /
``max_age`` (Bewley et al. 2016) and DeepSORT's tentative/confirmed/deleted states (Wojke et al.
2017), with ByteTrack's separate *lost* state (Zhang et al. 2022).
"""

from __future__ import annotations

from enum import IntEnum

import numpy as np


class TrackState(IntEnum):
    """Lifecycle state of a track (also the ``state`` column of logs and videos)."""

    TENTATIVE = 0
    CONFIRMED = 1
    LOST = 2
    DELETED = 3

    @property
    def label(self) -> str:
        return self.name.lower()


def after_match(state: np.ndarray, hits: np.ndarray, min_hits: int) -> np.ndarray:
    """New states of matched tracks, given their hit counts including this frame."""
    confirm = (np.asarray(state) != _TENTATIVE) | (np.asarray(hits) >= min_hits)
    return np.where(confirm, _CONFIRMED, _TENTATIVE).astype(np.int64)


def after_miss(state: np.ndarray, misses: np.ndarray, max_misses: int) -> np.ndarray:
    """New states of unmatched tracks, given their consecutive misses including this frame."""
    dead = (np.asarray(state) == _TENTATIVE) | (np.asarray(misses) > max_misses)
    return np.where(dead, _DELETED, _LOST).astype(np.int64)


_TENTATIVE, _CONFIRMED, _LOST, _DELETED = (int(s) for s in TrackState)
