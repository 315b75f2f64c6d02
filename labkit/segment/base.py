"""The base U-Net of the model registry (``segment-base``, ``segment-tiny``), and fine-tuning from it.

:func:`train_cached` is the registry's train step: :func:`labkit.segment.semantic.train_semantic`
on the train split of the embedded dataset (GPU when present, else the CPU; the budget is the
config's ``epochs``), in ``out/run`` (an interrupted build resumes from ``run/last.pt``, deleted
once the build is finished: it holds the optimizer state); ``run/best.pt`` becomes ``weights.pt``.
:func:`evaluate_cached` scores it on the WHOLE val split at the images' original resolution
(:func:`labkit.segment.predict.evaluate_semantic`): val mIoU and boundary F, per-class IoU (thin
"rod", rare "star") in the details. :func:`fine_tune` starts a short run for a notebook from the
base weights.
"""

from __future__ import annotations

import dataclasses
import shutil
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Mapping

from labkit.configfile import check_keys, read_yaml_mapping
from labkit.data.annotations import Dataset
from labkit.errors import DataError
from labkit.models.dataset import load_split
from labkit.models.registry import Scores, Trained
from labkit.segment.semantic import SemanticConfig, load_checkpoint, train_semantic

WEIGHTS = "weights.pt"
__all__ = ["BaseConfig", "evaluate_cached", "fine_tune", "load_split", "miou_vs_epochs", "train_cached"]


@dataclass(frozen=True)
class BaseConfig:
    """A base-model recipe: which embedded dataset, and the :class:`SemanticConfig` to train.

    The YAML form is flat: ``name``, ``dataset_size``, ``dataset_seed`` and the
    :class:`SemanticConfig` fields side by side.
    """

    name: str = "segment-base"
    dataset_size: str = "default"
    dataset_seed: int = 0
    model: SemanticConfig = field(default_factory=SemanticConfig)

    def to_dict(self) -> dict[str, Any]:
        """The flat form (as in the YAML file)."""
        return {"name": self.name, "dataset_size": self.dataset_size, "dataset_seed": self.dataset_seed,
                **asdict(self.model)}

    @classmethod
    def from_mapping(cls, values: Mapping[str, Any], *, source: str = "<memory>") -> "BaseConfig":
        """Build from the flat mapping; unknown keys are an error naming ``source``."""
        own = {"name", "dataset_size", "dataset_seed"}
        check_keys(values, own | {f.name for f in dataclasses.fields(SemanticConfig)}, kind="base-model", source=source)
        try:
            model = SemanticConfig(**{k: v for k, v in values.items() if k not in own})
        except (DataError, TypeError) as exc:
            raise DataError(f"bad config ({exc})", source=source) from exc
        return cls(**{k: values[k] for k in own if k in values}, model=model)

    @classmethod
    def load(cls, config: "BaseConfig | Mapping[str, Any] | str | Path") -> "BaseConfig":
        """Accept a :class:`BaseConfig`, its flat mapping, or a YAML path (``configs/segment_*.yaml``)."""
        if isinstance(config, BaseConfig):
            return config
        if isinstance(config, Mapping):
            return cls.from_mapping(config)
        return cls.from_mapping(read_yaml_mapping(config), source=str(config))


def _per_class(summary: Mapping[str, Any], key: str) -> dict[str, float | None]:
    return {row["name"]: row[key] for row in summary["per_class"]}


def train_cached(config: BaseConfig, data_root: Path, out: Path, progress: bool = True) -> Trained:
    """Train (or resume) the U-Net in ``out/run`` and copy its best checkpoint to ``out/weights.pt``."""
    run = out / "run"
    summary = train_semantic(config.model, load_split(data_root, "train"), load_split(data_root, "val"), data_root,
                             run, resume=(run / "last.pt").is_file(), progress=progress)
    shutil.copyfile(run / "best.pt", out / WEIGHTS)
    (run / "last.pt").unlink(missing_ok=True)
    log = summary["last"] or {}
    return Trained(epochs=summary["epochs"], steps=summary["steps"], train_minutes=log.get("elapsed_s", 0.0) / 60.0,
                   device=summary["device"],
                   details={"best_epoch_val_miou_letterboxed": summary["best_val_miou"],
                            "miou_vs_epochs": miou_vs_epochs(run / "log.csv")})


def miou_vs_epochs(log_csv: Path) -> list[dict[str, float | None]]:
    """The learning curve of a U-Net run (its ``log.csv``): per epoch the cumulative training
    minutes, the val mIoU measured during training (letterboxed, as trained) and each class's IoU."""
    import pandas as pd

    rows = pd.read_csv(log_csv).astype(object).where(lambda df: df.notna(), None).to_dict("records")
    return [{"epoch": int(r["epoch"]), "minutes": r["elapsed_s"] / 60.0, "val_miou_letterboxed": r["val_miou"],
             **{k: v for k, v in r.items() if k.startswith("iou_")}} for r in rows]


def evaluate_cached(weights: Path, config: BaseConfig, data_root: Path, progress: bool = True) -> Scores:
    """val mIoU and mean boundary F of ``weights`` on the whole val split at the original resolution;
    per-class IoU and boundary F in the details."""
    from labkit.segment.predict import evaluate_semantic

    model, model_cfg = load_checkpoint(weights, device=config.model.device)
    scores = evaluate_semantic(model, model_cfg, load_split(data_root, "val"), data_root, device=config.model.device,
                               progress=progress)
    return Scores(metrics={"val_miou": scores["mean_iou"], "val_mean_boundary_f": scores["mean_boundary_f"]},
                  details={"iou": _per_class(scores, "iou"), "boundary_f": _per_class(scores, "boundary_f"),
                           "val_images": scores["images"], "ms_per_image": scores["ms_per_image"], "val": scores})


def fine_tune(base_ckpt: str | Path, config: SemanticConfig, train_set: Dataset, val_set: Dataset,
              data_root: str | Path, out_dir: str | Path, *, progress: bool = True) -> dict[str, Any]:
    """A short training run that starts from the base weights (a notebook's 1-2 minute experiment).

    ``config`` is the new run's recipe (loss, epochs, lr, classes ...); its ``arch`` and
    ``encoder`` must be the base model's. A head for another number of classes starts fresh
    (the run's ``manifest.json`` lists the parameters not taken from the base under
    ``init_from.skipped``). Returns :func:`train_semantic`'s summary; ``best.pt`` is in ``out_dir``.
    """
    import torch

    state = torch.load(base_ckpt, map_location="cpu", weights_only=False)
    base = state.get("config", {})
    clash = {k: (base.get(k), getattr(config, k)) for k in ("arch", "encoder") if base.get(k) != getattr(config, k)}
    if clash:
        raise DataError(f"fine-tuning needs the base model's architecture; differs: {clash} (base, new)",
                        source=str(base_ckpt))
    return train_semantic(config, train_set, val_set, Path(data_root), Path(out_dir), progress=progress,
                          init_from=base_ckpt)
