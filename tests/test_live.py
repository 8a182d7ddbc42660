"""The live view (`live.enabled=true`, harness.live): every row of a run mirrored, as it finishes,
into an Optuna study, which `optuna-dashboard` shows.

Checked the way a user sees it: runs on cheap problems (BBOB, a toy space with every parameter
kind and conditions, the tabular replay of real learning curves), then the storage read back with
Optuna, and `optuna-dashboard` started on a loopback port and asked through its JSON API (and, where
a Chromium is installed, rendered headless).
"""

from __future__ import annotations

import json
import math
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from collections import Counter
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from harness.errors import ConfigError
from harness.live import JOURNAL_FILE, TRIAL_ATTR, OptunaMirror
from harness.problem import EvalResult, ObjectiveInfo, Problem
from harness.problems.bbob import BBOB
from harness.runner import Runner
from harness.settings import settings_from_config
from harness.strategy import TrialStatus
from harness.testing import problem_config, toy_space, toy_value

optuna = pytest.importorskip("optuna")
from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution  # noqa: E402
from optuna.storages import JournalStorage  # noqa: E402
from optuna.trial import TrialState  # noqa: E402

STATES = {"ok": TrialState.COMPLETE, "failed": TrialState.FAIL, "pruned": TrialState.PRUNED}


# -- helpers ---------------------------------------------------------------------------------------
class FlakyBBOB(BBOB):
    """BBOB f1 whose evaluation raises for x0 > 3 (about a fifth of random trials)."""

    def evaluate(self, suggestion, report=None):
        if suggestion.params["x0"] > 3.0:
            raise ValueError(f"flaky: x0={suggestion.params['x0']:.3f} is out of this problem's reach")
        return super().evaluate(suggestion, report)


class ToyProblem(Problem):
    """The conformance suite's toy space (every parameter kind, a chain of conditions); fails
    for rmsprop with batch norm."""

    name = "toy"

    def __init__(self, *, seed: int = 0, config: Any = None):
        super().__init__(seed=seed, config=config)
        self.space = toy_space()
        self.objective = ObjectiveInfo("score", "maximize")
        self.instance = "toy"

    def evaluate(self, suggestion, report=None):
        p = suggestion.params
        if p["opt"] == "rmsprop" and p["bn"]:
            return EvalResult.failed("RuntimeError: rmsprop with batch norm diverged")
        return EvalResult(TrialStatus.OK, toy_value(self.space, p))


def config(tmp_path: Path, problem: str, *overrides: str) -> dict[str, Any]:
    cfg = problem_config(problem, "progress=false", "live.enabled=true", "experiment=live", *overrides)
    cfg["results_dir"] = str(tmp_path / "results")
    return cfg


def run(cfg: dict[str, Any], problem: Problem | None = None):
    summary = Runner(settings_from_config(cfg, problem=problem)).run()
    return summary, pd.read_parquet(summary.run_dir / "trials.parquet").sort_values("trial_id")


def journal(tmp_path: Path) -> Path:
    return tmp_path / "results" / "live" / JOURNAL_FILE


def open_storage(path: Path) -> Any:
    from optuna.storages.journal import JournalFileBackend

    return JournalStorage(JournalFileBackend(str(path)))


def load(storage: Any, name: str) -> Any:
    return optuna.load_study(study_name=name, storage=storage)


def check_rows_mirrored(study: Any, df: pd.DataFrame, space: Any) -> None:
    """Each row is one trial of the study: state, value, active params and their distributions."""
    trials = {t.user_attrs[TRIAL_ATTR]: t for t in study.get_trials(deepcopy=False)}
    assert sorted(trials) == sorted(df.trial_id.tolist())  # every row once, nothing else
    for row in df.itertuples():
        t = trials[row.trial_id]
        assert t.state == STATES[row.status], row
        if row.status == "ok":
            assert t.value == pytest.approx(row.objective)
        elif row.status == "failed":
            assert t.value is None and row.error.split(":")[0] in t.user_attrs["error"]
        params = json.loads(row.params)
        active = {k: v for k, v in params.items() if v is not None}
        assert t.params == active
        assert set(t.distributions) == set(active)
        for name, dist in t.distributions.items():
            p = space[name]
            if p.type == "int":
                assert dist == IntDistribution(p.low, p.high, step=p.step, log=p.log)
            elif p.type == "float":
                assert dist == FloatDistribution(p.low, p.high, log=p.log)
            else:
                assert isinstance(dist, CategoricalDistribution) and tuple(dist.choices) == tuple(p.choices)
        assert t.user_attrs["status"] == row.status
        if row.budget is not None and not pd.isna(row.budget):
            assert t.user_attrs["budget"] == row.budget


