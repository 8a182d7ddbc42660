"""Hyperband and Bayesian optimisation on keras-tuner oracles: bookkeeping, GP phase, pickling."""

from __future__ import annotations

import pickle
import re

import pytest

from harness.errors import ConfigError, NotSupportedError
from harness.registry import make_strategy
from harness.space import SearchSpace, load_space
from harness.strategy import Observation, Suggestion, TrialStatus
from harness.testing import drive, toy_space, toy_value
from harness.strategies.bayesian import BayesianOptimization
from harness.strategies.hyperband import Hyperband


def run_hyperband(space, **options):
    strategy = Hyperband(space, seed=3, **options)
    told: dict[int, int] = {}
    suggestions = []
    while not strategy.finished:
        got = strategy.ask(3)
        suggestions += got
        if not got and not strategy.pending and not strategy.finished:
            pytest.fail("hyperband waits with nothing pending")
        for s in strategy.pending[:1]:
            sug = next(x for x in suggestions if x.trial_id == s)
            strategy.tell(Observation(s, toy_value(space, sug.params, sug.budget), budget_used=sug.budget))
            told[s] = sug.budget
    return suggestions, told


def test_hyperband_budgets_and_promotions_follow_keras_tuner_brackets():
    space = load_space("homl_mlp")  # seed 003: max_epochs 10, factor 3
    suggestions, told = run_hyperband(space, factor=3, hyperband_iterations=1)
    budgets = sorted({s.budget for s in suggestions})
    assert budgets == [2, 4, 10]  # keras-tuner: ceil(10 / 3**k) for its 3 brackets
    promoted = [s for s in suggestions if s.resume_from is not None]
    assert promoted, "no promotion happened"
    by_id = {s.trial_id: s for s in suggestions}
    for s in promoted:
        parent = by_id[s.resume_from]
        assert parent.params == s.params and parent.budget < s.budget
        assert s.resume_from in told
    assert all(not k.startswith("tuner/") for s in suggestions for k in s.params)


def test_hyperband_drops_the_budget_param_and_clamps_to_fidelity_min():
    space = load_space("mlp")  # epochs param 5..50 is the fidelity
    suggestions, _ = run_hyperband(space, factor=3, hyperband_iterations=1)
    assert all("epochs" not in s.params for s in suggestions)
    assert {s.budget for s in suggestions} <= set(range(5, 51))
    assert min(s.budget for s in suggestions) == 5  # keras-tuner's 2-epoch rung raised to min


def test_hyperband_warns_once_when_min_epochs_flattens_promotions():
    # mlp with budget.max_epochs=3: the runner caps the fidelity to 3..3, so keras-tuner's
    # 1-epoch rung is raised to 3, the budget of the rung it promotes to.
    space = load_space("mlp")
    with pytest.warns(UserWarning, match=r"hyperband: .*min_epochs=3 .* train no further epochs") as record:
        suggestions, _ = run_hyperband(space, max_epochs=3, min_epochs=3, hyperband_iterations=1)
    assert [w for w in record if "hyperband:" in str(w.message)][1:] == []  # once
    assert {s.budget for s in suggestions} == {3} and any(s.resume_from is not None for s in suggestions)


def test_a_promotion_without_its_parent_checkpoint_fails_the_trial(tmp_path):
    from harness.objective import KerasObjective
    from harness.workers import evaluate_trial

    class FakeModel:
        loaded = None

        def load_weights(self, path):
            self.loaded = path

    space = load_space("mlp")
    objective = KerasObjective(space, None, seed=0, checkpoint_dir=tmp_path)
    promoted = Suggestion(7, {}, budget=6, resume_from=3)
    missing = str(tmp_path / "trial_3_e*.weights.h5")
    with pytest.raises(FileNotFoundError, match=re.escape(missing)):
        objective._restore(FakeModel(), 3)

    # A trial's own error, not a HarnessError: the trial is a failed row naming the path, the
    # run goes on.
    class Restoring:  # a problem whose evaluation is just the restore
        def evaluate(self, s, report):
            return objective._restore(FakeModel(), s.resume_from)

    result = evaluate_trial(Restoring(), promoted, None)
    assert result.status.value == "failed" and missing in result.error
    with pytest.raises(FileNotFoundError, match="saves no checkpoints"):
        KerasObjective(space, None, seed=0)._restore(FakeModel(), 3)
    for epochs in (2, 10):  # the parent's last checkpoint is restored
        (tmp_path / f"trial_3_e{epochs}.weights.h5").touch()
    model = FakeModel()
    assert objective._restore(model, 3) == 10 and model.loaded.name == "trial_3_e10.weights.h5"


