"""The results format: one Parquet row per trial, one versioned schema, written atomically.

Layout of a results folder::

    results/<experiment>/<run_id>/trials.parquet   one row per trial (this module's schema)
    results/<experiment>/<run_id>/trials.part-*.parquet  rows flushed while the run goes (merged
                                                   into trials.parquet at its end; harness.store)
    results/<experiment>/<run_id>/_run.json        provenance and run status (running/finished/...)
    results/<experiment>/<run_id>/_journal.jsonl   the ask/tell sequence, for resume
    results/<experiment>/<run_id>/_artifacts/      checkpoints, best model predictions

Names starting with `_` or `.` are skipped by pyarrow/pandas dataset discovery, so
`pandas.read_parquet("results/<experiment>")` reads only trial rows. `read_results` below reads
any folder, unifies the `param.*`/`metric.*` columns of different problems and spaces, upgrades
version-1 files and skips unreadable files by name.

Schema history: version 1 (Keras only: accuracy/RMSE columns, library versions per row);
version 2 (any problem: objective name/direction, test objective, regret, cost, `metric.<name>`
columns; library versions in `_run.json`). Readers upgrade version-1 files (`upgrade_v1`).
"""

from __future__ import annotations

import json
import os
import warnings
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

SCHEMA_VERSION = 2
TRIALS_FILE = "trials.parquet"
PART_GLOB = "trials.part-*.parquet"  # rows flushed during a run, merged into TRIALS_FILE at its end
RUN_FILE = "_run.json"
ARTIFACTS_DIR = "_artifacts"
PARAM_PREFIX = "param."
METRIC_PREFIX = "metric."

# Column -> (arrow type, meaning). The README's schema table follows this.
COLUMNS: dict[str, tuple[pa.DataType, str]] = {
    "schema_version": (pa.int32(), "version of this schema (bumped on incompatible change)"),
    "experiment": (pa.string(), "experiment name; runs of one sweep share it"),
    "run_id": (pa.string(), "<strategy>_<instance>_s<seed>_<config hash>; unique per resolved config"),
    "problem": (pa.string(), "problem entry-point name: keras, bbob, sklearn, ..."),
    "instance": (pa.string(), "the problem instance: <space>_<dataset>, bbob-f07-d5-i1, svm_wine, ..."),
    "strategy": (pa.string(), "strategy entry-point name"),
    "strategy_version": (pa.string(), "version of the library the strategy wraps"),
    "search_space": (pa.string(), "search space name"),
    "dataset": (pa.string(), "dataset name, where the problem has one"),
    "task": (pa.string(), "classification or regression, where the problem has one"),
    "trainer": (pa.string(), "keras: how weights were trained (backprop, neuroevolution, ...)"),
    "seed": (pa.int64(), "run seed (problem, data split, frameworks, strategy)"),
    "trial_id": (pa.int64(), "trial id given by the strategy, unique within the run"),
    "parent_trial_id": (pa.int64(), "trial whose state this trial continued from, else null"),
    "status": (pa.string(), "ok, failed or pruned"),
    "objective_name": (pa.string(), "what the strategy optimised (val_accuracy, val_rmse, f, ...)"),
    "objective_direction": (pa.string(), "maximize or minimize"),
    "objective": (pa.float64(), "the optimised value, in the problem's direction"),
    "test_objective": (pa.float64(), "the same metric on held-out data (never optimised), else null"),
    "regret": (pa.float64(), "distance of objective to the problem's known optimum, else null"),
    "budget": (pa.int64(), "fidelity reached when the trial ended (keras: epochs trained in total)"),
    "budget_spent": (pa.int64(), "fidelity this trial consumed (a resumed trial: only the new part)"),
    "cost_seconds": (pa.float64(), "seconds the evaluation cost (measured, or simulated)"),
    "ask_seconds": (pa.float64(), "wall seconds the strategy spent in ask() for this trial"),
    "tell_seconds": (pa.float64(), "wall seconds the strategy spent in tell() for this trial"),
    "elapsed_seconds": (pa.float64(), "seconds from run start to the end of this trial (in the run's clock)"),
    "clock": (pa.string(), "wall, or simulated (tabular problems: trials take their recorded seconds)"),
    "finished_at": (pa.timestamp("ms", tz="UTC"), "UTC time the trial ended"),
    "params": (pa.string(), "the trial's params as JSON text"),
    "history": (pa.string(), "per-step (epoch, generation) metrics as a JSON list of objects"),
    "error": (pa.string(), "error text of a failed trial, else null"),
    "harness_version": (pa.string(), "provenance: harness version (library versions: _run.json)"),
    "hostname": (pa.string(), "provenance: machine that ran the trial"),
    "config_hash": (pa.string(), "provenance: hash of the run's identity (config in _run.json)"),
}

