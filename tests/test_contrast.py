"""Every text cell of every theme's snapshot is readable: WCAG contrast of the colours actually
rendered (not only the theme's variable pairs), >= 4.5:1, >= 7:1 for high-contrast. The daylight
theme once drew the servers table near-white on white and its snapshot enshrined it."""

from __future__ import annotations

import pytest
from helpers import REPO
from svg_contrast import contrast, text_cells

SNAPSHOTS = sorted((REPO / "tests" / "__snapshots__" / "test_ui_snapshots").glob(
    "test_themes[[]*[]].svg"))


def test_every_shipped_theme_has_a_snapshot():
    snapped = {p.name.split("[")[1].removesuffix("].svg") for p in SNAPSHOTS}
    assert snapped == {p.stem for p in (REPO / "themes").glob("*.yaml")}


@pytest.mark.parametrize("path", SNAPSHOTS, ids=lambda p: p.name.split("[")[1].removesuffix("].svg"))
def test_every_text_cell_is_readable(path):
    minimum = 7.0 if "high-contrast" in path.name else 4.5
    cells = text_cells(path.read_text())
    assert len(cells) > 50  # the table, the header, the panes: not an empty screen
    poor = [c for c in cells if c.ratio < minimum]
    assert not poor, "\n".join(f"line {c.line}: {c.text!r} {c.fg} on {c.bg}: {c.ratio:.2f}:1"
                               for c in poor[:10])


def test_the_measure_itself():
    assert contrast("#000000", "#ffffff") == pytest.approx(21.0)
    assert contrast("#ffffff", "#f3f5f7") < 1.2  # the daylight bug: white on near-white
