"""Evaluators: where a run's trials are evaluated — in the runner's process, or in worker processes.

The runner hands suggestions to an `Evaluator` and takes finished trials back one at a time; it
never sees processes, pipes or timeouts. Two implementations:

* `InProcessEvaluator` evaluates in the runner's process, one trial at a time: the choice for
  cheap problems (BBOB, scikit-learn), where a process round trip would cost more than the
  trial. A trial that segfaults takes the run with it and a hung trial cannot be stopped.
* `ProcessEvaluator` keeps `n_workers` worker processes (spawn context: no TensorFlow state is
  ever forked). Each worker gets the (pickled) problem and runs its `setup()` once (loading the
  dataset, importing TensorFlow), then evaluates trial after trial; after `max_trials` trials,
  or once its resident memory has grown by more than `max_memory_growth_mb` since its first trial, it is replaced by a fresh one,
  which bounds memory whatever a library keeps between trials (the Keras objective already
  drops the gradient functions TensorFlow registers per traced train step). A worker that dies (SIGKILL, segfault, OOM
  killer) or a trial that runs past
  `trial_timeout` wall seconds becomes a failed result naming the cause, and a fresh worker
  takes the slot. Workers ignore SIGINT (a Ctrl-C reaches the whole process group; the runner
  decides what happens) and die with the runner (Linux `PR_SET_PDEATHSIG`).

Per-epoch reports for pruner-style strategies cross the pipe: the worker sends
(trial, epoch, value) and waits for the runner's stop/continue answer. Strategies that keep the
default `report` skip the round trip.
"""

from __future__ import annotations

import abc
import collections
import heapq
import multiprocessing
import os
import pickle
import signal
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from multiprocessing.connection import wait as wait_for
from typing import Any

from harness.errors import HarnessError
from harness.problem import EvalResult, Problem
from harness.strategy import Suggestion

Reporter = Callable[[int, int, float], bool]  # (trial_id, step, value) -> stop this trial?


def failed_result(suggestion: Suggestion, error: str) -> EvalResult:
    return EvalResult.failed(error, budget=suggestion.budget)


def evaluate_trial(problem: Problem, suggestion: Suggestion, report: Callable[[int, float], bool] | None) -> EvalResult:
    """Evaluate one suggestion; a trial's own exception becomes a failed result. The wall time
    is the trial's cost unless the problem reports a (simulated) cost of its own.

    `HarnessError` (a configuration problem that would fail every trial) and `KeyboardInterrupt`
    propagate.
    """
    t0 = time.perf_counter()
    try:
        result = problem.evaluate(suggestion, report)
    except (KeyboardInterrupt, HarnessError):
        raise
    except Exception as exc:  # the trial's own failure (OOM in TF, shape error...): record, go on
        result = failed_result(suggestion, f"{type(exc).__name__}: {exc}")
    if result.cost_seconds is None:
        result = replace(result, cost_seconds=time.perf_counter() - t0)
    return result


@dataclass(frozen=True)
class Finished:
    """A trial the evaluator is done with (trained, failed, timed out or lost with its worker)."""

    suggestion: Suggestion
    result: EvalResult


class Evaluator(abc.ABC):
    """Trains submitted suggestions; `next_finished` blocks until one of them is done."""

    slots: int = 1

    @abc.abstractmethod
    def submit(self, suggestion: Suggestion) -> None:
        """Start a trial; only while `running < slots`."""

    @abc.abstractmethod
    def next_finished(self) -> Finished:
        """Block until a running trial is done and return it (one at a time, in finish order)."""

    @property
    @abc.abstractmethod
    def running(self) -> list[Suggestion]:
        """Submitted trials not yet returned by `next_finished`."""

    def close(self) -> None:
        """Release workers; running trials are abandoned."""

    def __enter__(self) -> Evaluator:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


