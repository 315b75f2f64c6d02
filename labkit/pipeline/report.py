"""The run report: ``report.md`` and the same content as ``report.html``, written from a run's
summary (every number in it comes from the run's own files: metrics.json, latency.json)."""

from __future__ import annotations

import html
import re
from pathlib import Path
from typing import Any, Mapping

from labkit.pipeline.diagnose import diagnosis_sections
from labkit.pipeline.spec import CapstoneSpec, evidence_sections, latency_sheet, measured_values, spec_section


def _num(value: Any, digits: int = 3) -> str:
    return "n/a" if value is None else f"{value:.{digits}f}" if isinstance(value, float) else str(value)


def _table(header: list[str], rows: list[list[Any]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(_num(v) for v in row) + " |" for row in rows]
    return lines + [""]


def report_markdown(summary: Mapping[str, Any], spec: CapstoneSpec | None = None) -> str:
    """The report as Markdown: the capstone spec with each requirement's measured value (when
    ``spec``), command, source, models (checkpoint sha256, preprocessing, post-processing),
    metrics, slices and failure gallery (when the summary has them), dataset card, ablations and
    known weaknesses (when ``spec``), the latency sheet and the list of outputs."""
    src = summary["source"]
    lines = ["# Pipeline run report", ""]
    if spec is not None:
        lines += spec_section(spec, measured_values(summary.get("metrics"), summary["latency"]))
    lines += ["## Command", "", "```", summary["command"], "```", "",
             "## Source", "", f"{src['kind']} `{src['path']}`: {summary['frames']} frames at {_num(src['fps'], 2)} fps, "
             f"{summary['objects']} objects exported.", "", "## Models", ""]
    rows = []
    for role, m in summary["models"].items():
        if role == "tracker":
            continue
        inp = m["input"]
        prep = (f"letterbox {inp['size']}, pad {inp['pad_value']}, {inp['channel_order']}, "
                f"mean {inp['mean']}, std {inp['std']}")
        rows.append([role, m["name"], f"`{m['sha256'][:16]}`", prep, str(m.get("postprocess", "-"))])
    lines += _table(["stage", "model", "checkpoint sha256", "preprocessing", "post-processing"], rows)
    tracker = summary["models"].get("tracker")
    lines += ["Tracker: none (detections only).", ""] if tracker is None else [
        "Tracker: `labkit.track.Tracker` with " + ", ".join(f"{k}={v}" for k, v in tracker.items()) + ".", ""]
    metrics = summary.get("metrics")
    lines += ["## Metrics", ""]
    if metrics is None:
        lines += ["No ground truth for this source: no metrics.", ""]
    else:
        lines += [f"Ground truth: `{metrics['ground_truth']}` ({metrics['frames']} frames).", ""]
        keys = ("AP", "AP50", "AP75", "APs", "APm", "APl", "num_gt", "num_predictions")
        rows = [[kind] + [metrics[kind][k] for k in keys] for kind in ("box", "mask") if kind in metrics]
        lines += _table(["AP type", "AP@[.5:.95]", "AP50", "AP75", "AP small", "AP medium", "AP large",
                         "ground truth", "predictions"], rows)
        if "semantic" in metrics:
            sem = metrics["semantic"]
            lines += [f"Semantic label maps: mIoU {_num(sem['mean_iou'])}, mean Dice {_num(sem['mean_dice'])}, "
                      f"pixel accuracy {_num(sem['pixel_accuracy'])}.", ""]
        if "tracking" in metrics:
            lines += _table(list(metrics["tracking"]), [list(metrics["tracking"].values())])
    if "slices" in summary:
        d = summary["diagnosis"]
        lines += diagnosis_sections(summary["slices"], summary["failures"], d["folder"], iou=d["iou"],
                                    class_aware=d["class_aware"])
    if spec is not None:
        lines += evidence_sections(spec)
    lines += latency_sheet(summary["latency"], spec)
    lines += ["## Outputs", ""] + [f"- `{name}`" for name in summary["outputs"]] + [""]
    return "\n".join(lines)


def markdown_to_html(text: str, title: str = "Pipeline run report") -> str:
    """HTML for the Markdown subset :func:`report_markdown` writes (headings, fenced code,
    pipe tables, bullets, images on their own line, paragraphs with inline code and bold)."""
    def inline(s: str) -> str:
        parts = html.escape(s).split("`")
        text = "".join(f"<code>{p}</code>" if i % 2 else p for i, p in enumerate(parts))
        return re.sub(r"\*\*(.+?)\*\*", r"<strong>\1</strong>", text)

    out, lines, i = [], text.splitlines(), 0
    while i < len(lines):
        line = lines[i]
        if line.startswith("```"):
            j = lines.index("```", i + 1)
            out.append("<pre><code>" + html.escape("\n".join(lines[i + 1:j])) + "</code></pre>")
            i = j + 1
            continue
        if line.startswith("|"):
            rows = []
            while i < len(lines) and lines[i].startswith("|"):
                rows.append([c.strip() for c in lines[i].strip("|").split("|")])
                i += 1
            head, body = rows[0], rows[2:]
            out.append("<table><tr>" + "".join(f"<th>{inline(c)}</th>" for c in head) + "</tr>"
                       + "".join("<tr>" + "".join(f"<td>{inline(c)}</td>" for c in r) + "</tr>" for r in body)
                       + "</table>")
            continue
        image = re.fullmatch(r"!\[([^\]]*)\]\(([^)\s]+)\)", line.strip())
        if image:
            out.append(f'<p><img src="{html.escape(image[2])}" alt="{html.escape(image[1])}"></p>')
        elif line.startswith("#"):
            level = len(line) - len(line.lstrip("#"))
            out.append(f"<h{level}>{inline(line[level:].strip())}</h{level}>")
        elif line.startswith("- "):
            out.append(f"<ul><li>{inline(line[2:])}</li></ul>")
        elif line.strip():
            out.append(f"<p>{inline(line)}</p>")
        i += 1
    style = "body{font-family:sans-serif;max-width:60em}table{border-collapse:collapse}td,th{border:1px solid #999;padding:2px 6px}"
    return (f"<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>{html.escape(title)}</title>"
            f"<style>{style}</style></head><body>\n" + "\n".join(out) + "\n</body></html>\n")


def write_report(out_dir: str | Path, summary: Mapping[str, Any], spec: CapstoneSpec | None = None) -> tuple[Path, Path]:
    """Write ``report.md`` and ``report.html`` into ``out_dir``."""
    out = Path(out_dir)
    text = report_markdown(summary, spec)
    (out / "report.md").write_text(text, encoding="utf-8")
    (out / "report.html").write_text(markdown_to_html(text), encoding="utf-8")
    return out / "report.md", out / "report.html"
