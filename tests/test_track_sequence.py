"""labkit.track.sequence: a MOTChallenge sequence folder (with or without seqinfo.ini), its frames,
the order/range checks of its detection files and a video written as a sequence. Expected values
are hand-worked from the tiny folders written here."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest

from labkit.data.mot import write_seqinfo
from labkit.errors import DataError
from labkit.track.sequence import check_row_order, open_sequence, read_sequence_file, sequence_from_video

cv2 = pytest.importorskip("cv2")


def _frames(folder: Path, n: int, *, w: int = 7, h: int = 5, suffix: str = ".png") -> list[Path]:
    """``n`` frames of w x h; frame i is BGR (i, 100, 200) everywhere (lossless png)."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i in range(1, n + 1):
        p = folder / f"{i:06d}{suffix}"
        image = np.zeros((h, w, 3), np.uint8)
        image[:] = (i, 100, 200)
        assert cv2.imwrite(str(p), image) or suffix.lower() not in (".png", ".jpg")
        paths.append(p)
    return paths


def test_seqinfo_gives_name_length_size_and_fps(tmp_path: Path):
    root = tmp_path / "folder"
    root.mkdir()
    write_seqinfo(root / "seqinfo.ini", name="TUD-X", length=71, fps=14, width=640, height=480)
    seq = open_sequence(root)
    assert (seq.name, seq.length, seq.width, seq.height, seq.fps) == ("TUD-X", 71, 640, 480, 14)
    assert seq.info_source == "seqinfo.ini"
    assert seq.root == root
    assert (seq.frames_dir, seq.det_file, seq.gt_file) == (None, None, None)
    assert seq.frame_paths() == []


def test_files_found_in_the_folder(tmp_path: Path):
    root = tmp_path / "s"
    write_seqinfo(root / "seqinfo.ini", name="s", length=2, fps=25, width=7, height=5)
    _frames(root / "img1", 2)
    (root / "det").mkdir()
    (root / "det" / "det.txt").write_text("")
    (root / "gt").mkdir()
    (root / "gt" / "gt.txt").write_text("")
    seq = open_sequence(root, require_frames=True)
    assert seq.frames_dir == root / "img1"
    assert seq.det_file == root / "det" / "det.txt"
    assert seq.gt_file == root / "gt" / "gt.txt"


def test_seqinfo_im_dir_names_the_frames_folder(tmp_path: Path):
    root = tmp_path / "s"
    write_seqinfo(root / "seqinfo.ini", name="s", length=1, fps=25, width=7, height=5, im_dir="frames")
    _frames(root / "frames", 1)
    _frames(root / "img1", 1)
    assert open_sequence(root).frames_dir == root / "frames"


def test_without_seqinfo_the_frames_give_length_and_size(tmp_path: Path):
    root = tmp_path / "TUD-Mirror"
    _frames(root / "img1", 3, w=7, h=5)
    (root / "img1" / "notes.txt").write_text("not a frame")
    seq = open_sequence(root)
    assert (seq.name, seq.length, seq.width, seq.height, seq.fps) == ("TUD-Mirror", 3, 7, 5, 25)
    assert seq.info_source == "img1 folder"
    assert seq.frames_dir == root / "img1"
    assert [p.name for p in seq.frame_paths()] == ["000001.png", "000002.png", "000003.png"]


def test_upper_case_suffixes_are_frames(tmp_path: Path):
    root = tmp_path / "s"
    folder = root / "img1"
    folder.mkdir(parents=True)
    image = np.zeros((4, 6, 3), np.uint8)
    ok, data = cv2.imencode(".png", image)
    assert ok
    (folder / "000001.PNG").write_bytes(data.tobytes())
    seq = open_sequence(root)
    assert (seq.length, seq.width, seq.height) == (1, 6, 4)
    assert [p.name for p in seq.frame_paths()] == ["000001.PNG"]


def test_missing_folder_and_no_length(tmp_path: Path):
    with pytest.raises(DataError, match=re.escape(f"{tmp_path / 'nope'}: sequence folder not found")):
        open_sequence(tmp_path / "nope")
    (tmp_path / "empty" / "img1").mkdir(parents=True)
    (tmp_path / "empty" / "img1" / "a.txt").write_text("x")
    with pytest.raises(DataError, match=re.escape(f"{tmp_path / 'empty'}: neither seqinfo.ini nor frames in img1/: "
                                                  "cannot tell the sequence length")):
        open_sequence(tmp_path / "empty")


def test_require_frames_names_the_frames_folder(tmp_path: Path):
    root = tmp_path / "s"
    write_seqinfo(root / "seqinfo.ini", name="s", length=2, fps=25, width=7, height=5)
    assert open_sequence(root).frames_dir is None  # motion-only is fine without require_frames
    with pytest.raises(DataError, match=re.escape(f"{root / 'img1'}: frames folder missing or empty "
                                                  "(needed for this command)")):
        open_sequence(root, require_frames=True)
    (root / "img1").mkdir()
    with pytest.raises(DataError, match="frames folder missing or empty"):
        open_sequence(root, require_frames=True)


