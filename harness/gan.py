"""A GAN whose generator is trained by a genetic algorithm, not by gradients (seed 001).

`harness-gan` (or `python -m harness.gan`) runs it; `harness-gan --help` lists the settings.

Generator: a NumPy MLP, latent 100 -> 100 sigmoid -> 64 (digits, 8x8) or 784 (MNIST, 28x28)
sigmoid; one individual ("agent") is one generator, its genome the flat vector of its weights.
Discriminator: seed 001's Keras CNN, Conv2D(64, 3, stride 2, same) -> LeakyReLU(0.2) ->
Dropout(0.4) -> Conv2D(64, 3, stride 2, same) -> LeakyReLU(0.2) -> Dropout(0.4) -> Flatten ->
Dense(1, sigmoid), Adam(2e-4, beta_1=0.5), binary cross-entropy; it keeps training on real vs
generated images, so the generators chase a moving target as in a gradient GAN.

One generation:
1. every agent generates `samples_per_agent` images from one latent batch shared by all agents
   (common random numbers: agents differ only by their weights), in one vectorised pass;
2. the discriminator trains `d_steps` steps, each on `d_batch` real images and `d_batch` fakes
   drawn from the whole population's samples;
3. fitness of an agent = the mean probability the (updated) discriminator gives its fakes of
   being real (higher = fools it better), scored for all agents in one discriminator call;
4. `next_generation`: truncation selection keeps the best `elite_frac` (20 %, at least 2) by
   descending fitness, unchanged; the rest of the next population are children of two random
   elites by one-point crossover of the flattened weights, each mutated with probability
   `mutation_rate`.

Fixed from the published code: the population is created once and kept across generations (it
was re-created every generation, so nothing was ever inherited); agents are sorted best first
(it sorted ascending, keeping the worst); `random.ragendint`-style misspellings.

Changed on purpose, not configurable: the seed trained the discriminator one step per agent and
used its accuracy on a fresh 50/50 batch as the fitness (P Keras steps per generation, and a
fitness that takes few values); here `d_steps` steps per generation see fakes from the whole
population, and the fitness is D's mean output.

Changed on purpose, configurable back to the seed's: `--mutation reset_one` is the seed's
mutation (with probability `mutation_rate` an agent gets one random gene redrawn from N(0, 1));
the default `gaussian` adds N(0, mut_sigma) noise to a `mut_indpb` share of the genes of every
child, which, unlike resetting one of ~17,000 genes, moves a generator measurably. `--init
randn` is the seed's N(0, 1) initial weights (saturated sigmoids: binary noise images); the
default `scaled` divides them by sqrt(fan_in). `--population 1000 --generations 1000
--mutation-rate 0.1` are the seed's sizes and rate.

Sample quality, measured every generation on `score_samples` images of the best agent from a
fixed latent batch (so generations are comparable):
- `frechet_distance` (lower is better; the run's `objective`, direction minimize): the Fréchet
  distance (Heusel et al., NeurIPS 2017) between Gaussians fitted to real test images and to the
  samples, in the space of a 32-component PCA fitted on the real training images; an FID with
  PCA standing in for Inception features, which do not exist for 8x8 digits.
- `classifier_score` (higher is better, 1..10): the Inception Score (Salimans et al., NeurIPS
  2016) computed with a logistic-regression digits classifier fitted on the real training
  images: exp(E_x KL(p(y|x) || p(y))), high when samples are each confidently one digit and
  together cover all ten. `confidence` (mean max p(y|x)) and `class_entropy` (entropy of p(y),
  nats) are its two halves. The same scores for real test images are stored as `real_*`.

Results: `results/<experiment>/<run_id>/trials.parquet` in harness.results' trial schema, one
row per generation (generation 0 = the random initial population): `trial_id` and
`budget` = generation, `status` ok, `objective` = frechet_distance (`objective_direction`
minimize), `task` =
"generation", `strategy` = "ga_gan", `search_space` = "gan_mlp_generator", the settings as
`params` / `param.*` columns, and the generation's metrics as a one-element `history` list, so
`harness.results.read_results` reads it like any run. Sample grids are PNGs in `_artifacts/`
(`samples_gen000.png`, the random generator, and `samples.png`, the last generation's best),
with `quality.png` plotting both scores per generation.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import sys
import time
from dataclasses import asdict, dataclass, fields
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np

from harness import __version__, provenance
from harness.errors import ConfigError, HarnessError

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

STRATEGY = "ga_gan"
SPACE = "gan_mlp_generator"
MUTATIONS = ("gaussian", "reset_one")
INITS = ("scaled", "randn")


@dataclass(frozen=True)
class GanSettings:
    """Every setting of a GA-GAN run; the defaults run in under a minute on 2 CPU cores."""

    dataset: str = "digits"
    seed: int = 0
    population: int = 100  # seed 001: 1000
    generations: int = 300  # seed 001: 1000
    elite_frac: float = 0.2  # truncation selection: the best 20 % survive unchanged
    mutation: str = "gaussian"  # gaussian | reset_one (seed 001)
    mutation_rate: float = 1.0  # probability that a child is mutated (seed 001: 0.1)
    mut_sigma: float = 0.1  # gaussian: noise standard deviation
    mut_indpb: float = 0.2  # gaussian: share of genes perturbed
    init: str = "scaled"  # scaled (randn / sqrt(fan_in)) | randn (seed 001)
    latent: int = 100
    hidden: int = 100
    samples_per_agent: int = 16  # fakes per agent scored by the discriminator each generation
    d_batch: int = 50  # seed 001: 50 real + 50 fake per discriminator step
    d_steps: int = 1  # discriminator steps per generation
    score_samples: int = 500  # samples of the best agent scored per generation
    experiment: str = "gan"
    results_dir: str = "results"
    overwrite: bool = False

    def validate(self) -> None:
        if self.mutation not in MUTATIONS:
            raise ConfigError(f"mutation must be one of {', '.join(MUTATIONS)}, but got {self.mutation!r}")
        if self.init not in INITS:
            raise ConfigError(f"init must be one of {', '.join(INITS)}, but got {self.init!r}")
        for name in ("population", "latent", "hidden", "samples_per_agent", "d_batch", "score_samples"):
            if getattr(self, name) < 1:
                raise ConfigError(f"{name} must be >= 1, but got {getattr(self, name)!r}")
        if self.population < 3:
            raise ConfigError(f"population must be >= 3 (two elite parents and a child), but got {self.population}")
        if self.generations < 0 or self.d_steps < 0 or self.seed < 0:
            raise ConfigError(
                f"generations, d_steps and seed must be >= 0, but got {self.generations}, {self.d_steps}, {self.seed}"
            )
        if not 0 < self.elite_frac < 1:
            raise ConfigError(f"elite_frac must be in (0, 1), but got {self.elite_frac!r}")
        if not 0 <= self.mutation_rate <= 1 or not 0 <= self.mut_indpb <= 1 or self.mut_sigma < 0:
            raise ConfigError(
                "mutation_rate and mut_indpb must be in [0, 1] and mut_sigma >= 0, but got "
                f"{self.mutation_rate}, {self.mut_indpb}, {self.mut_sigma}"
            )
        if "/" in self.experiment or self.experiment.startswith((".", "_")):
            raise ConfigError(f"experiment must be a plain folder name, but got {self.experiment!r}")

    def identity(self) -> dict[str, Any]:
        d = asdict(self)
        for key in ("experiment", "results_dir", "overwrite"):
            d.pop(key)
        return d

    @property
    def run_id(self) -> str:
        return f"{STRATEGY}_{self.dataset}_s{self.seed}_{provenance.config_hash(self.identity())}"


# -- the generator population ----------------------------------------------------------------
class GeneratorPopulation:
    """P MLP generators as one `(P, genes)` matrix; genome = [W1, b1, W2, b2] flattened."""

    def __init__(self, latent: int, hidden: int, out: int):
        self.latent, self.hidden, self.out = latent, hidden, out
        self.sizes = (latent * hidden, hidden, hidden * out, out)
        self.n_genes = sum(self.sizes)

    def init(self, n: int, rng: np.random.Generator, kind: str = "scaled") -> np.ndarray:
        genomes = rng.standard_normal((n, self.n_genes)).astype(np.float32)
        if kind == "scaled":
            w1, b1, w2, _ = np.cumsum(self.sizes)
            genomes[:, :w1] /= math.sqrt(self.latent)
            genomes[:, w1:b1] = 0.0
            genomes[:, b1:w2] /= math.sqrt(self.hidden)
            genomes[:, w2:] = 0.0
        return genomes

    def unpack(self, genomes: np.ndarray) -> tuple[np.ndarray, ...]:
        P = len(genomes)
        w1, b1, w2, _ = np.cumsum(self.sizes)
        return (
            genomes[:, :w1].reshape(P, self.latent, self.hidden),
            genomes[:, w1:b1],
            genomes[:, b1:w2].reshape(P, self.hidden, self.out),
            genomes[:, w2:],
        )

    def generate(self, genomes: np.ndarray, z: np.ndarray) -> np.ndarray:
        """Images `(P, n, out)` in [0, 1] of every generator on the shared latent batch `z (n, latent)`."""
        W1, b1, W2, b2 = self.unpack(np.asarray(genomes, dtype=np.float32))
        P, n = len(genomes), len(z)
        # Layer 1 for all agents in one GEMM: z against every W1 side by side.
        h = z.astype(np.float32) @ W1.transpose(1, 0, 2).reshape(self.latent, P * self.hidden)
        h = h.reshape(n, P, self.hidden).transpose(1, 0, 2) + b1[:, None, :]
        h = _sigmoid(h)
        return _sigmoid(np.matmul(h, W2) + b2[:, None, :])

    def generate_one(self, genome: np.ndarray, z: np.ndarray) -> np.ndarray:
        """The same as `generate` for one agent, written plainly (the reference in tests)."""
        W1, b1, W2, b2 = (a[0] for a in self.unpack(np.asarray(genome, dtype=np.float32)[None]))
        return _sigmoid(_sigmoid(z @ W1 + b1) @ W2 + b2)


def _sigmoid(z: np.ndarray) -> np.ndarray:
    return 0.5 * (np.tanh(0.5 * z) + 1.0)


def one_point_children(elites: np.ndarray, n: int, rng: np.random.Generator) -> np.ndarray:
    """`n` children of random elite pairs by one-point crossover of the flattened weights."""
    G = elites.shape[1]
    a = elites[rng.integers(0, len(elites), n)]
    b = elites[rng.integers(0, len(elites), n)]
    cut = rng.integers(1, G, n)
    take_b = np.arange(G)[None, :] >= cut[:, None]
    return np.where(take_b, b, a)


def mutate(children: np.ndarray, s: GanSettings, rng: np.random.Generator) -> None:
    """In place: seed 001's one-gene reset, or Gaussian noise on a share of the genes."""
    n, G = children.shape
    chosen = np.flatnonzero(rng.random(n) < s.mutation_rate)
    if s.mutation == "reset_one":
        genes = rng.integers(0, G, len(chosen))
        children[chosen, genes] = rng.standard_normal(len(chosen)).astype(np.float32)
        return
    if len(chosen):
        mask = rng.random((len(chosen), G)) < s.mut_indpb
        noise = rng.normal(0.0, s.mut_sigma, (len(chosen), G)).astype(np.float32)
        children[chosen] += noise * mask


