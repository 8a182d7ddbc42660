"""Datasets: loaders and the deterministic train / validation / test split.

Bundled (offline, scikit-learn): digits (default), iris, wine, breast_cancer, diabetes.
Cached (real loaders, need a file on disk when offline): mnist, fashion_mnist (Keras formats),
california_housing (scikit-learn's cache).

The split depends only on the dataset and the run seed, so every strategy sees the same data.
Preprocessing is fitted on the training part only: features are standardised with the training
mean/std; images are scaled by their fixed pixel range and keep their (H, W, 1) shape for CNNs;
regression targets are standardised for training and metrics are reported in original units.
"""
from __future__ import annotations

import gzip
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from harness.errors import ConfigError, DatasetUnavailableError, UnknownNameError

BUNDLED = ("digits", "iris", "wine", "breast_cancer", "diabetes")
CACHED = ("mnist", "fashion_mnist", "california_housing")
FASHION_FILES = ("train-labels-idx1-ubyte.gz", "train-images-idx3-ubyte.gz",
                 "t10k-labels-idx1-ubyte.gz", "t10k-images-idx3-ubyte.gz")


@dataclass(frozen=True)
class Dataset:
    name: str
    task: str  # "classification" | "regression"
    x_train: np.ndarray
    y_train: np.ndarray
    x_val: np.ndarray
    y_val: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    class_names: tuple[str, ...] = ()
    # Regression targets are standardised; predictions * y_std + y_mean are in original units.
    y_mean: float = 0.0
    y_std: float = 1.0
    info: dict[str, Any] = field(default_factory=dict)

    @property
    def input_shape(self) -> tuple[int, ...]:
        return tuple(self.x_train.shape[1:])

    @property
    def is_image(self) -> bool:
        return self.x_train.ndim == 4

    @property
    def n_outputs(self) -> int:
        return len(self.class_names) if self.task == "classification" else 1


def available_datasets() -> list[str]:
    return sorted(BUNDLED + CACHED)


REGRESSION = ("diabetes", "california_housing")


def dataset_task(cfg: Mapping[str, Any]) -> str:
    """"classification" or "regression", known without loading the data."""
    task = cfg.get("task")
    if task is not None:
        return str(task)
    return "regression" if str(cfg.get("name")) in REGRESSION else "classification"


def check_dataset_config(cfg: Mapping[str, Any]) -> tuple[float, float]:
    """Validate a dataset config without loading anything; return (val, test) fractions."""
    name = str(cfg.get("name"))
    if name not in BUNDLED + CACHED:
        raise UnknownNameError("dataset", name, available_datasets())
    split = cfg.get("split") or {}
    if not isinstance(split, Mapping):
        raise ConfigError(f"dataset.split must be a mapping like {{val: 0.2, test: 0.2}}, but got {split!r}")
    # MNIST and Fashion-MNIST keep their own test set: only `val` applies to them.
    own_test = name in ("mnist", "fashion_mnist")
    val, test = split.get("val", 0.2), 0.0 if own_test else split.get("test", 0.2)
    numbers = all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in (val, test))
    if not numbers or not (0 < val < 1 and (own_test or 0 < test < 1) and val + test < 1):
        raise ConfigError(f"dataset {name!r}: split fractions must satisfy 0 < val, 0 < test and "
                          f"val + test < 1, but got val={val!r}, test={test!r}; e.g. "
                          f"`dataset.split.val=0.2 dataset.split.test=0.2`")
    subsample = cfg.get("subsample")
    # The validation part is stratified: it needs at least one image of each of the 10 classes.
    least = math.ceil(10 / val)
    if subsample is not None and (type(subsample) is not int or subsample < least):
        raise ConfigError(f"dataset.subsample must be an integer >= {least} (10 classes in a "
                          f"{val:g} validation share) or null, but got {subsample!r}")
    return float(val), float(test)


def load_dataset(cfg: Mapping[str, Any] | str, seed: int = 0) -> Dataset:
    """Load dataset `cfg["name"]` (or a name) and split it deterministically by `seed`."""
    if isinstance(cfg, str):
        cfg = {"name": cfg}
    name = str(cfg.get("name"))
    val_frac, test_frac = check_dataset_config(cfg)
    if name in BUNDLED:
        x, y, task, classes = _load_sklearn(name)
        parts = _split(x, y, task, seed, val_frac, test_frac)
    elif name == "california_housing":
        x, y = _load_california(cfg.get("cache_dir"))
        task, classes = "regression", ()
        parts = _split(x, y, task, seed, val_frac, test_frac)
    else:  # mnist, fashion_mnist (check_dataset_config refused any other name)
        (x_tr, y_tr), (x_te, y_te) = (_load_mnist if name == "mnist" else _load_fashion)(cfg.get("cache_dir"))
        x_tr, x_te = x_tr[..., None], x_te[..., None]
        task, classes = "classification", tuple(str(i) for i in range(10))
        if cfg.get("subsample"):
            keep = np.random.default_rng(seed).permutation(len(x_tr))[: int(cfg["subsample"])]
            x_tr, y_tr = x_tr[keep], y_tr[keep]
        from sklearn.model_selection import train_test_split

        x_tr, x_va, y_tr, y_va = train_test_split(x_tr, y_tr, test_size=val_frac, random_state=seed,
                                                  stratify=y_tr)
        parts = (x_tr, y_tr, x_va, y_va, x_te, y_te)
    return _preprocess(name, task, classes, *parts)


