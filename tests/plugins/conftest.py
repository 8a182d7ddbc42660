# Plugin packages here are installed and tested by tests/test_example_plugin.py in a subprocess;
# their own tests need the plugin installed, so the project's test run does not collect them.
collect_ignore_glob = ["*"]
