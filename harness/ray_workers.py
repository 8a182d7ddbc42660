"""`worker.backend=ray`: trials evaluated by Ray actors, on this machine or on a Ray cluster.

The same contract as `harness.workers.ProcessEvaluator`, with actors instead of worker
processes: `n_workers` actors (`num_cpus=1` each) get the pickled problem and run its `setup()`
once (importing TensorFlow, loading the dataset), then evaluate trial after trial with the same
`evaluate_trial` as local workers, so a trial's own exception is a failed row. An actor is
replaced after `max_trials` trials or once its memory grew by more than
`max_memory_growth_mb` since its first trial; an actor that dies (its process killed, its node
lost) gives a failed row naming the cause, and a trial running past `trial_timeout` is killed
(`ray.kill`) and recorded failed; a fresh actor takes the slot either way. An actor that dies
before its setup finished is not the trial's fault: the trial goes to a fresh actor, and the run
stops with one error after a few such deaths in a row (a problem that cannot start anywhere).

Per-step reports (pruning strategies) are supported: an actor that reports runs two threads,
the trial and a mailbox the runner waits on with the trials' results (`next_report`), so a
report is one round trip, as over a local worker's pipe.

`address=None` starts a local Ray instance with `num_cpus=n_workers` (no dashboard, actors' logs
not forwarded) and shuts it down at `close()`; `"auto"` or `"host:port"` joins a running cluster
(`ray start --head`) and only disconnects at `close()`; a process where Ray is already
initialised (tests, notebooks) uses that instance and leaves it as it was. `ray.init` installs a
SIGTERM handler that exits the process: the runner's own handlers are put back, so a scheduler's
SIGTERM still saves the run (exit 143). Actors ignore SIGINT, as local workers do: Ctrl-C reaches
the whole process group and the runner decides. `ray` is imported here only, when the evaluator
is created: `import harness` never needs it.
"""

from __future__ import annotations

import os
import signal
import threading
import time
from dataclasses import dataclass
from typing import Any

from harness.errors import ConfigError, HarnessError
from harness.problem import EvalResult, Problem
from harness.strategy import Suggestion
from harness.workers import Evaluator, Finished, Reporter, evaluate_trial, failed_result, resident_mb

INSTALL_HINT = 'pip install -e ".[ray]"'
# Actors that die before their setup finished, in a row (no actor became ready in between), after
# which the run stops: a problem whose setup kills its process would otherwise loop for ever.
MAX_STARTUP_DEATHS = 3


class RayUnavailableError(ConfigError):
    """`worker.backend=ray` without Ray installed (or a Ray cluster that cannot be reached)."""


def import_ray() -> Any:
    try:
        import ray
    except ImportError as exc:
        raise RayUnavailableError(
            f"worker.backend=ray needs Ray, which is not installed ({exc}); install the extra with "
            f"`{INSTALL_HINT}`, or use worker.backend=local"
        ) from None
    return ray


class TrialActor:
    """The Ray actor (wrapped with `ray.remote` by `RayEvaluator`): one problem, set up once."""

    def __init__(self, problem: Problem, reports: bool):
        if threading.current_thread() is threading.main_thread():
            signal.signal(signal.SIGINT, signal.SIG_IGN)  # the runner handles Ctrl-C for the whole run
        from harness.log import configure

        configure()
        self._problem, self._reporting = problem, reports
        self._lock = threading.Lock()
        self._setup: tuple[Any, ...] | None = None
        self._baseline: float | None = None  # memory after the first trial: warm-up is not a leak
        if reports:
            import queue

            self._reports: Any = queue.Queue()  # (trial_id, step, value) of the running trial
            self._answers: Any = queue.Queue()  # the runner's stop/continue answers

    def setup(self) -> tuple[Any, ...]:
        """("ready", pid) once the problem is set up, or ("fatal", HarnessError)."""
        with self._lock:
            if self._setup is None:
                try:
                    self._problem.setup()
                    self._setup = ("ready", os.getpid())
                except HarnessError as exc:
                    self._setup = ("fatal", _portable(exc))
                except BaseException as exc:  # noqa: BLE001 -- reported to the runner, which stops the run
                    self._setup = (
                        "fatal",
                        HarnessError(f"a Ray actor could not set up problem {self._problem.name!r}: {type(exc).__name__}: {exc}"),
                    )
            return self._setup

    def evaluate(self, suggestion: Suggestion) -> tuple[Any, ...]:
        """("result", EvalResult, memory growth in MB) or ("fatal", HarnessError)."""
        ready = self.setup()
        if ready[0] != "ready":
            return ready
        report = None
        if self._reporting:

            def report(step: int, value: float, tid: int = suggestion.trial_id) -> bool:
                self._reports.put((tid, step, value))
                return bool(self._answers.get())

        try:
            result = evaluate_trial(self._problem, suggestion, report)
        except HarnessError as exc:
            return ("fatal", _portable(exc))
        now = resident_mb()
        self._baseline = now if self._baseline is None else self._baseline
        return ("result", result, now - self._baseline)

    def next_report(self) -> tuple[int, int, float]:
        """Blocks until the running trial reports a step (runs beside `evaluate`)."""
        return self._reports.get()

    def answer(self, stop: bool) -> None:
        self._answers.put(stop)


