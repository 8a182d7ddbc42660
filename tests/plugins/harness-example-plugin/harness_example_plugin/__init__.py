"""An example out-of-tree strategy plugin for the AutoML harness."""
