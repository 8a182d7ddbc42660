"""harness-report's tables must take under 2 s for 100,000 trial rows (figures excluded).

Skipped by default (`--benchmark-skip` in addopts); run with
`pytest tests/benchmarks/test_report_benchmark.py --benchmark-only`. The measured function is
what `harness-report --no-figures` does after its imports: read the files, aggregate, run the
statistics, render Markdown and LaTeX and build the CSV/Parquet frames.
"""
from __future__ import annotations

from pathlib import Path

import pytest

from harness.report import build, tables
from harness.report.testing import write_random

ROWS = 100_000
LIMIT_SECONDS = 2.0


@pytest.fixture(scope="module")
def big_results(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("bench") / "sweep"
    # 4 datasets (one regression) x 2 spaces x 5 strategies x 10 seeds = 400 runs of 250 trials.
    assert write_random(root, n_rows=ROWS) == ROWS
    return root


def make_tables(root: Path) -> int:
    report = build.compute(root, build.Options(figures=False))
    text = [tables.to_markdown(t) + tables.to_latex(t) for t in (report.main, report.ranks, report.pairwise)]
    frames = [report.main_frame(), report.rank_frame(), report.problems_frame()]
    assert len(report.trials) == ROWS and all(len(f) for f in frames) and text
    return len(report.trials)


@pytest.mark.benchmark(group="report-100k")
def test_tables_for_100k_rows(benchmark, big_results: Path) -> None:
    benchmark.pedantic(make_tables, args=(big_results,), rounds=5, iterations=1, warmup_rounds=1)
    assert benchmark.stats.stats.mean < LIMIT_SECONDS


@pytest.mark.benchmark(group="report-100k")
def test_baseline_pandas_read(benchmark, big_results: Path) -> None:
    """The library used directly: pandas reading the same columns of the same folder, nothing else.

    The ratio of the two means is the report's cost over bare reading."""
    import pandas as pd

    from harness.report.aggregate import NEEDED

    frame = benchmark.pedantic(pd.read_parquet, args=(big_results,), kwargs={"columns": NEEDED},
                               rounds=5, iterations=1, warmup_rounds=1)
    assert len(frame) == ROWS
