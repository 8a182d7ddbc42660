"""Replaying strategies on the shipped `mlp_digits` table in the simulated clock (skipped by
default; `pytest tests/benchmarks/test_tabular_replay.py --benchmark-only -s`).

Each of the 5 card strategies x 10 seeds x 100 trials with `n_workers=4`: wall time on this
machine (goal for all five together <= 60 s end to end) and the ratio of simulated to wall
seconds (goal >= 1,000x), one test per strategy.
"""
from __future__ import annotations

import time

import pandas as pd
import pytest

STRATEGIES = ("random", "tpe", "hyperband", "bayesian", "genetic")
SEEDS, TRIALS = range(10), 100


@pytest.mark.parametrize("strategy", STRATEGIES)
def test_replay_10_seeds_100_trials(benchmark, tmp_path, strategy):
    from harness.runner import Runner
    from harness.settings import settings_from_config
    from harness.testing import problem_config

    wall: dict[str, float] = {}
    simulated: dict[str, float] = {}
    best: dict[str, list[float]] = {}
    def measure() -> None:  # the work measured, timed once by pytest-benchmark
        for name in (strategy,):
            wall[name] = simulated[name] = 0.0
            best[name] = []
            for seed in SEEDS:
                cfg = problem_config("tabular", "problem.table=mlp_digits", f"strategy={name}", f"seed={seed}",
                                     "n_workers=4", f"budget.trials={TRIALS}", "progress=false")
                cfg["results_dir"] = str(tmp_path)
                t0 = time.perf_counter()
                summary = Runner(settings_from_config(cfg)).run()
                wall[name] += time.perf_counter() - t0
                df = pd.read_parquet(summary.run_dir / "trials.parquet")
                simulated[name] += float(df["elapsed_seconds"].max())
                best[name].append(float(df.loc[df.status == "ok", "objective"].max()))

    benchmark.pedantic(measure, rounds=1, iterations=1)
    total = sum(wall.values())
    ratio = sum(simulated.values()) / total
    benchmark.extra_info.update(wall=wall, simulated=simulated, total_wall=total, ratio=ratio)
    for strategy in wall:
        print(f"\n{strategy}: {wall[strategy]:.1f} s wall for {len(SEEDS)} runs, {simulated[strategy]:.0f} "
              f"simulated s ({simulated[strategy] / wall[strategy]:,.0f}x); mean best val accuracy "
              f"{sum(best[strategy]) / len(best[strategy]):.4f}")
    print(f"{strategy}: {total:.1f} s wall, simulated/wall {ratio:,.0f}x (goals, all 5 strategies together: "
          f"<= 60 s, >= 1,000x)")
