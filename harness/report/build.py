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

from harness.report import aggregate, budget, load, stats, tables
from harness.report.load import ReportInputError

ALL_FORMATS = ("markdown", "latex", "csv", "parquet")


@dataclass(frozen=True)
class Options:
    formats: tuple[str, ...] = ALL_FORMATS
    target: float | None = 0.95  # validation accuracy, as a fraction
    target_rmse: float | None = None
    spread: str = "std"  # std or iqr
    rank_on: str = "test"  # test or val
    alpha: float = 0.05
    figures: bool = True
    run_figures: bool = True
    runs: str = "*"  # fnmatch pattern of run ids (or experiment/run_id)
    importance: str = "fanova"
    blocks: str = "problems"  # problems (seeds averaged) or seeds
    latex_width: str = "column"  # column (table) or page (table*)
    iohprofiler: bool = False  # export BBOB runs for IOHanalyzer (reads the params)


@dataclass
class Report:
    options: Options
    trials: pd.DataFrame  # prepared trial rows
    runs: pd.DataFrame  # one row per run
    cells: pd.DataFrame  # one row per (dataset, space, strategy)
    significance: dict[str, pd.DataFrame]
    analysis: stats.RankAnalysis
    main: tables.Table
    ranks: tables.Table
    pairwise: tables.Table
    results: tables.Table
    cost: tables.Table
    skipped: list[str] = field(default_factory=list)
    sources: dict[tuple[str, str], Path] = field(default_factory=dict)  # (experiment, run_id)
    class_reports: dict[str, str] = field(default_factory=dict)  # "experiment/run_id" -> text
    notes: list[str] = field(default_factory=list)  # what report.md should say

    def colors(self) -> dict[str, str]:
        """One colour per strategy for every figure of the report."""
        from harness.report.style import strategy_colors

        return strategy_colors(self.runs["strategy"].dropna().unique())

    def main_frame(self) -> pd.DataFrame:
        """The main table's numbers: one row per cell, with the row verdicts (best, p against it,
        significantly worse, bold). Accuracies are fractions and RMSE in target units."""
        out = self.cells.copy()
        for metric in ("val", "test"):
            sig = self.significance[metric].rename(
                columns={
                    "best": f"{metric}_best_strategy",
                    "p": f"{metric}_p_vs_best",
                    "worse": f"{metric}_significantly_worse",
                    "bold": f"{metric}_bold",
                }
            )
            out = out.merge(sig, on=["dataset", "search_space", "strategy"], how="left")
        return out

    def problems_frame(self) -> pd.DataFrame:
        """Per block (problem, or problem and seed) and strategy: the normalised regret ranked."""
        long = self.analysis.regret.stack(future_stack=True).rename("normalised_regret")
        return long.reset_index()

    def rank_frame(self) -> pd.DataFrame:
        s = self.analysis.summary().reset_index()
        s["friedman_statistic"] = self.analysis.friedman_statistic
        s["friedman_p"] = self.analysis.friedman_p
        s["iman_davenport_statistic"] = self.analysis.iman_davenport_statistic
        s["iman_davenport_p"] = self.analysis.iman_davenport_p
        s["critical_difference"] = self.analysis.critical_difference
        s["metric"] = self.analysis.metric
        s["blocks"] = self.analysis.blocks
        return s


def compute(results_dir: str | Path, options: Options = Options(), *, exclude: str | Path | None = None) -> Report:
    """Everything the tables need, from a results folder (figures excluded).

    `exclude`: a folder not to read (the report's output folder inside `results_dir`)."""
    wants_params = (options.figures and options.run_figures) or options.iohprofiler
    columns = aggregate.NEEDED + (["params"] if wants_params else [])
    loaded = load.read_trials(results_dir, columns, exclude=exclude)
    records = load.read_run_records(results_dir)
    if loaded.trials.empty and not records:
        where = f" ({len(loaded.skipped)} unreadable or foreign files skipped)" if loaded.skipped else ""
        raise ReportInputError(
            f"no harness trial files under {str(results_dir)!r}{where}; pass the "
            "folder a `harness` run or sweep wrote (e.g. results/<experiment>)"
        )
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
    analysis = stats.analyse(
        applicable,
        metric=options.rank_on,
        alpha=options.alpha,
        blocks=options.blocks,
        not_applicable=runs[runs["run_status"] == aggregate.NOT_APPLICABLE],
    )
    main = tables.main_table(
        cells,
        significance,
        spread=options.spread,
        target_acc=options.target,
        target_rmse=options.target_rmse,
        alpha=options.alpha,
    )
    results = tables.results_table(
        cells, significance[options.rank_on], metric=options.rank_on, spread=options.spread, alpha=options.alpha
    )
    return Report(
        options=options,
        trials=trials,
        runs=runs,
        cells=cells,
        significance=significance,
        analysis=analysis,
        main=main,
        ranks=tables.rank_table(analysis),
        pairwise=tables.pairwise_table(analysis),
        results=results,
        cost=tables.cost_table(cells, runs),
        skipped=loaded.skipped,
        sources=loaded.sources,
    )


