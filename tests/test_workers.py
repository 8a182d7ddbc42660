"""Evaluators without TensorFlow: worker processes, recycling, death, timeouts, reports.

The problem here is a toy (milliseconds per trial), pickled to each spawned worker and set up
there exactly as the Keras problem is; `tests/` is on the workers' sys.path.
"""

from __future__ import annotations

import os
import signal
import time
from dataclasses import dataclass

import pytest

from harness.errors import HarnessError
from harness.objective import TrialResult
from harness.problem import EvalResult
from harness.strategy import Suggestion, TrialStatus
from harness.workers import InProcessEvaluator, ProcessEvaluator


HOARD: list[bytearray] = []


class ToyProblem:
    """Behaviour chosen by `params["do"]`; the value is `params["x"]`."""

    name = "toy"

    def setup(self) -> None:
        pass

    def evaluate(self, suggestion: Suggestion, report=None) -> EvalResult:
        p = suggestion.params
        do = p.get("do", "ok")
        if do == "kill":
            os.kill(os.getpid(), signal.SIGKILL)
        elif do == "abort":
            os.abort()
        elif do == "hang":
            time.sleep(600)
        elif do == "raise":
            raise ValueError("bad shapes")
        elif do == "fatal":
            raise HarnessError("builder 'x:y' cannot be imported")
        elif do == "sleep":  # metrics: when it ran, where (for overlap checks)
            start = time.time()
            time.sleep(p.get("seconds", 1.0))
            return EvalResult(TrialStatus.OK, 1.0, metrics={"start": start, "end": time.time(), "pid": os.getpid()})
        elif do == "report":
            stop = report(1, 0.25)
            return EvalResult(TrialStatus.PRUNED if stop else TrialStatus.OK, float(stop))
        elif do == "pid":
            return EvalResult(TrialStatus.OK, float(os.getpid()))
        elif do == "hoard":  # keeps memory after the trial, as TensorFlow does per model
            HOARD.append(bytearray(p["mb"] * 2**20))
            return EvalResult(TrialStatus.OK, float(os.getpid()))
        return EvalResult(TrialStatus.OK, float(p.get("x", 1.0)), budget=1, budget_spent=1)


def sug(trial_id: int, **params) -> Suggestion:
    return Suggestion(trial_id, params)


def run_all(evaluator, suggestions):
    """Submit as slots allow; return results by trial id."""
    todo, out = list(suggestions), {}
    while todo or evaluator.running:
        while todo and len(evaluator.running) < evaluator.slots:
            evaluator.submit(todo.pop(0))
        done = evaluator.next_finished()
        out[done.suggestion.trial_id] = done.result
    return out


def test_in_process_evaluator_records_exceptions_as_failed_rows():
    with InProcessEvaluator(ToyProblem()) as ev:
        out = run_all(ev, [sug(0, x=0.5), sug(1, do="raise")])
    assert out[0].status.value == "ok" and out[0].objective == 0.5
    assert out[1].status.value == "failed" and "ValueError: bad shapes" in out[1].error


def test_workers_are_recycled_after_max_trials():
    with ProcessEvaluator(ToyProblem(), n_workers=1, max_trials=2) as ev:
        out = run_all(ev, [sug(i, do="pid") for i in range(5)])
        started = ev.started
    pids = [out[i].objective for i in range(5)]
    assert pids[0] == pids[1] != pids[2] == pids[3] != pids[4]
    assert started == 3  # the first, then a fresh one after trials 2 and 4


def test_workers_are_recycled_when_their_memory_grows_past_the_limit():
    with ProcessEvaluator(ToyProblem(), n_workers=1, max_trials=None, max_memory_growth_mb=50) as ev:
        out = run_all(ev, [sug(i, do="hoard", mb=20) for i in range(6)])
        started = ev.started
    pids = [out[i].objective for i in range(6)]
    # Growth counts from the end of a worker's first trial: 20, 40, then 60 MB > 50 MB after its
    # fourth trial, so a fresh worker takes the fifth.
    assert pids[0] == pids[1] == pids[2] == pids[3] != pids[4] == pids[5]
    assert started == 2


def test_a_killed_or_aborted_worker_gives_a_failed_row_and_the_run_goes_on():
    with ProcessEvaluator(ToyProblem(), n_workers=1, max_trials=None) as ev:
        out = run_all(ev, [sug(0), sug(1, do="kill"), sug(2, do="abort"), sug(3, x=0.75)])
    assert out[0].status.value == "ok"
    assert out[1].status.value == "failed" and "SIGKILL" in out[1].error and "out of memory" in out[1].error
    assert out[2].status.value == "failed" and "SIGABRT" in out[2].error
    assert out[3].status.value == "ok" and out[3].objective == 0.75


