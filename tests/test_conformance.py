"""The conformance suite (harness.testing) on every installed strategy plugin, and the suite's own
machinery checked on small misbehaving strategies that are registered for one test only."""

from __future__ import annotations

import re
import textwrap
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

import harness.registry
from harness.errors import NotSupportedError, StrategyError
from harness.runner import Runner, settings_from_config
from harness.testing import *  # noqa: F401,F403  (collects test_conformance)
from harness.strategy import Capabilities, TrialStatus
from harness.testing import CHECKS, run_check, toy_space
from harness.strategies.random_search import RandomSearch

pytest_plugins = ["pytester"]

CONF = Path(__file__).parents[1] / "conf"


# -- test-only strategies ----------------------------------------------------------------------
class FlatOnly(RandomSearch):
    """Random search that declares it cannot handle conditional parameters."""

    name = "flat_only"
    capabilities = Capabilities(conditional=False, multi_fidelity=False, batch=True)


class Overasking(RandomSearch):
    """Returns one suggestion more than asked for."""

    name = "overasking"

    def _ask(self, n):
        return [*super()._ask(n), *super()._ask(1)]


class Sulky(RandomSearch):
    """Stops suggesting, without saying it is finished, once told two pruned trials: the old
    survives_failed_and_nan check passed it because a trial was still pending at the end."""

    name = "sulky"

    def __init__(self, space, **kwargs):
        super().__init__(space, **kwargs)
        self.pruned = 0

    def _ask(self, n):
        return [] if self.pruned >= 2 else super()._ask(n)

    def _tell(self, observations):
        self.pruned += sum(o.status is TrialStatus.PRUNED for o in observations)


class BadKnownFailure(RandomSearch):
    name = "bad_known_failure"
    known_failures = {"params_in_space[no_such_space]": "a variant that does not exist"}


@dataclass(frozen=True)
class _EntryPoint:
    """Quacks like an importlib.metadata.EntryPoint of the `harness.strategies` group."""

    cls: type
    dist = None

    @property
    def name(self) -> str:
        return self.cls.name

    @property
    def value(self) -> str:
        return f"{__name__}:{self.cls.__qualname__}"

    def load(self) -> type:
        return self.cls


@pytest.fixture
def register(monkeypatch):
    """Make test-only strategy classes look installed, for this test only."""
    real = harness.registry.entry_points

    def install(*classes: type) -> None:
        extra = [_EntryPoint(c) for c in classes]
        monkeypatch.setattr(
            harness.registry,
            "entry_points",
            lambda *, group: [*real(group=group), *extra] if group == harness.registry.GROUP else real(group=group),
        )

    return install


# -- Strategy.ask and the checks that could not fail -----------------------------------------
def test_ask_returning_more_than_n_is_a_strategy_error(register):
    register(Overasking)
    with pytest.raises(
        StrategyError,
        match=r"'overasking': _ask\(2\) must return at most 2 "
        r"suggestions, but returned 3",
    ):
        Overasking(toy_space(), seed=0).ask(2)
    with pytest.raises(StrategyError):  # the check now fails instead of seeing a truncated list
        run_check("overasking", "ask_returns_at_most_n")


def test_survives_failed_and_nan_fails_a_strategy_that_stops_suggesting(register):
    register(Sulky)
    with pytest.raises(AssertionError, match="stopped suggesting"):
        run_check("sulky", "survives_failed_and_nan")


def test_known_failure_keys_must_name_a_check_or_variant(register):
    register(BadKnownFailure)
    with pytest.raises(AssertionError, match=r"params_in_space\[no_such_space\]"):
        run_check("bad_known_failure", "contract_attributes")


# -- capabilities.conditional = False ------------------------------------------------------
@pytest.mark.parametrize(
    ("check", "space"),
    [
        (check, space)
        for check, (_, spaces) in CHECKS.items()
        for space in spaces or (None,)
        if check != "import_is_light"  # a subprocess, which cannot see a test-only registration
    ],
)
def test_a_strategy_without_conditional_support_passes_the_suite(register, check, space):
    register(FlatOnly)
    run_check("flat_only", check, space)  # conditional spaces (nas_mlp) skip, naming the reason


def test_a_strategy_without_conditional_support_refuses_conditional_spaces(register, tmp_path):
    register(FlatOnly)
    with pytest.raises(NotSupportedError, match=r"capabilities.conditional=False.*'toy'.*width_1"):
        FlatOnly(toy_space(), seed=0)
    nas_mlp = yaml.safe_load((CONF / "search_space" / "nas_mlp.yaml").read_text())
    settings = settings_from_config(
        {
            "strategy": {"name": "flat_only", "params": {}},
            "search_space": nas_mlp,
            "dataset": {"name": "digits"},
            "seed": 0,
            "budget": {"trials": 2},
            "progress": False,
            "results_dir": str(tmp_path),
        }
    )
    # The runner records the pairing as not applicable, with the reason, and runs nothing.
    summary = Runner(settings).run()
    assert summary.status == "not_applicable" and summary.n_trials == 0
    assert re.search(
        r"'flat_only' declares capabilities.conditional=False.*'nas_mlp' has conditional "
        r"parameters \['units_1', 'units_2'\]",
        summary.stop_reason,
    )


# -- known_failures: strict xfail, per check or per space variant ------------------------------
CONFTEST = '''
import harness.registry
from harness.strategy import Suggestion
from harness.space import sample
from harness.strategies.random_search import RandomSearch
import numpy as np


class Seedless(RandomSearch):
    """Ignores its seed, so other_seed_differs fails; the rest of the suite passes."""

    name = "seedless"
    known_failures = {
        "other_seed_differs": "ignores its seed",                    # fails: xfailed
        "deterministic_under_seed": "listed by mistake: it passes",  # passes: strict XPASS fails
        "params_in_space[toy]": "listed by mistake: it passes",      # only the toy variant
    }

    def __init__(self, space, *, seed=0, max_trials=None):
        super().__init__(space, seed=0, max_trials=max_trials)


class _EntryPoint:
    name, value, dist = "seedless", "conftest:Seedless", None

    def load(self):
        return Seedless


_real = harness.registry.entry_points
harness.registry.entry_points = lambda *, group: (
    [*_real(group=group), _EntryPoint()] if group == harness.registry.GROUP else _real(group=group))
'''


def test_known_failures_run_as_strict_xfail(pytester):
    pytester.makeconftest(CONFTEST)
    pytester.makepyfile(
        test_seedless=textwrap.dedent("""
        from harness.testing import conformance_tests

        test_seedless_conformance = conformance_tests("seedless")
    """)
    )
    # A subprocess: the conftest's registration must not leak into this session.
    result = pytester.runpytest_subprocess(
        "-p",
        "no:cacheprovider",
        "-rfx",
        "-k",
        "contract_attributes or other_seed_differs or deterministic_under_seed or params_in_space",
    )
    # contract + params_in_space on every shipped space pass; the toy variant and
    # deterministic_under_seed pass although declared failing, which strict xfail turns into failures.
    from harness.space import available_spaces

    result.assert_outcomes(passed=1 + len(available_spaces()), failed=2, xfailed=1)
    case = r"test_seedless.py::test_seedless_conformance\[seedless-{}\]"
    result.stdout.re_match_lines_random(
        [
            "XFAIL " + case.format("other_seed_differs") + " - ignores its seed",
            "FAILED " + case.format("deterministic_under_seed"),
            "FAILED " + case.format("params_in_space-toy"),
        ]
    )
    assert result.ret != 0