def _load_sklearn(name: str) -> tuple[np.ndarray, np.ndarray, str, tuple[str, ...]]:
    from sklearn import datasets as skd

    if name == "digits":
        d = skd.load_digits()
        return d.images[..., None].astype("float32"), d.target, "classification", tuple(map(str, d.target_names))
    loader = {"iris": skd.load_iris, "wine": skd.load_wine,
              "breast_cancer": skd.load_breast_cancer, "diabetes": skd.load_diabetes}[name]
    d = loader()
    if name == "diabetes":
        return d.data, d.target.astype("float64"), "regression", ()
    return d.data, d.target, "classification", tuple(map(str, d.target_names))


def _split(x: np.ndarray, y: np.ndarray, task: str, seed: int, val: float, test: float):
    from sklearn.model_selection import train_test_split

    strat = y if task == "classification" else None
    x_rest, x_te, y_rest, y_te = train_test_split(x, y, test_size=test, random_state=seed, stratify=strat)
    strat = y_rest if task == "classification" else None
    x_tr, x_va, y_tr, y_va = train_test_split(x_rest, y_rest, test_size=val / (1 - test),
                                              random_state=seed, stratify=strat)
    return x_tr, y_tr, x_va, y_va, x_te, y_te


def _preprocess(name, task, classes, x_tr, y_tr, x_va, y_va, x_te, y_te) -> Dataset:
    if x_tr.ndim == 4:
        # Images: a fixed pixel range (16 for digits, 255 for the MNISTs), not fitted statistics.
        scale = 16.0 if name == "digits" else 255.0
        x_tr, x_va, x_te = (a.astype("float32") / scale for a in (x_tr, x_va, x_te))
    else:
        mean, std = x_tr.mean(axis=0), x_tr.std(axis=0)
        std[std == 0] = 1.0
        x_tr, x_va, x_te = ((a - mean) / std for a in (x_tr, x_va, x_te))
        x_tr, x_va, x_te = (a.astype("float32") for a in (x_tr, x_va, x_te))
    y_mean, y_std = 0.0, 1.0
    if task == "regression":
        y_mean, y_std = float(y_tr.mean()), float(y_tr.std() or 1.0)
        y_tr, y_va, y_te = (y.astype("float32") for y in (y_tr, y_va, y_te))
    else:
        y_tr, y_va, y_te = (y.astype("int64") for y in (y_tr, y_va, y_te))
    return Dataset(name, task, x_tr, y_tr, x_va, y_va, x_te, y_te, class_names=classes,
                   y_mean=y_mean, y_std=y_std,
                   info={"n_train": len(x_tr), "n_val": len(x_va), "n_test": len(x_te)})


def _cache_dir(cache_dir: Any, default: str) -> Path:
    return Path(str(cache_dir or default)).expanduser()


def _unavailable(name: str, wanted: Path, exc: BaseException) -> DatasetUnavailableError:
    return DatasetUnavailableError(
        f"dataset {name!r} is not cached at {str(wanted)!r} and could not be downloaded "
        f"({type(exc).__name__}: {exc}). Place the file there (or point dataset.cache_dir / "
        f"HARNESS_DATA_DIR at a folder holding it), or use a bundled dataset: {', '.join(BUNDLED)}"
    )


def _load_mnist(cache_dir: Any):
    path = _cache_dir(cache_dir, "~/.keras/datasets") / "mnist.npz"
    if not path.exists():
        try:  # the real Keras loader: downloads to ~/.keras/datasets when online
            import keras

            return keras.datasets.mnist.load_data()
        except Exception as exc:
            raise _unavailable("mnist", path, exc) from None
    with np.load(path, allow_pickle=False) as f:  # Keras's own mnist.npz layout
        return (f["x_train"], f["y_train"]), (f["x_test"], f["y_test"])


def read_idx(path: Path) -> np.ndarray:
    """Read a gzipped IDX file (the MNIST / Fashion-MNIST distribution format)."""
    with gzip.open(path, "rb") as fh:
        data = fh.read()
    ndim = data[3]
    dims = [int.from_bytes(data[4 + 4 * i: 8 + 4 * i], "big") for i in range(ndim)]
    return np.frombuffer(data, np.uint8, offset=4 + 4 * ndim).reshape(dims)


def _load_fashion(cache_dir: Any):
    folder = _cache_dir(cache_dir, "~/.keras/datasets") / "fashion-mnist"
    missing = [f for f in FASHION_FILES if not (folder / f).exists()]
    if missing:
        try:
            import keras

            return keras.datasets.fashion_mnist.load_data()
        except Exception as exc:
            raise _unavailable("fashion_mnist", folder / "{" + ",".join(missing) + "}", exc) from None
    y_tr, x_tr, y_te, x_te = (read_idx(folder / f) for f in FASHION_FILES)
    return (x_tr, y_tr), (x_te, y_te)


def _load_california(cache_dir: Any):
    from sklearn.datasets import fetch_california_housing

    home = _cache_dir(cache_dir, "~/scikit_learn_data")
    try:
        d = fetch_california_housing(data_home=str(home), download_if_missing=True)
    except Exception as exc:
        raise _unavailable("california_housing", home / "cal_housing_py3.pkz", exc) from None
    return d.data, d.target.astype("float64")
