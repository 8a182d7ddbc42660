"""The `harness` console command, kept free of heavy imports because it may re-execute itself.

Python randomises `hash(str)` per process, so the order of a set of strings differs between two
runs of the same command. SMAC iterates over such sets, so a run resumed in a new process would
replay SMAC differently from how it ran. The command therefore re-executes itself once with
PYTHONHASHSEED=0 unless the variable is set (launcher workers inherit it), before Hydra or
anything else is imported, and then runs `harness.cli.main`.
"""

from __future__ import annotations

import os
import sys


def main() -> None:
    if os.environ.get("PYTHONHASHSEED") is None:
        os.environ["PYTHONHASHSEED"] = "0"
        try:
            # -P: `python -m` would put the working directory first on sys.path (a console
            # script does not), so a user's `omegaconf.py` there would shadow the library.
            safe_path = ["-P"] if sys.version_info >= (3, 11) else []
            os.execv(sys.executable, [sys.executable, *safe_path, "-m", "harness.command", *sys.argv[1:]])
        except OSError:  # cannot re-execute (unusual platforms): run with a random hash seed
            pass
    sys.argv[0] = "harness"  # not ".../harness/command.py" in usage lines after re-executing
    from harness.cli import main as cli_main  # the imported module, whose job lists Hydra fills

    try:
        cli_main()
    except BrokenPipeError:  # `harness ... | head -1`: the reader left; the run's files are saved
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())  # no second error when Python flushes stdout at exit
        sys.exit(1)


if __name__ == "__main__":
    main()