def _portable(exc: HarnessError) -> HarnessError:
    from harness.workers import _portable as portable

    return portable(exc)


@dataclass
class _Actor:
    handle: Any
    setup_ref: Any
    ready: bool = False
    pid: int | None = None
    trials: int = 0
    current: Suggestion | None = None
    ref: Any = None  # the running trial's result
    report_ref: Any = None  # the pending `next_report` (reporting actors only)
    started_at: float | None = None  # when the current trial began (setup done and submitted)


class RayEvaluator(Evaluator):
    """`n_workers` recycled Ray actors; see the module docstring."""

    def __init__(
        self,
        problem: Problem,
        *,
        n_workers: int = 1,
        max_trials: int | None = 50,
        max_memory_growth_mb: float | None = None,
        trial_timeout: float | None = None,
        reporter: Reporter | None = None,
        address: str | None = None,
    ):
        if n_workers < 1:
            raise ValueError(f"n_workers must be >= 1, but got {n_workers}")
        self._ray = ray = import_ray()
        self.slots = n_workers
        self._problem, self._reporter = problem, reporter
        self._max_trials, self._timeout = max_trials, trial_timeout
        self._max_growth = max_memory_growth_mb
        self._actors: list[_Actor] = []
        self._done: list[Finished] = []
        self._startup_deaths = 0
        self.started = 0  # actors started so far (tests, benchmarks)
        self._owns_ray = False
        if not ray.is_initialized():
            self._init_ray(address, n_workers)
        reports = reporter is not None
        options: dict[str, Any] = {"num_cpus": 1, "max_restarts": 0, "max_task_retries": 0}
        if reports:
            options["max_concurrency"] = 4  # the trial, its mailbox, the answers, setup
        self._actor_class = ray.remote(**options)(TrialActor)
        try:
            for _ in range(n_workers):  # start them all now: their set-ups overlap
                self._actors.append(self._spawn())
        except BaseException:
            self.close()
            raise

    # -- evaluator -------------------------------------------------------------------------
    @property
    def running(self) -> list[Suggestion]:
        return [a.current for a in self._actors if a.current is not None] + [f.suggestion for f in self._done]

    @property
    def pids(self) -> list[int | None]:
        """The actors' process ids (None for one still setting up); on a cluster, on their nodes."""
        for actor in self._actors:
            if not actor.ready:
                self._poll_setup(actor)
        return [a.pid for a in self._actors]

    def submit(self, suggestion: Suggestion) -> None:
        for actor in [a for a in self._actors if a.current is None and not a.ready]:
            self._poll_setup(actor)  # may replace an actor that died setting up
        idle = [a for a in self._actors if a.current is None]
        if not idle:
            raise RuntimeError(f"all {self.slots} Ray actors are busy")
        actor = idle[0]
        actor.current = suggestion
        actor.ref = actor.handle.evaluate.remote(suggestion)
        actor.started_at = time.monotonic() if actor.ready else None

    def next_finished(self) -> Finished:
        try:
            return self._next_finished()
        except KeyboardInterrupt as exc:
            # Ray turns the exception of the runner's signal handler, raised while Ray waits,
            # into a plain KeyboardInterrupt: raise the runner's own (SIGTERM stays SIGTERM).
            from harness.signals import RunInterrupted, raise_if_received

            if not isinstance(exc, RunInterrupted):
                raise_if_received()
            raise

    def _next_finished(self) -> Finished:
        ray = self._ray
        while not self._done:
            busy = [a for a in self._actors if a.current is not None]
            if not busy:
                raise RuntimeError("next_finished() with no trial running")
            waiting: dict[Any, tuple[_Actor, str]] = {}
            for actor in busy:
                waiting[actor.ref] = (actor, "result")
                if not actor.ready:
                    waiting[actor.setup_ref] = (actor, "setup")
                if actor.report_ref is not None:
                    waiting[actor.report_ref] = (actor, "report")
            ready, _ = ray.wait(list(waiting), num_returns=1, timeout=self._wait_seconds(busy))
            for ref in ready:
                actor, kind = waiting[ref]
                if actor not in self._actors or actor.current is None:
                    continue
                if kind == "setup":
                    self._poll_setup(actor)
                elif kind == "report":
                    self._answer_report(actor)
                else:
                    self._collect(actor)
            self._enforce_timeout()
        return self._done.pop(0)

    def close(self) -> None:
        ray = self._ray
        for actor in self._actors:  # busy actors' trials are abandoned
            try:
                ray.kill(actor.handle, no_restart=True)
            except Exception:  # noqa: BLE001 -- already dead, or Ray is gone
                pass
        self._actors = []
        if self._owns_ray and ray.is_initialized():
            ray.shutdown()
            self._owns_ray = False

    # -- internals ----------------------------------------------------------------------------
    def _init_ray(self, address: str | None, n_workers: int) -> None:
        """Join `address` or start a local instance; Ray's own SIGTERM handler (it exits the
        process) is replaced by the runner's again, so a scheduler's stop still saves the run."""
        import logging

        ray = self._ray
        saved = {}
        if threading.current_thread() is threading.main_thread():
            saved = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}
        kwargs: dict[str, Any] = {"include_dashboard": False, "log_to_driver": False, "logging_level": logging.WARNING}
        if address is None:  # a local instance of our own, even where RAY_ADDRESS names a cluster
            kwargs.update(address="local", num_cpus=n_workers)
        else:
            kwargs["address"] = address
        try:
            ray.init(**kwargs)
        except SystemExit as exc:  # Ray's handler: SIGTERM while Ray starts (a job preempted early)
            ray.shutdown()  # what it started so far
            if exc.code == signal.SIGTERM:
                from harness.signals import RunInterrupted

                raise RunInterrupted(signal.SIGTERM) from None
            raise
        except (ConnectionError, ValueError, RuntimeError) as exc:
            where = "start a local Ray instance" if address is None else f"connect to the Ray cluster at {address!r}"
            raise RayUnavailableError(
                f"worker.backend=ray: cannot {where}: {str(exc).strip().splitlines()[0]}"
                + ("" if address is None else "; start it with `ray start --head` or set ray.address=null to start a local one")
            ) from None
        finally:
            for sig, handler in saved.items():
                if handler is not None:
                    signal.signal(sig, handler)
        # We called ray.init, so close() calls ray.shutdown(): it stops the local instance we
        # started, or only disconnects from a cluster we joined (the cluster keeps running).
        self._owns_ray = True

    def _spawn(self) -> _Actor:
        handle = self._actor_class.remote(self._problem, self._reporter is not None)
        actor = _Actor(handle, handle.setup.remote())
        if self._reporter is not None:
            actor.report_ref = handle.next_report.remote()
        self.started += 1
        return actor

    def _poll_setup(self, actor: _Actor) -> None:
        """Note the end of an actor's setup, if it has ended (without blocking)."""
        ray = self._ray
        if actor.ready or not ray.wait([actor.setup_ref], timeout=0)[0]:
            return
        try:
            outcome = ray.get(actor.setup_ref)
        except ray.exceptions.RayError as exc:
            self._startup_death(actor, exc)
            return
        if outcome[0] == "fatal":
            self.close()
            raise outcome[1]
        actor.ready, actor.pid = True, outcome[1]
        self._startup_deaths = 0
        if actor.current is not None and actor.started_at is None:
            actor.started_at = time.monotonic()

    def _startup_death(self, actor: _Actor, exc: BaseException) -> None:
        """The actor died before its setup finished: its trial (if any) goes to a fresh actor."""
        self._startup_deaths += 1
        if self._startup_deaths >= MAX_STARTUP_DEATHS:
            self.close()
            raise HarnessError(
                f"Ray actors could not start ({MAX_STARTUP_DEATHS} died before setting up "
                f"problem {self._problem.name!r}); the last: {_death_cause(exc)}"
            )
        suggestion = actor.current
        fresh = self._swap(actor)
        if suggestion is not None:
            fresh.current = suggestion
            fresh.ref = fresh.handle.evaluate.remote(suggestion)

    def _collect(self, actor: _Actor) -> None:
        ray = self._ray
        try:
            outcome = ray.get(actor.ref)
        except ray.exceptions.RayTaskError as exc:  # the actor method itself broke (not the trial)
            self._fail(actor, f"the Ray actor's trial call failed: {str(exc).strip().splitlines()[-1]}")
            return
        except ray.exceptions.RayError as exc:  # the actor, its node or the result was lost
            if not actor.ready and self._setup_failed(actor):
                self._startup_death(actor, exc)
            else:
                self._fail(actor, _death_cause(exc))
            return
        if outcome[0] == "fatal":  # the same HarnessError subclass the problem raised
            self.close()
            raise outcome[1]
        _, result, growth_mb = outcome
        if not actor.ready:
            self._poll_setup(actor)
        self._finish(actor, result, growth_mb)

    def _setup_failed(self, actor: _Actor) -> bool:
        """Whether the actor's setup call failed (it died before it was ready)."""
        ray = self._ray
        if not ray.wait([actor.setup_ref], timeout=5)[0]:  # its reply may trail the death
            return True
        try:
            ray.get(actor.setup_ref)
        except ray.exceptions.RayError:
            return True
        return False

    def _answer_report(self, actor: _Actor) -> None:
        ray = self._ray
        try:
            tid, step, value = ray.get(actor.report_ref)
        except ray.exceptions.RayError:  # the actor died; its trial's ref says how
            actor.report_ref = None
            return
        stop = self._reporter(tid, step, value) if self._reporter else False
        actor.handle.answer.remote(bool(stop))
        actor.report_ref = actor.handle.next_report.remote()

    def _finish(self, actor: _Actor, result: EvalResult, growth_mb: float) -> None:
        assert actor.current is not None
        self._done.append(Finished(actor.current, result))
        actor.current, actor.ref, actor.started_at = None, None, None
        actor.trials += 1
        if (self._max_trials is not None and actor.trials >= self._max_trials) or (
            self._max_growth is not None and growth_mb > self._max_growth
        ):
            self._swap(actor)

    def _fail(self, actor: _Actor, error: str) -> None:
        assert actor.current is not None
        self._done.append(Finished(actor.current, failed_result(actor.current, error)))
        self._swap(actor)

    def _swap(self, actor: _Actor) -> _Actor:
        """Kill the actor (if it is not dead already) and start a fresh one in its slot."""
        try:
            self._ray.kill(actor.handle, no_restart=True)
        except Exception:  # noqa: BLE001 -- already dead
            pass
        actor.current, actor.ref, actor.report_ref = None, None, None
        fresh = self._spawn()
        self._actors[self._actors.index(actor)] = fresh
        return fresh

    def _wait_seconds(self, busy: list[_Actor]) -> float | None:
        if self._timeout is None:
            return None
        now = time.monotonic()
        waits = [a.started_at + self._timeout - now for a in busy if a.started_at is not None]
        return max(0.0, min(waits)) if waits else 1.0  # actors still setting up: look again soon

    def _enforce_timeout(self) -> None:
        if self._timeout is None:
            return
        now = time.monotonic()
        for actor in list(self._actors):
            if actor.current is not None and actor.started_at is not None and now - actor.started_at > self._timeout:
                self._fail(actor, f"timed out: still running after trial_timeout={self._timeout:g} s; the Ray actor was killed")


def _death_cause(exc: BaseException) -> str:
    """A failed row's error for an actor lost mid-trial: where it ran and Ray's own reason, e.g.
    "the Ray actor died (pid 123, node 10.0.0.5): The actor died because its node has died. ..."."""
    lines = [line.strip() for line in str(exc).splitlines()]
    fields = dict(line.split(": ", 1) for line in lines[1:] if line.split(": ", 1)[0] in ("pid", "ip"))
    where = ", ".join(f"{label} {fields[key]}" for key, label in (("pid", "pid"), ("ip", "node")) if key in fields)
    at = next((i for i, line in enumerate(lines) if "dead because" in line or "died because" in line), None)
    if at is None:
        reason = next((line for line in lines if line), type(exc).__name__)
    else:  # the reason, and its detail line when there is one ("the actor's node was terminated ...")
        reason = lines[at] + (f"; {lines[at + 1]}" if at + 1 < len(lines) and lines[at + 1] else "")
    return f"the Ray actor died{f' ({where})' if where else ''}: {reason}"
