"""A run's folder on disk: trial rows, the ask/tell journal, the status file, the lock.

Durable writes are batched so that a cheap problem (a BBOB function, microseconds per trial)
is not slowed down by the disk: rows and journal events are buffered and reach the disk at
most every `flush_seconds` (and at the end of the run, and on Ctrl-C / SIGTERM). A flush writes
the new rows as one small Parquet part file (`trials.part-<n>.parquet`) and appends the new
journal lines, each fsync'ed: its cost does not grow with the number of trials. At the end of
the run (and when a run is resumed) the parts are merged into `trials.parquet`. Readers
(`read_results`, `harness-report`, pandas, DuckDB) read the parts as well, so a running or killed
run's rows are visible.

A SIGKILL loses at most the rows and journal events of the last flush interval. A flush writes
rows before journal lines; resuming keeps only rows whose trial the journal asked for (the
others are run again), so no trial is ever duplicated.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from harness.errors import HarnessError
from harness.results import PART_GLOB, TRIALS_FILE, read_trials_file, rows_to_table, upgrade_v1, write_json_atomic

JOURNAL_FILE = "_journal.jsonl"  # the ask/tell sequence, for replaying the strategy on resume


def _fsync_write(path: Path, table: pa.Table) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    pq.write_table(table, tmp)
    with open(tmp, "rb+") as fh:
        os.fsync(fh.fileno())
    os.replace(tmp, path)


def _is_int(x: Any) -> bool:
    return type(x) is int


def _is_event(event: Any) -> bool:
    """The shapes `harness.replay` reads: {"ask": n, "ids": [...]}, {"tell": id},
    {"report": id, "step": n, "value": x}."""
    if not isinstance(event, dict):
        return False
    if "ask" in event:
        return _is_int(event["ask"]) and isinstance(event.get("ids"), list) and all(map(_is_int, event["ids"]))
    if "report" in event:
        return _is_int(event["report"]) and _is_int(event.get("step")) and type(event.get("value")) in (int, float)
    return "tell" in event and _is_int(event["tell"])


class RunStore:
    """Buffered, crash-safe persistence of one run (see the module docstring)."""

    def __init__(self, run_dir: Path, param_types: Mapping[str, pa.DataType], *, flush_seconds: float = 1.0):
        self.run_dir = Path(run_dir)
        self.param_types = dict(param_types)
        self.flush_seconds = flush_seconds
        self._rows: list[dict[str, Any]] = []  # not yet on disk
        self._events: list[str] = []  # journal lines not yet on disk
        self._last_flush = time.monotonic()
        self._part = 0
        self._journal_fh: Any = None

    @property
    def trials_path(self) -> Path:
        return self.run_dir / TRIALS_FILE

    @property
    def journal_path(self) -> Path:
        return self.run_dir / JOURNAL_FILE

    def parts(self) -> list[Path]:
        return sorted(self.run_dir.glob(PART_GLOB))

    # -- reading a previous session ----------------------------------------------------------
    def load_rows(self) -> list[dict[str, Any]]:
        """Every recorded row (merged file, then parts), one per trial id, in recorded order."""
        rows: list[dict[str, Any]] = []
        seen: set[int] = set()
        for path in ([self.trials_path] if self.trials_path.exists() else []) + self.parts():
            try:
                found = read_trials_file(path)
            except Exception as exc:
                raise HarnessError(
                    f"cannot resume: {str(path)!r} is unreadable ({exc}); rerun with overwrite=true to start over"
                ) from None
            for row in found:
                if row["trial_id"] not in seen:  # a merge killed before its parts were deleted
                    seen.add(row["trial_id"])
                    rows.append(row)
        return rows

    def read_journal(self) -> list[dict[str, Any]]:
        data = self.journal_path.read_bytes()
        lines = data.splitlines(keepends=True)
        events = []
        for i, line in enumerate(lines):
            try:
                if not line.endswith(b"\n"):
                    raise ValueError("no newline: the write never completed")
                event = json.loads(line)
                if not _is_event(event):  # valid JSON of the wrong shape: replay would crash on it
                    raise ValueError("not a journal event")
                events.append(event)
            except ValueError:
                if i == len(lines) - 1:
                    # Torn last line of a killed run: that event never completed. Cut it off, or
                    # the next event appended would be glued to it and corrupt the journal.
                    os.truncate(self.journal_path, len(data) - len(line))
                    break
                raise HarnessError(
                    f"cannot resume: {str(self.journal_path)!r} line {i + 1} is corrupt; rerun with overwrite=true to start over"
                ) from None
        return events

    def rewrite(self, rows: list[dict[str, Any]]) -> None:
        """Make `trials.parquet` hold exactly `rows` (merging parts, dropping unjournaled rows)."""
        if rows or self.trials_path.exists() or self.parts():
            _fsync_write(self.trials_path, self._table(rows))
        for part in self.parts():
            part.unlink()

    def rewrite_journal(self, events: list[dict[str, Any]]) -> None:
        """Start the journal afresh with `events` (a run recorded before journals existed)."""
        tmp = self.journal_path.with_name(f".{JOURNAL_FILE}.tmp")
        with open(tmp, "w", encoding="utf-8") as fh:
            fh.writelines(json.dumps(e) + "\n" for e in events)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, self.journal_path)

    # -- writing ------------------------------------------------------------------------------
    def journal(self, event: Mapping[str, Any]) -> None:
        self._events.append(json.dumps(event))

    def add(self, row: dict[str, Any]) -> None:
        """Buffer a finished trial's row; flushed when `flush_seconds` have passed."""
        self._rows.append(row)

    def maybe_flush(self) -> None:
        if time.monotonic() - self._last_flush >= self.flush_seconds:
            self.flush()

    def flush(self) -> None:
        """Rows first, then the journal lines, each synced (see the module docstring)."""
        # Buffers are taken before writing: a Ctrl-C inside a write must not make `close()`
        # write the same lines twice (a torn last line is cut off on resume).
        rows, self._rows = self._rows, []
        events, self._events = self._events, []
        if rows:
            while True:
                self._part += 1
                path = self.run_dir / f"trials.part-{self._part:06d}.parquet"
                if not path.exists():
                    break
            _fsync_write(path, self._table(rows))
        if events:
            if self._journal_fh is None:
                self._journal_fh = open(self.journal_path, "a", encoding="utf-8")
            self._journal_fh.write("\n".join(events) + "\n")
            self._journal_fh.flush()
            os.fsync(self._journal_fh.fileno())
        self._last_flush = time.monotonic()

    def merge_parts(self) -> None:
        """Merge the parts into `trials.parquet` (end of a run): one file per finished run."""
        parts = self.parts()
        if not parts:
            return
        tables = [upgrade_v1(pq.read_table(self.trials_path))] if self.trials_path.exists() else []
        tables += [pq.read_table(p) for p in parts]
        merged = pa.concat_tables(tables, promote_options="permissive")
        _fsync_write(self.trials_path, merged)
        for part in parts:  # a kill here leaves duplicates that `load_rows` drops
            part.unlink()

    def close(self) -> None:
        self.flush()
        if self._journal_fh is not None:
            self._journal_fh.close()
            self._journal_fh = None

    def write_status(self, data: Mapping[str, Any]) -> None:
        write_json_atomic(self.run_dir / "_run.json", data)

    def _table(self, rows: list[dict[str, Any]]) -> pa.Table:
        return rows_to_table(rows, self.param_types)


class RunLock:
    """An exclusive lock on one run folder, held while a process runs it.

    Two processes on one run (the same command started twice, a sweep over `budget.trials`, a
    requeued cluster job whose old copy still runs) would each write rows for the same trials.
    The lock file sits beside the run folder (`.<run_id>.lock`, skipped by readers), so
    `overwrite=true` can delete the folder while holding it. `flock` also works across nodes on NFS.
    """

    def __init__(self, run_dir: Path):
        self.path = run_dir.parent / f".{run_dir.name}.lock"
        self._fd: int | None = None

    def __enter__(self) -> RunLock:
        import fcntl
        import socket

        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 200, 0).decode(errors="replace").strip() or "another process"
            os.close(fd)
            raise HarnessError(
                f"run {self.path.name[1:-5]} is already running ({holder}); wait for it "
                f"to finish or stop it, then rerun this command to resume"
            ) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"pid {os.getpid()} on {socket.gethostname()}\n".encode(), 0)
        self._fd = fd
        return self

    def __exit__(self, *exc: object) -> None:
        if self._fd is not None:
            os.close(self._fd)  # releases the lock; the file stays (deleting it would race)
            self._fd = None
