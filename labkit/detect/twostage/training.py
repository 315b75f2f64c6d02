"""Training Faster R-CNN on the course data (:func:`train_frcnn`), resumable after any epoch.

SGD with momentum, linear warm-up, then a cosine decay over the planned steps
(``epochs x steps per epoch``); the budget is epochs, never minutes. Mixed precision (bf16) on a
CUDA GPU when ``amp``, float32 on CPU. Crowd regions are left out of the targets (torchvision has
no "ignore" boxes). A run folder holds::

    manifest.json          labkit.repro manifest: config, dataset fingerprint, device, sessions
    last.pt                after every epoch: weights, optimizer, RNG state, log (resumable)
    best.pt                the weights of the evaluated epoch with the best val COCO AP
    categories.json        dataset category of each network label
    learning_curves.csv    per epoch: losses, learning rate, minutes, val COCO AP (evaluated epochs)
    result.json            written when training finished
"""

from __future__ import annotations

import math
import time
from pathlib import Path
from typing import Any, Mapping

import numpy as np
import pandas as pd
import torch
from tqdm.auto import tqdm

from labkit.artifacts import artifacts_dir, write_json
from labkit.data.annotations import Dataset
from labkit.data.boxes import Letterbox, clip_xyxy
from labkit.data.images import load_image
from labkit.detect.evaluate import COCO_KEYS, coco_summary
from labkit.detect.predict import CATEGORY_FILE, PAD_VALUE
from labkit.detect.train import MANIFEST, RESULT, TrainResult, fresh_run_dir
from labkit.detect.twostage.config import FrcnnConfig
from labkit.detect.twostage.network import FrcnnDetector, _to_tensor, build_model, count_parameters, predict_frcnn
from labkit.device import amp_mode, resolve_device
from labkit.errors import DataError
from labkit.models.dataset import dataset_root, fingerprint, load_split
from labkit.models.registry import Trained
from labkit.repro import seed_everything, write_manifest

LAST, BEST, LOG = "last.pt", "best.pt", "learning_curves.csv"


def label_categories(dataset: Dataset) -> list[dict[str, Any]]:
    """The categories in network-label order (sorted by id: label 1 is the smallest id)."""
    ordered = sorted(dataset.categories, key=lambda c: int(c["id"]))
    return [{"id": int(c["id"]), "name": str(c["name"])} for c in ordered]


class FrcnnTrainSet(torch.utils.data.Dataset):
    """Training pairs ``(CHW float image in [0, 1], {"boxes": xyxy canvas pixels, "labels": 1..K})``.

    Each image is letterboxed to the ``imgsz`` canvas; crowd objects and boxes thinner than a
    canvas pixel are left out; a horizontal flip with probability ``hflip`` is drawn from a
    generator seeded by ``(seed, epoch, index)``, so an epoch is the same whether or not the run
    was resumed. Set :attr:`epoch` before each epoch.
    """

    def __init__(self, dataset: Dataset, imgsz: int, *, hflip: float = 0.0, seed: int = 0) -> None:
        self.dataset, self.imgsz, self.hflip, self.seed, self.epoch = dataset, imgsz, hflip, seed, 0
        self.label_of = {c["id"]: k for k, c in enumerate(label_categories(dataset), start=1)}

    def __len__(self) -> int:
        return len(self.dataset)

    def target(self, index: int) -> tuple[Letterbox, np.ndarray, np.ndarray]:
        """The letterbox, canvas boxes ``(N, 4)`` and labels ``(N,)`` of image ``index`` (before flipping)."""
        rec = self.dataset.images[index]
        lb = Letterbox.fit((rec.height, rec.width), self.imgsz)
        det = rec.detections
        crowd = det.get("iscrowd")
        keep = np.ones(len(det), bool) if crowd is None else np.array([not bool(c) for c in crowd], bool)
        boxes = clip_xyxy(lb.boxes(det.xyxy[keep]), self.imgsz, self.imgsz)
        labels = np.array([self.label_of[int(c)] for c in det.class_id[keep]], dtype=np.int64)
        real = (boxes[:, 2] - boxes[:, 0] >= 1) & (boxes[:, 3] - boxes[:, 1] >= 1)
        return lb, boxes[real], labels[real]

    def __getitem__(self, index: int) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        rec = self.dataset.images[index]
        image = load_image(self.dataset.image_path(rec))
        if image.shape[:2] != (rec.height, rec.width):
            raise DataError(f"image is {image.shape[:2]}, annotations say {(rec.height, rec.width)}",
                            source=self.dataset.source, record=rec.id)
        lb, boxes, labels = self.target(index)
        canvas = lb.image(image, pad_value=PAD_VALUE)
        if self.hflip and np.random.default_rng([self.seed, self.epoch, index]).random() < self.hflip:
            canvas = canvas[:, ::-1]
            boxes = np.stack([self.imgsz - boxes[:, 2], boxes[:, 1], self.imgsz - boxes[:, 0], boxes[:, 3]], axis=1)
        return _to_tensor(canvas), {"boxes": torch.as_tensor(boxes, dtype=torch.float32).reshape(-1, 4),
                                    "labels": torch.as_tensor(labels)}


