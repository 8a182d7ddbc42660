"""Test-only model builders, named in test search spaces as `_builders:<function>`."""

from __future__ import annotations

from typing import Any


def build_toy(params: dict[str, Any], *, input_shape, n_outputs, task):
    """A tiny MLP that raises for x == 'boom' and produces a NaN loss for x == 'nan'."""
    import keras

    if params["x"] == "boom":
        raise ValueError("boom: this configuration cannot be built")
    inputs = keras.Input(shape=input_shape)
    outputs = keras.layers.Dense(n_outputs, activation="softmax")(keras.layers.Flatten()(inputs))
    model = keras.Model(inputs, outputs)
    if params["x"] == "nan":

        def nan_loss(y_true, y_pred):
            return keras.ops.mean(y_pred) * float("nan")

        model.compile(optimizer="adam", loss=nan_loss, metrics=["accuracy"])
    else:
        model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    return model


TOY_SPACE = {
    "name": "toy",
    "builder": "_builders:build_toy",
    "fidelity": {"min": 1, "max": 2},
    "params": {"x": {"type": "categorical", "choices": ["ok", "boom", "nan"]}},
}
