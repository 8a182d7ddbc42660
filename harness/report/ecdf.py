"""Runtime ECDFs for problems with a known optimum (COCO / IOHprofiler style), and an export of
BBOB runs that IOHanalyzer loads.

Definitions (input: the trial frame of `harness.report.aggregate.prepare`):

- *Targets* are precisions on the regret f(x) - f_opt: by default COCO's 51 targets
  ``COCO_TARGETS = 10**np.linspace(2, -8, 51)`` (10^2 .. 10^-8, five per decade).
- A run's *best-so-far regret* after a trial is the lowest regret over its usable trials up to and
  including that one (failed and pruned trials count towards the budget but never improve it).
- A run *hits* target t at budget b when its best-so-far regret at budget b is <= t. Its *first
  hit* (COCO's runtime) is the smallest such b, ``inf`` when the run never got there within its
  budget. The budget is the column ``x``: by default ``n_trial``, the number of trials evaluated
  so far in completion order (failed ones included), i.e. function evaluations; ``elapsed_seconds``
  or ``cum_epochs`` also work.
- The *runtime ECDF* of a strategy at budget b is the fraction of its (run, target) pairs whose
  first hit is <= b: over every problem together (COCO's aggregated "ECDF of runtimes", a data
  profile in the sense of Moré and Wild with targets), and per (dataset, search space) panel,
  i.e. per problem instance. Every pair weighs the same, so a problem weighs by its number of
  runs (the same for every problem when a sweep ran the same seeds everywhere). Pairs never
  solved stay in the denominator, so a curve ends at the fraction of pairs solved within the
  runs' budgets.
- COCO's "bootstrapped" ECDF extends runtimes beyond the budget by simulated restarts of
  unsuccessful runs; here runs are not restarted. Up to the smallest run budget the plain ECDF
  computed here is the expectation of COCO's; after each run's own budget it stays flat.
- Only runs whose metric is ``regret`` (problems with a known optimum, e.g. BBOB) are used.
  Problems with no known optimum (accuracy, RMSE) are left out: a target there would need a
  per-problem reference value, which the harness does not have.

`export_iohprofiler` writes BBOB runs in IOHprofiler's format by replaying them through the real
functions (the `ioh` package); see its docstring.
"""

from __future__ import annotations

import json
import math
import re
import shutil
import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

__all__ = ["COCO_TARGETS", "default_grid", "ecdf_figure", "export_iohprofiler", "first_hits", "runtime_ecdf"]

COCO_TARGETS = 10.0 ** np.linspace(2, -8, 51)

RUN_INFO = ["experiment", "run_id", "strategy", "dataset", "search_space", "seed"]
HIT_COLUMNS = ["run", *RUN_INFO, "target", "first_hit", "budget_used", "x"]
ECDF_COLUMNS = [
    "scope",
    "panel",
    "dataset",
    "search_space",
    "strategy",
    "budget",
    "fraction",
    "solved",
    "n_pairs",
    "n_runs",
    "n_problems",
    "n_targets",
    "max_budget",
    "x",
]
ALL_PANEL = "all problems"

X_LABELS = {
    "n_trial": "trials evaluated (function evaluations)",
    "elapsed_seconds": "wall time (s)",
    "cum_epochs": "cumulative epochs trained",
}

BBOB_INSTANCE = re.compile(r"^bbob-f(\d+)-d(\d+)-i(\d+)$")
REL_TOL = 1e-9  # replayed vs recorded f: same library, same point, so only the last bits may differ


