"""Resume: interrupted runs continue where they stopped, with parallel workers too.

These use a toy objective in real worker processes (no TensorFlow) whose trials take different
times, so with two workers trials finish out of order; the Keras end-to-end kill-and-rerun test
is in test_resume_kill.py.
"""

from __future__ import annotations

import json
import os
import signal
import time
from dataclasses import dataclass

import pytest
from hydra import compose, initialize_config_module
from omegaconf import OmegaConf

from harness.errors import HarnessError
from harness.objective import TrialResult
from harness.results import RUN_FILE, TRIALS_FILE, read_results
from harness.runner import JOURNAL_FILE, Runner, RunInterrupted, settings_from_config
from harness.strategy import Suggestion, TrialStatus


def config(tmp_path, *overrides: str) -> dict:
    with initialize_config_module("harness.conf", version_base="1.3"):
        cfg = compose("config", overrides=["search_space=homl_mlp", "progress=false", *overrides])
    plain = OmegaConf.to_container(cfg, resolve=True)
    plain["results_dir"] = str(tmp_path / "results")
    return plain


def settings(tmp_path, *overrides: str):
    return settings_from_config(config(tmp_path, *overrides))


@dataclass(frozen=True)
class ToyObjective:
    """Value from the params; trial time varies with the trial id so finishing is out of order.

    `interrupt_at`: that trial sends SIGTERM to the runner (the worker's parent) and hangs, as a
    user pressing Ctrl-C or a cluster scheduler stopping the job would."""

    interrupt_at: int | None = None

    def build(self) -> ToyObjective:
        return self

    def __call__(self, suggestion: Suggestion, report=None) -> TrialResult:
        if suggestion.trial_id == self.interrupt_at:
            os.kill(os.getppid(), signal.SIGTERM)
            time.sleep(600)
        time.sleep(0.05 * (suggestion.trial_id % 3))
        p = suggestion.params
        value = p["n_neurons"] / 256 - abs(p["n_hidden"] - 3) / 10
        return TrialResult(TrialStatus.OK, value, val_accuracy=value, test_accuracy=value, budget_epochs=1, epochs_trained=1)


def rows(s):
    return read_results(s.run_dir).sort_values("trial_id")


def test_interrupted_parallel_run_resumes_to_the_full_set_and_replays_the_strategy(tmp_path):
    over = ("strategy=tpe", "+strategy.params.n_startup_trials=3", "n_workers=2", "budget.trials=9")
    s = settings(tmp_path, *over)
    with pytest.raises(RunInterrupted) as err:
        Runner(s, objective=ToyObjective(interrupt_at=5)).run()
    assert err.value.signal_name == "SIGTERM"
    status = json.loads((s.run_dir / RUN_FILE).read_text())
    assert status["status"] == "interrupted" and "SIGTERM" in status["stop_reason"]
    first = rows(s)
    assert 3 <= len(first) < 9 and 5 not in set(first.trial_id)

    resumed = Runner(s, objective=ToyObjective())
    summary = resumed.run()
    assert summary.status == "finished"
    df = rows(s)
    assert sorted(df.trial_id) == list(range(9))  # every trial once: none lost, none duplicated
    # Rows recorded before the interruption are kept as they were.
    assert df.set_index("trial_id").loc[list(first.trial_id), "params"].tolist() == first.params.tolist()
    status = json.loads((s.run_dir / RUN_FILE).read_text())
    assert [x["status"] for x in status["sessions"]] == ["interrupted", "finished"]

    # A fresh strategy replayed from the journal is in the state the live one ended in.
    replayed = Runner(s, objective=ToyObjective())
    replayed._load_previous()
    assert replayed._resume() == []
    assert replayed.strategy.ask(2) == resumed.strategy.ask(2)


def test_journal_records_batch_asks_and_out_of_order_tells(tmp_path):
    s = settings(tmp_path, "n_workers=2", "budget.trials=6")
    Runner(s, objective=ToyObjective()).run()
    events = [json.loads(line) for line in (s.run_dir / JOURNAL_FILE).read_text().splitlines()]
    assert events[0] == {"ask": 2, "ids": [0, 1]}
    asked = [i for e in events if "ask" in e for i in e["ids"]]
    told = [e["tell"] for e in events if "tell" in e]
    assert sorted(asked) == sorted(told) == list(range(6))
    assert told == list(rows(s).sort_values("elapsed_seconds").trial_id)


