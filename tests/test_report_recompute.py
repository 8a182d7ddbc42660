"""Issue #12, "done when": the report's numbers of a 4-strategy x 3-problem x 10-seed experiment are
reproduced by an independent recomputation from the raw trial rows.

The experiment is synthetic but written in the harness's own trial-file format (schema version 2,
`harness.report.testing.write_run`), as the runner writes it:

- ``f01_Sphere_i1`` / ``bbob_d5``: a BBOB function (problem ``bbob``, known optimum, ``regret``
  column; cmaes converges below COCO's 1e-8 floor on most seeds);
- ``digits`` / ``mlp``: validation accuracy (maximised, quantised to 1/360 so that runs have tied
  best trials) with a test accuracy;
- ``diabetes`` / ``mlp``: validation RMSE (minimised) with a test RMSE.

Strategies random, tpe, cmaes and nevergrad; 10 seeds; 18-22 trials per run, a few failed and
pruned trials (pruned ones often with an excellent value that must never be selected), one run
whose trials all failed (cmaes, digits, seed 3), and nevergrad completing its trials out of
trial-id order (batches of 4 evaluated in parallel), so that "earliest" means earliest in time.
tpe is clearly best on digits and diabetes, cmaes on the BBOB function.

Everything checked is recomputed here with plain loops and numpy/scipy primitives, following the
documented definitions (docs/report.md; the module docstrings of harness.report.aggregate,
stats and budget); the report (`build.compute`, `build.over_budget`, `build.write`) is only read.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from itertools import combinations
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from scipy import stats as sps

from harness.report import build
from harness.report.testing import trial_row, write_run

EXPERIMENT = "recompute"
STRATEGIES = ["cmaes", "nevergrad", "random", "tpe"]  # sorted: the report's column order
SEEDS = list(range(10))
BBOB = ("f01_Sphere_i1", "bbob_d5")
DIGITS = ("digits", "mlp")
DIABETES = ("diabetes", "mlp")
PROBLEMS = sorted([BBOB, DIGITS, DIABETES])
ALL_FAILED = ("cmaes", DIGITS, 3)
F_OPT = 79.48
FLOOR = 1e-8
ALPHA = 0.05


# -- the experiment ---------------------------------------------------------------------------
def _bbob_log_regret(strategy: str, progress: float, rng: np.random.Generator) -> float:
    """log10 of a trial's regret: cmaes converges fast, nevergrad and tpe slower, random barely."""
    slope = {"cmaes": 10.2, "nevergrad": 5.0, "tpe": 3.0, "random": 0.0}[strategy]
    if strategy == "random":
        return 2.0 - 1.6 * rng.random()
    return 2.0 - slope * progress + rng.normal(0.0, 0.4)


