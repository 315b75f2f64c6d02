"""labkit.grading.probe, the wire between grader and kernel, in one process: every kind of value that
travels (and its type on arrival), what is refused and with which message, the nesting limit at its
exact edge, files that are not plain files, and answer_call's outcomes."""

from __future__ import annotations

import io
import json
import os

import numpy as np
import pytest
import torch

from labkit.data.annotations import ImageRecord
from labkit.grading import probe as wire
from labkit.grading.probe import ProbeDataError


def _archive(tree: str) -> bytes:
    """A probe archive written by hand: the JSON tree as bytes, no arrays."""
    buffer = io.BytesIO()
    np.savez(buffer, __json__=np.frombuffer(tree.encode("utf-8"), dtype=np.uint8))
    return buffer.getvalue()


def _trip(value, scratch=None):
    return wire.loads(wire.dumps(value, scratch), scratch)


def test_the_size_limit():
    assert wire.MAX_RESULT_BYTES == 64 * 1024 * 1024


@pytest.mark.parametrize("value, back, kind", [
    (None, None, type(None)), (True, True, bool), (np.bool_(False), False, bool), (7, 7, int), (np.int16(-3), -3, int),
    (np.uint64(2**63), 2**63, int), (2.5, 2.5, float), (np.float32(0.25), 0.25, float), ("é", "é", str),
    ((1, "a"), (1, "a"), tuple), ([1, [2.0]], [1, [2.0]], list), ({"k": (1,)}, {"k": (1,)}, dict),
    ({"$nd": 1, "x": [None]}, {"$nd": 1, "x": [None]}, dict), ({}, {}, dict), ([], [], list), ((), (), tuple),
])
def test_plain_values_travel_with_their_type(value, back, kind):
    got = _trip(value)
    assert got == back and type(got) is kind


def test_special_floats():
    got = _trip([float("nan"), float("inf"), -float("inf"), np.float64("nan")])
    assert np.isnan(got[0]) and got[1:3] == [float("inf"), -float("inf")] and np.isnan(got[3])


def test_arrays_and_tensors():
    a = np.arange(6, dtype=np.int16).reshape(2, 3)[:, ::2]  # not contiguous
    t = torch.tensor([[1.5, 2.0]], dtype=torch.float16)
    got = _trip({"a": a, "t": t, "b": np.array([True, False]), "e": np.zeros((0, 4), np.float32)})
    assert type(got["a"]) is np.ndarray and got["a"].dtype == np.int16 and got["a"].tolist() == [[0, 2], [3, 5]]
    assert isinstance(got["t"], torch.Tensor) and got["t"].dtype == torch.float16 and got["t"].tolist() == [[1.5, 2.0]]
    assert got["b"].dtype == bool and got["e"].shape == (0, 4) and got["e"].dtype == np.float32
    rebuilt = got["t"]
    rebuilt += 1  # the tensor owns its memory (a writable copy)
    assert rebuilt.tolist() == [[2.5, 3.0]]
    with pytest.raises(ProbeDataError, match="^arrays of Python objects cannot travel$"):
        wire.dumps(np.array([{"a": 1}], dtype=object))
    grad = torch.ones(2, requires_grad=True) * 2
    assert _trip(grad).tolist() == [2.0, 2.0]


def test_paths_travel_inside_the_scratch_folder_only(tmp_path):
    path = tmp_path / "d" / "f.txt"
    assert _trip([path], tmp_path) == [path]
    assert b"d/f.txt" in wire.dumps(path, tmp_path) and str(tmp_path).encode() not in wire.dumps(path, tmp_path)
    with pytest.raises(ProbeDataError, match="^a path can only travel inside the scratch folder$"):
        wire.dumps(path)
    with pytest.raises(ValueError):
        wire.dumps(tmp_path.parent / "x", tmp_path)
    for body in ("/etc/passwd", "../x", "a/../../x"):
        with pytest.raises(ProbeDataError, match="^a path outside the scratch folder$"):
            wire.loads(_archive(json.dumps({"$path": body})), tmp_path)
    with pytest.raises(ProbeDataError, match="^a path outside the scratch folder$"):
        wire.loads(wire.dumps(path, tmp_path))  # read without a scratch folder


