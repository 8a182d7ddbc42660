"""GA-trained GAN: vectorised generators, operators, a tiny run's rows, scores and PNGs, the CLI."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

from harness.errors import ConfigError
from harness.gan import GanSettings, GeneratorPopulation, mutate, n_elite, next_generation, one_point_children


def test_vectorised_generation_matches_one_by_one():
    gens = GeneratorPopulation(latent=10, hidden=7, out=64)
    rng = np.random.default_rng(0)
    pop = gens.init(5, rng, "randn")
    z = rng.standard_normal((9, 10)).astype(np.float32)
    out = gens.generate(pop, z)
    assert out.shape == (5, 9, 64) and out.min() >= 0 and out.max() <= 1
    for genome, images in zip(pop, out):
        np.testing.assert_allclose(images, gens.generate_one(genome, z), rtol=1e-5, atol=1e-6)


def test_one_point_crossover_and_mutation():
    rng = np.random.default_rng(1)
    elites = np.stack([np.full(50, float(i)) for i in range(4)]).astype(np.float32)
    children = one_point_children(elites, 30, rng)
    for child in children:  # a prefix of one elite, then a suffix of another
        changes = np.flatnonzero(np.diff(child))
        assert len(changes) <= 1 and child[0] in range(4) and child[-1] in range(4)
    s = GanSettings(mutation="reset_one", mutation_rate=1.0)
    mutated = children.copy()
    mutate(mutated, s, rng)
    assert ((mutated != children).sum(axis=1) <= 1).all()  # seed 001: one gene redrawn
    mutated = children.copy()
    mutate(mutated, GanSettings(mut_indpb=0.5, mut_sigma=0.1), rng)
    assert 0.3 < (mutated != children).mean() < 0.7


def test_next_generation_keeps_the_best_fifth_and_breeds_from_it():
    """Seed 001's bugs, fixed: the elite are the top 20 % by *descending* fitness (higher = the
    discriminator takes the fakes for real more often), kept unchanged and first, and the next
    population is bred from this one rather than re-created."""
    rng = np.random.default_rng(0)
    pop = np.repeat(np.arange(20, dtype=np.float32)[:, None], 40, axis=1)  # agent i: genes all i
    fitness = rng.permutation(20) / 20.0
    s = GanSettings(population=20, mutation_rate=0.0)
    nxt = next_generation(pop, fitness, s, rng)
    assert nxt.shape == pop.shape and n_elite(s) == 4
    best_first = np.argsort(fitness)[::-1][:4]
    np.testing.assert_array_equal(nxt[:4], pop[best_first])  # the best four, best first
    for child in nxt[4:]:  # unmutated children: a prefix of one elite, the suffix of another
        assert set(np.unique(child)) <= set(best_first.tolist())
        assert len(np.flatnonzero(np.diff(child))) <= 1
    # Mutation: each child with probability mutation_rate; the elites never.
    s = GanSettings(population=400, mutation_rate=0.5, mut_indpb=1.0, mut_sigma=0.1)
    pop = np.zeros((400, 40), dtype=np.float32)
    nxt = next_generation(pop, np.arange(400.0), s, rng)
    assert not nxt[:80].any()
    assert 0.4 < (nxt[80:] != 0).any(axis=1).mean() < 0.6


def test_settings_are_validated():
    with pytest.raises(ConfigError, match="mutation"):
        GanSettings(mutation="flip").validate()
    with pytest.raises(ConfigError, match="elite_frac"):
        GanSettings(elite_frac=1.5).validate()


@pytest.mark.slow
def test_tiny_run_writes_rows_scores_and_png(tmp_path):
    from harness.gan import run_gan
    from harness.results import read_results

    s = GanSettings(population=6, generations=2, samples_per_agent=4, score_samples=64, d_batch=8, results_dir=str(tmp_path))
    result = run_gan(s, verbose=False)
    df = read_results(tmp_path).sort_values("trial_id")
    assert list(df.trial_id) == [0, 1, 2] and (df.status == "ok").all()
    assert (df.strategy == "ga_gan").all() and (df.task == "generation").all()
    hist = [json.loads(h)[0] for h in df.history]
    assert [h["generation"] for h in hist] == [0, 1, 2]
    for h, objective in zip(hist, df.objective):
        assert objective == pytest.approx(h["frechet_distance"])  # minimised, in its own direction
        assert 1.0 <= h["classifier_score"] <= 10.0 and np.isfinite(h["fitness_best"])
    assert json.loads(df.params.iloc[0])["population"] == 6 and (df["param.population"] == 6).all()
    art = result.run_dir / "_artifacts"
    for name in ("samples.png", "samples_gen000.png", "quality.png"):
        assert (art / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert json.loads((result.run_dir / "_run.json").read_text())["status"] == "finished"
    # same settings, same folder: refused without --overwrite
    from harness.errors import HarnessError

    with pytest.raises(HarnessError, match="overwrite"):
        run_gan(s, verbose=False)


def test_cli_help_and_bad_value():
    out = subprocess.run([sys.executable, "-m", "harness.gan", "--help"], capture_output=True, text=True)
    assert out.returncode == 0 and "--population" in out.stdout
    bad = subprocess.run([sys.executable, "-m", "harness.gan", "--mutation", "flip"], capture_output=True, text=True)
    assert bad.returncode == 2 and "mutation must be one of" in bad.stderr and "Traceback" not in bad.stderr
