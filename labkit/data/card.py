"""Dataset cards: a schema, a Markdown renderer, a parser and a checker.

A dataset card documents where the data came from and how to use it fairly (after "Datasheets
for Datasets", Gebru et al., CACM 2021, and the Hugging Face dataset-card template). The course's
card has six required sections, :data:`REQUIRED_SECTIONS`, plus name, version, licence and
contact. :func:`render_card` writes a :class:`DatasetCard` (or a dict with its fields) as
Markdown; :func:`parse_card` reads any Markdown card back into a dict; :func:`check_card`
lists what is missing or unfinished.
"""

from __future__ import annotations

import json
import re
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any, Mapping

from labkit.data.coco import read_json
from labkit.errors import DataError

#: Section headings every card must have (level-2 headings; a heading that starts with one of
#: these, case-insensitively, counts, e.g. "## Split strategy and unit").
REQUIRED_SECTIONS = (
    "Sources and capture devices",
    "Label definitions and edge-case policy",
    "Annotation types",
    "Split strategy",
    "Known artifacts",
    "Metrics to report",
)
#: Metadata lines rendered as ``**Key:** value`` under the title; "License" is accepted too.
METADATA_KEYS = ("version", "licence", "contact")
#: Text that marks an unfinished card.
PLACEHOLDER = re.compile(r"\b(TODO|TBD|FIXME|XXX)\b|\?\?\?|lorem ipsum|<[^<>\n]*\b(fill|describe|insert|your|here)\b[^<>\n]*>",
                         re.IGNORECASE)
_METADATA_LINE = re.compile(r"^\s*\**\s*(version|licen[cs]e|contact)\s*(?::\s*\**|\**\s*:)\s*(.*?)\s*$", re.IGNORECASE)
_BULLET = re.compile(r"^\s*(?:[-*+]|\d+[.)])\s+(.*\S)\s*$")
_SETTINGS_SPLIT = re.compile(r"\s*(?::|—|–|\s-\s|\(|@)\s*")


@dataclass
class MetricSpec:
    """A metric and the settings needed to reproduce its number, e.g. ``MetricSpec("mAP",
    "COCO bbox, IoU 0.50:0.05:0.95, maxDets 100, all areas")``."""

    name: str
    settings: str = ""


@dataclass
class DatasetCard:
    """The card schema. Lists hold one bullet each; ``label_definitions`` maps class name to
    its definition."""

    name: str
    version: str = ""
    summary: str = ""
    sources: list[str] = field(default_factory=list)
    capture_devices: list[str] = field(default_factory=list)
    label_definitions: dict[str, str] = field(default_factory=dict)
    edge_case_policy: list[str] = field(default_factory=list)
    annotation_types: list[str] = field(default_factory=list)
    split_unit: str = ""
    split_strategy: str = ""
    known_artifacts: list[str] = field(default_factory=list)
    metrics: list[MetricSpec] = field(default_factory=list)
    licence: str = ""
    contact: str = ""

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "DatasetCard":
        """Build from a dict of the schema's fields. ``metrics`` entries may be MetricSpec,
        ``{"name", "settings"}`` dicts or ``"name: settings"`` strings. Unknown keys raise
        :class:`DataError`."""
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise DataError(f"unknown dataset-card field(s) {unknown}; the schema has {sorted(known)}")
        if not data.get("name"):
            raise DataError("a dataset card needs a 'name'")
        values = dict(data)
        values["metrics"] = [_metric(m) for m in values.get("metrics", [])]
        return cls(**values)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _metric(m: Any) -> MetricSpec:
    if isinstance(m, MetricSpec):
        return m
    if isinstance(m, Mapping):
        return MetricSpec(str(m.get("name", "")), str(m.get("settings", "")))
    if isinstance(m, str):
        name, _, settings = m.partition(":")
        return MetricSpec(name.strip(), settings.strip())
    raise DataError(f"a metric must be a MetricSpec, a dict or a 'name: settings' string, got {m!r}")


def _bullets(items: list[str]) -> list[str]:
    return [f"- {item}" for item in items]


