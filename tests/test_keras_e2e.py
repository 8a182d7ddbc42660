"""Tiny real end-to-end runs (real TensorFlow/Keras training, no stubs) of the paths no other
test trains end to end: Hyperband's checkpointed promotions, Bayesian optimisation past its
random start-up, the genetic strategy, a regression dataset, the `cnn` and `nas_mlp` spaces,
neuroevolution and the GA-GAN. Each run is a few trials of 1-3 epochs on the bundled datasets.

Runs go through the runner in-process (`worker.processes=false`) so that TensorFlow is imported
once for the file, except Hyperband's, which uses the default worker processes: its
checkpoints must be handed from one trial to the next through the run folder, as in a real run.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd
import pytest

from harness.runner import Runner, settings_from_config

pytestmark = pytest.mark.slow

keras = pytest.importorskip("keras")


def compose(tmp_path, *overrides: str, edit: Callable[[dict[str, Any]], None] | None = None, in_process: bool = True) -> Any:
    """Settings of `harness <overrides>` writing under `tmp_path`, in-process unless told
    otherwise; `edit` changes the composed config (a plain dict) first, e.g. to narrow a search
    space's parameters."""
    from hydra import compose as hydra_compose, initialize_config_module
    from omegaconf import OmegaConf

    with initialize_config_module("harness.conf", version_base="1.3"):
        cfg = hydra_compose("config", overrides=[*(["worker.processes=false"] if in_process else []), *overrides])
    plain = {**OmegaConf.to_container(cfg, resolve=True), "results_dir": str(tmp_path), "progress": False}
    if edit is not None:
        edit(plain)
    return settings_from_config(plain)


def run(settings: Any) -> tuple[Runner, Any, pd.DataFrame]:
    runner = Runner(settings)
    summary = runner.run()
    df = pd.read_parquet(summary.run_dir / "trials.parquet").sort_values("trial_id").reset_index(drop=True)
    return runner, summary, df


def history(row: Any) -> list[dict[str, Any]]:
    return json.loads(row["history"])


def fixed(value: Any) -> dict[str, Any]:
    """A search-space parameter that can take only `value`."""
    return {"type": "categorical", "choices": [value]}


# -- 1. Hyperband: checkpoints, and promotions that continue their parent's weights -----------
def test_hyperband_promotion_resumes_its_parent_checkpoint_and_trains_only_the_missing_epochs(tmp_path):
    def narrow(cfg):
        p = cfg["search_space"]["params"]
        p["n_hidden"], p["n_neurons"], p["optimizer"] = fixed(1), fixed(32), fixed("adam")
        p["learning_rate"] = {"type": "float", "low": 3e-3, "high": 1e-2, "log": True}

    # budget.max_epochs=3, factor 3, one iteration: keras-tuner's first bracket trains three
    # configurations for 1 epoch, then promotes the best one to 3 epochs (trial 3).
    s = compose(
        tmp_path,
        "strategy=hyperband",
        "strategy.params.hyperband_iterations=1",
        "search_space=homl_mlp",
        "dataset=digits",
        "budget.trials=4",
        "budget.max_epochs=3",
        edit=narrow,
        in_process=False,
    )
    _, summary, df = run(s)
    assert summary.status == "finished" and (df.status == "ok").all(), df[["status", "error"]]
    checkpoints = summary.run_dir / "_artifacts" / "checkpoints"
    assert sorted(p.name for p in checkpoints.iterdir()) == [
        "trial_0_e1.weights.h5",
        "trial_1_e1.weights.h5",
        "trial_2_e1.weights.h5",
        "trial_3_e3.weights.h5",
    ]

    promoted = df[df.parent_trial_id.notna()]
    assert len(promoted) == 1
    child = promoted.iloc[0]
    parent = df[df.trial_id == child.parent_trial_id].iloc[0]
    first_rung = df[df.trial_id < 3]
    # keras-tuner promotes the best of the rung, with the same params
    assert parent.objective == first_rung.objective.max()
    assert json.loads(child.params) == json.loads(parent.params)
    assert (parent.budget, parent.budget_spent) == (1, 1)
    assert (child.budget, child.budget_spent) == (3, 2)  # 3 epochs in all, only the 2 missing trained
    child_h, parent_h = history(child), history(parent)
    assert [h["epoch"] for h in child_h] == [2, 3] and [h["epoch"] for h in parent_h] == [1]
    # It continues from the parent's weights: its first epoch starts where the parent ended,
    # far below the parent's own first epoch from random weights (the same params from scratch
    # give about the parent's loss), and is at least as accurate.
    assert child_h[0]["loss"] < 0.6 * parent_h[0]["loss"], (child_h, parent_h)
    assert child_h[0]["val_accuracy"] >= parent_h[0]["val_accuracy"] - 0.02
    assert child.objective >= parent.objective - 0.02


