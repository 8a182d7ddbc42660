"""Faults the README promises to survive (#16): a corrupt journal line, a SIGKILLed runner's
worker processes, resuming with another `n_workers`, resuming with a raised `budget.seconds`.

Cheap problems only (`bbob`, or the toy objective of test_resume.py in real worker processes):
no TensorFlow, seconds per test.
"""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

from harness.errors import HarnessError
from harness.results import RUN_FILE, TRIALS_FILE, read_results
from harness.runner import JOURNAL_FILE, Runner, RunInterrupted
from test_resume import ToyObjective, _bbob_settings, rows, settings

BBOB = ["problem=bbob", "problem.function=1", "problem.dimension=2", "progress=false"]


def _digest(folder: Path) -> dict[str, str]:
    """The bytes of every file of a run folder, to check that nothing was touched."""
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.iterdir()) if p.is_file()}


def _corrupt_line(journal: Path, lineno: int, text: bytes) -> None:
    lines = journal.read_bytes().splitlines(keepends=True)
    assert len(lines) > lineno  # not the last line: a torn last line is cut off instead (test_resume)
    lines[lineno - 1] = text + b"\n"
    journal.write_bytes(b"".join(lines))


# -- 1. a corrupt journal line that is not the last one -------------------------------------------
# The promise (harness.store.read_journal, README "Bad input never shows a traceback"): resume
# stops with one `error:` line naming the journal and the line, exit status 2, and touches no
# file, so nothing recorded is lost; `overwrite=true` is the way to start over.
def test_a_corrupt_journal_line_in_the_middle_stops_the_harness_command_with_one_error(tmp_path, harness_cmd, subprocess_env):
    cmd = harness_cmd + BBOB + ["strategy=tpe", "experiment=j"]
    first = subprocess.run(
        cmd + ["budget.trials=5"], cwd=tmp_path, env=subprocess_env, capture_output=True, text=True, timeout=60
    )
    assert first.returncode == 0, first.stderr[-2000:]
    (run,) = [p for p in (tmp_path / "results" / "j").iterdir() if p.is_dir() and not p.name.startswith(".")]
    journal = run / JOURNAL_FILE
    _corrupt_line(journal, 3, b'{"tell": 1, garbage')
    before = _digest(run)

    again = subprocess.run(
        cmd + ["budget.trials=8"], cwd=tmp_path, env=subprocess_env, capture_output=True, text=True, timeout=60
    )
    assert again.returncode == 2, again.stderr[-2000:]
    assert "Traceback" not in again.stderr
    (line,) = [x for x in again.stderr.splitlines() if x.strip()]
    assert line.startswith("error: cannot resume: ")
    assert str(journal) in line and "line 3 is corrupt" in line and "overwrite=true" in line
    assert _digest(run) == before  # the rows, the journal and _run.json are as they were
    assert len(read_results(run / TRIALS_FILE)) == 5


@pytest.mark.parametrize(
    "bad",
    [
        b'{"tell": 1, garbage',  # not JSON
        b"\x00" * 24,  # a block of zeros (a crash on some filesystems)
        b'{"tell": 1}{"ask": 1, "ids": [2]}',  # two events glued together
        b"42",  # JSON, but not an event: these used to crash
        b"null",  # replay with a TypeError / KeyError / ValueError
        b'{"ask": 1}',  # traceback instead of this error
        b'{"tell": "x"}',
        b'{"report": 1, "step": "a", "value": 0.5}',
    ],
)
def test_a_corrupt_journal_line_in_the_middle_stops_resume_naming_the_line(tmp_path, bad):
    s = _bbob_settings(tmp_path, "strategy=tpe", "budget.trials=5")
    Runner(s).run()
    _corrupt_line(s.run_dir / JOURNAL_FILE, 4, bad)
    before = _digest(s.run_dir)
    more = _bbob_settings(tmp_path, "strategy=tpe", "budget.trials=8")
    with pytest.raises(HarnessError, match=r"cannot resume: '.*_journal\.jsonl' line 4 is corrupt; .*overwrite=true"):
        Runner(more).run()
    assert _digest(s.run_dir) == before
    fresh = _bbob_settings(tmp_path, "strategy=tpe", "budget.trials=8", "overwrite=true")
    assert Runner(fresh).run().n_trials == 8  # the way out the message names


# -- 2. worker processes die with a SIGKILLed runner ------------------------------------------------
def _children(pid: int) -> list[int]:
    out = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:  # fields: state, ppid, ...
            out.append(int(stat.parent.name))
    return out


