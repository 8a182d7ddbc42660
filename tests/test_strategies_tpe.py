"""TPE wraps Optuna: with the same seed and observations it suggests what Optuna itself does."""

from __future__ import annotations

import math
from pathlib import Path

import optuna
import pytest
import yaml

from harness.errors import ConfigError
from harness.registry import make_strategy
from harness.space import load_space
from harness.strategy import Observation, TrialStatus
from harness.testing import toy_space, toy_value
from harness.strategies.tpe import TPE


def hand_written_optuna(space, seed, n, **sampler_options):
    """The loop a user would write with Optuna's ask/tell API and define-by-run conditionals."""
    study = optuna.create_study(direction="maximize", sampler=optuna.samplers.TPESampler(seed=seed, **sampler_options))
    out = []
    for i in range(n):
        trial = study.ask()
        params = {}
        for p in space.params:
            if p.condition is not None and not p.condition.holds(params):
                continue
            if p.type == "int":
                params[p.name] = trial.suggest_int(p.name, p.low, p.high, step=p.step, log=p.log)
            elif p.type == "float":
                params[p.name] = trial.suggest_float(p.name, p.low, p.high, log=p.log)
            elif p.type == "categorical":
                params[p.name] = trial.suggest_categorical(p.name, list(p.choices))
            else:
                params[p.name] = trial.suggest_categorical(p.name, [False, True])
        out.append(params)
        if i % 5 == 2:
            study.tell(trial, state=optuna.trial.TrialState.FAIL)
        else:
            study.tell(trial, toy_value(space, params))
    return out


def via_harness(space, seed, n, **options):
    strategy = TPE(space, seed=seed, **options)
    out = []
    for i in range(n):
        (s,) = strategy.ask(1)
        out.append(s.params)
        if i % 5 == 2:
            strategy.tell(Observation(s.trial_id, math.nan, TrialStatus.FAILED))
        else:
            strategy.tell(Observation(s.trial_id, toy_value(space, s.params)))
    return out


@pytest.mark.parametrize("space", [toy_space(), load_space("mlp"), load_space("nas_mlp")], ids=lambda s: s.name)
@pytest.mark.parametrize(
    "options",
    [{"n_startup_trials": 5}, {"n_startup_trials": 4, "multivariate": True, "group": True}],
    ids=["default", "multivariate"],
)
def test_same_suggestions_as_optuna_directly(space, options):
    if options.get("multivariate"):  # Optuna flags multivariate/group as experimental
        with pytest.warns(optuna.exceptions.ExperimentalWarning):
            expected = hand_written_optuna(space, 42, 20, **options)
            got = via_harness(space, 42, 20, **options)
    else:
        expected = hand_written_optuna(space, 42, 20, **options)
        got = via_harness(space, 42, 20, **options)
    assert got == expected


def test_shipped_config_is_seed_002s_independent_tpe():
    # Optuna 5 defaults to multivariate TPE with constant liar; seed 002's TPESampler(seed=42)
    # (an older Optuna) was independent TPE without it, which conf/strategy/tpe.yaml pins.
    cfg = yaml.safe_load((Path(__file__).parents[1] / "conf" / "strategy" / "tpe.yaml").read_text())
    assert cfg["params"] == {"multivariate": False, "constant_liar": False}
    space = load_space("homl_mlp")
    assert via_harness(space, 42, 15, **cfg["params"]) == hand_written_optuna(
        space, 42, 15, multivariate=False, constant_liar=False
    )


def test_unknown_option_is_a_config_error_naming_it():
    with pytest.raises(ConfigError, match="n_startup_trialz"):
        make_strategy("tpe", load_space("mlp"), seed=0, n_startup_trialz=3)


@pytest.mark.parametrize(
    "option, value, phrase",
    [
        ("n_startup_trials", -3, "must be >= 0, but got -3"),
        ("n_startup_trials", 2.5, "must be an integer"),
        ("multivariate", "maybe", "must be true or false, but got 'maybe'"),
        ("constant_liar", 1, "must be true or false"),
    ],
)
def test_option_values_optuna_would_accept_silently_are_refused(option, value, phrase):
    # TPESampler itself runs with n_startup_trials=-3 or multivariate="maybe" (as nonsense).
    with pytest.raises(ConfigError, match=phrase):
        make_strategy("tpe", load_space("mlp"), seed=0, **{option: value})
    make_strategy("tpe", load_space("mlp"), seed=0, multivariate=None, n_startup_trials=0)  # valid


def test_pruned_and_failed_map_to_optuna_states():
    strategy = TPE(load_space("homl_mlp"), seed=0)
    a, b, c = strategy.ask(3)
    strategy.tell(
        [
            Observation(a.trial_id, 0.5, TrialStatus.PRUNED),
            Observation(b.trial_id, 0.7, TrialStatus.FAILED),
            Observation(c.trial_id, 0.9),
        ]
    )
    states = [t.state for t in strategy.study.trials]
    assert states == [optuna.trial.TrialState.PRUNED, optuna.trial.TrialState.FAIL, optuna.trial.TrialState.COMPLETE]


def test_median_pruner_stops_a_bad_trial():
    strategy = TPE(load_space("homl_mlp"), seed=0, pruner={"name": "median", "n_startup_trials": 2, "n_warmup_steps": 0})
    for _ in range(3):  # three good finished trials with intermediate values
        (s,) = strategy.ask(1)
        for epoch in range(1, 4):
            assert strategy.report(s.trial_id, epoch, 0.9) is False
        strategy.tell(Observation(s.trial_id, 0.9))
    (bad,) = strategy.ask(1)
    assert strategy.report(bad.trial_id, 1, 0.1) is True


def test_unknown_pruner_is_rejected():
    with pytest.raises(ConfigError, match="pruner"):
        make_strategy("tpe", load_space("mlp"), seed=0, pruner="medain")
