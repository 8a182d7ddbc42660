"""The genetic strategy: decoding, generations, waiting, elitism and its private RNG."""

from __future__ import annotations

import random

import pytest

from harness.errors import ConfigError
from harness.registry import make_strategy
from harness.space import load_space
from harness.strategy import Observation
from harness.testing import toy_space, toy_value
from harness.strategies.genetic import Genetic, decode, decode_gene


def test_decode_covers_every_value_at_the_bounds():
    space = toy_space()
    for u in (0.0, 1.0):
        params = decode(space, [u] * len(space.params))
        space.check(params)
    p = load_space("mlp")["epochs"]
    assert {decode_gene(p, i / 100) for i in range(101)} == set(range(5, 51, 5))
    lr = toy_space()["lr"]
    assert decode_gene(lr, 0.0) == pytest.approx(1e-4) and decode_gene(lr, 1.0) == pytest.approx(0.1)


def test_generation_is_handed_out_then_waits_then_finishes():
    space = load_space("nas_mlp")
    ga = Genetic(space, seed=0, population_size=5, generations=2)
    first = ga.ask(3) + ga.ask(10)
    assert len(first) == 5  # the whole initial generation, no more
    assert ga.ask(1) == [] and not ga.finished  # waiting for the generation's results
    ga.tell([Observation(s.trial_id, toy_value(space, s.params)) for s in first])
    told = 5
    while not ga.finished:
        got = ga.ask(10)
        assert got, "a GA with nothing pending must breed or finish"
        ga.tell([Observation(s.trial_id, toy_value(space, s.params)) for s in got])
        told += len(got)
    assert ga.generation == 2 and told <= 5 * 3


def test_elitism_keeps_the_best_genome():
    space = load_space("homl_mlp")
    ga = Genetic(space, seed=1, population_size=6, generations=3, elitism=1)
    best = None
    while not ga.finished:
        got = ga.ask(10)
        ga.tell([Observation(s.trial_id, toy_value(space, s.params)) for s in got])
        top = max(g.fitness for g in ga.population if g.fitness is not None)
        assert best is None or top >= best
        best = top


def test_global_random_is_untouched_and_irrelevant():
    space = load_space("mlp")
    random.seed(123)
    before = random.getstate()
    ga = Genetic(space, seed=4, population_size=4, generations=1)
    got = ga.ask(4)
    ga.tell([Observation(s.trial_id, toy_value(space, s.params)) for s in got])
    ga.ask(4)
    assert random.getstate() == before


@pytest.mark.parametrize(
    "bad", [{"population_size": 1}, {"elitism": 10}, {"cxpb": 1.5}, {"crossover": "blend"}, {"generations": -1}]
)
def test_bad_options_are_config_errors(bad):
    with pytest.raises(ConfigError):
        make_strategy("genetic", load_space("mlp"), seed=0, **bad)
