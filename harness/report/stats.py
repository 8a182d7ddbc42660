"""Statistics across runs: normalised regret, ranks, Friedman and Iman-Davenport, post-hoc tests,
effect sizes, and per-row verdicts for the main table.

Conventions of the field (Demšar, "Statistical comparisons of classifiers over multiple data
sets", JMLR 2006; Benavoli et al., "Should we really use post-hoc tests based on mean-ranks?",
JMLR 2016; the HPO benchmark papers, e.g. HPOBench and YAHPO Gym, which average seeds first):

- A *problem* is one (dataset, search space). A strategy's *result* on a problem is the mean over
  its seeds, so seeds never inflate the number of independent observations. ``blocks="seeds"``
  treats every (dataset, space, seed) as its own block instead (the older, anti-conservative
  convention); every output says which was used.
- *Normalised regret* makes problems of different units comparable: per problem, over every run
  of every strategy and seed, ``(best - s) / (best - worst)`` on the oriented score ``s`` (higher
  is better: accuracy, -RMSE, -regret), so 0 is the best run seen on the problem and 1 the worst.
  Where the problem knows its optimum (BBOB) the scale is ``log10`` of the regret, floored at
  1e-8 (COCO's final target), because regrets span ten orders of magnitude. A run without any
  usable trial counts 1 (as bad as the worst run). Unlike a regret relative to the best value,
  it is bounded, also when the best value is 0 or tiny.
- Average rank: per block, rank 1 is the lowest normalised regret; ties share the average rank
  (`scipy.stats.rankdata`). Blocks where a strategy has no run are *incomplete*: left out of
  ranks and tests, and counted.
- Friedman test from the printed average ranks R_j over N blocks and k strategies:
  ``chi2_F = 12 N / (k (k + 1)) * (sum_j R_j^2 - k (k + 1)^2 / 4)`` (no tie correction, so a
  reader can recompute it from the table), and Iman and Davenport's less conservative
  ``F_F = (N - 1) chi2_F / (N (k - 1) - chi2_F)`` with (k - 1, (k - 1)(N - 1)) degrees of
  freedom (Demšar 2006, eqs. 2 and 3).
- Nemenyi critical difference: ``q_alpha * sqrt(k (k + 1) / (6 N))`` with
  ``q_alpha = studentized_range.ppf(1 - alpha, k, inf) / sqrt(2)`` (Demšar 2006, eq. 5).
- Pairwise: two-sided Wilcoxon signed-rank tests on the blocks' normalised regrets (unit-free),
  Holm-corrected across all pairs (Benavoli et al. recommend this over mean-rank tests).
- Effect size of each strategy against the best-ranked one (on a tie of average ranks, the first
  of them by name): the mean difference of normalised
  regret over blocks with a 95 % bootstrap confidence interval (`scipy.stats.bootstrap`, BCa,
  blocks resampled, fixed seed), and the blocks it wins, ties and loses.
- Row verdicts (bold in the main table): in each (dataset, space) row, the best strategy by the
  shown statistic (mean, or median with ``--spread iqr``) and every strategy not significantly
  worse than it: two-sided Wilcoxon signed-rank tests of the best against each other strategy
  over paired seeds, Holm-corrected over the k - 1 comparisons; a strategy is significantly
  worse when its corrected p < alpha and its signed ranks favour the best. With n paired seeds
  the smallest two-sided p-value is 2 * 2**-n, so a strategy can only be shown worse when
  (k - 1) * 2 * 2**-n < alpha (`min_seeds`): at alpha 0.05, 6 seeds for 2 strategies, 7 for 3
  or 4, 8 for 5. With fewer seeds every strategy is bold.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass, field
from itertools import combinations

import numpy as np
import pandas as pd
from scipy import stats

PROBLEM_KEYS = ["dataset", "search_space"]
BLOCKS = {"problems": PROBLEM_KEYS, "seeds": PROBLEM_KEYS + ["seed"]}
MIN_BLOCKS_FOR_CI = 5  # a bootstrap over fewer blocks has too few distinct resamples to mean much
REGRET_FLOOR = 1e-8  # COCO's final precision target: regrets below it count as solved


def on_normalised_scale(score: pd.Series, metric: pd.Series) -> pd.Series:
    """Oriented scores on the scale they are normalised on: -log10(regret) for regret metrics."""
    regret = metric.astype(str) == "regret"
    if not regret.any():
        return score
    logged = -np.log10(np.maximum(-score.to_numpy(float), REGRET_FLOOR))
    return score.where(~regret, pd.Series(logged, index=score.index))


def normalise(values: pd.Series, problem: pd.Series | pd.DataFrame, reference: pd.Series | None = None) -> pd.Series:
    """``(best - v) / (best - worst)`` per problem, best and worst over the finite `reference`
    values (default: `values` themselves; oriented, higher better).

    NaN or -inf values (no usable result) become 1; a problem where every value is equal gives 0.
    """
    keys = [problem[c] for c in problem.columns] if isinstance(problem, pd.DataFrame) else [problem]
    finite = values.where(np.isfinite(values.to_numpy(float)))
    ref = finite if reference is None else reference.where(np.isfinite(reference.to_numpy(float)))
    best = ref.groupby(keys, dropna=False).transform("max")
    worst = ref.groupby(keys, dropna=False).transform("min")
    span = (best - worst).where(lambda s: s > 0)
    out = ((best - finite) / span).where(span.notna(), 0.0)
    return out.where(finite.notna(), 1.0).clip(0.0, 1.0)


def normalised_regret(runs: pd.DataFrame, metric: str = "test") -> pd.Series:
    """Each run's normalised regret on its problem (module docstring), indexed like `runs`."""
    score = on_normalised_scale(runs[f"score_{metric}"].astype(float), runs["metric"])
    return normalise(score, runs[PROBLEM_KEYS])


