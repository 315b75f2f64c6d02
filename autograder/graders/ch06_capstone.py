"""Grading spec of the Chapter 6 graded capstone (``source/ch06_capstone``): the learner's spec, the
pipeline config through the one command on a hidden sequence, the record contract, reproducible
metrics, the report and the demo video.

The notebook writes ``capstone.yaml`` and, through its locked ``capstone_run`` (``labkit run
--config capstone.yaml --source SRC --out DIR``), the run folder ``capstone_run/`` on the visible
sequence, then ``REPORTED`` and ``capstone_report.md``. Checked here, in the grader's process:

* ``spec``: ``SPEC`` (the fields of the course's ``configs/capstone_spec.yaml``) has a scenario,
  known weaknesses, at least two success metrics (a ``metrics.json`` key, ``>=``/``<=``, a numeric
  target) and their protocol (splits, IoU thresholds, confidence policy, class-aware or agnostic);
* ``hidden_run``: ``capstone_run`` on a sequence rendered from a seed only this file holds (its
  ground truth never enters the sandbox) finishes within :data:`TIME_LIMIT_S` with exit code 0 and
  one record per frame;
* ``contract``: every record of that run validates against the frame-record schema
  (:func:`labkit.pipeline.records.validate_record`), sized like the frame, with track ids;
* ``metrics``: the visible run is re-run: its records must equal the submitted ``predictions.jsonl``
  (all but the frame paths), and ``REPORTED`` must equal the AP50, HOTA and IDF1 computed HERE from those
  predictions and the visible ground truth (within :data:`TOLERANCE`) -- typed numbers fail;
* ``report``: ``capstone_report.md`` carries the run's exact command, the sha256 of every
  checkpoint (a registry model's checked against the grader's own copy) and the reported numbers;
* ``video``: ``capstone_run/demo.mp4`` decodes to one frame per record, of the frame's size, and
  its overlays are those :func:`labkit.pipeline.render.draw_record` draws from the records
  (colours and labels follow the track ids): a video of other predictions or ids fails;
* ``q1``-``q5``: the quiz of Part D against ``keys/ch06_capstone.yaml``.
"""

from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path

import numpy as np

from labkit.configfile import configs_dir
from labkit.grading.labspec import Item, LabSpec, NoAnswer, quiz_items
from labkit.grading.probe import ProbeDataError, read_plain_file

_SEED = 66023
VISIBLE_SEED, FRAMES = 6060, 12  # the notebook's visible sequence (public)
TIME_LIMIT_S, TOLERANCE = 240.0, 0.005
METRICS = ("AP50", "HOTA", "IDF1")
PROTOCOL = ("splits", "iou_thresholds", "confidence_policy", "class_aware")  # configs/capstone_spec.yaml's fields
METRIC_GROUPS = ("box", "mask", "semantic", "tracking", "latency")
#: Mean colour distance (0-255, summed over channels / 3) allowed on overlay pixels: H.264 noise.
OVERLAY_TOLERANCE = 35.0


def _render(root: Path, seed: int, name: str) -> Path:
    from labkit.data.synth.sequences import SequenceTask, render_sequence

    render_sequence(SequenceTask(0, name, np.random.SeedSequence(seed), FRAMES, False, root))
    return root / "sequences" / name / "seq01"


@lru_cache(maxsize=1)
def visible_sequence() -> Path:
    """The visible sequence, rendered once per grading run in a folder of the grader's (removed at exit)."""
    import atexit
    import shutil
    import tempfile

    root = Path(tempfile.mkdtemp(prefix="ch06-visible-"))
    atexit.register(shutil.rmtree, root, ignore_errors=True)
    return _render(root, VISIBLE_SEED, "visible")


def _read(path: Path, limit: int = 50_000_000, name: str | None = None) -> bytes:
    """A file the student's process wrote (no link followed, size-capped); missing: the item fails."""
    try:
        return read_plain_file(path, limit)
    except FileNotFoundError:
        raise AssertionError(f"{name or path.name} was not written") from None
    except ProbeDataError as exc:
        raise AssertionError(f"{name or path.name} cannot be read: {exc}") from None


def _file(probe, rel: str, limit: int = 50_000_000) -> bytes:
    """A deliverable of the submission's lab folder (after the notebook ran)."""
    return _read(probe.workdir / rel, limit, rel)


def _records(data: bytes, where: str) -> list[dict]:
    from labkit.pipeline.records import validate_record

    lines = [line for line in data.decode("utf-8", errors="replace").splitlines() if line.strip()]
    out = []
    for k, line in enumerate(lines, start=1):
        try:
            out.append(validate_record(json.loads(line), source=where, line=k))
        except Exception as exc:
            raise AssertionError(f"{where} line {k} breaks the record contract: {str(exc)[:200]}") from None
    return out


