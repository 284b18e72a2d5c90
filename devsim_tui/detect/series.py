"""Score a `timestamp,value` CSV series online and write `timestamp,value,anomaly_score`.

Online means each row's score depends only on the rows before it: rows are fed one at a time to
a `SeriesScorer`. The only thing read ahead is the sampling interval, taken from the first few
rows to size the daily seasonal model; those rows fall inside the warm-up, whose scores are 0
whatever the rest of the file holds.
"""

from __future__ import annotations

import csv
import statistics
from collections.abc import Iterable, Iterator
from dataclasses import replace
from pathlib import Path

from devsim_tui.config.traces import parse_timestamp, read_series  # noqa: F401 - re-exported
from devsim_tui.detect.scorer import ScorerConfig, SeriesScorer
from devsim_tui.errors import UserError

DAY_SECONDS = 86400.0
# Intervals used to infer the sampling period; must stay below the warm-up (see module doc).
PERIOD_PROBE_ROWS = 12
# A daily profile needs at least a few phases to be useful and must stay affordable in memory.
MIN_PERIOD, MAX_PERIOD = 4, 20000


def daily_period(seconds: list[float]) -> int | None:
    """Points per day from the median sampling interval, or None if that makes no sense."""
    gaps = [b - a for a, b in zip(seconds, seconds[1:]) if b > a]
    if not gaps:
        return None
    period = round(DAY_SECONDS / statistics.median(gaps))
    return period if MIN_PERIOD <= period <= MAX_PERIOD else None


def score_rows(rows: Iterable[tuple[str, float, float]],
               config: ScorerConfig | None = None) -> Iterator[tuple[str, float, float]]:
    """Yield (timestamp, value, anomaly_score) for (timestamp, seconds, value) rows, online."""
    config = config or ScorerConfig()
    it = iter(rows)
    head = [r for _, r in zip(range(PERIOD_PROBE_ROWS + 1), it)]
    if config.period is None:
        config = replace(config, period=daily_period([s for _, s, _ in head]))
    scorer = SeriesScorer(config)
    for stamp, _, value in head:
        yield stamp, value, scorer.score_one(value)
    for stamp, _, value in it:
        yield stamp, value, scorer.score_one(value)


def score_csv(src: Path, dst: Path, config: ScorerConfig | None = None) -> int:
    """Score `src` into `dst`; returns the number of rows written."""
    rows = ((stamp, seconds, value) for _, stamp, seconds, value in read_series(src))
    n = 0
    tmp = dst.with_name(dst.name + ".part")
    try:
        with tmp.open("w", newline="", encoding="utf-8") as out:
            writer = csv.writer(out)
            writer.writerow(["timestamp", "value", "anomaly_score"])
            for stamp, value, score in score_rows(rows, config):
                writer.writerow([stamp, repr(value), f"{score:.6f}"])
                n += 1
        tmp.replace(dst)
    except OSError as exc:
        raise UserError(f"{dst}: cannot write: {exc.strerror or exc}") from None
    finally:
        tmp.unlink(missing_ok=True)
    return n
