"""Online anomaly detection on estate signals, built on river.

`SeriesScorer` scores one series point by point; `Detector` runs one per signal for the
simulation; `series` applies the scorer to a `timestamp,value` CSV for the `detect` command.
This package must stay free of UI and simulation imports so it can be benchmarked on its own.
"""

from devsim_tui.detect.detector import Detector, Finding
from devsim_tui.detect.scorer import ScorerConfig, SeriesScorer

__all__ = ["Detector", "Finding", "ScorerConfig", "SeriesScorer"]
