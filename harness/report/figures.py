"""Figures (PNG and PDF): anytime curves, critical-difference diagram, per-run history,
hyperparameter importances and classification report.

matplotlib is used through `matplotlib.figure.Figure` (no pyplot, no GUI backend) and imported
only here, so `harness-report --no-figures` never imports it; optuna and scikit-learn are
imported inside the functions that need them.

Figures are made at the size they are printed (at most `style.PAGE_WIDTH` wide; the CD diagram
as wide as its labels need), so font sizes are printed sizes: nothing is smaller than 7 pt.
Titles are wrapped to the figure's width by measuring the text, so long run ids are never cut
off. Each strategy keeps one colour in every figure (`style.strategy_colors`); the functions that
draw strategies take `colors`, so a report passes one mapping to all of them. Each `*_figure`
function returns the `Figure`; the public functions save it.
"""

from __future__ import annotations

import functools
import json
import math
import warnings
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
import pandas as pd

from harness.report.stats import RankAnalysis
from harness.report.style import COLUMN_WIDTH, PAGE_WIDTH, strategy_colors, strategy_markers

FORMATS = ("png", "pdf")
DPI = 150
FONT = 8.0  # titles, axis labels, strategy labels (pt at the saved size)
SMALL = 7.0  # tick labels, legends, annotations: the smallest text of any figure
_RC = {
    "font.size": FONT,
    "axes.titlesize": FONT,
    "axes.labelsize": FONT,
    "xtick.labelsize": SMALL,
    "ytick.labelsize": SMALL,
    "legend.fontsize": SMALL,
    "legend.title_fontsize": SMALL,
    "figure.titlesize": FONT,
    "axes.linewidth": 0.6,
    "lines.linewidth": 1.2,
    "xtick.major.width": 0.6,
    "ytick.major.width": 0.6,
}
# Regret 0 (the optimum hit) on a log axis is drawn at this floor: BBOB's usual final target.
LOG_FLOOR = 1e-8
# Failed trials have no value: the run history draws them on a strip this high (axes fraction).
FAILED_STRIP = 0.07

F = TypeVar("F", bound=Callable[..., Any])


def _styled(fn: F) -> F:
    """Run `fn` under the report's font sizes (rcParams are read when artists are made)."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        import matplotlib

        with matplotlib.rc_context(_RC):
            return fn(*args, **kwargs)

    return wrapper  # type: ignore[return-value]


def _figure(width: float, height: float, layout: str | None = "constrained") -> Any:
    from matplotlib.figure import Figure

    return Figure(figsize=(width, height), layout=layout)


def _save(fig: Any, stem: Path, formats: Sequence[str] = FORMATS) -> list[Path]:
    stem.parent.mkdir(parents=True, exist_ok=True)
    paths = []
    for ext in formats:
        path = stem.with_name(f"{stem.name}.{ext}")  # not with_suffix: a stem may hold a dot
        fig.savefig(path, dpi=DPI)  # never bbox_inches="tight": it would change the printed size
        paths.append(path)
    return paths


@functools.cache
def _measurer() -> Any:
    from matplotlib.backends.backend_agg import RendererAgg

    return RendererAgg(1, 1, 72)  # at 72 dpi a pixel is a point


def _text_width(text: str, size: float) -> float:
    """Width in inches of one line of `text` at `size` pt."""
    from matplotlib.font_manager import FontProperties

    width, _, _ = _measurer().get_text_width_height_descent(text, FontProperties(size=size), ismath=False)
    return width / 72.0


def _wrap(text: str, width: float, size: float = FONT) -> str:
    """`text` in lines at most `width` inches wide at `size` pt, measured: broken at spaces, and
    words longer than a line (run ids have no spaces) after a "_", "/" or "-" where possible."""
    lines = []
    for para in str(text).split("\n"):
        line = ""
        for word in para.split(" "):
            cand = f"{line} {word}" if line else word
            if _text_width(cand, size) <= width:
                line = cand
                continue
            if line:
                lines.append(line)
            while len(word) > 1 and _text_width(word, size) > width:
                fit = 1
                while fit < len(word) and _text_width(word[: fit + 1], size) <= width:
                    fit += 1
                cut = max((i + 1 for i, c in enumerate(word[:fit]) if c in "_/-,."), default=fit)
                cut = cut if cut > fit // 2 else fit  # a break early in the line would waste it
                lines.append(word[:cut])
                word = word[cut:]
            line = word
        lines.append(line)
    return "\n".join(lines)


def plain_log_ticks(ax: Any, left: float, right: float) -> None:
    """On a log x axis spanning few decades, ticks 1, 2, 5, 10, 20, 50 ... as plain numbers:
    matplotlib's minor labels (2x10^0, 3x10^0, ...) run into each other at print size."""
    from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

    if left > 0 and right > left and math.log10(right / left) <= 3:
        ax.xaxis.set_major_locator(LogLocator(base=10, subs=(1.0, 2.0, 5.0)))
        ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
        ax.xaxis.set_minor_formatter(NullFormatter())


