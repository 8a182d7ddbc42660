"""What every strategy built on an Optuna sampler shares: the study, the space translation, the
ask/tell and the pruner hook (Akiba et al., KDD 2019).

Strategies wrap, they do not re-implement: each owns one in-memory `optuna.Study`, and each
`ask` is `study.ask()` followed by `trial.suggest_*` calls in the space's declaration order,
skipping inactive conditional parameters (Optuna's define-by-run). So with the same seed,
options and observations a strategy suggests exactly what a hand-written Optuna loop would.
Optuna is imported when a strategy is built (about 0.5 s), never at module import: the
constructor checks the sampler options against the sampler's own signature, so that a misspelt
option is a config error before the run starts rather than a failed run after its first ask.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

from harness.space import BoolParam, CategoricalParam, FloatParam, IntParam, SearchSpace
from harness.strategy import Capabilities, Observation, Strategy, Suggestion, TrialStatus

_PRUNERS = {
    "median": "MedianPruner",
    "percentile": "PercentilePruner",
    "successive_halving": "SuccessiveHalvingPruner",
    "hyperband": "HyperbandPruner",
    "threshold": "ThresholdPruner",
    "patient": "PatientPruner",
    "wilcoxon": "WilcoxonPruner",
    "nop": "NopPruner",
}


def _import_optuna() -> Any:
    import optuna

    # Optuna logs every trial at INFO on stderr, which would interleave with the runner's
    # progress bar. Lower it only while it is still at Optuna's default; warnings stay visible.
    if optuna.logging.get_verbosity() == optuna.logging.INFO:
        optuna.logging.set_verbosity(optuna.logging.WARNING)
    return optuna


def suggest_params(trial: Any, space: SearchSpace) -> dict[str, Any]:
    """Ask an Optuna trial for every active parameter of `space`, in declaration order.

    This is the define-by-run translation of our declarative space: a conditional parameter is
    suggested only when its condition holds on the values drawn so far.
    """
    params: dict[str, Any] = {}
    for p in space.params:
        if p.condition is not None and not p.condition.holds(params):
            continue
        if isinstance(p, IntParam):
            params[p.name] = int(trial.suggest_int(p.name, p.low, p.high, step=p.step, log=p.log))
        elif isinstance(p, FloatParam):
            params[p.name] = float(trial.suggest_float(p.name, p.low, p.high, log=p.log))
        elif isinstance(p, CategoricalParam):
            params[p.name] = trial.suggest_categorical(p.name, list(p.choices))
        elif isinstance(p, BoolParam):
            params[p.name] = bool(trial.suggest_categorical(p.name, [False, True]))
        else:  # pragma: no cover - the space model has exactly these kinds
            raise TypeError(f"unsupported parameter kind {type(p).__name__} for {p.name!r}")
    return params


def _annotation_kinds(parameter: Any) -> set[str]:
    """{"bool", "None"} for an annotation `bool | None` (a string under postponed evaluation);
    the default's type where there is no annotation."""
    import inspect

    annotation = parameter.annotation
    if annotation is inspect.Parameter.empty:
        default = parameter.default
        return {type(default).__name__} if default is not inspect.Parameter.empty else set()
    text = annotation if isinstance(annotation, str) else getattr(annotation, "__name__", str(annotation))
    return {part.strip().replace("Optional[", "").rstrip("]") for part in str(text).split("|")}


