"""`worker.backend=ray` on a real local Ray: the evaluator contract of tests/test_workers.py with
actors instead of worker processes, runs with two actors, an actor killed mid-trial, and a
`harness` command stopped with SIGTERM and resumed.

The module starts one local Ray instance (2 CPUs, token auth off, its files in a temporary
folder) and stops it at the end; the evaluators here join it, as any process where Ray is
already initialised does. The `harness` subprocesses start (and stop) their own. Skipped when
Ray (the `[ray]` extra) is not installed; CI installs it.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

ray = pytest.importorskip("ray", reason='Ray is not installed (the [ray] extra: pip install -e ".[ray]")')

from harness.errors import HarnessError  # noqa: E402
from harness.objective import TrialResult  # noqa: E402
from harness.ray_workers import RayEvaluator  # noqa: E402
from harness.results import RUN_FILE, read_results  # noqa: E402
from harness.runner import JOURNAL_FILE, Runner, RunInterrupted  # noqa: E402
from harness.strategy import Suggestion, TrialStatus  # noqa: E402
from test_resume import config, settings  # noqa: E402
from test_workers import DyingOnTrials, ToyProblem, run_all, sug  # noqa: E402

TESTS_DIR = Path(__file__).parent


def ray_env(base: dict[str, str], tmp: str) -> dict[str, str]:
    """No auth token written under ~/.ray, Ray's files under `tmp`, tests/ importable in actors."""
    env = dict(base)
    env["RAY_AUTH_MODE"] = "disabled"
    env["RAY_TMPDIR"] = tmp
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(TESTS_DIR), base.get("PYTHONPATH")]))
    env.pop("RAY_ADDRESS", None)
    return env


@pytest.fixture(scope="module", autouse=True)
def local_ray():
    # A short folder: Ray's socket paths must fit in 107 characters.
    tmp = tempfile.mkdtemp(prefix="ray-", dir="/tmp")
    saved = dict(os.environ)
    os.environ.clear()
    os.environ.update(ray_env(saved, tmp))  # read by the Ray processes started now
    try:
        ray.init(
            address="local",
            num_cpus=2,
            include_dashboard=False,
            log_to_driver=False,
            logging_level=logging.WARNING,
            _temp_dir=tmp,
        )
        yield tmp
    finally:
        ray.shutdown()
        os.environ.clear()
        os.environ.update(saved)
        shutil.rmtree(tmp, ignore_errors=True)


# -- the evaluator ------------------------------------------------------------------------------
def test_actors_are_recycled_after_max_trials():
    with RayEvaluator(ToyProblem(), n_workers=1, max_trials=2) as ev:
        out = run_all(ev, [sug(i, do="pid") for i in range(5)])
        started = ev.started
    pids = [out[i].objective for i in range(5)]
    assert pids[0] == pids[1] != pids[2] == pids[3] != pids[4]
    assert started == 3


def test_actors_are_recycled_when_their_memory_grows_past_the_limit():
    with RayEvaluator(ToyProblem(), n_workers=1, max_trials=None, max_memory_growth_mb=50) as ev:
        out = run_all(ev, [sug(i, do="hoard", mb=20) for i in range(6)])
    pids = [out[i].objective for i in range(6)]
    assert pids[0] == pids[1] == pids[2] == pids[3] != pids[4] == pids[5]


def test_an_actor_that_dies_in_a_trial_gives_a_failed_row_and_the_run_goes_on():
    with RayEvaluator(ToyProblem(), n_workers=1, max_trials=None) as ev:
        out = run_all(ev, [sug(0), sug(1, do="kill"), sug(2, do="abort"), sug(3, x=0.75), sug(4, do="raise")])
    assert out[0].status.value == "ok"
    for tid in (1, 2):
        assert out[tid].status.value == "failed" and "the Ray actor died" in out[tid].error, out[tid].error
        assert "worker process has died" in out[tid].error
    assert out[3].status.value == "ok" and out[3].objective == 0.75
    assert out[4].status.value == "failed" and "ValueError: bad shapes" in out[4].error


