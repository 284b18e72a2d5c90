"""Score the anomaly detector on a NAB-layout corpus with the independent NAB scorer.

Slow and opt-in (not part of the test suite). Runs `devsim_tui.detect.series` over every
`data/<folder>/<name>.csv`, writes `<out>/<folder>/devsim_<name>.csv`, then calls the scorer
and prints its standard / reward_low_FP_rate / reward_low_FN_rate scores.

    python bench/nab.py                                   # all files, default parameters
    python bench/nab.py --set squash=3 --set short=5      # try other parameters
    python bench/nab.py --cv 3                            # honest check, see --help
    python bench/nab.py --lofo                            # leave one data folder out
    python bench/nab.py --lofo-file                       # leave one file out

`--cv K` is the generalisation check: files are dealt into K folds; for each fold the
parameter grid below is scored on the other folds only, the best setting and its threshold are
kept and the held-out fold is scored with both (never with its own best threshold). `--lofo`
makes one fold per data folder, `--lofo-file` one fold per file; both also print the pooled
held-out score (every fold's raw score at its own training threshold, normalised together). The scorer needs pandas; point --scorer-python at an interpreter
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

try:
    from devsim_tui.detect.scorer import ScorerConfig
    from devsim_tui.detect.series import score_csv
except ImportError:  # --select-folds runs in the scorer's interpreter, which needs only pandas
    if "--select-folds" not in sys.argv:
        raise

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


def select_folds(scorer: str, data: str, runs: list[str], folds: list[list[str]],
                 profile: str = "standard") -> list[dict]:
    """For each fold: the run (grid setting) and threshold with the best score on the other
    files, and the held-out files' raw score at exactly that threshold.

    Runs in the scorer's interpreter (numpy and pandas, no river) and imports the scorer module
    itself, so that 18 folds x 16 settings are one process, not 288."""
    import importlib.util

    import numpy as np

    spec = importlib.util.spec_from_file_location("nab_score", scorer)
    ns = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(ns)
    prof = ns.load_profiles(data)[profile]
    layouts = ns.load_corpus(data)
    scores = [ns.load_scores(run, layouts)[0] for run in runs]

    def sweep(run: dict, files: list[str]):
        corpus = ns.CorpusSweep({f: layouts[f] for f in files}, {f: run[f] for f in files})
        return corpus, corpus.sweep(prof)

    out = []
    for fold in folds:
        train = [f for f in layouts if f not in fold]
        best = None
        for i, run in enumerate(scores):
            _, (thr, tot) = sweep(run, train)
            j = int(np.argmax(tot))  # first maximum = highest threshold among ties
            if best is None or tot[j] > best[2]:
                best = (i, float(thr[j]), float(tot[j]), _.n_windows)
        i, threshold, train_raw, train_windows = best
        held, _ = sweep(scores[i], fold)
        table = held.breakdown(prof, threshold)
        fired = 0
        for f in fold:
            keep = layouts[f].keep
            fired += int((scores[i][f][keep] >= threshold).sum())
        out.append({"setting": i, "threshold": threshold, "raw": float(table["raw"].sum()),
                    "windows": int(held.n_windows), "hit": int(table["windows_hit"].sum()),
                    "fp_rows": int(table["fp_rows"].sum()), "fired": fired,
                    "scored_rows": int(sum(layouts[f].keep.sum() for f in fold)),
                    "train": normalised(prof, train_raw, train_windows)})
    return out


def normalised(prof: dict, raw: float, windows: int) -> float:
    """NAB's normalisation: 0 = never fires, 100 = one detection at every window's start."""
    null = -prof["fnWeight"] * windows
    return 100.0 * (raw - null) / (prof["tpWeight"] * windows - null) if windows else float("nan")


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
        names = folders
    elif args.lofo_file:
        # Leave one file out: each file is scored with the setting and threshold that were
        # best on the other files.
        folds = [[f] for f in files]
        names = files
    else:
        folds = [files[i::args.cv] for i in range(args.cv)]
        names = [f"fold {k}" for k in range(args.cv)]
    keys = list(CV_GRID)
    grid = [dict(zip(keys, combo)) for combo in itertools.product(*CV_GRID.values())]
    runs = []
    for i, setting in enumerate(grid):
        out = work / f"grid{i}"
        run_detector(args.data, out, files, replace(base, **setting), args.jobs)
        runs.append(str(out))
    job = work / "folds.json"
    job.write_text(json.dumps({"runs": runs, "folds": folds}))
    proc = subprocess.run([args.scorer_python, str(Path(__file__).resolve()), "--data",
                           str(args.data), "--scorer", args.scorer, "--select-folds", str(job)],
                          capture_output=True, text=True)
    if proc.returncode != 0:
        raise SystemExit(f"fold selection failed:\n{proc.stderr}")
    results = json.loads(proc.stdout)
    prof = {"tpWeight": 1.0, "fpWeight": 0.11, "fnWeight": 1.0}  # NAB standard profile
    profiles = args.data / "config" / "profiles.json"
    if profiles.exists():
        prof = json.loads(profiles.read_text())["standard"]["CostMatrix"]
    held_out = []
    print(f"{'held-out fold':<52} {'setting chosen on the others':<56} {'thr':>6} "
          f"{'train':>6} {'held out':>9}")
    for name, r in zip(names, results):
        setting = ", ".join(f"{k} {v}" for k, v in grid[r["setting"]].items())
        if r["windows"]:
            score = normalised(prof, r["raw"], r["windows"])
            held_out.append(score)
            what = f"{score:9.2f}  ({r['hit']}/{r['windows']} windows, {r['fp_rows']} FP rows)"
        else:
            # No labelled anomaly: NAB's normalisation is undefined (never-fires = perfect);
            # what counts is how often it fires at the carried-over threshold.
            what = (f"{'-':>9}  (no windows: {r['fired']} of {r['scored_rows']} rows fired, "
                    f"raw {r['raw']:.2f})")
        print(f"{name:<52} {setting:<56} {r['threshold']:6.3f} {r['train']:6.2f} {what}")
    raw = sum(r["raw"] for r in results)
    windows = sum(r["windows"] for r in results)
    print(f"held-out standard scores, folds with windows: {[round(s, 2) for s in held_out]}, "
          f"mean {sum(held_out) / len(held_out):.2f}")
    print(f"pooled held-out standard score (every fold's raw score at its own training "
          f"threshold, normalised over all {windows} windows): "
          f"{normalised(prof, raw, windows):.2f}")


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
    parser.add_argument("--lofo-file", action="store_true",
                        help="the same check with one fold per file (leave one file out)")
    parser.add_argument("--select-folds", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--jobs", type=int, default=os.cpu_count() or 1)
    args = parser.parse_args(argv)
    if args.select_folds:  # internal: run by cross_validate in the scorer's interpreter
        job = json.loads(args.select_folds.read_text())
        print(json.dumps(select_folds(args.scorer, str(args.data), job["runs"], job["folds"])))
        return 0
    if not (args.data / "labels" / "combined_windows.json").exists():
        print(f"skipped: no NAB corpus at {args.data}")
        return 0
    base = replace(ScorerConfig(), **dict(parse_override(s) for s in args.set))
    with tempfile.TemporaryDirectory() as tmp:
        work = args.out or Path(tmp)
        if args.cv or args.lofo or args.lofo_file:
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
