"""harness-report figures, checked on what they draw: the matplotlib Figure's artists, limits and
text extents (no pixel comparisons).

The public functions are called as the report builder calls them; `saved` keeps the Figure each
one saves, by file stem.
"""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import pandas as pd
import pytest
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.collections import LineCollection, PolyCollection
from matplotlib.colors import to_hex
from matplotlib.text import Text

from harness.report import aggregate, figures
from harness.report.style import PAGE_WIDTH, strategy_colors


@pytest.fixture
def saved(monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    """Figures the public functions save, by file stem (written as PNG only: quicker)."""
    figs: dict[str, Any] = {}
    real = figures._save

    def capture(fig: Any, stem: Path, formats: Any = figures.FORMATS) -> list[Path]:
        figs[stem.name] = fig
        return real(fig, stem, ("png",))

    monkeypatch.setattr(figures, "_save", capture)
    return figs


KINDS = {  # objective_name, direction, task
    "accuracy": ("val_accuracy", "maximize", "classification"),
    "rmse": ("val_rmse", "minimize", "regression"),
    "regret": ("f", "minimize", None),
}


def prepared(runs: dict[tuple[str, str, int], list[float | None]], kind: str = "accuracy", space: str = "mlp") -> pd.DataFrame:
    """Trial rows as `aggregate.prepare` makes them. runs[(strategy, dataset, seed)]: each
    trial's validation value in order (None: failed); trial i ends at i + 1 s, 2 epochs each."""
    name, direction, task = KINDS[kind]
    rows = []
    for (strategy, dataset, seed), values in runs.items():
        for i, v in enumerate(values):
            rows.append(
                {
                    "experiment": "e",
                    "run_id": f"{strategy}_{dataset}_s{seed}",
                    "strategy": strategy,
                    "dataset": dataset,
                    "search_space": space,
                    "seed": seed,
                    "trial_id": i,
                    "status": "failed" if v is None else "ok",
                    "task": task,
                    "objective": None if v is None else (v + 100.0 if kind == "regret" else v),
                    "regret": v if kind == "regret" else None,
                    "objective_name": name,
                    "objective_direction": direction,
                    "elapsed_seconds": float(i + 1),
                    "budget_spent": 2.0,
                    "clock": "wall",
                }
            )
    return aggregate.prepare(pd.DataFrame(rows))


def analysis(names: list[str], ranks: list[float], cd: float, **extra: Any) -> SimpleNamespace:
    """The RankAnalysis fields a CD diagram reads."""
    return SimpleNamespace(
        strategies=list(names),
        average_rank=pd.Series(ranks, index=names),
        critical_difference=cd,
        friedman_p=0.01,
        n_complete=12,
        metric="test",
        alpha=0.05,
        **extra,
    )


def render(fig: Any) -> Any:
    canvas = FigureCanvasAgg(fig)
    canvas.draw()
    return canvas.get_renderer()


def texts(fig: Any, ticks: bool = True) -> list[Text]:
    """Visible texts with something to read; tick labels too, unless `ticks` is False."""
    hidden = {id(t) for ax in fig.axes if not ax.get_visible() for t in ax.findobj(Text)}
    if not ticks:
        hidden |= {
            id(t)
            for ax in fig.axes
            for axis in (ax.xaxis, ax.yaxis)
            for tick in axis.get_major_ticks() + axis.get_minor_ticks()
            for t in (tick.label1, tick.label2)
        }
    return [t for t in fig.findobj(Text) if t.get_visible() and t.get_text().strip() and id(t) not in hidden]


def assert_inside(fig: Any) -> None:
    """Everything drawn (texts, tick labels, legends, titles) lies within the figure."""
    renderer = render(fig)
    box = fig.bbox
    # Tick labels out of view are not drawn: the figure's tight box covers those drawn.
    outside = [
        t.get_text()
        for t in texts(fig, ticks=False)
        if (e := t.get_window_extent(renderer)).width
        and (e.x0 < box.x0 - 1 or e.x1 > box.x1 + 1 or e.y0 < box.y0 - 1 or e.y1 > box.y1 + 1)
    ]
    tight = fig.get_tightbbox(renderer)  # inches; only what is drawn (ticks in view)
    w, h = fig.get_size_inches()
    assert not outside and tight.x0 >= -0.01 and tight.y0 >= -0.01 and tight.x1 <= w + 0.01 and tight.y1 <= h + 0.01, (
        outside,
        tight,
        (w, h),
    )


def overlap(a: Any, b: Any) -> bool:
    return a.x0 < b.x1 and b.x0 < a.x1 and a.y0 < b.y1 and b.y0 < a.y1


def strategy_line(ax: Any, strategy: str) -> Any:
    """The step curve of a strategy in an anytime panel."""
    return next(
        line for line in ax.get_lines() if line.get_drawstyle() == "steps-post" and line.get_label().split(" ")[0] == strategy
    )


def band_at(ax: Any, x: float) -> tuple[float, float]:
    """(low, high) of the fill_between bands at x (one strategy per panel)."""
    ys = [
        v[1]
        for c in ax.collections
        if isinstance(c, PolyCollection)
        for p in c.get_paths()
        for v in p.vertices
        if np.isclose(v[0], x)
    ]
    return min(ys), max(ys)


# -- 1. classification report ----------------------------------------------------------------------
def test_classification_report_title_fits_the_figure(tmp_path: Path, saved: dict[str, Any]) -> None:
    npz = tmp_path / "best_predictions.npz"
    rng = np.random.default_rng(0)
    y = rng.integers(0, 10, 200)
    np.savez(
        npz,
        y_true=y,
        y_pred=np.where(rng.random(200) < 0.8, y, 0),
        class_names=np.array([f"T-shirt or top {i}" for i in range(10)]),
        trial_id=1,
    )
    # As build.py titles it: a long experiment/run id has no space to break at (capitals: wide).
    title = (
        "Classification report (test set), MNIST_WIDE_RESNET_MAXWELL_SWEEP_2024/"
        "KERAS_TUNER_BAYESIAN_MLP_FASHION_MNIST_S12_0123ABCD, test acc. 93.00%"
    )
    figures.classification_report(npz, tmp_path / "cr", title)
    fig = saved["cr"]
    assert_inside(fig)
    shown = " ".join(t.get_text() for t in texts(fig))
    assert title.replace(" ", "") in shown.replace("\n", "").replace(" ", "")  # wrapped, not cut


# -- 2. anytime curves -----------------------------------------------------------------------------
def test_anytime_final_value_is_visible(tmp_path: Path, saved: dict[str, Any]) -> None:
    # Every run improves on its last trial (trial 4, at 4 s and 8 epochs).
    runs = {("a", "digits", s): [0.5, 0.6, 0.7, 0.9 + s / 100] for s in range(3)}
    runs |= {("b", "digits", s): [0.4, 0.5, 0.55, 0.8] for s in range(3)}
    figures.anytime_curves(prepared(runs), tmp_path)
    for stem, last_x in (("anytime_trials", 4), ("anytime_time", 4.0), ("anytime_epochs", 8)):
        ax = saved[stem].axes[0]
        assert ax.get_xlim()[1] > last_x, stem
        for strategy, final in (("a", 91.0), ("b", 80.0)):
            line = strategy_line(ax, strategy)
            x, y = line.get_xdata(), line.get_ydata()
            # The final value holds over a segment of non-zero width past the last trial.
            assert x[-1] > last_x and x[-2] <= last_x, (stem, strategy, x[-3:])
            assert y[-1] == pytest.approx(final) and y[-2] == pytest.approx(final), (stem, strategy)


def test_anytime_band_is_the_sample_std(tmp_path: Path, saved: dict[str, Any]) -> None:
    finals = np.array([0.80, 0.90, 0.96])
    runs = {("a", "digits", s): [0.5, float(v)] for s, v in enumerate(finals)}
    figures.anytime_curves(prepared(runs), tmp_path)
    ax = saved["anytime_trials"].axes[0]
    x = strategy_line(ax, "a").get_xdata()[-1]
    sd = 100 * finals.std(ddof=1)  # as the tables: ddof=1
    assert band_at(ax, x) == pytest.approx((100 * finals.mean() - sd, 100 * finals.mean() + sd))


def test_anytime_log_axis_band_is_geometric(tmp_path: Path, saved: dict[str, Any]) -> None:
    # Final regrets 1e-3, 1e-1, 10: mean ± std would reach below zero; in log10: -1 ± 2.
    runs = {("a", "f01", s): [100.0, v] for s, v in enumerate([1e-3, 1e-1, 10.0])}
    figures.anytime_curves(prepared(runs, "regret"), tmp_path)
    fig = saved["anytime_trials"]
    ax = fig.axes[0]
    assert ax.get_yscale() == "log"
    line = strategy_line(ax, "a")
    assert line.get_ydata()[-1] == pytest.approx(0.1)  # geometric mean
    assert band_at(ax, line.get_xdata()[-1]) == pytest.approx((1e-3, 10.0))
    verts = np.concatenate([p.vertices for c in ax.collections if isinstance(c, PolyCollection) for p in c.get_paths()])
    assert (verts[:, 1] > 0).all()
    assert "geometric" in " ".join(fig.get_suptitle().split())


def test_anytime_log_axis_zero_regret_is_floored_and_said(tmp_path: Path, saved: dict[str, Any]) -> None:
    runs = {("a", "f01", s): [100.0, v] for s, v in enumerate([0.0, 1e-2, 1.0])}
    figures.anytime_curves(prepared(runs, "regret"), tmp_path)
    fig = saved["anytime_trials"]
    ax = fig.axes[0]
    lo, hi = band_at(ax, strategy_line(ax, "a").get_xdata()[-1])
    assert 0 < lo < hi < np.inf
    assert f"regret 0 drawn at {figures.LOG_FLOOR:g}" in " ".join(fig.get_suptitle().split())


def test_center_and_band() -> None:
    mat = np.array([[1.0, 10.0], [3.0, 1000.0]])
    mid, lo, hi = figures.center_and_band(mat)
    assert mid == pytest.approx([2.0, 505.0]) and hi - mid == pytest.approx(np.std(mat, axis=0, ddof=1))
    mid, lo, hi = figures.center_and_band(mat, log=True)
    assert mid == pytest.approx([np.sqrt(3.0), 100.0]) and lo[1] == pytest.approx(10.0 ** (2 - np.sqrt(2)))
    mid, lo, hi = figures.center_and_band(np.array([[1.0], [10.0], [100.0], [1000.0]]), "iqr", log=True)
    assert (lo[0], mid[0], hi[0]) == pytest.approx((10**0.75, 10**1.5, 10**2.25))


# -- 3. critical-difference diagram ----------------------------------------------------------------
def rank_axis_inches(fig: Any, k: int) -> float:
    """Printed width of the rank axis, the segment from rank 1 to rank k."""
    render(fig)
    ax = fig.axes[0]
    for coll in ax.collections:
        for seg in coll.get_segments() if isinstance(coll, LineCollection) else []:
            if np.allclose(seg[:, 1], 0) and np.allclose(sorted(seg[:, 0]), [1, k]):
                d = ax.transData.transform(seg)
                return abs(d[1, 0] - d[0, 0]) / fig.dpi
    raise AssertionError("no rank axis")


def test_cd_long_names_widen_the_figure_not_squeeze_the_axis(tmp_path: Path, saved: dict[str, Any]) -> None:
    ranks = [1.4, 2.1, 2.9, 3.6]
    figures.cd_diagram(analysis(["a", "b", "c", "d"], ranks, 1.2), tmp_path / "short")
    short = saved["cd_diagram"]
    long_names = [f"{s}_with_a_very_long_strategy_name_option_set" for s in "abcd"]
    figures.cd_diagram(analysis(long_names, ranks, 1.2), tmp_path / "long")
    long = saved["cd_diagram"]
    assert_inside(long)
    assert rank_axis_inches(long, 4) == pytest.approx(rank_axis_inches(short, 4), rel=0.01)
    assert long.get_size_inches()[0] > short.get_size_inches()[0]
    shown = {t.get_text() for t in texts(long)}
    assert all(f"{n} ({r:.2f})" in shown for n, r in zip(long_names, ranks))


def test_cd_bar_longer_than_the_axis_is_clipped_with_its_value(tmp_path: Path, saved: dict[str, Any]) -> None:
    figures.cd_diagram(analysis(["a", "b", "c"], [1.5, 2.0, 2.5], 5.0), tmp_path)
    fig = saved["cd_diagram"]
    assert_inside(fig)
    ax = fig.axes[0]
    above = [
        seg for c in ax.collections if isinstance(c, LineCollection) for seg in c.get_segments() if seg[0, 1] == seg[-1, 1] > 0
    ]  # horizontal segments above the rank axis: the CD bar
    assert above and all(1 <= x <= 3 for seg in above for x in seg[:, 0])
    assert any(t.get_text().startswith("CD = 5.00") for t in texts(fig))


def test_cd_title_stem_name_and_iman_davenport(tmp_path: Path, saved: dict[str, Any]) -> None:
    a = analysis(["a", "b", "c"], [1.2, 2.0, 2.8], 1.0, iman_davenport_p=0.0123)
    paths = figures.cd_diagram(a, tmp_path, title="At 25 % of the budget", stem_name="cd_25")
    assert paths == [tmp_path / "cd_25.png"] and paths[0].exists()
    shown = " ".join(t.get_text() for t in texts(saved["cd_25"])).replace("\n", " ")
    assert "At 25 % of the budget" in shown and "Iman–Davenport p = 0.0123" in shown
    # Without the field (today's RankAnalysis) the diagram is drawn without it.
    figures.cd_diagram(analysis(["a", "b", "c"], [1.2, 2.0, 2.8], 1.0), tmp_path)
    assert "Iman" not in " ".join(t.get_text() for t in texts(saved["cd_diagram"]))


def test_cd_needs_three_strategies(tmp_path: Path) -> None:
    assert figures.cd_diagram(analysis(["a", "b"], [1.2, 1.8], 0.9), tmp_path) == []
    assert figures.cd_diagram(analysis(["a", "b", "c"], [np.nan] * 3, np.nan), tmp_path) == []
    assert not list(tmp_path.iterdir())


# -- 4. run history --------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "kind, values",
    [
        ("rmse", [60.0, None, 55.0, None, 58.0]),
        ("accuracy", [0.9, None, 0.95, None, 0.93]),
        ("regret", [30.0, None, 0.5, None, 2.0]),
    ],
)
def test_failed_trials_are_not_drawn_at_a_value(
    tmp_path: Path, saved: dict[str, Any], kind: str, values: list[float | None]
) -> None:
    trials = prepared({("tpe", "d", 0): values}, kind)
    figures.run_history(trials, tmp_path / "history")
    fig = saved["history"]
    render(fig)
    ax = fig.axes[0]

    def display_y(label: str) -> np.ndarray:
        coll = next(c for c in ax.collections if c.get_label().startswith(label))
        return coll.get_offset_transform().transform(coll.get_offsets())[:, 1]

    failed, ok = display_y("failed (2"), display_y("ok trial")
    box = ax.bbox
    # On a strip along the bottom of the axes, below every value, whichever the direction.
    assert ((failed >= box.y0) & (failed <= box.y0 + 0.1 * box.height)).all()
    assert ok.min() > failed.max() + 0.02 * box.height
    best = next(line for line in ax.get_lines() if line.get_label() == "best so far")
    assert best.get_xdata()[-1] > len(values)  # the final best is not a zero-width step
    assert_inside(fig)


