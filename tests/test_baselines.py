"""The optional baselines (asha, tpe_hyperband, cmaes, smac, smac_mf, nevergrad) run from the
runner on cheap problems, resume exactly, and pairings they cannot handle are recorded as not
applicable (with the reason) instead of crashing a sweep."""

from __future__ import annotations

import json
import math

import pandas as pd
import pytest

from harness.errors import ConfigError
from harness.runner import Runner
from harness.settings import settings_from_config
from harness.testing import problem_config

NEW = ("asha", "tpe_hyperband", "cmaes", "smac", "smac_mf", "nevergrad")

# The optional libraries come with the `[all]` extra (the README's install command, and CI).
for _module in ("smac", "nevergrad", "cmaes"):
    pytest.importorskip(_module, reason=f'pip install "automl-harness[{_module}]"')


def _settings(tmp_path, problem: str, *overrides: str, results: str = "results"):
    cfg = problem_config(problem, "progress=false", *overrides)
    cfg["results_dir"] = str(tmp_path / results)
    return settings_from_config(cfg)


def _rows(summary) -> pd.DataFrame:
    return pd.read_parquet(summary.run_dir / "trials.parquet").sort_values("trial_id").reset_index(drop=True)


def _run_record(summary) -> dict:
    return json.loads((summary.run_dir / "_run.json").read_text())


@pytest.mark.parametrize("strategy", ["cmaes", "smac", "nevergrad"])
def test_single_fidelity_baselines_minimise_bbob_better_than_their_first_trials(tmp_path, strategy):
    s = _settings(tmp_path, "bbob", f"strategy={strategy}", "problem.function=1", "budget.trials=40")
    df = _rows(Runner(s).run())
    assert len(df) == 40 and (df.status == "ok").all() and (df.strategy == strategy).all()
    # A model or an evolution at work: the last 10 trials are better on the sphere than the first 10.
    assert df.regret.iloc[-10:].median() < df.regret.iloc[:10].median()
    assert _run_record_of(df, tmp_path)["planned_trials"] == 40  # the plan SMAC/NGOpt were given


def _run_record_of(df: pd.DataFrame, tmp_path) -> dict:
    (path,) = (tmp_path / "results").rglob(f"{df.run_id.iloc[0]}/_run.json")
    return json.loads(path.read_text())


@pytest.mark.parametrize("strategy", ["asha", "tpe_hyperband", "smac_mf"])
def test_multi_fidelity_baselines_stop_or_shorten_trials_on_a_tabular_benchmark(tmp_path, strategy):
    s = _settings(tmp_path, "tabular", "problem.table=mlp_digits", f"strategy={strategy}", "budget.trials=40", "n_workers=2")
    summary = Runner(s).run()
    df = _rows(summary)
    # smac_mf may run out of the table's 36 configurations at some budget first: it then says so.
    assert len(df) == 40 or summary.stop_reason == f"strategy {strategy!r} finished"
    assert len(df) >= 30 and df.objective.between(0, 1).all()
    assert (df.budget <= 50).all() and (df.budget >= 1).all()
    # Early stopping (asha, tpe_hyperband) or small rungs (smac_mf) spend fewer epochs than
    # training every trial fully would, and some trials reach the full 50.
    assert df.budget_spent.sum() < len(df) * 50 * 0.8 and (df.budget == 50).any()
    if strategy == "smac_mf":
        assert df.parent_trial_id.notna().any()  # promotions continue their parent's trial
    else:
        assert (df.status == "pruned").any()


