"""Neuroevolution trainer: genome <-> weights, vectorised fitness == Keras, determinism, CLI rows."""

from __future__ import annotations

import json
import random
import subprocess
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import yaml

from harness.errors import ConfigError, NotSupportedError, UnknownNameError
from harness.neuroevolution import resolve_options
from harness.trainers import resolve_trainer

TRAINER_CONF = Path(__file__).parents[1] / "conf" / "trainer"


def test_seed000_preset_pins_seed_000_settings():
    cfg = yaml.safe_load((TRAINER_CONF / "neuroevolution_seed000.yaml").read_text())
    params = cfg["params"]
    seed000 = {
        "population": 25,
        "cxpb": 0.6,
        "mutpb": 0.3,
        "tournsize": 5,
        "crossover": "mean",
        "mut_sigma": 0.1,
        "mut_indpb": 0.25,
        "init": "uniform",
        "init_low": -1.0,
        "init_high": 1.0,
    }
    assert {k: params.get(k) for k in seed000} == seed000
    assert resolve_options(params)["population"] == 25  # every key is a trainer option


def test_the_neuroevolution_presets_are_recorded_apart(tmp_path):
    """`-m trainer=neuroevolution,neuroevolution_seed000` compares two algorithms: each preset
    keeps its own name in rows, report and run identity, and both run the same trainer."""
    from hydra import compose, initialize_config_module
    from omegaconf import OmegaConf

    from harness.runner import Runner, settings_from_config
    from harness.trainers import get_trainer

    settings = {}
    for preset in ("neuroevolution", "neuroevolution_seed000"):
        with initialize_config_module("harness.conf", version_base="1.3"):
            cfg = compose("config", overrides=[f"trainer={preset}", "dataset=digits", "search_space=homl_mlp"])
        plain = {**OmegaConf.to_container(cfg, resolve=True), "results_dir": str(tmp_path), "progress": False}
        settings[preset] = settings_from_config(plain)
    default, seed000 = settings["neuroevolution"], settings["neuroevolution_seed000"]
    assert (default.trainer, seed000.trainer) == ("neuroevolution", "neuroevolution_seed000")
    assert default.trainer_kind == seed000.trainer_kind == "neuroevolution"
    assert default.run_id != seed000.run_id
    assert "trainer_kind" not in default.identity()  # unchanged identity, so old runs still resume
    problem = Runner(seed000).problem  # what the workers evaluate with
    assert get_trainer(problem.trainer_kind) is get_trainer("neuroevolution")
    with pytest.raises(UnknownNameError, match="unknown trainer kind 'neuroevolutoin'"):
        resolve_trainer({"name": "mine", "kind": "neuroevolutoin"})


def _composed(*overrides: str) -> dict:
    from hydra import compose, initialize_config_module
    from omegaconf import OmegaConf

    with initialize_config_module("harness.conf", version_base="1.3"):
        return OmegaConf.to_container(compose("config", overrides=list(overrides)), resolve=True)


def test_the_neuroevolution_presets_default_to_a_space_they_train_well_bounded_by_generations():
    """`harness trainer=neuroevolution` alone evolves the small `ne_mlp` nets (the `mlp` default
    space's are too large for the GA: issue #15), for a number of generations, never a wall-clock
    deadline that would make the rows depend on the machine's load; `search_space=` still wins."""
    cfg = _composed("trainer=neuroevolution")
    assert cfg["search_space"]["name"] == "ne_mlp" and "epochs" not in cfg["search_space"]["params"]
    options = resolve_options(cfg["trainer"]["params"])
    assert options["seconds"] is None and options["cpu_seconds"] is None and options["blas_threads"] == 1
    # 20 epochs x 50 generations per trial; ne_mlp is ga_mlp's architectures without its GA settings
    assert cfg["search_space"]["fidelity"]["max"] * options["generations_per_epoch"] == 1000
    ga = _composed("search_space=ga_mlp", "trainer=neuroevolution")["search_space"]["params"]
    assert cfg["search_space"]["params"] == {k: v for k, v in ga.items() if not k.startswith("trainer__")}
    assert _composed("trainer=neuroevolution_seed000")["search_space"]["name"] == "ne_mlp"  # compared on one space
    for overrides, space in (
        (["search_space=mlp", "trainer=neuroevolution"], "mlp"),
        (["trainer=neuroevolution", "search_space=mlp"], "mlp"),
        (["trainer=neuroevolution_seed000", "search_space=homl_mlp"], "homl_mlp"),
    ):
        assert _composed(*overrides)["search_space"]["name"] == space, overrides
    assert _composed()["search_space"]["name"] == "mlp"  # backprop keeps the default space
    assert _composed("preset=seed000")["search_space"]["name"] == "seed000_mlp"  # a preset's own space wins


