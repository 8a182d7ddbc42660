"""GA-GAN figure (issue 6): sample quality over generations must improve on the random generator.

Skipped by default; run with `pytest tests/benchmarks/test_gan_benchmark.py --benchmark-only -s`.
Runs `harness-gan`'s default settings (digits, population 100, 300 generations) and prints the
Fréchet distance (PCA-32 space, lower is better) and the classifier score (higher is better)
every 50 generations, next to the same scores for real held-out images. Goal: the mean Fréchet
distance of the last 20 generations below 0.8x the random generator's, and a higher classifier
score. HARNESS_BENCH_SMOKE=1 runs 3 generations of 8 agents (goal not checked).
"""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("keras")

from harness.gan import GanSettings, run_gan  # noqa: E402

from _goals import goal, smoke  # noqa: E402


def test_gan_quality_improves(benchmark, tmp_path):
    s = GanSettings(results_dir=str(tmp_path), **smoke({}, {"population": 8, "generations": 3, "score_samples": 50}))
    result = benchmark.pedantic(run_gan, args=(s,), kwargs={"verbose": False}, rounds=1, iterations=1)
    h = result.history
    fd = np.array([g["frechet_distance"] for g in h])
    cs = np.array([g["classifier_score"] for g in h])
    print(
        f"\nreal held-out images: Fréchet {h[0]['real_frechet_distance']:.2f}, "
        f"classifier score {h[0]['real_classifier_score']:.2f}"
    )
    for g in h[::50] + ([h[-1]] if len(h) % 50 != 1 else []):
        print(
            f"generation {g['generation']:4d}: Fréchet {g['frechet_distance']:.2f}, classifier score {g['classifier_score']:.2f}"
        )
    last = slice(-20, None)  # the last 20 generations: the score is noisy generation to generation
    benchmark.extra_info.update(
        frechet_random=float(fd[0]),
        frechet_last20=float(fd[last].mean()),
        frechet_best=float(fd.min()),
        classifier_random=float(cs[0]),
        classifier_last20=float(cs[last].mean()),
        seconds=h[-1]["elapsed_seconds"],
    )
    goal(
        f"GA-GAN on {s.dataset}, population {s.population}: Fréchet distance, random generator -> "
        f"mean of the last 20 of {s.generations} generations",
        f"{fd[0]:.2f} -> {fd[last].mean():.2f} ({fd[last].mean() / fd[0]:.2f}x; {h[-1]['elapsed_seconds']:.0f} s)",
        "< 0.8x",
        bool(fd[last].mean() < 0.8 * fd[0]),
    )
    goal(
        f"GA-GAN on {s.dataset}, population {s.population}: classifier score, random generator -> "
        f"mean of the last 20 of {s.generations} generations",
        f"{cs[0]:.2f} -> {cs[last].mean():.2f}",
        "improves",
        bool(cs[last].mean() > cs[0]),
    )