def test_an_actor_killed_from_outside_mid_trial_gives_a_failed_row():
    with RayEvaluator(ToyProblem(), n_workers=2, max_trials=None) as ev:
        ev.submit(sug(0, do="hang"))
        ev.submit(sug(1, do="sleep", seconds=3.0))
        deadline = time.monotonic() + 60
        while None in ev.pids and time.monotonic() < deadline:
            time.sleep(0.1)
        victim = next(a.pid for a in ev._actors if a.current.trial_id == 0)
        time.sleep(0.5)
        os.kill(victim, signal.SIGKILL)
        first = ev.next_finished()
        assert first.suggestion.trial_id == 0 and first.result.status.value == "failed"
        assert f"pid {victim}" in first.result.error
        assert ev.next_finished().result.status.value == "ok"  # the other actor was untouched
        ev.submit(sug(2, x=0.25))  # and a fresh actor took the dead one's slot
        assert ev.next_finished().result.objective == 0.25


def test_a_hung_trial_is_killed_at_the_timeout_and_marked_failed():
    with RayEvaluator(ToyProblem(), n_workers=1, trial_timeout=1.0) as ev:
        t0 = time.monotonic()
        out = run_all(ev, [sug(0, do="hang"), sug(1, x=0.5)])
        took = time.monotonic() - t0
    assert out[0].status.value == "failed" and "timed out" in out[0].error and "trial_timeout=1" in out[0].error
    assert out[1].status.value == "ok"
    assert took < 30


def test_two_actors_run_trials_in_parallel():
    with RayEvaluator(ToyProblem(), n_workers=2) as ev:
        run_all(ev, [sug(0, do="pid"), sug(1, do="pid")])
        out = run_all(ev, [sug(2, do="sleep", seconds=1.0), sug(3, do="sleep", seconds=1.0)])
    a, b = out[2].metrics, out[3].metrics
    assert a["pid"] != b["pid"]
    assert max(a["start"], b["start"]) < min(a["end"], b["end"])


def test_per_step_reports_reach_the_strategy_and_its_answer_comes_back():
    seen = []

    def reporter(trial_id, step, value):
        seen.append((trial_id, step, value))
        return trial_id == 1

    with RayEvaluator(ToyProblem(), n_workers=1, reporter=reporter) as ev:
        out = run_all(ev, [sug(0, do="report"), sug(1, do="report")])
    assert seen == [(0, 1, 0.25), (1, 1, 0.25)]
    assert out[0].status.value == "ok" and out[1].status.value == "pruned"


def test_a_configuration_error_in_an_actor_stops_the_run_with_its_message():
    ev = RayEvaluator(ToyProblem(), n_workers=1)
    ev.submit(sug(0, do="fatal"))
    with pytest.raises(HarnessError, match="cannot be imported"):
        ev.next_finished()
    ev.close()


class DiesInSetup(ToyProblem):
    """Its setup kills its process (`kill`) or raises (`raise`): no actor can ever start."""

    def __init__(self, how: str):
        self.how = how

    def setup(self) -> None:
        if self.how == "kill":
            os.kill(os.getpid(), signal.SIGKILL)
        raise ImportError("No module named 'tensorflow'")


def test_actors_that_cannot_set_up_stop_the_run_with_one_error_not_failed_rows():
    with RayEvaluator(DiesInSetup("raise"), n_workers=1) as ev:
        ev.submit(sug(0))
        with pytest.raises(HarnessError, match="a Ray actor could not set up problem 'toy': ImportError: No module"):
            ev.next_finished()
    with RayEvaluator(DiesInSetup("kill"), n_workers=1) as ev:
        ev.submit(sug(0))
        # The trial is not failed: it goes to a fresh actor, until 3 actors died before setting up.
        with pytest.raises(HarnessError, match=r"Ray actors could not start \(3 died before setting up problem 'toy'\)"):
            ev.next_finished()
        assert ev.started == 3


def test_close_abandons_running_trials_and_leaves_no_actor():
    ev = RayEvaluator(ToyProblem(), n_workers=2)
    ev.submit(sug(0, do="hang"))
    deadline = time.monotonic() + 60
    while None in ev.pids and time.monotonic() < deadline:
        time.sleep(0.1)
    pids = ev.pids
    ev.close()
    assert ray.is_initialized()  # a Ray instance it did not start is left running
    deadline = time.monotonic() + 10
    while any(_alive(pid) for pid in pids) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not any(_alive(pid) for pid in pids)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