def block_table(runs: pd.DataFrame, metric: str = "test", blocks: str = "problems") -> pd.DataFrame:
    """Blocks x strategies table of normalised regret, seeds averaged unless ``blocks="seeds"``.

    NaN: the strategy has no run on the block."""
    keys = BLOCKS[blocks]
    data = runs[keys + ["strategy"]].copy()
    data["nr"] = normalised_regret(runs, metric)
    data = data.dropna(subset=keys + ["strategy"])
    table = data.pivot_table(index=keys, columns="strategy", values="nr", aggfunc="mean")
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
    """Fewest paired seeds with which one of `k` strategies can be significantly worse than the
    best at `alpha`.

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


def friedman_from_ranks(average_rank: np.ndarray, n: int) -> tuple[float, float, float, float]:
    """(chi2_F, p, F_F, p) of the Friedman and Iman-Davenport tests from average ranks over `n`
    blocks (Demšar 2006, eqs. 2-3); NaN where k < 3 or n < 2."""
    r = np.asarray(average_rank, dtype=float)
    k = len(r)
    if k < 3 or n < 2 or not np.isfinite(r).all():
        return (float("nan"),) * 4
    chi2 = 12.0 * n / (k * (k + 1)) * (float(np.sum(r**2)) - k * (k + 1) ** 2 / 4.0)
    chi2 = max(chi2, 0.0)  # rounding: equal ranks give -1e-15
    p_chi2 = float(stats.chi2.sf(chi2, k - 1))
    denominator = n * (k - 1) - chi2
    if denominator <= 0:  # every block ranks the strategies identically: F is infinite, and the
        return chi2, p_chi2, float("inf"), float(math.factorial(k)) ** -(n - 1)  # exact p of that
    f = (n - 1) * chi2 / denominator
    return chi2, p_chi2, float(f), float(stats.f.sf(f, k - 1, (k - 1) * (n - 1)))


def friedman_permutation_p(values: np.ndarray, *, resamples: int = 20_000, seed: int = 0) -> float:
    """Monte Carlo permutation p-value of the Friedman statistic for blocks x strategies `values`
    (lower is better): each block's ranks shuffled independently, as under the null hypothesis.

    For few blocks the chi-square and F approximations are far off (with 3 blocks and 4
    strategies Iman-Davenport can print p = 0.0015 where the exact p is 0.017)."""
    ranks = stats.rankdata(values, method="average", axis=1)
    n, k = ranks.shape

    def statistic(r: np.ndarray) -> np.ndarray:
        return 12.0 * n / (k * (k + 1)) * ((r.mean(axis=-2) ** 2).sum(axis=-1) - k * (k + 1) ** 2 / 4.0)

    observed = statistic(ranks)
    rng = np.random.default_rng(seed)
    shuffled = rng.permuted(np.broadcast_to(ranks, (resamples, n, k)), axis=-1)
    null = statistic(shuffled)
    return float((1 + np.sum(null >= observed - 1e-12)) / (1 + resamples))


EXACT_BELOW = 10  # blocks: fewer, and the omnibus p-value is a permutation test's
CD_DIAGRAM_MIN_BLOCKS = 5  # fewer, and a CD spans most of the rank axis: the diagram says nothing


def nemenyi_cd(k: int, n: int, alpha: float = 0.05) -> float:
    """Nemenyi critical difference of average ranks (Demšar 2006, eq. 5); NaN for k < 2 or n < 1."""
    if k < 2 or n < 1:
        return float("nan")
    q = stats.studentized_range.ppf(1 - alpha, k, np.inf) / np.sqrt(2)
    return float(q * np.sqrt(k * (k + 1) / (6.0 * n)))


@dataclass
class RankAnalysis:
    """Average ranks and the tests behind the critical-difference diagram, over one set of blocks."""

    metric: str
    alpha: float
    strategies: list[str]
    n_problems: int  # all blocks seen
    n_complete: int  # blocks where every strategy has a run
    incomplete: pd.Series  # per strategy: blocks where it has no run
    failed_runs: pd.Series  # per strategy: runs without any usable trial
    average_rank: pd.Series
    blocks: str = "problems"  # "problems" (seeds averaged) or "seeds"
    not_applicable: pd.Series = field(default_factory=pd.Series)  # per strategy: problems N/A
    excluded: list[str] = field(default_factory=list)  # N/A on some problems: not ranked
    permutation_p: float = float("nan")  # Friedman permutation p-value, with few blocks
    friedman_statistic: float = float("nan")
    friedman_p: float = float("nan")
    iman_davenport_statistic: float = float("nan")
    iman_davenport_p: float = float("nan")
    critical_difference: float = float("nan")
    pairwise_p: pd.DataFrame = field(default_factory=pd.DataFrame)  # Holm-adjusted, two-sided
    regret: pd.DataFrame = field(default_factory=pd.DataFrame)  # normalised, block x strategy
    effects: pd.DataFrame = field(default_factory=pd.DataFrame)  # per strategy vs the best

    @property
    def block_name(self) -> str:
        return "(dataset, space) problems, seeds averaged" if self.blocks == "problems" else "(dataset, space, seed) blocks"

    @property
    def omnibus_p(self) -> float:
        """The p-value the verdict rests on: Iman-Davenport's, or with fewer than `EXACT_BELOW`
        blocks the Friedman permutation test's (the approximations are poor there)."""
        return self.permutation_p if np.isfinite(self.permutation_p) else self.iman_davenport_p

    @property
    def omnibus_name(self) -> str:
        return "Friedman permutation test" if np.isfinite(self.permutation_p) else "Iman-Davenport"

    @property
    def significant(self) -> bool:
        """Whether the omnibus test rejects equal performance at alpha."""
        return bool(np.isfinite(self.omnibus_p) and self.omnibus_p < self.alpha)

    @property
    def cd_diagram_meaningful(self) -> str | None:
        """None when a CD diagram means something; else why not."""
        k, n = len(self.strategies), self.n_complete
        if k < 3:
            return f"{k} strategies ranked (needs 3 or more)"
        if n < CD_DIAGRAM_MIN_BLOCKS:
            return f"{n} complete {self.block_unit} (needs {CD_DIAGRAM_MIN_BLOCKS} or more)"
        if not self.significant:
            return f"{self.omnibus_name} p = {self.omnibus_p:.3g} >= alpha {self.alpha:g}: no significant difference to draw"
        return None

    @property
    def block_unit(self) -> str:
        return "problems" if self.blocks == "problems" else "(problem, seed) blocks"

    def summary(self) -> pd.DataFrame:
        """Per strategy: average rank, normalised regret mean/median, effect size against the
        best-ranked strategy, blocks used, failed and missing runs."""
        reg = self.regret.dropna()  # the complete blocks, as for the ranks
        na = self.not_applicable.reindex(self.strategies).fillna(0).astype(int)
        out = pd.DataFrame(
            {
                "average_rank": self.average_rank,
                "regret_mean": reg.mean(),
                "regret_median": reg.median(),
                "problems": self.n_complete,
                "failed_runs": self.failed_runs,
                "missing_runs": self.incomplete - na,
                "not_applicable": na,
            },
            index=pd.Index(self.strategies, name="strategy"),
        )
        if len(self.effects):
            out = out.join(self.effects)
        return out.sort_values("average_rank", na_position="last")