def test_hyperband_needs_a_fidelity_and_max_epochs_within_it():
    flat = SearchSpace.from_config({"name": "flat", "params": {"x": {"type": "int", "low": 0, "high": 3}}})
    for options in ({}, {"max_epochs": 4}):
        with pytest.raises(NotSupportedError, match="declares no fidelity"):
            Hyperband(flat, seed=0, **options)
    assert Hyperband.not_applicable(flat) is not None and Hyperband.not_applicable(load_space("mlp")) is None
    with pytest.raises(ConfigError, match="max_epochs"):
        make_strategy("hyperband", load_space("homl_mlp"), seed=0, max_epochs=99)


def test_reserved_and_unknown_oracle_options_are_config_errors():
    with pytest.raises(ConfigError, match="objective"):
        make_strategy("bayesian", load_space("mlp"), seed=0, objective="loss")
    strategy = make_strategy("bayesian", load_space("mlp"), seed=0, alhpa=1e-4)
    with pytest.raises(ConfigError, match="alhpa"):
        strategy.ask(1)


def test_many_failures_do_not_stop_keras_tuner():
    # keras-tuner aborts after 3 consecutive failed trials by default; failures are rows here.
    strategy = Hyperband(load_space("homl_mlp"), seed=0)
    for _ in range(6):
        (s,) = strategy.ask(1)
        strategy.tell(Observation(s.trial_id, float("nan"), TrialStatus.FAILED))
    assert strategy.ask(1)


def test_parallel_slots_get_distinct_trials():
    strategy = Hyperband(load_space("nas_mlp"), seed=0)
    got = strategy.ask(5)
    assert len({s.trial_id for s in got}) == 5
    assert len({tuple(sorted(s.params.items())) for s in got}) == 5


def test_bayesian_gp_phase_in_bounds_deterministic_and_picklable():
    """The GP phase is slow (seconds per ask), so it is exercised here once rather than in
    every conformance check: 2 random trials, then a GP ask with a trial pending (which
    keras-tuner "hallucinates"), pickled in between."""
    space = load_space("homl_mlp")
    a, _ = drive(
        BayesianOptimization(space, seed=1, num_initial_points=2),
        trials=4,
        workers=2,
        on_suggestion=lambda st, s: space.check(s.params),
    )
    b, _ = drive(BayesianOptimization(space, seed=1, num_initial_points=2), trials=4, workers=2, pickle_after=2)
    assert a == b
    assert len(a) == 4


@pytest.mark.slow  # 8 GP asks, 0.2-1 s each on 2 busy cores
def test_bayesian_gp_phase_after_failed_and_nan_trials():
    """keras-tuner counts only COMPLETED trials towards num_initial_points, so the conformance
    run never reaches the GP with failures among the results: here failed, pruned, NaN and -inf
    results are interleaved with completed ones until the GP suggests, with a trial pending."""
    # Three parameters keep each GP ask short (its acquisition search grows with dimensions);
    # seeds 2 and 3 are ones whose first, flat GP surface the L-BFGS-B starts leave quickly.
    space = SearchSpace.from_config(
        {
            "name": "gp3",
            "params": {
                "lr": {"type": "float", "low": 1e-4, "high": 1e-1, "log": True},
                "units": {"type": "int", "low": 16, "high": 256},
                "opt": {"type": "categorical", "choices": ["sgd", "adam"]},
            },
        }
    )

    def gp_phase(seed):
        gp = []  # suggestions made once the oracle had its 2 completed trials

        def on_suggestion(strategy, s):
            space.check(s.params)
            trials = strategy.oracle.trials.values()
            if sum(t.status == "COMPLETED" for t in trials) >= 2:
                assert any(t.status == "FAILED" for t in trials)  # failures were told before
                gp.append(tuple(sorted(s.params.items())))

        drive(
            BayesianOptimization(space, seed=seed, num_initial_points=2),
            trials=8,
            workers=2,
            failures=True,
            on_suggestion=on_suggestion,
        )
        return gp

    a, b = gp_phase(2), gp_phase(3)
    assert len(a) >= 4 and len(set(a)) == len(a), f"GP suggestions not distinct: {a}"
    assert a != b, "seeds 2 and 3 gave the same GP-phase suggestions"


def test_bayesian_conditional_space_uses_conditional_scopes():
    strategy = BayesianOptimization(toy_space(), seed=0, num_initial_points=2)
    traj, _ = drive(strategy, trials=3)
    # inactive conditionals are absent (drive() already checked via space.check in conformance)
    for _, params, _, _ in traj:
        toy_space().check(dict(params))


def test_hyperband_pickles_before_first_ask_without_importing():
    strategy = pickle.loads(pickle.dumps(Hyperband(load_space("mlp"), seed=0)))
    assert strategy.ask(1)
