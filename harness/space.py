"""Declarative search spaces: typed parameters, conditions, and an optional fidelity.

A search space is data (loaded from `conf/search_space/<name>.yaml`). Strategies translate it into
their library's own vocabulary (optuna distributions, keras-tuner `HyperParameters`, a DEAP
genome); the model builder named by `builder` reads the resulting params dict.

YAML shape::

    name: nas_mlp
    builder: harness.search_spaces.mlp:build_nas_mlp
    fidelity: {min: 1, max: 10}            # optional; `param: epochs` if a param is the budget
    params:
      num_layers: {type: int, low: 1, high: 3}
      units_1: {type: int, low: 32, high: 512, step: 32, condition: {parent: num_layers, in: [2, 3]}}
      lr: {type: float, low: 1.0e-4, high: 1.0e-2, log: true}
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from harness.errors import SearchSpaceError

PARAM_TYPES = ("int", "float", "categorical", "bool")


@dataclass(frozen=True)
class Condition:
    """The parameter is active only when `parent` is active and takes one of `values`."""

    parent: str
    values: tuple[Any, ...]

    def holds(self, params: Mapping[str, Any]) -> bool:
        return self.parent in params and params[self.parent] in self.values


@dataclass(frozen=True)
class Param:
    """Common part of every parameter kind."""

    name: str
    condition: Condition | None = field(default=None, kw_only=True)

    type: str = field(default="", init=False)  # set by subclasses, for adapters and messages

    def contains(self, value: Any) -> bool:  # pragma: no cover - abstract
        raise NotImplementedError


@dataclass(frozen=True)
class IntParam(Param):
    low: int = 0
    high: int = 0
    step: int = 1
    log: bool = False
    type: str = field(default="int", init=False)

    def contains(self, value: Any) -> bool:
        return type(value) is int and self.low <= value <= self.high and (value - self.low) % self.step == 0

    @property
    def n_values(self) -> int:
        return (self.high - self.low) // self.step + 1


@dataclass(frozen=True)
class FloatParam(Param):
    low: float = 0.0
    high: float = 1.0
    log: bool = False
    type: str = field(default="float", init=False)

    def contains(self, value: Any) -> bool:
        return type(value) is float and self.low <= value <= self.high


@dataclass(frozen=True)
class CategoricalParam(Param):
    choices: tuple[Any, ...] = ()
    type: str = field(default="categorical", init=False)

    def contains(self, value: Any) -> bool:
        # Compare types too: 1 == True in Python, but a choice of 1 is not a choice of True.
        return any(type(value) is type(c) and value == c for c in self.choices)


@dataclass(frozen=True)
class BoolParam(Param):
    type: str = field(default="bool", init=False)

    def contains(self, value: Any) -> bool:
        return type(value) is bool

    @property
    def choices(self) -> tuple[bool, bool]:
        return (False, True)


@dataclass(frozen=True)
class Fidelity:
    """The training budget in epochs that multi-fidelity strategies hand out.

    `param` names the hyperparameter that plays the same role in single-fidelity search (e.g.
    the seed MLP space tunes `epochs`); multi-fidelity strategies drop it and set the budget.
    """

    min: int
    max: int
    param: str | None = None


@dataclass(frozen=True)
class SearchSpace:
    name: str
    params: tuple[Param, ...]
    builder: str = ""
    fidelity: Fidelity | None = None
    description: str = ""
    # Settings that are not searched but the objective needs (e.g. the seed CNN's batch size).
    fixed: Mapping[str, Any] = field(default_factory=dict)

    # -- lookups ---------------------------------------------------------------------------
    @property
    def names(self) -> list[str]:
        return [p.name for p in self.params]

    def __getitem__(self, name: str) -> Param:
        for p in self.params:
            if p.name == name:
                return p
        raise KeyError(name)

    def __contains__(self, name: object) -> bool:
        return any(p.name == name for p in self.params)

    @property
    def is_conditional(self) -> bool:
        return any(p.condition is not None for p in self.params)

    def without_fidelity_param(self) -> SearchSpace:
        """The space a multi-fidelity strategy searches: the budget param is its to set."""
        if self.fidelity is None or self.fidelity.param is None:
            return self
        return replace(self, params=tuple(p for p in self.params if p.name != self.fidelity.param))

    # -- checking suggestions --------------------------------------------------------------
    def active_names(self, params: Mapping[str, Any]) -> list[str]:
        """Names of the parameters active under `params` (parents are declared before children)."""
        active: dict[str, Any] = {}
        for p in self.params:
            if p.condition is None or p.condition.holds(active):
                active[p.name] = params.get(p.name)
        return list(active)

    def check(self, params: Mapping[str, Any]) -> None:
        """Raise `SearchSpaceError` unless `params` holds exactly the active parameters, in bounds,
        as native Python values."""
        expected = self.active_names(params)
        missing = [n for n in expected if n not in params]
        extra = [n for n in params if n not in expected]
        if missing or extra:
            raise SearchSpaceError(
                f"search space {self.name!r}: params must hold exactly the active parameters; "
                f"missing {missing}, unexpected {extra}"
            )
        for name in expected:
            p, v = self[name], params[name]
            if not p.contains(v):
                raise SearchSpaceError(
                    f"search space {self.name!r}, parameter {name!r}: value {v!r} ({type(v).__name__}) is outside {describe(p)}"
                )

    # -- loading ---------------------------------------------------------------------------
    @classmethod
    def from_config(cls, cfg: Mapping[str, Any], name: str | None = None) -> SearchSpace:
        """Build and validate a space from its YAML mapping (an OmegaConf node or a dict)."""
        cfg = _plain(cfg)
        name = str(cfg.get("name") or name or "<unnamed>")
        raw = cfg.get("params")
        if not isinstance(raw, Mapping) or not raw:
            raise SearchSpaceError(
                f"search space {name!r}: 'params' must be a non-empty mapping of parameter names to definitions, got {raw!r}"
            )
        params: list[Param] = []
        for pname, pdef in raw.items():
            params.append(_param_from_config(name, str(pname), pdef, params))
        fidelity = _fidelity_from_config(name, cfg.get("fidelity"), params)
        return cls(
            name=name,
            params=tuple(params),
            builder=str(cfg.get("builder", "")),
            fidelity=fidelity,
            description=str(cfg.get("description", "")),
            fixed=dict(cfg.get("fixed") or {}),
        )


def describe(p: Param) -> str:
    """A short human description of a parameter's domain, for messages and docs."""
    if isinstance(p, IntParam):
        extra = (f" step {p.step}" if p.step != 1 else "") + (" log" if p.log else "")
        return f"int [{p.low}, {p.high}]{extra}"
    if isinstance(p, FloatParam):
        return f"float [{p.low}, {p.high}]" + (" log" if p.log else "")
    if isinstance(p, CategoricalParam):
        return f"one of {list(p.choices)}"
    return "bool"