# -- first hits ---------------------------------------------------------------------------------
def first_hits(trials: pd.DataFrame, targets: Sequence[float] | np.ndarray = COCO_TARGETS, x: str = "n_trial") -> pd.DataFrame:
    """Per run with a ``regret`` metric and per target, the first budget at which it was hit.

    Returns one row per (run, target) with ``first_hit`` (the `x` value of the first trial whose
    best-so-far regret over usable trials is <= target; ``np.inf`` if never), ``budget_used`` (the
    run's largest `x`, all trials counted), ``x`` (the budget column's name) and the run's
    ``RUN_INFO`` columns. Vectorised: one sort and one binary search over all (run, target)
    pairs, no loop over runs.
    """
    targets = np.asarray(targets, dtype=float).ravel()
    if "metric" not in trials.columns:
        raise ValueError("first_hits needs the frame of harness.report.aggregate.prepare (no 'metric' column)")
    df = trials.loc[trials["metric"] == "regret"]
    if df.empty or not len(targets):
        return pd.DataFrame(
            {c: pd.Series(dtype=float if c in ("target", "first_hit", "budget_used") else object) for c in HIT_COLUMNS}
        )
    order = ["run", "n_trial"] if "n_trial" in df.columns else ["run"]
    df = df.sort_values(order, kind="stable")  # prepare() already did; cheap when sorted

    codes, _ = pd.factorize(df["run"].to_numpy())  # rows are grouped by run: codes never decrease
    n_rows, n_runs = len(df), int(codes.max()) + 1
    regret = np.where(df["usable"].to_numpy(bool), df["val"].to_numpy(float), np.inf)
    regret[np.isnan(regret)] = np.inf
    best = pd.Series(regret).groupby(codes, sort=False).cummin().to_numpy()
    # The budget must not decrease within a run (it is cumulative); a missing value (a row without
    # elapsed_seconds) takes the run's previous one.
    budget = pd.Series(df[x].to_numpy(float)).groupby(codes, sort=False).cummax()
    budget = budget.groupby(codes, sort=False).ffill().to_numpy()

    # best is non-increasing within a run, so (run, -best) is sorted; a target t is first hit at
    # the first row of the run with -best >= -t. Ranks of the pooled values make one integer key.
    pooled = np.concatenate([-best, -targets])
    levels, rank = np.unique(pooled, return_inverse=True)
    row_key = codes.astype(np.int64) * len(levels) + rank[:n_rows]
    run_of_pair = np.repeat(np.arange(n_runs), len(targets))
    query = run_of_pair * len(levels) + np.tile(rank[n_rows:], n_runs)
    first_row = np.searchsorted(row_key, query, side="left")
    run_end = np.searchsorted(codes, np.arange(n_runs), side="right")
    hit = first_row < run_end[run_of_pair]
    first_hit = np.full(len(query), np.inf)
    first_hit[hit] = budget[first_row[hit]]

    run_start = np.searchsorted(codes, np.arange(n_runs), side="left")
    info = df.iloc[run_start][["run", *[c for c in RUN_INFO if c in df.columns]]].reset_index(drop=True)
    info["budget_used"] = pd.Series(budget).groupby(codes, sort=True).max().to_numpy()
    out = info.loc[run_of_pair].reset_index(drop=True)
    out.insert(len(out.columns) - 1, "target", np.tile(targets, n_runs))
    out.insert(len(out.columns) - 1, "first_hit", first_hit)
    out["x"] = x
    return out


# -- ECDF ---------------------------------------------------------------------------------------
def default_grid(hits: pd.DataFrame) -> np.ndarray:
    """Every budget at which some curve can step (each finite first hit) and each run's last
    budget: on this grid the step function is exact."""
    values = np.concatenate([hits["first_hit"].to_numpy(float), hits["budget_used"].to_numpy(float)])
    return np.unique(values[np.isfinite(values)])


def runtime_ecdf(hits: pd.DataFrame, grid: Sequence[float] | np.ndarray | None = None) -> pd.DataFrame:
    """Fraction of (run, target) pairs solved at each budget of `grid`, per strategy.

    `hits` comes from `first_hits`. Rows with ``scope == "all"`` aggregate every problem (panel
    ``"all problems"``); rows with ``scope == "problem"`` are per (dataset, search space). Columns:
    ``ECDF_COLUMNS``; ``solved`` counts the pairs with first hit <= ``budget``, ``n_pairs`` all of
    them, ``max_budget`` is the largest budget a run of that curve used. The default grid is
    `default_grid` (exact steps).
    """
    grid = default_grid(hits) if grid is None else np.unique(np.asarray(grid, dtype=float))
    frames: list[pd.DataFrame] = []
    if len(hits) and len(grid):
        problems = hits.groupby("strategy")[["dataset", "search_space"]].apply(
            lambda g: frozenset(zip(g["dataset"], g["search_space"]))
        )
        if problems.nunique() > 1:
            warnings.warn(
                "the strategies' runs cover different problems; their aggregated ECDFs are "
                "not over the same (run, target) pairs, compare the per-problem panels",
                stacklevel=2,
            )
        for strategy, group in hits.groupby("strategy", sort=True):
            frames.append(_curve(group, grid, "all", ALL_PANEL, "", "", str(strategy)))
        for (dataset, space, strategy), group in hits.groupby(["dataset", "search_space", "strategy"], sort=True):
            frames.append(_curve(group, grid, "problem", f"{dataset} / {space}", str(dataset), str(space), str(strategy)))
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=ECDF_COLUMNS)


