"""From trial rows to one row per run and one row per (dataset, search space, strategy) cell.

Everything here is vectorised pandas (sorts and groupbys, no per-row Python loops): the report's
tables must stay fast at 100,000 trial rows.

Definitions (docs/report.md documents them for users):

- Every problem is reported the same way from the generic columns (schema version 2; version-1
  files are upgraded on reading). The *metric* of a row is its ``regret`` where the problem
  knows its optimum (BBOB: lower is better), else its ``objective`` in the problem's own
  direction (validation accuracy, RMSE, ...); ``val`` is that metric, ``test`` the same metric on
  held-out data (``test_objective``; the regret or objective again where there is none).
- A trial is *usable* when its status is ``ok`` and its objective is finite. Failed and pruned
  trials are counted, never used to select a configuration.
- A run's *selected configuration* is its usable trial with the best validation metric; ties go
  to the earliest trial. Its test metric is the one the table reports: the best *test* value of a
  run is never used, it would be selected on test.
- Rows with a task other than ``classification`` or ``regression`` (the GA-trained GAN writes
  ``generation``) are skipped with one warning.
- *Time-to-target*: wall seconds (``elapsed_seconds``) and cumulative epochs trained, including
  those of failed and pruned trials, until the first usable trial whose validation metric reached
  the target (accuracy >= target, or RMSE <= target).
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

TASKS = ("classification", "regression")
CELL_KEYS = ["dataset", "search_space", "strategy"]
ROW_KEYS = ["dataset", "search_space"]
RUN_COLUMNS = ["experiment", "run_id", "dataset", "search_space", "strategy", "seed", "task", "metric", "lower"]

# Columns the report needs; reading only these keeps large folders fast.
NEEDED = [
    "experiment",
    "run_id",
    "problem",
    "instance",
    "dataset",
    "search_space",
    "strategy",
    "seed",
    "task",
    "trial_id",
    "status",
    "budget",
    "budget_spent",
    "objective",
    "objective_name",
    "objective_direction",
    "test_objective",
    "regret",
    "ask_seconds",
    "tell_seconds",
    "elapsed_seconds",
    "trainer",
    "clock",
]


def metric_kind(objective_name: str, regret: bool) -> str:
    """How a metric is shown: 'accuracy' (in %), 'rmse', 'regret', or the objective's own name."""
    if regret:
        return "regret"
    name = str(objective_name)
    for kind in ("accuracy", "rmse"):
        if name.endswith(kind):
            return kind
    return name


@dataclass(frozen=True)
class Targets:
    """Time-to-target thresholds: validation accuracy (a fraction) and, optionally, RMSE."""

    accuracy: float | None = 0.95
    rmse: float | None = None


