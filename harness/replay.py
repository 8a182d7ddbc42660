"""Resuming a strategy: replay the recorded asks and tells into a fresh strategy.

The journal lists every ask (with its n and the trial ids it returned), every per-step report
a pruning strategy saw, and every tell, in order;
replaying it calls the strategy exactly as the interrupted run did, whatever the number of
workers, so a deterministic strategy ends in the same state. Rows the journal never asked for
(written just before a kill cut the journal's flush) are dropped and run again. Rows without a
tell event (a kill between the two) are told last. Runs without a journal are replayed
sequentially (ask(1), tell), as they were made.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness.errors import HarnessError
from harness.strategy import Observation, Strategy, Suggestion, TrialStatus


@dataclass
class Replayed:
    backlog: list[Suggestion]  # asked but not finished: run these first
    rows: list[dict[str, Any]]  # the recorded rows that remain valid
    events: list[dict[str, Any]] = field(default_factory=list)  # the journal to keep


def _fail(run_dir: Path, text: str) -> HarnessError:
    import os

    if "not deterministic" in text and os.environ.get("PYTHONHASHSEED") in (None, "random"):
        # The `harness` command fixes it; a Python caller may not have (SMAC orders by string hashes).
        text += (
            " (PYTHONHASHSEED is not fixed in this process: libraries that order by string "
            "hashes, such as SMAC, differ between processes; resume through the `harness` "
            "command or set PYTHONHASHSEED=0)"
        )
    return HarnessError(f"cannot resume {run_dir}: {text}. Rerun with overwrite=true to start over")


def tell_recorded(strategy: Strategy, row: Mapping[str, Any]) -> None:
    from harness.problem import ObjectiveInfo

    value = row["objective"] if row["objective"] is not None else math.nan
    value = ObjectiveInfo("objective", row.get("objective_direction") or "maximize").to_max(value)
    strategy.tell(Observation(row["trial_id"], value, TrialStatus(row["status"]), row.get("budget")))


def _check(run_dir: Path, name: str, sug: Suggestion, row: Mapping[str, Any] | None) -> None:
    if row is not None and row["params"] != sug.params:
        raise _fail(
            run_dir,
            f"strategy {name!r} suggested {sug.params} for trial {sug.trial_id} but "
            f"the recorded trial has {row['params']}; it is not deterministic under its seed",
        )


def replay(strategy: Strategy, rows: list[dict[str, Any]], events: list[dict[str, Any]] | None, run_dir: Path) -> Replayed:
    if events is None:
        return _replay_sequential(strategy, rows, run_dir)
    recorded = {r["trial_id"]: r for r in rows}
    asked: dict[int, Suggestion] = {}
    told: set[int] = set()
    for event in events:
        if "ask" in event:
            suggestions = strategy.ask(int(event["ask"])) if not strategy.finished else []
            ids = [x.trial_id for x in suggestions]
            if ids != list(event["ids"]):
                raise _fail(
                    run_dir,
                    f"strategy {strategy.name!r} answered ask with trials {ids}, but the "
                    f"run recorded {event['ids']}; it is not deterministic under its seed",
                )
            for sug in suggestions:
                _check(run_dir, strategy.name, sug, recorded.get(sug.trial_id))
                asked[sug.trial_id] = sug
        elif "report" in event:  # a per-step value a pruning strategy saw (its rungs)
            tid = int(event["report"])
            if tid in asked and tid not in told:
                strategy.report(tid, int(event["step"]), float(event["value"]))
        elif "tell" in event:
            tid = int(event["tell"])
            if tid not in recorded or tid not in asked:
                raise _fail(
                    run_dir, f"the journal tells trial {tid}, which {'has no row' if tid not in recorded else 'was never asked'}"
                )
            tell_recorded(strategy, recorded[tid])
            told.add(tid)
    kept = [r for r in rows if r["trial_id"] in asked]  # the others are run again
    events = list(events)
    for row in kept:  # finished and saved, killed before the journal said so
        if row["trial_id"] not in told:
            tell_recorded(strategy, row)
            told.add(row["trial_id"])
            events.append({"tell": row["trial_id"]})  # journaled now, or the next resume diverges
    backlog = [sug for tid, sug in asked.items() if tid not in told]
    return Replayed(backlog, kept, events)


def _replay_sequential(strategy: Strategy, rows: list[dict[str, Any]], run_dir: Path) -> Replayed:
    recorded = {r["trial_id"]: r for r in rows}
    events: list[dict[str, Any]] = []
    told = 0
    while told < len(recorded):
        suggestions = strategy.ask(1)
        events.append({"ask": 1, "ids": [s.trial_id for s in suggestions]})
        if not suggestions:
            raise _fail(run_dir, f"strategy {strategy.name!r} stopped suggesting after {told} of {len(recorded)} recorded trials")
        sug = suggestions[0]
        row = recorded.get(sug.trial_id)
        if row is None:  # not recorded: the trial that was running when the run stopped
            return Replayed([sug], rows, events)
        _check(run_dir, strategy.name, sug, row)
        tell_recorded(strategy, row)
        events.append({"tell": sug.trial_id})
        told += 1
    return Replayed([], rows, events)