def write(report: Report, out: Path) -> list[Path]:
    """Write the tables in the chosen formats and the figures; returns the written paths."""
    out.mkdir(parents=True, exist_ok=True)
    opts = report.options
    written: list[Path] = []
    named = {
        "main": report.main,
        "results": report.results,
        "cost": report.cost,
        "ranks": report.ranks,
        "pairwise": report.pairwise,
    }
    refit = tables.refit_table(report.runs)
    if refit is not None:
        named["refit"] = refit
    if "markdown" in opts.formats:
        for name, t in named.items():
            (out / f"{name}.md").write_text(tables.to_markdown(t))
            written.append(out / f"{name}.md")
    if "latex" in opts.formats:
        # The main table's bookkeeping lines belong in the cost table: a paper gets the two apart.
        for name, t in named.items():
            if name != "main":
                (out / f"{name}.tex").write_text(tables.to_latex(t, label=f"tab:{name}", width=opts.latex_width))
                written.append(out / f"{name}.tex")
    frames = {
        "main": report.main_frame(),
        "runs": report.runs,
        "ranks": report.rank_frame(),
        "pairwise": report.analysis.pairwise_p.rename_axis("strategy").reset_index(),
        "problems": report.problems_frame(),
    }
    over = over_budget(report)
    frames.update({f"budget_{k}": v for k, v in over.aggregated.items()})
    if not over.speedup.empty:
        frames["speedup"] = over.speedup
        speed = tables.speedup_table(budget.speedup_summary(over.speedup))
        for fmt, ext, render in (
            ("markdown", "md", tables.to_markdown),
            ("latex", "tex", lambda t: tables.to_latex(t, label="tab:speedup", width=opts.latex_width)),
        ):
            if fmt in opts.formats:
                (out / f"speedup.{ext}").write_text(render(speed))
                written.append(out / f"speedup.{ext}")
    if not over.ecdf.empty:
        frames["ecdf"] = over.ecdf
    written += tables.write_frames(frames, out, opts.formats)
    if opts.iohprofiler:
        from harness.report import ecdf

        exported = ecdf.export_iohprofiler(report.trials, out / "iohprofiler")
        written += exported
        report.notes.append(
            f"IOHprofiler export: {len(exported)} files under `iohprofiler/` (zip the folder and upload it to IOHanalyzer)"
            if exported
            else "IOHprofiler export: no BBOB runs with recorded params"
        )
    figures: list[Path] = []
    run_notes: list[str] = []
    if opts.figures:
        figures, run_notes = write_figures(report, out / "figures", over)
        written += figures
    if "markdown" in opts.formats:
        (out / "report.md").write_text(report_markdown(report, out, figures, report.notes + run_notes))
        written.append(out / "report.md")
    return written


def write_figures(report: Report, out: Path, over: "OverBudget | None" = None) -> tuple[list[Path], list[str]]:
    """Anytime curves, over-budget curves, CD diagrams, ECDFs and, per run, history, importances,
    classification report."""
    from harness.report import ecdf, figures
    from harness.report.style import strategy_markers

    opts = report.options
    colors = report.colors()
    over = over or over_budget(report)
    paths = figures.anytime_curves(report.trials, out, spread=opts.spread, colors=colors)
    paths += budget.budget_figure(over.aggregated, out, colors, strategy_markers(colors))
    if not over.ecdf.empty:
        paths += ecdf.ecdf_figure(over.ecdf, out / "ecdf", colors)
    # A CD diagram says which differences are significant: drawn only with 3 or more strategies,
    # enough problems, and where the omnibus test rejects (RankAnalysis.cd_diagram_meaningful).
    for name, analysis, title in [("cd_diagram", report.analysis, None)] + [
        (
            f"cd_diagram_{round(100 * asked)}pct",
            a,
            f"After {int(b)} trials ({100 * used:.0f} % of the shortest run), best validation value",
        )
        for asked, used, b, a in over.at_budgets
    ]:
        why = analysis.cd_diagram_meaningful
        if why is None:
            paths += figures.cd_diagram(analysis, out, title=title, stem_name=name, colors=colors)
        else:
            report.notes.append(f"{name}: not drawn ({why})")
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
                    npz, stem / "classification_report", f"Classification report (test set), {name}{acc}"
                )
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
                warnings.warn(
                    f"{str(npz)!r} holds trial {saved}, but the report selects trial "
                    f"{int(expected)} on validation for run {name!r}",
                    stacklevel=2,
                )
    return paths, notes


