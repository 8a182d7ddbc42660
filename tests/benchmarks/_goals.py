"""What every benchmark reports: one `GOAL` line per figure, and its smoke sizes.

- `goal(name, measured, target, met)` prints `GOAL <name>: measured <figure>; goal <target>; met`
  (or `unmet`). A test that passes with an unmet goal is reported as an xfail whose reason
  carries the figure (conftest.py does it once the test has printed all its lines), so
  `pytest tests/benchmarks --benchmark-only -s` passes on a project that reports its figures
  honestly and still shows every goal it misses.
- `reported(name, measured)` prints `GOAL <name>: measured <figure>; goal: reported` for figures
  without a goal.
- `HARNESS_BENCH_SMOKE=1` (what tests/test_benchmarks_smoke.py sets) runs every benchmark at tiny
  sizes so none can rot: `smoke(full, tiny)` picks the size, and goals are printed with
  `smoke: goal not checked` instead of being checked (tiny runs say nothing about speed).

tests/benchmarks/conftest.py fails a benchmark that passes without printing a GOAL line and
lists every line at the end of the run (the figure table the README shows).
"""

from __future__ import annotations

import os
from typing import TypeVar

T = TypeVar("T")

SMOKE = os.environ.get("HARNESS_BENCH_SMOKE", "") not in ("", "0")
LINES: list[tuple[str, str, str]] = []  # (test node id, GOAL line, why unmet or ""), as printed
CURRENT: list[str] = [""]  # node id of the running test (set by conftest.py)


def smoke(full: T, tiny: T) -> T:
    """`tiny` under HARNESS_BENCH_SMOKE=1, else `full`."""
    return tiny if SMOKE else full


def _emit(line: str, unmet: str = "") -> None:
    LINES.append((CURRENT[0], line, unmet))
    print(f"\n{line}", flush=True)


def goal(name: str, measured: str, target: str, met: bool) -> None:
    """Print the GOAL line. An unmet goal (outside smoke mode) turns the test, if it passes, into
    an xfail carrying the figure."""
    if SMOKE:
        _emit(f"GOAL {name}: measured {measured}; goal {target}; smoke: goal not checked")
    elif met:
        _emit(f"GOAL {name}: measured {measured}; goal {target}; met")
    else:
        _emit(f"GOAL {name}: measured {measured}; goal {target}; unmet", unmet=f"goal unmet: {name}: {measured} (goal {target})")


def reported(name: str, measured: str) -> None:
    """Print the GOAL line of a figure that has no goal."""
    _emit(f"GOAL {name}: measured {measured}; goal: reported")
