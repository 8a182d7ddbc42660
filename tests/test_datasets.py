"""Dataset loaders and the deterministic, strategy-independent split."""

from __future__ import annotations

import gzip
import struct

import numpy as np
import pytest

from harness.datasets import BUNDLED, load_dataset, read_idx
from harness.errors import DatasetUnavailableError, UnknownNameError


@pytest.mark.parametrize("name", BUNDLED)
def test_bundled_datasets_load_offline_with_disjoint_deterministic_splits(name):
    a, b, other = load_dataset(name, seed=0), load_dataset(name, seed=0), load_dataset(name, seed=1)
    for part in ("x_train", "y_train", "x_val", "y_val", "x_test", "y_test"):
        np.testing.assert_array_equal(getattr(a, part), getattr(b, part))  # same seed, same split
    assert not np.array_equal(a.y_val, other.y_val) or not np.array_equal(a.x_val, other.x_val)
    n = len(a.x_train) + len(a.x_val) + len(a.x_test)
    assert abs(len(a.x_test) / n - 0.2) < 0.02 and abs(len(a.x_val) / n - 0.2) < 0.02
    rows = {r.tobytes() for r in a.x_train.reshape(len(a.x_train), -1)}
    overlap = sum(r.tobytes() in rows for r in a.x_test.reshape(len(a.x_test), -1))
    assert overlap <= 2  # digits has a few duplicated images; no systematic leak
    assert a.task == ("regression" if name == "diabetes" else "classification")


def test_preprocessing_is_fitted_on_train_only():
    d = load_dataset("wine", seed=0)
    np.testing.assert_allclose(d.x_train.mean(axis=0), 0, atol=1e-5)
    np.testing.assert_allclose(d.x_train.std(axis=0), 1, atol=1e-4)
    assert np.abs(d.x_val.mean(axis=0)).max() > 1e-3  # val is scaled with train's statistics


def test_images_keep_their_shape_and_classes_are_stratified():
    d = load_dataset("digits", seed=0)
    assert d.input_shape == (8, 8, 1) and d.is_image and d.n_outputs == 10
    assert 0.0 <= d.x_train.min() and d.x_train.max() <= 1.0
    counts = np.bincount(d.y_val, minlength=10)
    assert counts.min() >= 30  # stratified: every class well represented in validation


def test_regression_targets_keep_original_units_with_train_statistics():
    d = load_dataset("diabetes", seed=0)
    assert d.n_outputs == 1
    assert d.y_mean == pytest.approx(float(d.y_train.mean()), rel=1e-5) and d.y_std > 10


def test_unknown_dataset_lists_available():
    with pytest.raises(UnknownNameError, match="unknown dataset 'digit'; installed: breast_cancer"):
        load_dataset("digit")


def _idx(path, array):
    header = struct.pack(">HBB", 0, 0x08, array.ndim) + b"".join(struct.pack(">I", d) for d in array.shape)
    with gzip.open(path, "wb") as fh:
        fh.write(header + array.astype(np.uint8).tobytes())


def test_mnist_loader_reads_keras_npz_format(tmp_path):
    rng = np.random.default_rng(0)
    np.savez(
        tmp_path / "mnist.npz",
        x_train=rng.integers(0, 256, (200, 28, 28), dtype=np.uint8),
        y_train=np.repeat(np.arange(10), 20),
        x_test=rng.integers(0, 256, (50, 28, 28), dtype=np.uint8),
        y_test=np.repeat(np.arange(10), 5),
    )
    d = load_dataset({"name": "mnist", "cache_dir": str(tmp_path), "split": {"val": 0.1}}, seed=0)
    assert d.input_shape == (28, 28, 1) and len(d.x_test) == 50 and len(d.x_val) == 20
    assert d.x_train.max() <= 1.0


