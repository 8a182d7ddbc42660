"""Formatting: the main table and the rank table as Markdown, LaTeX (booktabs), CSV and Parquet.

Tables are built once as plain cells (text with Unicode symbols, plus a bold flag) and then
rendered; the LaTeX renderer escapes and translates the symbols. Number formats are fixed:
accuracy in % with 2 decimals, RMSE with 3 decimals, seconds with 1 decimal (overhead: 3).
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from harness.report.stats import RankAnalysis, min_seeds

DASH = "—"


@dataclass(frozen=True)
class Cell:
    text: str
    bold: bool = False


@dataclass
class Table:
    """A rendered-agnostic table: header, rows of cells, a caption and notes under it."""

    header: list[str]
    rows: list[list[Cell]]
    caption: str = ""
    notes: tuple[str, ...] = ()
    align: str = ""  # LaTeX column spec, e.g. "lllrr"
    block_starts: tuple[int, ...] = ()  # row indices that start a new block (LaTeX \midrule)
    decimal: tuple[int, ...] = ()  # columns aligned on the decimal point in LaTeX
    under: int | None = None  # column set under the first one in a narrow LaTeX table


# -- number formats ---------------------------------------------------------------------------
def _isnan(x: object) -> bool:
    return x is None or (isinstance(x, float) and math.isnan(x))


def fmt_metric(x: float, kind: str) -> str:
    """Accuracy in % with 2 decimals, RMSE with 3 decimals, anything else with 4 significant digits."""
    if _isnan(x):
        return DASH
    if kind == "accuracy":
        return f"{100 * x:.2f}"
    return f"{x:.3f}" if kind == "rmse" else f"{x:.4g}"


def metric_unit(kind: str, lower: bool) -> str:
    label = {"accuracy": "acc. (%)", "rmse": "RMSE"}.get(kind, kind)
    return f"{label} {'↓' if lower else '↑'}"


def fmt_count(x: float) -> str:
    if _isnan(x):
        return DASH
    return f"{x:.0f}" if float(x).is_integer() else f"{x:.1f}"


def fmt_seconds(x: float, decimals: int = 1) -> str:
    return DASH if _isnan(x) else f"{x:.{decimals}f}"


def fmt_spread(mean: float, std: float, median: float, q1: float, q3: float, kind: str, spread: str) -> str:
    if spread == "iqr":
        if _isnan(median):
            return DASH
        return f"{fmt_metric(median, kind)} [{fmt_metric(q1, kind)}, {fmt_metric(q3, kind)}]"
    if _isnan(mean):
        return DASH
    if not math.isfinite(mean):  # a diverged test value (inf)
        return str(mean)
    if kind in ("accuracy", "rmse"):
        s = fmt_metric(mean, kind)
        return s if _isnan(std) else f"{s} ± {fmt_metric(std, kind)}"
    # Any other metric: 4 significant digits of the mean, the std with as many decimals.
    decimals = max(0, 3 - math.floor(math.log10(abs(mean)))) if mean else 3
    if abs(mean) >= 1e5 or (mean and abs(mean) < 1e-3):
        s = f"{mean:.3e}"
        return s if _isnan(std) else f"{s} ± {std:.1e}"
    s = f"{mean:.{decimals}f}"
    return s if _isnan(std) else f"{s} ± {std:.{decimals}f}"


def fmt_p(p: float, decimals: int = 3) -> str:
    """'p=0.012', or 'p<0.001' where rounding would print a misleading 'p=0.000'."""
    floor = 10.0**-decimals
    return f"p<{floor:.{decimals}f}" if p < floor else f"p={p:.{decimals}f}"


def target_label(target_acc: float | None, target_rmse: float | None, kind: str) -> str:
    if kind == "rmse" and target_rmse is not None:
        return f"RMSE ≤ {target_rmse:g}"
    if kind == "accuracy" and target_acc is not None:
        return f"{100 * target_acc:g}%"
    return "target"


# -- the main table -----------------------------------------------------------------------------
def main_table(
    cells: pd.DataFrame,
    significance: dict[str, pd.DataFrame],
    *,
    spread: str = "std",
    target_acc: float | None = 0.95,
    target_rmse: float | None = None,
    alpha: float = 0.05,
) -> Table:
    """Rows: one block per (dataset, space), one line per quantity; columns: strategies."""
    strategies = sorted(cells["strategy"].unique())
    header = ["Dataset", "Space", "Metric", *strategies, "Best; worse (Holm p < α)"]
    rows: list[list[Cell]] = []
    starts: list[int] = []
    spread_name = "mean ± std" if spread == "std" else "median [IQR]"
    stat = "mean" if spread == "std" else "median"  # the best is chosen on what the cells show
    k = len(strategies)
    for (dataset, space), block in cells.groupby(["dataset", "search_space"], sort=True):
        block = block.set_index("strategy").reindex(strategies)
        lower = bool(block["lower_is_better"].dropna().any())
        kind = str(block["metric"].dropna().iloc[0]) if block["metric"].notna().any() else "accuracy"
        unit = metric_unit(kind, lower)
        tlabel = target_label(target_acc, target_rmse, kind)
        lines: list[tuple[str, list[Cell], str]] = []
        for metric, name in (("val", "val"), ("test", "test")):
            verdicts = _row_verdicts(significance[metric], dataset, space)
            texts = _metric_cells(block, strategies, metric, kind, spread, verdicts)
            label = f"{name} {unit}" + (" [selected on val]" if metric == "test" else "")
            lines.append((label, texts, _verdict_text(verdicts)))
        lines.append(("seeds", [Cell(_seeds_text(block.loc[st])) for st in strategies], ""))
        lines.append(("trials / run", [Cell(fmt_count(block.loc[st, "trials_per_run"])) for st in strategies], ""))
        lines.append(
            (
                "failed / pruned trials",
                [Cell(f"{int(block.loc[st, 'failed'])} / {int(block.loc[st, 'pruned'])}") for st in strategies],
                "",
            )
        )
        epochs = bool((block["epochs_per_run"].fillna(0) > 0).any())  # none on e.g. bbob
        if epochs:
            lines.append(("epochs / run", [Cell(fmt_count(_round1(block.loc[st, "epochs_per_run"]))) for st in strategies], ""))
        simulated = bool(block["simulated"].fillna(False).astype(bool).any())  # tabular problems
        clock = "simulated s" if simulated else "wall s"
        lines.append((f"{clock} / run", [Cell(fmt_seconds(block.loc[st, "wall_per_run"])) for st in strategies], ""))
        lines.append(("ask+tell s / run", [Cell(fmt_seconds(block.loc[st, "overhead_per_run"], 3)) for st in strategies], ""))
        if bool(block["target_applies"].any()):  # a target is set for this metric
            lines.append(
                (
                    f"{'simulated ' if simulated else ''}s to {tlabel}",
                    [Cell(_ttt_text(block.loc[st], "ttt_seconds_mean", 1)) for st in strategies],
                    "",
                )
            )
            if epochs:
                lines.append(
                    (f"epochs to {tlabel}", [Cell(_ttt_text(block.loc[st], "ttt_epochs_mean", 0)) for st in strategies], "")
                )
        for _, texts, _ in lines[2:]:  # bookkeeping of a strategy that cannot run here: N/A
            for j, st in enumerate(strategies):
                if _all_not_applicable(block.loc[st]):
                    texts[j] = Cell(NA)
        starts.append(len(rows))
        for i, (label, texts, verdict) in enumerate(lines):
            first = i == 0
            rows.append(
                [Cell(str(dataset) if first else ""), Cell(str(space) if first else ""), Cell(label), *texts, Cell(verdict)]
            )
    notes = (
        f"Cells over seeds: {spread_name}. Accuracy in %, RMSE in target units, regret = distance "
        "to the problem's known optimum (↓: lower is better). "
        "'test' is the test metric of the configuration selected on validation in each run.",
        bold_note(k, alpha, stat),
        "seeds: runs with a result / seeds run by any strategy in the row, then missing seeds, runs "
        "without any ok trial and unfinished runs. Time-to-target: mean over the runs that reached "
        "it (reached/runs). N/A: the strategy cannot handle this problem (the reason is in each "
        "run's _run.json and the runs table); such runs are left out of every test and rank.",
    )
    align = "lll" + "r" * len(strategies) + "l"
    return Table(header, rows, caption="Main comparison", notes=notes, align=align, block_starts=tuple(starts))


def _metric_cells(
    block: pd.DataFrame,
    strategies: Sequence[str],
    metric: str,
    kind: str,
    spread: str,
    verdicts: dict[str, dict],
    *,
    count_results: bool = False,
) -> list[Cell]:
    """One row's `metric` ("val" or "test") over seeds per strategy, bold by the row verdicts;
    `count_results`: add "(n/m)" where only n of the m seeds have a result (the paper table)."""
    cells = []
    for st in strategies:
        c = block.loc[st]
        if _all_not_applicable(c):
            cells.append(Cell(NA))
            continue
        text = fmt_spread(
            c[f"{metric}_mean"], c[f"{metric}_std"], c[f"{metric}_median"], c[f"{metric}_q1"], c[f"{metric}_q3"], kind, spread
        )
        if count_results and text != DASH and int(c["n_scored"]) < int(c["expected_seeds"]):
            text += f" ({int(c['n_scored'])}/{int(c['expected_seeds'])})"
        cells.append(Cell(text, bold=bool(verdicts.get(st, {}).get("bold", False))))
    return cells


def bold_note(k: int, alpha: float, stat: str = "mean") -> str:
    """The bold convention, as the captions state it."""
    comparisons = f"{k - 1} comparison{'s' if k != 2 else ''}"
    need = (
        f" With {k} strategies a strategy can only be shown worse with at least "
        f"{min_seeds(k, alpha)} seeds; with fewer, every strategy is bold."
        if k > 1
        else ""
    )
    return (
        f"Bold: the row's best {stat} and every strategy not significantly worse than it "
        f"(two-sided Wilcoxon signed-rank tests of the best against each other strategy over "
        f"paired seeds, Holm-corrected over the {comparisons}, p < {alpha:g}).{need}"
    )


def _row_verdicts(sig: pd.DataFrame, dataset: object, space: object) -> dict[str, dict]:
    """strategy -> its row verdict (best, p, worse, bold) from `stats.row_significance`."""
    rows = sig[(sig["dataset"] == dataset) & (sig["search_space"] == space)]
    return {str(r["strategy"]): r for r in rows.to_dict("records")}


def _verdict_text(verdicts: dict[str, dict]) -> str:
    """'tpe; worse: random (p=0.004)' — the best and the strategies significantly worse."""
    best = next((v["best"] for v in verdicts.values() if v.get("best") is not None), None)
    if best is None:
        return DASH
    worse = [(name, v["p"]) for name, v in verdicts.items() if v["worse"]]
    if len(verdicts) < 2:
        return f"{best} (untested)"
    if not worse:
        return f"{best}; none worse"
    return f"{best}; worse: " + ", ".join(f"{n} ({fmt_p(p)})" for n, p in sorted(worse))


def _round1(x: float) -> float:
    return x if _isnan(x) else round(float(x), 1)


NA = "N/A"  # the strategy cannot handle this problem (recorded as not applicable, with the reason)


def _all_not_applicable(c: pd.Series) -> bool:
    return int(c.get("not_applicable", 0) or 0) > 0 and int(c["not_applicable"]) == int(c["n_runs"])


def _seeds_text(c: pd.Series) -> str:
    if _all_not_applicable(c):
        return NA
    text = f"{int(c['n_scored'])}/{int(c['expected_seeds'])}"
    extra = []
    if c.get("not_applicable", 0) > 0:
        extra.append(f"{int(c['not_applicable'])} N/A")
    if c["missing_seeds"] > 0:
        extra.append(f"{int(c['missing_seeds'])} missing")
    if c["no_usable_trial"] > 0:
        extra.append(f"{int(c['no_usable_trial'])} without ok trial")
    if c["unfinished"] > 0:
        extra.append(f"{int(c['unfinished'])} unfinished")
    return text + (f" ({', '.join(extra)})" if extra else "")


def _ttt_text(c: pd.Series, col: str, decimals: int) -> str:
    if not c["target_applies"]:
        return "n/a"
    runs = int(c["n_runs"])
    if runs == 0:
        return DASH
    reached = int(c["ttt_reached"])
    value = DASH if reached == 0 else f"{c[col]:.{decimals}f}"
    return f"{value} ({reached}/{runs})"


# -- the rank table -----------------------------------------------------------------------------
def rank_table(analysis: RankAnalysis) -> Table:
    s = analysis.summary()
    ref = str(s["vs"].dropna().iloc[0]) if "vs" in s and s["vs"].notna().any() else "best"
    # Count columns only where something is counted: the table has to fit one column.
    counts = [
        (c, h)
        for c, h in (("failed_runs", "Failed"), ("missing_runs", "Missing"), ("not_applicable", "N/A"))
        if c in s and (s[c].fillna(0) > 0).any() or (c == "not_applicable" and analysis.excluded)
    ]
    header = ["Strategy", "Rank ↓", "NR ↓", "Δ NR [95% CI]", "W/T/L", *(h for _, h in counts)]
    rows = []
    for name, r in s.iterrows():
        if "diff_mean" in r and not _isnan(r["diff_mean"]) and name != ref:
            ci = "" if _isnan(r["diff_ci_low"]) else f" [{r['diff_ci_low']:+.2f}, {r['diff_ci_high']:+.2f}]"
            delta, wtl = f"{r['diff_mean']:+.3f}{ci}", f"{int(r['wins'])}/{int(r['ties'])}/{int(r['losses'])}"
        else:
            delta, wtl = DASH, DASH
        rows.append(
            [
                Cell(str(name)),
                Cell(fmt_seconds(r["average_rank"], 2)),
                Cell(fmt_seconds(r["regret_mean"], 3)),
                Cell(delta),
                Cell(wtl),
                *(Cell(str(int(r[c]))) for c, _ in counts),
            ]
        )
    for name in analysis.excluded:  # not applicable to some problems: not ranked
        rows.append(
            [
                Cell(str(name)),
                Cell(NA),
                Cell(NA),
                Cell(NA),
                Cell(NA),
                *(
                    (Cell(str(int(analysis.not_applicable.get(name, 0)))) if c == "not_applicable" else Cell(DASH))
                    for c, _ in counts
                ),
            ]
        )
    return Table(
        header,
        rows,
        caption=f"Average ranks over {analysis.block_name}",
        notes=tuple(rank_notes(analysis)),
        align="lrrlr" + "r" * len(counts),
        decimal=(1, 2),
    )


def rank_notes(a: RankAnalysis) -> list[str]:
    k, n = len(a.strategies), a.n_complete
    unit = a.block_unit
    metric = "test metric of the configuration selected on validation" if a.metric == "test" else "best validation metric"
    notes = [
        f"Rank: average rank; NR: mean normalised regret. "
        f"{n} complete {unit} of {a.n_problems} ({a.block_name}); {unit} where a strategy has "
        f"no run are left out (Missing: the {unit} where it has none; N/A: where its run was "
        "recorded as not applicable); runs without any ok trial count as the worst run of their "
        f"problem (Failed: such runs). Metric: {metric}, as normalised regret per problem: "
        "(best - value) / (best - worst) over every run of every strategy on the problem "
        "(log10 of the regret where the optimum is known, floored at 1e-8), 0 = best run, "
        "1 = worst"
        + (
            "; ranks are of its mean over seeds."
            if a.blocks == "problems"
            else "; every (dataset, space, seed) is ranked as its own block."
        )
    ]
    if a.excluded:
        notes.append(
            f"Not ranked: {', '.join(a.excluded)}, not applicable to some problems (N/A: "
            "the strategy cannot handle the problem); ranks and tests compare the others."
        )
    if math.isnan(a.friedman_p):
        notes.append(f"Friedman test not applicable (needs >= 3 strategies and >= 2 complete {unit}; have {k} and {n}).")
    else:
        df2 = (k - 1) * (n - 1)
        notes.append(
            f"Friedman chi2_F = {a.friedman_statistic:.3f} (df {k - 1}), p = {a.friedman_p:.4g}; "
            f"Iman-Davenport F_F = {a.iman_davenport_statistic:.3f} (df {k - 1}, {df2}), "
            f"p = {a.iman_davenport_p:.4g} (k={k}, N={n}; both from the average ranks, "
            f"no tie correction)"
            + (
                f"; with fewer than 10 {unit} both approximations are poor, so the verdict "
                f"rests on a Friedman permutation test (20,000 shuffles of each block's "
                f"ranks, seed 0): p = {a.permutation_p:.4g}"
                if math.isfinite(a.permutation_p)
                else ""
            )
            + f" — {'significant' if a.significant else 'not significant'} at alpha={a.alpha:g}."
        )
    if not math.isnan(a.critical_difference):
        notes.append(
            f"Nemenyi critical difference CD = {a.critical_difference:.3f} at alpha={a.alpha:g} "
            "(studentized range): average ranks closer than CD are not significantly different."
        )
    if "vs" in a.effects:
        notes.append(
            f"Δ NR: mean difference of normalised regret to the best-ranked strategy "
            f"({a.effects['vs'].iloc[0]}) over the complete {unit} (positive = worse), with a "
            "95% BCa bootstrap confidence "
            f"interval (scipy.stats.bootstrap, 2000 resamples of the {unit}, seed 0; only with 5 "
            f"or more); W/T/L: {unit} where it is better than, tied with, or worse than it."
        )
    return notes


def pairwise_table(analysis: RankAnalysis) -> Table:
    names = analysis.strategies
    mat = analysis.pairwise_p
    rows = []
    for a in names:
        row = [Cell(a)]
        for b in names:
            p = mat.loc[a, b] if (a in mat.index and b in mat.columns) else np.nan
            text = DASH if _isnan(p) else fmt_p(p, 4).replace("p=", "").replace("p", "")  # <0.0001
            row.append(Cell(text, bold=bool(not _isnan(p) and p < analysis.alpha)))
        rows.append(row)
    m = len(names) * (len(names) - 1) // 2
    return Table(
        ["", *names],
        rows,
        caption="Pairwise Wilcoxon signed-rank p-values (Holm)",
        notes=(
            f"Two-sided Wilcoxon signed-rank tests on the normalised regret over the "
            f"{analysis.n_complete} complete {analysis.block_name}, Holm-corrected "
            f"across the {m} pair{'s' if m != 1 else ''}; bold: p < {analysis.alpha:g}.",
        ),
        align="l" + "r" * len(names),
    )


# -- the paper tables: results and cost, apart ----------------------------------------------------
def results_table(
    cells: pd.DataFrame, significance: pd.DataFrame, *, metric: str = "test", spread: str = "std", alpha: float = 0.05
) -> Table:
    """One line per (dataset, space), one column per strategy: the `metric` (test of the
    configuration selected on validation, by default) over seeds, bold as in the main table."""
    strategies = sorted(cells["strategy"].unique())
    blocks = list(cells.groupby(["dataset", "search_space"], sort=True))
    spaces = {str(space) for (_, space), _ in blocks}
    units = {}
    for key, block in blocks:
        kind = str(block["metric"].dropna().iloc[0]) if block["metric"].notna().any() else "accuracy"
        units[key] = (kind, metric_unit(kind, bool(block["lower_is_better"].dropna().any())))
    shared_unit = len({u for _, u in units.values()}) == 1
    # Narrow enough for one column: the space and the metric go to the header or the note when
    # every row shares them.
    header = ["Problem" if len(spaces) > 1 else f"Problem ({next(iter(spaces))})"]
    header += [] if shared_unit else ["Metric"]
    header += strategies
    rows: list[list[Cell]] = []
    for (dataset, space), block in blocks:
        block = block.set_index("strategy").reindex(strategies)
        kind, unit = units[(dataset, space)]
        verdicts = _row_verdicts(significance, dataset, space)
        texts = _metric_cells(block, strategies, metric, kind, spread, verdicts, count_results=True)
        problem = str(dataset) if len(spaces) == 1 else f"{dataset} / {space}"
        rows.append([Cell(problem), *([] if shared_unit else [Cell(unit)]), *texts])
    k = len(strategies)
    stat = "mean" if spread == "std" else "median"
    spread_name = "mean ± std" if spread == "std" else "median [IQR]"
    what = "test metric of the configuration each run selected on validation" if metric == "test" else "best validation metric"
    seeds = cells.groupby(["dataset", "search_space"])["expected_seeds"].max()
    n_seeds = f"{int(seeds.min())}" if seeds.min() == seeds.max() else f"{int(seeds.min())}-{int(seeds.max())}"
    unit_text = f"; {next(iter(units.values()))[1]}" if shared_unit and units else ""
    notes = (
        f"{spread_name} over {n_seeds} seeds of the {what}{unit_text}; (n/m): only n of the m "
        "seeds have a result (the others failed or are missing). Accuracy in %, RMSE in "
        "target units, regret = f(x) - f_opt (↓: lower is better); N/A: not applicable.",
        bold_note(k, alpha, stat),
    )
    first = len(header) - k
    return Table(
        header,
        rows,
        caption="Results",
        notes=notes,
        align="l" * first + "r" * k,
        decimal=tuple(range(first, first + k)),
        under=None if shared_unit else 1,
    )


def cost_table(cells: pd.DataFrame, runs: pd.DataFrame) -> Table:
    """Per strategy over all its runs: runs, trials, failed and pruned trials, epochs, time and
    strategy overhead per run — the bookkeeping a results table should not carry."""
    applicable = runs[runs["run_status"] != "not_applicable"]
    g = applicable.groupby("strategy", sort=True)
    frame = pd.DataFrame(
        {
            "runs": g.size(),
            "unfinished": g[["run_status", "score_val"]].apply(
                lambda d: int((~d["run_status"].isin(["", "finished"]) & d["score_val"].notna()).sum())
            ),
            "no_ok": g["score_val"].agg(lambda s: int(s.isna().sum())),
            "trials": g["n_trials"].mean(),
            "failed": g["n_failed"].sum(),
            "pruned": g["n_pruned"].sum(),
            "epochs": g["epochs"].mean(),
            "seconds": g["wall_seconds"].mean(),
            "simulated": g["simulated"].agg(lambda s: bool(s.fillna(False).astype(bool).any())),
            "overhead": g["overhead_seconds"].mean(),
        }
    )
    simulated = bool(frame["simulated"].any())
    # Columns only where something is counted or spent: the table has to fit one column.
    shown = [("runs", "Runs", "count")]
    shown += [(c, h, "count") for c, h in (("no_ok", "No ok"), ("unfinished", "Unfin.")) if (frame[c] > 0).any()]
    shown += [("trials", "Trials", "mean")]
    shown += [(c, h, "count") for c, h in (("failed", "Fail."), ("pruned", "Pruned")) if (frame[c] > 0).any()]
    shown += [("epochs", "Epochs", "mean")] if (frame["epochs"].fillna(0) > 0).any() else []
    shown += [("seconds", "Sim. s" if simulated else "Wall s", "seconds"), ("overhead", "Ovh. s", "overhead")]
    header = ["Strategy", *(h for _, h, _ in shown)]
    fmt = {
        "count": lambda x: str(int(x)),
        "mean": lambda x: fmt_count(_round1(x)),
        "seconds": fmt_seconds,
        "overhead": lambda x: fmt_seconds(x, 3),
    }
    rows = [[Cell(str(name)), *(Cell(fmt[kind](r[c])) for c, _, kind in shown)] for name, r in frame.iterrows()]
    notes = (
        "Runs over every problem and seed (No ok: without any ok trial; Unfin.: not finished). "
        "Trials, epochs and seconds: means per run; Fail., Pruned: trials in total. Epochs include "
        "those of failed and pruned trials. Ovh.: the strategy's own time (sum of ask and tell "
        "seconds)."
        + (
            " Sim. s: simulated seconds of the tabular benchmark's recorded training."
            if simulated
            else " Wall s: the run's wall-clock seconds."
        ),
        "Columns that would be all zero (no ok, unfinished, failed, pruned, epochs) are left out.",
    )
    n = len(header)
    first_decimal = header.index("Trials")
    return Table(header, rows, caption="Cost", notes=notes, align="l" + "r" * (n - 1), decimal=tuple(range(first_decimal, n)))


def refit_table(runs: pd.DataFrame, *, spread: str = "std") -> Table | None:
    """Per problem and strategy: the test metric of the selected configuration as the search
    trained it (training data only) next to the same configuration retrained on training +
    validation data (`refit.enabled=true`); None when no run was refitted."""
    done = runs[runs["refit_test"].notna() & runs["test"].notna()] if "refit_test" in runs else runs.iloc[:0]
    if done.empty:
        return None
    rows, starts = [], []
    for (dataset, space), block in done.groupby(["dataset", "search_space"], sort=True):
        starts.append(len(rows))
        kind = str(block["metric"].iloc[0])
        for strategy, g in block.groupby("strategy", sort=True):

            def stat(col: str) -> str:
                values = g[col].astype(float)
                text = fmt_metric(values.mean(), kind)
                if len(values) > 1:
                    sd = values.std(ddof=1) * (100 if kind == "accuracy" else 1)
                    text += f" ± {sd:.2f}" if kind == "accuracy" else f" ± {sd:.3f}"
                return text

            diff = (g["refit_test"] - g["test"]).astype(float).mean()
            rows.append(
                [
                    Cell(str(dataset)),
                    Cell(str(space)),
                    Cell(str(strategy)),
                    Cell(str(len(g))),
                    Cell(stat("test")),
                    Cell(stat("refit_test")),
                    Cell(fmt_metric(diff, kind) if kind != "accuracy" else f"{100 * diff:+.2f}"),
                ]
            )
    unit = metric_unit(str(done["metric"].iloc[0]), False).rsplit(" ", 1)[0]
    notes = (
        "Search: the test metric of the configuration selected on validation, as the search "
        "trained it (training data only). Refit: the same configuration trained again from "
        "scratch on training + validation data, then scored on the test set once (seed 004's "
        "final step). Mean ± sample std over seeds; Δ: mean of refit minus search.",
    )
    return Table(
        ["Dataset", "Space", "Strategy", "Runs", "Search", "Refit", "Δ"],
        rows,
        caption=f"Test {unit} of the selected configurations, retrained on training + validation data",
        notes=notes,
        align="lllrrrr",
        block_starts=tuple(starts[1:]),
        decimal=(6,),
    )


def speedup_table(summary: pd.DataFrame, reference: str = "random") -> Table:
    """Per strategy: how much faster than random search it reaches random search's final value."""
    rows = [
        [
            Cell(str(name)),
            Cell(f"{int(r['problems_reached'])}/{int(r['problems'])}"),
            Cell(DASH if _isnan(r["speedup_median"]) else f"{r['speedup_median']:.2f}"),
            Cell(DASH if _isnan(r["speedup_geomean_reached"]) else f"{r['speedup_geomean_reached']:.2f}"),
        ]
        for name, r in summary.iterrows()
    ]
    notes = (
        f"Target per problem: the median over {reference}'s seeds of its final best validation "
        "value. aRT: trials the strategy's runs spent until they first reached it (all their "
        "trials for runs that never did), summed, divided by the runs that reached it (COCO's "
        f"average runtime). Speed-up = aRT of {reference} / aRT of the strategy (> 1: faster; "
        "0 where never reached). Reached: problems where at least one run reached the target; "
        "geometric mean over those problems.",
    )
    return Table(
        ["Strategy", "Reached", "Median speed-up", "Geo. mean (reached)"],
        rows,
        caption=f"Speed-up over {reference} search",
        notes=notes,
        align="lrrr",
        decimal=(2, 3),
    )