def rank_analysis(
    table: pd.DataFrame, *, metric: str, alpha: float = 0.05, blocks: str = "problems", failed_runs: pd.Series | None = None
) -> RankAnalysis:
    """Ranks, Friedman/Iman-Davenport, Nemenyi CD, pairwise Wilcoxon-Holm and effect sizes of a
    blocks x strategies table of normalised regret (lower is better; NaN: no run)."""
    strategies = list(table.columns)
    k = len(strategies)
    complete = table.dropna()
    n = len(complete)
    incomplete = table.isna().sum().reindex(strategies).astype(int)
    failed = failed_runs if failed_runs is not None else pd.Series(0, index=strategies)
    failed = failed.reindex(strategies).fillna(0).astype(int)
    values = complete.to_numpy(float)
    if n:
        avg = pd.Series(stats.rankdata(values, method="average", axis=1).mean(axis=0), index=strategies)
    else:
        avg = pd.Series(np.nan, index=strategies)
    result = RankAnalysis(
        metric=metric,
        alpha=alpha,
        strategies=strategies,
        n_problems=len(table),
        n_complete=n,
        incomplete=incomplete,
        failed_runs=failed,
        average_rank=avg,
        blocks=blocks,
        regret=table,
    )
    (result.friedman_statistic, result.friedman_p, result.iman_davenport_statistic, result.iman_davenport_p) = (
        friedman_from_ranks(avg.to_numpy(), n)
    )
    if k >= 3 and 2 <= n < EXACT_BELOW:
        result.permutation_p = friedman_permutation_p(values)
    result.critical_difference = nemenyi_cd(k, n, alpha)
    if k >= 2 and n >= 1:
        pairs = list(combinations(range(k), 2))
        adj = holm(np.array([wilcoxon_p(values[:, i] - values[:, j]) for i, j in pairs]))
        mat = pd.DataFrame(np.nan, index=strategies, columns=strategies)
        for (i, j), p in zip(pairs, adj):
            mat.iloc[i, j] = mat.iloc[j, i] = p
        result.pairwise_p = mat
        result.effects = effect_sizes(complete, avg.idxmin())
    return result


