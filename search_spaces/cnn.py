"""Seed 002's CNN: layer_num blocks of Conv2D(first_layer_unit * i, k x k) + MaxPooling2D(2)."""

from __future__ import annotations

from typing import Any

from harness.errors import NotSupportedError
from harness.search_spaces._keras import compile_model, output_head


def build_cnn(params: dict[str, Any], *, input_shape: tuple[int, ...], n_outputs: int, task: str) -> Any:
    """Blocks i = 1..layer_num of Conv2D(first_layer_unit * i, k, relu, same) -> MaxPooling2D(2),
    then Flatten -> Dropout(0.5) -> output; Adam.

    Pooling is skipped once a feature map is 1 pixel wide, so three blocks also fit 8x8 digits.
    """
    if len(input_shape) != 3:
        raise NotSupportedError(
            f"search space 'cnn' needs image data (H, W, C), but the dataset has input shape "
            f"{input_shape}; use dataset=digits, mnist or fashion_mnist, or an MLP space"
        )
    import keras

    inputs = keras.Input(shape=input_shape)
    x, size = inputs, min(input_shape[:2])
    for i in range(1, params["layer_num"] + 1):
        x = keras.layers.Conv2D(params["first_layer_unit"] * i, params["k"], activation="relu", padding="same")(x)
        if size >= 2:
            x = keras.layers.MaxPooling2D(2)(x)
            size //= 2
    x = keras.layers.Flatten()(x)
    x = keras.layers.Dropout(0.5)(x)
    model = keras.Model(inputs, output_head(x, task=task, n_outputs=n_outputs), name="cnn")
    return compile_model(model, task=task, optimizer=keras.optimizers.Adam())
