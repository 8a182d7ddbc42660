"""Runtime ECDFs (first hits of regret targets, ECDF fractions, figures) and the IOHprofiler export
of `harness.report.ecdf`, on hand-computed frames and on a real tiny BBOB sweep."""

from __future__ import annotations

import json
import subprocess
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from harness.report import aggregate, ecdf, load

TARGETS = np.array([100.0, 10.0, 1.0, 1e-3, 1e-4])


def _row(
    run_id: str, strategy: str, dataset: str, seed: int, trial_id: int, regret: float | None, status: str = "ok", **extra
) -> dict:
    """A BBOB-like trial row, as the runner writes it (f_opt = 0, so objective = regret)."""
    return {
        "experiment": "exp",
        "run_id": run_id,
        "problem": "bbob",
        "instance": "bbob-f01-d2-i1",
        "dataset": dataset,
        "search_space": "bbob_d2",
        "strategy": strategy,
        "seed": seed,
        "task": None,
        "trial_id": trial_id,
        "status": status,
        "budget": None,
        "budget_spent": None,
        "objective": regret if status == "ok" else None,
        "objective_name": "f",
        "objective_direction": "minimize",
        "test_objective": None,
        "regret": regret,
        "ask_seconds": 0.0,
        "tell_seconds": 0.0,
        "elapsed_seconds": float(trial_id + 1),
        "trainer": None,
        "clock": "wall",
        **extra,
    }


def _hand_frame() -> pd.DataFrame:
    rows = []
    # a on P1: best so far 10, 5, .5, .5, 1e-3 (the pruned 1e-6 at trial 4 is not usable)
    for i, (r, st) in enumerate([(10, "ok"), (5, "ok"), (0.5, "ok"), (1e-6, "pruned"), (1e-3, "ok")]):
        rows.append(_row("a_p1_s0", "a", "P1", 0, i, r, st))
    # a on P2: a first trial at .5, then a failed one (counted in the budget)
    rows.append(_row("a_p2_s0", "a", "P2", 0, 0, 0.5))
    rows.append(_row("a_p2_s0", "a", "P2", 0, 1, None, "failed"))
    # b on P1: 2, then .01
    rows.append(_row("b_p1_s0", "b", "P1", 0, 0, 2.0))
    rows.append(_row("b_p1_s0", "b", "P1", 0, 1, 0.01))
    # a run without a known optimum (accuracy): left out of every ECDF
    acc = _row("k_s0", "a", "digits", 0, 0, None)
    acc.update(
        problem="keras",
        instance="mlp_digits",
        search_space="mlp",
        task="classification",
        objective=0.9,
        objective_name="val_accuracy",
        objective_direction="maximize",
    )
    rows.append(acc)
    return aggregate.prepare(pd.DataFrame(rows))


def _hits_of(hits: pd.DataFrame, run_id: str) -> list[float]:
    return hits[hits["run_id"] == run_id].sort_values("target", ascending=False)["first_hit"].tolist()


def test_coco_targets_are_the_51_of_coco():
    assert len(ecdf.COCO_TARGETS) == 51
    assert ecdf.COCO_TARGETS[0] == pytest.approx(100) and ecdf.COCO_TARGETS[-1] == pytest.approx(1e-8)
    assert ecdf.COCO_TARGETS[5] == pytest.approx(10)  # five per decade


def test_first_hits_by_hand():
    hits = ecdf.first_hits(_hand_frame(), TARGETS)
    assert set(hits["run_id"]) == {"a_p1_s0", "a_p2_s0", "b_p1_s0"}  # the accuracy run is left out
    assert len(hits) == 3 * len(TARGETS)
    # regret 1e-3 first reached at trial 5: every target >= 1e-3 is hit by then, 1e-4 never
    assert _hits_of(hits, "a_p1_s0") == [1, 1, 3, 5, np.inf]
    assert _hits_of(hits, "a_p2_s0") == [1, 1, 1, np.inf, np.inf]
    assert _hits_of(hits, "b_p1_s0") == [1, 1, 2, np.inf, np.inf]
    used = hits.groupby("run_id")["budget_used"].first()
    assert used.to_dict() == {"a_p1_s0": 5, "a_p2_s0": 2, "b_p1_s0": 2}  # failed trials count
    row = hits.iloc[0]
    assert {row["strategy"], row["search_space"], row["seed"]} == {"a", "bbob_d2", 0}


