"""What the live view costs (issue #14, "Live view"): the per-trial overhead of mirroring every row
into an Optuna storage (`live.enabled=true`, harness.live). Skipped by default; run with
`pytest tests/benchmarks/test_live_overhead.py --benchmark-only -s`.

- 2,000 random trials on BBOB f1 in 5-D (the cheapest trial there is, so the mirror's cost is
  all that differs), with and without the mirror into the experiment's journal file: the extra
  milliseconds per trial (goal <= 2 ms) and the wall-time ratio (reported: on a problem whose
  trials take 0.1 ms it is large, on any real one it vanishes);
- the same with an SQLite URL (`live.storage=sqlite:///...`), 500 trials (reported).

Each prints GOAL lines (tests/benchmarks/_goals.py); HARNESS_BENCH_SMOKE=1 runs tiny sizes.
"""

from __future__ import annotations

import time
from pathlib import Path

from _goals import goal, reported, smoke

TRIALS = smoke(2000, 30)
SQLITE_TRIALS = smoke(500, 10)


def harness_run(trials: int, results_dir: Path, *live: str) -> float:
    from harness.runner import Runner
    from harness.settings import settings_from_config
    from harness.testing import problem_config

    cfg = problem_config(
        "bbob", "problem.function=1", "problem.dimension=5", "strategy=random", f"budget.trials={trials}", "progress=false", *live
    )
    cfg["results_dir"] = str(results_dir)
    runner = Runner(settings_from_config(cfg))
    t0 = time.perf_counter()
    summary = runner.run()
    wall = time.perf_counter() - t0
    assert summary.n_trials == trials
    if live:
        assert runner._live is not None and runner._live.enabled and runner._live.n_mirrored == trials
    return wall


def test_live_view_overhead_per_trial(benchmark, tmp_path):
    harness_run(smoke(50, 5), tmp_path / "warm", "live.enabled=true")  # imports (Optuna) and warm-up
    walls: dict[str, list[float]] = {"off": [], "journal": [], "sqlite": [], "off_sqlite": []}

    def measure() -> None:  # the work measured, timed once by pytest-benchmark
        for k in range(3):  # interleaved, so drift in machine load hits both alike
            walls["off"].append(harness_run(TRIALS, tmp_path / f"off{k}"))
            walls["journal"].append(harness_run(TRIALS, tmp_path / f"journal{k}", "live.enabled=true"))
        walls["off_sqlite"].append(harness_run(SQLITE_TRIALS, tmp_path / "off_sqlite"))
        url = f"sqlite:///{tmp_path / 'live.db'}"
        walls["sqlite"].append(harness_run(SQLITE_TRIALS, tmp_path / "sqlite", "live.enabled=true", f"live.storage={url}"))

    benchmark.pedantic(measure, rounds=1, iterations=1)
    off, on = min(walls["off"]), min(walls["journal"])
    overhead_ms = 1000 * (on - off) / TRIALS
    sqlite_ms = 1000 * (walls["sqlite"][0] - walls["off_sqlite"][0]) / SQLITE_TRIALS
    benchmark.extra_info.update(walls=walls, overhead_ms=overhead_ms, sqlite_ms=sqlite_ms)
    goal(
        f"live view, {TRIALS:,} random trials on bbob f1 5-D mirrored into the journal file: overhead per trial",
        f"{overhead_ms:.2f} ms (best of 3: {on:.2f} s with, {off:.2f} s without; {1000 * off / TRIALS:.3f} ms per trial without)",
        "<= 2 ms",
        overhead_ms <= 2.0,
    )
    reported(
        f"live view, {TRIALS:,} random trials on bbob f1 5-D: wall time with the journal mirror / without", f"{on / off:.1f}x"
    )
    reported(
        f"live view, {SQLITE_TRIALS:,} random trials on bbob f1 5-D mirrored into SQLite (live.storage=sqlite:///...): "
        f"overhead per trial",
        f"{sqlite_ms:.2f} ms",
    )
