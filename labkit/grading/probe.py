"""Calls across the process boundary between the grader and a student's kernel, as plain data.

The grader never runs its checks in the student's process. After the student's notebook has run
in its sandboxed kernel, the grader *probes* it: it writes a call (function name and arguments)
into the sandbox's scratch folder, asks the kernel to run :func:`answer_call` on it, and reads the
result back from a file. Both files hold plain data only -- one ``.npz`` archive with a JSON tree
(``__json__``) and the NumPy arrays it refers to -- and are read with ``allow_pickle=False``, so
nothing the student's process writes can execute code in the grader.

Values that travel: ``None``, ``bool``, ``int``, ``float`` (NaN and infinities too), ``str``,
lists, tuples, dicts with ``str`` keys, NumPy arrays and scalars, ``torch.Tensor`` (sent as an
array, rebuilt as a tensor of the same dtype), :class:`pathlib.Path` inside the scratch folder
(sent relative to it), and the course's :class:`labkit.data.annotations.ImageRecord`. Anything
else in a result is refused (the item fails with "returned an unsupported value").

The kernel side (:func:`answer_call`) runs *inside* the student's process, so a hostile submission
can replace it; that changes only the data the grader reads back, which the grader then checks
against references the student's process never saw.
"""

from __future__ import annotations

import io
import json
import os
import stat
from pathlib import Path
from typing import Any

import numpy as np

#: Largest result file the grader reads (bytes): an answer is arrays of a few MB at most.
MAX_RESULT_BYTES = 64 << 20
_JSON = "__json__"


class ProbeDataError(ValueError):
    """A value that cannot travel, or a result file that is not plain probe data."""


def _is_tensor(value: Any) -> bool:
    return type(value).__module__.startswith("torch") and type(value).__name__ == "Tensor"


