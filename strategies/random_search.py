"""Random search (Bergstra & Bengio, JMLR 2012): independent draws from the search space."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from harness.space import SearchSpace, sample
from harness.strategy import Capabilities, Observation, Strategy, Suggestion


class RandomSearch(Strategy):
    """Uniform (log-uniform where declared) independent sampling, seeded with its own Generator.

    It learns nothing from results, so it never waits; it finishes only at `max_trials`.
    """

    name = "random"
    capabilities = Capabilities(conditional=True, multi_fidelity=False, batch=True)

    def __init__(self, space: SearchSpace, *, seed: int = 0, max_trials: int | None = None):
        super().__init__(space, seed=seed, max_trials=max_trials)
        self._rng = np.random.default_rng(seed)

    @classmethod
    def library_version(cls) -> str:
        return f"numpy {np.__version__}"

    def _ask(self, n: int) -> Sequence[Suggestion]:
        return [Suggestion(self._new_trial_id(), sample(self.space, self._rng)) for _ in range(n)]

    def _tell(self, observations: Sequence[Observation]) -> None:
        pass  # random search does not learn