def prepare(trials: pd.DataFrame) -> pd.DataFrame:
    """Normalise trial rows: task, oriented validation/test scores, run keys, order within runs.

    Adds ``val``/``test`` (the regret where the problem knows its optimum, else the objective and
    test objective in their own units), ``metric`` (accuracy, rmse, regret or the objective's
    name), ``lower``, ``score_val`` and ``score_test`` (oriented so that higher is better),
    ``usable``, ``cum_epochs``, ``n_trial`` and an integer ``run`` code; rows are sorted by run,
    then by time.
    """
    df = trials.copy()
    for col in NEEDED:
        if col not in df.columns:
            df[col] = np.nan
    df["experiment"] = df["experiment"].fillna("").astype(str)
    # Runs trained by another trainer than backprop are compared as strategies of their own
    # ("random+neuroevolution"), so `-m trainer=backprop,neuroevolution` gets two columns.
    trainer = df["trainer"].astype("object").fillna("backprop").astype(str)
    df["strategy"] = df["strategy"].astype(str).where(trainer == "backprop", df["strategy"].astype(str) + "+" + trainer)
    task = df["task"].astype("object")
    other = task.notna() & ~task.isin(TASKS)
    if other.any():  # e.g. the GAN's "generation" rows: no comparable metric
        skipped = df[other]
        n_runs = len(skipped.drop_duplicates(["experiment", "run_id"]))
        names = ", ".join(map(repr, sorted(skipped["task"].unique())))
        warnings.warn(
            f"skipping {len(skipped)} trial rows of {n_runs} runs with task {names}: the "
            "report compares runs of problems with an objective (classification, "
            "regression, or none)",
            stacklevel=2,
        )
        df = df[~other].copy()
    # A problem without a dataset (plugins) is keyed by its instance.
    df["dataset"] = df["dataset"].astype("object").where(df["dataset"].notna(), df["instance"])
    df["search_space"] = df["search_space"].astype("object").where(df["search_space"].notna(), df["problem"])

    objective = pd.to_numeric(df["objective"], errors="coerce").to_numpy(float)
    test_objective = pd.to_numeric(df["test_objective"], errors="coerce").to_numpy(float)
    regret = pd.to_numeric(df["regret"], errors="coerce").to_numpy(float)
    # Regret-based where the problem knows its optimum (every ok row of such a problem has one).
    # Per problem, not per run: a run whose every trial failed has no regret value, yet is
    # measured in regret like the other runs of its problem.
    has_regret = (
        df["regret"]
        .notna()
        .groupby([df["dataset"], df["search_space"]], sort=False, dropna=False)
        .transform("any")
        .to_numpy(bool)
    )
    minimize = (df["objective_direction"].astype("object") == "minimize").to_numpy()
    lower = has_regret | minimize
    df["lower"] = lower
    names = df["objective_name"].astype("object").fillna("objective").astype(str)
    kinds = {(n, r): metric_kind(n, r) for n, r in set(zip(names, has_regret))}  # few distinct pairs
    df["metric"] = [kinds[(n, r)] for n, r in zip(names, has_regret)]
    df["val"] = np.where(has_regret, regret, objective)
    # With a known optimum both columns are the regret (a test objective would be in other units);
    # otherwise the test objective, or the objective again where the problem has none.
    # A problem that records a test metric keeps a run's missing (NaN) or diverged (inf) test value
    # as it is; only problems without any test metric fall back to the objective.
    has_test = (
        pd.Series(np.isfinite(test_objective), index=df.index)
        .groupby([df["dataset"], df["search_space"]], sort=False, dropna=False)
        .transform("any")
        .to_numpy(bool)
    )
    df["test"] = np.where(has_regret, regret, np.where(has_test, test_objective, objective))
    sign = np.where(lower, -1.0, 1.0)
    df["score_val"] = sign * df["val"].to_numpy()
    df["score_test"] = sign * df["test"].to_numpy()

    objective = df["score_val"].to_numpy(float)  # selection is on the oriented validation metric
    df["objective"] = objective
    status = df["status"].fillna("failed").astype(str)
    df["status"] = status
    df["usable"] = (status == "ok").to_numpy() & np.isfinite(objective)
    df["is_failed"] = (status == "failed").to_numpy()
    df["is_pruned"] = (status == "pruned").to_numpy()
    df["epochs_trained"] = pd.to_numeric(df["budget_spent"], errors="coerce").fillna(0.0)
    df["elapsed_seconds"] = pd.to_numeric(df["elapsed_seconds"], errors="coerce")
    df["overhead_seconds"] = pd.to_numeric(df["ask_seconds"], errors="coerce").fillna(0.0) + pd.to_numeric(
        df["tell_seconds"], errors="coerce"
    ).fillna(0.0)

    df["run"] = df.groupby(["experiment", "run_id"], sort=False, dropna=False).ngroup()
    # Two runs of one strategy on one problem and seed differ in config (a changed strategy
    # option, an older harness): they would be paired as one seed. Say so rather than hide it.
    runs_per_seed = df.groupby(["strategy", "search_space", "dataset", "seed"], dropna=False)["run"].nunique()
    repeated = runs_per_seed[runs_per_seed > 1]
    if len(repeated):
        example = ", ".join(map(str, repeated.index[0]))
        warnings.warn(
            f"{len(repeated)} (strategy, space, dataset, seed) combinations hold more than one "
            f"run with different configs (e.g. {example}); their numbers are pooled. Select "
            f"runs with --runs, or keep differing configs in separate experiments",
            stacklevel=2,
        )
    df = df.sort_values(["run", "elapsed_seconds", "trial_id"], kind="stable", na_position="last")
    df = df.reset_index(drop=True)
    df["cum_epochs"] = df.groupby("run", sort=False)["epochs_trained"].cumsum()
    df["n_trial"] = df.groupby("run", sort=False).cumcount() + 1  # trials evaluated so far
    return df


NOT_APPLICABLE = "not_applicable"  # a run's status when its strategy cannot handle its problem


