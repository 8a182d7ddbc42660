"""Replaying strategies on the shipped `mlp_digits` table in the simulated clock (skipped by
default; `pytest tests/benchmarks/test_tabular_replay.py --benchmark-only -s`).

Each of the 5 card strategies x 10 seeds x 100 trials with `n_workers=4`: wall time on this
machine and the ratio of simulated to wall seconds (goal >= 1,000x), one test per strategy; then
the five together (goals: <= 60 s of wall time, >= 1,000x), from the figures of those tests.
Each prints GOAL lines (tests/benchmarks/_goals.py); HARNESS_BENCH_SMOKE=1 runs 1 seed x 5 trials.
"""

from __future__ import annotations

import time

import pandas as pd
import pytest

from _goals import goal, smoke

STRATEGIES = ("random", "tpe", "hyperband", "bayesian", "genetic")
SEEDS, TRIALS = smoke((range(10), 100), (range(1), 5))
RATIO_GOAL, WALL_GOAL = 1000, 60.0
MEASURED: dict[str, tuple[float, float]] = {}  # strategy -> (wall s, simulated s), for the total


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
                cfg = problem_config(
                    "tabular",
                    "problem.table=mlp_digits",
                    f"strategy={name}",
                    f"seed={seed}",
                    "n_workers=4",
                    f"budget.trials={TRIALS}",
                    "progress=false",
                )
                cfg["results_dir"] = str(tmp_path)
                t0 = time.perf_counter()
                summary = Runner(settings_from_config(cfg)).run()
                wall[name] += time.perf_counter() - t0
                df = pd.read_parquet(summary.run_dir / "trials.parquet")
                simulated[name] += float(df["elapsed_seconds"].max())
                best[name].append(float(df.loc[df.status == "ok", "objective"].max()))

    benchmark.pedantic(measure, rounds=1, iterations=1)
    ratio = simulated[strategy] / wall[strategy]
    MEASURED[strategy] = (wall[strategy], simulated[strategy])
    benchmark.extra_info.update(wall=wall, simulated=simulated, ratio=ratio)
    goal(
        f"replay of {strategy} on the mlp_digits table, {len(SEEDS)} seeds x {TRIALS} trials, n_workers=4, "
        "simulated / wall seconds",
        f"{ratio:,.0f}x ({simulated[strategy]:,.0f} simulated s in {wall[strategy]:.1f} s; "
        f"mean best val accuracy {sum(best[strategy]) / len(best[strategy]):.4f})",
        f">= {RATIO_GOAL:,}x",
        ratio >= RATIO_GOAL,
    )


# Nothing is timed here: the figures are the tests' above. The benchmark fixture only makes the
# test follow --benchmark-skip / --benchmark-only like the others; it is left unused on purpose.
@pytest.mark.filterwarnings("ignore:Benchmark fixture was not used")
def test_replay_all_five_strategies_together(benchmark):
    """The goals of the five strategies together, from the figures the tests above measured."""
    missing = [s for s in STRATEGIES if s not in MEASURED]
    if missing:
        pytest.skip(f"needs the figures of test_replay_10_seeds_100_trials for {', '.join(missing)} in the same run")
    wall = sum(w for w, _ in MEASURED.values())
    ratio = sum(s for _, s in MEASURED.values()) / wall
    name = f"replay of {', '.join(STRATEGIES)} together, {len(SEEDS)} seeds x {TRIALS} trials each"
    goal(f"{name}, wall time", f"{wall:.1f} s", f"<= {WALL_GOAL:.0f} s", wall <= WALL_GOAL)
    goal(f"{name}, simulated / wall seconds", f"{ratio:,.0f}x", f">= {RATIO_GOAL:,}x", ratio >= RATIO_GOAL)