keras = pytest.importorskip("keras")

from harness.neuroevolution import (  # noqa: E402  (after the Keras skip)
    describe,
    evaluate_with_keras,
    genome_from_weights,
    population_forward,
    population_scores,
    train_neuroevolution,
    weights_from_genome,
)


def mlp(input_shape=(8, 8, 1), hidden=(16, 8), activations=("relu", "tanh"), n_out=10, out="softmax", dropout=False):
    keras.utils.set_random_seed(0)
    inputs = keras.Input(shape=input_shape)
    x = keras.layers.Flatten()(inputs)
    for units, act in zip(hidden, activations):
        x = keras.layers.Dense(units, activation=act)(x)
    if dropout:
        x = keras.layers.Dropout(0.25)(x)
    return keras.Model(inputs, keras.layers.Dense(n_out, activation=out)(x))


@pytest.fixture(scope="module")
def digits():
    from harness.datasets import load_dataset

    return load_dataset("digits", seed=0)


def test_genome_weights_round_trip():
    model = mlp(dropout=True)
    spec = describe(model)
    weights = model.get_weights()
    genome = genome_from_weights(weights)
    assert genome.shape == (spec.n_genes,) == (sum(w.size for w in weights),)
    back = weights_from_genome(genome, spec.weight_shapes)
    assert [w.shape for w in back] == [w.shape for w in weights]
    assert all(np.array_equal(a, b) for a, b in zip(back, weights))
    g2 = np.random.default_rng(1).normal(size=spec.n_genes).astype(np.float32)
    model.set_weights(weights_from_genome(g2, spec.weight_shapes))
    assert np.array_equal(genome_from_weights(model.get_weights()), g2)
    with pytest.raises(ValueError, match="genes"):
        weights_from_genome(g2[:-1], spec.weight_shapes)


def test_unsupported_layers_are_named():
    keras.utils.set_random_seed(0)
    inputs = keras.Input(shape=(8, 8, 1))
    x = keras.layers.Conv2D(4, 3)(inputs)
    x = keras.layers.Flatten()(x)
    model = keras.Model(inputs, keras.layers.Dense(10, activation="softmax")(x))
    with pytest.raises(NotSupportedError, match="Conv2D"):
        describe(model)


def test_options_are_validated():
    with pytest.raises(ConfigError, match="unknown neuroevolution option"):
        resolve_options({"populaton": 10})
    with pytest.raises(ConfigError, match="crossover"):
        resolve_options({"crossover": "blend_mean"})
    with pytest.raises(ConfigError, match="elitism"):
        resolve_options({"elitism": 3, "hof_size": 1})


