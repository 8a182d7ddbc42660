"""The runner: one loop (ask -> evaluate -> tell -> record) that owns budgets, timing, failures,
persistence and resume. Strategies only decide what to try; the objective only trains.

A run is identified by its resolved config (strategy and its params, space, dataset, seed,
epoch cap, trainer): the same command writes to the same `results/<experiment>/<run_id>/`, so
re-running it resumes where it stopped. The trial and time budgets are not part of the identity,
so raising `budget.trials` extends a finished run instead of starting a new one.
"""
from __future__ import annotations

import json
import math
import os
import random
import shutil
import signal
import sys
import threading
import time
from collections.abc import Callable
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np

from harness import __version__, provenance
from harness.datasets import Dataset, check_dataset_config, load_dataset
from harness.errors import ConfigError, HarnessError, NotSupportedError, SearchSpaceError, StrategyError
from harness.registry import load_strategy_class, make_strategy
from harness.results import (ARTIFACTS_DIR, RUN_FILE, TRIALS_FILE, TrialWriter, param_arrow_type,
                             read_trials_file, write_json_atomic)
from harness.space import SearchSpace
from harness.trainers import check_trainer_options, resolve_trainer
from harness.strategy import Observation, Strategy, Suggestion, TrialStatus
from harness.workers import (Evaluator, InProcessEvaluator, KerasObjectiveSpec, ObjectiveFactory,
                             ProcessEvaluator, failed_result)

JOURNAL_FILE = "_journal.jsonl"  # the ask/tell sequence, for replaying the strategy on resume


@dataclass(frozen=True)
class RunSettings:
    """The validated, typed view of a composed Hydra config."""

    strategy: str
    strategy_params: dict[str, Any]
    space: SearchSpace
    dataset: dict[str, Any]
    seed: int
    experiment: str = "default"
    results_dir: Path = Path("results")
    trials: int | None = 10
    seconds: float | None = None
    max_epochs: int | None = None
    max_failure_rate: float = 0.8
    min_trials_before_failure_stop: int = 5
    trainer: str = "backprop"
    trainer_options: dict[str, Any] = field(default_factory=dict)
    trainer_kind: str | None = None  # the implementation (harness.trainers.TRAINERS); None: `trainer`
    overwrite: bool = False
    n_workers: int = 1
    worker_processes: bool = True
    worker_max_trials: int | None = 50
    worker_max_memory_growth_mb: float | None = 150.0
    trial_timeout: float | None = None
    worker_threads: int | None = None
    progress: bool = True
    verbose: int = 0
    config: dict[str, Any] = field(default_factory=dict)  # the resolved config, for provenance

    def identity(self) -> dict[str, Any]:
        return {"strategy": self.strategy, "strategy_params": self.strategy_params,
                "search_space": self.config.get("search_space", self.space.name),
                # where the files live is not part of what was run: resumable on another node
                "dataset": {k: v for k, v in self.dataset.items() if k != "cache_dir"},
                "seed": self.seed, "max_epochs": self.max_epochs,
                "trainer": self.trainer, "trainer_options": self.trainer_options,
                # Only when it differs from the name, so that existing runs keep their run ids.
                **({"trainer_kind": self.trainer_kind}
                   if self.trainer_kind not in (None, self.trainer) else {})}

    @property
    def run_id(self) -> str:
        return (f"{self.strategy}_{self.space.name}_{self.dataset['name']}_s{self.seed}_"
                f"{provenance.config_hash(self.identity())}")

    @property
    def run_dir(self) -> Path:
        return self.results_dir / self.experiment / self.run_id


def _optional(cfg: Mapping[str, Any], key: str, kind: type, *, minimum: float, what: str) -> Any:
    value = cfg.get(key)
    if value is None:
        return None
    ok = isinstance(value, (int, float)) and not isinstance(value, bool) and (kind is float or type(value) is int)
    if not ok or value < minimum:
        raise ConfigError(f"{what} must be {'an integer' if kind is int else 'a number'} >= {minimum} "
                          f"or null, but got {value!r}; e.g. `{what}={int(minimum) if minimum >= 1 else 1}`")
    return kind(value)


