"""Do the chapters' full-budget checks hold for base models built with other seeds?

A check that passes only for the one base model it was written against states an accident of
that build, not what the lesson measures (issue 10). For every seed given, this script copies the
course's code and configs into a scratch folder, sets the ``seed`` of every base-model config
there (``configs/*.yaml`` named by ``--configs``), and runs ``scripts/run_course.py`` from the copy
at the full budget with its own artifacts folder, so each seed builds, caches and uses its own
base models. It then reads every executed notebook's check lines (``check passed:``, ``not
asserted:``, ``skipped at the ci budget:``, from :func:`labkit.budget.full_check` and
:meth:`labkit.stats.NoiseVerdict.check`) and the failures, and writes one table per seed and
chapter to ``artifacts/check_robustness.json``.

It takes long (every base model is built once per seed: about as long as a first ``make course``
per seed) and is not part of ``make test``. ``--dry-run`` prepares the copies and prints the plan.

    python scripts/check_robustness.py --seeds 0 1 --chapters 01 02 03
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import nbformat

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:  # run as a script: labkit from this checkout
    sys.path.insert(0, str(REPO))

from labkit.artifacts import artifacts_dir, write_json  # noqa: E402

#: The base-model configs whose ``seed`` each run sets (the models every chapter starts from).
BASE_CONFIGS = ("detect_base.yaml", "detect_frcnn.yaml", "segment_base.yaml", "segment_instance.yaml")
#: What a copy needs to run the course: the library, the lessons as make course runs them (the
#: sources with their answers, ``autograder/lessons``; the released ``notebooks/`` copies have the
#: exercises blank), the configs and the runner.
COPIED = ("labkit", "autograder/lessons", "notebooks", "configs", "scripts", "pyproject.toml", "course.yaml")
CHECK_PREFIXES = ("check passed:", "not asserted:", "skipped at the ci budget:")
SEED_LINE = re.compile(r"^seed:[ \t]*\d+[ \t]*(#.*)?$", re.MULTILINE)


def set_seed(text: str, seed: int, name: str) -> str:
    """``text`` of a YAML config with its top-level ``seed:`` line set to ``seed``.

    Raises ``ValueError`` naming the file when there is not exactly one such line (a config
    without a seed cannot be rebuilt with another one).
    """
    found = SEED_LINE.findall(text)
    if len(found) != 1:
        raise ValueError(f"{name}: expected one top-level 'seed:' line, found {len(found)}")
    return SEED_LINE.sub(f"seed: {seed}  # set by scripts/check_robustness.py", text)


def prepare_copy(target: Path, seed: int, configs: tuple[str, ...]) -> Path:
    """A copy of the course code under ``target`` with every config of ``configs`` seeded ``seed``."""
    if target.exists():
        shutil.rmtree(target)
    target.mkdir(parents=True)
    ignore = shutil.ignore_patterns("__pycache__", ".ipynb_checkpoints", "*.egg-info")
    for name in COPIED:
        source = REPO / name
        if source.is_dir():
            # symlinks=True keeps labkit/configs a link to the copy's configs/ (the files seeded below);
            # followed, it would copy the checkout's unseeded configs into the package
            shutil.copytree(source, target / name, ignore=ignore, symlinks=True)
        elif source.exists():
            shutil.copy2(source, target / name)
    for name in configs:
        path = target / "configs" / name
        if not path.exists():
            raise ValueError(f"configs/{name}: no such config (choose from {sorted(p.name for p in (REPO / 'configs').glob('*.yaml'))})")
        path.write_text(set_seed(path.read_text(), seed, f"configs/{name}"))
    return target


def check_lines(notebook: Path) -> list[dict]:
    """Every check line an executed notebook printed, with its cell index, plus its error if any."""
    nb = nbformat.read(notebook, as_version=4)
    out = []
    for index, cell in enumerate(nb.cells):
        for output in cell.get("outputs", []) if cell.cell_type == "code" else []:
            if output.get("output_type") == "stream":
                out += [{"cell": index, "line": line} for line in output.get("text", "").splitlines()
                        if line.startswith(CHECK_PREFIXES)]
            elif output.get("output_type") == "error":
                out.append({"cell": index, "line": f"failed: {output.get('ename')}: {output.get('evalue')}"})
    return out


def finished_run(artifacts: Path, chapters: list[str]) -> bool:
    """Whether ``artifacts`` holds a finished run of every chapter of ``chapters`` (for ``--resume``)."""
    try:
        rows = json.loads((artifacts / "course_summary.json").read_text())["notebooks"]
    except (OSError, ValueError, KeyError):
        return False
    ran = {Path(r["path"]).parent.name[:2] for r in rows if r.get("budget") == "full"}
    return all(c[:2] in ran for c in chapters)


def run_seed(seed: int, chapters: list[str], scratch: Path, configs: tuple[str, ...], timeout: int,
             dry_run: bool, resume: bool = False) -> dict:
    """Run the chapters from a copy seeded ``seed``; the summary rows and check lines per notebook.
    With ``resume``, a seed whose run of these chapters already finished in ``scratch`` is read, not run."""
    artifacts = scratch / f"seed{seed}" / "artifacts"
    command = [sys.executable, "scripts/run_course.py", "--timeout", str(timeout), "--chapters", *chapters]
    start, returncode = time.perf_counter(), 0
    if resume and finished_run(artifacts, chapters):
        print(f"seed {seed}: reusing the finished run in {artifacts}", flush=True)
    else:
        copy = prepare_copy(scratch / f"seed{seed}" / "course", seed, configs)
        env = {**os.environ, "PYTHONPATH": str(copy), "LABKIT_ARTIFACTS": str(artifacts), "LABKIT_BUDGET": "full"}
        print(f"seed {seed}: {' '.join(command)}  (in {copy}, artifacts {artifacts})", flush=True)
        if dry_run:
            return {"seed": seed, "command": command, "ran": False}
        returncode = subprocess.run(command, cwd=copy, env=env).returncode
    summary = json.loads((artifacts / "course_summary.json").read_text())
    rows = []
    for row in [r for r in summary["notebooks"] if any(Path(r["path"]).parent.name.startswith(c) for c in chapters)]:
        executed = artifacts / "notebooks" / Path(row["path"]).parent.name / Path(row["path"]).name
        rows.append({"path": row["path"], "status": row["status"], "error": row["error"], "seconds": row["seconds"],
                     "checks": check_lines(executed) if executed.exists() else []})
    return {"seed": seed, "ran": True, "returncode": returncode, "minutes": round((time.perf_counter() - start) / 60, 1),
            "notebooks": rows}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1], help="base-model seeds (default: 0 1)")
    parser.add_argument("--chapters", nargs="+", default=["01", "02", "03"], help="chapter prefixes (default: 01 02 03)")
    parser.add_argument("--configs", nargs="+", default=list(BASE_CONFIGS), help="configs whose seed is set")
    parser.add_argument("--scratch", type=Path, default=None, help="work folder (default: <artifacts>/robustness)")
    parser.add_argument("--timeout", type=int, default=1800, help="seconds allowed per cell")
    parser.add_argument("--dry-run", action="store_true", help="prepare the seeded copies and print the plan only")
    parser.add_argument("--resume", action="store_true", help="read, not re-run, a seed whose run of the chapters "
                        "already finished in the scratch folder")
    args = parser.parse_args(argv)
    if len(set(args.seeds)) < 2:
        parser.error("give at least two different seeds")
    scratch = args.scratch or artifacts_dir() / "robustness"
    try:
        runs = [run_seed(s, args.chapters, scratch, tuple(args.configs), args.timeout, args.dry_run, args.resume)
                for s in args.seeds]
    except (ValueError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if args.dry_run:
        return 0
    all_ok = all(r["returncode"] == 0 and all(n["status"] == "ok" for n in r["notebooks"]) for r in runs)
    path = write_json(artifacts_dir() / "check_robustness.json",
                      {"seeds": args.seeds, "chapters": args.chapters, "configs": args.configs, "all_ok": all_ok,
                       "runs": runs})
    for run in runs:
        for nb in run["notebooks"]:
            print(f"seed {run['seed']}  {nb['status']:<7} {nb['path']}" + (f"  -> {nb['error']}" if nb["error"] else ""))
            for check in nb["checks"]:
                if not check["line"].startswith("check passed:"):
                    print(f"    cell {check['cell']}: {check['line'][:200]}")
    print(f"{'every check held' if all_ok else 'some checks failed'} for seeds {args.seeds}; written to {path}")
    return 0 if all_ok else 1


if __name__ == "__main__":
    sys.exit(main())
