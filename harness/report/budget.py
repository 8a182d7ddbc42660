"""Performance over budget, aggregated across problems: normalised regret and average rank vs
trials, full-fidelity-equivalent epochs and (simulated) seconds; rank analyses at a few budgets;
the speed-up over random search.

Definitions (input: the trial frame of `harness.report.aggregate.prepare`):

- A run's *best so far* after a trial is its best validation metric over usable trials up to it
  (failed and pruned trials spend budget and never improve it).
- *Normalised regret over budget* puts problems of different units on one axis: per problem
  (dataset, space), ``(best - b) / (best - worst)`` of the best so far ``b`` (on the oriented
  scale of `stats.normalise`, log10 for regrets), with best and worst over every usable trial of
  every run of the problem. 0: the best value any strategy found on the problem; 1: the worst
  value seen. Before a run's first usable trial it is 1. After a run's last trial its value stays
  (the budget was spent).
- Budgets: ``trials`` (trials evaluated), ``epochs`` (cumulative epochs divided by the problem's
  full fidelity, the largest budget any trial of the problem was given: a full-fidelity-
  equivalent count) and ``seconds`` (``elapsed_seconds``: simulated on tabular problems).
- Aggregation: the mean over seeds per (problem, strategy), then mean and standard error over
  problems (over seeds when there is a single problem). Average rank at a budget: per problem the
  strategies' seed-averaged normalised regrets ranked (1 = best), averaged over problems.
- *Speed-up over random search* on a problem: random search's target is the median over its
  seeds of its final best validation metric. A strategy's *average runtime* to that target is
  COCO's aRT: the trials its runs spent until they first reached the target (all their trials for
  runs that never did), summed, divided by the number of runs that reached it. Speed-up = aRT of
  random search / aRT of the strategy (> 1: faster; 0: never reached).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from harness.report import stats

BUDGETS = {
    "trials": ("n_trial", "trials evaluated"),
    "epochs": ("fidelity_equivalents", "full-fidelity-equivalent epochs"),
    "seconds": ("elapsed_seconds", "seconds"),
}
REFERENCE = "random"  # the speed-up baseline


def best_so_far_normalised(trials: pd.DataFrame) -> pd.DataFrame:
    """Per trial row: the run's normalised regret of its best so far, and the budget columns."""
    df = trials[
        [
            "run",
            "experiment",
            "run_id",
            "dataset",
            "search_space",
            "strategy",
            "seed",
            "n_trial",
            "cum_epochs",
            "elapsed_seconds",
            "budget",
            "usable",
            "score_val",
            "metric",
            "lower",
            "clock",
        ]
    ].copy()
    scaled = stats.on_normalised_scale(df["score_val"].where(df["usable"]).astype(float), df["metric"])
    best = scaled.groupby(df["run"], sort=False).cummax()
    best = best.groupby(df["run"], sort=False).ffill()
    # The scale is every usable trial of the problem, not only the runs' bests so far.
    df["nr"] = stats.normalise(best, df[["dataset", "search_space"]], reference=scaled)
    problem = [df["dataset"], df["search_space"]]
    full = pd.to_numeric(df["budget"], errors="coerce").groupby(problem, dropna=False).transform("max")
    df["fidelity_equivalents"] = df["cum_epochs"] / full.where(full > 0)
    return df


def _grid(values: pd.Series, points: int = 60, integer: bool = False) -> np.ndarray:
    v = pd.to_numeric(values, errors="coerce").to_numpy(float)
    v = v[np.isfinite(v) & (v > 0)]
    if not len(v):
        return np.array([])
    lo, hi = v.min(), v.max()
    grid = np.geomspace(lo, hi, points) if hi > lo else np.array([lo])
    return np.unique(np.round(grid)) if integer else grid


def curves(frame: pd.DataFrame, budget: str, grid: np.ndarray | None = None) -> pd.DataFrame:
    """Long frame (problem, strategy, seed, budget, nr): each run's normalised regret at each grid
    budget (the last trial at or below it; 1 before any)."""
    x = BUDGETS[budget][0]
    if grid is None:
        grid = _grid(frame[x], integer=budget == "trials")
    rows = []
    for run, c in frame.dropna(subset=[x]).groupby("run", sort=False):
        xs = c[x].to_numpy(float)
        order = np.argsort(xs, kind="stable")
        xs, nr = xs[order], c["nr"].to_numpy(float)[order]
        idx = np.searchsorted(xs, grid, side="right") - 1
        vals = np.where(idx >= 0, nr[np.clip(idx, 0, None)], 1.0)
        first = c.iloc[0]
        rows.append(
            pd.DataFrame(
                {
                    "dataset": first["dataset"],
                    "search_space": first["search_space"],
                    "strategy": first["strategy"],
                    "seed": first["seed"],
                    "run": run,
                    "budget": grid,
                    "nr": vals,
                }
            )
        )
    if not rows:
        return pd.DataFrame(columns=["dataset", "search_space", "strategy", "seed", "run", "budget", "nr"])
    return pd.concat(rows, ignore_index=True)