def _curve(
    group: pd.DataFrame, grid: np.ndarray, scope: str, panel: str, dataset: str, space: str, strategy: str
) -> pd.DataFrame:
    hit = np.sort(group["first_hit"].to_numpy(float))  # inf (and NaN) sort last: never counted
    solved = np.searchsorted(hit, grid, side="right")
    n_pairs = len(hit)
    return pd.DataFrame(
        {
            "scope": scope,
            "panel": panel,
            "dataset": dataset,
            "search_space": space,
            "strategy": strategy,
            "budget": grid,
            "fraction": solved / n_pairs,
            "solved": solved,
            "n_pairs": n_pairs,
            "n_runs": group["run"].nunique(),
            "n_problems": len(group[["dataset", "search_space"]].drop_duplicates()),
            "n_targets": group["target"].nunique(),
            "max_budget": float(group["budget_used"].max()),
            "x": group["x"].iloc[0],
        }
    )


# -- figures ------------------------------------------------------------------------------------
def ecdf_figure(
    ecdf: pd.DataFrame, out_stem: Path, colors: Mapping[str, str], markers: Mapping[str, str] | None = None
) -> list[Path]:
    """The aggregated runtime ECDF (one axis, a paper column wide) at `out_stem` and the
    per-problem grid at `out_stem` + ``_problems``, each as PNG and PDF.

    `ecdf` comes from `runtime_ecdf`; `colors` (and `markers`, default
    `harness.report.style.strategy_markers`) map strategies to their look in every figure.
    """
    import matplotlib

    from harness.report.figures import _RC, _figure, _save
    from harness.report.style import COLUMN_WIDTH, PAGE_WIDTH, strategy_markers

    if ecdf.empty:
        return []
    out_stem = Path(out_stem)
    markers = dict(markers or strategy_markers(ecdf["strategy"].unique()))
    x = str(ecdf["x"].iloc[0]) if "x" in ecdf.columns else "n_trial"
    xlabel = X_LABELS.get(x, x)
    agg = ecdf[ecdf["scope"] == "all"]
    per_problem = ecdf[ecdf["scope"] == "problem"]
    n_targets = int(ecdf["n_targets"].max())
    paths: list[Path] = []
    with matplotlib.rc_context(_RC):  # the report's type sizes, as in every other figure
        if not agg.empty:
            fig = _figure(COLUMN_WIDTH, 2.8)
            ax = fig.add_subplot()
            _draw(ax, agg, colors, markers)
            ax.set_xlabel(xlabel)
            ax.set_ylabel("fraction of (run, target) pairs solved")
            n_problems = int(agg["n_problems"].max())
            n_runs = int(agg.groupby("strategy")["n_runs"].first().sum())
            ax.set_title(f"Runtime ECDF: {n_problems} problem{'s' * (n_problems != 1)}, {n_runs} runs, {n_targets} targets")
            ax.legend(loc="best", frameon=True, framealpha=0.9)
            paths += _save(fig, out_stem)
        panels = list(dict.fromkeys(per_problem.sort_values("panel")["panel"]))
        if panels:
            ncol = min(len(panels), 3 if len(panels) <= 9 else 4)  # 24 BBOB functions: 6 rows of 4
            nrow = math.ceil(len(panels) / ncol)
            row_height = 2.1 if ncol <= 3 else 1.8
            fig = _figure(PAGE_WIDTH if ncol > 1 else COLUMN_WIDTH, 0.6 + row_height * nrow)
            axes = np.atleast_1d(fig.subplots(nrow, ncol, squeeze=False, sharey=True)).ravel()
            for ax, panel in zip(axes, panels):
                frame = per_problem[per_problem["panel"] == panel]
                _draw(ax, frame, colors, markers)
                runs = int(frame.groupby("strategy")["n_runs"].first().sum())
                first = frame.iloc[0]
                ax.set_title(f"{first['dataset']}\n{first['search_space']}, {runs} runs", fontsize=7)
            for i, ax in enumerate(axes):
                if i >= len(panels):
                    ax.set_visible(False)
                    continue
                if i % ncol == 0:
                    ax.set_ylabel("fraction of pairs solved")
            legend: dict[str, Any] = {}  # every strategy once, even where one ran on some panels only
            for ax in axes[: len(panels)]:
                for handle, label in zip(*ax.get_legend_handles_labels()):
                    legend.setdefault(label, handle)
            labels = sorted(legend)
            fig.legend([legend[lb] for lb in labels], labels, loc="outside right upper", ncol=1, frameon=False)
            fig.supxlabel(xlabel, fontsize=8)
            fig.suptitle(f"Runtime ECDF per problem ({n_targets} regret targets)", fontsize=8)
            paths += _save(fig, out_stem.with_name(out_stem.name + "_problems"))
    return paths


