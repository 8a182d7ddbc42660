"""A generational genetic algorithm (Holland 1975; Goldberg 1989) over the typed search space,
with DEAP's operators (Fortin et al., JMLR 2012).

Genome: one real gene in [0, 1] per parameter of the space, conditional ones included. A gene
decodes to its parameter's type: ints (with step, or log-uniform), floats (linear or log),
categoricals and bools by equal-width bins. A conditional gene is carried (and inherited,
crossed and mutated) even while its condition is off, and only decoded when it holds, so a
layer switched off and on again gets back an inherited width rather than a random one.

One generation: tournament selection (`deap.tools.selTournament`), crossover with probability
`cxpb` (`cxUniform`, `cxTwoPoint` or bounded SBX), bounded polynomial mutation with probability
`mutpb` (`mutPolynomialBounded`, genes stay in [0, 1]), and the `elitism` best individuals copied
unchanged. As in DEAP's `eaSimple`, only individuals whose genome changed are evaluated again.

DEAP draws from the global `random` module; every DEAP call here runs inside a swap of the
global state for the strategy's own `random.Random` state, so the GA is deterministic under its
seed, does not disturb anyone else's use of `random`, and pickles with its state.
"""

from __future__ import annotations

import contextlib
import copy
import math
import random
from collections.abc import Iterator, Sequence
from typing import Any

from harness.space import BoolParam, CategoricalParam, FloatParam, IntParam, Param, SearchSpace
from harness.strategy import Capabilities, Observation, Strategy, Suggestion

_CROSSOVERS = ("uniform", "two_point", "sbx")


class Genome(list):
    """A list of genes in [0, 1] with a scalar `fitness` (None until evaluated).

    DEAP's selection only needs `max(..., key=attrgetter("fitness"))`, so a plain float does;
    failed and non-finite trials get -inf and lose every tournament.
    """

    fitness: float | None = None

    def __reduce__(self) -> Any:
        return (_rebuild_genome, (list(self), self.fitness))


def _rebuild_genome(genes: list[float], fitness: float | None) -> Genome:
    g = Genome(genes)
    g.fitness = fitness
    return g


def decode_gene(p: Param, u: float) -> Any:
    """Map a gene in [0, 1] to a native value of parameter `p`."""
    u = min(max(float(u), 0.0), 1.0)
    if isinstance(p, IntParam):
        if p.log:
            lo, hi = math.log(p.low), math.log(p.high + 1)
            return min(p.high, max(p.low, int(math.floor(math.exp(lo + u * (hi - lo))))))
        return p.low + p.step * min(p.n_values - 1, int(u * p.n_values))
    if isinstance(p, FloatParam):
        if p.log:
            v = math.exp(math.log(p.low) + u * (math.log(p.high) - math.log(p.low)))
        else:
            v = p.low + u * (p.high - p.low)
        return min(p.high, max(p.low, float(v)))
    if isinstance(p, CategoricalParam):
        return p.choices[min(len(p.choices) - 1, int(u * len(p.choices)))]
    if isinstance(p, BoolParam):
        return u >= 0.5
    raise TypeError(f"unsupported parameter kind {type(p).__name__} for {p.name!r}")


def decode(space: SearchSpace, genome: Sequence[float]) -> dict[str, Any]:
    """The params a genome stands for: active parameters only, in declaration order."""
    params: dict[str, Any] = {}
    for p, u in zip(space.params, genome):
        if p.condition is None or p.condition.holds(params):
            params[p.name] = decode_gene(p, u)
    return params