def aggregate(long: pd.DataFrame) -> pd.DataFrame:
    """Per (strategy, budget): mean normalised regret and its standard error, average rank, and
    the number of problems (see the module docstring)."""
    long = complete_problems(long)
    per_problem = (
        long.groupby(["dataset", "search_space", "strategy", "budget"], sort=True)["nr"].mean().rename("nr").reset_index()
    )
    n_problems = per_problem[["dataset", "search_space"]].drop_duplicates().shape[0]
    if n_problems >= 2:
        g = per_problem.groupby(["strategy", "budget"])["nr"]
        unit = "problems"
    else:  # one problem: the spread is over seeds
        g = long.groupby(["strategy", "budget"])["nr"]
        unit = "seeds"
    out = g.agg(["mean", "std", "count"]).rename(columns={"mean": "nr_mean"})
    out["nr_se"] = out["std"] / np.sqrt(out["count"])
    # Ranks per (problem, budget) among the strategies with a value there.
    per_problem["rank"] = per_problem.groupby(["dataset", "search_space", "budget"])["nr"].rank(method="average")
    out["rank_mean"] = per_problem.groupby(["strategy", "budget"])["rank"].mean()
    out["problems"] = n_problems
    out["se_over"] = unit
    return out.drop(columns=["std"]).reset_index()


def complete_problems(long: pd.DataFrame) -> pd.DataFrame:
    """Only the problems where every strategy has runs, as for the ranks: a strategy missing a
    problem would otherwise be averaged and ranked over other problems than the rest."""
    strategies = long["strategy"].nunique()
    per_problem = long.groupby(["dataset", "search_space"])["strategy"].transform("nunique")
    return long[per_problem == strategies]


def budget_table(per_problem: pd.DataFrame) -> pd.DataFrame:
    """Problems x strategies table of seed-averaged normalised regret at one budget."""
    return per_problem.pivot_table(
        index=["dataset", "search_space"], columns="strategy", values="nr", aggfunc="mean"
    ).sort_index()


def analyses_at_budgets(
    frame: pd.DataFrame, fractions: Sequence[float] = (0.1, 0.5, 1.0), *, alpha: float = 0.05
) -> list[tuple[float, float, float, stats.RankAnalysis]]:
    """Rank analyses of the validation metric after a fraction of the trial budget.

    `frame` comes from `best_so_far_normalised`. The budget is a fraction of the shortest run's
    trials, so every run has spent it; returns (fraction asked, fraction used, trials, analysis),
    once per distinct number of trials."""
    if frame.empty:
        return []
    last = float(frame.groupby("run")["n_trial"].max().min())
    out, seen = [], set()
    for f in fractions:
        b = max(1.0, float(np.floor(f * last)))
        if b in seen:
            continue
        seen.add(b)
        at = complete_problems(curves(frame, "trials", grid=np.array([b])))
        out.append((f, b / last, b, stats.rank_analysis(budget_table(at), metric="val", alpha=alpha)))
    return out


def speedup_over_random(frame: pd.DataFrame, reference: str = REFERENCE) -> pd.DataFrame:
    """Per (problem, strategy): random search's target, the aRT to it and the speed-up (module
    docstring). Empty when random search did not run."""
    if reference not in set(frame["strategy"]):
        return pd.DataFrame()
    # On the metric's own (oriented) scale: the median of random's regrets, not of their logs.
    score = frame["score_val"].where(frame["usable"]).astype(float)
    bsf = score.groupby(frame["run"], sort=False).cummax()
    data = frame[["run", "dataset", "search_space", "strategy", "n_trial"]].assign(best=bsf)
    lower = frame.groupby(["dataset", "search_space"])["lower"].first().astype(bool)
    final = data.groupby("run").agg(
        dataset=("dataset", "first"),
        search_space=("search_space", "first"),
        strategy=("strategy", "first"),
        best=("best", "max"),
        trials=("n_trial", "max"),
    )
    keys = ["dataset", "search_space"]
    targets = final[final["strategy"] == reference].groupby(keys)["best"].median().dropna().rename("target").reset_index()
    if targets.empty:
        return pd.DataFrame()
    data = data.merge(targets, on=keys, how="inner")
    first_hit = data[data["best"] >= data["target"]].groupby("run")["n_trial"].min()
    final = final.reset_index().merge(targets, on=keys, how="inner")
    final["hit"] = final["run"].map(first_hit)
    final["spent"] = final["hit"].fillna(final["trials"])
    g = final.groupby(keys + ["strategy"], sort=True)
    out = g.agg(target=("target", "first"), spent=("spent", "sum"), reached=("hit", "count"), runs=("run", "size")).reset_index()
    # The target in the metric's units (an accuracy, an RMSE, a regret), as the tables show them.
    flip = pd.MultiIndex.from_frame(out[keys]).map(lambda k: bool(lower.get(k, False)))
    out["target"] = np.where(np.asarray(flip, bool), -out["target"], out["target"])
    out["art_trials"] = np.where(out["reached"] > 0, out["spent"] / out["reached"].clip(lower=1), np.inf)
    ref = out[out["strategy"] == reference].set_index(keys)["art_trials"]
    ref_art = pd.MultiIndex.from_frame(out[keys]).map(ref.to_dict().get)
    out["speedup"] = np.where(np.isfinite(out["art_trials"]), np.asarray(ref_art, float) / out["art_trials"], 0.0)
    return out.drop(columns=["spent"])