def _style_axes(ax: Any) -> None:
    ax.tick_params(labelsize=SMALL)  # also for ticks made at draw time, outside the rc context
    ax.grid(alpha=0.3, lw=0.5)


# -- anytime curves -----------------------------------------------------------------------------
ANYTIME_AXES = (
    ("n_trial", "trials evaluated", "anytime_trials"),
    ("elapsed_seconds", "wall time (s)", "anytime_time"),
    ("cum_epochs", "cumulative epochs trained", "anytime_epochs"),
)


def best_so_far(df: pd.DataFrame, x: str) -> pd.DataFrame:
    """Per run, the best validation metric reached so far after each trial, against `x`.

    `df` comes from `aggregate.prepare` (sorted by run and time). Unusable trials keep the previous
    best; before the first usable trial the value is NaN. The metric is in its own units (accuracy
    or RMSE, regret); the running best is taken on the oriented score.
    """
    score = df["score_val"].where(df["usable"])
    best = score.groupby(df["run"], sort=False).cummax()
    best = best.groupby(df["run"], sort=False).ffill()  # cummax leaves NaN at unusable trials
    sign = np.where(df["lower"].astype(bool), -1.0, 1.0)
    return pd.DataFrame(
        {
            "run": df["run"],
            "x": df[x],
            "best": best * sign,
            "dataset": df["dataset"],
            "search_space": df["search_space"],
            "strategy": df["strategy"],
            "metric": df["metric"],
            "lower": df["lower"],
        }
    )


def metric_label(frame: pd.DataFrame, prefix: str) -> tuple[str, float, bool]:
    """(axis label, scale, log axis) for the metric of `frame`: accuracy in %, regret on a log axis."""
    kind = str(frame["metric"].dropna().iloc[0]) if frame["metric"].notna().any() else "accuracy"
    lower = bool(frame["lower"].astype(bool).any())
    if kind == "accuracy":
        return f"{prefix} accuracy (%)", 100.0, False
    better = "lower" if lower else "higher"
    if kind == "rmse":
        return f"{prefix} RMSE (target units, {better} is better)", 1.0, False
    return f"{prefix} {kind} ({better} is better)", 1.0, kind == "regret"


def _on_grid(curve: pd.DataFrame, grid: np.ndarray) -> np.ndarray:
    """Runs x grid matrix of step-function values (last trial with x <= grid point)."""
    out = []
    for _, c in curve.groupby("run", sort=False):
        c = c.dropna(subset=["x"])
        idx = np.searchsorted(c["x"].to_numpy(), grid, side="right") - 1
        vals = c["best"].to_numpy()
        row = np.where(idx >= 0, vals[np.clip(idx, 0, None)], np.nan) if len(vals) else np.full(len(grid), np.nan)
        out.append(row)
    return np.array(out)