def test_undecodable_first_frame_is_named(tmp_path: Path):
    root = tmp_path / "s"
    (root / "img1").mkdir(parents=True)
    (root / "img1" / "000001.jpg").write_bytes(b"not a jpeg")
    with pytest.raises(DataError, match=re.escape(f"{root / 'img1' / '000001.jpg'}: cannot decode image")):
        open_sequence(root)


def test_read_frame_is_rgb_and_one_based(tmp_path: Path):
    root = tmp_path / "s"
    _frames(root / "img1", 3)
    seq = open_sequence(root)
    first, last = seq.read_frame(1), seq.read_frame(3)
    assert first.shape == (5, 7, 3)
    np.testing.assert_array_equal(first[0, 0], [200, 100, 1])  # BGR (1, 100, 200) written -> RGB
    np.testing.assert_array_equal(last[0, 0], [200, 100, 3])
    for bad in (0, 4):
        with pytest.raises(DataError, match=re.escape(f"{root / 'img1'}: no frame {bad} (the folder has 3)")):
            seq.read_frame(bad)


def test_read_frame_undecodable_and_no_frames(tmp_path: Path):
    root = tmp_path / "s"
    _frames(root / "img1", 1)
    seq = open_sequence(root)
    (root / "img1" / "000002.jpg").write_bytes(b"junk")
    with pytest.raises(DataError, match=re.escape(f"{root / 'img1' / '000002.jpg'}: cannot decode image")):
        seq.read_frame(2)
    bare = tmp_path / "bare"
    write_seqinfo(bare / "seqinfo.ini", name="b", length=2, fps=25, width=7, height=5)
    with pytest.raises(DataError, match=re.escape("no frame 1 (the folder has 0)")):
        open_sequence(bare).read_frame(1)


ROW = "{f},-1,1,2,3,4,0.9,-1,-1,-1\n"


def test_row_order_accepts_sorted_equal_and_last_frames(tmp_path: Path):
    p = tmp_path / "det.txt"
    p.write_text(ROW.format(f=1) + "\n" + ROW.format(f=1) + ROW.format(f=3) + "   \n")
    check_row_order(p, 3)  # frame == length is inside
    check_row_order(p, None)
    frames = read_sequence_file(p, "pred", 3)
    assert sorted(frames) == [1, 3]
    assert len(frames[1]) == 2 and len(frames[3]) == 1


def test_row_order_errors_name_file_and_line(tmp_path: Path):
    p = tmp_path / "det.txt"
    p.write_text(ROW.format(f=2) + "\n" + ROW.format(f=1))  # line 2 is blank but counted
    with pytest.raises(DataError, match=re.escape(f"{p}: record line 3: frame 1 after frame 2: rows must be sorted "
                                                  "by frame")):
        check_row_order(p, None)
    with pytest.raises(DataError, match="rows must be sorted by frame"):
        read_sequence_file(p, "pred", None)
    q = tmp_path / "gt.txt"
    q.write_text(ROW.format(f=1) + ROW.format(f=4))
    with pytest.raises(DataError, match=re.escape(f"{q}: record line 2: frame 4 is beyond the sequence length 3 "
                                                  "(seqinfo.ini)")):
        check_row_order(q, 3)
    check_row_order(q, 4)
    check_row_order(q, None)


def test_float_frame_numbers_and_empty_file(tmp_path: Path):
    p = tmp_path / "det.txt"
    p.write_text("2.0,-1,1,2,3,4,0.9,-1,-1,-1\n1.0,-1,1,2,3,4,0.9,-1,-1,-1\n")
    with pytest.raises(DataError, match="frame 1 after frame 2"):
        check_row_order(p, None)
    empty = tmp_path / "empty.txt"
    empty.write_text("")
    assert read_sequence_file(empty, "pred", 5) == {}


def _video(path: Path, n: int, fps: float = 10.0) -> Path:
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), fps, (16, 8))
    if not writer.isOpened():
        pytest.skip("OpenCV cannot write MJPG avi here")
    for i in range(n):
        writer.write(np.full((8, 16, 3), 20 * i, np.uint8))
    writer.release()
    return path


def test_sequence_from_video(tmp_path: Path):
    video = _video(tmp_path / "clip.avi", 5, fps=10)
    out = sequence_from_video(video, tmp_path / "seq")
    assert out == tmp_path / "seq"
    seq = open_sequence(out)
    assert (seq.name, seq.length, seq.width, seq.height, seq.fps) == ("clip", 5, 16, 8, 10)
    assert [p.name for p in seq.frame_paths()] == [f"{i:06d}.jpg" for i in range(1, 6)]
    # a shorter re-run removes the stale frames
    sequence_from_video(video, out, max_frames=2)
    seq = open_sequence(out)
    assert seq.length == 2
    assert [p.name for p in seq.frame_paths()] == ["000001.jpg", "000002.jpg"]
    assert sequence_from_video(video, tmp_path / "all", max_frames=9) and open_sequence(tmp_path / "all").length == 5


def test_sequence_from_video_errors(tmp_path: Path):
    missing = tmp_path / "missing.avi"
    with pytest.raises(DataError, match=re.escape(f"{missing}: cannot open the video")):
        sequence_from_video(missing, tmp_path / "out")
    video = _video(tmp_path / "clip.avi", 2)
    with pytest.raises(DataError, match=re.escape(f"{video}: the video has no readable frame")):
        sequence_from_video(video, tmp_path / "out", max_frames=0)
