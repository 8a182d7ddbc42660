"""Sweeps through Hydra's Ray launcher (`hydra/launcher=ray`, the `[ray-launcher]` extra).

hydra-ray-launcher 1.2.2 pins cloudpickle<3, which would take joblib and dask back a few
releases, so the extra lives in an environment of its own (`pip install -e
".[test,ray-launcher]"`; .ci/run builds `.venv-ray-launcher` and runs this module there) and
the module is skipped elsewhere.

Real `harness -m` subprocesses on problem=bbob (no TensorFlow):
* the 4-job grid on a local Ray that the module starts (`ray start --head --block`, 2 CPUs, token
  auth off, its files and working directory in a temporary folder, as a cluster's head would be
  elsewhere) and stops at the end (SIGTERM to that one process): the run folders and rows are
  the basic launcher's for the same grid, and Hydra's job folders are in the sweep's results
  folder, not in the head's working directory;
* a failing and a succeeding job, on that Ray and on the one the launcher starts itself (its
  default): `harness -m` counts the failure (exit 2), and a Ray the launcher started is gone
  when `harness` exits.
No process of a Ray may be left afterwards: every process that carries its `RAY_TMPDIR` in its
environment is one of them (and is killed, by pid, if still there).
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

NOT_INSTALLED = (
    "hydra-ray-launcher is not installed; it pins cloudpickle<3, so it gets an environment of its own: "
    "pip install -e '.[test,ray-launcher]' (.ci/run tests it in .venv-ray-launcher)"
)
pytestmark = pytest.mark.skipif(importlib.util.find_spec("hydra_plugins.hydra_ray_launcher") is None, reason=NOT_INSTALLED)

GRID = ["-m", "problem=bbob", "strategy=random,tpe", "seed=0,1", "budget.trials=5", "progress=false", "experiment=grid"]
# Timing columns differ between any two runs; everything else is fixed by the seeds.
TIMING = ["cost_seconds", "ask_seconds", "tell_seconds", "elapsed_seconds", "finished_at"]


def ray_env(base: dict[str, str], tmp: str) -> dict[str, str]:
    """Ray's files under `tmp` (which also marks every process of this Ray), no auth token
    written under ~/.ray, no usage report, and no cluster named from outside."""
    env = dict(base, RAY_TMPDIR=tmp, RAY_AUTH_MODE="disabled", RAY_USAGE_STATS_ENABLED="0")
    env.pop("RAY_ADDRESS", None)
    return env


def ray_pids(tmp: str) -> list[int]:
    """Live processes whose environment carries RAY_TMPDIR=`tmp`: the test's Ray, nothing else."""
    marker = f"RAY_TMPDIR={tmp}".encode()
    pids = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            if marker in Path(f"/proc/{entry}/environ").read_bytes().split(b"\0"):
                pids.append(int(entry))
        except OSError:  # gone meanwhile, or not ours to read
            continue
    return pids


