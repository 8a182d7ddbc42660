"""Figures (PNG and PDF): anytime curves, critical-difference diagram, per-run history,
hyperparameter importances and classification report.

matplotlib is used through `matplotlib.figure.Figure` (no pyplot, no GUI backend) and imported
only here, so `harness-report --no-figures` never imports it; optuna and scikit-learn are
imported inside the functions that need them.
"""
from __future__ import annotations

import json
import math
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from harness.report.stats import RankAnalysis

FORMATS = ("png", "pdf")


def _figure(width: float, height: float) -> Any:
    from matplotlib.figure import Figure

    return Figure(figsize=(width, height), layout="constrained")


def _save(fig: Any, stem: Path, formats: Sequence[str] = FORMATS) -> list[Path]:
    stem.parent.mkdir(parents=True, exist_ok=True)
    paths = []
    for ext in formats:
        path = stem.with_suffix(f".{ext}")
        fig.savefig(path, dpi=150)
        paths.append(path)
    return paths


# -- anytime curves -----------------------------------------------------------------------------
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
    return pd.DataFrame({"run": df["run"], "x": df[x], "best": best * sign,
                         "dataset": df["dataset"], "search_space": df["search_space"],
                         "strategy": df["strategy"], "metric": df["metric"], "lower": df["lower"]})


def metric_label(frame: pd.DataFrame, prefix: str) -> tuple[str, float, bool]:
    """(axis label, scale, log axis) for the metric of `frame`: accuracy in %, regret on a log axis."""
    kind = str(frame["metric"].dropna().iloc[0]) if frame["metric"].notna().any() else "accuracy"
    lower = bool(frame["lower"].astype(bool).any())
    if kind == "accuracy":
        return f"{prefix} accuracy (%)", 100.0, False
    name = {"rmse": "RMSE"}.get(kind, kind)
    return f"{prefix} {name} ({'lower' if lower else 'higher'} is better)", 1.0, kind == "regret"


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


def anytime_curves(df: pd.DataFrame, out: Path, *, spread: str = "std") -> list[Path]:
    """Best-so-far validation metric vs trials, wall time and cumulative epochs (where any were
    trained), one panel per (dataset, space) row."""
    paths = []
    panels = sorted(df.groupby(["dataset", "search_space"]).groups)
    if not panels:
        return paths
    axes_wanted = [("n_trial", "trials evaluated", "anytime_trials"),
                   ("elapsed_seconds", "wall time (s)", "anytime_time"),
                   ("cum_epochs", "cumulative epochs trained", "anytime_epochs")]
    for x, xlabel, name in axes_wanted:
        if not (pd.to_numeric(df[x], errors="coerce").fillna(0) > 0).any():
            continue  # e.g. no epochs on problems without a fidelity (bbob)
        curves = best_so_far(df, x)
        ncol = min(3, len(panels))
        nrow = math.ceil(len(panels) / ncol)
        fig = _figure(4.2 * ncol, 3.2 * nrow)
        axes = np.atleast_1d(fig.subplots(nrow, ncol, squeeze=False)).ravel()
        for ax, (dataset, space) in zip(axes, panels):
            panel = curves[(curves["dataset"] == dataset) & (curves["search_space"] == space)]
            ylabel, scale, log = metric_label(panel, "best val")
            xmax = panel["x"].max()
            grid = np.linspace(0.0, xmax if np.isfinite(xmax) and xmax > 0 else 1.0, 200)
            for strategy, sc in panel.groupby("strategy", sort=True):
                mat = _on_grid(sc, grid) * scale
                n_all = mat.shape[0]
                mat = mat[~np.isnan(mat).all(axis=1)]  # runs without any ok trial: no curve
                # Average only where every seed has a result: otherwise a late-starting seed joins
                # the mean with a low value and the "best so far" curve goes down.
                mat[:, np.isnan(mat).any(axis=0)] = np.nan
                with warnings.catch_warnings():  # all-NaN columns before any run has a result
                    warnings.simplefilter("ignore", RuntimeWarning)
                    if spread == "iqr":
                        mid = np.nanmedian(mat, axis=0)
                        lo, hi = np.nanpercentile(mat, 25, axis=0), np.nanpercentile(mat, 75, axis=0)
                    else:
                        mid = np.nanmean(mat, axis=0)
                        sd = np.nanstd(mat, axis=0)
                        lo, hi = mid - sd, mid + sd
                label = f"{strategy} (n={mat.shape[0]}" + (
                    f", {n_all - mat.shape[0]} without ok trial)" if n_all > mat.shape[0] else ")")
                line, = ax.plot(grid, mid, label=label, drawstyle="steps-post")
                ax.fill_between(grid, lo, hi, color=line.get_color(), alpha=0.2, step="post")
            ax.set_title(f"{dataset} / {space}")
            simulated = x == "elapsed_seconds" and (df.loc[panel.index, "clock"] == "simulated").any()
            ax.set_xlabel("simulated time (s)" if simulated else xlabel)
            ax.set_ylabel(ylabel)
            if log and (panel["best"] > 0).any():
                ax.set_yscale("log")
            ax.grid(alpha=0.3)
            ax.legend(fontsize="small")
        for ax in axes[len(panels):]:
            ax.set_visible(False)
        band = "median and IQR" if spread == "iqr" else "mean ± std"
        fig.suptitle(f"Anytime performance over seeds ({band})")
        paths += _save(fig, out / name)
    return paths