def summarize_runs(df: pd.DataFrame, targets: Targets = Targets(), run_records: Sequence[Mapping[str, Any]] = ()) -> pd.DataFrame:
    """One row per run: counts, cost, the selected configuration and time-to-target.

    `df` comes from `prepare`. `run_records` (the `_run.json` contents) add each run's status
    (``run_status``) and runs that recorded no trial at all (``n_trials`` 0).
    """
    g = df.groupby("run", sort=True)
    runs = g[RUN_COLUMNS].first()
    runs["n_trials"] = g.size()
    runs["n_ok"] = g["usable"].sum()
    runs["n_failed"] = g["is_failed"].sum()
    runs["n_pruned"] = g["is_pruned"].sum()
    runs["epochs"] = g["epochs_trained"].sum()
    runs["wall_seconds"] = g["elapsed_seconds"].max()  # simulated seconds where the clock is
    runs["simulated"] = (df["clock"] == "simulated").groupby(df["run"], sort=True).any()
    runs["overhead_seconds"] = g["overhead_seconds"].sum()

    ok = df[df["usable"]]
    best = ok.sort_values(
        ["run", "objective", "elapsed_seconds", "trial_id"], ascending=[True, False, True, True], kind="stable"
    ).drop_duplicates("run")
    best = best.set_index("run")
    runs["best_trial_id"] = best["trial_id"]
    runs["val"] = best["val"]
    runs["test"] = best["test"]
    runs["score_val"] = best["score_val"]
    runs["score_test"] = best["score_test"]

    reached = pd.Series(False, index=ok.index)
    if targets.accuracy is not None:
        reached |= (ok["metric"] == "accuracy") & (ok["val"] >= targets.accuracy)
    if targets.rmse is not None:
        reached |= (ok["metric"] == "rmse") & (ok["val"] <= targets.rmse)
    first = ok[reached].drop_duplicates("run").set_index("run")  # ok is in time order
    runs["ttt_seconds"] = first["elapsed_seconds"]
    runs["ttt_epochs"] = first["cum_epochs"]
    runs["target_applies"] = np.where(
        runs["metric"] == "rmse", targets.rmse is not None, (runs["metric"] == "accuracy") & (targets.accuracy is not None)
    )
    runs["run_status"] = ""
    runs["run_note"] = ""  # why a run recorded as not applicable is
    runs["refit_test"] = np.nan  # test metric after retraining on train + validation (`refit`)

    runs = runs.reset_index(drop=True)
    if run_records:
        runs = _merge_run_records(runs, run_records)
    return runs


def _merge_run_records(runs: pd.DataFrame, records: Sequence[Mapping[str, Any]]) -> pd.DataFrame:
    """Attach `_run.json` statuses; add runs that have a `_run.json` but no trial rows."""
    rec = pd.DataFrame([_run_record_fields(r) for r in records])
    if rec.empty:
        return runs
    rec = rec.drop_duplicates(["experiment", "run_id"], keep="last")
    key = ["experiment", "run_id"]
    merged = runs[key].merge(rec[key + ["run_status", "refit_test"]], on=key, how="left")
    runs["run_status"] = merged["run_status"].fillna("").to_numpy()
    runs["refit_test"] = merged["refit_test"].astype(float).to_numpy()
    known = pd.MultiIndex.from_frame(runs[key])
    orphans = rec[~pd.MultiIndex.from_frame(rec[key]).isin(known)]
    orphans = orphans.dropna(subset=["dataset", "search_space", "strategy"])
    orphans = orphans[orphans["task"].isna() | orphans["task"].isin(TASKS)]  # as in `prepare`
    if orphans.empty:
        return runs
    orphans = orphans.assign(
        n_trials=0, n_ok=0, n_failed=0, n_pruned=0, epochs=0.0, wall_seconds=np.nan, overhead_seconds=0.0, target_applies=False
    )
    return pd.concat(
        [runs, orphans[[c for c in orphans.columns if c in runs.columns or c in ("task", "run_note")]]],
        ignore_index=True,
        sort=False,
    )


def _run_record_fields(rec: Mapping[str, Any]) -> dict[str, Any]:
    """The identifying fields of a `_run.json`, looked up at top level or in its `config`."""
    cfg = rec.get("config") if isinstance(rec.get("config"), Mapping) else {}

    def pick(*names: str) -> Any:
        for name in names:
            for src in (rec, cfg):
                v = src.get(name)
                if isinstance(v, Mapping):
                    v = v.get("name")
                if v is not None and not isinstance(v, Mapping):
                    return v
        return None

    run_dir = str(rec.get("run_dir", ""))
    seed = pick("seed")
    if "problem" in rec:  # schema 2: the problem's own descriptors, keyed as in `prepare`
        dataset = rec.get("dataset") or rec.get("instance")
        space = rec.get("search_space") or rec.get("problem")
    else:
        dataset, space = pick("dataset"), pick("search_space")
    return {
        "experiment": str(pick("experiment") or ""),
        "run_id": str(pick("run_id") or run_dir.rstrip("/").rsplit("/", 1)[-1]),
        "dataset": dataset,
        "search_space": space,
        "strategy": pick("strategy"),
        "seed": int(seed) if isinstance(seed, (int, float, str)) and str(seed).lstrip("-").isdigit() else np.nan,
        "task": pick("task"),
        "run_status": str(rec.get("status") or ""),
        "run_note": str(rec.get("stop_reason") or "") if rec.get("status") == NOT_APPLICABLE else "",
        "refit_test": _refit_test(rec.get("refit")),
    }