# -- every strategy's rows, with failures ----------------------------------------------------------
@pytest.mark.parametrize("strategy", ["random", "tpe", "genetic"])
def test_every_row_of_a_bbob_run_is_a_trial_of_its_run_study(tmp_path, strategy):
    cfg = config(
        tmp_path, "bbob", f"strategy={strategy}", "budget.trials=40", "problem.dimension=3", "max_failure_rate=1.0", "seed=3"
    )
    problem = FlakyBBOB(seed=3, config=cfg, function=1, dimension=3)
    summary, df = run(cfg, problem)
    assert len(df) == 40 and 0 < (df.status == "failed").sum() < 40  # the injected failures happened

    storage = open_storage(journal(tmp_path))
    assert optuna.get_all_study_names(storage) == [summary.run_id]  # one study per run, named by its id
    study = load(storage, summary.run_id)
    check_rows_mirrored(study, df, problem.space)
    assert study.direction == optuna.study.StudyDirection.MINIMIZE and study.metric_names == ["f"]
    attrs = study.user_attrs
    assert attrs["strategy"] == strategy and attrs["problem"] == "bbob" and attrs["seed"] == 3
    assert attrs["instance"] == "bbob-f01-d3-i1" and attrs["experiment"] == "live"
    assert attrs["budget_trials"] == 40 and attrs["budget_seconds"] is None and attrs["budget_max_epochs"] is None
    assert attrs["run_id"] == summary.run_id and attrs["objective"] == "f" and attrs["direction"] == "minimize"
    # the failed trials carry the error, the ok ones their regret
    failed = [t for t in study.trials if t.state == TrialState.FAIL]
    assert failed and all("ValueError: flaky" in t.user_attrs["error"] for t in failed)
    assert all(t.user_attrs["regret"] >= 0 for t in study.trials if t.state == TrialState.COMPLETE)
    assert study.best_value == pytest.approx(df.objective.min())
    # the journal sits in the experiment folder, which pandas still reads as just the trial rows
    assert len(pd.read_parquet(tmp_path / "results" / "live")) == 40


def test_conditional_params_of_every_kind_keep_their_distributions(tmp_path):
    cfg = config(
        tmp_path, "bbob", "strategy=tpe", "budget.trials=30", "max_failure_rate=1.0", "++strategy.params.n_startup_trials=10"
    )
    problem = ToyProblem(config=cfg)
    summary, df = run(cfg, problem)
    study = load(open_storage(journal(tmp_path)), summary.run_id)
    check_rows_mirrored(study, df, problem.space)
    assert (df.status == "failed").any()
    # inactive conditional parameters are not params of the trial
    inactive = [t for t in study.trials if t.params["n_layers"] == 1]
    assert inactive and all("width_1" not in t.params for t in inactive)
    assert any(isinstance(t.params.get("nesterov"), bool) for t in study.trials)
    assert study.direction == optuna.study.StudyDirection.MAXIMIZE and study.metric_names == ["score"]


