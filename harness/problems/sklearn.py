"""`problem=sklearn`: tune a scikit-learn estimator on a dataset, in the style of bayesmark.

    harness problem=sklearn problem.model=svm dataset=wine strategy=tpe budget.trials=30

The models and their search spaces are bayesmark's (Turner et al., "Bayesian Optimization is
Superior to Random Search for Machine Learning Hyperparameter Tuning", NeurIPS 2020
competition; `bayesmark/sklearn_funcs.py`), carried over as facts: same parameters, ranges and
log scales. Differences, because bayesmark's `logit` warping has no counterpart in the
harness's spaces and scikit-learn has changed since: logit-scaled ranges are searched
uniformly; `normalize` (removed from scikit-learn) is dropped from lasso and ridge; the random
forest's tree count and the MLP's iterations are the problem's fidelity (bayesmark fixes 10
trees and 200 iterations), so multi-fidelity strategies run on them.

Validation objective: the mean over `cv_folds` stratified (classification) or plain k-fold
splits of the training part (the dataset's train + validation shares) of accuracy (maximised)
or RMSE in the target's units (minimised). Test objective: the model refitted on the whole
training part, scored on the held-out test split. Folds and estimators are seeded by the run
seed, so a configuration's scores are deterministic per seed.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Mapping
from typing import Any

from harness.datasets import check_dataset_config, dataset_label, dataset_task
from harness.errors import ConfigError
from harness.problem import EvalResult, ObjectiveInfo, Problem, Report
from harness.space import SearchSpace
from harness.strategy import Suggestion, TrialStatus

LOG = {"log": True}

# model -> (space params, fidelity or None, classifier, regressor). Estimators are named as
# `module:Class` and imported in setup(). The params follow bayesmark's sklearn_funcs.py.
_TREE = {
    "max_depth": {"type": "int", "low": 1, "high": 15},
    "max_features": {"type": "float", "low": 0.01, "high": 0.99},
    "min_samples_split": {"type": "float", "low": 0.01, "high": 0.99},
    "min_samples_leaf": {"type": "float", "low": 0.01, "high": 0.49},
    "min_weight_fraction_leaf": {"type": "float", "low": 0.01, "high": 0.49},
    "min_impurity_decrease": {"type": "float", "low": 0.0, "high": 0.5},
}
MODELS: dict[str, dict[str, Any]] = {
    "svm": {
        "params": {
            "C": {"type": "float", "low": 1.0, "high": 1.0e3, **LOG},
            "gamma": {"type": "float", "low": 1.0e-4, "high": 1.0e-3, **LOG},
            "tol": {"type": "float", "low": 1.0e-5, "high": 1.0e-1, **LOG},
        },
        "regression_params": {"epsilon": {"type": "float", "low": 1.0e-2, "high": 1.0, **LOG}},
        "classifier": "sklearn.svm:SVC",
        "regressor": "sklearn.svm:SVR",
    },
    "knn": {
        "params": {"n_neighbors": {"type": "int", "low": 1, "high": 25}, "p": {"type": "int", "low": 1, "high": 4}},
        "classifier": "sklearn.neighbors:KNeighborsClassifier",
        "regressor": "sklearn.neighbors:KNeighborsRegressor",
    },
    "dt": {
        "params": _TREE,
        "classifier": "sklearn.tree:DecisionTreeClassifier",
        "regressor": "sklearn.tree:DecisionTreeRegressor",
        "seeded": True,
    },
    "rf": {
        "params": _TREE,
        "fidelity": {"param": None, "min": 4, "max": 64, "option": "n_estimators"},
        "classifier": "sklearn.ensemble:RandomForestClassifier",
        "regressor": "sklearn.ensemble:RandomForestRegressor",
        "seeded": True,
    },
    "mlp": {  # bayesmark's MLP-adam
        "params": {
            "hidden_layer_sizes": {"type": "int", "low": 50, "high": 200},
            "alpha": {"type": "float", "low": 1.0e-5, "high": 1.0e1, **LOG},
            "batch_size": {"type": "int", "low": 10, "high": 250},
            "learning_rate_init": {"type": "float", "low": 1.0e-5, "high": 1.0e-1, **LOG},
            "tol": {"type": "float", "low": 1.0e-5, "high": 1.0e-1, **LOG},
            "validation_fraction": {"type": "float", "low": 0.1, "high": 0.9},
            "beta_1": {"type": "float", "low": 0.5, "high": 0.99},
            "beta_2": {"type": "float", "low": 0.9, "high": 1.0 - 1.0e-6},
            "epsilon": {"type": "float", "low": 1.0e-9, "high": 1.0e-6, **LOG},
        },
        "fidelity": {"param": None, "min": 10, "max": 200, "option": "max_iter"},
        "fixed": {"solver": "adam", "early_stopping": True},
        "classifier": "sklearn.neural_network:MLPClassifier",
        "regressor": "sklearn.neural_network:MLPRegressor",
        "seeded": True,
    },
    "ada": {
        "params": {
            "n_estimators": {"type": "int", "low": 10, "high": 100},
            "learning_rate": {"type": "float", "low": 1.0e-4, "high": 1.0e1, **LOG},
        },
        "classifier": "sklearn.ensemble:AdaBoostClassifier",
        "regressor": "sklearn.ensemble:AdaBoostRegressor",
        "seeded": True,
    },
    "lasso": {
        "params": {
            "alpha": {"type": "float", "low": 1.0e-2, "high": 1.0e2, **LOG},
            "fit_intercept": {"type": "bool"},
            "max_iter": {"type": "int", "low": 10, "high": 5000, **LOG},
            "tol": {"type": "float", "low": 1.0e-5, "high": 1.0e-1, **LOG},
            "positive": {"type": "bool"},
        },
        "regressor": "sklearn.linear_model:Lasso",
        "seeded": True,
    },
    "ridge": {
        "params": {
            "alpha": {"type": "float", "low": 1.0e-2, "high": 1.0e2, **LOG},
            "fit_intercept": {"type": "bool"},
            "solver": {"type": "categorical", "choices": ["auto", "svd", "cholesky", "lsqr", "sparse_cg", "sag", "saga"]},
            "tol": {"type": "float", "low": 1.0e-5, "high": 1.0e-1, **LOG},
        },
        "regressor": "sklearn.linear_model:Ridge",
        "seeded": True,
    },
}


def model_space(model: str, task: str) -> SearchSpace:
    """The search space of `model` for a `task` (classification or regression)."""
    spec = MODELS[model]
    params = dict(spec["params"])
    if task == "regression":
        params.update(spec.get("regression_params", {}))
    cfg: dict[str, Any] = {"name": f"sklearn_{model}", "params": params, "description": f"bayesmark's {model} space"}
    fidelity = spec.get("fidelity")
    if fidelity:
        cfg["fidelity"] = {"min": fidelity["min"], "max": fidelity["max"]}
    return SearchSpace.from_config(cfg)


def _load(target: str) -> Any:
    import importlib

    module, _, name = target.partition(":")
    return getattr(importlib.import_module(module), name)


class SklearnProblem(Problem):
    """A scikit-learn estimator on a dataset; see the module docstring."""

    name = "sklearn"
    isolate = False
    conformance_overrides = ["problem.model=rf", "dataset=iris"]

    def __init__(self, *, seed: int = 0, config: Mapping[str, Any] | None = None, model: str = "svm", cv_folds: int = 5):
        super().__init__(seed=seed, config=config)
        if model not in MODELS:
            raise ValueError(
                f"problem.model must be one of {', '.join(sorted(MODELS))}, but got {model!r}; e.g. `problem.model=svm`"
            )
        if type(cv_folds) is not int or cv_folds < 2:
            raise ValueError(f"problem.cv_folds must be an integer >= 2, but got {cv_folds!r}; e.g. `problem.cv_folds=5`")
        dataset = (config or {}).get("dataset")
        if not isinstance(dataset, Mapping):
            raise ConfigError("problem sklearn needs a `dataset` group; choose one with `dataset=<name>`")
        self.dataset = dict(dataset)
        check_dataset_config(self.dataset)
        self.task = dataset_task(self.dataset)
        self.model, self.cv_folds = model, cv_folds
        spec = MODELS[model]
        kind = "classifier" if self.task == "classification" else "regressor"
        if kind not in spec:
            options = sorted(m for m, s in MODELS.items() if kind in s)
            raise ValueError(
                f"model {model!r} has no {self.task} estimator (dataset "
                f"{self.dataset['name']!r}); for {self.task} choose one of {', '.join(options)}"
            )
        self.space = model_space(model, self.task)
        classification = self.task == "classification"
        self.objective = ObjectiveInfo(
            "cv_accuracy" if classification else "cv_rmse", "maximize" if classification else "minimize"
        )
        self.instance = f"{model}_{dataset_label(self.dataset)}"
        self._data: Any = None

    def identity(self) -> dict[str, Any]:
        return {
            "problem": self.name,
            "model": self.model,
            "cv_folds": self.cv_folds,
            "dataset": {k: v for k, v in self.dataset.items() if k != "cache_dir"},
        }

    def describe(self) -> dict[str, Any]:
        return {"search_space": self.space.name, "dataset": dataset_label(self.dataset), "task": self.task, "trainer": None}

    @classmethod
    def library_version(cls) -> str:
        from harness.provenance import package_version

        return f"scikit-learn {package_version('scikit-learn')}"

    def check(self) -> None:
        import numpy as np

        self.setup()  # a missing dataset file is one clear error before the first trial
        if self.task == "classification":
            smallest = int(np.unique(self._data[1], return_counts=True)[1].min())
            if smallest < self.cv_folds:
                raise ConfigError(
                    f"problem.cv_folds={self.cv_folds} needs at least {self.cv_folds} rows "
                    f"of every class in the training part, but dataset "
                    f"{dataset_label(self.dataset)!r} has a class with {smallest}; "
                    f"lower problem.cv_folds"
                )

    def __getstate__(self) -> dict[str, Any]:
        return {**self.__dict__, "_data": None}

    def setup(self) -> None:
        if self._data is not None:
            return
        import numpy as np

        from harness.datasets import load_dataset

        d = load_dataset(self.dataset, seed=self.seed)
        flat = [a.reshape(len(a), -1) for a in (d.x_train, d.x_val, d.x_test)]  # images -> vectors
        self._data = (np.concatenate(flat[:2]), np.concatenate([d.y_train, d.y_val]), flat[2], d.y_test)

    def _estimator(self, params: Mapping[str, Any], fidelity: int | None) -> Any:
        spec = MODELS[self.model]
        classification = self.task == "classification"
        cls = _load(spec["classifier" if classification else "regressor"])
        kwargs = {**spec.get("fixed", {}), **params}
        if "hidden_layer_sizes" in kwargs:
            kwargs["hidden_layer_sizes"] = (kwargs["hidden_layer_sizes"],)
        if fidelity is not None:
            kwargs[spec["fidelity"]["option"]] = fidelity
        if spec.get("seeded"):
            kwargs["random_state"] = self.seed
        estimator = cls(**kwargs)
        if classification:
            return estimator
        from sklearn.compose import TransformedTargetRegressor
        from sklearn.preprocessing import StandardScaler

        # Fit on standardised targets (SVR, MLP, lasso need it); scores stay in target units.
        return TransformedTargetRegressor(regressor=estimator, transformer=StandardScaler())

    def _score(self, estimator: Any, x: Any, y: Any) -> float:
        import numpy as np

        pred = estimator.predict(x)
        if self.task == "classification":
            return float(np.mean(pred == y))
        return float(np.sqrt(np.mean((pred - y) ** 2)))

    def evaluate(self, suggestion: Suggestion, report: Report | None = None) -> EvalResult:
        import numpy as np
        from sklearn.base import clone
        from sklearn.exceptions import ConvergenceWarning
        from sklearn.model_selection import KFold, StratifiedKFold

        self.setup()
        x, y, x_test, y_test = self._data
        fidelity = self.fidelity_for(suggestion) if "fidelity" in MODELS[self.model] else None
        estimator = self._estimator(suggestion.params, fidelity)
        splitter = (StratifiedKFold if self.task == "classification" else KFold)(
            n_splits=self.cv_folds, shuffle=True, random_state=self.seed
        )
        scores = []
        with warnings.catch_warnings():
            # Short budgets and bayesmark's tolerances often stop before convergence: that is the
            # configuration's quality, not an error.
            warnings.simplefilter("ignore", ConvergenceWarning)
            for train, val in splitter.split(x, y):
                fitted = clone(estimator).fit(x[train], y[train])
                scores.append(self._score(fitted, x[val], y[val]))
            test = self._score(clone(estimator).fit(x, y), x_test, y_test)
        value = float(np.mean(scores))
        if not math.isfinite(value):
            return EvalResult.failed("cross-validation score is not finite", budget=fidelity)
        test_name = "test_accuracy" if self.task == "classification" else "test_rmse"
        return EvalResult(
            TrialStatus.OK,
            value,
            test_objective=test,
            budget=fidelity,
            budget_spent=fidelity,
            metrics={"cv_std": float(np.std(scores)), test_name: test},
        )
