"""Planning, running and assembling one generation.

:func:`plan` derives every random stream from the seed with ``numpy.random.SeedSequence``
spawning (one child per scene and per sequence), so the output does not depend on how many
worker processes render the tasks or in which order they finish. :func:`build` renders
into a folder, writes the COCO files, ``io_cases``, the card and ``manifest.json``.
"""

from __future__ import annotations

import multiprocessing as mp
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any, Iterable

import cv2
import numpy as np
from tqdm import tqdm

from labkit.data.card import render_card
from labkit.data.synth.config import GENERATOR_VERSION, HEIGHT, SIZES, SPLITS, WIDTH, SizeSpec
from labkit.data.synth.datacard import build_card
from labkit.data.synth.io_cases import write_io_cases
from labkit.data.synth.sequences import SequenceTask, render_sequence
from labkit.data.synth.shapes import CATEGORIES
from labkit.data.synth.stills import SceneTask, render_scene
from labkit.data.synth.writer import coco_file, folder_bytes, sha256_files, write_json

Task = SceneTask | SequenceTask
Items = list[tuple[dict, list[dict]]]
#: Files whose sha256 goes into the manifest.
ANNOTATION_GLOBS = ("annotations/*.json", "sequences/*/*/gt/gt.txt", "sequences/*/*/seqinfo.ini", "io_cases/annotations.json")
_NAMES = {c["id"]: c["name"] for c in CATEGORIES}


def plan(seed: int, spec: SizeSpec, out_dir: Path) -> tuple[list[SceneTask], list[SequenceTask], np.random.SeedSequence]:
    """Scene and sequence tasks (scenes assigned to splits at random), plus the seed of io_cases."""
    plan_ss, scene_ss, seq_ss, io_ss = np.random.SeedSequence(seed).spawn(4)
    order = np.random.default_rng(plan_ss).permutation(spec.scenes)
    split_of = {}
    for name, (start, n) in zip(SPLITS, _ranges(spec.scene_split)):
        split_of.update({int(i): name for i in order[start:start + n]})
    first = {name: min(i for i, s in split_of.items() if s == name) for name in SPLITS if name in split_of.values()}
    scenes = [SceneTask(i, split_of[i], ss, spec, out_dir, force_star=first[split_of[i]] == i)
              for i, ss in enumerate(scene_ss.spawn(spec.scenes))]
    seq_splits = [name for name, n in zip(SPLITS, spec.sequence_split) for _ in range(n)]
    sequences = [SequenceTask(i, split, ss, spec.frames, i in spec.pan_sequences, out_dir)
                 for i, (split, ss) in enumerate(zip(seq_splits, seq_ss.spawn(len(seq_splits))))]
    return scenes, sequences, io_ss


def _ranges(sizes: Iterable[int]) -> list[tuple[int, int]]:
    out, start = [], 0
    for n in sizes:
        out.append((start, n))
        start += n
    return out


def _run(task: Task) -> Items:
    return render_scene(task) if isinstance(task, SceneTask) else render_sequence(task)


def _init_worker() -> None:
    cv2.setNumThreads(1)  # one process per core; OpenCV's own threads would oversubscribe


def run_tasks(tasks: list[Task], workers: int) -> list[Items]:
    """Render every task (in ``workers`` processes when > 1); results in task order."""
    bar = {"total": len(tasks), "desc": "generating", "unit": "task", "disable": None}
    if workers <= 1:
        return [_run(t) for t in tqdm(tasks, **bar)]
    method = "forkserver" if "forkserver" in mp.get_all_start_methods() else "spawn"
    with ProcessPoolExecutor(workers, mp_context=mp.get_context(method), initializer=_init_worker) as pool:
        return list(tqdm(pool.map(_run, tasks), **bar))


def _class_counts(anns: Iterable[dict]) -> dict[str, int]:
    counts = dict.fromkeys(_NAMES.values(), 0)
    for a in anns:
        counts[_NAMES[a["category_id"]]] += 1
    return counts


def _size_buckets(anns: Iterable[dict]) -> dict[str, int]:
    """COCO area ranges (https://cocodataset.org/#detection-eval): small < 32^2 <= medium < 96^2 <= large."""
    out = {"small": 0, "medium": 0, "large": 0}
    for a in anns:
        out["small" if a["area"] < 32 ** 2 else "medium" if a["area"] < 96 ** 2 else "large"] += 1
    return out


def still_counts(items: Items) -> dict[str, Any]:
    """Counts of one still split: images, scenes, objects (non-crowd) per class and size, crowd regions."""
    anns = [a for _, aa in items for a in aa if not a["iscrowd"]]
    return {"images": len(items), "scenes": len({im["scene_id"] for im, _ in items}), "objects": len(anns),
            "crowd_regions": sum(a["iscrowd"] for _, aa in items for a in aa), "per_class": _class_counts(anns),
            "size_buckets": _size_buckets(anns), "with_artifacts": sum(bool(im["artifacts"]) for im, _ in items)}


def sequence_counts(items: Items) -> dict[str, Any]:
    """Counts of one video split: sequences, frames, COCO objects per class, tracks."""
    anns = [a for _, aa in items for a in aa]
    tracks = {(im["sequence"], a["track_id"]) for im, aa in items for a in aa}
    return {"sequences": len({im["sequence"] for im, _ in items}), "frames": len(items), "objects": len(anns),
            "tracks": len(tracks), "per_class": _class_counts(anns)}


def build(out_dir: Path, seed: int, size: str, workers: int) -> dict[str, Any]:
    """Generate everything into ``out_dir`` (an empty folder) and return the manifest."""
    start = time.perf_counter()
    spec = SIZES[size]
    scenes, sequences, io_ss = plan(seed, spec, out_dir)
    results = run_tasks([*sequences, *scenes], workers)  # long sequences first: better load balance
    seq_results, scene_results = results[:len(sequences)], results[len(sequences):]
    info = {"description": "labkit embedded dataset (procedurally generated)", "version": GENERATOR_VERSION,
            "seed": seed, "size": size}
    counts: dict[str, Any] = {"stills": {}, "sequences": {}}
    for split in SPLITS:
        stills = [item for task, items in zip(scenes, scene_results) if task.split == split for item in items]
        frames = [item for task, items in zip(sequences, seq_results) if task.split == split for item in items]
        write_json(out_dir / "annotations" / f"instances_{split}.json", coco_file(stills, {**info, "split": split}))
        write_json(out_dir / "annotations" / f"sequences_{split}.json", coco_file(frames, {**info, "split": split}))
        counts["stills"][split] = still_counts(stills)
        counts["sequences"][split] = sequence_counts(frames)
    counts["io_cases"] = write_io_cases(out_dir / "io_cases", np.random.default_rng(io_ss), info)
    manifest: dict[str, Any] = {
        "name": "labkit-synth", "generator": "labkit.data.synth", "generator_version": GENERATOR_VERSION,
        "seed": seed, "size": size, "image_size": [WIDTH, HEIGHT], "categories": CATEGORIES, "counts": counts,
        "workers": workers,
    }
    (out_dir / "dataset_card.md").write_text(render_card(build_card(manifest)), encoding="utf-8")
    n_files, n_bytes = folder_bytes(out_dir)
    manifest.update({"wall_seconds": round(time.perf_counter() - start, 2), "files": n_files + 1,
                     "bytes_on_disk": n_bytes, "sha256": sha256_files(out_dir, ANNOTATION_GLOBS)})
    write_json(out_dir / "manifest.json", manifest, indent=2)
    return manifest