def _flag(cfg: Mapping[str, Any], key: str, default: bool, *, what: str = "") -> bool:
    # Hydra passes `overwrite=no` as the string 'no', which bool() would take as True.
    value, what = cfg.get(key, default), what or key
    if not isinstance(value, bool):
        raise ConfigError(f"{what} must be true or false, but got {value!r}; e.g. `{what}=true`")
    return value


def settings_from_config(cfg: Mapping[str, Any], *, base_dir: Path | None = None) -> RunSettings:
    """Validate a composed config (plain dict) and return typed settings; `ConfigError` if bad."""
    for section in ("strategy", "search_space", "dataset"):
        if not isinstance(cfg.get(section), Mapping):
            raise ConfigError(f"config needs a `{section}` group; choose one with `{section}=<name>`")
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
    trainer = cfg.get("trainer") or {"name": "backprop"}
    trainer_name, trainer_kind = resolve_trainer(trainer)
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
        raise ConfigError(f"worker must be a mapping (processes, max_trials, trial_timeout, threads), "
                          f"but got {worker!r}")
    processes = _flag(worker, "processes", True, what="worker.processes")
    worker_max_trials = _optional(worker, "max_trials", int, minimum=1, what="worker.max_trials")
    max_growth = _optional(worker, "max_memory_growth_mb", float, minimum=1,
                           what="worker.max_memory_growth_mb")
    trial_timeout = _optional(worker, "trial_timeout", float, minimum=0, what="worker.trial_timeout")
    threads = _optional(worker, "threads", int, minimum=1, what="worker.threads")
    if not processes and (n_workers > 1 or trial_timeout is not None):
        raise ConfigError(f"n_workers={n_workers} and worker.trial_timeout={trial_timeout} need worker "
                          f"processes, but worker.processes=false; set worker.processes=true")
    verbose = cfg.get("verbose", 0)
    if type(verbose) is not int or verbose not in (0, 1, 2):
        raise ConfigError(f"verbose must be 0, 1 or 2 (Keras fit verbosity), but got {verbose!r}")
    check_dataset_config(cfg["dataset"])
    space = SearchSpace.from_config(cfg["search_space"])
    trainer_options = trainer.get("params") or {}
    if not isinstance(trainer_options, Mapping):
        raise ConfigError(f"trainer.params must be a mapping of trainer options, but got {trainer_options!r}")
    check_trainer_options(trainer_kind, trainer_options, space)
    return RunSettings(
        strategy=str(strategy["name"]), strategy_params=dict(params), space=space,
        dataset=dict(cfg["dataset"]), seed=seed, experiment=experiment, results_dir=results_dir,
        trials=trials, seconds=seconds, max_epochs=max_epochs, max_failure_rate=float(rate),
        trainer=trainer_name, trainer_kind=trainer_kind,
        trainer_options=dict(trainer_options),
        overwrite=_flag(cfg, "overwrite", False), n_workers=n_workers, worker_processes=processes,
        worker_max_trials=worker_max_trials, worker_max_memory_growth_mb=max_growth,
        trial_timeout=trial_timeout, worker_threads=threads,
        progress=_flag(cfg, "progress", True), verbose=verbose, config=dict(cfg),
    )


@dataclass
class RunSummary:
    run_id: str
    run_dir: Path
    status: str
    n_trials: int
    n_failed: int
    elapsed_seconds: float
    best: dict[str, Any] | None
    stop_reason: str = ""

    def format(self) -> str:
        lines = [f"run {self.run_id}: {self.status} ({self.stop_reason}), {self.n_trials} trials "
                 f"({self.n_failed} failed) in {self.elapsed_seconds:.1f} s"]
        if self.best:
            b = self.best
            if b.get("val_accuracy") is not None and not _isnan(b["val_accuracy"]):
                metric = f"val accuracy {b['val_accuracy']:.4f}, test accuracy {b['test_accuracy']:.4f}"
            else:
                metric = f"val RMSE {b['val_rmse']:.4f}, test RMSE {b['test_rmse']:.4f}"
            lines.append(f"best trial {b['trial_id']}: {metric}, {b['budget_epochs']} epochs")
            lines.append(f"best params: {b['params']}")
        else:
            lines.append("no successful trial")
        lines.append(f"results: {self.run_dir / TRIALS_FILE}")
        return "\n".join(lines)