def test_a_promotion_continues_its_parent_optimizer_state_without_a_warning(tmp_path):
    import warnings

    from harness.datasets import load_dataset
    from harness.objective import KerasObjective
    from harness.space import load_space
    from harness.strategy import Suggestion

    objective = KerasObjective(load_space("homl_mlp"), load_dataset("iris", seed=0), seed=0, checkpoint_dir=tmp_path)
    params = {"n_hidden": 1, "n_neurons": 16, "learning_rate": 0.01, "optimizer": "adam"}
    assert objective(Suggestion(0, params, budget=1)).status.value == "ok"
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        child = objective(Suggestion(1, params, budget=2, resume_from=0))
    assert child.status.value == "ok" and child.epochs_trained == 1
    skipped = [str(w.message) for w in caught if "Skipping variable loading for optimizer" in str(w.message)]
    assert not skipped, skipped


# -- 2. Bayesian optimisation past its random start-up -------------------------------------
def test_bayesian_optimisation_runs_its_gaussian_process_phase_with_keras(tmp_path):
    def narrow(cfg):
        p = cfg["search_space"]["params"]
        p["n_hidden"] = {"type": "int", "low": 0, "high": 1}
        p["n_neurons"] = {"type": "int", "low": 16, "high": 32}

    s = compose(
        tmp_path,
        "strategy=bayesian",
        "++strategy.params.num_initial_points=2",
        "search_space=homl_mlp",
        "dataset=iris",
        "budget.trials=3",
        "budget.max_epochs=1",
        edit=narrow,
    )
    runner, summary, df = run(s)
    assert summary.status == "finished" and len(df) == 3 and (df.status == "ok").all()
    assert df.objective.between(0, 1).all() and df.test_objective.notna().all()
    for params in df.params:
        s.space.check(json.loads(params))
    # Trial 2 was suggested by the GP (one GP ask: each costs seconds on a busy 2-core machine):
    # the oracle had its 2 completed random points, and a random-only oracle with the same seed
    # suggests something else for it.
    from harness.strategies.bayesian import BayesianOptimization
    from harness.strategy import Observation

    oracle = runner.strategy.oracle
    assert oracle.num_initial_points == 2 < len(df) and sum(t.status == "COMPLETED" for t in oracle.trials.values()) == 3
    random_only = BayesianOptimization(runner.strategy.space, seed=s.seed, **{**s.strategy_params, "num_initial_points": 100})
    suggested = []
    for _, row in df.iterrows():
        (sug,) = random_only.ask(1)
        suggested.append(sug.params)
        random_only.tell(Observation(sug.trial_id, row.objective))
    rows = [json.loads(p) for p in df.params]
    assert suggested[:2] == rows[:2]  # the same random start-up
    assert suggested[2:] != rows[2:]


# -- 3. The genetic strategy: a second generation bred from the first ------------------------
def test_genetic_strategy_breeds_a_second_generation_of_keras_trials(tmp_path):
    def narrow(cfg):
        p = cfg["search_space"]["params"]
        p["n_hidden"] = {"type": "int", "low": 0, "high": 1}
        p["n_neurons"] = {"type": "int", "low": 16, "high": 32}

    # cxpb = mutpb = 1: every offspring differs from its parents, so each is a new trial.
    s = compose(
        tmp_path,
        "strategy=genetic",
        "strategy.params.population_size=3",
        "strategy.params.generations=1",
        "strategy.params.cxpb=1.0",
        "strategy.params.mutpb=1.0",
        "search_space=homl_mlp",
        "dataset=iris",
        "budget.trials=10",
        "budget.max_epochs=1",
        edit=narrow,
    )
    runner, summary, df = run(s)
    assert summary.stop_reason == "strategy 'genetic' finished"
    assert runner.strategy.generation == 1 and runner.strategy.finished
    # 3 founders, then the 2 bred offspring (the elite is kept, not re-evaluated)
    assert len(df) == 5 and (df.status == "ok").all()
    first = [json.loads(p) for p in df.params[:3]]
    second = [json.loads(p) for p in df.params[3:]]
    assert all(p not in first for p in second)
    assert df.objective.between(0, 1).all()


