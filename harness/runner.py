"""The runner: one loop (ask -> evaluate -> tell -> record) over a strategy and a problem.

It owns budgets, the clock, failures and resume, and knows nothing of any framework: the
problem evaluates (`harness.problem`), an evaluator decides where (`harness.workers`), the store
writes (`harness.store`), the journal replays a strategy (`harness.replay`). Like syne-tune's
`Tuner`, the loop keeps every evaluator slot busy and tells each trial as it finishes.
"""

from __future__ import annotations

import json
import math
import os
import random
import shutil
import sys
import time
from dataclasses import dataclass, replace
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np

from harness import __version__, provenance
from harness.errors import HarnessError, NotSupportedError, SearchSpaceError, StrategyError
from harness.problem import EvalResult, Problem
from harness.registry import load_strategy_class, make_strategy, plugin_distribution
from harness.replay import replay
from harness.results import ARTIFACTS_DIR, METRIC_PREFIX, PARAM_PREFIX, RUN_FILE, TRIALS_FILE, param_arrow_type
from harness.settings import RunSettings, settings_from_config
from harness.signals import RunInterrupted, ignore_signals, install_signal_handlers, raise_if_received
from harness.store import JOURNAL_FILE, RunLock, RunStore
from harness.strategy import Observation, Strategy, Suggestion, TrialStatus
from harness.workers import Evaluator, InProcessEvaluator, ProcessEvaluator, SimulatedEvaluator, failed_result

__all__ = ["JOURNAL_FILE", "RunInterrupted", "RunLock", "RunSummary", "Runner", "RunSettings", "run", "settings_from_config"]


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
    clock: str = "wall"
    first_error: str | None = None  # of the first failed trial, when no trial succeeded
    already_complete: bool = False  # finished by an earlier invocation: nothing ran now
    param_order: tuple[str, ...] = ()  # the search space's order, for the best params
    fidelity_param: str | None = None  # the param that is the training budget (e.g. epochs)
    refit: dict[str, Any] | None = None  # the best configuration retrained on train + validation

    def format(self) -> str:
        if self.status == "not_applicable":
            return (
                f"run {self.run_id}: not applicable: {self.stop_reason}\n"
                f"recorded: {self.run_dir / RUN_FILE} (harness-report shows N/A)"
            )
        unit = "simulated s" if self.clock == "simulated" else "s"
        if self.already_complete:
            lines = [
                f"run {self.run_id}: already complete ({self.stop_reason}); nothing to run, "
                f"{self.n_trials} trials ({self.n_failed} failed) recorded earlier. Raise "
                f"budget.trials or budget.seconds to extend it, or pass overwrite=true to start over"
            ]
        else:
            lines = [
                f"run {self.run_id}: {self.status} ({self.stop_reason}), {self.n_trials} trials "
                f"({self.n_failed} failed) in {self.elapsed_seconds:.1f} {unit}"
            ]
        if self.best:
            b = self.best
            name = str(b["objective_name"]).replace("_", " ")
            metric = f"{name} {b['objective']:.6g}"
            if b.get("test_objective") is not None:
                plain = name.split(" ", 1)[1] if name.startswith(("val ", "cv ")) else name
                metric += f", test {plain} {b['test_objective']:.6g}"
            if b.get("regret") is not None:
                metric += f", regret {b['regret']:.3g}"
            if b.get("budget") is not None:
                metric += f", budget {b['budget']}"
            lines.append(f"best trial {b['trial_id']}: {metric}")
            params = json.loads(b["params"]) if isinstance(b["params"], str) else b["params"]
            rank = {name: i for i, name in enumerate(self.param_order)}  # stored JSON is sorted
            params = dict(sorted(params.items(), key=lambda kv: rank.get(kv[0], len(rank))))
            text = f"best params: {params}"
            trained = b.get("budget") if b.get("budget") is not None else b.get("budget_spent")
            asked = params.get(self.fidelity_param) if self.fidelity_param else None
            if isinstance(asked, (int, float)) and trained is not None and trained != asked:
                # e.g. budget.max_epochs=2 caps an `epochs: 50` configuration: say what was trained
                text += f" ({self.fidelity_param} {asked} asked, {trained:g} trained)"
            lines.append(text)
        else:
            lines.append("no successful trial")
        if self.refit:
            lines.append(format_refit(self.refit))
        lines.append(f"results: {self.run_dir / TRIALS_FILE}")
        return "\n".join(lines)


