"""One look for every figure: a fixed colour per strategy, shared by all figures of a report.

Colours are assigned from the sorted list of every strategy in the report (not per panel), so
`tpe` has the same colour in the anytime curves, the over-budget figures, the ECDFs and the CD
diagram. Matplotlib's "tab10" (then "tab20") palette, which stays distinguishable in print.
"""

from __future__ import annotations

from collections.abc import Iterable

_TAB10 = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf"]
_TAB20_EXTRA = ["#aec7e8", "#ffbb78", "#98df8a", "#ff9896", "#c5b0d5", "#c49c94", "#f7b6d2", "#c7c7c7", "#dbdb8d", "#9edae5"]
MARKERS = ["o", "s", "^", "D", "v", "P", "X", "*", "<", ">"]

# Width of a figure that fits one column of a two-column paper, and a full page, in inches.
COLUMN_WIDTH, PAGE_WIDTH = 3.4, 7.0


def strategy_colors(strategies: Iterable[str]) -> dict[str, str]:
    """Strategy -> colour, stable for a given set of strategies (sorted by name)."""
    palette = _TAB10 + _TAB20_EXTRA
    names = sorted(set(map(str, strategies)))
    return {name: palette[i % len(palette)] for i, name in enumerate(names)}


def strategy_markers(strategies: Iterable[str]) -> dict[str, str]:
    """Strategy -> marker, so curves stay apart in greyscale print too."""
    names = sorted(set(map(str, strategies)))
    return {name: MARKERS[i % len(MARKERS)] for i, name in enumerate(names)}
