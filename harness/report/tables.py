"""Formatting: the main table and the rank table as Markdown, LaTeX (booktabs), CSV and Parquet.

Tables are built once as plain cells (text with Unicode symbols, plus a bold flag) and then
rendered; the LaTeX renderer escapes and translates the symbols. Number formats are fixed:
accuracy in % with 2 decimals, RMSE with 3 decimals, seconds with 1 decimal (overhead: 3).
"""
from __future__ import annotations

import math
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
    align: str = ""                      # LaTeX column spec, e.g. "lllrr"
    block_starts: tuple[int, ...] = ()   # row indices that start a new block (LaTeX \midrule)


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


def fmt_spread(mean: float, std: float, median: float, q1: float, q3: float,
               kind: str, spread: str) -> str:
    if spread == "iqr":
        if _isnan(median):
            return DASH
        return (f"{fmt_metric(median, kind)} "
                f"[{fmt_metric(q1, kind)}, {fmt_metric(q3, kind)}]")
    if _isnan(mean):
        return DASH
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
    floor = 10.0 ** -decimals
    return f"p<{floor:.{decimals}f}" if p < floor else f"p={p:.{decimals}f}"


def target_label(target_acc: float | None, target_rmse: float | None, kind: str) -> str:
    if kind == "rmse" and target_rmse is not None:
        return f"RMSE ≤ {target_rmse:g}"
    if kind == "accuracy" and target_acc is not None:
        return f"{100 * target_acc:g}%"
    return "target"


