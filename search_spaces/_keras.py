"""Pieces every builder shares: the task-dependent output head and compilation."""

from __future__ import annotations

from typing import Any


def output_head(x: Any, *, task: str, n_outputs: int) -> Any:
    import keras

    if task == "classification":
        return keras.layers.Dense(n_outputs, activation="softmax", name="output")(x)
    return keras.layers.Dense(1, name="output")(x)


def compile_model(model: Any, *, task: str, optimizer: Any = "adam") -> Any:
    if task == "classification":
        model.compile(optimizer=optimizer, loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    else:  # standardised targets: MSE loss; the objective reports RMSE in original units
        model.compile(optimizer=optimizer, loss="mse")
    return model