NODE_DEATH = """
import os, sys, time
from ray.cluster_utils import Cluster
from harness.ray_workers import RayEvaluator
from test_workers import ToyProblem, sug

cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 0, "include_dashboard": False})
nodes = [cluster.add_node(num_cpus=1) for _ in range(2)]
cluster.wait_for_nodes()
ev = RayEvaluator(ToyProblem(), n_workers=2, max_trials=None, address=cluster.address)
ev.submit(sug(0, do="hang"))
ev.submit(sug(1, do="sleep", seconds=4.0))
deadline = time.monotonic() + 60
while None in ev.pids and time.monotonic() < deadline:
    time.sleep(0.1)
victim = next(a.pid for a in ev._actors if a.current.trial_id == 0)
raylet = int(open(f"/proc/{victim}/stat").read().rsplit(")", 1)[1].split()[1])  # its node's raylet
cluster.remove_node(next(n for n in nodes if n.all_processes["raylet"][0].process.pid == raylet))
for _ in range(2):
    done = ev.next_finished()
    print("ROW", done.suggestion.trial_id, done.result.status.value, done.result.error, flush=True)
cluster.add_node(num_cpus=1)  # room for the fresh actor
ev.submit(sug(2, x=0.25))
done = ev.next_finished()
print("ROW", done.suggestion.trial_id, done.result.status.value, done.result.objective, flush=True)
ev.close()
cluster.shutdown()
"""


@pytest.mark.slow  # a subprocess starting Ray of its own
def test_a_node_lost_mid_trial_gives_a_failed_row_and_the_run_goes_on(tmp_path, subprocess_env):
    """A cluster of two one-CPU nodes (Ray's own test cluster, in a subprocess: this module's Ray
    instance is already initialised here); the node running trial 0 is removed mid-trial."""
    ray_tmp = tempfile.mkdtemp(prefix="rayn-", dir="/tmp")
    try:
        proc = subprocess.run(
            [sys.executable, "-c", NODE_DEATH],
            cwd=tmp_path,
            env=ray_env(subprocess_env, ray_tmp),
            capture_output=True,
            text=True,
            timeout=180,
        )
    finally:
        shutil.rmtree(ray_tmp, ignore_errors=True)
    rows = [line.split(" ", 3)[1:] for line in proc.stdout.splitlines() if line.startswith("ROW ")]
    assert proc.returncode == 0 and len(rows) == 3, proc.stdout[-2000:] + proc.stderr[-3000:]
    lost = next(r for r in rows if r[0] == "0")
    assert lost[1] == "failed" and "the Ray actor died" in lost[2] and "its node has died" in lost[2], lost
    assert next(r for r in rows if r[0] == "1")[1] == "ok"  # the trial on the other node finished
    assert rows[2] == ["2", "ok", "0.25"]  # and a fresh actor took the lost one's slot


# -- runs -------------------------------------------------------------------------------------
def _rows(run_dir):
    df = read_results(run_dir).sort_values("trial_id").reset_index(drop=True)
    return df[["trial_id", "status", "params", "objective"]]


def test_two_ray_actors_give_the_rows_of_two_local_worker_processes(tmp_path):
    from harness.settings import settings_from_config

    over = ["problem=bbob", "problem.function=7", "strategy=random", "budget.trials=12", "n_workers=2"]
    on_ray = settings_from_config(config(tmp_path / "ray", *over, "worker.backend=ray"))
    local = settings_from_config(config(tmp_path / "local", *over, "worker.processes=true"))
    assert on_ray.worker_processes and on_ray.worker_backend == "ray" and on_ray.run_id == local.run_id
    runner = Runner(on_ray)
    summary = runner.run()
    assert summary.status == "finished" and summary.n_trials == 12 and summary.n_failed == 0
    assert runner.workers_started == 2  # two actors, each set up once
    Runner(local).run()
    pd_ray, pd_local = _rows(on_ray.run_dir), _rows(local.run_dir)
    assert pd_ray.equals(pd_local)


def test_an_actor_killed_mid_trial_is_a_failed_row_and_the_run_reaches_its_budget(tmp_path):
    s = settings(tmp_path, "budget.trials=5", "n_workers=2", "worker.backend=ray", "worker.trial_timeout=3")
    summary = Runner(s, objective=DyingOnTrials(kill=(1,), hang=(2,))).run()
    assert summary.status == "finished" and summary.n_trials == 5 and summary.n_failed == 2
    df = read_results(s.run_dir).set_index("trial_id")
    assert df.loc[1, "status"] == "failed" and "the Ray actor died" in df.loc[1, "error"]
    assert df.loc[2, "status"] == "failed" and "timed out" in df.loc[2, "error"] and "Ray actor" in df.loc[2, "error"]
    assert list(df.loc[[0, 3, 4], "status"]) == ["ok", "ok", "ok"]