def n_elite(s: GanSettings) -> int:
    """Elites kept per generation: `elite_frac` of the population, at least two parents."""
    return max(2, int(round(s.elite_frac * s.population)))


def next_generation(pop: np.ndarray, fitness: np.ndarray, s: GanSettings, rng: np.random.Generator) -> np.ndarray:
    """The next population from this one (never a fresh one: that was seed 001's bug).

    The `n_elite(s)` agents of highest fitness (the discriminator's mean "real" probability for
    their fakes: higher fools it better; the seed sorted ascending and kept the worst) come
    first, unchanged; the other rows are one-point-crossover children of random elite pairs,
    mutated (`mutate`).
    """
    order = np.argsort(-fitness, kind="stable")  # best first
    elites = pop[order[: n_elite(s)]]
    children = one_point_children(elites, len(pop) - len(elites), rng)
    mutate(children, s, rng)
    return np.concatenate([elites, children])


# -- the discriminator and the quality scores ------------------------------------------------
def build_discriminator(image_shape: tuple[int, int, int]) -> Any:
    """Seed 001's discriminator CNN and optimiser."""
    import keras

    L = keras.layers
    model = keras.Sequential(
        [
            keras.Input(shape=image_shape),
            L.Conv2D(64, (3, 3), strides=(2, 2), padding="same"),
            L.LeakyReLU(negative_slope=0.2),
            L.Dropout(0.4),
            L.Conv2D(64, (3, 3), strides=(2, 2), padding="same"),
            L.LeakyReLU(negative_slope=0.2),
            L.Dropout(0.4),
            L.Flatten(),
            L.Dense(1, activation="sigmoid"),
        ],
        name="discriminator",
    )
    model.compile(
        optimizer=keras.optimizers.Adam(learning_rate=0.0002, beta_1=0.5), loss="binary_crossentropy", metrics=["accuracy"]
    )
    return model


