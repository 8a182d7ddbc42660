"""Assemble a report: load a results folder, compute the tables, write every output.

`compute` does the numbers (fast, no plotting); `write` renders the chosen formats and, unless
asked not to, the figures.
"""
from __future__ import annotations

import fnmatch
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from harness.report import aggregate, load, stats, tables
from harness.report.load import ReportInputError

ALL_FORMATS = ("markdown", "latex", "csv", "parquet")


@dataclass(frozen=True)
class Options:
    formats: tuple[str, ...] = ALL_FORMATS
    target: float | None = 0.95           # validation accuracy, as a fraction
    target_rmse: float | None = None
    spread: str = "std"                   # std or iqr
    rank_on: str = "test"                 # test or val
    alpha: float = 0.05
    figures: bool = True
    run_figures: bool = True
    runs: str = "*"                        # fnmatch pattern of run ids (or experiment/run_id)
    importance: str = "fanova"


@dataclass
class Report:
    options: Options
    trials: pd.DataFrame                  # prepared trial rows
    runs: pd.DataFrame                    # one row per run
    cells: pd.DataFrame                   # one row per (dataset, space, strategy)
    significance: dict[str, pd.DataFrame]
    analysis: stats.RankAnalysis
    main: tables.Table
    ranks: tables.Table
    pairwise: tables.Table
    skipped: list[str] = field(default_factory=list)
    sources: dict[tuple[str, str], Path] = field(default_factory=dict)  # (experiment, run_id)
    class_reports: dict[str, str] = field(default_factory=dict)   # "experiment/run_id" -> text

    def main_frame(self) -> pd.DataFrame:
        """The main table's numbers: one row per cell, with the row's significance verdicts.

        Accuracies are fractions and RMSE in target units, as in the trial files."""
        out = self.cells.copy()
        for metric in ("val", "test"):
            sig = self.significance[metric].rename(columns={
                "best": f"{metric}_best_strategy", "p": f"{metric}_p", "significant": f"{metric}_significant"})
            out = out.merge(sig, on=["dataset", "search_space"], how="left")
            out[f"{metric}_significant"] = (out[f"{metric}_significant"].fillna(False).astype(bool)
                                            & (out["strategy"] == out[f"{metric}_best_strategy"]))
        return out

    def problems_frame(self) -> pd.DataFrame:
        scores = stats.problem_scores(self.runs, self.analysis.metric)
        long = scores.stack(future_stack=True).rename("score").to_frame()
        long["regret"] = self.analysis.regret.stack(future_stack=True)
        return long.reset_index()

    def rank_frame(self) -> pd.DataFrame:
        s = self.analysis.summary().reset_index()
        s["friedman_statistic"] = self.analysis.friedman_statistic
        s["friedman_p"] = self.analysis.friedman_p
        s["critical_difference"] = self.analysis.critical_difference
        s["metric"] = self.analysis.metric
        return s


def compute(results_dir: str | Path, options: Options = Options(), *,
            exclude: str | Path | None = None) -> Report:
    """Everything the tables need, from a results folder (figures excluded).

    `exclude`: a folder not to read (the report's output folder inside `results_dir`)."""
    columns = aggregate.NEEDED + (["params"] if options.figures and options.run_figures else [])
    loaded = load.read_trials(results_dir, columns, exclude=exclude)
    records = load.read_run_records(results_dir)
    if loaded.trials.empty and not records:
        where = f" ({len(loaded.skipped)} unreadable or foreign files skipped)" if loaded.skipped else ""
        raise ReportInputError(f"no harness trial files under {str(results_dir)!r}{where}; pass the "
                               "folder a `harness` run or sweep wrote (e.g. results/<experiment>)")
    trials = aggregate.prepare(loaded.trials)
    targets = aggregate.Targets(accuracy=options.target, rmse=options.target_rmse)
    runs = aggregate.summarize_runs(trials, targets, records)
    if runs.empty:
        raise ReportInputError(f"no runs with trials under {str(results_dir)!r}")
    cells = aggregate.summarize_cells(runs)
    statistic = "median" if options.spread == "iqr" else "mean"  # the best is the one shown
    # Pairings recorded as not applicable are shown as N/A; they are not failures to rank last.
    applicable = runs[runs["run_status"] != aggregate.NOT_APPLICABLE]
    significance = {m: stats.row_significance(applicable, m, options.alpha, statistic) for m in ("val", "test")}
    analysis = stats.analyse(applicable, metric=options.rank_on, alpha=options.alpha,
                             not_applicable=runs[runs["run_status"] == aggregate.NOT_APPLICABLE])
    main = tables.main_table(cells, significance, spread=options.spread, target_acc=options.target,
                             target_rmse=options.target_rmse, alpha=options.alpha)
    return Report(options=options, trials=trials, runs=runs, cells=cells, significance=significance,
                  analysis=analysis, main=main, ranks=tables.rank_table(analysis),
                  pairwise=tables.pairwise_table(analysis), skipped=loaded.skipped,
                  sources=loaded.sources)


