"""The results format: one Parquet row per trial, one versioned schema, written atomically.

Layout of a results folder::

    results/<experiment>/<run_id>/trials.parquet   one row per trial (this module's schema)
    results/<experiment>/<run_id>/_run.json        provenance and run status (running/finished/...)
    results/<experiment>/<run_id>/_artifacts/      checkpoints, best model predictions

Names starting with `_` or `.` are skipped by pyarrow/pandas dataset discovery, so
`pandas.read_parquet("results/<experiment>")` reads only trial rows. `read_results` below reads
any folder, unifies the `param.*` columns of different spaces and skips unreadable files by name.

Schema history: version 1 is the first.
"""
from __future__ import annotations

import json
import math
import os
import warnings
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

SCHEMA_VERSION = 1
TRIALS_FILE = "trials.parquet"
RUN_FILE = "_run.json"
ARTIFACTS_DIR = "_artifacts"
PARAM_PREFIX = "param."

# Column -> (arrow type, meaning). The README's schema table is generated from this.
COLUMNS: dict[str, tuple[pa.DataType, str]] = {
    "schema_version": (pa.int32(), "version of this schema (bumped on incompatible change)"),
    "experiment": (pa.string(), "experiment name; runs of one sweep share it"),
    "run_id": (pa.string(), "strategy_space_dataset_s<seed>_<config hash>; unique per resolved config"),
    "strategy": (pa.string(), "strategy entry-point name"),
    "strategy_version": (pa.string(), "version of the library the strategy wraps"),
    "trainer": (pa.string(), "how weights were trained: backprop, neuroevolution, ..."),
    "search_space": (pa.string(), "search space name"),
    "dataset": (pa.string(), "dataset name"),
    "task": (pa.string(), "classification or regression"),
    "seed": (pa.int64(), "run seed (data split, frameworks, strategy)"),
    "trial_id": (pa.int64(), "trial id given by the strategy, unique within the run"),
    "parent_trial_id": (pa.int64(), "trial whose weights this trial continued from, else null"),
    "status": (pa.string(), "ok, failed or pruned"),
    "budget_epochs": (pa.int64(), "epochs the model had trained in total when the trial ended"),
    "epochs_trained": (pa.int64(), "epochs actually trained by this trial (resumed trials: only the new ones)"),
    "objective": (pa.float64(), "value told to the strategy, maximised (val_accuracy, or -val_rmse)"),
    "val_accuracy": (pa.float64(), "validation accuracy (classification), else null"),
    "test_accuracy": (pa.float64(), "test accuracy (classification), else null"),
    "val_rmse": (pa.float64(), "validation RMSE (regression), else null"),
    "test_rmse": (pa.float64(), "test RMSE (regression), else null"),
    "train_seconds": (pa.float64(), "wall seconds in model.fit"),
    "eval_seconds": (pa.float64(), "wall seconds evaluating validation and test sets"),
    "ask_seconds": (pa.float64(), "wall seconds the strategy spent in ask() for this trial"),
    "tell_seconds": (pa.float64(), "wall seconds the strategy spent in tell() for this trial"),
    "elapsed_seconds": (pa.float64(), "wall seconds from run start to the end of this trial"),
    "finished_at": (pa.timestamp("ms", tz="UTC"), "UTC time the trial ended"),
    "params": (pa.string(), "the trial's params as JSON text"),
    "history": (pa.string(), "per-epoch (or per-generation) metrics as a JSON list of objects"),
    "error": (pa.string(), "error text of a failed trial, else null"),
    "harness_version": (pa.string(), "provenance: harness version"),
    "python_version": (pa.string(), "provenance: Python version"),
    "tensorflow_version": (pa.string(), "provenance: TensorFlow version"),
    "keras_version": (pa.string(), "provenance: Keras version"),
    "git_revision": (pa.string(), "provenance: git revision of the harness checkout, if any"),
    "hostname": (pa.string(), "provenance: machine that ran the trial"),
    "config_hash": (pa.string(), "provenance: hash of the resolved config (see _run.json)"),
    "config": (pa.string(), "provenance: resolved config as JSON"),
}


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


def _jsonable(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


class TrialWriter:
    """Keeps a run's rows and rewrites `trials.parquet` atomically after every trial.

    Atomic: the table goes to a temporary file that is fsync'ed and then renamed over the old
    one, so a crash (even SIGKILL) leaves the previous complete file, never a torn one. Rewriting
    the whole file is cheap at the sizes of one run (thousands of rows) and keeps one file per run.
    """

    def __init__(self, run_dir: Path, param_types: Mapping[str, pa.DataType],
                 existing: Iterable[Mapping[str, Any]] = ()):
        self.path = Path(run_dir) / TRIALS_FILE
        self.schema = trial_schema(param_types)
        self.param_names = list(param_types)
        self.rows: list[dict[str, Any]] = [dict(r) for r in existing]

    def append(self, row: Mapping[str, Any]) -> None:
        self.append_many([row])

    def append_many(self, rows: Iterable[Mapping[str, Any]]) -> None:
        for row in rows:
            full = {name: row.get(name) for name in COLUMNS}
            full["schema_version"] = SCHEMA_VERSION
            params = row.get("params") or {}
            if not isinstance(params, str):
                full["params"] = json.dumps({k: _jsonable(v) for k, v in params.items()}, sort_keys=True)
                for name in self.param_names:
                    full[PARAM_PREFIX + name] = params.get(name)
            else:
                for name in self.param_names:
                    full[PARAM_PREFIX + name] = row.get(PARAM_PREFIX + name)
            self.rows.append(full)
        self.flush()

    def flush(self) -> None:
        table = pa.Table.from_pylist(self.rows, schema=self.schema)
        tmp = self.path.with_name(f".{self.path.name}.{os.getpid()}.tmp")
        pq.write_table(table, tmp)
        with open(tmp, "rb+") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp, self.path)


def read_trials_file(path: Path) -> list[dict[str, Any]]:
    """Rows of one `trials.parquet` as dicts (for resuming a run)."""
    return pq.read_table(path).to_pylist()


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
                warnings.warn(f"skipping {str(path)!r}: not a harness trials file "
                              f"(no schema_version/run_id columns)", stacklevel=2)
            continue
        frames.append(table.to_pandas())
    if not frames:
        return pd.DataFrame({name: pd.Series(dtype=t.to_pandas_dtype()) if not pa.types.is_timestamp(t)
                             else pd.Series(dtype="datetime64[ms, UTC]")
                             for name, (t, _) in COLUMNS.items()})
    return pd.concat(frames, ignore_index=True, sort=False)


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