class Genetic(Strategy):
    """Generational GA with tournament selection, crossover, bounded mutation and elitism.

    Options: `population_size` (10), `generations` (10, bred after the initial population),
    `cxpb` (0.6) and `mutpb` (0.3) as in seed 000, `tournsize` (3), `elitism` (1),
    `crossover` ("uniform", "two_point" or "sbx"), `indpb` (per-gene probability for uniform
    crossover and mutation, default 1 / number of genes), `eta` (20, crowding degree of
    polynomial mutation and SBX).

    `ask(n)` hands out up to `n` not-yet-handed-out members of the current generation and
    returns [] ("wait") once all are out but some results are missing; it is finished once the
    last generation's results are all told.
    """

    name = "genetic"
    capabilities = Capabilities(conditional=True, multi_fidelity=False, batch=True)
    # A small GA that breeds and finishes within the conformance suite's trials.
    conformance_options = {"population_size": 4, "generations": 3}

    def __init__(
        self,
        space: SearchSpace,
        *,
        seed: int = 0,
        max_trials: int | None = None,
        population_size: int = 10,
        generations: int = 10,
        cxpb: float = 0.6,
        mutpb: float = 0.3,
        tournsize: int = 3,
        elitism: int = 1,
        crossover: str = "uniform",
        indpb: float | None = None,
        eta: float = 20.0,
    ):
        super().__init__(space, seed=seed, max_trials=max_trials)
        _check_int("population_size", population_size, 2)
        _check_int("generations", generations, 0)
        _check_int("tournsize", tournsize, 1)
        _check_int("elitism", elitism, 0)
        if elitism >= population_size:
            raise ValueError(f"elitism must be < population_size ({population_size}), but got {elitism}")
        for label, v in (("cxpb", cxpb), ("mutpb", mutpb)) + ((("indpb", indpb),) if indpb is not None else ()):
            if not isinstance(v, (int, float)) or isinstance(v, bool) or not 0.0 <= v <= 1.0:
                raise ValueError(f"{label} must be a probability in [0, 1], but got {v!r}")
        if crossover not in _CROSSOVERS:
            raise ValueError(f"crossover must be one of {list(_CROSSOVERS)}, but got {crossover!r}")
        if not isinstance(eta, (int, float)) or isinstance(eta, bool) or eta <= 0:
            raise ValueError(f"eta must be a number > 0, but got {eta!r}")
        self.population_size, self.generations = population_size, generations
        self.cxpb, self.mutpb, self.tournsize, self.elitism = float(cxpb), float(mutpb), tournsize, elitism
        self.crossover, self.eta = crossover, float(eta)
        self.indpb = float(indpb) if indpb is not None else 1.0 / len(space.params)

        self._random_state = random.Random(seed).getstate()
        self.generation = 0
        self.population: list[Genome] = []  # the current generation, evaluated or not
        self._queue: list[Genome] = []  # members still to hand out
        self._out: dict[int, Genome] = {}  # trial id -> member being evaluated
        self._done = False

    @classmethod
    def library_version(cls) -> str:
        from importlib.metadata import version

        return f"deap {version('deap')}"

    # -- randomness ------------------------------------------------------------------------
    @contextlib.contextmanager
    def _own_random(self) -> Iterator[random.Random]:
        """Run DEAP (which uses the global `random`) on this strategy's own random state."""
        outer = random.getstate()
        random.setstate(self._random_state)
        try:
            yield random  # type: ignore[misc]
        finally:
            self._random_state = random.getstate()
            random.setstate(outer)

    # -- the GA ----------------------------------------------------------------------------
    def _start(self) -> None:
        with self._own_random() as rnd:
            self.population = [Genome(rnd.random() for _ in self.space.params) for _ in range(self.population_size)]
        self._queue = list(self.population)

    def _breed(self) -> None:
        from deap import tools

        pop = self.population
        ranked = sorted(pop, key=lambda g: g.fitness, reverse=True)
        elites = [copy.deepcopy(g) for g in ranked[: self.elitism]]
        with self._own_random() as rnd:
            offspring = [
                copy.deepcopy(g) for g in tools.selTournament(pop, self.population_size - self.elitism, tournsize=self.tournsize)
            ]
            # DEAP's varAnd, with a float fitness: None marks "changed, evaluate again".
            for i in range(1, len(offspring), 2):
                if rnd.random() < self.cxpb:
                    self._cross(tools, offspring[i - 1], offspring[i])
                    offspring[i - 1].fitness = offspring[i].fitness = None
            for child in offspring:
                if rnd.random() < self.mutpb:
                    tools.mutPolynomialBounded(child, eta=self.eta, low=0.0, up=1.0, indpb=self.indpb)
                    child.fitness = None
        self.population = elites + offspring
        self.generation += 1
        self._queue = [g for g in self.population if g.fitness is None]

    def _cross(self, tools: Any, a: Genome, b: Genome) -> None:
        if len(a) < 2:
            if random.random() < 0.5:  # one gene: uniform crossover is a swap
                a[0], b[0] = b[0], a[0]
        elif self.crossover == "uniform":
            tools.cxUniform(a, b, indpb=0.5)
        elif self.crossover == "two_point":
            tools.cxTwoPoint(a, b)
        else:
            tools.cxSimulatedBinaryBounded(a, b, eta=self.eta, low=0.0, up=1.0)

    def _advance(self) -> None:
        """Breed until a generation has members to evaluate, or the run is over."""
        while not self._queue and not self._out and not self._done:
            if not self.population:
                self._start()
            elif self.generation >= self.generations:
                self._done = True
            else:
                self._breed()

    # -- the contract ----------------------------------------------------------------------
    def _ask(self, n: int) -> Sequence[Suggestion]:
        self._advance()
        out = []
        while self._queue and len(out) < n:
            genome = self._queue.pop(0)
            trial_id = self._new_trial_id()
            self._out[trial_id] = genome
            out.append(Suggestion(trial_id, decode(self.space, genome)))
        return out

    def _tell(self, observations: Sequence[Observation]) -> None:
        for o in observations:
            genome = self._out.pop(o.trial_id)
            genome.fitness = float(o.value) if o.usable else -math.inf
        self._advance()

    def _finished(self) -> bool:
        return self._done


def _check_int(label: str, value: Any, minimum: int) -> None:
    if type(value) is not int or value < minimum:
        raise ValueError(f"{label} must be an int >= {minimum}, but got {value!r}")
