"""Build step the pyproject.toml metadata cannot express: the wheel ships the course configs.

``configs/*.yaml`` at the top of the repository stays the file to edit; the build copies it into
the package as ``labkit/configs/`` so that an install without the checkout (Colab, Binder, a wheel)
finds the same recipes through :func:`labkit.configfile.config_path`.
"""

import shutil
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

CONFIGS = Path(__file__).resolve().parent / "configs"


class BuildWithConfigs(build_py):
    """``build_py`` plus a copy of ``configs/*.yaml`` into ``<build>/labkit/configs/``."""

    def run(self):
        super().run()
        target = Path(self.build_lib) / "labkit" / "configs"
        target.mkdir(parents=True, exist_ok=True)
        for path in sorted(CONFIGS.glob("*.yaml")):
            shutil.copy2(path, target / path.name)


setup(cmdclass={"build_py": BuildWithConfigs})