@dataclass(frozen=True)
class ReportsEpochs:
    """Toy objective that reports every epoch (as Keras training does), for pruning strategies."""

    def build(self) -> ReportsEpochs:
        return self

    def __call__(self, suggestion: Suggestion, report=None) -> TrialResult:
        p = suggestion.params
        final = p["n_neurons"] / 256 - abs(p["n_hidden"] - 3) / 10
        epochs = suggestion.budget or 10
        for epoch in range(1, epochs + 1):
            value = final * epoch / epochs
            if report is not None and report(epoch, value):
                return TrialResult(
                    TrialStatus.PRUNED, value, val_accuracy=value, test_accuracy=value, budget_epochs=epoch, epochs_trained=epoch
                )
        return TrialResult(
            TrialStatus.OK, final, val_accuracy=final, test_accuracy=final, budget_epochs=epochs, epochs_trained=epochs
        )


def test_a_pruning_strategy_on_ray_prunes_the_trials_it_prunes_locally(tmp_path):
    over = ("strategy=asha", "budget.trials=12")
    on_ray = settings(tmp_path / "ray", *over, "worker.backend=ray")
    local = settings(tmp_path / "local", *over)
    Runner(on_ray, objective=ReportsEpochs()).run()
    Runner(local, objective=ReportsEpochs()).run()
    ray_rows, local_rows = _rows(on_ray.run_dir), _rows(local.run_dir)
    assert (ray_rows.status == "pruned").sum() >= 3
    assert ray_rows.equals(local_rows)
    journal = [json.loads(line) for line in (on_ray.run_dir / JOURNAL_FILE).read_text().splitlines()]
    assert sum("report" in e for e in journal) > 12  # every epoch's report reached the strategy


@dataclass(frozen=True)
class SignalsTheRunner:
    """Toy objective (test_resume.ToyObjective's values) whose trial `interrupt_at` sends SIGTERM
    to the runner's process (given: an actor's parent is Ray's, not the runner) and hangs."""

    runner_pid: int
    interrupt_at: int | None = None

    def build(self) -> SignalsTheRunner:
        return self

    def __call__(self, suggestion: Suggestion, report=None) -> TrialResult:
        if suggestion.trial_id == self.interrupt_at:
            os.kill(self.runner_pid, signal.SIGTERM)
            time.sleep(600)
        time.sleep(0.05 * (suggestion.trial_id % 3))
        p = suggestion.params
        value = p["n_neurons"] / 256 - abs(p["n_hidden"] - 3) / 10
        return TrialResult(TrialStatus.OK, value, val_accuracy=value, test_accuracy=value, budget_epochs=1, epochs_trained=1)


def test_an_interrupted_run_on_ray_resumes_and_replays_the_strategy(tmp_path):
    over = ("strategy=tpe", "+strategy.params.n_startup_trials=3", "n_workers=2", "budget.trials=9", "worker.backend=ray")
    s = settings(tmp_path, *over)
    with pytest.raises(RunInterrupted):
        Runner(s, objective=SignalsTheRunner(os.getpid(), interrupt_at=5)).run()
    first = read_results(s.run_dir)
    assert 3 <= len(first) < 9 and 5 not in set(first.trial_id)
    resumed = Runner(s, objective=SignalsTheRunner(os.getpid()))
    assert resumed.run().status == "finished"
    df = read_results(s.run_dir)
    assert sorted(df.trial_id) == list(range(9))
    status = json.loads((s.run_dir / RUN_FILE).read_text())
    assert [x["status"] for x in status["sessions"]] == ["interrupted", "finished"]
    replayed = Runner(s, objective=SignalsTheRunner(os.getpid()))
    replayed._load_previous()
    assert replayed._resume() == []
    assert replayed.strategy.ask(2) == resumed.strategy.ask(2)


# -- the command: SIGTERM, then the same command again ----------------------------------------
COMMAND = [
    "problem=sklearn",
    "problem.model=rf",
    "dataset=digits",
    "strategy=random",
    "budget.trials=10",
    "n_workers=2",
    "worker.backend=ray",
    "progress=false",
    "experiment=ray_term",
]


def _run_dir(tmp_path: Path) -> Path | None:
    found = [p for p in (tmp_path / "results" / "ray_term").glob("*") if p.is_dir() and not p.name.startswith(".")]
    return found[0] if found else None


