"""Neuroevolution: a DEAP genetic algorithm evolves the *weights* of the model the space built.

The `trainer=neuroevolution` alternative to backpropagation (seed 000; Montana & Davis, "Training
feedforward neural networks using genetic algorithms", IJCAI 1989; DEAP: Fortin et al., JMLR
2012). The genome is the flat vector of all the Keras model's weights in `model.get_weights()`
order; the model itself is only used at the start (to read its architecture) and at the end
(the hall-of-fame genome is set into it, so the objective's `model.predict`, the report's
classification report and any Keras tooling see a normal trained model).

What makes it fast: fitness is computed for the whole population at once. The genomes are
stacked into a `(population, genes)` matrix, each Dense layer's kernels are a `(population, in,
out)` view of it, the first layer is one GEMM of the shared input with all kernels side by side
and the later ones are batched matmuls (`numpy.matmul` over the population axis). Seed 000 paid
a Keras `set_weights` + `predict` call per individual instead; `evaluate_with_keras` keeps that
path for tests and the benchmark.

Supported models: chains of `InputLayer`, `Flatten`, `Dense` (relu, linear, sigmoid, tanh,
softmax, elu, selu, silu), `Activation` and `Dropout` (a no-op at inference). Anything else
(Conv2D, pooling, normalisation...) raises `NotSupportedError` naming the layer.

Budget. One harness *epoch* is `generations_per_epoch` generations (default 10, seed 000's
RGEN chunk), so `epochs` from the space or the strategy (capped by `budget.max_epochs`) maps to
`epochs * generations_per_epoch` generations; `generations` replaces that total. `seconds`
(wall clock) or `cpu_seconds` (process CPU time) stop evolution at a deadline: opt-in (null by
default), since the number of generations, and so the result, then depends on the machine's
speed and load. Bounded by generations only, a run is a function of its seed, however busy the
machine (the same CPU kind and libraries give the same floats).
A genome over `LARGE_GENOME` weights gets a one-line note on stderr (once per process): the GA
improves it slowly, and small Dense nets (the `ne_mlp` space) train well. The history has
one dict per epoch (what the objective and pruning strategies count), each with the epoch's last
generation's statistics and a `generations` list holding every generation's best/mean/std/min/max fitness and the
validation accuracy of the hall-of-fame individual. With `generations_per_epoch: 1` the history
is one dict per generation.

Threads: the fitness pass runs with BLAS limited to `blas_threads` (default 1) threads, through
threadpoolctl. It is many small GEMMs, for which a threaded OpenBLAS costs more in waking and
syncing threads than it saves, and far more when the cores are busy: on 2 shared cores, one
thread took 5-12x less CPU per fitness pass for nets of two or more hidden layers.

Randomness: DEAP's operators draw from the global `random` module; every DEAP call runs inside a
swap of the global state for a private `random.Random(seed)` state, and the vectorised variation
operators draw from a private `numpy.random.Generator(seed)`, so a run is a function of its
seed and leaves the caller's random state untouched.
"""

from __future__ import annotations

import contextlib
import math
import random
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np

from harness.log import get_logger
from harness.errors import ConfigError, NotSupportedError

