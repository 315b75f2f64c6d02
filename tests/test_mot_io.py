"""MOTChallenge txt and seqinfo.ini I/O: round trips, every bad-input case, real TUD files."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from labkit.data.annotations import Detections
from labkit.data.mot import read_mot, read_seqinfo, write_mot, write_seqinfo
from labkit.errors import DataError


def _gt_frames(seed: int = 0) -> dict[int, Detections]:
    rng = np.random.default_rng(seed)
    frames = {}
    for frame in (1, 2, 5):
        n = int(rng.integers(1, 5))
        xywh = np.column_stack([rng.uniform(-20, 300, n), rng.uniform(0, 200, n), rng.uniform(0, 80, n), rng.uniform(1, 80, n)])
        xywh[0] = np.round(xywh[0])  # integer-valued box written as ints
        frames[frame] = Detections(
            xywh, rng.integers(1, 6, n), track_id=rng.permutation(20)[:n] + 1,
            data={"consider": rng.integers(0, 2, n), "visibility": rng.uniform(0, 1, n)},
        )
    return frames


def _assert_same(a: dict[int, Detections], b: dict[int, Detections], fields: tuple[str, ...]) -> None:
    assert sorted(a) == sorted(b)
    for frame in a:
        order_a, order_b = np.argsort(a[frame].track_id), np.argsort(b[frame].track_id)
        np.testing.assert_allclose(a[frame].xywh[order_a], b[frame].xywh[order_b], rtol=0, atol=1e-9)
        np.testing.assert_array_equal(a[frame].class_id[order_a], b[frame].class_id[order_b])
        np.testing.assert_array_equal(a[frame].track_id[order_a], b[frame].track_id[order_b])
        for name in fields:
            got_a = a[frame].score if name == "score" else a[frame].data[name]
            got_b = b[frame].score if name == "score" else b[frame].data[name]
            np.testing.assert_allclose(got_a[order_a], got_b[order_b], rtol=0, atol=1e-9)


def test_gt_round_trip(tmp_path: Path) -> None:
    frames = _gt_frames()
    path = write_mot(frames, tmp_path / "gt" / "gt.txt", "gt")
    back = read_mot(path, "gt")
    _assert_same(frames, back, ("consider", "visibility"))
    assert back[1].score is None
    first = path.read_text().splitlines()[0].split(",")
    assert len(first) == 9 and first[0] == "1"
    assert write_mot(back, tmp_path / "again.txt", "gt").read_text() == path.read_text()


def test_pred_round_trip_keeps_raw_scores_and_det_ids(tmp_path: Path) -> None:
    tracks = Detections([[1.5, 2.25, 3, 4], [0, 0, 10, 10]], [1, 3], score=[51.818, -1.0], track_id=[7, 2])
    dets = Detections([[1.0 / 3, 2, 3, 4]], [2], score=[0.123456789012345])
    path = write_mot({3: tracks, 4: dets}, tmp_path / "res.txt", "pred")
    rows = path.read_text().splitlines()
    assert rows[0] == "3,2,0,0,10,10,-1,3,-1,-1"
    back = read_mot(path, "pred")
    _assert_same({3: tracks}, {3: back[3]}, ("score",))
    assert back[4].track_id.tolist() == [-1]
    assert back[4].xywh[0, 0] == 1.0 / 3 and back[4].score[0] == 0.123456789012345


def test_empty_file_is_empty_dict(tmp_path: Path) -> None:
    path = tmp_path / "empty.txt"
    path.write_text("")
    assert read_mot(path, "pred") == {}
    write_mot({}, path, "gt")
    assert path.read_text() == "" and read_mot(path, "gt") == {}


def test_short_layouts_and_minus_one_defaults(tmp_path: Path) -> None:
    path = tmp_path / "gt.txt"
    path.write_text("1,1,10,20,30,40\r\n2,1,11,20,30,40\r\n\r\n")
    gt = read_mot(path, "gt")
    assert gt[2].class_id.tolist() == [1] and gt[2].data["consider"].tolist() == [1]
    assert gt[2].data["visibility"].tolist() == [1.0]
    path.write_text("1,4,10,20,30,40,-1,-1,-1,-1\n")
    gt = read_mot(path, "gt")
    assert gt[1].class_id.tolist() == [1] and gt[1].data["consider"].tolist() == [1]


def test_mot15_layout_ignores_world_coordinates(tmp_path: Path) -> None:
    path = tmp_path / "gt.txt"
    path.write_text("1,1,88,99,61.08,218.56,1,4.4852,5.5016,0\n")
    with pytest.raises(DataError, match="class must be an integer"):
        read_mot(path, "gt")
    gt = read_mot(path, "gt", layout="mot15")
    assert gt[1].class_id.tolist() == [1] and gt[1].data["visibility"].tolist() == [1.0]


@pytest.mark.parametrize(
    ("kind", "text", "message"),
    [
        ("gt", "1,1,10,20,30\n", "5 columns"),
        ("pred", "1,1,10,20,30,40\n", "6 columns"),
        ("gt", "1,1,10,20,30,40,1,1,1,-1,-1\n", "11 columns"),
        ("gt", "1,1,10,20,30,40,1,1,1\n1,2,10,20,30,40,1\n", "rows before have 9"),
        ("gt", "1,1,10,abc,30,40,1,1,1\n", "column 4 is not a number"),
        ("gt", "1,1,10,20,nan,40,1,1,1\n", "not finite"),
        ("pred", "1,1,10,20,30,40,inf\n", "not finite"),
        ("gt", "1,1,10,20,-3,40,1,1,1\n", "negative box size"),
        ("gt", "1,1,10,20,-3,-4,1,1,1\n", r"negative box size w=-3(\.0)?, h=-4(\.0)?$"),
        ("gt", "1,1,10,20,30,40,1,1.5,1\n", "class must be an integer"),
        ("pred", "1,1,10,20,30,-0.5,0.9\n", "negative box size"),
        ("gt", "0,1,10,20,30,40,1,1,1\n", "frame 0 < 1"),
        ("gt", "1.5,1,10,20,30,40,1,1,1\n", "frame must be an integer"),
        ("gt", "1,2.5,10,20,30,40,1,1,1\n", "id must be an integer"),
        ("gt", "1,1,10,20,30,40,2,1,1\n", "consider flag"),
        ("gt", "1,1,10,20,30,40,0.5,1,1\n", r"consider flag must be an integer, got 0\.5"),
        ("gt", "1,1,10,20,30,40,1,1,1.5\n", "visibility"),
        ("gt", "1,1,10,20,30,40,1,1,1\n1,1,11,20,30,40,1,1,1\n", "id 1 appears twice in frame 1"),
    ],
)
def test_bad_input_names_file_and_line(tmp_path: Path, kind: str, text: str, message: str) -> None:
    path = tmp_path / "bad.txt"
    path.write_text(text)
    with pytest.raises(DataError, match=message) as info:
        read_mot(path, kind)
    assert str(path) in str(info.value) and "line" in str(info.value)


def test_an_unreadable_seqinfo_is_named_with_the_reason(tmp_path: Path) -> None:
    (tmp_path / "seqinfo.ini").mkdir()  # a folder where the file should be
    with pytest.raises(DataError, match=r"seqinfo\.ini: cannot read file \(Is a directory\)"):
        read_seqinfo(tmp_path / "seqinfo.ini")
    with pytest.raises(DataError, match=r"cannot read file \(No such file or directory\)"):
        read_seqinfo(tmp_path / "missing.ini")


def test_missing_file_and_bad_kind(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="cannot read"):
        read_mot(tmp_path / "nope.txt", "gt")
    with pytest.raises(DataError, match="kind"):
        read_mot(tmp_path / "nope.txt", "det")  # type: ignore[arg-type]


def test_write_rejects_missing_fields(tmp_path: Path) -> None:
    no_ids = Detections([[0, 0, 1, 1]], [1])
    with pytest.raises(DataError, match="track ids"):
        write_mot({1: no_ids}, tmp_path / "gt.txt", "gt")
    with pytest.raises(DataError, match="scores"):
        write_mot({1: no_ids}, tmp_path / "res.txt", "pred")
    with pytest.raises(DataError, match="frame 0"):
        write_mot({0: no_ids.with_fields(score=np.ones(1))}, tmp_path / "res.txt", "pred")
    assert not (tmp_path / "res.txt").exists() and not (tmp_path / "gt.txt").exists()


def test_seqinfo_round_trip_and_errors(tmp_path: Path) -> None:
    path = write_seqinfo(tmp_path / "seqinfo.ini", name="seq01", length=150, fps=25, width=320, height=240)
    assert path.read_text().splitlines()[:3] == ["[Sequence]", "name=seq01", "imDir=img1"]
    assert read_seqinfo(path) == {"name": "seq01", "im_dir": "img1", "fps": 25, "length": 150,
                                  "width": 320, "height": 240, "im_ext": ".jpg"}
    path.write_text("[Sequence]\nname=x\nimDir=img1\nframeRate=30\nseqLength=ten\nimWidth=1\nimHeight=1\nimExt=.jpg\n")
    with pytest.raises(DataError, match="seqLength"):
        read_seqinfo(path)
    path.write_text("[Sequence]\nname=x\n")
    with pytest.raises(DataError, match="missing key 'imDir'"):
        read_seqinfo(path)
    path.write_text("name=x\n")
    with pytest.raises(DataError, match="ini"):
        read_seqinfo(path)


@pytest.mark.shared
def test_real_tud_campus_files(shared_data: Path) -> None:
    root = shared_data / "motchallenge-tud-campus"
    gt = read_mot(root / "py-motmetrics/motmetrics/data/TUD-Campus/gt.txt", "gt")
    assert len(gt) == 71 and sum(len(d) for d in gt.values()) == 359
    assert len({int(t) for d in gt.values() for t in d.track_id}) == 8
    assert all((d.data["consider"] == 1).all() and (d.class_id == 1).all() for d in gt.values())
    np.testing.assert_array_equal(gt[1].xywh[0], [399, 182, 121, 229])
    early = read_mot(root / "dctracking/data/TUD-Campus/gt/gt.txt", "gt")  # 7-column MOT15 variant
    assert sum(len(d) for d in early.values()) == 359
    det = read_mot(root / "dctracking/data/TUD-Campus/det/det.txt", "pred")
    assert sum(len(d) for d in det.values()) == 344
    assert (np.concatenate([d.track_id for d in det.values()]) == -1).all()
    assert det[1].score[0] == pytest.approx(51.818)  # raw detector confidence, not clipped
    res = read_mot(root / "py-motmetrics/motmetrics/data/TUD-Campus/test.txt", "pred")
    assert sum(len(d) for d in res.values()) == 222 and len({int(t) for d in res.values() for t in d.track_id}) == 13
    stadt = read_mot(root / "py-motmetrics/motmetrics/data/TUD-Stadtmitte/gt.txt", "gt", layout="mot15")
    assert sum(len(d) for d in stadt.values()) == 1156 and len(stadt) == 179


def test_seqinfo_errors_name_file_and_section(tmp_path: Path) -> None:
    """Errors in seqinfo.ini carry the file as source and "[Sequence]" as the record."""
    path = tmp_path / "seqinfo.ini"
    for text in ("[Sequence]\nname=x\n",
                 "[Sequence]\nname=x\nimDir=img1\nframeRate=30\nseqLength=ten\nimWidth=1\nimHeight=1\nimExt=.jpg\n"):
        path.write_text(text)
        with pytest.raises(DataError) as info:
            read_seqinfo(path)
        assert (info.value.source, info.value.record) == (str(path), "[Sequence]")
