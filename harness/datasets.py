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

import functools
import gzip
import importlib
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from harness.errors import ConfigError, DatasetUnavailableError, UnknownNameError

BUNDLED = ("digits", "iris", "wine", "breast_cancer", "diabetes")
CACHED = ("mnist", "fashion_mnist", "california_housing")
FASHION_FILES = (
    "train-labels-idx1-ubyte.gz",
    "train-images-idx3-ubyte.gz",
    "t10k-labels-idx1-ubyte.gz",
    "t10k-images-idx3-ubyte.gz",
)


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
    """Names selectable as `dataset=<name>`: the shipped `conf/dataset/*.yaml`."""
    from importlib.resources import files

    return sorted(p.name[:-5] for p in (files("harness.conf") / "dataset").iterdir() if p.name.endswith(".yaml"))


REGRESSION = ("diabetes", "california_housing")
TASKS = ("classification", "regression")

# The loader of a dataset config without a `loader:` key (configs written as plain dicts).
BUILTIN_LOADERS = {
    **{name: "harness.datasets:load_bundled" for name in BUNDLED},
    "mnist": "harness.datasets:load_mnist",
    "fashion_mnist": "harness.datasets:load_fashion_mnist",
    "california_housing": "harness.datasets:load_california",
    "file": "harness.datasets:load_file",
}


@dataclass(frozen=True)
class RawData:
    """What a loader returns: features, targets and task, before the harness's split.

    `test` is a fixed test set the dataset ships with (MNIST's); the harness then carves only
    the validation share from `x`. `name` overrides the display name (a file's stem)."""

    x: np.ndarray
    y: np.ndarray
    task: str
    class_names: tuple[str, ...] = ()
    test: tuple[np.ndarray, np.ndarray] | None = None
    name: str | None = None


def resolve_loader(cfg: Mapping[str, Any]) -> Callable[..., RawData]:
    """The loader function a dataset config names (`loader: module:function`).

    A loader is called as `load(cfg, seed) -> RawData`. It may carry attributes: `check(cfg)`
    validates its options without reading data, `own_test_set = True` says the data comes with
    its own test set (only `split.val` applies), `task_of(cfg)` tells the task without loading.
    """
    name = str(cfg.get("name"))
    spec = cfg.get("loader") or BUILTIN_LOADERS.get(name)
    if spec is None:
        raise UnknownNameError("dataset", name, available_datasets())
    module_name, _, attr = str(spec).partition(":")
    try:
        return getattr(importlib.import_module(module_name), attr)
    except (ImportError, AttributeError, ValueError) as exc:
        raise ConfigError(
            f"dataset {name!r}: loader {spec!r} cannot be imported ({exc}); it must look like 'package.module:function'"
        ) from None


def dataset_label(cfg: Mapping[str, Any]) -> str:
    """The dataset's name in run ids, rows and reports (a `file` dataset: the file's stem)."""
    if cfg.get("path") and str(cfg.get("name")) == "file":
        return Path(str(cfg["path"])).stem
    return str(cfg.get("name"))


def dataset_task(cfg: Mapping[str, Any]) -> str:
    """ "classification" or "regression", known without splitting the data."""
    task = cfg.get("task")
    if task is not None:
        return str(task)
    task_of = getattr(resolve_loader(cfg), "task_of", None)
    if task_of is not None:
        return task_of(cfg)
    return "regression" if str(cfg.get("name")) in REGRESSION else "classification"


def check_dataset_config(cfg: Mapping[str, Any]) -> tuple[float, float]:
    """Validate a dataset config without loading anything; return (val, test) fractions."""
    name = str(cfg.get("name"))
    loader = resolve_loader(cfg)
    split = cfg.get("split") or {}
    if not isinstance(split, Mapping):
        raise ConfigError(f"dataset.split must be a mapping like {{val: 0.2, test: 0.2}}, but got {split!r}")
    # MNIST and Fashion-MNIST keep their own test set: only `val` applies to them.
    own_test = bool(getattr(loader, "own_test_set", False))
    val, test = split.get("val", 0.2), 0.0 if own_test else split.get("test", 0.2)
    numbers = all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in (val, test))
    if not numbers or not (0 < val < 1 and (own_test or 0 < test < 1) and val + test < 1):
        raise ConfigError(
            f"dataset {name!r}: split fractions must satisfy 0 < val, 0 < test and "
            f"val + test < 1, but got val={val!r}, test={test!r}; e.g. "
            f"`dataset.split.val=0.2 dataset.split.test=0.2`"
        )
    task = cfg.get("task")
    if task is not None and task not in TASKS:
        raise ConfigError(f"dataset.task must be classification, regression or null (inferred), but got {task!r}")
    check = getattr(loader, "check", None)
    if check is not None:
        check(cfg, val=float(val))
    return float(val), float(test)


