"""`harness-report`: comparison tables and figures for papers, from a results folder.

    harness-report results/<experiment> [--out DIR] [--format markdown,latex,csv,parquet]

Modules, one concern each: `load` (reading files), `aggregate` (runs and cells), `stats` (ranks,
tests, regret), `tables` (formatting), `figures` (matplotlib/optuna, imported only for figures),
`build` (putting it together). This module holds only the command line, so that `--help` and
argument errors import nothing heavy (no pandas, and never TensorFlow).
"""

from __future__ import annotations

import argparse
import sys
import warnings
from collections.abc import Sequence
from pathlib import Path

FORMATS = ("markdown", "latex", "csv", "parquet")
DEFAULT_OUT = "_report"  # inside the results folder; "_" keeps it out of pyarrow's datasets

__all__ = ["main", "build_parser"]


def _formats(text: str) -> tuple[str, ...]:
    aliases = {"md": "markdown", "tex": "latex"}
    chosen = tuple(dict.fromkeys(aliases.get(f.strip().lower(), f.strip().lower()) for f in text.split(",") if f.strip()))
    bad = [f for f in chosen if f not in FORMATS]
    if bad or not chosen:
        raise argparse.ArgumentTypeError(
            f"unknown format {', '.join(map(repr, bad)) or repr(text)}; accepted: {','.join(FORMATS)} "
            "(comma-separated, e.g. --format markdown,latex)"
        )
    return chosen


def _target(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"target must be a number, but got {text!r}") from None
    if 1 < value <= 100:  # given in percent
        value /= 100
    if not 0 < value <= 1:
        raise argparse.ArgumentTypeError(
            f"target must be a validation accuracy in (0, 1] or in percent (0, 100], but got {text!r}"
        )
    return value


def _positive(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a number, but got {text!r}") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be > 0, but got {text!r}")
    return value


def _alpha(text: str) -> float:
    value = _positive(text)
    if not value < 1:
        raise argparse.ArgumentTypeError(f"alpha must be in (0, 1), but got {text!r}")
    return value


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="harness-report",
        description="Comparison tables (Markdown, LaTeX, CSV, Parquet), statistics and figures from "
        "a harness results folder (one run or a whole sweep). Prints the main table.",
        epilog="Unreadable or foreign Parquet files are skipped and named in a warning. "
        "See docs/report.md for what each column means and the statistics used.",
    )
    p.add_argument("results_dir", type=Path, metavar="RESULTS_DIR", help="results folder, e.g. results/<experiment>")
    p.add_argument(
        "--out",
        type=Path,
        default=None,
        metavar="DIR",
        help=f"output folder (default: RESULTS_DIR/{DEFAULT_OUT}; the leading _ makes pandas "
        "and pyarrow skip it when they read the results folder)",
    )
    p.add_argument(
        "--format",
        dest="formats",
        type=_formats,
        default=FORMATS,
        metavar="LIST",
        help=f"comma-separated output formats (default: {','.join(FORMATS)})",
    )
    p.add_argument(
        "--target",
        type=_target,
        default=0.95,
        metavar="ACC",
        help="validation accuracy for time-to-target, fraction or percent (default: 0.95)",
    )
    p.add_argument(
        "--target-rmse",
        type=_positive,
        default=None,
        metavar="RMSE",
        help="validation RMSE for time-to-target on regression datasets (default: none)",
    )
    p.add_argument(
        "--spread", choices=("std", "iqr"), default="std", help="cells show mean ± std (default) or median [IQR] over seeds"
    )
    p.add_argument(
        "--rank-on",
        choices=("test", "val"),
        default="test",
        help="metric for ranks, regret and the Friedman test: test metric of the "
        "configuration selected on validation (default) or best validation metric",
    )
    p.add_argument("--alpha", type=_alpha, default=0.05, metavar="A", help="significance level (default: 0.05)")
    p.add_argument(
        "--blocks",
        choices=("problems", "seeds"),
        default="problems",
        help="units of the rank statistics: (dataset, space) problems with seeds averaged "
        "(default, the field's convention) or every (dataset, space, seed)",
    )
    p.add_argument(
        "--latex-width",
        choices=("column", "page"),
        default="column",
        help="LaTeX tables for one column (table) or the full page width (table*)",
    )
    p.add_argument(
        "--iohprofiler",
        action="store_true",
        help="also export BBOB runs in IOHprofiler's format to OUT/iohprofiler (for IOHanalyzer)",
    )
    p.add_argument(
        "--importance",
        choices=("fanova", "mdi", "ped-anova"),
        default="fanova",
        help="Optuna importance evaluator for the per-run importance plots (default: fanova)",
    )
    p.add_argument("--no-figures", action="store_true", help="write tables only (fast)")
    p.add_argument(
        "--no-run-figures", action="store_true", help="skip the per-run figures (history, importances, classification report)"
    )
    p.add_argument(
        "--runs",
        default="*",
        metavar="PATTERN",
        help="per-run figures only for run ids matching this shell pattern (default: all)",
    )
    p.add_argument("--quiet", action="store_true", help="do not print the main table")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of `harness-report`; returns the exit status (0 ok, 2 bad input)."""
    args = build_parser().parse_args(argv)
    from harness.errors import HarnessError

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            status = _run(args)
        except HarnessError as exc:
            status = 2
            _flush(caught)
            print(f"harness-report: error: {exc}", file=sys.stderr)
            return status
    _flush(caught)
    return status


def _flush(caught: list[warnings.WarningMessage]) -> None:
    """Print collected warnings as one line each (they name the skipped files)."""
    for w in caught:
        print(f"harness-report: warning: {w.message}", file=sys.stderr)
    caught.clear()


def _run(args: argparse.Namespace) -> int:
    if not args.results_dir.exists():  # before importing pandas and scipy: answer fast
        from harness.errors import HarnessError

        raise HarnessError(
            f"results folder {str(args.results_dir)!r} does not exist; pass the folder "
            "a `harness` run or sweep wrote (e.g. results/<experiment>)"
        )
    from harness.report import build, tables

    options = build.Options(
        formats=args.formats,
        target=args.target,
        target_rmse=args.target_rmse,
        spread=args.spread,
        rank_on=args.rank_on,
        alpha=args.alpha,
        figures=not args.no_figures,
        run_figures=not args.no_run_figures,
        importance=args.importance,
        runs=args.runs,
        blocks=args.blocks,
        latex_width=args.latex_width,
        iohprofiler=args.iohprofiler,
    )
    out = args.out or (args.results_dir if args.results_dir.is_dir() else args.results_dir.parent) / DEFAULT_OUT
    report = build.compute(args.results_dir, options, exclude=out)
    try:
        written = build.write(report, out)
    except OSError as exc:  # read-only folder, a file in the way, a full disk
        from harness.errors import HarnessError

        where = exc.filename or out
        raise HarnessError(
            f"cannot write the report to {str(where)!r}: {exc.strerror or exc}; pass --out DIR with a writable folder"
        ) from None
    if not args.quiet:
        print(tables.to_markdown(report.main))
        print(tables.to_markdown(report.ranks))
    print(f"report: {len(written)} files written to {out}")
    return 0
