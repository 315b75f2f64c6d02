"""``labkit`` / ``python -m labkit``: the course's command line.

Exit codes: 0 success, 1 findings or a failure (bad data, failed check), 2 bad usage.
Every command takes ``--json`` for machine-readable output on stdout.
Each command module registers itself through ``register(subparsers)`` and sets
``func(args) -> int`` as its handler.
"""

from __future__ import annotations

import argparse
import importlib
import json
import sys
from typing import Any, Callable, Sequence

from labkit.errors import DataError, LabkitError

#: Modules that add sub-commands (each defines ``register(subparsers)``).
COMMAND_MODULES = (
    "labkit.envcheck",
    "labkit.data.cli",
    "labkit.metrics.cli",
    "labkit.grading.cli",
    "labkit.detect.cli",
    "labkit.segment.cli",
    "labkit.track.cli",
    "labkit.pipeline.cli",
    "labkit.serve.cli",
    "labkit.robust.cli",
    "labkit.models.cli",
    "labkit.realdata",
)

EXIT_OK, EXIT_FINDINGS, EXIT_USAGE = 0, 1, 2


class UsageError(LabkitError):
    """The command line was wrong (missing file, bad option value): exit code 2."""


def emit(args: argparse.Namespace, payload: Any, render: Callable[[Any], str] | str) -> None:
    """Print ``payload`` as JSON when ``--json`` was given, else the human-readable rendering."""
    if getattr(args, "json", False):
        print(json.dumps(payload, indent=2, default=str))
    else:
        print(render if isinstance(render, str) else render(payload))


def add_json_flag(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true", help="print machine-readable JSON on stdout")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="labkit", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMAND_MODULES:
        importlib.import_module(name).register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not hasattr(args, "func"):
        parser.print_help(sys.stderr)
        return EXIT_USAGE
    try:
        return int(args.func(args) or 0)
    except UsageError as exc:
        print(f"labkit: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except DataError as exc:
        print(f"labkit: bad data: {exc}", file=sys.stderr)
        return EXIT_FINDINGS
    except LabkitError as exc:
        print(f"labkit: failed: {exc}", file=sys.stderr)
        return EXIT_FINDINGS


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
