"""Course-wide settings: the repository URL (``course.yaml``), the notebook setup cell and the
Colab / Binder badges that are generated from it (``scripts/sync_course.py`` writes them)."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from urllib.parse import quote

import yaml

from labkit.artifacts import REPO_ROOT

CONFIG_FILE = REPO_ROOT / "course.yaml"
SETUP_TAG = "course-setup"


@lru_cache(maxsize=None)
def course_config(path: Path = CONFIG_FILE) -> dict[str, str]:
    """``repository`` (https URL of the GitHub repository), ``branch`` and ``models_release`` (base
    URL of the shipped model checkpoints; default: the repository's ``models-v1`` release)."""
    config = yaml.safe_load(path.read_text())
    repo = str(config["repository"]).rstrip("/")
    if not repo.startswith("https://github.com/") or repo.count("/") != 4:
        raise ValueError(f"{path}: 'repository' must look like https://github.com/OWNER/NAME, got {repo!r}")
    release = str(config.get("models_release", f"{repo}/releases/download/models-v1")).rstrip("/")
    return {"repository": repo, "branch": str(config.get("branch", "main")), "models_release": release}


def _slug() -> str:
    return course_config()["repository"].removeprefix("https://github.com/")


def colab_url(notebook: str) -> str:
    """Open-in-Colab link for a notebook path relative to the repository root."""
    return f"https://colab.research.google.com/github/{_slug()}/blob/{course_config()['branch']}/{notebook}"


def binder_url(notebook: str | None = None) -> str:
    """Launch-Binder link (opening ``notebook`` in JupyterLab when given)."""
    url = f"https://mybinder.org/v2/gh/{_slug()}/{course_config()['branch']}"
    return url + (f"?labpath={quote(notebook)}" if notebook else "")


def badges(notebook: str | None = None) -> str:
    """Markdown badges: Binder (the whole course or one notebook) and Colab (for one notebook)."""
    parts = [f"[![Launch Binder](https://mybinder.org/badge_logo.svg)]({binder_url(notebook)})"]
    if notebook:
        parts.append(f"[![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)]({colab_url(notebook)})")
    return " ".join(parts)


def setup_cell_source() -> str:
    """The first cell of every notebook: on Colab it installs the course and generates the data;
    elsewhere it only checks that labkit imports (Binder and local set-ups have done the rest)."""
    repo, branch = course_config()["repository"], course_config()["branch"]
    return (
        "# Setup. On Colab: install the course and generate its data. Locally / on Binder: only a check.\n"
        "import subprocess, sys\n"
        "if \"google.colab\" in sys.modules:\n"
        f"    subprocess.run([sys.executable, \"-m\", \"pip\", \"install\", \"-q\", \"labkit[course] @ git+{repo}@{branch}\"], check=True)\n"
        "    subprocess.run([sys.executable, \"-c\", \"from labkit.data.synth import ensure_dataset; ensure_dataset()\"], check=True)\n"
        "import labkit\n"
        "print(\"labkit\", labkit.__version__, \"on Python\", sys.version.split()[0])"
    )