class Progress:
    """One status line per trial on stderr (redrawn in place on a terminal, at most 5 a second)."""

    def __init__(self, total: int | None, enabled: bool):
        self.total, self.enabled = total, enabled
        self.tty = sys.stderr.isatty()
        self._last = 0.0

    def update(self, done: int, status: str, best: float | None, label: str, error: str | None = None) -> None:
        """A failed trial's line always shows, with the first line of its error, and stays."""
        if not self.enabled:
            return
        now = time.monotonic()
        failed = status == TrialStatus.FAILED.value
        if now - self._last < 0.2 and done != self.total and not failed:
            return
        self._last = now
        of = f"/{self.total}" if self.total else ""
        best_txt = "-" if best is None else f"{best:.6g}"
        line = f"[{label}] trial {done}{of} {status:<6} best {best_txt}"
        if failed and error:
            line += f"  ({first_line(error)})"
        if self.tty:
            width = 24
            filled = int(width * done / self.total) if self.total else 0
            sys.stderr.write(f"\r{'#' * filled}{'.' * (width - filled)} {line}" + ("\n" if failed else ""))
        else:
            sys.stderr.write(line + "\n")
        sys.stderr.flush()

    def close(self) -> None:
        if self.enabled and self.tty:
            sys.stderr.write("\n")


