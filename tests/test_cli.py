"""`harness` as a new user runs it: the default experiment end to end, and bad input."""

from __future__ import annotations

import json
import subprocess
import sys

import pandas as pd
import pytest

from harness.results import COLUMNS


def run(cmd, cwd, env, *args, check=True):
    proc = subprocess.run([*cmd, *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=300)
    if check and proc.returncode != 0:
        raise AssertionError(f"harness {' '.join(args)} failed ({proc.returncode}):\n{proc.stderr[-3000:]}")
    return proc


@pytest.mark.slow
def test_default_experiment_on_digits_writes_one_parquet_row_per_trial(tmp_path, harness_cmd, subprocess_env):
    proc = run(harness_cmd, tmp_path, subprocess_env, "budget.trials=3", "budget.max_epochs=2")
    assert "best params:" in proc.stdout and "val accuracy" in proc.stdout
    # The terminal shows the harness's lines, not TensorFlow's native start-up or retracing noise.
    for noise in ("oneDNN", "cuda drivers", "absl::InitializeLog", "retracing"):
        assert noise not in proc.stderr, proc.stderr[-2000:]
    files = list((tmp_path / "results" / "default").glob("*/trials.parquet"))
    assert len(files) == 1 and str(files[0]) in proc.stdout
    df = pd.read_parquet(files[0])
    assert len(df) == 3 and set(COLUMNS) <= set(df.columns)
    assert {"param.layer_num", "param.first_layer_unit", "param.batch_size", "param.epochs"} <= set(df.columns)
    assert (df.status == "ok").all() and df["metric.val_accuracy"].between(0.1, 1).all()
    assert (df.objective == df["metric.val_accuracy"]).all() and df.test_objective.notna().all()
    assert (df.objective_name == "val_accuracy").all() and (df.objective_direction == "maximize").all()
    assert (df.budget <= 2).all() and (df.strategy == "random").all() and (df.dataset == "digits").all()
    assert (df.problem == "keras").all() and (df.instance == "mlp_digits").all()
    assert df.trial_id.is_unique and df.elapsed_seconds.is_monotonic_increasing
    for _, row in df.iterrows():
        assert json.loads(row.params)["layer_num"] == row["param.layer_num"]
    run_file = json.loads((files[0].parent / "_run.json").read_text())
    assert run_file["config"]["search_space"]["name"] == "mlp"
    assert run_file["provenance"]["packages"]["tensorflow"] and run_file["problem_version"].startswith("tensorflow")
    # pandas over the whole folder skips _run.json, .hydra/ and _artifacts/; DuckDB reads it unchanged.
    assert len(pd.read_parquet(tmp_path / "results" / "default")) == 3
    import duckdb  # in the [test] extra

    assert duckdb.sql(f"select count(*) from read_parquet('{files[0]}')").fetchall()[0][0] == 3
    status = json.loads((files[0].parent / "_run.json").read_text())
    assert status["status"] == "finished" and status["provenance"]["packages"]["optuna"]

    # The same command again: the finished run is skipped, nothing is duplicated.
    again = run(harness_cmd, tmp_path, subprocess_env, "budget.trials=3", "budget.max_epochs=2")
    assert "already complete (trial budget of 3 reached)" in again.stdout and len(pd.read_parquet(files[0])) == 3


@pytest.mark.parametrize(
    "args, phrases",
    [
        (["strategy=nope"], ["unknown strategy 'nope'; installed:", "random", "tpe"]),
        (["-m", "strategy=random,tpee"], ["unknown strategy 'tpee'"]),
        (["dataset=mnsit"], ["unknown dataset 'mnsit'", "digits", "mnist"]),
        (["search_space=mpl"], ["unknown search space 'mpl'", "nas_mlp"]),
        (["budget.trials=abc"], ["budget.trials must be an integer >= 1", "'abc'"]),
        (["seed=-1"], ["seed must be a non-negative integer"]),
        (["search_space.params.layer_num.low=9"], ["search space 'mlp', parameter 'layer_num': low (9) must be < high (4)"]),
        (["budget.trails=3"], ["unknown config key 'budget.trails'; did you mean budget.trials"]),
        (["problem=bbob", "problem.functoin=3"], ["unknown config key 'problem.functoin'", "problem.function"]),
        (["-m", "strategy=random,tpe", "strategy.params.n_startup=3"], ["strategy.params.n_startup", "++"]),
        # `+key` used to add the typo silently (the run went on with its default budget).
        (["problem=bbob", "+budget.trails=3"], ["unknown config key 'budget.trails'; did you mean budget.trials"]),
        (["problem=bbob", "++worker.proceses=false"], ["unknown config key 'worker.proceses'", "worker.processes"]),
        (
            ["problem=bbob", "strategy=tpe", "++strategy.params.n_startup_trials=-3"],
            ["n_startup_trials", "must be >= 0, but got -3"],
        ),
    ],
)
def test_bad_input_is_one_clear_message_without_traceback(tmp_path, harness_cmd, subprocess_env, args, phrases):
    proc = run(harness_cmd, tmp_path, subprocess_env, *args, check=False)
    assert proc.returncode == 2, proc.stderr  # as the README promises
    assert proc.stderr.count("error:") == 1, proc.stderr
    for phrase in phrases:
        assert phrase in proc.stderr, proc.stderr
    assert "Traceback" not in proc.stderr
    assert not (tmp_path / "results" / "default").exists() or not list((tmp_path / "results").rglob("*.parquet"))


def test_help_and_config_errors_do_not_import_tensorflow(tmp_path):
    code = (
        "import sys\n"
        "from harness.cli import main\n"
        "for argv in (['harness', '--help'], ['harness', 'budget.trials=abc']):\n"
        "    sys.argv = argv\n"
        "    try:\n"
        "        main()\n"
        "    except SystemExit:\n"
        "        pass\n"
        "bad = [m for m in ('tensorflow', 'keras') if m in sys.modules]\n"
        "assert not bad, bad\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert "harness: compare hyperparameter-optimisation" in proc.stdout


def test_every_shipped_config_option_composes_and_validates(tmp_path):
    """Each option of each group must compose (interpolations included) and pass validation,
    without loading data."""
    from hydra import compose, initialize_config_module
    from omegaconf import OmegaConf

    from harness.cli import GROUPS, config_options
    from harness.runner import settings_from_config

    with initialize_config_module("harness.conf", version_base="1.3"):
        for group in GROUPS:
            options = config_options(group)
            assert options, group
            for option in options:
                overrides = [f"{group}={option}"]
                if option == "ga_mlp":  # its trainer__* params tune the GA: backprop refuses them
                    overrides.append("trainer=neuroevolution")
                if option == "file":  # the user's own file: needs one
                    csv = tmp_path / "data.csv"
                    csv.write_text("a,b,label\n" + "".join(f"{i},{i % 7},{i % 2}\n" for i in range(40)))
                    overrides += [f"dataset.path={csv}", "dataset.target=label"]
                cfg = OmegaConf.to_container(compose("config", overrides=overrides), resolve=True)
                settings_from_config(cfg)


@pytest.mark.slow  # starts TensorFlow workers that the timeout kills
def test_a_run_whose_every_trial_failed_says_why_and_exits_1(tmp_path, harness_cmd, subprocess_env):
    proc = run(
        harness_cmd, tmp_path, subprocess_env, "worker.trial_timeout=0.5", "budget.trials=2", "budget.max_epochs=1", check=False
    )
    assert proc.returncode == 1, proc.stderr[-2000:]
    # Each failed trial's progress line carries its error's first line; one error line at the end.
    assert proc.stderr.count("failed best -  (timed out: still running") == 2, proc.stderr[-2000:]
    assert [line.startswith("error:") for line in proc.stderr.splitlines()].count(True) == 1
    assert "none of the 2 trials" in proc.stderr and "the first error: timed out" in proc.stderr
    assert "Traceback" not in proc.stderr


@pytest.mark.skipif(sys.version_info < (3, 11), reason="python -P exists from 3.11")
def test_the_hash_seeding_re_execution_does_not_import_from_the_working_directory(tmp_path, harness_cmd, subprocess_env):
    (tmp_path / "omegaconf.py").write_text("print('SHADOWED')\nraise SystemExit(3)\n")
    env = {k: v for k, v in subprocess_env.items() if k != "PYTHONHASHSEED"}
    proc = subprocess.run([*harness_cmd, "--help"], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0 and "SHADOWED" not in proc.stdout and "Usage:" in proc.stdout


def test_a_results_dir_that_cannot_hold_results_is_one_error(tmp_path, harness_cmd, subprocess_env):
    (tmp_path / "afile").write_text("in the way")
    proc = run(harness_cmd, tmp_path, subprocess_env, "problem=bbob", "budget.trials=2", "results_dir=afile/sub", check=False)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert proc.stderr.strip().splitlines() == [
        "error: results_dir 'afile/sub' cannot hold results: 'afile' is a file, not a folder; "
        "pass results_dir=<a writable folder>"
    ]


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="RLIMIT_FSIZE stands in for a full disk")
def test_a_full_disk_is_one_error_and_a_consistent_status(tmp_path, harness_cmd, subprocess_env):
    import resource

    def small_files() -> None:  # writes past 20 kB fail with EFBIG, as a full disk fails them
        resource.setrlimit(resource.RLIMIT_FSIZE, (20_000, 20_000))

    args = ("problem=bbob", "budget.trials=300", "progress=false")
    proc = subprocess.run(
        [*harness_cmd, *args],
        cwd=tmp_path,
        env=subprocess_env,
        capture_output=True,
        text=True,
        timeout=300,
        preexec_fn=small_files,
    )
    assert proc.returncode == 2 and "Traceback" not in proc.stderr, proc.stderr[-2000:]
    errors = [line for line in proc.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "cannot write" in errors[0] and "rerun the same command" in errors[0]
    (run_file,) = (tmp_path / "results" / "default").glob("*/_run.json")
    status = json.loads(run_file.read_text())
    assert status["status"] == "failed" and "cannot write" in status["stop_reason"]  # not "running"
    again = run(harness_cmd, tmp_path, subprocess_env, *args)  # space again: the run completes
    assert "finished" in again.stdout and len(pd.read_parquet(run_file.parent / "trials.parquet")) == 300


def test_a_corrupt_cached_dataset_file_is_one_error(tmp_path, harness_cmd, subprocess_env):
    (tmp_path / "mnist.npz").write_bytes(b"PK\x03\x04 truncated download")
    proc = run(
        harness_cmd, tmp_path, subprocess_env, "dataset=mnist", f"dataset.cache_dir={tmp_path}", "budget.trials=1", check=False
    )
    assert proc.returncode == 2 and "Traceback" not in proc.stderr, proc.stderr[-2000:]
    (line,) = [line for line in proc.stderr.splitlines() if line.startswith("error:")]
    assert str(tmp_path / "mnist.npz") in line and "delete it so that it is downloaded again" in line


@pytest.mark.slow
def test_a_configuration_error_found_while_running_leaves_no_run_folder(tmp_path, harness_cmd, subprocess_env):
    # The trainer finds out only once it has the model; the run recorded nothing, so no folder
    # is left that harness-report would count as a failed seed.
    proc = run(
        harness_cmd,
        tmp_path,
        subprocess_env,
        "search_space=cnn",
        "trainer=neuroevolution",
        "dataset=digits",
        "budget.trials=1",
        check=False,
    )
    assert proc.returncode == 2 and "Dense-only" in proc.stderr and "Traceback" not in proc.stderr
    assert not [p for p in (tmp_path / "results" / "default").iterdir() if not p.name.startswith(".")]


@pytest.mark.parametrize("sig, code", [("SIGINT", 130), ("SIGTERM", 143)])
def test_ctrl_c_or_sigterm_exits_with_the_shells_code_and_keeps_the_trials(tmp_path, harness_cmd, subprocess_env, sig, code):
    import signal
    import time

    args = ["problem=bbob", "budget.trials=1000000", "progress=false", "flush_seconds=0.2"]
    proc = subprocess.Popen(
        [*harness_cmd, *args], cwd=tmp_path, env=subprocess_env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    deadline = time.time() + 120
    while time.time() < deadline and not list(tmp_path.rglob("trials.part-*.parquet")):
        time.sleep(0.2)  # trials are being recorded
    proc.send_signal(getattr(signal, sig))
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == code, err[-2000:]
    assert f"interrupted by {sig}: finished trials are saved" in err and "Traceback" not in err
    (run_file,) = tmp_path.rglob("_run.json")
    status = json.loads(run_file.read_text())
    assert status["status"] == "interrupted" and sig in status["stop_reason"] and status["n_trials"] > 0
    saved = len(pd.read_parquet(run_file.parent / "trials.parquet"))
    assert saved == status["n_trials"]