def center_and_band(mat: np.ndarray, spread: str = "std", log: bool = False) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Centre line and band over the runs (rows) of a runs x grid matrix.

    Linear axis: mean ± one sample std (ddof=1, as the tables), or median and IQR. Log axis: the
    same on log10 of the values, back-transformed: the geometric mean with a band of ×/÷ one
    geometric std (mean ± std would cross zero and be cut off), or median and IQR (which a log
    does not change). Values must be positive on a log axis.
    """
    with warnings.catch_warnings():  # all-NaN columns, and one run (no std)
        warnings.simplefilter("ignore", RuntimeWarning)
        v = np.log10(mat) if log else np.asarray(mat, dtype=float)
        if spread == "iqr":
            mid = np.nanmedian(v, axis=0)
            lo, hi = np.nanpercentile(v, 25, axis=0), np.nanpercentile(v, 75, axis=0)
        else:
            mid = np.nanmean(v, axis=0)
            sd = np.nanstd(v, axis=0, ddof=1)
            lo, hi = mid - sd, mid + sd
    if log:
        return 10.0**mid, 10.0**lo, 10.0**hi
    return mid, lo, hi


def _band_words(spread: str, log: bool) -> str:
    if spread == "iqr":
        return "median, band IQR"
    if log:
        return "geometric mean, band ×/÷ 1 geometric std (log10 mean ± std)"
    return "mean, band ± 1 std"


def anytime_curves(df: pd.DataFrame, out: Path, *, spread: str = "std", colors: Mapping[str, str] | None = None) -> list[Path]:
    """Best-so-far validation metric vs trials, wall time and cumulative epochs (where any were
    trained), one panel per (dataset, space) row; see `anytime_figure`."""
    paths: list[Path] = []
    for x, _, name in ANYTIME_AXES:
        fig = anytime_figure(df, x, spread=spread, colors=colors)
        if fig is not None:
            paths += _save(fig, out / name)
    return paths


@_styled
def anytime_figure(df: pd.DataFrame, x: str, *, spread: str = "std", colors: Mapping[str, str] | None = None) -> Any | None:
    """Best-so-far validation metric against `x` (``n_trial``, ``elapsed_seconds`` or
    ``cum_epochs`` of `aggregate.prepare`) over seeds, one panel per (dataset, space), strategies
    overlaid, one legend below the panels. None when no row has a positive `x` (no epochs: bbob).

    Each curve is held a little past the last trial and its last value marked, so a final
    improvement is visible. Log axes (regret) show the geometric mean (`center_and_band`).
    """
    if df.empty or not (pd.to_numeric(df[x], errors="coerce").fillna(0) > 0).any():
        return None
    from matplotlib.lines import Line2D
    from matplotlib.ticker import MaxNLocator

    strategies = sorted(df["strategy"].dropna().astype(str).unique())
    colors = dict(colors) if colors is not None else strategy_colors(strategies)
    markers = strategy_markers(colors.keys() | set(strategies))
    xlabel = {c: label for c, label, _ in ANYTIME_AXES}.get(x, x)
    panels = sorted(df.groupby(["dataset", "search_space"]).groups)
    curves = best_so_far(df, x)
    ncol = min(3, len(panels))
    nrow = math.ceil(len(panels) / ncol)
    width = {1: COLUMN_WIDTH + 0.4, 2: 5.6}.get(ncol, PAGE_WIDTH)
    panel_w, panel_h = width / ncol, 2.0
    fig = _figure(width, panel_h * nrow + 0.9)
    axes = fig.subplots(nrow, ncol, squeeze=False).ravel()
    counts: dict[str, list[tuple[int, int]]] = {}
    logs, floors, ylabels, xlabels = [], set(), [], []
    for ax, (dataset, space) in zip(axes, panels):
        panel = curves[(curves["dataset"] == dataset) & (curves["search_space"] == space)]
        ylabel, scale, log = metric_label(panel, "best val")
        xs = panel["x"].to_numpy(float)
        xs = xs[np.isfinite(xs)]
        x0, x1 = (min(0.0, xs.min()), xs.max()) if xs.size else (0.0, 1.0)
        pad = 0.04 * ((x1 - x0) or 1.0)
        exact = np.unique(xs)
        grid = exact if 0 < len(exact) <= 600 else np.linspace(x0, x1, 600)
        # One point past the last trial: with steps-post the final value would otherwise be a
        # zero-width step at the right edge.
        grid = np.append(grid, x1 + pad)
        floor = LOG_FLOOR
        if log:  # regret 0 has no place on a log axis: draw it at a floor, and say so
            positive = panel["best"].to_numpy(float) * scale
            positive = positive[positive > 0]
            floor = min(LOG_FLOOR, positive.min()) if positive.size else LOG_FLOOR
        for strategy, sc in panel.groupby("strategy", sort=True):
            strategy = str(strategy)
            mat = _on_grid(sc, grid) * scale
            n_all = mat.shape[0]
            mat = mat[~np.isnan(mat).all(axis=1)]  # runs without any ok trial: no curve
            # Average only where every seed has a result: otherwise a late-starting seed joins
            # the mean with a low value and the "best so far" curve goes down.
            mat[:, np.isnan(mat).any(axis=0)] = np.nan
            counts.setdefault(strategy, []).append((mat.shape[0], n_all - mat.shape[0]))
            if not mat.shape[0]:
                continue
            if log:
                if (mat < floor).any():
                    floors.add(floor)
                mat = np.maximum(mat, floor)
            mid, lo, hi = center_and_band(mat, spread, log)
            color = colors.get(strategy, "0.35")
            ax.plot(grid, mid, color=color, drawstyle="steps-post", label=strategy)
            ax.fill_between(grid, lo, hi, color=color, alpha=0.18, step="post", lw=0)
            end = np.nanmax(sc["x"].to_numpy(float))
            j = int(np.searchsorted(grid, end, side="right")) - 1
            if j >= 0 and np.isfinite(mid[j]):  # where this strategy's runs end, and their value
                ax.plot([end], [mid[j]], ls="none", marker=markers.get(strategy, "o"), ms=4, color=color, zorder=3)
        ax.set_xlim(x0, x1 + pad)
        if x != "elapsed_seconds":  # trials and epochs are counts
            ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        if log:
            ax.set_yscale("log")
        ax.set_title(_wrap(f"{dataset} / {space}", panel_w - 0.75))  # the axes' width: titles centre on the axes
        simulated = x == "elapsed_seconds" and (df.loc[panel.index, "clock"] == "simulated").any()
        xlabels.append("simulated time (s)" if simulated else xlabel)
        ylabels.append(ylabel)
        logs.append(log)
        _style_axes(ax)
    n = len(panels)
    for i, ax in enumerate(axes[:n]):
        # Labels once per row and column unless they differ: more room for the data.
        if i % ncol == 0 or ylabels[i] != ylabels[i - i % ncol]:
            ax.set_ylabel(_wrap(ylabels[i], panel_h - 0.4))
        if i + ncol >= n or len(set(xlabels)) > 1:
            ax.set_xlabel(xlabels[i])
    for ax in axes[n:]:
        ax.set_visible(False)

    def count(strategy: str) -> str:
        ns = [c[0] for c in counts[strategy]]
        failed = sum(c[1] for c in counts[strategy])
        text = f"n={ns[0]}" if min(ns) == max(ns) else f"n={min(ns)}–{max(ns)}"
        return f"{strategy} ({text}" + (f", {failed} without ok trial)" if failed else ")")

    handles = [
        Line2D([], [], color=colors.get(s, "0.35"), marker=markers.get(s, "o"), ms=4, label=count(s)) for s in sorted(counts)
    ]
    # One legend below the panels: inside, it would cover curves.
    fig.legend(
        handles=handles, loc="outside lower center", ncols=min(len(handles), 4 if ncol > 1 else 2), frameon=False, fontsize=SMALL
    )
    kinds = sorted(set(logs))
    words = [("log axes: " if len(kinds) > 1 and log else "") + _band_words(spread, log) for log in kinds]
    title = f"Best validation metric so far (n = runs per panel): {'; '.join(words)}"
    if floors:
        title += f"; regret 0 drawn at {min(floors):g}"
    fig.suptitle(_wrap(title, width - 0.2))
    fig.draw_without_rendering()  # lay out here, under the rc context
    return fig


# -- critical-difference diagram ----------------------------------------------------------------
def _cliques(vals: np.ndarray, cd: float) -> list[tuple[int, int]]:
    """Maximal runs of consecutive (sorted) ranks closer than `cd`: not significantly different."""
    cliques: list[tuple[int, int]] = []
    for i in range(len(vals)):
        j = i
        while j + 1 < len(vals) and vals[j + 1] - vals[i] < cd:
            j += 1
        if j > i and not any(a <= i and j <= b for a, b in cliques):
            cliques.append((i, j))
    return cliques


def cd_diagram(
    analysis: RankAnalysis,
    out: Path,
    *,
    title: str | None = None,
    stem_name: str = "cd_diagram",
    colors: Mapping[str, str] | None = None,
) -> list[Path]:
    """Demsar-style critical-difference diagram saved as `out/stem_name`; [] for fewer than 3
    ranked strategies. `title` replaces the first title line (e.g. "At 25 % of the budget")."""
    fig = cd_figure(analysis, title=title, colors=colors)
    return [] if fig is None else _save(fig, out / stem_name)


@_styled
def cd_figure(analysis: RankAnalysis, *, title: str | None = None, colors: Mapping[str, str] | None = None) -> Any | None:
    """Average ranks on an axis, the Nemenyi CD bar, bars joining strategies not significantly
    different. Laid out in inches: the rank axis is as wide for long names as for short ones,
    the figure grows by the label columns. None for fewer than 3 ranked strategies."""
    ranks = analysis.average_rank.dropna().sort_values()
    k = len(ranks)
    if k < 3:  # Friedman and Nemenyi need 3 strategies; 2 are the pairwise test's
        return None
    every = list(analysis.strategies) + list(getattr(analysis, "excluded", None) or [])
    colors = dict(colors) if colors is not None else strategy_colors(every)
    names = [str(n) for n in ranks.index]
    vals = ranks.to_numpy(float)
    labels = [f"{n} ({r:.2f})" for n, r in zip(names, vals)]
    half = math.ceil(k / 2)  # best half labelled on the left, the rest on the right
    cd = float(analysis.critical_difference)
    cliques = _cliques(vals, cd) if math.isfinite(cd) else []

    # Horizontal layout (inches): margin | left labels | elbow | rank axis | elbow | right labels.
    axis_w = min(max(0.8 * (k - 1), 2.6), 4.4)  # depends on k only
    margin, elbow, gap = 0.08, 0.25, 0.04
    left_w = max(_text_width(t, FONT) for t in labels[:half]) + gap
    right_w = max(_text_width(t, FONT) for t in labels[half:]) + gap
    width = margin + left_w + elbow + axis_w + elbow + right_w + margin
    u = (k - 1) / axis_w  # rank units per inch
    x0 = 1 - (margin + left_w + elbow) * u
    x1 = k + (elbow + right_w + margin) * u

    # Vertical layout (inches, data y = inches): the rank axis at 0, CD bar and title above,
    # clique bars then label rows below.
    line_h = FONT * 1.25 / 72
    top = 0.62 if math.isfinite(cd) else 0.28
    cd_test = "Friedman p = " + (f"{analysis.friedman_p:.3g}" if np.isfinite(analysis.friedman_p) else "n/a")
    idp = getattr(analysis, "iman_davenport_p", None)
    if idp is not None and np.isfinite(idp):
        cd_test += f", Iman–Davenport p = {idp:.3g}"
    head = (
        title
        if title is not None
        else (
            f"Average ranks ({analysis.metric} metric, 1 = best) "
            f"over {analysis.n_complete} {getattr(analysis, 'block_name', 'problems')}"
        )
    )
    text = f"{head}\n{cd_test}; thick bars join strategies not significantly different (Nemenyi, α = {analysis.alpha:g})"
    text = _wrap(text, width - 2 * margin)
    title_y = top + 0.12
    y_top = title_y + line_h * (text.count("\n") + 1) + margin
    clique_y = [-0.1 - 0.08 * i for i in range(len(cliques))]
    first_row = (clique_y[-1] if clique_y else -0.05) - 0.17
    row_h = 0.19
    y_bottom = first_row - row_h * (half - 1) - 0.12
    fig = _figure(width, y_top - y_bottom, layout=None)
    ax = fig.add_axes((0, 0, 1, 1))
    ax.set_xlim(x0, x1)
    ax.set_ylim(y_bottom, y_top)
    ax.axis("off")

    ax.hlines(0, 1, k, color="black", lw=1, gid="rank_axis")
    for r in np.arange(1, k + 0.01, 0.5):
        major = float(r).is_integer()
        ax.vlines(r, 0, 0.08 if major else 0.04, color="black", lw=0.8)
        if major:
            ax.text(r, 0.1, str(int(r)), ha="center", va="bottom", fontsize=FONT)
    if math.isfinite(cd):
        # A CD longer than the axis (few problems) is cut at the axis end, with an arrowhead;
        # its value is printed all the same.
        end = min(1 + cd, k)
        ax.hlines(top - 0.12, 1, end, color="black", lw=1.5, gid="cd_bar")
        ax.vlines([1] + ([end] if 1 + cd <= k else []), top - 0.16, top - 0.08, color="black", lw=1)
        if 1 + cd > k:
            ax.plot([end], [top - 0.12], marker=">", ms=5, color="black")
        note = "" if 1 + cd <= k else " (longer than the rank axis)"
        ax.text((1 + end) / 2, top - 0.07, f"CD = {cd:.2f}{note}", ha="center", va="bottom", fontsize=FONT)
    for y, (i, j) in zip(clique_y, cliques):
        ax.hlines(y, vals[i] - 0.04 * u, vals[j] + 0.04 * u, color="black", lw=2.5, gid="clique")
    for i, (name, r, label) in enumerate(zip(names, vals, labels)):
        left = i < half
        y = first_row - row_h * (i if left else k - 1 - i)  # outermost ranks on the top rows
        xe = 1 - elbow * u if left else k + elbow * u
        color = colors.get(name, "black")
        ax.plot([r, r, xe], [0, y, y], color=color, lw=1)
        ax.text(
            xe - gap * u if left else xe + gap * u,
            y,
            label,
            ha="right" if left else "left",
            va="center",
            fontsize=FONT,
            color=color,
            gid=f"label:{name}",
        )
    ax.text((x0 + x1) / 2, title_y, text, ha="center", va="bottom", fontsize=FONT)
    return fig


# -- per run ------------------------------------------------------------------------------------
def _reserve_bottom(ax: Any, frac: float) -> None:
    """Lower the y limit so that the data stay above the bottom `frac` of the axes (a strip for
    markers that are not values); on the axis' own scale, so log axes too."""
    lo, hi = ax.get_ylim()
    t = ax.yaxis.get_transform()
    a, b = t.transform(np.array([[lo], [hi]])).ravel()
    new = (a - frac * b) / (1 - frac)
    ax.set_ylim(float(t.inverted().transform(np.array([[new]]))[0, 0]), hi)


