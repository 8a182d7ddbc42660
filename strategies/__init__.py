"""Bundled strategy plugins, each registered in the `harness.strategies` entry-point group.

Modules here import their library (optuna, keras-tuner, deap) lazily, never TensorFlow at
import time, so that `harness --help` and config validation stay fast.
"""
