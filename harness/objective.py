"""The Keras objective: params -> built model -> trained for the budget -> validation/test metrics.

This is the only core module that imports TensorFlow/Keras, and it does so on first call.
Strategies optimise the validation metric only; the test metric is recorded for reporting.
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from harness.datasets import Dataset
from harness.errors import ConfigError
from harness.problem import resolve_fidelity
from harness.space import SearchSpace
from harness.strategy import Suggestion, TrialStatus
from harness.trainers import get_trainer, split_params

# Keep TensorFlow's C++ start-up chatter (CUDA probing, oneDNN notes) off the user's terminal.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

DEFAULT_EPOCHS = 10
DEFAULT_BATCH_SIZE = 32


@dataclass(frozen=True)
class TrialResult:
    """What evaluating one suggestion produced (the runner adds timings of its own and ids)."""

    status: TrialStatus
    objective: float  # maximised: val accuracy, or -val RMSE
    val_accuracy: float | None = None
    test_accuracy: float | None = None
    val_rmse: float | None = None
    test_rmse: float | None = None
    budget_epochs: int = 0
    epochs_trained: int = 0
    train_seconds: float = 0.0
    eval_seconds: float = 0.0
    history: list[dict[str, Any]] = field(default_factory=list)
    error: str | None = None
    test_predictions: np.ndarray | None = field(default=None, repr=False)
    executions: list[float] | None = None  # each execution's objective, when a trial averages several


def _forget_old_custom_gradients(at_start: frozenset[str] | None) -> frozenset[str]:
    """Unregister the gradient functions earlier trials' training graphs left in TensorFlow's
    global gradient registry; returns the names registered before the first trial, to keep.

    Keras's optimizer sums gradients through `tf.custom_gradient`, which in graph mode registers
    a gradient function under a fresh name every time a train step is traced and never removes
    it; each one keeps its whole graph alive (~10,000 objects, ~6 MB per trial), so a worker's
    memory and every `gc.collect` (which `clear_session` runs) grew with each trial. Called
    after `clear_session`, when no earlier trial's graph can still be differentiated. Uses TF's
    private registry; if that moves in a later release, this does nothing (the leak returns).
    """
    try:
        from tensorflow.python.framework import ops as tf_ops

        registry = tf_ops._gradient_registry._registry
    except (ImportError, AttributeError):  # a TF without that registry: nothing to do
        return at_start or frozenset()
    if at_start is None:
        return frozenset(registry)
    for name in [n for n in registry if n.startswith("CustomGradient-") and n not in at_start]:
        del registry[name]
    return at_start


def trial_seed(seed: int, trial_id: int) -> int:
    """Per-trial seed: results do not depend on evaluation order (parallel runs, resume)."""
    return (seed * 1_000_003 + trial_id) % (2**31 - 1)


def execution_seed(seed: int, trial_id: int, execution: int) -> int:
    """The seed of a trial's `execution`-th training (`problem.executions_per_trial`); the first
    is the trial's own seed, so one execution per trial trains exactly as before."""
    return (trial_seed(seed, trial_id) + execution * 7_919) % (2**31 - 1)


def _checkpoint_stem(trial_id: int, execution: int) -> str:
    # Each execution continues its own weights when a promotion resumes the trial.
    return f"trial_{trial_id}" if execution == 0 else f"trial_{trial_id}_x{execution}"


def _average(runs: list[TrialResult]) -> TrialResult:
    """One result from a trial's executions: metrics and per-epoch history averaged, costs added.
    A failed execution fails the trial (the last run in `runs` is the one that failed)."""
    if runs[-1].status is TrialStatus.FAILED:
        bad = runs[-1]
        return replace(
            bad,
            error=f"execution {len(runs)} of the trial: {bad.error}",
            train_seconds=sum(r.train_seconds for r in runs),
            epochs_trained=sum(r.epochs_trained for r in runs),
        )

    def mean(name: str) -> float | None:
        values = [getattr(r, name) for r in runs]
        return None if any(v is None for v in values) else float(np.mean(values))

    steps = min(len(r.history) for r in runs)
    history = []
    for i in range(steps):
        entries = [r.history[i] for r in runs]
        merged = {
            k: float(np.mean([e[k] for e in entries]))
            for k in entries[0]
            if all(isinstance(e.get(k), (int, float)) for e in entries)
        }
        merged["epoch"] = entries[0].get("epoch", i + 1)
        history.append(merged)
    return TrialResult(
        status=TrialStatus.OK,
        objective=float(np.mean([r.objective for r in runs])),
        val_accuracy=mean("val_accuracy"),
        test_accuracy=mean("test_accuracy"),
        val_rmse=mean("val_rmse"),
        test_rmse=mean("test_rmse"),
        budget_epochs=runs[0].budget_epochs,
        epochs_trained=sum(r.epochs_trained for r in runs),
        train_seconds=sum(r.train_seconds for r in runs),
        eval_seconds=sum(r.eval_seconds for r in runs),
        history=history,
        test_predictions=runs[0].test_predictions,
        executions=[r.objective for r in runs],
    )