# -- renderers ----------------------------------------------------------------------------------
def to_markdown(t: Table, *, notes: bool = True) -> str:
    texts = [[f"**{c.text}**" if c.bold and c.text else c.text for c in row] for row in t.rows]
    widths = [max([len(h)] + [len(r[i]) for r in texts]) for i, h in enumerate(t.header)]
    right = [ch == "r" for ch in t.align] if t.align else [False] * len(t.header)

    def line(cells: Sequence[str]) -> str:
        return "| " + " | ".join(c.rjust(w) if r else c.ljust(w) for c, w, r in zip(cells, widths, right)) + " |"

    sep = "|" + "|".join(("-" * (w + 1) + ":") if r else ("-" * (w + 2)) for w, r in zip(widths, right)) + "|"
    out = [line([h.replace("|", "\\|") for h in t.header]), sep]
    out += [line([c.replace("|", "\\|") for c in r]) for r in texts]
    if notes and t.notes:
        out.append("")
        out += [f"{n}" for n in t.notes]
    return "\n".join(out) + "\n"


_LATEX = {
    "&": r"\&",
    "%": r"\%",
    "$": r"\$",
    "#": r"\#",
    "_": r"\_",
    "{": r"\{",
    "}": r"\}",
    "~": r"\textasciitilde{}",
    "^": r"\textasciicircum{}",
    "\\": r"\textbackslash{}",
    # OT1 text fonts print < > | as other glyphs (¡ ¿ —): use the text commands.
    "<": r"\textless{}",
    ">": r"\textgreater{}",
    "|": r"\textbar{}",
    "±": r"$\pm$",
    "↑": r"$\uparrow$",
    "↓": r"$\downarrow$",
    "≤": r"$\leq$",
    "≥": r"$\geq$",
    "—": "---",
    "\u2009": r"\,",
    "χ": r"$\chi$",
    "Δ": r"$\Delta$",
    "α": r"$\alpha$",
}


