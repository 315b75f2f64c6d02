"""Record a chapter's measured ``make course`` run and write it into the chapter README.

Two steps, so that a README states only what a run measured and a test can prove it:

``record``: from a run's ``artifacts/course_summary.json`` (the chapter's notebooks: status, seconds,
peak memory, budget, machine load, commit) and its metric log ``artifacts/metrics/<log>.json`` (the
keys the lessons logged, selected by shell patterns), write a small record to commit, e.g.
``benchmarks/results/course_05_robustness.json``. Every notebook of the chapter must have run at
the budget asked for (``--budget``, default ``full``), else nothing is written.

``write``: render a record as Markdown between ``<!-- course-run:start -->`` and
``<!-- course-run:end -->`` in the chapter README (``--check``: exit 1 when the README differs).

``record-course`` / ``write-course``: the same for the whole ``make course`` run (its timed set-up
steps from ``course_summary.json``'s ``setup``, each chapter's minutes and peak memory, the disk it
used), e.g. ``benchmarks/results/make_course.json``, written into the top-level README between
``<!-- make-course:start -->`` and ``<!-- make-course:end -->``.

Run: ``.venv/bin/python scripts/course_table.py record --chapter 05_robustness --log robustness
--keys 'l1_*_s3_AP' 'l4_*' --out benchmarks/results/course_05_robustness.json``, then
``.venv/bin/python scripts/course_table.py write --record benchmarks/results/course_05_robustness.json``.
"""

from __future__ import annotations

import argparse
import fnmatch
import json
import sys
import textwrap
import time
from pathlib import Path
from typing import Any

from labkit.course import with_marked_block
from labkit.data.coco import read_json

REPO = Path(__file__).resolve().parents[1]
START, END = "<!-- course-run:start -->", "<!-- course-run:end -->"
COURSE_START, COURSE_END = "<!-- make-course:start -->", "<!-- make-course:end -->"


def make_record(summary: dict[str, Any], metrics: dict[str, Any], *, chapter: str, log: str,
                patterns: list[str], budget: str = "full") -> dict[str, Any]:
    """The record of ``chapter`` from a course summary and the chapter's metric log ``metrics``.

    A :class:`ValueError` when the summary has no notebook of the chapter, when one ran at another
    budget (or did not say), or when a pattern selects no logged key."""
    rows = [r for r in summary.get("notebooks", []) if Path(r.get("path", "")).parent.name == chapter]
    if not rows:
        raise ValueError(f"no notebook of {chapter} in the summary")
    other = [f"{Path(r['path']).name} ({r.get('budget', 'budget not recorded')})" for r in rows if r.get("budget") != budget]
    if other:
        raise ValueError(f"not every notebook of {chapter} ran at the {budget} budget: {', '.join(other)}")
    chosen: dict[str, Any] = {}
    for pattern in patterns:
        keys = sorted(k for k in metrics if fnmatch.fnmatchcase(k, pattern))
        if not keys:
            raise ValueError(f"pattern {pattern!r} selects no key of the metric log {log}")
        chosen.update({k: metrics[k] for k in keys})
    notebooks = [{"lesson": Path(r["path"]).stem, "status": r["status"], "seconds": r["seconds"],
                  "peak_rss_mb": r["peak_rss_mb"], "machine": r.get("machine"), "git_commit": r.get("git_commit"),
                  "finished_unix": r.get("finished_unix")} for r in rows]
    return {"chapter": chapter, "budget": budget, "metric_log": f"artifacts/metrics/{log}.json",
            "notebooks": notebooks, "metrics": chosen}


def _value(value: Any) -> str:
    return f"{value:.4g}" if isinstance(value, float) else "n/a" if value is None else str(value)


