"""Mutation testing of labkit with mutmut: the share of planted bugs the tests catch, per module.

A mutant is a copy of one module with one small change (``<`` for ``<=``, ``+ 1`` for ``+ 2``, an
argument dropped, ...). A test suite that "kills" it fails on the change; a mutant that
survives points at behaviour no test pins down. The mutation score of a module is
killed / (mutants tried); mutants that no selected test even runs count as survivors.

For each module (one ``.py`` file) this script

1. copies ``labkit/``, ``tests/`` and the files the tests read into a scratch folder with a
   ``setup.cfg`` that tells mutmut to mutate only that file and to run only the tests that
   import it (plus those listed for it in the config), without the slow tests;
2. has mutmut generate every mutant, then runs a seeded sample of at most
   ``max_mutants_per_module`` of them (``--max-children`` workers, 2 by default);
3. records killed / survived / untested / timeout counts, the score and the surviving mutants'
   diffs in ``artifacts/mutation.json`` (merged by module, so runs on subsets add up).

Equivalent mutants (a change no test can detect because the behaviour is the same, e.g.
``float("nan")`` -> ``float("NAN")``) are listed by name with the reason in the config's
``equivalent`` map; a sampled survivor listed there counts as ``equivalent`` and leaves the
score's denominator. A listed mutant that a test kills is reported as an error (the list is stale).

The floor (``configs/mutation.yaml``: ``floor``, per-module ``floors``) is the score new code must
not lower; the exit status is 1 when a module is below its floor, 0 otherwise. Not part of
``make test``: it runs the tests once per mutant and takes a minute or more per module. Install
mutmut with ``pip install -e '.[mutation]'``.

    python scripts/mutation.py labkit/data/splits.py labkit/metrics   # files or folders
    python scripts/mutation.py                                          # the default scope
"""

from __future__ import annotations

import argparse
import atexit
import json
import os
import random
import re
import shutil
import subprocess
import sys
import tempfile
import time
from importlib.metadata import version
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from labkit.artifacts import write_json  # noqa: E402
from labkit.configfile import check_keys, read_yaml_mapping  # noqa: E402
from labkit.errors import DataError  # noqa: E402

CONFIG = REPO / "configs" / "mutation.yaml"
CONFIG_KEYS = ("scope", "floor", "floors", "max_mutants_per_module", "seed", "timeout_s", "skip", "tests",
               "exclude_tests", "pytest_args", "equivalent")
#: Copied next to the mutated package: what the selected tests read besides labkit/ and tests/.
ALSO_COPY = ("configs", "course.yaml", "pyproject.toml", "autograder", "notebooks")
#: mutmut's exit code of a mutant run -> our verdict (mutmut.stats.status_by_exit_code, grouped).
KILLED, SURVIVED, NO_TESTS, TIMEOUT = "killed", "survived", "no tests", "timeout"
#: A survivor listed under ``equivalent`` in the config: it behaves like the original (no test can
#: tell them apart), so it leaves the score's denominator; a listed mutant that is killed is an error.
EQUIVALENT = "equivalent"


def load_config(path: Path = CONFIG) -> dict:
    """The YAML settings (unknown keys are an error naming the file)."""
    values = read_yaml_mapping(path)
    check_keys(values, CONFIG_KEYS, kind="mutation", source=str(path))
    floor = values.get("floor")
    if not isinstance(floor, (int, float)) or not 0 <= floor <= 1:
        raise DataError(f"floor must be a fraction in [0, 1], got {floor!r}", source=str(path))
    for module, value in (values.get("floors") or {}).items():
        if not isinstance(value, (int, float)) or not 0 <= value <= 1:
            raise DataError(f"floors: {module} must be a fraction in [0, 1], got {value!r}", source=str(path))
    for name, why in (values.get("equivalent") or {}).items():
        if not isinstance(why, str) or not why.strip():
            raise DataError(f"equivalent: {name} needs the reason it cannot be killed", source=str(path))
    return values


