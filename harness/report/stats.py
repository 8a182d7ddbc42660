"""Statistics across runs: ranks, Friedman + post-hoc tests, regret, per-row significance.

A *problem* is one (dataset, search space, seed): the same data split for every strategy, so
strategies are compared paired by problem (Demsar, "Statistical comparisons of classifiers over
multiple data sets", JMLR 2006; Benavoli et al., "Should we really use post-hoc tests based on
mean-ranks?", JMLR 2016).

- Scores are oriented so that higher is better (accuracy, or -RMSE). A run without any usable
  trial scores -inf: it ranks last and is counted as failed. A problem where a strategy has no
  run at all is *incomplete*: it is left out of ranks and the Friedman test, and counted.
- Average rank: rank 1 is best, ties share the average rank (`scipy.stats.rankdata`).
- Friedman test: `scipy.stats.friedmanchisquare` over complete problems (needs >= 3 strategies).
- Nemenyi critical difference: ``q_alpha * sqrt(k (k + 1) / (6 N))`` with
  ``q_alpha = studentized_range.ppf(1 - alpha, k, inf) / sqrt(2)`` (Demsar 2006, eq. 5); two
  strategies whose average ranks differ by less than CD are not significantly different.
- Pairwise: two-sided Wilcoxon signed-rank tests (`scipy.stats.wilcoxon`) over complete problems,
  Holm-corrected across all pairs (Benavoli et al. recommend this over mean-rank tests).
- Relative regret of a strategy on a problem: ``(best - s) / |best|`` on the oriented scores,
  where ``best`` is the best of the strategies' values on that problem (the metric ranked: by
  default each run's test metric of its configuration selected on validation, not the best
  test value any trial reached). 0 for the best strategy, 0.05 for an accuracy 5 % below the
  best (relative), or an RMSE 5 % above it. Computed over the same complete problems as the
  ranks; a failed run (no usable trial) gets ``max(1, worst regret on that problem)``, never
  better than any result (1 = accuracy 0, or an RMSE twice the best). When ``best`` is 0 the
  denominator is 1 (the absolute gap), so an exact fit (RMSE 0) does not divide by zero.
- Row significance (bold in the main table): the strategy with the best shown statistic (mean,
  or median with ``--spread iqr``) is compared with every other strategy of the row by a
  two-sided Wilcoxon signed-rank test over paired seeds, Holm-corrected over the k - 1
  comparisons; it is marked only when every corrected p-value is < alpha, it is strictly ahead
  of every other strategy on the shown statistic and its signed ranks favour it. A one-sided
  test in the direction the means already chose would be anti-conservative (about 2 alpha with
  two strategies). With n paired seeds the smallest two-sided p-value is 2 * 2**-n, so the best
  needs (k - 1) * 2 * 2**-n < alpha (`min_seeds`): at alpha 0.05, 6 seeds for 2 strategies, 7
  for 3 or 4, 8 for 5.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from itertools import combinations

import numpy as np
import pandas as pd
from scipy import stats

PROBLEM_KEYS = ["dataset", "search_space", "seed"]


def problem_scores(runs: pd.DataFrame, metric: str = "test") -> pd.DataFrame:
    """Problems x strategies table of oriented scores (-inf: run without usable trial; NaN: no run)."""
    col = f"score_{metric}"
    data = runs[PROBLEM_KEYS + ["strategy"]].copy()
    data["score"] = runs[col].fillna(-np.inf)
    data = data.dropna(subset=PROBLEM_KEYS + ["strategy"])
    table = data.pivot_table(index=PROBLEM_KEYS, columns="strategy", values="score", aggfunc="mean")
    strategies = sorted(runs["strategy"].dropna().unique())
    return table.reindex(columns=strategies).sort_index()


def holm(pvalues: np.ndarray) -> np.ndarray:
    """Holm-Bonferroni step-down adjusted p-values (scipy has no Holm; this is its definition)."""
    p = np.asarray(pvalues, dtype=float)
    m = len(p)
    if m == 0:
        return p
    order = np.argsort(p)
    adjusted = np.maximum.accumulate((m - np.arange(m)) * p[order])
    out = np.empty(m)
    out[order] = np.minimum(adjusted, 1.0)
    return out


def min_seeds(k: int, alpha: float = 0.05) -> int:
    """Fewest paired seeds with which the best of `k` strategies can be significant at `alpha`.

    The smallest two-sided exact Wilcoxon p-value with n pairs is 2 * 2**-n (every difference of
    one sign); Holm multiplies the smallest of k - 1 equal p-values by k - 1."""
    n = 1
    while (k - 1) * 2.0 ** (1 - n) >= alpha:
        n += 1
    return n


def _paired_differences(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """x - y where both are present; -inf vs -inf is a tie (0), -inf vs finite is +-inf."""
    mask = ~(np.isnan(x) | np.isnan(y))
    x, y = x[mask], y[mask]
    with np.errstate(invalid="ignore"):
        d = x - y
    d[np.isnan(d)] = 0.0
    return d


def wilcoxon_p(d: np.ndarray, alternative: str = "two-sided") -> float:
    """Wilcoxon signed-rank p-value of differences `d`; 1.0 when there is nothing to test."""
    d = d[d != 0]
    if len(d) == 0:
        return 1.0
    if np.isinf(d).any():  # ranks only need order: put infinite differences above all finite ones
        big = (np.abs(d[np.isfinite(d)]).max() if np.isfinite(d).any() else 1.0) * 2 + 1
        d = np.where(np.isinf(d), np.sign(d) * big, d)
    return float(stats.wilcoxon(d, alternative=alternative).pvalue)


@dataclass
class RankAnalysis:
    """Average ranks and the tests behind the critical-difference diagram."""

    metric: str
    alpha: float
    strategies: list[str]
    n_problems: int                      # all problems seen
    n_complete: int                      # problems where every strategy has a run
    incomplete: pd.Series                # per strategy: problems where it has no run
    failed_runs: pd.Series               # per strategy: runs without any usable trial
    average_rank: pd.Series
    not_applicable: pd.Series = field(default_factory=pd.Series)  # per strategy: problems N/A
    excluded: list[str] = field(default_factory=list)  # N/A on some problems: not ranked
    friedman_statistic: float = float("nan")
    friedman_p: float = float("nan")
    critical_difference: float = float("nan")
    pairwise_p: pd.DataFrame = field(default_factory=pd.DataFrame)   # Holm-adjusted, two-sided
    regret: pd.DataFrame = field(default_factory=pd.DataFrame)       # per problem x strategy

    def summary(self) -> pd.DataFrame:
        """Per strategy: average rank, regret mean/median, problems used, failed and missing runs."""
        reg = self.regret.dropna()  # the complete problems, as for the ranks
        na = self.not_applicable.reindex(self.strategies).fillna(0).astype(int)
        out = pd.DataFrame({
            "average_rank": self.average_rank,
            "regret_mean": reg.mean(),
            "regret_median": reg.median(),
            "problems": self.n_complete,
            "failed_runs": self.failed_runs,
            "missing_runs": self.incomplete - na,
            "not_applicable": na,
        }, index=pd.Index(self.strategies, name="strategy"))
        return out.sort_values("average_rank", na_position="last")


def analyse(runs: pd.DataFrame, *, metric: str = "test", alpha: float = 0.05,
            not_applicable: pd.DataFrame | None = None) -> RankAnalysis:
    """Ranks, Friedman, Nemenyi CD, pairwise Wilcoxon-Holm and regret over all problems.

    `not_applicable`: runs recorded as not applicable. Their problems are incomplete for their
    strategy, as a missing run is, and counted apart (N/A), so a strategy that cannot handle a
    problem is neither ranked last on it nor reported as missing it."""
    scores = problem_scores(runs, metric)
    na_counts, excluded = pd.Series(dtype=int), []
    if not_applicable is not None and len(not_applicable):
        na = not_applicable.dropna(subset=["strategy"]).drop_duplicates(PROBLEM_KEYS + ["strategy"])
        na_counts = na.groupby("strategy").size()
        # Average ranks need every strategy on every problem: a strategy that cannot handle some
        # of them would empty the complete problems for all. It is left out of the ranks and
        # tests (listed as N/A), unless fewer than two strategies would remain.
        keep = [c for c in scores.columns if c not in na_counts.index]
        if len(keep) >= 2:
            excluded = sorted(na_counts.index)
            scores = scores[keep]
        else:  # all ranked: count N/A over the ranked problems only (they are the incomplete ones)
            ranked = pd.MultiIndex.from_frame(na[PROBLEM_KEYS]).isin(scores.index)
            na_counts = na[ranked].groupby("strategy").size()
    strategies = list(scores.columns)
    k = len(strategies)
    complete = scores.dropna()
    n = len(complete)
    failed = (scores == -np.inf).sum().reindex(strategies).astype(int)
    incomplete = scores.isna().sum().reindex(strategies).astype(int)
    if n:
        ranks = stats.rankdata(-complete.to_numpy(), method="average", axis=1)
        avg = pd.Series(ranks.mean(axis=0), index=strategies)
    else:
        avg = pd.Series(np.nan, index=strategies)
    result = RankAnalysis(metric=metric, alpha=alpha, strategies=strategies, n_problems=len(scores),
                          n_complete=n, incomplete=incomplete, failed_runs=failed, average_rank=avg,
                          not_applicable=na_counts.astype(int), excluded=excluded)

    values = complete.to_numpy()
    if k >= 3 and n >= 2:
        finite = np.where(np.isinf(values), np.nan, values)
        floor = np.nanmin(finite) - 1 if np.isfinite(finite).any() else 0.0
        if np.ptp(np.where(np.isinf(values), floor, values), axis=1).any():
            res = stats.friedmanchisquare(*np.where(np.isinf(values), floor, values).T)
            result.friedman_statistic, result.friedman_p = float(res.statistic), float(res.pvalue)
        else:  # every strategy tied on every problem: nothing to detect
            result.friedman_statistic, result.friedman_p = 0.0, 1.0
    if k >= 2 and n >= 1:
        q = stats.studentized_range.ppf(1 - alpha, k, np.inf) / np.sqrt(2)
        result.critical_difference = float(q * np.sqrt(k * (k + 1) / (6.0 * n)))
        pairs = list(combinations(range(k), 2))
        raw = np.array([wilcoxon_p(_paired_differences(values[:, i], values[:, j])) for i, j in pairs])
        adj = holm(raw)
        mat = pd.DataFrame(np.nan, index=strategies, columns=strategies)
        for (i, j), p in zip(pairs, adj):
            mat.iloc[i, j] = mat.iloc[j, i] = p
        result.pairwise_p = mat

    result.regret = relative_regret(scores).reindex(scores.index)
    return result


def relative_regret(scores: pd.DataFrame) -> pd.DataFrame:
    """Relative regret per complete problem x strategy (module docstring); failed runs count."""
    scores = scores.dropna()  # incomplete problems are left out, as for the ranks
    best = scores.replace(-np.inf, np.nan).max(axis=1)
    scale = best.abs().where(best != 0, 1.0)  # best 0 (exact fit): the absolute gap
    reg = scores.rsub(best, axis=0).div(scale, axis=0)
    failed = scores == -np.inf
    # A failed run is never better than a result: regret 1 (accuracy 0), or the problem's worst.
    penalty = reg.where(~failed).max(axis=1).clip(lower=1.0).fillna(1.0)
    return reg.mask(failed, penalty, axis=0)


def row_significance(runs: pd.DataFrame, metric: str, alpha: float = 0.05,
                     statistic: str = "mean") -> pd.DataFrame:
    """Per (dataset, space): the best strategy by `statistic` (mean or median over its runs, as
    the table shows), and whether it beats every other significantly (module docstring).

    Returns columns dataset, search_space, best, p (largest Holm-adjusted two-sided p-value),
    significant.
    """
    col = f"score_{metric}"
    rows = []
    for (dataset, space), grp in runs.groupby(["dataset", "search_space"], sort=True):
        shown = grp.groupby("strategy")[col].agg(statistic)  # NaN: no run with a result
        if shown.dropna().empty:
            rows.append((dataset, space, None, np.nan, False))
            continue
        best = shown.idxmax()
        # -inf: a run without usable trial (it loses every pairing); NaN: no run for that seed.
        table = (grp.assign(score=grp[col].fillna(-np.inf))
                 .groupby(["seed", "strategy"])["score"].mean().unstack("strategy"))
        others = [s for s in table.columns if s != best]
        if not others:
            rows.append((dataset, space, best, np.nan, False))
            continue
        x = table[best].to_numpy(float)
        diffs = [_paired_differences(x, table[o].to_numpy(float)) for o in others]
        p = float(holm(np.array([wilcoxon_p(d) for d in diffs])).max())
        # Two-sided tests also reject when the best loses most pairings (a mean carried by one
        # outlier): it must also lead on the shown statistic and on signed ranks.
        ahead = (shown.drop(best).fillna(-np.inf) < shown[best]).all() and all(
            _signed_rank_sum(d) > 0 for d in diffs)
        rows.append((dataset, space, best, p, bool(ahead and p < alpha)))
    return pd.DataFrame(rows, columns=["dataset", "search_space", "best", "p", "significant"])


def _signed_rank_sum(d: np.ndarray) -> float:
    """W+ - W- of the Wilcoxon signed-rank test (zeros dropped); > 0 when `d` favours x."""
    d = d[d != 0]
    return float((np.sign(d) * stats.rankdata(np.abs(d))).sum())
