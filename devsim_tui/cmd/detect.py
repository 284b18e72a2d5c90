"""`devsim-tui detect`: score a `timestamp,value` CSV online with the estate's anomaly detector."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def add_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    parser = subparsers.add_parser(
        "detect",
        help="score a timestamp,value CSV series for anomalies (online, no look-ahead)",
        description="Run the anomaly detector over a timestamp,value CSV and write "
                    "timestamp,value,anomaly_score (score in [0, 1]). Each row is scored "
                    "only from the rows before it; the first rows are a warm-up scored 0.",
    )
    parser.add_argument("--csv", required=True, type=Path, metavar="IN.csv",
                        help="input with a header containing timestamp and value columns")
    parser.add_argument("--out", required=True, type=Path, metavar="OUT.csv",
                        help="where to write timestamp,value,anomaly_score")
    parser.set_defaults(func=run)
    return parser


def run(args: argparse.Namespace) -> int:
    # Imported here so that other subcommands do not pay for loading river.
    from devsim_tui.detect.series import score_csv

    rows = score_csv(args.csv, args.out)
    print(f"scored {rows} rows -> {args.out}", file=sys.stderr)
    return 0
