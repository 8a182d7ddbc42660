"""Kill a real `harness` run halfway, re-run the same command: every trial exactly once.

SIGKILL gives the runner no chance to clean up: what survives is what the flushed, atomic
writes put on disk (the rows of a running run are in `trials.part-*.parquet` files until it
ends). SIGTERM (a scheduler's stop, Ctrl-C's cousin) is handled: status `interrupted`, exit 143.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time

import pyarrow.parquet as pq
import pytest

from harness.results import RUN_FILE, TRIALS_FILE, read_results

COMMAND = ["search_space=homl_mlp", "budget.trials=6", "budget.max_epochs=1", "progress=false", "experiment=kill"]


def run_dir(tmp_path):
    found = [p for p in (tmp_path / "results" / "kill").glob("*") if p.is_dir() and not p.name.startswith(".")]
    return found[0] if found else None


def trials_file(tmp_path):
    return run_dir(tmp_path) / TRIALS_FILE


def wait_for_rows(proc, tmp_path, n: int, timeout: float = 150) -> int:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        folder = run_dir(tmp_path)
        if folder is not None:
            rows = sum(pq.read_metadata(p).num_rows for p in folder.glob("*.parquet"))
            if rows >= n:
                return rows
        if proc.poll() is not None:
            pytest.fail(f"harness ended early: {proc.stderr.read()[-2000:]}")
        time.sleep(0.2)
    pytest.fail(f"no {n} rows after {timeout} s")


@pytest.mark.slow
def test_sigkill_halfway_then_rerun_gives_every_trial_exactly_once(tmp_path, harness_cmd, subprocess_env):
    cmd = harness_cmd + COMMAND + ["n_workers=2"]
    proc = subprocess.Popen(cmd, cwd=tmp_path, env=subprocess_env, stderr=subprocess.PIPE, text=True)
    wait_for_rows(proc, tmp_path, 3)
    proc.send_signal(signal.SIGKILL)
    proc.wait(30)
    before = read_results(run_dir(tmp_path))
    assert 3 <= len(before) < 6 and not trials_file(tmp_path).exists()  # parts only, never merged
    status = json.loads((trials_file(tmp_path).parent / RUN_FILE).read_text())
    assert status["status"] == "running"  # nobody could say otherwise

    again = subprocess.run(cmd, cwd=tmp_path, env=subprocess_env, capture_output=True, text=True, timeout=180)
    assert again.returncode == 0, again.stderr[-3000:]
    after = read_results(trials_file(tmp_path))
    assert len(after) == 6 and sorted(after.trial_id) == list(range(6))  # none lost, none duplicated
    kept = after.set_index("trial_id").loc[sorted(before.trial_id)]
    assert kept.params.tolist() == before.sort_values("trial_id").params.tolist()
    status = json.loads((trials_file(tmp_path).parent / RUN_FILE).read_text())
    assert status["status"] == "finished" and [s["status"] for s in status["sessions"]] == ["running", "finished"]


@pytest.mark.slow
def test_sigterm_saves_marks_the_run_interrupted_and_exits_143(tmp_path, harness_cmd, subprocess_env):
    proc = subprocess.Popen(harness_cmd + COMMAND, cwd=tmp_path, env=subprocess_env, stderr=subprocess.PIPE, text=True)
    rows = wait_for_rows(proc, tmp_path, 1)
    children = subprocess.run(["pgrep", "-P", str(proc.pid)], capture_output=True, text=True).stdout.split()
    workers = [
        pid
        for pid in children  # not multiprocessing's resource tracker
        if b"spawn_main" in open(f"/proc/{pid}/cmdline", "rb").read()
    ]
    assert workers  # the trial worker process
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=30)
    assert proc.returncode == 128 + signal.SIGTERM
    assert "interrupted by SIGTERM" in err and "rerun the same command to resume" in err
    status = json.loads((trials_file(tmp_path).parent / RUN_FILE).read_text())
    assert status["status"] == "interrupted" and status["ended_at"] and status["n_trials"] >= rows
    assert len(read_results(trials_file(tmp_path))) == status["n_trials"]  # merged on the way out
    assert not list(run_dir(tmp_path).glob("trials.part-*"))
    for pid in map(int, workers):  # the workers went with the runner
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)
