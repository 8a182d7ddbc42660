"""Bundled strategy plugins, each registered in the `harness.strategies` entry-point group.

No module here imports its library (optuna, keras-tuner, deap) or TensorFlow at import time,
so that `harness --help` and listing strategies stay fast. keras-tuner (and with it TensorFlow)
is imported on the first ask, DEAP when the first generation is bred; `tpe` imports Optuna when
it is built, so that a misspelt sampler option is a config error before any trial runs.
"""
