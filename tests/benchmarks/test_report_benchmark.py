"""harness-report on 100,000 trial rows: the goal is the rows handled in under 2 s (figures excluded).

Skipped by default (`--benchmark-skip` in addopts); run with
`pytest tests/benchmarks/test_report_benchmark.py --benchmark-only -s`. Two measurements, each
with a `pandas.read_parquet` baseline of the same columns in the same run (`-s` prints ratios):

- end to end: `harness-report RESULTS --no-figures` as a user runs it, in a fresh interpreter
  (start-up, imports, reading, statistics, printing, and writing Markdown, LaTeX, CSV and
  Parquet), against `python -c "import pandas; pandas.read_parquet(...)"`, also fresh;
- in process: what the command does after its imports, without writing files (read, aggregate,
  statistics, render Markdown and LaTeX, build the frames), against an in-process read.
"""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from harness.report import build, tables
from harness.report.aggregate import NEEDED
from harness.report.testing import write_random

# HARNESS_BENCH_ROWS=1000000 measures the tabular-benchmark scale (goal there: < 10 s of table work).
ROWS = int(os.environ.get("HARNESS_BENCH_ROWS", 100_000))
LIMIT_SECONDS = 2.0 if ROWS <= 100_000 else 10.0
MEANS: dict[str, float] = {}             # benchmark name -> mean seconds, for the ratios


@pytest.fixture(scope="module")
def big_results(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("bench") / "sweep"
    # 4 datasets (one regression) x 2 spaces x 5 strategies x 10 seeds = 400 runs of 250 trials.
    assert write_random(root, n_rows=ROWS) == ROWS
    return root


def _ratio(name: str, baseline: str) -> None:
    if name in MEANS and baseline in MEANS:
        print(f"\n{name}: {MEANS[name]:.3f} s for {ROWS:,} rows, {MEANS[name] / MEANS[baseline]:.2f}x "
              f"{baseline} ({MEANS[baseline]:.3f} s)")


def _command(root: Path, out: Path) -> None:
    script = Path(sys.executable).with_name("harness-report")
    cmd = [str(script)] if script.exists() else [
        sys.executable, "-c", "import sys; from harness.report import main; sys.exit(main())"]
    proc = subprocess.run([*cmd, str(root), "--out", str(out), "--no-figures"],
                          capture_output=True, text=True)
    assert proc.returncode == 0 and "| Dataset" in proc.stdout, proc.stderr


def _bare_read(root: Path) -> None:
    code = f"import pandas; assert len(pandas.read_parquet({str(root)!r}, columns={NEEDED!r})) == {ROWS}"
    subprocess.run([sys.executable, "-c", code], check=True)


@pytest.mark.benchmark(group="report-100k-command")
def test_command_end_to_end_100k_rows(benchmark, big_results: Path, tmp_path: Path) -> None:
    out = tmp_path / "report"
    benchmark.pedantic(_command, args=(big_results, out), rounds=5, iterations=1, warmup_rounds=1)
    assert (out / "results.tex").exists() and (out / "problems.parquet").exists()
    # No time limit here: Python start-up and the pandas / pyarrow / scipy.stats imports (about
    # 2 s on 2 cores, half of it SciPy's) do not depend on the rows; the ratio says what does.
    MEANS["command"] = benchmark.stats.stats.mean


@pytest.mark.benchmark(group="report-100k-command")
def test_baseline_pandas_read_fresh_interpreter(benchmark, big_results: Path) -> None:
    """`pandas.read_parquet` of the same columns in a fresh interpreter: the command's floor."""
    benchmark.pedantic(_bare_read, args=(big_results,), rounds=5, iterations=1, warmup_rounds=1)
    MEANS["fresh read"] = benchmark.stats.stats.mean
    _ratio("command", "fresh read")


def make_tables(root: Path) -> int:
    report = build.compute(root, build.Options(figures=False))
    text = [tables.to_markdown(t) + tables.to_latex(t) for t in (report.main, report.ranks, report.pairwise)]
    frames = [report.main_frame(), report.rank_frame(), report.problems_frame()]
    assert len(report.trials) == ROWS and all(len(f) for f in frames) and text
    return len(report.trials)


@pytest.mark.benchmark(group="report-100k")
def test_tables_for_100k_rows(benchmark, big_results: Path) -> None:
    benchmark.pedantic(make_tables, args=(big_results,), rounds=5, iterations=1, warmup_rounds=1)
    MEANS["tables"] = benchmark.stats.stats.mean
    assert benchmark.stats.stats.mean < LIMIT_SECONDS


@pytest.mark.benchmark(group="report-100k")
def test_baseline_pandas_read(benchmark, big_results: Path) -> None:
    """The library used directly: pandas reading the same columns of the same folder, nothing else.

    The ratio of the two means is the report's cost over bare reading."""
    import pandas as pd

    frame = benchmark.pedantic(pd.read_parquet, args=(big_results,), kwargs={"columns": NEEDED},
                               rounds=5, iterations=1, warmup_rounds=1)
    assert len(frame) == ROWS
    MEANS["read"] = benchmark.stats.stats.mean
    _ratio("tables", "read")
