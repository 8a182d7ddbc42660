"""`problem=keras`: train a model of a search space on a dataset with a trainer (the default).

It composes the `search_space`, `dataset` and `trainer` config groups exactly as runs did
before problems existed, so `harness search_space=cnn dataset=digits` keeps its meaning and its
run ids. The objective is validation accuracy (classification, maximised) or validation RMSE
in the target's units (regression, minimised); the test metric is reported, never optimised.
TensorFlow is imported in `setup()`, in the worker process.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from typing import Any

from harness.datasets import BUILTIN_LOADERS, check_dataset_config, dataset_label, dataset_task
from harness.errors import ConfigError
from harness.problem import EvalResult, ObjectiveInfo, Problem, Report
from harness.space import SearchSpace
from harness.strategy import Suggestion, TrialStatus
from harness.trainers import check_trainer_options, resolve_trainer


class KerasProblem(Problem):
    """Keras training; see the module docstring. `objective_factory` replaces the Keras
    objective (a picklable object whose `build()` returns `objective(suggestion, report=...) ->
    harness.objective.TrialResult`), for tests and benchmarks of the wiring without TensorFlow."""

    name = "keras"
    reports_steps = True  # once per epoch
    isolate = True  # TensorFlow's memory grows per model; a crash or hang must not end the run
    can_refit = True
    conformance_overrides = ["search_space=homl_mlp", "dataset=iris", "budget.max_epochs=1"]

    def __init__(
        self,
        *,
        seed: int = 0,
        config: Mapping[str, Any] | None = None,
        objective_factory: Any = None,
        record_test_curve: bool = False,
        executions_per_trial: int = 1,
    ):
        super().__init__(seed=seed, config=config)
        if not isinstance(record_test_curve, bool):
            raise TypeError(f"problem.record_test_curve must be true or false, but got {record_test_curve!r}")
        if type(executions_per_trial) is not int or executions_per_trial < 1:
            raise ValueError(
                f"problem.executions_per_trial must be an integer >= 1, but got "
                f"{executions_per_trial!r}; e.g. `problem.executions_per_trial=2`"
            )
        self.record_test_curve = record_test_curve
        self.executions = executions_per_trial
        if executions_per_trial > 1:
            # The averaged curve exists only once every execution has trained: no per-epoch
            # reports, so pruning strategies are recorded as not applicable.
            self.reports_steps = False
        cfg = dict(config or {})
        for section in ("search_space", "dataset"):
            if not isinstance(cfg.get(section), Mapping):
                raise ConfigError(f"problem keras needs a `{section}` group; choose one with `{section}=<name>`")
        self.dataset = {k: v for k, v in dict(cfg["dataset"]).items()}
        check_dataset_config(self.dataset)
        self.space_config = cfg["search_space"]
        self.space = SearchSpace.from_config(self.space_config)
        trainer = cfg.get("trainer") or {"name": "backprop"}
        self.trainer, self.trainer_kind = resolve_trainer(trainer)
        options = trainer.get("params") or {}
        if not isinstance(options, Mapping):
            raise ConfigError(f"trainer.params must be a mapping of trainer options, but got {options!r}")
        self.trainer_options = dict(options)
        check_trainer_options(self.trainer_kind, self.trainer_options, self.space)
        if objective_factory is None:
            from harness.search_spaces import resolve_builder

            resolve_builder(self.space.builder)  # a bad `builder:` is one error, not N failed trials
        self.task = dataset_task(self.dataset)
        self.objective = ObjectiveInfo(
            "val_accuracy" if self.task == "classification" else "val_rmse",
            "maximize" if self.task == "classification" else "minimize",
        )
        self.instance = f"{self.space.name}_{dataset_label(self.dataset)}"
        self.verbose = int(cfg.get("verbose", 0) or 0)
        self.threads = (cfg.get("worker") or {}).get("threads")
        self._factory = objective_factory
        self._objective: Callable[..., Any] | None = None
        self._data: Any = None

    def identity(self) -> dict[str, Any]:
        # Exactly what runs recorded before problems existed, so their run ids (and resumes)
        # hold: builders under their old module path, and no `loader:` where it is the default.
        space = dict(self.space_config)
        if str(space.get("builder", "")).startswith("harness.search_spaces."):
            space["builder"] = str(space["builder"])[len("harness.") :]
        dataset = {
            k: v
            for k, v in self.dataset.items()
            if k != "cache_dir"  # where the files live is not what was run: resumable elsewhere
            and not (k == "loader" and v == BUILTIN_LOADERS.get(str(self.dataset.get("name"))))
        }
        return {
            "search_space": space,
            "dataset": dataset,
            "trainer": self.trainer,
            "trainer_options": self.trainer_options,
            **({"trainer_kind": self.trainer_kind} if self.trainer_kind != self.trainer else {}),
            **({"record_test_curve": True} if self.record_test_curve else {}),
            **({"executions_per_trial": self.executions} if self.executions > 1 else {}),
        }

    def describe(self) -> dict[str, Any]:
        return {
            "search_space": self.space.name,
            "dataset": dataset_label(self.dataset),
            "task": self.task,
            "trainer": self.trainer,
        }

    @classmethod
    def library_version(cls) -> str:
        from harness.provenance import package_version

        return f"tensorflow {package_version('tensorflow')}, keras {package_version('keras')}"

    def seed_info(self) -> dict[str, Any]:
        from harness.objective import trial_seed

        info = {
            "tensorflow_per_trial": "trial_seed(seed, trial_id) = (seed * 1000003 + trial_id) % (2**31 - 1)",
            "tensorflow_trial_0": trial_seed(self.seed, 0),
        }
        if self.executions > 1:
            info["tensorflow_per_execution"] = "(trial_seed(seed, trial_id) + execution * 7919) % (2**31 - 1)"
        return info

    def check(self) -> None:
        if self._factory is None:
            self._load_data()  # a missing MNIST file is one clear error before any worker starts

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        state["_objective"] = None  # built again in each worker
        state["_data"] = None
        return state

    def _load_data(self) -> Any:
        if self._data is None:
            from harness.datasets import load_dataset

            self._data = load_dataset(self.dataset, seed=self.seed)
        return self._data

    def setup(self) -> None:
        if self._objective is not None:
            return
        if self._factory is not None:
            self._objective = self._factory.build()
            return
        from harness.quiet import import_tensorflow

        tf = import_tensorflow(self.verbose)  # once per process, its native start-up lines hidden
        if self.threads:
            tf.config.threading.set_intra_op_parallelism_threads(self.threads)
            tf.config.threading.set_inter_op_parallelism_threads(self.threads)
        import keras  # noqa: F401  -- TensorFlow's import is paid here, once per process

        from harness.objective import KerasObjective

        checkpoints = self.workdir / "checkpoints" if self.workdir is not None and self.multi_fidelity else None
        self._objective = KerasObjective(
            self.space,
            self._load_data(),
            seed=self.seed,
            max_epochs=self.max_fidelity,
            checkpoint_dir=checkpoints,
            trainer=self.trainer_kind,
            trainer_options=self.trainer_options,
            verbose=self.verbose,
            record_test_curve=self.record_test_curve,
            executions=self.executions,
        )

    def evaluate(self, suggestion: Suggestion, report: Report | None = None) -> EvalResult:
        self.setup()
        return self._result(self._objective(suggestion, report=report))

    def refit(self, suggestion: Suggestion, budget: int | None = None) -> EvalResult:
        self.setup()
        if self._factory is not None and not hasattr(self._objective, "refit"):
            raise NotImplementedError("this test objective cannot refit")
        epochs = budget if budget is not None else self._objective.epochs_for(suggestion)
        return self._result(self._objective.refit(suggestion, epochs))

    def _result(self, r: Any) -> EvalResult:
        regression = self.task == "regression"
        if regression:
            objective = r.val_rmse if r.val_rmse is not None else -r.objective
            test = r.test_rmse
            metrics = {"val_rmse": r.val_rmse, "test_rmse": r.test_rmse}
        else:
            objective = r.val_accuracy if r.val_accuracy is not None else r.objective
            test = r.test_accuracy
            metrics = {"val_accuracy": r.val_accuracy, "test_accuracy": r.test_accuracy}
        metrics.update(train_seconds=r.train_seconds, eval_seconds=r.eval_seconds)
        executions = getattr(r, "executions", None)
        if executions:  # the spread of the averaged executions, in the objective's units
            import numpy as np

            metrics.update(executions=len(executions), objective_execution_sd=float(np.std(executions, ddof=1)))
        predictions = None
        if r.test_predictions is not None and self._data is not None:
            predictions = {"y_true": self._data.y_test, "y_pred": r.test_predictions, "class_names": list(self._data.class_names)}
        if objective is None or (isinstance(objective, float) and math.isnan(objective)):
            objective = math.nan
        return EvalResult(
            status=TrialStatus(r.status),
            objective=float(objective),
            test_objective=test,
            budget=r.budget_epochs,
            budget_spent=r.epochs_trained,
            metrics=metrics,
            history=list(r.history),
            error=r.error,
            predictions=predictions,
        )
