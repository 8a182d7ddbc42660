"""The conformance suites: checks every strategy plugin and every problem plugin must pass.

The problem suite is at the end of this module (`problem_conformance_tests`); the rest is the
strategy suite, run on a toy objective.

Shipped inside the package (like `optuna.testing` or scikit-learn's `parametrize_with_checks`)
so that an out-of-tree plugin runs exactly the checks the bundled strategies run, with one
import. In a test file collected by pytest::

    from harness.testing import *                # every installed strategy

or, for chosen strategies only (e.g. in a plugin's own package)::

    from harness.testing import conformance_tests

    test_sobol_conformance = conformance_tests("sobol")

Each check is one pytest test, id `<strategy>-<check>[-<space>]`; run one with e.g.
`pytest -k "tpe-pickle_roundtrip"`. The toy objective is a cheap function of the params (and of
the budget), so a check takes milliseconds plus whatever the wrapped library costs per ask.

A plugin class may set, all optional:

- `known_failures = {"<check>": "<reason>"}`: those checks run as strict xfail (a check that
  starts passing fails the suite, so the list stays honest); a key `"<check>[<space>]"` (e.g.
  `"params_in_space[cnn]"`) marks only that space's variant of a per-space check;
- `conformance_options = {...}`: constructor options used by the suite (e.g. fewer random
  start-up trials, so that a model-based strategy reaches its model within the suite's trials);
- `conformance_trials = N`: suggestions per run (default 12), for libraries whose ask is slow.

Checks (`CHECKS`): contract_attributes, params_in_space (toy and every shipped space it can
handle), deterministic_under_seed, independent_of_global_rngs, other_seed_differs,
survives_failed_and_nan, pickle_roundtrip, ask_returns_at_most_n, wait_and_finished,
budgets_within_fidelity, report_hook,
conditional_support_declared, applicability_declared, import_is_light.
"""

from __future__ import annotations

import functools
import math
import pickle
import random
import subprocess
import sys
import textwrap
from collections.abc import Callable, Iterable
from typing import Any

import pytest

from harness.errors import NotSupportedError
from harness.registry import available_strategies, load_strategy_class
from harness.space import SearchSpace, available_spaces, load_space
from harness.strategy import Capabilities, Observation, Strategy, Suggestion, TrialStatus

__all__ = ["test_conformance", "test_problem_conformance"]  # noqa: F822 -- defined by conformance_tests() below

DEFAULT_TRIALS = 12

# A space with every parameter kind, a fidelity, and a chain of conditions (nesterov depends on
# opt, dampening on nesterov), so that adapters meet each case.
TOY_SPACE = {
    "name": "toy",
    "fidelity": {"min": 1, "max": 9},
    "params": {
        "n_layers": {"type": "int", "low": 1, "high": 3},
        "width_0": {"type": "int", "low": 16, "high": 128, "step": 16},
        "width_1": {"type": "int", "low": 16, "high": 128, "step": 16, "condition": {"parent": "n_layers", "in": [2, 3]}},
        "heads": {"type": "int", "low": 1, "high": 64, "log": True},
        "lr": {"type": "float", "low": 1.0e-4, "high": 1.0e-1, "log": True},
        "momentum": {"type": "float", "low": 0.0, "high": 0.99},
        "opt": {"type": "categorical", "choices": ["sgd", "adam", "rmsprop"]},
        "nesterov": {"type": "bool", "condition": {"parent": "opt", "in": ["sgd"]}},
        "dampening": {"type": "float", "low": 0.0, "high": 0.5, "condition": {"parent": "nesterov", "in": [False]}},
        "bn": {"type": "bool"},
    },
}


def toy_space(conditional: bool = True) -> SearchSpace:
    """The toy space; without its conditional parameters when `conditional` is False."""
    cfg = {**TOY_SPACE, "params": dict(TOY_SPACE["params"])}
    if not conditional:
        cfg["name"] = "toy_flat"
        cfg["params"] = {k: v for k, v in cfg["params"].items() if "condition" not in v}
    return SearchSpace.from_config(cfg)


