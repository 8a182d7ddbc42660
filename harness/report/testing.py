"""Synthetic results folders for testing and benchmarking `harness-report` (no training).

`write_example` writes the small hand-computed example the tests check numbers against;
`write_random` writes many runs quickly (the 100,000-row benchmark). Both write the schema
of `harness.results` (version 2), as the runner does.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from harness.results import RUN_FILE, TRIALS_FILE, rows_to_table, write_json_atomic

PARAM_TYPES = {"lr": pa.float64(), "units": pa.int64(), "optimizer": pa.string()}

# (val, test, status, elapsed_seconds, epochs_trained) per trial, in order. Classification values
# are accuracies, regression values RMSE. See tests/test_report.py for the hand computation.
EXAMPLE: dict[tuple[str, str, str], dict[int, list[tuple[Any, ...]]]] = {
    ("digits", "mlp", "random"): {
        0: [(0.90, 0.91, "ok", 1, 2), (0.96, 0.93, "ok", 2, 2), (0.95, 0.97, "ok", 3, 2), (None, None, "failed", 4, 1)],
        1: [(0.92, 0.90, "ok", 1, 2), (0.94, 0.92, "ok", 2, 2)],
        2: [(0.93, 0.94, "ok", 1, 2), (0.91, 0.95, "ok", 2, 2)],
    },
    ("digits", "mlp", "tpe"): {
        0: [(0.97, 0.96, "ok", 1, 2), (0.98, 0.95, "ok", 2, 2)],
        1: [(0.96, 0.94, "ok", 1, 2), (0.95, 0.99, "ok", 2, 2)],
        2: [(0.99, 0.97, "ok", 1, 2), (None, None, "failed", 2, 0)],
    },
    ("digits", "mlp", "genetic"): {
        0: [(0.88, 0.86, "ok", 1, 2), (0.99, 0.99, "pruned", 2, 1)],
        1: [(0.89, 0.88, "ok", 1, 2)],
        2: [(0.90, 0.91, "ok", 1, 2)],
    },
    ("diabetes", "mlp", "random"): {
        0: [(60.0, 62.0, "ok", 1, 2), (55.0, 58.0, "ok", 2, 2)],
        1: [(57.0, 59.0, "ok", 1, 2)],
        2: [(54.0, 61.0, "ok", 1, 2)],
    },
    ("diabetes", "mlp", "tpe"): {
        0: [(50.0, 52.0, "ok", 1, 2)],
        1: [(53.0, 56.0, "ok", 1, 2)],
        2: [(52.0, 60.0, "ok", 1, 2)],
    },
    ("diabetes", "mlp", "genetic"): {  # seed 1: every trial failed; seed 2: no run at all
        0: [(58.0, 57.0, "ok", 1, 2)],
        1: [(None, None, "failed", 1, 1), (None, None, "failed", 2, 1)],
    },
}


def trial_row(
    *,
    experiment: str,
    run_id: str,
    strategy: str,
    space: str,
    dataset: str,
    seed: int,
    trial_id: int,
    val: float | None,
    test: float | None,
    status: str,
    elapsed: float,
    epochs: int,
    params: dict[str, Any],
    regression: bool,
) -> dict[str, Any]:
    kind = "rmse" if regression else "accuracy"
    return {
        "schema_version": 2,
        "experiment": experiment,
        "run_id": run_id,
        "problem": "keras",
        "instance": f"{space}_{dataset}",
        "strategy": strategy,
        "strategy_version": "0",
        "search_space": space,
        "dataset": dataset,
        "task": "regression" if regression else "classification",
        "seed": seed,
        "trial_id": trial_id,
        "status": status,
        "budget": epochs,
        "budget_spent": epochs,
        "objective_name": f"val_{kind}",
        "objective_direction": "minimize" if regression else "maximize",
        "objective": val,
        "test_objective": test,
        f"metric.val_{kind}": val,
        f"metric.test_{kind}": test,
        "cost_seconds": 0.6,
        "ask_seconds": 0.001,
        "tell_seconds": 0.002,
        "elapsed_seconds": float(elapsed),
        "params": json.dumps(params, sort_keys=True),
        **{f"param.{k}": v for k, v in params.items()},
        "history": json.dumps([{"epoch": 1, "val": val}]),
        "error": "boom" if status == "failed" else None,
    }


def write_run(root: Path, experiment: str, run_id: str, rows: Iterable[dict[str, Any]], meta: dict[str, Any]) -> Path:
    run_dir = root / run_id
    run_dir.mkdir(parents=True, exist_ok=True)
    pq.write_table(rows_to_table(list(rows), PARAM_TYPES), run_dir / TRIALS_FILE)
    write_json_atomic(run_dir / RUN_FILE, {"run_id": run_id, "experiment": experiment, "status": "finished", **meta})
    return run_dir


def write_example(root: Path, *, experiment: str = "exp") -> Path:
    """The hand-computed example of tests/test_report.py, plus one corrupt and one foreign file."""
    root = Path(root)
    rng = np.random.default_rng(0)
    for (dataset, space, strategy), seeds in EXAMPLE.items():
        regression = dataset == "diabetes"
        for seed, trials in seeds.items():
            run_id = f"{strategy}_{space}_{dataset}_s{seed}"
            rows = []
            for i, (val, test, status, elapsed, epochs) in enumerate(trials):
                params = {
                    "lr": float(10 ** rng.uniform(-4, -2)),
                    "units": int(rng.integers(1, 9)) * 32,
                    "optimizer": ["adam", "sgd"][int(rng.integers(2))],
                }
                rows.append(
                    trial_row(
                        experiment=experiment,
                        run_id=run_id,
                        strategy=strategy,
                        space=space,
                        dataset=dataset,
                        seed=seed,
                        trial_id=i,
                        val=val,
                        test=test,
                        status=status,
                        elapsed=elapsed,
                        epochs=epochs,
                        params=params,
                        regression=regression,
                    )
                )
            write_run(
                root, experiment, run_id, rows, {"strategy": strategy, "search_space": space, "dataset": dataset, "seed": seed}
            )
    (root / "corrupt_run").mkdir(parents=True, exist_ok=True)
    (root / "corrupt_run" / "trials.parquet").write_bytes(b"PAR1 this is not parquet")
    (root / "notes").mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.table({"a": [1, 2], "b": ["x", "y"]}), root / "notes" / "other.parquet")
    return root


def write_random(
    root: Path,
    *,
    n_rows: int = 100_000,
    strategies: int = 5,
    seeds: int = 10,
    datasets: int = 4,
    spaces: int = 2,
    experiment: str = "bench",
    seed: int = 0,
) -> int:
    """Many runs of random numbers, `n_rows` trials in all (approximately); returns the row count."""
    from harness.results import trial_schema

    root = Path(root)
    rng = np.random.default_rng(seed)
    n_runs = strategies * seeds * datasets * spaces
    per_run = max(1, n_rows // n_runs)
    schema = trial_schema(PARAM_TYPES)
    total = 0
    for d in range(datasets):
        regression = d == datasets - 1
        for sp in range(spaces):
            for st in range(strategies):
                for s in range(seeds):
                    run_id = f"s{st}_sp{sp}_d{d}_s{s}"
                    val = rng.uniform(0.5, 1.0, per_run) if not regression else rng.uniform(40, 80, per_run)
                    test = val + rng.normal(0, 0.01, per_run)
                    status = np.where(rng.random(per_run) < 0.05, "failed", "ok")
                    val = np.where(status == "ok", val, np.nan)
                    n = per_run
                    cols = {c: pa.nulls(n, schema.field(c).type) for c in schema.names}
                    cols.update(
                        {
                            "schema_version": pa.array(np.full(n, 2, dtype=np.int32)),
                            "experiment": pa.array([experiment] * n),
                            "run_id": pa.array([run_id] * n),
                            "problem": pa.array(["keras"] * n),
                            "instance": pa.array([f"space{sp}_data{d}"] * n),
                            "strategy": pa.array([f"strategy{st}"] * n),
                            "search_space": pa.array([f"space{sp}"] * n),
                            "dataset": pa.array([f"data{d}"] * n),
                            "task": pa.array(["regression" if regression else "classification"] * n),
                            "seed": pa.array(np.full(n, s, dtype=np.int64)),
                            "trial_id": pa.array(np.arange(n, dtype=np.int64)),
                            "status": pa.array(status),
                            "budget": pa.array(np.full(n, 3, dtype=np.int64)),
                            "budget_spent": pa.array(np.full(n, 3, dtype=np.int64)),
                            "objective_name": pa.array(["val_rmse" if regression else "val_accuracy"] * n),
                            "objective_direction": pa.array(["minimize" if regression else "maximize"] * n),
                            "objective": pa.array(val),
                            "test_objective": pa.array(test),
                            "ask_seconds": pa.array(rng.uniform(0, 0.01, n)),
                            "tell_seconds": pa.array(rng.uniform(0, 0.01, n)),
                            "elapsed_seconds": pa.array(np.cumsum(rng.uniform(0.5, 2.0, n))),
                            "params": pa.array([json.dumps({"lr": 0.001, "units": 64})] * n),
                            "history": pa.array([json.dumps([{"epoch": 1, "pad": "x" * 500}])] * n),
                        }
                    )
                    table = pa.table([cols[c] for c in schema.names], schema=schema)
                    (root / run_id).mkdir(parents=True, exist_ok=True)
                    pq.write_table(table, root / run_id / "trials.parquet")
                    total += n
    return total