def check_spec(probe) -> None:
    try:
        spec = probe.value("SPEC")
    except NoAnswer:
        raise AssertionError("SPEC is not set") from None
    assert isinstance(spec, dict), "SPEC is a dict"
    assert isinstance(spec.get("scenario"), str) and len(spec["scenario"].split()) >= 8, \
        "SPEC['scenario']: who uses the system, on what input, under which constraints (a sentence or more)"
    weak = spec.get("weaknesses")
    assert isinstance(weak, list) and weak and all(isinstance(w, str) and w.strip() for w in weak), \
        "SPEC['weaknesses']: a list of at least one known weakness"
    success = spec.get("success")
    assert isinstance(success, list) and len(success) >= 2, "SPEC['success']: at least two success metrics"
    for m in success:
        assert isinstance(m, dict) and isinstance(m.get("metric"), str), "each success metric names its metric"
        assert m["metric"].split(".")[0] in METRIC_GROUPS and "." in m["metric"], \
            f"success metric {m['metric']!r}: a metrics.json / latency.json key such as box.AP50 or tracking.HOTA"
        assert m.get("op") in (">=", "<="), f"{m['metric']}: op is '>=' or '<='"
        assert isinstance(m.get("target"), (int, float)) and not isinstance(m["target"], bool), f"{m['metric']}: a numeric target"
    protocol = spec.get("protocol")
    assert isinstance(protocol, dict), "SPEC['protocol']: how every metric is measured"
    missing = [k for k in PROTOCOL if k not in protocol]
    assert not missing, f"SPEC['protocol'] misses {missing} (the protocol is part of the metric)"
    assert all(isinstance(protocol[k], str) and len(protocol[k].split()) >= 3 for k in PROTOCOL[:3]), \
        "SPEC['protocol']: say which splits, which IoU thresholds and which confidence policy (a phrase each)"
    assert isinstance(protocol["class_aware"], bool), "SPEC['protocol']['class_aware'] is true or false"


def _run(probe, source: Path) -> Path:
    out = probe.scratch_dir() / "run"
    code = probe.call("capstone_run", str(source), str(out))
    assert code == 0, f"capstone_run exited with {code}"
    return out


_HIDDEN: dict[str, list[dict]] = {}


def _hidden(probe) -> list[dict]:
    """The records of the hidden run of this submission (run once, for the first item that asks)."""
    import shutil

    key = str(probe.workdir)
    if key not in _HIDDEN:
        source = _render(probe.scratch_dir(), _SEED, "hidden")
        shutil.rmtree(source / "gt")  # the ground truth stays with the grader
        out = _run(probe, source)
        _HIDDEN[key] = _records(_read(out / "predictions.jsonl"), "predictions.jsonl of the hidden run")
    return _HIDDEN[key]


def check_hidden_run(probe) -> None:
    records = _hidden(probe)
    assert [r["frame_id"] for r in records] == list(range(1, FRAMES + 1)), \
        f"the hidden run wrote {len(records)} records; the sequence has {FRAMES} frames (one record each, in order)"


def check_contract(probe) -> None:
    records = _hidden(probe)
    for r in records:
        assert (r["width"], r["height"]) == (320, 240), f"frame {r['frame_id']}: the record says {r['width']}x{r['height']}"
        for o in r["objects"]:
            x, y, w, h = o["box_xywh"]
            assert -1 <= x and -1 <= y and x + w <= 321 and y + h <= 241, f"frame {r['frame_id']}: a box outside the frame"
    objects = [o for r in records for o in r["objects"]]
    assert objects, "the hidden run found no object at all"
    assert any(o["track_id"] is not None for o in objects), "no record carries a track id: the config has no tracker"


def _scores(records: list[dict]) -> dict[str, float]:
    from labkit.pipeline import evaluate

    from labkit.data.synth.shapes import CATEGORIES

    seq = visible_sequence()
    names = {c["id"]: c["name"] for c in CATEGORIES}  # the dataset's classes, as the pipeline's detectors name them
    metrics = evaluate.evaluate_records(records, evaluate.truth_from_mot(seq / "gt" / "gt.txt", records, names), tracked=True)
    return {"AP50": metrics["box"]["AP50"], "HOTA": metrics["tracking"]["HOTA"], "IDF1": metrics["tracking"]["IDF1"]}


