"""harness-report: numbers checked against a hand-computed example, formats, CLI, bad input.

The example (harness.report.testing.EXAMPLE) has 3 strategies x 3 seeds on two problems:
digits/mlp (classification) and diabetes/mlp (regression, RMSE), with failed trials, a pruned
trial better than every ok one (must not be selected), a run whose trials all failed (genetic,
diabetes, seed 1) and a missing run (genetic, diabetes, seed 2), plus a corrupt and a foreign
Parquet file. The hand computation is written out next to each assertion.
"""

from __future__ import annotations

import math
import os
import re
import shutil
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from harness.report import aggregate, build, stats, tables
from harness.report.testing import write_example


@pytest.fixture(scope="module")
def example(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_example(tmp_path_factory.mktemp("results") / "exp")


@pytest.fixture(scope="module")
def report(example: Path) -> build.Report:
    with pytest.warns(UserWarning) as record:
        rep = build.compute(example, build.Options(figures=False))
    messages = " ".join(str(w.message) for w in record)
    assert "corrupt_run" in messages and "trials.parquet" in messages
    assert "other.parquet" in messages and "not a harness trials file" in messages
    return rep


def cell(report: build.Report, dataset: str, strategy: str) -> pd.Series:
    c = report.cells
    return c[(c["dataset"] == dataset) & (c["strategy"] == strategy)].iloc[0]


def run(report: build.Report, strategy: str, dataset: str, seed: int) -> pd.Series:
    r = report.runs
    return r[(r["strategy"] == strategy) & (r["dataset"] == dataset) & (r["seed"] == seed)].iloc[0]


def test_bad_files_are_named_and_skipped(report: build.Report) -> None:
    assert sorted(Path(p).name for p in report.skipped) == ["other.parquet", "trials.parquet"]
    assert len(report.runs) == 17  # 18 (strategy, problem, seed) minus the missing genetic run


def test_selected_configuration_is_chosen_on_validation_not_test(report: build.Report) -> None:
    # random/digits seed 0: val .90 .96 .95 (+1 failed) -> trial 1 (val .96), test .93, although
    # trial 2 has the best test accuracy (.97).
    r = run(report, "random", "digits", 0)
    assert r["best_trial_id"] == 1 and r["val"] == pytest.approx(0.96) and r["test"] == pytest.approx(0.93)
    # genetic/digits seed 0: the pruned trial (val .99) is never selected -> ok trial, val .88.
    assert run(report, "genetic", "digits", 0)["val"] == pytest.approx(0.88)
    # regression: lowest validation RMSE is selected (55 -> test 58, not 60 -> 62).
    r = run(report, "random", "diabetes", 0)
    assert (r["val"], r["test"]) == (55.0, 58.0)


def test_cells_over_seeds(report: build.Report) -> None:
    c = cell(report, "digits", "random")
    assert c["test_mean"] == pytest.approx((0.93 + 0.92 + 0.94) / 3)
    assert c["test_std"] == pytest.approx(0.01)  # sample std of .93 .92 .94
    assert c["val_mean"] == pytest.approx((0.96 + 0.94 + 0.93) / 3)
    assert c["val_median"] == pytest.approx(0.94)
    assert (c["val_q1"], c["val_q3"]) == pytest.approx((0.935, 0.95))  # linear interpolation
    assert (c["trials"], c["failed"], c["pruned"]) == (8, 1, 0)
    assert c["epochs_per_run"] == pytest.approx((7 + 4 + 4) / 3)  # failed trial's epoch counts
    assert c["wall_per_run"] == pytest.approx((4 + 2 + 2) / 3)
    assert c["overhead_per_run"] == pytest.approx(0.003 * 8 / 3)
    assert cell(report, "digits", "genetic")["pruned"] == 1
    assert cell(report, "digits", "tpe")["test_mean"] == pytest.approx((0.95 + 0.94 + 0.97) / 3)


def test_missing_and_failed_runs_are_counted(report: build.Report) -> None:
    c = cell(report, "diabetes", "genetic")
    assert (c["expected_seeds"], c["n_runs"], c["n_scored"]) == (3, 2, 1)
    assert (c["missing_seeds"], c["no_usable_trial"], c["failed"]) == (1, 1, 2)
    text = tables.to_markdown(report.main)
    assert "1/3 (1 missing, 1 without ok trial)" in text


def test_time_to_target(report: build.Report) -> None:
    # target 0.95: random/digits seed 0 first reaches it at trial 1 (elapsed 2 s, 2+2 epochs);
    # seeds 1 and 2 never do. The pruned .99 of genetic does not count.
    r = run(report, "random", "digits", 0)
    assert (r["ttt_seconds"], r["ttt_epochs"]) == (2.0, 4.0)
    assert math.isnan(run(report, "random", "digits", 1)["ttt_seconds"])
    assert cell(report, "digits", "random")["ttt_reached"] == 1
    assert cell(report, "digits", "tpe")["ttt_seconds_mean"] == pytest.approx(1.0)
    assert cell(report, "digits", "genetic")["ttt_reached"] == 0
    text = tables.to_markdown(report.main)
    assert "2.0 (1/3)" in text and "4 (1/3)" in text and "— (0/3)" in text
    assert not cell(report, "diabetes", "tpe")["target_applies"]  # no --target-rmse given


# Normalised regret of each run's test metric (selected on validation), per problem over every
# run of every strategy: (best - value) / (best - worst).
#   digits: tpe .95 .94 .97, random .93 .92 .94, genetic .86 .88 .91 -> best .97, worst .86
#   diabetes (RMSE): tpe 52 56 60, random 58 59 61, genetic 57, failed (1), missing -> 52..61
NR = {
    ("digits", "tpe"): [0.02 / 0.11, 0.03 / 0.11, 0.0],
    ("digits", "random"): [0.04 / 0.11, 0.05 / 0.11, 0.03 / 0.11],
    ("digits", "genetic"): [0.11 / 0.11, 0.09 / 0.11, 0.06 / 0.11],
    ("diabetes", "tpe"): [0.0, 4 / 9, 8 / 9],
    ("diabetes", "random"): [6 / 9, 7 / 9, 9 / 9],
    ("diabetes", "genetic"): [5 / 9, 1.0],
}


def test_ranks_over_problems_with_seeds_averaged(report: build.Report) -> None:
    a = report.analysis
    assert a.blocks == "problems" and (a.n_problems, a.n_complete) == (2, 2)
    means = {k: np.mean(v) for k, v in NR.items()}
    assert a.regret.loc[("digits", "mlp"), "random"] == pytest.approx(means[("digits", "random")])
    assert a.regret.loc[("diabetes", "mlp"), "genetic"] == pytest.approx(7 / 9)
    # digits: tpe .152 < random .364 < genetic .788; diabetes: tpe .444 < genetic .778 < random .815
    assert a.average_rank.to_dict() == pytest.approx({"tpe": 1.0, "random": 2.5, "genetic": 2.5})
    # Friedman from the ranks: 12N/(k(k+1)) (sum R^2 - k(k+1)^2/4) = 2 (13.5 - 12) = 3, df 2.
    assert a.friedman_statistic == pytest.approx(3.0)
    assert a.friedman_p == pytest.approx(math.exp(-3.0 / 2))
    # Iman-Davenport: (N-1) chi2 / (N(k-1) - chi2) = 3 / (4 - 3) = 3, F(2, 2) survival 1/(1+3).
    assert a.iman_davenport_statistic == pytest.approx(3.0)
    assert a.iman_davenport_p == pytest.approx(0.25) and not a.significant
    assert a.critical_difference == pytest.approx(2.343, abs=1e-3)  # q_0.05(k=3), N=2
    assert a.failed_runs["genetic"] == 1
    # Pairwise tests on 2 problems: the smallest two-sided p is 2/4, Holm x3 -> 1.
    assert a.pairwise_p.loc["tpe", "random"] == pytest.approx(1.0)
    s = a.summary()
    assert s.loc["random", "regret_mean"] == pytest.approx((means[("digits", "random")] + means[("diabetes", "random")]) / 2)
    assert s.loc["random", "diff_mean"] == pytest.approx(
        (means[("digits", "random")] - means[("digits", "tpe")] + means[("diabetes", "random")] - means[("diabetes", "tpe")]) / 2
    )
    assert (s.loc["random", "wins"], s.loc["random", "losses"], s.loc["random", "vs"]) == (0, 2, "tpe")


def test_ranks_with_seeds_as_blocks(example: Path) -> None:
    with pytest.warns(UserWarning):
        a = build.compute(example, build.Options(figures=False, blocks="seeds")).analysis
    # (dataset, space, seed) blocks; diabetes s2 is incomplete (genetic has no run):
    #   digits s0-s2: tpe, random, genetic -> 1, 2, 3;  diabetes s0: tpe, genetic, random;
    #   diabetes s1: tpe, random, genetic (failed).
    assert (a.n_problems, a.n_complete) == (6, 5)
    assert a.average_rank.to_dict() == pytest.approx({"tpe": 1.0, "random": 11 / 5, "genetic": 14 / 5})
    assert a.friedman_statistic == pytest.approx(8.4)  # 5 (1 + 4.84 + 7.84) - 60
    assert a.critical_difference == pytest.approx(2.343 * math.sqrt(0.4), abs=1e-3)
    assert a.pairwise_p.loc["tpe", "random"] == pytest.approx(3 * 2 / 32)
    text = tables.to_markdown(tables.rank_table(a))
    assert "seed) blocks" in text and "ranked as its own block" in text and "mean over seeds" not in text


def test_friedman_and_iman_davenport_reproducible_from_printed_ranks(report: build.Report) -> None:
    from scipy import stats as sst

    a = report.analysis
    ranks = np.array([float(r[1].text) for r in tables.rank_table(a).rows])  # as printed
    k, n = len(ranks), a.n_complete
    chi2 = 12 * n / (k * (k + 1)) * (np.sum(ranks**2) - k * (k + 1) ** 2 / 4)
    assert chi2 == pytest.approx(a.friedman_statistic, abs=1e-6)
    f = (n - 1) * chi2 / (n * (k - 1) - chi2)
    assert sst.f.sf(f, k - 1, (k - 1) * (n - 1)) == pytest.approx(a.iman_davenport_p)
    notes = " ".join(tables.rank_notes(a))
    assert "chi2_F = 3.000" in notes and "F_F = 3.000 (df 2, 2)" in notes


def test_normalised_regret_is_bounded_and_unit_free() -> None:
    runs = pd.DataFrame(
        {
            "dataset": ["a"] * 4 + ["b"] * 2,
            "search_space": "s",
            "metric": ["rmse"] * 4 + ["regret"] * 2,
            "score_test": [-10.0, -40.0, np.nan, -25.0, -1e-12, -100.0],
        }
    )
    nr = stats.normalised_regret(runs, "test").tolist()
    assert nr[:4] == pytest.approx([0.0, 1.0, 1.0, 0.5])  # a failed run counts as the worst
    # Regret on log10, floored at 1e-8: 1e-12 is as good as 1e-8; 100 is 10 decades worse.
    assert nr[4:] == pytest.approx([0.0, 1.0])
    same = pd.DataFrame({"dataset": "a", "search_space": "s", "metric": "rmse", "score_test": [-3.0, -3.0]})
    assert stats.normalised_regret(same, "test").tolist() == [0.0, 0.0]


def test_holm_matches_definition() -> None:
    # p sorted .01 .02 .04 -> 3*.01, max(.03, 2*.02), max(.04, 1*.04) -> .03 .04 .04
    assert stats.holm(np.array([0.04, 0.01, 0.02])) == pytest.approx([0.04, 0.03, 0.04])


def _trial_rows(scores: dict[str, list[float]], task: str = "classification", experiment: str = "e") -> pd.DataFrame:
    """One ok trial per (strategy, seed) with val = test = the score, as a trials file has it."""
    reg = task == "regression"
    return pd.DataFrame(
        [
            {
                "experiment": experiment,
                "run_id": f"{st}_s{seed}",
                "dataset": "d",
                "search_space": "s",
                "strategy": st,
                "seed": seed,
                "task": task,
                "trial_id": 0,
                "status": "ok",
                "budget": 1,
                "budget_spent": 1,
                "objective": v,
                "test_objective": v,
                "objective_name": "val_rmse" if reg else "val_accuracy",
                "objective_direction": "minimize" if reg else "maximize",
                "ask_seconds": 0.0,
                "tell_seconds": 0.0,
                "elapsed_seconds": 1.0,
                "trainer": "backprop",
            }
            for st, values in scores.items()
            for seed, v in enumerate(values)
        ]
    )


def _main_table(rows: pd.DataFrame) -> tables.Table:
    """What `build.compute` does from trial rows to the main table (no files)."""
    runs = aggregate.summarize_runs(aggregate.prepare(rows))
    sig = {m: stats.row_significance(runs, m) for m in ("val", "test")}
    return tables.main_table(aggregate.summarize_cells(runs), sig)


def _runs(scores: dict[str, list[float]], task: str = "classification") -> pd.DataFrame:
    rows = []
    for strategy, values in scores.items():
        for seed, v in enumerate(values):
            sign = -1.0 if task == "regression" else 1.0
            rows.append(
                {
                    "dataset": "d",
                    "search_space": "s",
                    "strategy": strategy,
                    "seed": seed,
                    "task": task,
                    "score_val": sign * v,
                    "score_test": sign * v,
                }
            )
    return pd.DataFrame(rows)


def _verdict(runs: pd.DataFrame, strategy: str, **kw) -> pd.Series:
    sig = stats.row_significance(runs, "test", **kw)
    return sig[sig["strategy"] == strategy].iloc[0]


def test_row_significance_is_two_sided_and_holm_corrected() -> None:
    # a beats b and c on every seed. Two-sided exact Wilcoxon p with n seeds: 2 * 2**-n each,
    # Holm over the 2 comparisons: 4 * 2**-n. 6 seeds: 4/64 > 0.05; 7 seeds: 4/128 < 0.05.
    def three(n: int) -> pd.DataFrame:
        return _runs({"a": [0.9] * n, "b": [0.8 + 0.01 * i for i in range(n)], "c": [0.5] * n})

    six = _verdict(three(6), "b")
    assert six["best"] == "a" and not six["worse"] and six["bold"] and six["p"] == pytest.approx(4 / 64)
    seven = _verdict(three(7), "b")
    assert seven["worse"] and not seven["bold"] and seven["p"] == pytest.approx(4 / 128)
    assert _verdict(three(7), "a")["bold"]  # the best is always bold
    # 2 strategies, 5 seeds all won: a one-sided test gives 1/32 < 0.05, two-sided 2/32.
    five = _verdict(_runs({"a": [0.9] * 5, "b": [0.8] * 5}), "b")
    assert not five["worse"] and five["p"] == pytest.approx(2 / 32)
    # regression: lower RMSE is better.
    reg = _runs({"a": [10.0] * 6, "b": [20.0] * 6}, task="regression")
    assert _verdict(reg, "b")["worse"] and _verdict(reg, "b")["best"] == "a"


def test_row_significance_holds_its_level_under_the_null() -> None:
    # 200 rows of 2 strategies x 6 seeds with no difference: "worse" at most ~alpha of the time
    # (the exact two-sided level is 2/64); a one-sided test in the mean's direction gives ~2 alpha.
    rng = np.random.default_rng(0)
    values = rng.normal(size=(200, 2, 6))
    runs = pd.DataFrame(
        [
            {"dataset": d, "search_space": "s", "strategy": st, "seed": seed, "score_test": values[d, i, seed]}
            for d in range(200)
            for i, st in enumerate("ab")
            for seed in range(6)
        ]
    )
    assert stats.row_significance(runs, "test")["worse"].sum() / 200 <= 0.05


def test_row_significance_best_by_the_shown_statistic() -> None:
    # a: mean .733 > b .70, but median .60 < .70: with --spread iqr the best is b.
    runs = _runs({"a": [1.0, 0.6, 0.6], "b": [0.7, 0.7, 0.7]})
    assert _verdict(runs, "a")["best"] == "a"
    assert _verdict(runs, "a", statistic="median")["best"] == "b"


def test_never_worse_when_it_wins_most_pairings() -> None:
    # a's mean is carried by one seed; b wins the other 15 pairings: two-sided p is small, but in
    # b's favour, so b is not "significantly worse" than a: both are bold.
    runs = _runs({"a": [10.0] + [0.5] * 15, "b": [0.6] * 16})
    b = _verdict(runs, "b")
    assert b["best"] == "a" and b["p"] < 0.05 and not b["worse"] and b["bold"]


def test_min_seeds() -> None:
    # (k - 1) * 2 * 2**-n < 0.05: 2 strategies 6 seeds (2/64), 3: 7 (4/128), 4: 7 (6/128), 5: 8.
    assert [stats.min_seeds(k) for k in (2, 3, 4, 5)] == [6, 7, 7, 8]


def test_bold_marks_every_strategy_not_significantly_worse(report: build.Report) -> None:
    md = tables.to_markdown(report.main)
    # 3 seeds: nobody can be shown worse (3 strategies need 7), so the whole row is bold.
    assert "**95.33 ± 1.53**" in md and "**93.00 ± 1.00**" in md and "**88.33 ± 2.52**" in md
    assert "tpe; none worse" in md
    assert "two-sided" in md and "at least 7 seeds" in md and "Holm-corrected over the 2 comparisons" in md
    t = tables.Table(["x", "y"], [[tables.Cell("1", bold=True), tables.Cell("2")]], align="lr")
    assert "**1**" in tables.to_markdown(t) and r"\textbf{1}" in tables.to_latex(t)
    two = tables.to_markdown(_main_table(_trial_rows({"a": [0.9] * 3, "b": [0.8] * 3})))
    assert "over the 1 comparison," in two  # not "the 1 comparisons"


def test_tiny_p_values_print_as_bounds() -> None:
    # 12 seeds all won: two-sided p = 2/4096 = 0.0005, which "p=0.000" would misreport.
    rows = _trial_rows({"a": [0.9] * 12, "b": [0.8] * 12})
    text = tables.to_markdown(_main_table(rows))
    assert "**90.00" in text and "**80.00" not in text
    assert "a; worse: b (p<0.001)" in text and "p=0.000" not in text
    assert tables.fmt_p(0.0123) == "p=0.012" and tables.fmt_p(2e-5, 4) == "p<0.0001"


def test_regression_direction_and_number_formats(report: build.Report) -> None:
    md = tables.to_markdown(report.main)
    assert "val RMSE ↓" in md and "test acc. (%) ↑" in md
    assert "93.00 ± 1.00" in md  # accuracy in %, 2 decimals
    assert "59.333 ± 1.528" in md  # RMSE: 3 decimals
    tex = tables.to_latex(report.results)
    assert r"RMSE $\downarrow$" in tex
    # Decimal-aligned (integer part | fraction); one column: the spread on its own line below.
    assert r"\textbf{93} & \textbf{.00}" in tex and r"\multicolumn{2}{c}{\scriptsize $\pm$\,1.00}" in tex
    wide = tables.to_latex(report.results, width="page")  # full width: the spread beside it
    assert r"\textbf{93} & \textbf{.00{\scriptsize\,$\pm$\,1.00}}" in wide


def test_iqr_option(example: Path) -> None:
    with pytest.warns(UserWarning):
        rep = build.compute(example, build.Options(figures=False, spread="iqr"))
    assert "94.00 [93.50, 95.00]" in tables.to_markdown(rep.main)


def test_markdown_table_is_well_formed(report: build.Report) -> None:
    lines = tables.to_markdown(report.main, notes=False).strip().splitlines()
    n = lines[0].count("|")
    assert all(line.count("|") == n for line in lines)
    assert set(lines[1]) <= set("|-:")
    assert len(lines) == 2 + 10 + 8  # digits: 10 quantities; diabetes: no RMSE target, no time-to-target


def _paper_tables(report: build.Report) -> dict[str, tables.Table]:
    return {"results": report.results, "cost": report.cost, "ranks": report.ranks, "pairwise": report.pairwise}


def test_latex_structure(report: build.Report) -> None:
    tex = tables.to_latex(report.results, label="tab:results", width="page")
    for token in (r"\begin{tabular}", r"\toprule", r"\midrule", r"\bottomrule", r"\end{table*}"):
        assert token in tex
    assert tex.index(r"\caption") < tex.index(r"\begin{tabular}")  # caption above
    assert r"\caption[Results]{Results.}" in tex  # short caption; method below
    body = tex.split(r"\midrule", 1)[1].split(r"\bottomrule")[0]
    rows = [r for r in body.split("\\\\") if r.strip()]
    assert len(rows) == 2 and all(r.replace(r"\&", "").count("&") == 1 + 2 * 3 for r in rows)
    assert r"\begin{table*}" in tables.to_latex(report.results, width="page")
    for t in _paper_tables(report).values():
        tex = tables.to_latex(t)
        assert "_" not in tex.replace(r"\_", "")
        # Outside math, text fonts print < > | as other glyphs; notes use "p < 0.05".
        text = re.sub(r"(?<!\\)\$.*?(?<!\\)\$", "", tex)
        text = text.replace(r"\ifdim\wd0>", "")  # the width test is TeX, not text
        assert not set("<>|") & set(text), t.caption
    assert r"p \textless{} 0.05" in tables.to_latex(report.pairwise)
    assert "seeds" not in "".join(c.text for r in report.results.rows for c in r)  # no bookkeeping


LATEX_DOC = (
    "\\documentclass[{cls}]{{article}}\n\\usepackage{{booktabs}}\n\\usepackage{{graphicx}}\n"
    "\\begin{{document}}\n{body}\n\\end{{document}}\n"
)


def compile_latex(folder: Path, body: str, option: str = "twocolumn") -> str:
    """pdflatex a document around `body`; returns the log (fails the test on a LaTeX error)."""
    (folder / "doc.tex").write_text(LATEX_DOC.format(cls=option, body=body))
    proc = subprocess.run(
        ["pdflatex", "-interaction=nonstopmode", "-halt-on-error", "doc.tex"],
        cwd=folder,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stdout[-3000:]
    return (folder / "doc.log").read_text(errors="replace")


@pytest.mark.skipif(shutil.which("pdflatex") is None, reason="no LaTeX engine installed (CI installs one)")
@pytest.mark.parametrize("width, option", [("column", "twocolumn"), ("page", "twocolumn"), ("column", "onecolumn")])
def test_latex_compiles_and_fits(report: build.Report, tmp_path: Path, width: str, option: str) -> None:
    names = []
    for name, t in _paper_tables(report).items():
        (tmp_path / f"{name}.tex").write_text(tables.to_latex(t, label=f"tab:{name}", width=width))
        names.append(name)
    log = compile_latex(tmp_path, "\n".join(f"\\input{{{n}.tex}}" for n in names), option)
    assert "Overfull \\hbox" not in log
    # The results fit a column as they are (3 strategies, spreads stacked); this example counts
    # failed, pruned and unusable runs, so its cost and rank tables are a little wider and may be
    # scaled down in one column. Across the page nothing is scaled.
    scaled = set(re.findall(r"harness-report: table tab:(\w+) scaled", log))
    assert scaled <= ({"ranks", "cost"} if option == "twocolumn" and width == "column" else set()), scaled
    assert (tmp_path / "doc.pdf").stat().st_size > 1000


def test_classification_report_from_predictions(tmp_path: Path) -> None:
    from harness.report import figures

    npz = tmp_path / "best_predictions.npz"
    np.savez(
        npz,
        y_true=np.array([0, 0, 1, 1, 2]),
        y_pred=np.array([0, 1, 1, 1, 2]),
        class_names=np.array(["zero", "one", "two"]),
        trial_id=3,
    )
    table, text, paths = figures.classification_report(npz, tmp_path / "cr", "t")
    t = table.set_index("class")
    # class "zero": 1 predicted, 1 right -> precision 1, recall 1/2; "one": 2 of 3 right.
    assert t.loc["zero", "precision"] == 1.0 and t.loc["zero", "recall"] == 0.5
    assert t.loc["one", "precision"] == pytest.approx(2 / 3) and t.loc["one", "recall"] == 1.0
    assert t.loc["two", "support"] == 1
    assert "zero" in text and {p.suffix for p in paths} == {".png", ".pdf"}


def test_importances_from_our_trials(report: build.Report) -> None:
    from harness.report import figures

    trials = report.trials[report.trials["run_id"] == "random_mlp_digits_s0"].copy()
    imp = figures.importances(trials.assign(params=_params(trials)))
    assert set(imp.index) == {"lr", "units", "optimizer"}
    assert imp.sum() == pytest.approx(1.0)


def _params(trials: pd.DataFrame) -> list[str]:
    import json

    rng = np.random.default_rng(1)
    return [
        json.dumps(
            {"lr": float(rng.uniform(1e-4, 1e-2)), "units": int(rng.integers(1, 9)) * 32, "optimizer": ["adam", "sgd"][i % 2]}
        )
        for i in range(len(trials))
    ]


# -- the command line -----------------------------------------------------------------------------
def _cli(*args: str | os.PathLike[str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", "import sys; from harness.report import main; sys.exit(main(sys.argv[1:]))", *map(str, args)],
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_cli_end_to_end_writes_every_format(example: Path, tmp_path: Path) -> None:
    art = example / "random_mlp_digits_s0" / "_artifacts"
    art.mkdir(exist_ok=True)
    np.savez(
        art / "best_predictions.npz",
        y_true=np.array([0, 1, 1]),
        y_pred=np.array([0, 1, 0]),
        class_names=np.array(["a", "b"]),
        trial_id=1,
    )
    out = tmp_path / "report"
    proc = _cli(example, "--out", out, "--runs", "random_mlp_digits_s0")
    assert proc.returncode == 0, proc.stderr
    assert "| Dataset" in proc.stdout and "test acc. (%) ↑" in proc.stdout
    assert "Traceback" not in proc.stderr
    assert "corrupt_run" in proc.stderr and "other.parquet" in proc.stderr
    for name in ("results", "cost", "ranks", "pairwise"):
        for ext in ("md", "tex"):
            assert (out / f"{name}.{ext}").exists(), f"{name}.{ext}"
    assert (out / "main.md").exists() and not (out / "main.tex").exists()  # LaTeX: results + cost
    for name in ("main", "runs", "ranks", "pairwise", "problems"):
        for ext in ("csv", "parquet"):
            assert (out / f"{name}.{ext}").exists(), f"{name}.{ext}"
    main = pd.read_parquet(out / "main.parquet")
    assert len(main) == 6 and {
        "val_mean",
        "test_mean",
        "failed",
        "test_bold",
        "test_significantly_worse",
        "test_p_vs_best",
    } <= set(main.columns)
    assert pd.read_csv(out / "runs.csv").shape[0] == 17
    figs = out / "figures"
    for stem in ("anytime_time", "anytime_epochs", "budget_trials", "budget_epochs", "budget_seconds"):
        assert (figs / f"{stem}.png").exists() and (figs / f"{stem}.pdf").exists()
    # 2 problems: a CD diagram would mean nothing, and report.md says so.
    assert not (figs / "cd_diagram.png").exists()
    assert "cd_diagram: not drawn (2 complete problems (needs 5 or more))" in (out / "report.md").read_text()
    assert not (figs / "ecdf.png").exists()  # no problem with a known optimum
    run_dir = figs / "runs" / "exp" / "random_mlp_digits_s0"  # runs/<experiment>/<run_id>
    for stem in ("history", "importances", "classification_report"):
        assert (run_dir / f"{stem}.png").exists() and (run_dir / f"{stem}.pdf").exists()
    assert not (figs / "runs" / "exp" / "tpe_mlp_digits_s0").exists()  # --runs pattern
    assert "## Main table" in (out / "report.md").read_text()


def test_cli_default_out_is_not_read_back(example: Path) -> None:
    first = _cli(example, "--no-figures", "--format", "parquet,md", "--quiet")
    assert first.returncode == 0, first.stderr
    assert (example / "_report" / "main.parquet").exists()
    again = _cli(example, "--no-figures", "--format", "parquet", "--quiet")
    assert again.returncode == 0 and "_report" not in again.stderr
    # The README's way to read a results folder still works after a report ("_" folders are
    # skipped by pyarrow's dataset discovery), and read_results is quiet about the report.
    from harness.results import read_results

    clean = example.parent / "clean"
    shutil.copytree(example, clean, ignore=shutil.ignore_patterns("corrupt_run", "other.parquet"))
    frame = pd.read_parquet(clean)
    assert len(frame) == len(read_results(clean)) and "run_id" in frame.columns
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        read_results(clean)


@pytest.mark.parametrize(
    "args, phrase",
    [
        (["/nonexistent/results"], "does not exist"),
        (["{tmp}", "--format", "markdown,word"], "unknown format 'word'"),
        (["{tmp}", "--target", "abc"], "target must be a number"),
        (["{tmp}"], "no harness trial files"),
    ],
)
def test_cli_bad_input(tmp_path: Path, args: list[str], phrase: str) -> None:
    proc = _cli(*[a.format(tmp=tmp_path) for a in args])
    assert proc.returncode == 2
    assert phrase in proc.stderr and "Traceback" not in proc.stderr


def test_no_tensorflow_and_lazy_plotting(example: Path, tmp_path: Path) -> None:
    code = (
        "import sys; from harness.report import main;"
        f"assert main([{str(example)!r}, '--out', {str(tmp_path)!r}, '--no-figures', '--quiet']) == 0;"
        "bad = [m for m in ('tensorflow', 'keras', 'matplotlib', 'optuna') if m in sys.modules];"
        "assert not bad, bad"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr


def test_experiments_sharing_run_ids_are_kept_apart(tmp_path: Path) -> None:
    # Run ids do not include the experiment: two experiments under one root have the same ids.
    for exp, y_pred in (("one", [0, 1, 1]), ("two", [1, 0, 0])):
        write_example(tmp_path / exp, experiment=exp)
        art = tmp_path / exp / "random_mlp_digits_s0" / "_artifacts"
        art.mkdir()
        np.savez(
            art / "best_predictions.npz",
            y_true=np.array([0, 1, 1]),
            y_pred=np.array(y_pred),
            class_names=np.array(["a", "b"]),
            trial_id=1,
        )
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        rep = build.compute(tmp_path, build.Options(formats=("markdown",), runs="random_mlp_digits_s0"))
        build.write(rep, tmp_path / "report")
    assert not [w for w in caught if "predictions" in str(w.message)], [str(w.message) for w in caught]
    assert len(rep.runs) == 2 * 17
    assert rep.sources[("one", "random_mlp_digits_s0")].parent.parent.name == "one"
    assert rep.sources[("two", "random_mlp_digits_s0")].parent.parent.name == "two"
    runs = tmp_path / "report" / "figures" / "runs"
    assert {p.parent.name for p in runs.glob("*/random_mlp_digits_s0")} == {"one", "two"}
    one, two = rep.class_reports["one/random_mlp_digits_s0"], rep.class_reports["two/random_mlp_digits_s0"]
    assert one != two  # each run's own predictions (1.00 vs 0.00)


def test_other_tasks_are_skipped_with_one_warning() -> None:
    # The GA-trained GAN writes task "generation": no accuracy, not a classification run.
    gan = _trial_rows({"ga_gan": [0.0, 0.0]}).assign(task="generation", objective=-3.0)
    rows = pd.concat([_trial_rows({"a": [0.9, 0.8]}), gan], ignore_index=True)
    with pytest.warns(UserWarning) as record:
        prepared = aggregate.prepare(rows)
    assert [str(w.message) for w in record] == [
        "skipping 2 trial rows of 2 runs with task 'generation': the report compares runs of "
        "problems with an objective (classification, regression, or none)"
    ]
    assert set(prepared["strategy"]) == {"a"}


def test_run_without_trials_is_counted(tmp_path: Path) -> None:
    # A run that crashed before its first trial has a _run.json but no trials.parquet.
    from harness.results import write_json_atomic

    root = write_example(tmp_path / "exp")
    (root / "tpe_mlp_diabetes_s3").mkdir()
    write_json_atomic(
        root / "tpe_mlp_diabetes_s3" / "_run.json",
        {
            "run_id": "tpe_mlp_diabetes_s3",
            "experiment": "exp",
            "status": "failed",
            "strategy": "tpe",
            "search_space": "mlp",
            "dataset": "diabetes",
            "seed": 3,
        },
    )
    # An interrupted run with results: unfinished, and said so above the tables.
    write_json_atomic(
        root / "tpe_mlp_diabetes_s0" / "_run.json",
        {
            "run_id": "tpe_mlp_diabetes_s0",
            "experiment": "exp",
            "status": "interrupted",
            "strategy": "tpe",
            "search_space": "mlp",
            "dataset": "diabetes",
            "seed": 0,
        },
    )
    with pytest.warns(UserWarning):
        rep = build.compute(root, build.Options(figures=False))
    c = cell(rep, "diabetes", "tpe")
    # The failed run without trials is counted once (without ok trial), not also as unfinished.
    assert (c["n_runs"], c["n_scored"], c["no_usable_trial"], c["unfinished"]) == (4, 3, 1, 1)
    assert "3/4 (1 without ok trial, 1 unfinished)" in tables.to_markdown(rep.main)
    assert rep.analysis.failed_runs["tpe"] == 1  # the worst run on that problem
    assert any("did not finish (failed, interrupted)" in n or "did not finish (interrupted" in n for n in build._data_notes(rep))
    cost = {r[0].text: [c.text for c in r] for r in rep.cost.rows}
    assert "Unfin." in rep.cost.header and cost["tpe"][rep.cost.header.index("Unfin.")] == "1"


def test_runs_of_another_trainer_are_compared_as_their_own_strategy() -> None:
    from harness.report.aggregate import NEEDED, prepare

    rows = pd.DataFrame(
        [
            {
                "experiment": "e",
                "run_id": f"r{i}",
                "problem": "keras",
                "instance": "mlp_digits",
                "dataset": "digits",
                "search_space": "mlp",
                "strategy": "random",
                "seed": 0,
                "task": "classification",
                "trial_id": 0,
                "status": "ok",
                "budget": 1,
                "budget_spent": 1,
                "objective_name": "val_accuracy",
                "objective_direction": "maximize",
                "objective": 0.9,
                "test_objective": 0.9,
                "regret": None,
                "ask_seconds": 0.0,
                "tell_seconds": 0.0,
                "elapsed_seconds": 1.0,
                "trainer": trainer,
                "clock": "wall",
            }
            for i, trainer in enumerate(["backprop", "neuroevolution", None])
        ]
    )
    assert set(NEEDED) <= set(rows.columns)
    with pytest.warns(
        UserWarning,
        match=r"1 \(strategy, space, dataset, seed\) combinations hold more "
        r"than one run.*random, mlp, digits, 0.*pooled",
    ):
        prepared = prepare(rows)  # r0 and r2 are both random (backprop) on seed 0
    assert list(prepared["strategy"]) == ["random", "random+neuroevolution", "random"]


def test_problems_with_a_known_optimum_are_reported_in_regret_on_both_columns() -> None:
    rows = _trial_rows({"a": [5.0, 6.0], "b": [3.0, 2.0]}).assign(
        objective_name="f",
        objective_direction="minimize",
        problem="bbob",
        dataset=None,
        instance="bbob-f01-d2-i1",
        search_space="bbob_d2",
        task=None,
    )
    rows["regret"] = rows["objective"] - 1.0
    rows["test_objective"] = 1000.0  # in other units: must not reach the table
    prepared = aggregate.prepare(rows)
    assert set(prepared["metric"]) == {"regret"} and prepared["lower"].all()
    assert (prepared["val"] == prepared["test"]).all() and set(prepared["dataset"]) == {"bbob-f01-d2-i1"}
    text = tables.to_markdown(_main_table(rows))
    assert "val regret ↓" in text and "1000" not in text


def test_trial_ids_read_as_integers(example: Path) -> None:
    # pandas turns an int64 column with nulls into float64 (parent 3.0, NaN): read_results keeps ints.
    from harness.results import read_results

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the example's corrupt and foreign files
        frame = read_results(example)
    assert str(frame["parent_trial_id"].dtype) == "Int64" and str(frame["trial_id"].dtype) == "Int64"


def test_few_problems_in_perfect_agreement_are_not_significant() -> None:
    # 2 problems ranking 3 strategies alike happen with probability 1/3! under the null: the
    # F statistic is infinite, but the exact p-value is 1/6 and nothing is significant.
    chi2, _, f, p = stats.friedman_from_ranks(np.array([1.0, 2.0, 3.0]), 2)
    assert (chi2, f, p) == (4.0, math.inf, pytest.approx(1 / 6))
    table = pd.DataFrame(
        {"a": [0.0, 0.0], "b": [0.5, 0.5], "c": [1.0, 1.0]}, index=pd.MultiIndex.from_tuples([("d1", "s"), ("d2", "s")])
    )
    a = stats.rank_analysis(table, metric="test")
    assert a.omnibus_name == "Friedman permutation test"
    assert a.permutation_p == pytest.approx(1 / 6, abs=0.01) and not a.significant
    assert "needs 5 or more" in a.cd_diagram_meaningful


def test_not_applicable_and_failed_runs_together(tmp_path: Path) -> None:
    # A strategy recorded N/A on one problem is left out of the ranks; with failed runs in the
    # rank table as well, its row once crashed the Markdown rendering (Cell inside a Cell).
    from harness.results import write_json_atomic

    root = write_example(tmp_path / "exp")
    (root / "smac_mlp_digits_s0").mkdir()
    write_json_atomic(
        root / "smac_mlp_digits_s0" / "_run.json",
        {
            "run_id": "smac_mlp_digits_s0",
            "experiment": "exp",
            "status": "not_applicable",
            "stop_reason": "no fidelity",
            "strategy": "smac",
            "search_space": "mlp",
            "dataset": "digits",
            "seed": 0,
        },
    )
    with pytest.warns(UserWarning):
        rep = build.compute(root, build.Options(figures=False))
    text = tables.to_markdown(rep.ranks)
    assert rep.analysis.excluded == ["smac"] and "| smac" in text and "N/A" in text
    assert "Failed" in rep.ranks.header


def test_a_missing_test_value_is_not_replaced_by_validation() -> None:
    # The problem records test RMSE; one run's selected trial has none (NaN) and another's
    # diverged (inf): neither may borrow its validation RMSE as its test value.
    rows = _trial_rows({"a": [50.0, 50.0, 50.0], "b": [40.0, 40.0, 40.0]}, task="regression")
    rows.loc[(rows["strategy"] == "b") & (rows["seed"] == 0), "test_objective"] = np.nan
    rows.loc[(rows["strategy"] == "b") & (rows["seed"] == 1), "test_objective"] = np.inf
    runs = aggregate.summarize_runs(aggregate.prepare(rows)).set_index(["strategy", "seed"])
    assert math.isnan(runs.loc[("b", 0), "test"]) and runs.loc[("b", 1), "test"] == math.inf
    assert runs.loc[("b", 2), "test"] == 40.0
    # A problem without any test metric still reports its objective as the test column.
    no_test = _trial_rows({"a": [0.9, 0.8]}).assign(test_objective=np.nan)
    assert aggregate.summarize_runs(aggregate.prepare(no_test))["test"].tolist() == [0.9, 0.8]


def test_results_cells_say_when_seeds_have_no_result(report: build.Report) -> None:
    # diabetes/genetic: 1 of 3 seeds has a result (one run failed, one is missing).
    assert "57.000 (1/3)" in tables.to_markdown(report.results)


def test_cli_unwritable_out_is_one_error_line(example: Path, tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    proc = _cli(example, "--no-figures", "--out", blocker / "report")
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert "error: cannot write the report to" in proc.stderr and "--out DIR" in proc.stderr


def test_report_options_change_what_they_say(example: Path, tmp_path: Path) -> None:
    # --rank-on val: ranks the best validation metric. diabetes val RMSE: tpe 50 53 52, random
    # 55 57 54, genetic 58 (and a failed run) -> best 50, worst 58.
    with pytest.warns(UserWarning):
        val = build.compute(example, build.Options(figures=False, rank_on="val"))
    assert val.analysis.metric == "val" and "best validation metric" in " ".join(tables.rank_notes(val.analysis))
    assert val.analysis.regret.loc[("diabetes", "mlp"), "tpe"] == pytest.approx(np.mean([0, 3 / 8, 2 / 8]))
    # --alpha: every note states the level used.
    with pytest.warns(UserWarning):
        loose = build.compute(example, build.Options(figures=False, alpha=0.2))
    assert "p < 0.2" in tables.to_markdown(loose.main) and "alpha=0.2" in " ".join(tables.rank_notes(loose.analysis))
    # --target-rmse: time-to-target now applies to the regression rows (tpe s0 reaches 52 at once).
    with pytest.warns(UserWarning):
        rmse = build.compute(example, build.Options(figures=False, target_rmse=55.0))
    c = cell(rmse, "diabetes", "tpe")
    assert c["target_applies"] and c["ttt_reached"] == 3 and "RMSE ≤ 55" in tables.to_markdown(rmse.main)


def test_cli_figure_options(example: Path, tmp_path: Path) -> None:
    out = tmp_path / "r"
    proc = _cli(example, "--out", out, "--no-run-figures", "--format", "md", "--quiet")
    assert proc.returncode == 0, proc.stderr
    assert (out / "figures" / "budget_trials.png").exists() and not (out / "figures" / "runs").exists()
    out2 = tmp_path / "r2"
    proc = _cli(example, "--out", out2, "--importance", "mdi", "--runs", "tpe_mlp_digits_s0", "--format", "md", "--quiet")
    assert proc.returncode == 0, proc.stderr
    assert (out2 / "figures" / "runs" / "exp" / "tpe_mlp_digits_s0" / "importances.png").exists()
    assert not (out2 / "figures" / "runs" / "exp" / "random_mlp_digits_s0").exists()  # --runs