def run_history(trials: pd.DataFrame, stem: Path) -> list[Path]:
    """Save `history_figure` of one run's rows."""
    return _save(history_figure(trials), stem)


@_styled
def history_figure(trials: pd.DataFrame) -> Any:
    """Validation metric of each trial in order, with the best so far (cf. optuna's history plot).

    `trials` is one run's rows from `aggregate.prepare`. Failed trials have no value: they are
    marked on a strip along the bottom of the axes (axes coordinates), never at a value, so that
    on a lower-is-better metric they cannot read as the best trial.
    """
    from matplotlib.patches import Rectangle
    from matplotlib.ticker import MaxNLocator

    ylabel, scale, log = metric_label(trials, "val")
    n = np.arange(1, len(trials) + 1)
    val = trials["val"].to_numpy(float) * scale
    usable = trials["usable"].to_numpy(bool)
    pruned = trials["is_pruned"].to_numpy(bool)
    failed = trials["is_failed"].to_numpy(bool)
    best = best_so_far(trials, "elapsed_seconds")["best"].to_numpy(float) * scale
    fig = _figure(5.0, 3.2)
    ax = fig.add_subplot()
    if usable.any():
        ax.scatter(n[usable], val[usable], s=14, color="tab:blue", label="ok trial", zorder=3)
    if pruned.any():
        ax.scatter(
            n[pruned],
            val[pruned],
            s=14,
            color="tab:gray",
            marker="s",
            label=f"pruned ({int(pruned.sum())}, last value)",
            zorder=3,
        )
    # Held half a trial past the last one, so a final improvement is not a zero-width step.
    if np.isfinite(best).any():
        ax.plot(
            np.append(n, n[-1] + 0.5),
            np.append(best, best[-1]),
            color="tab:red",
            drawstyle="steps-post",
            label="best so far",
            zorder=2,
        )
    if not np.isfinite(val).any():  # every trial failed: a value axis would only show noise
        ax.set_yticks([])
        ax.text(0.5, 0.5, "no trial with a value", transform=ax.transAxes, ha="center", va="center")
    ax.set_xlim(0, len(n) + 1)
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    if log and np.nanmin(val, initial=np.inf) > 0:
        ax.set_yscale("log")
    if failed.any():
        _reserve_bottom(ax, FAILED_STRIP + 0.04)
        ax.add_patch(Rectangle((0, 0), 1, FAILED_STRIP, transform=ax.transAxes, color="0.92", lw=0, zorder=1))
        ax.scatter(
            n[failed],
            np.full(int(failed.sum()), FAILED_STRIP / 2),
            transform=ax.get_xaxis_transform(),
            marker="x",
            s=18,
            color="black",
            label=f"failed ({int(failed.sum())}, no value)",
            zorder=3,
        )
    ax.set_xlabel("trial (in order of completion)")
    ax.set_ylabel(ylabel)
    first = trials.iloc[0]
    fig.suptitle(
        _wrap(
            f"Optimisation history: {first['strategy']} on {first['dataset']}/{first['search_space']}, seed {first['seed']}", 4.8
        )
    )
    _style_axes(ax)
    if ax.get_legend_handles_labels()[0]:  # below the axes: inside, it could cover trials
        fig.legend(loc="outside lower center", ncols=4, frameon=False, fontsize=SMALL)
    fig.draw_without_rendering()
    return fig