# -- critical-difference diagram ----------------------------------------------------------------
def cd_diagram(analysis: RankAnalysis, out: Path) -> list[Path]:
    """Demsar-style critical-difference diagram: average ranks, CD bar, non-significant cliques."""
    ranks = analysis.average_rank.dropna().sort_values()
    if ranks.empty:
        return []
    k = len(analysis.strategies)
    cd = analysis.critical_difference
    fig = _figure(7.0, 1.3 + 0.25 * math.ceil(len(ranks) / 2))
    ax = fig.add_subplot()
    ax.set_xlim(0.5, k + 0.5)
    ax.set_ylim(-(math.ceil(len(ranks) / 2) * 0.5 + 0.4), 1.8)
    ax.axis("off")
    ax.hlines(0, 1, k, color="black", lw=1)
    for r in range(1, k + 1):
        ax.vlines(r, 0, 0.15, color="black", lw=1)
        ax.text(r, 0.25, str(r), ha="center", va="bottom", fontsize=9)
    if np.isfinite(cd):
        ax.hlines(1.2, 1, 1 + cd, color="black", lw=2)
        ax.vlines([1, 1 + cd], 1.1, 1.3, color="black", lw=1)
        ax.text(1 + cd / 2, 1.35, f"CD = {cd:.2f}", ha="center", va="bottom", fontsize=9)
    names = list(ranks.index)
    half = math.ceil(len(names) / 2)
    for i, name in enumerate(names):
        r = ranks[name]
        left = i < half
        level = -(i + 1) * 0.5 if left else -(len(names) - i) * 0.5
        xtext = 0.6 if left else k + 0.4
        ax.plot([r, r, xtext], [0, level, level], color="black", lw=0.8)
        ax.text(xtext, level, f"{name} ({r:.2f})", ha="right" if left else "left",
                va="center", fontsize=9)
    if np.isfinite(cd):  # maximal groups of consecutive strategies closer than CD
        vals = ranks.to_numpy()
        cliques = []
        for i in range(len(vals)):
            j = i
            while j + 1 < len(vals) and vals[j + 1] - vals[i] < cd:
                j += 1
            if j > i and not any(a <= i and j <= b for a, b in cliques):
                cliques.append((i, j))
        for n, (i, j) in enumerate(cliques):
            y = -0.2 - 0.18 * n
            ax.hlines(y, vals[i] - 0.03, vals[j] + 0.03, color="tab:red", lw=3)
    test = "Friedman p = " + (f"{analysis.friedman_p:.3g}" if np.isfinite(analysis.friedman_p) else "n/a")
    ax.set_title(f"Average ranks ({analysis.metric}), {analysis.n_complete} problems; {test}; "
                 f"red bars: not significantly different (Nemenyi, alpha={analysis.alpha:g})",
                 fontsize=8)
    return _save(fig, out / "cd_diagram")


