"""Shared fixtures. Keras-training tests are marked `slow`; they still run in CI (tiny budgets)."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

# Quiet TensorFlow's C++ start-up logs in subprocesses and in-process alike.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

TESTS_DIR = Path(__file__).parent


@pytest.fixture
def subprocess_env() -> dict[str, str]:
    """Environment for `harness` subprocesses: test-only builders importable, quiet TF."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(TESTS_DIR), env.get("PYTHONPATH")]))
    env["TF_CPP_MIN_LOG_LEVEL"] = "2"
    return env


@pytest.fixture
def harness_cmd() -> list[str]:
    """The installed `harness` console script of this interpreter's environment."""
    script = Path(sys.executable).with_name("harness")
    return [str(script)] if script.exists() else [sys.executable, "-m", "harness.cli"]