def latex_escape(text: str) -> str:
    return "".join(_LATEX.get(ch, ch) for ch in text)


LATEX_WIDTHS = ("column", "page")
_NUMBER = re.compile(r"^([-+]?\d+)(\.\d+(?:e[-+]\d+)?)?(.*)$")
_EXPONENT = re.compile(r"(\d)e([+-])0*(\d+)")


_SPREADS = (" ± ", " [", " (")


def _split_spread(text: str) -> tuple[str, str]:
    """('95.33', '± 1.53'): a cell's value and its spread (± std, [IQR], (reached/runs))."""
    for sep in _SPREADS:
        if sep in text:
            head, tail = text.split(sep, 1)
            return head, sep.strip() + ("\u2009" if sep == " ± " else "") + tail
    return text, ""


def _latex_number_tail(text: str) -> str:
    """The part of a cell after its integer digits: fraction in full size, the spread (± std,
    [IQR], (reached/runs)) in script size, exponents as powers of ten."""
    head, spread = _split_spread(text)
    return _latex_plain(head) + (f"{{\\scriptsize\\,{_latex_plain(spread)}}}" if spread else "")


def _latex_plain(text: str) -> str:
    escaped = latex_escape(text)
    return _EXPONENT.sub(lambda m: f"{m[1]}$\\times10^{{{'-' if m[2] == '-' else ''}{m[3]}}}$", escaped)