@pytest.mark.slow
@pytest.mark.parametrize("out", ["softmax", "sigmoid"])
def test_vectorised_fitness_matches_keras(digits, out):
    model = mlp(out=out, dropout=True)
    spec = describe(model)
    genomes = np.random.default_rng(3).uniform(-1, 1, (4, spec.n_genes)).astype(np.float32)
    x, y = digits.x_val[:100], digits.y_val[:100]
    outputs = population_forward(genomes, x, spec)
    for genome, o in zip(genomes, outputs):
        model.set_weights(weights_from_genome(genome, spec.weight_shapes))
        np.testing.assert_allclose(o, model.predict(x, verbose=0), rtol=1e-4, atol=1e-5)
    _, acc = population_scores(genomes, x, y, spec)
    np.testing.assert_array_equal(acc, evaluate_with_keras(model, genomes, x, y, spec))
    if out == "softmax":  # the log-likelihood fitness is Keras's own loss, per individual
        loss, _ = population_scores(genomes, x, y, spec)
        ce = keras.losses.SparseCategoricalCrossentropy()
        for genome, value in zip(genomes, loss):
            model.set_weights(weights_from_genome(genome, spec.weight_shapes))
            assert value == pytest.approx(float(ce(y, model.predict(x, verbose=0))), rel=1e-4)


def _train(digits, seed, model=None, **options):
    model = model or mlp(hidden=(16,), activations=("relu",))
    opts = {"population": 12, "generations_per_epoch": 3, **options}
    hist = train_neuroevolution(
        model, digits, epochs=2, initial_epoch=0, batch_size=32, seed=seed, options=opts, on_epoch=lambda e, m: False
    )
    return hist, genome_from_weights(model.get_weights())


@pytest.mark.slow
def test_deterministic_by_seed_and_private_random(digits):
    model = mlp(hidden=(16,), activations=("relu",))  # (seeds the global streams itself)
    random.seed(123)
    np.random.seed(123)
    before = (random.random(), np.random.random())
    random.seed(123)
    np.random.seed(123)
    h1, g1 = _train(digits, 7, model, crossover="blend", fitness="log_likelihood", elitism=1, fitness_batch=200)
    assert (random.random(), np.random.random()) == before  # the caller's random streams untouched
    h2, g2 = _train(digits, 7, crossover="blend", fitness="log_likelihood", elitism=1, fitness_batch=200)
    h3, g3 = _train(digits, 8, crossover="blend", fitness="log_likelihood", elitism=1, fitness_batch=200)
    strip = lambda h: [{k: v for k, v in d.items() if k != "seconds"} for d in h]  # noqa: E731
    assert strip(h1) == strip(h2) and np.array_equal(g1, g2)
    assert not np.array_equal(g1, g3)


@pytest.mark.slow
def test_history_budget_and_final_weights(digits):
    stops = []
    hist, genome = _train(digits, 0, crossover="mean")  # seed 000's operators
    assert [h["epoch"] for h in hist] == [1, 2] and hist[-1]["generation"] == 6
    gens = [g for h in hist for g in h["generations"]]
    assert [g["generation"] for g in gens] == list(range(1, 7))
    assert all({"best", "mean", "std", "val_accuracy"} <= set(g) for g in gens)
    assert all(np.isfinite(h["loss"]) for h in hist)
    # The model holds the hall-of-fame weights: its accuracy is the recorded best's.
    spec = describe(mlp(hidden=(16,), activations=("relu",)))
    _, acc = population_scores(genome[None], digits.x_val, digits.y_val, spec)
    assert acc[0] == pytest.approx(hist[-1]["val_accuracy"])
    # on_epoch's stop and `generations` override the epochs mapping
    model = mlp(hidden=(16,), activations=("relu",))
    hist = train_neuroevolution(
        model,
        digits,
        epochs=5,
        initial_epoch=0,
        batch_size=32,
        seed=0,
        options={"population": 6, "generations_per_epoch": 2},
        on_epoch=lambda e, m: stops.append(e) or e == 2,
    )
    assert len(hist) == 2 and stops == [1, 2]
    hist = train_neuroevolution(
        model,
        digits,
        epochs=5,
        initial_epoch=0,
        batch_size=32,
        seed=0,
        options={"population": 6, "generations": 3, "generations_per_epoch": 2},
        on_epoch=lambda e, m: False,
    )
    assert [h["generation"] for h in hist] == [2, 3]


