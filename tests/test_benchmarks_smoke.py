"""Every benchmark in tests/benchmarks, run at tiny sizes (HARNESS_BENCH_SMOKE=1) so none can rot.

The normal test command skips benchmarks (`--benchmark-skip` in addopts); this test runs them all
in a subprocess with the smoke sizes, where goals are printed but not checked (their GOAL lines
say `smoke: goal not checked`). Every benchmark must pass; only one whose optional library is
missing may skip, and it must say so.
"""

from __future__ import annotations

import re
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
BENCHMARKS = ROOT / "tests" / "benchmarks"


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_every_benchmark_runs_at_smoke_size(tmp_path, subprocess_env):
    env = {k: v for k, v in subprocess_env.items() if not k.startswith("HARNESS_BENCH_")}  # no full sizes
    env["HARNESS_BENCH_SMOKE"] = "1"
    # One BLAS thread per process: tiny runs gain nothing from more, and on a busy 2-core machine
    # OpenBLAS's spinning threads made one scikit-learn fit (the GA-GAN's scorer) 300x slower.
    for name in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        env.setdefault(name, "1")
    junit = tmp_path / "benchmarks.xml"
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            str(BENCHMARKS),
            "-p",
            "no:cacheprovider",
            "-o",
            "addopts=",
            "--benchmark-only",
            "-q",
            "-x",
            "-rsx",
            f"--junitxml={junit}",
            f"--basetemp={tmp_path / 'tmp'}",
        ],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=540,
    )
    # What went wrong, ahead of pytest-benchmark's table (which ends the output).
    failures = re.search(r"^=+ (FAILURES|ERRORS) =+$.*", proc.stdout, re.S | re.M)
    output = (failures.group(0)[:8000] if failures else "") + "\n...\n" + proc.stdout[-2000:] + proc.stderr[-3000:]
    assert proc.returncode == 0, output

    cases = ET.parse(junit).getroot().iter("testcase")
    outcomes: dict[str, str] = {}
    for case in cases:
        name = f"{case.get('classname')}::{case.get('name')}"
        skipped = case.find("skipped")
        if skipped is not None:
            reason = skipped.get("message", "")
            assert "could not import" in reason or "not installed" in reason, f"{name} skipped: {reason}\n{output}"
            outcomes[name] = "skipped"
        else:
            assert case.find("failure") is None and case.find("error") is None, f"{name}\n{output}"
            outcomes[name] = "passed"
    files = {p.stem for p in BENCHMARKS.glob("test_*.py")}
    assert files <= {name.split("::")[0].rsplit(".", 1)[-1] for name in outcomes}, (files, outcomes)

    goals = [line for line in proc.stdout.splitlines() if line.startswith("GOAL ")]
    assert len(goals) >= sum(o == "passed" for o in outcomes.values()), output
    assert all(line.endswith(("; smoke: goal not checked", "; goal: reported")) for line in goals), goals
