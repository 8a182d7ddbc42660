"""Seed 003/004 features on real (tiny) Keras training: several executions per trial averaged
into one row, the selected configuration retrained on train + validation with its test score,
and Keras's EarlyStopping as a backprop trainer option."""

from __future__ import annotations

import json
import subprocess

import numpy as np
import pandas as pd
import pytest

from harness.datasets import load_dataset
from harness.errors import ConfigError
from harness.objective import KerasObjective
from harness.results import ARTIFACTS_DIR
from harness.runner import Runner, settings_from_config
from harness.space import load_space
from harness.strategy import Suggestion

pytestmark = pytest.mark.slow

SPACE = {
    "name": "small",
    "builder": "harness.search_spaces.mlp:build_homl_mlp",
    "fidelity": {"min": 1, "max": 3},
    "params": {
        "n_hidden": {"type": "int", "low": 1, "high": 2},
        "n_neurons": {"type": "int", "low": 8, "high": 32},
        "learning_rate": {"type": "float", "low": 1e-3, "high": 1e-2, "log": True},
        "optimizer": {"type": "categorical", "choices": ["adam"]},
    },
}


def config(tmp_path, **overrides):
    cfg = {
        "strategy": {"name": "random", "params": {}},
        "search_space": SPACE,
        "dataset": {"name": "iris", "split": {"val": 0.2, "test": 0.2}},
        "seed": 0,
        "experiment": "t",
        "budget": {"trials": 3, "seconds": None, "max_epochs": 2},
        "results_dir": str(tmp_path),
        "progress": False,
        "worker": {"processes": False},
    }
    cfg.update(overrides)
    return cfg


def test_executions_per_trial_average_independent_trainings_the_first_one_is_the_plain_trial():
    data = load_dataset("iris", seed=0)
    space = load_space("homl_mlp")
    sug = Suggestion(4, {"n_hidden": 1, "n_neurons": 16, "learning_rate": 0.01, "optimizer": "adam"}, budget=2)
    single = KerasObjective(space, data, seed=0)(sug)
    twice = KerasObjective(space, data, seed=0, executions=2)(sug)
    assert twice.executions is not None and len(twice.executions) == 2
    # Execution 0 trains with the trial's own seed: exactly the single-execution trial.
    assert twice.executions[0] == pytest.approx(single.objective)
    assert twice.objective == pytest.approx(np.mean(twice.executions))
    assert twice.epochs_trained == 4 and twice.budget_epochs == 2  # cost counts both trainings
    assert [h["epoch"] for h in twice.history] == [1, 2]


def test_a_run_with_executions_records_their_count_and_spread_and_refuses_pruners(tmp_path):
    problem = {"name": "keras", "executions_per_trial": 2}
    summary = Runner(settings_from_config(config(tmp_path, problem=problem))).run()
    df = pd.read_parquet(summary.run_dir / "trials.parquet")
    assert (df["status"] == "ok").all() and (df["metric.executions"] == 2).all()
    assert (df["metric.objective_execution_sd"] >= 0).all() and (df["budget_spent"] == 4).all()
    status = json.loads((summary.run_dir / "_run.json").read_text())
    assert "tensorflow_per_execution" in status["seeds"]
    # One execution keeps the run id it always had; two are another run.
    plain = settings_from_config(config(tmp_path))
    assert plain.run_id != summary.run_id and "executions_per_trial" not in json.dumps(plain.identity())
    # Averaged curves exist only at the end: a pruner has nothing to stop trials by.
    asha = Runner(settings_from_config(config(tmp_path, problem=problem, strategy={"name": "asha", "params": {}}))).run()
    assert asha.status == "not_applicable" and "intermediate values" in asha.stop_reason


def test_hyperband_promotions_continue_every_executions_own_checkpoint(tmp_path):
    cfg = config(
        tmp_path,
        problem={"name": "keras", "executions_per_trial": 2},
        strategy={"name": "hyperband", "params": {"factor": 3, "hyperband_iterations": 1}},
        budget={"trials": 6, "seconds": None, "max_epochs": 3},
    )
    summary = Runner(settings_from_config(cfg)).run()
    df = pd.read_parquet(summary.run_dir / "trials.parquet")
    promoted = df[df["parent_trial_id"].notna()]
    assert len(promoted) and (df["status"] == "ok").all()
    names = {p.name for p in (summary.run_dir / ARTIFACTS_DIR / "checkpoints").iterdir()}
    for _, row in promoted.iterrows():
        parent = int(row["parent_trial_id"])
        assert any(n.startswith(f"trial_{parent}_e") for n in names)
        assert any(n.startswith(f"trial_{parent}_x1_e") for n in names)
        # Each of the two executions trained only the epochs its parent had not.
        parent_budget = int(df.loc[df["trial_id"] == parent, "budget"].iloc[0])
        assert row["budget_spent"] == 2 * (row["budget"] - parent_budget)