def _experiment(root: Path, all_failed: tuple = ALL_FAILED) -> list[dict[str, Any]]:
    """Write the experiment under `root`; returns every trial row written. `all_failed`: the
    (strategy, problem, seed) of the run whose trials all fail."""
    rng = np.random.default_rng(3)
    offsets = {(p, s): rng.normal(0.0, 1.0) for p in PROBLEMS for s in SEEDS}  # the seed's split
    skill = {"tpe": 1.0, "cmaes": 0.35, "nevergrad": 0.55, "random": 0.0}
    everything: list[dict[str, Any]] = []
    for problem in PROBLEMS:
        dataset, space = problem
        for strategy in STRATEGIES:
            for seed in SEEDS:
                run_id = f"{strategy}_{space}_{dataset}_s{seed}"
                n = int(rng.integers(18, 23))
                ids = np.arange(n)
                if strategy == "nevergrad":  # batches of 4 in parallel complete in any order
                    ids = np.concatenate([rng.permutation(ids[i : i + 4]) for i in range(0, n, 4)])
                elapsed = np.cumsum(rng.uniform(0.5, 2.0, n))
                rows = []
                for pos, tid in enumerate(ids):
                    progress = pos / (n - 1)
                    u = rng.random()
                    status = "failed" if u < 0.06 else ("pruned" if u < 0.10 and problem != BBOB else "ok")
                    if (strategy, problem, seed) == all_failed:
                        status = "failed"
                    params = {
                        "lr": float(10 ** rng.uniform(-4, -2)),
                        "units": int(rng.integers(1, 9)) * 32,
                        "optimizer": ["adam", "sgd"][int(rng.integers(2))],
                    }
                    if problem == BBOB:
                        regret = 10.0 ** _bbob_log_regret(strategy, progress, rng)
                        ok = status == "ok"
                        row = trial_row(
                            experiment=EXPERIMENT,
                            run_id=run_id,
                            strategy=strategy,
                            space=space,
                            dataset=dataset,
                            seed=seed,
                            trial_id=int(tid),
                            val=None,
                            test=None,
                            status=status,
                            elapsed=float(elapsed[pos]),
                            epochs=0,
                            params=params,
                            regression=True,
                        )
                        for key in [k for k in row if k.startswith(("metric.", "param."))]:
                            del row[key]
                        row.update(
                            {
                                "problem": "bbob",
                                "instance": "bbob-f01-d5-i1",
                                "task": None,
                                "trainer": None,
                                "clock": "wall",
                                "objective_name": "f",
                                "objective_direction": "minimize",
                                "objective": F_OPT + regret if ok else None,
                                "test_objective": None,
                                "regret": regret if ok else None,
                                "budget": None,
                                "budget_spent": None,
                                "params": json.dumps({f"x{i}": float(rng.uniform(-5, 5)) for i in range(5)}),
                                "history": "[]",
                            }
                        )
                    else:
                        regression = problem == DIABETES
                        off = offsets[(problem, seed)]
                        if regression:  # RMSE in target units, lower is better
                            v = 58.0 + 1.5 * off - 9.0 * skill[strategy] * progress + abs(rng.normal(0, 2.5))
                            val, test = round(v, 3), round(v + rng.normal(0, 1.5), 3)
                            if status == "pruned":
                                val = round(v - 15.0, 3)  # a partial curve that looked great
                        else:  # accuracy on 360 validation / test examples
                            v = 0.90 + 0.01 * off + 0.03 * skill[strategy] * progress - abs(rng.normal(0, 0.02))
                            val = round(min(v, 1.0) * 360) / 360
                            test = round(min(v + rng.normal(0, 0.01), 1.0) * 360) / 360
                            if status == "pruned":
                                val = 0.999
                        if status == "failed":
                            val = test = None
                        epochs = int(rng.integers(1, 4)) if status == "pruned" else 4
                        row = trial_row(
                            experiment=EXPERIMENT,
                            run_id=run_id,
                            strategy=strategy,
                            space=space,
                            dataset=dataset,
                            seed=seed,
                            trial_id=int(tid),
                            val=val,
                            test=test,
                            status=status,
                            elapsed=float(elapsed[pos]),
                            epochs=epochs,
                            params=params,
                            regression=regression,
                        )
                        row.update({"trainer": "backprop", "clock": "wall", "regret": None, "budget": 4})
                    rows.append(row)
                meta = {"strategy": strategy, "search_space": space, "dataset": dataset, "seed": seed}
                if problem == BBOB:
                    meta.update({"problem": "bbob", "instance": "bbob-f01-d5-i1"})
                write_run(root, EXPERIMENT, run_id, rows, meta)
                everything += rows
    return everything


# -- the recomputation (plain loops over the raw rows) ------------------------------------------
@dataclass
class Run:
    problem: tuple[str, str]
    strategy: str
    seed: int
    lower: bool
    regret: bool
    trials: list[dict[str, Any]] = field(default_factory=list)  # completion (elapsed) order
    selected: dict[str, Any] | None = None

    def metric(self, row: dict[str, Any], which: str) -> float:
        """The row's val/test metric: the regret where the optimum is known, else the objective."""
        if self.regret:
            return _num(row["regret"])
        if which == "val":
            return _num(row["objective"])
        test = _num(row["test_objective"])
        return test if math.isfinite(test) else _num(row["objective"])

    def usable(self, row: dict[str, Any]) -> bool:
        return row["status"] == "ok" and math.isfinite(self.metric(row, "val"))

    def oriented(self, value: float) -> float:
        """Higher is better; on the log10 scale (floored) for regrets."""
        if not math.isfinite(value):
            return math.nan
        if self.regret:
            return -math.log10(max(value, FLOOR))
        return -value if self.lower else value

    def score(self, which: str) -> float:
        """Oriented metric of the selected configuration (higher is better; no log)."""
        if self.selected is None:
            return math.nan
        v = self.metric(self.selected, which)
        return -v if self.lower else v


def _num(x: Any) -> float:
    return math.nan if x is None else float(x)


def _recompute_runs(rows: list[dict[str, Any]]) -> dict[tuple, Run]:
    runs: dict[tuple, Run] = {}
    for r in rows:
        key = ((r["dataset"], r["search_space"]), r["strategy"], r["seed"])
        if key not in runs:
            runs[key] = Run(key[0], r["strategy"], r["seed"], lower=r["objective_direction"] == "minimize", regret=key[0] == BBOB)
        runs[key].trials.append(r)
    for run in runs.values():
        run.trials.sort(key=lambda t: (t["elapsed_seconds"], t["trial_id"]))
        best = None
        for t in run.trials:  # strictly better replaces: ties stay with the earliest
            if run.usable(t):
                v = run.metric(t, "val")
                o = -v if run.lower else v
                if best is None or o > best[0]:
                    best = (o, t)
        run.selected = best[1] if best else None
    return runs


def _holm(p: list[float]) -> list[float]:
    """Holm's step-down adjusted p-values, written out: the i-th smallest is multiplied by
    (m - i), made monotone, capped at 1."""
    m = len(p)
    order = sorted(range(m), key=lambda i: p[i])
    out = [0.0] * m
    running = 0.0
    for rank, i in enumerate(order):
        running = max(running, min(1.0, (m - rank) * p[i]))
        out[i] = running
    return out


