"""Contract tests of the first plugin, random search (the conformance suite covers all plugins)."""

from __future__ import annotations

import pickle
import sys
import subprocess

import pytest

from harness.errors import UnknownNameError
from harness.registry import available_strategies, make_strategy
from harness.space import load_space
from harness.strategy import Observation, TrialStatus


def trajectory(seed, space="nas_mlp", n=20):
    strategy = make_strategy("random", load_space(space), seed=seed)
    return [s.params for s in strategy.ask(n)]


def test_random_is_registered_and_unknown_names_list_installed_ones():
    assert "random" in available_strategies()
    with pytest.raises(UnknownNameError) as err:
        make_strategy("randmo", load_space("mlp"), seed=0)
    assert "unknown strategy 'randmo'; installed:" in str(err.value) and "random" in str(err.value)


def test_same_seed_same_trajectory_other_seed_different():
    assert trajectory(3) == trajectory(3)
    assert trajectory(3) != trajectory(4)


def test_suggestions_are_valid_with_conditionals_only_when_active():
    space = load_space("nas_mlp")
    strategy = make_strategy("random", space, seed=0)
    suggestions = strategy.ask(50)
    assert len({s.trial_id for s in suggestions}) == 50
    for s in suggestions:
        space.check(s.params)  # bounds, native types, exactly the active params
        assert ("units_2" in s.params) == (s.params["num_layers"] == 3)


def test_tell_accepts_failures_and_nan_and_pickles_mid_run():
    strategy = make_strategy("random", load_space("mlp"), seed=1)
    a, b = strategy.ask(2)
    strategy.tell(
        [Observation(a.trial_id, float("nan"), TrialStatus.FAILED), Observation(b.trial_id, 0.5, TrialStatus.OK, budget_used=5)]
    )
    clone = pickle.loads(pickle.dumps(strategy))
    assert [s.params for s in clone.ask(5)] == [s.params for s in strategy.ask(5)]


def test_max_trials_finishes_and_ask_respects_n():
    strategy = make_strategy("random", load_space("mlp"), seed=0, max_trials=3)
    first = strategy.ask(2)
    assert len(first) == 2 and not strategy.finished
    assert len(strategy.ask(5)) == 1  # only one of the three left
    strategy.tell([Observation(s.trial_id, 0.1) for s in first])
    strategy.tell(Observation(2, 0.2))
    assert strategy.finished


def test_importing_the_registry_and_plugin_does_not_import_tensorflow():
    code = (
        "import sys; from harness.registry import load_strategy_class; "
        "load_strategy_class('random'); import harness.runner, harness.cli; "
        "bad = [m for m in ('tensorflow', 'keras') if m in sys.modules]; assert not bad, bad"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
