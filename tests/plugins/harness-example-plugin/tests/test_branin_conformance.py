from harness.testing import problem_conformance_tests

test_branin_conformance = problem_conformance_tests("branin")
