"""Helpers that the model-registry branch (``wt-registry``) moves: the one place to import them.

Frame sources move from ``labkit.detect.sources`` to ``labkit.data.sources`` and the split
loader from ``labkit.detect.data`` to ``labkit.models.dataset``. Once that branch is merged the
fallback below is dead and goes (keep only the first import block).
"""

try:
    from labkit.data.sources import VIDEO_SUFFIXES, iter_frames
    from labkit.models.dataset import load_split
except ImportError:  # before the registry merge
    from labkit.detect.data import load_split
    from labkit.detect.sources import VIDEO_SUFFIXES, iter_frames

__all__ = ["VIDEO_SUFFIXES", "iter_frames", "load_split"]
