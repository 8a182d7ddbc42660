"""GA-GAN figure (issue 6): sample quality over generations must improve on the random generator.

Skipped by default; run with `pytest tests/benchmarks/test_gan_benchmark.py --benchmark-only -s`.
Runs `harness-gan`'s default settings (digits, population 100, 300 generations) and prints the
Fréchet distance (PCA-32 space, lower is better) and the classifier score (higher is better)
every 50 generations, next to the same scores for real held-out images.
"""
from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("keras")

from harness.gan import GanSettings, run_gan  # noqa: E402


def test_gan_quality_improves(benchmark, tmp_path):
    s = GanSettings(results_dir=str(tmp_path))
    result = benchmark.pedantic(run_gan, args=(s,), kwargs={"verbose": False}, rounds=1, iterations=1)
    h = result.history
    fd = np.array([g["frechet_distance"] for g in h])
    cs = np.array([g["classifier_score"] for g in h])
    print(f"\nreal held-out images: Fréchet {h[0]['real_frechet_distance']:.2f}, "
          f"classifier score {h[0]['real_classifier_score']:.2f}")
    for g in h[::50] + ([h[-1]] if len(h) % 50 != 1 else []):
        print(f"generation {g['generation']:4d}: Fréchet {g['frechet_distance']:.2f}, "
              f"classifier score {g['classifier_score']:.2f}")
    last = slice(-20, None)  # the last 20 generations: the score is noisy generation to generation
    benchmark.extra_info.update(frechet_random=float(fd[0]), frechet_last20=float(fd[last].mean()),
                                frechet_best=float(fd.min()), classifier_random=float(cs[0]),
                                classifier_last20=float(cs[last].mean()), seconds=h[-1]["elapsed_seconds"])
    print(f"mean of the last 20: Fréchet {fd[last].mean():.2f} (random {fd[0]:.2f}), "
          f"classifier score {cs[last].mean():.2f} (random {cs[0]:.2f}), {h[-1]['elapsed_seconds']:.0f} s")
    assert fd[last].mean() < 0.8 * fd[0]
    assert cs[last].mean() > cs[0]