def _encode(value: Any, arrays: list[np.ndarray], scratch: Path | None, depth: int = 0) -> Any:
    if depth > 64:
        raise ProbeDataError("the value is nested too deeply")
    if value is None or isinstance(value, (bool, str)):
        return value
    if isinstance(value, (int, np.integer)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        return float(value)
    if isinstance(value, np.bool_):
        return bool(value)
    if isinstance(value, np.ndarray) or _is_tensor(value):
        tensor = _is_tensor(value)
        array = value.detach().cpu().numpy() if tensor else value
        if array.dtype == object:
            raise ProbeDataError("arrays of Python objects cannot travel")
        arrays.append(np.ascontiguousarray(array))
        return {"$tensor" if tensor else "$nd": len(arrays) - 1}
    if isinstance(value, (list, tuple)):
        items = [_encode(v, arrays, scratch, depth + 1) for v in value]
        return {"$tuple": items} if isinstance(value, tuple) else items
    if isinstance(value, dict):
        if not all(isinstance(k, str) for k in value):
            raise ProbeDataError("only dicts with text keys can travel")
        encoded = {k: _encode(v, arrays, scratch, depth + 1) for k, v in value.items()}
        return {"$dict": encoded} if any(k.startswith("$") for k in value) else encoded
    if isinstance(value, Path):
        if scratch is None:
            raise ProbeDataError("a path can only travel inside the scratch folder")
        return {"$path": str(value.relative_to(scratch))}
    if type(value).__name__ == "ImageRecord" and type(value).__module__ == "labkit.data.annotations":
        return {"$record": _encode({"id": value.id, "file_name": value.file_name, "width": value.width,
                                    "height": value.height, "extra": dict(value.extra)}, arrays, scratch, depth + 1)}
    raise ProbeDataError(f"a value of type {type(value).__name__} cannot travel")


def _decode(tree: Any, arrays: dict[str, np.ndarray], scratch: Path | None) -> Any:
    if isinstance(tree, list):
        return [_decode(v, arrays, scratch) for v in tree]
    if not isinstance(tree, dict):
        return tree
    if len(tree) == 1:
        (tag, body), = tree.items()
        if tag in ("$nd", "$tensor"):
            array = arrays[f"a{int(body)}"]
            if tag == "$nd":
                return array
            import torch

            return torch.from_numpy(array.copy())
        if tag == "$tuple":
            return tuple(_decode(v, arrays, scratch) for v in body)
        if tag == "$dict":
            return {k: _decode(v, arrays, scratch) for k, v in body.items()}
        if tag == "$path":
            if scratch is None or Path(body).is_absolute() or ".." in Path(body).parts:
                raise ProbeDataError("a path outside the scratch folder")
            return scratch / body
        if tag == "$record":
            from labkit.data.annotations import ImageRecord

            fields = _decode(body, arrays, scratch)
            return ImageRecord(fields["id"], fields["file_name"], width=fields["width"], height=fields["height"],
                               extra=fields["extra"])
    return {k: _decode(v, arrays, scratch) for k, v in tree.items()}


def dumps(value: Any, scratch: Path | None = None) -> bytes:
    """``value`` as the bytes of a probe ``.npz`` archive."""
    arrays: list[np.ndarray] = []
    tree = json.dumps(_encode(value, arrays, scratch), allow_nan=True)
    buffer = io.BytesIO()
    np.savez(buffer, **{_JSON: np.frombuffer(tree.encode("utf-8"), dtype=np.uint8)},
             **{f"a{k}": a for k, a in enumerate(arrays)})
    return buffer.getvalue()


def loads(data: bytes, scratch: Path | None = None) -> Any:
    """The value in probe archive bytes; :class:`ProbeDataError` for anything that is not one."""
    try:
        with np.load(io.BytesIO(data), allow_pickle=False) as archive:
            arrays = {name: archive[name] for name in archive.files}
        tree = json.loads(arrays.pop(_JSON).tobytes().decode("utf-8"))
        return _decode(tree, arrays, scratch)
    except ProbeDataError:
        raise
    except (ValueError, KeyError, TypeError, OSError, RecursionError, UnicodeDecodeError, EOFError) as exc:
        raise ProbeDataError(f"not a probe result ({type(exc).__name__})") from None


def read_plain_file(path: Path, limit: int = MAX_RESULT_BYTES) -> bytes:
    """The bytes of a file the student's process wrote, without following a link it planted.

    ``FileNotFoundError`` when there is none; :class:`ProbeDataError` for a link (the file, or a
    folder between it and the sandbox's ``lkg-*`` run folder), a non-file or a file over ``limit`` bytes.
    """
    for folder in Path(path).parents:
        if folder.name.startswith("lkg-"):
            break
        if folder.is_symlink():
            raise ProbeDataError("a folder on the way is a link")
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except OSError as exc:
        if isinstance(exc, FileNotFoundError):
            raise
        raise ProbeDataError("not a plain file") from None
    try:  # checked before os.fdopen, which raises IsADirectoryError for a folder
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode) or info.st_size > limit:
            raise ProbeDataError("not a plain file of a sensible size")
    except BaseException:
        os.close(fd)
        raise
    with os.fdopen(fd, "rb") as handle:
        return handle.read(limit + 1)


def read_result(path: Path, scratch: Path | None = None) -> Any:
    """The value in a result file the student's process wrote (:func:`read_plain_file`, then :func:`loads`)."""
    return loads(read_plain_file(path), scratch)


def write_call(path: Path, data: bytes) -> None:
    """Grader side: create the call file afresh -- never through a link the student's process planted there."""
    path.unlink(missing_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o644)
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)


def answer_call(call_path: str, namespace: dict) -> None:
    """Kernel side: run the call in ``call_path`` on ``namespace`` and write ``<call>.out.npz``.

    The call is ``{"kind": "call", "name": ..., "calls": [[args, kwargs], ...]}`` (one function,
    several argument sets) or ``{"kind": "value", "name": ...}`` (a variable's value). Each call's
    outcome is ``{"ok": result}`` or ``{"raised": [exception type name, message]}``.
    """
    call_file = Path(call_path)
    scratch = call_file.parent
    spec = loads(call_file.read_bytes(), scratch)
    name = spec["name"]
    if name not in namespace:
        outcome: Any = {"missing": name}
    elif spec["kind"] == "value":
        outcome = {"ok": namespace[name]}
    else:
        outcome = []
        fn = namespace[name]
        for args, kwargs in spec["calls"]:
            try:
                outcome.append({"ok": fn(*args, **kwargs)})
            except Exception as exc:  # the student's function raised: that is an answer too
                outcome.append({"raised": [type(exc).__name__, str(exc)[:300]]})
    try:
        data = dumps(outcome, scratch)
    except ProbeDataError as exc:
        data = dumps({"unsupported": str(exc)})
    tmp = call_file.with_suffix(".tmp")
    tmp.write_bytes(data)
    tmp.rename(call_file.with_suffix(".out.npz"))
