"""Shared adapter for strategies that drive a keras-tuner *oracle* standalone (no Tuner).

keras-tuner's oracles hold the search algorithm; its Tuners build and fit Keras models, which is
the objective's job here, so only the oracle is used: `create_trial(tuner_id)` is an ask,
`update_trial` + `end_trial` a tell. Importing `keras_tuner` imports TensorFlow (keras-tuner
#1041); that cost is paid on the first `ask`, never when this module is imported.

The oracle is kept in memory (its `save` / `_save_trial` JSON writes are disabled, and its
console display is silenced), it never stops after N consecutive failures (failures are rows
here, not a reason to abort), and it pickles through its attribute dict.
"""

from __future__ import annotations

import collections
import sys
from collections.abc import Sequence
from typing import Any

from harness.errors import ConfigError
from harness.space import (
    BoolParam,
    CategoricalParam,
    FloatParam,
    IntParam,
    Param,
    SearchSpace,
)
from harness.strategy import Observation, Strategy, Suggestion

# Oracle arguments this adapter owns; users pass everything else through `params:`.
RESERVED = frozenset(
    {
        "objective",
        "hyperparameters",
        "seed",
        "max_trials",
        "allow_new_entries",
        "tune_new_entries",
        "max_retries_per_trial",
        "max_consecutive_failed_trials",
    }
)
OBJECTIVE = "score"
_IN_MEMORY: dict[type, type] = {}


def import_keras_tuner() -> Any:
    from harness.quiet import import_tensorflow

    import_tensorflow()  # keras_tuner imports it: without its native start-up lines
    import keras_tuner  # imports TensorFlow: the wrapped library's cost, paid on first ask

    return keras_tuner


def in_memory(oracle_cls: type) -> type:
    """A subclass of `oracle_cls` that keeps its state in memory instead of JSON files."""
    if oracle_cls not in _IN_MEMORY:

        def save(self: Any) -> None:
            pass

        def _save_trial(self: Any, trial: Any) -> None:
            pass

        _IN_MEMORY[oracle_cls] = type(
            f"InMemory{oracle_cls.__name__}", (oracle_cls,), {"save": save, "_save_trial": _save_trial, "__module__": __name__}
        )
    return _IN_MEMORY[oracle_cls]


def oracle_seed(seed: int) -> int:
    """keras-tuner treats seed 0 as "no seed" (`seed or random.randint(...)`, global RNG) and
    numpy needs a non-negative 32-bit seed: map ours to 1..2**31-1, one-to-one for 1..2**31-2."""
    s = seed % (2**31 - 1)
    return s if s != 0 else 2**31 - 1


def to_hyperparameters(space: SearchSpace) -> Any:
    """Translate our declarative space into keras-tuner `HyperParameters`.

    A condition becomes a `conditional_scope`; a chain of conditions (a parent that is itself
    conditional) becomes nested scopes, which is how keras-tuner expresses them.
    """
    kt = import_keras_tuner()
    hp = kt.HyperParameters()

    def chain(p: Param) -> list[tuple[str, list[Any]]]:
        scopes = []
        while p.condition is not None:
            scopes.append((p.condition.parent, list(p.condition.values)))
            p = space[p.condition.parent]
        return scopes[::-1]

    for p in space.params:
        scopes = [hp.conditional_scope(parent, values) for parent, values in chain(p)]
        for s in scopes:
            s.__enter__()
        try:
            if isinstance(p, IntParam):
                hp.Int(p.name, p.low, p.high, step=None if p.log else p.step, sampling="log" if p.log else "linear")
            elif isinstance(p, FloatParam):
                hp.Float(p.name, p.low, p.high, sampling="log" if p.log else "linear")
            elif isinstance(p, CategoricalParam):
                hp.Choice(p.name, list(p.choices))
            elif isinstance(p, BoolParam):
                hp.Boolean(p.name)
        finally:
            for s in reversed(scopes):
                s.__exit__(None, None, None)
    return hp


