"""Sweeps: a 2-strategy x 2-seed grid through Hydra launchers, each run in its own folder.

Real `harness -m` subprocesses training tiny Keras models (digits, 2 trials of 1 epoch).
"""

from __future__ import annotations

import importlib.util
import json
import subprocess

import pytest

from harness.results import RUN_FILE, TRIALS_FILE, read_results

GRID = [
    "-m",
    "strategy=random,tpe",
    "seed=0,1",
    "search_space=homl_mlp",
    "budget.trials=2",
    "budget.max_epochs=1",
    "progress=false",
    "experiment=grid",
]


def check_grid(tmp_path) -> None:
    exp = tmp_path / "results" / "grid"
    runs = sorted(p for p in exp.iterdir() if not p.name.startswith("."))
    assert [r.name.split("_homl")[0] + r.name.split("digits")[1][:3] for r in runs] == [
        "random_s0",
        "random_s1",
        "tpe_s0",
        "tpe_s1",
    ]
    for run in runs:  # one folder and one trials file per job: parallel jobs share no file
        assert json.loads((run / RUN_FILE).read_text())["status"] == "finished"
        assert sorted(p.name for p in run.iterdir() if not p.name.startswith(".")) == [
            "_artifacts",
            "_journal.jsonl",
            RUN_FILE,
            TRIALS_FILE,
        ]
    df = read_results(exp)
    assert len(df) == 8 and df.run_id.nunique() == 4
    assert df.groupby("run_id").trial_id.apply(sorted).map(tuple).unique().tolist() == [(0, 1)]
    # Every trial succeeds: the 8 configurations are fixed by the seeds, 1 epoch of a small MLP at
    # a learning rate <= 1e-2 does not diverge, and nothing here fails a trial for being slow (no
    # trial_timeout), so a failed row is a bug (a worker lost under a launcher), not load.
    assert df.status.eq("ok").all(), df.loc[df.status != "ok", ["run_id", "trial_id", "error"]].to_string()
    assert df.objective.notna().all()


@pytest.mark.slow
def test_grid_sweep_with_the_joblib_launcher(tmp_path, harness_cmd, subprocess_env):
    # loky (joblib's default backend) runs the jobs in its own worker processes, which start
    # the harness's spawn-context trial workers: nested processes, TensorFlow only in the last.
    proc = subprocess.run(
        harness_cmd + GRID + ["hydra/launcher=joblib", "hydra.launcher.n_jobs=2"],
        cwd=tmp_path,
        env=subprocess_env,
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    check_grid(tmp_path)


@pytest.mark.slow
@pytest.mark.skipif(
    importlib.util.find_spec("hydra_plugins.hydra_submitit_launcher") is None,
    reason="the cluster extra is not installed: pip install -e '.[cluster]'",
)
def test_grid_sweep_with_the_submitit_launcher_locally(tmp_path, harness_cmd, subprocess_env):
    # submitit's local executor: the same code path as `hydra/launcher=submitit_slurm` on a cluster.
    proc = subprocess.run(
        harness_cmd + GRID + ["hydra/launcher=submitit_local", "hydra.launcher.timeout_min=10"],
        cwd=tmp_path,
        env=subprocess_env,
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    check_grid(tmp_path)


def test_a_failed_job_in_another_process_makes_the_sweep_exit_non_zero(tmp_path, harness_cmd, subprocess_env):
    proc = subprocess.run(
        harness_cmd + ["-m", "seed=0,1", "budget.trials=0", "hydra/launcher=joblib"],
        cwd=tmp_path,
        env=subprocess_env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 2
    assert "2 sweep job(s) failed" in proc.stderr and "budget.trials must be an integer" in proc.stderr


@pytest.mark.skipif(
    importlib.util.find_spec("hydra_plugins.hydra_submitit_launcher") is None,
    reason="hydra-submitit-launcher not installed (pip install -e '.[cluster]')",
)
def test_the_readmes_slurm_command_composes(tmp_path):
    # No SLURM here: compose the README's command with Hydra and check that the launcher and its
    # overrides land where submitit reads them, and that the job's own config validates.
    from hydra import compose, initialize_config_module
    from omegaconf import OmegaConf

    from harness.runner import settings_from_config

    overrides = [
        "strategy=tpe",
        "seed=3",
        "experiment=big",
        "hydra/launcher=submitit_slurm",
        "hydra.launcher.partition=gpu",
        "hydra.launcher.timeout_min=240",
        "hydra.launcher.cpus_per_task=4",
        f"results_dir={tmp_path}/scratch",
    ]
    with initialize_config_module("harness.conf", version_base="1.3"):
        cfg = compose("config", overrides=overrides, return_hydra_config=True)
    launcher = cfg.hydra.launcher
    assert launcher._target_.endswith("SlurmLauncher")
    assert (launcher.partition, launcher.timeout_min, launcher.cpus_per_task) == ("gpu", 240, 4)
    job = OmegaConf.to_container(cfg, resolve=False)
    job.pop("hydra")
    job = OmegaConf.to_container(OmegaConf.create(job), resolve=True)
    settings = settings_from_config(job, base_dir=tmp_path)
    assert settings.strategy == "tpe" and settings.seed == 3 and str(settings.run_dir).startswith(f"{tmp_path}/scratch/big/")