#: Every option of the trainer (`trainer.params` in conf/trainer/neuroevolution*.yaml).
DEFAULTS: dict[str, Any] = {
    "population": 25,  # individuals per generation
    "generations_per_epoch": 10,  # generations in one harness epoch
    "generations": None,  # total generations; replaces epochs * generations_per_epoch
    "seconds": None,  # wall-clock budget for the evolution, checked every generation
    "cpu_seconds": None,  # process CPU-time budget (all cores summed), checked every generation
    "cxpb": 0.6,  # probability that a consecutive pair is mated (eaSimple's CXPB)
    "mutpb": 0.3,  # probability that an individual is mutated (eaSimple's MUTPB)
    "tournsize": 5,  # selTournament's tournament size
    "elitism": 0,  # hall-of-fame individuals copied unchanged into each generation
    "hof_size": 1,  # tools.HallOfFame size
    "crossover": "mean",  # mean | blend | uniform | one_point | two_point | none
    "cx_alpha": 0.5,  # blend: cxBlend's alpha
    "cx_indpb": 0.5,  # uniform: per-gene swap probability
    "mut_sigma": 0.1,  # Gaussian mutation standard deviation
    "mut_indpb": 0.25,  # Gaussian mutation per-gene probability
    "mut_sigma_decay": 1.0,  # mut_sigma is multiplied by this after every generation
    "mut_sigma_min": 0.0,  # ... down to this floor
    "init": "uniform",  # uniform (in [init_low, init_high]) | glorot | model
    "init_low": -1.0,
    "init_high": 1.0,
    "fitness": "accuracy",  # accuracy | log_likelihood (regression: always -MSE)
    "fitness_batch": None,  # null: the whole training set; int: a fresh minibatch per generation
    "blas_threads": 1,  # BLAS threads for the fitness pass (null: BLAS decides; see below)
}
CROSSOVERS = ("mean", "blend", "uniform", "one_point", "two_point", "none")
INITS = ("uniform", "glorot", "model")
FITNESSES = ("accuracy", "log_likelihood")
# Genomes above this many weights get a one-line note (`note_large_genome`): the GA trains them
# slowly. SMALL_SPACE is the search space the note (and the trainer=neuroevolution preset) points to.
LARGE_GENOME = 50_000
SMALL_SPACE = "ne_mlp"
_NOTED: list[str] = []
# Rows x widest layer x population per chunk of the forward pass: bounds memory (~64 MB float32).
_CHUNK_ELEMENTS = 16_000_000


# -- the network as data ---------------------------------------------------------------------
def _softmax(z: np.ndarray) -> np.ndarray:
    z = z - z.max(axis=-1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=-1, keepdims=True)


def _sigmoid(z: np.ndarray) -> np.ndarray:
    return 0.5 * (np.tanh(0.5 * z) + 1.0)  # overflow-free logistic


_SELU_ALPHA, _SELU_SCALE = 1.6732632423543772, 1.0507009873554805
ACTIVATIONS: dict[str, Callable[[np.ndarray], np.ndarray]] = {
    "linear": lambda z: z,
    "relu": lambda z: np.maximum(z, 0),
    "sigmoid": _sigmoid,
    "tanh": np.tanh,
    "softmax": _softmax,
    "elu": lambda z: np.where(z > 0, z, np.expm1(np.minimum(z, 0))),
    "selu": lambda z: _SELU_SCALE * np.where(z > 0, z, _SELU_ALPHA * np.expm1(np.minimum(z, 0))),
    "silu": lambda z: z * _sigmoid(z),
}
ACTIVATIONS["swish"] = ACTIVATIONS["silu"]


@dataclass(frozen=True)
class DenseOp:
    """One Dense layer: its kernel and bias as slices of the genome."""

    n_in: int
    n_out: int
    kernel: tuple[int, int]  # genome slice [start, stop)
    bias: tuple[int, int] | None
    activation: str


@dataclass(frozen=True)
class NetSpec:
    """What the vectorised forward pass needs to know about a Dense-only Keras model."""

    input_dim: int
    ops: tuple[DenseOp | str, ...]  # a DenseOp, or the name of a standalone activation
    weight_shapes: tuple[tuple[int, ...], ...]  # model.get_weights() shapes, in order
    n_genes: int

    @property
    def dense(self) -> list[DenseOp]:
        return [op for op in self.ops if isinstance(op, DenseOp)]


def _activation_name(fn: Any) -> str:
    name = getattr(fn, "__name__", None) or type(fn).__name__
    return {"swish": "silu"}.get(name, name)


