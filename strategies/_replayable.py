"""Pickling by replay, for strategies whose library objects cannot be pickled.

SMAC's facade holds generators, so `pickle` refuses it. A strategy with this mixin pickles as
its constructor arguments plus the asks and tells made so far, and unpickles by building a
fresh strategy and replaying those calls. The wrapped library is deterministic under the
strategy's seed (the conformance suite checks it), so the rebuilt strategy is in the same state
and suggests the same next trials. This is the same replay the runner uses to resume a run.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from harness.space import SearchSpace
from harness.strategy import Observation, Suggestion


class ReplayPickling:
    """Mixin for a `Strategy` subclass; call `_remember_arguments` first in `__init__`."""

    def _remember_arguments(self, space: SearchSpace, **kwargs: Any) -> None:
        self._arguments = (space, kwargs)
        self._calls: list[tuple[str, Any]] = []

    def ask(self, n: int = 1) -> list[Suggestion]:
        out = super().ask(n)  # type: ignore[misc]
        self._calls.append(("ask", n))
        return out

    def tell(self, observations: Observation | Iterable[Observation]) -> None:
        observations = [observations] if isinstance(observations, Observation) else list(observations)
        super().tell(observations)  # type: ignore[misc]
        self._calls.append(("tell", observations))

    def __getstate__(self) -> dict[str, Any]:
        return {"arguments": self._arguments, "calls": list(self._calls), "planned_trials": self.planned_trials}  # type: ignore[attr-defined]

    def __setstate__(self, state: dict[str, Any]) -> None:
        space, kwargs = state["arguments"]
        self.__init__(space, **kwargs)  # type: ignore[misc]
        self.planned_trials = state["planned_trials"]
        for method, argument in state["calls"]:
            getattr(self, method)(argument)