def load_dataset(cfg: Mapping[str, Any] | str, seed: int = 0) -> Dataset:
    """Load the dataset a config names (or a built-in name) and split it deterministically by
    `seed`: stratified train / validation / test, preprocessing fitted on train."""
    if isinstance(cfg, str):
        cfg = {"name": cfg}
    val_frac, test_frac = check_dataset_config(cfg)
    raw = resolve_loader(cfg)(cfg, seed)
    task = str(cfg.get("task") or raw.task)
    try:
        if raw.test is None:
            parts = _split(raw.x, raw.y, task, seed, val_frac, test_frac)
        else:
            from sklearn.model_selection import train_test_split

            strat = raw.y if task == "classification" else None
            x_tr, x_va, y_tr, y_va = train_test_split(raw.x, raw.y, test_size=val_frac, random_state=seed, stratify=strat)
            parts = (x_tr, y_tr, x_va, y_va, *raw.test)
    except ValueError as exc:  # too few rows (or rows of a class) for the shares
        raise ConfigError(
            f"dataset {raw.name or cfg.get('name')!r}: its {len(raw.y)} rows cannot be split "
            f"into train / validation / test with split {dict(cfg.get('split') or {})} "
            f"({exc}); use more data or other shares"
        ) from None
    return _preprocess(raw.name or str(cfg.get("name")), task, raw.class_names, *parts)


# -- loaders ------------------------------------------------------------------------------------
def load_bundled(cfg: Mapping[str, Any], seed: int) -> RawData:
    """scikit-learn's bundled datasets: digits (8x8 images), iris, wine, breast_cancer, diabetes."""
    x, y, task, classes = _load_sklearn(str(cfg.get("name")))
    return RawData(x, y, task, classes)


def _check_subsample(cfg: Mapping[str, Any], *, val: float) -> None:
    subsample = cfg.get("subsample")
    # The validation part is stratified: it needs at least one image of each of the 10 classes.
    least = math.ceil(10 / val)
    if subsample is not None and (type(subsample) is not int or subsample < least):
        raise ConfigError(
            f"dataset.subsample must be an integer >= {least} (10 classes in a "
            f"{val:g} validation share) or null, but got {subsample!r}"
        )


def _mnist_like(cfg: Mapping[str, Any], seed: int, arrays: Any) -> RawData:
    (x_tr, y_tr), (x_te, y_te) = arrays
    if cfg.get("subsample"):
        keep = np.random.default_rng(seed).permutation(len(x_tr))[: int(cfg["subsample"])]
        x_tr, y_tr = x_tr[keep], y_tr[keep]
    return RawData(x_tr[..., None], y_tr, "classification", tuple(str(i) for i in range(10)), test=(x_te[..., None], y_te))


def load_mnist(cfg: Mapping[str, Any], seed: int) -> RawData:
    """MNIST in Keras's `mnist.npz` format (its own 10,000-image test set)."""
    return _mnist_like(cfg, seed, _load_mnist(cfg.get("cache_dir")))


def load_fashion_mnist(cfg: Mapping[str, Any], seed: int) -> RawData:
    """Fashion-MNIST from its gzipped IDX files (its own test set)."""
    return _mnist_like(cfg, seed, _load_fashion(cfg.get("cache_dir")))


def load_california(cfg: Mapping[str, Any], seed: int) -> RawData:
    """California housing through scikit-learn's fetcher and cache (regression)."""
    x, y = _load_california(cfg.get("cache_dir"))
    return RawData(x, y, "regression")


for _loader in (load_mnist, load_fashion_mnist):
    _loader.own_test_set = True  # type: ignore[attr-defined]
    _loader.check = _check_subsample  # type: ignore[attr-defined]