def _wilcoxon(d: np.ndarray) -> float:
    """Two-sided Wilcoxon signed-rank p-value of paired differences, zero differences dropped
    (Wilcoxon's convention); 1 when nothing is left."""
    d = np.asarray(d, float)
    d = d[d != 0]
    return 1.0 if len(d) == 0 else float(sps.wilcoxon(d).pvalue)


def _normalised_regret(runs: dict[tuple, Run], which: str) -> dict[tuple, float]:
    """(best - s) / (best - worst) per problem over every run's oriented score (log10 of the
    regret, floored, where the optimum is known); a run without result counts 1."""
    out = {}
    for problem in PROBLEMS:
        mine = {k: r for k, r in runs.items() if r.problem == problem}
        scaled = {k: r.oriented(r.metric(r.selected, which)) if r.selected else math.nan for k, r in mine.items()}
        finite = [v for v in scaled.values() if math.isfinite(v)]
        best, worst = max(finite), min(finite)
        for k, v in scaled.items():
            out[k] = 1.0 if not math.isfinite(v) else ((best - v) / (best - worst) if best > worst else 0.0)
    return out


def _blocks(runs: dict[tuple, Run], which: str, blocks: str) -> pd.DataFrame:
    """Blocks x strategies of normalised regret: seeds averaged per problem, or one block per seed."""
    nr = _normalised_regret(runs, which)
    if blocks == "seeds":
        data = {(p[0], p[1], s): {st: nr[(p, st, s)] for st in STRATEGIES} for p in PROBLEMS for s in SEEDS}
    else:
        data = {p: {st: float(np.mean([nr[(p, st, s)] for s in SEEDS])) for st in STRATEGIES} for p in PROBLEMS}
    return pd.DataFrame.from_dict(data, orient="index")[STRATEGIES]


@dataclass
class Ranks:
    table: pd.DataFrame
    average_rank: pd.Series
    chi2: float
    chi2_p: float
    ff: float
    ff_p: float
    cd: float
    pairwise: dict[tuple[str, str], float]
    best: str
    diff_mean: pd.Series
    wins: pd.Series
    ties: pd.Series
    losses: pd.Series


def _ranks(table: pd.DataFrame) -> Ranks:
    n, k = table.shape
    ranks = np.vstack([sps.rankdata(row) for row in table.to_numpy(float)])  # 1 = lowest regret
    avg = pd.Series(ranks.mean(axis=0), index=STRATEGIES)
    chi2 = 12 * n / (k * (k + 1)) * (float((avg**2).sum()) - k * (k + 1) ** 2 / 4)
    ff = (n - 1) * chi2 / (n * (k - 1) - chi2)
    cd = sps.studentized_range.ppf(1 - ALPHA, k, np.inf) / math.sqrt(2) * math.sqrt(k * (k + 1) / (6 * n))
    pairs = list(combinations(STRATEGIES, 2))
    raw = [_wilcoxon(table[a].to_numpy() - table[b].to_numpy()) for a, b in pairs]
    best = STRATEGIES[int(np.argmin(avg.to_numpy()))]
    d = table.sub(table[best], axis=0)
    return Ranks(
        table,
        avg,
        chi2,
        float(sps.chi2.sf(chi2, k - 1)),
        ff,
        float(sps.f.sf(ff, k - 1, (k - 1) * (n - 1))),
        float(cd),
        dict(zip(pairs, _holm(raw))),
        best,
        d.mean(),
        (d < 0).sum(),
        (d == 0).sum(),
        (d > 0).sum(),
    )


def _verdicts(runs: dict[tuple, Run], which: str) -> dict[tuple, dict[str, Any]]:
    """Per (problem, strategy): the row's best mean, the Holm-adjusted two-sided Wilcoxon p of the
    best against it over paired seeds, and whether it is significantly worse (p < alpha and the
    signed ranks favour the best). A run without result loses every pairing."""
    out = {}
    for problem in PROBLEMS:
        score = {st: {s: runs[(problem, st, s)].score(which) for s in SEEDS} for st in STRATEGIES}
        means = {st: np.nanmean(list(v.values())) for st, v in score.items()}  # over runs with result
        best = max(STRATEGIES, key=lambda st: means[st])
        others = [st for st in STRATEGIES if st != best]
        # Failed runs: -inf, i.e. below every result; a finite stand-in far below keeps the order
        # of |differences| (the failed pairing has the largest one).
        finite = [v for st in STRATEGIES for v in score[st].values() if math.isfinite(v)]
        stand_in = min(finite) - 1e6 * (max(finite) - min(finite) + 1)
        diffs = {}
        for st in others:
            x = np.array([score[best][s] for s in SEEDS])
            y = np.array([score[st][s] for s in SEEDS])
            both_failed = np.isnan(x) & np.isnan(y)
            x, y = np.where(np.isnan(x), stand_in, x), np.where(np.isnan(y), stand_in, y)
            diffs[st] = np.where(both_failed, 0.0, x - y)
        adjusted = dict(zip(others, _holm([_wilcoxon(diffs[st]) for st in others])))
        out[(problem, best)] = {"best": best, "p": math.nan, "worse": False}
        for st in others:
            d = diffs[st][diffs[st] != 0]
            signed = float(np.sum(np.sign(d) * sps.rankdata(np.abs(d))))
            out[(problem, st)] = {"best": best, "p": adjusted[st], "worse": bool(adjusted[st] < ALPHA and signed > 0)}
    return out