def speedup_summary(per_problem: pd.DataFrame) -> pd.DataFrame:
    """Per strategy: problems where the target was reached, median and geometric-mean speed-up
    (the geometric mean over the problems where it was reached)."""
    if per_problem.empty:
        return pd.DataFrame()
    rows = []
    for strategy, g in per_problem.groupby("strategy", sort=True):
        ok = g["speedup"][g["speedup"] > 0]
        rows.append(
            {
                "strategy": strategy,
                "problems": len(g),
                "problems_reached": int((g["reached"] > 0).sum()),
                "speedup_median": float(g["speedup"].median()),
                "speedup_geomean_reached": float(np.exp(np.log(ok).mean())) if len(ok) else float("nan"),
            }
        )
    return pd.DataFrame(rows).set_index("strategy")


# -- figures ------------------------------------------------------------------------------------
def budget_figure(
    agg: dict[str, pd.DataFrame], out: Path, colors: Mapping[str, str], markers: Mapping[str, str] | None = None
) -> list[Path]:
    """One figure per budget kind: mean normalised regret ± SE and average rank vs budget."""
    from harness.report import figures

    paths: list[Path] = []
    for budget, frame in agg.items():
        if frame.empty:
            continue
        fig = _figure_for(frame, budget, colors, markers or {})
        paths += figures._save(fig, out / f"budget_{budget}")
    return paths


def _figure_for(frame: pd.DataFrame, budget: str, colors: Mapping[str, str], markers: Mapping[str, str]) -> Any:
    from harness.report import figures
    import matplotlib

    with matplotlib.rc_context(figures._RC):
        fig = figures._figure(7.0, 2.7)
        ax_nr, ax_rank = fig.subplots(1, 2)
        simulated = bool(frame.attrs.get("simulated", False))
        xlabel = BUDGETS[budget][1]
        if budget == "seconds":
            xlabel = "simulated seconds" if simulated else "wall-clock seconds"
        for strategy, g in frame.groupby("strategy", sort=True):
            color = colors.get(strategy)
            # One point past the end, so the last value is a visible step, not a drop at the edge.
            g = pd.concat([g, g.iloc[[-1]].assign(budget=g["budget"].iloc[-1] * 1.12)])
            x = g["budget"].to_numpy(float)
            m, se = g["nr_mean"].to_numpy(float), g["nr_se"].fillna(0).to_numpy(float)
            every = max(1, len(x) // 6)
            ax_nr.plot(
                x,
                m,
                color=color,
                marker=markers.get(strategy),
                markevery=(0, every),
                ms=3.5,
                lw=1.2,
                label=strategy,
                drawstyle="steps-post",
            )
            ax_nr.fill_between(x, np.clip(m - se, 0, 1), np.clip(m + se, 0, 1), color=color, alpha=0.18, step="post", lw=0)
            ax_rank.plot(
                x,
                g["rank_mean"].to_numpy(float),
                color=color,
                marker=markers.get(strategy),
                markevery=every,
                ms=3.5,
                lw=1.2,
                drawstyle="steps-post",
            )
        n, over = int(frame["problems"].iloc[0]), str(frame["se_over"].iloc[0])
        budgets = frame["budget"].to_numpy(float)
        for ax in (ax_nr, ax_rank):
            ax.set_xscale("log")
            figures.plain_log_ticks(ax, float(budgets.min()), float(budgets.max()) * 1.12)
            ax.set_xlabel(xlabel)
            figures._style_axes(ax)
        ax_nr.set_ylabel("normalised regret (mean ± SE)")
        ax_nr.set_ylim(-0.02, 1.02)
        k = frame["strategy"].nunique()
        ax_rank.set_ylabel("average rank (1 = best)")
        ax_rank.set_ylim(k + 0.3, 0.7)  # best at the top
        fig.legend(*ax_nr.get_legend_handles_labels(), loc="outside right center", frameon=False)
        fig.suptitle(
            f"Over {n} problem{'s' if n != 1 else ''} (SE over {over}): normalised regret of the "
            f"best validation value so far, and average rank"
        )
    return fig