def _load_sklearn(name: str) -> tuple[np.ndarray, np.ndarray, str, tuple[str, ...]]:
    from sklearn import datasets as skd

    if name == "digits":
        d = skd.load_digits()
        return d.images[..., None].astype("float32"), d.target, "classification", tuple(map(str, d.target_names))
    loader = {
        "iris": skd.load_iris,
        "wine": skd.load_wine,
        "breast_cancer": skd.load_breast_cancer,
        "diabetes": skd.load_diabetes,
    }[name]
    d = loader()
    if name == "diabetes":
        return d.data, d.target.astype("float64"), "regression", ()
    return d.data, d.target, "classification", tuple(map(str, d.target_names))


def _split(x: np.ndarray, y: np.ndarray, task: str, seed: int, val: float, test: float):
    from sklearn.model_selection import train_test_split

    strat = y if task == "classification" else None
    x_rest, x_te, y_rest, y_te = train_test_split(x, y, test_size=test, random_state=seed, stratify=strat)
    strat = y_rest if task == "classification" else None
    x_tr, x_va, y_tr, y_va = train_test_split(x_rest, y_rest, test_size=val / (1 - test), random_state=seed, stratify=strat)
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
    return Dataset(
        name,
        task,
        x_tr,
        y_tr,
        x_va,
        y_va,
        x_te,
        y_te,
        class_names=classes,
        y_mean=y_mean,
        y_std=y_std,
        info={"n_train": len(x_tr), "n_val": len(x_va), "n_test": len(x_te)},
    )


def cached_paths(cfg: Mapping[str, Any]) -> list[Path]:
    """The files a downloadable dataset reads from its cache (empty for bundled data and files)."""
    name = str(cfg.get("name"))
    if cfg.get("loader") not in (None, BUILTIN_LOADERS.get(name)):
        return []  # a loader of the user's own: whatever it reads is its business
    if name == "mnist":
        return [_cache_dir(cfg.get("cache_dir"), "~/.keras/datasets") / "mnist.npz"]
    if name == "fashion_mnist":
        folder = _cache_dir(cfg.get("cache_dir"), "~/.keras/datasets") / "fashion-mnist"
        return [folder / f for f in FASHION_FILES]
    if name == "california_housing":
        return [_cache_dir(cfg.get("cache_dir"), "~/scikit_learn_data") / "cal_housing_py3.pkz"]
    return []


def is_cached(cfg: Mapping[str, Any]) -> bool:
    """True when the dataset can be read without a download (bundled, a file, or cached)."""
    return all(p.exists() for p in cached_paths(cfg))


def _cache_dir(cache_dir: Any, default: str) -> Path:
    return Path(str(cache_dir or default)).expanduser()


def _unavailable(name: str, wanted: Path, exc: BaseException) -> DatasetUnavailableError:
    return DatasetUnavailableError(
        f"dataset {name!r} is not cached at {str(wanted)!r} and could not be downloaded "
        f"({type(exc).__name__}: {exc}). Place the file there (or point dataset.cache_dir / "
        f"HARNESS_DATA_DIR at a folder holding it), or use a bundled dataset: {', '.join(BUNDLED)}"
    )


def _corrupt(name: str, path: Path, exc: BaseException) -> DatasetUnavailableError:
    return DatasetUnavailableError(
        f"the cached file of dataset {name!r}, {str(path)!r}, is unreadable ({type(exc).__name__}: "
        f"{exc}); delete it so that it is downloaded again, or replace it with a good copy"
    )


def _load_mnist(cache_dir: Any):
    path = _cache_dir(cache_dir, "~/.keras/datasets") / "mnist.npz"
    if not path.exists():
        try:  # the real Keras loader: downloads to ~/.keras/datasets when online
            import keras

            return keras.datasets.mnist.load_data()
        except Exception as exc:
            raise _unavailable("mnist", path, exc) from None
    try:
        with np.load(path, allow_pickle=False) as f:  # Keras's own mnist.npz layout
            return (f["x_train"], f["y_train"]), (f["x_test"], f["y_test"])
    except Exception as exc:  # truncated download, another file under that name
        raise _corrupt("mnist", path, exc) from None


