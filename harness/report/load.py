"""Reading a results folder for the report: only the columns the tables need, bad files named.

`harness.results.read_results` reads every column; the provenance columns (`config`, `history`)
are large JSON strings, so the report reads only `aggregate.NEEDED` with pyarrow's column
projection and converts to pandas once. The skipping rules are the same: unreadable files and
Parquet files that are not harness trial files are skipped with a warning naming them.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
import warnings
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from harness.errors import HarnessError
from harness.report.aggregate import NEEDED
from harness.results import COLUMNS, V1_METRICS, V1_RENAMED, find_trial_files, read_runs, upgrade_v1


class ReportInputError(HarnessError):
    """The results folder cannot be reported on (missing, empty, nothing readable)."""


@dataclass
class Loaded:
    trials: pd.DataFrame  # one row per trial, `aggregate.NEEDED` columns
    skipped: list[str]  # files skipped (unreadable or foreign), named
    sources: dict[tuple[str, str], Path]  # (experiment, run_id) -> its trials file


def read_trials(
    root: str | os.PathLike[str], columns: list[str] | None = None, *, exclude: str | os.PathLike[str] | None = None
) -> Loaded:
    """Trial rows under `root` (only `columns`, default the report's), skipped files, sources.

    Files under `exclude` (the report's own output folder, whose Parquet files are not trial
    files) are not read."""
    columns = list(columns or NEEDED)
    sources: dict[tuple[str, str], Path] = {}
    try:
        paths = find_trial_files(root)
    except FileNotFoundError as exc:
        raise ReportInputError(f"{exc}; pass the folder a `harness` run or sweep wrote (e.g. results/<experiment>)") from None
    if exclude is not None:
        ex = Path(exclude).resolve()
        paths = [p for p in paths if ex not in p.resolve().parents]
    # One ParquetFile per path (footer read once); a thread pool over files was slower
    # (measured: 400 files, 100,000 rows, 2 cores).
    tables, skipped = [], []
    for path in paths:
        table, problem = _read_one(path, columns)
        if table is None:
            warnings.warn(problem, stacklevel=2)
            skipped.append(str(path))
            continue
        for experiment, run_id in _run_keys(table):
            sources[("" if experiment is None else str(experiment), str(run_id))] = path
        tables.append(table)
    if not tables:
        frame = pd.DataFrame({c: pd.Series(dtype=object) for c in columns})
    else:
        frame = pa.concat_tables(tables, promote_options="permissive").to_pandas()
    return Loaded(frame, skipped, sources)


def _run_keys(table: pa.Table) -> list[tuple[Any, Any]]:
    """The (experiment, run_id) pairs of a file: run ids repeat across experiments, so per-run
    work is keyed on both (a missing experiment becomes "", as in `aggregate.prepare`)."""
    exps, ids = (pc.unique(table[c]).to_pylist() for c in ("experiment", "run_id"))
    if len(exps) > 1 and len(ids) > 1:  # rare; a group_by per file costs ~0.1 s at 400 files
        keys = table.select(["experiment", "run_id"]).group_by(["experiment", "run_id"]).aggregate([])
        return list(zip(keys["experiment"].to_pylist(), keys["run_id"].to_pylist()))
    return [(e, r) for e in exps for r in ids]  # one of them single-valued: the product is exact


def _read_one(path: Path, columns: list[str]) -> tuple[pa.Table | None, str]:
    """One file's `columns`, or None and the reason it is skipped."""
    try:
        pf = pq.ParquetFile(path)
        names = pf.schema_arrow.names
        if "schema_version" not in names or "run_id" not in names:
            return None, (f"skipping {str(path)!r}: not a harness trials file (no schema_version/run_id columns)")
        wanted = [c for c in columns if c in names]
        if "objective_name" not in names:  # schema version 1: read what the upgrade derives from
            wanted += [
                c
                for c in (*V1_RENAMED, *V1_METRICS, "objective", "task", "dataset", "search_space")
                if c in names and c not in wanted
            ]
        # Small files: pyarrow's thread pool costs more than it saves (measured, 250-row files).
        table = upgrade_v1(pf.read(columns=wanted, use_threads=False))
    except Exception as exc:  # corrupt, truncated, not Parquet at all
        return None, f"skipping unreadable results file {str(path)!r}: {exc}"
    for c in columns:  # older files may lack a column: add it empty, typed as the schema says
        if c not in table.column_names:
            typ = COLUMNS[c][0] if c in COLUMNS else pa.null()
            table = table.append_column(c, pa.nulls(len(table), typ))
    return table.select(columns), ""


def read_run_records(root: str | os.PathLike[str]) -> list[dict[str, Any]]:
    """The `_run.json` records under `root` (unreadable ones are skipped with a warning)."""
    if Path(root).is_file():
        return read_runs(Path(root).parent)
    return read_runs(root)