def effect_sizes(
    table: pd.DataFrame, reference: str, *, confidence: float = 0.95, n_resamples: int = 2000, seed: int = 0
) -> pd.DataFrame:
    """Per strategy against `reference`: mean difference of normalised regret over the blocks
    (positive: worse than the reference) with a bootstrap CI, and wins/ties/losses."""
    ref = table[reference].to_numpy(float)
    rows = {}
    for name in table.columns:
        d = table[name].to_numpy(float) - ref
        lo = hi = float("nan")
        if name != reference and len(d) >= MIN_BLOCKS_FOR_CI and np.ptp(d) > 0:
            with warnings.catch_warnings():  # BCa warns on degenerate resamples; falls back to NaN
                warnings.simplefilter("ignore")
                ci = stats.bootstrap(
                    (d,),
                    np.mean,
                    confidence_level=confidence,
                    n_resamples=n_resamples,
                    method="BCa",
                    random_state=np.random.default_rng(seed),
                ).confidence_interval
            lo, hi = float(ci.low), float(ci.high)
        elif name != reference and len(d) >= MIN_BLOCKS_FOR_CI:  # every difference equal
            lo = hi = float(d.mean())
        rows[name] = {
            "vs": reference,
            "diff_mean": float(d.mean()) if len(d) else float("nan"),
            "diff_ci_low": lo,
            "diff_ci_high": hi,
            "wins": int((d < 0).sum()),
            "ties": int((d == 0).sum()),
            "losses": int((d > 0).sum()),
        }
    out = pd.DataFrame.from_dict(rows, orient="index")
    out.index.name = "strategy"
    return out