def _distributions(space_name: str, params: list[dict[str, Any]]) -> dict[str, Any]:
    """Optuna distributions for a run's params: from the shipped space if it matches, else
    inferred from the values seen (ints and floats: their observed range; others: categorical)."""
    from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution

    dists: dict[str, Any] = {}
    try:
        from harness.space import load_space

        space = load_space(space_name)
        for p in space.params:
            if p.type == "int":
                dists[p.name] = IntDistribution(p.low, p.high, step=p.step, log=p.log)
            elif p.type == "float":
                dists[p.name] = FloatDistribution(p.low, p.high, log=p.log)
            else:
                dists[p.name] = CategoricalDistribution(tuple(p.choices))
    except Exception:  # a space not shipped (custom) or not loadable: infer below
        dists = {}
    names = sorted({k for p in params for k in p})
    for name in names:
        values = [p[name] for p in params if name in p and p[name] is not None]
        d = dists.get(name)
        if d is not None and all(_fits(d, v) for v in values):
            continue
        if values and all(isinstance(v, int) and not isinstance(v, bool) for v in values):
            dists[name] = IntDistribution(min(values), max(values))
        elif values and all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values):
            dists[name] = FloatDistribution(float(min(values)), float(max(values)))
        else:
            dists[name] = CategoricalDistribution(tuple(sorted(set(values), key=repr)))
    return dists


