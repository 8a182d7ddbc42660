"""The project's house rules, checked where CI runs the suite: lint and format (ruff) and the type
check of the contracts plugin authors code against (mypy). Their settings are in pyproject.toml;
`ruff format` fixes what the format check finds."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _tool(name: str) -> list[str]:
    script = Path(sys.executable).with_name(name)
    if script.exists():
        return [str(script)]
    if shutil.which(name):
        return [name]
    pytest.skip(f'{name} is not installed (it comes with `pip install -e ".[test]"`)')


def test_ruff_lint_passes():
    proc = subprocess.run(
        [*_tool("ruff"), "check", "harness", "strategies", "search_spaces", "tests", "hydra_plugins"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-2000:]


def test_ruff_format_is_kept():
    proc = subprocess.run(
        [*_tool("ruff"), "format", "--check", "harness", "strategies", "search_spaces", "tests", "hydra_plugins"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, "run `ruff format` on these files:\n" + proc.stdout[-4000:] + proc.stderr[-2000:]


def test_mypy_on_the_plugin_contracts_passes():
    proc = subprocess.run(_tool("mypy"), cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-2000:]