def describe(model: Any) -> NetSpec:
    """Read a Keras model's architecture; `NotSupportedError` for layers evolution cannot run."""
    import keras

    L = keras.layers
    if len(model.inputs) != 1 or len(model.outputs) != 1:
        raise NotSupportedError(
            f"neuroevolution needs a single-input, single-output chain of layers, but "
            f"model {model.name!r} has {len(model.inputs)} inputs and {len(model.outputs)} outputs"
        )
    input_shape = tuple(model.inputs[0].shape[1:])
    input_dim = int(np.prod(input_shape))
    ops: list[DenseOp | str] = []
    shapes: list[tuple[int, ...]] = []
    offset, flat, width = 0, len(input_shape) == 1, input_dim
    for layer in model.layers:
        if isinstance(layer, (L.InputLayer, L.Dropout)):
            continue
        if isinstance(layer, L.Flatten):
            flat = True
            continue
        if isinstance(layer, L.Activation):
            name = _activation_name(layer.activation)
            if name not in ACTIVATIONS:
                raise NotSupportedError(
                    f"neuroevolution: activation {name!r} of layer {layer.name!r} is not "
                    f"supported; supported: {', '.join(sorted(ACTIVATIONS))}"
                )
            ops.append(name)
            continue
        if isinstance(layer, L.Dense) and flat:
            name = _activation_name(layer.activation)
            if name not in ACTIVATIONS:
                raise NotSupportedError(
                    f"neuroevolution: activation {name!r} of layer {layer.name!r} is not "
                    f"supported; supported: {', '.join(sorted(ACTIVATIONS))}"
                )
            n_in, n_out = int(layer.kernel.shape[0]), int(layer.units)
            kernel = (offset, offset + n_in * n_out)
            offset = kernel[1]
            shapes.append((n_in, n_out))
            bias = None
            if layer.use_bias:
                bias, offset = (offset, offset + n_out), offset + n_out
                shapes.append((n_out,))
            if n_in != width:
                raise NotSupportedError(
                    f"neuroevolution: layer {layer.name!r} takes {n_in} inputs but the "
                    f"previous layer gives {width}; only plain chains are supported"
                )
            ops.append(DenseOp(n_in, n_out, kernel, bias, name))
            width = n_out
            continue
        why = "a Dense layer on unflattened input" if isinstance(layer, L.Dense) else type(layer).__name__
        raise NotSupportedError(
            f"neuroevolution evolves Dense-only models, but model {model.name!r} has {why} "
            f"(layer {layer.name!r}); supported layers: InputLayer, Flatten, Dense, Activation, Dropout. "
            f"Use an MLP search space (mlp, homl_mlp, nas_mlp, ga_mlp) or trainer=backprop"
        )
    if not any(isinstance(op, DenseOp) for op in ops):
        raise NotSupportedError(f"neuroevolution: model {model.name!r} has no Dense layer to evolve")
    actual = tuple(tuple(w.shape) for w in model.get_weights())
    if actual != tuple(shapes):
        raise NotSupportedError(
            f"neuroevolution: model {model.name!r} has weights {actual} besides its Dense "
            f"kernels and biases {tuple(shapes)}; only Dense weights can be evolved"
        )
    return NetSpec(input_dim, tuple(ops), tuple(shapes), offset)


# -- genome <-> Keras weights ----------------------------------------------------------------
def genome_from_weights(weights: list[np.ndarray]) -> np.ndarray:
    """The flat float32 genome of `model.get_weights()`."""
    return np.concatenate([np.asarray(w, dtype=np.float32).ravel() for w in weights])


def weights_from_genome(genome: np.ndarray, shapes: tuple[tuple[int, ...], ...]) -> list[np.ndarray]:
    """The `model.set_weights()` list of a genome (inverse of `genome_from_weights`)."""
    sizes = [int(np.prod(s)) for s in shapes]
    if len(genome) != sum(sizes):
        raise ValueError(f"genome has {len(genome)} genes, but the weight shapes {shapes} need {sum(sizes)}")
    out, start = [], 0
    for shape, size in zip(shapes, sizes):
        out.append(np.asarray(genome[start : start + size], dtype=np.float32).reshape(shape).copy())
        start += size
    return out