def _refit_test(refit: Any) -> float:
    """The test metric of the run's best configuration retrained on train + validation
    (`refit.enabled=true`), NaN when the run has none or its refit failed."""
    if not isinstance(refit, Mapping) or refit.get("status") != "ok":
        return np.nan
    value = refit.get("test_objective")
    return float(value) if isinstance(value, (int, float)) else np.nan


def summarize_cells(runs: pd.DataFrame) -> pd.DataFrame:
    """One row per (dataset, search space, strategy): statistics over seeds, and the counts.

    Every strategy seen anywhere gets a cell in every (dataset, space) row; cells without any run
    show all seeds as missing. Expected seeds of a row are the union of the seeds any strategy ran.
    """
    # A run that stopped early counts as unfinished only if it has a result: one without any ok
    # trial is counted once, as such (a failure-rate stop is both, and was counted twice).
    runs = runs.assign(unfinished=(~runs["run_status"].isin(["", "finished", NOT_APPLICABLE]) & runs["val"].notna()).astype(int))
    g = runs.groupby(CELL_KEYS, sort=True)
    cells = g.agg(
        metric=("metric", "first"),
        n_runs=("run_id", "size"),
        n_seeds=("seed", "nunique"),
        n_scored=("val", "count"),
        trials=("n_trials", "sum"),
        trials_per_run=("n_trials", "mean"),
        failed=("n_failed", "sum"),
        pruned=("n_pruned", "sum"),
        epochs_per_run=("epochs", "mean"),
        wall_per_run=("wall_seconds", "mean"),
        simulated=("simulated", "max"),
        overhead_per_run=("overhead_seconds", "mean"),
        val_mean=("val", "mean"),
        val_std=("val", "std"),
        val_median=("val", "median"),
        test_mean=("test", "mean"),
        test_std=("test", "std"),
        test_median=("test", "median"),
        ttt_seconds_mean=("ttt_seconds", "mean"),
        ttt_epochs_mean=("ttt_epochs", "mean"),
        ttt_reached=("ttt_seconds", "count"),
        target_applies=("target_applies", "max"),
        unfinished=("unfinished", "sum"),
        not_applicable=("run_status", lambda s: int((s == NOT_APPLICABLE).sum())),
    )
    q = g[["val", "test"]].quantile([0.25, 0.75]).unstack()
    cells["val_q1"], cells["val_q3"] = q[("val", 0.25)], q[("val", 0.75)]
    cells["test_q1"], cells["test_q3"] = q[("test", 0.25)], q[("test", 0.75)]

    expected = runs.groupby(ROW_KEYS)["seed"].nunique().rename("expected_seeds")
    rows = runs.groupby(ROW_KEYS)[["metric", "lower"]].first()
    strategies = sorted(runs["strategy"].dropna().unique())
    full = pd.MultiIndex.from_tuples([(d, s, st) for (d, s) in rows.index for st in strategies], names=CELL_KEYS)
    cells = cells.reindex(full)
    row_of = cells.index.droplevel("strategy")
    cells["metric"] = rows["metric"].reindex(row_of).to_numpy()
    cells["lower_is_better"] = rows["lower"].reindex(row_of).fillna(False).astype(bool).to_numpy()
    cells["expected_seeds"] = expected.reindex(cells.index.droplevel("strategy")).to_numpy()
    for col in ("n_runs", "n_seeds", "n_scored", "trials", "failed", "pruned", "ttt_reached", "unfinished", "not_applicable"):
        cells[col] = cells[col].fillna(0).astype(int)
    cells["target_applies"] = cells["target_applies"].fillna(False).astype(bool)
    cells["missing_seeds"] = cells["expected_seeds"] - cells["n_seeds"]
    cells["no_usable_trial"] = cells["n_runs"] - cells["n_scored"] - cells["not_applicable"]
    dup = runs.duplicated(["dataset", "search_space", "strategy", "seed"], keep=False)
    if dup.any():
        names = ", ".join(sorted(runs.loc[dup, "run_id"].astype(str))[:6])
        warnings.warn(
            f"several runs share dataset, search space, strategy and seed ({names}...); "
            "each is counted as its own run, paired tests average them per seed",
            stacklevel=2,
        )
    return cells.reset_index()