def _latex_cell(c: Cell, decimal: bool) -> str:
    """One cell; a decimal-aligned column is two LaTeX columns (integer part | rest)."""
    bold = (lambda x: f"\\textbf{{{x}}}" if x else x) if c.bold and c.text else (lambda x: x)
    if not decimal:
        return bold(_latex_plain(c.text))
    m = _NUMBER.match(c.text)
    if not m:  # "N/A", "—": centred across both halves
        return f"\\multicolumn{{2}}{{c}}{{{bold(_latex_plain(c.text))}}}"
    integer = m[1].replace("-", "$-$")  # a minus, not a hyphen
    return f"{bold(integer)} & {bold(_latex_number_tail((m[2] or '') + m[3]))}"


def to_latex(t: Table, *, label: str = "", width: str = "column") -> str:
    """A booktabs float for a paper: caption above, the method in a note below, numbers aligned
    on the decimal point, spreads in script size.

    `width` "column" gives a `table` for one column of a two-column layout: footnotesize, and
    each spread on a line of its own under its value; "page" a `table*` spanning the page, spreads
    beside the values. A table still wider than its space is scaled down to fit (only then, and
    the LaTeX log says so). Needs `\\usepackage{booktabs}` and `\\usepackage{graphicx}`."""
    if width not in LATEX_WIDTHS:
        raise ValueError(f"width must be one of {LATEX_WIDTHS}, got {width!r}")
    env = "table" if width == "column" else "table*"
    stacked = width == "column" and any(_split_spread(r[j].text)[1] for r in t.rows for j in t.decimal)
    under = t.under if stacked else None
    keep = [j for j in range(len(t.header)) if j != under]
    align = t.align or "l" * len(t.header)
    spec = "".join("r@{}l" if i in t.decimal else align[i] for i in keep)
    head = [
        f"\\multicolumn{{2}}{{c}}{{{latex_escape(t.header[i])}}}" if i in t.decimal else latex_escape(t.header[i]) for i in keep
    ]
    out = [
        "% generated by harness-report; needs \\usepackage{booktabs} and \\usepackage{graphicx}",
        f"\\begin{{{env}}}[tbp]",
        "\\centering",
        # a column is ~230-250 pt (article: 229.5 pt): footnotesize, tight columns
        "\\footnotesize" if width == "column" else "\\small",
        f"\\setlength{{\\tabcolsep}}{{{3 if width == 'column' else 4}pt}}",
    ]
    caption = latex_escape(t.caption)
    out.append(f"\\caption[{caption}]{{{caption}.}}")
    if label:
        out.append(f"\\label{{{label}}}")
    out += ["\\sbox0{%", f"\\begin{{tabular}}{{{spec}}}", "\\toprule", " & ".join(head) + " \\\\", "\\midrule"]
    for i, row in enumerate(t.rows):
        if i in t.block_starts and i != 0:
            out.append("\\midrule")
        if not stacked:
            out.append(" & ".join(_latex_cell(row[j], j in t.decimal) for j in keep) + " \\\\")
            continue
        first, second = [], []
        for j in keep:
            value, spread = _split_spread(row[j].text) if j in t.decimal else (row[j].text, "")
            first.append(_latex_cell(Cell(value, row[j].bold), j in t.decimal))
            if j in t.decimal:
                second.append(f"\\multicolumn{{2}}{{c}}{{\\scriptsize {_latex_plain(spread)}}}" if spread else " & ")
            elif j == 0 and under is not None:
                second.append(f"\\scriptsize {_latex_plain(row[under].text)}")
            else:
                second.append("")
        out.append(" & ".join(first) + " \\\\")
        out.append(" & ".join(second) + " \\\\[2pt]")
    out += [
        "\\bottomrule",
        "\\end{tabular}}%",
        "% scaled down only when wider than the column (or page, for table*); the log says so",
        f"\\ifdim\\wd0>\\linewidth\\typeout{{harness-report: table {label or t.caption} scaled "
        "down to fit}\\resizebox{\\linewidth}{!}{\\usebox0}\\else\\usebox0\\fi",
    ]
    if t.notes:
        out += ["\\par\\smallskip", "{\\footnotesize\\raggedright", *(latex_escape(n) + "\\par" for n in t.notes), "}"]
    out.append(f"\\end{{{env}}}")
    return "\n".join(out) + "\n"


def to_csv_frame(t: Table) -> pd.DataFrame:
    return pd.DataFrame([[c.text for c in r] for r in t.rows], columns=t.header)


def write_frames(frames: dict[str, pd.DataFrame], out: Path, formats: Sequence[str]) -> list[Path]:
    """Write aggregated numbers as CSV and/or Parquet; returns the written paths."""
    written = []
    for name, frame in frames.items():
        if "csv" in formats:
            frame.to_csv(out / f"{name}.csv", index=False)
            written.append(out / f"{name}.csv")
        if "parquet" in formats:
            frame.to_parquet(out / f"{name}.parquet", index=False)
            written.append(out / f"{name}.parquet")
    return written