def _plain(cfg: Any) -> Any:
    try:  # OmegaConf nodes -> plain containers, without importing omegaconf when not needed
        from omegaconf import DictConfig, ListConfig, OmegaConf

        if isinstance(cfg, (DictConfig, ListConfig)):
            return OmegaConf.to_container(cfg, resolve=True)
    except ImportError:  # pragma: no cover
        pass
    return cfg


def _fail(space: str, param: str, problem: str, fix: str) -> SearchSpaceError:
    return SearchSpaceError(f"search space {space!r}, parameter {param!r}: {problem}; {fix}")


def _number(space: str, pname: str, pdef: Mapping[str, Any], key: str, kind: type) -> Any:
    if key not in pdef:
        raise _fail(space, pname, f"missing {key!r}", f"add `{key}: <{kind.__name__}>`")
    v = pdef[key]
    ok = (type(v) is int) if kind is int else (isinstance(v, (int, float)) and type(v) is not bool)
    if not ok or (kind is float and not math.isfinite(v)):
        raise _fail(space, pname, f"{key} must be a finite {kind.__name__}, but got {v!r}", f"write `{key}` as a number")
    return kind(v)


def _param_from_config(space: str, pname: str, pdef: Any, earlier: Sequence[Param]) -> Param:
    if not isinstance(pdef, Mapping):
        raise _fail(space, pname, f"definition must be a mapping, got {pdef!r}", "write e.g. `{type: int, low: 1, high: 3}`")
    kind = pdef.get("type")
    if kind not in PARAM_TYPES:
        raise _fail(space, pname, f"unknown type {kind!r}", f"use one of {', '.join(PARAM_TYPES)}")
    known = {"type", "condition", "default", "low", "high", "step", "log", "choices"}
    unknown = sorted(set(pdef) - known)
    if unknown:
        raise _fail(space, pname, f"unknown keys {unknown}", f"allowed keys: {sorted(known)}")

    condition = None
    if pdef.get("condition") is not None:
        condition = _condition_from_config(space, pname, pdef["condition"], earlier)

    if kind in ("int", "float"):
        num = int if kind == "int" else float
        low, high = _number(space, pname, pdef, "low", num), _number(space, pname, pdef, "high", num)
        log = bool(pdef.get("log", False))
        if not low < high:
            raise _fail(
                space, pname, f"low ({low}) must be < high ({high})", "swap the bounds or use a categorical with one choice"
            )
        if log and low <= 0:
            raise _fail(space, pname, f"log scale needs low > 0, but low is {low}", "raise `low` above zero or set `log: false`")
        if kind == "float":
            if "step" in pdef:
                raise _fail(space, pname, "float parameters take no step", "use an int parameter or a categorical")
            return FloatParam(pname, low=low, high=high, log=log, condition=condition)
        step = _number(space, pname, pdef, "step", int) if "step" in pdef else 1
        if step <= 0 or (high - low) % step:
            raise _fail(
                space,
                pname,
                f"step ({step}) must be > 0 and divide high - low ({high - low})",
                "choose bounds that are a whole number of steps apart",
            )
        if log and step != 1:
            raise _fail(space, pname, "log scale and step > 1 cannot be combined", "drop `step` or `log`")
        return IntParam(pname, low=low, high=high, step=step, log=log, condition=condition)

    if kind == "categorical":
        choices = pdef.get("choices")
        if not isinstance(choices, Sequence) or isinstance(choices, str) or len(choices) == 0:
            raise _fail(space, pname, f"choices must be a non-empty list, got {choices!r}", "write `choices: [a, b, ...]`")
        if len(set(map(repr, choices))) != len(choices):
            raise _fail(space, pname, f"choices contain duplicates: {list(choices)}", "list each choice once")
        return CategoricalParam(pname, choices=tuple(choices), condition=condition)

    return BoolParam(pname, condition=condition)