def test_a_finished_run_is_skipped_and_more_budget_extends_it(tmp_path):
    s = settings(tmp_path, "budget.trials=3")
    Runner(s, objective=ToyObjective()).run()
    mtime = (s.run_dir / TRIALS_FILE).stat().st_mtime_ns
    again = Runner(s, objective=ToyObjective()).run()
    assert again.n_trials == 3 and (s.run_dir / TRIALS_FILE).stat().st_mtime_ns == mtime
    more = settings(tmp_path, "budget.trials=5")
    assert more.run_dir == s.run_dir  # budgets are not part of the run identity
    assert Runner(more, objective=ToyObjective()).run().n_trials == 5
    assert sorted(rows(s).trial_id) == list(range(5))
    fresh = settings(tmp_path, "budget.trials=2", "overwrite=true")
    assert Runner(fresh, objective=ToyObjective()).run().n_trials == 2


# SIGKILL in the middle of a write: cut inside the JSON, or just before its newline.
@pytest.mark.parametrize("fragment", ['{"ask": 1, "id', '{"ask": 1, "ids": [7]}'])
def test_a_torn_last_journal_line_is_ignored_and_cut_off(tmp_path, fragment):
    s = settings(tmp_path, "budget.trials=4")
    with pytest.raises(RunInterrupted):
        Runner(s, objective=ToyObjective(interrupt_at=2)).run()
    with open(s.run_dir / JOURNAL_FILE, "a") as fh:
        fh.write(fragment)
    Runner(s, objective=ToyObjective()).run()
    assert sorted(rows(s).trial_id) == [0, 1, 2, 3]
    # The torn fragment is gone, so events appended after it stay readable for the next resume.
    for line in (s.run_dir / JOURNAL_FILE).read_text().splitlines():
        json.loads(line)
    more = settings(tmp_path, "budget.trials=6")
    Runner(more, objective=ToyObjective()).run()
    assert sorted(rows(s).trial_id) == list(range(6))


def test_a_second_process_on_the_same_run_is_refused(tmp_path):
    from harness.runner import RunLock

    s = settings(tmp_path, "budget.trials=2")
    with RunLock(s.run_dir):  # another process running it: a repeated command, a requeued job
        with pytest.raises(HarnessError, match=r"already running \(pid \d+ on"):
            Runner(s, objective=ToyObjective()).run()
    assert not (s.run_dir / TRIALS_FILE).exists()
    assert Runner(s, objective=ToyObjective()).run().n_trials == 2  # free again once released


def test_a_run_finished_by_its_time_budget_is_skipped(tmp_path):
    s = settings(tmp_path, "budget.trials=null", "budget.seconds=0.3")
    first = Runner(s, objective=ToyObjective()).run()
    assert first.status == "finished" and "time budget" in first.stop_reason
    mtime = (s.run_dir / TRIALS_FILE).stat().st_mtime_ns
    again = Runner(s, objective=ToyObjective()).run()
    assert again.n_trials == first.n_trials and (s.run_dir / TRIALS_FILE).stat().st_mtime_ns == mtime
    assert len(json.loads((s.run_dir / RUN_FILE).read_text())["sessions"]) == 1


def test_runs_without_a_journal_replay_sequentially(tmp_path):
    s = settings(tmp_path, "budget.trials=3")
    Runner(s, objective=ToyObjective()).run()
    (s.run_dir / JOURNAL_FILE).unlink()  # a run recorded before the journal existed
    more = settings(tmp_path, "budget.trials=5")
    Runner(more, objective=ToyObjective()).run()
    assert sorted(rows(s).trial_id) == list(range(5))
    # The first resume wrote the journal it reconstructed, so the next resume replays it exactly
    # (it used to fail with a false "not deterministic under its seed").
    again = settings(tmp_path, "budget.trials=7")
    Runner(again, objective=ToyObjective()).run()
    assert sorted(rows(s).trial_id) == list(range(7))


def test_a_corrupt_trials_file_stops_resume_with_its_name(tmp_path):
    s = settings(tmp_path, "budget.trials=2")
    Runner(s, objective=ToyObjective()).run()
    (s.run_dir / TRIALS_FILE).write_bytes(b"PAR1 this is not parquet")
    more = settings(tmp_path, "budget.trials=3")
    with pytest.raises(HarnessError, match="cannot resume.*trials.parquet.*overwrite=true"):
        Runner(more, objective=ToyObjective()).run()


