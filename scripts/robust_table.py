"""Write Chapter 5's measured runtime and INT8 tables into its README from the committed records.

``benchmarks/robust_int8.py`` (PyTorch vs ONNX Runtime fp32 vs INT8 on the base detector: images/s
and AP50, clean and corrupted) and ``benchmarks/robust_int8_effects.py`` (what INT8 does to tracking
and to the U-Net) write their figures under ``artifacts/``; their committed copies are
``benchmarks/results/bench_robust_int8.json`` and ``benchmarks/results/bench_robust_int8_effects.json``.
This script renders both as Markdown between ``<!-- robust-int8:start -->`` and
``<!-- robust-int8:end -->`` in ``notebooks/05_robustness/README.md``, so the README states only
what a run measured. ``--check`` exits 1 when the README differs from what it would write.

Run: ``.venv/bin/python scripts/robust_table.py [--runtimes FILE] [--effects FILE] [--readme FILE] [--check]``
"""

from __future__ import annotations

import argparse
import sys
import textwrap
import time
from pathlib import Path
from typing import Any

from labkit.course import with_marked_block
from labkit.data.coco import read_json

REPO = Path(__file__).resolve().parents[1]
START, END = "<!-- robust-int8:start -->", "<!-- robust-int8:end -->"
RUNTIMES = {"pytorch": "PyTorch", "onnx_fp32": "ONNX Runtime fp32", "onnx_int8": "ONNX Runtime INT8"}


def _num(value: Any, digits: int = 3) -> str:
    return "n/a" if value is None else f"{value:.{digits}f}"


def _signed(value: Any, digits: int = 3) -> str:
    return "n/a" if value is None else f"{value:+d}" if isinstance(value, int) else f"{value:+.{digits}f}"


def _fill(text: str) -> str:
    return textwrap.fill(text, 104, break_on_hyphens=False, break_long_words=False)


def render_runtimes(record: dict[str, Any]) -> list[str]:
    """The detector's runtimes table (images/s, AP50 per condition, file size) and the targets."""
    acc, lat = record["bench_robustness.int8"], record["bench_latency.runtimes"]
    conditions = list(acc["scores"]["onnx_fp32"])
    created = lat.get("manifest", {}).get("created_unix")
    when = f"on {time.strftime('%Y-%m-%d', time.gmtime(created))}" if created else "on an unrecorded date"
    load = lat.get("load_average_1min") or [None, None]
    lines = [_fill(f"`benchmarks/robust_int8.py`, measured {when} (load average "
                   f"{_num(load[0], 1)} before, {_num(load[-1], 1)} after, on the machine that ran it): the shipped "
                   f"base detector on the same {len(acc['val_images'])} val images, batch {lat['batch']}, "
                   f"{lat['threads']} thread each, best of the timed passes taken round-robin; INT8 calibrated on "
                   f"{acc['calibration_images']} train images."), "",
             "| runtime | images/s | " + " | ".join(f"AP50 {c}" for c in conditions) + " | file |",
             "| --- | ---: | " + " | ".join("---:" for _ in conditions) + " | ---: |"]
    for key, name in RUNTIMES.items():
        scores = acc["scores"][key]
        lines.append(f"| {name} | {lat['throughput'][key]['images_per_s']:.2f} | "
                     + " | ".join(_num(scores[c]["AP50"]) for c in conditions)
                     + f" | {lat['file_bytes'][key] / 1e6:.1f} MB |")
    target = lat["targets"]
    change = acc["AP50_change_vs_onnx_fp32"]
    lines += ["", _fill(
        f"Against the targets: ONNX fp32 / PyTorch {lat['onnx_fp32_vs_pytorch']:.2f}x (target {target['onnx_fp32_vs_pytorch']}x: "
        f"{'met' if lat['onnx_fp32_vs_pytorch'] >= target['onnx_fp32_vs_pytorch'] else 'not met'}); INT8 / fp32 "
        f"{lat['onnx_int8_vs_onnx_fp32']:.2f}x (target {target['onnx_int8_vs_onnx_fp32']}x: "
        f"{'met' if lat['onnx_int8_vs_onnx_fp32'] >= target['onnx_int8_vs_onnx_fp32'] else 'not met'}); the INT8 change "
        "in AP50 is " + ", ".join(f"{_signed(change[c]['onnx_int8'])} {c}" for c in conditions)
        + f" (target: a drop of at most {acc['target_int8_AP50_drop']}: "
        f"{'met' if acc['meets_int8_AP50_target'] else 'not met'}).")]
    return lines


