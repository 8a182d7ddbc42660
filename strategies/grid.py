"""Grid search: every configuration of a finite space once, or a scrambled Sobol sample of a
continuous one — the baseline, and how `harness-tabulate` evaluates a space for a tabular
benchmark (each run seed then gives one replicate of the whole set: the Sobol sample is seeded
by `sample_seed`, fixed in the shipped config, so every run seed evaluates the same points).

The space's fidelity parameter (e.g. the seed MLP space's `epochs`) is fixed at the fidelity's
maximum with `full_fidelity: true` (the default), so one trial records the whole learning curve
and covers every budget below it. Conditional spaces are enumerated over their active
parameters only. The order is the grid's (or Sobol's); `shuffle: true` permutes it with the
run seed.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from harness.errors import NotSupportedError
from harness.space import BoolParam, CategoricalParam, FloatParam, IntParam, SearchSpace
from harness.strategy import Capabilities, Observation, Strategy, Suggestion

MAX_GRID = 100_000  # a bigger grid is a mistake (e.g. a huge integer range): say so


def grid_size(space: SearchSpace) -> int | None:
    """Number of configurations of a finite space (without the fidelity param), else None."""
    configs = list(_enumerate(space, limit=MAX_GRID + 1)) if _finite(space) else None
    return None if configs is None else len(configs)


def _finite(space: SearchSpace) -> bool:
    return not any(isinstance(p, FloatParam) for p in space.params)


def _values(p: Any) -> list[Any]:
    if isinstance(p, IntParam):
        return list(range(p.low, p.high + 1, p.step))
    if isinstance(p, (CategoricalParam, BoolParam)):
        return list(p.choices)
    raise NotSupportedError(f"parameter {p.name!r} is continuous: it has no grid")


def _enumerate(space: SearchSpace, limit: int) -> Any:
    """Every assignment of the active parameters, depth-first in declaration order."""
    params = list(space.params)

    def walk(i: int, partial: dict[str, Any]) -> Any:
        if i == len(params):
            yield dict(partial)
            return
        p = params[i]
        if p.condition is not None and not p.condition.holds(partial):
            yield from walk(i + 1, partial)
            return
        for v in _values(p):
            partial[p.name] = v
            yield from walk(i + 1, partial)
            del partial[p.name]

    return itertools.islice(walk(0, {}), limit)


def _from_unit(space: SearchSpace, u: np.ndarray) -> dict[str, Any]:
    """A point of the unit cube (one coordinate per parameter) as params; inactive ones skipped."""
    out: dict[str, Any] = {}
    for p, x in zip(space.params, u):
        if p.condition is not None and not p.condition.holds(out):
            continue
        x = float(min(max(x, 0.0), 1.0 - 1e-12))
        if isinstance(p, FloatParam):
            if p.log:
                v = math.exp(math.log(p.low) + x * (math.log(p.high) - math.log(p.low)))
            else:
                v = p.low + x * (p.high - p.low)
            out[p.name] = float(min(p.high, max(p.low, v)))
        elif isinstance(p, IntParam):
            if p.log:
                v = math.exp(math.log(p.low) + x * (math.log(p.high + 1) - math.log(p.low)))
                out[p.name] = min(p.high, max(p.low, int(math.floor(v))))
            else:
                out[p.name] = p.low + p.step * int(x * p.n_values)
        else:
            out[p.name] = p.choices[int(x * len(p.choices))]
    return out


class Grid(Strategy):
    """See the module docstring. `n` is the Sobol sample size for spaces with float params."""

    name = "grid"
    capabilities = Capabilities(conditional=True, multi_fidelity=False, batch=True)
    conformance_options = {"n": 16}

    def __init__(
        self,
        space: SearchSpace,
        *,
        seed: int = 0,
        max_trials: int | None = None,
        n: int = 64,
        full_fidelity: bool = True,
        shuffle: bool = False,
        sample_seed: int | None = None,
    ):
        super().__init__(space, seed=seed, max_trials=max_trials)
        if type(n) is not int or n < 1:
            raise ValueError(f"n (the Sobol sample size of a continuous space) must be an integer >= 1, but got {n!r}")
        for key, value in (("full_fidelity", full_fidelity), ("shuffle", shuffle)):
            if not isinstance(value, bool):
                raise TypeError(f"{key} must be true or false, but got {value!r}")
        if sample_seed is not None and type(sample_seed) is not int:
            raise TypeError(f"sample_seed must be an integer or null (the run seed), but got {sample_seed!r}")
        self.n, self.full_fidelity, self.shuffle = n, full_fidelity, shuffle
        # The Sobol sample's seed: fixed, every run seed evaluates the same set (what a table's
        # replicates need); None: the run seed.
        self.sample_seed = seed if sample_seed is None else sample_seed
        fid = space.fidelity
        self._fixed = {fid.param: fid.max} if full_fidelity and fid is not None and fid.param else {}
        # The space enumerated: without the fidelity param when it is fixed.
        self._space = space.without_fidelity_param() if self._fixed else space
        if _finite(self._space) and grid_size(self._space) > MAX_GRID:
            # Refused when built, so the runner records the pairing as not applicable.
            raise NotSupportedError(
                f"search space {space.name!r} has more than {MAX_GRID:,} grid points; "
                f"use a coarser space (steps) or random search"
            )
        self._configs: list[dict[str, Any]] | None = None
        self._next = 0

    @classmethod
    def library_version(cls) -> str:
        import scipy

        return f"numpy {np.__version__}, scipy {scipy.__version__}"

    def configurations(self) -> list[dict[str, Any]]:
        """The whole set, in the order it is handed out (built on first use)."""
        if self._configs is None:
            if _finite(self._space):
                configs = list(_enumerate(self._space, limit=MAX_GRID + 1))  # size checked when built
            else:
                from scipy.stats import qmc

                sobol = qmc.Sobol(d=len(self._space.params), scramble=True, seed=self.sample_seed)
                # Sobol points are balanced in powers of two: draw the next one up, keep n.
                m = max(0, math.ceil(math.log2(self.n)))
                points = sobol.random_base2(m)[: self.n]
                configs = [_from_unit(self._space, u) for u in points]
            ordered = [{**c, **self._fixed} for c in configs]
            if self.shuffle:
                order = np.random.default_rng(self.seed).permutation(len(ordered))
                ordered = [ordered[i] for i in order]
            # Parameters in the space's declaration order, as other strategies give them.
            names = self.space.names
            self._configs = [{k: c[k] for k in names if k in c} for c in ordered]
        return self._configs

    def _ask(self, n: int) -> Sequence[Suggestion]:
        configs = self.configurations()
        out = []
        while len(out) < n and self._next < len(configs):
            out.append(Suggestion(self._new_trial_id(), dict(configs[self._next])))
            self._next += 1
        return out

    def _tell(self, observations: Sequence[Observation]) -> None:
        pass  # the set is fixed in advance

    def _finished(self) -> bool:
        return self._next >= len(self.configurations()) and not self.pending