class InProcessEvaluator(Evaluator):
    """One trial at a time in this process; the problem is set up before the first trial."""

    slots = 1

    def __init__(self, problem: Problem, reporter: Reporter | None = None):
        self._problem, self._reporter = problem, reporter
        self._ready = False
        self._queue: collections.deque[Suggestion] = collections.deque()

    def submit(self, suggestion: Suggestion) -> None:
        if self._queue:
            raise RuntimeError("InProcessEvaluator runs one trial at a time")
        self._queue.append(suggestion)

    @property
    def running(self) -> list[Suggestion]:
        return list(self._queue)

    def next_finished(self) -> Finished:
        suggestion = self._queue[0]
        if not self._ready:
            self._problem.setup()
            self._ready = True
        report = None
        if self._reporter is not None:
            reporter, tid = self._reporter, suggestion.trial_id
            report = lambda epoch, value: reporter(tid, epoch, value)  # noqa: E731
        try:
            result = evaluate_trial(self._problem, suggestion, report)
        finally:
            self._queue.popleft()
        return Finished(suggestion, result)


class SimulatedEvaluator(Evaluator):
    """`n_workers` simulated workers for problems whose cost is reported, not spent (tabular).

    A submitted trial is evaluated at once, in this process; it "finishes" at the simulated time
    it was started plus its `cost_seconds`. `next_finished` returns trials in simulated finish
    order (ties: submission order) and advances the clock, so a strategy's batch ask fills the
    free simulated workers and results arrive as they would on a real cluster, deterministically
    and whatever the machine's load. Per-step reports reach the strategy when the trial is
    submitted, not at their simulated times.
    """

    def __init__(self, problem: Problem, *, n_workers: int = 1, reporter: Reporter | None = None, start: float = 0.0):
        self.slots = n_workers
        self._problem, self._reporter = problem, reporter
        self.now = start  # the simulated clock, in seconds since the run started
        self._queue: list[tuple[float, int, Suggestion, EvalResult]] = []
        self._submitted = 0
        problem.setup()

    @property
    def running(self) -> list[Suggestion]:
        return [entry[2] for entry in self._queue]

    def submit(self, suggestion: Suggestion) -> None:
        if len(self._queue) >= self.slots:
            raise RuntimeError(f"all {self.slots} simulated workers are busy")
        report = None
        if self._reporter is not None:
            reporter, tid = self._reporter, suggestion.trial_id
            report = lambda step, value: reporter(tid, step, value)  # noqa: E731
        result = evaluate_trial(self._problem, suggestion, report)
        cost = result.cost_seconds if result.cost_seconds is not None else 0.0
        heapq.heappush(self._queue, (self.now + max(0.0, cost), self._submitted, suggestion, result))
        self._submitted += 1

    def next_finished(self) -> Finished:
        finish, _, suggestion, result = heapq.heappop(self._queue)
        self.now = finish
        return Finished(suggestion, result)


# -- worker processes --------------------------------------------------------------------------
def _die_with_parent() -> None:
    """Ask Linux to SIGKILL this worker when the runner dies (so SIGKILL leaves no orphans)."""
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        PR_SET_PDEATHSIG = 1
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    except (OSError, AttributeError):  # not Linux: orphans end when their pipe closes
        pass


def _worker_main(conn: Any, problem: Problem, reports: bool, parent_pid: int) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the runner handles Ctrl-C for the whole run
    _die_with_parent()
    from harness.log import configure

    configure()  # a spawned worker starts without the command's logging: notes keep their form
    if os.getppid() != parent_pid:  # the runner died before prctl took effect
        return
    try:
        problem.setup()
    except HarnessError as exc:
        conn.send(("fatal", _portable(exc)))
        return
    except BaseException as exc:  # noqa: BLE001 -- reported to the runner, which stops the run
        conn.send(
            ("fatal", HarnessError(f"a worker process could not set up problem {problem.name!r}: {type(exc).__name__}: {exc}"))
        )
        return
    baseline: float | None = None  # memory after the first trial: warm-up (graph tracing) is not a leak
    conn.send(("ready",))
    while True:
        try:
            message = conn.recv()
        except (EOFError, OSError):
            return
        if message[0] == "stop":
            return
        suggestion: Suggestion = message[1]
        tid = suggestion.trial_id
        conn.send(("started", tid))
        report = None
        if reports:

            def report(epoch: int, value: float, tid: int = tid) -> bool:
                conn.send(("report", tid, epoch, value))
                return bool(conn.recv())

        try:
            result = evaluate_trial(problem, suggestion, report)
        except HarnessError as exc:
            conn.send(("fatal", _portable(exc)))
            return
        now = resident_mb()
        baseline = now if baseline is None else baseline
        conn.send(("result", tid, result, now - baseline))