# -- 4. A regression dataset: RMSE in the target's units, minimised ----------------------------
def test_regression_on_diabetes_records_rmse_and_minimises_it(tmp_path):
    def narrow(cfg):
        p = cfg["search_space"]["params"]
        p["n_hidden"], p["n_neurons"], p["optimizer"] = fixed(1), fixed(16), fixed("adam")

    s = compose(
        tmp_path,
        "strategy=random",
        "search_space=homl_mlp",
        "dataset=diabetes",
        "budget.trials=3",
        "budget.max_epochs=2",
        edit=narrow,
    )
    _, summary, df = run(s)
    assert summary.status == "finished" and (df.status == "ok").all()
    assert (df.task == "regression").all() and (df.objective_name == "val_rmse").all()
    assert (df.objective_direction == "minimize").all()
    for col in ("metric.val_rmse", "metric.test_rmse", "objective", "test_objective"):
        assert np.isfinite(df[col]).all() and (df[col] > 0).all(), col
    assert (df.objective == df["metric.val_rmse"]).all() and (df.test_objective == df["metric.test_rmse"]).all()
    # In the target's units (disease progression, standard deviation ~77), not standardised ones.
    assert df.objective.between(20, 400).all()
    assert "metric.val_accuracy" not in df or df["metric.val_accuracy"].isna().all()
    # The best trial is the lowest RMSE, in the summary and in _run.json
    assert summary.best["objective"] == df.objective.min()
    status = json.loads((summary.run_dir / "_run.json").read_text())
    assert status["objective"]["direction"] == "minimize"
    assert status["best_trial_id"] == int(df.loc[df.objective.idxmin(), "trial_id"])


# -- 5. The cnn and nas_mlp spaces ----------------------------------------------------------
def test_cnn_space_builds_and_trains_on_8x8_digits(tmp_path):
    def narrow(cfg):
        p = cfg["search_space"]["params"]
        # three conv blocks: the deepest on 8x8 images (8 -> 4 -> 2 -> 1)
        p["layer_num"], p["first_layer_unit"] = fixed(3), fixed(16)
        p["k"] = {"type": "int", "low": 2, "high": 5}

    s = compose(
        tmp_path, "strategy=random", "search_space=cnn", "dataset=digits", "budget.trials=2", "budget.max_epochs=3", edit=narrow
    )
    _, summary, df = run(s)
    assert summary.status == "finished" and (df.status == "ok").all(), df.error.tolist()
    assert (df.search_space == "cnn").all() and (df["param.layer_num"] == 3).all()
    assert (df.budget == 3).all()
    assert (df.objective > 0.3).all(), df.objective.tolist()  # chance: 0.1
    from harness.search_spaces.cnn import build_cnn

    model = build_cnn(json.loads(df.params[0]), input_shape=(8, 8, 1), n_outputs=10, task="classification")
    convs = [layer for layer in model.layers if isinstance(layer, keras.layers.Conv2D)]
    assert [c.filters for c in convs] == [16, 32, 48]


def test_nas_mlp_builds_its_conditional_layers(tmp_path):
    def narrow(cfg):
        p = cfg["search_space"]["params"]
        for i, name in enumerate(("units_0", "units_1", "units_2")):  # one width each, conditions kept
            p[name] = {**fixed(16 * (i + 1)), **({"condition": p[name]["condition"]} if i else {})}
        p["activation"], p["dropout"], p["lr"] = fixed("relu"), fixed(False), fixed(0.01)

    # grid: every configuration once; num_layers 1 has units_0 only, 3 has units_0..2
    s = compose(
        tmp_path, "strategy=grid", "search_space=nas_mlp", "dataset=iris", "budget.trials=3", "budget.max_epochs=1", edit=narrow
    )
    _, summary, df = run(s)
    assert (df.status == "ok").all() and len(df) == 3
    from harness.search_spaces.mlp import build_nas_mlp

    seen = set()
    for _, row in df.iterrows():
        params = json.loads(row.params)
        n = params["num_layers"]
        seen.add(n)
        assert sorted(k for k in params if k.startswith("units_")) == [f"units_{i}" for i in range(n)]
        for i in range(3):
            assert pd.isna(row[f"param.units_{i}"]) == (i >= n)
        model = build_nas_mlp(params, input_shape=(4,), n_outputs=3, task="classification")
        dense = [layer for layer in model.layers if isinstance(layer, keras.layers.Dense)]
        assert [d.units for d in dense] == [params[f"units_{i}"] for i in range(n)] + [3]
    assert seen == {1, 2, 3}


