"""`problem=bbob`: the 24 noiseless BBOB functions of COCO, evaluated by the `ioh` package.

    harness problem=bbob problem.function=7 problem.dimension=5 problem.instance=1 strategy=tpe

The search space is [-5, 5]^D (params `x0` .. `x<D-1>`), as COCO defines it; the objective
`f` is minimised; every row carries the regret f(x) - f_opt from the library's own optimum.
The functions are IOHprofiler's implementation of COCO's (Hansen et al., 2009); nothing here
re-implements them. Evaluations take microseconds, so runs stay in the runner's process.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from harness.problem import EvalResult, ObjectiveInfo, Problem, Report
from harness.space import FloatParam, SearchSpace
from harness.strategy import Suggestion, TrialStatus

LOWER, UPPER = -5.0, 5.0
N_FUNCTIONS = 24


def _integer(name: str, value: Any, low: int, high: int | None, example: int) -> int:
    if type(value) is not int or value < low or (high is not None and value > high):
        accepted = f"an integer in {low}..{high}" if high is not None else f"an integer >= {low}"
        raise ValueError(f"problem.{name} must be {accepted}, but got {value!r}; e.g. `problem.{name}={example}`")
    return value


class BBOB(Problem):
    """One BBOB function, dimension and instance; see the module docstring."""

    name = "bbob"
    isolate = False

    def __init__(
        self, *, seed: int = 0, config: Mapping[str, Any] | None = None, function: int = 1, dimension: int = 5, instance: int = 1
    ):
        super().__init__(seed=seed, config=config)
        self.function = _integer("function", function, 1, N_FUNCTIONS, 7)
        self.dimension = _integer("dimension", dimension, 2, 40, 5)
        self.instance_id = _integer("instance", instance, 1, None, 1)
        self.space = SearchSpace(
            name=f"bbob_d{self.dimension}",
            params=tuple(FloatParam(f"x{i}", low=LOWER, high=UPPER) for i in range(self.dimension)),
            description=f"[{LOWER:g}, {UPPER:g}]^{self.dimension}, COCO's BBOB domain",
        )
        self.objective = ObjectiveInfo("f", "minimize")
        self.instance = f"bbob-f{self.function:02d}-d{self.dimension}-i{self.instance_id}"
        self._f: Any = None
        self.setup()  # cheap (ioh imports in ~35 ms): the optimum is known from the start
        self.optimum = float(self._f.optimum.y)
        self.function_name = str(self._f.meta_data.name)

    def identity(self) -> dict[str, Any]:
        return {"problem": self.name, "function": self.function, "dimension": self.dimension, "instance": self.instance_id}

    def describe(self) -> dict[str, Any]:
        return {
            "search_space": self.space.name,
            "dataset": f"f{self.function:02d}_{self.function_name}_i{self.instance_id}",
            "task": None,
            "trainer": None,
        }

    @classmethod
    def library_version(cls) -> str:
        from harness.provenance import package_version

        return f"ioh {package_version('ioh')}"

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        state["_f"] = None  # ioh's C++ function objects do not pickle; setup() rebuilds it
        return state

    def setup(self) -> None:
        if self._f is None:
            import ioh

            self._f = ioh.get_problem(
                self.function, instance=self.instance_id, dimension=self.dimension, problem_class=ioh.ProblemClass.BBOB
            )

    def evaluate(self, suggestion: Suggestion, report: Report | None = None) -> EvalResult:
        x = [suggestion.params[f"x{i}"] for i in range(self.dimension)]
        return EvalResult(TrialStatus.OK, float(self._f(x)))
