"""Tabular benchmarks replayed in a simulated clock: exact and nearest lookups, promotions that
pay only their extra epochs, simulated parallel workers, identical reruns, malformed tables
refused, and `harness-tabulate` building a table from real grid runs."""

from __future__ import annotations

import json
import math
import subprocess

import numpy as np
import pandas as pd
import pytest

from harness.errors import ConfigError
from harness.runner import Runner
from harness.settings import settings_from_config
from harness.testing import problem_config

SPACE = {
    "name": "toy_tab",
    "fidelity": {"param": "epochs", "min": 1, "max": 10},
    "params": {
        "width": {"type": "categorical", "choices": [8, 16, 32]},
        "lr": {"type": "float", "low": 1.0e-3, "high": 1.0e-1, "log": True},
        "epochs": {"type": "int", "low": 1, "high": 10},
    },
}
LRS = (1e-3, 1e-2, 1e-1)


def write_toy_table(folder, name: str = "toy", replicates=(0, 1, 2)) -> str:
    """A table in the documented format, written by hand as a user would."""
    rows, cid = [], 0
    for width in (8, 16, 32):
        for lr in LRS:
            for rep in replicates:
                for epoch in range(1, 11):
                    rate = lr * 10 * width / 32
                    val = 1 - math.exp(-epoch * rate) + 0.01 * rep
                    rows.append(
                        {
                            "config_id": cid,
                            "replicate": rep,
                            "epoch": epoch,
                            "val": val,
                            "test": val - 0.02,
                            "seconds": 0.1 * width / 8,
                            "param.width": width,
                            "param.lr": lr,
                        }
                    )
            cid += 1
    folder.mkdir(parents=True, exist_ok=True)
    pd.DataFrame(rows).to_parquet(folder / f"{name}.parquet")
    meta = {
        "format": "harness-tabular",
        "version": 1,
        "name": name,
        "space": SPACE,
        "epochs": 10,
        "objective": {"name": "val_accuracy", "direction": "maximize"},
        "replicates": list(replicates),
        "identity_hash": "toy",
    }
    (folder / f"{name}.json").write_text(json.dumps(meta))
    return str(folder / f"{name}.parquet")


def settings(tmp_path, table: str, *overrides: str, results: str = "results"):
    cfg = problem_config("tabular", f"problem.table={table}", "progress=false", *overrides)
    cfg["results_dir"] = str(tmp_path / results)
    return settings_from_config(cfg)


def rows(summary) -> pd.DataFrame:
    return pd.read_parquet(summary.run_dir / "trials.parquet").sort_values("trial_id").reset_index(drop=True)


def test_replay_is_exact_on_the_grid_and_simulates_the_clock(tmp_path):
    table = write_toy_table(tmp_path / "tables")
    s = settings(tmp_path, table, "strategy=random", "budget.trials=20")
    assert s.worker_processes is False and s.problem.simulated_clock
    df = rows(Runner(s).run())
    assert (df.clock == "simulated").all() and (df.status == "ok").all()
    exact = df[df["param.lr"].isin(LRS)]
    assert len(exact) == 0 or (exact["metric.surrogate_distance"] == 0).all()
    # One simulated worker: each trial's end is the sum of the recorded seconds so far.
    np.testing.assert_allclose(df.elapsed_seconds, df.cost_seconds.cumsum())
    # A budget of e epochs is the curve's epoch-e value and costs e epochs' seconds.
    r = df.iloc[0]
    width, lr, e = r["param.width"], r["param.lr"], r["param.epochs"]
    assert r.budget == e and r.cost_seconds == pytest.approx(e * 0.1 * width / 8)
    nearest = min(LRS, key=lambda x: abs(math.log(x) - math.log(lr)))  # log-scaled space
    assert r.objective == pytest.approx(1 - math.exp(-e * nearest * 10 * width / 32))  # replicate 0


def test_off_grid_params_take_the_nearest_configuration(tmp_path):
    from harness.strategy import Suggestion

    s = settings(tmp_path, write_toy_table(tmp_path / "tables"))
    problem = s.problem
    problem.setup()
    exact = problem.evaluate(Suggestion(0, {"width": 16, "lr": 1e-2, "epochs": 5}))
    near = problem.evaluate(Suggestion(1, {"width": 16, "lr": 1.2e-2, "epochs": 5}))
    assert exact.metrics["surrogate_distance"] == 0 and near.metrics["surrogate_distance"] > 0
    assert near.metrics["config_id"] == exact.metrics["config_id"] and near.objective == exact.objective


