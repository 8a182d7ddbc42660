"""`harness`: the Hydra application. `harness` runs the default experiment, `harness -m` sweeps.

User mistakes (unknown names, bad values, invalid spaces) print one clear message and exit with
status 2, without a traceback. Nothing here imports TensorFlow: `--help` and config errors are
fast; the `keras` problem imports it in its worker processes.
"""

from __future__ import annotations

import os
import signal
import sys
from pathlib import Path

import hydra
from hydra.experimental.callback import Callback
from omegaconf import DictConfig, OmegaConf

from harness.errors import HarnessError

EXIT_USAGE = 2
EXIT_NO_RESULT = 1  # the run ended, but none of its trials succeeded
ERROR_MARKER = "harness_error.txt"  # written into a failed sweep job's Hydra output folder
NA_MARKER = "harness_not_applicable.txt"  # ... and into a job whose pairing is not applicable
_failed_jobs: list[str] = []
_not_applicable_jobs: list[str] = []


def _path_in(path: str, cwd: str) -> str:
    """`${harness.path:${results_dir},${hydra.runtime.cwd}}` in conf/config.yaml: Hydra's output
    folders under `results_dir` taken relative to the folder `harness` was started in, as the
    results are, not to the job's own working directory. A Ray worker's is the one `ray start`
    ran in, so a relative sweep folder would put a job's logs and its failure marker there, and
    `harness -m` would miss the failure. Registered on import: every process that runs a job
    imports this module to get `_app`."""
    return os.path.join(cwd, os.path.expanduser(path))  # an absolute path stays as it is


OmegaConf.register_new_resolver("harness.path", _path_in, replace=True)


class SweepOutcome(Callback):
    """Counts failed sweep jobs, wherever the launcher ran them, so `harness -m` exits non-zero,
    and jobs recorded as not applicable, which do not fail the sweep."""

    def on_multirun_end(self, config: DictConfig, **kwargs: object) -> None:
        sweep_dir = Path(str(config.hydra.sweep.dir))
        _failed_jobs.extend(p.read_text().strip() for p in sorted(sweep_dir.glob(f"*/{ERROR_MARKER}")))
        _not_applicable_jobs.extend(p.read_text().strip() for p in sorted(sweep_dir.glob(f"*/{NA_MARKER}")))


def _job_marker(name: str, text: str) -> None:
    """A sweep job may run in another process (joblib, submitit, a cluster node), so it leaves a
    file in its Hydra output folder that SweepOutcome reads at the end."""
    from hydra.core.hydra_config import HydraConfig

    marker = Path(HydraConfig.get().runtime.output_dir) / name
    marker.parent.mkdir(parents=True, exist_ok=True)
    marker.write_text(text + "\n")


@hydra.main(config_path="pkg://harness.conf", config_name="config", version_base="1.3")
def _app(cfg: DictConfig) -> float | None:
    from hydra.core.hydra_config import HydraConfig

    from harness.runner import run, settings_from_config

    multirun = HydraConfig.get().mode.name == "MULTIRUN"
    try:
        plain = OmegaConf.to_container(cfg, resolve=True)
        settings = settings_from_config(plain, base_dir=Path(hydra.utils.get_original_cwd()))
        summary = run(settings)
    except HarnessError as exc:
        print(f"error: {exc}", file=sys.stderr)
        if not multirun:
            sys.exit(EXIT_USAGE)
        _job_marker(ERROR_MARKER, str(exc))  # the sweep goes on with its other jobs
        return None
    except OSError as exc:  # the disk filled up, a folder became read-only during the run
        where = exc.filename or cfg.get("results_dir", "results")
        print(
            f"error: cannot write {str(where)!r}: {exc.strerror or exc}; free some space or pass "
            "results_dir=<another folder>, then rerun the same command to resume",
            file=sys.stderr,
        )
        if not multirun:
            sys.exit(EXIT_USAGE)
        _job_marker(ERROR_MARKER, f"{where}: {exc.strerror or exc}")
        return None
    except KeyboardInterrupt as exc:
        # SIGINT -> 130, SIGTERM -> 143 (128 + signal number, the shell's convention).
        signum = getattr(exc, "signum", signal.SIGINT)
        print(
            f"interrupted by {signal.Signals(signum).name}: finished trials are saved; rerun the same command to resume",
            file=sys.stderr,
        )
        sys.exit(128 + signum)
    if summary.status == "not_applicable":
        # Recorded, so the report shows N/A; a sweep goes on, a single run says it did nothing.
        if not multirun:
            print(f"error: {summary.stop_reason} (recorded as not applicable in {summary.run_dir})", file=sys.stderr)
            sys.exit(EXIT_USAGE)
        print(summary.format())
        _job_marker(NA_MARKER, f"{summary.run_id}: {summary.stop_reason}")
        return None
    print(summary.format())
    best = summary.best
    if summary.n_trials and best is None:
        # A run that produced no result is a failure, even when every trial was recorded.
        message = (
            f"none of the {summary.n_trials} trials of run {summary.run_id} succeeded"
            + (f"; the first error: {summary.first_error}" if summary.first_error else "")
            + f"; see the `error` column of {summary.run_dir / 'trials.parquet'}"
        )
        print(f"error: {message}", file=sys.stderr)
        if not multirun:
            sys.exit(EXIT_NO_RESULT)
        _job_marker(ERROR_MARKER, message)
        return None
    if best is None or best.get("objective") is None:
        return None
    # Hydra sweepers that optimise the return value get one direction for every problem.
    return best["objective"] if best.get("objective_direction") != "minimize" else -best["objective"]


