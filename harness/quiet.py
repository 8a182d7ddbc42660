"""TensorFlow's native start-up lines, kept off the terminal unless `verbose` asks for them.

TensorFlow's C++ side prints "oneDNN custom operations are on" and "Could not find cuda drivers"
through absl *before* its logging is initialised, so `TF_CPP_MIN_LOG_LEVEL` cannot silence them;
each worker process would print them again. `import_tensorflow` imports it once per process with
file descriptor 2 pointed at /dev/null for the duration of the import only, and sets TensorFlow's
Python logger to errors (no "tf.function retracing" warnings per trial). Python errors still
surface as exceptions; `verbose>=1` (or HARNESS_TF_LOGS=1) shows everything.
"""

from __future__ import annotations

import os
import sys
from typing import Any


def import_tensorflow(verbose: int = 0) -> Any:
    """`import tensorflow`, without its native start-up lines on stderr (module docstring)."""
    if "tensorflow" in sys.modules or verbose or os.environ.get("HARNESS_TF_LOGS") == "1":
        import tensorflow

        return tensorflow
    sys.stderr.flush()
    saved = os.dup(2)
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 2)
        import tensorflow
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)
    # Python-side warnings such as "triggered tf.function retracing" from the second trial on.
    tensorflow.get_logger().setLevel("ERROR")
    return tensorflow