# -- the vectorised forward pass -------------------------------------------------------------
def _forward_t(genomes: np.ndarray, x_t: np.ndarray, spec: NetSpec, *, logits: bool) -> np.ndarray:
    """Outputs `(population, outputs, rows)`: feature-major, so every step is contiguous.

    `x_t` is the input transposed, `(features, rows)`. Layer l computes W_l^T @ h for all
    individuals at once: the first layer as one GEMM of all kernels stacked `(P*out, in)` with the
    shared input, the later ones as batched matmuls over the population axis. Biases broadcast
    along the contiguous rows axis and reductions over outputs (softmax) are row-wise.
    """
    P = genomes.shape[0]
    h: np.ndarray | None = None
    last = len(spec.ops) - 1
    for i, op in enumerate(spec.ops):
        if isinstance(op, str):
            act = op
            if h is None:  # an activation before the first Dense layer
                h = np.repeat(x_t[None], P, axis=0)
        else:
            W = genomes[:, op.kernel[0] : op.kernel[1]].reshape(P, op.n_in, op.n_out)
            if h is None:
                h = (W.transpose(0, 2, 1).reshape(P * op.n_out, op.n_in) @ x_t).reshape(P, op.n_out, -1)
            else:
                h = np.matmul(W.transpose(0, 2, 1), h)
            if op.bias is not None:
                h += genomes[:, op.bias[0] : op.bias[1], None]
            act = op.activation
        if logits and i == last and act == "softmax":
            break
        if act == "relu":
            np.maximum(h, 0, out=h)
        elif act == "softmax":
            h = h - h.max(axis=1, keepdims=True)
            np.exp(h, out=h)
            h /= h.sum(axis=1, keepdims=True)
        elif act != "linear":
            h = ACTIVATIONS[act](h)
    assert h is not None
    return h


def population_forward(genomes: np.ndarray, x: np.ndarray, spec: NetSpec, *, logits: bool = False) -> np.ndarray:
    """Outputs `(population, rows, outputs)` of every genome (rows of `genomes`) on inputs `x`.

    With `logits=True` a final softmax is left out (stable log-likelihoods). Equal, up to float32
    rounding, to `model.set_weights(...)` + `model.predict(x)` for each genome.
    """
    genomes = np.asarray(genomes, dtype=np.float32)
    x_t = np.ascontiguousarray(np.asarray(x, dtype=np.float32).reshape(len(x), -1).T)
    return _forward_t(genomes, x_t, spec, logits=logits).transpose(0, 2, 1)


def _final_softmax(spec: NetSpec) -> bool:
    last = spec.ops[-1]
    return (last if isinstance(last, str) else last.activation) == "softmax"


