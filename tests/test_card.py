"""Dataset-card schema, renderer, parser and checker (labkit.data.card)."""

from __future__ import annotations

import json

import pytest

from labkit.data.card import (
    REQUIRED_SECTIONS, DatasetCard, MetricSpec, check_card, parse_card, render_card, save_card,
)


def _card(**changes) -> DatasetCard:
    base = dict(
        name="shapes", version="1.2", summary="Procedural shapes on textured backgrounds.",
        sources=["procedural generator (labkit.data.synth)"], capture_devices=["virtual camera c1, 320x240"],
        label_definitions={"disc": "a filled circle", "rod": "a bar 3-6 px wide"},
        edge_case_policy=["masks cover the visible part only", "dense clumps are one iscrowd region"],
        annotation_types=["boxes (COCO xywh)", "instance masks (RLE)", "track ids"],
        split_unit="scene", split_strategy="group split by scene, 70/15/15",
        known_artifacts=["motion blur (kernel length, angle recorded)"],
        metrics=[MetricSpec("mAP", "COCO bbox, IoU 0.50:0.05:0.95, maxDets 100"), MetricSpec("HOTA", "alpha 0.05:0.95")],
        licence="CC0-1.0", contact="course team <course@example.org>",
    )
    return DatasetCard(**{**base, **changes})


def _codes(findings) -> list[tuple[str, str]]:
    return [(f.code, f.section) for f in findings]


def test_rendered_card_has_the_required_headings_and_passes():
    md = render_card(_card())
    assert [line[3:] for line in md.splitlines() if line.startswith("## ")] == list(REQUIRED_SECTIONS)
    assert check_card(md) == []


def test_parse_round_trips_metadata_and_metrics():
    card = _card()
    parsed = parse_card(render_card(card))
    assert (parsed["name"], parsed["version"], parsed["licence"], parsed["contact"]) == (
        card.name, card.version, card.licence, card.contact)
    assert parsed["metrics"] == [{"name": m.name, "settings": m.settings} for m in card.metrics]
    assert set(parsed["sections"]) == set(REQUIRED_SECTIONS)
    assert "a bar 3-6 px wide" in parsed["sections"]["Label definitions and edge-case policy"]


def test_dict_and_json_forms(tmp_path):
    as_dict = _card().to_dict()
    as_dict["metrics"] = ["mAP: IoU 0.5", {"name": "MOTA", "settings": "IoU 0.5"}]
    assert check_card(as_dict) == []
    save_card(as_dict, tmp_path / "card.json")
    assert json.loads((tmp_path / "card.json").read_text())["metrics"][0] == {"name": "mAP", "settings": "IoU 0.5"}
    assert check_card(tmp_path / "card.json") == []
    save_card(as_dict, tmp_path / "dataset_card.md")
    assert check_card(tmp_path) == [] and check_card(str(tmp_path / "dataset_card.md")) == []
    with pytest.raises(ValueError, match="unknown dataset-card field"):
        DatasetCard.from_dict({"name": "x", "licence_typo": "MIT"})
    assert ("unknown-field", "licence_typo") in _codes(check_card({"name": "x", "licence_typo": "MIT"}))


def test_empty_fields_are_empty_sections():
    findings = check_card(_card(known_artifacts=[], metrics=[]))
    assert _codes(findings) == [("empty-section", "Known artifacts"), ("empty-section", "Metrics to report")]


def test_findings_on_a_hand_written_card():
    md = """# Dataset card: toy
**Version:** 0.1
License: MIT

## Sources and capture devices
TODO: list the cameras
## Label definitions and edge-case policy
<describe each class here>
## Annotation Types
<!-- nothing yet -->
## Split strategy and unit
random 80/20
## Metrics to report
- **mAP**: IoU 0.50:0.05:0.95, maxDets 100
- HOTA
- accuracy (macro-averaged)
- mAP@0.5

```python
# not a heading
```
"""
    findings = check_card(md)
    codes = _codes(findings)
    assert ("placeholder", "Sources and capture devices") in codes
    assert ("placeholder", "Label definitions and edge-case policy") in codes
    assert ("empty-section", "Annotation types") in codes  # heading matched case-insensitively; comment ignored
    assert ("missing-section", "Known artifacts") in codes
    assert ("split-unit-missing", "Split strategy") in codes
    bad = [f.message for f in findings if f.code == "metric-without-settings"]
    assert len(bad) == 2 and "'HOTA'" in bad[0] and "'accuracy'" in bad[1]
    assert [(f.code, f.section, f.severity) for f in findings if f.severity == "warning"] == [
        ("missing-metadata", "contact", "warning")]
    parsed = parse_card(md)
    assert parsed["licence"] == "MIT" and parsed["name"] == "toy"
    assert parsed["metrics"][-1] == {"name": "mAP", "settings": "0.5"}


def test_metrics_section_needs_bullets():
    md = render_card(_card()).replace("- **mAP**: COCO bbox, IoU 0.50:0.05:0.95, maxDets 100\n- **HOTA**: alpha 0.05:0.95",
                                      "We report mAP.")
    assert _codes(check_card(md)) == [("metric-without-settings", "Metrics to report")]


def test_bad_inputs():
    with pytest.raises(ValueError, match="needs a 'name'"):
        render_card({"version": "1"})
    with pytest.raises(ValueError, match="must be Markdown text"):
        check_card(42)
    with pytest.raises(ValueError, match="a metric must be"):
        DatasetCard.from_dict({"name": "x", "metrics": [3]})


def test_metric_settings_and_finding_messages():
    """Settings in parentheses lose the closing one; a card without a metrics section has no
    metrics (and reports the section missing); findings say what to write."""
    md = """# Dataset card: toy
## Split strategy
random 80/20
## Metrics to report
- accuracy (macro-averaged)
- mAP (IoU 0.5)
"""
    parsed = parse_card(md)
    assert parsed["metrics"] == [{"name": "accuracy", "settings": "macro-averaged"}, {"name": "mAP", "settings": "IoU 0.5"}]
    messages = {f.code: f.message for f in check_card(md)}
    assert messages["split-unit-missing"] == ("state the unit that was split (e.g. 'Unit: scene'): images of one unit never "
                                              "share a split")
    assert messages["metric-without-settings"] == ("metric 'accuracy' settings 'macro-averaged' give no number "
                                                   "(IoU threshold, maxDets, tolerance ...)")
    no_metrics = parse_card("# Dataset card: toy\n## Known artifacts\n- blur\n")
    assert no_metrics["metrics"] == [] and no_metrics["sections"] == {"Known artifacts": "- blur"}
    assert ("missing-section", "Metrics to report") in _codes(check_card("# Dataset card: toy\n## Known artifacts\n- blur\n"))
