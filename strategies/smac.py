"""SMAC3 (Lindauer et al., JMLR 2022) through its ask/tell interface.

- `smac`: the hyperparameter-optimisation facade, Bayesian optimisation with a random-forest
  surrogate and log-scaled costs (Hutter et al., LION 2011), the AutoML community's standard.
- `smac_mf`: the multi-fidelity facade, Hyperband brackets whose new configurations come from
  the same random-forest model (BOHB-style; Falkner et al., ICML 2018), budgets in the space's
  fidelity units (epochs, trees...).

The harness's space becomes a ConfigSpace: ints (a `step` as an index over its values), floats,
log scales, categoricals and booleans, and conditions as `InCondition`s, so SMAC models the
conditional structure itself. SMAC minimises cost; cost = -value as the harness maximises.
Failed, pruned and non-finite trials are told as CRASHED and left out of the surrogate's data
(as Optuna's TPE ignores failed trials): SMAC's default treats a crash as cost `inf`, which its
random forest cannot fit.

SMAC is imported on the first ask (about 1.7 s), never at module import; it writes its run
history into a temporary folder of its own, removed with the strategy. SMAC orders sets of
configurations by their hash, which Python randomises per process for strings: the `harness`
command therefore runs with PYTHONHASHSEED=0, so that a run resumed in a new process replays
SMAC exactly (see `harness.command`). It plans with the run's
trial budget (`planned_trials`): its initial design is sized from it (default: 100 trials when
the run is time-bounded). Promotions of `smac_mf` continue the checkpoint of the same
configuration's finished lower-budget trial, as `hyperband` does, so a Keras model trains only
the missing epochs.
"""

from __future__ import annotations

import inspect
import json
import logging
import math
import shutil
import tempfile
import warnings
import weakref
from collections.abc import Mapping, Sequence
from typing import Any

from harness.space import BoolParam, CategoricalParam, FloatParam, IntParam, SearchSpace
from harness.strategies._replayable import ReplayPickling
from harness.strategy import (
    PLANNED_TRIALS_WHEN_UNKNOWN,
    Capabilities,
    Observation,
    Strategy,
    Suggestion,
    TrialStatus,
    installed_versions,
)


def to_configspace(space: SearchSpace, seed: int) -> tuple[Any, dict[str, list[Any]]]:
    """A ConfigSpace `ConfigurationSpace` for `space`, and, for parameters SMAC sees as indices
    or labels, the list of native values by index."""
    from ConfigSpace import Categorical, ConfigurationSpace, Float, InCondition, Integer

    cs = ConfigurationSpace(seed=seed)
    values: dict[str, list[Any]] = {}  # name -> native value of each index / label
    hps = {}
    for p in space.params:
        if isinstance(p, IntParam) and p.step > 1:
            values[p.name] = list(range(p.low, p.high + 1, p.step))
            hps[p.name] = Integer(p.name, (0, p.n_values - 1))
        elif isinstance(p, IntParam):
            hps[p.name] = Integer(p.name, (p.low, p.high), log=p.log)
        elif isinstance(p, FloatParam):
            hps[p.name] = Float(p.name, (float(p.low), float(p.high)), log=p.log)
        elif isinstance(p, (CategoricalParam, BoolParam)):
            values[p.name] = list(p.choices)
            hps[p.name] = Categorical(p.name, [str(i) for i in range(len(p.choices))])
        else:  # pragma: no cover - the space model has exactly these kinds
            raise TypeError(f"unsupported parameter kind {type(p).__name__} for {p.name!r}")
    cs.add(list(hps.values()))
    for p in space.params:
        if p.condition is not None:
            parent = space[p.condition.parent]
            encoded = _encode(parent, values, p.condition.values)
            cs.add(InCondition(hps[p.name], hps[parent.name], encoded))
    return cs, values


def _encode(p: Any, values: Mapping[str, list[Any]], wanted: Any) -> list[Any]:
    """The values of parameter `p` a condition accepts, as its ConfigSpace hyperparameter holds
    them. Matched with `==` (1 == True), as the harness's own `Condition.holds` matches."""
    if p.name not in values:
        return list(wanted)
    indices = [i for i, v in enumerate(values[p.name]) if any(v == w for w in wanted)]
    return indices if isinstance(p, IntParam) else [str(i) for i in indices]