def toy_value(space: SearchSpace, params: dict[str, Any], budget: int | None = None) -> float:
    """A smooth, deterministic score in (-n, 0]: every parameter wants to sit at 30 % of its
    range; more budget brings the score closer to it (as more epochs would)."""
    score = 0.0
    for p in space.params:
        if p.name not in params:
            continue
        v = params[p.name]
        if p.type in ("int", "float"):
            if p.log:
                x = (math.log(v) - math.log(p.low)) / (math.log(p.high) - math.log(p.low))
            else:
                x = (v - p.low) / (p.high - p.low)
        elif p.type == "categorical":
            x = list(p.choices).index(v) / max(1, len(p.choices) - 1)
        else:
            x = float(v)
        score -= (x - 0.3) ** 2
    if budget is not None and space.fidelity is not None:
        score -= 0.5 * (1.0 - budget / space.fidelity.max)
    return score


# -- driving a strategy like a runner --------------------------------------------------------
Record = tuple[int, tuple[tuple[str, Any], ...], int | None, int | None]


def _record(s: Suggestion) -> Record:
    return (s.trial_id, tuple(sorted(s.params.items())), s.budget, s.resume_from)


def _status_for(trial_id: int, failures: bool) -> tuple[TrialStatus, float | None]:
    """With `failures`, a rotation of every awkward outcome; otherwise all ok (value None)."""
    if not failures:
        return TrialStatus.OK, None
    k = trial_id % 6
    if k == 1:
        return TrialStatus.FAILED, math.nan
    if k == 3:
        return TrialStatus.OK, math.nan
    if k == 4:
        return TrialStatus.PRUNED, -0.5
    if k == 5 and trial_id % 12 == 5:
        return TrialStatus.OK, -math.inf
    return TrialStatus.OK, None


def _observation(space: SearchSpace, s: Suggestion, failures: bool) -> Observation:
    status, value = _status_for(s.trial_id, failures)
    if value is None:
        value = toy_value(space, s.params, s.budget)
    return Observation(s.trial_id, value, status, budget_used=s.budget)


def drive(
    strategy: Strategy,
    *,
    trials: int,
    workers: int = 1,
    failures: bool = False,
    pickle_after: int | None = None,
    on_suggestion: Callable[[Strategy, Suggestion], None] | None = None,
    max_steps: int = 10_000,
) -> tuple[list[Record], Strategy]:
    """Run `strategy` like a runner with `workers` parallel slots until it has handed out
    `trials` suggestions or is finished; results are told oldest first.

    Raises AssertionError on a deadlock: an empty ask with nothing pending while not finished.
    Returns the trajectory and the (possibly unpickled) strategy.
    """
    space = strategy.space
    trajectory: list[Record] = []
    outstanding: list[Suggestion] = []
    told = 0
    for _ in range(max_steps):
        if strategy.finished or len(trajectory) >= trials:
            break
        if len(outstanding) < workers:
            want = min(workers - len(outstanding), trials - len(trajectory))
            got = strategy.ask(want)
            assert len(got) <= want, f"ask({want}) returned {len(got)} suggestions"
            for s in got:
                if on_suggestion is not None:
                    on_suggestion(strategy, s)
                trajectory.append(_record(s))
            outstanding.extend(got)
            if got and len(outstanding) < workers:
                continue
            if not got and not outstanding:
                assert strategy.finished, (
                    f"{strategy.name}: ask() returned [] with no trial pending and finished is "
                    f"False: a runner would wait forever (return [] only while results are due, "
                    f"and make `finished` True when there is nothing more to suggest)"
                )
                break
        strategy.tell(_observation(space, outstanding.pop(0), failures))
        told += 1
        if pickle_after is not None and told == pickle_after:
            strategy = pickle.loads(pickle.dumps(strategy))
    else:  # pragma: no cover - a strategy that never stops nor suggests
        raise AssertionError(f"{strategy.name}: no progress after {max_steps} steps")
    return trajectory, strategy