# -- the main table -----------------------------------------------------------------------------
def main_table(cells: pd.DataFrame, significance: dict[str, pd.DataFrame], *, spread: str = "std",
               target_acc: float | None = 0.95, target_rmse: float | None = None,
               alpha: float = 0.05) -> Table:
    """Rows: one block per (dataset, space), one line per quantity; columns: strategies."""
    strategies = sorted(cells["strategy"].unique())
    header = ["Dataset", "Space", "Metric", *strategies, "Best (p)"]
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
            sig = significance[metric]
            srow = sig[(sig["dataset"] == dataset) & (sig["search_space"] == space)]
            best, p, significant = (srow.iloc[0][["best", "p", "significant"]] if len(srow)
                                    else (None, np.nan, False))
            texts = []
            for st in strategies:
                c = block.loc[st]
                if _all_not_applicable(c):
                    texts.append(Cell(NA))
                    continue
                texts.append(Cell(fmt_spread(c[f"{metric}_mean"], c[f"{metric}_std"],
                                             c[f"{metric}_median"], c[f"{metric}_q1"],
                                             c[f"{metric}_q3"], kind, spread),
                                  bold=bool(significant and st == best)))
            if best is None or _isnan(p):
                verdict = DASH if best is None else f"{best} (untested)"
            else:
                verdict = f"{best if significant else 'n.s.'} ({fmt_p(p)})"
            label = f"{name} {unit}" + (" [selected on val]" if metric == "test" else "")
            lines.append((label, texts, verdict))
        lines.append(("seeds", [Cell(_seeds_text(block.loc[st])) for st in strategies], ""))
        lines.append(("trials / run", [Cell(fmt_count(block.loc[st, "trials_per_run"])) for st in strategies], ""))
        lines.append(("failed / pruned trials",
                      [Cell(f"{int(block.loc[st, 'failed'])} / {int(block.loc[st, 'pruned'])}")
                       for st in strategies], ""))
        epochs = bool((block["epochs_per_run"].fillna(0) > 0).any())  # none on e.g. bbob
        if epochs:
            lines.append(("epochs / run", [Cell(fmt_count(_round1(block.loc[st, "epochs_per_run"])))
                                           for st in strategies], ""))
        simulated = bool(block["simulated"].fillna(False).astype(bool).any())  # tabular problems
        clock = "simulated s" if simulated else "wall s"
        lines.append((f"{clock} / run", [Cell(fmt_seconds(block.loc[st, "wall_per_run"])) for st in strategies], ""))
        lines.append(("ask+tell s / run", [Cell(fmt_seconds(block.loc[st, "overhead_per_run"], 3)) for st in strategies], ""))
        if bool(block["target_applies"].any()):  # a target is set for this metric
            lines.append((f"{'simulated ' if simulated else ''}s to {tlabel}",
                          [Cell(_ttt_text(block.loc[st], "ttt_seconds_mean", 1))
                                             for st in strategies], ""))
            if epochs:
                lines.append((f"epochs to {tlabel}", [Cell(_ttt_text(block.loc[st], "ttt_epochs_mean", 0))
                                                      for st in strategies], ""))
        for _, texts, _ in lines[2:]:  # bookkeeping of a strategy that cannot run here: N/A
            for j, st in enumerate(strategies):
                if _all_not_applicable(block.loc[st]):
                    texts[j] = Cell(NA)
        starts.append(len(rows))
        for i, (label, texts, verdict) in enumerate(lines):
            first = i == 0
            rows.append([Cell(str(dataset) if first else ""), Cell(str(space) if first else ""),
                         Cell(label), *texts, Cell(verdict)])
    notes = (
        f"Cells over seeds: {spread_name}. Accuracy in %, RMSE in target units, regret = distance "
        "to the problem's known optimum (↓: lower is better). "
        "'test' is the test metric of the configuration selected on validation in each run.",
        f"Bold: the row's best {stat}, significantly better than every other strategy: two-sided "
        f"Wilcoxon signed-rank tests of it against each other strategy over paired seeds, "
        f"Holm-corrected over the {k - 1} comparisons, all p < {alpha:g}"
        + (f" (with {k} strategies this needs at least {min_seeds(k, alpha)} seeds)" if k > 1 else "")
        + f"; 'n.s.': the best {stat} is not significantly better; p is the largest corrected p-value.",
        "seeds: runs with a result / seeds run by any strategy in the row, then missing seeds, runs "
        "without any ok trial and unfinished runs. Time-to-target: mean over the runs that reached "
        "it (reached/runs). N/A: the strategy cannot handle this problem (the reason is in each "
        "run's _run.json and the runs table); such runs are left out of every test and rank.",
    )
    align = "lll" + "r" * len(strategies) + "l"
    return Table(header, rows, caption="Main comparison", notes=notes, align=align,
                 block_starts=tuple(starts))


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
    header = ["Strategy", "Avg. rank ↓", "Regret mean ↓", "Regret median ↓", "Problems",
              "Failed runs", "Missing runs", "N/A"]
    rows = []
    for name, r in s.iterrows():
        rows.append([Cell(str(name)), Cell(fmt_seconds(r["average_rank"], 2)),
                     Cell(fmt_seconds(r["regret_mean"], 4)), Cell(fmt_seconds(r["regret_median"], 4)),
                     Cell(str(int(r["problems"]))), Cell(str(int(r["failed_runs"]))),
                     Cell(str(int(r["missing_runs"]))), Cell(str(int(r["not_applicable"])))])
    for name in analysis.excluded:  # not applicable to some problems: not ranked
        rows.append([Cell(str(name)), Cell(NA), Cell(NA), Cell(NA), Cell("0"), Cell(DASH), Cell(DASH),
                     Cell(str(int(analysis.not_applicable.get(name, 0))))])
    return Table(header, rows, caption=f"Average ranks over (dataset, space, seed) problems "
                                       f"({analysis.metric} metric)",
                 notes=tuple(rank_notes(analysis)), align="lrrrrrrr")


