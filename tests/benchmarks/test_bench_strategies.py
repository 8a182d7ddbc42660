"""Strategy benchmarks (pytest-benchmark; skipped by default, run with
`pytest tests/benchmarks/test_bench_strategies.py --benchmark-only -s`).

- per-trial ask+tell overhead of each installed strategy on the toy objective (100 trials;
  reported, no goal);
- the harness driving `tpe` vs a hand-written Optuna ask/tell loop on the same Keras objective
  (wall-time ratio, goal <= 1.03);
- Hyperband's epochs to reach random search's final best validation accuracy on digits + mlp
  (goal: median <= 40 % of random search's epochs).

Each prints GOAL lines (tests/benchmarks/_goals.py); HARNESS_BENCH_SMOKE=1 runs tiny sizes.
"""

from __future__ import annotations

import math
import time

import pytest

from harness.registry import available_strategies, make_strategy
from harness.space import load_space
from harness.strategy import Observation, Suggestion
from harness.testing import toy_value

from _goals import goal, reported, smoke

TRIALS = {"bayesian": 30}  # GP asks cost seconds each; 30 trials = 12 random + 18 GP asks


def ask_tell_loop(name: str, trials: int, seed: int = 0) -> list[float]:
    space = load_space("homl_mlp")
    strategy = make_strategy(name, space, seed=seed)
    ask_seconds = []
    done = 0
    while done < trials and not strategy.finished:
        t0 = time.perf_counter()
        got = strategy.ask(1)
        ask_seconds.append(time.perf_counter() - t0)
        if not got:
            break
        (s,) = got
        strategy.tell(Observation(s.trial_id, toy_value(space, s.params, s.budget), budget_used=s.budget))
        done += 1
    return ask_seconds


@pytest.mark.parametrize("name", sorted(available_strategies()))
def test_ask_tell_overhead(benchmark, name):
    trials = smoke(TRIALS.get(name, 100), 3)
    ask_tell_loop(name, 3)  # import the wrapped library (keras_tuner imports TensorFlow) first
    asks = benchmark.pedantic(ask_tell_loop, args=(name, trials), rounds=3 if trials >= 100 else 1, iterations=1)
    per_trial_ms = 1000 * benchmark.stats.stats.mean / len(asks)
    benchmark.extra_info.update(
        trials=len(asks), per_trial_ms=per_trial_ms, max_ask_ms=1000 * max(asks), last_ask_ms=1000 * asks[-1]
    )
    reported(
        f"ask+tell per trial, {name}",
        f"{per_trial_ms:.3f} ms ({len(asks)} trials on the toy objective; "
        f"slowest ask {1000 * max(asks):.1f} ms, last ask {1000 * asks[-1]:.1f} ms)",
    )


# -- Keras benchmarks (need the runner and objective) ----------------------------------------
def _settings(
    strategy: str,
    trials: int,
    seed: int,
    results_dir,
    max_epochs: int | None = None,
    space: str = "mlp",
    params: dict | None = None,
):
    from importlib.resources import files

    import yaml

    from harness.runner import settings_from_config

    conf = files("harness.conf")
    space_cfg = yaml.safe_load((conf / "search_space" / f"{space}.yaml").read_text())
    if params is None:  # what `strategy=<name>` runs: the shipped config's params
        params = yaml.safe_load((conf / "strategy" / f"{strategy}.yaml").read_text()).get("params") or {}
    cfg = {
        "strategy": {"name": strategy, "params": params},
        "search_space": space_cfg,
        "dataset": {"name": "digits", "split": {"val": 0.2, "test": 0.2}},
        "seed": seed,
        "budget": {"trials": trials, "seconds": None, "max_epochs": max_epochs},
        "results_dir": str(results_dir),
        "progress": False,
        "worker": {"processes": False},
        "overwrite": True,
    }
    return settings_from_config(cfg)