def test_a_corrupt_or_foreign_file_in_a_results_folder_is_named_and_skipped(tmp_path):
    s = settings(tmp_path, "budget.trials=2")
    Runner(s, objective=ToyObjective()).run()
    exp = s.run_dir.parent
    (exp / "broken").mkdir()
    (exp / "broken" / TRIALS_FILE).write_bytes(b"garbage")
    import pandas as pd

    pd.DataFrame({"a": [1]}).to_parquet(exp / "foreign.parquet")
    with pytest.warns(UserWarning) as caught:
        df = read_results(exp)
    messages = " ".join(str(w.message) for w in caught)
    assert "broken" in messages and "foreign.parquet" in messages and "not a harness trials file" in messages
    assert len(df) == 2


def test_in_process_mode_gives_the_same_trials(tmp_path):
    a = settings(tmp_path, "budget.trials=3", "worker.processes=false", "experiment=a")
    b = settings(tmp_path, "budget.trials=3", "experiment=b")
    Runner(a, objective=ToyObjective()).run()
    Runner(b, objective=ToyObjective()).run()
    assert rows(a).params.tolist() == rows(b).params.tolist()
    assert rows(a).objective.tolist() == rows(b).objective.tolist()


def test_worker_settings_are_validated(tmp_path):
    from harness.errors import ConfigError

    with pytest.raises(ConfigError, match="n_workers must be an integer >= 1"):
        settings(tmp_path, "n_workers=0")
    with pytest.raises(ConfigError, match="needs worker processes"):
        settings(tmp_path, "n_workers=2", "worker.processes=false")
    with pytest.raises(ConfigError, match="worker.trial_timeout"):
        settings(tmp_path, "worker.trial_timeout=-1")


@pytest.mark.parametrize(
    "override, phrase",
    [
        ("overwrite=no", "overwrite must be true or false"),  # 'no' is a string; bool('no') is True
        ("progress=off", "progress must be true or false"),
        ("verbose=abc", "verbose must be 0, 1 or 2"),
        ("dataset.split.test=0", "split fractions must satisfy"),
        ("dataset.split.val=0.85", r"val \+ test < 1"),
        ("dataset=mnist dataset.subsample=50", r"subsample must be an integer >= 100"),
    ],
)
def test_flags_and_dataset_settings_are_validated_before_anything_runs(tmp_path, override, phrase):
    from harness.errors import ConfigError

    with pytest.raises(ConfigError, match=phrase):
        settings(tmp_path, *override.split())


def test_where_the_data_files_live_is_not_part_of_the_run_identity(tmp_path, monkeypatch):
    a = settings(tmp_path, "dataset=mnist")
    monkeypatch.setenv("HARNESS_DATA_DIR", str(tmp_path / "elsewhere"))
    b = settings(tmp_path, "dataset=mnist")
    assert a.dataset["cache_dir"] != b.dataset["cache_dir"] and a.run_id == b.run_id
    assert settings(tmp_path, "dataset=mnist", "dataset.subsample=500").run_id != a.run_id
    assert settings(tmp_path, "dataset=mnist", "dataset.split.val=0.85").dataset["split"]["val"] == 0.85  # no test share


def test_run_file_holds_the_provenance_of_the_run(tmp_path):
    s = settings(tmp_path, "budget.trials=2", "seed=3")
    Runner(s, objective=ToyObjective()).run()
    run = json.loads((s.run_dir / RUN_FILE).read_text())
    assert run["status"] == "finished" and run["started_at"] and run["ended_at"]
    assert run["config"]["seed"] == 3 and run["config"]["budget"]["trials"] == 2  # resolved config
    assert run["seeds"]["run"] == 3 and run["seeds"]["strategy"] == 3
    prov = run["provenance"]
    for package in ("tensorflow", "keras", "optuna", "keras-tuner", "deap", "hydra-core"):
        assert prov["packages"][package], package
    assert prov["python"] and prov["cpu"] and "gpu" in prov and "git_revision" in prov
    assert run["sessions"][0]["n_workers"] == 1 and run["sessions"][0]["argv"]


# -- batched writes: what a kill between the two writes of one flush leaves behind -------------
def _bbob_settings(tmp_path, *overrides: str):
    from harness.testing import problem_config

    cfg = problem_config("bbob", "progress=false", *overrides)
    cfg["results_dir"] = str(tmp_path / "results")
    return settings_from_config(cfg)