def _best_so_far(run: Run) -> list[float]:
    """After each trial (completion order, failed and pruned ones counted): the best oriented
    (log10 for regrets) validation value so far; NaN before the first usable trial."""
    out, best = [], math.nan
    for t in run.trials:
        if run.usable(t):
            v = run.oriented(run.metric(t, "val"))
            best = v if not math.isfinite(best) else max(best, v)
        out.append(best)
    return out


def _over_budget(runs: dict[tuple, Run], budgets: list[int]) -> dict[tuple[str, int], dict[str, float]]:
    """Per (strategy, budget in trials): mean over problems of the seed-averaged normalised regret
    of the best so far, its standard error over problems, and the average rank over problems."""
    per_problem: dict[tuple, float] = {}
    for problem in PROBLEMS:
        mine = [r for r in runs.values() if r.problem == problem]
        seen = [r.oriented(r.metric(t, "val")) for r in mine for t in r.trials if r.usable(t)]
        top, bottom = max(seen), min(seen)
        for st in STRATEGIES:
            for b in budgets:
                values = []
                for s in SEEDS:
                    bsf = _best_so_far(runs[(problem, st, s)])
                    at = bsf[min(b, len(bsf)) - 1]  # the last trial at or below b; stays after the end
                    values.append(1.0 if not math.isfinite(at) else (top - at) / (top - bottom))
                per_problem[(problem, st, b)] = float(np.mean(values))
    out = {}
    for b in budgets:
        for problem in PROBLEMS:
            ranks = sps.rankdata([per_problem[(problem, st, b)] for st in STRATEGIES])
            for st, r in zip(STRATEGIES, ranks):
                per_problem[(problem, st, b, "rank")] = float(r)
        for st in STRATEGIES:
            v = [per_problem[(p, st, b)] for p in PROBLEMS]
            out[(st, b)] = {
                "nr_mean": float(np.mean(v)),
                "nr_se": float(np.std(v, ddof=1) / math.sqrt(len(v))),
                "rank_mean": float(np.mean([per_problem[(p, st, b, "rank")] for p in PROBLEMS])),
            }
    return out


def _speedup(runs: dict[tuple, Run]) -> dict[tuple, dict[str, float]]:
    """Per (problem, strategy): random search's target (median over its seeds of the final best
    validation metric, in the metric's own units), COCO's aRT in trials to it, the speed-up."""
    out = {}
    for problem in PROBLEMS:
        finals = []
        for s in SEEDS:
            r = runs[(problem, "random", s)]
            if r.selected is not None:
                finals.append(r.metric(r.selected, "val"))
        target_metric = float(np.median(finals))
        probe = runs[(problem, "random", SEEDS[0])]
        target = probe.oriented(target_metric)
        art = {}
        for st in STRATEGIES:
            spent, reached = 0, 0
            for s in SEEDS:
                r = runs[(problem, st, s)]
                bsf = _best_so_far(r)
                hit = next((i + 1 for i, v in enumerate(bsf) if math.isfinite(v) and v >= target), None)
                spent += hit if hit is not None else len(r.trials)
                reached += hit is not None
            art[st] = (spent / reached if reached else math.inf, reached)
        for st in STRATEGIES:
            a, reached = art[st]
            out[(problem, st)] = {
                "target": target_metric,
                "art_trials": a,
                "reached": reached,
                "speedup": art["random"][0] / a if math.isfinite(a) else 0.0,
            }
    return out


# -- fixtures -------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def experiment(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    root = tmp_path_factory.mktemp("recompute") / EXPERIMENT
    rows = _experiment(root)
    runs = _recompute_runs(rows)
    report = build.compute(root, build.Options(figures=False))
    return {"root": root, "rows": rows, "runs": runs, "report": report, "over": build.over_budget(report)}


@pytest.fixture(scope="module")
def report_by_seed(experiment: dict[str, Any]) -> build.Report:
    return build.compute(experiment["root"], build.Options(figures=False, blocks="seeds"))


def _report_runs(report: build.Report) -> pd.DataFrame:
    r = report.runs.copy()
    r["problem"] = list(zip(r["dataset"], r["search_space"]))
    return r.set_index(["problem", "strategy", "seed"]).sort_index()


