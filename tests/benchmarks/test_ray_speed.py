"""Two Ray actors vs two local worker processes on the same run (goal: Ray's wall <= 1.2x local).

The same 16 trials, each a fixed 0.25 s of CPU (a busy loop: no TensorFlow, so the figure is
the backend's overhead, not the model's), with `n_workers=2`: once with `worker.backend=local`
(two spawned worker processes) and once with `worker.backend=ray` on a local Ray instance that
is already running (as on a cluster one joins: the actors' start-up is in the run, Ray's is
not). Wall time of the whole run, the better of two rounds each, interleaved. Starting the local
Ray instance itself (what a run with `ray.address=null` adds) is reported on its own line.

Skipped by default (`--benchmark-skip`); run with
`pytest tests/benchmarks/test_ray_speed.py --benchmark-only -s`. Needs Ray (`pip install -e
".[ray]"`; skipped without it) and an otherwise idle machine with 2 cores or more.
HARNESS_BENCH_SMOKE=1 runs 2 trials of 0.05 s, one round (goal not checked).
"""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

from _goals import goal, reported, smoke

TRIALS = int(os.environ.get("HARNESS_BENCH_TRIALS", smoke("16", "2")))
CPU_SECONDS = smoke(0.25, 0.05)
ROUNDS = smoke(2, 1)
GOAL = 1.2


@dataclass(frozen=True)
class BusyObjective:
    """A trial that costs `seconds` of CPU time in its process, whatever the params."""

    seconds: float

    def build(self) -> BusyObjective:
        return self

    def __call__(self, suggestion, report=None):
        from harness.objective import TrialResult
        from harness.strategy import TrialStatus

        t0 = time.process_time()
        while time.process_time() - t0 < self.seconds:
            pass
        value = suggestion.params["n_neurons"] / 256
        return TrialResult(TrialStatus.OK, value, val_accuracy=value, test_accuracy=value, budget_epochs=1, epochs_trained=1)


def wall_seconds(tmp_path: Path, backend: str, round_: int) -> float:
    from hydra import compose, initialize_config_module
    from omegaconf import OmegaConf

    from harness.runner import Runner, settings_from_config

    with initialize_config_module("harness.conf", version_base="1.3"):
        cfg = compose(
            "config",
            overrides=[
                "search_space=homl_mlp",
                f"budget.trials={TRIALS}",
                "progress=false",
                "n_workers=2",
                f"worker.backend={backend}",
                f"experiment=ray_speed_{backend}_{round_}",
            ],
        )
    plain = OmegaConf.to_container(cfg, resolve=True)
    plain["results_dir"] = str(tmp_path / "results")
    t0 = time.perf_counter()
    summary = Runner(settings_from_config(plain), objective=BusyObjective(CPU_SECONDS)).run()
    assert summary.n_trials == TRIALS and summary.n_failed == 0
    return time.perf_counter() - t0


def test_two_ray_actors_vs_two_local_worker_processes(benchmark, tmp_path):
    ray = pytest.importorskip("ray", reason='Ray is not installed (the [ray] extra: pip install -e ".[ray]")')
    ray_tmp = tempfile.mkdtemp(prefix="rayb-", dir="/tmp")  # Ray's socket paths must be short
    saved = dict(os.environ)
    os.environ.update(
        RAY_AUTH_MODE="disabled",
        RAY_TMPDIR=ray_tmp,
        PYTHONPATH=os.pathsep.join(filter(None, [str(Path(__file__).parent), saved.get("PYTHONPATH")])),
    )
    try:
        t0 = time.perf_counter()
        ray.init(
            address="local",
            num_cpus=2,
            include_dashboard=False,
            log_to_driver=False,
            logging_level=logging.WARNING,
            _temp_dir=ray_tmp,
        )
        ray_start = time.perf_counter() - t0

        def both() -> dict:
            local, on_ray = [], []
            for r in range(ROUNDS):
                local.append(wall_seconds(tmp_path, "local", r))
                on_ray.append(wall_seconds(tmp_path, "ray", r))
            return {
                "local_s": round(min(local), 2),
                "ray_s": round(min(on_ray), 2),
                "ratio": round(min(on_ray) / min(local), 2),
                "ray_start_s": round(ray_start, 1),
                "cpus": os.cpu_count(),
            }

        result = benchmark.pedantic(both, rounds=1, iterations=1)
    finally:
        ray.shutdown()
        os.environ.clear()
        os.environ.update(saved)
        shutil.rmtree(ray_tmp, ignore_errors=True)
    benchmark.extra_info.update(result)
    work = TRIALS * CPU_SECONDS / 2
    goal(
        f"2 Ray actors / 2 local worker processes, {TRIALS} trials of {CPU_SECONDS:g} s CPU "
        f"({work:g} s of work per worker), Ray running, {result['cpus']} CPUs",
        f"{result['ratio']:.2f}x ({result['local_s']} s local, {result['ray_s']} s Ray)",
        f"<= {GOAL}x",
        result["ratio"] <= GOAL,
    )
    reported("starting a local Ray instance (ray.address=null adds it to a run)", f"{result['ray_start_s']} s")
