"""Write Chapter 4's measured tracking tables into the READMEs from a ``benchmarks/tracking.py`` record.

Two blocks, each between its markers, so the READMEs state only what a run measured:

* ``<!-- tracking-detectors:start -->`` ... ``end`` in ``notebooks/04_tracking/README.md``: the
  default config fed by the simulated and by the course base detector on the embedded val sequences,
  beside each detector's AP50 (``embedded_val.by_detector``);
* ``<!-- tracking-peers:start -->`` ... ``end`` in that README and in the top-level ``README.md``:
  labkit's default against the peer trackers with their library defaults on the same detections
  (``tud_campus``, ``tud_stadtmitte_simulated``): HOTA, MOTA, IDF1, ID switches and frames/s per
  tracker, which has the highest HOTA, labkit's motion-only frames/s against the fastest peer, and
  the course ReID's ms per crop (``reid``).

``--bench`` defaults to the committed record ``benchmarks/results/bench_tracking.json``; ``--check``
exits 1 when either README differs from what it would write.

Run: ``.venv/bin/python scripts/tracking_table.py [--bench FILE] [--readme FILE] [--top-readme FILE] [--check]``
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
PEERS_START, PEERS_END = "<!-- tracking-peers:start -->", "<!-- tracking-peers:end -->"
RECORD = REPO / "benchmarks" / "results" / "bench_tracking.json"
LABKIT = "labkit default (motion-only)"


def _num(value: Any) -> str:
    return "n/a" if value is None else f"{value:.3f}" if isinstance(value, float) else str(value)


def _when(bench: dict[str, Any]) -> str:
    made = bench.get("manifest", {}).get("created_unix")
    return time.strftime("%Y-%m-%d", time.gmtime(made)) if made is not None else "unknown date"


def _fill(text: str) -> str:
    return textwrap.fill(text, 104, break_on_hyphens=False, break_long_words=False)


def render(bench: dict[str, Any], source: str) -> str:
    """The Markdown block (markers excluded) for the ``embedded_val`` section of ``bench``."""
    section = bench.get("embedded_val") or {}
    rows = section.get("by_detector")
    if not rows:
        why = section.get("skipped", "no embedded_val.by_detector section (run benchmarks/tracking.py)")
        raise ValueError(f"{source}: nothing to write: {why}")
    when = _when(bench)
    sequences = sorted({name for row in rows.values() for name in row["per_sequence"]})
    intro = (f"Measured by `benchmarks/tracking.py` on {when} (`{source}`, key `embedded_val.by_detector`): the "
             f"default tracker config on the embedded val sequences ({', '.join(sequences)}), scored with TrackEval "
             "(no preprocessing); AP and AP50 are COCO's, of the same detections the tracker received, against "
             "every ground-truth box of those frames.")
    lines = [_fill(intro), "",
             "| detector | AP50 | AP | HOTA | MOTA | IDF1 | ID switches |", "| --- | ---: | ---: | ---: | ---: | ---: | ---: |"]
    for name, row in rows.items():
        det, comb = row["detections"], row["combined"]
        lines.append(f"| {name} | {_num(det['AP50'])} | {_num(det['AP'])} | {_num(comb['HOTA'])} | {_num(comb['MOTA'])} "
                     f"| {_num(comb['IDF1'])} | {_num(comb['IDSW'])} |")
    return "\n".join(lines)


def _peer_table(key: str, section: dict[str, Any], source: str) -> list[str]:
    """One sequence's rows, then which tracker has the highest HOTA and labkit's frames/s against the
    fastest peer's."""
    rows = section.get("results")
    if not rows or LABKIT not in rows or "HOTA" not in rows[LABKIT]:
        why = section.get("skipped", f"no {key}.results with a scored '{LABKIT}' row (run benchmarks/tracking.py)")
        raise ValueError(f"{source}: nothing to write: {why}")
    title = f"{section['sequence']}, {section['frames']} frames, {section['detections']} detections (`{key}`):"
    lines = [_fill(title), "",
             "| tracker | library | HOTA | MOTA | IDF1 | ID switches | frames/s |",
             "| --- | --- | ---: | ---: | ---: | ---: | ---: |"]
    for name, row in rows.items():
        if "HOTA" not in row:
            lines.append(f"| {name} | {row.get('error', 'not run')} | | | | | |")
            continue
        library = f"{row['package']} {row['version']}" if row["version"] else row["package"]
        lines.append(f"| {name} | {library} | {_num(row['HOTA'])} | {_num(row['MOTA'])} | {_num(row['IDF1'])} "
                     f"| {_num(row['IDSW'])} | {row['frames_per_second']:.0f} |")
    scored = {name: row for name, row in rows.items() if "HOTA" in row}
    top = max(scored, key=lambda name: scored[name]["HOTA"])
    peers = [name for name in scored if name != LABKIT]
    verdict = (f"Highest HOTA: {top}, {_num(scored[top]['HOTA'])}; labkit's default "
               f"{'is' if top == LABKIT else 'is not'} the highest.")
    if peers:
        fastest = max(peers, key=lambda name: scored[name]["frames_per_second"])
        ours, theirs = scored[LABKIT]["frames_per_second"], scored[fastest]["frames_per_second"]
        verdict += (f" labkit's motion-only update loop: {ours:.0f} frames/s, "
                    f"{'at least as fast as' if ours >= theirs else 'slower than'} the fastest peer, {fastest}, "
                    f"at {theirs:.0f} frames/s.")
    return lines + ["", _fill(verdict)]