# Version 1 (Keras only) -> version 2: renamed columns; the rest is derived in `upgrade_v1`.
V1_RENAMED = {"budget_epochs": "budget", "epochs_trained": "budget_spent"}
V1_METRICS = ("val_accuracy", "test_accuracy", "val_rmse", "test_rmse", "train_seconds", "eval_seconds")


def param_arrow_type(param: Any) -> pa.DataType:
    """The column type of a search-space parameter (see harness.space)."""
    kind = param.type
    if kind == "int":
        return pa.int64()
    if kind == "float":
        return pa.float64()
    if kind == "bool":
        return pa.bool_()
    types = {type(c) for c in param.choices}
    if types == {int}:
        return pa.int64()
    if types <= {int, float}:
        return pa.float64()
    if types == {bool}:
        return pa.bool_()
    return pa.string()


def trial_schema(param_types: Mapping[str, pa.DataType]) -> pa.Schema:
    fields = [pa.field(name, t) for name, (t, _) in COLUMNS.items()]
    fields += [pa.field(PARAM_PREFIX + name, t) for name, t in param_types.items()]
    return pa.schema(fields, metadata={"harness_schema_version": str(SCHEMA_VERSION)})


def rows_to_table(rows: Iterable[Mapping[str, Any]], param_types: Mapping[str, pa.DataType]) -> pa.Table:
    """Full trial rows (as `harness.runner` builds them) as a table of this schema.

    The fixed columns and `param.*` are typed by the schema; `metric.*` columns, which each
    problem chooses, take the type pyarrow infers (a column that is all null stays null-typed and
    is promoted when files are combined).
    """
    rows = list(rows)
    schema = trial_schema(param_types)
    fixed = {f.name: pa.array([r.get(f.name) for r in rows], type=f.type) for f in schema}
    metrics: list[str] = []
    for r in rows:
        metrics.extend(k for k in r if k.startswith(METRIC_PREFIX) and k not in metrics)
    for name in metrics:
        fixed[name] = pa.array([r.get(name) for r in rows])
    return pa.table(fixed).replace_schema_metadata(schema.metadata)


def upgrade_v1(table: pa.Table) -> pa.Table:
    """A version-1 trials table (Keras only) in version-2 columns; other tables unchanged.

    v1's `objective` was validation accuracy, or -RMSE for regression; v2 keeps each problem's
    own direction, so regression rows get `val_rmse` minimised.
    """
    import pyarrow.compute as pc

    names = table.column_names
    if "objective_name" in names or "budget_epochs" not in names:
        return table
    n = len(table)

    def col(name: str, typ: pa.DataType = pa.float64()) -> pa.Array:
        return table[name] if name in names else pa.nulls(n, typ)

    for old, new in V1_RENAMED.items():
        table = table.append_column(new, col(old, pa.int64()))
    val_acc, val_rmse = col("val_accuracy"), col("val_rmse")
    inferred = pc.if_else(pc.and_(pc.is_valid(val_rmse), pc.is_null(val_acc)), "regression", "classification")
    task = pc.coalesce(col("task", pa.string()), inferred)
    regression = pc.equal(task, "regression")
    out = {
        "problem": pa.array(["keras"] * n, pa.string()),
        "instance": pc.binary_join_element_wise(col("search_space", pa.string()), col("dataset", pa.string()), "_"),
        "objective_name": pc.if_else(regression, "val_rmse", "val_accuracy"),
        "objective_direction": pc.if_else(regression, "minimize", "maximize"),
        "test_objective": pc.if_else(regression, col("test_rmse"), col("test_accuracy")),
        "regret": pa.nulls(n, pa.float64()),
        "cost_seconds": pc.add(pc.coalesce(col("train_seconds"), 0.0), pc.coalesce(col("eval_seconds"), 0.0)),
    }
    objective = pc.if_else(regression, pc.coalesce(val_rmse, pc.negate(col("objective"))), col("objective"))
    table = table.set_column(names.index("task"), "task", task) if "task" in names else table.append_column("task", task)
    table = table.set_column(table.column_names.index("objective"), "objective", objective)
    for name, values in out.items():
        table = table.append_column(name, values)
    for name in V1_METRICS:
        if name in names:
            table = table.append_column(METRIC_PREFIX + name, table[name])
    return table.drop_columns([c for c in (*V1_RENAMED, *V1_METRICS) if c in names])


