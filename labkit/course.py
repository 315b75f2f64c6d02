"""Course-wide settings: the repository URL (``course.yaml``), the notebook setup cell and the
Colab / Binder badges that are generated from it (``scripts/sync_course.py`` writes them), and
:func:`with_marked_block`, how the scripts write measured tables into a README."""

from __future__ import annotations

from functools import lru_cache
from importlib import resources
from pathlib import Path
from urllib.parse import quote

import yaml

#: ``course.yaml`` as the package sees it: in a checkout a link to the top-level file (the one to
#: edit), in a wheel the shipped copy, so an install without the repository reads it too.
CONFIG_FILE = Path(str(resources.files("labkit").joinpath("course.yaml")))
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


#: Written by ``python -m labkit.hosted`` once Colab's set-up succeeded; a new runtime starts without it.
COLAB_MARKER = "/content/.labkit-ready"


def install_spec() -> str:
    """What the Colab setup cell installs: the light ``colab`` extra from the course repository."""
    repo, branch = course_config()["repository"], course_config()["branch"]
    return f"labkit[colab] @ git+{repo}@{branch}"


def setup_cell_source() -> str:
    """The first cell of every notebook. On Colab, once per runtime (marker file): install
    :func:`install_spec`, run ``python -m labkit.hosted`` (prebuilt models, dataset), and stop with
    a request to restart the runtime only when pip changed torch. Everywhere (and on Colab
    afterwards) it prints the environment line of :func:`labkit.hosted.environment_line`."""
    return (
        "# Course setup, generated from course.yaml by `make sync`. On Colab the first run in a runtime installs\n"
        "# labkit[colab] from the course repository, pulls the prebuilt course models and prepares the dataset;\n"
        "# later runs skip that. Locally and on Binder (set up already) it only prints the environment.\n"
        "import os, subprocess, sys\n"
        f"if \"google.colab\" in sys.modules and not os.path.exists(\"{COLAB_MARKER}\"):\n"
        "    from importlib.metadata import PackageNotFoundError, version\n"
        "\n"
        "    def installed_torch():\n"
        "        try:\n"
        "            return version(\"torch\")\n"
        "        except PackageNotFoundError:\n"
        "            return None\n"
        "\n"
        "    torch_before = installed_torch()\n"
        f"    print(\"installing {install_spec()} (once per runtime) ...\", flush=True)\n"
        f"    subprocess.run([sys.executable, \"-m\", \"pip\", \"install\", \"-q\", \"{install_spec()}\"], check=True)\n"
        f"    subprocess.run([sys.executable, \"-m\", \"labkit.hosted\", \"--marker\", \"{COLAB_MARKER}\"], check=True)\n"
        "    if installed_torch() != torch_before:\n"
        "        raise SystemExit(f\"pip changed torch {torch_before} -> {installed_torch()}: \"\n"
        "                         \"Runtime > Restart session, then run this cell again.\")\n"
        "from labkit.hosted import environment_line\n"
        "\n"
        "print(environment_line())"
    )


def with_marked_block(text: str, start: str, end: str, block: str, source: str) -> str:
    """``text`` with the part between the marker lines ``start`` and ``end`` replaced by ``block``
    (the markers kept); a :class:`ValueError` naming ``source`` unless there is exactly one pair, in order."""
    if text.count(start) != 1 or text.count(end) != 1 or text.index(start) > text.index(end):
        raise ValueError(f"{source}: needs exactly one {start} ... {end} pair")
    head, rest = text.split(start)
    return head + start + "\n" + block + "\n" + end + rest.split(end, 1)[1]


def with_section_block(text: str, start: str, end: str, block: str, source: str, heading: str) -> str:
    """:func:`with_marked_block`, or, when ``text`` has neither marker yet, ``text`` with a new last
    section ``## heading`` that holds the markers and ``block``."""
    if start not in text and end not in text:
        return text.rstrip("\n") + f"\n\n## {heading}\n\n{start}\n{block}\n{end}\n"
    return with_marked_block(text, start, end, block, source)


def write_section_blocks(repo: Path, blocks: dict[str, str], start: str, end: str, heading: str) -> list[Path]:
    """Write each ``blocks[relative README path]`` between ``start`` and ``end`` of that README under
    ``repo`` (:func:`with_section_block`); the README paths written."""
    written = []
    for rel, block in blocks.items():
        path = Path(repo) / rel
        path.write_text(with_section_block(path.read_text(encoding="utf-8"), start, end, block, rel, heading),
                        encoding="utf-8")
        written.append(path)
    return written

