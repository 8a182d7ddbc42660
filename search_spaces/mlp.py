"""Dense (MLP) builders: seed 002's halving MLP, seed 004's NAS MLP, seed 003's Hands-On ML MLP."""

from __future__ import annotations

from typing import Any

from harness.search_spaces._keras import compile_model, output_head


def build_mlp(params: dict[str, Any], *, input_shape: tuple[int, ...], n_outputs: int, task: str) -> Any:
    """Seed 002: Flatten -> layer_num Dense(first_layer_unit / 2**i, relu) -> output; Adam."""
    import keras

    inputs = keras.Input(shape=input_shape)
    x = keras.layers.Flatten()(inputs)
    for i in range(params["layer_num"]):
        x = keras.layers.Dense(max(1, params["first_layer_unit"] // 2**i), activation="relu")(x)
    model = keras.Model(inputs, output_head(x, task=task, n_outputs=n_outputs), name="mlp")
    return compile_model(model, task=task, optimizer=keras.optimizers.Adam())


def build_nas_mlp(params: dict[str, Any], *, input_shape: tuple[int, ...], n_outputs: int, task: str) -> Any:
    """Seed 004: Flatten -> Dense(units_i, activation) for i < num_layers -> [Dropout(0.25)] -> output."""
    import keras

    inputs = keras.Input(shape=input_shape)
    x = keras.layers.Flatten()(inputs)
    for i in range(params["num_layers"]):
        x = keras.layers.Dense(params[f"units_{i}"], activation=params["activation"])(x)
    if params["dropout"]:
        x = keras.layers.Dropout(0.25)(x)
    model = keras.Model(inputs, output_head(x, task=task, n_outputs=n_outputs), name="nas_mlp")
    return compile_model(model, task=task, optimizer=keras.optimizers.Adam(learning_rate=params["lr"]))


def build_homl_mlp(params: dict[str, Any], *, input_shape: tuple[int, ...], n_outputs: int, task: str) -> Any:
    """Seed 003: Flatten -> n_hidden x Dense(n_neurons, relu) -> output; SGD or Adam at learning_rate."""
    import keras

    inputs = keras.Input(shape=input_shape)
    x = keras.layers.Flatten()(inputs)
    for _ in range(params["n_hidden"]):
        x = keras.layers.Dense(params["n_neurons"], activation="relu")(x)
    optimizer = {"sgd": keras.optimizers.SGD, "adam": keras.optimizers.Adam}[params["optimizer"]]
    model = keras.Model(inputs, output_head(x, task=task, n_outputs=n_outputs), name="homl_mlp")
    return compile_model(model, task=task, optimizer=optimizer(learning_rate=params["learning_rate"]))


def build_dense(params: dict[str, Any], *, input_shape: tuple[int, ...], n_outputs: int, task: str) -> Any:
    """Flatten -> n_hidden x Dense(n_neurons, activation) -> output; Adam. A plain Dense chain,
    the architecture family neuroevolution can evolve (see `ga_mlp`)."""
    import keras

    inputs = keras.Input(shape=input_shape)
    x = keras.layers.Flatten()(inputs)
    for _ in range(params["n_hidden"]):
        x = keras.layers.Dense(params["n_neurons"], activation=params.get("activation", "relu"))(x)
    model = keras.Model(inputs, output_head(x, task=task, n_outputs=n_outputs), name="dense")
    return compile_model(model, task=task, optimizer=keras.optimizers.Adam())