def make(name: str, space: SearchSpace, seed: int = 0, **options: Any) -> Strategy:
    """Build strategy `name` with its `conformance_options` (and `options` on top)."""
    cls = load_strategy_class(name)
    return cls(space, seed=seed, **{**getattr(cls, "conformance_options", {}), **options})


def _trials(name: str) -> int:
    return int(getattr(load_strategy_class(name), "conformance_trials", DEFAULT_TRIALS))


def _space_for(name: str) -> SearchSpace:
    return toy_space(conditional=load_strategy_class(name).capabilities.conditional)


def _searched(strategy: Strategy) -> SearchSpace:
    """The space suggestions are checked against (multi-fidelity drops the budget param)."""
    if strategy.capabilities.multi_fidelity:
        return strategy.space.without_fidelity_param()
    return strategy.space


def _check_suggestion(
    strategy: Strategy, s: Suggestion, issued: set[int], finished_budgets: dict[int, int | None] | None = None
) -> None:
    assert type(s.trial_id) is int, f"trial_id must be an int, got {s.trial_id!r}"
    assert s.trial_id not in issued, f"trial id {s.trial_id} handed out twice"
    issued.add(s.trial_id)
    assert isinstance(s.params, dict) and all(type(k) is str for k in s.params)
    assert not any(k.startswith("tuner/") for k in s.params), f"bookkeeping leaked: {s.params}"
    _searched(strategy).check(s.params)  # active params only, in bounds, native types
    fid = strategy.space.fidelity
    if not strategy.capabilities.multi_fidelity:
        assert s.budget is None and s.resume_from is None, (
            f"{strategy.name} is not multi_fidelity but set budget={s.budget}, "
            f"resume_from={s.resume_from}; declare Capabilities(multi_fidelity=True)"
        )
        return
    assert fid is not None
    assert type(s.budget) is int and fid.min <= s.budget <= fid.max, (
        f"budget {s.budget!r} outside the space's fidelity [{fid.min}, {fid.max}]"
    )
    if s.resume_from is not None:
        assert type(s.resume_from) is int and s.resume_from in issued - {s.trial_id}
        if finished_budgets is not None:
            assert s.resume_from in finished_budgets, (
                f"trial {s.trial_id} resumes from {s.resume_from}, which is not finished yet"
            )
            parent_budget = finished_budgets[s.resume_from]
            assert parent_budget is None or parent_budget <= s.budget, (
                f"trial {s.trial_id} (budget {s.budget}) resumes from a parent trained {parent_budget} epochs"
            )


# -- the checks ------------------------------------------------------------------------------
CheckFn = Callable[..., None]
CHECKS: dict[str, tuple[CheckFn, tuple[str, ...]]] = {}


def _check(*spaces: str) -> Callable[[CheckFn], CheckFn]:
    def register(fn: CheckFn) -> CheckFn:
        CHECKS[fn.__name__.removeprefix("check_")] = (fn, spaces)
        return fn

    return register


@_check()
def check_contract_attributes(name: str) -> None:
    """`name` matches the entry point; capabilities, version and known_failures are well-formed."""
    cls = load_strategy_class(name)
    assert cls.name == name
    assert isinstance(cls.capabilities, Capabilities)
    assert isinstance(cls.library_version(), str)
    unknown = set(cls.known_failures) - set(known_failure_keys())
    assert not unknown, (
        f"known_failures keys must be checks or `<check>[<space>]` variants, but "
        f"got {sorted(unknown)}; valid keys: {known_failure_keys()}"
    )
    with pytest.raises(ValueError):
        make(name, _space_for(name)).ask(0)