def test_history_of_a_run_without_any_value(tmp_path: Path, saved: dict[str, Any]) -> None:
    figures.run_history(prepared({("tpe", "d", 0): [None, None]}, "rmse"), tmp_path / "history")
    ax = saved["history"].axes[0]
    assert not len(ax.get_yticks()) and any("no trial" in t.get_text() for t in ax.texts)


# -- 5. colours ------------------------------------------------------------------------------------
def test_one_colour_per_strategy_in_every_figure(tmp_path: Path, saved: dict[str, Any]) -> None:
    runs = {(s, "digits", 0): [0.5, 0.7] for s in ("random", "tpe", "zoopt")}
    runs |= {("zoopt", "iris", 0): [0.6, 0.8]}  # a panel with one strategy: still zoopt's colour
    df = prepared(runs)
    default = strategy_colors(["random", "tpe", "zoopt"])
    figures.anytime_curves(df, tmp_path)
    iris = next(ax for ax in saved["anytime_trials"].axes if ax.get_title().startswith("iris"))
    assert to_hex(strategy_line(iris, "zoopt").get_color()) == default["zoopt"]

    mine = {"random": "#000000", "tpe": "#17becf", "zoopt": "#8c564b", "other": "#ff7f0e"}
    figures.anytime_curves(df, tmp_path, colors=mine)
    for ax in saved["anytime_trials"].axes:
        for line in ax.get_lines():
            if line.get_drawstyle() == "steps-post":
                assert to_hex(line.get_color()) == mine[line.get_label()]
    a = analysis(["random", "tpe", "zoopt"], [1.5, 2.0, 2.5], 1.0)
    for colors, expected in ((None, default), (mine, mine)):
        figures.cd_diagram(a, tmp_path, colors=colors)
        labels = {
            t.get_text().split(" ")[0]: to_hex(t.get_color())
            for t in texts(saved["cd_diagram"])
            if t.get_text().split(" ")[0] in a.strategies
        }
        assert labels == {s: expected[s] for s in a.strategies}