def _isnan(v: Any) -> bool:
    return v is None or (isinstance(v, float) and math.isnan(v))


class Progress:
    """One status line per trial on stderr, redrawn in place on a terminal."""

    def __init__(self, total: int | None, enabled: bool):
        self.total, self.enabled = total, enabled
        self.tty = sys.stderr.isatty()

    def update(self, done: int, status: str, best: float | None, label: str) -> None:
        if not self.enabled:
            return
        of = f"/{self.total}" if self.total else ""
        best_txt = "-" if best is None else f"{best:.4f}"
        line = f"[{label}] trial {done}{of} {status:<6} best {best_txt}"
        if self.tty:
            width = 24
            filled = int(width * done / self.total) if self.total else 0
            sys.stderr.write(f"\r{'#' * filled}{'.' * (width - filled)} {line}")
        else:
            sys.stderr.write(line + "\n")
        sys.stderr.flush()

    def close(self) -> None:
        if self.enabled and self.tty:
            sys.stderr.write("\n")


class Runner:
    """Runs one (strategy, space, dataset, seed) experiment to its budget; resumable."""

    def __init__(self, settings: RunSettings, *, objective: ObjectiveFactory | None = None):
        """`objective` replaces the Keras objective (tests, benchmarks): a picklable object whose
        `build()` returns `objective(suggestion, report=...) -> TrialResult`."""
        self.s = settings
        self._objective_override = objective
        self.run_dir = settings.run_dir
        cls = load_strategy_class(settings.strategy)
        caps = cls.capabilities
        space = settings.space
        if caps.multi_fidelity and space.fidelity is None:
            raise NotSupportedError(
                f"strategy {settings.strategy!r} hands out epoch budgets but search space "
                f"{space.name!r} declares no `fidelity: {{min: .., max: ..}}`; add one")
        from search_spaces import resolve_builder

        resolve_builder(space.builder)  # a bad `builder:` is a config error now, not N failed trials
        self.multi_fidelity = caps.multi_fidelity
        # What the strategy searches: multi-fidelity strategies set the epochs themselves.
        self.searched = space.without_fidelity_param() if caps.multi_fidelity else space
        if caps.multi_fidelity and settings.max_epochs and settings.max_epochs < space.fidelity.max:
            # `budget.max_epochs` caps training; the strategy must plan its rungs within it too,
            # or its promotions would ask for epochs the objective never trains.
            capped = replace(space.fidelity, max=settings.max_epochs,
                             min=min(space.fidelity.min, settings.max_epochs))
            space = replace(space, fidelity=capped)
        self.strategy: Strategy = make_strategy(settings.strategy, space, seed=settings.seed,
                                                **settings.strategy_params)
        self.rows: list[dict[str, Any]] = []
        self.best: dict[str, Any] | None = None
        self.stop_reason = ""
        self._t0 = 0.0
        self._elapsed_offset = 0.0
        self._data: Dataset | None = None
        self._journal_fh: Any = None
        self._evaluator: Evaluator | None = None
        self._saved_rows: list[dict[str, Any]] = []
        self._previous: dict[str, Any] = {}
        self._prov = provenance.collect()

    # -- public ----------------------------------------------------------------------------
    @property
    def workers_started(self) -> int:
        """Worker processes started in this session (recycling replaces them); 0 in-process."""
        return getattr(self._evaluator, "started", 0)

    def run(self) -> RunSummary:
        """Run (or resume) to the budget. Raises `RunInterrupted` on SIGINT/SIGTERM after saving."""
        s = self.s
        run_file = self.run_dir / RUN_FILE
        with RunLock(self.run_dir):
            if s.overwrite and self.run_dir.exists():
                shutil.rmtree(self.run_dir)
            previous = self._load_previous(run_file)
            if previous is not None and self._already_done(previous):
                self.stop_reason = previous.get("stop_reason", "finished")
                return self._summary("finished")
            self._dataset()  # a missing file or bad split is one clear error before any worker starts
            self.run_dir.mkdir(parents=True, exist_ok=True)
            for stale in self.run_dir.glob(".*.tmp"):  # left by a process killed mid-write
                stale.unlink()
            return self._run_locked(run_file, previous)

    def _run_locked(self, run_file: Path, previous: dict[str, Any] | None) -> RunSummary:
        s = self.s
        random.seed(s.seed)
        np.random.seed(s.seed)
        writer = TrialWriter(self.run_dir, {p.name: param_arrow_type(p) for p in s.space.params},
                             existing=self._saved_rows)
        backlog = self._replay() if self.rows or self._journal_path.exists() else []
        self._previous = previous or {}
        started_at = _now()
        self._write_status(run_file, "running", started_at)
        progress = Progress(s.trials, s.progress)
        status = "failed"
        restore = _install_signal_handlers()
        try:
            with self._make_evaluator() as evaluator:
                self._evaluator = evaluator
                self._t0 = time.perf_counter()  # the clock starts once workers are launched
                self._loop(evaluator, writer, progress, backlog)
            status = "finished"
        except KeyboardInterrupt as exc:
            status = "interrupted"
            sig = getattr(exc, "signal_name", "SIGINT")
            self.stop_reason = f"interrupted by {sig}; running trials were abandoned"
            raise
        except HarnessError as exc:
            self.stop_reason = str(exc)
            raise
        finally:
            _ignore_signals()  # a second Ctrl-C must not tear the status write
            progress.close()
            self._journal_close()
            self._write_status(run_file, status, started_at, ended=True)
            restore()
        return self._summary(status)

    # -- the loop --------------------------------------------------------------------------
    def _loop(self, evaluator: Evaluator, writer: TrialWriter, progress: Progress,
              backlog: list[Suggestion]) -> None:
        """Keep `evaluator.slots` trials running; tell and record each as it finishes.

        Exactly one finished trial is told between two asks, and every ask and tell goes to the
        journal, so a resumed run replays the strategy through the same sequence of calls.
        """
        label = f"{self.s.strategy}/{self.s.space.name}/{self.s.dataset['name']}/s{self.s.seed}"
        backlog = list(backlog)
        ask_seconds: dict[int, float] = {}
        stopping = False
        while True:
            if not stopping:
                reason = self._stop_reason()
                if reason:
                    self.stop_reason, stopping = reason, True
            running = evaluator.running
            free = evaluator.slots - len(running)
            if not stopping and free > 0:
                left = free if self.s.trials is None else min(free, self.s.trials - len(self.rows) - len(running))
                while backlog and left > 0:  # trials that were running when the run last stopped
                    self._submit(evaluator, backlog.pop(0), writer)
                    left -= 1
                if left > 0:
                    t = time.perf_counter()
                    suggestions = self.strategy.ask(left)
                    elapsed = time.perf_counter() - t
                    self._journal({"ask": left, "ids": [x.trial_id for x in suggestions]})
                    for sug in suggestions:
                        ask_seconds[sug.trial_id] = elapsed / len(suggestions)
                        self._submit(evaluator, sug, writer, ask_seconds)
                    if not suggestions and not evaluator.running:
                        if self.strategy.finished:
                            continue  # _stop_reason reports it
                        raise StrategyError(
                            f"strategy {self.s.strategy!r} asked to wait, but no trial is pending: "
                            f"a strategy must suggest, or say it is finished")
            if not evaluator.running:
                if stopping:
                    return
                continue
            done = evaluator.next_finished()
            self._tell_and_record(done.suggestion, done.result, writer, ask_seconds.pop(done.suggestion.trial_id, 0.0))
            progress.update(len(self.rows), self.rows[-1]["status"], self._best_value(), label)

    def _submit(self, evaluator: Evaluator, sug: Suggestion, writer: TrialWriter,
                ask_seconds: dict[int, float] | None = None) -> None:
        try:
            self.searched.check(sug.params)
        except SearchSpaceError as exc:  # recorded as failed without training
            result = failed_result(sug, f"invalid suggestion from strategy {self.s.strategy!r}: {exc}")
            self._tell_and_record(sug, result, writer, (ask_seconds or {}).pop(sug.trial_id, 0.0))
            return
        evaluator.submit(sug)

    def _tell_and_record(self, sug: Suggestion, result: dict[str, Any], writer: TrialWriter,
                         ask_seconds: float) -> None:
        t = time.perf_counter()
        self.strategy.tell(Observation(sug.trial_id, result["objective"], TrialStatus(result["status"]),
                                       result["budget_epochs"]))
        tell_seconds = time.perf_counter() - t
        row = self._row(sug, result, ask_seconds, tell_seconds)
        writer.append(row)  # on disk before the journal says "told": see _replay
        self._journal({"tell": sug.trial_id})
        self._record(row, result)

    def _stop_reason(self) -> str:
        s, n = self.s, len(self.rows)
        if s.trials is not None and n >= s.trials:
            return f"trial budget of {s.trials} reached"
        if s.seconds is not None and self._elapsed() >= s.seconds:
            return f"time budget of {s.seconds:g} s reached"
        failed = sum(r["status"] == TrialStatus.FAILED.value for r in self.rows)
        if n >= s.min_trials_before_failure_stop and failed / n > s.max_failure_rate:
            raise HarnessError(
                f"stopping: {failed} of {n} trials failed, above max_failure_rate={s.max_failure_rate}; "
                f"see the `error` column of {self.run_dir / TRIALS_FILE}")
        if self.strategy.finished:
            return f"strategy {s.strategy!r} finished"
        return ""

    # -- evaluation --------------------------------------------------------------------------
    def _objective_spec(self) -> KerasObjectiveSpec:
        checkpoints = self.run_dir / ARTIFACTS_DIR / "checkpoints" if self.multi_fidelity else None
        s = self.s
        return KerasObjectiveSpec(s.space, dict(s.dataset), s.seed, max_epochs=s.max_epochs,
                                  checkpoint_dir=checkpoints, trainer=s.trainer_kind or s.trainer,
                                  trainer_options=dict(s.trainer_options), verbose=s.verbose,
                                  threads=s.worker_threads)

    def _make_evaluator(self) -> Evaluator:
        """Worker processes by default (bounded memory, crash isolation, timeouts, parallelism);
        in-process with `worker.processes=false` (debuggers, profilers)."""
        # Only strategies that override `report` (pruners) get per-epoch round trips.
        prunes = type(self.strategy).report is not Strategy.report
        reporter = self.strategy.report if prunes else None
        spec = self._objective_override or self._objective_spec()
        if not self.s.worker_processes:
            build = spec.build if self._objective_override else lambda: spec.build(self._dataset())
            return InProcessEvaluator(build, reporter)
        return ProcessEvaluator(spec, n_workers=self.s.n_workers,
                                max_trials=self.s.worker_max_trials,
                                max_memory_growth_mb=self.s.worker_max_memory_growth_mb,
                                trial_timeout=self.s.trial_timeout,
                                reporter=reporter)

    def _dataset(self) -> Dataset:
        if self._data is None:
            self._data = load_dataset(self.s.dataset, seed=self.s.seed)
        return self._data

    # -- rows, best, artifacts -------------------------------------------------------------
    def _row(self, sug: Suggestion, r: dict[str, Any], ask_s: float, tell_s: float) -> dict[str, Any]:
        s, p = self.s, self._prov
        return {
            "experiment": s.experiment, "run_id": s.run_id, "strategy": s.strategy,
            "strategy_version": self.strategy.library_version(), "trainer": s.trainer,
            "search_space": s.space.name,
            "dataset": s.dataset["name"], "task": self._dataset().task,
            "seed": s.seed, "trial_id": sug.trial_id, "parent_trial_id": sug.resume_from,
            "status": r["status"], "budget_epochs": r.get("budget_epochs"),
            "epochs_trained": r.get("epochs_trained", 0),
            "objective": r["objective"] if math.isfinite(r["objective"]) else None,
            "val_accuracy": r.get("val_accuracy"), "test_accuracy": r.get("test_accuracy"),
            "val_rmse": r.get("val_rmse"), "test_rmse": r.get("test_rmse"),
            "train_seconds": r.get("train_seconds", 0.0), "eval_seconds": r.get("eval_seconds", 0.0),
            "ask_seconds": ask_s, "tell_seconds": tell_s, "elapsed_seconds": self._elapsed(),
            "finished_at": datetime.now(timezone.utc), "params": sug.params,
            "history": json.dumps(r.get("history") or [], default=float), "error": r.get("error"),
            "harness_version": __version__, "python_version": p["python"],
            "tensorflow_version": p["packages"]["tensorflow"], "keras_version": p["packages"]["keras"],
            "git_revision": p["git_revision"], "hostname": p["hostname"],
            "config_hash": provenance.config_hash(s.identity()),
            "config": json.dumps(s.config, sort_keys=True, default=str),
        }

    def _record(self, row: dict[str, Any], result: dict[str, Any] | None) -> None:
        self.rows.append(row)
        if row["status"] != TrialStatus.OK.value or row["objective"] is None:
            return
        if self.best is None or row["objective"] > self.best["objective"]:
            self.best = row
            preds = result.get("test_predictions") if result else None
            if preds is not None:
                art = self.run_dir / ARTIFACTS_DIR
                art.mkdir(parents=True, exist_ok=True)
                data = self._dataset()
                tmp = art / ".best_predictions.tmp.npz"
                np.savez(tmp, y_true=data.y_test, y_pred=preds, trial_id=row["trial_id"],
                         class_names=np.array(data.class_names, dtype=str))
                tmp.replace(art / "best_predictions.npz")

    def _best_value(self) -> float | None:
        if self.best is None:
            return None
        return self.best["val_accuracy"] if self.best.get("val_accuracy") is not None else self.best["val_rmse"]

    # -- resume ----------------------------------------------------------------------------
    def _load_previous(self, run_file: Path) -> dict[str, Any] | None:
        trials = self.run_dir / TRIALS_FILE
        previous = None
        if run_file.exists():
            try:
                previous = json.loads(run_file.read_text())
            except ValueError:
                previous = {}
        if trials.exists():
            try:
                self.rows = read_trials_file(trials)
            except Exception as exc:
                raise HarnessError(f"cannot resume: {str(trials)!r} is unreadable ({exc}); "
                                   f"rerun with overwrite=true to start over") from None
            self._saved_rows = [dict(r) for r in self.rows]  # as stored, for the writer to keep
            for row in self.rows:
                row["params"] = json.loads(row["params"]) if isinstance(row["params"], str) else row["params"]
            self._elapsed_offset = max((r["elapsed_seconds"] or 0.0 for r in self.rows), default=0.0)
            recorded, self.rows = self.rows, []
            for row in recorded:
                self._record(row, None)
        return previous if previous is not None else ({} if self.rows else None)

    def _already_done(self, previous: Mapping[str, Any]) -> bool:
        """A finished run is skipped unless the budgets were raised since (that extends it)."""
        if previous.get("status") != "finished":
            return False
        if str(previous.get("stop_reason", "")).startswith(f"strategy {self.s.strategy!r} finished"):
            return True
        if self.s.trials is not None and len(self.rows) >= self.s.trials:
            return True
        # The run's own clock at its end: the last row is stamped a little before the time check.
        elapsed = max(self._elapsed_offset, float(previous.get("elapsed_seconds") or 0.0))
        return self.s.seconds is not None and elapsed >= self.s.seconds

    @property
    def _journal_path(self) -> Path:
        return self.run_dir / JOURNAL_FILE

    def _journal(self, event: dict[str, Any]) -> None:
        """Append one ask/tell event, synced to disk at once: after SIGKILL or a power cut the
        journal is never behind `trials.parquet` (which is synced too), so resume can replay it."""
        if self._journal_fh is None:
            self._journal_fh = open(self._journal_path, "a", encoding="utf-8")
        self._journal_fh.write(json.dumps(event) + "\n")
        self._journal_fh.flush()
        os.fsync(self._journal_fh.fileno())

    def _journal_close(self) -> None:
        if self._journal_fh is not None:
            self._journal_fh.close()
            self._journal_fh = None

    def _read_journal(self) -> list[dict[str, Any]]:
        data = self._journal_path.read_bytes()
        lines = data.splitlines(keepends=True)
        events = []
        for i, line in enumerate(lines):
            try:
                if not line.endswith(b"\n"):
                    raise ValueError("no newline: the write never completed")
                events.append(json.loads(line))
            except ValueError:
                if i == len(lines) - 1:
                    # Torn last line of a killed run: that event never completed. Cut it off, or
                    # the next event appended would be glued to it and corrupt the journal.
                    os.truncate(self._journal_path, len(data) - len(line))
                    break
                raise HarnessError(f"cannot resume: {str(self._journal_path)!r} line {i + 1} is corrupt; "
                                   f"rerun with overwrite=true to start over") from None
        return events

    def _replay(self) -> list[Suggestion]:
        """Bring a fresh strategy to the state it had, and return the trials that were running.

        The journal lists every ask (with its n and the trial ids it returned) and every tell, in
        order; replaying it calls the strategy exactly as the interrupted run did, whatever the
        number of workers, so a deterministic strategy ends in the same state. A row is written
        before its "tell" event, so rows without one (a kill between the two) are told last.
        Runs without a journal are replayed sequentially (ask(1), tell), as they were made.
        """
        recorded = {r["trial_id"]: r for r in self.rows}
        if not self._journal_path.exists():
            return self._replay_sequential(recorded)
        asked: dict[int, Suggestion] = {}
        told: set[int] = set()
        for event in self._read_journal():
            if "ask" in event:
                suggestions = self.strategy.ask(int(event["ask"])) if not self.strategy.finished else []
                ids = [x.trial_id for x in suggestions]
                if ids != list(event["ids"]):
                    raise HarnessError(
                        f"cannot resume {self.run_dir}: strategy {self.s.strategy!r} answered ask "
                        f"with trials {ids}, but the run recorded {event['ids']}; it is not deterministic "
                        f"under its seed. Rerun with overwrite=true")
                for sug in suggestions:
                    self._check_replayed(sug, recorded.get(sug.trial_id))
                    asked[sug.trial_id] = sug
            elif "tell" in event:
                tid = int(event["tell"])
                if tid not in recorded or tid not in asked:
                    raise HarnessError(f"cannot resume {self.run_dir}: the journal tells trial {tid}, which "
                                       f"{'has no row' if tid not in recorded else 'was never asked'}; "
                                       f"rerun with overwrite=true")
                self._tell_recorded(recorded[tid])
                told.add(tid)
        for tid, row in recorded.items():  # finished and saved, killed before the journal said so
            if tid not in told:
                if tid not in asked:
                    raise HarnessError(f"cannot resume {self.run_dir}: trial {tid} has a row but the "
                                       f"journal never asked for it; rerun with overwrite=true")
                self._tell_recorded(row)
                told.add(tid)
        return [sug for tid, sug in asked.items() if tid not in told]

    def _replay_sequential(self, recorded: dict[int, dict[str, Any]]) -> list[Suggestion]:
        told = 0
        while told < len(recorded):
            suggestions = self.strategy.ask(1)
            if not suggestions:
                raise HarnessError(f"cannot resume {self.run_dir}: strategy {self.s.strategy!r} stopped "
                                   f"suggesting after {told} of {len(recorded)} recorded trials; "
                                   f"rerun with overwrite=true")
            sug = suggestions[0]
            row = recorded.get(sug.trial_id)
            if row is None:
                return [sug]  # not recorded: the trial that was running when the run stopped
            self._check_replayed(sug, row)
            self._tell_recorded(row)
            told += 1
        return []

    def _check_replayed(self, sug: Suggestion, row: Mapping[str, Any] | None) -> None:
        if row is not None and row["params"] != sug.params:
            raise HarnessError(
                f"cannot resume {self.run_dir}: strategy {self.s.strategy!r} suggested "
                f"{sug.params} for trial {sug.trial_id} but the recorded trial has {row['params']}; "
                f"it is not deterministic under its seed. Rerun with overwrite=true")

    def _tell_recorded(self, row: Mapping[str, Any]) -> None:
        value = row["objective"] if row["objective"] is not None else math.nan
        self.strategy.tell(Observation(row["trial_id"], value, TrialStatus(row["status"]), row["budget_epochs"]))

    # -- status ----------------------------------------------------------------------------
    def _elapsed(self) -> float:
        return self._elapsed_offset + (time.perf_counter() - self._t0 if self._t0 else 0.0)

    def _write_status(self, run_file: Path, status: str, started_at: str, *, ended: bool = False) -> None:
        """`_run.json`: status and provenance. Each invocation (first run, resumes) is a session."""
        n_failed = sum(r["status"] == TrialStatus.FAILED.value for r in self.rows)
        previous = getattr(self, "_previous", {}) or {}
        sessions = list(previous.get("sessions") or [])
        session = {"started_at": started_at, "ended_at": _now() if ended else None, "status": status,
                   "n_trials_at_end": len(self.rows), "hostname": self._prov["hostname"],
                   "pid": os.getpid(), "argv": list(sys.argv), "n_workers": self.s.n_workers,
                   "worker_processes": self.s.worker_processes, "workers_started": self.workers_started}
        sessions.append(session)
        write_json_atomic(run_file, {
            "schema_version": 1, "run_id": self.s.run_id, "experiment": self.s.experiment,
            "status": status, "stop_reason": self.stop_reason,
            "started_at": previous.get("started_at") or started_at,
            "ended_at": _now() if ended else None, "elapsed_seconds": self._elapsed(),
            "n_trials": len(self.rows), "n_failed": n_failed,
            "seed": self.s.seed, "seeds": _seeds(self.s.seed),
            "strategy": self.s.strategy, "strategy_version": self.strategy.library_version(),
            "search_space": self.s.space.name, "dataset": self.s.dataset["name"],
            "config": self.s.config, "identity": self.s.identity(),
            "config_hash": provenance.config_hash(self.s.identity()), "provenance": self._prov,
            "sessions": sessions,
            "best_trial_id": self.best["trial_id"] if self.best else None,
        })

    def _summary(self, status: str) -> RunSummary:
        n_failed = sum(r["status"] == TrialStatus.FAILED.value for r in self.rows)
        best = dict(self.best) if self.best else None
        return RunSummary(self.s.run_id, self.run_dir, status, len(self.rows), n_failed,
                          self._elapsed(), best, self.stop_reason)