@_check("toy", *available_spaces())
def check_params_in_space(name: str, space_name: str) -> None:
    """Suggestions hold exactly the active params, in bounds, as native Python values; budgets
    (multi-fidelity only) are ints within the space's fidelity."""
    space = _space_for(name) if space_name == "toy" else load_space(space_name)
    reason = load_strategy_class(name).not_applicable(space)
    if reason is not None:
        pytest.skip(f"not applicable (see applicability_declared): {reason}")
    issued: set[int] = set()
    trials = min(_trials(name), 8) if space_name != "toy" else _trials(name)
    drive(make(name, space, seed=1), trials=trials, workers=2, on_suggestion=lambda st, s: _check_suggestion(st, s, issued))
    assert issued, f"{name} suggested nothing on {space_name}"


@functools.lru_cache(maxsize=None)
def reference_trajectory(name: str, seed: int = 7) -> tuple[Record, ...]:
    """The trajectory of `name` on the toy space (2 workers), shared by the checks that compare
    against it so that slow libraries run it once per session."""
    traj, _ = drive(make(name, _space_for(name), seed=seed), trials=_trials(name), workers=2)
    return tuple(traj)


@_check()
def check_deterministic_under_seed(name: str) -> None:
    """Same seed, same observations -> same trajectory, whatever the global RNGs hold."""
    import numpy as np

    a = reference_trajectory(name)
    random.seed(12345), np.random.seed(12345)
    b, _ = drive(make(name, _space_for(name), seed=7), trials=_trials(name), workers=2)
    assert list(a) == b, f"{name}: same seed gave different trajectories:\n{a}\n{b}"


@_check()
def check_independent_of_global_rngs(name: str) -> None:
    """Other code drawing from the global `random` and NumPy generators between asks (a
    problem, a library) does not change the suggestions: a resumed run replays the strategy
    without those draws and must get the same trials."""
    import numpy as np

    def draw(strategy: Strategy, s: Suggestion) -> None:
        random.random(), np.random.random_sample(3)

    b, _ = drive(make(name, _space_for(name), seed=7), trials=_trials(name), workers=2, on_suggestion=draw)
    assert list(reference_trajectory(name)) == b, (
        f"{name}: draws from the global random/numpy generators changed its suggestions; give "
        f"the wrapped library generators of its own (as strategies/genetic.py does for DEAP)"
    )


@_check()
def check_other_seed_differs(name: str) -> None:
    """Another seed -> another trajectory."""
    a, b = reference_trajectory(name, 7), reference_trajectory(name, 8)
    assert [r[1:] for r in a] != [r[1:] for r in b], f"{name}: seeds 7 and 8 gave the same trajectory"


@_check()
def check_survives_failed_and_nan(name: str) -> None:
    """Failed, pruned, NaN and -inf results are accepted and the strategy keeps suggesting."""
    space, n = _space_for(name), _trials(name)
    issued: set[int] = set()
    traj, strategy = drive(
        make(name, space, seed=3),
        trials=n,
        workers=2,
        failures=True,
        on_suggestion=lambda st, s: _check_suggestion(st, s, issued),
    )
    assert len(traj) >= n or strategy.finished
    # Tell every outstanding trial too (with the same rotation of awkward outcomes), so that
    # "wait" is no longer a valid answer: with nothing pending, the strategy must suggest again
    # or say it is finished.
    if strategy.pending:
        strategy.tell([_observation(space, s, failures=True) for s in strategy._pending.values()])
    if not strategy.finished:
        more = strategy.ask(1)
        assert more or strategy.finished, (
            f"{name}: after failed, pruned, NaN and -inf results, with no trial pending, ask(1) "
            f"returned [] and finished is False: it stopped suggesting"
        )