def resident_mb() -> float:
    """This process's resident memory in MB (Linux `/proc`; 0 elsewhere: no memory recycling)."""
    try:
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


def _portable(exc: HarnessError) -> HarnessError:
    """The error itself when it survives pickling (keeps its type for the runner), else its text."""
    try:
        pickle.loads(pickle.dumps(exc))
        return exc
    except Exception:  # noqa: BLE001 -- e.g. a subclass whose __init__ takes other arguments
        return HarnessError(str(exc))


@dataclass
class _Worker:
    process: Any
    conn: Any
    trials: int = 0
    ready: bool = False  # the objective is built; death before that is not the trial's fault
    current: Suggestion | None = None
    started_at: float | None = None  # when the worker began the current trial

    def kill(self) -> None:
        if self.process.is_alive():
            self.process.kill()
        self.process.join(5)
        self.conn.close()


def _death_cause(exitcode: int | None) -> str:
    if exitcode is not None and exitcode < 0:
        try:
            name = signal.Signals(-exitcode).name
        except ValueError:
            name = f"signal {-exitcode}"
        hint = " (killed: out of memory, or killed by hand)" if -exitcode == signal.SIGKILL else ""
        return f"the worker process died from {name}{hint}"
    return f"the worker process exited with code {exitcode}"


