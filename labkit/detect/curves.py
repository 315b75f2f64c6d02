"""The learning-dynamics log of a training run: one CSV row per epoch, and its figure.

Two logs are merged on ``epoch``: Ultralytics' ``results.csv`` (train and val losses, its own
``metrics/mAP50(B)`` and ``metrics/mAP50-95(B)``, learning rate per parameter group) and
labkit's ``epochs.csv`` (cumulative training minutes and, every ``eval_every`` epochs, the COCO
metrics of :func:`labkit.detect.evaluate.evaluate_detector`, columns prefixed ``coco/``).
An epoch logged twice (a run killed after logging but before its checkpoint, then resumed)
keeps its later row.
"""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any, Mapping

import numpy as np
import pandas as pd
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from labkit.errors import DataError

ULTRALYTICS_LOG = "results.csv"
LABKIT_LOG = "epochs.csv"
CURVES_CSV = "learning_curves.csv"
CURVES_PNG = "learning_curves.png"


def append_row(path: Path, row: Mapping[str, Any]) -> None:
    """Append one row to a CSV log, writing the header first when the file is new."""
    new = not path.exists()
    with open(path, "a", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=list(row))
        if new:
            writer.writeheader()
        writer.writerow(dict(row))


def _read(path: Path) -> pd.DataFrame:
    if not path.is_file():
        return pd.DataFrame({"epoch": pd.Series(dtype=int)})
    try:
        df = pd.read_csv(path)
    except (pd.errors.ParserError, pd.errors.EmptyDataError) as exc:
        raise DataError(f"unreadable CSV log ({exc})", source=str(path)) from exc
    df.columns = [c.strip() for c in df.columns]
    if "epoch" not in df:
        raise DataError("CSV log has no 'epoch' column", source=str(path))
    return df.drop_duplicates("epoch", keep="last")


def learning_curves(run_dir: str | Path) -> pd.DataFrame:
    """The merged per-epoch log of a run folder (see the module docstring), sorted by epoch."""
    run_dir = Path(run_dir)
    ul, lk = _read(run_dir / ULTRALYTICS_LOG), _read(run_dir / LABKIT_LOG)
    return ul.merge(lk, on="epoch", how="outer").sort_values("epoch").reset_index(drop=True)


def _panel(ax: Any, df: pd.DataFrame, columns: list[str], title: str) -> None:
    for col in columns:
        values = df[col].to_numpy(dtype=np.float64)
        keep = np.isfinite(values)
        style = "--" if col.startswith(("val/", "metrics/")) else "-"  # dashed: val losses, Ultralytics' AP
        ax.plot(df["epoch"].to_numpy()[keep], values[keep], style, marker="o", ms=3, label=col)
    ax.set_title(title)
    ax.set_xlabel("epoch")
    if columns:
        ax.legend(fontsize=7)
    ax.grid(alpha=0.3)


def plot_learning_curves(df: pd.DataFrame, path: str | Path | None = None) -> Figure:
    """Three panels: losses, AP (labkit COCO and Ultralytics), learning rate; saved when ``path``."""
    fig = Figure(figsize=(13, 3.8), dpi=100)
    FigureCanvasAgg(fig)
    axes = fig.subplots(1, 3)
    _panel(axes[0], df, [c for c in df if c.endswith("_loss")], "losses")
    ap_cols = [c for c in ("coco/AP50", "coco/AP", "metrics/mAP50(B)", "metrics/mAP50-95(B)") if c in df]
    _panel(axes[1], df, ap_cols, "val AP (coco/: labkit, metrics/: Ultralytics)")
    _panel(axes[2], df, [c for c in df if c.startswith("lr/")], "learning rate")
    fig.tight_layout()
    if path is not None:
        fig.savefig(path)
    return fig


def write_learning_curves(run_dir: str | Path) -> tuple[Path, Path]:
    """Write ``learning_curves.csv`` and ``learning_curves.png`` into ``run_dir``; returns both paths."""
    run_dir = Path(run_dir)
    df = learning_curves(run_dir)
    csv_path, png_path = run_dir / CURVES_CSV, run_dir / CURVES_PNG
    df.to_csv(csv_path, index=False)
    plot_learning_curves(df, png_path)
    return csv_path, png_path
