"""What a corruption suite run leaves behind: JSON, a Markdown table, severity curves (PNG)."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping

from labkit.artifacts import write_json

SUITE_JSON, SUITE_MD, SUITE_PNG = "suite.json", "suite.md", "severity_curves.png"


def _cell(value: Any) -> str:
    return "–" if value is None else f"{value:.3f}"


def severity_table(result: Mapping[str, Any], metric: str) -> str:
    """Markdown: one row per kind, one column per severity (0 = clean), values of ``metric``."""
    sev = result["severities"] if result["kinds"] else []
    clean = next(r for r in result["rows"] if r["kind"] == "clean")
    lines = ["| kind | clean |" + "".join(f" severity {s} |" for s in sev), "|---|---:|" + "---:|" * len(sev)]
    by_key = {(r["kind"], r["severity"]): r for r in result["rows"]}
    for kind in result["kinds"]:
        cells = "".join(f" {_cell(by_key[(kind, s)][metric])} |" for s in sev)
        lines.append(f"| {kind} | {_cell(clean[metric])} |{cells}")
    if not result["kinds"]:
        lines.append(f"| (clean only) | {_cell(clean[metric])} |")
    return "\n".join(lines)


def ce_table(errors: Mapping[str, Any]) -> str:
    """Markdown: CE and relative CE per kind, then the means."""
    lines = ["| kind | CE | relative CE |", "|---|---:|---:|"]
    for kind, v in errors["per_kind"].items():
        lines.append(f"| {kind} | {_cell(v['CE'])} | {_cell(v['relative_CE'])} |")
    lines.append(f"| **mean** | **{_cell(errors['mCE'])}** | **{_cell(errors['relative_mCE'])}** |")
    return "\n".join(lines)


def slice_table(result: Mapping[str, Any]) -> str:
    """Markdown: the primary metric per slice bucket, clean and at each kind's highest severity."""
    metric = result["primary"]
    top = max(result["severities"]) if result["kinds"] else 0
    conditions = [("clean", 0)] + [(k, top) for k in result["kinds"]]
    rows: dict[tuple[str, str], dict[tuple[str, int], Any]] = {}
    counts: dict[tuple[str, str], Any] = {}
    for s in result["slices"]:
        key = (s["slice"], s["bucket"])
        rows.setdefault(key, {})[(s["kind"], s["severity"])] = s[metric]
        counts[key] = s["count"]
    head = ["clean"] + [f"{k} {top}" for k in result["kinds"]]
    lines = [f"| slice | bucket | n | {' | '.join(head)} |", "|---|---|---:|" + "---:|" * len(head)]
    for (name, bucket), values in rows.items():
        n = "" if counts[(name, bucket)] is None else str(counts[(name, bucket)])
        lines.append(f"| {name} | {bucket} | {n} | {' | '.join(_cell(values.get(c)) for c in conditions)} |")
    return "\n".join(lines)


def render_markdown(result: Mapping[str, Any]) -> str:
    """The whole report: metric tables, corruption errors (when a reference was given), slices."""
    parts = [f"# Corruption suite: {result['model']} ({result['task']})", "",
             f"{len(result['images'])} images of `{result['split_source']}`, seed {result['seed']}; "
             f"error = 1 - {result['primary']}.", ""]
    for metric in result["metrics"]:
        parts += [f"## {metric} vs severity", "", severity_table(result, metric), ""]
    errors = result.get("corruption_errors")
    if errors:
        parts += [f"## Corruption errors relative to {result['reference']}", "",
                  "CE_c = sum_s E(f) / sum_s E(ref), Hendrycks & Dietterich (ICLR 2019).", "", ce_table(errors), ""]
    if result["slices"]:
        parts += [f"## Slices ({result['primary']})", "", slice_table(result), ""]
    return "\n".join(parts)


def plot_severity(result: Mapping[str, Any], path: str | Path) -> Path:
    """One panel per metric: value vs severity (0 = clean) with one line per kind."""
    from matplotlib.figure import Figure

    metrics = result["metrics"]
    fig = Figure(figsize=(5 * len(metrics), 4))
    clean = next(r for r in result["rows"] if r["kind"] == "clean")
    for i, metric in enumerate(metrics):
        ax = fig.add_subplot(1, len(metrics), i + 1)
        for kind in result["kinds"]:
            pts = [(0, clean[metric])] + [(r["severity"], r[metric]) for r in result["rows"] if r["kind"] == kind]
            xs, ys = zip(*[(x, y) for x, y in pts if y is not None]) if any(y is not None for _, y in pts) else ((), ())
            ax.plot(xs, ys, marker="o", ms=3, label=kind)
        ax.set(xlabel="severity (0 = clean)", ylabel=metric, title=f"{result['model']}: {metric}",
               xticks=[0] + list(result["severities"]))
        ax.grid(alpha=0.3)
    if result["kinds"]:
        fig.axes[0].legend(fontsize=7)
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    return path


def write_report(result: Mapping[str, Any], out_dir: str | Path) -> dict[str, str]:
    """Write ``suite.json``, ``suite.md`` and ``severity_curves.png`` into ``out_dir``; their paths."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    write_json(out / SUITE_JSON, result)
    (out / SUITE_MD).write_text(render_markdown(result), encoding="utf-8")
    plot_severity(result, out / SUITE_PNG)
    return {"json": str(out / SUITE_JSON), "markdown": str(out / SUITE_MD), "figure": str(out / SUITE_PNG)}
