"""The top-level command line: help, exit codes, and the error path."""

import subprocess
import sys

import pytest

from labkit.cli import COMMAND_MODULES, build_parser, main


def test_every_command_has_help(capsys):
    parser = build_parser()
    commands = parser._subparsers._group_actions[0].choices  # noqa: SLF001 - argparse keeps them here
    assert {"env", "data", "eval"} <= set(commands)
    for name in commands:
        with pytest.raises(SystemExit) as exc:
            main([name, "--help"])
        assert exc.value.code == 0
    assert len(COMMAND_MODULES) == len(set(COMMAND_MODULES))


def test_no_command_is_bad_usage(capsys):
    assert main([]) == 2


def test_unknown_option_is_bad_usage():
    with pytest.raises(SystemExit) as exc:
        main(["data", "validate", "--no-such-option"])
    assert exc.value.code == 2


def test_python_dash_m_entry_point():
    run = subprocess.run([sys.executable, "-m", "labkit", "--help"], capture_output=True, text=True)
    assert run.returncode == 0 and "labkit" in run.stdout