def test_image_records_travel():
    rec = ImageRecord(4, "a.jpg", width=640, height=480, extra={"frame_index": 2, "sequence": "s1"})
    got = _trip({"r": rec})["r"]
    assert isinstance(got, ImageRecord)
    assert (got.id, got.file_name, got.width, got.height, got.extra) == (4, "a.jpg", 640, 480,
                                                                         {"frame_index": 2, "sequence": "s1"})


@pytest.mark.parametrize("value, message", [
    (object(), "a value of type object cannot travel"), ({1: "a"}, "only dicts with text keys can travel"),
    ({1, 2}, "a value of type set cannot travel"), (b"x", "a value of type bytes cannot travel"),
    ([1, {"k": print}], "a value of type builtin_function_or_method cannot travel"),
])
def test_what_cannot_travel(value, message):
    with pytest.raises(ProbeDataError) as exc:
        wire.dumps(value)
    assert str(exc.value) == message


def _nested(levels: int):
    value: list = []
    for _ in range(levels - 1):
        value = [value]
    return value


def test_the_nesting_limit_at_its_edge():
    assert _trip(_nested(65)) == _nested(65)  # the innermost list at depth 64
    with pytest.raises(ProbeDataError, match="^the value is nested too deeply$"):
        wire.dumps(_nested(66))


@pytest.mark.parametrize("data, kind", [(b"", "EOFError"), (b"not an npz", "ValueError")])
def test_bytes_that_are_not_a_probe_archive(data, kind):
    with pytest.raises(ProbeDataError) as exc:
        wire.loads(data)
    assert str(exc.value) == f"not a probe result ({kind})"


def test_an_archive_without_the_json_tree(tmp_path):
    np.savez(tmp_path / "a.npz", x=np.zeros(2))
    with pytest.raises(ProbeDataError, match=r"^not a probe result \(KeyError\)$"):
        wire.loads((tmp_path / "a.npz").read_bytes())


def test_read_plain_file(tmp_path):
    run = tmp_path / "lkg-run"
    (run / "scratch").mkdir(parents=True)
    good = run / "scratch" / "r.out.npz"
    good.write_bytes(b"12345")
    assert wire.read_plain_file(good) == b"12345" and wire.read_plain_file(good, limit=5) == b"12345"
    with pytest.raises(ProbeDataError, match="^not a plain file of a sensible size$"):
        wire.read_plain_file(good, limit=4)
    with pytest.raises(FileNotFoundError):
        wire.read_plain_file(run / "scratch" / "none")
    (run / "scratch" / "link").symlink_to(good)
    with pytest.raises(ProbeDataError, match="^not a plain file$"):
        wire.read_plain_file(run / "scratch" / "link")
    (run / "linked").symlink_to(run / "scratch")
    with pytest.raises(ProbeDataError, match="^a folder on the way is a link$"):
        wire.read_plain_file(run / "linked" / "r.out.npz")
    with pytest.raises(ProbeDataError, match="^not a plain file of a sensible size$"):
        wire.read_plain_file(run / "scratch")  # a folder (an IsADirectoryError before 2026-12-07)
    os.mkfifo(run / "scratch" / "fifo")
    with pytest.raises(ProbeDataError, match="^not a plain file of a sensible size$"):
        wire.read_plain_file(run / "scratch" / "fifo")  # does not block


def test_links_above_the_run_folder_are_the_graders_own(tmp_path):
    (tmp_path / "real" / "lkg-run").mkdir(parents=True)
    (tmp_path / "alias").symlink_to(tmp_path / "real")
    (tmp_path / "real" / "lkg-run" / "f").write_bytes(wire.dumps([1]))
    assert wire.read_result(tmp_path / "alias" / "lkg-run" / "f") == [1]


def test_write_call_replaces_a_planted_link(tmp_path):
    target = tmp_path / "grader_file"
    target.write_bytes(b"keep")
    (tmp_path / "call.npz").symlink_to(target)
    wire.write_call(tmp_path / "call.npz", b"data")
    assert target.read_bytes() == b"keep" and not (tmp_path / "call.npz").is_symlink()
    assert (tmp_path / "call.npz").read_bytes() == b"data"
    wire.write_call(tmp_path / "call.npz", b"new")  # a call file left over is replaced as well
    assert (tmp_path / "call.npz").read_bytes() == b"new"