def _collate(batch: list[Any]) -> tuple[tuple[Any, ...], ...]:
    return tuple(zip(*batch))


def learning_rate(config: FrcnnConfig, step: int, total_steps: int) -> float:
    """Linear warm-up over ``warmup_iters`` steps, then a cosine decay to 5% of ``lr`` at ``total_steps``."""
    warm = min(1.0, (step + 1) / config.warmup_iters) if config.warmup_iters else 1.0
    progress = step / max(1, total_steps)
    return config.lr * warm * (0.05 + 0.95 * 0.5 * (1.0 + math.cos(math.pi * min(progress, 1.0))))


def resumable_frcnn(run_dir: str | Path) -> bool:
    """Whether ``run_dir`` holds an unfinished Faster R-CNN run with a ``last.pt``."""
    return (Path(run_dir) / LAST).is_file() and not (Path(run_dir) / RESULT).is_file()


def _save(obj: Any, path: Path) -> None:
    tmp = path.with_name(path.name + ".tmp")
    torch.save(obj, tmp)
    tmp.replace(path)


def _resume_state(run: Path, cfg: FrcnnConfig, sha: dict[str, str]) -> dict[str, Any]:
    if not resumable_frcnn(run):
        raise DataError("nothing to resume: no unfinished run with a last.pt", source=str(run))
    state = torch.load(run / LAST, map_location="cpu", weights_only=False)
    if state["config"] != cfg.to_dict():
        raise DataError("the config differs from the one this run started with; resume with the same config",
                        source=str(run / LAST))
    if state["dataset_sha256"] != sha:
        raise DataError("the dataset differs from the one this run started on", source=str(run / LAST))
    return state