def write(report: Report, out: Path) -> list[Path]:
    """Write the tables in the chosen formats and the figures; returns the written paths."""
    out.mkdir(parents=True, exist_ok=True)
    opts = report.options
    written: list[Path] = []
    named = {"main": report.main, "ranks": report.ranks, "pairwise": report.pairwise}
    if "markdown" in opts.formats:
        for name, t in named.items():
            (out / f"{name}.md").write_text(tables.to_markdown(t))
            written.append(out / f"{name}.md")
    if "latex" in opts.formats:
        for name, t in named.items():
            (out / f"{name}.tex").write_text(tables.to_latex(t, label=f"tab:{name}"))
            written.append(out / f"{name}.tex")
    frames = {"main": report.main_frame(), "runs": report.runs, "ranks": report.rank_frame(),
              "pairwise": report.analysis.pairwise_p.rename_axis("strategy").reset_index(),
              "problems": report.problems_frame()}
    written += tables.write_frames(frames, out, opts.formats)
    figures: list[Path] = []
    run_notes: list[str] = []
    if opts.figures:
        figures, run_notes = write_figures(report, out / "figures")
        written += figures
    if "markdown" in opts.formats:
        (out / "report.md").write_text(report_markdown(report, out, figures, run_notes))
        written.append(out / "report.md")
    return written


def write_figures(report: Report, out: Path) -> tuple[list[Path], list[str]]:
    """Anytime curves, CD diagram and, per run, history, importances, classification report."""
    from harness.report import figures

    opts = report.options
    paths = figures.anytime_curves(report.trials, out, spread=opts.spread)
    paths += figures.cd_diagram(report.analysis, out)
    notes: list[str] = []
    if not opts.run_figures:
        return paths, notes
    # Run ids repeat across experiments (the id does not include the experiment): key on both.
    best_trial = report.runs.set_index(["experiment", "run_id"])["best_trial_id"]
    for (experiment, run_id), trials in report.trials.groupby(["experiment", "run_id"], sort=True):
        key, name = (experiment, run_id), f"{experiment}/{run_id}".lstrip("/")
        if not any(fnmatch.fnmatchcase(str(x), opts.runs) for x in (run_id, name)):
            continue
        stem = out / "runs" / str(experiment) / str(run_id)  # "" (no experiment) adds no level
        paths += figures.run_history(trials, stem / "history")
        try:
            imp = figures.importances(trials, evaluator=opts.importance)
            if len(imp):
                paths += figures.importance_figure(imp, trials, stem / "importances", opts.importance)
            else:
                notes.append(f"{name}: no importances (no parameter varies across ok trials)")
        except Exception as exc:  # too few trials, constant params...: say so, keep going
            notes.append(f"{name}: no importances ({type(exc).__name__}: {exc})")
        src = report.sources.get(key)
        npz = src.parent / "_artifacts" / "best_predictions.npz" if src is not None else None
        if npz is not None and npz.exists() and (trials["metric"] == "accuracy").all():
            try:
                sel = trials[trials["trial_id"] == best_trial.get(key)]
                acc = f", test acc. {100 * sel['test'].iloc[0]:.2f}%" if len(sel) else ""
                table, text, figs = figures.classification_report(
                    npz, stem / "classification_report",
                    f"Classification report (test set), {name}{acc}")
            except Exception as exc:
                warnings.warn(f"skipping unreadable predictions file {str(npz)!r}: {exc}", stacklevel=2)
                continue
            paths += figs
            (stem / "classification_report.txt").write_text(text)
            table.to_csv(stem / "classification_report.csv", index=False)
            paths += [stem / "classification_report.txt", stem / "classification_report.csv"]
            report.class_reports[name] = text
            with np.load(npz, allow_pickle=False) as data:
                saved = int(data["trial_id"]) if "trial_id" in data else None
            expected = best_trial.get(key)
            if saved is not None and expected is not None and not pd.isna(expected) and saved != int(expected):
                warnings.warn(f"{str(npz)!r} holds trial {saved}, but the report selects trial "
                              f"{int(expected)} on validation for run {name!r}", stacklevel=2)
    return paths, notes


def report_markdown(report: Report, out: Path, figures: Sequence[Path], notes: Sequence[str]) -> str:
    parts = ["# Report", "", f"Runs: {len(report.runs)}, trials: {len(report.trials)}.", ""]
    if report.skipped:
        parts += ["Skipped files (unreadable or not harness trial files):", ""]
        parts += [f"- `{p}`" for p in report.skipped] + [""]
    parts += ["## Main table", "", tables.to_markdown(report.main), "## Ranks", "",
              tables.to_markdown(report.ranks), "## Pairwise tests", "", tables.to_markdown(report.pairwise)]
    pngs = [p for p in figures if p.suffix == ".png"]
    if pngs:
        parts += ["## Figures", ""]
        parts += [f"![{p.stem}]({p.relative_to(out).as_posix()})" for p in pngs]
        parts.append("")
    if report.class_reports:
        parts += ["## Classification reports (test set, configuration selected on validation)", ""]
        for name, text in sorted(report.class_reports.items()):
            parts += [f"### {name}", "", "```", text.rstrip(), "```", ""]
    if notes:
        parts += ["## Notes", ""] + [f"- {n}" for n in notes] + [""]
    return "\n".join(parts)
