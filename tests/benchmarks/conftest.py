"""Benchmarks: each prints `GOAL` lines (tests/benchmarks/_goals.py) and this file enforces them.

- A benchmark that passes without printing a GOAL line fails: every figure is either checked
  against its goal or printed as `goal: reported`.
- A benchmark that passes with an unmet goal is reported as an xfail whose reason carries the
  measured figure (and its GOAL line says `unmet`).
- The end of the run lists every GOAL line ("benchmark goals"): the figure table of the README.
- `HARNESS_BENCH_SMOKE=1` shrinks every benchmark to tiny sizes and does not check goals
  (tests/test_benchmarks_smoke.py runs them so in the normal test suite).
"""

from __future__ import annotations

from pathlib import Path

import pytest

import _goals


def pytest_report_header(config: pytest.Config) -> str | None:
    if _goals.SMOKE:
        return "benchmarks: smoke mode (HARNESS_BENCH_SMOKE=1): tiny sizes, goals not checked"
    return None


# Full-size benchmarks train for many minutes (the table-vs-training comparison ~12 min, the
# BBOB table ~45 min), past the suite's 600 s per-test timeout meant to catch hangs; they get
# a limit of their own. Smoke mode keeps the suite's default.
FULL_SIZE_TIMEOUT_S = 3 * 3600


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if _goals.SMOKE:
        return
    here = Path(__file__).parent
    for item in items:  # this hook sees the whole session's items: only ours get the limit
        if here in item.path.parents and item.get_closest_marker("timeout") is None:
            item.add_marker(pytest.mark.timeout(FULL_SIZE_TIMEOUT_S))


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_call(item: pytest.Item) -> None:
    _goals.CURRENT[0] = item.nodeid


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo):
    outcome = yield
    report = outcome.get_result()
    if report.when != "call" or not report.passed or hasattr(report, "wasxfail"):
        return
    lines = [(line, unmet) for nodeid, line, unmet in _goals.LINES if nodeid == item.nodeid]
    if not lines:
        report.outcome = "failed"
        report.longrepr = (
            f"{item.nodeid} printed no GOAL line: every benchmark checks its goal with "
            "_goals.goal(...) or prints its figure with _goals.reported(...)"
        )
        return
    unmet = [why for _, why in lines if why]
    if unmet:
        report.outcome = "skipped"
        report.wasxfail = "; ".join(unmet)


def pytest_terminal_summary(terminalreporter, exitstatus: int, config: pytest.Config) -> None:
    if _goals.LINES:
        terminalreporter.section("benchmark goals")
        for _, line, _ in _goals.LINES:
            terminalreporter.write_line(line)