def check_metrics(probe) -> None:
    submitted = _file(probe, "capstone_run/predictions.jsonl")
    records = _records(submitted, "capstone_run/predictions.jsonl")
    again = _records(_read(_run(probe, visible_sequence_in(probe)) / "predictions.jsonl"), "the re-run's predictions")
    where = lambda rs: [{k: v for k, v in r.items() if k != "source"} for r in rs]  # noqa: E731 - paths differ
    assert where(again) == where(records), \
        "re-running capstone.yaml on the visible sequence gives other predictions than capstone_run/predictions.jsonl"
    try:
        reported = probe.value("REPORTED")
    except NoAnswer:
        raise AssertionError("REPORTED is not set") from None
    assert isinstance(reported, dict), "REPORTED is a dict of AP50, HOTA and IDF1"
    for name, value in _scores(records).items():
        given = reported.get(name)
        assert isinstance(given, (int, float)) and abs(float(given) - float(value or 0.0)) <= TOLERANCE, \
            f"REPORTED[{name!r}] is not what the predictions measure (recomputed by the grader)"


def visible_sequence_in(probe) -> Path:
    """A copy of the visible sequence's frames (no ground truth) in the sandbox's scratch."""
    import shutil

    dest = probe.scratch_dir() / "visible"
    shutil.copytree(visible_sequence(), dest, ignore=shutil.ignore_patterns("gt"))
    return dest


def check_report(probe) -> None:
    from labkit.pipeline.models import REGISTRY, resolve_checkpoint
    from labkit.repro import sha256_file

    text = _file(probe, "capstone_report.md", 2_000_000).decode("utf-8", errors="replace")
    manifest = json.loads(_file(probe, "capstone_run/manifest.json", 5_000_000))
    assert manifest["command"] in text, "the report does not carry the exact command of the run (manifest.json)"
    models = {k: v for k, v in manifest.get("models", {}).items() if isinstance(v, dict) and "sha256" in v}
    assert models, "the run's manifest lists no checkpoint"
    for role, model in models.items():
        assert model["sha256"] in text, f"the report does not carry the sha256 of the {role} checkpoint"
        config = manifest["config"][role]
        if model["name"] in REGISTRY and not config.get("weights"):
            own = sha256_file(resolve_checkpoint(model["name"], role))
            assert model["sha256"] == own, f"the {role} sha256 is not the registry checkpoint's"
    reported = probe.value("REPORTED")
    for name in METRICS:
        value = reported.get(name) if isinstance(reported, dict) else None
        assert isinstance(value, (int, float)) and f"{value:.3f}" in text, f"the report does not state {name} ({value!r}) to 3 decimals"


def check_video(probe) -> None:
    import tempfile

    import cv2

    from labkit.pipeline.render import draw_record

    records = _records(_file(probe, "capstone_run/predictions.jsonl"), "capstone_run/predictions.jsonl")
    video = _file(probe, "capstone_run/demo.mp4")
    with tempfile.NamedTemporaryFile(suffix=".mp4") as copy:
        copy.write(video)
        copy.flush()
        capture, frames = cv2.VideoCapture(copy.name), []
        while True:
            ok, image = capture.read()
            if not ok:
                break
            frames.append(image[:, :, ::-1])
        capture.release()
    assert len(frames) == len(records), f"demo.mp4 decodes to {len(frames)} frames; predictions.jsonl has {len(records)} records"
    seq, gaps = visible_sequence(), []
    for frame, record in zip(frames, records):
        raw = cv2.imread(str(seq / "img1" / f"{record['frame_id']:06d}.jpg"))[:, :, ::-1]
        assert frame.shape[:2] >= raw.shape[:2], f"demo.mp4 frames are {frame.shape[:2]}, the sequence's {raw.shape[:2]}"
        drawn = draw_record(raw, record).astype(int)
        overlay = np.abs(drawn - raw.astype(int)).sum(-1) > 30
        if overlay.any():
            gaps.append(np.abs(frame[:raw.shape[0], :raw.shape[1]].astype(int) - drawn).mean(-1)[overlay].mean())
    assert not gaps or float(np.mean(gaps)) <= OVERLAY_TOLERANCE, \
        f"demo.mp4's overlays are not those of predictions.jsonl (mean colour gap {np.mean(gaps):.0f} on overlay pixels): " \
        "boxes or track ids differ"


LAB = LabSpec(
    items=[Item("spec", 2, check_spec, timeout=20.0), Item("hidden_run", 2, check_hidden_run, timeout=TIME_LIMIT_S),
           Item("contract", 1, check_contract, timeout=TIME_LIMIT_S), Item("metrics", 2, check_metrics, timeout=TIME_LIMIT_S),
           Item("report", 2, check_report), Item("video", 1, check_video),
           *quiz_items(Path(__file__).resolve().parents[1] / "keys" / "ch06_capstone.yaml")],
    prepare=visible_sequence,
    # a config names course configs (track_default.yaml): in a checkout labkit/configs links to configs/
    readonly_paths=(configs_dir().resolve(),),
    skip_cells=("spec_visible", "report_visible", *(f"q{k}_check" for k in range(1, 6))),
)
