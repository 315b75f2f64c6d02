"""Run configs read from YAML: one strict reader for every recipe in ``configs/``, and one place
that finds those recipes (:func:`config_path`).

A typo in a config key must be an error, not a silently ignored knob, and a broken file must be
reported with its path. :class:`YamlConfig` gives a config dataclass ``from_mapping``, ``load``
(object, mapping or YAML path), ``to_dict`` and ``replace``; configs whose YAML form is not
simply their fields use :func:`read_yaml_mapping` and :func:`check_keys` directly.
"""

from __future__ import annotations

import dataclasses
from importlib import resources
from pathlib import Path
from typing import Any, ClassVar, Iterable, Mapping, TypeVar

import yaml

from labkit.errors import DataError

C = TypeVar("C", bound="YamlConfig")


def configs_dir() -> Path:
    """The folder of the course configs: ``labkit/configs`` inside the package. In a checkout it is
    a link to the top-level ``configs/`` (the files to edit, so an edit applies at once); a built
    wheel ships the files themselves (``package-data``), so Colab, Binder and any wheel install find
    the same recipes without the repository."""
    return Path(str(resources.files("labkit").joinpath("configs")))


def config_names() -> list[str]:
    """The course config files that :func:`config_path` knows (sorted)."""
    folder = configs_dir()
    return sorted(p.name for p in folder.glob("*.yaml")) if folder.is_dir() else []


def config_path(name: str) -> Path:
    """Path of the course config ``name`` (e.g. ``"detect_base.yaml"``), wherever labkit is
    installed: the one lookup every notebook and default uses, never a path built from the checkout.

    An unknown name, or one that is not a bare file name, is a :class:`DataError` listing the
    known configs (none listed means this install lacks them).
    """
    if not name or Path(name).name != name or not name.endswith(".yaml"):
        raise DataError(f"a course config is a bare file name ending in .yaml, got {name!r}")
    path = configs_dir() / name
    if not path.is_file():
        raise DataError(f"no course config {name!r}; known: {config_names()}", source=str(configs_dir()))
    return path


def read_yaml_mapping(path: str | Path) -> Any:
    """The parsed content of a YAML file (``{}`` when empty); unreadable or invalid YAML is a
    :class:`DataError` naming the file."""
    path = Path(path)
    try:
        values = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise DataError(f"cannot read config ({exc.strerror})", source=str(path)) from exc
    except yaml.YAMLError as exc:
        raise DataError(f"not valid YAML ({exc})", source=str(path)) from exc
    return {} if values is None else values


def check_keys(values: Any, known: Iterable[str], *, kind: str, source: str) -> None:
    """``values`` must be a mapping whose keys are all in ``known``."""
    if not isinstance(values, Mapping):
        raise DataError(f"a {kind} config must be a mapping of field: value", source=source)
    unknown = sorted(set(values) - set(known))
    if unknown:
        raise DataError(f"unknown config keys {unknown}; known: {sorted(known)}", source=source)


class YamlConfig:
    """Mixin for a (frozen) config dataclass whose YAML form is its fields."""

    KIND: ClassVar[str] = "run"

    @classmethod
    def from_mapping(cls: type[C], values: Mapping[str, Any], *, source: str = "<memory>") -> C:
        """Build from a parsed YAML mapping; unknown keys and bad values are errors naming ``source``."""
        check_keys(values, {f.name for f in dataclasses.fields(cls)}, kind=cls.KIND, source=source)
        try:
            return cls(**dict(values))
        except DataError as exc:
            raise DataError(str(exc), source=source) from exc
        except TypeError as exc:
            raise DataError(f"bad config value ({exc})", source=source) from exc

    @classmethod
    def load(cls: type[C], config: C | Mapping[str, Any] | str | Path) -> C:
        """Accept a config object, a mapping of its fields or a YAML path."""
        if isinstance(config, cls):
            return config
        if isinstance(config, Mapping):
            return cls.from_mapping(config)
        return cls.from_mapping(read_yaml_mapping(config), source=str(config))

    def to_dict(self) -> dict[str, Any]:
        """Plain dict (JSON/YAML-serialisable) of every field: what manifests and cache keys record."""
        return dataclasses.asdict(self)  # type: ignore[call-overload]

    def replace(self: C, **changes: Any) -> C:
        """A copy with some fields changed (validated again)."""
        return dataclasses.replace(self, **changes)  # type: ignore[type-var]