class RunLock:
    """An exclusive lock on one run folder, held while a process runs it.

    Two processes on one run (the same command started twice, a sweep over `budget.trials`, a
    requeued cluster job whose old copy still runs) would each rewrite the trials file from its own
    rows and lose the other's. The lock file sits beside the run folder (`.<run_id>.lock`, skipped
    by readers), so `overwrite=true` can delete the folder while holding it. `flock` also works
    across nodes on NFS.
    """

    def __init__(self, run_dir: Path):
        self.path = run_dir.parent / f".{run_dir.name}.lock"
        self._fd: int | None = None

    def __enter__(self) -> RunLock:
        import fcntl
        import socket

        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 200, 0).decode(errors="replace").strip() or "another process"
            os.close(fd)
            raise HarnessError(f"run {self.path.name[1:-5]} is already running ({holder}); wait for it "
                               f"to finish or stop it, then rerun this command to resume") from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"pid {os.getpid()} on {socket.gethostname()}\n".encode(), 0)
        self._fd = fd
        return self

    def __exit__(self, *exc: object) -> None:
        if self._fd is not None:
            os.close(self._fd)  # releases the lock; the file stays (deleting it would race)
            self._fd = None


class RunInterrupted(KeyboardInterrupt):
    """SIGINT or SIGTERM reached the runner; finished trials are saved, the status says so."""

    def __init__(self, signum: int):
        super().__init__(signal.Signals(signum).name)
        self.signum = signum
        self.signal_name = signal.Signals(signum).name


def _raise_interrupted(signum: int, frame: Any) -> None:
    raise RunInterrupted(signum)


def _install_signal_handlers() -> Callable[[], None]:
    """SIGINT and SIGTERM raise `RunInterrupted` in the loop; returns a function restoring the old
    handlers. Only the main thread can set handlers (a threaded launcher gets none)."""
    if threading.current_thread() is not threading.main_thread():
        return lambda: None
    old = {sig: signal.signal(sig, _raise_interrupted) for sig in (signal.SIGINT, signal.SIGTERM)}

    def restore() -> None:
        for sig, handler in old.items():
            signal.signal(sig, handler)
    return restore


def _ignore_signals() -> None:
    if threading.current_thread() is threading.main_thread():
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, signal.SIG_IGN)


def _seeds(seed: int) -> dict[str, Any]:
    from harness.objective import trial_seed

    return {"run": seed, "python_random": seed, "numpy_global": seed, "strategy": seed,
            "data_split": seed,
            "tensorflow_per_trial": "trial_seed(seed, trial_id) = (seed * 1000003 + trial_id) % (2**31 - 1)",
            "tensorflow_trial_0": trial_seed(seed, 0)}


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def run(settings: RunSettings) -> RunSummary:
    return Runner(settings).run()
