"""An out-of-tree plugin package, installed like a user would, works with no harness change:
the registry finds its strategy and problem, both conformance suites pass on them, and
`harness strategy=sobol search_space=tiny_mlp` and `harness problem=branin` run with the config
files the plugin ships (found through the `harness.configs` entry point), the search space built
by the plugin's own model builder."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

PLUGIN = Path(__file__).parent / "plugins" / "harness-example-plugin"
DIST = "harness-example-plugin"

pytestmark = pytest.mark.slow


def _pip(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "pip", *args], capture_output=True, text=True, timeout=300)


@pytest.fixture(scope="module")
def installed_plugin(tmp_path_factory):
    """The plugin installed into a folder of its own (`pip install --target`), which only this
    module's subprocesses see through PYTHONPATH: the test environment is never changed, even
    when a test run is killed half-way."""
    import os

    # Build from a copy so that setuptools' build/ and *.egg-info never land in the repository.
    src = tmp_path_factory.mktemp("plugin") / "harness-example-plugin"
    shutil.copytree(PLUGIN, src, ignore=shutil.ignore_patterns("build", "*.egg-info", "__pycache__"))
    target = tmp_path_factory.mktemp("site")
    proc = _pip("install", "--no-deps", "--no-build-isolation", "--quiet", "--target", str(target), str(src))
    assert proc.returncode == 0, proc.stderr[-3000:]
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(target), env.get("PYTHONPATH")]))
    return src, env


def test_the_test_environment_itself_is_left_unchanged(installed_plugin):
    from importlib.metadata import PackageNotFoundError, distribution

    with pytest.raises(PackageNotFoundError):
        distribution(DIST)


def test_plugin_is_discovered(installed_plugin):
    _, env = installed_plugin
    code = "from harness.registry import available_strategies as a; i = a()['sobol']; print(i.target, i.distribution)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, env=env)
    assert out.stdout.split() == ["harness_example_plugin.sobol:Sobol", DIST]


def test_the_plugin_search_space_is_listed_and_selectable(installed_plugin, tmp_path):
    # Without TensorFlow: `search_space=tiny_mlp` passes the name check (which lists the options
    # of every installed plugin), composes, and its builder resolves.
    _, env = installed_plugin
    code = (
        "from harness.cli import config_options; print(config_options('search_space')); "
        "from harness.testing import problem_config; from harness.runner import settings_from_config; "
        "cfg = problem_config('keras', 'search_space=tiny_mlp'); cfg['results_dir'] = 'r'; "
        "s = settings_from_config(cfg); print(s.problem.space.name, s.problem.space.builder, s.run_id)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, cwd=tmp_path)
    assert out.returncode == 0, out.stderr[-3000:]
    listed, built = out.stdout.splitlines()
    assert "tiny_mlp" in listed and "homl_mlp" in listed
    assert built.split()[:2] == ["tiny_mlp", "harness_example_plugin.spaces:build_tiny_mlp"]
    assert built.split()[2].startswith("random_tiny_mlp_")  # the space names the run
    help_text = subprocess.run(
        [str(Path(sys.executable).with_name("harness")), "--help"], capture_output=True, text=True, env=env, cwd=tmp_path
    ).stdout
    assert "tiny_mlp" in help_text


def test_conformance_suite_passes_on_plugin(installed_plugin):
    src, env = installed_plugin
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--rootdir", str(src), str(src / "tests")],
        capture_output=True,
        text=True,
        timeout=600,
        cwd=src,
        env=env,
    )
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-2000:]
    assert " passed" in proc.stdout and "failed" not in proc.stdout


def test_harness_runs_the_plugin_strategy_on_the_plugin_search_space(installed_plugin, tmp_path):
    # One Keras run for both (TensorFlow is the slow part): the strategy and the search space
    # (`search_space/tiny_mlp.yaml`, builder `harness_example_plugin.spaces:build_tiny_mlp`).
    args = [
        "strategy=sobol",
        "search_space=tiny_mlp",
        "budget.trials=2",
        "budget.max_epochs=1",
        f"results_dir={tmp_path}",
        "progress=false",
    ]
    cmd = [str(Path(sys.executable).with_name("harness")), *args]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600, cwd=tmp_path, env=installed_plugin[1])
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    files = list(tmp_path.rglob("*.parquet"))
    assert files, proc.stdout
    import pandas as pd

    df = pd.concat(pd.read_parquet(f) for f in files)
    assert len(df) == 2 and set(df["strategy"]) == {"sobol"}
    assert set(df["search_space"]) == {"tiny_mlp"} and set(df["status"]) == {"ok"}  # built and trained
    assert df["param.width"].isin([8, 16, 24, 32]).all() and df["param.depth"].isin([1, 2]).all()
    # The run says which package (and release) provided the strategy.
    import json

    (run_file,) = tmp_path.rglob("_run.json")
    dist = json.loads(run_file.read_text())["strategy_distribution"]
    assert dist["distribution"] == "harness-example-plugin" and dist["version"]


def test_harness_runs_the_plugin_problem(installed_plugin, tmp_path):
    args = ["problem=branin", "strategy=tpe", "budget.trials=25", f"results_dir={tmp_path}", "progress=false"]
    cmd = [str(Path(sys.executable).with_name("harness")), *args]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600, cwd=tmp_path, env=installed_plugin[1])
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    import pandas as pd

    from harness.results import read_results

    df = read_results(tmp_path)
    assert len(df) == 25 and set(df["problem"]) == {"branin"} and (df["regret"] >= 0).all()
    assert (df["regret"] == df["objective"] - 0.397887).all()
    assert "regret" in proc.stdout and pd.notna(df["param.x1"]).all()