class Runner:
    """Runs one (strategy, problem, seed) experiment to its budget; resumable."""

    def __init__(self, settings: RunSettings, *, objective: Any = None):
        """`objective` replaces the Keras objective of a `keras` problem (tests, benchmarks): a
        picklable object whose `build()` returns `objective(suggestion, report=...) -> TrialResult`."""
        if objective is not None:
            from harness.problems.keras import KerasProblem

            problem = KerasProblem(seed=settings.seed, config=settings.config, objective_factory=objective)
            settings = replace(settings, problem=problem)
        self.s = s = settings
        self.problem = problem = settings.problem
        self.run_dir = settings.run_dir
        self.strategy_class = cls = load_strategy_class(settings.strategy)
        caps = cls.capabilities
        space = problem.space
        # Capabilities are negotiated, not crashed: a pairing the strategy cannot handle is
        # recorded as not applicable (the report shows N/A) and the sweep goes on.
        self.not_applicable = cls.not_applicable(space, reports_steps=problem.reports_steps)
        problem.multi_fidelity = caps.multi_fidelity
        problem.workdir = self.run_dir / ARTIFACTS_DIR
        # What the strategy searches: multi-fidelity strategies set the budget themselves.
        self.searched = space.without_fidelity_param() if caps.multi_fidelity else space
        if caps.multi_fidelity and space.fidelity and s.max_epochs and s.max_epochs < space.fidelity.max:
            # `budget.max_epochs` caps the fidelity; the strategy must plan its rungs within it
            # too, or its promotions would ask for budgets the problem never evaluates.
            capped = replace(space.fidelity, max=s.max_epochs, min=min(space.fidelity.min, s.max_epochs))
            space = replace(space, fidelity=capped)
        self.strategy: Strategy | None = None
        if self.not_applicable is None:
            try:
                self.strategy = make_strategy(s.strategy, space, seed=s.seed, **s.strategy_params)
            except NotSupportedError as exc:  # a plugin's own limit (grid: over 100,000 points)
                self.not_applicable = str(exc)
        self.simulated = bool(getattr(problem, "simulated_clock", False))
        self.rows: list[dict[str, Any]] = []
        self.best: dict[str, Any] | None = None
        self.n_failed = 0
        self.stop_reason = ""
        self._t0 = 0.0
        self._elapsed_offset = 0.0
        self._stopped_at: float | None = None  # the run's clock when its loop ended
        self._evaluator: Evaluator | None = None
        self._previous: dict[str, Any] = {}
        self._prov = provenance.collect()
        self._constant = self._constant_columns()
        self._param_names = [p.name for p in problem.space.params]
        self.store = RunStore(
            self.run_dir, {p.name: param_arrow_type(p) for p in problem.space.params}, flush_seconds=s.flush_seconds
        )
        self._live: Any = None  # `live.enabled`: the trials mirrored into an Optuna storage (harness.live)

    # -- public ----------------------------------------------------------------------------
    @property
    def workers_started(self) -> int:
        """Worker processes started in this session (recycling replaces them); 0 in-process."""
        return getattr(self._evaluator, "started", 0)

    def run(self) -> RunSummary:
        """Run (or resume) to the budget. Raises `RunInterrupted` on SIGINT/SIGTERM after saving."""
        with RunLock(self.run_dir):
            if self.s.overwrite and self.run_dir.exists():
                shutil.rmtree(self.run_dir)
            if self.not_applicable is not None:
                return self._record_not_applicable()
            previous = self._load_previous()
            if previous is not None and self._already_done(previous):
                self.stop_reason = previous.get("stop_reason", "finished")
                self._previous = previous
                summary = replace(self._summary("finished"), already_complete=True)
                if self.s.live:  # enabled after the run finished: mirror what it recorded
                    from harness.live import OptunaMirror

                    OptunaMirror.for_run(self.s, self.problem, self.rows).close()
                return self._with_refit(summary)
            self.problem.check()  # a missing data file is one clear error before any worker starts
            self.run_dir.mkdir(parents=True, exist_ok=True)
            for stale in self.run_dir.glob(".*.tmp"):  # left by a process killed mid-write
                stale.unlink()
            try:
                return self._with_refit(self._run_locked(previous))
            except HarnessError:
                # A new run stopped before recording any trial (a model the trainer cannot
                # handle, ...) is a configuration error, not a run: leave no folder that reports
                # would count as a failed seed.
                if previous is None and not self.rows and not self.store.parts():
                    shutil.rmtree(self.run_dir, ignore_errors=True)
                raise

    def _run_locked(self, previous: dict[str, Any] | None) -> RunSummary:
        s = self.s
        random.seed(s.seed)
        np.random.seed(s.seed)
        self._previous = previous or {}
        # The plan of the first session, so that a resumed (or extended) run replays the same
        # strategy: SMAC sizes its initial design and Nevergrad picks its optimiser from it.
        self.strategy.planned_trials = self._previous.get("planned_trials", s.trials)
        backlog = self._resume() if self.rows or self.store.journal_path.exists() else []
        if self.rows:
            self.problem.resume(list(self.rows))
        if s.live:  # the live view: one Optuna study per run, rows recorded earlier mirrored first
            from harness.live import OptunaMirror

            self._live = OptunaMirror.for_run(s, self.problem, self.rows)
        started_at = _now()
        self._write_status("running", started_at)
        progress = Progress(s.trials, s.progress)
        status = "failed"
        restore = install_signal_handlers()
        try:
            with self._make_evaluator() as evaluator:
                self._evaluator = evaluator
                self._t0 = time.perf_counter()  # the clock starts once workers are launched
                try:
                    self._loop(evaluator, progress, backlog)
                finally:
                    # Closing workers and writing files is not run time: a resume continues from
                    # the clock the rows carry, and `_already_done` must judge by the same clock.
                    self._stopped_at = self._elapsed()
            status = "finished"
        except KeyboardInterrupt as exc:
            status = "interrupted"
            sig = getattr(exc, "signal_name", "SIGINT")
            self.stop_reason = f"interrupted by {sig}; running trials were abandoned"
            raise
        except HarnessError as exc:
            self.stop_reason = str(exc)
            raise
        except OSError as exc:  # a full disk, a folder gone read-only: the status must say so
            self.stop_reason = f"cannot write the run's files: {exc}"
            raise
        finally:
            ignore_signals()  # a second Ctrl-C must not tear the final writes
            progress.close()
            write_error = None
            try:
                self.store.close()
                self.store.merge_parts()
                if self._live is not None:
                    self._live.close()
            except OSError as exc:  # the parts stay on disk; the next resume merges them
                write_error, status = exc, "failed"
                self.stop_reason = f"cannot write the run's files: {exc}"
            self._write_status(status, started_at, ended=True)
            restore()
            if write_error is not None and sys.exc_info()[0] is None:
                raise write_error
        return self._summary(status)

    # -- refit ---------------------------------------------------------------------------
    def _with_refit(self, summary: RunSummary) -> RunSummary:
        """`refit.enabled=true`: once the search has finished, retrain its best configuration on
        training + validation data, score it on the test set and record that in `_run.json`
        (kept: a rerun refits again only if the best trial or the budget changed)."""
        if not self.s.refit or summary.status != "finished" or self.best is None:
            return replace(summary, refit=self._previous.get("refit"))
        best = self.best
        params = json.loads(best["params"]) if isinstance(best["params"], str) else dict(best["params"])
        budget = self.s.refit_budget if self.s.refit_budget is not None else best.get("budget")
        budget = None if budget is None else int(budget)
        done = self._previous.get("refit") or {}
        if done.get("status") == "ok" and done.get("trial_id") == best["trial_id"] and done.get("budget") == budget:
            return replace(summary, refit=done)
        if self.s.progress:
            print(
                f"[{self.s.label}] refit: training trial {best['trial_id']}'s configuration on training + "
                f"validation data" + (f" for {budget} epoch{'' if budget == 1 else 's'}" if budget is not None else ""),
                file=sys.stderr,
            )
        suggestion = Suggestion(int(best["trial_id"]), params, budget=budget)
        view = RefitProblem(self.problem)
        restore = install_signal_handlers()
        try:
            evaluator: Evaluator = (
                ProcessEvaluator(view, n_workers=1, max_trials=None, max_memory_growth_mb=None)
                if self.s.worker_processes
                else InProcessEvaluator(view)
            )
            with evaluator:
                evaluator.submit(suggestion)
                result = evaluator.next_finished().result
        finally:
            restore()
        record = {
            "trial_id": int(best["trial_id"]),
            "params": params,
            "budget": budget,
            "status": result.status.value,
            "test_objective": _finite(result.test_objective),
            "test_metric": "test_" + self.problem.objective.name.split("_", 1)[-1],
            "budget_spent": result.budget_spent,
            "seconds": result.cost_seconds,
            "error": result.error,
            "finished_at": _now(),
        }
        status = json.loads((self.run_dir / RUN_FILE).read_text())
        status["refit"] = record
        self.store.write_status(status)
        return replace(summary, refit=record)

    # -- the loop --------------------------------------------------------------------------
    def _loop(self, evaluator: Evaluator, progress: Progress, backlog: list[Suggestion]) -> None:
        """Keep `evaluator.slots` trials running; tell and record each as it finishes.

        Exactly one finished trial is told between two asks, and every ask and tell goes to the
        journal, so a resumed run replays the strategy through the same sequence of calls.
        """
        label = self.s.label
        backlog = list(backlog)
        ask_seconds: dict[int, float] = {}
        stopping = False
        while True:
            raise_if_received()  # a signal whose exception Python swallowed (see harness.signals)
            if not stopping:
                reason = self._stop_reason()
                if reason:
                    self.stop_reason, stopping = reason, True
            running = evaluator.running
            free = evaluator.slots - len(running)
            if not stopping and free > 0:
                left = free if self.s.trials is None else min(free, self.s.trials - len(self.rows) - len(running))
                while backlog and left > 0:  # trials that were running when the run last stopped
                    self._submit(evaluator, backlog.pop(0), ask_seconds)
                    left -= 1
                if left > 0:
                    t = time.perf_counter()
                    suggestions = self.strategy.ask(left)
                    elapsed = time.perf_counter() - t
                    self.store.journal({"ask": left, "ids": [x.trial_id for x in suggestions]})
                    for sug in suggestions:
                        ask_seconds[sug.trial_id] = elapsed / len(suggestions)
                        self._submit(evaluator, sug, ask_seconds)
                    if not suggestions and not evaluator.running:
                        if self.strategy.finished:
                            continue  # _stop_reason reports it
                        raise StrategyError(
                            f"strategy {self.s.strategy!r} asked to wait, but no trial is pending: "
                            f"a strategy must suggest, or say it is finished"
                        )
            if not evaluator.running:
                if stopping:
                    return
                continue
            done = evaluator.next_finished()
            self._tell_and_record(done.suggestion, done.result, ask_seconds.pop(done.suggestion.trial_id, 0.0))
            progress.update(len(self.rows), self.rows[-1]["status"], self._best_value(), label, self.rows[-1].get("error"))

    def _submit(self, evaluator: Evaluator, sug: Suggestion, ask_seconds: dict[int, float]) -> None:
        try:
            self.searched.check(sug.params)
        except SearchSpaceError as exc:  # recorded as failed without evaluating
            result = failed_result(sug, f"invalid suggestion from strategy {self.s.strategy!r}: {exc}")
            self._tell_and_record(sug, result, ask_seconds.pop(sug.trial_id, 0.0))
            return
        evaluator.submit(sug)

    def _tell_and_record(self, sug: Suggestion, result: EvalResult, ask_seconds: float) -> None:
        value = result.objective
        value = math.nan if value is None or not math.isfinite(value) else self.problem.objective.to_max(value)
        t = time.perf_counter()
        self.strategy.tell(Observation(sug.trial_id, value, result.status, result.budget))
        tell_seconds = time.perf_counter() - t
        row = self._row(sug, result, ask_seconds, tell_seconds)
        self.store.add(row)  # rows reach the disk before the journal says "told": see harness.store
        self.store.journal({"tell": sug.trial_id})
        self._record(row, result)
        if self._live is not None:
            self._live.add(row)
        self.store.maybe_flush()

    def _stop_reason(self) -> str:
        s, n = self.s, len(self.rows)
        if s.trials is not None and n >= s.trials:
            return f"trial budget of {s.trials} reached"
        if s.seconds is not None and self._elapsed() >= s.seconds:
            return f"time budget of {s.seconds:g} s reached"
        if n >= s.min_trials_before_failure_stop and self.n_failed / n > s.max_failure_rate:
            raise HarnessError(
                f"stopping: {self.n_failed} of {n} trials failed, above max_failure_rate="
                f"{s.max_failure_rate}; see the `error` column of {self.run_dir / TRIALS_FILE}"
            )
        if self.strategy.finished:
            return f"strategy {s.strategy!r} finished"
        return ""

    def _make_evaluator(self) -> Evaluator:
        """Worker processes for problems that need isolation (Keras: bounded memory, crash
        isolation, timeouts, parallelism); in-process for cheap ones or `worker.processes=false`."""
        # Only strategies that override `report` (pruners) get per-step round trips.
        prunes = type(self.strategy).report is not Strategy.report
        reporter = self._reporter if prunes else None
        if self.simulated:  # cost reported, not spent: n_workers in a simulated clock
            return SimulatedEvaluator(self.problem, n_workers=self.s.n_workers, reporter=reporter, start=self._elapsed_offset)
        if self.s.worker_backend == "ray":  # Ray actors (harness.ray_workers)
            from harness.ray_workers import RayEvaluator

            return RayEvaluator(
                self.problem,
                n_workers=self.s.n_workers,
                max_trials=self.s.worker_max_trials,
                max_memory_growth_mb=self.s.worker_max_memory_growth_mb,
                trial_timeout=self.s.trial_timeout,
                reporter=reporter,
                address=self.s.ray_address,
            )
        if not self.s.worker_processes:
            return InProcessEvaluator(self.problem, reporter)
        return ProcessEvaluator(
            self.problem,
            n_workers=self.s.n_workers,
            max_trials=self.s.worker_max_trials,
            max_memory_growth_mb=self.s.worker_max_memory_growth_mb,
            trial_timeout=self.s.trial_timeout,
            reporter=reporter,
        )

    def _reporter(self, trial_id: int, step: int, value: float) -> bool:
        """A problem reports in its own direction; strategies maximise. Journaled, so that a
        resumed run replays a pruner's rung records as well as its asks and tells."""
        value = self.problem.objective.to_max(value)
        self.store.journal({"report": trial_id, "step": int(step), "value": float(value)})
        return self.strategy.report(trial_id, step, value)

    # -- rows, best, artifacts -------------------------------------------------------------
    def _constant_columns(self) -> dict[str, Any]:
        """The columns every row of this run shares, computed once."""
        s, p = self.s, self.problem
        info = p.describe()
        return {
            "schema_version": 2,
            "experiment": s.experiment,
            "run_id": s.run_id,
            "problem": p.name,
            "instance": p.instance,
            "strategy": s.strategy,
            "strategy_version": self.strategy_class.library_version(),
            "search_space": info.get("search_space"),
            "dataset": info.get("dataset"),
            "task": info.get("task"),
            "trainer": info.get("trainer"),
            "seed": s.seed,
            "objective_name": p.objective.name,
            "objective_direction": p.objective.direction,
            "harness_version": __version__,
            "hostname": self._prov["hostname"],
            "config_hash": s.config_hash,
            "clock": "simulated" if self.simulated else "wall",
        }

    def _row(self, sug: Suggestion, r: EvalResult, ask_s: float, tell_s: float) -> dict[str, Any]:
        objective = r.objective if r.objective is not None and math.isfinite(r.objective) else None
        params = sug.params
        row = dict(self._constant)
        row.update(
            {
                "trial_id": sug.trial_id,
                "parent_trial_id": sug.resume_from,
                "status": r.status.value,
                "objective": objective,
                "test_objective": _finite(r.test_objective),
                "regret": self.problem.regret(objective),
                "budget": r.budget,
                "budget_spent": r.budget_spent,
                "cost_seconds": r.cost_seconds,
                "ask_seconds": ask_s,
                "tell_seconds": tell_s,
                "elapsed_seconds": self._elapsed(),
                "finished_at": datetime.now(timezone.utc),
                "params": json.dumps({k: _finite(v) for k, v in params.items()}, sort_keys=True),
                "history": json.dumps(r.history, default=float) if r.history else "[]",
                "error": r.error,
            }
        )
        for name in self._param_names:
            row[PARAM_PREFIX + name] = params.get(name)
        for name, value in r.metrics.items():
            row[METRIC_PREFIX + name] = value
        return row

    def _record(self, row: dict[str, Any], result: EvalResult | None) -> None:
        self.rows.append(row)
        if row["status"] == TrialStatus.FAILED.value:
            self.n_failed += 1
        if row["status"] != TrialStatus.OK.value or row["objective"] is None:
            return
        if self.best is None or self._better(row["objective"], self.best["objective"]):
            self.best = row
            if result is not None and result.predictions is not None:
                self._save_predictions(row["trial_id"], result.predictions)

    def _better(self, a: float, b: float) -> bool:
        to_max = self.problem.objective.to_max
        return to_max(a) > to_max(b)

    def _save_predictions(self, trial_id: int, predictions: Any) -> None:
        """The best trial's test predictions, for the report's per-class table."""
        art = self.run_dir / ARTIFACTS_DIR
        art.mkdir(parents=True, exist_ok=True)
        tmp = art / ".best_predictions.tmp.npz"
        arrays = {k: np.asarray(v, dtype=str) if k == "class_names" else np.asarray(v) for k, v in predictions.items()}
        np.savez(tmp, trial_id=trial_id, **arrays)
        tmp.replace(art / "best_predictions.npz")

    def _best_value(self) -> float | None:
        return None if self.best is None else self.best["objective"]

    # -- resume ----------------------------------------------------------------------------
    def _load_previous(self) -> dict[str, Any] | None:
        run_file = self.run_dir / RUN_FILE
        previous = None
        if run_file.exists():
            try:
                previous = json.loads(run_file.read_text())
            except ValueError:
                previous = {}
        for row in self.store.load_rows():
            row["params"] = json.loads(row["params"]) if isinstance(row["params"], str) else row["params"]
            self._record(row, None)
        self._elapsed_offset = max((r["elapsed_seconds"] or 0.0 for r in self.rows), default=0.0)
        return previous if previous is not None else ({} if self.rows else None)

    def _already_done(self, previous: dict[str, Any]) -> bool:
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

    def _resume(self) -> list[Suggestion]:
        """Replay the strategy, keep the rows the journal vouches for, merge the files."""
        journal = self.store.read_journal() if self.store.journal_path.exists() else None
        replayed = replay(self.strategy, self.rows, journal, self.run_dir)
        if len(replayed.rows) != len(self.rows) or self.store.parts():
            rows = [dict(r, params=json.dumps(r["params"], sort_keys=True)) for r in replayed.rows]
            self.store.rewrite(rows)
            self.rows, self.best, self.n_failed = [], None, 0
            for row in replayed.rows:
                self._record(row, None)
        if journal is None or len(replayed.events) != len(journal):
            # A run from before journals, or rows told late (their tell was lost with the last
            # flush): write the sequence replay made, so the next resume replays the same one.
            self.store.rewrite_journal(replayed.events)
        return replayed.backlog

    # -- status ----------------------------------------------------------------------------
    def _elapsed(self) -> float:
        """Seconds since the run started, over all its sessions: simulated for tabular problems."""
        if self._stopped_at is not None:
            return self._stopped_at
        if self.simulated:
            return self._evaluator.now if isinstance(self._evaluator, SimulatedEvaluator) else self._elapsed_offset
        return self._elapsed_offset + (time.perf_counter() - self._t0 if self._t0 else 0.0)

    def _write_status(self, status: str, started_at: str, *, ended: bool = False) -> None:
        """`_run.json`: status and provenance. Each invocation (first run, resumes) is a session."""
        s, p = self.s, self.problem
        previous = self._previous or {}
        sessions = list(previous.get("sessions") or [])
        sessions.append(
            {
                "started_at": started_at,
                "ended_at": _now() if ended else None,
                "status": status,
                "n_trials_at_end": len(self.rows),
                "hostname": self._prov["hostname"],
                "pid": os.getpid(),
                "argv": list(sys.argv),
                "n_workers": s.n_workers,
                "worker_processes": s.worker_processes,
                "workers_started": self.workers_started,
            }
        )
        info = p.describe()
        self.store.write_status(
            {
                "schema_version": 2,
                "run_id": s.run_id,
                "experiment": s.experiment,
                "status": status,
                "stop_reason": self.stop_reason,
                "started_at": previous.get("started_at") or started_at,
                "ended_at": _now() if ended else None,
                "elapsed_seconds": self._elapsed(),
                "clock": "simulated" if self.simulated else "wall",
                "n_trials": len(self.rows),
                "n_failed": self.n_failed,
                "seed": s.seed,
                "seeds": {
                    "run": s.seed,
                    "python_random": s.seed,
                    "numpy_global": s.seed,
                    "strategy": s.seed,
                    "problem": s.seed,
                    "data_split": s.seed,
                    **p.seed_info(),
                },
                "strategy": s.strategy,
                "strategy_version": self.strategy_class.library_version(),
                "strategy_distribution": plugin_distribution(s.strategy),
                "planned_trials": self.strategy.planned_trials if self.strategy else None,
                "problem": p.name,
                "instance": p.instance,
                "problem_version": p.library_version(),
                "objective": {"name": p.objective.name, "direction": p.objective.direction, "optimum": p.optimum},
                "search_space": info.get("search_space"),
                "dataset": info.get("dataset"),
                "config": s.config,
                "identity": s.identity(),
                "config_hash": s.config_hash,
                "provenance": self._prov,
                "sessions": sessions,
                "best_trial_id": self.best["trial_id"] if self.best else None,
                **({"refit": previous["refit"]} if previous.get("refit") else {}),
            }
        )

    def _record_not_applicable(self) -> RunSummary:
        """`_run.json` with status `not_applicable` and the reason; no trial is run."""
        if (self.run_dir / TRIALS_FILE).exists() or self.store.parts() or self.store.journal_path.exists():
            # Recorded by an earlier version that ran this pairing: keep its trials, say why.
            raise HarnessError(
                f"run {self.s.run_id} has recorded trials in {self.run_dir}, but strategy "
                f"{self.s.strategy!r} is not applicable to it now: {self.not_applicable}. Move or "
                f"delete that folder (or rerun with overwrite=true) to record it as not applicable"
            )
        self.stop_reason = str(self.not_applicable)
        self.run_dir.mkdir(parents=True, exist_ok=True)
        self._write_status("not_applicable", _now(), ended=True)
        return self._summary("not_applicable")

    def _summary(self, status: str) -> RunSummary:
        best = dict(self.best) if self.best else None
        errors = [r.get("error") for r in self.rows if r.get("error")] if best is None else []
        return RunSummary(
            self.s.run_id,
            self.run_dir,
            status,
            len(self.rows),
            self.n_failed,
            self._elapsed(),
            best,
            self.stop_reason,
            clock="simulated" if self.simulated else "wall",
            first_error=first_line(errors[0]) if errors else None,
            param_order=tuple(p.name for p in self.problem.space.params),
            fidelity_param=getattr(self.problem.space.fidelity, "param", None),
        )


