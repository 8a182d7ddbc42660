"""TPE with Hyperband early stopping, the common "TPE + Hyperband" setup: Optuna's `TPESampler`
with its `HyperbandPruner` (Li et al., JMLR 2018; Optuna's pruner runs the brackets
asynchronously, each bracket a successive-halving pruner, and TPE models each bracket's trials).

Every trial is started with the full budget and reports after each step; the pruner assigns
it to a bracket and stops it at that bracket's rungs when it falls out of the top
`1/reduction_factor`.
"""

from __future__ import annotations

from typing import Any

from harness.strategies._optuna import OptunaPruningStrategy


class TPEHyperband(OptunaPruningStrategy):
    """Optuna's `TPESampler` (or `sampler: random`) with `HyperbandPruner(min_resource,
    max_resource=fidelity.max, reduction_factor)`; budgets in the space's fidelity units."""

    name = "tpe_hyperband"
    default_sampler = "tpe"

    def _pruner_spec(self) -> dict[str, Any]:
        return {
            "name": "hyperband",
            "min_resource": self.min_resource,
            "max_resource": self.max_resource,
            "reduction_factor": self.reduction_factor,
        }