GROUPS = ("problem", "strategy", "search_space", "dataset", "trainer", "preset")
EXTRA_CONFIG_ARGS = ("--config-dir", "-cd", "--config-path", "-cp", "hydra.searchpath", "+hydra.searchpath", "++hydra.searchpath")


def config_options(group: str) -> list[str]:
    """Names selectable as `<group>=<name>`: the harness's YAML files plus plugin packages'."""
    from importlib.metadata import entry_points
    from importlib.resources import files

    names: set[str] = set()
    packages = ["harness.conf"] + [ep.value for ep in entry_points(group="harness.configs")]
    for package in packages:
        try:
            folder = files(package) / group
            names |= {p.name[:-5] for p in folder.iterdir() if p.name.endswith(".yaml")}
        except (ModuleNotFoundError, FileNotFoundError, NotADirectoryError):
            continue
    return sorted(names)


def check_group_overrides(argv: list[str]) -> None:
    """Fail fast, with the list of choices, on `strategy=nope` and friends (sweeps included).

    With extra config folders (`--config-dir`, `hydra.searchpath`) the options are not all known
    here, so Hydra's own error is left to speak.
    """
    if any(a.startswith(EXTRA_CONFIG_ARGS) for a in argv):
        return
    for arg in argv:
        group, sep, value = arg.partition("=")
        if not sep or group not in GROUPS or "(" in value:  # leave sweep functions to Hydra
            continue
        options = config_options(group)
        for name in value.split(","):
            if name and name not in options:
                from harness.errors import UnknownNameError

                raise UnknownNameError(group.replace("_", " "), name, options)


def check_override_keys(argv: list[str]) -> None:
    """Fail fast, with the closest known keys, on a misspelt key such as `budget.trails=3`.

    Hydra would refuse it too, but with a multi-line message and exit status 1. The config is
    composed with the chosen groups (a sweep's first option) and each plain `key=value` is
    looked up in it, as is each `+key`/`++key` outside the sections whose options are open
    (`OPEN_SECTIONS`); `hydra.*` and extra config folders are left to Hydra.
    """
    import difflib

    if any(a.startswith(EXTRA_CONFIG_ARGS) for a in argv):
        return
    pairs = [a.partition("=") for a in argv if "=" in a and not a.startswith(("-", "+", "~"))]
    keys = [k for k, _, _ in pairs if k not in GROUPS and not k.startswith(("hydra.", "hydra/"))]
    # `+key`/`++key` add keys: welcome where options are open (a strategy's library options, a
    # problem's or dataset's constructor options), a silently ignored typo anywhere else.
    added = [a.lstrip("+").partition("=")[0] for a in argv if a.startswith("+") and "=" in a]
    keys += [k for k in added if not k.startswith(OPEN_SECTIONS) and "/" not in k]
    if not keys:
        return
    if any(k in GROUPS and "(" in v for k, _, v in pairs):
        return  # groups chosen by a sweep function: which keys exist is Hydra's to say
    groups = [f"{k}={v.split(',')[0]}" for k, _, v in pairs if k in GROUPS]
    from hydra import compose, initialize_config_module

    with initialize_config_module("harness.conf", version_base="1.3"):
        cfg = compose("config", overrides=groups)
    known = _leaf_keys(OmegaConf.to_container(cfg, resolve=False))
    for key in keys:
        if OmegaConf.select(cfg, key, default=_MISSING, throw_on_missing=False) is _MISSING:
            from harness.errors import ConfigError

            close = difflib.get_close_matches(key, known, n=3, cutoff=0.6)
            hint = f"did you mean {', '.join(close)}? " if close else ""
            add = f" (`++{key}=...` adds an option the config does not list)" if key.startswith(OPEN_SECTIONS) else ""
            raise ConfigError(f"unknown config key {key!r}; {hint}`harness --cfg job` lists every key{add}")


