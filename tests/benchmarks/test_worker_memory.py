"""Peak memory over 200 sequential small Keras trials, with and without worker recycling.

TensorFlow registers a gradient function per traced train step and never drops it, keeping each
trial's graph (about 7 MB per homl_mlp trial here) until the objective started unregistering the
old ones; what a library still keeps is ~0.6 MB per trial. Replacing the worker process after
`worker.max_trials` trials or once it grew by `worker.max_memory_growth_mb` bounds the run's
memory. Goal with the defaults: growth < 200 MB.

Skipped by default (`--benchmark-skip`); run with
`pytest tests/benchmarks/test_worker_memory.py --benchmark-only -s`. Several minutes on 2 cores.
Memory is the resident set of the runner plus its worker processes, sampled every 0.2 s;
growth is the peak after trial 10 minus the mean over trials 5-10 (everything warm). Prints GOAL
lines (tests/benchmarks/_goals.py): the defaults against the goal, never replacing workers as
reported. HARNESS_BENCH_SMOKE=1 runs 4 trials (growth: peak after trial 2 minus trials 1-2).
"""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path

import pytest

from _goals import goal, reported, smoke

TRIALS = int(os.environ.get("HARNESS_BENCH_TRIALS", smoke("200", "4")))
WARM = (5, 10) if TRIALS > 20 else (1, 2)  # the trials over which the warm baseline is taken
GOAL_MB = 200


def rss_mb(pid: int) -> float:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


def tree_rss_mb(pid: int) -> float:
    total = rss_mb(pid)
    try:
        children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    except OSError:
        children = []
    return total + sum(tree_rss_mb(int(c)) for c in children)


RECYCLING = {"defaults": [], "never": ["worker.max_trials=null", "worker.max_memory_growth_mb=null"]}


def measure(tmp_path: Path, recycling: str) -> dict:
    from hydra import compose, initialize_config_module
    from omegaconf import OmegaConf

    from harness.runner import Runner, settings_from_config

    with initialize_config_module("harness.conf", version_base="1.3"):
        cfg = compose(
            "config",
            overrides=[
                "search_space=homl_mlp",
                f"budget.trials={TRIALS}",
                "budget.max_epochs=1",
                "progress=false",
                *RECYCLING[recycling],
                f"experiment=mem_{recycling}",
            ],
        )
    plain = OmegaConf.to_container(cfg, resolve=True)
    plain["results_dir"] = str(tmp_path / "results")
    runner = Runner(settings_from_config(plain))
    samples: list[tuple[int, float]] = []
    stop = threading.Event()

    def sample() -> None:
        while not stop.is_set():
            samples.append((len(runner.rows), tree_rss_mb(os.getpid())))
            time.sleep(0.2)

    thread = threading.Thread(target=sample, daemon=True)
    t0 = time.perf_counter()
    thread.start()
    try:
        summary = runner.run()
    finally:
        stop.set()
        thread.join()
    warm = [mb for n, mb in samples if WARM[0] <= n <= WARM[1]] or [samples[0][1]]
    base = sum(warm) / len(warm)
    peak = max([mb for n, mb in samples if n > WARM[1]] or [samples[-1][1]])
    return {
        "recycling": recycling,
        "workers_started": runner.workers_started,
        "trials": summary.n_trials,
        "failed": summary.n_failed,
        "seconds": round(time.perf_counter() - t0, 1),
        "baseline_mb": round(base, 1),
        "peak_mb": round(peak, 1),
        "growth_mb": round(peak - base, 1),
        "end_mb": round(samples[-1][1], 1),
    }


@pytest.mark.slow
@pytest.mark.parametrize("recycling", list(RECYCLING))
def test_peak_memory_over_200_trials(benchmark, tmp_path, recycling):
    result = benchmark.pedantic(measure, args=(tmp_path, recycling), rounds=1, iterations=1)
    benchmark.extra_info.update(result)
    print(f"\nmemory: {result}")
    assert result["trials"] == TRIALS
    name = f"memory growth over {TRIALS} small Keras trials, worker recycling: {recycling}"
    measured = f"{result['growth_mb']:,.0f} MB ({result['workers_started']} workers started, {result['seconds']:.0f} s)"
    if recycling == "defaults":
        goal(name, measured, f"< {GOAL_MB} MB", result["growth_mb"] < GOAL_MB)
    else:
        reported(name, measured)