# -- the data is what the test means it to be -----------------------------------------------
def test_the_experiment_is_as_designed(experiment: dict[str, Any]) -> None:
    runs, report = experiment["runs"], experiment["report"]
    assert len(runs) == 4 * 3 * 10 == len(report.runs)
    assert report.skipped == []
    assert sorted(report.runs["strategy"].unique()) == STRATEGIES
    assert {(d, s) for d, s in zip(report.runs["dataset"], report.runs["search_space"])} == set(PROBLEMS)
    metric = report.runs.groupby("dataset")["metric"].agg(set).to_dict()
    assert metric == {"f01_Sphere_i1": {"regret"}, "digits": {"accuracy"}, "diabetes": {"rmse"}}
    assert [k for k, r in runs.items() if r.selected is None] == [(DIGITS, "cmaes", 3)]
    statuses = pd.Series([r["status"] for r in experiment["rows"]]).value_counts()
    assert statuses["failed"] > 30 and statuses["pruned"] > 10
    # Some runs' best validation value is tied between trials (ties go to the earliest), some
    # pruned trials beat every ok trial of their run (never selected), nevergrad's trial ids are
    # not in completion order, and cmaes gets below the 1e-8 floor on the BBOB function.
    tied = sum(
        1
        for r in runs.values()
        if r.selected is not None
        and sum(1 for t in r.trials if r.usable(t) and r.metric(t, "val") == r.metric(r.selected, "val")) > 1
    )
    assert tied >= 10
    tempting = sum(
        1
        for r in runs.values()
        if r.selected is not None
        and any(
            t["status"] == "pruned" and r.oriented(r.metric(t, "val")) > r.oriented(r.metric(r.selected, "val")) for t in r.trials
        )
    )
    assert tempting >= 10
    assert any(
        [t["trial_id"] for t in r.trials] != sorted(t["trial_id"] for t in r.trials)
        for r in runs.values()
        if r.strategy == "nevergrad"
    )
    assert sum(1 for s in SEEDS if runs[(BBOB, "cmaes", s)].selected["regret"] < FLOOR) >= 3


# -- 1. per run: the selected configuration -------------------------------------------------
def test_selected_configuration_per_run(experiment: dict[str, Any]) -> None:
    got = _report_runs(experiment["report"])
    for key, run in experiment["runs"].items():
        row = got.loc[key]
        if run.selected is None:
            assert pd.isna(row["best_trial_id"]) and pd.isna(row["val"]) and pd.isna(row["test"]), key
            continue
        assert int(row["best_trial_id"]) == run.selected["trial_id"], key
        assert row["val"] == pytest.approx(run.metric(run.selected, "val"), rel=1e-12), key
        assert row["test"] == pytest.approx(run.metric(run.selected, "test"), rel=1e-12), key
        assert int(row["n_trials"]) == len(run.trials)
        assert int(row["n_failed"]) == sum(t["status"] == "failed" for t in run.trials)
        assert int(row["n_pruned"]) == sum(t["status"] == "pruned" for t in run.trials)


# -- 2. per problem: normalised regret, ranks, tests, effect sizes ---------------------------
@pytest.mark.parametrize("blocks", ["problems", "seeds"])
def test_rank_analysis(experiment: dict[str, Any], report_by_seed: build.Report, blocks: str) -> None:
    report = experiment["report"] if blocks == "problems" else report_by_seed
    a = report.analysis
    mine = _ranks(_blocks(experiment["runs"], "test", blocks))
    n = 3 if blocks == "problems" else 30
    assert a.blocks == blocks and a.metric == "test"
    assert a.n_complete == a.n_problems == n
    assert list(a.strategies) == STRATEGIES
    # The block table itself: normalised regret per block and strategy.
    got = {tuple(block): row for block, row in a.regret.iterrows()}
    assert sorted(got) == sorted(tuple(b) for b in mine.table.index)
    for block, row in mine.table.iterrows():
        for st in STRATEGIES:
            assert got[tuple(block)][st] == pytest.approx(row[st], abs=1e-12), (block, st)
    assert a.average_rank.to_dict() == pytest.approx(mine.average_rank.to_dict(), abs=1e-12)
    assert a.friedman_statistic == pytest.approx(mine.chi2, rel=1e-12)
    assert a.friedman_p == pytest.approx(mine.chi2_p, rel=1e-9)
    assert a.iman_davenport_statistic == pytest.approx(mine.ff, rel=1e-12)
    assert a.iman_davenport_p == pytest.approx(mine.ff_p, rel=1e-9)
    assert a.critical_difference == pytest.approx(mine.cd, rel=1e-9)
    if not any(len(set(row)) < len(row) for row in mine.table.to_numpy()):  # no tie in any block:
        # Friedman's own statistic (scipy's, tie-corrected) must agree with the one from ranks.
        assert mine.chi2 == pytest.approx(sps.friedmanchisquare(*mine.table.to_numpy().T).statistic)
    for (x, y), p in mine.pairwise.items():
        assert a.pairwise_p.loc[x, y] == pytest.approx(p, rel=1e-9) and a.pairwise_p.loc[y, x] == a.pairwise_p.loc[x, y]
    # Effect sizes against the best-ranked strategy.
    summary = a.summary()
    assert (summary["vs"] == mine.best).all()
    for st in STRATEGIES:
        e = summary.loc[st]
        assert e["diff_mean"] == pytest.approx(mine.diff_mean[st], abs=1e-12)
        assert (e["wins"], e["ties"], e["losses"]) == (mine.wins[st], mine.ties[st], mine.losses[st])
        assert e["regret_mean"] == pytest.approx(mine.table[st].mean(), abs=1e-12)
        assert e["regret_median"] == pytest.approx(mine.table[st].median(), abs=1e-12)
        assert e["failed_runs"] == (1 if st == "cmaes" else 0) and e["missing_runs"] == 0
        if blocks == "seeds" and st != mine.best:  # 30 blocks: a bootstrap CI around the mean difference
            assert e["diff_ci_low"] <= e["diff_mean"] <= e["diff_ci_high"]
        elif blocks == "problems":  # 3 blocks: too few for a CI
            assert np.isnan(e["diff_ci_low"]) and np.isnan(e["diff_ci_high"])
    # With every seed a block, the experiment's differences are significant.
    if blocks == "seeds":
        assert a.iman_davenport_p < 1e-6 and a.significant


