"""Optional real datasets for online learners: :func:`fetch` downloads (or finds) and verifies
them; see :mod:`labkit.datasets.catalog` for the list and :mod:`labkit.datasets.fetch` for the
download rules (sha256, cache, resume, ``LABKIT_DATA_MIRROR``)."""

from labkit.datasets.catalog import SOURCES, fetch
from labkit.datasets.convert import load_coco8, load_mot_sequence, load_pennfudan
from labkit.datasets.fetch import DownloadError, cache_dir, download

__all__ = ["SOURCES", "fetch", "DownloadError", "cache_dir", "download", "load_coco8", "load_mot_sequence",
           "load_pennfudan"]