# -- per-epoch histories: intermediate values, pruned trials, promotions ----------------------------
@pytest.mark.parametrize("strategy,table", [("asha", "mlp_digits"), ("hyperband", "nas_mlp_digits")])
def test_learning_curves_are_intermediate_values_and_pruned_trials_are_pruned(tmp_path, strategy, table):
    cfg = config(tmp_path, "tabular", f"problem.table={table}", f"strategy={strategy}", "budget.trials=30")
    summary, df = run(cfg)
    problem = settings_from_config(cfg).problem
    study = load(open_storage(journal(tmp_path)), summary.run_id)
    check_rows_mirrored(study, df, problem.space)
    trials = {t.user_attrs[TRIAL_ATTR]: t for t in study.trials}
    for row in df.itertuples():
        history = json.loads(row.history)
        assert history, row
        assert trials[row.trial_id].intermediate_values == {h["epoch"]: pytest.approx(h["val"]) for h in history}
    fidelity = problem.space.fidelity.param
    if fidelity:  # multi-fidelity strategies set the budget: the fidelity param is not searched
        assert all(fidelity not in t.params for t in study.trials)
    if strategy == "asha":
        pruned = [t for t in study.trials if t.state == TrialState.PRUNED]
        assert pruned and (df.status == "pruned").sum() == len(pruned)
        assert all(max(t.intermediate_values) == t.user_attrs["budget"] for t in pruned)
    else:  # promotions continue a parent's epochs: the trial says which
        promoted = df[df.parent_trial_id.notna()]
        assert len(promoted) > 0
        for row in promoted.itertuples():
            assert trials[row.trial_id].user_attrs["parent_trial_id"] == row.parent_trial_id


# -- resume -------------------------------------------------------------------------------------------
def test_a_resumed_or_extended_run_continues_its_study_without_duplicates(tmp_path):
    first, _ = run(config(tmp_path, "bbob", "strategy=tpe", "budget.trials=25"))
    again, _ = run(config(tmp_path, "bbob", "strategy=tpe", "budget.trials=25"))  # already complete
    assert again.already_complete
    extended, df = run(config(tmp_path, "bbob", "strategy=tpe", "budget.trials=40"))
    assert extended.run_id == first.run_id and len(df) == 40
    storage = open_storage(journal(tmp_path))
    assert optuna.get_all_study_names(storage) == [first.run_id]
    study = load(storage, first.run_id)
    ids = [t.user_attrs[TRIAL_ATTR] for t in study.trials]
    assert sorted(ids) == list(range(40)) and len(set(ids)) == 40
    assert study.user_attrs["budget_trials"] == 40  # the budget of the latest session


def test_overwrite_starts_the_run_study_over(tmp_path):
    first, _ = run(config(tmp_path, "bbob", "strategy=random", "budget.trials=20"))
    again, df = run(config(tmp_path, "bbob", "strategy=random", "budget.trials=12", "overwrite=true", "seed=0"))
    assert again.run_id == first.run_id and len(df) == 12
    study = load(open_storage(journal(tmp_path)), first.run_id)
    assert sorted(t.user_attrs[TRIAL_ATTR] for t in study.trials) == list(range(12))
    assert study.user_attrs["budget_trials"] == 12


def test_enabling_it_on_a_recorded_run_mirrors_what_the_run_recorded(tmp_path):
    cfg = config(tmp_path, "bbob", "strategy=random", "budget.trials=20", "live.enabled=false")
    summary, df = run(cfg)
    assert not journal(tmp_path).exists()
    cfg["live"]["enabled"] = True
    again, _ = run(cfg)  # already complete: nothing runs, the rows are mirrored
    assert again.already_complete
    study = load(open_storage(journal(tmp_path)), summary.run_id)
    problem = settings_from_config(cfg).problem
    check_rows_mirrored(study, df, problem.space)


def test_a_run_resumed_after_the_mirror_missed_rows_adds_only_those(tmp_path):
    cfg = config(tmp_path, "bbob", "strategy=random", "budget.trials=30", "live.enabled=false")
    summary, df = run(cfg)
    cfg["live"]["enabled"] = True
    settings = settings_from_config(cfg)
    mirror = OptunaMirror.for_run(settings, settings.problem, df.head(12).to_dict("records"))
    assert mirror.enabled and mirror.n_mirrored == 12
    mirror = OptunaMirror.for_run(settings, settings.problem, df.to_dict("records"))  # the same study again
    assert mirror.n_mirrored == 30
    study = load(open_storage(journal(tmp_path)), summary.run_id)
    assert sorted(t.user_attrs[TRIAL_ATTR] for t in study.trials) == list(range(30))