def population_scores(
    genomes: np.ndarray, x: np.ndarray, y: np.ndarray, spec: NetSpec, task: str = "classification"
) -> tuple[np.ndarray, np.ndarray]:
    """Per-genome (loss, accuracy) on `(x, y)`: mean cross-entropy (or MSE) and accuracy (or NaN).

    Rows are processed in chunks so memory stays bounded for large populations and datasets.
    """
    genomes = np.asarray(genomes, dtype=np.float32)
    x = np.asarray(x, dtype=np.float32).reshape(len(x), -1)
    P = len(genomes)
    widest = max(op.n_out for op in spec.dense)
    step = max(1, _CHUNK_ELEMENTS // max(1, P * widest))
    loss, hits = np.zeros(P, dtype=np.float64), np.zeros(P, dtype=np.float64)
    softmax = _final_softmax(spec)
    for start in range(0, len(x), step):
        yb = y[start : start + step]
        x_t = np.ascontiguousarray(x[start : start + step].T)
        out = _forward_t(genomes, x_t, spec, logits=softmax)  # (P, outputs, rows)
        rows = np.arange(len(yb))
        if task == "classification":
            if softmax:
                z = out - out.max(axis=1, keepdims=True)
                nll = np.log(np.exp(z).sum(axis=1)) - z[:, yb, rows]
            else:
                nll = -np.log(np.clip(out[:, yb, rows], 1e-7, None))
            loss += nll.sum(axis=1)
            hits += (out.argmax(axis=1) == yb).sum(axis=1)
        else:
            loss += ((out[:, 0, :] - yb) ** 2).sum(axis=1)
    n = len(x)
    acc = hits / n if task == "classification" else np.full(P, np.nan)
    return loss / n, acc


def evaluate_with_keras(model: Any, genomes: np.ndarray, x: np.ndarray, y: np.ndarray, spec: NetSpec | None = None) -> np.ndarray:
    """Seed 000's way: `set_weights` + `predict` per individual; returns each one's accuracy.

    Kept as the reference the vectorised path is tested and benchmarked against.
    """
    spec = spec or describe(model)
    accs = []
    for genome in genomes:
        model.set_weights(weights_from_genome(genome, spec.weight_shapes))
        pred = model.predict(x, verbose=0, batch_size=max(32, len(x)))
        accs.append(float((pred.argmax(axis=1) == y).mean()))
    return np.asarray(accs)


# -- options ---------------------------------------------------------------------------------
def resolve_options(options: dict[str, Any] | None) -> dict[str, Any]:
    """Defaults overlaid with `options`; `ConfigError` naming any unknown or invalid option."""
    options = dict(options or {})
    unknown = sorted(set(options) - set(DEFAULTS))
    if unknown:
        raise ConfigError(f"unknown neuroevolution option(s) {unknown}; accepted: {', '.join(sorted(DEFAULTS))}")
    o = {**DEFAULTS, **options}
    for key, values in (("crossover", CROSSOVERS), ("init", INITS), ("fitness", FITNESSES)):
        if o[key] not in values:
            raise ConfigError(f"trainer.params.{key} must be one of {', '.join(values)}, but got {o[key]!r}")
    for key, lo in (("population", 2), ("generations_per_epoch", 1), ("tournsize", 1), ("hof_size", 1)):
        if type(o[key]) is not int or o[key] < lo:
            raise ConfigError(f"trainer.params.{key} must be an integer >= {lo}, but got {o[key]!r}")
    for key in ("generations", "fitness_batch", "blas_threads"):
        if o[key] is not None and (type(o[key]) is not int or o[key] < 1):
            raise ConfigError(f"trainer.params.{key} must be an integer >= 1 or null, but got {o[key]!r}")
    for key in ("cxpb", "mutpb", "cx_indpb", "mut_indpb"):
        if not 0.0 <= float(o[key]) <= 1.0:
            raise ConfigError(f"trainer.params.{key} must be a probability in [0, 1], but got {o[key]!r}")
    if type(o["elitism"]) is not int or not 0 <= o["elitism"] <= min(o["hof_size"], o["population"] - 1):
        raise ConfigError(
            f"trainer.params.elitism must be an integer in [0, min(hof_size, population - 1)], "
            f"but got {o['elitism']!r} (hof_size={o['hof_size']}, population={o['population']})"
        )
    for key in ("seconds", "cpu_seconds"):
        if o[key] is not None and float(o[key]) <= 0:
            raise ConfigError(f"trainer.params.{key} must be > 0 or null, but got {o[key]!r}")
    if float(o["mut_sigma"]) < 0 or not 0 < float(o["mut_sigma_decay"]) <= 1.0:
        raise ConfigError(
            f"trainer.params: mut_sigma must be >= 0 and mut_sigma_decay in (0, 1], but got "
            f"{o['mut_sigma']!r} and {o['mut_sigma_decay']!r}"
        )
    return o


# -- DEAP ------------------------------------------------------------------------------------
@contextlib.contextmanager
def _private_random(state: list[Any]) -> Iterator[None]:
    """Run DEAP (global `random`) on the private state in `state[0]`, then put the caller's back."""
    outer = random.getstate()
    random.setstate(state[0])
    try:
        yield
    finally:
        state[0] = random.getstate()
        random.setstate(outer)


def _deap_classes() -> tuple[Any, Any]:
    from deap import base, creator

    if not hasattr(creator, "NeuroFitness"):
        creator.create("NeuroFitness", base.Fitness, weights=(1.0,))
        creator.create("NeuroIndividual", np.ndarray, fitness=creator.NeuroFitness)
    return creator.NeuroFitness, creator.NeuroIndividual


def _toolbox(o: dict[str, Any], rng: np.random.Generator, sigma: list[float]) -> Any:
    """Selection from DEAP; crossover and mutation with DEAP's semantics, vectorised in NumPy.

    DEAP's own `mutGaussian`/`cxBlend` loop over genes in Python, which would cost more than the
    whole population's forward pass on genomes of 10^4-10^5 weights.
    """
    from deap import base, tools

    tb = base.Toolbox()
    tb.register("select", tools.selTournament, tournsize=o["tournsize"])

    def mate(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        kind, n = o["crossover"], len(a)
        if kind == "mean":  # seed 000's customBlend: both children become the parents' mean
            m = (a + b) * 0.5
            a[:], b[:] = m, m
        elif kind == "blend":  # tools.cxBlend
            g = ((1.0 + 2.0 * o["cx_alpha"]) * rng.random(n) - o["cx_alpha"]).astype(a.dtype)
            a[:], b[:] = (1 - g) * a + g * b, g * a + (1 - g) * b
        elif kind == "uniform":  # tools.cxUniform
            swap = rng.random(n) < o["cx_indpb"]
            a[swap], b[swap] = b[swap].copy(), a[swap].copy()
        elif kind in ("one_point", "two_point"):  # tools.cxOnePoint / cxTwoPoint on arrays
            i, j = (int(rng.integers(1, n)), n) if kind == "one_point" else sorted(rng.choice(n + 1, 2, replace=False))
            a[i:j], b[i:j] = b[i:j].copy(), a[i:j].copy()
        return a, b

    def mutate(ind: np.ndarray) -> tuple[np.ndarray]:  # tools.mutGaussian(mu=0, sigma, indpb)
        hit = np.flatnonzero(rng.random(len(ind)) < o["mut_indpb"])
        ind[hit] += rng.normal(0.0, sigma[0], len(hit)).astype(ind.dtype)
        return (ind,)

    tb.register("mate", mate)
    tb.register("mutate", mutate)
    return tb


def _initial_genomes(o: dict[str, Any], spec: NetSpec, model: Any, rng: np.random.Generator, from_model: bool) -> np.ndarray:
    P, G = o["population"], spec.n_genes
    init = "model" if from_model else o["init"]
    if init == "uniform":  # seed 000: genes uniform in [-1, 1]
        return rng.uniform(o["init_low"], o["init_high"], (P, G)).astype(np.float32)
    if init == "glorot":  # Keras's default Dense initialisation, drawn afresh per individual
        pop = np.zeros((P, G), dtype=np.float32)
        for op in spec.dense:
            limit = math.sqrt(6.0 / (op.n_in + op.n_out))
            pop[:, op.kernel[0] : op.kernel[1]] = rng.uniform(-limit, limit, (P, op.kernel[1] - op.kernel[0]))
        return pop
    # "model": the model's current weights (a resumed trial's parent) and mutated copies of them
    base_genome = genome_from_weights(model.get_weights())
    pop = np.repeat(base_genome[None, :], P, axis=0)
    pop[1:] += rng.normal(0.0, o["mut_sigma"], pop[1:].shape).astype(np.float32)
    return pop


@contextlib.contextmanager
def _blas_threads(n: int | None) -> Iterator[None]:
    """BLAS limited to `n` threads inside (null: unchanged); why one: the module docstring."""
    if n is None:
        yield
        return
    from threadpoolctl import threadpool_limits  # a dependency of scikit-learn

    with threadpool_limits(limits=int(n), user_api="blas"):
        yield


def note_large_genome(spec: NetSpec, generations: int) -> str | None:
    """The one-line note for a genome the GA trains slowly (over `LARGE_GENOME` weights), else None."""
    if spec.n_genes <= LARGE_GENOME:
        return None
    return (
        f"neuroevolution evolves this network's {spec.n_genes:,} weights slowly ({generations:,} "
        f"generations here): expect long trials and low accuracy. It trains small Dense nets well: "
        f"search_space={SMALL_SPACE} (its default) reaches ~96 % on digits in 1,000 generations."
    )


def train_neuroevolution(
    model: Any,
    data: Any,
    *,
    epochs: int,
    initial_epoch: int,
    batch_size: int,
    seed: int,
    options: dict[str, Any],
    on_epoch: Callable[[int, dict[str, float]], bool],
    verbose: int = 0,
) -> list[dict[str, Any]]:
    """Evolve the weights of `model` with a DEAP GA; sets the hall-of-fame weights into it.

    `batch_size` (the space's backprop setting) is ignored: `fitness_batch` chooses the rows each
    generation is scored on. Returns one history dict per epoch (see the module docstring).
    """
    o = resolve_options(options)
    spec = describe(model)
    total = o["generations"]
    if total is None:
        total = max(0, epochs - initial_epoch) * o["generations_per_epoch"]
    note = note_large_genome(spec, total)
    if note and not _NOTED:  # once per process (a run's worker): not again for every trial
        _NOTED.append(note)
        get_logger(__name__).info(note)
    with _blas_threads(o["blas_threads"]):
        return _evolve(
            model, data, o, spec, total=total, initial_epoch=initial_epoch, seed=seed, on_epoch=on_epoch, verbose=verbose
        )


def _evolve(
    model: Any,
    data: Any,
    o: dict[str, Any],
    spec: NetSpec,
    *,
    total: int,
    initial_epoch: int,
    seed: int,
    on_epoch: Callable[[int, dict[str, float]], bool],
    verbose: int,
) -> list[dict[str, Any]]:
    from deap import algorithms, tools

    Fitness, Individual = _deap_classes()
    task = data.task
    x_train = np.asarray(data.x_train, dtype=np.float32).reshape(len(data.x_train), -1)
    x_val = np.asarray(data.x_val, dtype=np.float32).reshape(len(data.x_val), -1)
    if task == "classification":
        y_train, y_val = np.asarray(data.y_train), np.asarray(data.y_val)
    else:
        y_train = ((data.y_train - data.y_mean) / data.y_std).astype(np.float32)
        y_val = ((data.y_val - data.y_mean) / data.y_std).astype(np.float32)

    rng = np.random.default_rng(seed)
    state = [random.Random(seed).getstate()]
    sigma = [float(o["mut_sigma"])]
    toolbox = _toolbox(o, rng, sigma)
    gpe = o["generations_per_epoch"]
    deadline = None if o["seconds"] is None else time.perf_counter() + float(o["seconds"])
    cpu_deadline = None if o["cpu_seconds"] is None else time.process_time() + float(o["cpu_seconds"])
    use_acc = task == "classification" and o["fitness"] == "accuracy"

    def evaluate(inds: list[Any], xb: np.ndarray, yb: np.ndarray) -> None:
        if not inds:
            return
        loss, acc = population_scores(np.stack(inds), xb, yb, spec, task)
        for ind, lo, a in zip(inds, loss, acc):
            ind.fitness.values = (float(a) if use_acc else -float(lo),)
            ind.loss, ind.accuracy = float(lo), float(a)

    def fitness_rows() -> tuple[np.ndarray, np.ndarray]:
        if o["fitness_batch"] is None or o["fitness_batch"] >= len(x_train):
            return x_train, y_train
        idx = rng.choice(len(x_train), o["fitness_batch"], replace=False)
        return x_train[idx], y_train[idx]

    stats = tools.Statistics(lambda ind: ind.fitness.values[0])
    for name, fn in (("avg", np.mean), ("std", np.std), ("min", np.min), ("max", np.max)):
        stats.register(name, fn)
    hof = tools.HallOfFame(o["hof_size"], similar=np.array_equal)

    def individual(genes: np.ndarray) -> Any:
        ind = genes.view(Individual)
        ind.fitness = Fitness()
        return ind

    population = [individual(g) for g in _initial_genomes(o, spec, model, rng, from_model=initial_epoch > 0)]
    evaluate(population, *fitness_rows())
    hof.update(population)

    history: list[dict[str, Any]] = []
    generations: list[dict[str, Any]] = []
    val_cache: dict[str, Any] = {"genome": None}
    t0 = time.perf_counter()
    evaluations = len(population)

    def best_val() -> tuple[float, float]:
        best = hof[0]
        if val_cache["genome"] is None or not np.array_equal(val_cache["genome"], best):
            loss, acc = population_scores(np.asarray(best)[None, :], x_val, y_val, spec, task)
            val_cache.update(genome=np.array(best), loss=float(loss[0]), acc=float(acc[0]))
        return val_cache["loss"], val_cache["acc"]

    gen, epoch = 0, initial_epoch
    stopped = False
    while gen < total and not stopped:
        with _private_random(state):
            offspring = toolbox.select(population, len(population) - o["elitism"])
            offspring = algorithms.varAnd(offspring, toolbox, o["cxpb"], o["mutpb"])
        offspring.extend(toolbox.clone(ind) for ind in hof[: o["elitism"]])
        xb, yb = fitness_rows()
        if o["fitness_batch"] is not None:
            # A fresh minibatch: every score, the hall of fame's included, is re-measured on it.
            stale = [toolbox.clone(ind) for ind in hof]
            evaluate(offspring + stale, xb, yb)
            evaluations += len(offspring) + len(stale)
            hof.clear()
            hof.update(stale)
        else:
            invalid = [ind for ind in offspring if not ind.fitness.valid]
            evaluate(invalid, xb, yb)
            evaluations += len(invalid)
        hof.update(offspring)
        population[:] = offspring
        gen += 1
        sigma[0] = max(float(o["mut_sigma_min"]), sigma[0] * float(o["mut_sigma_decay"]))
        record = stats.compile(population)
        val_loss, val_acc = best_val()
        generations.append(
            {
                "generation": gen,
                "best": float(record["max"]),
                "mean": float(record["avg"]),
                "std": float(record["std"]),
                "min": float(record["min"]),
                "max": float(record["max"]),
                "hof": float(hof[0].fitness.values[0]),
                "val_accuracy": val_acc if task == "classification" else None,
                "val_loss": val_loss,
            }
        )
        out_of_time = (deadline is not None and time.perf_counter() >= deadline) or (
            cpu_deadline is not None and time.process_time() >= cpu_deadline
        )
        if gen % gpe == 0 or gen == total or out_of_time:
            epoch += 1
            best = hof[0]
            metrics = {
                "loss": float(best.loss),
                "val_loss": val_loss,
                "fitness_best": float(record["max"]),
                "fitness_mean": float(record["avg"]),
                "fitness_std": float(record["std"]),
                "fitness_hof": float(best.fitness.values[0]),
            }
            if task == "classification":
                metrics.update(accuracy=float(best.accuracy), val_accuracy=val_acc)
            history.append(
                {
                    "epoch": epoch,
                    **metrics,
                    "generation": gen,
                    "evaluations": evaluations,
                    "seconds": time.perf_counter() - t0,
                    "mut_sigma": sigma[0],
                    "generations": generations,
                }
            )
            generations = []
            if verbose:
                print(f"epoch {epoch} generation {gen}: " + ", ".join(f"{k} {v:.4f}" for k, v in metrics.items()))
            stopped = on_epoch(epoch, metrics) or out_of_time
    model.set_weights(weights_from_genome(np.asarray(hof[0]), spec.weight_shapes))
    return history
