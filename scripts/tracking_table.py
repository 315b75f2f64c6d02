"""Write the Chapter 4 README's detector table from a measured ``artifacts/bench_tracking.json``.

``benchmarks/tracking.py`` (``--sections embedded_val`` is enough) tracks the embedded val sequences
with the default config fed by the simulated detector and by the course base detector, and records
each detector's AP50 on the same frames under ``embedded_val.by_detector``. This script renders that
section as a Markdown table between ``<!-- tracking-detectors:start -->`` and
``<!-- tracking-detectors:end -->`` in ``notebooks/04_tracking/README.md``, so the README states
only what a run measured. ``--check`` exits 1 when the README differs from what it would write.

Run: ``.venv/bin/python scripts/tracking_table.py [--bench FILE] [--readme FILE] [--check]``
"""

from __future__ import annotations

import argparse
import json
import sys
import textwrap
import time
from pathlib import Path
from typing import Any

from labkit.course import with_marked_block

REPO = Path(__file__).resolve().parents[1]
START, END = "<!-- tracking-detectors:start -->", "<!-- tracking-detectors:end -->"


def _num(value: Any) -> str:
    return "n/a" if value is None else f"{value:.3f}" if isinstance(value, float) else str(value)


def render(bench: dict[str, Any], source: str) -> str:
    """The Markdown block (markers excluded) for the ``embedded_val`` section of ``bench``."""
    section = bench.get("embedded_val") or {}
    rows = section.get("by_detector")
    if not rows:
        why = section.get("skipped", "no embedded_val.by_detector section (run benchmarks/tracking.py)")
        raise ValueError(f"{source}: nothing to write: {why}")
    made = bench.get("manifest", {}).get("created_unix")
    when = time.strftime("%Y-%m-%d", time.gmtime(made)) if made is not None else "unknown date"
    sequences = sorted({name for row in rows.values() for name in row["per_sequence"]})
    intro = (f"Measured by `benchmarks/tracking.py` on {when} (`{source}`, key `embedded_val.by_detector`): the "
             f"default tracker config on the embedded val sequences ({', '.join(sequences)}), scored with TrackEval "
             "(no preprocessing); AP and AP50 are COCO's, of the same detections the tracker received, against "
             "every ground-truth box of those frames.")
    lines = [textwrap.fill(intro, 104, break_on_hyphens=False, break_long_words=False), "",
             "| detector | AP50 | AP | HOTA | MOTA | IDF1 | ID switches |", "| --- | ---: | ---: | ---: | ---: | ---: | ---: |"]
    for name, row in rows.items():
        det, comb = row["detections"], row["combined"]
        lines.append(f"| {name} | {_num(det['AP50'])} | {_num(det['AP'])} | {_num(comb['HOTA'])} | {_num(comb['MOTA'])} "
                     f"| {_num(comb['IDF1'])} | {_num(comb['IDSW'])} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bench", type=Path, default=None, help="default: artifacts/bench_tracking.json")
    parser.add_argument("--readme", type=Path, default=REPO / "notebooks" / "04_tracking" / "README.md")
    parser.add_argument("--check", action="store_true", help="only report whether the README is current")
    args = parser.parse_args(argv)
    if args.bench is None:
        from labkit.artifacts import artifacts_dir

        args.bench = artifacts_dir() / "bench_tracking.json"
    if not args.bench.is_file():
        print(f"{args.bench} not found: run benchmarks/tracking.py --sections embedded_val first", file=sys.stderr)
        return 1
    try:
        shown = args.bench.relative_to(REPO) if args.bench.is_relative_to(REPO) else args.bench
        block = render(json.loads(args.bench.read_text(encoding="utf-8")), str(shown))
        text = args.readme.read_text(encoding="utf-8")
        new = with_marked_block(text, START, END, block, str(args.readme))
    except ValueError as exc:
        print(exc, file=sys.stderr)
        return 1
    if args.check:
        print(f"{args.readme}: {'current' if new == text else 'out of date'}")
        return 0 if new == text else 1
    args.readme.write_text(new, encoding="utf-8")
    print(f"wrote the detector table into {args.readme}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
