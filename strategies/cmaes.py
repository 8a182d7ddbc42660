"""CMA-ES (Hansen & Ostermeier, 2001) through Optuna's `CmaEsSampler`, which drives the `cmaes`
package (Nomura & Shibata, 2024).

CMA-ES models the numeric parameters jointly (ints included, as Optuna rounds them); Optuna
samples categorical and boolean parameters independently with its `RandomSampler`, as its
documentation describes. That fallback is announced once, when the strategy is built, instead
of Optuna's warning per trial and parameter. A conditional space is not applicable (CMA-ES
needs one fixed set of numeric parameters), nor is a space without numeric parameters.

Population: `popsize` defaults to CMA-ES's own 4 + floor(3 ln D) (8 in 5-D, 12 in 20-D), the
smallest population its step-size rules are tuned for, so that a budget of ~100 trials still
runs a dozen generations. There are no restarts: Optuna 4.4 deprecated `restart_strategy`
(IPOP/BIPOP) and ignores it.
"""

from __future__ import annotations

import warnings
from typing import Any

from harness.space import SearchSpace
from harness.strategies._optuna import OptunaStrategy
from harness.strategy import Capabilities, installed_versions


class CMAES(OptunaStrategy):
    """Optuna's `CmaEsSampler(seed=seed, **params)`; options are its own (popsize, sigma0,
    with_margin, lr_adapt, use_separable_cma, n_startup_trials, ...)."""

    name = "cmaes"
    requires = {"cmaes": "cmaes"}
    capabilities = Capabilities(conditional=False, multi_fidelity=False, batch=True, needs_numeric=True)

    def __init__(self, space: SearchSpace, *, seed: int = 0, max_trials: int | None = None, **sampler_options: Any):
        # Announced once below rather than by Optuna on every trial.
        sampler_options.setdefault("warn_independent_sampling", False)
        super().__init__(space, seed=seed, max_trials=max_trials, **sampler_options)
        independent = [p.name for p in space.params if p.type in ("categorical", "bool")]
        if independent:
            warnings.warn(
                f"cmaes: CMA-ES models numeric parameters only; {independent} of search "
                f"space {space.name!r} are sampled independently at random (Optuna's "
                f"fallback for categorical parameters)",
                stacklevel=2,
            )

    @classmethod
    def library_version(cls) -> str:
        return installed_versions("optuna", "cmaes")

    def _sampler_class(self, optuna: Any) -> type:
        return optuna.samplers.CmaEsSampler
