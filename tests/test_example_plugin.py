"""An out-of-tree strategy plugin, installed like a user would, works with no harness change:
the registry finds it, the conformance suite passes on it, and `harness strategy=sobol` runs
with the config file the plugin ships (found through the `harness.configs` entry point)."""
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
    return subprocess.run([sys.executable, "-m", "pip", *args], capture_output=True, text=True,
                          timeout=300)


@pytest.fixture(scope="module")
def installed_plugin(tmp_path_factory):
    # Build from a copy so that setuptools' build/ and *.egg-info never land in the repository.
    src = tmp_path_factory.mktemp("plugin") / "harness-example-plugin"
    shutil.copytree(PLUGIN, src, ignore=shutil.ignore_patterns("build", "*.egg-info", "__pycache__"))
    proc = _pip("install", "--no-deps", "--no-build-isolation", "--quiet", str(src))
    assert proc.returncode == 0, proc.stderr[-3000:]
    try:
        yield src
    finally:
        proc = _pip("uninstall", "--yes", "--quiet", DIST)
        assert proc.returncode == 0, proc.stderr[-3000:]


def test_plugin_is_discovered(installed_plugin):
    code = ("from harness.registry import available_strategies as a; "
            "i = a()['sobol']; print(i.target, i.distribution)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["harness_example_plugin.sobol:Sobol", DIST]


def test_conformance_suite_passes_on_plugin(installed_plugin):
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--rootdir",
         str(installed_plugin), str(installed_plugin / "tests")],
        capture_output=True, text=True, timeout=600, cwd=installed_plugin)
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-2000:]
    assert " passed" in proc.stdout and "failed" not in proc.stdout


# Runs the `harness` app with the harness's Hydra search-path plugin registered explicitly, for
# installs where Hydra's scan of the `hydra_plugins` namespace does not see it (see below).
_REGISTERED_HARNESS = """
import sys
from hydra.core.plugins import Plugins
from hydra_plugins.harness_searchpath import HarnessSearchPathPlugin
Plugins.instance().register(HarnessSearchPathPlugin)
from harness.cli import main
sys.argv[0] = "harness"
main()
"""


def _searchpath_plugin_discovered(cwd: Path) -> bool:
    code = ("from hydra.core.plugins import Plugins; "
            "from hydra.plugins.search_path_plugin import SearchPathPlugin as S; "
            "print(any(c.__name__ == 'HarnessSearchPathPlugin' "
            "for c in Plugins.instance().discover(S)))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         cwd=cwd)  # not the repository root, whose hydra_plugins/ `-c` would see
    return out.stdout.strip() == "True"


def test_harness_runs_the_plugin_strategy(installed_plugin, tmp_path):
    args = ["strategy=sobol", "search_space=homl_mlp", "budget.trials=2", "budget.max_epochs=1",
            f"results_dir={tmp_path}", "progress=false"]
    discovered = _searchpath_plugin_discovered(tmp_path)
    if discovered:
        cmd = [str(Path(sys.executable).with_name("harness")), *args]
    else:
        cmd = [sys.executable, "-c", _REGISTERED_HARNESS, *args]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600, cwd=tmp_path)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    files = list(tmp_path.rglob("*.parquet"))
    assert files, proc.stdout
    import pandas as pd

    df = pd.concat(pd.read_parquet(f) for f in files)
    assert len(df) == 2 and set(df["strategy"]) == {"sobol"}
    if not discovered:
        pytest.xfail(
            "the plugin runs, but plain `harness strategy=sobol` cannot find strategy/sobol.yaml: "
            "Hydra finds plugins by scanning the hydra_plugins namespace with pkgutil, which does "
            "not see hydra_plugins.harness_searchpath through setuptools' editable-install finder; "
            "register HarnessSearchPathPlugin in harness.cli.main() (or install with "
            "--config-settings editable_mode=compat)")