@_check()
def check_pickle_roundtrip(name: str) -> None:
    """Pickling mid-run (with trials pending) and continuing gives the same suggestions."""
    n = _trials(name)
    b, _ = drive(make(name, _space_for(name), seed=7), trials=n, workers=2, pickle_after=max(2, n // 2))
    a = reference_trajectory(name)
    assert list(a) == b, f"{name}: trajectory changed across a pickle round-trip:\n{a}\n{b}"


@_check()
def check_ask_returns_at_most_n(name: str) -> None:
    """ask(n) returns at most n new, distinct suggestions; a batch strategy can return several."""
    space = _space_for(name)
    strategy = make(name, space, seed=2)
    issued: set[int] = set()
    budget = _trials(name)
    for n in (1, 3, 2, 4):
        got = strategy.ask(n)
        assert len(got) <= n, f"ask({n}) returned {len(got)}"
        for s in got:
            _check_suggestion(strategy, s, issued)
        budget -= len(got)
        if budget <= 0:
            break
    if strategy.capabilities.batch:
        assert len(issued) > 1, f"{name} declares batch=True but never returned more than one"
    strategy.tell([Observation(t, toy_value(space, strategy._pending[t].params)) for t in strategy.pending])
    assert strategy.pending == []


@_check()
def check_wait_and_finished(name: str) -> None:
    """[] means "wait" only while trials are pending; `finished` comes true at max_trials and
    then stays true; no deadlock under parallel asks."""
    space, n = _space_for(name), min(_trials(name), 10)
    strategy = make(name, space, seed=4, max_trials=n)
    traj, strategy = drive(strategy, trials=10 * n, workers=3)
    assert strategy.finished, f"{name} not finished after max_trials={n} told"
    assert len(traj) <= n
    assert strategy.finished  # a property, not a one-shot event


@_check()
def check_budgets_within_fidelity(name: str) -> None:
    """Multi-fidelity: budgets within [fidelity.min, fidelity.max]; a resumed trial continues a
    finished parent trained no longer than itself. Others: no budget, no resume_from."""
    space = _space_for(name)
    strategy = make(name, space, seed=6)
    issued: set[int] = set()
    finished_budgets: dict[int, int | None] = {}
    outstanding: list[Suggestion] = []
    steps = _trials(name) * (3 if strategy.capabilities.multi_fidelity else 1)
    for _ in range(steps):
        if strategy.finished:
            break
        got = strategy.ask(2) if len(outstanding) < 2 else []
        for s in got:
            _check_suggestion(strategy, s, issued, finished_budgets)
        outstanding.extend(got)
        if not outstanding:
            assert strategy.finished
            break
        s = outstanding.pop(0)
        strategy.tell(Observation(s.trial_id, toy_value(space, s.params, s.budget), budget_used=s.budget))
        finished_budgets[s.trial_id] = s.budget


@_check()
def check_report_hook(name: str) -> None:
    """report() answers a bool for a pending trial, and the trial can then be told."""
    space = _space_for(name)
    strategy = make(name, space, seed=0)
    got = strategy.ask(1)
    if not got:
        pytest.skip(f"{name} suggested nothing at its first ask")
    s = got[0]
    for epoch in range(1, 4):
        answer = strategy.report(s.trial_id, epoch, toy_value(space, s.params))
        assert type(answer) is bool, f"report() must return a bool, got {answer!r}"
    strategy.tell(Observation(s.trial_id, toy_value(space, s.params), budget_used=s.budget))


@_check()
def check_conditional_support_declared(name: str) -> None:
    """A strategy declaring conditional=False refuses a conditional space with NotSupportedError
    (at construction or first ask) instead of crashing or silently ignoring conditions."""
    cls = load_strategy_class(name)
    if cls.capabilities.conditional:
        issued: set[int] = set()
        drive(make(name, toy_space(), seed=1), trials=4, on_suggestion=lambda st, s: _check_suggestion(st, s, issued))
        return
    with pytest.raises(NotSupportedError, match="condition"):
        make(name, toy_space(), seed=1).ask(1)


def probe_spaces() -> dict[str, SearchSpace]:
    """Spaces that each lack what some strategy needs: conditions, a fidelity, numeric params."""
    flat = {k: v for k, v in TOY_SPACE["params"].items() if "condition" not in v}
    return {
        "conditional": toy_space(),
        "no_fidelity": SearchSpace.from_config({"name": "toy_no_fidelity", "params": flat}),
        "categorical_only": SearchSpace.from_config(
            {
                "name": "toy_categorical",
                "fidelity": TOY_SPACE["fidelity"],
                "params": {k: v for k, v in flat.items() if v["type"] in ("categorical", "bool")},
            }
        ),
    }


@_check()
def check_applicability_declared(name: str) -> None:
    """What `not_applicable` (from the declared capabilities) refuses, the constructor refuses
    with NotSupportedError; what it accepts, the strategy searches. So a sweep records a pairing
    as not applicable exactly when the strategy could not run it."""
    cls = load_strategy_class(name)
    for label, space in probe_spaces().items():
        reason = cls.not_applicable(space)
        if reason is not None:
            with pytest.raises(NotSupportedError):
                make(name, space, seed=1).ask(1)
            continue
        issued: set[int] = set()
        drive(make(name, space, seed=1), trials=4, on_suggestion=lambda st, s: _check_suggestion(st, s, issued))
        assert issued, f"{name} accepted the {label} probe space but suggested nothing"


@_check()
def check_import_is_light(name: str) -> None:
    """Importing the strategy (and building it) does not import TensorFlow or Keras."""
    info = available_strategies()[name]
    module = info.target.split(":")[0]
    code = textwrap.dedent(f"""
        import sys
        import {module}
        from harness.registry import load_strategy_class
        from harness.space import SearchSpace
        cls = load_strategy_class({name!r})
        cfg = {TOY_SPACE!r}
        if not cls.capabilities.conditional:
            cfg["params"] = {{k: v for k, v in cfg["params"].items() if "condition" not in v}}
        cls(SearchSpace.from_config(cfg), seed=0)
        heavy = sorted(m for m in ("tensorflow", "keras", "keras_tuner") if m in sys.modules)
        assert not heavy, f"importing {module} imported {{heavy}}"
    """)
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]


# -- parametrization -------------------------------------------------------------------------
def _selected(kind: str, installed: Iterable[str], names: Iterable[str] | None) -> list[str]:
    """`names` (default: every installed plugin), each checked to be installed."""
    installed = sorted(installed)
    chosen = installed if names is None else list(names)
    for name in chosen:
        if name not in installed:
            raise ValueError(f"{kind} {name!r} is not installed; installed: {installed}")
    return chosen


def conformance_cases(names: Iterable[str] | None = None) -> list[Any]:
    """One `pytest.param(strategy, check, space)` per check, strategy and (for per-space checks)
    space; checks in a strategy's `known_failures` are marked strict xfail with its reason."""
    from harness.strategy import missing_libraries

    cases = []
    for name in _selected("strategy", available_strategies(), names):
        cls = load_strategy_class(name)
        known = cls.known_failures
        missing = missing_libraries(cls)
        for check, (_, spaces) in CHECKS.items():
            for space in spaces or (None,):
                # "params_in_space[cnn]" marks one space's variant; "params_in_space" all of them.
                reason = known.get(f"{check}[{space}]", known.get(check))
                marks = [pytest.mark.xfail(strict=True, reason=reason)] if reason is not None else []
                if missing:  # an optional strategy whose library is not installed
                    extras = sorted({cls.requires[m] for m in missing})
                    marks = [pytest.mark.skip(reason=f'{name} needs {missing}: pip install "automl-harness[{",".join(extras)}]"')]
                case_id = "-".join(x for x in (name, check, space) if x)
                cases.append(pytest.param(name, check, space, id=case_id, marks=marks))
    return cases


def known_failure_keys() -> list[str]:
    """What `known_failures` may name: every check, and `<check>[<space>]` for per-space ones."""
    return [*CHECKS, *(f"{check}[{space}]" for check, (_, spaces) in CHECKS.items() for space in spaces)]


def run_check(name: str, check: str, space: str | None = None) -> None:
    """Run one conformance check on strategy `name` (raises AssertionError on failure)."""
    fn, _ = CHECKS[check]
    fn(name, space) if space is not None else fn(name)


def conformance_tests(*names: str) -> Callable[..., None]:
    """A pytest test function running every check on `names` (default: every installed
    strategy). Assign it to a `test_*` name in a test module."""

    @pytest.mark.parametrize(("strategy", "check", "space"), conformance_cases(names or None))
    def test(strategy: str, check: str, space: str | None) -> None:
        run_check(strategy, check, space)

    return test


def __getattr__(attr: str) -> Any:
    # `test_conformance` is built on first access (e.g. by `from harness.testing import *`), so
    # importing this module for its helpers does not import every installed strategy.
    if attr == "test_conformance":
        globals()[attr] = conformance_tests()
        return globals()[attr]
    if attr == "test_problem_conformance":
        globals()[attr] = problem_conformance_tests()
        return globals()[attr]
    raise AttributeError(f"module {__name__!r} has no attribute {attr!r}")


# == The problem conformance suite =============================================================
# Checks every problem plugin must pass, on the problem's own config composed as `harness
# problem=<name>` would (plus the class's optional `conformance_overrides`, Hydra overrides that
# keep the checks fast, e.g. `["dataset=iris", "budget.max_epochs=1"]`). Each check is one pytest
# test, id `problem-<name>-<check>`. In a plugin's test file::
#
#     from harness.testing import problem_conformance_tests
#
#     test_branin_conformance = problem_conformance_tests("branin")
PROBLEM_CHECKS: dict[str, Callable[[str], None]] = {}
PROBLEM_SAMPLES = 3  # configurations evaluated per check


def _problem_check(fn: Callable[[str], None]) -> Callable[[str], None]:
    PROBLEM_CHECKS[fn.__name__.removeprefix("check_problem_")] = fn
    return fn


def problem_config(name: str, *overrides: str) -> dict[str, Any]:
    """The resolved run config of `harness problem=<name> <overrides>` (plugin configs included)."""
    from hydra import compose, initialize_config_module
    from omegaconf import OmegaConf

    from harness.cli import _register_searchpath_plugin
    from harness.registry import load_problem_class

    _register_searchpath_plugin()
    extra = list(getattr(load_problem_class(name), "conformance_overrides", []))
    with initialize_config_module("harness.conf", version_base="1.3"):
        cfg = compose("config", overrides=[f"problem={name}", *extra, *overrides])
    return OmegaConf.to_container(cfg, resolve=True)  # type: ignore[return-value]


def make_problem_for_test(name: str, seed: int = 0, *overrides: str) -> Any:
    from harness.settings import problem_from_config

    return problem_from_config(problem_config(name, *overrides), seed=seed)


def problem_samples(problem: Any, n: int = PROBLEM_SAMPLES, seed: int = 0) -> list[Suggestion]:
    import numpy as np

    from harness.space import sample

    rng = np.random.default_rng(seed)
    space = problem.space
    return [Suggestion(i, sample(space, rng)) for i in range(n)]


def _evaluate(problem: Any, suggestion: Suggestion) -> Any:
    from harness.workers import evaluate_trial

    return evaluate_trial(problem, suggestion, None)


@_problem_check
def check_problem_contract_attributes(name: str) -> None:
    """Name, space, objective, instance, identity and descriptors are what the runner reads."""
    import json

    from harness.problem import ObjectiveInfo, Problem
    from harness.registry import load_problem_class

    cls = load_problem_class(name)
    assert issubclass(cls, Problem) and cls.name == name
    problem = make_problem_for_test(name)
    assert isinstance(problem.space, SearchSpace) and problem.space.params, "space must have params"
    assert isinstance(problem.objective, ObjectiveInfo)
    assert isinstance(problem.instance, str) and problem.instance and "/" not in problem.instance
    json.dumps(problem.identity(), sort_keys=True)  # hashed into the run id
    assert set(problem.describe()) >= {"search_space", "dataset", "task", "trainer"}
    assert problem.optimum is None or math.isfinite(problem.optimum)


@_problem_check
def check_problem_import_is_light(name: str) -> None:
    """Importing the problem's module and building it imports no TensorFlow or Keras."""
    from harness.registry import available_problems

    module = available_problems()[name].target.split(":")[0]
    code = textwrap.dedent(f"""
        import sys
        import {module}
        from harness.testing import make_problem_for_test
        make_problem_for_test({name!r})
        heavy = sorted(m for m in ("tensorflow", "keras", "torch") if m in sys.modules)
        assert not heavy, f"importing and building problem {name!r} imported {{heavy}}"
    """)
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]