def test_rank_analysis_on_validation(experiment: dict[str, Any]) -> None:
    report = build.compute(experiment["root"], build.Options(figures=False, rank_on="val"))
    mine = _ranks(_blocks(experiment["runs"], "val", "problems"))
    assert report.analysis.metric == "val"
    assert report.analysis.average_rank.to_dict() == pytest.approx(mine.average_rank.to_dict(), abs=1e-12)
    assert report.analysis.friedman_statistic == pytest.approx(mine.chi2, rel=1e-12)
    assert report.analysis.summary()["diff_mean"].to_dict() == pytest.approx(mine.diff_mean.to_dict(), abs=1e-12)


# -- 3. the main table's verdicts -----------------------------------------------------------
@pytest.mark.parametrize("which", ["val", "test"])
def test_row_verdicts_and_bold(experiment: dict[str, Any], which: str) -> None:
    report = experiment["report"]
    mine = _verdicts(experiment["runs"], which)
    sig = report.significance[which].set_index(["dataset", "search_space", "strategy"])
    for (problem, st), v in mine.items():
        got = sig.loc[(problem[0], problem[1], st)]
        assert got["best"] == v["best"], (problem, st)
        assert bool(got["worse"]) == v["worse"], (problem, st)
        assert bool(got["bold"]) == (not v["worse"]), (problem, st)
        if math.isnan(v["p"]):
            assert pd.isna(got["p"])
        else:
            assert got["p"] == pytest.approx(v["p"], rel=1e-9), (problem, st)
    # The experiment is built so that the verdicts say something.
    assert {mine[(p, st)]["best"] for p in PROBLEMS for st in STRATEGIES} >= {"tpe", "cmaes"}
    assert sum(v["worse"] for v in mine.values()) >= 4
    # The rendered table: bold cells of the val / test lines, and the verdict column.
    t = report.main
    col = {st: t.header.index(st) for st in STRATEGIES}
    for start in t.block_starts:
        dataset = t.rows[start][0].text
        problem = next(p for p in PROBLEMS if p[0] == dataset)
        line = t.rows[start + (0 if which == "val" else 1)]
        assert line[2].text.startswith(which)
        for st in STRATEGIES:
            assert line[col[st]].bold == (not mine[(problem, st)]["worse"]), (problem, st)
        verdict = line[-1].text
        assert verdict.startswith(mine[(problem, STRATEGIES[0])]["best"])
        for st in STRATEGIES:
            assert (f"{st} (p" in verdict) == mine[(problem, st)]["worse"], (verdict, st)


# -- 4. over budget and speed-up --------------------------------------------------------------
BUDGETS = [1, 2, 5, 10, 15, 18]  # every run has at least 18 trials


def test_over_budget_aggregate(experiment: dict[str, Any]) -> None:
    agg = experiment["over"].aggregated["trials"].set_index(["strategy", "budget"])
    assert set(BUDGETS) <= set(agg.index.get_level_values("budget"))
    assert (agg["problems"] == 3).all() and (agg["se_over"] == "problems").all()
    mine = _over_budget(experiment["runs"], BUDGETS)
    for (st, b), v in mine.items():
        got = agg.loc[(st, float(b))]
        assert got["nr_mean"] == pytest.approx(v["nr_mean"], abs=1e-12), (st, b)
        assert got["nr_se"] == pytest.approx(v["nr_se"], abs=1e-12), (st, b)
        assert got["rank_mean"] == pytest.approx(v["rank_mean"], abs=1e-12), (st, b)
    # After one trial nothing has been optimised yet; at the end tpe and cmaes lead.
    assert mine[("random", 18)]["nr_mean"] > max(mine[("tpe", 18)]["nr_mean"], mine[("cmaes", 18)]["nr_mean"])


