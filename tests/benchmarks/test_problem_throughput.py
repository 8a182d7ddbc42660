"""Throughput on zero-cost problems: the harness must not be the bottleneck (issue: problems as
plugins). Skipped by default; run with
`pytest tests/benchmarks/test_problem_throughput.py --benchmark-only -s`.

- 5,000 trials of `random` on BBOB f1 in 5-D, in one process, vs a hand-written Optuna
  `RandomSampler` ask/tell loop on the same ioh function: wall-time ratio (goal <= 2), and the
  per-trial cost of trials 4,001-5,000 vs 1-1,000 (goal <= 1.2x: no growth with n);
- `harness -m problem=bbob problem.function=1,...,24 strategy=random,tpe seed=0,1,2
  budget.trials=100` (144 runs): total wall time on this machine, basic and joblib launchers.
"""
from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pandas as pd

TRIALS = 5000


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

    cfg = problem_config("bbob", "problem.function=1", "problem.dimension=5", "strategy=random",
                         f"budget.trials={trials}", "progress=false")
    cfg["results_dir"] = str(results_dir)
    runner = Runner(settings_from_config(cfg))
    t0 = time.perf_counter()
    summary = runner.run()  # includes the final merge of the flushed parts into trials.parquet
    wall = time.perf_counter() - t0
    return wall, pd.read_parquet(summary.run_dir / "trials.parquet")


def test_bbob_5000_random_trials_vs_optuna_directly(benchmark, tmp_path):
    optuna_direct(50)  # imports and warm-up for both
    harness_run(50, tmp_path / "warm")
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
    first = elapsed[999] - elapsed[0]            # trials 2..1,000
    last = elapsed[4999] - elapsed[4000]         # trials 4,002..5,000: the same count
    growth = last / first
    per_trial_ms = {k: 1000 * min(v) / TRIALS for k, v in walls.items()}
    benchmark.extra_info.update(walls=walls, ratio=ratio, growth=growth, per_trial_ms=per_trial_ms)
    print(f"\nbbob f1 5-D, {TRIALS} random trials: harness {walls['harness']} s, Optuna directly "
          f"{walls['optuna']} s; ratio (best of 2) {ratio:.2f} (goal <= 2); per trial "
          f"{per_trial_ms['harness']:.3f} vs {per_trial_ms['optuna']:.3f} ms; cost of trials "
          f"4,001-5,000 / 1-1,000 = {growth:.2f} (goal <= 1.2)")
    assert len(df) == TRIALS and df["trial_id"].is_unique


def test_bbob_sweep_24_functions_2_strategies_3_seeds(benchmark, tmp_path):
    harness = str(Path(sys.executable).with_name("harness"))
    sweep = ["-m", "problem=bbob", f"problem.function={','.join(map(str, range(1, 25)))}",
             "strategy=random,tpe", "seed=0,1,2", "budget.trials=100", "progress=false"]
    walls = {}
    def measure() -> None:  # the work measured, timed once by pytest-benchmark
        for launcher in ("basic", "joblib"):
            extra = ["hydra/launcher=joblib", "hydra.launcher.n_jobs=2"] if launcher == "joblib" else []
            out = tmp_path / launcher
            t0 = time.perf_counter()
            proc = subprocess.run([harness, *sweep, *extra, f"results_dir={out}"], capture_output=True,
                                  text=True, cwd=tmp_path, timeout=3600)
            walls[launcher] = time.perf_counter() - t0
            assert proc.returncode == 0, proc.stderr[-3000:]
            from harness.results import read_results

            df = read_results(out)
            assert len(df) == 24 * 2 * 3 * 100 and df["regret"].notna().all()

    benchmark.pedantic(measure, rounds=1, iterations=1)
    benchmark.extra_info.update(walls=walls)
    print(f"\nbbob sweep, 144 runs x 100 trials: {walls['basic']:.1f} s with the basic launcher, "
          f"{walls['joblib']:.1f} s with joblib n_jobs=2")