def render(record: dict[str, Any]) -> str:
    """The Markdown block (markers excluded) for ``record``."""
    rows = record["notebooks"]
    finished = [r["finished_unix"] for r in rows if r.get("finished_unix")]
    when = time.strftime("%Y-%m-%d", time.gmtime(max(finished))) if finished else "an unrecorded date"
    commits = sorted({(r.get("git_commit") or "unknown")[:12] for r in rows})
    total = sum(r["seconds"] for r in rows)
    intro = (f"Measured by `make course` (`scripts/run_course.py`) at the {record['budget']} budget on {when}, "
             f"commit {', '.join(commits)}; {len(rows)} notebooks, {total / 60:.1f} min in all. The load average "
             "is the machine's when each notebook finished: above the core count, other work shared the CPU "
             f"and the seconds are longer than on a quiet machine. Metric values: `{record['metric_log']}`.")
    lines = [textwrap.fill(intro, 104, break_on_hyphens=False, break_long_words=False), "",
             "| lesson | status | seconds | peak MiB | cores | load average |", "| --- | --- | ---: | ---: | ---: | ---: |"]
    for r in rows:
        machine = r.get("machine") or {}
        lines.append(f"| {r['lesson']} | {r['status']} | {r['seconds']:.0f} | {r['peak_rss_mb']:.0f} "
                     f"| {_value(machine.get('cpus'))} | {_value(machine.get('load_average'))} |")
    lines += ["", "| key | value |", "| --- | ---: |"]
    lines += [f"| `{k}` | {_value(v)} |" for k, v in record["metrics"].items()]
    return "\n".join(lines)


def make_course_record(summary: dict[str, Any], *, budget: str = "full") -> dict[str, Any]:
    """The record of a whole ``make course`` run: set-up steps, chapters, disk, machine.

    The chapters are the totals ``scripts/run_course.py`` wrote (``chapters``). A :class:`ValueError`
    when the summary has no timed set-up steps (a run of ``scripts/run_course.py`` without ``make
    course``), no notebook, a notebook at another budget, or no per-chapter totals."""
    setup, rows = summary.get("setup") or [], summary.get("notebooks") or []
    if not setup:
        raise ValueError("the summary has no timed set-up steps ('setup'): record a run of `make course`")
    if not rows:
        raise ValueError("the summary has no notebook")
    other = [Path(r["path"]).name for r in rows if r.get("budget") != budget]
    if other:
        raise ValueError(f"not every notebook ran at the {budget} budget: {', '.join(other)}")
    chapters = summary.get("chapters") or {}
    if not chapters or any("ok" not in ch for ch in chapters.values()):
        raise ValueError("the summary has no per-chapter totals with an 'ok' count ('chapters'): "
                         "run the notebooks with this version of scripts/run_course.py")
    loads = [r["machine"]["load_average"] for r in rows if r.get("machine")]
    return {"budget": budget, "setup": setup, "chapters": chapters, "disk_mb": summary.get("disk_mb", {}),
            "cpus": max((r["machine"]["cpus"] for r in rows if r.get("machine")), default=None),
            "load_average": [min(loads), max(loads)] if loads else None,
            "git_commit": sorted({(r.get("git_commit") or "unknown") for r in rows}),
            "finished_unix": max(r.get("finished_unix") or 0 for r in rows)}


