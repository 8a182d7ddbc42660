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

from harness.errors import UnknownNameError

TRAINERS: dict[str, str] = {
    "backprop": "harness.trainers:train_backprop",
    "neuroevolution": "harness.neuroevolution:train_neuroevolution",
}

EpochHook = Callable[[int, dict[str, float]], bool]


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