def render_peers(bench: dict[str, Any], source: str) -> str:
    """The Markdown block (markers excluded) for the peer comparison and the ReID cost of ``bench``."""
    load = bench.get("load_average", {}).get("start")
    machine = (f", load average {load[0]:.2f} / {load[1]:.2f} / {load[2]:.2f} (1 / 5 / 15 min) at its start on "
               f"{bench.get('cpus')} CPUs" if load else "")
    repeats = bench.get("manifest", {}).get("config", {}).get("repeats")
    intro = (f"Measured by `benchmarks/tracking.py` on {_when(bench)} (`{source}`{machine}): every tracker with its "
             "library's defaults on the same detections, scored with TrackEval (MOT15 preprocessing); frames/s is "
             f"the update loop alone on those detections, best of {repeats} runs in the same process, so only "
             "comparable within this run.")
    lines = [_fill(intro)]
    for key in ("tud_campus", "tud_stadtmitte_simulated"):
        lines += [""] + _peer_table(key, bench.get(key) or {}, source)
    reid = bench.get("reid") or {}
    if "ms_per_crop" not in reid:
        raise ValueError(f"{source}: no reid.ms_per_crop: {reid.get('skipped', 'no reid section')}")
    lines += ["", _fill(f"The course ReID (`{reid['weights']}`) costs {reid['ms_per_crop']:.2f} ms per crop "
                        f"({reid['val_crops']} val crops, best of 3; the colour histogram "
                        f"{reid['histogram_ms_per_crop']:.3f} ms).")]
    return "\n".join(lines)


def _update(readme: Path, blocks: list[tuple[str, str, str]]) -> tuple[str, str]:
    """``readme``'s text now and with each ``(start, end, block)`` written between its markers."""
    text = readme.read_text(encoding="utf-8")
    new = text
    for start, end, block in blocks:
        new = with_marked_block(new, start, end, block, str(readme))
    return text, new


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bench", type=Path, default=RECORD, help="default: benchmarks/results/bench_tracking.json")
    parser.add_argument("--readme", type=Path, default=REPO / "notebooks" / "04_tracking" / "README.md")
    parser.add_argument("--top-readme", type=Path, default=REPO / "README.md")
    parser.add_argument("--check", action="store_true", help="only report whether the READMEs are current")
    args = parser.parse_args(argv)
    if not args.bench.is_file():
        print(f"{args.bench} not found: run benchmarks/tracking.py first", file=sys.stderr)
        return 1
    try:
        shown = args.bench.relative_to(REPO) if args.bench.is_relative_to(REPO) else args.bench
        bench = json.loads(args.bench.read_text(encoding="utf-8"))
        detectors, peers = render(bench, str(shown)), render_peers(bench, str(shown))
        updates = {args.readme: _update(args.readme, [(START, END, detectors), (PEERS_START, PEERS_END, peers)]),
                   args.top_readme: _update(args.top_readme, [(PEERS_START, PEERS_END, peers)])}
    except json.JSONDecodeError as exc:
        print(f"{shown}: not JSON ({exc})", file=sys.stderr)
        return 1
    except ValueError as exc:
        print(exc, file=sys.stderr)
        return 1
    except (KeyError, TypeError) as exc:
        print(f"{shown}: not a benchmarks/tracking.py record (missing or malformed {exc})", file=sys.stderr)
        return 1
    if args.check:
        for readme, (text, new) in updates.items():
            print(f"{readme}: {'current' if new == text else 'out of date'}")
        return 0 if all(new == text for text, new in updates.values()) else 1
    for readme, (_, new) in updates.items():
        readme.write_text(new, encoding="utf-8")
        print(f"wrote the measured tracking tables into {readme}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
