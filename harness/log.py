"""Diagnostics (notes and warnings about how a run goes) use `logging` under the `harness`
logger; the progress line, summaries and `error:` lines are the commands' own output and stay
prints. The console commands attach one stderr handler that writes `note: ...` (INFO) and
`warning: ...` (WARNING); library users route the `harness` logger as they like (without a
handler, Python shows its warnings and drops its notes)."""

from __future__ import annotations

import logging
import sys

LOGGER_NAME = "harness"
_LABELS = {
    logging.DEBUG: "debug",
    logging.INFO: "note",
    logging.WARNING: "warning",
    logging.ERROR: "error",
    logging.CRITICAL: "error",
}


def get_logger(name: str = LOGGER_NAME) -> logging.Logger:
    """The logger of a harness module (`get_logger(__name__)`), a child of `harness`."""
    return logging.getLogger(name if name.startswith(LOGGER_NAME) else f"{LOGGER_NAME}.{name}")


class _ConsoleHandler(logging.StreamHandler):
    """Writes `<level>: <message>` to the current `sys.stderr` (looked up per record, so a
    redirected or captured stderr gets the lines)."""

    def emit(self, record: logging.LogRecord) -> None:
        self.stream = sys.stderr  # not setStream: it flushes the old stream, which may be closed
        if self.stream.isatty():
            self.stream.write("\r\033[K")  # clear a progress bar drawn in place; it is redrawn after
        super().emit(record)


def configure(verbose: int = 0) -> None:
    """Attach the console handler once per process (the commands and worker processes call it)."""
    logger = logging.getLogger(LOGGER_NAME)
    if not any(isinstance(h, _ConsoleHandler) for h in logger.handlers):
        handler = _ConsoleHandler(sys.stderr)
        handler.setFormatter(_Formatter())
        logger.addHandler(handler)
        logger.propagate = False  # one line per note, not a second one from a root handler
    logger.setLevel(logging.DEBUG if verbose > 1 else logging.INFO)


class _Formatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        return f"{_LABELS.get(record.levelno, record.levelname.lower())}: {record.getMessage()}"
