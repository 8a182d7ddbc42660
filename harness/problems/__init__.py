"""The problems shipped with the harness, each an entry point in `harness.problems`:

* `keras`: train a Keras model of a search space on a dataset (the default; `harness.objective`);
* `bbob`: the 24 noiseless COCO BBOB functions through the `ioh` package;
* `sklearn`: scikit-learn estimators with bayesmark's search spaces, cross-validated;
* `tabular`: learning curves recorded by `harness-tabulate`, replayed in a simulated clock.

Importing a module here is cheap: each imports its framework in `Problem.setup()`.
"""