def test_first_hits_against_wall_time():
    hits = ecdf.first_hits(_hand_frame(), TARGETS, x="elapsed_seconds")
    assert _hits_of(hits, "a_p1_s0") == [1.0, 1.0, 3.0, 5.0, np.inf]
    assert (hits["x"] == "elapsed_seconds").all()
    assert (ecdf.runtime_ecdf(hits[hits["strategy"] == "a"])["x"] == "elapsed_seconds").all()


def test_runtime_ecdf_fractions_by_hand():
    hits = ecdf.first_hits(_hand_frame(), TARGETS)
    with pytest.warns(UserWarning, match="cover different problems"):  # b ran on P1 only
        table = ecdf.runtime_ecdf(hits, grid=[1, 2, 3, 4, 5])
    agg = table[table["scope"] == "all"].set_index(["strategy", "budget"])["fraction"]
    # a: 10 pairs, first hits 1,1,3,5,inf (P1) and 1,1,1,inf,inf (P2)
    assert agg["a"].tolist() == pytest.approx([5 / 10, 5 / 10, 6 / 10, 6 / 10, 7 / 10])
    assert agg["b"].tolist() == pytest.approx([2 / 5, 3 / 5, 3 / 5, 3 / 5, 3 / 5])
    panel = table[(table["scope"] == "problem") & (table["dataset"] == "P1") & (table["strategy"] == "a")]
    assert panel["fraction"].tolist() == pytest.approx([2 / 5, 2 / 5, 3 / 5, 3 / 5, 4 / 5])
    first = table[table["scope"] == "all"].groupby("strategy").first()
    assert first.loc["a", ["n_pairs", "n_runs", "n_problems", "n_targets"]].tolist() == [10, 2, 2, 5]
    assert set(table.loc[table["scope"] == "problem", "panel"]) == {"P1 / bbob_d2", "P2 / bbob_d2"}


def test_default_grid_holds_every_step():
    hits = ecdf.first_hits(_hand_frame(), TARGETS)
    assert ecdf.default_grid(hits).tolist() == [1, 2, 3, 5]


def _random_frame(n_runs: int, n_trials: int, seed: int = 0) -> pd.DataFrame:
    """A prepared-like frame of many runs (log-uniform regrets, 5% unusable trials)."""
    rng = np.random.default_rng(seed)
    n = n_runs * n_trials
    run = np.repeat(np.arange(n_runs), n_trials)
    return pd.DataFrame(
        {
            "run": run,
            "experiment": "bench",
            "run_id": [f"r{r}" for r in run],
            "strategy": [f"s{r % 4}" for r in run],
            "dataset": [f"f{(r // 4) % 5}" for r in run],
            "search_space": "bbob_d5",
            "seed": run // 20,
            "metric": "regret",
            "n_trial": np.tile(np.arange(1, n_trials + 1), n_runs),
            "val": 10 ** rng.uniform(-9, 3, n),
            "usable": rng.random(n) > 0.05,
        }
    )


def test_first_hits_matches_a_plain_loop_and_the_ecdf_never_decreases():
    frame = _random_frame(40, 30, seed=1)
    hits = ecdf.first_hits(frame)
    for run_id, rows in frame.groupby("run_id"):
        best = np.minimum.accumulate(np.where(rows["usable"], rows["val"], np.inf))
        expected = [rows["n_trial"].to_numpy()[np.argmax(best <= t)] if (best <= t).any() else np.inf for t in ecdf.COCO_TARGETS]
        got = hits[hits["run_id"] == run_id]["first_hit"].tolist()  # in COCO_TARGETS order
        assert got == expected, run_id
    table = ecdf.runtime_ecdf(hits)
    for _, curve in table.groupby(["scope", "panel", "strategy"]):
        assert (np.diff(curve["fraction"].to_numpy()) >= 0).all()
        assert curve["fraction"].between(0, 1).all()


