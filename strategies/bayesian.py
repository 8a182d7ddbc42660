"""Gaussian-process Bayesian optimisation (Snoek et al., NeurIPS 2012; GP-UCB, Srinivas et al.,
ICML 2010) with keras-tuner's `BayesianOptimizationOracle` used standalone.

After `num_initial_points` random trials (default: 3 x the number of parameters) every ask fits
a GP (Matern 5/2, 20 optimizer restarts) to all finished trials and minimises the UCB
acquisition from 50 L-BFGS-B starts. That costs far more than a random or TPE ask (tenths of a
second to seconds, growing with the number of trials); on small data it can dominate a trial,
and the runner records it as `ask_seconds` rather than hiding it.

Conditional parameters are supported the way keras-tuner supports them: they are declared in a
`conditional_scope`, sampled only when active, and embedded at their default value when
inactive for the GP (a simplification of keras-tuner's; the GP sees a constant there).

The first `ask` imports keras_tuner, which imports TensorFlow (keras-tuner #1041).
"""

from __future__ import annotations

from typing import Any

from harness.strategy import Capabilities
from harness.strategies._keras_tuner import KerasTunerStrategy


class BayesianOptimization(KerasTunerStrategy):
    """keras-tuner's GP-UCB oracle. Options pass to it unchanged: `alpha` (GP noise, seed 003:
    1e-4), `beta` (exploration weight of the UCB, seed 003: 2.6), `num_initial_points`."""

    name = "bayesian"
    capabilities = Capabilities(conditional=True, multi_fidelity=False, batch=True)
    # Each GP ask costs seconds (thousands of GP predictions for the acquisition), and
    # keras-tuner counts only COMPLETED trials towards num_initial_points, so the conformance
    # suite (few trials, a third of them failed) exercises the adapter on the random start-up
    # phase only. The GP phase (bounds, determinism, pickling with pending trials, failed and
    # NaN results among completed ones) is tested in tests/test_strategies_keras_tuner.py.
    conformance_options = {"num_initial_points": 3}
    conformance_trials = 4

    def _oracle_class(self, kt: Any) -> type:
        return kt.oracles.BayesianOptimizationOracle

    def _oracle_kwargs(self) -> dict[str, Any]:
        # keras-tuner's own default is max_trials=10; the harness's budget decides instead.
        return {**self.oracle_options, "max_trials": None}
