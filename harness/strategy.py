"""The Strategy contract: what every search strategy plugin implements (ask/tell).

A strategy decides *what* to try next and, when it is multi-fidelity, *how many epochs*. The
runner owns everything else: the loop, timing, budgets, failures and persistence. Strategies
never import TensorFlow or Keras, and never import their own library (optuna, keras-tuner, deap)
at module import, so that listing strategies stays fast: keras-tuner (which imports TensorFlow)
is imported on the first `ask`, DEAP when the first generation is bred, and Optuna (about
0.5 s) when `tpe` is built, to check its options against Optuna's own signature before any
trial runs.

The loop a runner drives::

    while not strategy.finished:
        suggestions = strategy.ask(n)        # [] means "wait: tell me results first"
        ...evaluate each, calling strategy.report(trial_id, epoch, value) per epoch...
        strategy.tell([Observation(...), ...])
"""

from __future__ import annotations

import abc
import enum
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

from harness.errors import NotSupportedError, StrategyError
from harness.space import SearchSpace


# What strategies that must plan ahead (SMAC, Nevergrad's NGOpt) assume when a run has no trial
# budget (`budget.trials: null`, a time-bounded run).
PLANNED_TRIALS_WHEN_UNKNOWN = 100


class TrialStatus(str, enum.Enum):
    OK = "ok"
    FAILED = "failed"
    PRUNED = "pruned"


@dataclass(frozen=True)
class Suggestion:
    """One configuration to evaluate.

    `budget` is the total number of epochs the model should have trained once this trial is done
    (None: the objective decides, from the params or the space). `resume_from` names a finished
    trial whose weights this one continues from (Hyperband promotions); the objective then
    trains only the missing epochs.
    """

    trial_id: int
    params: dict[str, Any]
    budget: int | None = None
    resume_from: int | None = None


@dataclass(frozen=True)
class Observation:
    """The outcome of a trial, as told back to the strategy. `value` is maximised."""

    trial_id: int
    value: float
    status: TrialStatus = TrialStatus.OK
    budget_used: int | None = None

    @property
    def usable(self) -> bool:
        """True when the value can be learnt from (an ok trial with a finite value)."""
        return self.status is TrialStatus.OK and math.isfinite(self.value)


@dataclass(frozen=True)
class Capabilities:
    """What a strategy can handle; a run pairing it with a problem it cannot handle is recorded
    as *not applicable* (with the reason) instead of crashing or silently degrading."""

    conditional: bool = True  # handles params active only under a parent's value
    multi_fidelity: bool = False  # hands out budgets (epochs): needs a space with a fidelity
    batch: bool = True  # ask(n > 1) can return several pending suggestions
    prunes: bool = False  # stops trials from per-step reports: needs a problem that reports
    needs_numeric: bool = False  # models numeric params only: needs at least one int/float param