def test_a_hung_trial_is_killed_at_the_timeout_and_marked_failed():
    with ProcessEvaluator(ToyProblem(), n_workers=1, trial_timeout=1.0) as ev:
        t0 = time.monotonic()
        out = run_all(ev, [sug(0, do="hang"), sug(1, x=0.5)])
        took = time.monotonic() - t0
    assert out[0].status.value == "failed" and "timed out" in out[0].error and "trial_timeout=1" in out[0].error
    assert out[1].status.value == "ok"
    assert took < 30


def test_two_workers_run_trials_in_parallel():
    with ProcessEvaluator(ToyProblem(), n_workers=2) as ev:
        run_all(ev, [sug(0, do="pid"), sug(1, do="pid")])  # both workers are up
        out = run_all(ev, [sug(2, do="sleep", seconds=1.0), sug(3, do="sleep", seconds=1.0)])
    assert all(r.status.value == "ok" for r in out.values())
    a, b = out[2].metrics, out[3].metrics
    # Two processes, and the two trials' sleeps overlap in time (sequential ones would not).
    assert a["pid"] != b["pid"]
    assert max(a["start"], b["start"]) < min(a["end"], b["end"])


def test_per_epoch_reports_reach_the_strategy_and_its_answer_comes_back():
    seen = []

    def reporter(trial_id, epoch, value):
        seen.append((trial_id, epoch, value))
        return trial_id == 1  # prune trial 1 only

    with ProcessEvaluator(ToyProblem(), n_workers=1, reporter=reporter) as ev:
        out = run_all(ev, [sug(0, do="report"), sug(1, do="report")])
    assert seen == [(0, 1, 0.25), (1, 1, 0.25)]
    assert out[0].status.value == "ok" and out[1].status.value == "pruned"


def test_a_configuration_error_in_a_worker_stops_the_run_with_its_message():
    ev = ProcessEvaluator(ToyProblem(), n_workers=1)
    ev.submit(sug(0, do="fatal"))
    with pytest.raises(HarnessError, match="cannot be imported"):
        ev.next_finished()
    ev.close()


def test_close_abandons_running_trials_and_leaves_no_process():
    ev = ProcessEvaluator(ToyProblem(), n_workers=2)
    ev.submit(sug(0, do="hang"))
    pids = ev.pids
    time.sleep(0.5)
    ev.close()
    for pid in pids:
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)


# -- the runner with worker processes ----------------------------------------------------------
@dataclass(frozen=True)
class DyingOnTrials:
    """Toy objective for the runner: trial ids in `kill` SIGKILL their worker, in `hang` hang."""

    kill: tuple[int, ...] = ()
    hang: tuple[int, ...] = ()

    def build(self) -> DyingOnTrials:
        return self

    def __call__(self, suggestion: Suggestion, report=None) -> TrialResult:
        if suggestion.trial_id in self.kill:
            os.kill(os.getpid(), signal.SIGKILL)
        if suggestion.trial_id in self.hang:
            time.sleep(600)
        return TrialResult(TrialStatus.OK, 0.5, val_accuracy=0.5, test_accuracy=0.5, budget_epochs=1)


def _settings(tmp_path, *overrides):
    from test_resume import settings

    return settings(tmp_path, *overrides)


def test_runner_records_dead_and_hung_trials_as_failed_and_finishes(tmp_path):
    from harness.results import read_results
    from harness.runner import Runner

    s = _settings(tmp_path, "budget.trials=4", "worker.trial_timeout=2")
    summary = Runner(s, objective=DyingOnTrials(kill=(1,), hang=(2,))).run()
    assert summary.status == "finished" and summary.n_trials == 4 and summary.n_failed == 2
    df = read_results(s.run_dir).set_index("trial_id")
    assert df.loc[1, "status"] == "failed" and "SIGKILL" in df.loc[1, "error"]
    assert df.loc[2, "status"] == "failed" and "timed out" in df.loc[2, "error"]
    assert list(df.loc[[0, 3], "status"]) == ["ok", "ok"]


def test_runner_stops_with_a_clear_message_when_trials_fail_everywhere(tmp_path):
    from harness.runner import Runner

    s = _settings(tmp_path, "budget.trials=20", "max_failure_rate=0.5")
    with pytest.raises(HarnessError, match=r"stopping: \d+ of \d+ trials failed, above max_failure_rate=0.5"):
        Runner(s, objective=DyingOnTrials(kill=tuple(range(20)))).run()
    import json

    from harness.results import RUN_FILE

    status = json.loads((s.run_dir / RUN_FILE).read_text())
    assert status["status"] == "failed" and "max_failure_rate" in status["stop_reason"]