def test_rows_the_journal_never_asked_for_are_run_again_not_duplicated(tmp_path):
    import shutil

    import pyarrow.parquet as pq

    s = _bbob_settings(tmp_path, "budget.trials=6")
    Runner(s).run()
    reference = rows(s)
    # A kill after a flush wrote its rows but before its journal lines: rows of trials 4 and 5
    # are on disk as a part file, their asks and tells are not in the journal.
    table = pq.read_table(s.run_dir / TRIALS_FILE)
    pq.write_table(table.slice(0, 4), s.run_dir / TRIALS_FILE)
    pq.write_table(table.slice(4), s.run_dir / "trials.part-000001.parquet")
    lines = (s.run_dir / JOURNAL_FILE).read_text().splitlines(keepends=True)
    kept = lines[: next(i for i, line in enumerate(lines) if '"ask"' in line and "4" in line.split("ids")[1])]
    (s.run_dir / JOURNAL_FILE).write_text("".join(kept))
    run_file = json.loads((s.run_dir / RUN_FILE).read_text())
    (s.run_dir / RUN_FILE).write_text(json.dumps({**run_file, "status": "running"}))
    summary = Runner(s).run()
    after = rows(s)
    assert summary.n_trials == 6 and sorted(after.trial_id) == list(range(6))
    assert not list(s.run_dir.glob("trials.part-*"))  # merged into one file
    # Replayed and re-run deterministically: the same params and values as the uninterrupted run.
    assert after.sort_values("trial_id").params.tolist() == reference.sort_values("trial_id").params.tolist()
    shutil.rmtree(s.run_dir)


def test_a_merge_killed_before_deleting_its_parts_leaves_no_duplicates(tmp_path):
    import pyarrow.parquet as pq

    s = _bbob_settings(tmp_path, "budget.trials=5")
    Runner(s).run()
    table = pq.read_table(s.run_dir / TRIALS_FILE)
    pq.write_table(table.slice(3), s.run_dir / "trials.part-000007.parquet")  # already merged
    more = _bbob_settings(tmp_path, "budget.trials=8")
    assert Runner(more).run().n_trials == 8
    assert sorted(rows(s).trial_id) == list(range(8))