@_problem_check
def check_problem_in_space_params_give_a_result(name: str) -> None:
    """Configurations drawn from the space give a finite objective, or a failed status with text."""
    problem = make_problem_for_test(name)
    problem.setup()
    for sug in problem_samples(problem):
        r = _evaluate(problem, sug)
        if r.status is TrialStatus.FAILED:
            assert r.error, f"trial {sug.params} failed without an error text"
        else:
            assert math.isfinite(r.objective), f"{sug.params} gave objective {r.objective}"
            assert r.test_objective is None or isinstance(r.test_objective, float)
            regret = problem.regret(r.objective)
            assert regret is None or regret >= -1e-9, f"objective {r.objective} beats the optimum"


@_problem_check
def check_problem_deterministic_under_seed(name: str) -> None:
    """Two fresh problems with one seed give the same results for the same params."""
    first, second = make_problem_for_test(name), make_problem_for_test(name)
    first.setup()
    second.setup()
    for sug in problem_samples(first, 2):
        a, b = _evaluate(first, sug), _evaluate(second, sug)
        assert (a.status, a.objective, a.test_objective) == (b.status, b.objective, b.test_objective) or (
            math.isnan(a.objective) and math.isnan(b.objective)
        ), f"{sug.params}: {a} != {b}"


@_problem_check
def check_problem_fidelity_respected(name: str) -> None:
    """A budget within the space's fidelity is evaluated at that budget (never more)."""
    problem = make_problem_for_test(name)
    fid = problem.space.fidelity
    if fid is None:
        pytest.skip(f"problem {name!r} declares no fidelity")
    problem.setup()
    sug = problem_samples(problem, 1)[0]
    searched = problem.space.without_fidelity_param()
    params = {k: v for k, v in sug.params.items() if k in searched.names}
    r = _evaluate(problem, Suggestion(0, params, budget=fid.min))
    assert r.status is TrialStatus.FAILED or (r.budget is not None and r.budget <= fid.min), (
        f"budget {fid.min} was evaluated at {r.budget}"
    )


