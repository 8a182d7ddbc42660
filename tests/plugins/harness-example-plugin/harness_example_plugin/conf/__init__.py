"""Hydra configs shipped by the plugin (declared in the `harness.configs` entry-point group)."""
