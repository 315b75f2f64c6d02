"""labkit: the helper library of the lab-first computer-vision course.

Modules are named after pipeline stages: :mod:`labkit.data` (annotation model, I/O,
validation, the embedded dataset), :mod:`labkit.metrics`, :mod:`labkit.viz`, and the
reproducibility helpers in :mod:`labkit.repro`.
"""

__version__ = "0.1.0"