class OptunaStrategy(Strategy):
    """Base for strategies that are an Optuna sampler driven through `study.ask` / `study.tell`.

    Subclasses implement `_sampler_class(optuna)` (or `_make_sampler(optuna)`). Keyword options not consumed here go to the
    sampler's constructor unchanged, so Optuna's signature validates them. `pruner` (a name
    such as "median", or a mapping `{name: median, n_warmup_steps: 2, ...}`) enables the
    per-epoch `report` hook; without it `report` never stops a trial.

    The study is in memory and pickles with the strategy (Optuna's in-memory storage and
    samplers are picklable), so a pickled strategy continues with identical suggestions.
    """

    capabilities = Capabilities(conditional=True, multi_fidelity=False, batch=True)

    def __init__(
        self,
        space: SearchSpace,
        *,
        seed: int = 0,
        max_trials: int | None = None,
        pruner: str | Mapping[str, Any] | None = None,
        **sampler_options: Any,
    ):
        super().__init__(space, seed=seed, max_trials=max_trials)
        if "seed" in sampler_options:  # pragma: no cover - Python already rejects a duplicate
            raise TypeError("pass the seed as the strategy's `seed`, not as a sampler option")
        self.sampler_options = dict(sampler_options)
        self.pruner_spec = self._validate_pruner(pruner)
        self._validate_sampler_options()
        self._study: Any = None
        self._trials: dict[int, Any] = {}  # our trial id -> optuna.trial.Trial

    def _validate_sampler_options(self) -> None:
        """Reject unknown sampler options now, by the sampler's own signature (no copy of it)."""
        import inspect

        cls = self._sampler_class(_import_optuna())
        signature = inspect.signature(cls)
        try:
            signature.bind_partial(seed=self.seed, **self.sampler_options)
        except TypeError as exc:
            raise TypeError(f"{cls.__name__}: {exc}") from None
        # Optuna checks few values itself (n_startup_trials=-3 and multivariate="maybe" would run):
        # by the sampler's own annotations, a bool option takes a bool and an int option an int,
        # and counts (n_*) are not negative.
        for name, value in self.sampler_options.items():
            kinds = _annotation_kinds(signature.parameters[name])
            if value is None and "None" in kinds:
                continue
            if kinds <= {"bool", "None"} and "bool" in kinds and not isinstance(value, bool):
                raise ValueError(f"{cls.__name__} option {name} must be true or false, but got {value!r}")
            if kinds <= {"int", "None"} and "int" in kinds:
                if isinstance(value, bool) or not isinstance(value, int):
                    raise ValueError(f"{cls.__name__} option {name} must be an integer, but got {value!r}")
                if name.startswith("n_") and value < 0:
                    raise ValueError(
                        f"{cls.__name__} option {name} counts trials or candidates and must be >= 0, but got {value}"
                    )

    @staticmethod
    def _validate_pruner(pruner: Any) -> dict[str, Any] | None:
        if pruner is None:
            return None
        spec = {"name": pruner} if isinstance(pruner, str) else dict(pruner)
        name = spec.get("name")
        if name not in _PRUNERS:
            raise ValueError(
                f"pruner must be None, one of {sorted(_PRUNERS)} or a mapping with `name:` one of them, but got {pruner!r}"
            )
        return spec

    @classmethod
    def library_version(cls) -> str:
        from importlib.metadata import version

        return f"optuna {version('optuna')}"

    def _sampler_class(self, optuna: Any) -> type:  # pragma: no cover - abstract
        raise NotImplementedError

    def _make_sampler(self, optuna: Any) -> Any:
        return self._sampler_class(optuna)(seed=self.seed, **self.sampler_options)

    def _make_pruner(self, optuna: Any) -> Any:
        if self.pruner_spec is None:
            return None
        options = {k: v for k, v in self.pruner_spec.items() if k != "name"}
        return getattr(optuna.pruners, _PRUNERS[self.pruner_spec["name"]])(**options)

    @property
    def study(self) -> Any:
        """The wrapped `optuna.Study` (built on first use)."""
        if self._study is None:
            optuna = _import_optuna()
            # A fixed study name: Optuna's HyperbandPruner assigns trials to brackets by a hash
            # of it, and the default name is a random UUID (pruning would differ on resume).
            self._study = optuna.create_study(
                study_name=f"harness-{self.name}-seed{self.seed}",
                direction="maximize",
                sampler=self._make_sampler(optuna),
                pruner=self._make_pruner(optuna),
            )
        return self._study

    @property
    def searched_space(self) -> SearchSpace:
        """The params asked of Optuna (pruning strategies leave the budget param out)."""
        return self.space

    def _budget(self) -> int | None:
        return None

    def _ask(self, n: int) -> Sequence[Suggestion]:
        out = []
        for _ in range(n):
            trial = self.study.ask()
            params = suggest_params(trial, self.searched_space)
            trial_id = self._new_trial_id()
            self._trials[trial_id] = trial
            out.append(Suggestion(trial_id, params, budget=self._budget()))
        return out

    def _tell(self, observations: Sequence[Observation]) -> None:
        from optuna.trial import TrialState

        for o in observations:
            trial = self._trials.pop(o.trial_id)
            if o.status is TrialStatus.PRUNED:
                self.study.tell(trial, state=TrialState.PRUNED)
            elif o.usable:
                self.study.tell(trial, float(o.value))
            else:  # failed, or "ok" with NaN/inf: Optuna learns nothing from it
                self.study.tell(trial, state=TrialState.FAIL)

    def report(self, trial_id: int, epoch: int, value: float) -> bool:
        """Record an intermediate value; True when the Optuna pruner says to stop."""
        trial = self._trials.get(trial_id)
        if trial is None or self.pruner_spec is None or not math.isfinite(value):
            return False
        trial.report(float(value), int(epoch))
        return bool(trial.should_prune())


