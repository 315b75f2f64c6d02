"""Downloading with integrity checks: sha256, cache, progress bar, atomic write, resume, mirrors.

A download goes to ``<dest>.part``; an interrupted download resumes from the bytes already there
(HTTP ``Range``); the file is renamed into place only once its sha256 matches. A truncated or
corrupted file is deleted and reported, never used.

``LABKIT_DATA_MIRROR`` redirects every download: a directory (files looked up by their archive
name, or an extracted copy under ``<mirror>/<dataset name>/``) or a base URL (``<mirror>/<archive
name>``). This is how the tests run the real code path offline.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import urllib.error
import urllib.request
from pathlib import Path

from tqdm.auto import tqdm

from labkit.errors import LabkitError
from labkit.repro import sha256_file

CHUNK = 1 << 16


class DownloadError(LabkitError):
    """A download failed, was truncated, or did not match its checksum."""


def cache_dir() -> Path:
    """``$LABKIT_CACHE`` if set, else ``~/.cache/labkit`` (created on demand)."""
    path = Path(os.environ.get("LABKIT_CACHE", Path.home() / ".cache" / "labkit"))
    path.mkdir(parents=True, exist_ok=True)
    return path


def mirror() -> str | None:
    """The ``LABKIT_DATA_MIRROR`` setting (a directory or a base URL), if any."""
    value = os.environ.get("LABKIT_DATA_MIRROR", "").strip()
    return value or None


def resolve_url(url: str) -> str:
    """Apply the mirror to a URL: ``<mirror>/<file name>`` (``file://`` for a local directory)."""
    base = mirror()
    if base is None:
        return url
    name = url.rstrip("/").rsplit("/", 1)[-1]
    if "://" in base:
        return base.rstrip("/") + "/" + name
    return Path(base, name).resolve().as_uri()


def _open(url: str, start: int, timeout: float):
    request = urllib.request.Request(url, headers={"User-Agent": "labkit"})
    if start and not url.startswith("file:"):
        request.add_header("Range", f"bytes={start}-")
    return urllib.request.urlopen(request, timeout=timeout)  # noqa: S310 - URLs come from the catalogue or the user's mirror


def download(url: str, dest: str | Path, sha256: str | None, *, timeout: float = 60.0, progress: bool = True) -> Path:
    """Download ``url`` to ``dest`` unless a verified copy is already there; return ``dest``.

    Resumes a previous ``.part`` file; verifies ``sha256`` (hex) when given; raises
    :class:`DownloadError` naming the URL for network errors, truncation (fewer bytes than the
    server announced) and checksum mismatches, deleting the bad file so a retry starts clean.
    """
    dest = Path(dest)
    if dest.exists() and (sha256 is None or sha256_file(dest) == sha256):
        return dest
    dest.parent.mkdir(parents=True, exist_ok=True)
    part = dest.with_name(dest.name + ".part")
    start = part.stat().st_size if part.exists() else 0
    try:
        response = _open(url, start, timeout)
    except (urllib.error.URLError, OSError) as exc:
        raise DownloadError(f"cannot download {url}: {getattr(exc, 'reason', exc)}") from exc
    with response:
        status = getattr(response, "status", None)
        if start and status != 206:  # the server ignored Range (or a file:// URL): start over
            start = 0
        length = response.headers.get("Content-Length")
        expected = start + int(length) if length is not None else None
        mode = "ab" if start else "wb"
        with open(part, mode) as out, tqdm(total=expected, initial=start, unit="B", unit_scale=True,
                                             desc=dest.name, disable=not progress) as bar:
            try:
                while block := response.read(CHUNK):
                    out.write(block)
                    bar.update(len(block))
            except (OSError, urllib.error.URLError) as exc:
                raise DownloadError(f"download of {url} interrupted after {out.tell()} bytes "
                                    f"(run again to resume): {exc}") from exc
    size = part.stat().st_size
    if expected is not None and size != expected:
        raise DownloadError(f"download of {url} is truncated: {size} of {expected} bytes (run again to resume)")
    if sha256 is not None:
        actual = sha256_file(part)
        if actual != sha256:
            part.unlink()
            raise DownloadError(f"checksum mismatch for {url}: expected sha256 {sha256}, got {actual}; "
                                "the file was deleted")
    part.replace(dest)
    return dest


def verify_tree(root: Path, sha256s: dict[str, str]) -> None:
    """Check that every listed file under ``root`` exists with its sha256 (paths relative, '/')."""
    for rel, digest in sha256s.items():
        path = root / rel
        if not path.is_file():
            raise DownloadError(f"{path}: missing file of the dataset")
        actual = sha256_file(path)
        if actual != digest:
            raise DownloadError(f"{path}: sha256 {actual} does not match the expected {digest}")


def copy_verified_tree(src: Path, dest: Path, sha256s: dict[str, str]) -> Path:
    """Copy the listed files from an extracted mirror copy, verifying each; atomic via a temp dir."""
    verify_tree(src, sha256s)
    tmp = dest.with_name(dest.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    for rel in sha256s:
        target = tmp / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(src / rel, target)
    shutil.rmtree(dest, ignore_errors=True)
    tmp.replace(dest)
    return dest


def sha256_bytes(data: bytes) -> str:
    """Hex sha256 of bytes in memory."""
    return hashlib.sha256(data).hexdigest()