def _alive(pid: int) -> bool:
    """Running, not a zombie nobody reaped yet (a container's init may not reap at once)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state not in ("Z", "X")


def _workers(pid: int) -> list[int]:
    found = []
    for child in _children(pid):
        try:
            if b"spawn_main" in Path(f"/proc/{child}/cmdline").read_bytes():
                found.append(child)
        except OSError:
            continue
    return found


@dataclass(frozen=True)
class HangingObjective:
    """Every trial leaves a `started-<id>` file in `folder`, then hangs: a worker that outlived
    its runner would stay busy for 10 minutes, and no closed pipe would tell it to stop."""

    folder: str

    def build(self) -> HangingObjective:
        return self

    def __call__(self, suggestion, report=None):
        (Path(self.folder) / f"started-{suggestion.trial_id}").touch()
        time.sleep(600)


RUN_HANGING = """
import sys
from pathlib import Path
from harness.runner import Runner
from test_faults import HangingObjective
from test_resume import settings
Runner(settings(Path(sys.argv[1]), "n_workers=2", "budget.trials=4"), objective=HangingObjective(sys.argv[1])).run()
"""


def _kill_runner_and_check_its_workers_die(proc, ready) -> None:
    everyone: list[int] = []
    try:
        deadline = time.monotonic() + 60
        while not ready():  # mid-run
            if proc.poll() is not None:
                pytest.fail(f"the run ended early: {proc.stderr.read()[-2000:]}")
            assert time.monotonic() < deadline, "the run did not get going in 60 s"
            time.sleep(0.1)
        everyone = _children(proc.pid)  # the workers, and multiprocessing's resource tracker
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
        deadline = time.monotonic() + 5
        while any(map(_alive, everyone)) and time.monotonic() < deadline:
            time.sleep(0.05)
        survivors = [p for p in everyone if _alive(p)]
        assert not survivors, [Path(f"/proc/{p}/cmdline").read_bytes() for p in survivors]
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)
        proc.stderr.close()
        for pid in everyone:  # ours: leave nothing behind, whatever failed
            if _alive(pid):
                os.kill(pid, signal.SIGKILL)


def test_worker_processes_busy_in_trials_die_with_a_sigkilled_runner(tmp_path, subprocess_env):
    # The workers are inside a trial: only the kernel's parent-death signal can stop them.
    proc = subprocess.Popen(
        [sys.executable, "-c", RUN_HANGING, str(tmp_path)],
        cwd=tmp_path,
        env=subprocess_env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    _kill_runner_and_check_its_workers_die(
        proc, lambda: len(list(tmp_path.glob("started-*"))) == 2 and len(_workers(proc.pid)) == 2
    )


def test_the_harness_commands_workers_die_with_it_when_sigkilled(tmp_path, harness_cmd, subprocess_env):
    # The real command, workers between trials (bbob: microseconds each).
    cmd = (
        harness_cmd
        + BBOB
        + [
            "strategy=random",
            "worker.processes=true",
            "n_workers=2",
            "worker.max_trials=null",  # no recycling: the same two workers throughout
            "budget.trials=null",
            "budget.seconds=120",
            "experiment=k",
        ]
    )
    proc = subprocess.Popen(cmd, cwd=tmp_path, env=subprocess_env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    _kill_runner_and_check_its_workers_die(
        proc, lambda: len(_workers(proc.pid)) == 2 and any((tmp_path / "results").glob("k/*/trials.part-*"))
    )


# -- 3. resuming with another n_workers, or a raised time budget ------------------------------------
def _journal(s) -> list[dict]:
    return [json.loads(line) for line in (s.run_dir / JOURNAL_FILE).read_text().splitlines()]


@pytest.mark.parametrize("before, after", [(1, 2), (2, 1)])
def test_resuming_with_another_number_of_workers_replays_the_strategy_and_duplicates_nothing(tmp_path, before, after):
    tpe = ("strategy=tpe", "+strategy.params.n_startup_trials=3")  # later asks depend on the tells
    s = settings(tmp_path, *tpe, f"n_workers={before}", "budget.trials=9")
    with pytest.raises(RunInterrupted):
        Runner(s, objective=ToyObjective(interrupt_at=4)).run()
    first = rows(s)
    assert 3 <= len(first) < 9 and 4 not in set(first.trial_id)
    events = _journal(s)
    pending = {i for e in events if "ask" in e for i in e["ids"]} - {e["tell"] for e in events if "tell" in e}
    assert 4 in pending and len(pending) <= before  # asked, never told: the resumed run's backlog

    resumed = Runner(settings(tmp_path, *tpe, f"n_workers={after}", "budget.trials=9"), objective=ToyObjective())
    assert resumed.run_dir == s.run_dir  # worker settings are not part of the run identity
    summary = resumed.run()
    assert summary.status == "finished" and summary.n_trials == 9
    df = rows(s)
    assert sorted(df.trial_id) == list(range(9)) and df.status.eq("ok").all()
    assert df.objective.notna().all() and df.params.map(json.loads).map(len).eq(4).all()
    assert df.set_index("trial_id").loc[list(first.trial_id), "params"].tolist() == first.params.tolist()
    events = _journal(s)
    asked = [i for e in events if "ask" in e for i in e["ids"]]
    told = [e["tell"] for e in events if "tell" in e]
    assert sorted(asked) == sorted(told) == list(range(9))  # each asked once, told once
    status = json.loads((s.run_dir / RUN_FILE).read_text())
    assert [x["n_workers"] for x in status["sessions"]] == [before, after]
    assert [x["workers_started"] for x in status["sessions"]] == [before, after]
    assert [x["status"] for x in status["sessions"]] == ["interrupted", "finished"]

    # The journal left by the mixed sessions replays into the state the live strategy ended in,
    # and extends again under yet another worker count.
    replayed = Runner(s, objective=ToyObjective())
    replayed._load_previous()
    assert replayed._resume() == []
    assert replayed.strategy.ask(2) == resumed.strategy.ask(2)
    more = settings(tmp_path, *tpe, f"n_workers={before}", "budget.trials=12")
    assert Runner(more, objective=ToyObjective()).run().n_trials == 12
    assert sorted(rows(s).trial_id) == list(range(12))


def test_raising_budget_seconds_continues_a_run_its_time_budget_finished(tmp_path):
    # budget.seconds is the run's own clock over all its sessions (rows' elapsed_seconds carry
    # it), not per invocation: a resumed run goes on from where the last one stopped.
    s = _bbob_settings(tmp_path, "strategy=random", "budget.trials=null", "budget.seconds=0.3")
    first = Runner(s).run()
    assert first.status == "finished" and first.stop_reason == "time budget of 0.3 s reached"
    old = rows(s)
    n = len(old)
    assert n > 0 and sorted(old.trial_id) == list(range(n))

    again = Runner(s).run()  # the same budget: nothing to do
    assert again.already_complete and again.n_trials == n

    # The run's clock stops when its loop ends (final writes are not run time; see the next test).
    more = _bbob_settings(tmp_path, "strategy=random", "budget.trials=null", "budget.seconds=1.5")
    summary = Runner(more).run()
    assert not summary.already_complete and summary.stop_reason == "time budget of 1.5 s reached"
    df = rows(s)
    assert len(df) == summary.n_trials > n and sorted(df.trial_id) == list(range(len(df)))
    assert df.iloc[:n].params.tolist() == old.params.tolist()  # the first session's rows kept
    new = df.iloc[n:]
    # The clock went on from the first session's end, and stopped at the raised budget.
    assert new.elapsed_seconds.min() >= old.elapsed_seconds.max()
    assert new.elapsed_seconds.min() < 1.5 and new.elapsed_seconds.max() < 1.5 + 0.25  # one budget in all
    status = json.loads((s.run_dir / RUN_FILE).read_text())
    assert [x["status"] for x in status["sessions"]] == ["finished", "finished"]
    assert status["elapsed_seconds"] >= 1.5


def test_raising_budget_seconds_continues_a_run_whose_final_writes_were_slow(tmp_path, monkeypatch):
    from harness.store import RunStore

    merge = RunStore.merge_parts

    def slow_merge(self):  # a slow disk, or a fresh process importing the Parquet writer
        time.sleep(1.0)
        merge(self)

    monkeypatch.setattr(RunStore, "merge_parts", slow_merge)
    s = _bbob_settings(tmp_path, "strategy=random", "budget.trials=null", "budget.seconds=0.3")
    first = Runner(s).run()
    monkeypatch.setattr(RunStore, "merge_parts", merge)
    assert first.stop_reason == "time budget of 0.3 s reached"
    more = _bbob_settings(tmp_path, "strategy=random", "budget.trials=null", "budget.seconds=0.6")
    summary = Runner(more).run()
    assert not summary.already_complete and summary.n_trials > first.n_trials
    assert summary.stop_reason == "time budget of 0.6 s reached"
