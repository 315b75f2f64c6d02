"""The capstone config (``configs/capstone.yaml``): models by registry name, post-processing,
rendering and service limits, read strictly (an unknown key or model is an error naming the file)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Mapping

from labkit.configfile import check_keys, read_yaml_mapping
from labkit.errors import DataError
from labkit.pipeline.models import REGISTRY


@dataclass(frozen=True)
class DetectorConfig:
    name: str
    weights: str | None = None
    conf: float = 0.25
    iou: float = 0.7
    max_det: int = 100
    agnostic: bool = False


@dataclass(frozen=True)
class SegmenterConfig:
    name: str
    weights: str | None = None


@dataclass(frozen=True)
class RenderConfig:
    show_masks: bool = True
    show_ids: bool = True


@dataclass(frozen=True)
class ServeConfig:
    max_bytes: int = 8_000_000
    max_pixels: int = 16_000_000
    session_ttl_s: float = 300.0


@dataclass(frozen=True)
class PipelineConfig:
    """Every knob of a pipeline run; the whole object goes into the run manifest."""

    detector: DetectorConfig
    segmenter: SegmenterConfig | None = None
    tracker: dict[str, Any] | None = None
    seed: int = 0
    device: str = "cpu"
    fps: float = 25.0
    batch: int = 4
    render: RenderConfig = field(default_factory=RenderConfig)
    serve: ServeConfig = field(default_factory=ServeConfig)
    source: str = "<memory>"

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out.pop("source")
        return out


def _section(cls: type, values: Any, key: str, source: str, role: str | None = None) -> Any:
    check_keys(values, cls.__dataclass_fields__, kind=key, source=source)
    if role is not None:
        if "name" not in values:
            raise DataError(f"'{key}' needs a model 'name'", source=source)
        name = values["name"]
        known = sorted(n for n, r in REGISTRY.items() if r == role)
        if name not in known:
            raise DataError(f"{key}: unknown model {name!r}; known {role}s: {known}", source=source)
    try:
        return cls(**values)
    except TypeError as exc:
        raise DataError(f"{key}: bad value ({exc})", source=source) from exc


def _tracker(value: Any, source: str) -> dict[str, Any]:
    """The tracker's settings: a mapping of :class:`labkit.track.config.TrackConfig` fields, or
    the path of a track YAML (relative to the config's folder, else to ``configs/``)."""
    from labkit.configfile import configs_dir
    from labkit.track.config import TrackConfig

    if isinstance(value, str):
        candidates = [Path(value)] if Path(value).is_absolute() else [
            Path(source).parent / value, configs_dir() / value]
        path = next((p for p in candidates if p.is_file()), None)
        if path is None:
            raise DataError(f"tracker: no such track config {value!r}", source=source)
        return TrackConfig.load(path).to_dict()
    if not isinstance(value, Mapping):
        raise DataError("tracker: give a mapping of TrackConfig fields, a track YAML path or null", source=source)
    try:
        return TrackConfig.from_mapping(value, source=source).to_dict()
    except DataError as exc:
        raise DataError(f"tracker: {exc}") from exc


def load_config(config: str | Path | Mapping[str, Any], *, source: str | None = None) -> PipelineConfig:
    """Read a capstone config from a YAML path or a mapping."""
    if isinstance(config, Mapping):
        values, src = dict(config), source or "<memory>"
    else:
        values, src = read_yaml_mapping(config), str(config)
    check_keys(values, set(PipelineConfig.__dataclass_fields__) - {"source"}, kind="pipeline", source=src)
    if "detector" not in values:
        raise DataError("the config needs a 'detector' section", source=src)
    out = dict(values)
    if values.get("tracker") is not None:
        out["tracker"] = _tracker(values["tracker"], src)
    out["detector"] = _section(DetectorConfig, values["detector"], "detector", src, "detector")
    if values.get("segmenter") is not None:
        out["segmenter"] = _section(SegmenterConfig, values["segmenter"], "segmenter", src, "segmenter")
    out["render"] = _section(RenderConfig, values.get("render") or {}, "render", src)
    out["serve"] = _section(ServeConfig, values.get("serve") or {}, "serve", src)
    for key, kind, low in (("seed", int, 0), ("batch", int, 1), ("fps", (int, float), 1)):
        if key in out and (isinstance(out[key], bool) or not isinstance(out[key], kind) or out[key] < low):
            raise DataError(f"'{key}' must be a number >= {low}, got {out[key]!r}", source=src)
    if out.get("device", "cpu") not in ("cpu", "cuda", "auto"):
        raise DataError(f"'device' must be cpu, cuda or auto, got {out['device']!r}", source=src)
    return PipelineConfig(**out, source=src)


def resolve_weights(cfg: PipelineConfig, weights: str | None) -> str | None:
    """A ``weights`` path of the config, relative paths read from the config file's folder."""
    if weights is None or Path(weights).is_absolute() or cfg.source == "<memory>":
        return weights
    return str(Path(cfg.source).parent / weights)


def budget_config(config: str | Path | Mapping[str, Any]) -> dict[str, Any]:
    """The mapping of a capstone config with each model's checkpoint taken from
    :func:`labkit.models.load` of its registry name, which under ``LABKIT_BUDGET=ci`` loads the
    tiny variant (``detect-base`` -> ``detect-tiny``); the model names follow. Lessons run the
    same config at both budgets this way; an explicit ``weights`` entry is kept as it is."""
    from labkit.models import load

    values = dict(config) if isinstance(config, Mapping) else dict(read_yaml_mapping(config))
    for role in ("detector", "segmenter"):
        section = values.get(role)
        if section is None or section.get("weights") is not None:
            continue
        model = load(section["name"], progress=False)
        values[role] = {**section, "name": model.name, "weights": str(model.weights)}
    return values
