"""The capstone spec and the report inputs a run cannot measure by itself.

A capstone spec (YAML, ``labkit run --spec FILE``) says what the system is for and how success is
judged, before any result exists::

    scenario: "count and follow the shapes on a fixed camera, 25 fps, 320x240"
    success:                       # testable statements: a measured value, a comparison, a target
      - {metric: box.AP50, op: ">=", target: 0.5}
      - {metric: tracking.IDSW, op: "<=", target: 3}
      - {metric: latency.fps, op: ">=", target: 15}
    protocol:                      # how the numbers are produced (no number is meaningful without it)
      splits: "test sequences only; thresholds chosen on val"
      iou_thresholds: "box AP over IoU .50:.05:.95 and at .50; tracking matches at IoU .5"
      confidence_policy: "one threshold, conf 0.25, chosen on val, applied to every metric"
      class_aware: true
    dataset_card: card.md          # optional: a dataset card (labkit.data.card), relative to this file
    ablations:                     # optional, 3 to 6: each one question answered by a finished run
      - {name: "conf 0.5", question: "does a stricter threshold cut ID switches?", run: runs/conf05,
         metrics: [box.AP50, tracking.IDSW]}
    weaknesses: ["thin rods are missed when they are seen end-on"]

A metric name is a dotted path into the run's measured values (:func:`measured_values`):
``box.AP``, ``mask.AP50``, ``semantic.mean_iou``, ``tracking.HOTA``, ``latency.fps``,
``latency.detect.p95_ms`` ... An ablation gives its numbers either as a run folder (``run``: its
``metrics.json`` and ``latency.json`` are read) or, from Python, as ``results`` (a mapping
of measured values from a run the caller made). Every problem is a :class:`DataError` naming the
file and the entry.
"""

from __future__ import annotations

import json
import math
import operator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

from labkit.configfile import check_keys, read_yaml_mapping
from labkit.errors import DataError

OPS = {">=": operator.ge, "<=": operator.le, ">": operator.gt, "<": operator.lt}
PROTOCOL_KEYS = ("splits", "iou_thresholds", "confidence_policy", "class_aware")
SPEC_KEYS = ("scenario", "success", "protocol", "dataset_card", "ablations", "weaknesses")
MIN_ABLATIONS, MAX_ABLATIONS = 3, 6


@dataclass(frozen=True)
class SuccessMetric:
    """One testable requirement: ``metric op target`` (e.g. ``tracking.HOTA >= 0.55``)."""

    metric: str
    op: str
    target: float

    def met(self, value: float | None) -> bool | None:
        """Whether ``value`` meets the target; ``None`` when the value was not measured."""
        return None if value is None else bool(OPS[self.op](value, self.target))


@dataclass(frozen=True)
class Ablation:
    """One small experiment: a question and the measured values of the run that answers it."""

    name: str
    question: str
    values: dict[str, float | None]
    run: str | None = None


@dataclass(frozen=True)
class CapstoneSpec:
    scenario: str
    success: tuple[SuccessMetric, ...]
    protocol: dict[str, Any]
    dataset_card: str | None = None
    ablations: tuple[Ablation, ...] = ()
    weaknesses: tuple[str, ...] = ()
    source: str = "<memory>"


def measured_values(metrics: Mapping[str, Any] | None, latency: Mapping[str, Any] | None) -> dict[str, float | None]:
    """Every number of a run as ``dotted.name -> value``: ``box.*``, ``mask.*``, ``semantic.*``
    (per-class tables left out), ``tracking.*`` from ``metrics.json``; ``latency.fps``,
    ``latency.wall_s`` and ``latency.<stage>.p50_ms|p95_ms|mean_ms`` from ``latency.json``."""
    out: dict[str, float | None] = {}
    for group in ("box", "mask", "semantic", "tracking"):
        for key, value in ((metrics or {}).get(group) or {}).items():
            if value is None or (isinstance(value, (int, float)) and not isinstance(value, bool)):
                out[f"{group}.{key}"] = None if value is None else float(value)
    if latency:
        out["latency.fps"], out["latency.wall_s"] = latency.get("fps"), latency.get("wall_s")
        for stage, values in latency.get("stages", {}).items():
            for key in ("p50_ms", "p95_ms", "mean_ms"):
                out[f"latency.{stage}.{key}"] = values[key]
    return out


