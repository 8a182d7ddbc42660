"""Nevergrad (Rapin & Teytaud, 2018) through its ask/tell interface, with its `NGOpt` portfolio
by default (Meunier et al., IEEE TEC 2022): an algorithm selector that picks an optimiser from
the dimension, the parameter types, the budget and the number of workers.

The harness's space becomes an `ng.p.Dict`: ints as integer-cast scalars (log-scaled where
declared, a `step` as an index over its values), floats as `Scalar` or `Log`, categoricals and
booleans as `Choice`. Nevergrad has no conditional parameters, so a conditional space is not
applicable. It minimises; loss = -value. Failed and non-finite trials are told as loss +inf,
which Nevergrad clips to its largest loss (the worst possible outcome, so rank-based
optimisers discard them); its warning about the clipping is silenced, as is scipy's COBYLA
warning about the tolerance NGOpt's portfolio passes it (neither is the user's to act on).

Nevergrad plans with the run's trial budget (`planned_trials`; 100 when the run is
time-bounded) and `num_workers` (default 1: set it to the run's `n_workers`).
"""

from __future__ import annotations

import contextlib
import warnings
from collections.abc import Iterator, Sequence
from typing import Any

from harness.space import BoolParam, CategoricalParam, FloatParam, IntParam, SearchSpace
from harness.strategy import PLANNED_TRIALS_WHEN_UNKNOWN, Capabilities, Observation, Strategy, Suggestion, installed_versions


def to_parametrization(space: SearchSpace, seed: int) -> Any:
    """An `ng.p.Dict` for a space without conditions, seeded with `seed`."""
    import nevergrad as ng
    import numpy as np

    items = {}
    for p in space.params:
        if isinstance(p, IntParam) and p.step > 1:
            items[p.name] = ng.p.Scalar(lower=0, upper=p.n_values - 1).set_integer_casting()
        elif isinstance(p, IntParam):
            kind = ng.p.Log if p.log else ng.p.Scalar
            items[p.name] = kind(lower=p.low, upper=p.high).set_integer_casting()
        elif isinstance(p, FloatParam):
            kind = ng.p.Log if p.log else ng.p.Scalar
            items[p.name] = kind(lower=float(p.low), upper=float(p.high))
        elif isinstance(p, (CategoricalParam, BoolParam)):
            items[p.name] = ng.p.Choice(list(p.choices))
        else:  # pragma: no cover - the space model has exactly these kinds
            raise TypeError(f"unsupported parameter kind {type(p).__name__} for {p.name!r}")
    parametrization = ng.p.Dict(**items)
    parametrization.random_state = np.random.RandomState(seed)
    return parametrization


def from_value(space: SearchSpace, value: dict[str, Any]) -> dict[str, Any]:
    """Native Python params from a candidate's value, in the space's order."""
    params: dict[str, Any] = {}
    for p in space.params:
        v = value[p.name]
        if isinstance(p, IntParam):
            v = p.low + p.step * int(v) if p.step > 1 else int(v)
            params[p.name] = min(p.high, max(p.low, v))
        elif isinstance(p, FloatParam):
            params[p.name] = min(p.high, max(p.low, float(v)))
        elif isinstance(p, BoolParam):
            params[p.name] = bool(v)
        else:  # a categorical choice, as declared (numpy scalars made native)
            params[p.name] = v.item() if hasattr(v, "item") else v
    return params


class Nevergrad(Strategy):
    """Any Nevergrad optimiser by its registry name (`optimizer`, default `NGOpt`).

    Options: `optimizer` (e.g. NGOpt, TwoPointsDE, PortfolioDiscreteOnePlusOne, CMA, TBPSA, ...:
    `nevergrad.optimizers.registry`), `num_workers` (default 1).
    """

    name = "nevergrad"
    requires = {"nevergrad": "nevergrad"}
    capabilities = Capabilities(conditional=False, multi_fidelity=False, batch=True)

    def __init__(
        self, space: SearchSpace, *, seed: int = 0, max_trials: int | None = None, optimizer: str = "NGOpt", num_workers: int = 1
    ):
        super().__init__(space, seed=seed, max_trials=max_trials)
        if not isinstance(optimizer, str) or not optimizer:
            raise ValueError(f"optimizer must be a Nevergrad optimiser name, but got {optimizer!r}")
        if type(num_workers) is not int or num_workers < 1:
            raise ValueError(f"num_workers must be an int >= 1, but got {num_workers!r}")
        self.optimizer_name, self.num_workers = optimizer, num_workers
        self._optimizer: Any = None
        self._candidates: dict[int, Any] = {}

    @classmethod
    def library_version(cls) -> str:
        return installed_versions("nevergrad")

    def _build(self) -> Any:
        import nevergrad as ng

        registry = ng.optimizers.registry
        if self.optimizer_name not in registry:
            from harness.errors import ConfigError

            close = sorted(n for n in registry if n.lower().startswith(self.optimizer_name[:3].lower()))[:8]
            raise ConfigError(
                f"strategy nevergrad: optimizer {self.optimizer_name!r} is not in "
                f"nevergrad.optimizers.registry ({len(registry)} names; e.g. NGOpt, "
                f"TwoPointsDE, CMA{', close: ' + ', '.join(close) if close else ''})"
            )
        return registry[self.optimizer_name](
            parametrization=to_parametrization(self.space, self.seed),
            budget=self.planned_trials or PLANNED_TRIALS_WHEN_UNKNOWN,
            num_workers=self.num_workers,
        )

    def _ask(self, n: int) -> Sequence[Suggestion]:
        if self._optimizer is None:
            self._optimizer = self._build()
        out = []
        for _ in range(n):
            with _quiet():
                candidate = self._optimizer.ask()
            trial_id = self._new_trial_id()
            self._candidates[trial_id] = candidate
            out.append(Suggestion(trial_id, from_value(self.space, candidate.value)))
        return out

    def _tell(self, observations: Sequence[Observation]) -> None:
        for o in observations:
            candidate = self._candidates.pop(o.trial_id)
            loss = -float(o.value) if o.usable else float("inf")
            with _quiet():
                self._optimizer.tell(candidate, loss)


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    """Silence what Nevergrad warns about its own doings, which a user cannot act on: the clipping
    of an infinite loss (our failed trials, on purpose), and scipy's COBYLA complaining about the
    tolerance NGOpt's portfolio passes it."""
    from nevergrad.common.errors import LossTooLargeWarning

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", LossTooLargeWarning)
        warnings.filterwarnings("ignore", message="COBYLA: Invalid RHOEND")
        yield