def render_effects(record: dict[str, Any]) -> list[str]:
    """What INT8 changed in tracking (HOTA, IDF1, ID switches) and in the U-Net (mIoU), per condition."""
    track, seg = record["tracking"], record["segmentation"]
    frames = sum(track["frames_per_sequence"])
    lines = ["", _fill(
        f"`benchmarks/robust_int8_effects.py` (load average {_num(record['load_average_1min'][0], 1)} at its start): "
        f"the same INT8 detector feeding the default tracker on the val sequences ({', '.join(track['sequences'])}, "
        f"{frames} frames, detections at conf {track['conf']}), and the shipped U-Net exported and quantized the same "
        f"way on {len(seg['val_images'])} val images; each corruption is applied to every frame, seeded."), "",
        "| condition | HOTA fp32 -> INT8 | IDF1 fp32 -> INT8 | ID switches fp32 -> INT8 | U-Net mIoU fp32 -> INT8 |",
        "| --- | ---: | ---: | ---: | ---: |"]
    for cond in record["conditions"]:
        t32, t8 = track["scores"]["onnx_fp32"][cond], track["scores"]["onnx_int8"][cond]
        s32, s8 = seg["scores"]["onnx_fp32"][cond], seg["scores"]["onnx_int8"][cond]
        lines.append(f"| {cond} | {t32['HOTA']:.3f} -> {t8['HOTA']:.3f} | {t32['IDF1']:.3f} -> {t8['IDF1']:.3f} "
                     f"| {t32['IDSW']} -> {t8['IDSW']} | {s32['mean_iou']:.4f} -> {s8['mean_iou']:.4f} |")
    speed = seg["throughput"]
    lines += ["", _fill(f"U-Net at batch {seg['batch']}: {speed['onnx_fp32']['images_per_s']:.1f} images/s fp32, "
                        f"{speed['onnx_int8']['images_per_s']:.1f} INT8 ({seg['int8_vs_fp32_speed']:.2f}x), files "
                        f"{seg['file_bytes']['onnx_fp32'] / 1e6:.1f} MB -> {seg['file_bytes']['onnx_int8'] / 1e6:.1f} MB. "
                        "One run with one corruption seed per condition: read a change of a few ID switches or a few "
                        "thousandths of HOTA as one observation, not as a measured effect.")]
    return lines


def render(runtimes: dict[str, Any], effects: dict[str, Any]) -> str:
    """The Markdown block (markers excluded) for the two records."""
    return "\n".join(render_runtimes(runtimes) + render_effects(effects))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runtimes", type=Path, default=REPO / "benchmarks" / "results" / "bench_robust_int8.json")
    parser.add_argument("--effects", type=Path, default=REPO / "benchmarks" / "results" / "bench_robust_int8_effects.json")
    parser.add_argument("--readme", type=Path, default=REPO / "notebooks" / "05_robustness" / "README.md")
    parser.add_argument("--check", action="store_true", help="only report whether the README is current")
    args = parser.parse_args(argv)
    try:
        runtimes, effects = read_json(args.runtimes), read_json(args.effects)
        try:
            block = render(runtimes, effects)
        except (KeyError, TypeError, IndexError) as exc:
            raise ValueError(f"{args.runtimes} / {args.effects}: not a record of the INT8 benchmarks (missing {exc})") from exc
        text = args.readme.read_text(encoding="utf-8")
        new = with_marked_block(text, START, END, block, str(args.readme))
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    if args.check:
        print(f"{args.readme}: {'current' if new == text else 'out of date'}")
        return 0 if new == text else 1
    args.readme.write_text(new, encoding="utf-8")
    print(f"wrote the measured INT8 tables into {args.readme}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