class RefitProblem(Problem):
    """The run's problem seen through its `refit`: what an evaluator runs for the refit stage,
    in a worker process like any trial (TensorFlow stays out of the runner's process)."""

    def __init__(self, inner: Problem):
        self.inner = inner
        self.name, self.space, self.objective = inner.name, inner.space, inner.objective

    def setup(self) -> None:
        self.inner.setup()

    def evaluate(self, suggestion: Suggestion, report: Any = None) -> EvalResult:
        return self.inner.refit(suggestion, suggestion.budget)


def format_refit(refit: dict[str, Any]) -> str:
    """The summary line of a refit record (`_run.json`'s `refit`)."""
    what = f"refit of trial {refit['trial_id']} on training + validation data"
    if refit.get("budget") is not None:
        what += f" ({refit['budget']} epoch{'' if refit['budget'] == 1 else 's'})"
    if refit.get("status") != "ok" or refit.get("test_objective") is None:
        return f"{what}: failed: {first_line(refit.get('error') or 'no test score')}"
    return f"{what}: {str(refit['test_metric']).replace('_', ' ')} {refit['test_objective']:.6g}"


def first_line(text: str, limit: int = 160) -> str:
    """An error's first non-empty line, shortened for a console line."""
    line = next((x.strip() for x in str(text).splitlines() if x.strip()), "")
    return line if len(line) <= limit else line[: limit - 3] + "..."


def _finite(v: Any) -> Any:
    return None if isinstance(v, float) and not math.isfinite(v) else v


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def run(settings: RunSettings) -> RunSummary:
    return Runner(settings).run()