def rank_notes(a: RankAnalysis) -> list[str]:
    k, n = len(a.strategies), a.n_complete
    notes = [f"{n} complete problems of {a.n_problems} (dataset, space, seed); problems where a "
             "strategy has no run are left out and counted as missing runs (or as N/A where the run "
             "was recorded as not applicable); runs without any ok trial rank last and are counted "
             "as failed. Metric ranked: "
             f"{'test metric of the configuration selected on validation' if a.metric == 'test' else 'best validation metric'}."]
    if a.excluded:
        notes.append(f"Not ranked: {', '.join(a.excluded)}, not applicable to some problems (N/A: "
                     "the strategy cannot handle the problem); ranks and tests compare the others.")
    if math.isnan(a.friedman_p):
        notes.append(f"Friedman test not applicable (needs >= 3 strategies and >= 2 complete "
                     f"problems; have {k} and {n}).")
    else:
        notes.append(f"Friedman chi-square = {a.friedman_statistic:.3f}, p = {a.friedman_p:.4g} "
                     f"(k={k}, N={n}) — {'significant' if a.friedman_p < a.alpha else 'not significant'} "
                     f"at alpha={a.alpha:g}.")
    if not math.isnan(a.critical_difference):
        notes.append(f"Nemenyi critical difference CD = {a.critical_difference:.3f} at alpha={a.alpha:g} "
                     "(studentized range): average ranks closer than CD are not significantly different.")
    notes.append("Regret: |best - value| / |best| per complete problem, best = the best of the "
                 "strategies' values ranked on that problem; a failed run counts as max(1, the "
                 "problem's worst regret); mean and median over the same problems as the ranks.")
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
    return Table(["", *names], rows, caption="Pairwise Wilcoxon signed-rank p-values (Holm)",
                 notes=("Two-sided Wilcoxon signed-rank tests over complete problems, Holm-corrected "
                        f"across all pairs; bold: p < {analysis.alpha:g}.",),
                 align="l" + "r" * len(names))


# -- renderers ----------------------------------------------------------------------------------
def to_markdown(t: Table, *, notes: bool = True) -> str:
    texts = [[f"**{c.text}**" if c.bold and c.text else c.text for c in row] for row in t.rows]
    widths = [max([len(h)] + [len(r[i]) for r in texts]) for i, h in enumerate(t.header)]
    right = [ch == "r" for ch in t.align] if t.align else [False] * len(t.header)

    def line(cells: Sequence[str]) -> str:
        return "| " + " | ".join(c.rjust(w) if r else c.ljust(w)
                                 for c, w, r in zip(cells, widths, right)) + " |"

    sep = "|" + "|".join(("-" * (w + 1) + ":") if r else ("-" * (w + 2))
                         for w, r in zip(widths, right)) + "|"
    out = [line([h.replace("|", "\\|") for h in t.header]), sep]
    out += [line([c.replace("|", "\\|") for c in r]) for r in texts]
    if notes and t.notes:
        out.append("")
        out += [f"{n}" for n in t.notes]
    return "\n".join(out) + "\n"


_LATEX = {"&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#", "_": r"\_", "{": r"\{", "}": r"\}",
          "~": r"\textasciitilde{}", "^": r"\textasciicircum{}", "\\": r"\textbackslash{}",
          # OT1 text fonts print < > | as other glyphs (¡ ¿ —): use the text commands.
          "<": r"\textless{}", ">": r"\textgreater{}", "|": r"\textbar{}",
          "±": r"$\pm$", "↑": r"$\uparrow$", "↓": r"$\downarrow$", "≤": r"$\leq$", "≥": r"$\geq$",
          "—": "---", "χ": r"$\chi$"}


def latex_escape(text: str) -> str:
    return "".join(_LATEX.get(ch, ch) for ch in text)


def to_latex(t: Table, *, label: str = "") -> str:
    """A booktabs `table` float; needs only `\\usepackage{booktabs}` in the preamble."""
    out = ["% generated by harness-report; needs \\usepackage{booktabs}",
           "\\begin{table}[htbp]", "\\centering", "\\small",
           f"\\begin{{tabular}}{{{t.align or 'l' * len(t.header)}}}", "\\toprule",
           " & ".join(latex_escape(h) for h in t.header) + " \\\\", "\\midrule"]
    for i, row in enumerate(t.rows):
        if i in t.block_starts and i != 0:
            out.append("\\midrule")
        cells = [f"\\textbf{{{latex_escape(c.text)}}}" if c.bold and c.text else latex_escape(c.text)
                 for c in row]
        out.append(" & ".join(cells) + " \\\\")
    out += ["\\bottomrule", "\\end{tabular}"]
    caption = latex_escape(t.caption) + ("." if t.caption else "")
    if t.notes:
        caption += " " + " ".join(latex_escape(n) for n in t.notes)
    out.append(f"\\caption{{{caption}}}")
    if label:
        out.append(f"\\label{{{label}}}")
    out.append("\\end{table}")
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
