"""Run settings: the validated, typed view of a composed Hydra config.

A run is identified by its resolved config (strategy and its params, the problem's identity,
seed, fidelity cap): the same command writes to the same `results/<experiment>/<run_id>/`, so
re-running it resumes where it stopped. The trial and time budgets are not part of the identity,
so raising `budget.trials` extends a finished run instead of starting a new one.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness import provenance
from harness.errors import ConfigError
from harness.log import get_logger
from harness.problem import Problem
from harness.space import SearchSpace


@dataclass(frozen=True)
class RunSettings:
    strategy: str
    strategy_params: dict[str, Any]
    problem: Problem
    seed: int
    experiment: str = "default"
    results_dir: Path = Path("results")
    trials: int | None = 10
    seconds: float | None = None
    max_epochs: int | None = None  # cap on any trial's fidelity (epochs for `keras`)
    max_failure_rate: float = 0.8
    min_trials_before_failure_stop: int = 5
    overwrite: bool = False
    n_workers: int = 1
    worker_processes: bool = True
    worker_max_trials: int | None = 50
    worker_max_memory_growth_mb: float | None = 150.0
    trial_timeout: float | None = None
    worker_backend: str = "local"  # where trials run: "local" worker processes or "ray" actors
    ray_address: str | None = None  # worker.backend=ray: a cluster to join ("auto", "host:port"); None: local
    flush_seconds: float = 1.0  # rows and journal reach the disk at most this often (and at the end)
    progress: bool = True
    verbose: int = 0
    refit: bool = False  # retrain the best configuration on train + validation after the search
    refit_budget: int | None = None  # ... at this fidelity (None: what the best trial reached)
    live: bool = False  # mirror every trial into an Optuna storage for optuna-dashboard (harness.live)
    live_storage: str | None = None  # ... a journal file path or a database URL (None: <experiment>/_optuna.journal)
    config: dict[str, Any] = field(default_factory=dict)  # the resolved config, for provenance

    @property
    def space(self) -> SearchSpace:
        return self.problem.space

    # Keras-problem views kept for callers of the first versions.
    @property
    def dataset(self) -> dict[str, Any]:
        return dict(getattr(self.problem, "dataset", {}) or {})

    @property
    def trainer(self) -> str | None:
        return getattr(self.problem, "trainer", None)

    @property
    def trainer_kind(self) -> str | None:
        return getattr(self.problem, "trainer_kind", None)

    def identity(self) -> dict[str, Any]:
        problem = self.problem.identity()
        return {
            "strategy": self.strategy,
            "strategy_params": self.strategy_params,
            **problem,
            "seed": self.seed,
            "max_epochs": self.max_epochs,
        }

    @property
    def config_hash(self) -> str:
        return provenance.config_hash(self.identity())

    @property
    def run_id(self) -> str:
        return f"{self.strategy}_{self.problem.instance}_s{self.seed}_{self.config_hash}"

    @property
    def run_dir(self) -> Path:
        return self.results_dir / self.experiment / self.run_id

    @property
    def label(self) -> str:
        """Short name for progress lines."""
        return f"{self.strategy}/{self.problem.instance}/s{self.seed}"


def _optional(cfg: Mapping[str, Any], key: str, kind: type, *, minimum: float, what: str, strict: bool = False) -> Any:
    value = cfg.get(key)
    if value is None:
        return None
    ok = isinstance(value, (int, float)) and not isinstance(value, bool) and (kind is float or type(value) is int)
    if not ok or value < minimum or (strict and value <= minimum):
        bound = f"> {minimum:g}" if strict else f">= {minimum:g}"
        raise ConfigError(
            f"{what} must be {'an integer' if kind is int else 'a number'} {bound} "
            f"or null, but got {value!r}; e.g. `{what}={int(minimum) if minimum >= 1 else 1}`"
        )
    return kind(value)


def _flag(cfg: Mapping[str, Any], key: str, default: bool | None, *, what: str = "") -> bool | None:
    # Hydra passes `overwrite=no` as the string 'no', which bool() would take as True.
    value, what = cfg.get(key, default), what or key
    if value is None and default is None:
        return None
    if not isinstance(value, bool):
        raise ConfigError(f"{what} must be true or false, but got {value!r}; e.g. `{what}=true`")
    return value


def problem_from_config(cfg: Mapping[str, Any], *, seed: int) -> Problem:
    """Build the configured problem (default `keras`); its own options are `problem.*`."""
    from harness.registry import make_problem

    section = cfg.get("problem") or {"name": "keras"}
    if not isinstance(section, Mapping) or not section.get("name"):
        raise ConfigError(f"problem must be a config group with a `name`, but got {section!r}; choose one with `problem=<name>`")
    options = {k: v for k, v in section.items() if k != "name"}
    return make_problem(str(section["name"]), seed=seed, config=cfg, **options)


def with_stand_in(cfg: Mapping[str, Any]) -> Mapping[str, Any]:
    """`stand_in: <bundled dataset>` (the seed presets set it): when the configured dataset is
    not cached on this machine (MNIST, Fashion-MNIST offline), run on the stand-in instead and
    say so, rather than stop. The run's config and id then name the dataset actually used."""
    stand_in, dataset = cfg.get("stand_in"), cfg.get("dataset")
    if not stand_in or not isinstance(dataset, Mapping):
        return cfg
    from harness.datasets import BUNDLED, cached_paths, is_cached

    if stand_in not in BUNDLED:
        raise ConfigError(f"stand_in must be a bundled dataset ({', '.join(BUNDLED)}) or null, but got {stand_in!r}")
    if is_cached(dataset):
        return cfg
    from importlib.resources import files

    import yaml

    replacement = yaml.safe_load((files("harness.conf") / "dataset" / f"{stand_in}.yaml").read_text())
    missing = next(str(p) for p in cached_paths(dataset) if not p.exists())
    get_logger(__name__).warning(
        f"dataset {dataset.get('name')!r} is not cached ({missing!r} is missing); running on its stand-in "
        f"{stand_in!r}. Place the file there to run the original, or pass stand_in=null to stop instead"
    )
    return {**cfg, "dataset": replacement}


