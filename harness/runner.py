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
import random
import shutil
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np

from harness import __version__, provenance
from harness.datasets import Dataset, load_dataset
from harness.errors import ConfigError, HarnessError, NotSupportedError, SearchSpaceError
from harness.registry import load_strategy_class, make_strategy
from harness.results import (ARTIFACTS_DIR, RUN_FILE, TRIALS_FILE, TrialWriter, param_arrow_type,
                             read_trials_file, write_json_atomic)
from harness.space import SearchSpace
from harness.strategy import Observation, Strategy, Suggestion, TrialStatus


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
    overwrite: bool = False
    progress: bool = True
    verbose: int = 0
    config: dict[str, Any] = field(default_factory=dict)  # the resolved config, for provenance

    def identity(self) -> dict[str, Any]:
        return {"strategy": self.strategy, "strategy_params": self.strategy_params,
                "search_space": self.config.get("search_space", self.space.name),
                "dataset": self.dataset, "seed": self.seed, "max_epochs": self.max_epochs,
                "trainer": self.trainer, "trainer_options": self.trainer_options}

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
    results_dir = Path(str(cfg.get("results_dir", "results"))).expanduser()
    if not results_dir.is_absolute() and base_dir is not None:
        results_dir = base_dir / results_dir
    experiment = str(cfg.get("experiment") or "default")
    if "/" in experiment or experiment.startswith((".", "_")):
        raise ConfigError(f"experiment must be a plain folder name, but got {experiment!r}")
    space = SearchSpace.from_config(cfg["search_space"])
    return RunSettings(
        strategy=str(strategy["name"]), strategy_params=dict(params), space=space,
        dataset=dict(cfg["dataset"]), seed=seed, experiment=experiment, results_dir=results_dir,
        trials=trials, seconds=seconds, max_epochs=max_epochs, max_failure_rate=float(rate),
        trainer=str(trainer.get("name", "backprop")),
        trainer_options=dict(trainer.get("params") or {}),
        overwrite=bool(cfg.get("overwrite", False)), progress=bool(cfg.get("progress", True)),
        verbose=int(cfg.get("verbose", 0)), config=dict(cfg),
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

    def __init__(self, settings: RunSettings):
        self.s = settings
        self.run_dir = settings.run_dir
        cls = load_strategy_class(settings.strategy)
        caps = cls.capabilities
        space = settings.space
        if space.is_conditional and not caps.conditional:
            conditional = [p.name for p in space.params if p.condition is not None]
            raise NotSupportedError(
                f"strategy {settings.strategy!r} does not support conditional parameters, and "
                f"search space {space.name!r} has {conditional}; choose a space without conditions "
                f"or a strategy that handles them (e.g. random, tpe, genetic)")
        if caps.multi_fidelity and space.fidelity is None:
            raise NotSupportedError(
                f"strategy {settings.strategy!r} hands out epoch budgets but search space "
                f"{space.name!r} declares no `fidelity: {{min: .., max: ..}}`; add one")
        from search_spaces import resolve_builder

        resolve_builder(space.builder)  # a bad `builder:` is a config error now, not N failed trials
        self.multi_fidelity = caps.multi_fidelity
        # What the strategy searches: multi-fidelity strategies set the epochs themselves.
        self.searched = space.without_fidelity_param() if caps.multi_fidelity else space
        self.strategy: Strategy = make_strategy(settings.strategy, space, seed=settings.seed,
                                                **settings.strategy_params)
        self.rows: list[dict[str, Any]] = []
        self.best: dict[str, Any] | None = None
        self.stop_reason = ""
        self._t0 = 0.0
        self._elapsed_offset = 0.0
        self._data: Dataset | None = None
        self._objective: Any = None
        self._prov = provenance.collect()

    # -- public ----------------------------------------------------------------------------
    def run(self) -> RunSummary:
        s = self.s
        run_file = self.run_dir / RUN_FILE
        if s.overwrite and self.run_dir.exists():
            shutil.rmtree(self.run_dir)
        previous = self._load_previous(run_file)
        if previous is not None and self._already_done(previous):
            self.stop_reason = previous.get("stop_reason", "finished")
            return self._summary("finished")
        self.run_dir.mkdir(parents=True, exist_ok=True)
        random.seed(s.seed)
        np.random.seed(s.seed)
        writer = TrialWriter(self.run_dir, {p.name: param_arrow_type(p) for p in s.space.params},
                             existing=self.rows)
        pending = self._replay() if self.rows else None
        started_at = previous.get("started_at") if previous else _now()
        self._write_status(run_file, "running", started_at)
        self._t0 = time.perf_counter()
        progress = Progress(s.trials, s.progress)
        status = "failed"
        try:
            self._loop(writer, progress, pending)
            status = "finished"
        except KeyboardInterrupt:
            status, self.stop_reason = "interrupted", "interrupted by the user"
            raise
        except HarnessError as exc:
            self.stop_reason = str(exc)
            raise
        finally:
            progress.close()
            self._write_status(run_file, status, started_at, ended=True)
        return self._summary(status)

    # -- the loop --------------------------------------------------------------------------
    def _loop(self, writer: TrialWriter, progress: Progress, pending: Suggestion | None) -> None:
        label = f"{self.s.strategy}/{self.s.space.name}/{self.s.dataset['name']}/s{self.s.seed}"
        while True:
            reason = self._stop_reason()
            if reason:
                self.stop_reason = reason
                return
            ask_seconds = 0.0
            if pending is None:
                t = time.perf_counter()
                suggestions = self.strategy.ask(1)
                ask_seconds = time.perf_counter() - t
                if not suggestions:
                    if self.strategy.finished:
                        continue  # _stop_reason reports it
                    raise HarnessError(
                        f"strategy {self.s.strategy!r} asked to wait, but no trial is pending: "
                        f"a strategy must suggest, or say it is finished")
                pending = suggestions[0]
            suggestion, pending = pending, None
            result = self._evaluate(suggestion)
            t = time.perf_counter()
            self.strategy.tell(Observation(suggestion.trial_id, result["objective"],
                                           TrialStatus(result["status"]), result["budget_epochs"]))
            tell_seconds = time.perf_counter() - t
            row = self._row(suggestion, result, ask_seconds, tell_seconds)
            writer.append(row)
            self._record(row, result)
            progress.update(len(self.rows), row["status"], self._best_value(), label)

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

    def _evaluate(self, suggestion: Suggestion) -> dict[str, Any]:
        """Evaluate one suggestion; any exception becomes a failed result, never a crash."""
        failed = {"status": TrialStatus.FAILED.value, "objective": math.nan, "budget_epochs": suggestion.budget,
                  "epochs_trained": 0, "history": []}
        try:
            self.searched.check(suggestion.params)
        except SearchSpaceError as exc:
            return {**failed, "error": f"invalid suggestion from strategy {self.s.strategy!r}: {exc}"}
        try:
            result = self._get_objective()(suggestion, report=self._reporter(suggestion.trial_id))
        except (KeyboardInterrupt, HarnessError):
            raise
        except Exception as exc:  # a trial's own failure (OOM, shape error...): record, go on
            return {**failed, "error": f"{type(exc).__name__}: {exc}"}
        return {k: getattr(result, k) for k in result.__dataclass_fields__} | {"status": result.status.value}

    def _reporter(self, trial_id: int):
        return lambda epoch, value: self.strategy.report(trial_id, epoch, value)

    def _get_objective(self):
        if self._objective is None:
            from harness.objective import KerasObjective  # TensorFlow is paid for here, once

            checkpoints = self.run_dir / ARTIFACTS_DIR / "checkpoints" if self.multi_fidelity else None
            self._objective = KerasObjective(
                self.s.space, self._dataset(), seed=self.s.seed, max_epochs=self.s.max_epochs,
                checkpoint_dir=checkpoints, trainer=self.s.trainer,
                trainer_options=self.s.trainer_options, verbose=self.s.verbose)
        return self._objective

    def _dataset(self) -> Dataset:
        if self._data is None:
            self._data = load_dataset(self.s.dataset, seed=self.s.seed)
        return self._data

    # -- rows, best, artifacts -------------------------------------------------------------
    def _row(self, sug: Suggestion, r: dict[str, Any], ask_s: float, tell_s: float) -> dict[str, Any]:
        s, p = self.s, self._prov
        return {
            "experiment": s.experiment, "run_id": s.run_id, "strategy": s.strategy,
            "strategy_version": self.strategy.library_version(), "search_space": s.space.name,
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
            self._elapsed_offset = max((r["elapsed_seconds"] or 0.0 for r in self.rows), default=0.0)
            recorded, self.rows = self.rows, []
            for row in recorded:
                self._record(row, None)
        return previous if previous is not None else ({} if self.rows else None)

    def _already_done(self, previous: Mapping[str, Any]) -> bool:
        if previous.get("status") != "finished":
            return False
        if str(previous.get("stop_reason", "")).startswith(f"strategy {self.s.strategy!r} finished"):
            return True
        return self.s.trials is not None and len(self.rows) >= self.s.trials

    def _replay(self) -> Suggestion | None:
        """Bring a fresh strategy to the state it had: re-ask, and tell the recorded outcomes.

        Works for deterministic strategies (all bundled ones are, under their seed). Returns the
        suggestion that was being evaluated when the run stopped, if any, to evaluate it next.
        """
        recorded = {r["trial_id"]: r for r in self.rows}
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
                return sug  # not recorded: the trial that was running when the run stopped
            if json.loads(row["params"]) != sug.params:
                raise HarnessError(
                    f"cannot resume {self.run_dir}: strategy {self.s.strategy!r} suggested "
                    f"{sug.params} for trial {sug.trial_id} but the recorded trial has {row['params']}; "
                    f"it is not deterministic under its seed. Rerun with overwrite=true")
            value = row["objective"] if row["objective"] is not None else math.nan
            self.strategy.tell(Observation(sug.trial_id, value, TrialStatus(row["status"]), row["budget_epochs"]))
            told += 1
        return None

    # -- status ----------------------------------------------------------------------------
    def _elapsed(self) -> float:
        return self._elapsed_offset + (time.perf_counter() - self._t0 if self._t0 else 0.0)

    def _write_status(self, run_file: Path, status: str, started_at: str, *, ended: bool = False) -> None:
        n_failed = sum(r["status"] == TrialStatus.FAILED.value for r in self.rows)
        write_json_atomic(run_file, {
            "schema_version": 1, "run_id": self.s.run_id, "experiment": self.s.experiment,
            "status": status, "stop_reason": self.stop_reason, "started_at": started_at,
            "ended_at": _now() if ended else None, "n_trials": len(self.rows), "n_failed": n_failed,
            "seed": self.s.seed, "strategy": self.s.strategy, "search_space": self.s.space.name,
            "dataset": self.s.dataset["name"], "config": self.s.config,
            "config_hash": provenance.config_hash(self.s.identity()), "provenance": self._prov,
            "best_trial_id": self.best["trial_id"] if self.best else None,
        })

    def _summary(self, status: str) -> RunSummary:
        n_failed = sum(r["status"] == TrialStatus.FAILED.value for r in self.rows)
        best = dict(self.best) if self.best else None
        return RunSummary(self.s.run_id, self.run_dir, status, len(self.rows), n_failed,
                          self._elapsed(), best, self.stop_reason)


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def run(settings: RunSettings) -> RunSummary:
    return Runner(settings).run()
