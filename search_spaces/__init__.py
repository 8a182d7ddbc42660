"""Keras model builders for the search spaces in `conf/search_space/`.

A builder is named in the space's YAML as `module:function` and called as
`build(params, *, input_shape, n_outputs, task)`; it returns a compiled Keras model. Modules
here import Keras only inside the builders, so importing them stays cheap.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any

from harness.errors import ConfigError


def resolve_builder(spec: str) -> Callable[..., Any]:
    """Import `module:function` and return the function; a clear error when it does not exist."""
    module_name, _, attr = spec.partition(":")
    if not module_name or not attr:
        raise ConfigError(f"builder must look like 'package.module:function', but got {spec!r}")
    if module_name.split(".")[0] == "search_spaces":
        # Spaces written before builders moved under the `harness` namespace.
        module_name = "harness." + module_name
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise ConfigError(f"builder {spec!r}: cannot import {module_name!r} ({exc})") from None
    try:
        return getattr(module, attr)
    except AttributeError:
        raise ConfigError(f"builder {spec!r}: module {module_name!r} has no {attr!r}") from None