def settings_from_config(cfg: Mapping[str, Any], *, base_dir: Path | None = None, problem: Problem | None = None) -> RunSettings:
    """Validate a composed config (plain dict) and return typed settings; `ConfigError` if bad.

    `problem` replaces the configured one (tests and benchmarks)."""
    cfg = with_stand_in(cfg)
    if not isinstance(cfg.get("strategy"), Mapping):
        raise ConfigError("config needs a `strategy` group; choose one with `strategy=<name>`")
    strategy = cfg["strategy"]
    if not strategy.get("name"):
        raise ConfigError("strategy config has no `name`; it must equal the strategy's entry-point name")
    params = strategy.get("params") or {}
    if not isinstance(params, Mapping):
        raise ConfigError(f"strategy.params must be a mapping of constructor options, but got {params!r}")
    seed = cfg.get("seed", 0)
    if type(seed) is not int or seed < 0:
        raise ConfigError(f"seed must be a non-negative integer, but got {seed!r}; e.g. `seed=0`")
    budget = cfg.get("budget") or {}
    trials = _optional(budget, "trials", int, minimum=1, what="budget.trials")
    seconds = _optional(budget, "seconds", float, minimum=0, what="budget.seconds")
    max_epochs = _optional(budget, "max_epochs", int, minimum=1, what="budget.max_epochs")
    if trials is None and seconds is None and not params.get("max_trials"):
        raise ConfigError("the run has no budget: set budget.trials and/or budget.seconds")
    rate = cfg.get("max_failure_rate", 0.8)
    if not isinstance(rate, (int, float)) or not 0 < rate <= 1:
        raise ConfigError(f"max_failure_rate must be in (0, 1], but got {rate!r}")
    results_dir = Path(str(cfg.get("results_dir", "results"))).expanduser()
    if not results_dir.is_absolute() and base_dir is not None:
        results_dir = base_dir / results_dir
    experiment = str(cfg.get("experiment") or "default")
    if "/" in experiment or experiment.startswith((".", "_")):
        raise ConfigError(f"experiment must be a plain folder name, but got {experiment!r}")
    n_workers = cfg.get("n_workers", 1)
    if type(n_workers) is not int or n_workers < 1:
        raise ConfigError(f"n_workers must be an integer >= 1, but got {n_workers!r}; e.g. `n_workers=2`")
    worker = cfg.get("worker") or {}
    if not isinstance(worker, Mapping):
        raise ConfigError(f"worker must be a mapping (processes, max_trials, trial_timeout, threads), but got {worker!r}")
    processes = _flag(worker, "processes", None, what="worker.processes")
    worker_max_trials = _optional(worker, "max_trials", int, minimum=1, what="worker.max_trials")
    max_growth = _optional(worker, "max_memory_growth_mb", float, minimum=1, what="worker.max_memory_growth_mb")
    trial_timeout = _optional(worker, "trial_timeout", float, minimum=0, what="worker.trial_timeout", strict=True)
    _optional(worker, "threads", int, minimum=1, what="worker.threads")
    backend = worker.get("backend") or "local"
    if backend not in ("local", "ray"):
        raise ConfigError(f"worker.backend must be one of local, ray, but got {backend!r}; e.g. `worker.backend=ray`")
    ray_cfg = cfg.get("ray") or {}
    if not isinstance(ray_cfg, Mapping):
        raise ConfigError(f"ray must be a mapping (address), but got {ray_cfg!r}; e.g. `ray.address=auto`")
    ray_address = ray_cfg.get("address")
    if ray_address is not None and (not isinstance(ray_address, str) or not ray_address.strip()):
        raise ConfigError(
            f"ray.address must be null (start a local Ray instance), auto or host:port, but got "
            f"{ray_address!r}; e.g. `ray.address=auto`"
        )
    flush = _optional(cfg, "flush_seconds", float, minimum=0, what="flush_seconds")
    verbose = cfg.get("verbose", 0)
    if type(verbose) is not int or verbose not in (0, 1, 2):
        raise ConfigError(f"verbose must be 0, 1 or 2 (Keras fit verbosity), but got {verbose!r}")
    refit = cfg.get("refit") or {}
    if not isinstance(refit, Mapping):
        raise ConfigError(f"refit must be a mapping (enabled, budget), but got {refit!r}; e.g. `refit.enabled=true`")
    refit_enabled = bool(_flag(refit, "enabled", False, what="refit.enabled"))
    refit_budget = _optional(refit, "budget", int, minimum=1, what="refit.budget")
    from harness.live import storage_from_config

    live, live_storage = storage_from_config(cfg, base_dir=base_dir)  # `live.*`: the live view
    if problem is None:
        problem = problem_from_config(cfg, seed=seed)
    if refit_enabled and not problem.can_refit:
        raise ConfigError(
            f"refit.enabled=true: problem {problem.name!r} cannot retrain a configuration on "
            f"training + validation data (only problem=keras can); remove refit.enabled"
        )
    if backend == "ray":  # Ray actors are the worker processes
        if problem.simulated_clock:
            raise ConfigError(
                f"worker.backend=ray does not apply to problem {problem.name!r}, whose trials take "
                f"simulated time in the runner's process; remove it"
            )
        if processes is False:
            raise ConfigError("worker.backend=ray evaluates trials in Ray actors, but worker.processes=false; remove one of them")
        import importlib.util

        if importlib.util.find_spec("ray") is None:
            from harness.ray_workers import INSTALL_HINT, RayUnavailableError

            raise RayUnavailableError(
                f"worker.backend=ray needs Ray, which is not installed; install the extra "
                f"with `{INSTALL_HINT}`, or use worker.backend=local"
            )
        processes = True
    if problem.simulated_clock:  # cost reported, not spent: n_workers are simulated in-process
        if trial_timeout is not None:
            raise ConfigError(
                f"worker.trial_timeout does not apply to problem {problem.name!r}, whose trials take simulated time; remove it"
            )
        processes = False
    if processes is False and n_workers > 1 and not problem.simulated_clock:
        raise ConfigError(
            f"n_workers={n_workers} needs worker processes, but worker.processes=false; "
            f"set worker.processes=true (or leave it null)"
        )
    if processes is False and trial_timeout is not None:
        raise ConfigError(
            f"worker.trial_timeout={trial_timeout:g} needs worker processes (a trial in "
            f"the runner's own process cannot be killed), but worker.processes=false; "
            f"set worker.processes=true (or leave it null)"
        )
    if processes is None:  # the problem decides: Keras in workers, cheap problems in-process
        processes = bool(problem.isolate or n_workers > 1 or trial_timeout is not None)
    return RunSettings(
        strategy=str(strategy["name"]),
        strategy_params=dict(params),
        problem=problem,
        seed=seed,
        experiment=experiment,
        results_dir=results_dir,
        trials=trials,
        seconds=seconds,
        max_epochs=max_epochs,
        max_failure_rate=float(rate),
        overwrite=bool(_flag(cfg, "overwrite", False)),
        n_workers=n_workers,
        worker_processes=processes,
        worker_max_trials=worker_max_trials,
        worker_max_memory_growth_mb=max_growth,
        trial_timeout=trial_timeout,
        flush_seconds=1.0 if flush is None else flush,
        progress=bool(_flag(cfg, "progress", True)),
        verbose=verbose,
        config=dict(cfg),
        refit=refit_enabled,
        refit_budget=refit_budget,
        live=live,
        live_storage=live_storage,
        worker_backend=backend,
        ray_address=ray_address,
    )
