"""The runner in-process: failures become rows, budgets, resume and Parquet contents."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from _builders import TOY_SPACE
from harness.errors import ConfigError, NotSupportedError
from harness.runner import Runner, settings_from_config

pytestmark = pytest.mark.slow


def config(tmp_path, **overrides):
    cfg = {
        "strategy": {"name": "random", "params": {}},
        "search_space": TOY_SPACE,
        "dataset": {"name": "iris", "split": {"val": 0.2, "test": 0.2}},
        "seed": 0,
        "experiment": "t",
        "budget": {"trials": 8, "seconds": None, "max_epochs": 1},
        "results_dir": str(tmp_path),
        "progress": False,
    }
    cfg.update(overrides)
    return cfg


def test_failing_and_nan_trials_become_failed_rows_and_the_run_goes_on(tmp_path):
    summary = Runner(settings_from_config(config(tmp_path))).run()
    df = pd.read_parquet(summary.run_dir / "trials.parquet")
    assert len(df) == 8 and summary.status == "finished"
    by_x = df.groupby("param.x")["status"].agg(set).to_dict()
    assert by_x == {"ok": {"ok"}, "boom": {"failed"}, "nan": {"failed"}}
    assert df[df["param.x"] == "boom"].error.str.contains("ValueError: boom").all()
    assert df[df["param.x"] == "nan"].error.str.contains("NaN").all()
    assert df.loc[df.status == "ok", "metric.val_accuracy"].between(0, 1).all()
    assert df["objective"][df.status == "failed"].isna().all()


def test_failure_rate_above_the_limit_stops_with_a_clear_message(tmp_path):
    space = {**TOY_SPACE, "params": {"x": {"type": "categorical", "choices": ["boom"]}}}
    with pytest.raises(Exception, match="5 of 5 trials failed, above max_failure_rate=0.8"):
        Runner(settings_from_config(config(tmp_path, search_space=space))).run()


def test_rerun_resumes_and_extends_without_duplicates(tmp_path):
    first = Runner(settings_from_config(config(tmp_path, budget={"trials": 3, "max_epochs": 1}))).run()
    again = Runner(settings_from_config(config(tmp_path, budget={"trials": 3, "max_epochs": 1}))).run()
    assert again.run_dir == first.run_dir and again.n_trials == 3
    more = Runner(settings_from_config(config(tmp_path, budget={"trials": 5, "max_epochs": 1}))).run()
    df = pd.read_parquet(more.run_dir / "trials.parquet")
    assert sorted(df.trial_id) == [0, 1, 2, 3, 4]
    # The extension continues the same strategy trajectory as a fresh 5-trial run would.
    fresh = Runner(settings_from_config(config(tmp_path / "fresh", budget={"trials": 5, "max_epochs": 1}))).run()
    fresh_df = pd.read_parquet(fresh.run_dir / "trials.parquet")
    assert list(df.params) == list(fresh_df.params)
    status = json.loads((more.run_dir / "_run.json").read_text())
    assert status["status"] == "finished" and status["n_trials"] == 5


def test_overwrite_starts_over(tmp_path):
    Runner(settings_from_config(config(tmp_path, budget={"trials": 2, "max_epochs": 1}))).run()
    s = Runner(settings_from_config(config(tmp_path, budget={"trials": 1, "max_epochs": 1}, overwrite=True))).run()
    assert len(pd.read_parquet(s.run_dir / "trials.parquet")) == 1


def test_time_budget_stops_the_run(tmp_path):
    s = Runner(settings_from_config(config(tmp_path, budget={"trials": None, "seconds": 0.001, "max_epochs": 1}))).run()
    assert s.n_trials == 1 and "time budget" in s.stop_reason


@pytest.mark.parametrize(
    "budget, phrase",
    [
        ({"trials": 0}, "budget.trials must be an integer >= 1"),
        ({"trials": None, "seconds": None}, "the run has no budget"),
        ({"trials": 2, "max_epochs": "x"}, "budget.max_epochs must be an integer"),
    ],
)
def test_bad_budgets_are_config_errors(tmp_path, budget, phrase):
    with pytest.raises(ConfigError, match=phrase):
        settings_from_config(config(tmp_path, budget=budget))


def test_cnn_on_tabular_data_stops_the_run_with_a_clear_reason(tmp_path):
    from importlib.resources import files

    import yaml

    cnn = yaml.safe_load((files("harness.conf") / "search_space" / "cnn.yaml").read_text())
    with pytest.raises(NotSupportedError, match="'cnn' needs image data"):
        Runner(settings_from_config(config(tmp_path, search_space=cnn, budget={"trials": 1, "max_epochs": 1}))).run()
    # Nothing ran: a configuration error leaves no run folder for reports to count as a seed.
    assert not list(tmp_path.rglob("_run.json")) and not list(tmp_path.rglob("*.parquet"))


def test_best_predictions_are_saved_for_the_report(tmp_path):
    import numpy as np

    s = Runner(settings_from_config(config(tmp_path, budget={"trials": 4, "max_epochs": 1}))).run()
    saved = np.load(s.run_dir / "_artifacts" / "best_predictions.npz")
    assert int(saved["trial_id"]) == s.best["trial_id"]
    assert saved["y_true"].shape == saved["y_pred"].shape and list(saved["class_names"]) == ["setosa", "versicolor", "virginica"]


def test_max_epochs_caps_the_fidelity_multi_fidelity_strategies_plan_with(tmp_path):
    space = {
        **TOY_SPACE,
        "fidelity": {"min": 1, "max": 9},
        "params": {"x": {"type": "categorical", "choices": ["ok"]}, "y": {"type": "int", "low": 1, "high": 50}},
    }
    runner = Runner(
        settings_from_config(
            config(
                tmp_path, search_space=space, strategy={"name": "hyperband", "params": {}}, budget={"trials": 1, "max_epochs": 3}
            )
        )
    )
    assert runner.strategy.space.fidelity.max == 3
    assert all(s.budget <= 3 for s in runner.strategy.ask(5))


def test_the_summary_says_when_a_run_was_already_complete_and_what_was_trained(tmp_path):
    from pathlib import Path

    from harness.runner import RunSummary

    best = {
        "trial_id": 3,
        "objective_name": "val_accuracy",
        "objective": 0.9,
        "budget": 2,
        "budget_spent": 2,
        "params": json.dumps({"layer_num": 2, "epochs": 50, "batch_size": 64}, sort_keys=True),
    }
    summary = RunSummary(
        "r",
        Path("/x"),
        "finished",
        5,
        0,
        1.0,
        best,
        "trial budget of 5 reached",
        param_order=("layer_num", "batch_size", "epochs"),
        fidelity_param="epochs",
    )
    text = summary.format()
    # The space's order (not the stored JSON's sorted one), and the epochs actually trained.
    assert "best params: {'layer_num': 2, 'batch_size': 64, 'epochs': 50} (epochs 50 asked, 2 trained)" in text
    assert "already complete" not in text
    again = RunSummary("r", Path("/x"), "finished", 5, 0, 1.0, best, "trial budget of 5 reached", already_complete=True).format()
    assert again.startswith("run r: already complete (trial budget of 5 reached); nothing to run")


def test_rerunning_a_finished_run_says_it_is_already_complete(tmp_path):
    from harness.runner import run

    s = _bbob_settings(tmp_path)
    first = run(s)
    second = run(s)
    assert not first.already_complete and second.already_complete
    assert second.n_trials == first.n_trials and "already complete" in second.format()


def _bbob_settings(tmp_path):
    from hydra import compose, initialize_config_module
    from omegaconf import OmegaConf

    with initialize_config_module("harness.conf", version_base="1.3"):
        cfg = compose("config", overrides=["problem=bbob", "budget.trials=3", f"results_dir={tmp_path}"])
    return settings_from_config(OmegaConf.to_container(cfg, resolve=True), base_dir=tmp_path)