def test_speedup_over_random(experiment: dict[str, Any]) -> None:
    got = experiment["over"].speedup.set_index(["dataset", "search_space", "strategy"])
    mine = _speedup(experiment["runs"])
    assert len(got) == len(mine) == 12
    for (problem, st), v in mine.items():
        g = got.loc[(problem[0], problem[1], st)]
        assert g["target"] == pytest.approx(v["target"], rel=1e-12), (problem, st)
        assert int(g["reached"]) == v["reached"] and int(g["runs"]) == 10, (problem, st)
        assert g["art_trials"] == pytest.approx(v["art_trials"], rel=1e-12), (problem, st)
        assert g["speedup"] == pytest.approx(v["speedup"], rel=1e-12), (problem, st)
    assert mine[(DIGITS, "tpe")]["speedup"] > 1 and mine[(BBOB, "cmaes")]["speedup"] > 1


def test_speedup_target_on_regrets(experiment: dict[str, Any]) -> None:
    got = experiment["over"].speedup.set_index(["dataset", "search_space", "strategy"])
    mine = _speedup(experiment["runs"])
    g = got.loc[(BBOB[0], BBOB[1], "random")]
    # The median of random's final regrets (not of their logs): with 10 seeds, the arithmetic
    # mean of the middle two.
    assert g["target"] == pytest.approx(mine[(BBOB, "random")]["target"], rel=1e-12)


def test_a_bbob_run_whose_trials_all_failed_keeps_the_regret_metric(tmp_path: Path) -> None:
    failed = ("cmaes", BBOB, 0)
    root = tmp_path / EXPERIMENT
    _experiment(root, all_failed=failed)
    report = build.compute(root, build.Options(figures=False))
    runs = report.runs[(report.runs["dataset"] == BBOB[0]) & (report.runs["search_space"] == BBOB[1])]
    assert runs["n_ok"].min() == 0  # the run is there, without any ok trial
    ecdf = build.over_budget(report).ecdf
    n_runs = ecdf[(ecdf["dataset"] == BBOB[0]) & (ecdf["strategy"] == "cmaes")]["n_runs"].max()
    cells = report.cells[report.cells["dataset"] == BBOB[0]]
    assert (set(runs["metric"]), set(cells["metric"]), n_runs) == ({"regret"}, {"regret"}, 10)


# -- 5. the cells: mean and std over seeds ------------------------------------------------------
def test_cells_mean_and_std(experiment: dict[str, Any]) -> None:
    cells = experiment["report"].cells.set_index(["dataset", "search_space", "strategy"])
    runs = experiment["runs"]
    for problem in PROBLEMS:
        for st in STRATEGIES:
            c = cells.loc[(problem[0], problem[1], st)]
            for which in ("val", "test"):
                v = np.array(
                    [
                        runs[(problem, st, s)].metric(runs[(problem, st, s)].selected, which)
                        for s in SEEDS
                        if runs[(problem, st, s)].selected is not None
                    ]
                )
                assert c[f"{which}_mean"] == pytest.approx(v.mean(), rel=1e-12), (problem, st, which)
                assert c[f"{which}_std"] == pytest.approx(v.std(ddof=1), rel=1e-9), (problem, st, which)
            expected = 9 if (st, problem) == (ALL_FAILED[0], ALL_FAILED[1]) else 10
            assert c["n_scored"] == expected and c["n_runs"] == 10 and c["no_usable_trial"] == 10 - expected
            assert c["failed"] == sum(t["status"] == "failed" for s in SEEDS for t in runs[(problem, st, s)].trials)


# -- the written CSV files hold the same numbers ----------------------------------------------
def _texts(values: pd.Series) -> list[str]:
    return values.astype(object).where(values.notna(), "").astype(str).tolist()


def _same_numbers(written: pd.DataFrame, memory: pd.DataFrame, name: str) -> None:
    """Same columns and rows; numbers equal (NaN where NaN), other values equal as text."""
    memory = memory.reset_index(drop=True)
    assert list(written.columns) == [str(c) for c in memory.columns], name
    assert len(written) == len(memory), name
    for col in memory.columns:
        m, w = memory[col], written[str(col)]
        if pd.api.types.is_bool_dtype(m) or m.map(lambda x: isinstance(x, (bool, np.bool_))).all():
            assert w.astype(str).tolist() == m.astype(str).tolist(), (name, col)
        elif pd.api.types.is_numeric_dtype(m):
            a, b = m.to_numpy(float), pd.to_numeric(w, errors="coerce").to_numpy(float)
            assert np.array_equal(np.isnan(a), np.isnan(b)), (name, col)
            ok = ~np.isnan(a)
            assert b[ok].tolist() == pytest.approx(a[ok].tolist(), rel=1e-15, abs=0), (name, col)
        else:
            assert _texts(w) == _texts(m), (name, col)