def _fits(dist: Any, value: Any) -> bool:
    from optuna.distributions import CategoricalDistribution

    if isinstance(dist, CategoricalDistribution):
        return any(type(value) is type(c) and value == c for c in dist.choices)
    try:
        return bool(dist._contains(dist.to_internal_repr(value)))
    except Exception:
        return False


def importances(trials: pd.DataFrame, *, evaluator: str = "fanova", seed: int = 0) -> pd.Series:
    """Hyperparameter importances of one run's usable trials, by an Optuna importance evaluator.

    The run's trials (any strategy's) become a throwaway in-memory Optuna study via
    `optuna.create_study` and `add_trials(create_trial(...))`; `evaluator` is ``fanova`` (default),
    ``mdi`` (mean decrease in impurity) or ``ped-anova``. Parameters absent from some trials
    (conditional ones) are left out, as Optuna does.
    """
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)  # no "new study created" line per run
    from optuna.importance import FanovaImportanceEvaluator, MeanDecreaseImpurityImportanceEvaluator, PedAnovaImportanceEvaluator

    ok = trials[trials["usable"]]
    params = [{k: v for k, v in json.loads(p).items() if v is not None} if isinstance(p, str) else {} for p in ok["params"]]
    if len(params) < 2:
        raise ValueError(f"needs at least 2 ok trials, got {len(params)}")
    dists = _distributions(str(ok["search_space"].iloc[0]), params)
    study = optuna.create_study(direction="maximize")
    study.add_trials(
        [
            optuna.trial.create_trial(params=p, distributions={k: dists[k] for k in p}, value=float(v))
            for p, v in zip(params, ok["objective"])
        ]
    )
    cls = {
        "fanova": lambda: FanovaImportanceEvaluator(seed=seed),
        "mdi": lambda: MeanDecreaseImpurityImportanceEvaluator(seed=seed),
        "ped-anova": lambda: PedAnovaImportanceEvaluator(),
    }[evaluator]
    return pd.Series(optuna.importance.get_param_importances(study, evaluator=cls()))