def render_card(card: DatasetCard | Mapping[str, Any]) -> str:
    """The card as Markdown, with the :data:`REQUIRED_SECTIONS` headings in order. Empty
    fields give empty sections, which :func:`check_card` reports."""
    c = card if isinstance(card, DatasetCard) else DatasetCard.from_dict(card)
    meta = [f"**{k.capitalize()}:** {getattr(c, k)}" for k in METADATA_KEYS if getattr(c, k)]
    out = [f"# Dataset card: {c.name}", "", *[f"{m}  " for m in meta], ""]
    if c.summary:
        out += [c.summary, ""]
    sections = {
        "Sources and capture devices": [*_bullets([f"Source: {s}" for s in c.sources]),
                                        *_bullets([f"Capture device: {d}" for d in c.capture_devices])],
        "Label definitions and edge-case policy": [
            *_bullets([f"**{k}**: {v}" for k, v in c.label_definitions.items()]),
            *(["", "Edge cases:", "", *_bullets(c.edge_case_policy)] if c.edge_case_policy else [])],
        "Annotation types": _bullets(c.annotation_types),
        "Split strategy": [*([f"Unit: {c.split_unit}", ""] if c.split_unit else []),
                           *([c.split_strategy] if c.split_strategy else [])],
        "Known artifacts": _bullets(c.known_artifacts),
        "Metrics to report": _bullets([f"**{m.name}**: {m.settings}".rstrip(": ") for m in c.metrics]),
    }
    for heading, body in sections.items():
        out += [f"## {heading}", "", *body, ""]
    return "\n".join(out).rstrip() + "\n"


def _strip_comments(text: str) -> str:
    return re.sub(r"<!--.*?-->", "", text, flags=re.DOTALL)


def _canonical(heading: str) -> str | None:
    h = " ".join(heading.lower().split())
    return next((s for s in REQUIRED_SECTIONS if h.startswith(s.lower())), None)


def _parse_metric(line: str) -> dict[str, str]:
    text = line.replace("**", "").replace("`", "").strip()
    parts = _SETTINGS_SPLIT.split(text, maxsplit=1)
    name = parts[0].strip()
    settings = parts[1].strip().rstrip(")").strip() if len(parts) > 1 else ""
    return {"name": name, "settings": settings}


def parse_card(markdown: str) -> dict[str, Any]:
    """Read a Markdown card into ``{"name", "version", "licence", "contact", "sections",
    "metrics"}``.

    ``sections`` maps every level-2 heading (required ones under their canonical name from
    :data:`REQUIRED_SECTIONS`) to its body text; ``metrics`` has one ``{"name", "settings"}``
    per bullet of "Metrics to report" (settings follow the first ``:``, ``—``, `` - ``, ``(``
    or ``@``). HTML comments are ignored.
    """
    text = _strip_comments(markdown)
    result: dict[str, Any] = {"name": None, **{k: None for k in METADATA_KEYS}, "sections": {}, "metrics": []}
    current: str | None = None
    body: dict[str, list[str]] = {}
    in_code = False
    for line in text.splitlines():
        if line.lstrip().startswith("```"):
            in_code = not in_code
        heading = None if in_code else re.match(r"^(#{1,2})\s+(.*\S)\s*$", line)
        if heading and len(heading.group(1)) == 1:
            result["name"] = re.sub(r"^dataset card:\s*", "", heading.group(2), flags=re.IGNORECASE)
            current = None
            continue
        if heading:
            current = _canonical(heading.group(2)) or heading.group(2)
            body.setdefault(current, [])
            continue
        if current is None:
            meta = _METADATA_LINE.match(line)
            if meta:
                key = meta.group(1).lower().replace("license", "licence")
                result[key] = meta.group(2) or None
            continue
        body[current].append(line)
    result["sections"] = {k: "\n".join(v).strip() for k, v in body.items()}
    for line in result["sections"].get("Metrics to report", "").splitlines():
        bullet = _BULLET.match(line)
        if bullet:
            result["metrics"].append(_parse_metric(bullet.group(1)))
    return result


@dataclass
class CardFinding:
    """One problem of a card. ``severity`` is ``"error"`` (a required section missing, empty or
    unfinished; a metric without settings) or ``"warning"`` (missing name/version/licence/
    contact)."""

    code: str
    section: str
    message: str
    severity: str = "error"