def _draw(ax: Any, frame: pd.DataFrame, colors: Mapping[str, str], markers: Mapping[str, str]) -> None:
    """One step curve per strategy on a log budget axis, the last value carried to the right edge."""
    from harness.report.figures import plain_log_ticks

    right = float(frame["budget"].max())
    positive = frame.loc[frame["budget"] > 0, "budget"]
    left = float(positive.min()) if len(positive) else 1.0
    edge = right * 1.25 if right > 0 else 1.0  # room after the last step, so it is not zero-width
    strategies = sorted(frame["strategy"].unique())
    for k, strategy in enumerate(strategies):
        curve = frame[frame["strategy"] == strategy].sort_values("budget")
        budgets = curve["budget"].to_numpy(float)
        xs = np.append(budgets, edge)
        ys = np.append(curve["fraction"].to_numpy(float), curve["fraction"].iloc[-1])
        ax.plot(
            xs,
            ys,
            drawstyle="steps-post",
            color=colors.get(str(strategy)),
            linewidth=1.4,
            marker=markers.get(str(strategy), "o"),
            markersize=4,
            markevery=_marker_positions(budgets, left, right, k, len(strategies)),
            label=str(strategy),
            clip_on=False,
        )  # the limits hold every point; markers on the frame stay whole
    ax.set_xscale("log")
    ax.set_xlim(left, edge)
    plain_log_ticks(ax, left, edge)
    ax.set_ylim(-0.03, 1.03)  # markers at 0 and 1 stay whole
    ax.grid(alpha=0.3, which="major")


def _marker_positions(budgets: np.ndarray, left: float, right: float, k: int, n: int) -> list[int]:
    """Indices of ~7 points evenly spaced on the log axis, shifted per strategy so that markers of
    overlapping curves stay apart (greyscale print tells curves apart by marker)."""
    if not len(budgets) or left <= 0 or right <= left:
        return [0] if len(budgets) else []
    spots = np.geomspace(left, right, 8)[:-1] * (right / left) ** ((k + 0.5) / (8 * max(n, 1)))
    idx = np.clip(np.searchsorted(budgets, spots, side="right") - 1, 0, len(budgets) - 1)
    return sorted({int(i) for i in idx})