def read_trials_file(path: Path) -> list[dict[str, Any]]:
    """Rows of one trials file as dicts (version 2 columns)."""
    return upgrade_v1(pq.read_table(path)).to_pylist()


def write_json_atomic(path: Path, data: Mapping[str, Any]) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(data, indent=2, sort_keys=True, default=str))
    os.replace(tmp, path)


def _skipped(path: Path, root: Path) -> bool:
    return any(part.startswith((".", "_")) for part in path.relative_to(root).parts[:-1])


def find_trial_files(root: str | os.PathLike[str]) -> list[Path]:
    """Every `*.parquet` under `root` (or `root` itself), skipping `.`/`_` folders."""
    root = Path(root)
    if root.is_file():
        return [root]
    if not root.exists():
        raise FileNotFoundError(f"results folder {str(root)!r} does not exist")
    return sorted(p for p in root.rglob("*.parquet") if not _skipped(p, root))


def read_results(root: str | os.PathLike[str], *, warn: bool = True) -> "Any":
    """All trial rows under `root` as one pandas DataFrame.

    Files that cannot be read, or are not harness trial files (no `schema_version` column), are
    skipped with a warning naming them. `param.*` columns of different spaces are unioned.
    """
    import pandas as pd

    frames = []
    for path in find_trial_files(root):
        try:
            table = pq.read_table(path)
        except Exception as exc:  # corrupt, truncated, not Parquet at all...
            if warn:
                warnings.warn(f"skipping unreadable results file {str(path)!r}: {exc}", stacklevel=2)
            continue
        if "schema_version" not in table.column_names or "run_id" not in table.column_names:
            if warn:
                warnings.warn(
                    f"skipping {str(path)!r}: not a harness trials file (no schema_version/run_id columns)", stacklevel=2
                )
            continue
        frames.append(upgrade_v1(table).to_pandas())
    if not frames:
        return pd.DataFrame(
            {
                name: pd.Series(dtype=t.to_pandas_dtype())
                if not pa.types.is_timestamp(t)
                else pd.Series(dtype="datetime64[ms, UTC]")
                for name, (t, _) in COLUMNS.items()
            }
        )
    frame = pd.concat(frames, ignore_index=True, sort=False)
    # Trial ids are integers; pandas turns an int column with nulls into float64 (1.0, NaN).
    for column in ("trial_id", "parent_trial_id"):
        if column in frame.columns:
            frame[column] = frame[column].astype("Int64")
    return frame


def read_runs(root: str | os.PathLike[str]) -> list[dict[str, Any]]:
    """The `_run.json` of every run under `root` (provenance and status); bad files are skipped."""
    out = []
    for path in sorted(Path(root).rglob(RUN_FILE)):
        try:
            data = json.loads(path.read_text())
        except (OSError, ValueError) as exc:
            warnings.warn(f"skipping unreadable run file {str(path)!r}: {exc}", stacklevel=2)
            continue
        data["run_dir"] = str(path.parent)
        out.append(data)
    return out
