"""Example out-of-tree plugins for the AutoML harness: a strategy (sobol), a problem (branin) and
a search space (tiny_mlp)."""