# -- IOHprofiler export -------------------------------------------------------------------------
def export_iohprofiler(trials: pd.DataFrame, out_dir: Path) -> list[Path]:
    """Write every BBOB run of `trials` in IOHprofiler's format; returns the files written.

    Layout (what IOHanalyzer loads): per strategy a folder ``out_dir/<strategy>/`` holding
    ``IOHprofiler_f<fid>_<FunctionName>.json`` and
    ``data_f<fid>_<FunctionName>/IOHprofiler_f<fid>_DIM<d>.dat``. The files are written by
    `ioh.logger.Analyzer` itself: each run's recorded params ``x0 .. x<D-1>`` are replayed, in
    trial order, through the real function (``ioh.get_problem(fid, instance, dimension, BBOB)``)
    with the logger attached, one algorithm per strategy and one IOH run per harness run (run
    attribute ``seed``). Every evaluation is logged (trigger ``ALWAYS``) at full precision; the
    ``raw_y`` column is what `ioh` logs for BBOB, the precision f(x) - f_opt (the recorded regret).

    - Only usable trials are replayed. A failed trial has no function value the strategy saw
      (it raised, or gave NaN), so replaying it would invent one; IOH's evaluation count is
      therefore the number of usable trials, which is lower than ``n_trial`` where trials failed
      (a warning gives the count). BBOB has no fidelity, so there are no pruned trials.
    - A replayed f that differs from the recorded objective by more than 1e-9 relative (another
      `ioh` version, an edited file) is warned about, naming the run; the file keeps the replayed
      value. Runs without params (column ``params`` missing, null or lacking an ``x<i>``) or
      without any usable trial are skipped with a warning.
    - A strategy folder that already holds an earlier export is replaced; any other existing
      folder of that name is refused (`FileExistsError`).

    To look at the result: zip `out_dir` (or one strategy folder) and upload it on
    https://iohanalyzer.liacs.nl ("Upload Data"), or in R:
    ``IOHanalyzer::DataSetList("<out_dir>")`` (or ``runServer()`` and upload the zip).
    """
    import ioh

    out_dir = Path(out_dir)
    runs = _bbob_runs(trials)
    if not runs:
        return []
    if "params" not in trials.columns and "param.x0" not in trials.columns:
        warnings.warn(
            "IOHprofiler export: no run written, the trials have no 'params' column; read "
            "them with load.read_trials(path, columns=aggregate.NEEDED + ['params'])",
            stacklevel=2,
        )
        return []
    out_dir.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    skipped_trials = 0
    by_strategy: dict[str, list[dict[str, Any]]] = {}
    for run in runs:
        by_strategy.setdefault(run["strategy"], []).append(run)
    for strategy in sorted(by_strategy):
        folder = out_dir / _folder_name(strategy)
        _clear_previous_export(folder)
        experiments = sorted({r["experiment"] for r in by_strategy[strategy]})
        logger = ioh.logger.Analyzer(
            triggers=[ioh.logger.trigger.ALWAYS],
            root=str(out_dir),
            folder_name=folder.name,
            algorithm_name=strategy,
            algorithm_info=f"automl-harness strategy {strategy}; replayed from recorded trials",
        )
        logger.full_precision = True  # %.17g: raw_y round-trips exactly
        logger.add_experiment_attribute("harness_experiments", ",".join(experiments) or "-")
        logger.add_run_attribute("seed", 0.0)
        by_problem: dict[tuple[int, int, int], list[dict[str, Any]]] = {}
        for run in by_strategy[strategy]:
            by_problem.setdefault(run["problem_key"], []).append(run)
        for fid, dim, iid in sorted(by_problem):
            problem = ioh.get_problem(fid, instance=iid, dimension=dim, problem_class=ioh.ProblemClass.BBOB)
            f_opt = float(problem.optimum.y)
            problem.attach_logger(logger)
            for run in sorted(by_problem[(fid, dim, iid)], key=lambda r: (r["seed"], r["experiment"], r["run_id"])):
                points = _points(run, dim)
                if points is None:
                    continue
                skipped_trials += run["n_unusable"]
                logger.set_run_attribute("seed", float(run["seed"]))
                replayed = np.asarray(problem(points.tolist()), dtype=float).ravel()
                problem.reset()  # ends this IOH run; the next one starts fresh
                _check_replay(run, replayed, f_opt)
            problem.detach_logger()
        logger.close()
        written += sorted(p for p in Path(logger.output_directory).rglob("*") if p.is_file())
    if skipped_trials:
        warnings.warn(
            f"IOHprofiler export: {skipped_trials} failed or non-usable trials were not "
            "replayed (no function value was recorded for them); IOH's evaluation counts "
            "are usable trials only",
            stacklevel=2,
        )
    return written


