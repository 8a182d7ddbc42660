"""The declarative search-space model: loading, validation messages, the seed spaces' facts."""

from __future__ import annotations

import numpy as np
import pytest

from harness.errors import SearchSpaceError, UnknownNameError
from harness.space import BoolParam, CategoricalParam, FloatParam, IntParam, SearchSpace, available_spaces, load_space, sample


def space(**params):
    return SearchSpace.from_config({"name": "toy", "params": params})


@pytest.mark.parametrize(
    "definition, phrase",
    [
        ({"type": "int", "low": 5, "high": 2}, "low (5) must be < high (2)"),
        ({"type": "float", "low": 0.0, "high": 1.0, "log": True}, "log scale needs low > 0"),
        ({"type": "int", "low": 0, "high": 10, "step": 3}, "step (3) must be > 0 and divide"),
        ({"type": "categorical", "choices": []}, "choices must be a non-empty list"),
        ({"type": "categorical", "choices": [1, 1]}, "duplicates"),
        ({"type": "integer", "low": 0, "high": 1}, "unknown type 'integer'"),
        ({"type": "int", "high": 3}, "missing 'low'"),
        ({"type": "int", "low": 0.5, "high": 3}, "low must be a finite int"),
        ({"type": "int", "low": 0, "high": 3, "lgo": True}, "unknown keys ['lgo']"),
    ],
)
def test_invalid_parameter_names_space_parameter_and_problem(definition, phrase):
    with pytest.raises(SearchSpaceError) as err:
        space(x=definition)
    message = str(err.value)
    assert "search space 'toy'" in message and "parameter 'x'" in message and phrase in message


def test_condition_parent_must_exist_before_the_child():
    with pytest.raises(SearchSpaceError, match="parent 'n' does not exist"):
        space(
            u={"type": "int", "low": 1, "high": 4, "condition": {"parent": "n", "in": [2]}},
            n={"type": "int", "low": 1, "high": 3},
        )


def test_condition_values_must_be_values_of_the_parent():
    with pytest.raises(SearchSpaceError, match=r"condition values \[7\]"):
        space(
            n={"type": "int", "low": 1, "high": 3},
            u={"type": "int", "low": 1, "high": 4, "condition": {"parent": "n", "in": [7]}},
        )


def test_fidelity_param_must_exist():
    with pytest.raises(SearchSpaceError, match="fidelity param 'epochs'"):
        SearchSpace.from_config(
            {"name": "toy", "fidelity": {"param": "epochs", "min": 1, "max": 5}, "params": {"x": {"type": "bool"}}}
        )


def test_seed_spaces_carry_the_documented_facts():
    assert available_spaces() == ["cnn", "ga_mlp", "homl_mlp", "mlp", "nas_mlp", "ne_mlp", "seed000_mlp"]
    seed000 = load_space("seed000_mlp")  # seed 000's one network: Dense(128), nothing to search
    assert seed000["n_hidden"].choices == (1,) and seed000["n_neurons"].choices == (128,)
    mlp = load_space("mlp")
    assert mlp["layer_num"] == IntParam("layer_num", low=2, high=4)
    assert mlp["first_layer_unit"] == CategoricalParam("first_layer_unit", choices=(64, 128, 256, 512))
    assert mlp["batch_size"].choices == (32, 64, 128)
    assert (mlp["epochs"].low, mlp["epochs"].high, mlp["epochs"].step) == (5, 50, 5)
    cnn = load_space("cnn")
    assert (cnn["k"].low, cnn["k"].high, cnn["layer_num"].low, cnn["layer_num"].high) == (2, 5, 1, 3)
    assert cnn["first_layer_unit"].choices == (16, 32, 64, 128, 256)
    nas = load_space("nas_mlp")
    assert nas.is_conditional and nas["units_2"].condition.values == (3,)
    assert (nas["units_1"].low, nas["units_1"].high, nas["units_1"].step) == (32, 512, 32)
    assert nas["lr"] == FloatParam("lr", low=1e-4, high=1e-2, log=True)
    assert isinstance(nas["dropout"], BoolParam)
    homl = load_space("homl_mlp")
    assert (homl["n_hidden"].low, homl["n_hidden"].high, homl["n_neurons"].low, homl["n_neurons"].high) == (0, 8, 16, 256)
    assert homl["optimizer"].choices == ("sgd", "adam")


def test_unknown_space_lists_the_available_ones():
    with pytest.raises(UnknownNameError, match="unknown search space 'nope'; installed: cnn, ga_mlp, homl_mlp"):
        load_space("nope")


def test_check_rejects_inactive_missing_and_out_of_bounds_params():
    nas = load_space("nas_mlp")
    good = {"num_layers": 1, "units_0": 64, "activation": "relu", "dropout": False, "lr": 0.001}
    nas.check(good)
    with pytest.raises(SearchSpaceError, match="unexpected \\['units_1'\\]"):
        nas.check({**good, "units_1": 64})
    with pytest.raises(SearchSpaceError, match="missing \\['units_1'\\]"):
        nas.check({**good, "num_layers": 2})
    with pytest.raises(SearchSpaceError, match="value 40"):
        nas.check({**good, "units_0": 40})  # not on the step-32 grid
    with pytest.raises(SearchSpaceError, match="numpy|int64"):
        nas.check({**good, "units_0": np.int64(64)})  # must be a native Python int


def test_multi_fidelity_view_drops_the_budget_param():
    mlp = load_space("mlp")
    assert "epochs" in mlp and "epochs" not in mlp.without_fidelity_param()
    assert load_space("nas_mlp").without_fidelity_param() == load_space("nas_mlp")


@pytest.mark.parametrize("name", ["mlp", "cnn", "nas_mlp", "homl_mlp", "ga_mlp"])
def test_sample_is_valid_native_and_covers_log_ranges(name):
    sp = load_space(name)
    rng = np.random.default_rng(0)
    draws = [sample(sp, rng) for _ in range(300)]
    for d in draws:
        sp.check(d)
    if name == "nas_mlp":
        lrs = [d["lr"] for d in draws]
        assert sum(lr < 1e-3 for lr in lrs) > 100  # log-uniform: half the draws below 1e-3
        assert {d["num_layers"] for d in draws} == {1, 2, 3}