def _data_notes(report: Report) -> list[str]:
    """What a reader must know about the data before trusting the statistics."""
    notes = []
    c = report.cells
    same = c[(c["n_scored"] >= 2) & (c["val_std"] == 0) & (c["test_std"] == 0)]
    for strategy, g in same.groupby("strategy"):
        notes.append(
            f"{strategy} gave the same result on every seed in {len(g)} of "
            f"{int((c['strategy'] == strategy).sum())} problems (a deterministic optimiser, or "
            "one that ignores the seed): its seeds are one observation repeated there."
        )
    r = report.runs
    unfinished = r[~r["run_status"].isin(["", "finished", aggregate.NOT_APPLICABLE])]
    if len(unfinished):
        notes.append(
            f"{len(unfinished)} run(s) did not finish ({', '.join(sorted(set(unfinished['run_status'])))}): "
            "they enter the tables and ranks with the trials they recorded."
        )
    return notes


@dataclass
class OverBudget:
    aggregated: dict[str, pd.DataFrame]  # budget kind -> per (strategy, budget) aggregate
    at_budgets: list[tuple[float, float, float, stats.RankAnalysis]]  # asked, used, trials, ranks
    speedup: pd.DataFrame  # per (problem, strategy)
    ecdf: pd.DataFrame  # runtime ECDFs (problems with a known optimum)


def over_budget(report: Report) -> OverBudget:
    """Performance over budget across problems (harness.report.budget, harness.report.ecdf)."""
    from harness.report import ecdf

    trials = report.trials
    applicable = report.runs[report.runs["run_status"] != aggregate.NOT_APPLICABLE]
    trials = trials[trials["strategy"].isin(set(applicable["strategy"]) - set(report.analysis.excluded))]
    frame = budget.best_so_far_normalised(trials)
    aggregated, at_budgets = {}, []
    for kind, (x, _) in budget.BUDGETS.items():
        if not (pd.to_numeric(frame[x], errors="coerce").fillna(0) > 0).any():
            continue  # e.g. no epochs on bbob
        long = budget.curves(frame, kind)
        if long.empty:
            continue
        agg = budget.aggregate(long)
        agg.attrs["simulated"] = bool((frame["clock"] == "simulated").any())
        aggregated[kind] = agg
        if kind == "trials":
            at_budgets = budget.analyses_at_budgets(frame, (0.1, 0.5), alpha=report.options.alpha)
    hits = ecdf.first_hits(trials)
    curves = ecdf.runtime_ecdf(hits) if len(hits) else pd.DataFrame()
    return OverBudget(aggregated, at_budgets, budget.speedup_over_random(frame), curves)


def report_markdown(report: Report, out: Path, figures: Sequence[Path], notes: Sequence[str]) -> str:
    parts = ["# Report", "", f"Runs: {len(report.runs)}, trials: {len(report.trials)}.", ""]
    for note in _data_notes(report):
        parts += [f"**Note:** {note}", ""]
    if report.skipped:
        parts += ["Skipped files (unreadable or not harness trial files):", ""]
        parts += [f"- `{p}`" for p in report.skipped] + [""]
    parts += [
        "## Results",
        "",
        tables.to_markdown(report.results),
        "## Cost",
        "",
        tables.to_markdown(report.cost),
        "## Main table (results and bookkeeping per problem)",
        "",
        tables.to_markdown(report.main),
        "## Ranks",
        "",
        tables.to_markdown(report.ranks),
        "## Pairwise tests",
        "",
        tables.to_markdown(report.pairwise),
    ]
    refit = tables.refit_table(report.runs)
    if refit is not None:
        parts += ["## Refit on training + validation data", "", tables.to_markdown(refit)]
    if (out / "speedup.md").exists():
        parts += ["## Speed-up over random search", "", (out / "speedup.md").read_text()]
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
