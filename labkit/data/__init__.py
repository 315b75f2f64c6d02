"""Data: the canonical annotation model, readers/writers, validation, splits and the
embedded dataset. Import the pieces from their modules, e.g.
``from labkit.data.annotations import Detections``."""