def importance_figure(imp: pd.Series, trials: pd.DataFrame, stem: Path, evaluator: str) -> list[Path]:
    return _save(_importance_figure(imp, trials, evaluator), stem)


@_styled
def _importance_figure(imp: pd.Series, trials: pd.DataFrame, evaluator: str) -> Any:
    imp = imp.sort_values()
    width = 5.0
    fig = _figure(width, 1.2 + 0.3 * max(len(imp), 1))
    ax = fig.add_subplot()
    ax.barh(list(imp.index), imp.to_numpy())
    for y, v in enumerate(imp.to_numpy()):
        ax.text(v, y, f" {v:.2f}", va="center", fontsize=SMALL)
    ax.set_xlabel(f"importance ({evaluator}, {int(trials['usable'].sum())} ok trials; sums to 1)")
    first = trials.iloc[0]
    # A figure title, centred on the figure: an axes title is pushed right by long parameter names.
    fig.suptitle(
        _wrap(
            f"Hyperparameter importances: {first['strategy']} on {first['dataset']}/"
            f"{first['search_space']}, seed {first['seed']}",
            width - 0.2,
        )
    )
    ax.set_xlim(0, max(1.0, float(imp.max()) * 1.15) if len(imp) else 1.0)
    _style_axes(ax)
    fig.draw_without_rendering()
    return fig


