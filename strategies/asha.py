"""ASHA, asynchronous successive halving (Li et al., MLSys 2020), as Optuna implements it:
`SuccessiveHalvingPruner` with a random (default) or TPE sampler.

Every trial is started with the full budget and reports after each step (epoch). At each rung
(`min_resource * reduction_factor**k` steps) a trial goes on only if it is in the top
`1/reduction_factor` of the trials that reached that rung so far; otherwise it stops there
(status `pruned`). Decisions never wait for a rung to fill, so every worker stays busy: the
asynchronous variant Ray Tune and syne-tune run by default.
"""

from __future__ import annotations

from typing import Any

from harness.strategies._optuna import OptunaPruningStrategy


class ASHA(OptunaPruningStrategy):
    """Optuna's `SuccessiveHalvingPruner(min_resource, reduction_factor)` over a random or TPE
    sampler (`sampler: random|tpe`); budgets in the space's fidelity units (epochs)."""

    name = "asha"
    default_sampler = "random"

    def _pruner_spec(self) -> dict[str, Any]:
        return {
            "name": "successive_halving",
            "min_resource": self.min_resource,
            "reduction_factor": self.reduction_factor,
            "min_early_stopping_rate": 0,
        }