def test_fashion_mnist_loader_reads_idx_gz_files(tmp_path):
    folder = tmp_path / "fashion-mnist"
    folder.mkdir()
    rng = np.random.default_rng(0)
    x_tr, y_tr = rng.integers(0, 256, (100, 28, 28)), np.repeat(np.arange(10), 10)
    x_te, y_te = rng.integers(0, 256, (30, 28, 28)), np.repeat(np.arange(10), 3)
    for name, arr in [
        ("train-labels-idx1-ubyte.gz", y_tr),
        ("train-images-idx3-ubyte.gz", x_tr),
        ("t10k-labels-idx1-ubyte.gz", y_te),
        ("t10k-images-idx3-ubyte.gz", x_te),
    ]:
        _idx(folder / name, arr)
    np.testing.assert_array_equal(read_idx(folder / "t10k-images-idx3-ubyte.gz"), x_te)
    d = load_dataset({"name": "fashion_mnist", "cache_dir": str(tmp_path), "split": {"val": 0.1}}, seed=0)
    assert d.input_shape == (28, 28, 1) and len(d.x_test) == 30 and len(d.x_train) + len(d.x_val) == 100


def test_california_housing_loader_reads_scikit_learn_cache(tmp_path):
    import joblib

    rng = np.random.default_rng(0)
    # scikit-learn's cache layout: target (in dollars) first, then the raw features.
    raw = np.column_stack([rng.uniform(1e5, 5e5, 100), rng.uniform(1, 10, (100, 8))])
    joblib.dump(raw, tmp_path / "cal_housing_py3.pkz", compress=6)
    d = load_dataset({"name": "california_housing", "cache_dir": str(tmp_path)}, seed=0)
    assert d.task == "regression" and d.input_shape == (8,) and 1.0 <= d.y_mean <= 5.0


def test_offline_and_uncached_gives_one_clear_error(tmp_path, monkeypatch):
    import keras

    def offline(*args, **kwargs):
        raise OSError("network is unreachable")

    monkeypatch.setattr(keras.datasets.mnist, "load_data", offline)
    with pytest.raises(DatasetUnavailableError) as err:
        load_dataset({"name": "mnist", "cache_dir": str(tmp_path)})
    message = str(err.value)
    assert str(tmp_path / "mnist.npz") in message and "digits" in message and "network is unreachable" in message


def test_offline_and_uncached_fashion_mnist_and_california_housing(tmp_path, monkeypatch):
    import keras
    import sklearn.datasets

    def offline(*args, **kwargs):
        raise OSError("network is unreachable")

    monkeypatch.setattr(keras.datasets.fashion_mnist, "load_data", offline)
    monkeypatch.setattr(sklearn.datasets, "fetch_california_housing", offline)
    with pytest.raises(DatasetUnavailableError) as err:
        load_dataset({"name": "fashion_mnist", "cache_dir": str(tmp_path)})
    assert str(tmp_path / "fashion-mnist") in str(err.value) and "train-images-idx3-ubyte.gz" in str(err.value)
    assert "network is unreachable" in str(err.value) and "HARNESS_DATA_DIR" in str(err.value)
    with pytest.raises(DatasetUnavailableError) as err:
        load_dataset({"name": "california_housing", "cache_dir": str(tmp_path)})
    assert str(tmp_path / "cal_housing_py3.pkz") in str(err.value) and "network is unreachable" in str(err.value)