# -- other storages, and a storage that fails -----------------------------------------------------------
def test_an_optuna_storage_url_holds_the_studies(tmp_path):
    url = f"sqlite:///{tmp_path / 'live.db'}"
    summary, df = run(config(tmp_path, "bbob", "strategy=random", "budget.trials=15", f"live.storage={url}"))
    assert not journal(tmp_path).exists()
    study = optuna.load_study(study_name=summary.run_id, storage=url)
    assert len(study.trials) == 15 and study.user_attrs["strategy"] == "random"


def test_a_journal_path_is_relative_to_where_the_harness_started(tmp_path):
    cfg = config(tmp_path, "bbob", "live.storage=views/exp.journal")
    settings = settings_from_config(cfg, base_dir=tmp_path)
    assert settings.live and settings.live_storage == str(tmp_path / "views" / "exp.journal")


def test_an_unwritable_storage_warns_once_and_the_run_goes_on(tmp_path, monkeypatch):
    warnings: list[str] = []
    monkeypatch.setattr("harness.live.log.warning", lambda msg, *a, **k: warnings.append(msg))
    blocker = tmp_path / "a_file"
    blocker.write_text("")
    summary, df = run(config(tmp_path, "bbob", "budget.trials=20", f"live.storage={blocker / 'x.journal'}"))
    assert summary.status == "finished" and len(df) == 20
    assert len(warnings) == 1 and "live view off" in warnings[0] and str(blocker) in warnings[0]


def test_a_storage_failing_mid_run_warns_once_and_the_run_goes_on(tmp_path, monkeypatch):
    warnings: list[str] = []
    monkeypatch.setattr("harness.live.log.warning", lambda msg, *a, **k: warnings.append(msg))
    calls = {"n": 0}
    add_trial = optuna.study.Study.add_trial

    def failing(self, trial):
        calls["n"] += 1
        if calls["n"] > 5:
            raise OSError(28, "No space left on device")
        return add_trial(self, trial)

    monkeypatch.setattr(optuna.study.Study, "add_trial", failing)
    summary, df = run(config(tmp_path, "bbob", "budget.trials=20"))
    assert summary.status == "finished" and len(df) == 20
    assert len(warnings) == 1 and "No space left on device" in warnings[0]
    assert calls["n"] == 6  # off after the first failure
    assert len(load(open_storage(journal(tmp_path)), summary.run_id).trials) == 5


@pytest.mark.parametrize(
    "override,phrase",
    [
        ("live.enabled=maybe", "live.enabled must be true or false, but got 'maybe'"),
        ("live.storage=ftp://host/x", "'ftp' is not a database Optuna can store studies in"),
        ("live.storage=''", "live.storage must be a journal file path or an Optuna storage URL"),
    ],
)
def test_bad_live_settings_are_one_config_error_naming_the_fix(tmp_path, override, phrase):
    with pytest.raises(ConfigError, match="live.storage=null|live.enabled=true") as err:
        settings_from_config(config(tmp_path, "bbob", override))
    assert phrase in str(err.value)


def test_a_folder_is_not_a_journal_file(tmp_path):
    with pytest.raises(ConfigError, match="is a folder; it must name a journal file"):
        settings_from_config(config(tmp_path, "bbob", f"live.storage={tmp_path}"))


def test_optuna_is_not_imported_unless_the_live_view_is_on():
    code = "import sys, harness.runner, harness.settings, harness.live; print('optuna' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


# -- what a user sees: optuna-dashboard -------------------------------------------------------------------
def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _get(url: str, timeout: float = 10.0) -> Any:
    with urllib.request.urlopen(url, timeout=timeout) as response:
        body = response.read()
    return json.loads(body) if "/api/" in url else body.decode()


def _dashboard_command() -> list[str]:
    script = Path(sys.executable).with_name("optuna-dashboard")
    return [str(script)] if script.exists() else [sys.executable, "-m", "optuna_dashboard._cli"]


