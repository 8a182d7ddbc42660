# Hydra configs, installed as the `harness.conf` package so an installed harness finds them.