def analyse(
    runs: pd.DataFrame,
    *,
    metric: str = "test",
    alpha: float = 0.05,
    blocks: str = "problems",
    not_applicable: pd.DataFrame | None = None,
) -> RankAnalysis:
    """The rank analysis of `runs` (one row per run, from `aggregate.summarize_runs`).

    `not_applicable`: runs recorded as not applicable. Their problems are incomplete for their
    strategy, as a missing run is, and counted apart (N/A), so a strategy that cannot handle a
    problem is neither ranked last on it nor reported as missing it."""
    na_counts, excluded = pd.Series(dtype=int), []
    keys = BLOCKS[blocks]
    if not_applicable is not None and len(not_applicable):
        na = not_applicable.dropna(subset=["strategy"]).drop_duplicates(keys + ["strategy"])
        na_counts = na.groupby("strategy").size()
        # Average ranks need every strategy on every problem: a strategy that cannot handle some
        # of them would empty the complete problems for all. It is left out of the ranks and
        # tests (listed as N/A), unless fewer than two strategies would remain; left out before
        # normalising, so it does not set the others' scale either.
        keep = [c for c in sorted(runs["strategy"].dropna().unique()) if c not in na_counts.index]
        if len(keep) >= 2:
            excluded = sorted(na_counts.index)
            runs = runs[runs["strategy"].isin(keep)]
    table = block_table(runs, metric, blocks)
    if len(na_counts) and not excluded:  # all ranked: count N/A over the ranked blocks only
        ranked = pd.MultiIndex.from_frame(na[keys]).isin(table.index)
        na_counts = na[ranked].groupby("strategy").size()
    failed = runs[runs[f"score_{metric}"].isna()].groupby("strategy").size()
    result = rank_analysis(table, metric=metric, alpha=alpha, blocks=blocks, failed_runs=failed)
    result.not_applicable = na_counts.astype(int)
    result.excluded = excluded
    return result


def row_significance(runs: pd.DataFrame, metric: str, alpha: float = 0.05, statistic: str = "mean") -> pd.DataFrame:
    """Per (dataset, space, strategy): whether the strategy is the row's best by `statistic`
    (mean or median over its runs, as the table shows) and whether it is significantly worse
    than that best (module docstring).

    Returns columns dataset, search_space, strategy, best (the row's best strategy), p (Holm-
    adjusted two-sided p-value against the best; NaN for the best itself), worse (significantly
    worse than the best) and bold (not significantly worse: the best included).
    """
    col = f"score_{metric}"
    rows = []
    for (dataset, space), grp in runs.groupby(PROBLEM_KEYS, sort=True):
        shown = grp.groupby("strategy")[col].agg(statistic)  # NaN: no run with a result
        if shown.dropna().empty:
            rows += [(dataset, space, s, None, np.nan, False, False) for s in shown.index]
            continue
        best = shown.idxmax()
        # -inf: a run without usable trial (it loses every pairing); NaN: no run for that seed.
        table = grp.assign(score=grp[col].fillna(-np.inf)).groupby(["seed", "strategy"])["score"].mean().unstack("strategy")
        others = [s for s in table.columns if s != best]
        x = table[best].to_numpy(float)
        diffs = [_paired_differences(x, table[o].to_numpy(float)) for o in others]
        adjusted = holm(np.array([wilcoxon_p(d) for d in diffs]))
        rows.append((dataset, space, best, best, np.nan, False, True))
        for other, d, p in zip(others, diffs, adjusted):
            # Two-sided tests also reject when the best loses most pairings (a mean carried by one
            # outlier): only differences that favour the best make a strategy worse.
            worse = bool(p < alpha and _signed_rank_sum(d) > 0)
            rows.append((dataset, space, other, best, float(p), worse, not worse))
    return pd.DataFrame(rows, columns=["dataset", "search_space", "strategy", "best", "p", "worse", "bold"])


def _signed_rank_sum(d: np.ndarray) -> float:
    """W+ - W- of the Wilcoxon signed-rank test (zeros dropped); > 0 when `d` favours x."""
    d = d[d != 0]
    return float((np.sign(d) * stats.rankdata(np.abs(d))).sum())
