"""The model registry: one :class:`ModelSpec` per model the course builds and caches.

A spec says everything the one build / load / verify flow (:mod:`labkit.models.flow`) needs:

- ``name``: the registry name notebooks and the CLI use (``"detect-base"``);
- ``config``: the recipe, a YAML file under ``configs/`` (found through the package, so a wheel
  install finds it too: :func:`labkit.configfile.config_path`), read by ``config_class.load``;
- ``train(config, data_root, out_dir, progress) -> Trained``: trains (or resumes an interrupted
  build) into ``out_dir`` and leaves ``weights`` (and ``files``) there;
- ``evaluate(weights, config, data_root, progress) -> Scores``: scores the weights on the val split;
- ``weights`` and ``files``: the weights file name and the other files a loaded model needs beside it;
- ``ci``: the tiny variant :func:`labkit.models.load` uses under ``LABKIT_BUDGET=ci``;
- ``minutes``: the expected build time on 2 quiet CPU cores (for the ETA of ``models-rebuild``).

``train`` and ``evaluate`` are ``"module:function"`` strings imported on first use, so that
``import labkit.models`` (and the CLI) stays fast and free of import cycles.

Adding a model (e.g. Chapter 4's ReID embedding net): write its config class (a
:class:`labkit.configfile.YamlConfig` with ``dataset_size``, ``dataset_seed`` and ``seed`` fields),
a YAML recipe in ``configs/``, a train function that resumes from what it finds in ``out_dir`` and
returns :class:`Trained`, an evaluate function returning :class:`Scores`, then call
:func:`register` with a :class:`ModelSpec` (at import time of your module, or add it to
:data:`BUILTIN` in :mod:`labkit.models.specs`). ``labkit models list`` shows it, ``labkit models
build NAME`` builds it, and its checkpoint can be shipped through ``checkpoints.json``.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from typing import Any, Callable

from labkit.configfile import config_path
from labkit.errors import DataError


@dataclass(frozen=True)
class Trained:
    """What a spec's train function reports: the budget actually spent and where.

    ``epochs`` and ``steps`` are the optimisation budget (the same on any machine);
    ``train_minutes`` is the wall-clock time the optimisation took here (it depends on the
    machine, the weights do not), over every session of a resumed build; ``wall_minutes`` adds the
    evaluations during training where the spec measures them (default: ``train_minutes``);
    ``details`` holds spec-specific extras (best epoch, learning curve ...).
    """

    epochs: int
    steps: int
    train_minutes: float
    device: str
    details: dict[str, Any] = field(default_factory=dict)
    wall_minutes: float | None = None


@dataclass(frozen=True)
class Scores:
    """A spec's evaluation on the val split: headline ``metrics`` (name -> number, the values the
    chapters quote) and ``details`` (per-class tables, full COCO summaries ...)."""

    metrics: dict[str, float | None]
    details: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class ModelSpec:
    """One registered model (see the module docstring for each field)."""

    name: str
    config: str
    config_class: str
    train: str
    evaluate: str
    weights: str = "weights.pt"
    files: tuple[str, ...] = ()
    ci: str | None = None
    minutes: float = 1.0
    description: str = ""

    def load_config(self, config: Any = None) -> Any:
        """The spec's config object: ``config`` (object, mapping or YAML path) if given, else its
        registered YAML file."""
        cls = _resolve(self.config_class)
        return cls.load(config if config is not None else config_path(self.config))

    def train_fn(self) -> Callable[..., Trained]:
        return _resolve(self.train)

    def evaluate_fn(self) -> Callable[..., Scores]:
        return _resolve(self.evaluate)


_REGISTRY: dict[str, ModelSpec] = {}


def _resolve(target: str) -> Any:
    module, _, attr = target.partition(":")
    return getattr(importlib.import_module(module), attr)


def register(spec: ModelSpec, *, replace: bool = False) -> ModelSpec:
    """Add ``spec`` to the registry (a second spec of the same name is an error unless ``replace``)."""
    if spec.name in _REGISTRY and not replace:
        raise DataError(f"a model named {spec.name!r} is already registered")
    _REGISTRY[spec.name] = spec
    return spec


def names() -> list[str]:
    """Registered model names, in registration order."""
    _builtin()
    return list(_REGISTRY)


def get(name: str) -> ModelSpec:
    """The spec registered as ``name``; an unknown name is a :class:`DataError` listing the known ones."""
    _builtin()
    if name not in _REGISTRY:
        raise DataError(f"unknown model {name!r}; known models: {', '.join(_REGISTRY)}")
    return _REGISTRY[name]


def _builtin() -> None:
    from labkit.models import specs  # noqa: F401 - registers the course's models on import