def test_first_hits_is_fast_at_100k_rows():
    frame = _random_frame(2000, 50)
    start = time.perf_counter()
    hits = ecdf.first_hits(frame)
    table = ecdf.runtime_ecdf(hits)
    assert time.perf_counter() - start < 3.0  # ~0.1 s measured; generous for a loaded machine
    assert len(hits) == 2000 * 51 and not table.empty


def test_module_imports_without_matplotlib_or_ioh():
    code = "import sys, harness.report.ecdf; assert 'matplotlib' not in sys.modules and 'ioh' not in sys.modules, 'heavy import'"
    subprocess.run([sys.executable, "-c", code], check=True)


# -- a real tiny BBOB sweep ---------------------------------------------------------------------
STRATEGIES, FUNCTIONS, SEEDS, N_TRIALS = ("random", "tpe"), (1, 7), (0, 1), 12


@pytest.fixture(scope="module")
def bbob_results(tmp_path_factory) -> Path:
    from harness.runner import Runner
    from harness.settings import settings_from_config
    from harness.testing import problem_config

    root = tmp_path_factory.mktemp("bbob_ecdf") / "results"
    for strategy in STRATEGIES:
        for function in FUNCTIONS:
            for seed in SEEDS:
                cfg = problem_config(
                    "bbob",
                    "progress=false",
                    f"problem.function={function}",
                    "problem.dimension=2",
                    f"strategy={strategy}",
                    f"seed={seed}",
                    f"budget.trials={N_TRIALS}",
                    "experiment=tiny",
                )
                cfg["results_dir"] = str(root)
                Runner(settings_from_config(cfg)).run()
    return root / "tiny"


@pytest.fixture(scope="module")
def bbob_trials(bbob_results) -> tuple[pd.DataFrame, pd.DataFrame]:
    raw = load.read_trials(bbob_results, columns=aggregate.NEEDED + ["params"]).trials
    return raw, aggregate.prepare(raw)


def test_real_sweep_ecdf_and_figures(bbob_trials, tmp_path):
    from harness.report.style import strategy_colors

    _, trials = bbob_trials
    hits = ecdf.first_hits(trials)
    assert len(hits) == len(STRATEGIES) * len(FUNCTIONS) * len(SEEDS) * 51
    assert (hits["budget_used"] == N_TRIALS).all()
    # every run beats the easiest target (regret 100) on these functions within 12 trials
    assert np.isfinite(hits.loc[hits["target"] == 100, "first_hit"]).all()
    table = ecdf.runtime_ecdf(hits)
    assert set(table["strategy"]) == set(STRATEGIES) and table["budget"].max() == N_TRIALS
    paths = ecdf.ecdf_figure(table, tmp_path / "fig" / "ecdf", strategy_colors(STRATEGIES))
    names = sorted(p.name for p in paths)
    assert names == ["ecdf.pdf", "ecdf.png", "ecdf_problems.pdf", "ecdf_problems.png"]
    assert all(p.stat().st_size > 1000 for p in paths)


def _dat_runs(path: Path) -> list[np.ndarray]:
    """raw_y of each run of an IOHprofiler .dat file (each run starts with a header line)."""
    runs: list[list[float]] = []
    for line in path.read_text().splitlines():
        if line.startswith("evaluations"):
            assert line.split() == ["evaluations", "raw_y"]
            runs.append([])
        else:
            runs[-1].append(float(line.split()[1]))
    return [np.array(r) for r in runs]


