"""Quasi-random search with a scrambled Sobol sequence (Sobol' 1967; Owen 1998 scrambling).

Each point of a low-discrepancy sequence in [0, 1)^d is decoded into one configuration, so the
space is covered more evenly than by independent random draws. scipy is imported on first ask.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from harness.space import SearchSpace
from harness.strategy import Capabilities, Observation, Strategy, Suggestion


def decode(space: SearchSpace, point: Sequence[float]) -> dict[str, Any]:
    """One coordinate per parameter; conditional ones are decoded only when active."""
    params: dict[str, Any] = {}
    for p, u in zip(space.params, point):
        if p.condition is not None and not p.condition.holds(params):
            continue
        u = min(max(float(u), 0.0), 1.0)
        if p.type == "int":
            if p.log:
                v = math.exp(math.log(p.low) + u * (math.log(p.high + 1) - math.log(p.low)))
                params[p.name] = min(p.high, max(p.low, int(v)))
            else:
                n = (p.high - p.low) // p.step + 1
                params[p.name] = p.low + p.step * min(n - 1, int(u * n))
        elif p.type == "float":
            lo, hi = (math.log(p.low), math.log(p.high)) if p.log else (p.low, p.high)
            v = lo + u * (hi - lo)
            params[p.name] = min(p.high, max(p.low, math.exp(v) if p.log else v))
        elif p.type == "categorical":
            params[p.name] = p.choices[min(len(p.choices) - 1, int(u * len(p.choices)))]
        else:
            params[p.name] = u >= 0.5
    return params


class Sobol(Strategy):
    """Scrambled Sobol points decoded into the space; learns nothing, never waits."""

    name = "sobol"
    capabilities = Capabilities(conditional=True, multi_fidelity=False, batch=True)

    def __init__(self, space: SearchSpace, *, seed: int = 0, max_trials: int | None = None, scramble: bool = True):
        super().__init__(space, seed=seed, max_trials=max_trials)
        if not isinstance(scramble, bool):
            raise TypeError(f"scramble must be a bool, but got {scramble!r}")
        self.scramble = scramble
        self._engine: Any = None
        self._buffer: list[Any] = []

    @classmethod
    def library_version(cls) -> str:
        from importlib.metadata import version

        return f"scipy {version('scipy')}"

    def _ask(self, n: int) -> Sequence[Suggestion]:
        if self._engine is None:
            from scipy.stats import qmc

            self._engine = qmc.Sobol(d=len(self.space.params), scramble=self.scramble, seed=self.seed)
        while len(self._buffer) < n:
            # Draw in blocks that keep the total a power of two (Sobol's balance properties).
            self._buffer.extend(self._engine.random(max(64, self._engine.num_generated)))
        points, self._buffer = self._buffer[:n], self._buffer[n:]
        return [Suggestion(self._new_trial_id(), decode(self.space, row)) for row in points]

    def _tell(self, observations: Sequence[Observation]) -> None:
        pass  # space-filling design: results do not change the next points