class QualityScorer:
    """Fréchet distance in a PCA space of real images, and a digits-classifier Inception Score."""

    def __init__(self, x_train: np.ndarray, y_train: np.ndarray, x_ref: np.ndarray, *, seed: int, components: int = 32):
        from sklearn.decomposition import PCA
        from sklearn.linear_model import LogisticRegression

        self.pca = PCA(n_components=min(components, x_train.shape[1]), random_state=seed).fit(x_train)
        self.clf = LogisticRegression(max_iter=500, C=1.0).fit(x_train, y_train)
        f = self.pca.transform(x_ref)
        self.mu, self.cov = f.mean(axis=0), np.cov(f, rowvar=False)

    def frechet(self, x: np.ndarray) -> float:
        from scipy import linalg

        f = self.pca.transform(x)
        mu, cov = f.mean(axis=0), np.cov(f, rowvar=False)
        covmean = linalg.sqrtm(self.cov @ cov)
        covmean = np.real(covmean)
        return float(((mu - self.mu) ** 2).sum() + np.trace(self.cov + cov - 2.0 * covmean))

    def classifier(self, x: np.ndarray) -> dict[str, float]:
        p = np.clip(self.clf.predict_proba(x), 1e-12, 1.0)
        marginal = p.mean(axis=0)
        kl = (p * (np.log(p) - np.log(marginal))).sum(axis=1).mean()
        return {
            "classifier_score": float(np.exp(kl)),
            "confidence": float(p.max(axis=1).mean()),
            "class_entropy": float(-(marginal * np.log(marginal)).sum()),
        }

    def score(self, x: np.ndarray) -> dict[str, float]:
        return {"frechet_distance": self.frechet(x), **self.classifier(x)}


