"""``labkit eval detection|segmentation|tracking``: score predictions against ground truth."""

from __future__ import annotations

import argparse
import importlib

#: Modules that each add one ``labkit eval <task>`` sub-command via ``register(eval_subparsers)``.
EVAL_MODULES = (
    "labkit.metrics.cli_detection",
    "labkit.metrics.cli_segmentation",
    "labkit.metrics.cli_tracking",
)


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("eval", help="evaluate predictions with the reference metrics")
    sub = parser.add_subparsers(dest="eval_task", metavar="TASK", required=True)
    for name in EVAL_MODULES:
        importlib.import_module(name).register(sub)
