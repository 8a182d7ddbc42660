"""Plugin discovery: strategies (`harness.strategies`) and problems (`harness.problems`) entry points.

Only the selected strategy's module is imported: listing names reads package metadata only.
"""

from __future__ import annotations

from importlib.metadata import entry_points
from typing import Any

from harness.errors import ConfigError, UnknownNameError
from harness.space import SearchSpace
from harness.strategy import Strategy, StrategyInfo

GROUP = "harness.strategies"


def available_strategies() -> dict[str, StrategyInfo]:
    """Installed strategies by name, from entry-point metadata (nothing is imported)."""
    found: dict[str, StrategyInfo] = {}
    for ep in entry_points(group=GROUP):
        dist = getattr(ep, "dist", None)
        found[ep.name] = StrategyInfo(ep.name, ep.value, dist.name if dist else None)
    return dict(sorted(found.items()))


def _load_class(group: str, kind: str, base: type, name: str) -> Any:
    """Import the class registered under `name` in entry-point `group`, checked against `base`."""
    eps = {ep.name: ep for ep in entry_points(group=group)}
    if name not in eps:
        raise UnknownNameError(kind, name, list(eps))
    cls: Any = eps[name].load()
    if not (isinstance(cls, type) and issubclass(cls, base)):
        raise ConfigError(
            f"entry point {name!r} = {eps[name].value!r} is not a harness {base.__name__} "
            f'subclass; fix the plugin\'s [project.entry-points."{group}"] table'
        )
    registered = getattr(cls, "name", None)
    if registered != name:
        raise ConfigError(
            f"{kind} class {cls.__qualname__} has name {registered!r} but is "
            f"registered as {name!r}; set `name = {name!r}` on the class"
        )
    return cls


def load_strategy_class(name: str) -> type[Strategy]:
    """Import and return the strategy class registered under `name`."""
    return _load_class(GROUP, "strategy", Strategy, name)


def plugin_distribution(name: str, group: str = GROUP) -> dict[str, str] | None:
    """The installed distribution (package name and version) whose entry point provides `name`."""
    for ep in entry_points(group=group):
        dist = getattr(ep, "dist", None)
        if ep.name == name and dist is not None:
            return {"distribution": dist.name, "version": dist.version, "entry_point": ep.value}
    return None


def make_strategy(name: str, space: SearchSpace, *, seed: int, **options: Any) -> Strategy:
    """Build strategy `name` for `space`; bad options become a `ConfigError` naming them."""
    cls = load_strategy_class(name)
    try:
        return cls(space, seed=seed, **options)
    except TypeError as exc:  # unknown keyword option, wrong type...
        raise ConfigError(f"strategy {name!r} rejected its params {options}: {exc}") from None
    except ValueError as exc:
        raise ConfigError(f"strategy {name!r}: {exc}") from None


# -- problems ------------------------------------------------------------------------------
PROBLEM_GROUP = "harness.problems"


def available_problems() -> dict[str, Any]:
    """Installed problems by name, from entry-point metadata (nothing is imported)."""
    from harness.problem import ProblemInfo

    found = {}
    for ep in entry_points(group=PROBLEM_GROUP):
        dist = getattr(ep, "dist", None)
        found[ep.name] = ProblemInfo(ep.name, ep.value, dist.name if dist else None)
    return dict(sorted(found.items()))


def load_problem_class(name: str) -> type[Any]:
    """Import and return the problem class registered under `name` (only that one)."""
    from harness.problem import Problem

    return _load_class(PROBLEM_GROUP, "problem", Problem, name)


def make_problem(name: str, *, seed: int, config: Any = None, **options: Any) -> Any:
    """Build problem `name`; bad options become a `ConfigError` naming them."""
    cls = load_problem_class(name)
    try:
        return cls(seed=seed, config=config or {}, **options)
    except TypeError as exc:  # unknown option, wrong type
        raise ConfigError(f"problem {name!r} rejected its options {options}: {exc}") from None
    except ValueError as exc:
        raise ConfigError(f"problem {name!r}: {exc}") from None
