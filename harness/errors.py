"""One small exception hierarchy: every user mistake is a `HarnessError` with a clear message.

The CLI prints these messages without a traceback and exits non-zero.
"""

from __future__ import annotations


class HarnessError(Exception):
    """Base class of every error the harness raises on purpose."""


class ConfigError(HarnessError):
    """A configuration value is invalid (bad bound, bad override, unknown name...)."""


class SearchSpaceError(ConfigError):
    """A search-space definition is invalid; the message names the space, parameter and fix."""


class UnknownNameError(ConfigError):
    """A name (strategy, dataset, space...) is not installed; the message lists those that are."""

    def __init__(self, kind: str, given: str, available: list[str] | tuple[str, ...]):
        self.kind, self.given, self.available = kind, given, sorted(available)
        super().__init__(f"unknown {kind} {given!r}; installed: {', '.join(self.available) or '(none)'}")


class DatasetUnavailableError(HarnessError):
    """A dataset needs a file that is not on disk and cannot be downloaded."""


class NotSupportedError(HarnessError):
    """A strategy cannot handle this search space (e.g. conditional parameters)."""


class StrategyError(HarnessError):
    """A strategy broke its contract (e.g. asked to wait with nothing pending)."""