# -- 6. readability at paper size ------------------------------------------------------------------
def test_figures_are_readable_at_paper_size(tmp_path: Path, saved: dict[str, Any]) -> None:
    datasets = ["f15_RastriginRotated_i1", "f07_StepEllipsoid_i1", "fashion_mnist_long_name", "digits"]
    runs = {
        (s, d, seed): [0.5 + seed / 10, 0.7, 0.8]
        for s in ("random", "tpe", "hyperband", "genetic")
        for d in datasets
        for seed in range(3)
    }
    df = prepared(runs, space="mlp_with_dropout_and_batchnorm")
    figures.anytime_curves(df, tmp_path)
    one_run = df[df["run_id"] == df["run_id"].iloc[0]]
    figures.run_history(one_run.assign(is_failed=[False, True, False], usable=[True, False, True]), tmp_path / "history")
    figures.importance_figure(pd.Series({"lr": 0.6, "units": 0.3, "optimizer": 0.1}), one_run, tmp_path / "importances", "fanova")
    figures.cd_diagram(analysis(["random", "tpe", "hyperband", "genetic"], [1.5, 2.0, 2.5, 4.0], 1.0), tmp_path)
    for stem in ("anytime_trials", "anytime_time", "anytime_epochs", "history", "importances", "cd_diagram"):
        fig = saved[stem]
        assert_inside(fig)
        if stem != "cd_diagram":  # the CD diagram is as wide as its labels need
            assert fig.get_size_inches()[0] <= PAGE_WIDTH + 1e-9, stem
        small = [(t.get_text(), t.get_fontsize()) for t in texts(fig) if t.get_fontsize() < 7]
        assert not small, (stem, small)
    fig = saved["anytime_time"]
    renderer = render(fig)
    axes = [ax for ax in fig.axes if ax.get_visible()]
    assert len(axes) == 4
    titles = [ax.title.get_window_extent(renderer) for ax in axes]
    titles.append(fig._suptitle.get_window_extent(renderer))
    assert not any(overlap(a, b) for i, a in enumerate(titles) for b in titles[i + 1 :])
    legend = fig.legends[0].get_window_extent(renderer)  # one legend, below the panels
    assert not fig.legends[1:] and not any(ax.get_legend() for ax in axes)
    assert not any(overlap(legend, ax.get_tightbbox(renderer)) for ax in axes)
    assert all("(s)" in ax.get_xlabel() for ax in axes if ax.get_xlabel())
    assert any(ax.get_xlabel() for ax in axes) and "(%)" in axes[0].get_ylabel()


# -- the builder's calls ---------------------------------------------------------------------------
def test_calls_of_the_report_builder_write_png_and_pdf(tmp_path: Path) -> None:
    df = prepared({(s, "d", seed): [0.5, None, 0.7] for s in ("a", "b", "c") for seed in range(2)})
    paths = figures.anytime_curves(df, tmp_path, spread="iqr")
    paths += figures.cd_diagram(analysis(["a", "b", "c"], [1.5, 2.0, 2.5], 1.0), tmp_path)
    paths += figures.run_history(df[df["run"] == 0], tmp_path / "runs" / "history")
    npz = tmp_path / "p.npz"
    np.savez(npz, y_true=np.array([0, 1, 1]), y_pred=np.array([0, 1, 0]), class_names=np.array(["x", "y"]))
    _, _, more = figures.classification_report(npz, tmp_path / "runs" / "cr", "t")
    names = {p.relative_to(tmp_path).as_posix() for p in paths + more}
    assert names == {
        f"{stem}.{ext}"
        for ext in ("png", "pdf")
        for stem in ("anytime_trials", "anytime_time", "anytime_epochs", "cd_diagram", "runs/history", "runs/cr")
    }
    assert all(p.stat().st_size > 0 for p in paths + more)
