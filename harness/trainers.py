"""Trainers: how a built Keras model gets its weights (`trainer=backprop` by default).

A trainer is a function `train(model, data, *, epochs, initial_epoch, batch_size, seed, options,
on_epoch, verbose) -> list[dict]` returning one dict of metrics per epoch (or generation). `on_epoch(epoch,
metrics)` returns True to stop early (a strategy's pruning decision). Trainers are looked up by
name here and imported only when selected.

A `trainer:` config (conf/trainer/<preset>.yaml) has a `name`, recorded in every row and used by
the report to tell runs apart, and optionally a `kind`, the implementation in `TRAINERS` (default:
the name). Several presets of one implementation thus stay distinct: `neuroevolution_seed000` is
`kind: neuroevolution` with seed 000's settings.
"""

from __future__ import annotations

import importlib
import itertools
from collections.abc import Callable, Mapping
from typing import Any

from harness.errors import ConfigError, UnknownNameError

# name -> (training function, option check), as `module:function`. The check takes the options
# dict and raises ConfigError; it runs on the config before any worker starts, and the trainer
# runs it again on every trial's options.
TRAINERS: dict[str, tuple[str, str]] = {
    "backprop": ("harness.trainers:train_backprop", "harness.trainers:check_backprop_options"),
    "neuroevolution": ("harness.neuroevolution:train_neuroevolution", "harness.neuroevolution:resolve_options"),
}
# A search-space parameter named `trainer__<option>` tunes the trainer instead of the model: a
# strategy can then search, say, the GA's mutation rate together with the architecture.
TRAINER_PARAM_PREFIX = "trainer__"

EpochHook = Callable[[int, dict[str, float]], bool]


def _load(spec: str) -> Callable[..., Any]:
    module, _, attr = spec.partition(":")
    return getattr(importlib.import_module(module), attr)


def split_params(params: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """(model params for the builder, trainer options from the space's `trainer__*` params)."""
    n = len(TRAINER_PARAM_PREFIX)
    model = {k: v for k, v in params.items() if not k.startswith(TRAINER_PARAM_PREFIX)}
    trainer = {k[n:]: v for k, v in params.items() if k.startswith(TRAINER_PARAM_PREFIX)}
    return model, trainer


def check_trainer_options(kind: str, options: Mapping[str, Any], space: Any = None) -> None:
    """Validate a trainer's config options and, with `space`, every combination of the bounds
    and choices of its `trainer__*` parameters (options may constrain each other, e.g. elitism
    and population), so a bad space is one error before any training, not a run stopped later."""
    check = _load(TRAINERS[kind][1])
    check(dict(options))
    tuned = [p for p in getattr(space, "params", ()) if p.name.startswith(TRAINER_PARAM_PREFIX)]
    corners = [getattr(p, "choices", None) or (p.low, p.high) for p in tuned]
    for values in itertools.product(*corners):
        combo = dict(zip((p.name for p in tuned), values))
        try:
            check({**options, **split_params(combo)[1]})
        except (ConfigError, TypeError, ValueError) as exc:
            raise ConfigError(f"search space {space.name!r}: {combo} is not a valid setting of trainer {kind!r}: {exc}") from None


# Options of `trainer=backprop` (trainer.params): Keras's EarlyStopping, as seed 003's tuners used
# it (`EarlyStopping(patience=2)` in its Hyperband search). None: train every epoch of the budget.
BACKPROP_OPTIONS = {"early_stopping_patience": None, "early_stopping_monitor": "val_loss"}


def check_backprop_options(options: Mapping[str, Any]) -> dict[str, Any]:
    unknown = sorted(set(options) - set(BACKPROP_OPTIONS))
    if unknown:
        raise ConfigError(
            f"trainer backprop takes no options {unknown}; its options are "
            f"{', '.join(BACKPROP_OPTIONS)}. Remove them (trainer.params, or the space's "
            f"trainer__* parameters) or choose trainer=neuroevolution"
        )
    resolved = {**BACKPROP_OPTIONS, **options}
    patience, monitor = resolved["early_stopping_patience"], resolved["early_stopping_monitor"]
    if patience is not None and (type(patience) is not int or patience < 0):
        raise ConfigError(
            f"trainer.params.early_stopping_patience must be an integer >= 0 or null, but got "
            f"{patience!r}; e.g. `trainer.params.early_stopping_patience=2`"
        )
    if monitor not in ("val_loss", "val_accuracy", "loss"):
        raise ConfigError(f"trainer.params.early_stopping_monitor must be val_loss, val_accuracy or loss, but got {monitor!r}")
    return resolved


def resolve_trainer(cfg: Mapping[str, Any]) -> tuple[str, str]:
    """(name, kind) of a `trainer:` config; `UnknownNameError` if the kind is not in `TRAINERS`."""
    name = str(cfg.get("name") or "backprop")
    kind = str(cfg.get("kind") or name)
    if kind not in TRAINERS:
        raise UnknownNameError("trainer kind" if cfg.get("kind") else "trainer", kind, list(TRAINERS))
    return name, kind


def get_trainer(name: str) -> Callable[..., list[dict[str, Any]]]:
    if name not in TRAINERS:
        raise UnknownNameError("trainer", name, list(TRAINERS))
    return _load(TRAINERS[name][0])


def train_backprop(
    model: Any,
    data: Any,
    *,
    epochs: int,
    initial_epoch: int,
    batch_size: int,
    seed: int,
    options: dict[str, Any],
    on_epoch: EpochHook,
    verbose: int = 0,
) -> list[dict[str, Any]]:
    """Gradient training with `model.fit`, validating every epoch so strategies can prune."""
    import keras

    resolved = check_backprop_options(options)
    callbacks = [keras.callbacks.TerminateOnNaN()]
    if resolved["early_stopping_patience"] is not None:
        # Stops when the monitored metric has not improved for `patience` epochs; the epochs it
        # did train are the trial's budget spent (a row's `budget_spent`).
        callbacks.append(
            keras.callbacks.EarlyStopping(
                monitor=resolved["early_stopping_monitor"], patience=resolved["early_stopping_patience"]
            )
        )

    history: list[dict[str, Any]] = []

    class _Hook(keras.callbacks.Callback):
        def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
            metrics = {k: float(v) for k, v in (logs or {}).items()}
            history.append({"epoch": epoch + 1, **metrics})
            if on_epoch(epoch + 1, metrics):
                self.model.stop_training = True

    y_train = data.y_train if data.task == "classification" else (data.y_train - data.y_mean) / data.y_std
    y_val = data.y_val if data.task == "classification" else (data.y_val - data.y_mean) / data.y_std
    model.fit(
        data.x_train,
        y_train,
        validation_data=(data.x_val, y_val),
        epochs=epochs,
        initial_epoch=initial_epoch,
        batch_size=batch_size,
        callbacks=[*callbacks, _Hook()],
        shuffle=True,
        verbose=verbose,
    )
    return history
