"""The harness's conformance suite on this plugin: one import, no test of our own needed."""

from harness.testing import conformance_tests

test_sobol_conformance = conformance_tests("sobol")
