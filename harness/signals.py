"""Ctrl-C and SIGTERM during a run: raise `RunInterrupted` in the loop, so finished trials are
saved and the status file says `interrupted` (exit 130 / 143).

A signal is never lost: the handler records it before raising, and the runner's loop checks the
record (`raise_if_received`) between trials. Python swallows an exception raised while it runs a
`__del__` or weakref callback ("Exception ignored in ..."): without the record, a scheduler's
SIGTERM landing there would be ignored until its SIGKILL. Only the first signal raises; a second
one (Ctrl-C, then the scheduler's SIGTERM) is recorded and does not replace the first, so the
exit status matches the message.
"""

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


_received: list[int] = []  # signals received since the handlers were installed, in order


def _raise_interrupted(signum: int, frame: Any) -> None:
    _received.append(signum)
    if len(_received) == 1:  # a second signal while the first unwinds must not replace it
        raise RunInterrupted(signum)


def raise_if_received() -> None:
    """Raise `RunInterrupted` for a signal whose exception was swallowed where it landed."""
    if _received:
        raise RunInterrupted(_received[0])


def install_signal_handlers() -> Callable[[], None]:
    """SIGINT and SIGTERM raise `RunInterrupted` in the loop; returns a function restoring the old
    handlers. Only the main thread can set handlers (a threaded launcher gets none)."""
    if threading.current_thread() is not threading.main_thread():
        return lambda: None
    _received.clear()
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
