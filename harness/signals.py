"""Ctrl-C and SIGTERM during a run: raise `RunInterrupted` in the loop, so finished trials are
saved and the status file says `interrupted` (exit 130 / 143)."""
from __future__ import annotations

import signal
import threading
from collections.abc import Callable
from typing import Any


class RunInterrupted(KeyboardInterrupt):
    """SIGINT or SIGTERM reached the runner; finished trials are saved, the status says so."""

    def __init__(self, signum: int):
        super().__init__(signal.Signals(signum).name)
        self.signum = signum
        self.signal_name = signal.Signals(signum).name


def _raise_interrupted(signum: int, frame: Any) -> None:
    raise RunInterrupted(signum)


def install_signal_handlers() -> Callable[[], None]:
    """SIGINT and SIGTERM raise `RunInterrupted` in the loop; returns a function restoring the old
    handlers. Only the main thread can set handlers (a threaded launcher gets none)."""
    if threading.current_thread() is not threading.main_thread():
        return lambda: None
    old = {sig: signal.signal(sig, _raise_interrupted) for sig in (signal.SIGINT, signal.SIGTERM)}

    def restore() -> None:
        for sig, handler in old.items():
            signal.signal(sig, handler)
    return restore


def ignore_signals() -> None:
    """While the final status is written: a second Ctrl-C must not tear it."""
    if threading.current_thread() is threading.main_thread():
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, signal.SIG_IGN)
