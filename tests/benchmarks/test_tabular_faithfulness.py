"""How faithful is the shipped `mlp_digits` table to real training? (skipped by default; about
15 minutes on 2 cores: `pytest tests/benchmarks/test_tabular_faithfulness.py --benchmark-only -s`)

The 5 card strategies x 5 seeds x 20 trials, epochs capped at 10, run once for real (Keras on
digits, joblib n_jobs=2) and once on the table with the same settings: the strategies' mean best
validation accuracy both ways and the Spearman rank correlation of the two orderings. Also the
spread across the table's replicates (the noise a real rerun has). Reported, no goal (GOAL lines,
tests/benchmarks/_goals.py); HARNESS_BENCH_SMOKE=1 runs 2 strategies x 1 seed x 2 trials of 1 epoch,
the real ones in the `harness -m` process itself (one TensorFlow import instead of one per job).
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pandas as pd

from _goals import reported, smoke

STRATEGIES = smoke("random,tpe,hyperband,bayesian,genetic", "random,tpe")
SEEDS, TRIALS, EPOCHS = smoke(("0,1,2,3,4", 20, 10), ("0", 2, 1))
COMMON = [
    "search_space=mlp",
    "dataset=digits",
    f"strategy={STRATEGIES}",
    f"seed={SEEDS}",
    f"budget.trials={TRIALS}",
    f"budget.max_epochs={EPOCHS}",
    "progress=false",
]


def best_per_strategy(folder: Path) -> pd.Series:
    from harness.results import read_results

    df = read_results(folder)
    best = df[df.status == "ok"].groupby(["strategy", "seed"])["objective"].max()
    return best.groupby("strategy").mean()


def replicate_spread() -> dict[str, float]:
    from harness.tabular import read_table

    frame, meta = read_table("mlp_digits")
    out = {}
    for epoch in (EPOCHS, meta["epochs"]):
        at = frame[frame.epoch == epoch].groupby("config_id")["val"]
        out[f"epoch {epoch}: mean std over replicates"] = float(at.std().mean())
        out[f"epoch {epoch}: max std over replicates"] = float(at.std().max())
    return out


def test_table_vs_real_training(benchmark, tmp_path):
    from scipy.stats import spearmanr

    harness = str(Path(sys.executable).with_name("harness"))
    runs = {
        "real": smoke(["worker.threads=1", "hydra/launcher=joblib", "hydra.launcher.n_jobs=2"], ["worker.processes=false"]),
        "table": ["problem=tabular", "problem.table=mlp_digits"],
    }
    means = {}

    def measure() -> None:  # the work measured, timed once by pytest-benchmark
        for kind, extra in runs.items():
            proc = subprocess.run(
                [harness, "-m", *COMMON, *extra, f"experiment={kind}", f"results_dir={tmp_path}"],
                capture_output=True,
                text=True,
                cwd=tmp_path,
                timeout=3600,
            )
            assert proc.returncode == 0, proc.stderr[-3000:]
            means[kind] = best_per_strategy(tmp_path / kind)

    benchmark.pedantic(measure, rounds=1, iterations=1)
    both = pd.DataFrame(means)
    rho = float(spearmanr(both["real"], both["table"]).statistic)
    spread = replicate_spread()
    benchmark.extra_info.update(means=both.to_dict(), spearman=rho, spread=spread)
    n_seeds = len(SEEDS.split(","))
    print(f"\nmean best val accuracy ({n_seeds} seeds x {TRIALS} trials, <= {EPOCHS} epochs):")
    print(both.round(4).to_string())
    for name, value in spread.items():
        print(f"table replicate spread, {name}: {value:.4f}")
    reported(
        f"mlp_digits table vs real training, {len(both)} strategies x {n_seeds} seeds x {TRIALS} trials, <= {EPOCHS} epochs",
        "mean best val accuracy real / table: "
        + ", ".join(f"{name} {row.real:.4f} / {row.table:.4f}" for name, row in both.iterrows())
        + f"; Spearman rank correlation of the orderings {rho:.2f}",
    )