@pytest.mark.slow
def test_regression_fitness_is_mse():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(200, 5)).astype(np.float32)
    y = (x @ rng.normal(size=5)).astype(np.float32)
    data = SimpleNamespace(
        task="regression", x_train=x[:150], y_train=y[:150], x_val=x[150:], y_val=y[150:], y_mean=0.0, y_std=1.0
    )
    model = mlp(input_shape=(5,), hidden=(8,), activations=("relu",), n_out=1, out="linear")
    hist = train_neuroevolution(
        model,
        data,
        epochs=2,
        initial_epoch=0,
        batch_size=32,
        seed=0,
        options={"population": 20, "generations_per_epoch": 5, "init": "glorot", "crossover": "uniform", "mut_sigma": 0.05},
        on_epoch=lambda e, m: False,
    )
    assert "val_accuracy" not in hist[-1] and hist[-1]["val_loss"] > 0
    pred = model.predict(x[150:], verbose=0)[:, 0]
    assert float(np.mean((pred - y[150:]) ** 2)) == pytest.approx(hist[-1]["val_loss"], rel=1e-4)


@pytest.mark.slow
def test_cli_writes_parquet_rows(tmp_path, harness_cmd, subprocess_env):
    from harness.results import read_results

    cmd = harness_cmd + [
        "trainer=neuroevolution",
        "dataset=digits",
        "search_space=homl_mlp",
        "budget.trials=2",
        "budget.max_epochs=2",
        "trainer.params.population=8",
        "trainer.params.generations_per_epoch=2",
        "search_space.params.n_hidden.high=1",
        "search_space.params.n_neurons.high=32",
        f"results_dir={tmp_path}",
        "progress=false",
    ]
    proc = subprocess.run(cmd, capture_output=True, text=True, env=subprocess_env, cwd=tmp_path, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    df = read_results(tmp_path)
    assert len(df) == 2 and (df.status == "ok").all()
    assert df["metric.val_accuracy"].notna().all() and df.test_objective.notna().all()
    hist = json.loads(df.history.iloc[0])
    assert len(hist) == 2 and len(hist[0]["generations"]) == 2
    assert (df.trainer == "neuroevolution").all()


def _ga_settings(tmp_path, *overrides: str):
    from hydra import compose, initialize_config_module
    from omegaconf import OmegaConf

    from harness.runner import settings_from_config

    with initialize_config_module("harness.conf", version_base="1.3"):
        cfg = compose("config", overrides=["search_space=ga_mlp", *overrides])
    plain = {**OmegaConf.to_container(cfg, resolve=True), "results_dir": str(tmp_path), "progress": False}
    return settings_from_config(plain)


def test_a_space_can_tune_the_trainer_and_bad_trainer_params_are_config_errors(tmp_path):
    from harness.trainers import split_params

    assert split_params({"n_hidden": 1, "trainer__mutpb": 0.5}) == ({"n_hidden": 1}, {"mutpb": 0.5})
    s = _ga_settings(tmp_path, "trainer=neuroevolution")
    assert {"trainer__mutpb", "trainer__population"} <= set(s.space.names)
    with pytest.raises(ConfigError, match="trainer backprop takes no options"):
        _ga_settings(tmp_path, "trainer=backprop")
    with pytest.raises(ConfigError, match=r"'ga_mlp'.*'trainer__mutpb': 1.5.*not a valid setting.*probability"):
        _ga_settings(tmp_path, "trainer=neuroevolution", "search_space.params.trainer__mutpb.high=1.5")
    # Options constrain each other: the preset's 2 elites need a population of at least 3.
    with pytest.raises(ConfigError, match=r"'trainer__population': 2.*elitism"):
        _ga_settings(tmp_path, "trainer=neuroevolution", "search_space.params.trainer__population.choices=[2,50]")


@pytest.mark.slow
def test_trainer_params_searched_by_the_strategy_reach_the_ga(tmp_path, monkeypatch):
    import harness.neuroevolution as ne
    from harness.results import read_results
    from harness.runner import Runner

    seen, real = [], ne.train_neuroevolution

    def recording(model, data, **kw):
        seen.append(dict(kw["options"]))
        return real(model, data, **kw)

    monkeypatch.setattr(ne, "train_neuroevolution", recording)
    s = _ga_settings(
        tmp_path,
        "trainer=neuroevolution",
        "budget.trials=2",
        "budget.max_epochs=1",
        "worker.processes=false",
        "trainer.params.generations_per_epoch=2",
        "trainer.params.seconds=null",
    )
    Runner(s).run()
    df = read_results(tmp_path).sort_values("trial_id")
    assert len(seen) == 2 and (df.status == "ok").all()
    for options, (_, row) in zip(seen, df.iterrows()):
        assert options["population"] == row["param.trainer__population"]
        assert options["mutpb"] == row["param.trainer__mutpb"]
        assert options["crossover"] == row["param.trainer__crossover"]
        assert options["generations_per_epoch"] == 2  # the preset's options are kept underneath
        assert len(json.loads(row.history)[0]["generations"]) == 2


def _busy(n: int) -> list[subprocess.Popen]:
    """`n` processes spinning on the CPU: a loaded machine."""
    import sys

    return [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(n)]


def test_same_seed_same_rows_however_loaded_and_blas_single_threaded(digits):
    """Bounded by generations, a run is a function of its seed: the same on an idle machine and on
    one whose cores are all busy. The fitness pass runs with one BLAS thread (many small GEMMs,
    which a threaded BLAS slows down, badly under load); the caller's limits come back after."""
    from threadpoolctl import threadpool_info

    def blas_threads():
        return sorted({lib["num_threads"] for lib in threadpool_info() if lib["user_api"] == "blas"})

    before, inside = blas_threads(), []

    def run():
        model = mlp(hidden=(16, 8), activations=("relu", "relu"))
        hist = train_neuroevolution(
            model,
            digits,
            epochs=2,
            initial_epoch=0,
            batch_size=32,
            seed=3,
            options={"population": 8, "generations_per_epoch": 3},
            on_epoch=lambda e, m: inside.append(blas_threads()) or False,
        )
        return [{k: v for k, v in h.items() if k != "seconds"} for h in hist], genome_from_weights(model.get_weights())

    idle_hist, idle_genome = run()
    hogs = _busy(4)
    try:
        busy_hist, busy_genome = run()
    finally:
        for p in hogs:
            p.kill()
            p.wait()
    assert len(idle_hist) == 2 and idle_hist[-1]["generation"] == 6
    assert busy_hist == idle_hist and np.array_equal(busy_genome, idle_genome)
    if before:  # NumPy's BLAS is visible to threadpoolctl
        assert inside and all(t == [1] for t in inside) and blas_threads() == before


def test_a_large_genome_gets_one_note_per_process(digits, capsys, monkeypatch):
    import harness.neuroevolution as ne

    from harness.log import configure

    configure()  # as the commands and worker processes do: notes on stderr as `note: ...`
    monkeypatch.setattr(ne, "_NOTED", [])
    small = describe(mlp(hidden=(64, 64), activations=("relu", "relu")))  # ne_mlp's largest: 8,970
    assert small.n_genes == 8970 and ne.note_large_genome(small, 1000) is None
    big = mlp(hidden=(256, 128), activations=("relu", "relu"))  # 50,826 weights
    note = ne.note_large_genome(describe(big), 750)
    assert "50,826 weights" in note and "750 generations" in note and "search_space=ne_mlp" in note
    assert "\n" not in note
    for _ in range(2):
        train_neuroevolution(
            big,
            digits,
            epochs=1,
            initial_epoch=0,
            batch_size=32,
            seed=0,
            options={"population": 2, "generations": 1, "elitism": 0},
            on_epoch=lambda e, m: False,
        )
    assert capsys.readouterr().err.splitlines() == ["note: " + note.replace("750", "1")]
