"""The Problem contract: what a strategy is measured on (Keras training, BBOB, scikit-learn...).

A problem owns everything about *evaluating* a configuration; the runner owns the loop, the
budgets, timing, failures and persistence, and knows nothing of any framework. A problem
plugin is a `Problem` subclass registered in the entry-point group `harness.problems` and
selected with `problem=<name>` (`conf/problem/<name>.yaml`). Modules that define problems stay
cheap to import: heavy libraries (TensorFlow, a benchmark suite's data) are imported in
`setup()`, which runs once in each process that evaluates trials.

Life cycle, as the runner drives it::

    problem = ProblemClass(seed=0, config=resolved_config, **problem_options)  # validate, cheap
    problem.space, problem.objective, problem.optimum, problem.instance       # read by the runner
    # ... pickled to each worker process, then there:
    problem.setup()                                   # once per process: load data, import libs
    result = problem.evaluate(suggestion, report)     # per trial -> EvalResult

`report(step, value)` may be called once per step (epoch, iteration) with the objective so far,
in the problem's own direction; it returns True when the strategy wants the trial stopped
(the problem then returns status `pruned`).
"""

from __future__ import annotations

import abc
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Literal

from harness.space import SearchSpace
from harness.strategy import Suggestion, TrialStatus

Direction = Literal["maximize", "minimize"]
Report = Callable[[int, float], bool]  # (step, objective so far) -> stop this trial?


@dataclass(frozen=True)
class ObjectiveInfo:
    """What the strategy optimises: its name (a row's `objective_name`) and direction."""

    name: str
    direction: Direction = "maximize"

    def __post_init__(self) -> None:
        if self.direction not in ("maximize", "minimize"):
            raise ValueError(f"objective direction must be 'maximize' or 'minimize', but got {self.direction!r}")

    def to_max(self, value: float) -> float:
        """The value as a strategy sees it: strategies always maximise."""
        return value if self.direction == "maximize" else -value


@dataclass(frozen=True)
class EvalResult:
    """The outcome of evaluating one suggestion; every field but `status`/`objective` optional.

    `objective` is in the problem's own direction (e.g. validation accuracy, maximised, or f(x),
    minimised); `test_objective` is the same metric on held-out data, reported and never
    optimised. `budget` is the fidelity reached when the trial ended (epochs in total),
    `budget_spent` what this trial itself consumed (a resumed trial: only the new epochs).
    `cost_seconds` is what the evaluation cost: None lets the runner use the wall time it
    measured; a problem whose cost is simulated sets it. `metrics` become `metric.<name>`
    columns; `history` is one mapping per step; `predictions` (arrays: `y_true`, `y_pred`,
    optional `class_names`) are saved for the run's best trial, for the report.
    """

    status: TrialStatus
    objective: float
    test_objective: float | None = None
    budget: int | None = None
    budget_spent: int | None = None
    cost_seconds: float | None = None
    metrics: Mapping[str, Any] = field(default_factory=dict)
    history: list[dict[str, Any]] = field(default_factory=list)
    error: str | None = None
    predictions: Mapping[str, Any] | None = field(default=None, repr=False)

    @classmethod
    def failed(cls, error: str, *, budget: int | None = None) -> EvalResult:
        return cls(TrialStatus.FAILED, math.nan, budget=budget, budget_spent=0, error=error)