def test_written_csv_files(experiment: dict[str, Any], tmp_path: Path) -> None:
    report, runs = experiment["report"], experiment["runs"]
    out = tmp_path / "out"
    build.write(report, out)
    # Every CSV holds the in-memory report's numbers, column by column.
    over = experiment["over"]
    for name, frame in [
        ("ranks", report.rank_frame()),
        ("main", report.main_frame()),
        ("runs", report.runs),
        ("speedup", over.speedup),
        ("budget_trials", over.aggregated["trials"]),
        ("pairwise", report.analysis.pairwise_p.rename_axis("strategy").reset_index()),
    ]:
        _same_numbers(pd.read_csv(out / f"{name}.csv"), frame, name)
    # ranks.csv: the rank analysis, recomputed.
    ranks = pd.read_csv(out / "ranks.csv").set_index("strategy")
    mine = _ranks(_blocks(runs, "test", "problems"))
    assert ranks["average_rank"].to_dict() == pytest.approx(mine.average_rank.to_dict(), abs=1e-12)
    assert ranks["diff_mean"].to_dict() == pytest.approx(mine.diff_mean.to_dict(), abs=1e-12)
    assert ranks["regret_mean"].to_dict() == pytest.approx(mine.table.mean().to_dict(), abs=1e-12)
    assert ranks["wins"].to_dict() == mine.wins.to_dict() and ranks["losses"].to_dict() == mine.losses.to_dict()
    assert (ranks["vs"] == mine.best).all()
    for col, value in [
        ("friedman_statistic", mine.chi2),
        ("friedman_p", mine.chi2_p),
        ("iman_davenport_statistic", mine.ff),
        ("iman_davenport_p", mine.ff_p),
        ("critical_difference", mine.cd),
    ]:
        assert ranks[col].tolist() == pytest.approx([value] * 4, rel=1e-9), col
    assert (ranks["problems"] == 3).all() and ranks.loc["cmaes", "failed_runs"] == 1
    # pairwise.csv: the Holm-adjusted p-values.
    pairwise = pd.read_csv(out / "pairwise.csv").set_index("strategy")
    for (x, y), p in mine.pairwise.items():
        assert pairwise.loc[x, y] == pytest.approx(p, rel=1e-9)
    # main.csv: the cells and the verdicts, recomputed.
    main = pd.read_csv(out / "main.csv").set_index(["dataset", "search_space", "strategy"])
    assert len(main) == 12
    for which in ("val", "test"):
        verdicts = _verdicts(runs, which)
        for problem in PROBLEMS:
            for st in STRATEGIES:
                row = main.loc[(problem[0], problem[1], st)]
                v = np.array(
                    [
                        runs[(problem, st, s)].metric(runs[(problem, st, s)].selected, which)
                        for s in SEEDS
                        if runs[(problem, st, s)].selected is not None
                    ]
                )
                assert row[f"{which}_mean"] == pytest.approx(v.mean(), rel=1e-12)
                assert row[f"{which}_std"] == pytest.approx(v.std(ddof=1), rel=1e-9)
                verdict = verdicts[(problem, st)]
                assert row[f"{which}_best_strategy"] == verdict["best"]
                assert bool(row[f"{which}_significantly_worse"]) == verdict["worse"]
                assert bool(row[f"{which}_bold"]) == (not verdict["worse"])
                if math.isnan(verdict["p"]):
                    assert pd.isna(row[f"{which}_p_vs_best"])
                else:
                    assert row[f"{which}_p_vs_best"] == pytest.approx(verdict["p"], rel=1e-9)
    # runs.csv: the selected configuration of each run.
    written = pd.read_csv(out / "runs.csv")
    written["problem"] = list(zip(written["dataset"], written["search_space"]))
    written = written.set_index(["problem", "strategy", "seed"])
    for key, run in runs.items():
        row = written.loc[key]
        if run.selected is None:
            assert pd.isna(row["best_trial_id"]) and pd.isna(row["test"])
        else:
            assert int(row["best_trial_id"]) == run.selected["trial_id"]
            assert row["test"] == pytest.approx(run.metric(run.selected, "test"), rel=1e-12)
    # speedup.csv and budget_trials.csv: over budget, recomputed.
    speed = pd.read_csv(out / "speedup.csv").set_index(["dataset", "search_space", "strategy"])
    for (problem, st), v in _speedup(runs).items():
        row = speed.loc[(problem[0], problem[1], st)]
        assert row["speedup"] == pytest.approx(v["speedup"], rel=1e-12)
        assert row["art_trials"] == pytest.approx(v["art_trials"], rel=1e-12)
        assert row["target"] == pytest.approx(v["target"], rel=1e-12)
        assert row["target"] == pytest.approx(
            experiment["over"]
            .speedup.set_index(["dataset", "search_space", "strategy"])
            .loc[(problem[0], problem[1], st), "target"],
            rel=1e-15,
        )
    curve = pd.read_csv(out / "budget_trials.csv").set_index(["strategy", "budget"])
    for (st, b), v in _over_budget(runs, BUDGETS).items():
        assert curve.loc[(st, float(b)), "nr_mean"] == pytest.approx(v["nr_mean"], abs=1e-12)
        assert curve.loc[(st, float(b)), "rank_mean"] == pytest.approx(v["rank_mean"], abs=1e-12)