def train_frcnn(config: FrcnnConfig | Mapping[str, Any] | str | Path, *,
                data_root: str | Path | None = None, run_dir: str | Path | None = None, resume: bool = False,
                stop_after_epoch: int | None = None, progress: bool = True) -> TrainResult:
    """Train (or resume) Faster R-CNN; see the module docstring for the run folder.

    Args:
        config: a :class:`FrcnnConfig`, a mapping of its fields, or a YAML path.
        data_root: dataset folder (default: the embedded dataset the config names).
        run_dir: run folder (default ``<artifacts>/runs/detect/<name>``); a fresh run replaces an
            earlier labkit run there, any other non-empty folder is an error.
        resume: continue the interrupted run in ``run_dir`` from ``last.pt`` (same config and data).
        stop_after_epoch: interrupt after this epoch's checkpoint and log are written.
        progress: tqdm bars.

    Returns a :class:`labkit.detect.train.TrainResult` (``metrics`` holds ``result.json``).
    """
    cfg = FrcnnConfig.load(config)
    run = Path(run_dir) if run_dir is not None else artifacts_dir() / "runs" / "detect" / cfg.name
    root = dataset_root(cfg.dataset_size, cfg.dataset_seed, data_root)
    sha = fingerprint(root)
    state = _resume_state(run, cfg, sha) if resume else None
    if state is None:
        fresh_run_dir(run)
    train_set, val = load_split(root, "train"), load_split(root, "val")
    categories = label_categories(train_set)
    device = resolve_device(cfg.device)
    bf16 = cfg.amp and amp_mode(device) == "bf16"
    seed_everything(cfg.seed, deterministic_torch=False)
    model = build_model(cfg, len(categories)).to(device)
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.SGD(params, lr=cfg.lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay)
    data = FrcnnTrainSet(train_set, cfg.imgsz, hflip=cfg.hflip, seed=cfg.seed)
    steps_per_epoch = math.ceil(len(data) / cfg.batch)
    epoch, step, train_s, wall_s, rows, best, sessions = 0, 0, 0.0, 0.0, [], None, []
    lr, stats = cfg.lr, {}
    if state is not None:
        model.load_state_dict(state["model"])
        opt.load_state_dict(state["optimizer"])
        torch.set_rng_state(state["torch_rng"])
        epoch, step, train_s, wall_s = state["epoch"], state["step"], state["train_seconds"], state["wall_seconds"]
        rows, best, sessions = state["log"], state["best"], state["sessions"]
    sessions = sessions + [{"resume": resume, "started_unix": round(time.time(), 3)}]
    record = {"data_root": str(root), "dataset_sha256": sha, "sessions": sessions, "device_used": str(device),
              "bf16": bf16, "categories": categories, "parameters": count_parameters(model),
              "train_images": len(data), "val_images": len(val)}
    write_manifest(run / MANIFEST, seed=cfg.seed, config=cfg.to_dict(), extra=record)
    write_json(run / CATEGORY_FILE, categories)
    session_start = time.perf_counter() - wall_s
    while epoch < cfg.epochs:
        data.epoch = epoch
        loader = torch.utils.data.DataLoader(data, batch_size=cfg.batch, shuffle=True, collate_fn=_collate,
                                             generator=torch.Generator().manual_seed(cfg.seed * 1000 + epoch))
        model.train()
        t0, sums, done = time.perf_counter(), {}, 0
        bar = tqdm(loader, desc=f"{cfg.name} epoch {epoch + 1}/{cfg.epochs}", disable=not progress, leave=False)
        for images, targets in bar:
            lr = learning_rate(cfg, step, cfg.epochs * steps_per_epoch)
            for group in opt.param_groups:
                group["lr"] = lr
            images = [im.to(device) for im in images]
            targets = [{k: v.to(device) for k, v in t.items()} for t in targets]
            with torch.autocast("cuda", dtype=torch.bfloat16, enabled=bf16):
                losses = model(images, targets)
            loss = sum(losses.values())
            if not torch.isfinite(loss):
                raise DataError(f"the loss became {loss.item()} at step {step}; lower lr or raise warmup_iters",
                                source=str(run))
            opt.zero_grad(set_to_none=True)
            loss.backward()
            if cfg.grad_clip is not None:
                torch.nn.utils.clip_grad_norm_(params, cfg.grad_clip)
            opt.step()
            step, done = step + 1, done + 1
            for k, v in {"loss": loss, **losses}.items():
                sums[k] = sums.get(k, 0.0) + float(v.detach())
            bar.set_postfix(loss=f"{float(loss.detach()):.3f}")
        epoch_s = time.perf_counter() - t0
        train_s += epoch_s
        epoch += 1
        final = epoch >= cfg.epochs
        stats = {}
        t_eval = time.perf_counter()
        if final or (cfg.eval_every and epoch % cfg.eval_every == 0):
            det = FrcnnDetector(model.eval(), device, cfg.imgsz, categories)
            stats = coco_summary(val, predict_frcnn(det, val, conf=cfg.eval_conf, max_det=cfg.max_det,
                                                    batch=max(cfg.batch, 8), progress=False))
        row = {"epoch": epoch, "train_minutes": round(train_s / 60.0, 4), "lr": lr,
               "steps": done, **{f"train/{k}": v / max(1, done) for k, v in sums.items()},
               "coco_eval_seconds": round(time.perf_counter() - t_eval, 2),
               **{f"coco/{k}": stats.get(k) for k in COCO_KEYS}}
        rows.append(row)
        ap = stats.get("AP")
        if ap is not None and (best is None or ap > best["AP"]):
            best = {"epoch": epoch, "AP": ap, "coco": stats}
            _save({"model": model.state_dict(), "config": cfg.to_dict(), "categories": categories, "epoch": epoch},
                  run / BEST)
        pd.DataFrame(rows).to_csv(run / LOG, index=False)
        wall_s = time.perf_counter() - session_start
        _save({"model": model.state_dict(), "optimizer": opt.state_dict(), "torch_rng": torch.get_rng_state(),
               "epoch": epoch, "step": step, "train_seconds": train_s, "wall_seconds": wall_s, "log": rows,
               "best": best, "sessions": sessions, "config": cfg.to_dict(), "categories": categories,
               "dataset_sha256": sha}, run / LAST)
        if final:
            break
        if stop_after_epoch is not None and epoch >= stop_after_epoch:
            return TrainResult(run, run / LAST, epoch, interrupted=True)
    if best is None:  # every evaluated epoch had an undefined AP (no val objects): keep the last weights
        _save({"model": model.state_dict(), "config": cfg.to_dict(), "categories": categories, "epoch": epoch},
              run / BEST)
        best = {"epoch": epoch, "AP": None, "coco": stats}
    result = {"weights": BEST, "epochs": epoch, "best_epoch": best["epoch"], "train_minutes": train_s / 60.0,
              "wall_minutes": (time.perf_counter() - session_start) / 60.0, "coco": best["coco"],
              "device": str(device), "bf16": bf16, "parameters": count_parameters(model),
              "steps": step}
    write_json(run / RESULT, result)
    write_manifest(run / MANIFEST, seed=cfg.seed, config=cfg.to_dict(), extra={**record, "result": result})
    return TrainResult(run, run / BEST, epoch, interrupted=False, metrics=result)



def train_cached(config: FrcnnConfig, data_root: Path, out: Path, progress: bool = True) -> Trained:
    """The registry's train step (``detect-frcnn``): train (or resume) in ``out/run`` and put
    ``weights.pt`` and ``categories.json`` in ``out``."""
    import json
    import shutil

    run = out / "run"
    if not (run / RESULT).is_file():
        train_frcnn(config, data_root=data_root, run_dir=run, resume=resumable_frcnn(run), progress=progress)
    result = json.loads((run / RESULT).read_text(encoding="utf-8"))
    shutil.copyfile(run / result["weights"], out / "weights.pt")
    shutil.copyfile(run / CATEGORY_FILE, out / CATEGORY_FILE)
    from labkit.detect.base import ap_vs_minutes

    return Trained(epochs=result["epochs"], steps=result["steps"], train_minutes=result["train_minutes"],
                   device=result["device"], wall_minutes=result["wall_minutes"],
                   details={"best_epoch": result["best_epoch"], "parameters": result["parameters"],
                            "ap_vs_minutes": ap_vs_minutes(pd.read_csv(run / LOG))})