class OptunaPruningStrategy(OptunaStrategy):
    """Base of strategies that give every trial the full budget and stop poor ones early.

    Each trial is handed out with the space's whole fidelity (`fidelity.max`, e.g. all epochs)
    and reports its value after every step (`Problem.reports_steps`); an Optuna pruner decides
    from those reports whether to stop it. So these strategies need a space with a fidelity and
    a problem that reports steps; elsewhere the runner records them as not applicable.

    Options: `sampler` (`random` or `tpe`), `min_resource` (default: the space's
    `fidelity.min`), `reduction_factor` (default 3, as Hyperband's `factor`); other keywords go
    to the sampler unchanged.
    """

    capabilities = Capabilities(conditional=True, multi_fidelity=True, batch=True, prunes=True)
    default_sampler = "random"
    _SAMPLERS = {"random": "RandomSampler", "tpe": "TPESampler"}

    def __init__(
        self,
        space: SearchSpace,
        *,
        seed: int = 0,
        max_trials: int | None = None,
        sampler: str | None = None,
        min_resource: int | None = None,
        reduction_factor: int = 3,
        **sampler_options: Any,
    ):
        sampler = self.default_sampler if sampler is None else sampler
        if sampler not in self._SAMPLERS:
            raise ValueError(f"sampler must be one of {sorted(self._SAMPLERS)}, but got {sampler!r}")
        self.sampler_name = sampler
        super().__init__(space, seed=seed, max_trials=max_trials, **sampler_options)
        fid = space.fidelity  # not None: the base class refuses a space without one
        lo = fid.min if min_resource is None else min_resource
        if type(lo) is not int or not 1 <= lo <= fid.max:
            raise ValueError(
                f"min_resource must be an int in [1, {fid.max}] (the space's fidelity.max), but got {min_resource!r}"
            )
        if type(reduction_factor) is not int or reduction_factor < 2:
            raise ValueError(f"reduction_factor must be an int >= 2, but got {reduction_factor!r}")
        self.min_resource, self.max_resource, self.reduction_factor = lo, fid.max, reduction_factor
        self.pruner_spec = self._pruner_spec()
        self._searched = space.without_fidelity_param()

    def _pruner_spec(self) -> dict[str, Any]:  # pragma: no cover - abstract
        raise NotImplementedError

    @property
    def searched_space(self) -> SearchSpace:
        return self._searched

    def _budget(self) -> int | None:
        return self.max_resource

    def _sampler_class(self, optuna: Any) -> type:
        return getattr(optuna.samplers, self._SAMPLERS[self.sampler_name])