def classification_report(npz_path: Path, stem: Path, title: str) -> tuple[pd.DataFrame, str, list[Path]]:
    """Per-class precision/recall/F1/support of the saved best predictions, as table, text, figure."""
    from sklearn.metrics import classification_report as sk_report

    with np.load(npz_path, allow_pickle=False) as data:
        y_true, y_pred = data["y_true"], data["y_pred"]
        names = [str(c) for c in data["class_names"]] if "class_names" in data else None
    labels = np.arange(len(names)) if names else np.unique(np.concatenate([y_true, y_pred]))
    names = names or [str(c) for c in labels]
    kwargs = dict(labels=labels, target_names=names, zero_division=0, digits=4)
    text = sk_report(y_true, y_pred, **kwargs)
    rep = sk_report(y_true, y_pred, output_dict=True, **kwargs)
    table = pd.DataFrame({k: v for k, v in rep.items() if isinstance(v, dict)}).T
    table.index.name = "class"
    per_class = table.loc[names, ["precision", "recall", "f1-score"]]
    return table.reset_index(), text, _save(classification_figure(per_class, title), stem)


@_styled
def classification_figure(per_class: pd.DataFrame, title: str) -> Any:
    """Heat map of per-class precision, recall and F1 (rows: classes), titled `title`.

    The title is a figure title (centred on the figure, not on the axes beside the colour bar)
    wrapped to the figure's measured width: run ids are long and have no spaces."""
    width = 4.2
    title = _wrap(title, width - 0.2)
    n = len(per_class)
    fig = _figure(width, 1.1 + 0.24 * n + FONT * 1.25 / 72 * (title.count("\n") + 1))
    ax = fig.add_subplot()
    values = per_class.to_numpy(float)
    im = ax.imshow(values, vmin=0, vmax=1, cmap="viridis", aspect="auto")
    ax.set_xticks(range(3), ["precision", "recall", "F1"])
    ax.set_yticks(range(n), [str(c) for c in per_class.index])
    ax.set_ylabel("class")
    for (i, j), v in np.ndenumerate(values):
        ax.text(j, i, f"{v:.2f}", ha="center", va="center", fontsize=SMALL, color="white" if v < 0.5 else "black")
    ax.tick_params(labelsize=SMALL, length=0)
    cbar = fig.colorbar(im, ax=ax)
    cbar.ax.tick_params(labelsize=SMALL)
    fig.suptitle(title)
    fig.draw_without_rendering()
    return fig