def assert_no_ray_left(tmp: str, within: float = 30.0) -> None:
    """Ray's processes stop a moment after the command that owns them: wait, then kill (by pid)
    whatever is left so nothing outlives the test, and fail naming it."""
    deadline = time.monotonic() + within
    while (left := ray_pids(tmp)) and time.monotonic() < deadline:
        time.sleep(0.5)
    names = []
    for pid in left:
        try:
            names.append(Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ")[:100].decode(errors="replace"))
            os.kill(pid, signal.SIGKILL)
        except OSError:
            continue
    assert not left, f"Ray processes left after the sweep: {names}"


def kill_ray(tmp: str) -> None:
    """Only when a test failed before its own check: nothing of its Ray outlives it."""
    for pid in ray_pids(tmp):
        try:
            os.kill(pid, signal.SIGKILL)
        except OSError:
            pass


@pytest.fixture
def ray_tmp():
    # A short folder: Ray's socket paths must fit in 107 characters.
    tmp = tempfile.mkdtemp(prefix="ray-", dir="/tmp")
    try:
        yield tmp
    finally:
        kill_ray(tmp)
        shutil.rmtree(tmp, ignore_errors=True)


@dataclass
class RayHead:
    address: str
    tmp: str  # its RAY_TMPDIR and its working directory


@pytest.fixture(scope="module")
def ray_head():
    """A local Ray of 2 CPUs, started here and stopped after the module's tests."""
    tmp = tempfile.mkdtemp(prefix="ray-", dir="/tmp")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    log = Path(tmp) / "head.log"
    with log.open("w") as out:
        head = subprocess.Popen(
            [
                str(Path(sys.executable).with_name("ray")),
                "start",
                "--head",
                "--block",
                f"--port={port}",
                "--num-cpus=2",
                "--include-dashboard=false",
                f"--temp-dir={tmp}",
                "--disable-usage-stats",
            ],
            cwd=tmp,
            env=ray_env(dict(os.environ), tmp),
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        deadline = time.monotonic() + 120
        while "Ray runtime started" not in log.read_text():
            assert head.poll() is None and time.monotonic() < deadline, f"ray start failed:\n{log.read_text()[-3000:]}"
            time.sleep(0.2)
        yield RayHead(f"127.0.0.1:{port}", tmp)
        head.send_signal(signal.SIGTERM)  # `ray start --block` stops the processes it started
        head.wait(60)
        assert_no_ray_left(tmp)
    finally:
        if head.poll() is None:
            head.kill()
            head.wait()
        kill_ray(tmp)
        shutil.rmtree(tmp, ignore_errors=True)


def harness(cmd: list[str], args: list[str], cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess:
    cwd.mkdir(parents=True, exist_ok=True)
    return subprocess.run(cmd + args, cwd=cwd, env=env, capture_output=True, text=True, timeout=240)


def join(head: RayHead) -> list[str]:
    """Overrides that send the jobs to a running Ray. The launcher's default object_store_memory
    (meant for a Ray it starts) must be unset, or ray.init refuses to connect."""
    return [
        "hydra/launcher=ray",
        f"hydra.launcher.ray.init.address={head.address}",
        "+hydra.launcher.ray.init.object_store_memory=null",
    ]


OWN_RAY = ["hydra/launcher=ray", "+hydra.launcher.ray.init.num_cpus=2", "+hydra.launcher.ray.init.include_dashboard=false"]


def layout(exp: Path) -> list[str]:
    """Every path under an experiment folder except Hydra's own logs (named by time)."""
    return sorted(str(p.relative_to(exp)) for p in exp.rglob("*") if ".hydra" not in p.relative_to(exp).parts)


def test_a_grid_on_a_running_ray_gives_the_basic_launchers_folders_and_rows(tmp_path, harness_cmd, subprocess_env, ray_head):
    from pandas.testing import assert_frame_equal

    from harness.results import RUN_FILE, TRIALS_FILE, read_results

    proc = harness(harness_cmd, GRID + join(ray_head), tmp_path / "ray", ray_env(subprocess_env, ray_head.tmp))
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "Connected to Ray cluster" in proc.stderr, proc.stderr[-3000:]  # the test's Ray, not one of its own
    basic = harness(harness_cmd, GRID, tmp_path / "basic", subprocess_env)
    assert basic.returncode == 0, basic.stderr[-3000:]

    ray_exp, basic_exp = tmp_path / "ray" / "results" / "grid", tmp_path / "basic" / "results" / "grid"
    runs = sorted(p for p in ray_exp.iterdir() if not p.name.startswith("."))
    assert [r.name.split("_bbob")[0] + r.name.split("-i1")[1][:3] for r in runs] == ["random_s0", "random_s1", "tpe_s0", "tpe_s1"]
    assert layout(ray_exp) == layout(basic_exp)  # same run ids, same files in each run folder
    for run in runs:
        assert sorted(p.name for p in run.iterdir()) == ["_journal.jsonl", RUN_FILE, TRIALS_FILE]
        status = json.loads((run / RUN_FILE).read_text())
        assert status["status"] == "finished" and status["n_trials"] == 5
        assert status["config"] == json.loads((basic_exp / run.name / RUN_FILE).read_text())["config"]
        assert status["provenance"]["packages"]["hydra-ray-launcher"]
    # Hydra's job folders (its log, the job's config) are with the results, as with any launcher,
    # although the jobs ran in the head's working directory.
    assert sorted(p.parent.name for p in ray_exp.glob(".hydra/*/*/harness.log")) == ["0", "1", "2", "3"]
    assert not (Path(ray_head.tmp) / "results").exists()

    got, want = (
        read_results(e).drop(columns=TIMING).sort_values(["run_id", "trial_id"]).reset_index(drop=True)
        for e in (ray_exp, basic_exp)
    )
    assert len(got) == 20 and got.run_id.nunique() == 4 and got.status.eq("ok").all()
    assert got.groupby("run_id").trial_id.apply(sorted).map(tuple).unique().tolist() == [(0, 1, 2, 3, 4)]
    assert_frame_equal(got, want)


@pytest.mark.parametrize("ray", ["running", "the launcher's own"])
def test_a_failed_job_makes_the_sweep_exit_2(tmp_path, harness_cmd, subprocess_env, ray, ray_tmp, request):
    from harness.results import read_results

    if ray == "running":
        head = request.getfixturevalue("ray_head")
        overrides, env = join(head), ray_env(subprocess_env, head.tmp)
    else:
        overrides, env = OWN_RAY, ray_env(subprocess_env, ray_tmp)
    # budget.trials=0 is a configuration error raised in the job, on a Ray worker; the other job runs.
    proc = harness(
        harness_cmd,
        ["-m", "problem=bbob", "seed=0", "budget.trials=0,3", "progress=false", "experiment=mixed"] + overrides,
        tmp_path,
        env,
    )
    assert proc.returncode == 2, proc.stderr[-3000:]
    assert "1 sweep job(s) failed" in proc.stderr, proc.stderr[-3000:]
    exp = tmp_path / "results" / "mixed"
    markers = list(exp.glob(".hydra/*/*/harness_error.txt"))  # written by the job on its Ray worker
    assert len(markers) == 1 and "budget.trials must be an integer" in markers[0].read_text()
    df = read_results(exp)
    assert len(df) == 3 and df.status.eq("ok").all()
    if ray != "running":
        assert "Started a local Ray instance" in proc.stderr, proc.stderr[-3000:]
        assert_no_ray_left(ray_tmp)  # the Ray the launcher started ended with `harness`
