"""The conformance suite (harness.testing) on every installed strategy plugin."""
from harness.testing import *  # noqa: F401,F403  (collects test_conformance)