def _answer(tmp_path, request, namespace):
    call = tmp_path / "call-1.npz"
    call.write_bytes(wire.dumps(request, tmp_path))
    wire.answer_call(str(call), namespace)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["call-1.npz", "call-1.out.npz"]
    return wire.read_result(tmp_path / "call-1.out.npz", tmp_path)


def test_answer_call(tmp_path):
    def f(x, scale=1):
        if x is None:
            raise KeyError("k" * 400)
        return x * scale

    ns = {"f": f, "v": (tmp_path / "out.txt", np.eye(2))}
    assert _answer(tmp_path, {"kind": "value", "name": "nope"}, ns) == {"missing": "nope"}
    got = _answer(tmp_path, {"kind": "value", "name": "v"}, ns)
    assert got["ok"][0] == tmp_path / "out.txt" and np.array_equal(got["ok"][1], np.eye(2))
    calls = [[[2], {}], [[3], {"scale": 2}], [[None], {}]]
    got = _answer(tmp_path, {"kind": "call", "name": "f", "calls": calls}, ns)
    assert got[:2] == [{"ok": 2}, {"ok": 6}]
    assert got[2] == {"raised": ["KeyError", ("'" + "k" * 400 + "'")[:300]]}
    assert _answer(tmp_path, {"kind": "call", "name": "f", "calls": []}, ns) == []
    ns["g"] = lambda: {1, 2}
    assert _answer(tmp_path, {"kind": "call", "name": "g", "calls": [[[], {}]]}, ns) == {
        "unsupported": "a value of type set cannot travel"}


class Tensor:
    """Not torch's: a class that only shares the name."""


def test_only_torch_tensors_travel_as_tensors():
    assert _trip(torch.Size([2, 3])) == (2, 3)  # a torch type that is a tuple, not a tensor
    with pytest.raises(ProbeDataError, match="^a value of type Tensor cannot travel$"):
        wire.dumps(Tensor())


def test_the_json_tree_of_plain_values_is_plain_json():
    """Dicts go as JSON objects; only tuples, arrays and dicts with a "$" key get a tag."""
    def tree(value):
        with np.load(io.BytesIO(wire.dumps(value)), allow_pickle=False) as archive:
            return json.loads(archive["__json__"].tobytes().decode("utf-8"))

    assert tree({"a": [1, (2,)], "b": {"c": None}}) == {"a": [1, {"$tuple": [2]}], "b": {"c": None}}
    assert tree({"$a": 1}) == {"$dict": {"$a": 1}} and tree(np.zeros(1)) == {"$nd": 0}


def _wrapped(value, levels: int):
    for _ in range(levels):
        value = [value]
    return value


def test_the_nesting_limit_counts_dicts_and_records_too(tmp_path):
    deep_dicts = 1
    for _ in range(64):
        deep_dicts = {"k": deep_dicts}  # the innermost value at depth 64
    assert _trip(deep_dicts) == deep_dicts
    with pytest.raises(ProbeDataError, match="^the value is nested too deeply$"):
        wire.dumps({"k": deep_dicts})
    # a record at depth 61: its fields at 62, "extra" at 63, extra's values at 64
    rec = ImageRecord(1, "a.jpg", width=2, height=3, extra={"file": tmp_path / "a.png"})
    back = _trip(_wrapped(rec, 61), tmp_path)
    for _ in range(61):
        back = back[0]
    assert back.extra == {"file": tmp_path / "a.png"}  # a path in a record travels too
    with pytest.raises(ProbeDataError, match="^the value is nested too deeply$"):
        wire.dumps(_wrapped(rec, 62), tmp_path)


def test_a_file_read_past_its_size_stops_at_the_limit():
    """/proc files say they are empty and then give more: a file that grew after its size was
    checked is read up to limit + 1 bytes, never further."""
    status = wire.Path(f"/proc/{os.getpid()}/status")
    if not status.is_file():
        pytest.skip("no /proc here")
    assert len(wire.read_plain_file(status, limit=10)) == 11