@_problem_check
def check_problem_picklable(name: str) -> None:
    """The problem pickles before and after setup (workers receive it pickled) and still evaluates
    the same."""
    problem = make_problem_for_test(name)
    copy = pickle.loads(pickle.dumps(problem))
    problem.setup()
    after = pickle.loads(pickle.dumps(problem))
    copy.setup()
    after.setup()
    sug = problem_samples(problem, 1)[0]
    values = {_evaluate(p, sug).objective for p in (problem, copy, after)}
    assert len(values) == 1 or all(math.isnan(v) for v in values), values


def problem_conformance_cases(names: Iterable[str] | None = None) -> list[Any]:
    from harness.registry import available_problems, load_problem_class

    cases = []
    for name in _selected("problem", available_problems(), names):
        known = load_problem_class(name).known_failures
        for check in PROBLEM_CHECKS:
            marks = [pytest.mark.xfail(strict=True, reason=known[check])] if check in known else []
            cases.append(pytest.param(name, check, id=f"problem-{name}-{check}", marks=marks))
    return cases


def problem_conformance_tests(*names: str) -> Callable[..., None]:
    """A pytest test function running every problem check on `names` (default: every installed
    problem). Assign it to a `test_*` name in a test module."""

    @pytest.mark.parametrize(("problem", "check"), problem_conformance_cases(names or None))
    def test(problem: str, check: str) -> None:
        PROBLEM_CHECKS[check](problem)

    return test
