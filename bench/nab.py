"""Score the anomaly detector on a NAB-layout corpus with the independent NAB scorer.

Slow and opt-in (not part of the test suite). Runs `devsim_tui.detect.series` over every
`data/<folder>/<name>.csv`, writes `<out>/<folder>/devsim_<name>.csv`, then calls the scorer
and prints its standard / reward_low_FP_rate / reward_low_FN_rate scores.

    python bench/nab.py                                   # all files, default parameters
    python bench/nab.py --set squash=3 --set short=5      # try other parameters
    python bench/nab.py --cv 3                            # honest check, see --help
    python bench/nab.py --lofo                            # leave one data folder out

`--cv K` is the generalisation check: files are dealt into K folds; for each fold the
parameter grid below is scored on the other folds only, the best setting is kept and then
scored on the held-out fold. The scorer needs pandas; point --scorer-python at an interpreter
that has it if this one does not.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import fields, replace
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from devsim_tui.detect.scorer import ScorerConfig  # noqa: E402
from devsim_tui.detect.series import score_csv  # noqa: E402

DEFAULT_DATA = os.environ.get("NAB_DATA", "/work/shared/data/nab-dev")
DEFAULT_SCORER = os.environ.get("NAB_SCORER", "/work/shared/tools/nab_score.py")
# Kept small on purpose: a big grid on 25 labelled windows would just fit noise.
CV_GRID = {"resid_quantile": [0.9, 0.95], "profile_rate": [0.2, 0.5], "short": [5, 10],
           "squash": [3.0, 6.0]}


def parse_override(text: str) -> tuple[str, object]:
    name, _, raw = text.partition("=")
    types = {f.name: f.type for f in fields(ScorerConfig)}
    if name not in types:
        raise SystemExit(f"--set: unknown parameter {name!r}; known: {', '.join(types)}")
    return name, json.loads(raw)


def data_files(data: Path) -> list[str]:
    return sorted(str(p.relative_to(data / "data")) for p in (data / "data").glob("*/*.csv"))


def _score_one(job: tuple[Path, Path, ScorerConfig]) -> tuple[int, float]:
    src, dst, config = job
    dst.parent.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    rows = score_csv(src, dst, config)
    return rows, time.perf_counter() - start


def run_detector(data: Path, out: Path, files: list[str], config: ScorerConfig,
                 jobs: int) -> tuple[int, float]:
    work = [(data / "data" / rel, out / Path(rel).parent / f"devsim_{Path(rel).name}", config)
            for rel in files]
    with ProcessPoolExecutor(max_workers=jobs) as pool:
        results = list(pool.map(_score_one, work))
    return sum(r for r, _ in results), sum(t for _, t in results)


def nab_score(args: argparse.Namespace, results: Path, subset: list[str] | None = None,
              threshold: float | None = None) -> dict:
    """Run the scorer (on `subset` of the result files only, if given; at a fixed `threshold`
    instead of the corpus's best one, if given) and return its JSON."""
    if subset is not None:
        view = Path(tempfile.mkdtemp(dir=results.parent))
        for rel in subset:
            name = f"devsim_{Path(rel).name}"
            (view / Path(rel).parent).mkdir(parents=True, exist_ok=True)
            os.symlink(results / Path(rel).parent / name, view / Path(rel).parent / name)
        results = view
    summary = results / "summary.json"
    cmd = [args.scorer_python, args.scorer, "--data", str(args.data), "--results", str(results),
           "--json", str(summary)] + (["--allow-missing"] if subset is not None else []) \
        + (["--threshold", repr(threshold)] if threshold is not None else [])
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        raise SystemExit(f"scorer failed ({' '.join(cmd)}):\n{proc.stderr}")
    return json.loads(summary.read_text())


def false_alarms(args: argparse.Namespace, results: Path, files: list[str],
                 threshold: float) -> tuple[int, int]:
    """(rows scored after NAB's probation, rows at or above `threshold`) over `files`."""
    import csv

    rows = fired = 0
    for rel in files:
        path = results / Path(rel).parent / f"devsim_{Path(rel).name}"
        with path.open(newline="") as fh:
            scores = [float(r["anomaly_score"]) for r in csv.DictReader(fh)]
        probation = min(int(0.15 * len(scores)), 750)
        rows += len(scores) - probation
        fired += sum(s >= threshold for s in scores[probation:])
    return rows, fired


def show(title: str, summary: dict) -> None:
    scores = "  ".join(f"{name} {p['normalized']:6.2f}" for name, p in summary["profiles"].items())
    print(f"{title:<34} {scores}  ({summary['files']} files, {summary['windows']} windows)")


def cross_validate(args: argparse.Namespace, base: ScorerConfig, work: Path) -> None:
    files = data_files(args.data)
    if args.lofo:
        # Leave one folder out: the folders differ in kind (artificial without anomalies,
        # artificial with, real), so a held-out folder is data of a kind not tuned on.
        folders = sorted({Path(f).parent.name for f in files})
        folds = [[f for f in files if Path(f).parent.name == d] for d in folders]
    else:
        folds = [files[i::args.cv] for i in range(args.cv)]
    windows = {Path(k).as_posix(): v for k, v in json.loads(
        (args.data / "labels" / "combined_windows.json").read_text()).items()}
    names = list(CV_GRID)
    grid = [dict(zip(names, combo)) for combo in itertools.product(*CV_GRID.values())]
    runs = []
    for i, setting in enumerate(grid):
        out = work / f"grid{i}"
        run_detector(args.data, out, files, replace(base, **setting), args.jobs)
        runs.append(out)
    held_out = []
    for k, fold in enumerate(folds):
        train = [f for f in files if f not in fold]
        train_runs = [nab_score(args, out, train)["profiles"]["standard"] for out in runs]
        train_scores = [r["normalized"] for r in train_runs]
        best = max(range(len(grid)), key=lambda i: train_scores[i])
        # The held-out fold is scored at the threshold chosen on the training folds too: the
        # scorer's own best threshold for the fold would be tuned on the held-out data.
        threshold = float(train_runs[best]["threshold"])
        name = Path(fold[0]).parent.name if args.lofo else f"fold {k}"
        if not any(windows.get(f) for f in fold):
            # No labelled anomaly: NAB's normalisation is undefined (never-fires = perfect);
            # what counts is how often it fires at the carried-over threshold.
            rows, fired = false_alarms(args, runs[best], fold, threshold)
            print(f"{name}: best on the others {grid[best]} ({train_scores[best]:.2f}, "
                  f"threshold {threshold:.4g})")
            print(f"  held out ({len(fold)} files, no anomalies): {fired} of {rows} scored rows "
                  f"at or above the threshold ({fired / max(rows, 1):.2%})")
            continue
        summary = nab_score(args, runs[best], fold, threshold=threshold)
        held_out.append(summary["profiles"]["standard"]["normalized"])
        print(f"{name}: best on the others {grid[best]} ({train_scores[best]:.2f}, "
              f"threshold {threshold:.4g})")
        show(f"  held out ({len(fold)} files)", summary)
    print(f"held-out standard scores {[round(s, 2) for s in held_out]}, "
          f"mean {sum(held_out) / len(held_out):.2f}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=Path(DEFAULT_DATA),
                        help="NAB root with data/, labels/, config/ (env NAB_DATA)")
    parser.add_argument("--scorer", default=DEFAULT_SCORER, help="nab_score.py (env NAB_SCORER)")
    parser.add_argument("--scorer-python", default=sys.executable,
                        help="interpreter with numpy and pandas to run the scorer")
    parser.add_argument("--out", type=Path, help="keep results here (default: a temp dir)")
    parser.add_argument("--set", action="append", default=[], metavar="NAME=JSON",
                        help="override a ScorerConfig parameter")
    parser.add_argument("--per-file", action="store_true", help="print the per-file breakdown")
    parser.add_argument("--cv", type=int, metavar="K", help="K-fold parameter-selection check")
    parser.add_argument("--lofo", action="store_true",
                        help="the same check with one fold per data folder (leave one out)")
    parser.add_argument("--jobs", type=int, default=os.cpu_count() or 1)
    args = parser.parse_args(argv)
    if not (args.data / "labels" / "combined_windows.json").exists():
        print(f"skipped: no NAB corpus at {args.data}")
        return 0
    base = replace(ScorerConfig(), **dict(parse_override(s) for s in args.set))
    with tempfile.TemporaryDirectory() as tmp:
        work = args.out or Path(tmp)
        if args.cv or args.lofo:
            cross_validate(args, base, work)
            return 0
        rows, seconds = run_detector(args.data, work / "all", data_files(args.data), base,
                                     args.jobs)
        print(f"scored {rows} rows in {seconds:.1f} s of worker time "
              f"({seconds / rows * 1e6:.1f} us per row, CSV I/O included)")
        show("all files", nab_score(args, work / "all"))
        if args.per_file:
            subprocess.run([args.scorer_python, args.scorer, "--data", str(args.data),
                            "--results", str(work / "all"), "--per-file"], check=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