def from_configuration(space: SearchSpace, values: Mapping[str, list[Any]], config: Mapping[str, Any]) -> dict[str, Any]:
    """Native params, in the space's order, from a SMAC `Configuration` (inactive ones absent)."""
    params: dict[str, Any] = {}
    for p in space.params:
        if p.name not in config:
            continue
        raw = config[p.name]
        if isinstance(p, IntParam):
            params[p.name] = values[p.name][int(raw)] if p.name in values else int(raw)
        elif isinstance(p, FloatParam):
            params[p.name] = min(p.high, max(p.low, float(raw)))
        else:
            params[p.name] = values[p.name][int(raw)]
    return params


class SMAC(ReplayPickling, Strategy):
    """SMAC3's `HyperparameterOptimizationFacade` (random forest, log-scaled costs).

    Options: `initial_design` (a mapping passed to the facade's `get_initial_design`, e.g.
    `{n_configs: 10}` or `{n_configs_per_hyperparameter: 10, max_ratio: 0.25}`, SMAC's defaults),
    `model` (the facade's `get_model` options: n_trees, ratio_features, ...), `n_jobs` (the
    random forest's threads; default 1, -1 is SMAC's every core) and `scenario` (more `Scenario`
    fields; `n_trials`, `seed`, `deterministic` and the output folder are the harness's).
    """

    name = "smac"
    requires = {"smac": "smac"}
    capabilities = Capabilities(conditional=True, multi_fidelity=False, batch=True)
    conformance_options = {"initial_design": {"n_configs": 4}}  # reach the random forest
    _facade_name = "HyperparameterOptimizationFacade"

    def __init__(
        self,
        space: SearchSpace,
        *,
        seed: int = 0,
        max_trials: int | None = None,
        initial_design: Mapping[str, Any] | None = None,
        model: Mapping[str, Any] | None = None,
        n_jobs: int = 1,
        scenario: Mapping[str, Any] | None = None,
        **facade_options: Any,
    ):
        self._remember_arguments(
            space,
            seed=seed,
            max_trials=max_trials,
            initial_design=initial_design,
            model=model,
            n_jobs=n_jobs,
            scenario=scenario,
            **facade_options,
        )
        super().__init__(space, seed=seed, max_trials=max_trials)
        if type(n_jobs) is not int or not (n_jobs >= 1 or n_jobs == -1):
            raise ValueError(f"n_jobs must be an int >= 1, or -1 for every core, but got {n_jobs!r}")
        self.n_jobs = n_jobs
        self.model_options = dict(model or {})
        self.initial_design = dict(initial_design or {})
        self.scenario_options = dict(scenario or {})
        self.facade_options = dict(facade_options)
        reserved = {"configspace", "n_trials", "seed", "deterministic", "output_directory", "min_budget", "max_budget"} & set(
            self.scenario_options
        )
        if reserved:
            raise ValueError(
                f"scenario options {sorted(reserved)} are set by the harness (the run's "
                f"seed and budget, the space's fidelity); remove them"
            )
        self._searched = space.without_fidelity_param() if self.capabilities.multi_fidelity else space
        self._smac: Any = None
        self._infos: dict[int, Any] = {}
        self._folder: str | None = None
        self._exhausted = False
        # SMAC's intensifier loops forever when every configuration of a finite space has been
        # suggested and one is still pending (seen with 2 workers on a one-configuration space),
        # so the wrapper stops asking once each configuration has been suggested (`smac` only:
        # `smac_mf` suggests a configuration again at a higher budget).
        from harness.strategies.grid import grid_size

        self._n_configs = None if self.capabilities.multi_fidelity else grid_size(self._searched)
        self._suggested: set[str] = set()

    @classmethod
    def library_version(cls) -> str:
        return installed_versions("smac")

    # -- building SMAC -----------------------------------------------------------------------
    def _facade_class(self) -> Any:
        import smac

        return getattr(smac, self._facade_name)

    def _scenario_budget(self) -> dict[str, Any]:
        return {}

    def _intensifier(self, facade: Any, scenario: Any) -> Any:
        return facade.get_intensifier(scenario)

    def _build(self) -> Any:
        logger = logging.getLogger("smac")
        if logger.level == logging.NOTSET:
            # SMAC logs every new incumbent (INFO) and each fallback to random configurations
            # (WARNING), which would interleave with the progress line; errors stay visible.
            logger.setLevel(logging.ERROR)
        from smac import Scenario
        from smac.runhistory.encoder import RunHistoryLogScaledEncoder
        from smac.runhistory.enumerations import StatusType

        facade = self._facade_class()
        self._configspace, self._values = to_configspace(self._searched, self.seed)
        self._folder = tempfile.mkdtemp(prefix="harness-smac-")
        weakref.finalize(self, shutil.rmtree, self._folder, ignore_errors=True)
        n_trials = self.planned_trials or PLANNED_TRIALS_WHEN_UNKNOWN
        scenario = _call(
            Scenario,
            "scenario",
            self._configspace,
            deterministic=True,
            n_trials=n_trials,
            seed=self.seed,
            output_directory=f"{self._folder}/run",
            **self._scenario_budget(),
            **self.scenario_options,
        )
        design = _call(facade.get_initial_design, "initial_design", scenario, **self.initial_design)
        model = _call(facade.get_model, "model", scenario, **self.model_options)
        # SMAC's random forest predicts on every core (n_jobs=-1), and joblib's thread hand-off
        # costs ~14 ms per prediction: ~2/3 of SMAC's time on small data, and oversubscribed
        # cores when runs or workers are parallel. One thread gives the same predictions.
        if self.n_jobs != -1 and isinstance(getattr(model, "_rf_opts", None), dict):
            model._rf_opts["n_jobs"] = self.n_jobs
        # Only successful trials train the surrogate; see the module docstring.
        encoder = RunHistoryLogScaledEncoder(scenario, considered_states=[StatusType.SUCCESS])
        return _call(
            facade,
            "facade options",
            scenario,
            _never_called,
            initial_design=design,
            intensifier=self._intensifier(facade, scenario),
            runhistory_encoder=encoder,
            model=model,
            overwrite=True,
            logging_level=False,
            **self.facade_options,
        )

    # -- ask/tell ----------------------------------------------------------------------------
    def _ask(self, n: int) -> Sequence[Suggestion]:
        from smac.main.exceptions import ConfigurationSpaceExhaustedException

        if self._smac is None:
            self._smac = self._build()
        out = []
        for _ in range(n):
            if self._n_configs is not None and len(self._suggested) >= self._n_configs:
                self._exhausted = True
            if self._exhausted:
                break
            with warnings.catch_warnings():
                # SMAC's local search averages empty neighbourhoods in small spaces (numpy's
                # "Mean of empty slice"): harmless, and not the user's to act on.
                warnings.simplefilter("ignore", RuntimeWarning)
                try:
                    info = self._smac.ask()
                except (ConfigurationSpaceExhaustedException, StopIteration):
                    # No new configuration left, and the exception ends SMAC's trial generator:
                    # the strategy finishes once the pending trials are told. With parallel
                    # workers on a small discrete space this can come before any promotion
                    # (a rung still pending when SMAC looked for a new configuration).
                    self._exhausted = True
                    break
            trial_id = self._new_trial_id()
            self._infos[trial_id] = info
            params = from_configuration(self._searched, self._values, info.config)
            self._suggested.add(json.dumps(params, sort_keys=True, default=str))
            out.append(self._suggestion(trial_id, params, info))
        return out

    def _suggestion(self, trial_id: int, params: dict[str, Any], info: Any) -> Suggestion:
        return Suggestion(trial_id, params)

    def _finished(self) -> bool:
        return self._exhausted and not self._infos

    def _tell(self, observations: Sequence[Observation]) -> None:
        from smac.runhistory.dataclasses import TrialValue
        from smac.runhistory.enumerations import StatusType

        for o in observations:
            info = self._infos.pop(o.trial_id)
            if o.usable:
                self._smac.tell(info, TrialValue(cost=-float(o.value), status=StatusType.SUCCESS))
            else:
                self._smac.tell(info, TrialValue(cost=math.inf, status=StatusType.CRASHED))


