"""The report on a real experiment, as a user makes it: a 4-strategy x 3-problem x 10-seed BBOB
sweep through `harness -m`, then one `harness-report` command, then every output a paper needs.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

STRATEGIES = "random,tpe,cmaes,genetic"
SEEDS = ",".join(map(str, range(10)))


@pytest.fixture(scope="module")
def experiment(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("bbob")
    harness = Path(sys.executable).with_name("harness")
    proc = subprocess.run(
        [
            str(harness),
            "-m",
            "problem=bbob",
            "problem.function=1,7,15",
            "problem.dimension=3",
            f"strategy={STRATEGIES}",
            f"seed={SEEDS}",
            "budget.trials=15",
            "experiment=bbob4",
            "progress=false",
        ],
        cwd=root,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    return root / "results" / "bbob4"


@pytest.fixture(scope="module")
def report(experiment: Path) -> Path:
    proc = subprocess.run(
        [str(Path(sys.executable).with_name("harness-report")), str(experiment), "--no-run-figures", "--iohprofiler", "--quiet"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "Traceback" not in proc.stderr
    return experiment / "_report"


def test_one_command_writes_every_table_and_figure(report: Path, experiment: Path) -> None:
    for name in ("results", "cost", "ranks", "pairwise", "speedup"):
        assert (report / f"{name}.md").exists() and (report / f"{name}.tex").exists(), name
    for name in ("main", "runs", "ranks", "problems", "budget_trials", "budget_seconds", "speedup", "ecdf"):
        assert (report / f"{name}.csv").exists(), name
    figures = report / "figures"
    for stem in ("budget_trials", "budget_seconds", "anytime_trials", "ecdf", "ecdf_problems"):
        assert (figures / f"{stem}.png").exists() and (figures / f"{stem}.pdf").exists(), stem
    # CD diagrams at the end and at 10 % / 50 % of the budget: drawn, or report.md says why not.
    text = (report / "report.md").read_text()
    for stem in ("cd_diagram", "cd_diagram_10pct", "cd_diagram_50pct"):
        assert (figures / f"{stem}.png").exists() or f"{stem}: not drawn" in text
    ranks = pd.read_csv(report / "ranks.csv")
    assert set(ranks["strategy"]) == set(STRATEGIES.split(","))
    assert (ranks["problems"] == 3).all() and (ranks["blocks"] == "problems").all()
    assert ranks["iman_davenport_p"].notna().all()
    budget = pd.read_csv(report / "budget_trials.csv")
    assert budget["budget"].max() == 15 and budget["nr_mean"].between(0, 1).all()
    # 120 runs x 15 trials, all exported for IOHanalyzer, one folder per strategy.
    exported = sorted(p.name for p in (report / "iohprofiler").iterdir())
    assert exported == sorted(STRATEGIES.split(","))
    dats = list((report / "iohprofiler").rglob("*.dat"))
    assert len(dats) == 4 * 3  # per strategy, one data file per function (dimension 3)


def test_results_folder_still_reads_as_trials(report: Path, experiment: Path) -> None:
    # The README's snippet, after a report.
    frame = pd.read_parquet(experiment)
    assert len(frame) == 4 * 3 * 10 * 15 and "run_id" in frame.columns


@pytest.mark.skipif(shutil.which("pdflatex") is None, reason="no LaTeX engine installed (CI installs one)")
@pytest.mark.parametrize("documentclass", ["twocolumn", "onecolumn"])
def test_latex_tables_compile_and_fit_a_column(report: Path, tmp_path: Path, documentclass: str) -> None:
    names = ("results", "cost", "ranks", "pairwise", "speedup")
    for name in names:
        shutil.copy(report / f"{name}.tex", tmp_path / f"{name}.tex")
    body = "\n".join(f"\\input{{{n}.tex}}" for n in names)
    (tmp_path / "doc.tex").write_text(
        f"\\documentclass[{documentclass}]{{article}}\n\\usepackage{{booktabs}}\n\\usepackage{{graphicx}}\n"
        f"\\begin{{document}}\n{body}\n\\end{{document}}\n"
    )
    proc = subprocess.run(
        ["pdflatex", "-interaction=nonstopmode", "-halt-on-error", "doc.tex"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stdout[-3000:]
    log = (tmp_path / "doc.log").read_text(errors="replace")
    assert "Overfull \\hbox" not in log
    # 4 strategies on BBOB: the results and cost tables fit a column unscaled.
    scaled = set(re.findall(r"harness-report: table tab:(\w+) scaled", log))
    assert not scaled & {"results", "cost", "pairwise", "speedup"}, scaled
