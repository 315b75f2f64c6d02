"""Use Ultralytics strictly offline.

Ultralytics probes the network on import (``is_online``), checks PyPI for updates, and may try
to download fonts, assets or the ``yolo26n.pt`` of its AMP self-check. labkit therefore

- imports it with ``YOLO_OFFLINE=1`` (no online probe, no update check),
- trains with ``plots=False`` and never with ``amp=True`` (see :func:`labkit.detect.config.amp_mode`),
- and, while training, serves matplotlib's bundled DejaVu Sans to ``check_font``: Ultralytics'
  dataset check calls it on every run and, lacking ``Arial.ttf``, sends a request to GitHub
  even when offline (:func:`local_fonts`).

Importing lazily keeps ``labkit``'s command line fast.
"""

from __future__ import annotations

import contextlib
import importlib
import logging
import os
import sys
from pathlib import Path
from types import ModuleType
from typing import Iterator

#: Ultralytics modules that imported ``check_font`` by name.
_FONT_USERS = ("ultralytics.utils.checks", "ultralytics.data.utils", "ultralytics.utils.plotting")


def ul(module: str = "ultralytics") -> ModuleType:
    """An Ultralytics (sub)module, e.g. ``ul("ultralytics.utils.nms")``, imported with ``YOLO_OFFLINE=1``."""
    os.environ.setdefault("YOLO_OFFLINE", "1")
    return importlib.import_module(module)


@contextlib.contextmanager
def local_fonts() -> Iterator[Path]:
    """Within the block, Ultralytics' ``check_font`` returns matplotlib's DejaVu Sans instead of
    looking for (and downloading) Arial; restored afterwards."""
    import matplotlib

    font = Path(matplotlib.get_data_path()) / "fonts" / "ttf" / "DejaVuSans.ttf"
    modules = [ul(name) for name in _FONT_USERS]
    saved = [(m, m.check_font) for m in modules]

    def check_font(name: str = "Arial.ttf") -> Path:
        return font

    for m in modules:
        m.check_font = check_font
    try:
        yield font
    finally:
        for m, original in saved:
            m.check_font = original


@contextlib.contextmanager
def logs_to_stderr(enabled: bool = True) -> Iterator[None]:
    """Within the block, Ultralytics' log (normally on stdout) and any stray ``print`` go to
    stderr, so that a command's ``--json`` output on stdout stays pure JSON."""
    if not enabled:
        yield
        return
    logger = logging.getLogger(ul("ultralytics.utils").LOGGING_NAME)
    moved = [(h, h.stream) for h in logger.handlers
             if isinstance(h, logging.StreamHandler) and h.stream in (sys.stdout, sys.__stdout__)]
    for h, _ in moved:
        h.setStream(sys.stderr)
    try:
        with contextlib.redirect_stdout(sys.stderr):
            yield
    finally:
        for h, stream in moved:
            h.setStream(stream)