class KerasObjective:
    """Evaluates suggestions on one dataset for one search space.

    `max_epochs` caps every trial (`budget.max_epochs`). With `checkpoint_dir`, each trial's
    weights are saved so a later suggestion with `resume_from` continues from them and trains
    only the missing epochs (Hyperband promotions).
    """

    def __init__(
        self,
        space: SearchSpace,
        data: Dataset,
        *,
        seed: int,
        max_epochs: int | None = None,
        checkpoint_dir: Path | None = None,
        trainer: str = "backprop",
        trainer_options: dict[str, Any] | None = None,
        verbose: int = 0,
        record_test_curve: bool = False,
        executions: int = 1,
    ):
        if max_epochs is not None and max_epochs < 1:
            raise ConfigError(f"budget.max_epochs must be >= 1 or null, but got {max_epochs}")
        self.space, self.data, self.seed = space, data, seed
        self.max_epochs, self.checkpoint_dir, self.verbose = max_epochs, checkpoint_dir, verbose
        self.trainer_name, self.trainer_options = trainer, dict(trainer_options or {})
        self.record_test_curve = record_test_curve
        self.executions = executions
        self._train = get_trainer(trainer)
        self._builder: Callable[..., Any] | None = None
        self._gradients_at_start: frozenset[str] | None = None  # see _forget_old_custom_gradients

    def epochs_for(self, suggestion: Suggestion) -> int:
        """Total epochs: the strategy's budget, else the space's epochs param, else its fidelity max."""
        return int(resolve_fidelity(self.space, suggestion, default=DEFAULT_EPOCHS, cap=self.max_epochs))

    def __call__(self, suggestion: Suggestion, report: Callable[[int, float], bool] | None = None) -> TrialResult:
        """Train and evaluate; with `executions` > 1, train that many models (seeds
        `execution_seed`) and average their metrics into one result, as keras-tuner's
        `executions_per_trial` does (on the last epoch's values rather than each run's best)."""
        runs = []
        for k in range(self.executions):
            r = self._train_once(suggestion, execution=k, report=report if self.executions == 1 else None)
            runs.append(r)
            if r.status is TrialStatus.FAILED:
                break
        if len(runs) == 1:
            return runs[0]
        return _average(runs)

    def refit(self, suggestion: Suggestion, epochs: int) -> TrialResult:
        """Train the configuration from scratch on training + validation data for `epochs` and
        evaluate it on the test set (seed 004's final step; keras-tuner's "retrain the best").
        `budget.max_epochs` does not cap `epochs`. The validation metrics of the result are
        in-sample and left out; early stopping is off
        (its monitor would watch data it trains on)."""
        d = self.data
        merged = replace(d, x_train=np.concatenate([d.x_train, d.x_val]), y_train=np.concatenate([d.y_train, d.y_val]))
        options = {k: v for k, v in self.trainer_options.items() if not k.startswith("early_stopping")}
        r = self._train_once(
            replace(suggestion, resume_from=None), execution=0, data=merged, options=options, save=False, epochs=epochs
        )
        return replace(r, objective=math.nan, val_accuracy=None, val_rmse=None)

    def _train_once(
        self,
        suggestion: Suggestion,
        *,
        execution: int,
        report: Callable[[int, float], bool] | None = None,
        data: Dataset | None = None,
        options: dict[str, Any] | None = None,
        save: bool = True,
        epochs: int | None = None,
    ) -> TrialResult:
        import keras

        from harness.search_spaces import resolve_builder

        if self._builder is None:
            self._builder = resolve_builder(self.space.builder)
        keras.backend.clear_session()  # drop the previous trial's graph state (bounded memory)
        self._gradients_at_start = _forget_old_custom_gradients(self._gradients_at_start)
        seed = execution_seed(self.seed, suggestion.trial_id, execution)
        keras.utils.set_random_seed(seed)
        data = self.data if data is None else data
        params, tuned_options = split_params(suggestion.params)
        model = self._builder(params, input_shape=data.input_shape, n_outputs=data.n_outputs, task=data.task)

        total = self.epochs_for(suggestion) if epochs is None else epochs  # a refit's own budget is not capped
        initial = self._restore(model, suggestion.resume_from, execution) if suggestion.resume_from is not None else 0
        initial = min(initial, total)
        pruned = False
        curve: list[dict[str, float]] = []  # per epoch: its wall seconds (and, if asked, test metric)
        last = time.perf_counter()

        def on_epoch(epoch: int, metrics: dict[str, float]) -> bool:
            nonlocal pruned, last
            point = {"seconds": time.perf_counter() - last}
            if self.record_test_curve:  # tabular benchmarks: val and test metric after every epoch
                kind = "accuracy" if data.task == "classification" else "rmse"
                now = self._evaluate(model)
                point.update(curve_val=now[f"val_{kind}"], curve_test=now[f"test_{kind}"])
            curve.append(point)
            if report is not None and report(epoch, self._objective_from_logs(metrics)):
                pruned = True
            last = time.perf_counter()  # the test evaluation is not part of the epoch's cost
            return pruned

        batch_size = int(params.get("batch_size", self.space.fixed.get("batch_size", DEFAULT_BATCH_SIZE)))
        t0 = time.perf_counter()
        trainer_options = self.trainer_options if options is None else options
        history = self._train(
            model,
            data,
            epochs=total,
            initial_epoch=initial,
            batch_size=batch_size,
            seed=seed,
            options={**trainer_options, **tuned_options},
            on_epoch=on_epoch,
            verbose=self.verbose,
        )
        train_seconds = time.perf_counter() - t0
        for entry, point in zip(history, curve):
            entry.update(point)
        trained = len(history)
        reached = initial + trained

        if any(not math.isfinite(h.get("loss", math.nan)) for h in history):
            return TrialResult(
                TrialStatus.FAILED,
                math.nan,
                budget_epochs=reached,
                epochs_trained=trained,
                train_seconds=train_seconds,
                history=history,
                error=f"NaN or infinite training loss (epoch {reached})",
            )
        if self.checkpoint_dir is not None and save:
            self.checkpoint_dir.mkdir(parents=True, exist_ok=True)
            model.save_weights(self.checkpoint_dir / f"{_checkpoint_stem(suggestion.trial_id, execution)}_e{reached}.weights.h5")

        t0 = time.perf_counter()
        result = self._evaluate(model)
        eval_seconds = time.perf_counter() - t0
        status = TrialStatus.PRUNED if pruned else TrialStatus.OK
        if not math.isfinite(result["objective"]):
            status, result["error"] = TrialStatus.FAILED, "validation metric is NaN"
        return TrialResult(
            status=status,
            budget_epochs=reached,
            epochs_trained=trained,
            train_seconds=train_seconds,
            eval_seconds=eval_seconds,
            history=history,
            **result,
        )

    # -- helpers ---------------------------------------------------------------------------
    def _objective_from_logs(self, metrics: dict[str, float]) -> float:
        """The epoch's validation metric in the problem's own direction (accuracy, or RMSE)."""
        if self.data.task == "classification":
            return float(metrics.get("val_accuracy", math.nan))
        return math.sqrt(max(metrics.get("val_loss", math.nan), 0.0)) * self.data.y_std

    def _restore(self, model: Any, parent: int, execution: int = 0) -> int:
        """Load the parent's last checkpoint into `model`; returns the epochs it was trained for.

        Without it the trial would silently train from scratch while its row still names
        `parent_trial_id`, so a missing checkpoint fails the trial instead: `FileNotFoundError`
        (a trial's own error, recorded as a failed row naming the path; the run goes on).
        """
        pattern = f"{_checkpoint_stem(parent, execution)}_e*.weights.h5"
        found = sorted(self.checkpoint_dir.glob(pattern)) if self.checkpoint_dir is not None else []
        if not found:
            where = (
                f"no checkpoint {str(self.checkpoint_dir / pattern)!r} exists"
                if self.checkpoint_dir is not None
                else "this objective saves no checkpoints"
            )
            raise FileNotFoundError(
                f"this trial continues trial {parent}'s weights, but {where}; "
                f"refusing to train it from scratch under parent_trial_id={parent}"
            )
        path = max(found, key=lambda p: int(p.name.split("_e")[-1].split(".")[0]))
        optimizer = getattr(model, "optimizer", None)
        if optimizer is not None and not optimizer.built:
            # Keras 3 loads the saved optimizer state (Adam's moments, its step) only into a built
            # optimizer; otherwise it warns and the promotion continues with a fresh optimizer.
            optimizer.build(model.trainable_variables)
        model.load_weights(path)
        return int(path.name.split("_e")[-1].split(".")[0])

    def _evaluate(self, model: Any) -> dict[str, Any]:
        d = self.data
        # One predict call for both sets: one tf.function trace instead of two.
        pred = model.predict(np.concatenate([d.x_val, d.x_test]), verbose=0, batch_size=1024)
        pred_val, pred_test = pred[: len(d.x_val)], pred[len(d.x_val) :]
        if d.task == "classification":
            val_cls, test_cls = pred_val.argmax(axis=1), pred_test.argmax(axis=1)
            val_acc = float((val_cls == d.y_val).mean())
            return {
                "objective": val_acc,
                "val_accuracy": val_acc,
                "test_accuracy": float((test_cls == d.y_test).mean()),
                "test_predictions": test_cls,
            }
        val = pred_val.ravel() * d.y_std + d.y_mean
        test = pred_test.ravel() * d.y_std + d.y_mean
        val_rmse = float(np.sqrt(np.mean((val - d.y_val) ** 2)))
        test_rmse = float(np.sqrt(np.mean((test - d.y_test) ** 2)))
        return {"objective": -val_rmse, "val_rmse": val_rmse, "test_rmse": test_rmse, "test_predictions": test}