def _ray_processes(folder: str) -> list[str]:
    """Processes of a Ray instance whose files are under `folder` (their command lines name it)."""
    out = subprocess.run(["pgrep", "-af", folder], capture_output=True, text=True).stdout.splitlines()
    return [line for line in out if "pgrep" not in line]


@pytest.mark.slow  # a subprocess starting Ray of its own
def test_sigterm_while_ray_starts_still_saves_the_run_as_interrupted(tmp_path, harness_cmd, subprocess_env):
    ray_tmp = tempfile.mkdtemp(prefix="rays-", dir="/tmp")
    try:
        proc = subprocess.Popen(
            harness_cmd + COMMAND, cwd=tmp_path, env=ray_env(subprocess_env, ray_tmp), stderr=subprocess.PIPE, text=True
        )
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and (_run_dir(tmp_path) is None or not (_run_dir(tmp_path) / RUN_FILE).exists()):
            time.sleep(0.05)
        assert proc.poll() is None
        time.sleep(0.5)  # the evaluator is starting Ray (about 5 s), whose own handler would exit with 15
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=60)
        assert proc.returncode == 128 + signal.SIGTERM, err[-3000:]
        assert "interrupted by SIGTERM" in err and "Traceback" not in err
        status = json.loads((_run_dir(tmp_path) / RUN_FILE).read_text())
        assert status["status"] == "interrupted" and "SIGTERM" in status["stop_reason"]
        deadline = time.monotonic() + 20
        while _ray_processes(ray_tmp) and time.monotonic() < deadline:
            time.sleep(0.5)
        assert not _ray_processes(ray_tmp)
    finally:
        shutil.rmtree(ray_tmp, ignore_errors=True)


@pytest.mark.slow  # a subprocess starting Ray of its own
def test_sigterm_interrupts_a_ray_run_and_the_same_command_resumes_it(tmp_path, harness_cmd, subprocess_env):
    import pyarrow.parquet as pq

    ray_tmp = tempfile.mkdtemp(prefix="rayc-", dir="/tmp")
    env = ray_env(subprocess_env, ray_tmp)
    try:
        proc = subprocess.Popen(harness_cmd + COMMAND, cwd=tmp_path, env=env, stderr=subprocess.PIPE, text=True)
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            folder = _run_dir(tmp_path)
            if folder is not None and sum(pq.read_metadata(p).num_rows for p in folder.glob("*.parquet")) >= 2:
                break
            if proc.poll() is not None:
                pytest.fail(f"harness ended early: {proc.stderr.read()[-3000:]}")
            time.sleep(0.2)
        else:
            proc.kill()
            pytest.fail("no 2 rows after 120 s")
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=60)
        assert proc.returncode == 128 + signal.SIGTERM, err[-3000:]
        assert "interrupted by SIGTERM" in err and "rerun the same command to resume" in err
        run_dir = _run_dir(tmp_path)
        status = json.loads((run_dir / RUN_FILE).read_text())
        assert status["status"] == "interrupted" and 2 <= status["n_trials"] < 10
        before = _rows(run_dir)
        assert len(before) == status["n_trials"] and not list(run_dir.glob("trials.part-*"))
        deadline = time.monotonic() + 20  # the Ray instance it started went with it
        while _ray_processes(ray_tmp) and time.monotonic() < deadline:
            time.sleep(0.5)
        assert not _ray_processes(ray_tmp)

        again = subprocess.run(harness_cmd + COMMAND, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=240)
        assert again.returncode == 0, again.stderr[-3000:]
        after = _rows(run_dir)
        assert list(after.trial_id) == list(range(10))  # none lost, none duplicated
        assert after.set_index("trial_id").loc[list(before.trial_id)].reset_index().equals(before)
        status = json.loads((run_dir / RUN_FILE).read_text())
        assert [x["status"] for x in status["sessions"]] == ["interrupted", "finished"]
        assert (run_dir / JOURNAL_FILE).exists()
    finally:
        shutil.rmtree(ray_tmp, ignore_errors=True)

    # The same rows as the run uninterrupted (in the test's process: the trials are deterministic).
    plain = config(tmp_path / "plain", *[c for c in COMMAND if "worker.backend" not in c and "n_workers" not in c])
    from harness.settings import settings_from_config

    reference = settings_from_config(plain)
    assert reference.run_id == run_dir.name
    Runner(reference).run()
    assert _rows(reference.run_dir).equals(after)
