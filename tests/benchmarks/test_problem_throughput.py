"""Throughput on zero-cost problems: the harness must not be the bottleneck (issue: problems as
plugins). Skipped by default; run with
`pytest tests/benchmarks/test_problem_throughput.py --benchmark-only -s`.

- 5,000 trials of `random` on BBOB f1 in 5-D, in one process, vs a hand-written Optuna
  `RandomSampler` ask/tell loop on the same ioh function: wall-time ratio (goal <= 2), and the
  per-trial cost of trials 4,001-5,000 vs 1-1,000 (goal <= 1.2x: no growth with n);
- `harness -m problem=bbob problem.function=1,...,24 strategy=random,tpe seed=0,1,2
  budget.trials=100` (144 runs): total wall time on this machine, basic and joblib launchers
  (reported, no goal).

Each prints GOAL lines (tests/benchmarks/_goals.py); HARNESS_BENCH_SMOKE=1 runs tiny sizes.
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pandas as pd

from _goals import goal, reported, smoke

TRIALS = smoke(5000, 50)
BLOCK = TRIALS // 5  # the first and the last 1,000 trials are compared


def optuna_direct(trials: int) -> float:
    import ioh
    import optuna
    from optuna.distributions import FloatDistribution

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    f = ioh.get_problem(1, instance=1, dimension=5, problem_class=ioh.ProblemClass.BBOB)
    dists = {f"x{i}": FloatDistribution(-5.0, 5.0) for i in range(5)}
    study = optuna.create_study(direction="minimize", sampler=optuna.samplers.RandomSampler(seed=0))
    t0 = time.perf_counter()
    for _ in range(trials):
        trial = study.ask(dists)
        study.tell(trial, f([trial.params[f"x{i}"] for i in range(5)]))
    return time.perf_counter() - t0


def harness_run(trials: int, results_dir: Path) -> tuple[float, pd.DataFrame]:
    from harness.runner import Runner
    from harness.testing import problem_config
    from harness.settings import settings_from_config

    cfg = problem_config(
        "bbob", "problem.function=1", "problem.dimension=5", "strategy=random", f"budget.trials={trials}", "progress=false"
    )
    cfg["results_dir"] = str(results_dir)
    runner = Runner(settings_from_config(cfg))
    t0 = time.perf_counter()
    summary = runner.run()  # includes the final merge of the flushed parts into trials.parquet
    wall = time.perf_counter() - t0
    return wall, pd.read_parquet(summary.run_dir / "trials.parquet")


def test_bbob_5000_random_trials_vs_optuna_directly(benchmark, tmp_path):
    optuna_direct(smoke(50, 5))  # imports and warm-up for both
    harness_run(smoke(50, 5), tmp_path / "warm")
    walls: dict[str, list[float]] = {"optuna": [], "harness": []}
    frames = []

    def measure() -> None:  # the work measured, timed once by pytest-benchmark
        for k in range(2):  # interleaved, so drift in machine load hits both alike
            walls["optuna"].append(optuna_direct(TRIALS))
            wall, df = harness_run(TRIALS, tmp_path / f"h{k}")
            walls["harness"].append(wall)
            frames.append(df)

    benchmark.pedantic(measure, rounds=1, iterations=1)
    ratio = min(walls["harness"]) / min(walls["optuna"])
    df = frames[0].sort_values("trial_id")
    elapsed = df["elapsed_seconds"].to_numpy()
    first = elapsed[BLOCK - 1] - elapsed[0]  # trials 2..1,000
    last = elapsed[TRIALS - 1] - elapsed[TRIALS - BLOCK]  # trials 4,002..5,000: the same count
    growth = last / first
    per_trial_ms = {k: 1000 * min(v) / TRIALS for k, v in walls.items()}
    benchmark.extra_info.update(walls=walls, ratio=ratio, growth=growth, per_trial_ms=per_trial_ms)
    assert len(df) == TRIALS and df["trial_id"].is_unique
    goal(
        f"{TRIALS:,} random trials on bbob f1 5-D, harness / Optuna RandomSampler ask-tell directly",
        f"{ratio:.2f} (best of 2: {min(walls['harness']):.2f} s vs {min(walls['optuna']):.2f} s; "
        f"{per_trial_ms['harness']:.3f} vs {per_trial_ms['optuna']:.3f} ms per trial)",
        "<= 2",
        ratio <= 2,
    )
    goal(
        f"{TRIALS:,} random trials on bbob f1 5-D, cost of the last {BLOCK:,} trials / the first {BLOCK:,}",
        f"{growth:.2f}x",
        "<= 1.2x",
        growth <= 1.2,
    )


def test_bbob_sweep_24_functions_2_strategies_3_seeds(benchmark, tmp_path):
    harness = str(Path(sys.executable).with_name("harness"))
    functions, strategies, seeds, trials = smoke((range(1, 25), "random,tpe", "0,1,2", 100), (range(1, 3), "random", "0", 5))
    runs = len(functions) * len(strategies.split(",")) * len(seeds.split(","))
    sweep = [
        "-m",
        "problem=bbob",
        f"problem.function={','.join(map(str, functions))}",
        f"strategy={strategies}",
        f"seed={seeds}",
        f"budget.trials={trials}",
        "progress=false",
    ]
    walls = {}

    def measure() -> None:  # the work measured, timed once by pytest-benchmark
        for launcher in ("basic", "joblib"):
            extra = ["hydra/launcher=joblib", "hydra.launcher.n_jobs=2"] if launcher == "joblib" else []
            out = tmp_path / launcher
            t0 = time.perf_counter()
            proc = subprocess.run(
                [harness, *sweep, *extra, f"results_dir={out}"], capture_output=True, text=True, cwd=tmp_path, timeout=3600
            )
            walls[launcher] = time.perf_counter() - t0
            assert proc.returncode == 0, proc.stderr[-3000:]
            from harness.results import read_results

            df = read_results(out)
            assert len(df) == runs * trials and df["regret"].notna().all()

    benchmark.pedantic(measure, rounds=1, iterations=1)
    benchmark.extra_info.update(walls=walls)
    reported(
        f"harness -m bbob sweep, {len(functions)} functions x strategy={strategies} x seed={seeds} "
        f"({runs} runs x {trials} trials)",
        f"{walls['basic']:.1f} s with the basic launcher, {walls['joblib']:.1f} s with joblib n_jobs=2",
    )