def read_idx(path: Path) -> np.ndarray:
    """Read a gzipped IDX file (the MNIST / Fashion-MNIST distribution format)."""
    with gzip.open(path, "rb") as fh:
        data = fh.read()
    ndim = data[3]
    dims = [int.from_bytes(data[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim)]
    return np.frombuffer(data, np.uint8, offset=4 + 4 * ndim).reshape(dims)


def _load_fashion(cache_dir: Any):
    folder = _cache_dir(cache_dir, "~/.keras/datasets") / "fashion-mnist"
    missing = [f for f in FASHION_FILES if not (folder / f).exists()]
    if missing:
        try:
            import keras

            return keras.datasets.fashion_mnist.load_data()
        except Exception as exc:
            raise _unavailable("fashion_mnist", folder / ("{" + ",".join(missing) + "}"), exc) from None
    arrays = []
    for f in FASHION_FILES:
        try:
            arrays.append(read_idx(folder / f))
        except Exception as exc:
            raise _corrupt("fashion_mnist", folder / f, exc) from None
    y_tr, x_tr, y_te, x_te = arrays
    return (x_tr, y_tr), (x_te, y_te)


def _load_california(cache_dir: Any):
    from sklearn.datasets import fetch_california_housing

    home = _cache_dir(cache_dir, "~/scikit_learn_data")
    try:
        d = fetch_california_housing(data_home=str(home), download_if_missing=True)
    except Exception as exc:
        raise _unavailable("california_housing", home / "cal_housing_py3.pkz", exc) from None
    return d.data, d.target.astype("float64")


# -- your own data: `dataset=file dataset.path=my.csv dataset.target=label` ----------------------
FILE_FORMATS = (".csv", ".parquet", ".pq", ".npz")
MAX_CLASSES = 20  # an integer target with at most this many values is taken as class labels


def _file_path(cfg: Mapping[str, Any]) -> Path:
    path = cfg.get("path")
    if not path:
        raise ConfigError("dataset=file needs the file: `dataset.path=<file.csv|.parquet|.npz> dataset.target=<column>`")
    path = Path(str(path)).expanduser()
    if path.suffix.lower() not in FILE_FORMATS:
        raise ConfigError(f"dataset.path {str(path)!r}: unsupported format {path.suffix!r}; use one of {', '.join(FILE_FORMATS)}")
    if not path.is_file():
        raise ConfigError(
            f"dataset.path {str(path)!r} does not exist or is not a file; give the path "
            f"to a CSV, Parquet or NPZ file (relative paths are relative to where "
            f"harness was started)"
        )
    return path


def _read_file(cfg: Mapping[str, Any]) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """(features, target, feature names) of a user's file; one clear error for each problem.

    Read once per process and file version: the task is inferred from it when the run is
    configured, and the runner's check and the problem's setup then load the same file."""
    path = _file_path(cfg)
    stat = path.stat()
    target = cfg.get("target")
    return _read_file_at(str(path), stat.st_mtime_ns, stat.st_size, None if target is None else str(target), cfg.get("features"))


@functools.lru_cache(maxsize=4)
def _read_file_at(
    path_text: str, mtime_ns: int, size: int, target: str | None, features_name: Any
) -> tuple[np.ndarray, np.ndarray, list[str]]:
    path = Path(path_text)
    if path.suffix.lower() == ".npz":
        target = "y" if target is None else str(target)
        features = str(features_name or "x")
        try:
            with np.load(path, allow_pickle=False) as f:
                names = list(f.files)
                if target not in names or features not in names:
                    missing = [n for n in (features, target) if n not in names]
                    raise ConfigError(
                        f"dataset.path {str(path)!r} has no array {missing[0]!r}; its arrays: "
                        f"{', '.join(names)}; name them with dataset.features=<name> "
                        f"dataset.target=<name>"
                    )
                x, y = np.asarray(f[features]), np.asarray(f[target])
        except ConfigError:
            raise
        except Exception as exc:  # truncated, not an NPZ at all
            raise ConfigError(f"dataset.path {str(path)!r} is not a readable NPZ file ({exc})") from None
        if len(x) != len(y):
            raise ConfigError(f"dataset.path {str(path)!r}: {features!r} has {len(x)} rows but {target!r} has {len(y)}")
        if not np.issubdtype(x.dtype, np.number):
            raise ConfigError(f"dataset.path {str(path)!r}: features {features!r} must be numeric, but are {x.dtype}")
        if y.ndim != 1:
            raise ConfigError(
                f"dataset.path {str(path)!r}: target {target!r} must be one label or value "
                f"per row (1-D), but has shape {y.shape}; e.g. class indices, not one-hot rows"
            )
        if not np.isfinite(x).all():
            raise ConfigError(
                f"dataset.path {str(path)!r}: features {features!r} hold NaN or infinite values; fill or drop those rows first"
            )
        x = x.reshape(len(x), -1) if x.ndim == 1 else x
        return x.astype("float64") if x.ndim == 2 else x, y, [features]
    import pandas as pd

    if target is None:
        raise ConfigError("dataset=file needs the target column: `dataset.target=<column>`")
    try:
        frame = pd.read_csv(path) if path.suffix.lower() == ".csv" else pd.read_parquet(path)
    except Exception as exc:
        raise ConfigError(f"dataset.path {str(path)!r} cannot be read ({type(exc).__name__}: {exc})") from None
    if target not in frame.columns:
        raise ConfigError(
            f"dataset.target {target!r} is not a column of {str(path)!r}; its columns: {', '.join(map(str, frame.columns))}"
        )
    features = frame.drop(columns=[target])
    text = [str(c) for c in features.columns if not pd.api.types.is_numeric_dtype(features[c])]
    if text:
        raise ConfigError(
            f"dataset {str(path)!r}: features must be numeric, but column(s) "
            f"{', '.join(map(repr, text))} are not; encode them (e.g. one-hot) or drop "
            f"them from the file"
        )
    if features.shape[1] == 0:
        raise ConfigError(f"dataset {str(path)!r} has no feature columns besides the target {target!r}")
    values = features.to_numpy("float64")
    if features.isna().any().any() or frame[target].isna().any() or not np.isfinite(values).all():
        bad = [
            str(c)
            for c in frame.columns
            if frame[c].isna().any() or (c != target and not np.isfinite(frame[c].to_numpy("float64")).all())
        ]
        raise ConfigError(
            f"dataset {str(path)!r}: missing or infinite values in column(s) "
            f"{', '.join(map(repr, bad))}; fill or drop those rows first"
        )
    if len(frame) < 10:
        raise ConfigError(f"dataset {str(path)!r} has {len(frame)} rows; a train / validation / test split needs at least 10")
    return values, frame[target].to_numpy(), [str(c) for c in features.columns]


def _infer_task(y: np.ndarray) -> str:
    if not np.issubdtype(y.dtype, np.number) or y.dtype == bool:
        return "classification"
    if np.issubdtype(y.dtype, np.integer) and len(np.unique(y)) <= MAX_CLASSES:
        return "classification"
    return "regression"


def _file_task(cfg: Mapping[str, Any]) -> str:
    return str(cfg.get("task") or _infer_task(_read_file(cfg)[1]))


def _check_file(cfg: Mapping[str, Any], *, val: float) -> None:
    _file_path(cfg)
    if str(cfg.get("path")).lower().endswith((".csv", ".parquet", ".pq")) and cfg.get("target") is None:
        raise ConfigError("dataset=file needs the target column: `dataset.target=<column>`")


def load_file(cfg: Mapping[str, Any], seed: int) -> RawData:
    """A user's CSV, Parquet or NPZ file with a named target; the task is given or inferred
    (a non-numeric target, or integers with at most 20 values, are classes)."""
    x, y, _ = _read_file(cfg)
    task = str(cfg.get("task") or _infer_task(y))
    name = Path(str(cfg["path"])).stem
    if task == "regression":
        if not np.issubdtype(y.dtype, np.number):
            raise ConfigError(
                f"dataset {name!r}: dataset.task=regression needs a numeric target, but "
                f"{cfg.get('target') or 'y'!r} holds {y.dtype} values"
            )
        return RawData(x, y.astype("float64"), task, name=name)
    classes, codes = np.unique(y, return_inverse=True)
    counts = np.bincount(codes)
    split = cfg.get("split") or {}
    val, test = float(split.get("val", 0.2)), float(split.get("test", 0.2))
    # Stratified splits need each class in train, validation and test.
    least = max(3, math.ceil(1 / min(val, test)))
    if counts.min() < least:
        rare = [f"{c!r} ({n} rows)" for c, n in zip(classes, counts) if n < least]
        raise ConfigError(
            f"dataset {name!r}: class(es) {', '.join(rare[:5])} have fewer than {least} "
            f"rows, too few for a stratified {val:g}/{test:g} validation/test split; merge "
            f"or drop rare classes, or set dataset.task=regression for a numeric target"
        )
    return RawData(x, codes.astype("int64"), task, tuple(str(c) for c in classes), name=name)


load_file.check = _check_file  # type: ignore[attr-defined]
load_file.task_of = _file_task  # type: ignore[attr-defined]
