"""`worker.backend` and `ray.address` settings, without Ray: these run whether or not the `[ray]`
extra is installed (the Ray runs themselves are in tests/test_ray.py)."""

from __future__ import annotations

import subprocess
import sys

import pytest

from harness.errors import ConfigError
from test_resume import settings


def test_the_default_backend_is_local_worker_processes(tmp_path):
    s = settings(tmp_path)
    assert s.worker_backend == "local" and s.ray_address is None


@pytest.mark.parametrize(
    "overrides, phrase",
    [
        (["worker.backend=slurm"], r"worker.backend must be one of local, ray, but got 'slurm'"),
        (["worker.backend=ray", "worker.processes=false"], "worker.backend=ray evaluates trials in Ray actors"),
        (["worker.backend=ray", "problem=tabular"], "worker.backend=ray does not apply to problem 'tabular'"),
        (["ray.address=''"], "ray.address must be null"),
    ],
)
def test_bad_ray_settings_are_one_clear_error(tmp_path, overrides, phrase):
    with pytest.raises(ConfigError, match=phrase):
        settings(tmp_path, *overrides)


def test_ray_backend_makes_cheap_problems_use_actors(tmp_path):
    pytest.importorskip("ray", reason="Ray is not installed")
    s = settings(tmp_path, "problem=bbob", "worker.backend=ray", "ray.address=auto")
    assert s.worker_processes and s.worker_backend == "ray" and s.ray_address == "auto"
    # Where trials run is not what was run: the run id is the same as with local workers.
    assert s.run_id == settings(tmp_path, "problem=bbob").run_id


def test_without_ray_the_command_says_which_extra_to_install(tmp_path):
    # `sys.modules["ray"] = None` makes Ray look uninstalled to this process only.
    code = (
        "import sys; sys.modules['ray'] = None; "
        "sys.argv = ['harness', 'problem=bbob', 'worker.backend=ray', 'budget.trials=2', 'progress=false']; "
        "from harness.cli import main; main()"
    )
    proc = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2, proc.stderr[-2000:]
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert lines == [
        "error: worker.backend=ray needs Ray, which is not installed; install the extra with "
        '`pip install -e ".[ray]"`, or use worker.backend=local'
    ], proc.stderr
    assert not (tmp_path / "results").exists() or not any((tmp_path / "results").rglob("trials*"))


def test_the_harness_never_imports_ray_unless_asked():
    code = (
        "import sys, harness.cli, harness.runner, harness.settings, harness.workers, harness.ray_workers; "
        "print('ray' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120)
    assert out.stdout.strip() == "False"