def test_version_1_trial_files_are_read_as_version_2(tmp_path):
    """A results folder written by the first, Keras-only releases still reads and reports."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from harness.report import build

    run = tmp_path / "old" / "random_mlp_diabetes_s0_abcd1234"
    run.mkdir(parents=True)
    v1 = pa.table(
        {
            "schema_version": pa.array([1, 1], pa.int32()),
            "experiment": ["old", "old"],
            "run_id": [run.name] * 2,
            "strategy": ["random"] * 2,
            "search_space": ["mlp"] * 2,
            "dataset": ["diabetes"] * 2,
            "task": ["regression"] * 2,
            "seed": [0, 0],
            "trial_id": [0, 1],
            "status": ["ok", "ok"],
            "budget_epochs": [5, 10],
            "epochs_trained": [5, 10],
            "objective": [-60.0, -55.0],
            "val_accuracy": pa.nulls(2, pa.float64()),
            "test_accuracy": pa.nulls(2, pa.float64()),
            "val_rmse": [60.0, 55.0],
            "test_rmse": [61.0, 57.0],
            "train_seconds": [1.0, 2.0],
            "eval_seconds": [0.1, 0.1],
            "ask_seconds": [0.0, 0.0],
            "tell_seconds": [0.0, 0.0],
            "elapsed_seconds": [1.1, 3.2],
            "params": ['{"epochs": 5}', '{"epochs": 10}'],
            "tensorflow_version": ["2.16"] * 2,
        }
    )
    pq.write_table(v1, run / TRIALS_FILE)
    df = read_results(tmp_path / "old")
    assert list(df.objective) == [60.0, 55.0] and set(df.objective_direction) == {"minimize"}
    assert list(df.test_objective) == [61.0, 57.0] and list(df.budget) == [5, 10]
    assert list(df["metric.val_rmse"]) == [60.0, 55.0] and set(df.instance) == {"mlp_diabetes"}
    report = build.compute(tmp_path / "old", build.Options(figures=False))
    cell = report.cells.iloc[0]
    assert cell["val_mean"] == 55.0 and cell["test_mean"] == 57.0 and bool(cell["lower_is_better"])


def test_a_row_told_late_on_resume_is_journaled_so_the_next_resume_replays_the_same_calls():
    """Session 1 (2 workers) lost the tell of trial 1 with its last flush; session 2 tells it
    late. The journal session 2 leaves must say so, or session 3 replays another order."""
    from pathlib import Path

    from harness.replay import replay

    class Counting:  # its suggestions depend on how many results it was told before each ask
        name, finished = "counting", False

        def __init__(self):
            self.n = self.told = 0

        def ask(self, k):
            out = [Suggestion(self.n + i, {"x": self.told}) for i in range(k)]
            self.n += k
            return out

        def tell(self, observation):
            self.told += 1

    def row(tid, x):
        return {
            "trial_id": tid,
            "params": {"x": x},
            "objective": 1.0,
            "objective_direction": "maximize",
            "status": "ok",
            "budget": None,
        }

    journal = [{"ask": 2, "ids": [0, 1]}, {"tell": 0}, {"ask": 1, "ids": [2]}]
    rows = [row(0, 0), row(1, 0)]
    second = replay(Counting(), rows, journal, Path("."))
    assert [s.trial_id for s in second.backlog] == [2] and second.events[-1] == {"tell": 1}
    # Session 2 continues from the journal it rewrote: tell 2, ask 3 (after 3 tells), tell 3.
    journal = second.events + [{"tell": 2}, {"ask": 1, "ids": [3]}, {"tell": 3}]
    third = replay(Counting(), rows + [row(2, 1), row(3, 3)], journal, Path("."))
    assert third.backlog == []


def test_keras_reports_epochs_in_the_problems_own_direction():
    """Regression reports +RMSE (minimised); the runner turns it into -RMSE for the strategy."""
    import math

    from harness.objective import KerasObjective

    class Data:
        task, y_std = "regression", 10.0

    objective = KerasObjective.__new__(KerasObjective)
    objective.data = Data()
    assert objective._objective_from_logs({"val_loss": 4.0}) == 20.0  # sqrt(4) * y_std
    Data.task = "classification"
    assert objective._objective_from_logs({"val_accuracy": 0.75}) == 0.75
    assert math.isnan(objective._objective_from_logs({}))


class _SignalInFinalizer:
    """Sends SIGTERM to this process from inside `__del__`: Python runs the handler there, and
    prints "Exception ignored in ..." instead of propagating the exception."""

    def __del__(self):
        os.kill(os.getpid(), signal.SIGTERM)
        time.sleep(0.01)  # the handler runs here, inside the finalizer


@dataclass(frozen=True)
class SignalSwallowedObjective(ToyObjective):
    at: int = 1

    def __call__(self, suggestion: Suggestion, report=None) -> TrialResult:
        if suggestion.trial_id == self.at:
            _SignalInFinalizer()  # collected at once: the signal lands in its __del__
        return super().__call__(suggestion, report)


def test_a_signal_landing_in_a_finalizer_still_stops_the_run(tmp_path, monkeypatch):
    # worker.processes=false: trials run in the runner's process, where a SIGTERM can land in a
    # __del__ or weakref callback; the run must still stop as interrupted, not run on to the end.
    import sys

    swallowed = []  # what Python reports as "Exception ignored in ..."
    monkeypatch.setattr(sys, "unraisablehook", lambda u: swallowed.append(u.exc_type))
    s = settings(tmp_path, "budget.trials=6", "worker.processes=false")
    with pytest.raises(RunInterrupted) as err:
        Runner(s, objective=SignalSwallowedObjective(at=1)).run()
    assert swallowed == [RunInterrupted]  # Python did swallow it where it landed
    assert err.value.signal_name == "SIGTERM"
    status = json.loads((s.run_dir / RUN_FILE).read_text())
    assert status["status"] == "interrupted" and status["n_trials"] < 6


def test_a_second_signal_does_not_replace_the_first(tmp_path):
    # Ctrl-C, then the scheduler's SIGTERM while the first unwinds: the run reports SIGINT, as
    # its message says (it used to exit 143 while saying SIGINT).
    from harness import signals

    restore = signals.install_signal_handlers()
    try:
        with pytest.raises(RunInterrupted) as err:
            try:
                os.kill(os.getpid(), signal.SIGINT)
                time.sleep(1)
            finally:
                os.kill(os.getpid(), signal.SIGTERM)  # recorded, not raised over the first
                time.sleep(0.05)
        assert err.value.signal_name == "SIGINT"
        with pytest.raises(RunInterrupted) as again:
            signals.raise_if_received()
        assert again.value.signal_name == "SIGINT"
    finally:
        restore()