def _condition_from_config(space: str, pname: str, cdef: Any, earlier: Sequence[Param]) -> Condition:
    if not isinstance(cdef, Mapping) or "parent" not in cdef or "in" not in cdef:
        raise _fail(
            space,
            pname,
            f"condition must be `{{parent: <name>, in: [values]}}`, got {cdef!r}",
            "name the parent parameter and the values that activate this one",
        )
    parent = str(cdef["parent"])
    parents = {p.name: p for p in earlier}
    if parent not in parents:
        raise _fail(
            space,
            pname,
            f"condition parent {parent!r} does not exist before it",
            f"declare {parent!r} above {pname!r} (declared so far: {list(parents)})",
        )
    values = cdef["in"] if isinstance(cdef["in"], Sequence) and not isinstance(cdef["in"], str) else [cdef["in"]]
    p = parents[parent]
    bad = [v for v in values if not p.contains(v)]
    if not values or bad:
        raise _fail(
            space,
            pname,
            f"condition values {bad or values} are not values of {parent!r} ({describe(p)})",
            "list values the parent can take",
        )
    return Condition(parent=parent, values=tuple(values))


def _fidelity_from_config(space: str, fdef: Any, params: Sequence[Param]) -> Fidelity | None:
    if fdef is None:
        return None
    if not isinstance(fdef, Mapping):
        raise SearchSpaceError(f"search space {space!r}: fidelity must be a mapping `{{min: 1, max: 10}}`, got {fdef!r}")
    lo, hi = fdef.get("min"), fdef.get("max")
    if type(lo) is not int or type(hi) is not int or not 1 <= lo <= hi:
        raise SearchSpaceError(
            f"search space {space!r}: fidelity needs integer epochs 1 <= min <= max, got min={lo!r}, max={hi!r}"
        )
    param = fdef.get("param")
    if param is not None and param not in {p.name for p in params}:
        raise SearchSpaceError(
            f"search space {space!r}: fidelity param {param!r} is not a "
            f"parameter of the space; declared: {[p.name for p in params]}"
        )
    return Fidelity(min=lo, max=hi, param=param)


def sample(space: SearchSpace, rng: Any) -> dict[str, Any]:
    """Draw one configuration uniformly (log-uniformly where `log`) with a numpy `Generator`.

    Only active parameters appear; values are native Python types.
    """
    out: dict[str, Any] = {}
    for p in space.params:
        if p.condition is not None and not p.condition.holds(out):
            continue
        if isinstance(p, IntParam):
            if p.log:
                v = math.exp(rng.uniform(math.log(p.low), math.log(p.high + 1)))
                out[p.name] = min(p.high, max(p.low, int(math.floor(v))))
            else:
                out[p.name] = p.low + p.step * int(rng.integers(p.n_values))
        elif isinstance(p, FloatParam):
            lo, hi = (math.log(p.low), math.log(p.high)) if p.log else (p.low, p.high)
            v = float(rng.uniform(lo, hi))
            out[p.name] = min(p.high, max(p.low, math.exp(v) if p.log else v))
        elif isinstance(p, CategoricalParam):
            out[p.name] = p.choices[int(rng.integers(len(p.choices)))]
        else:
            out[p.name] = bool(rng.integers(2))
    return out


def available_spaces() -> list[str]:
    """Names of the search spaces shipped in `conf/search_space/`."""
    from importlib.resources import files

    return sorted(p.name[:-5] for p in (files("harness.conf") / "search_space").iterdir() if p.name.endswith(".yaml"))


def load_space(name: str) -> SearchSpace:
    """Load and validate a shipped search space by name (what `search_space=<name>` selects)."""
    from importlib.resources import files

    import yaml

    from harness.errors import UnknownNameError

    if name not in available_spaces():
        raise UnknownNameError("search space", name, available_spaces())
    text = (files("harness.conf") / "search_space" / f"{name}.yaml").read_text()
    return SearchSpace.from_config(yaml.safe_load(text), name=name)
