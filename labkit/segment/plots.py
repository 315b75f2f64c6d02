"""Figures for segmentation runs."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


def plot_training_log(rows: list[dict[str, Any]], path: str | Path) -> Path:
    """Training loss and per-class validation IoU per epoch, side by side."""
    epochs = [r["epoch"] for r in rows]
    fig, (ax_loss, ax_iou) = plt.subplots(1, 2, figsize=(10, 3.5))
    ax_loss.plot(epochs, [r["train_loss"] for r in rows], marker="o")
    ax_loss.set(xlabel="epoch", ylabel="train loss", title="training loss")
    for key in [k for k in rows[0] if k.startswith("iou_")]:
        ax_iou.plot(epochs, [r[key] if r[key] is not None else float("nan") for r in rows], label=key[4:])
    ax_iou.plot(epochs, [r["val_miou"] for r in rows], "k--", label="mIoU")
    ax_iou.set(xlabel="epoch", ylabel="IoU", ylim=(0, 1), title="validation IoU per class")
    ax_iou.legend(fontsize=7, ncol=2)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return Path(path)
