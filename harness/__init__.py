"""AutoML benchmarking harness: compare HPO and NAS strategies on Keras models, fairly.

Importing this package is cheap: TensorFlow is only imported by the objective when a trial
trains a model.
"""

from __future__ import annotations

__version__ = "0.1.0"
