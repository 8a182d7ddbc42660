"""Random search with keras-tuner's `RandomSearchOracle` used standalone (seeds 003 and 004
ran `kt.RandomSearch`): the same sampler, so a preset with the seed's `seed=42` draws from
keras-tuner's own random stream. `random` (NumPy) is the cheaper default for comparisons.

The first `ask` imports keras_tuner, which imports TensorFlow (keras-tuner #1041).
"""

from __future__ import annotations

from typing import Any

from harness.strategy import Capabilities
from harness.strategies._keras_tuner import KerasTunerStrategy


class KerasTunerRandomSearch(KerasTunerStrategy):
    """keras-tuner's `RandomSearchOracle`; options pass to it unchanged."""

    name = "kt_random"
    capabilities = Capabilities(conditional=True, multi_fidelity=False, batch=True)

    def _oracle_class(self, kt: Any) -> type:
        return kt.oracles.RandomSearchOracle

    def _oracle_kwargs(self) -> dict[str, Any]:
        # keras-tuner's own default is max_trials=10; the harness's budget decides instead.
        return {**self.oracle_options, "max_trials": None}
