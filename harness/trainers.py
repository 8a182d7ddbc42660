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
from collections.abc import Callable, Mapping
from typing import Any

from harness.errors import ConfigError, UnknownNameError

TRAINERS: dict[str, str] = {
    "backprop": "harness.trainers:train_backprop",
    "neuroevolution": "harness.neuroevolution:train_neuroevolution",
}

# Each trainer's option check (`module:function(options)`, raising ConfigError), run on the config
# before any worker starts; the trainer runs it again on every trial's options.
OPTION_CHECKS: dict[str, str] = {
    "backprop": "harness.trainers:check_backprop_options",
    "neuroevolution": "harness.neuroevolution:resolve_options",
}
# A search-space parameter named `trainer__<option>` tunes the trainer instead of the model: a
# strategy can then search, say, the GA's mutation rate together with the architecture.
TRAINER_PARAM_PREFIX = "trainer__"

EpochHook = Callable[[int, dict[str, float]], bool]


def split_params(params: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """(model params for the builder, trainer options from the space's `trainer__*` params)."""
    n = len(TRAINER_PARAM_PREFIX)
    model = {k: v for k, v in params.items() if not k.startswith(TRAINER_PARAM_PREFIX)}
    trainer = {k[n:]: v for k, v in params.items() if k.startswith(TRAINER_PARAM_PREFIX)}
    return model, trainer


def check_trainer_options(kind: str, options: Mapping[str, Any], space: Any = None) -> None:
    """Validate a trainer's config options and, with `space`, every value its `trainer__*`
    parameters can take (bounds and choices), so a bad one is one error before any training."""
    module, _, attr = OPTION_CHECKS[kind].partition(":")
    check = getattr(importlib.import_module(module), attr)
    check(dict(options))
    for param in getattr(space, "params", ()):
        if not param.name.startswith(TRAINER_PARAM_PREFIX):
            continue
        key = param.name[len(TRAINER_PARAM_PREFIX):]
        values = getattr(param, "choices", None) or (param.low, param.high)
        for value in values:
            try:
                check({**options, key: value})
            except ConfigError as exc:
                raise ConfigError(f"search space {space.name!r}, parameter {param.name!r} = {value!r} "
                                  f"is not a valid option of trainer {kind!r}: {exc}") from None


def check_backprop_options(options: Mapping[str, Any]) -> dict[str, Any]:
    if options:
        raise ConfigError(f"trainer backprop takes no options, but got {sorted(options)}; remove them "
                          f"(trainer.params, or the space's trainer__* parameters) or choose "
                          f"trainer=neuroevolution")
    return {}


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
    module, _, attr = TRAINERS[name].partition(":")
    return getattr(importlib.import_module(module), attr)


def train_backprop(model: Any, data: Any, *, epochs: int, initial_epoch: int, batch_size: int,
                   seed: int, options: dict[str, Any], on_epoch: EpochHook,
                   verbose: int = 0) -> list[dict[str, Any]]:
    """Gradient training with `model.fit`, validating every epoch so strategies can prune."""
    import keras

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
        data.x_train, y_train,
        validation_data=(data.x_val, y_val),
        epochs=epochs, initial_epoch=initial_epoch, batch_size=batch_size,
        callbacks=[keras.callbacks.TerminateOnNaN(), _Hook()],
        shuffle=True, verbose=verbose,
    )
    return history