def test_a_promotion_pays_only_its_extra_epochs(tmp_path):
    s = settings(tmp_path, write_toy_table(tmp_path / "tables"), "strategy=hyperband", "budget.trials=30")
    df = rows(Runner(s).run())
    promoted = df[df.parent_trial_id.notna()]
    assert len(promoted) > 0
    by_id = df.set_index("trial_id")
    for _, r in promoted.iterrows():
        parent = by_id.loc[int(r["parent_trial_id"])]
        assert r["budget_spent"] == r["budget"] - parent["budget"] > 0
        assert r["cost_seconds"] == pytest.approx(r["budget_spent"] * 0.1 * r["param.width"] / 8)


def test_parallel_workers_are_simulated_and_reruns_are_identical(tmp_path):
    table = write_toy_table(tmp_path / "tables")
    a = rows(Runner(settings(tmp_path, table, "strategy=hyperband", "n_workers=4", "budget.trials=40", results="a")).run())
    b = rows(Runner(settings(tmp_path, table, "strategy=hyperband", "n_workers=4", "budget.trials=40", results="b")).run())
    varying = ["finished_at", "ask_seconds", "tell_seconds"]
    pd.testing.assert_frame_equal(a.drop(columns=varying), b.drop(columns=varying))
    # Four simulated workers: the run's simulated span is well below the sum of trial costs.
    assert a.elapsed_seconds.max() < 0.6 * a.cost_seconds.sum()
    one = rows(Runner(settings(tmp_path, table, "strategy=random", "budget.trials=8", results="c")).run())
    four = rows(Runner(settings(tmp_path, table, "strategy=random", "budget.trials=8", "n_workers=4", results="d")).run())
    assert list(one.params) == list(four.params)  # same suggestions, told in finish order
    assert four.elapsed_seconds.max() < one.elapsed_seconds.max()


def test_the_seed_chooses_the_replicate(tmp_path):
    table = write_toy_table(tmp_path / "tables")
    reps = {seed: settings(tmp_path, table, f"seed={seed}").problem.replicate for seed in range(4)}
    assert reps == {0: 0, 1: 1, 2: 2, 3: 0}


@pytest.mark.parametrize(
    ("damage", "phrase"),
    [
        ("no_json", "has no metadata file"),
        ("no_column", "lacks the column\\(s\\) seconds"),
        ("other_space", "was built for another space"),
        ("gap", "needs epochs 1..10 exactly once"),
        ("not_format", "is not harness-tabular metadata"),
    ],
)
def test_a_malformed_table_is_refused_with_one_clear_error(tmp_path, damage, phrase):
    table = write_toy_table(tmp_path / "tables")
    path = tmp_path / "tables" / "toy.parquet"
    frame = pd.read_parquet(path)
    meta_path = path.with_suffix(".json")
    if damage == "no_json":
        meta_path.unlink()
    elif damage == "no_column":
        frame.drop(columns=["seconds"]).to_parquet(path)
    elif damage == "other_space":
        frame.rename(columns={"param.width": "param.depth"}).to_parquet(path)
    elif damage == "gap":
        frame[frame.epoch != 4].to_parquet(path)
    else:
        meta_path.write_text(json.dumps({"format": "something-else"}))
    with pytest.raises(ConfigError, match=phrase):
        settings(tmp_path, table)


