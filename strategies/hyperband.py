"""Hyperband (Li et al., JMLR 2018) with keras-tuner's `HyperbandOracle` used standalone.

Brackets of successive halving over training epochs: many configurations get a few epochs, the
best `1/factor` of each round are promoted to `factor` times more. A promoted configuration is a
new trial whose `Suggestion.resume_from` is the trial it continues and whose `budget` is the
*total* epochs it should reach; the objective restores the parent's checkpoint and trains only
the missing epochs. keras-tuner's `tuner/epochs`, `tuner/initial_epoch`, `tuner/trial_id`,
`tuner/bracket` and `tuner/round` bookkeeping is turned into those typed fields and never
appears in `params` (keras-tuner #570).

The first `ask` imports keras_tuner, which imports TensorFlow (keras-tuner #1041).
"""

from __future__ import annotations

import warnings
from typing import Any

from harness.space import SearchSpace
from harness.strategy import Capabilities, Suggestion
from harness.strategies._keras_tuner import KerasTunerStrategy, native_params


class Hyperband(KerasTunerStrategy):
    """keras-tuner's Hyperband oracle, budgets in epochs from the space's fidelity.

    Options: `max_epochs` (default: the space's `fidelity.max`), `min_epochs` (default:
    `fidelity.min`; keras-tuner's smallest rungs are raised to it), and the oracle's own
    `factor` and `hyperband_iterations` (seed 003: 3 and 2). A space whose budget is one of its
    hyperparameters (`fidelity.param`, e.g. `epochs` in `mlp`) is searched without it.

    It finishes when keras-tuner's oracle says STOPPED (all brackets of all iterations done, or
    the space exhausted); it asks to wait (returns []) when the oracle is IDLE.
    """

    name = "hyperband"
    capabilities = Capabilities(conditional=True, multi_fidelity=True, batch=True)
    # One iteration on the toy fidelity (1..9 epochs, factor 3) is 23 trials: it promotes within
    # the suite's 12 trials and finishes within budgets_within_fidelity's 36.
    conformance_options = {"hyperband_iterations": 1}
    _warned_flat_promotion = False  # see _suggestion: warned once per strategy

    def __init__(
        self,
        space: SearchSpace,
        *,
        seed: int = 0,
        max_trials: int | None = None,
        max_epochs: int | None = None,
        min_epochs: int | None = None,
        **oracle_options: Any,
    ):
        super().__init__(space, seed=seed, max_trials=max_trials, **oracle_options)
        fid = space.fidelity  # not None: the base class refuses a space without one
        hi = max_epochs if max_epochs is not None else fid.max
        lo = min_epochs if min_epochs is not None else fid.min
        for label, v in (("max_epochs", hi), ("min_epochs", lo)):
            if type(v) is not int or v < 1:
                raise ValueError(f"{label} must be an int >= 1, but got {v!r}")
        if hi > fid.max:
            raise ValueError(
                f"max_epochs ({hi}) exceeds search space {space.name!r}'s fidelity "
                f"max ({fid.max}); lower it or raise the space's fidelity.max"
            )
        if lo > hi:
            raise ValueError(f"min_epochs ({lo}) must be <= max_epochs ({hi})")
        self.max_epochs, self.min_epochs = hi, lo
        self._searched = space.without_fidelity_param()

    @property
    def searched_space(self) -> SearchSpace:
        return self._searched

    def _oracle_class(self, kt: Any) -> type:
        return kt.oracles.HyperbandOracle

    def _oracle_kwargs(self) -> dict[str, Any]:
        return {**self.oracle_options, "max_epochs": self.max_epochs}

    def _clamp(self, epochs: int) -> int:
        return min(self.max_epochs, max(self.min_epochs, epochs))

    def _suggestion(self, trial_id: int, values: dict[str, Any]) -> Suggestion:
        budget = self._clamp(int(values["tuner/epochs"]))
        parent = values.get("tuner/trial_id")
        if parent is not None and not self._warned_flat_promotion:
            parent_budget = self._clamp(int(values["tuner/initial_epoch"]))
            if budget <= parent_budget:
                # Raising keras-tuner's small rungs to min_epochs can make a rung as long as the
                # one it promotes to: the promoted trial then trains nothing and re-scores its
                # parent, so Hyperband degenerates into random search with wasted trials.
                self._warned_flat_promotion = True
                warnings.warn(
                    f"hyperband: trial {trial_id} is promoted from trial {self._our_ids[parent]} "
                    f"to {budget} epochs, but its parent already trained {parent_budget}: "
                    f"min_epochs={self.min_epochs} raises keras-tuner's "
                    f"{values['tuner/initial_epoch']}-epoch rung to the next rung's budget, so "
                    f"promotions from it train no further epochs and only re-score their parent. "
                    f"Lower min_epochs (or the space's fidelity.min), or raise "
                    f"max_epochs={self.max_epochs} (budget.max_epochs)",
                    stacklevel=2,
                )
        return Suggestion(
            trial_id,
            native_params(self._searched, values),  # drops every tuner/* key
            budget=budget,
            resume_from=self._our_ids[parent] if parent is not None else None,
        )