def save_grid(images: np.ndarray, side: int, path: Path, title: str = "") -> None:
    """A PNG grid of images (n, side*side) in [0, 1]."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    n = len(images)
    cols = int(math.ceil(math.sqrt(n)))
    rows = int(math.ceil(n / cols))
    grid = np.full((rows * (side + 1) + 1, cols * (side + 1) + 1), 0.35, dtype=np.float32)
    for i, img in enumerate(images):
        r, c = divmod(i, cols)
        grid[1 + r * (side + 1) : 1 + r * (side + 1) + side, 1 + c * (side + 1) : 1 + c * (side + 1) + side] = img.reshape(
            side, side
        )
    fig, ax = plt.subplots(figsize=(4, 4 * rows / cols + (0.3 if title else 0)), dpi=100)
    ax.imshow(grid, cmap="gray_r", vmin=0, vmax=1, interpolation="nearest")
    ax.set_axis_off()
    if title:
        ax.set_title(title, fontsize=9)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def save_quality_plot(history: list[dict[str, Any]], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    gens = [h["generation"] for h in history]
    fig, (a, b) = plt.subplots(1, 2, figsize=(8, 3), dpi=100)
    a.plot(gens, [h["frechet_distance"] for h in history])
    a.axhline(history[0]["real_frechet_distance"], ls="--", c="gray", label="real held-out images")
    a.set(xlabel="generation", ylabel="Fréchet distance (PCA-32), lower is better")
    b.plot(gens, [h["classifier_score"] for h in history])
    b.axhline(history[0]["real_classifier_score"], ls="--", c="gray", label="real held-out images")
    b.set(xlabel="generation", ylabel="classifier score, higher is better")
    b.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


# -- the run ---------------------------------------------------------------------------------
@dataclass
class GanResult:
    run_dir: Path
    history: list[dict[str, Any]]
    best_genome: np.ndarray

    def format(self) -> str:
        first, last = self.history[0], self.history[-1]
        return (
            f"run {self.run_dir.name}: {last['generation']} generations in {last['elapsed_seconds']:.1f} s\n"
            f"Fréchet distance {first['frechet_distance']:.2f} (random generator) -> "
            f"{last['frechet_distance']:.2f} (real held-out images: {first['real_frechet_distance']:.2f})\n"
            f"classifier score {first['classifier_score']:.2f} -> {last['classifier_score']:.2f} "
            f"(real: {first['real_classifier_score']:.2f})\n"
            f"results: {self.run_dir / 'trials.parquet'}\nsamples: {self.run_dir / '_artifacts' / 'samples.png'}"
        )


def _load_images(name: str, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, int]:
    from harness.datasets import load_dataset

    if name not in ("digits", "mnist", "fashion_mnist"):
        raise ConfigError(f"the GA-GAN generates images: dataset must be digits, mnist or fashion_mnist, but got {name!r}")
    d = load_dataset(name, seed=seed)
    side = d.x_train.shape[1]
    flat = lambda a: a.reshape(len(a), -1).astype(np.float32)  # noqa: E731
    x_ref = np.concatenate([flat(d.x_val), flat(d.x_test)])
    return flat(d.x_train), d.y_train, x_ref, side


def run_gan(s: GanSettings, *, base_dir: Path | None = None, verbose: bool = True) -> GanResult:
    """Evolve generators for `s.generations` generations; writes rows, PNGs and `_run.json`."""
    s.validate()  # before TensorFlow is imported: bad settings fail fast

    import keras

    from harness.results import ARTIFACTS_DIR, METRIC_PREFIX, PARAM_PREFIX, RUN_FILE, TRIALS_FILE, write_json_atomic
    from harness.store import RunStore

    results_dir = Path(s.results_dir).expanduser()
    if not results_dir.is_absolute() and base_dir is not None:
        results_dir = base_dir / results_dir
    run_dir = results_dir / s.experiment / s.run_id
    if (run_dir / TRIALS_FILE).exists() or any(run_dir.glob("trials.part-*.parquet")):
        if not s.overwrite:
            raise HarnessError(
                f"{str(run_dir)!r} already holds this run's results; pass --overwrite to "
                f"start over, or change --experiment / --seed"
            )
        shutil.rmtree(run_dir)
    art = run_dir / ARTIFACTS_DIR
    art.mkdir(parents=True, exist_ok=True)

    t_start = time.perf_counter()
    keras.utils.set_random_seed(s.seed)
    rng = np.random.default_rng(s.seed)
    x_train, y_train, x_ref, side = _load_images(s.dataset, s.seed)
    image_shape = (side, side, 1)
    scorer = QualityScorer(x_train, y_train, x_ref, seed=s.seed)
    real = scorer.score(x_ref[rng.choice(len(x_ref), min(s.score_samples, len(x_ref)), replace=False)])
    real["frechet_distance"] = scorer.frechet(
        x_train[rng.choice(len(x_train), min(s.score_samples, len(x_train)), replace=False)]
    )
    real = {f"real_{k}": v for k, v in real.items()}

    gens = GeneratorPopulation(s.latent, s.hidden, side * side)
    pop = gens.init(s.population, rng, s.init)
    disc = build_discriminator(image_shape)
    z_score = rng.standard_normal((s.score_samples, s.latent)).astype(np.float32)

    prov = provenance.collect()
    settings = asdict(s)
    param_types = {k: _arrow_type(v) for k, v in s.identity().items()}
    store = RunStore(run_dir, param_types, flush_seconds=0.0)  # one row per generation, each on disk
    started_at = datetime.now(timezone.utc).isoformat()
    run_info = {
        "run_id": s.run_id,
        "experiment": s.experiment,
        "kind": "ga_gan",
        "settings": settings,
        "provenance": prov,
        "started_at": started_at,
        "status": "running",
    }
    write_json_atomic(run_dir / RUN_FILE, run_info)

    history: list[dict[str, Any]] = []
    fitness = np.zeros(s.population)
    d_metrics = {"d_loss": math.nan, "d_accuracy": math.nan}

    def discriminator_step() -> dict[str, float]:
        z = rng.standard_normal((s.samples_per_agent, s.latent)).astype(np.float32)
        fakes = gens.generate(pop, z).reshape(-1, side * side)
        out: dict[str, float] = dict(d_metrics)
        for _ in range(s.d_steps):
            real_x = x_train[rng.choice(len(x_train), s.d_batch, replace=len(x_train) < s.d_batch)]
            fake_x = fakes[rng.choice(len(fakes), s.d_batch, replace=len(fakes) < s.d_batch)]
            xb = np.concatenate([real_x, fake_x]).reshape(-1, *image_shape)
            yb = np.concatenate([np.ones(s.d_batch), np.zeros(s.d_batch)]).astype(np.float32)
            loss, acc = disc.train_on_batch(xb, yb)
            out = {"d_loss": float(loss), "d_accuracy": float(acc)}
        # Fitness with the updated discriminator, every agent in one call.
        p_real = np.asarray(disc(fakes.reshape(-1, *image_shape), training=False)).reshape(s.population, -1)
        fitness[:] = p_real.mean(axis=1)
        return out

    def record(generation: int, train_seconds: float) -> None:
        t0 = time.perf_counter()
        best = int(np.argmax(fitness))
        samples = gens.generate(pop[best : best + 1], z_score)[0]
        metrics = {
            "generation": generation,
            **scorer.score(samples),
            **real,
            "fitness_best": float(fitness.max()),
            "fitness_mean": float(fitness.mean()),
            "fitness_std": float(fitness.std()),
            **d_metrics,
        }
        eval_seconds = time.perf_counter() - t0
        metrics["elapsed_seconds"] = time.perf_counter() - t_start
        history.append(metrics)
        row = {
            "schema_version": 2,
            "experiment": s.experiment,
            "run_id": s.run_id,
            "problem": "ga_gan",
            "instance": f"{SPACE}_{s.dataset}",
            "strategy": STRATEGY,
            "strategy_version": __version__,
            "search_space": SPACE,
            "dataset": s.dataset,
            "task": "generation",
            "seed": s.seed,
            "trial_id": generation,
            "parent_trial_id": None,
            "status": "ok",
            "objective_name": "frechet_distance",
            "objective_direction": "minimize",
            "objective": metrics["frechet_distance"],
            "budget": generation,
            "budget_spent": 1 if generation else 0,
            "cost_seconds": train_seconds + eval_seconds,
            "ask_seconds": 0.0,
            "tell_seconds": 0.0,
            "elapsed_seconds": metrics["elapsed_seconds"],
            "finished_at": datetime.now(timezone.utc),
            "params": json.dumps(s.identity(), sort_keys=True, default=str),
            **{PARAM_PREFIX + k: v for k, v in s.identity().items()},
            **{METRIC_PREFIX + k: v for k, v in metrics.items() if k not in ("generation", "elapsed_seconds")},
            "history": json.dumps([metrics], default=float),
            "error": None,
            "harness_version": __version__,
            "hostname": prov["hostname"],
            "config_hash": provenance.config_hash(s.identity()),
        }
        store.add(row)
        store.flush()
        if verbose:
            print(
                f"generation {generation:4d}: Fréchet {metrics['frechet_distance']:8.3f}  classifier score "
                f"{metrics['classifier_score']:5.2f}  fitness best {metrics['fitness_best']:.3f} "
                f"mean {metrics['fitness_mean']:.3f}  D acc {d_metrics['d_accuracy']:.2f}",
                file=sys.stderr,
            )

    status = "failed"
    try:
        t0 = time.perf_counter()
        d_metrics.update(discriminator_step())
        record(0, time.perf_counter() - t0)
        best = int(np.argmax(fitness))
        save_grid(
            gens.generate(pop[best : best + 1], z_score[:64])[0],
            side,
            art / "samples_gen000.png",
            "generation 0 (random generators)",
        )
        for generation in range(1, s.generations + 1):
            t0 = time.perf_counter()
            pop = next_generation(pop, fitness, s, rng)
            d_metrics.update(discriminator_step())
            record(generation, time.perf_counter() - t0)
        status = "finished"
    finally:
        store.close()
        store.merge_parts()
        run_info.update(status=status, ended_at=datetime.now(timezone.utc).isoformat())
        write_json_atomic(run_dir / RUN_FILE, run_info)
    best = int(np.argmax(fitness))
    save_grid(
        gens.generate(pop[best : best + 1], z_score[:64])[0], side, art / "samples.png", f"generation {s.generations}, best agent"
    )
    save_quality_plot(history, art / "quality.png")
    np.save(art / "best_generator.npy", pop[best])
    return GanResult(run_dir, history, pop[best])


def _arrow_type(value: Any) -> Any:
    import pyarrow as pa

    if isinstance(value, bool):
        return pa.bool_()
    if isinstance(value, int):
        return pa.int64()
    if isinstance(value, float):
        return pa.float64()
    return pa.string()


# -- CLI -------------------------------------------------------------------------------------
def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="harness-gan",
        description="Train a GAN generator with a genetic algorithm (seed 001): an MLP generator population "
        "against seed 001's Keras CNN discriminator. Writes "
        "results/<experiment>/<run_id>/trials.parquet (one row per generation) and sample PNGs.",
        epilog="Example: harness-gan --generations 100 --population 100. Docs: docs/neuroevolution.md.",
    )
    defaults = GanSettings()
    helps = {
        "dataset": "digits (8x8, default), mnist or fashion_mnist (28x28, need the cached files)",
        "mutation": "gaussian (default) or reset_one (seed 001)",
        "init": "scaled (randn / sqrt(fan_in), default) or randn (seed 001)",
    }
    for f in fields(GanSettings):
        value = getattr(defaults, f.name)
        flag = "--" + f.name.replace("_", "-")
        if isinstance(value, bool):
            p.add_argument(flag, action="store_true", help="delete this run's previous results first")
        else:
            p.add_argument(flag, type=type(value), default=value, help=f"{helps.get(f.name, '')} (default: {value})".strip())
    p.add_argument("--quiet", action="store_true", help="no per-generation line on stderr")
    return p


def main(argv: list[str] | None = None) -> None:
    args = vars(parser().parse_args(argv))
    quiet = args.pop("quiet")
    try:
        result = run_gan(GanSettings(**args), base_dir=Path.cwd(), verbose=not quiet)
    except HarnessError as exc:
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(2)
    except KeyboardInterrupt:
        print("interrupted: the generations finished so far are saved", file=sys.stderr)
        sys.exit(130)
    print(result.format())


if __name__ == "__main__":
    main()