def test_iohprofiler_export_replays_every_run(bbob_trials, tmp_path):
    import ioh

    raw, trials = bbob_trials
    out = tmp_path / "ioh"
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a faithful replay warns about nothing
        paths = ecdf.export_iohprofiler(trials, out)
    assert all(p.is_file() for p in paths) and len(paths) == len(STRATEGIES) * len(FUNCTIONS) * 2
    for strategy in STRATEGIES:
        for fid in FUNCTIONS:
            problem = ioh.get_problem(fid, instance=1, dimension=2, problem_class=ioh.ProblemClass.BBOB)
            name, f_opt = problem.meta_data.name, problem.optimum.y
            meta = json.loads((out / strategy / f"IOHprofiler_f{fid}_{name}.json").read_text())
            assert meta["function_id"] == fid and meta["function_name"] == name
            assert meta["algorithm"]["name"] == strategy and meta["maximization"] is False
            (scenario,) = meta["scenarios"]
            assert scenario["dimension"] == 2
            assert [r["seed"] for r in scenario["runs"]] == list(SEEDS)
            assert all(r["instance"] == 1 and r["evals"] == N_TRIALS for r in scenario["runs"])
            dat = out / strategy / scenario["path"]
            assert dat == out / strategy / f"data_f{fid}_{name}" / f"IOHprofiler_f{fid}_DIM2.dat"
            for seed, raw_y in zip(SEEDS, _dat_runs(dat)):
                rows = raw[
                    (raw["strategy"] == strategy) & (raw["seed"] == seed) & (raw["instance"] == f"bbob-f{fid:02d}-d2-i1")
                ].sort_values("trial_id")
                # ioh logs raw_y = f(x) - f_opt: the recorded regret, and f the recorded objective
                np.testing.assert_allclose(raw_y, rows["regret"].to_numpy(), rtol=1e-12, atol=1e-12)
                np.testing.assert_allclose(raw_y + f_opt, rows["objective"].to_numpy(), rtol=1e-12)
    # exporting again replaces the earlier export instead of writing `tpe-1` next to it
    again = ecdf.export_iohprofiler(raw, out)  # a raw (unprepared) frame works too
    assert sorted(again) == sorted(paths) and sorted(p.name for p in out.iterdir()) == sorted(STRATEGIES)


def test_iohprofiler_export_warns_about_mismatches_and_missing_params(bbob_trials, tmp_path):
    _, trials = bbob_trials
    trials = trials.copy()
    changed = trials.index[(trials["strategy"] == "random") & (trials["seed"] == 1)][3]
    trials.loc[changed, "regret"] += 1.0  # as if the file held another function's value
    no_params = trials["run_id"] == trials.loc[trials["strategy"] == "tpe", "run_id"].iloc[0]
    trials.loc[no_params, "params"] = None
    with pytest.warns(UserWarning) as caught:
        paths = ecdf.export_iohprofiler(trials, tmp_path / "ioh")
    messages = [str(w.message) for w in caught]
    run_changed = trials.loc[changed, "run_id"]
    assert any(run_changed in m and "differ from the recorded objective" in m for m in messages)
    skipped = trials.loc[no_params, "run_id"].iloc[0]
    assert any(skipped in m and "params" in m for m in messages)
    assert paths  # the other runs are still written


def test_iohprofiler_export_needs_the_params_column(bbob_trials, tmp_path):
    _, trials = bbob_trials
    with pytest.warns(UserWarning, match="no 'params' column") as caught:
        assert ecdf.export_iohprofiler(trials.drop(columns="params"), tmp_path / "ioh") == []
    assert len(caught) == 1  # one warning, not one per run


def test_iohprofiler_export_refuses_a_foreign_folder(bbob_trials, tmp_path):
    _, trials = bbob_trials
    (tmp_path / "random").mkdir()
    (tmp_path / "random" / "notes.txt").write_text("mine")
    with pytest.raises(FileExistsError, match="not an IOHprofiler export"):
        ecdf.export_iohprofiler(trials, tmp_path)
    assert (tmp_path / "random" / "notes.txt").exists()


def test_iohprofiler_export_without_bbob_runs_writes_nothing(tmp_path):
    frame = _hand_frame()
    frame = frame[frame["problem"] == "keras"]
    assert ecdf.export_iohprofiler(frame, tmp_path / "none") == []
    assert not (tmp_path / "none").exists()