def _bbob_runs(trials: pd.DataFrame) -> list[dict[str, Any]]:
    """The BBOB runs of `trials`, each with its usable rows in trial order."""
    if "instance" not in trials.columns or trials.empty:
        return []
    labels = trials["instance"].astype("object").fillna("").astype(str)
    parsed = labels.str.extract(BBOB_INSTANCE)
    df = trials.loc[parsed[0].notna()].copy()
    if df.empty:
        return []
    df[["_fid", "_dim", "_iid"]] = parsed.loc[df.index].astype(int).to_numpy()
    if "usable" not in df.columns:  # a raw trial frame rather than a prepared one
        df["usable"] = (df["status"] == "ok") & np.isfinite(pd.to_numeric(df["objective"], errors="coerce"))
    if "experiment" not in df.columns:
        df["experiment"] = ""
    df["experiment"] = df["experiment"].astype("object").fillna("").astype(str)
    order = ["n_trial"] if "n_trial" in df.columns else [c for c in ("elapsed_seconds", "trial_id") if c in df.columns]
    df = df.sort_values(["experiment", "run_id", *order], kind="stable")
    # A prepared frame's `objective` is the oriented score (-regret): there the recorded f is
    # regret + f_opt; a raw frame still has f itself.
    raw_objective = "score_val" not in df.columns and "objective" in df.columns
    runs = []
    for (experiment, run_id), rows in df.groupby(["experiment", "run_id"], sort=True):
        usable = rows[rows["usable"].to_numpy(bool)]
        first = rows.iloc[0]
        runs.append(
            {
                "experiment": str(experiment),
                "run_id": str(run_id),
                "strategy": str(first["strategy"]),
                "seed": int(first["seed"]) if pd.notna(first["seed"]) else 0,
                "problem_key": (int(first["_fid"]), int(first["_dim"]), int(first["_iid"])),
                "rows": usable,
                "n_unusable": len(rows) - len(usable),
                "recorded_f": (pd.to_numeric(usable["objective"], errors="coerce").to_numpy(float) if raw_objective else None),
                "regret": pd.to_numeric(usable["regret"], errors="coerce").to_numpy(float)
                if "regret" in usable.columns
                else None,
            }
        )
    return runs


def _points(run: dict[str, Any], dim: int) -> np.ndarray | None:
    """The run's usable trials as a (trials x dim) matrix, or None (warned) when params are missing."""
    rows: pd.DataFrame = run["rows"]
    where = f"run {run['experiment']}/{run['run_id']}" if run["experiment"] else f"run {run['run_id']}"
    if rows.empty:
        warnings.warn(f"IOHprofiler export: skipping {where}: no usable trial", stacklevel=3)
        return None
    names = [f"x{i}" for i in range(dim)]
    try:
        if "params" in rows.columns and rows["params"].notna().all():
            parsed = [json.loads(p) for p in rows["params"]]
            return np.array([[float(p[n]) for n in names] for p in parsed], dtype=float)
        columns = [f"param.{n}" for n in names]
        if all(c in rows.columns for c in columns) and rows[columns].notna().all().all():
            return rows[columns].to_numpy(float)
    except (KeyError, TypeError, ValueError):
        pass
    warnings.warn(
        f"IOHprofiler export: skipping {where}: its trials' params x0..x{dim - 1} are "
        "missing (read the results with the 'params' column)",
        stacklevel=3,
    )
    return None


def _check_replay(run: dict[str, Any], replayed: np.ndarray, f_opt: float) -> None:
    recorded = run["recorded_f"]
    if recorded is None or not np.isfinite(recorded).all():
        recorded = run["regret"] + f_opt if run["regret"] is not None else None
    if recorded is None:
        return
    off = np.abs(replayed - recorded) > REL_TOL * np.maximum(np.abs(replayed), np.abs(recorded)) + 1e-300
    off |= ~np.isfinite(recorded)
    if off.any():
        i = int(np.argmax(off))
        warnings.warn(
            f"IOHprofiler export: run {run['run_id']}: {int(off.sum())} of {len(off)} replayed "
            f"f values differ from the recorded objective (e.g. usable trial {i + 1}: replayed "
            f"{replayed[i]!r}, recorded {recorded[i]!r}); another ioh version? The file holds "
            "the replayed values",
            stacklevel=3,
        )


def _folder_name(strategy: str) -> str:
    return re.sub(r"[^A-Za-z0-9._+-]", "_", strategy) or "strategy"


def _clear_previous_export(folder: Path) -> None:
    """Remove an earlier export of this strategy (ioh would otherwise write to `<name>-1`)."""
    if not folder.exists():
        return
    if folder.is_dir() and any(folder.glob("IOHprofiler_f*.json")):
        shutil.rmtree(folder)
        return
    raise FileExistsError(
        f"{str(folder)!r} exists and is not an IOHprofiler export; choose an empty folder for export_iohprofiler"
    )