class SMACMultiFidelity(SMAC):
    """SMAC3's `MultiFidelityFacade`: Hyperband over the space's fidelity with the random-forest
    model proposing new configurations (BOHB-style).

    Options: `eta` (Hyperband's reduction factor, default 3), `min_budget` / `max_budget`
    (default: the space's `fidelity.min` / `fidelity.max`), `intensifier` (more options of
    SMAC's Hyperband intensifier), and SMAC's `initial_design` and `scenario` as for `smac`.
    """

    name = "smac_mf"
    capabilities = Capabilities(conditional=True, multi_fidelity=True, batch=True)
    _facade_name = "MultiFidelityFacade"

    def __init__(
        self,
        space: SearchSpace,
        *,
        seed: int = 0,
        max_trials: int | None = None,
        eta: int = 3,
        min_budget: int | None = None,
        max_budget: int | None = None,
        intensifier: Mapping[str, Any] | None = None,
        **options: Any,
    ):
        super().__init__(space, seed=seed, max_trials=max_trials, **options)
        self._arguments[1].update(eta=eta, min_budget=min_budget, max_budget=max_budget, intensifier=intensifier)
        fid = space.fidelity  # not None: the base class refuses a space without one
        hi = fid.max if max_budget is None else max_budget
        lo = fid.min if min_budget is None else min_budget
        if min_budget is None and type(hi) is int and 1 < hi <= lo:
            lo = 1  # a fidelity capped to one budget (budget.max_epochs): SMAC needs min < max
        if hi == 1:
            from harness.errors import NotSupportedError

            raise NotSupportedError(
                f"strategy 'smac_mf' needs a fidelity with more than one budget, but "
                f"search space {space.name!r} allows only 1; raise its fidelity.max "
                f"(or budget.max_epochs)"
            )
        if type(hi) is not int or not 1 <= hi <= fid.max:
            raise ValueError(f"max_budget must be an int in [1, {fid.max}] (the space's fidelity.max), but got {max_budget!r}")
        if type(lo) is not int or not 1 <= lo < hi:
            raise ValueError(f"min_budget must be an int in [1, max_budget={hi}), but got {min_budget!r}")
        if type(eta) is not int or eta < 2:
            raise ValueError(f"eta must be an int >= 2, but got {eta!r}")
        self.min_budget, self.max_budget, self.eta = lo, hi, eta
        self.intensifier_options = dict(intensifier or {})
        self._issued: dict[int, Suggestion] = {}
        self._promotable: dict[tuple[tuple[str, Any], ...], tuple[int, int]] = {}  # config -> (trial, budget)

    def _scenario_budget(self) -> dict[str, Any]:
        return {"min_budget": self.min_budget, "max_budget": self.max_budget}

    def _intensifier(self, facade: Any, scenario: Any) -> Any:
        return _call(facade.get_intensifier, "intensifier", scenario, eta=self.eta, **self.intensifier_options)

    def _suggestion(self, trial_id: int, params: dict[str, Any], info: Any) -> Suggestion:
        budget = min(self.max_budget, max(self.min_budget, int(round(info.budget))))
        parent = self._promotable.get(_key(params))
        # A promotion continues the same configuration's longest finished trial (its checkpoint).
        resume = parent[0] if parent is not None and parent[1] <= budget else None
        self._issued[trial_id] = sug = Suggestion(trial_id, params, budget=budget, resume_from=resume)
        return sug

    def _tell(self, observations: Sequence[Observation]) -> None:
        super()._tell(observations)
        for o in observations:
            sug = self._issued.pop(o.trial_id)
            if o.status is TrialStatus.OK:
                best = self._promotable.get(_key(sug.params))
                if best is None or best[1] <= sug.budget:
                    self._promotable[_key(sug.params)] = (o.trial_id, sug.budget)


def _key(params: Mapping[str, Any]) -> tuple[tuple[str, Any], ...]:
    return tuple(sorted(params.items()))


def _never_called(config: Any, seed: int = 0, budget: float | None = None) -> float:
    """SMAC's facades require a target function; ask/tell never calls it."""
    raise RuntimeError("SMAC is driven by ask/tell here; its target function is never called")


def _call(fn: Any, what: str, *args: Any, **kwargs: Any) -> Any:
    """Call a SMAC constructor, naming the harness option group when SMAC rejects a keyword."""
    try:
        inspect.signature(fn).bind(*args, **kwargs)
    except TypeError as exc:
        from harness.errors import ConfigError

        raise ConfigError(
            f"strategy smac: {what} {sorted(kwargs)} rejected by {getattr(fn, '__qualname__', fn)}: {exc}"
        ) from None
    return fn(*args, **kwargs)
