"""A Keras model builder for the plugin's `tiny_mlp` search space (conf/search_space/tiny_mlp.yaml)."""

from __future__ import annotations

from typing import Any


def build_tiny_mlp(params: dict[str, Any], *, input_shape: tuple[int, ...], n_outputs: int, task: str) -> Any:
    import keras  # inside: importing the plugin stays cheap

    from harness.search_spaces._keras import compile_model, output_head

    inputs = keras.Input(shape=input_shape)
    x = keras.layers.Flatten()(inputs)
    for _ in range(params["depth"]):
        x = keras.layers.Dense(params["width"], activation="relu")(x)
    model = keras.Model(inputs, output_head(x, task=task, n_outputs=n_outputs), name="tiny_mlp")
    return compile_model(model, task=task, optimizer=keras.optimizers.Adam(learning_rate=params["lr"]))
