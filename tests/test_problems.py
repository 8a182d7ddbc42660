"""Problems as plugins: the problem conformance suite on every installed problem, and what a
user checks of `bbob` and `sklearn` runs (regret, determinism, errors)."""

from __future__ import annotations


import pandas as pd
import pytest

from harness.errors import ConfigError, UnknownNameError
from harness.runner import Runner
from harness.settings import settings_from_config
from harness.testing import PROBLEM_CHECKS, problem_config, problem_conformance_tests

test_problem_conformance = problem_conformance_tests()


def _settings(tmp_path, name: str, *overrides: str):
    cfg = problem_config(name, "progress=false", *overrides)
    cfg["results_dir"] = str(tmp_path / "results")
    return settings_from_config(cfg)


def test_every_problem_check_is_collected():
    assert set(PROBLEM_CHECKS) == {
        "contract_attributes",
        "import_is_light",
        "in_space_params_give_a_result",
        "deterministic_under_seed",
        "fidelity_respected",
        "picklable",
    }


def test_bbob_run_records_regret_from_the_library_optimum(tmp_path):
    import ioh

    s = _settings(tmp_path, "bbob", "problem.function=7", "problem.dimension=5", "strategy=tpe", "budget.trials=40")
    assert s.worker_processes is False  # cheap: in the runner's own process
    summary = Runner(s).run()
    df = pd.read_parquet(summary.run_dir / "trials.parquet")
    f = ioh.get_problem(7, instance=1, dimension=5, problem_class=ioh.ProblemClass.BBOB)
    assert len(df) == 40 and (df.status == "ok").all() and (df.problem == "bbob").all()
    assert (df.objective_name == "f").all() and (df.objective_direction == "minimize").all()
    # The recorded objective is the library's own value at the recorded point.
    row = df.iloc[5]
    assert row.objective == pytest.approx(f([row[f"param.x{i}"] for i in range(5)]))
    assert (df.regret == df.objective - f.optimum.y).all() and (df.regret >= 0).all()
    assert summary.best["objective"] == df.objective.min()  # minimised: best is the lowest
    assert summary.run_id.startswith("tpe_bbob-f07-d5-i1_s0_")


def test_bbob_runs_are_identical_per_seed_and_differ_across_seeds(tmp_path):
    a = Runner(_settings(tmp_path / "a", "bbob", "budget.trials=30")).run()
    b = Runner(_settings(tmp_path / "b", "bbob", "budget.trials=30")).run()
    c = Runner(_settings(tmp_path / "c", "bbob", "budget.trials=30", "seed=1")).run()
    cols = ["trial_id", "params", "objective", "regret"]
    frames = [pd.read_parquet(x.run_dir / "trials.parquet")[cols] for x in (a, b, c)]
    pd.testing.assert_frame_equal(frames[0], frames[1])
    assert not frames[0].equals(frames[2])


@pytest.mark.parametrize(
    ("override", "phrase"),
    [
        ("problem.function=25", "problem.function must be an integer in 1..24, but got 25"),
        ("problem.dimension=1", "problem.dimension must be an integer in 2..40"),
        ("problem.instance=0", "problem.instance must be an integer >= 1"),
        ("++problem.budget=3", "rejected its options"),
    ],
)
def test_bbob_options_are_checked(tmp_path, override, phrase):
    with pytest.raises(ConfigError, match=phrase):
        _settings(tmp_path, "bbob", override)


def test_sklearn_svm_on_iris_cross_validates_and_tests(tmp_path):
    s = _settings(tmp_path, "sklearn", "problem.model=svm", "dataset=iris", "strategy=tpe", "budget.trials=8")
    summary = Runner(s).run()
    df = pd.read_parquet(summary.run_dir / "trials.parquet")
    assert len(df) == 8 and (df.status == "ok").all() and (df.objective_name == "cv_accuracy").all()
    assert df.objective.between(0, 1).all() and df.test_objective.between(0, 1).all()
    assert (df["metric.test_accuracy"] == df.test_objective).all() and df["metric.cv_std"].notna().all()
    assert {"param.C", "param.gamma", "param.tol"} <= set(df.columns)
    assert summary.best["objective"] == df.objective.max()


def test_sklearn_regression_is_minimised_rmse_and_rf_has_a_tree_fidelity(tmp_path):
    s = _settings(tmp_path, "sklearn", "problem.model=rf", "dataset=diabetes", "strategy=hyperband", "budget.trials=6")
    df = pd.read_parquet(Runner(s).run().run_dir / "trials.parquet")
    assert (df.objective_name == "cv_rmse").all() and (df.objective_direction == "minimize").all()
    assert df.objective.between(20, 120).all()  # diabetes targets span 25..346
    assert df.budget.between(4, 64).all() and df.budget.min() < 64  # Hyperband's small rungs


@pytest.mark.parametrize(
    ("overrides", "phrase"),
    [
        (("problem.model=lasso", "dataset=iris"), "model 'lasso' has no classification estimator"),
        (("problem.model=xgb",), "problem.model must be one of ada, dt, knn, lasso, mlp, rf, ridge, svm"),
        (("problem.cv_folds=1",), "problem.cv_folds must be an integer >= 2"),
    ],
)
def test_sklearn_options_are_checked(tmp_path, overrides, phrase):
    with pytest.raises(ConfigError, match=phrase):
        _settings(tmp_path, "sklearn", *overrides)


def test_unknown_problem_lists_the_installed_ones(tmp_path):
    cfg = problem_config("bbob")
    cfg["problem"] = {"name": "nope"}
    with pytest.raises(UnknownNameError, match="unknown problem 'nope'; installed: .*bbob.*keras.*sklearn"):
        settings_from_config(cfg)


def test_keras_problem_keeps_its_run_identity_and_defaults(tmp_path):
    s = _settings(tmp_path, "keras")
    assert s.problem.name == "keras" and s.worker_processes is True
    assert set(s.identity()) == {
        "strategy",
        "strategy_params",
        "search_space",
        "dataset",
        "trainer",
        "trainer_options",
        "seed",
        "max_epochs",
    }
    assert s.run_id.startswith("random_homl_mlp_iris_s0_")


def test_the_default_run_keeps_the_run_id_of_earlier_releases():
    """Runs recorded before problems existed resume: the default command maps to the same folder."""
    from hydra import compose, initialize_config_module
    from omegaconf import OmegaConf

    with initialize_config_module("harness.conf", version_base="1.3"):
        cfg = OmegaConf.to_container(compose("config"), resolve=True)
    assert settings_from_config(cfg).run_id == "random_mlp_digits_s0_0e62109a"
