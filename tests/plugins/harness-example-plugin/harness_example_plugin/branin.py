"""A problem plugin in a few lines: the Branin function (Dixon & Szegő, 1978), the classic
2-D test of Bayesian optimisation, with its known minimum 0.397887 (so rows carry regret)."""

from __future__ import annotations

import math

from harness.problem import EvalResult, ObjectiveInfo, Problem
from harness.space import FloatParam, SearchSpace
from harness.strategy import TrialStatus


class Branin(Problem):
    name = "branin"  # = the entry-point name = conf/problem/branin.yaml's name

    def __init__(self, *, seed=0, config=None, noise: float = 0.0):
        super().__init__(seed=seed, config=config)
        if not isinstance(noise, (int, float)) or noise < 0:
            raise ValueError(f"problem.noise must be a number >= 0, but got {noise!r}")
        self.noise = float(noise)
        self.space = SearchSpace("branin", (FloatParam("x1", low=-5.0, high=10.0), FloatParam("x2", low=0.0, high=15.0)))
        self.objective = ObjectiveInfo("f", "minimize")
        self.optimum = None if noise else 0.397887
        self.instance = "branin" if not noise else f"branin-noise{noise:g}"

    def identity(self):
        return {"problem": self.name, "noise": self.noise}

    def evaluate(self, suggestion, report=None):
        x1, x2 = suggestion.params["x1"], suggestion.params["x2"]
        f = (x2 - 5.1 / (4 * math.pi**2) * x1**2 + 5 / math.pi * x1 - 6) ** 2 + 10 * (1 - 1 / (8 * math.pi)) * math.cos(x1) + 10
        if self.noise:  # seeded by run seed and trial id: the same trial gives the same value
            import random

            f += random.Random(self.seed * 1_000_003 + suggestion.trial_id).gauss(0, self.noise)
        return EvalResult(TrialStatus.OK, f)
