"""`problem=tabular`: replay a tabular benchmark (`harness.tabular`) in a simulated clock.

    harness problem=tabular problem.table=mlp_digits strategy=hyperband n_workers=4 budget.trials=200

A configuration on the table's grid hits its own curve; one off the grid (a continuous space) is
answered by its nearest tabulated configuration (`surrogate: nearest`, as syne-tune's
blackbox repository does; distances on the unit-scaled params, log-scaled where the space is,
categorical mismatch 1), and the distance is recorded. A budget of e epochs returns the curve's
epoch-e validation and test values; the trial's cost is the recorded seconds of the epochs it
trained, so a Hyperband promotion that continues a parent costs only the extra epochs. The run
seed chooses the replicate (`replicates[seed % n]`), so seeds behave like independent real runs.
The runner keeps a simulated clock for this problem (`simulated_clock`): trials "take" their
recorded seconds, `n_workers` are simulated, and two runs with one seed give identical rows.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any, ClassVar

from harness.errors import ConfigError
from harness.problem import EvalResult, ObjectiveInfo, Problem, Report
from harness.space import BoolParam, CategoricalParam, FloatParam, IntParam, SearchSpace
from harness.strategy import Suggestion, TrialStatus

SURROGATES = ("nearest",)


class TabularProblem(Problem):
    name = "tabular"
    isolate = False
    simulated_clock: ClassVar[bool] = True
    reports_steps = True  # the recorded curve, epoch by epoch
    conformance_overrides = ["problem.table=mlp_digits"]

    def __init__(
        self,
        *,
        seed: int = 0,
        config: Mapping[str, Any] | None = None,
        table: str | None = "mlp_digits",
        surrogate: str = "nearest",
    ):
        super().__init__(seed=seed, config=config)
        from harness.tabular import read_table

        if not table or not isinstance(table, str):
            raise ValueError(
                f"problem.table must name a shipped table or a <name>.parquet path, but got "
                f"{table!r}; e.g. `problem.table=mlp_digits`"
            )
        if surrogate not in SURROGATES:
            raise ValueError(f"problem.surrogate must be one of {', '.join(SURROGATES)}, but got {surrogate!r}")
        frame, meta = read_table(table)
        self.table, self.surrogate, self.meta = table, surrogate, meta
        self.space = SearchSpace.from_config(meta["space"])
        self._searched = self.space.without_fidelity_param()  # the params a curve is keyed by
        self.objective = ObjectiveInfo(str(meta["objective"].get("name") or "val"), meta["objective"]["direction"])
        self.replicates = list(meta["replicates"])
        self.replicate = int(self.replicates[seed % len(self.replicates)])
        self.epochs = int(meta["epochs"])
        self.instance = f"tab-{meta.get('name') or table}"
        self._frame = frame
        self._curves: dict[int, Any] | None = None
        self._reached: dict[int, int] = {}  # trial id -> epochs it ended at (parents of promotions)

    def identity(self) -> dict[str, Any]:
        return {
            "problem": self.name,
            "table": self.meta.get("name"),
            "table_hash": self.meta.get("identity_hash"),
            "surrogate": self.surrogate,
            "n_rows": len(self._frame),
        }

    def describe(self) -> dict[str, Any]:
        return {"search_space": self.space.name, "dataset": f"tab-{self.meta.get('name')}", "task": None, "trainer": None}

    def __getstate__(self) -> dict[str, Any]:
        return {**self.__dict__, "_curves": None}

    # -- lookup -------------------------------------------------------------------------------
    def setup(self) -> None:
        if self._curves is not None:
            return
        import numpy as np

        searched = self._searched
        rows = self._frame[self._frame["replicate"] == self.replicate].sort_values(["config_id", "epoch"])
        names = searched.names
        configs = rows.drop_duplicates("config_id")
        self._ids = configs["config_id"].to_numpy()
        self._keys = {
            self._key({n: _native(v) for n, v in zip(names, vals)}): cid
            for cid, vals in zip(self._ids, configs[[f"param.{n}" for n in names]].itertuples(index=False))
        }
        self._coords = np.array(
            [
                [_unit(searched[n], _native(v)) for n, v in zip(names, vals)]
                for vals in configs[[f"param.{n}" for n in names]].itertuples(index=False)
            ]
        )
        self._curves = {
            int(cid): (g["val"].to_numpy(float), g["test"].to_numpy(float), g["seconds"].to_numpy(float))
            for cid, g in rows.groupby("config_id", sort=False)
        }

    def _key(self, params: Mapping[str, Any]) -> tuple[Any, ...]:
        return tuple(params.get(n) for n in self._searched.names)

    def lookup(self, params: Mapping[str, Any]) -> tuple[int, float]:
        """(config id, distance): the exact configuration, or the nearest one."""
        import numpy as np

        self.setup()
        cid = self._keys.get(self._key(params))
        if cid is not None:
            return int(cid), 0.0
        searched = self._searched
        point = np.array([_unit(searched[n], params.get(n)) for n in searched.names])
        diff = np.abs(self._coords - point)
        categorical = [i for i, n in enumerate(searched.names) if isinstance(searched[n], (CategoricalParam, BoolParam))]
        if categorical:
            diff[:, categorical] = (diff[:, categorical] > 0).astype(float)
        dist = np.sqrt(np.nansum(diff**2, axis=1))
        best = int(np.argmin(dist))  # ties: the lowest config id
        return int(self._ids[best]), float(dist[best])

    def resume(self, rows: list[dict[str, Any]]) -> None:
        """Promotions after a resume pay only their extra epochs, as they did before it."""
        self._reached.update({int(r["trial_id"]): int(r["budget"]) for r in rows if r.get("budget") is not None})

    def evaluate(self, suggestion: Suggestion, report: Report | None = None) -> EvalResult:
        cid, distance = self.lookup(suggestion.params)
        val, test, seconds = self._curves[cid]
        target = max(1, min(int(self.fidelity_for(suggestion) or self.epochs), self.epochs))
        start = min(self._reached.get(suggestion.resume_from, 0), target) if suggestion.resume_from is not None else 0
        stop, status = target, TrialStatus.OK
        if report is not None:
            for epoch in range(start + 1, target + 1):
                if report(epoch, float(val[epoch - 1])):
                    stop, status = epoch, TrialStatus.PRUNED
                    break
        self._reached[suggestion.trial_id] = stop
        history = [{"epoch": e, "val": float(val[e - 1]), "seconds": float(seconds[e - 1])} for e in range(start + 1, stop + 1)]
        return EvalResult(
            status,
            float(val[stop - 1]),
            test_objective=float(test[stop - 1]),
            budget=stop,
            budget_spent=stop - start,
            cost_seconds=float(seconds[start:stop].sum()),
            metrics={"config_id": cid, "replicate": self.replicate, "surrogate_distance": distance},
            history=history,
        )


def _native(v: Any) -> Any:
    """Table values (numpy scalars) as the space's native Python values."""
    if hasattr(v, "item"):
        v = v.item()
    return None if isinstance(v, float) and math.isnan(v) else v  # an inactive conditional param


def _unit(p: Any, v: Any) -> float:
    """A param value on [0, 1] (log-scaled where the space is); categorical: its index."""
    if v is None:
        return math.nan
    if isinstance(p, (IntParam, FloatParam)):
        lo, hi, x = float(p.low), float(p.high), float(v)
        if p.log:
            lo, hi, x = math.log(lo), math.log(hi), math.log(max(x, 1e-300))
        return (x - lo) / (hi - lo) if hi > lo else 0.0
    if isinstance(p, (CategoricalParam, BoolParam)):
        return float(list(p.choices).index(v)) if v in p.choices else -1.0
    raise ConfigError(f"parameter {p.name!r} of kind {p.type!r} cannot be tabulated")