@pytest.mark.parametrize("strategy", NEW)
def test_every_baseline_resumed_mid_run_ends_as_an_uninterrupted_run(tmp_path, monkeypatch, strategy):
    """A 16-trial run stopped after 8, then resumed by a new Runner (the journal replays asks,
    per-step reports and tells): all 16 trials equal those of an uninterrupted run, pruning
    decisions included."""
    problem = (
        ("tabular", "problem.table=mlp_digits")
        if strategy in ("asha", "tpe_hyperband", "smac_mf")
        else ("bbob", "problem.function=3")
    )
    straight = Runner(_settings(tmp_path, *problem, f"strategy={strategy}", "budget.trials=16", results="s")).run()
    with monkeypatch.context() as m:  # the first session stops after 8 trials, as an interrupted one would
        real = Runner._stop_reason
        m.setattr(Runner, "_stop_reason", lambda self: "stopped for the test" if len(self.rows) >= 8 else real(self))
        first = Runner(_settings(tmp_path, *problem, f"strategy={strategy}", "budget.trials=16", results="r")).run()
    assert first.n_trials == 8
    resumed = Runner(_settings(tmp_path, *problem, f"strategy={strategy}", "budget.trials=16", results="r")).run()
    assert first.run_id == resumed.run_id == straight.run_id and resumed.n_trials == 16
    cols = ["trial_id", "params", "status", "budget", "budget_spent", "objective"]
    pd.testing.assert_frame_equal(_rows(resumed)[cols], _rows(straight)[cols])
    if strategy in ("asha", "tpe_hyperband"):
        assert (_rows(straight).status == "pruned").any()  # the pruner had rungs to replay


def test_smac_resumes_exactly_in_a_new_process(tmp_path, harness_cmd, subprocess_env):
    """SMAC orders configurations by string hashes, which Python randomises per process: the
    `harness` command fixes PYTHONHASHSEED so a resume in another process replays the same run."""
    import subprocess

    env = {k: v for k, v in subprocess_env.items() if k != "PYTHONHASHSEED"}
    args = ["problem=tabular", "strategy=smac_mf", "progress=false"]
    for trials in (12, 24):
        proc = subprocess.run(
            [*harness_cmd, *args, f"budget.trials={trials}"], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300
        )
        assert proc.returncode == 0, proc.stderr[-2000:]
        assert f"{trials} trials" in proc.stdout


# -- capabilities negotiated --------------------------------------------------------------------
@pytest.mark.parametrize(
    ("problem", "overrides", "strategy", "phrase"),
    [
        ("bbob", (), "asha", "declares no fidelity"),
        ("bbob", (), "hyperband", "declares no fidelity"),
        ("sklearn", ("problem.model=rf", "dataset=iris"), "tpe_hyperband", "reports no intermediate values"),
        ("tabular", ("problem.table=nas_mlp_digits",), "cmaes", "conditional parameters"),
        ("tabular", ("problem.table=nas_mlp_digits",), "nevergrad", "conditional parameters"),
    ],
)
def test_a_pairing_the_strategy_cannot_handle_is_recorded_not_applicable(tmp_path, problem, overrides, strategy, phrase):
    summary = Runner(_settings(tmp_path, problem, *overrides, f"strategy={strategy}", "budget.trials=4")).run()
    assert summary.status == "not_applicable" and phrase in summary.stop_reason
    record = _run_record(summary)
    assert record["status"] == "not_applicable" and phrase in record["stop_reason"]
    assert record["strategy"] == strategy and record["problem"] == problem
    assert not (summary.run_dir / "trials.parquet").exists()
    assert "not applicable" in summary.format()


def test_a_limit_a_strategy_raises_itself_is_recorded_not_applicable(tmp_path):
    """grid refuses a grid of more than 100,000 points in its constructor: recorded N/A."""
    huge = {"name": "huge", "params": {f"x{i}": {"type": "int", "low": 0, "high": 9} for i in range(6)}}
    cfg = problem_config("bbob", "progress=false", "strategy=grid", "budget.trials=4")
    cfg["results_dir"] = str(tmp_path / "results")
    settings = settings_from_config(cfg)
    from harness.space import SearchSpace

    settings.problem.space = SearchSpace.from_config(huge)  # 10^6 grid points; never evaluated
    summary = Runner(settings).run()
    assert summary.status == "not_applicable" and "100,000 grid points" in _run_record(summary)["stop_reason"]