def _text(value: Any, what: str, src: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise DataError(f"{what} must be a non-empty text, got {value!r}", source=src)
    return value.strip()


def _success(items: Any, src: str) -> tuple[SuccessMetric, ...]:
    if not isinstance(items, list) or not items:
        raise DataError("'success' must list at least one {metric, op, target} requirement", source=src)
    out = []
    for i, item in enumerate(items):
        where = f"success[{i}]"
        check_keys(item, ("metric", "op", "target"), kind=where, source=src)
        if set(item) != {"metric", "op", "target"}:
            raise DataError(f"{where} needs metric, op and target, got {sorted(item)}", source=src)
        if item["op"] not in OPS:
            raise DataError(f"{where}: op must be one of {list(OPS)}, got {item['op']!r}", source=src)
        target = item["target"]
        if isinstance(target, bool) or not isinstance(target, (int, float)) or not math.isfinite(target):
            raise DataError(f"{where}: target must be a finite number, got {target!r}", source=src)
        out.append(SuccessMetric(_text(item["metric"], f"{where} metric", src), item["op"], float(target)))
    return tuple(out)


def _protocol(values: Any, src: str) -> dict[str, Any]:
    check_keys(values, PROTOCOL_KEYS, kind="protocol", source=src)
    missing = [k for k in PROTOCOL_KEYS if k not in values]
    if missing:
        raise DataError(f"protocol misses {missing}: a metric goal means nothing without its protocol", source=src)
    if not isinstance(values["class_aware"], bool):
        raise DataError(f"protocol.class_aware must be true or false, got {values['class_aware']!r}", source=src)
    return {k: values[k] if k == "class_aware" else _text(values[k], f"protocol.{k}", src) for k in PROTOCOL_KEYS}


def read_run_values(run_dir: str | Path) -> dict[str, float | None]:
    """:func:`measured_values` of a finished run folder (its ``metrics.json``, when there is
    one, and ``latency.json``)."""
    folder = Path(run_dir)
    loaded = []
    for name in ("metrics.json", "latency.json"):
        path = folder / name
        if name == "latency.json" and not path.is_file():
            raise DataError("not a finished pipeline run (no latency.json)", source=str(folder))
        try:
            loaded.append(json.loads(path.read_text(encoding="utf-8")) if path.is_file() else None)
        except (OSError, json.JSONDecodeError) as exc:
            raise DataError(f"cannot read run results ({exc})", source=str(path)) from exc
    return measured_values(*loaded)


def _ablations(items: Any, base: Path, src: str) -> tuple[Ablation, ...]:
    if items is None or items == []:
        return ()
    if not isinstance(items, list) or not MIN_ABLATIONS <= len(items) <= MAX_ABLATIONS:
        count = len(items) if isinstance(items, list) else type(items).__name__
        raise DataError(f"'ablations' must list {MIN_ABLATIONS} to {MAX_ABLATIONS} experiments, got {count}", source=src)
    out = []
    for i, item in enumerate(items):
        where = f"ablations[{i}]"
        check_keys(item, ("name", "question", "run", "results", "metrics"), kind=where, source=src)
        if ("run" in item) == ("results" in item):
            raise DataError(f"{where}: give exactly one of 'run' (a run folder) or 'results' (measured values)",
                            source=src)
        run = None
        if "run" in item:
            run = str(Path(item["run"]) if Path(item["run"]).is_absolute() else base / item["run"])
            values = read_run_values(run)
        elif isinstance(item["results"], Mapping):
            values = dict(item["results"])
        else:
            raise DataError(f"{where}: 'results' must map metric names to numbers", source=src)
        names = item.get("metrics", list(values))
        unknown = [m for m in names if m not in values]
        if not isinstance(names, list) or not names or unknown:
            raise DataError(f"{where}: metrics {unknown or names!r} not among the run's values {sorted(values)}",
                            source=src)
        out.append(Ablation(_text(item.get("name"), f"{where} name", src), _text(item.get("question"),
                            f"{where} question", src), {m: values[m] for m in names}, run))
    return tuple(out)


def load_spec(spec: str | Path | Mapping[str, Any], *, source: str | None = None) -> CapstoneSpec:
    """Read and check a capstone spec (a YAML path or a mapping; see the module docstring).
    Relative ``dataset_card`` and ablation ``run`` paths are read from the spec file's folder
    (from the working directory for a mapping)."""
    if isinstance(spec, Mapping):
        values, src, base = dict(spec), source or "<memory>", Path.cwd()
    else:
        values, src, base = read_yaml_mapping(spec), str(spec), Path(spec).parent
    check_keys(values, SPEC_KEYS, kind="capstone spec", source=src)
    for key in ("scenario", "success", "protocol"):
        if key not in values:
            raise DataError(f"the capstone spec needs '{key}'", source=src)
    card = values.get("dataset_card")
    if card is not None:
        path = Path(_text(card, "dataset_card", src))
        card = str(path if path.is_absolute() else base / path)
        if not Path(card).is_file():
            raise DataError(f"dataset_card: no such file {card}", source=src)
    weaknesses = values.get("weaknesses") or []
    if not isinstance(weaknesses, list):
        raise DataError("'weaknesses' must be a list of sentences", source=src)
    return CapstoneSpec(_text(values["scenario"], "scenario", src), _success(values["success"], src),
                        _protocol(values["protocol"], src), card, _ablations(values.get("ablations"), base, src),
                        tuple(_text(w, f"weaknesses[{i}]", src) for i, w in enumerate(weaknesses)), src)


def _fmt(value: Any) -> str:
    if value is None:
        return "not measured"
    return f"{value:.3f}" if isinstance(value, float) else str(value)


def spec_section(spec: CapstoneSpec, measured: Mapping[str, float | None]) -> list[str]:
    """Markdown lines: the spec (scenario, protocol, each requirement with its measured value and
    verdict)."""
    p = spec.protocol
    lines = ["## Capstone spec", "", f"**Scenario.** {spec.scenario}", "", "**Protocol.**", "",
             f"- splits: {p['splits']}", f"- IoU thresholds: {p['iou_thresholds']}",
             f"- confidence policy: {p['confidence_policy']}",
             f"- evaluation: {'class-aware' if p['class_aware'] else 'class-agnostic'}", "",
             "| requirement | target | measured | met |", "|---|---|---|---|"]
    for s in spec.success:
        value = measured.get(s.metric)
        verdict = {True: "yes", False: "**no**", None: "not measured"}[s.met(value)]
        lines.append(f"| `{s.metric}` | {s.op} {s.target:g} | {_fmt(value)} | {verdict} |")
    return lines + [""]


def evidence_sections(spec: CapstoneSpec) -> list[str]:
    """Markdown lines: the dataset card (checked complete by :func:`labkit.data.card.check_card`),
    the ablations table and the known weaknesses."""
    lines = ["## Dataset card", ""]
    if spec.dataset_card is None:
        lines += ["No dataset card given (`dataset_card` in the spec).", ""]
    else:
        from labkit.data.card import check_card

        problems = [f.message for f in check_card(spec.dataset_card) if f.severity == "error"]
        if problems:
            raise DataError(f"the dataset card is unfinished: {'; '.join(problems)}", source=spec.dataset_card)
        body = Path(spec.dataset_card).read_text(encoding="utf-8").strip().splitlines()
        lines += [("##" + ln if ln.startswith("#") else ln) for ln in body] + [""]  # below this section
    lines += ["## Ablations", ""]
    if not spec.ablations:
        lines += ["No ablations given (`ablations` in the spec).", ""]
    else:
        columns = list(dict.fromkeys(m for a in spec.ablations for m in a.values))
        lines += ["| experiment | question | " + " | ".join(f"`{c}`" for c in columns) + " | run |",
                  "|" + "---|" * (len(columns) + 3)]
        lines += [f"| {a.name} | {a.question} | " + " | ".join(_fmt(a.values.get(c)) if c in a.values else "-"
                                                               for c in columns) + f" | {a.run or 'given'} |"
                  for a in spec.ablations]
        lines.append("")
    lines += ["## Known weaknesses", ""]
    lines += [f"- {w}" for w in spec.weaknesses] if spec.weaknesses else ["None stated (`weaknesses` in the spec)."]
    return lines + [""]


def latency_sheet(latency: Mapping[str, Any], spec: CapstoneSpec | None = None) -> list[str]:
    """Markdown lines: frames per second and per-stage p50 / p95 / mean ms, with the spec's
    latency requirements (``latency.*`` metrics) and whether they hold."""
    lines = ["## Latency sheet", "", f"{latency['frames']} frames in {_fmt(latency['wall_s'])} s "
             f"({_fmt(latency['fps'])} frames per second, all stages, one CPU thread).", "",
             "| stage | p50 ms | p95 ms | mean ms | frames |", "|---|---|---|---|---|"]
    lines += [f"| {k} | {v['p50_ms']:.2f} | {v['p95_ms']:.2f} | {v['mean_ms']:.2f} | {v['frames']} |"
              for k, v in latency["stages"].items()]
    lines.append("")
    if spec is not None:
        measured = measured_values(None, latency)
        for s in (s for s in spec.success if s.metric.startswith("latency.")):
            verdict = {True: "met", False: "NOT met", None: "not measured"}[s.met(measured.get(s.metric))]
            lines.append(f"- `{s.metric}` {s.op} {s.target:g}: {_fmt(measured.get(s.metric))}, {verdict}")
        lines.append("")
    return lines


def check_requirements(spec: CapstoneSpec, measured: Mapping[str, float | None]) -> list[dict[str, Any]]:
    """One row per requirement: metric, op, target, measured value, met (``None``: not measured)."""
    return [{"metric": s.metric, "op": s.op, "target": s.target, "value": measured.get(s.metric),
             "met": s.met(measured.get(s.metric))} for s in spec.success]