class Problem(abc.ABC):
    """Base class of every problem plugin.

    Subclasses set `name` (= entry-point name = `conf/problem/<name>.yaml`'s `name`) and, in
    `__init__`, `self.space`, `self.objective` and optionally `self.optimum` (the best possible
    objective value: rows then get `regret`) and `self.instance` (a short label of this problem
    instance, used in run ids and the report, e.g. ``f7-d5-i1``). `__init__` validates its
    options and raises `ValueError`/`TypeError` naming the value and what is accepted; it
    must not import heavy libraries. `isolate` is the default of `worker.processes`: True for
    problems that should run in worker processes (memory that grows per trial, crashes, hangs),
    False for cheap in-process ones.

    `known_failures` maps a problem-conformance check name to the reason this plugin is known
    to fail it (the suite runs those checks as strict xfail); `conformance_overrides` are Hydra
    overrides the suite composes the problem's config with (e.g. a small dataset).
    """

    name: ClassVar[str] = ""
    isolate: ClassVar[bool] = False
    known_failures: ClassVar[dict[str, str]] = {}
    conformance_overrides: ClassVar[list[str]] = []
    # True for problems whose cost is reported rather than spent (tabular benchmarks): the runner
    # then runs a simulated clock, each trial taking its `cost_seconds`.
    simulated_clock: ClassVar[bool] = False
    # True for problems that call `report(step, value)` during a trial (per epoch, per step):
    # pruning strategies (asha, tpe_hyperband) are not applicable to problems that never do.
    reports_steps: ClassVar[bool] = False
    # True for problems that can retrain a selected configuration on training + validation data
    # and score it on the test set (`refit`; config `refit.enabled=true`).
    can_refit: ClassVar[bool] = False

    space: SearchSpace
    objective: ObjectiveInfo
    optimum: float | None = None
    instance: str = ""
    # Set by the runner before `setup`: a folder of the run's own for files kept between trials
    # (checkpoints), and whether the strategy hands out budgets and resumes parents.
    workdir: Path | None = None
    multi_fidelity: bool = False

    def __init__(self, *, seed: int = 0, config: Mapping[str, Any] | None = None):
        """`config` is the whole resolved run config (for problems that compose other groups,
        e.g. `dataset`); the problem's own options arrive as keyword arguments."""
        if type(seed) is not int:
            raise TypeError(f"seed must be an int, but got {seed!r}")
        self.seed = seed
        budget = (config or {}).get("budget") or {}
        self.max_fidelity: int | None = budget.get("max_epochs")

    # -- the contract ----------------------------------------------------------------------
    def check(self) -> None:
        """Once in the runner's process before any worker starts: raise a `HarnessError` for an
        environment problem every trial would hit (a missing data file), so the run stops with
        one message instead of N failed trials. Keep it cheap."""

    def setup(self) -> None:
        """Once per evaluating process, before the first `evaluate`: load data, import libraries."""

    @abc.abstractmethod
    def evaluate(self, suggestion: Suggestion, report: Report | None = None) -> EvalResult:
        """Evaluate one suggestion; a trial's own exception is recorded as a failed row."""

    def refit(self, suggestion: Suggestion, budget: int | None = None) -> EvalResult:
        """Retrain `suggestion`'s configuration from scratch on training + validation data (at
        `budget`, e.g. epochs; None: the problem's default for it) and return its test metric as
        `test_objective` (`objective` NaN: no held-out validation data is left). Runs where
        `evaluate` runs (a worker process). Only problems with `can_refit = True` implement it."""
        raise NotImplementedError(f"problem {self.name!r} cannot refit a configuration")

    def identity(self) -> dict[str, Any]:
        """What makes two runs of this problem the same problem (hashed into the run id)."""
        return {"problem": self.name, "instance": self.instance}

    def describe(self) -> dict[str, Any]:
        """Descriptive row columns: `search_space`, `dataset`, `task`, `trainer` (None where
        meaningless) and `library_version` (for `_run.json`)."""
        return {"search_space": self.space.name, "dataset": None, "task": None, "trainer": None}

    @classmethod
    def library_version(cls) -> str:
        """Version of the library that defines the problem, for provenance ("" when none)."""
        return ""

    def seed_info(self) -> dict[str, Any]:
        """How the problem derives seeds of its own from the run seed, for `_run.json`."""
        return {}

    # -- helpers for subclasses --------------------------------------------------------------
    def resume(self, rows: list[dict[str, Any]]) -> None:
        """Called once when a run resumes, before any worker starts, with the rows recorded so
        far. A problem that keeps state between trials in memory restores it here (the tabular
        problem: the epochs each trial reached, which a promotion continues from); default none."""

    def fidelity_for(self, suggestion: Suggestion, default: int | None = None) -> int | None:
        """The fidelity to evaluate at (see `resolve_fidelity`), capped by `budget.max_epochs`."""
        return resolve_fidelity(self.space, suggestion, default=default, cap=self.max_fidelity)

    def regret(self, objective: float | None) -> float | None:
        """How far the objective is from the known optimum, in the direction of improvement
        (>= 0 for valid values; None when the optimum is unknown)."""
        if self.optimum is None or objective is None or not math.isfinite(objective):
            return None
        gap = objective - self.optimum
        return gap if self.objective.direction == "minimize" else -gap


def resolve_fidelity(
    space: SearchSpace, suggestion: Suggestion, *, default: int | None = None, cap: int | None = None
) -> int | None:
    """The strategy's budget, else the space's fidelity param, else the fidelity's maximum (else
    `default`); at most `cap` when one is given."""
    fid = space.fidelity
    if suggestion.budget is not None:
        value: int | None = suggestion.budget
    elif fid is not None and fid.param and fid.param in suggestion.params:
        value = int(suggestion.params[fid.param])
    elif fid is not None:
        value = fid.max
    else:
        value = default
    return min(value, cap) if value is not None and cap else value


@dataclass(frozen=True)
class ProblemInfo:
    """What the registry knows about an installed problem without importing it."""

    name: str
    target: str  # "module:Class"
    distribution: str | None = None
