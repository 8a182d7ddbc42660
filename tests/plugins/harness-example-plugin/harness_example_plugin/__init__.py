"""Example out-of-tree plugins for the AutoML harness: a strategy (sobol) and a problem (branin)."""