def _tiny_mnist(folder, n_train: int = 200):
    rng = np.random.default_rng(0)
    folder.mkdir(parents=True, exist_ok=True)
    np.savez(
        folder / "mnist.npz",
        x_train=rng.integers(0, 256, (n_train, 28, 28), dtype=np.uint8),
        y_train=np.repeat(np.arange(10), n_train // 10),
        x_test=rng.integers(0, 256, (50, 28, 28), dtype=np.uint8),
        y_test=np.repeat(np.arange(10), 5),
    )


def test_harness_data_dir_is_where_the_shipped_configs_look(tmp_path, monkeypatch):
    # The shipped mnist config resolves cache_dir from HARNESS_DATA_DIR: a file placed there is used.
    from hydra import compose, initialize_config_module
    from omegaconf import OmegaConf

    _tiny_mnist(tmp_path / "data")
    monkeypatch.setenv("HARNESS_DATA_DIR", str(tmp_path / "data"))
    with initialize_config_module("harness.conf", version_base="1.3"):
        cfg = compose("config", overrides=["dataset=mnist", "dataset.subsample=150"])
    dataset = OmegaConf.to_container(cfg.dataset, resolve=True)
    assert dataset["cache_dir"] == str(tmp_path / "data")
    d = load_dataset(dataset, seed=0)
    # dataset.subsample keeps 150 of the 200 training images (then 10 % go to validation).
    assert len(d.x_test) == 50 and len(d.x_train) + len(d.x_val) == 150
    full = load_dataset(dict(dataset, subsample=None), seed=0)
    assert len(full.x_train) + len(full.x_val) == 200


@pytest.mark.parametrize("name, path", [("mnist", "mnist.npz"), ("fashion_mnist", "fashion-mnist/train-labels-idx1-ubyte.gz")])
def test_a_corrupt_cached_file_names_itself_and_the_fix(tmp_path, name, path):
    target = tmp_path / path
    target.parent.mkdir(parents=True, exist_ok=True)
    if name == "fashion_mnist":  # every file present, the first one truncated
        for f in (
            "train-labels-idx1-ubyte.gz",
            "train-images-idx3-ubyte.gz",
            "t10k-labels-idx1-ubyte.gz",
            "t10k-images-idx3-ubyte.gz",
        ):
            (target.parent / f).write_bytes(b"\x1f\x8b truncated")
    else:
        target.write_bytes(b"PK\x03\x04 truncated")
    with pytest.raises(DatasetUnavailableError) as err:
        load_dataset({"name": name, "cache_dir": str(tmp_path)})
    assert str(target) in str(err.value) and "delete it so that it is downloaded again" in str(err.value)


# -- datasets by loader, and the user's own file ------------------------------------------------
def _csv(tmp_path, rows: int = 90, classes: int = 3, label: bool = True, **extra):
    import pandas as pd

    rng = np.random.default_rng(0)
    frame = pd.DataFrame(
        {
            "a": rng.normal(size=rows),
            "b": rng.normal(size=rows),
            **({"label": [f"c{i % classes}" for i in range(rows)]} if label else {}),
            **extra,
        }
    )
    path = tmp_path / "mine.csv"
    frame.to_csv(path, index=False)
    return path


def test_every_shipped_dataset_names_its_loader():
    import yaml
    from importlib.resources import files

    from harness.datasets import available_datasets, resolve_loader

    for name in available_datasets():
        cfg = yaml.safe_load((files("harness.conf") / "dataset" / f"{name}.yaml").read_text())
        assert cfg["loader"].startswith("harness.datasets:") and callable(resolve_loader(cfg))


def test_a_dataset_with_a_loader_of_its_own_needs_no_harness_change(tmp_path, monkeypatch):
    import sys
    import types

    from harness.datasets import RawData

    module = types.ModuleType("my_data")
    module.load = lambda cfg, seed: RawData(np.arange(60.0).reshape(30, 2), np.arange(30) % 2, "classification", ("even", "odd"))
    monkeypatch.setitem(sys.modules, "my_data", module)
    d = load_dataset({"name": "parity", "loader": "my_data:load", "split": {"val": 0.2, "test": 0.2}})
    assert d.name == "parity" and d.class_names == ("even", "odd") and len(d.x_test) == 6


def test_file_dataset_reads_csv_parquet_and_npz_alike(tmp_path):
    import pandas as pd

    csv = _csv(tmp_path)
    pd.read_csv(csv).to_parquet(tmp_path / "mine.parquet")
    frame = pd.read_csv(csv)
    np.savez(tmp_path / "mine.npz", x=frame[["a", "b"]].to_numpy(), y=frame["label"].to_numpy().astype(str))
    loaded = [
        load_dataset(
            {"name": "file", "path": str(tmp_path / f"mine.{ext}"), "target": "label"}
            if ext != "npz"
            else {"name": "file", "path": str(tmp_path / "mine.npz")},
            seed=0,
        )
        for ext in ("csv", "parquet", "npz")
    ]
    for d in loaded:
        assert d.name == "mine" and d.task == "classification" and d.class_names == ("c0", "c1", "c2")
        assert len(d.x_train) + len(d.x_val) + len(d.x_test) == 90 and d.input_shape == (2,)
        np.testing.assert_array_equal(d.y_test, loaded[0].y_test)
        np.testing.assert_allclose(d.x_test, loaded[0].x_test)


def test_file_dataset_infers_regression_and_takes_a_given_task(tmp_path):
    from harness.datasets import dataset_task

    path = _csv(tmp_path, label=False, price=np.linspace(1.5, 99.5, 90))
    cfg = {"name": "file", "path": str(path), "target": "price"}
    assert dataset_task(cfg) == "regression" and load_dataset(cfg).task == "regression"
    counts = {"name": "file", "path": str(_csv(tmp_path, label=False, n=np.arange(90) % 3)), "target": "n"}
    assert dataset_task(counts) == "classification"  # few integer values: classes
    assert load_dataset({**counts, "task": "regression"}).task == "regression"


@pytest.mark.parametrize(
    ("change", "phrase"),
    [
        ({"target": "nope"}, "dataset.target 'nope' is not a column of .*mine.csv.*; its columns: a, b, label"),
        ({"path": "missing.csv"}, "dataset.path 'missing.csv' does not exist"),
        ({"path": "data.xlsx"}, "unsupported format '.xlsx'"),
        ({"target": None}, "needs the target column"),
        ({"task": "ranking"}, "dataset.task must be classification, regression or null"),
    ],
)
def test_file_dataset_config_errors_name_the_value_and_the_fix(tmp_path, change, phrase):
    from harness.errors import ConfigError

    cfg = {"name": "file", "path": str(_csv(tmp_path)), "target": "label", **change}
    with pytest.raises(ConfigError, match=phrase):
        load_dataset(cfg)


def test_file_dataset_data_errors(tmp_path):
    import pandas as pd

    from harness.errors import ConfigError

    text = _csv(tmp_path, colour=["red"] * 90)
    with pytest.raises(ConfigError, match="features must be numeric, but column\\(s\\) 'colour' are not"):
        load_dataset({"name": "file", "path": str(text), "target": "label"})
    frame = pd.DataFrame({"a": np.arange(40.0), "label": ["x"] * 38 + ["y"] * 2})
    frame.to_csv(tmp_path / "rare.csv", index=False)
    with pytest.raises(ConfigError, match="class\\(es\\) 'y' \\(2 rows\\) have fewer than 5 rows"):
        load_dataset({"name": "file", "path": str(tmp_path / "rare.csv"), "target": "label"})
    (tmp_path / "bad.npz").write_bytes(b"not a zip")
    with pytest.raises(ConfigError, match="is not a readable NPZ file"):
        load_dataset({"name": "file", "path": str(tmp_path / "bad.npz")})


@pytest.mark.slow
def test_harness_trains_keras_and_sklearn_on_a_users_csv(tmp_path, harness_cmd, subprocess_env):
    import subprocess

    import pandas as pd

    path = _csv(tmp_path)
    for problem in (["problem=sklearn", "problem.model=knn"], ["search_space=homl_mlp", "budget.max_epochs=1"]):
        proc = subprocess.run(
            harness_cmd
            + problem
            + ["dataset=file", f"dataset.path={path}", "dataset.target=label", "budget.trials=2", "progress=false"],
            capture_output=True,
            text=True,
            cwd=tmp_path,
            env=subprocess_env,
            timeout=300,
        )
        assert proc.returncode == 0, proc.stderr[-2000:]
    df = pd.read_parquet(tmp_path / "results" / "default")
    assert set(df["instance"]) == {"knn_mine", "homl_mlp_mine"} and (df["dataset"] == "mine").all()
    bad = subprocess.run(
        harness_cmd + ["problem=sklearn", "dataset=file", "dataset.path=nope.csv", "dataset.target=label"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env=subprocess_env,
        timeout=120,
    )
    assert bad.returncode == 2 and bad.stderr.startswith("error: ") and "Traceback" not in bad.stderr