def test_tpe_harness_vs_optuna_directly(benchmark, tmp_path):
    import optuna

    from harness.runner import Runner
    from harness.strategies.tpe import suggest_params

    trials, seed, max_epochs, repeats = smoke((12, 0, 3, 2), (2, 0, 1, 1))
    space = load_space("mlp")
    problem = _settings("tpe", trials, seed, tmp_path / "direct", max_epochs=max_epochs).problem
    problem.setup()  # the Keras problem the harness runs, used directly
    problem.evaluate(Suggestion(999, {"layer_num": 2, "first_layer_unit": 64, "batch_size": 32, "epochs": smoke(5, 1)}))

    def direct() -> float:
        # The sampler `strategy=tpe` builds from conf/strategy/tpe.yaml (seed 002's classic TPE).
        sampler = optuna.samplers.TPESampler(seed=seed, multivariate=False, constant_liar=False)
        study = optuna.create_study(direction="maximize", sampler=sampler)
        t0 = time.perf_counter()
        for i in range(trials):
            trial = study.ask()
            params = suggest_params(trial, space)
            result = problem.evaluate(Suggestion(i, params))
            study.tell(trial, result.objective)
        return time.perf_counter() - t0

    def harness(k: int) -> float:
        runner = Runner(_settings("tpe", trials, seed, tmp_path / f"h{k}", max_epochs=max_epochs))
        t0 = time.perf_counter()
        runner.run()
        return time.perf_counter() - t0

    walls = {"direct": [], "harness": []}

    def measure() -> None:  # the work measured, timed once by pytest-benchmark
        for k in range(repeats):  # interleaved, so drift in machine load hits both alike
            walls["direct"].append(direct())
            walls["harness"].append(harness(k))

    benchmark.pedantic(measure, rounds=1, iterations=1)
    ratio = min(walls["harness"]) / min(walls["direct"])
    benchmark.extra_info.update(direct_s=walls["direct"], harness_s=walls["harness"], ratio=ratio)
    print(
        f"\ntpe: harness {[round(w, 2) for w in walls['harness']]} s vs Optuna directly "
        f"{[round(w, 2) for w in walls['direct']]} s"
    )
    goal(
        f"tpe through the harness / Optuna ask-tell directly, same Keras objective, {trials} trials",
        f"{ratio:.3f} (best of {repeats}: {min(walls['harness']):.1f} s vs {min(walls['direct']):.1f} s)",
        "<= 1.03",
        ratio <= 1.03,
    )


def _epochs_to_reach(df, target: float) -> float:
    df = df.sort_values("trial_id")
    epochs = df["budget_spent"].fillna(0).cumsum()
    reached = df["objective"].cummax() >= target - 1e-12  # validation accuracy
    return float(epochs[reached].iloc[0]) if reached.any() else math.inf


def test_hyperband_epochs_to_reach_random_best(benchmark, tmp_path):
    import pandas as pd

    from harness.runner import Runner

    seeds, random_trials = smoke((range(5), 15), (range(1), 2))
    # Smoke: 2 Hyperband trials of 1 epoch (the real schedule runs to its end).
    hb_trials, max_epochs = smoke((200, None), (2, 1))
    rows = []

    def measure() -> None:  # the work measured, timed once by pytest-benchmark
        for seed in seeds:
            r = Runner(_settings("random", random_trials, seed, tmp_path / f"r{seed}", max_epochs=max_epochs))
            r.run()
            rdf = pd.concat(pd.read_parquet(f) for f in (tmp_path / f"r{seed}").rglob("trials.parquet"))
            target = rdf["objective"].max()
            random_epochs = rdf["budget_spent"].sum()
            # Seed 003's schedule, run to its end (54 trials on mlp: the strategy says finished).
            h = Runner(
                _settings(
                    "hyperband",
                    hb_trials,
                    seed,
                    tmp_path / f"h{seed}",
                    max_epochs=max_epochs,
                    params={"factor": 3, "hyperband_iterations": 2},
                )
            )
            h.run()
            hdf = pd.concat(pd.read_parquet(f) for f in (tmp_path / f"h{seed}").rglob("trials.parquet"))
            need = _epochs_to_reach(hdf, target)
            rows.append((seed, target, random_epochs, need, hdf["objective"].max(), hdf["budget_spent"].sum()))
            print(
                f"\nseed {seed}: random best {target:.4f} in {random_epochs} epochs; hyperband reached "
                f"it after {need} epochs ({need / random_epochs:.0%}); hyperband best "
                f"{hdf['objective'].max():.4f} in {hdf['budget_spent'].sum()} epochs"
            )

    benchmark.pedantic(measure, rounds=1, iterations=1)
    share = [need / total for _, _, total, need, _, _ in rows]
    benchmark.extra_info.update(rows=rows, share=share)
    median = sorted(share)[len(share) // 2]
    reached = sum(math.isfinite(s) for s in share)
    goal(
        f"hyperband epochs to random search's best ({random_trials} random trials), digits mlp, {len(share)} seeds",
        f"median {median:.0%} of random's epochs (per seed: {', '.join(f'{s:.0%}' for s in share)}; "
        f"reached on {reached}/{len(share)} seeds)",
        "median <= 40 %",
        median <= 0.40,
    )