def test_refit_retrains_the_best_configuration_once_and_records_its_test_score(tmp_path, capsys):
    cfg = config(tmp_path, refit={"enabled": True, "budget": None})
    summary = Runner(settings_from_config(cfg)).run()
    refit = json.loads((summary.run_dir / "_run.json").read_text())["refit"]
    assert refit["status"] == "ok" and refit["trial_id"] == summary.best["trial_id"]
    assert refit["budget"] == summary.best["budget"] == 2 and refit["budget_spent"] == 2
    assert 0 <= refit["test_objective"] <= 1 and refit["test_metric"] == "test_accuracy"
    assert refit["params"] == json.loads(summary.best["params"])
    assert "refit of trial" in summary.format() and "test accuracy" in summary.format()
    # A rerun is already complete and keeps the refit; another refit budget retrains.
    again = Runner(settings_from_config(cfg)).run()
    assert again.already_complete and again.refit == refit
    longer = Runner(settings_from_config(config(tmp_path, refit={"enabled": True, "budget": 3}))).run()
    assert longer.refit["budget"] == 3 and longer.refit["budget_spent"] == 3
    assert longer.refit["finished_at"] >= refit["finished_at"]
    # The report puts it next to the search's own test score of the same configuration.
    from harness.report.build import Options, compute, write

    report = compute(tmp_path / "t", Options(figures=False))
    written = write(report, tmp_path / "report")
    table = (tmp_path / "report" / "refit.md").read_text()
    assert f"{100 * longer.refit['test_objective']:.2f}" in table
    assert f"{100 * summary.best['test_objective']:.2f}" in table
    assert tmp_path / "report" / "refit.tex" in written


def test_refit_is_refused_where_a_problem_cannot_retrain(tmp_path):
    cfg = config(tmp_path, problem={"name": "bbob"}, refit={"enabled": True})
    with pytest.raises(ConfigError, match="problem 'bbob' cannot retrain"):
        settings_from_config(cfg)
    with pytest.raises(ConfigError, match="refit.enabled must be true or false"):
        settings_from_config(config(tmp_path, refit={"enabled": "yes"}))


def test_refit_runs_in_a_worker_process_like_the_trials(tmp_path, harness_cmd, subprocess_env):
    proc = subprocess.run(
        [
            *harness_cmd,
            "search_space=homl_mlp",
            "dataset=iris",
            "budget.trials=2",
            "budget.max_epochs=1",
            "refit.enabled=true",
            f"results_dir={tmp_path}",
        ],
        capture_output=True,
        text=True,
        env=subprocess_env,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "refit of trial" in proc.stdout and "refit: training trial" in proc.stderr
    (status_file,) = tmp_path.glob("default/*/_run.json")
    status = json.loads(status_file.read_text())
    assert status["refit"]["status"] == "ok" and status["status"] == "finished"


def test_early_stopping_ends_trials_before_their_budget(tmp_path):
    trainer = {"name": "backprop", "params": {"early_stopping_patience": 0, "early_stopping_monitor": "val_accuracy"}}
    space = {
        **SPACE,
        "fidelity": {"min": 1, "max": 30},
        "params": {**SPACE["params"], "learning_rate": {"type": "float", "low": 0.05, "high": 0.1}},
    }
    cfg = config(tmp_path, trainer=trainer, search_space=space, budget={"trials": 3, "seconds": None, "max_epochs": None})
    summary = Runner(settings_from_config(cfg)).run()
    df = pd.read_parquet(summary.run_dir / "trials.parquet")
    assert (df["status"] == "ok").all() and (df["budget_spent"] < 30).all()
    assert (df["budget"] == df["budget_spent"]).all()  # budget: the epochs the model reached
    with pytest.raises(ConfigError, match="early_stopping_patience must be an integer >= 0"):
        settings_from_config(config(tmp_path, trainer={"name": "backprop", "params": {"early_stopping_patience": -1}}))
    with pytest.raises(ConfigError, match="trainer backprop takes no options \\['patience'\\]"):
        settings_from_config(config(tmp_path, trainer={"name": "backprop", "params": {"patience": 2}}))