def native_params(space: SearchSpace, values: dict[str, Any]) -> dict[str, Any]:
    """keras-tuner values -> our params: active parameters only, native Python types, no
    `tuner/*` bookkeeping (keras-tuner #570)."""
    out: dict[str, Any] = {}
    for p in space.params:
        if p.condition is not None and not p.condition.holds(out):
            continue
        if p.name not in values:
            continue  # let space.check() name it; keras-tuner never omits an active value
        v = values[p.name]
        if isinstance(p, IntParam):
            v = min(p.high, max(p.low, int(round(float(v)))))
            v = p.low + p.step * ((v - p.low) // p.step)
        elif isinstance(p, FloatParam):
            v = min(p.high, max(p.low, float(v)))
        elif isinstance(p, CategoricalParam):
            v = next((c for c in p.choices if c == v and isinstance(c, bool) == isinstance(v, bool)), v)
        elif isinstance(p, BoolParam):
            v = bool(v)
        out[p.name] = v
    return out


class KerasTunerStrategy(Strategy):
    """Base for strategies that are a keras-tuner oracle used standalone.

    Subclasses implement `_oracle_class(kt)` and may override `_oracle_kwargs()` and
    `_suggestion(trial_id, values)`. Options not reserved by the adapter go to the oracle's
    constructor unchanged, so keras-tuner's own signature validates them (on first ask).

    Parallel asks use one keras-tuner `tuner_id` per busy slot ("slot-0", "slot-1", ...), as
    keras-tuner's distributed tuning does: `create_trial` returns an existing trial to a
    tuner id that already has one.
    """

    def __init__(self, space: SearchSpace, *, seed: int = 0, max_trials: int | None = None, **oracle_options: Any):
        super().__init__(space, seed=seed, max_trials=max_trials)
        reserved = sorted(RESERVED & set(oracle_options))
        if reserved:
            raise ValueError(
                f"options {reserved} are set by the harness and cannot be passed "
                f"to the keras-tuner oracle; remove them from `params:`"
            )
        self.oracle_options = dict(oracle_options)
        self._oracle: Any = None
        self._stopped = False
        self._kt_ids: dict[int, str] = {}  # our trial id -> keras-tuner trial id
        self._our_ids: dict[str, int] = {}  # keras-tuner trial id -> our trial id
        self._slots: dict[int, str] = {}  # pending trial id -> tuner_id it runs on

    @classmethod
    def library_version(cls) -> str:
        from importlib.metadata import version

        return f"keras-tuner {version('keras-tuner')}"

    # -- for subclasses --------------------------------------------------------------------
    @property
    def searched_space(self) -> SearchSpace:
        """The space handed to the oracle (multi-fidelity strategies drop the budget param)."""
        return self.space

    def _oracle_class(self, kt: Any) -> type:  # pragma: no cover - abstract
        raise NotImplementedError

    def _oracle_kwargs(self) -> dict[str, Any]:
        return dict(self.oracle_options)

    def _suggestion(self, trial_id: int, values: dict[str, Any]) -> Suggestion:
        return Suggestion(trial_id, native_params(self.searched_space, values))

    # -- the oracle ------------------------------------------------------------------------
    @property
    def oracle(self) -> Any:
        """The wrapped keras-tuner oracle (built, with TensorFlow imported, on first use)."""
        if self._oracle is None:
            kt = import_keras_tuner()
            cls = in_memory(self._oracle_class(kt))
            try:
                oracle = cls(
                    objective=kt.Objective(OBJECTIVE, direction="max"),
                    hyperparameters=to_hyperparameters(self.searched_space),
                    seed=oracle_seed(self.seed),
                    allow_new_entries=False,
                    tune_new_entries=False,
                    max_retries_per_trial=0,
                    max_consecutive_failed_trials=sys.maxsize,
                    **self._oracle_kwargs(),
                )
            except TypeError as exc:
                raise ConfigError(
                    f"strategy {self.name!r}: keras-tuner "
                    f"{self._oracle_class(kt).__name__} rejected its params "
                    f"{self.oracle_options}: {exc}"
                ) from None
            oracle.verbose = 0  # its Display prints tables to stdout otherwise
            self._oracle = oracle
        return self._oracle

    def _ask(self, n: int) -> Sequence[Suggestion]:
        out: list[Suggestion] = []
        busy = set(self._slots.values())
        slot = 0
        while len(out) < n and not self._stopped:
            while f"slot-{slot}" in busy:
                slot += 1
            tuner_id = f"slot-{slot}"
            trial = self.oracle.create_trial(tuner_id)
            if trial.status == "STOPPED":
                self._stopped = True
            elif trial.status != "RUNNING":  # IDLE: waiting for results of pending trials
                break
            else:
                trial_id = self._new_trial_id()
                self._kt_ids[trial_id] = trial.trial_id
                self._our_ids[trial.trial_id] = trial_id
                self._slots[trial_id] = tuner_id
                busy.add(tuner_id)
                out.append(self._suggestion(trial_id, dict(trial.hyperparameters.values)))
        return out

    def _tell(self, observations: Sequence[Observation]) -> None:
        for o in observations:
            self._slots.pop(o.trial_id, None)
            kt_id = self._kt_ids[o.trial_id]
            trial = self.oracle.trials[kt_id]
            if o.usable:
                step = o.budget_used if o.budget_used is not None else 0
                self.oracle.update_trial(kt_id, {OBJECTIVE: float(o.value)}, step=step)
                trial.status = "COMPLETED"
            else:
                # keras-tuner has no "pruned": a partially trained score would be compared with
                # full ones, so pruned, failed and non-finite trials are all FAILED to it.
                trial.status = "FAILED"
                trial.message = f"harness status {o.status.value}, value {o.value}"
            self.oracle.end_trial(trial)

    def _finished(self) -> bool:
        return self._stopped

    # -- pickling: the oracle holds lambdas in defaultdicts; carry its attributes instead -----
    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        oracle = state.pop("_oracle")
        if oracle is not None:
            attrs = oracle.__dict__.copy()
            attrs.pop("_display")  # refers back to the oracle; rebuilt silent on unpickling
            for key, value in attrs.items():
                if isinstance(value, collections.defaultdict):
                    attrs[key] = ("__defaultdict__", dict(value))
            state["_oracle_state"] = (type(oracle).__mro__[1], attrs)
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        oracle_state = state.pop("_oracle_state", None)
        self.__dict__.update(state)
        self._oracle = None
        if oracle_state is not None:
            base, attrs = oracle_state
            oracle = in_memory(base).__new__(in_memory(base))
            for key, value in attrs.items():
                if isinstance(value, tuple) and len(value) == 2 and value[0] == "__defaultdict__":
                    default = (lambda: 0) if key == "_run_times" else (lambda: None)
                    restored = collections.defaultdict(default)
                    restored.update(value[1])
                    attrs[key] = restored
            oracle.__dict__.update(attrs)
            from keras_tuner.src.engine.oracle import Display

            oracle._display = Display(oracle=oracle, verbose=0)
            self._oracle = oracle