# -- 6. Neuroevolution improves the weights it evolves ---------------------------------------
def test_neuroevolution_improves_on_its_first_generation(tmp_path):
    def narrow(cfg):
        p = cfg["search_space"]["params"]
        p["n_hidden"], p["n_neurons"] = fixed(1), fixed(16)
        p["trainer__population"], p["trainer__crossover"] = fixed(30), fixed("uniform")
        p["trainer__mutpb"], p["trainer__mut_sigma"] = fixed(0.9), fixed(0.05)

    # 3 epochs x 10 generations, bounded by generations only (no wall-clock cap): deterministic
    s = compose(
        tmp_path,
        "trainer=neuroevolution",
        "trainer.params.seconds=null",
        "trainer.params.generations_per_epoch=10",
        "search_space=ga_mlp",
        "dataset=digits",
        "budget.trials=1",
        "budget.max_epochs=3",
        edit=narrow,
    )
    _, summary, df = run(s)
    row = df.iloc[0]
    assert row.status == "ok" and row.trainer == "neuroevolution" and row.budget == 3
    epochs = history(row)
    generations = [g for e in epochs for g in e["generations"]]
    assert [e["epoch"] for e in epochs] == [1, 2, 3] and len(generations) == 30
    first = generations[0]["val_accuracy"]
    # The trained model is the hall of fame's: the row's objective is the last recorded one.
    assert row.objective == pytest.approx(epochs[-1]["val_accuracy"])
    assert row.objective > 0.25, row.objective  # chance on digits: 0.1
    assert row.objective >= first + 0.1, (first, row.objective)
    assert row.test_objective > 0.2


# -- 7. The GA-GAN: deterministic by seed, and better than its random generators --------------
def test_ga_gan_is_deterministic_by_seed_and_improves_from_its_start(tmp_path):
    from threadpoolctl import threadpool_limits

    from harness.gan import GanSettings, run_gan
    from harness.results import read_results

    tiny = {"population": 40, "generations": 50, "samples_per_agent": 4, "score_samples": 200, "d_batch": 16}

    def gan(folder, **changes):
        # One BLAS thread: on a busy 2-core machine OpenBLAS's spinning threads make the quality
        # scorer's LogisticRegression fit ~50x slower (5 s instead of 0.1 s; the same numbers).
        with threadpool_limits(1):
            result = run_gan(GanSettings(results_dir=str(tmp_path / folder), **{**tiny, **changes}), verbose=False)
        df = read_results(tmp_path / folder).sort_values("trial_id").reset_index(drop=True)
        steps = [{k: v for k, v in history(r)[0].items() if k != "elapsed_seconds"} for _, r in df.iterrows()]
        return result, df, steps

    a, df, steps = gan("a")
    b, _, again = gan("b")
    assert len(steps) == 51 and (df.status == "ok").all()
    assert steps == again  # every generation's scores, fitness and discriminator metrics
    np.testing.assert_array_equal(a.best_genome, b.best_genome)
    _, _, other = gan("c", seed=1, generations=1)
    assert other[0]["frechet_distance"] != steps[0]["frechet_distance"]  # the seed matters

    fd = [s["frechet_distance"] for s in steps]
    score = [s["classifier_score"] for s in steps]
    assert list(df.objective) == fd and (df.objective_direction == "minimize").all()
    assert fd[-1] < 0.85 * fd[0], fd  # generation 0 is the random initial population
    assert score[-1] > score[0] + 0.1, score
    assert int(df.loc[df.objective.idxmin(), "trial_id"]) > 0


# -- 8. Memory: one process training trial after trial keeps a bounded heap --------------------
def test_trials_in_one_process_leave_no_training_graph_behind(tmp_path):
    import gc

    from harness.strategy import Suggestion

    # Keras's optimizer registers a gradient function in TensorFlow's global registry for every
    # traced train step; without the objective's clean-up each trial kept its whole graph
    # (~10,000 Python objects, ~6 MB) and a worker grew until recycled.
    s = compose(tmp_path, "strategy=random", "search_space=mlp", "dataset=digits", "budget.max_epochs=1")
    problem = s.problem
    problem.setup()

    def train(trial_id: int) -> int:
        params = {"layer_num": 2, "first_layer_unit": 32, "batch_size": 128, "epochs": 1}
        assert problem.evaluate(Suggestion(trial_id, params)).status.value == "ok"
        gc.collect()
        return len(gc.get_objects())

    train(0), train(1)  # first traces and lazy imports
    settled = train(2)
    after = [train(t) for t in (3, 4, 5)]
    assert max(after) - settled < 2_000, (settled, after)  # the leak added ~10,000 per trial