@pytest.mark.timeout(180)
def test_optuna_dashboard_shows_the_experiment_live(tmp_path):
    pytest.importorskip("optuna_dashboard", reason="optuna-dashboard is not installed (pip install -e '.[test]')")
    first, df1 = run(config(tmp_path, "bbob", "strategy=tpe", "budget.trials=30"))
    port = _free_port()
    base = f"http://127.0.0.1:{port}"
    log = (tmp_path / "dashboard.log").open("w")
    proc = subprocess.Popen(
        [*_dashboard_command(), str(journal(tmp_path)), "--port", str(port), "--host", "127.0.0.1"],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                studies = _get(f"{base}/api/studies")["study_summaries"]
                break
            except OSError:
                assert proc.poll() is None, (tmp_path / "dashboard.log").read_text()
                assert time.monotonic() < deadline, "optuna-dashboard did not answer within 60 s"
                time.sleep(0.2)
        assert [s["study_name"] for s in studies] == [first.run_id]

        # a second run while the dashboard is up: it shows up without a restart
        cfg = config(tmp_path, "bbob", "strategy=random", "budget.trials=25", "max_failure_rate=1.0")
        second, df2 = run(cfg, FlakyBBOB(seed=0, config=cfg, function=1, dimension=5))
        studies = {s["study_name"]: s for s in _get(f"{base}/api/studies")["study_summaries"]}
        assert set(studies) == {first.run_id, second.run_id}
        for summary, df in ((first, df1), (second, df2)):
            s = studies[summary.run_id]
            assert s["directions"] == ["minimize"]
            attrs = {a["key"]: a["value"] for a in s["user_attrs"]}
            assert attrs["run_id"] == summary.run_id and attrs["problem"] == "bbob" and attrs["seed"] == "0"
            detail = _get(f"{base}/api/studies/{s['study_id']}")
            assert detail["name"] == summary.run_id and detail["objective_names"] == ["f"]
            trials = detail["trials"]
            assert len(trials) == len(df)
            assert Counter(t["state"] for t in trials) == Counter(STATES[x].name.capitalize() for x in df.status)
            assert {p["name"] for p in detail["union_search_space"]} == {f"x{i}" for i in range(5)}
            values = sorted(t["values"][0] for t in trials if t["state"] == "Complete")
            assert values == pytest.approx(sorted(df.objective.dropna()))
        assert "Fail" in {t["state"] for t in _get(f"{base}/api/studies/{studies[second.run_id]['study_id']}")["trials"]}
        assert "Optuna Dashboard" in _get(f"{base}/dashboard")  # the page a browser opens
        _check_in_headless_chromium(base, studies)
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()


def _check_in_headless_chromium(base: str, studies: dict[str, Any]) -> None:
    """Where a Chromium is installed: render the dashboard's study list and look for the runs.
    The test machines have none (the OS package is a 100 MB download), so the JSON API above is
    the check that always runs."""
    browser = next((b for b in ("chromium", "chromium-browser", "google-chrome") if shutil.which(b)), None)
    if browser is None:
        return
    proc = subprocess.run(
        [
            browser,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--virtual-time-budget=20000",
            "--dump-dom",
            f"{base}/dashboard",
        ],
        capture_output=True,
        text=True,
        timeout=90,
    )
    if proc.returncode != 0:
        pytest.skip(f"{browser} could not run headless here: {proc.stderr[-500:]}")
    for name in studies:
        assert name in proc.stdout, f"{name} not on the rendered dashboard"


def test_values_are_finite_or_absent(tmp_path):
    """NaN objectives (an `ok` row without a value) are FAIL, never a COMPLETE trial with NaN."""
    cfg = config(tmp_path, "bbob", "budget.trials=5")
    settings = settings_from_config(cfg)
    mirror = OptunaMirror.for_run(settings, settings.problem)
    row = {"trial_id": 0, "status": "ok", "objective": math.nan, "params": {"x0": 0.0}, "history": "[]"}
    mirror.add(row)
    mirror.add({**row, "trial_id": 1, "params": {"x0": 9.0}, "status": "failed", "error": "invalid suggestion"})
    assert mirror.enabled and mirror.n_mirrored == 2
    trials = mirror.study.trials
    assert [t.state for t in trials] == [TrialState.FAIL, TrialState.FAIL]
    assert trials[1].params == {} and json.loads(trials[1].user_attrs["invalid_params"]) == {"x0": 9.0}
