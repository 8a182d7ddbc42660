"""Provenance: what a table needs to be traced back to how it was made.

Everything here reads package metadata and the OS; nothing imports TensorFlow.
"""

from __future__ import annotations

import hashlib
import json
import platform
import socket
import subprocess
from functools import lru_cache
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

PACKAGES = (
    "automl-harness",
    "tensorflow",
    "keras",
    "optuna",
    "keras-tuner",
    "deap",
    "hydra-core",
    "omegaconf",
    "numpy",
    "pandas",
    "pyarrow",
    "scikit-learn",
    # launchers: which one ran a sweep is in the config; their versions are here
    "hydra-joblib-launcher",
    "joblib",
    "hydra-submitit-launcher",
    "submitit",
    "hydra-ray-launcher",
    "ray",
)


def package_version(name: str) -> str:
    try:
        return version(name)
    except PackageNotFoundError:
        return ""


@lru_cache(maxsize=1)
def git_revision() -> str:
    """`git describe`-style revision of the harness source, '' when not in a git checkout."""
    here = Path(__file__).resolve().parent
    try:
        # Only when this very file is tracked: an installed copy inside a venv that sits in some
        # other git project must not report that project's revision.
        tracked = subprocess.run(
            ["git", "-C", str(here), "ls-files", "--error-unmatch", "provenance.py"], capture_output=True, text=True, timeout=5
        )
        out = subprocess.run(["git", "-C", str(here), "rev-parse", "HEAD"], capture_output=True, text=True, timeout=5)
        if tracked.returncode != 0 or out.returncode != 0:
            return ""
        rev = out.stdout.strip()
        dirty = subprocess.run(
            ["git", "-C", str(here), "status", "--porcelain", "--untracked-files=no"], capture_output=True, text=True, timeout=5
        ).stdout.strip()
        return rev + ("-dirty" if dirty else "")
    except (OSError, subprocess.SubprocessError):
        return ""


def cpu_description() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def gpu_description() -> str:
    """GPU names from nvidia-smi when present ('' on CPU-only machines); no TensorFlow import."""
    try:
        out = subprocess.run(
            ["nvidia-smi", "--query-gpu=name", "--format=csv,noheader"], capture_output=True, text=True, timeout=10
        )
        return "; ".join(line.strip() for line in out.stdout.splitlines() if line.strip())
    except (OSError, subprocess.SubprocessError):
        return ""


def memory_gb() -> float | None:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return round(int(line.split()[1]) / 1024**2, 1)
    except (OSError, ValueError):
        pass
    return None


def collect() -> dict[str, Any]:
    import os
    import sys

    return {
        "python": platform.python_version(),
        "python_executable": sys.executable,
        "packages": {name: package_version(name) for name in PACKAGES},
        "git_revision": git_revision(),
        "hostname": socket.gethostname(),
        "platform": platform.platform(),
        "cpu": cpu_description(),
        "cpu_count": os.cpu_count(),
        "memory_gb": memory_gb(),
        "gpu": gpu_description(),
    }


def config_hash(identity: dict[str, Any]) -> str:
    """Short stable hash of the config parts that define a run's results."""
    text = json.dumps(identity, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:8]