def test_cli_refuses_a_missing_table_without_traceback(tmp_path, harness_cmd, subprocess_env):
    proc = subprocess.run(
        harness_cmd + ["problem=tabular", "problem.table=nope"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env=subprocess_env,
        timeout=120,
    )
    assert proc.returncode == 2 and proc.stderr.startswith("error: ") and "Traceback" not in proc.stderr
    assert "harness-tabulate" in proc.stderr


@pytest.mark.slow
def test_harness_tabulate_builds_a_table_from_grid_runs_and_it_replays(tmp_path, harness_cmd, subprocess_env):
    sweep = [
        "-m",
        "strategy=grid",
        "search_space=mlp",
        "dataset=iris",
        "problem.record_test_curve=true",
        "seed=0,1",
        "search_space.params.layer_num.high=3",
        "search_space.params.first_layer_unit.choices=[64]",
        "search_space.params.batch_size.choices=[64]",
        "budget.max_epochs=3",
        "experiment=tab",
        "progress=false",
    ]
    proc = subprocess.run(harness_cmd + sweep, capture_output=True, text=True, cwd=tmp_path, env=subprocess_env, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    tabulate = str(harness_cmd[0]).replace("harness", "harness-tabulate")
    out = subprocess.run(
        [tabulate, "results/tab", "--name", "tiny", "--out", "tables"], capture_output=True, text=True, cwd=tmp_path, timeout=300
    )
    assert out.returncode == 0, out.stderr[-3000:]
    frame = pd.read_parquet(tmp_path / "tables" / "tiny.parquet")
    meta = json.loads((tmp_path / "tables" / "tiny.json").read_text())
    assert meta["replicates"] == [0, 1] and meta["epochs"] == 3 and meta["n_configs"] == 2
    assert len(frame) == 2 * 2 * 3 and (frame.seconds > 0).all() and frame.test.between(0, 1).all()
    # The table's epoch-3 values are what the real runs recorded as their final metrics.
    runs = pd.read_parquet(tmp_path / "results" / "tab")
    final = frame[frame.epoch == 3].sort_values(["replicate", "param.layer_num"])
    real = runs.sort_values(["seed", "param.layer_num"])
    np.testing.assert_allclose(final.val.to_numpy(), real.objective.to_numpy())
    replay = Runner(settings(tmp_path, str(tmp_path / "tables" / "tiny.parquet"), "strategy=random", "budget.trials=5")).run()
    assert replay.n_trials == 5 and replay.status == "finished"
    bad = subprocess.run([tabulate, "results/nothing", "--name", "x"], capture_output=True, text=True, cwd=tmp_path, timeout=120)
    assert bad.returncode == 2 and "error:" in bad.stderr and "Traceback" not in bad.stderr


def test_grid_evaluates_the_same_set_for_every_run_seed_and_the_whole_finite_grid():
    from harness.registry import make_strategy
    from harness.space import load_space

    nas = load_space("nas_mlp")  # continuous and conditional: a Sobol sample
    fixed = [make_strategy("grid", nas, seed=s, n=16, sample_seed=0).configurations() for s in (0, 1)]
    assert fixed[0] == fixed[1] and len(fixed[0]) == 16
    per_seed = [make_strategy("grid", nas, seed=s, n=16).configurations() for s in (0, 1)]
    assert per_seed[0] != per_seed[1]
    for config in fixed[0]:
        nas.check(config)  # only active params, within bounds
    mlp = make_strategy("grid", load_space("mlp"), seed=0).configurations()
    assert len(mlp) == 36 and {c["epochs"] for c in mlp} == {50}  # the fidelity param at its maximum
    assert len({tuple(sorted(c.items())) for c in mlp}) == 36


def test_the_shipped_tables_replay_every_card_strategy(tmp_path):
    """Both shipped tables load, and each card strategy runs on them for a few trials (the
    conditional, continuous nas_mlp_digits through nearest-neighbour lookups)."""
    from harness.tabular import read_table, shipped_tables

    assert {"mlp_digits", "nas_mlp_digits"} <= set(shipped_tables())
    frame, meta = read_table("mlp_digits")
    assert meta["n_configs"] == 36 and meta["epochs"] == 50 and meta["replicates"] == [0, 1, 2]
    frame, meta = read_table("nas_mlp_digits")
    assert meta["n_configs"] == 64 and meta["epochs"] == 10 and frame["param.units_2"].isna().any()
    for strategy in ("random", "tpe", "genetic", "hyperband"):
        s = settings(tmp_path, "nas_mlp_digits", f"strategy={strategy}", "budget.trials=12", "n_workers=2", results=strategy)
        df = rows(Runner(s).run())
        assert len(df) == 12 and (df.status == "ok").all() and df.objective.between(0, 1).all()
        assert (df["metric.surrogate_distance"] >= 0).all()
    assert (df["metric.surrogate_distance"] > 0).any()  # continuous params: off the sample


def test_the_time_budget_counts_simulated_seconds(tmp_path):
    table = write_toy_table(tmp_path / "tables")
    summary = Runner(settings(tmp_path, table, "strategy=random", "budget.trials=null", "budget.seconds=20", "n_workers=2")).run()
    df = rows(summary)
    assert summary.stop_reason == "time budget of 20 s reached" and summary.clock == "simulated"
    # No new trial starts once 20 simulated seconds have passed; the ones running then finish.
    started = df.elapsed_seconds - df.cost_seconds
    assert (started < 20).all() and df.elapsed_seconds.max() >= 20 and summary.elapsed_seconds >= 20