def test_cli_single_run_not_applicable_exits_2_and_a_sweep_goes_on(tmp_path, harness_cmd, subprocess_env):
    import subprocess

    def run(*args):
        return subprocess.run(
            [*harness_cmd, "problem=bbob", "progress=false", "budget.trials=3", *args],
            cwd=tmp_path,
            env=subprocess_env,
            capture_output=True,
            text=True,
            timeout=300,
        )

    single = run("strategy=asha")
    assert single.returncode == 2 and "Traceback" not in single.stderr
    assert single.stderr.count("error:") == 1 and "not applicable" in single.stderr
    sweep = subprocess.run(
        [*harness_cmd, "-m", "problem=bbob", "progress=false", "budget.trials=3", "strategy=asha,random"],
        cwd=tmp_path,
        env=subprocess_env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert sweep.returncode == 0, sweep.stderr[-2000:]
    assert "1 sweep job(s) not applicable" in sweep.stderr and "3 trials" in sweep.stdout
    statuses = sorted(json.loads(p.read_text())["status"] for p in (tmp_path / "results").rglob("_run.json"))
    assert statuses == ["finished", "not_applicable"]


def test_a_missing_optional_library_is_one_clear_error(monkeypatch):
    import importlib.util

    from harness.registry import make_strategy
    from harness.space import load_space

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "smac" else real(name, *a))
    with pytest.raises(ConfigError, match=r"pip install \"automl-harness\[smac\]\""):
        make_strategy("smac", load_space("mlp"), seed=0)


def test_cmaes_announces_its_categorical_fallback_once(recwarn):
    from harness.registry import make_strategy
    from harness.space import load_space
    from harness.strategy import Observation

    strategy = make_strategy("cmaes", load_space("homl_mlp"), seed=0)
    for _ in range(6):
        (s,) = strategy.ask(1)
        strategy.tell(Observation(s.trial_id, -math.log(s.params["learning_rate"])))
    messages = [str(w.message) for w in recwarn.list]
    assert sum("sampled independently" in m for m in messages) == 1, messages


def test_smac_translates_conditions_so_inactive_params_are_never_suggested():
    from harness.registry import make_strategy
    from harness.space import load_space
    from harness.strategy import Observation

    space = load_space("nas_mlp")
    strategy = make_strategy("smac", space, seed=0, initial_design={"n_configs": 3})
    seen = set()
    for _ in range(10):
        (s,) = strategy.ask(1)
        space.check(s.params)  # exactly the active params
        seen.add(s.params["num_layers"])
        strategy.tell(Observation(s.trial_id, float(s.params["num_layers"])))
    assert len(seen) > 1


def test_the_report_shows_not_applicable_cells_as_na_and_ranks_the_others(tmp_path):
    from harness.report import build

    for function in (1, 3):
        for seed in (0, 1):
            for strategy in ("random", "tpe", "cmaes", "asha"):
                Runner(
                    _settings(
                        tmp_path,
                        "bbob",
                        f"strategy={strategy}",
                        f"problem.function={function}",
                        f"seed={seed}",
                        "budget.trials=12",
                        "experiment=mix",
                    )
                ).run()
    rep = build.compute(tmp_path / "results" / "mix", build.Options(figures=False))
    main = rep.main_frame()
    asha = main[main.strategy == "asha"]
    assert len(asha) == 2 and (asha.not_applicable == 2).all() and asha.val_mean.isna().all()
    assert (asha.no_usable_trial == 0).all() and (asha.unfinished == 0).all()  # N/A is neither
    summary = rep.analysis.summary()
    assert "asha" not in summary.index and rep.analysis.excluded == ["asha"]
    assert summary.loc[["random", "tpe", "cmaes"], "problems"].eq(2).all()  # 2 functions, seeds averaged
    notes = rep.runs.loc[rep.runs.run_status == "not_applicable", "run_note"]
    assert len(notes) == 4 and notes.str.contains("declares no fidelity").all()
    rank_rows = {row[0].text: [c.text for c in row] for row in rep.ranks.rows}
    assert rank_rows["asha"][1] == "N/A" and rank_rows["asha"][-1] == "2"  # N/A on 2 problems
    asha_column = rep.main.header.index("asha")
    assert {row[asha_column].text for row in rep.main.rows} == {"N/A"}


