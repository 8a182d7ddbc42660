"""TPE (Bergstra et al., NeurIPS 2011) through Optuna's ask/tell API: `TPESampler` in an
`OptunaStrategy` (see `harness.strategies._optuna`)."""

from __future__ import annotations

from typing import Any

from harness.strategies._optuna import OptunaStrategy, suggest_params

__all__ = ["TPE", "suggest_params"]


class TPE(OptunaStrategy):
    """Tree-structured Parzen Estimator: Optuna's `TPESampler(seed=seed, **params)`.

    Options are TPESampler's own (n_startup_trials, multivariate, group, constant_liar, ...).
    Conditional spaces are handled by define-by-run; `group=True` with `multivariate=True`
    models the conditional sub-spaces jointly.
    """

    name = "tpe"

    def _sampler_class(self, optuna: Any) -> type:
        return optuna.samplers.TPESampler