class Strategy(abc.ABC):
    """Base class of every strategy plugin.

    Subclasses set `name` (= entry-point name = `conf/strategy/<name>.yaml`), `capabilities`,
    implement `_ask` and `_tell`, and usually `library_version`. The constructor stores and
    validates; heavy objects (samplers, oracles, toolboxes) are built on first `ask`.

    `known_failures` maps a conformance-check name (or `"<check>[<space>]"` for one space of a
    per-space check, e.g. `"params_in_space[cnn]"`) to the reason this plugin is known to fail
    it; the conformance suite runs those checks as strict xfail.

    A class declaring `capabilities.conditional=False` is refused a conditional space here, with
    `NotSupportedError`.
    """

    name: ClassVar[str] = ""
    capabilities: ClassVar[Capabilities] = Capabilities()
    known_failures: ClassVar[dict[str, str]] = {}
    # Optional libraries the strategy wraps: module -> the harness extra that installs it. The
    # constructor fails with one clear message when one is missing; the conformance suite skips.
    requires: ClassVar[dict[str, str]] = {}

    def __init__(self, space: SearchSpace, *, seed: int = 0, max_trials: int | None = None):
        if not isinstance(space, SearchSpace):
            raise TypeError(f"space must be a SearchSpace, but got {type(space).__name__}")
        if type(seed) is not int:
            raise TypeError(f"seed must be an int, but got {seed!r}")
        if max_trials is not None and max_trials < 1:
            raise ValueError(f"max_trials must be >= 1 or None, but got {max_trials}")
        # Refused here, for every plugin, rather than left to each one: a strategy that does not
        # model conditions would otherwise suggest inactive params or ignore them silently.
        reason = self.not_applicable(space)
        if reason is not None:
            raise NotSupportedError(reason)
        missing = missing_libraries(type(self))
        if missing:
            from harness.errors import ConfigError

            extras = ",".join(sorted({self.requires[m] for m in missing}))
            raise ConfigError(
                f"strategy {self.name!r} needs {', '.join(map(repr, missing))}, which is not "
                f'installed; install it with: pip install "automl-harness[{extras}]" '
                f'(or "automl-harness[all]" for every optional strategy)'
            )
        self.space = space
        self.seed = seed
        self.max_trials = max_trials
        # The run's trial budget, set by the runner before the first ask (None: time-bounded
        # run). A hint for libraries that plan ahead (SMAC's initial design, Nevergrad's choice
        # of optimiser); the runner, not the strategy, stops the run at the budget.
        self.planned_trials: int | None = None
        self._next_trial_id = 0
        self._pending: dict[int, Suggestion] = {}
        self._n_told = 0

    # -- the contract ----------------------------------------------------------------------
    def ask(self, n: int = 1) -> list[Suggestion]:
        """Return up to `n` new suggestions; an empty list means "wait, tell me results first".

        Never call when `finished` is True. Use `finished` to tell the two answers apart.
        """
        if n < 1:
            raise ValueError(f"ask(n) needs n >= 1, but got {n}")
        if not self.capabilities.batch:
            n = min(n, 1)
        if self.max_trials is not None:
            n = min(n, self.max_trials - self._next_trial_id)
            if n <= 0:
                return []
        suggestions = list(self._ask(n))
        if len(suggestions) > n:
            # Truncating would drop trials the library already counts as running (and burn
            # their ids), so a strategy that over-delivers is a bug to report, not to hide.
            raise StrategyError(
                f"strategy {self.name!r}: _ask({n}) must return at most {n} suggestions, but "
                f"returned {len(suggestions)} (trial ids {[s.trial_id for s in suggestions]})"
            )
        for s in suggestions:
            self._pending[s.trial_id] = s
        return suggestions

    def tell(self, observations: Observation | Iterable[Observation]) -> None:
        """Report finished trials. Failed/pruned trials and NaN values must be accepted."""
        if isinstance(observations, Observation):
            observations = [observations]
        observations = list(observations)
        for o in observations:
            if o.trial_id not in self._pending:
                raise KeyError(f"tell() got trial {o.trial_id}, which is not pending; pending: {sorted(self._pending)}")
        for o in observations:
            self._pending.pop(o.trial_id)
        self._n_told += len(observations)
        self._tell(observations)

    def report(self, trial_id: int, epoch: int, value: float) -> bool:
        """Per-epoch hook for pruner-style strategies; return True to stop the trial now."""
        return False

    @property
    def finished(self) -> bool:
        """True when the strategy has nothing more to suggest, ever (not merely waiting)."""
        if self.max_trials is not None and self._n_told >= self.max_trials:
            return True
        return self._finished()

    @property
    def pending(self) -> list[int]:
        return sorted(self._pending)

    @classmethod
    def library_version(cls) -> str:
        """Version of the wrapped library, for provenance ("" when there is none)."""
        return ""

    @classmethod
    def not_applicable(cls, space: SearchSpace, *, reports_steps: bool = True) -> str | None:
        """Why this strategy cannot search `space` (None: it can), judged from `capabilities`.

        `reports_steps` says whether the problem reports per-step values (see
        `Problem.reports_steps`). The runner asks before building the strategy and records a run
        that is not applicable, with this reason, instead of starting it; a plugin with further
        limits overrides this (calling super) or raises `NotSupportedError` in its constructor.
        """
        caps = cls.capabilities
        if space.is_conditional and not caps.conditional:
            conditional = [p.name for p in space.params if p.condition is not None]
            return (
                f"strategy {cls.name!r} declares capabilities.conditional=False, but search "
                f"space {space.name!r} has conditional parameters {conditional}; use a space "
                f"without conditions or a strategy that handles them (e.g. random, tpe, smac)"
            )
        if caps.multi_fidelity and space.fidelity is None:
            return (
                f"strategy {cls.name!r} hands out budgets (capabilities.multi_fidelity) but "
                f"search space {space.name!r} declares no fidelity; choose a single-fidelity "
                f"strategy (random, tpe, smac, ...) or a space with `fidelity: {{min: .., max: ..}}`"
            )
        if caps.prunes and not reports_steps:
            return (
                f"strategy {cls.name!r} stops trials from their per-step reports "
                f"(capabilities.prunes), but the problem reports no intermediate values, so "
                f"it would never stop one; choose a non-pruning strategy (hyperband, smac_mf, "
                f"random, tpe, ...)"
            )
        if caps.needs_numeric and not any(p.type in ("int", "float") for p in space.params):
            return (
                f"strategy {cls.name!r} models numeric parameters only "
                f"(capabilities.needs_numeric), but every parameter of search space "
                f"{space.name!r} is categorical or boolean; choose e.g. random, tpe or smac"
            )
        return None

    # -- for subclasses --------------------------------------------------------------------
    @abc.abstractmethod
    def _ask(self, n: int) -> Sequence[Suggestion]:
        """Return up to `n` suggestions; may return fewer, or none to mean wait."""

    @abc.abstractmethod
    def _tell(self, observations: Sequence[Observation]) -> None:
        """Learn from observations of trials this strategy handed out."""

    def _finished(self) -> bool:
        return False

    def _new_trial_id(self) -> int:
        trial_id = self._next_trial_id
        self._next_trial_id += 1
        return trial_id


def installed_versions(*distributions: str) -> str:
    """`"smac 2.4.1"` (comma-separated for several) for a `library_version`; uninstalled ones
    are left out."""
    from importlib.metadata import PackageNotFoundError, version

    found = []
    for dist in distributions:
        try:
            found.append(f"{dist} {version(dist)}")
        except PackageNotFoundError:
            continue
    return ", ".join(found)


def missing_libraries(cls: type[Strategy]) -> list[str]:
    """The modules of `cls.requires` that are not installed (cheap: nothing is imported)."""
    import importlib.util

    return [m for m in cls.requires if importlib.util.find_spec(m) is None]


@dataclass(frozen=True)
class StrategyInfo:
    """What the registry knows about an installed strategy without importing it."""

    name: str
    target: str  # "module:Class"
    distribution: str | None = field(default=None)
