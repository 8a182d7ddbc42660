"""The seed documents' own experiments as presets (`harness preset=<name>`): each composes the
seed's setup, and runs on its bundled stand-in when the seed's dataset is not cached."""

from __future__ import annotations

import json
import subprocess

import numpy as np
import pytest
from hydra import compose, initialize_config_module
from omegaconf import OmegaConf

from harness.cli import config_options
from harness.errors import ConfigError
from harness.log import configure
from harness.settings import settings_from_config, with_stand_in

# What each seed document ran (../shared/seeds/DIGEST.md), as the composed config must say it.
SEEDS = {
    "seed000": {
        "strategy.name": "random",
        "search_space.name": "seed000_mlp",
        "dataset.name": "mnist",
        "trainer.name": "neuroevolution_seed000",
        "trainer.params.population": 25,
        "trainer.params.cxpb": 0.6,
        "trainer.params.mutpb": 0.3,
        "trainer.params.tournsize": 5,
        "trainer.params.mut_sigma": 0.1,
        "trainer.params.generations_per_epoch": 10,
        "seed": 64,
        "budget.trials": 1,
    },
    "seed002_mlp": {
        "strategy.name": "tpe",
        "strategy.params.multivariate": False,
        "seed": 42,
        "search_space.name": "mlp",
        "dataset.name": "mnist",
        "dataset.split.val": 0.1,
        "budget.trials": 10,
        "search_space.params.epochs.high": 50,
        "search_space.params.batch_size.choices": [32, 64, 128],
    },
    "seed002_cnn": {
        "strategy.name": "tpe",
        "seed": 42,
        "search_space.name": "cnn",
        "dataset.name": "mnist",
        "budget.trials": 10,
        "search_space.fixed.batch_size": 128,
    },
    "seed003_random": {
        "strategy.name": "kt_random",
        "seed": 42,
        "search_space.name": "homl_mlp",
        "dataset.name": "fashion_mnist",
        "dataset.split.val": 0.0833,
        "budget.trials": 5,
        "search_space.fidelity.max": 10,
    },
    "seed003_hyperband": {
        "strategy.name": "hyperband",
        "strategy.params.factor": 3,
        "strategy.params.hyperband_iterations": 2,
        "strategy.params.max_epochs": 10,
        "trainer.params.early_stopping_patience": 2,
        "seed": 42,
        "dataset.name": "fashion_mnist",
    },
    "seed003_bayesian": {
        "strategy.name": "bayesian",
        "strategy.params.alpha": 1e-4,
        "strategy.params.beta": 2.6,
        "seed": 42,
        "budget.trials": 10,
        "dataset.name": "fashion_mnist",
    },
    "seed004": {
        "strategy.name": "kt_random",
        "search_space.name": "nas_mlp",
        "dataset.name": "mnist",
        "dataset.split.val": 0.1667,
        "budget.trials": 3,
        "budget.max_epochs": 2,
        "problem.executions_per_trial": 2,
        "refit.enabled": True,
        "refit.budget": 1,
    },
}


def composed(*overrides: str) -> dict:
    with initialize_config_module("harness.conf", version_base="1.3"):
        return OmegaConf.to_container(compose("config", overrides=list(overrides)), resolve=True)


def test_every_preset_is_listed_and_composes_its_seeds_setup():
    assert config_options("preset") == sorted(SEEDS)
    for name, facts in SEEDS.items():
        cfg = OmegaConf.create(composed(f"preset={name}"))
        got = {key: OmegaConf.select(cfg, key) for key in facts}
        got = {k: OmegaConf.to_container(v) if OmegaConf.is_config(v) else v for k, v in got.items()}
        assert got == facts, name
        assert cfg.experiment == ("seed003" if name.startswith("seed003") else name)  # seed 003's three tuners share one
        assert cfg.stand_in == "digits"


def test_command_line_overrides_win_over_a_preset():
    cfg = composed("preset=seed002_mlp", "search_space=cnn", "budget.trials=2", "seed=0")
    assert cfg["search_space"]["name"] == "cnn" and cfg["budget"]["trials"] == 2 and cfg["seed"] == 0
    assert cfg["strategy"]["name"] == "tpe"


def test_the_stand_in_replaces_a_dataset_that_is_not_cached_and_says_so(tmp_path, capsys):
    cfg = composed("preset=seed002_mlp", f"dataset.cache_dir={tmp_path}")
    configure()  # what the commands do: diagnostics as `warning:` lines on stderr
    swapped = with_stand_in(cfg)
    assert swapped["dataset"]["name"] == "digits" and swapped["dataset"]["split"] == {"val": 0.2, "test": 0.2}
    err = capsys.readouterr().err
    assert "warning: dataset 'mnist' is not cached" in err and str(tmp_path / "mnist.npz") in err
    assert "stand_in=null" in err
    settings = settings_from_config({**cfg, "results_dir": str(tmp_path)})
    assert settings.problem.instance == "mlp_digits" and settings.experiment == "seed002_mlp"


def test_a_cached_dataset_is_used_as_the_seed_used_it(tmp_path):
    # A small file in Keras's real mnist.npz layout: the preset then runs on MNIST itself.
    rng = np.random.default_rng(0)
    np.savez(
        tmp_path / "mnist.npz",
        x_train=rng.integers(0, 255, (200, 28, 28), dtype=np.uint8),
        y_train=np.arange(200) % 10,
        x_test=rng.integers(0, 255, (50, 28, 28), dtype=np.uint8),
        y_test=np.arange(50) % 10,
    )
    cfg = composed("preset=seed002_mlp", f"dataset.cache_dir={tmp_path}")
    assert with_stand_in(cfg) is cfg
    assert settings_from_config({**cfg, "results_dir": str(tmp_path)}).problem.instance == "mlp_mnist"


def test_without_a_stand_in_a_missing_dataset_still_stops_with_one_error(tmp_path):
    cfg = composed("preset=seed002_mlp", f"dataset.cache_dir={tmp_path}", "stand_in=null")
    assert with_stand_in(cfg) is cfg
    with pytest.raises(ConfigError, match="stand_in must be a bundled dataset"):
        with_stand_in({**cfg, "stand_in": "imagenet"})


@pytest.mark.slow
def test_seed004_runs_by_name_on_its_stand_in(tmp_path, harness_cmd, subprocess_env):
    env = {**subprocess_env, "HARNESS_DATA_DIR": str(tmp_path / "empty")}
    proc = subprocess.run(
        [*harness_cmd, "preset=seed004", "budget.trials=2", "progress=false", f"results_dir={tmp_path}"],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "running on its stand-in 'digits'" in proc.stderr
    (run_file,) = tmp_path.glob("seed004/kt_random_nas_mlp_digits_*/_run.json")
    status = json.loads(run_file.read_text())
    assert status["refit"]["status"] == "ok" and status["refit"]["budget"] == 1
    assert status["identity"]["executions_per_trial"] == 2
    assert "refit of trial" in proc.stdout and "(1 epoch)" in proc.stdout


def test_a_misspelt_key_after_a_preset_is_still_refused(harness_cmd, subprocess_env):
    proc = subprocess.run(
        [*harness_cmd, "preset=seed004", "budget.trails=3"], capture_output=True, text=True, env=subprocess_env, timeout=120
    )
    assert proc.returncode == 2 and "unknown config key 'budget.trails'" in proc.stderr
    assert "did you mean budget.trials" in proc.stderr
