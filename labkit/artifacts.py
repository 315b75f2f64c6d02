"""Where runs leave their results, and the metric log that ``make course`` summarises.

Every number a notebook states must come from a run: notebooks call :func:`log_metrics`, which
merges the values into ``<artifacts>/metrics/<chapter>.json``; ``scripts/run_course.py`` gathers
those files into ``artifacts/course_summary.json``.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[1]


def project_root() -> Path:
    """The course checkout when labkit runs from one (editable install), else the working folder
    (labkit installed from a wheel, e.g. on Colab)."""
    return REPO_ROOT if (REPO_ROOT / "pyproject.toml").exists() else Path.cwd()


def artifacts_dir() -> Path:
    """``$LABKIT_ARTIFACTS`` if set, else ``<project>/artifacts`` (created on demand)."""
    path = Path(os.environ.get("LABKIT_ARTIFACTS", project_root() / "artifacts"))
    path.mkdir(parents=True, exist_ok=True)
    return path


def shown_path(path: str | Path) -> str:
    """``path`` as a committed record names it: relative to the project (``labkit/...``) or the
    artifacts folder (``artifacts/...``), else only its name -- never a machine's own folder."""
    path = Path(path).resolve()
    for root, prefix in ((project_root(), ""), (artifacts_dir(), "artifacts/")):
        if path.is_relative_to(root.resolve()):
            return prefix + path.relative_to(root.resolve()).as_posix()
    return path.name


def write_json(path: str | Path, payload: Any) -> Path:
    """Write JSON atomically (temp file + rename), creating parent folders."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(payload, indent=2, default=str), encoding="utf-8")
    tmp.replace(path)
    return path


def log_metrics(chapter: str, **values: float | int | str | None) -> dict[str, Any]:
    """Merge ``values`` into the chapter's metric log and return the whole log."""
    path = artifacts_dir() / "metrics" / f"{chapter}.json"
    current = json.loads(path.read_text()) if path.exists() else {}
    current.update(values)
    write_json(path, current)
    return current


def read_metrics(root: str | Path | None = None) -> dict[str, dict[str, Any]]:
    """All chapter metric logs under ``root`` (default: :func:`artifacts_dir`)."""
    folder = Path(root or artifacts_dir()) / "metrics"
    return {p.stem: json.loads(p.read_text()) for p in sorted(folder.glob("*.json"))}


def fresh_dir(path: str | Path, *, marker: str, what: str) -> Path:
    """Empty ``path`` for new output and return it. Only a folder that holds ``marker`` (the file
    that shows labkit made it, e.g. a run's manifest) is deleted; any other non-empty folder is a
    :class:`~labkit.errors.DataError` naming it, so that no user data is ever removed."""
    from labkit.errors import DataError

    path = Path(path)
    if path.exists() and any(path.iterdir()):
        if not (path / marker).is_file():
            raise DataError(f"refusing to clear a non-empty folder that is not a {what} (no {marker})", source=str(path))
        shutil.rmtree(path)
    path.mkdir(parents=True, exist_ok=True)
    return path


#: Written last into a cached model's folder, beside its weights: its presence marks a finished build.
MODEL_METRICS = "metrics.json"


def finished_model(weights: str | Path) -> bool:
    """True when ``weights`` exist and the ``metrics.json`` a build writes last is beside them
    (an interrupted build has weights or checkpoints, but no metrics: it is built again or resumed)."""
    weights = Path(weights)
    return weights.is_file() and (weights.parent / MODEL_METRICS).is_file()


def read_model_metrics(weights: str | Path) -> dict[str, Any]:
    """The ``metrics.json`` written last beside a cached model's weights (its build is finished);
    a missing or unreadable file is a :class:`~labkit.errors.DataError` naming it."""
    from labkit.errors import DataError

    path = Path(weights).parent / MODEL_METRICS
    if not path.is_file():
        raise DataError("no metrics.json beside the weights: not a finished cached model", source=str(weights))
    try:
        values = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise DataError(f"not a readable metrics.json ({type(exc).__name__}: {exc})", source=str(path)) from exc
    if not isinstance(values, dict):
        raise DataError("metrics.json must hold a JSON object", source=str(path))
    return values