def module_files(targets: list[str], skip: list[str]) -> list[Path]:
    """The ``.py`` files (repo-relative) of the given files and folders, minus ``skip`` globs.
    Folders that do not exist yet (e.g. a package still to be written) are left out."""
    files: list[Path] = []
    for target in targets:
        path = REPO / target
        if path.is_dir():
            files += sorted(p for p in path.rglob("*.py") if "__pycache__" not in p.parts)
        elif path.is_file() and path.suffix == ".py":
            files.append(path)
        elif not path.exists():
            print(f"[mutation] {target}: does not exist, left out", file=sys.stderr)
        else:
            raise SystemExit(f"{target}: not a Python file or folder")
    rel = [p.relative_to(REPO) for p in files]
    return [p for p in dict.fromkeys(rel) if not any(p.match(g) for g in skip) and p.name != "__main__.py"]


def dotted(path: Path) -> str:
    """``labkit/data/splits.py`` -> ``labkit.data.splits`` (a package's ``__init__`` -> the package)."""
    parts = list(path.with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def tests_for(path: Path, extra: dict, exclude: list[str]) -> list[str]:
    """Test files that import the module (its dotted name appears in them), plus those the
    config lists for the module or its folder, minus the ``exclude`` globs (tests of notebooks
    and graded labs, which need files outside labkit/ and tests/)."""
    name = dotted(path)
    pattern = re.compile(rf"\b{re.escape(name)}\b(?!\.\w)")
    found = [f"tests/{t.name}" for t in sorted((REPO / "tests").glob("test_*.py"))
             if pattern.search(t.read_text(encoding="utf-8"))]
    for key, listed in extra.items():
        if str(path) == key or str(path).startswith(key.rstrip("/") + "/"):
            for entry in listed:  # a path or a glob such as tests/test_metrics_*.py
                matches = sorted(str(p.relative_to(REPO)) for p in REPO.glob(entry)) if "*" in entry else [entry]
                found += [t for t in matches if t not in found]
    return [t for t in found if not any(Path(t).match(g) for g in exclude)]


def prepare_workdir(work: Path, module: Path, tests: list[str], pytest_args: list[str]) -> None:
    """A scratch copy of the project whose setup.cfg points mutmut at ``module`` and ``tests``."""
    if work.exists():
        shutil.rmtree(work)
    work.mkdir(parents=True)
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc", ".pytest_cache")
    shutil.copytree(REPO / "labkit", work / "labkit", ignore=ignore)
    shutil.copytree(REPO / "tests", work / "tests", ignore=ignore)
    for name in ALSO_COPY:
        src = REPO / name
        if src.is_dir():
            shutil.copytree(src, work / name, ignore=ignore)
        elif src.is_file():
            shutil.copy2(src, work / name)
    # tests find ../shared beside the checkout; mutmut runs them from work/mutants
    shared = REPO.parent / "shared"
    if shared.is_dir():
        (work / "shared").symlink_to(shared)
    lines = ["[mutmut]", "source_paths=labkit", f"only_mutate={module}",
             "also_copy=" + "\n    ".join(ALSO_COPY),
             "pytest_add_cli_args=" + "\n    ".join(pytest_args),
             "pytest_add_cli_args_test_selection=" + "\n    ".join(tests),
             "use_git_change_detection=false", ""]
    (work / "setup.cfg").write_text("\n".join(lines), encoding="utf-8")


def _pythonpath(*first: Path) -> str:
    """``first``, then the caller's PYTHONPATH entries (e.g. where mutmut is installed, when it is
    not in the environment's site-packages) minus the checkout itself, so labkit comes only from
    ``first`` (the mutated copy) or, where ``first`` is empty, from nowhere on the path."""
    extra = [e for e in os.environ.get("PYTHONPATH", "").split(os.pathsep)
             if e and Path(e).resolve() != REPO]
    return os.pathsep.join([*map(str, first), *extra])


def _mutmut(work: Path, args: list[str], timeout: float, log) -> int:
    env = {**os.environ, "PYTHONPATH": _pythonpath(work / "mutants"), "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1",
           "MPLBACKEND": "Agg", "PYTHONDONTWRITEBYTECODE": "1"}
    cmd = [sys.executable, "-c", "import sys; from mutmut.__main__ import cli; sys.exit(cli())", *args]
    try:
        return subprocess.run(cmd, cwd=work, env=env, stdout=log, stderr=subprocess.STDOUT, timeout=timeout).returncode
    except subprocess.TimeoutExpired:
        return 124


GENERATE = """
from mutmut.__main__ import copy_also_copy_files, copy_src_dir, create_mutants, setup_source_paths
from mutmut.mutation.trampoline import set_mutant_under_test
set_mutant_under_test("mutant_generation")
copy_src_dir(); copy_also_copy_files(); setup_source_paths(); create_mutants(2)
"""


def mutant_names(work: Path, module: Path) -> list[str]:
    """Generate the mutants of ``module`` (mutmut's own generator) and list their names."""
    subprocess.run([sys.executable, "-c", GENERATE], cwd=work, check=True, capture_output=True,
                   env={**os.environ, "PYTHONPATH": _pythonpath()})
    meta = work / "mutants" / f"{module}.meta"
    if not meta.is_file():
        return []
    return sorted(json.loads(meta.read_text())["exit_code_by_key"])


def verdicts(work: Path, module: Path, names: list[str]) -> dict[str, str]:
    from mutmut.stats import status_by_exit_code

    codes = json.loads((work / "mutants" / f"{module}.meta").read_text())["exit_code_by_key"]
    out = {}
    for name in names:
        status = status_by_exit_code[codes.get(name)]
        out[name] = {"killed": KILLED, "timeout": TIMEOUT, "no tests": NO_TESTS, "survived": SURVIVED}.get(status, status)
    return out


def diff_of(work: Path, name: str) -> str:
    out = subprocess.run([sys.executable, "-c", "import sys; from mutmut.__main__ import cli; sys.exit(cli())",
                          "show", name], cwd=work, capture_output=True, text=True, env={**os.environ, "PYTHONPATH": _pythonpath()})
    lines = [ln for ln in out.stdout.splitlines() if ln[:1] in "+-" and not ln.startswith(("+++", "---"))]
    return "\n".join(lines[:6])


def run_module(module: Path, cfg: dict, args: argparse.Namespace, scratch: Path) -> dict:
    """Mutation-test one file; the artifact entry for it."""
    started = time.monotonic()
    tests = tests_for(module, cfg.get("tests") or {}, list(cfg.get("exclude_tests") or []))
    if args.only_tests:  # a quicker, partial measure: the score counts only these tests' kills
        tests = [t for t in tests if any(Path(t).match(g) for g in args.only_tests)]
    head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=REPO, capture_output=True, text=True).stdout.strip()
    dirty = bool(subprocess.run(["git", "status", "--porcelain", "labkit", "tests"], cwd=REPO, capture_output=True,
                                text=True).stdout.strip())
    entry: dict = {"module": str(module), "tests": tests, "partial_tests": bool(args.only_tests),
                   "commit": head + ("+changes" if dirty else ""),
                   "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
    if not tests:
        entry.update(score=0.0, mutants_total=None, note="no test file imports this module")
        return entry
    work = scratch / str(module).replace("/", "_").removesuffix(".py")
    prepare_workdir(work, module, tests, cfg.get("pytest_args") or [])
    names = mutant_names(work, module)
    rng = random.Random(f"{args.seed}:{module}")
    cap = args.max_mutants
    sample = sorted(rng.sample(names, cap)) if len(names) > cap else names
    entry.update(mutants_total=len(names), sampled=len(sample), seed=args.seed)
    if not sample:
        entry.update(score=1.0, note="mutmut made no mutant of this file")
        return entry
    log_path = Path(args.log_dir) / f"{work.name}.log"
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with open(log_path, "w") as log:
        rc = _mutmut(work, ["run", "--max-children", str(args.jobs), *sample], args.timeout, log)
    found = verdicts(work, module, sample)
    listed = cfg.get("equivalent") or {}
    mine = [n for n in listed if n.startswith(dotted(module) + ".")]
    stale = sorted(n for n in mine if found.get(n) in (KILLED, TIMEOUT))
    gone = sorted(n for n in mine if n not in names)
    for name in found:
        if name in listed and found[name] == SURVIVED:
            found[name] = EQUIVALENT
    counts = {k: sum(v == k for v in found.values()) for k in (KILLED, SURVIVED, NO_TESTS, TIMEOUT, EQUIVALENT)}
    counts["other"] = len(found) - sum(counts.values())
    tried = len(found) - sum(v in ("not checked", EQUIVALENT) for v in found.values())
    survivors = [n for n, v in found.items() if v in (SURVIVED, NO_TESTS)]
    entry.update(counts, tried=tried, mutmut_rc=rc, log=str(log_path),
                 score=round((counts[KILLED] + counts[TIMEOUT]) / tried, 4) if tried else None,
                 survivors={n: {"status": found[n], "diff": diff_of(work, n)} for n in survivors[:args.max_survivors]},
                 equivalents={n: {"why": listed[n], "diff": diff_of(work, n)} for n, v in found.items() if v == EQUIVALENT},
                 seconds=round(time.monotonic() - started, 1))
    if gone:  # the function changed and mutmut numbers its mutants anew: check the list by the diffs
        entry["warning"] = f"listed as equivalent but no longer generated: {', '.join(gone)}"
    if stale:  # listed as equivalent, yet a test kills it: the list is out of date
        entry["error"] = f"listed as equivalent but {', '.join(f'{n} is {found[n]}' for n in stale)}; fix the config"
    if not tried:
        entry["error"] = f"mutmut tried no mutant (exit status {rc}); see {log_path}"
    if not args.keep:
        shutil.rmtree(work, ignore_errors=True)
    return entry


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("targets", nargs="*", help="files or folders (default: scope in the config)")
    parser.add_argument("--config", type=Path, default=CONFIG)
    parser.add_argument("--out", type=Path, default=REPO / "artifacts" / "mutation.json")
    parser.add_argument("--max-mutants", type=int, help="mutants sampled per module (default: config)")
    parser.add_argument("--seed", type=int, help="seed of the sample (default: config)")
    parser.add_argument("--jobs", type=int, default=2, help="mutmut worker processes")
    parser.add_argument("--timeout", type=float, help="seconds per module before mutmut is stopped (default: config)")
    parser.add_argument("--max-survivors", type=int, default=25, help="surviving mutants listed per module")
    parser.add_argument("--scratch", type=Path, help="scratch folder (default: a temporary one)")
    parser.add_argument("--log-dir", default=str(REPO / "artifacts" / "mutation_logs"))
    parser.add_argument("--keep", action="store_true", help="keep each module's scratch copy")
    parser.add_argument("--only-tests", nargs="+", metavar="GLOB",
                        help="run only the selected tests matching these globs (e.g. to leave out the slow sandbox "
                             "tests); the score is then a lower bound, marked partial_tests in the artifact")
    args = parser.parse_args(argv)
    cfg = load_config(args.config)
    args.max_mutants = args.max_mutants or int(cfg.get("max_mutants_per_module", 40))
    args.seed = cfg.get("seed", 0) if args.seed is None else args.seed
    args.timeout = args.timeout or float(cfg.get("timeout_s", 1800))
    modules = module_files(args.targets or list(cfg.get("scope") or []), list(cfg.get("skip") or []))
    if not modules:
        parser.error("no module to mutate")
    scratch = args.scratch or Path(tempfile.mkdtemp(prefix="labkit-mutation-"))
    if args.scratch is None:  # a scratch folder of the script's own goes with it
        atexit.register(shutil.rmtree, scratch, ignore_errors=True)
    floors = cfg.get("floors") or {}
    results: dict = {}
    for module in modules:
        print(f"[mutation] {module} ...", flush=True)
        entry = run_module(module, cfg, args, scratch)
        entry["floor"] = float(floors.get(str(module), cfg["floor"]))
        # a module whose run failed (no mutant tried) counts as below the floor: no silent pass
        entry["below_floor"] = entry.get("score") is None or entry["score"] < entry["floor"] or "error" in entry
        results[str(module)] = entry
        print(f"[mutation] {module}: score {entry.get('score')} ({entry.get('killed')} killed of "
              f"{entry.get('tried')} tried, {entry.get('mutants_total')} mutants) floor {entry['floor']}", flush=True)
        # merged by module into what is there now, so runs on other modules (even at the same time) add up
        previous = json.loads(args.out.read_text()) if args.out.is_file() else {}
        write_json(args.out, {"tool": f"mutmut {version('mutmut')}", "config": str(args.config.relative_to(REPO))
                              if args.config.is_relative_to(REPO) else str(args.config),
                              "modules": {**previous.get("modules", {}), str(module): entry}})
    below = [m for m, e in results.items() if m in map(str, modules) and e.get("below_floor")]
    for m in below:
        print(f"[mutation] BELOW FLOOR: {m} {results[m]['score']} < {results[m]['floor']}", file=sys.stderr)
    return 1 if below else 0


if __name__ == "__main__":
    sys.exit(main())