_MISSING = object()
# Sections whose keys are options of something else (passed on and checked there): `+`/`++` may
# add keys under them; anywhere else an added key would be read by nothing.
OPEN_SECTIONS = ("strategy.params.", "problem.", "dataset.", "search_space.", "trainer.", "hydra.")


def check_results_dir(argv: list[str]) -> None:
    """Fail fast when `results_dir` cannot hold results (a file in the way, a read-only folder):
    Hydra would otherwise stop with a traceback while creating its output folder."""
    import os

    values = [v for k, _, v in (a.partition("=") for a in argv) if k.lstrip("+") == "results_dir"]
    for value in values[-1].split(",") if values else ["results"]:
        if not value or "$" in value or "(" in value:
            continue  # interpolations and sweep functions: Hydra resolves them
        path = Path(value).expanduser()
        existing = next((p for p in (path, *path.parents) if p.exists()), Path("."))
        if not existing.is_dir():
            problem = f"{str(existing)!r} is a file, not a folder"
        elif not os.access(existing, os.W_OK | os.X_OK):
            problem = f"{str(existing)!r} is not writable (read-only, or not yours)"
        else:
            continue
        from harness.errors import ConfigError

        raise ConfigError(f"results_dir {value!r} cannot hold results: {problem}; pass results_dir=<a writable folder>")


def _leaf_keys(node: object, prefix: str = "") -> list[str]:
    """Dotted keys of a config's values (`budget.trials`), for suggestions."""
    if not isinstance(node, dict):
        return [prefix]
    return [key for k, v in node.items() for key in _leaf_keys(v, f"{prefix}.{k}" if prefix else str(k))]


def _quiet_tensorflow() -> None:
    """Keep TensorFlow's C++ start-up chatter off the terminal (inherited by worker processes).

    On machines without an NVIDIA driver its CUDA probing logs an alarming but harmless error,
    so errors are hidden there too; Python-level errors still surface as exceptions.
    """
    import os
    import shutil

    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2" if shutil.which("nvidia-smi") else "3")


def _register_searchpath_plugin() -> None:
    """Make configs shipped by plugin packages (`harness.configs` entry points) visible to Hydra,
    also where Hydra's own plugin scan misses `hydra_plugins/` (editable installs)."""
    from hydra.core.plugins import Plugins

    from harness.hydra_searchpath import HarnessSearchPathPlugin

    Plugins.instance().register(HarnessSearchPathPlugin)


def main() -> None:
    from harness.log import configure

    configure()
    _quiet_tensorflow()
    _register_searchpath_plugin()
    try:
        check_group_overrides(sys.argv[1:])
        check_override_keys(sys.argv[1:])
        check_results_dir(sys.argv[1:])
    except HarnessError as exc:
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(EXIT_USAGE)
    _app()
    if _not_applicable_jobs:
        print(
            f"note: {len(_not_applicable_jobs)} sweep job(s) not applicable (strategy and problem "
            f"do not fit; recorded, harness-report shows N/A)",
            file=sys.stderr,
        )
    if _failed_jobs:
        print(f"error: {len(_failed_jobs)} sweep job(s) failed (see messages above)", file=sys.stderr)
        sys.exit(EXIT_USAGE)


if __name__ == "__main__":
    # Through the command, which imports this module by name: Hydra instantiates
    # `harness.cli.SweepOutcome`, whose job lists must be the ones `main` reads.
    from harness.command import main as _command

    _command()