def render_course(record: dict[str, Any]) -> str:
    """The Markdown block (markers excluded) for a whole-course ``record``."""
    setup_s = sum(step["seconds"] for step in record["setup"])
    chapters = record["chapters"]
    notebooks_s = sum(ch["seconds"] for ch in chapters.values())
    total, ok = sum(ch["notebooks"] for ch in chapters.values()), sum(ch["ok"] for ch in chapters.values())
    load = record["load_average"]
    when = time.strftime("%Y-%m-%d", time.gmtime(record["finished_unix"]))
    intro = (f"Measured on {when} (commit {', '.join(c[:12] for c in record['git_commit'])}): a fresh clone, "
             f"`make course` at the {record['budget']} budget on {_value(record['cpus'])} CPU cores, load average "
             f"{load[0]:.1f}-{load[1]:.1f} while the notebooks ran. {ok} of {total} notebooks ok; "
             f"{(setup_s + notebooks_s) / 60:.1f} min in all: set-up {setup_s / 60:.1f} min, notebooks "
             f"{notebooks_s / 60:.1f} min (a second run reuses the set-up and takes the notebooks' time).")
    lines = [textwrap.fill(intro, 104, break_on_hyphens=False, break_long_words=False), "",
             "| step | minutes | peak MiB |", "| --- | ---: | ---: |"]
    lines += [f"| set-up: `make {step['step']}` | {step['seconds'] / 60:.1f} | |" for step in record["setup"]]
    lines += [f"| {name} ({ch['ok']}/{ch['notebooks']} ok) | {ch['seconds'] / 60:.1f} | {ch['peak_rss_mb']:.0f} |"
              for name, ch in chapters.items()]
    disk = record["disk_mb"]
    if disk:
        lines += ["", "Disk after the run (MiB): " + ", ".join(f"{k} {_value(v if v is None else round(v))}"
                                                            for k, v in disk.items()) + "."]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    steps = parser.add_subparsers(dest="step", required=True)
    rec = steps.add_parser("record", help="write a chapter's record from a run's artifacts")
    rec.add_argument("--chapter", required=True, help="chapter folder, e.g. 05_robustness")
    rec.add_argument("--log", required=True, help="metric log name: artifacts/metrics/<log>.json")
    rec.add_argument("--keys", nargs="+", required=True, help="shell patterns of the logged keys to keep")
    rec.add_argument("--budget", default="full")
    rec.add_argument("--artifacts", type=Path, default=None, help="default: the artifacts folder")
    rec.add_argument("--out", type=Path, required=True)
    wr = steps.add_parser("write", help="write a record into its chapter README")
    wr.add_argument("--record", type=Path, required=True)
    wr.add_argument("--readme", type=Path, default=None, help="default: notebooks/<chapter>/README.md")
    wr.add_argument("--check", action="store_true", help="only report whether the README is current")
    rc = steps.add_parser("record-course", help="write the record of a whole `make course` run")
    rc.add_argument("--budget", default="full")
    rc.add_argument("--artifacts", type=Path, default=None, help="default: the artifacts folder")
    rc.add_argument("--out", type=Path, required=True)
    wc = steps.add_parser("write-course", help="write a whole-course record into the top-level README")
    wc.add_argument("--record", type=Path, required=True)
    wc.add_argument("--readme", type=Path, default=REPO / "README.md")
    wc.add_argument("--check", action="store_true", help="only report whether the README is current")
    args = parser.parse_args(argv)
    if args.step in ("record", "record-course") and args.artifacts is None:
        from labkit.artifacts import artifacts_dir

        args.artifacts = artifacts_dir()
    try:
        if args.step == "record-course":
            record = make_course_record(read_json(args.artifacts / "course_summary.json"), budget=args.budget)
            args.out.parent.mkdir(parents=True, exist_ok=True)
            args.out.write_text(json.dumps(record, indent=2) + "\n", encoding="utf-8")
            print(f"wrote {args.out}")
            return 0
        if args.step == "record":
            record = make_record(read_json(args.artifacts / "course_summary.json"),
                                 read_json(args.artifacts / "metrics" / f"{args.log}.json"),
                                 chapter=args.chapter, log=args.log, patterns=args.keys, budget=args.budget)
            args.out.parent.mkdir(parents=True, exist_ok=True)
            args.out.write_text(json.dumps(record, indent=2) + "\n", encoding="utf-8")
            print(f"wrote {args.out}")
            return 0
        record = read_json(args.record)
        if args.step == "write-course":
            readme, block, what = args.readme, (COURSE_START, COURSE_END, render_course(record)), "make course"
        else:
            readme = args.readme or REPO / "notebooks" / record["chapter"] / "README.md"
            block, what = (START, END, render(record)), record["chapter"]
        text = readme.read_text(encoding="utf-8")
        new = with_marked_block(text, *block, str(readme))
    except (ValueError, KeyError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    if args.check:
        print(f"{readme}: {'current' if new == text else 'out of date'}")
        return 0 if new == text else 1
    readme.write_text(new, encoding="utf-8")
    print(f"wrote the measured run of {what} into {readme}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
