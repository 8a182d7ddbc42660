"""Neuroevolution figures (issue 6). Skipped by default; run with
`pytest tests/benchmarks/test_neuroevolution_benchmark.py --benchmark-only -s` (prints the figures).

1. Individual evaluations per second: the vectorised population fitness vs seed 000's way
   (`set_weights` + `predict` per individual), same network (seed 000's Dense(128, relu) ->
   Dense(10, softmax), on 8x8 digits) and same data (the digits training split), in one run.
   Goal: >= 100x.
2. Test accuracy on digits reached by neuroevolution (default preset) within 60 s of process CPU
   time, next to backprop (Adam, the builder's own settings) on the same architecture.
   Goal: >= 90 %.

Each prints GOAL lines (tests/benchmarks/_goals.py); HARNESS_BENCH_SMOKE=1 runs tiny sizes (a
2-second CPU budget, 1 backprop epoch, one timing round).
"""

from __future__ import annotations

import time

import numpy as np
import pytest
import yaml

keras = pytest.importorskip("keras")

from harness.datasets import load_dataset  # noqa: E402
from harness.neuroevolution import (  # noqa: E402
    describe,
    evaluate_with_keras,
    population_scores,
    train_neuroevolution,
)
from harness.trainers import train_backprop  # noqa: E402
from harness.search_spaces.mlp import build_homl_mlp  # noqa: E402

from _goals import goal, reported, smoke  # noqa: E402

POPULATION = 25  # seed 000's MU
KERAS_INDIVIDUALS = smoke(10, 3)  # enough for a stable rate: each costs one predict call
CPU_BUDGET = smoke(60.0, 2.0)
BACKPROP_EPOCHS = smoke(50, 1)
ARCH = {"n_hidden": 1, "n_neurons": 32, "optimizer": "adam", "learning_rate": 1e-3}


@pytest.fixture(scope="module")
def digits():
    return load_dataset("digits", seed=0)


def test_evaluations_per_second(benchmark, digits):
    keras.utils.set_random_seed(0)
    model = build_homl_mlp(
        {**ARCH, "n_neurons": 128}, input_shape=digits.input_shape, n_outputs=10, task="classification"
    )  # seed 000's network, on digits' 8x8 inputs
    spec = describe(model)
    x, y = digits.x_train, digits.y_train
    genomes = np.random.default_rng(0).uniform(-1, 1, (POPULATION, spec.n_genes)).astype(np.float32)

    evaluate_with_keras(model, genomes[:2], x, y, spec)  # warm-up: predict's tracing
    t0 = time.perf_counter()
    keras_acc = evaluate_with_keras(model, genomes[:KERAS_INDIVIDUALS], x, y, spec)
    keras_rate = KERAS_INDIVIDUALS / (time.perf_counter() - t0)

    result = benchmark.pedantic(population_scores, args=(genomes, x, y, spec), rounds=smoke(10, 1), iterations=1, warmup_rounds=1)
    vector_rate = POPULATION / benchmark.stats.stats.mean
    np.testing.assert_array_equal(result[1][:KERAS_INDIVIDUALS], keras_acc)  # same answers
    ratio = vector_rate / keras_rate
    benchmark.extra_info.update(
        genes=spec.n_genes, rows=len(x), keras_evals_per_s=keras_rate, vectorised_evals_per_s=vector_rate, speedup=ratio
    )
    goal(
        f"neuroevolution evaluations/s, vectorised population of {POPULATION} / Keras set_weights + predict "
        f"({spec.n_genes} genes, {len(x)} rows)",
        f"{ratio:.0f}x ({vector_rate:,.0f} vs {keras_rate:.1f} evals/s)",
        ">= 100x",
        ratio >= 100,
    )


def _default_preset() -> dict:
    from pathlib import Path

    conf = Path(__file__).resolve().parents[2] / "conf" / "trainer" / "neuroevolution.yaml"
    return dict(yaml.safe_load(conf.read_text())["params"])


def test_digits_accuracy_in_60_cpu_seconds(benchmark, digits):
    def build():
        keras.utils.set_random_seed(0)
        return build_homl_mlp(ARCH, input_shape=digits.input_shape, n_outputs=10, task="classification")

    def accuracy(model) -> float:
        return float((model.predict(digits.x_test, verbose=0).argmax(axis=1) == digits.y_test).mean())

    options = {**_default_preset(), "seconds": None, "generations": 1_000_000, "cpu_seconds": CPU_BUDGET}

    def evolve():
        model = build()
        t0 = time.process_time()
        hist = train_neuroevolution(
            model, digits, epochs=1, initial_epoch=0, batch_size=32, seed=0, options=options, on_epoch=lambda e, m: False
        )
        return model, hist, time.process_time() - t0

    model, hist, cpu = benchmark.pedantic(evolve, rounds=1, iterations=1)
    ne_acc = accuracy(model)

    bp_model = build()
    t0 = time.process_time()
    train_backprop(
        bp_model, digits, epochs=BACKPROP_EPOCHS, initial_epoch=0, batch_size=32, seed=0, options={}, on_epoch=lambda e, m: False
    )
    bp_cpu, bp_acc = time.process_time() - t0, accuracy(bp_model)
    benchmark.extra_info.update(
        neuroevolution_test_accuracy=ne_acc,
        neuroevolution_cpu_s=cpu,
        generations=hist[-1]["generation"],
        backprop_test_accuracy=bp_acc,
        backprop_cpu_s=bp_cpu,
    )
    goal(
        f"neuroevolution test accuracy on digits in {CPU_BUDGET:.0f} CPU s",
        f"{ne_acc:.1%} after {hist[-1]['generation']} generations ({cpu:.1f} CPU s)",
        ">= 90 %",
        ne_acc >= 0.90,
    )
    reported(
        f"backprop (Adam, {BACKPROP_EPOCHS} epochs) test accuracy on digits, same network", f"{bp_acc:.1%} in {bp_cpu:.1f} CPU s"
    )