# -- real Keras training: pruning through worker processes, promotions from checkpoints ---------
@pytest.mark.slow
def test_asha_stops_keras_trials_from_their_epoch_reports(tmp_path):
    s = _settings(
        tmp_path, "keras", "search_space=nas_mlp", "strategy=asha", "budget.trials=6", "budget.max_epochs=4", "worker.threads=1"
    )
    df = _rows(Runner(s).run())
    assert len(df) == 6 and set(df.status) <= {"ok", "pruned"}
    assert (df.budget == 4).sum() >= 1  # the first trial of a rung always continues
    # Each trial's history has one entry per epoch it trained; a pruned one stopped before 4.
    epochs = df.history.map(lambda h: len(json.loads(h)))
    assert (epochs == df.budget_spent).all()
    assert (df.loc[df.status == "pruned", "budget"] < 4).all()


@pytest.mark.slow
def test_smac_mf_promotions_continue_their_parents_keras_checkpoint(tmp_path):
    s = _settings(
        tmp_path,
        "keras",
        "search_space=nas_mlp",
        "strategy=smac_mf",
        "budget.trials=8",
        "budget.max_epochs=4",
        "worker.threads=1",
    )
    df = _rows(Runner(s).run())
    assert (df.status == "ok").all() and set(df.budget) == {1, 4}
    promoted = df[df.parent_trial_id.notna()]
    assert len(promoted) >= 1
    parent = df.set_index("trial_id").loc[promoted.parent_trial_id.astype(int)]
    # The promoted trial trained only the epochs its parent had not: 4 - 1.
    assert (promoted.budget_spent.to_numpy() == promoted.budget.to_numpy() - parent.budget.to_numpy()).all()
    assert (promoted.params.to_numpy() == parent.params.to_numpy()).all()


def test_rank_counts_stay_consistent_when_every_strategy_is_not_applicable_somewhere(tmp_path):
    from harness.report import build

    for strategy in ("asha", "tpe_hyperband"):
        for seed in (0, 1):
            for problem in (("bbob",), ("tabular", "problem.table=mlp_digits")):
                Runner(
                    _settings(tmp_path, *problem, f"strategy={strategy}", f"seed={seed}", "budget.trials=6", "experiment=both")
                ).run()
    summary = build.compute(tmp_path / "results" / "both", build.Options(figures=False)).analysis.summary()
    # Both are N/A on bbob, so both stay ranked on the tabular problem (its 2 seeds averaged);
    # bbob is neither missing nor N/A among the ranked problems.
    assert list(summary["problems"].unique()) == [1]
    assert (summary["missing_runs"] == 0).all() and (summary["not_applicable"] == 0).all()


def test_a_pairing_now_not_applicable_keeps_the_trials_an_earlier_run_recorded(tmp_path, monkeypatch):
    from harness.errors import HarnessError
    from harness.strategies.asha import ASHA

    done = Runner(_settings(tmp_path, "tabular", "problem.table=mlp_digits", "strategy=asha", "budget.trials=4")).run()
    before = (done.run_dir / "trials.parquet").read_bytes(), (done.run_dir / "_run.json").read_text()
    monkeypatch.setattr(ASHA, "not_applicable", classmethod(lambda cls, space, **kw: "a newer limit"))
    with pytest.raises(HarnessError, match="has recorded trials.*not applicable to it now: a newer limit"):
        Runner(_settings(tmp_path, "tabular", "problem.table=mlp_digits", "strategy=asha", "budget.trials=4")).run()
    assert ((done.run_dir / "trials.parquet").read_bytes(), (done.run_dir / "_run.json").read_text()) == before