def _read_card(card: str | Path | Mapping[str, Any] | DatasetCard) -> tuple[str, list[CardFinding]]:
    """Markdown text of any accepted card form, plus findings about the form itself."""
    if isinstance(card, (DatasetCard, Mapping)):
        if isinstance(card, Mapping):
            known = {f.name for f in fields(DatasetCard)}
            unknown = sorted(set(card) - known)
            pre = [CardFinding("unknown-field", k, f"'{k}' is not a card field ({sorted(known)})") for k in unknown]
            return render_card({k: v for k, v in card.items() if k in known} | {"name": card.get("name") or "?"}), pre
        return render_card(card), []
    if isinstance(card, Path) or (isinstance(card, str) and "\n" not in card and Path(card).exists()):
        path = Path(card)
        if path.is_dir():
            path = path / "dataset_card.md"
        if path.suffix == ".json":
            return _read_card(read_json(path))
        try:
            return path.read_text(encoding="utf-8"), []
        except OSError as exc:
            raise DataError(f"cannot read dataset card ({exc.strerror})", source=str(path)) from exc
    if isinstance(card, str):
        return card, []
    raise DataError(f"a dataset card must be Markdown text, a path, a dict or a DatasetCard, got {type(card).__name__}")


def check_card(card: str | Path | Mapping[str, Any] | DatasetCard) -> list[CardFinding]:
    """Everything unfinished about a card: missing, empty or placeholder (TODO, TBD, FIXME,
    ``???``, ``<fill in>``) sections, a split strategy that names no unit, metrics without settings or whose settings hold no number
    (an IoU threshold, maxDets, a tolerance ...), and missing metadata.

    ``card`` is Markdown text, a path (``.md``, a ``.json`` of schema fields, or a dataset folder
    holding ``dataset_card.md``), a dict of schema fields or a :class:`DatasetCard`.
    An empty list means the card is complete.
    """
    text, findings = _read_card(card)
    parsed = parse_card(text)
    for name in REQUIRED_SECTIONS:
        if name not in parsed["sections"]:
            findings.append(CardFinding("missing-section", name, f"no '## {name}' section"))
        elif not parsed["sections"][name]:
            findings.append(CardFinding("empty-section", name, f"section '{name}' is empty"))
    split_text = parsed["sections"].get("Split strategy", "")
    if split_text and not re.search(r"\bunits?\b", split_text, re.IGNORECASE):
        findings.append(CardFinding("split-unit-missing", "Split strategy",
                                    "state the unit that was split (e.g. 'Unit: scene'): images of one unit never "
                                    "share a split"))
    for name, body in parsed["sections"].items():
        for match in PLACEHOLDER.finditer(body):
            findings.append(CardFinding("placeholder", name, f"placeholder text {match.group(0)!r} in '{name}'"))
    for m in parsed["metrics"]:
        if not m["settings"]:
            findings.append(CardFinding("metric-without-settings", "Metrics to report",
                                        f"metric '{m['name']}' states no settings (IoU thresholds, maxDets, ...)"))
        elif not re.search(r"\d", m["settings"]):
            findings.append(CardFinding("metric-without-settings", "Metrics to report",
                                        f"metric '{m['name']}' settings '{m['settings']}' give no number "
                                        "(IoU threshold, maxDets, tolerance ...)"))
    if "Metrics to report" in parsed["sections"] and parsed["sections"]["Metrics to report"] and not parsed["metrics"]:
        findings.append(CardFinding("metric-without-settings", "Metrics to report",
                                    "list each metric as a bullet '- name: settings'"))
    for key in ("name", *METADATA_KEYS):
        if not parsed[key] or parsed[key] == "?":
            findings.append(CardFinding("missing-metadata", key, f"no {key} given", "warning"))
    return findings


def findings_to_dicts(findings: list[CardFinding]) -> list[dict[str, str]]:
    """Findings as plain dicts (for ``--json``)."""
    return [asdict(f) for f in findings]


def save_card(card: DatasetCard | Mapping[str, Any], path: str | Path) -> Path:
    """Render a card to ``path`` (``.md``) or dump its fields (``.json``)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    c = card if isinstance(card, DatasetCard) else DatasetCard.from_dict(card)
    text = json.dumps(c.to_dict(), indent=2) if path.suffix == ".json" else render_card(c)
    path.write_text(text, encoding="utf-8")
    return path