# -- per run ------------------------------------------------------------------------------------
def run_history(trials: pd.DataFrame, stem: Path) -> list[Path]:
    """Validation metric of each trial in order, with the best so far (cf. optuna's history plot).

    `trials` is one run's rows from `aggregate.prepare`.
    """
    ylabel, scale, log = metric_label(trials, "val")
    n = np.arange(1, len(trials) + 1)
    val = trials["val"].to_numpy(float) * scale
    usable = trials["usable"].to_numpy()
    pruned = trials["is_pruned"].to_numpy()
    failed = trials["is_failed"].to_numpy()
    best = best_so_far(trials, "elapsed_seconds")["best"].to_numpy(float) * scale
    fig = _figure(6.0, 3.6)
    ax = fig.add_subplot()
    ax.scatter(n[usable], val[usable], s=18, label="ok trial", zorder=3)
    if pruned.any():
        ax.scatter(n[pruned], val[pruned], s=18, color="tab:gray", marker="s", label="pruned", zorder=3)
    ax.plot(n, best, color="tab:red", drawstyle="steps-post", label="best so far")
    if failed.any():
        ymin = np.nanmin(val) if np.isfinite(val).any() else 0.0
        ax.scatter(n[failed], np.full(failed.sum(), ymin), marker="x", color="black",
                   label=f"failed ({int(failed.sum())})", zorder=3)
    from matplotlib.ticker import MaxNLocator

    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel("trial (in order of completion)")
    ax.set_ylabel(ylabel)
    if log and np.nanmin(val, initial=np.inf) > 0:
        ax.set_yscale("log")
    first = trials.iloc[0]
    ax.set_title(f"Optimisation history: {first['strategy']} on {first['dataset']}/"
                 f"{first['search_space']}, seed {first['seed']}", fontsize=9)
    ax.grid(alpha=0.3)
    ax.legend(fontsize="small")
    return _save(fig, stem)


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
    from optuna.importance import (FanovaImportanceEvaluator, MeanDecreaseImpurityImportanceEvaluator,
                                   PedAnovaImportanceEvaluator)

    ok = trials[trials["usable"]]
    params = [{k: v for k, v in json.loads(p).items() if v is not None} if isinstance(p, str) else {}
              for p in ok["params"]]
    if len(params) < 2:
        raise ValueError(f"needs at least 2 ok trials, got {len(params)}")
    dists = _distributions(str(ok["search_space"].iloc[0]), params)
    study = optuna.create_study(direction="maximize")
    study.add_trials([
        optuna.trial.create_trial(params=p, distributions={k: dists[k] for k in p}, value=float(v))
        for p, v in zip(params, ok["objective"])
    ])
    cls = {"fanova": lambda: FanovaImportanceEvaluator(seed=seed),
           "mdi": lambda: MeanDecreaseImpurityImportanceEvaluator(seed=seed),
           "ped-anova": lambda: PedAnovaImportanceEvaluator()}[evaluator]
    return pd.Series(optuna.importance.get_param_importances(study, evaluator=cls()))


def importance_figure(imp: pd.Series, trials: pd.DataFrame, stem: Path, evaluator: str) -> list[Path]:
    imp = imp.sort_values()
    fig = _figure(6.0, 1.2 + 0.35 * max(len(imp), 1))
    ax = fig.add_subplot()
    ax.barh(list(imp.index), imp.to_numpy())
    for y, v in enumerate(imp.to_numpy()):
        ax.text(v, y, f" {v:.2f}", va="center", fontsize=8)
    ax.set_xlabel(f"importance ({evaluator}, {int(trials['usable'].sum())} ok trials)")
    first = trials.iloc[0]
    ax.set_title(f"Hyperparameter importances: {first['strategy']} on {first['dataset']}/"
                 f"{first['search_space']}, seed {first['seed']}", fontsize=9)
    ax.set_xlim(0, max(1.0, float(imp.max()) * 1.15) if len(imp) else 1.0)
    return _save(fig, stem)


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
    fig = _figure(4.5, 1.2 + 0.3 * len(names))
    ax = fig.add_subplot()
    im = ax.imshow(per_class.to_numpy(), vmin=0, vmax=1, cmap="viridis", aspect="auto")
    ax.set_xticks(range(3), ["precision", "recall", "F1"])
    ax.set_yticks(range(len(names)), names)
    for (i, j), v in np.ndenumerate(per_class.to_numpy()):
        ax.text(j, i, f"{v:.2f}", ha="center", va="center", fontsize=7,
                color="white" if v < 0.5 else "black")
    fig.colorbar(im, ax=ax)
    import textwrap

    ax.set_title(textwrap.fill(title, 60), fontsize=8)  # run ids are long: wrap, never cut off
    return table.reset_index(), text, _save(fig, stem)