class ProcessEvaluator(Evaluator):
    """`n_workers` recycled worker processes; see the module docstring."""

    def __init__(
        self,
        problem: Problem,
        *,
        n_workers: int = 1,
        max_trials: int | None = 50,
        max_memory_growth_mb: float | None = None,
        trial_timeout: float | None = None,
        reporter: Reporter | None = None,
        start_method: str = "spawn",
    ):
        if n_workers < 1:
            raise ValueError(f"n_workers must be >= 1, but got {n_workers}")
        self.slots = n_workers
        self._problem, self._reporter = problem, reporter
        self._max_trials, self._timeout = max_trials, trial_timeout
        self._max_growth = max_memory_growth_mb
        self._ctx = multiprocessing.get_context(start_method)
        self._workers: list[_Worker] = []
        self._done: collections.deque[Finished] = collections.deque()
        self.started = 0  # worker processes started so far (tests, benchmarks)
        for _ in range(n_workers):  # start them all now: their TensorFlow imports overlap
            self._workers.append(self._spawn())

    # -- evaluator -------------------------------------------------------------------------
    @property
    def running(self) -> list[Suggestion]:
        return [w.current for w in self._workers if w.current is not None] + [f.suggestion for f in self._done]

    @property
    def pids(self) -> list[int]:
        return [w.process.pid for w in self._workers]

    def submit(self, suggestion: Suggestion) -> None:
        idle = [w for w in self._workers if w.current is None]
        if not idle:
            if len(self._workers) >= self.slots:
                raise RuntimeError(f"all {self.slots} workers are busy")
            self._workers.append(self._spawn())
            idle = self._workers[-1:]
        worker = idle[0]
        worker.current, worker.started_at = suggestion, None
        try:
            worker.conn.send(("trial", suggestion))
        except (BrokenPipeError, OSError):
            pass  # the worker is dead; next_finished sees its sentinel and reports the cause

    def next_finished(self) -> Finished:
        while not self._done:
            busy = [w for w in self._workers if w.current is not None]
            if not busy:
                raise RuntimeError("next_finished() with no trial running")
            waitables = [w.conn for w in busy] + [w.process.sentinel for w in busy]
            for ready in wait_for(waitables, self._wait_seconds(busy)):
                worker = next((w for w in busy if ready in (w.conn, w.process.sentinel)), None)
                # A worker already replaced in this round (conn and sentinel both fired) is skipped.
                if worker is not None and worker.current is not None and worker in self._workers:
                    self._service(worker)
            self._enforce_timeout()
        return self._done.popleft()

    def close(self) -> None:
        for w in self._workers:
            if w.current is None and w.process.is_alive():
                try:
                    w.conn.send(("stop",))
                except (BrokenPipeError, OSError):
                    pass
        deadline = time.monotonic() + 2
        for w in self._workers:
            if w.current is None:
                w.process.join(max(0.0, deadline - time.monotonic()))
            w.kill()  # busy workers' trials are abandoned
        self._workers = []

    # -- internals ----------------------------------------------------------------------------
    def _spawn(self) -> _Worker:
        parent, child = self._ctx.Pipe()
        reports = self._reporter is not None
        process = self._ctx.Process(
            target=_worker_main,
            args=(child, self._problem, reports, os.getpid()),
            name=f"harness-worker-{self.started}",
            daemon=False,
        )
        # The child is told the parent's *global* start method and looks it up before anything
        # else; inside a joblib/loky worker that is 'loky', which a fresh interpreter does not
        # know ("cannot find context for 'loky'"). Name a standard one while starting.
        current = multiprocessing.get_start_method(allow_none=True)
        if current not in (None, "fork", "spawn", "forkserver"):
            multiprocessing.set_start_method(self._ctx.get_start_method(), force=True)
            try:
                process.start()
            finally:
                multiprocessing.set_start_method(current, force=True)
        else:
            process.start()
        child.close()
        self.started += 1
        return _Worker(process, parent)

    def _wait_seconds(self, busy: list[_Worker]) -> float | None:
        if self._timeout is None:
            return None
        now = time.monotonic()
        waits = [w.started_at + self._timeout - now for w in busy if w.started_at is not None]
        # Unstarted workers are still importing TensorFlow; look again soon.
        return max(0.0, min(waits)) if waits else 1.0

    def _service(self, worker: _Worker) -> None:
        """Handle what one worker has to say, or its death."""
        try:
            while worker.conn.poll():
                message = worker.conn.recv()
                kind = message[0]
                if kind == "ready":
                    worker.ready = True
                elif kind == "started":
                    worker.started_at = time.monotonic()
                elif kind == "report":
                    _, tid, epoch, value = message
                    stop = self._reporter(tid, epoch, value) if self._reporter else False
                    worker.conn.send(bool(stop))
                elif kind == "result":
                    self._finish(worker, message[2], growth_mb=message[3])
                    return
                elif kind == "fatal":  # the same HarnessError subclass the objective raised
                    self.close()
                    raise message[1]
            if worker.process.is_alive():
                return
        except (EOFError, OSError):
            pass
        worker.process.join(5)
        cause = _death_cause(worker.process.exitcode)
        if not worker.ready:  # every worker would die the same way: stop, don't fail every trial
            self.close()
            raise HarnessError(f"a worker process could not start: {cause}; its error output is above")
        self._replace(worker, failed_result(worker.current, cause))

    def _finish(self, worker: _Worker, result: EvalResult, *, growth_mb: float = 0.0) -> None:
        self._done.append(Finished(worker.current, result))
        worker.current, worker.started_at = None, None
        worker.trials += 1
        if (self._max_trials is not None and worker.trials >= self._max_trials) or (
            self._max_growth is not None and growth_mb > self._max_growth
        ):
            try:
                worker.conn.send(("stop",))
            except (BrokenPipeError, OSError):
                pass
            worker.process.join(5)
            self._replace(worker, None)

    def _replace(self, worker: _Worker, result: EvalResult | None) -> None:
        if result is not None:
            self._done.append(Finished(worker.current, result))
        worker.current = None
        worker.kill()
        self._workers[self._workers.index(worker)] = self._spawn()

    def _enforce_timeout(self) -> None:
        if self._timeout is None:
            return
        now = time.monotonic()
        for worker in list(self._workers):
            if worker.current is not None and worker.started_at is not None and now - worker.started_at > self._timeout:
                self._replace(
                    worker,
                    failed_result(
                        worker.current,
                        f"timed out: still running after trial_timeout={self._timeout:g} s; the worker process was killed",
                    ),
                )
