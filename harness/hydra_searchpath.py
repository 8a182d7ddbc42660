"""Hydra search-path plugin: lets out-of-tree strategy plugins ship `strategy/<name>.yaml`.

A plugin package declares where its configs live in the `harness.configs` entry-point group,
e.g. `my_plugin = "my_plugin_pkg.conf"`; that package is then searched after the harness's
own `conf/`, so `harness strategy=<its name>` composes without any change to the harness.
Reading entry-point values imports nothing.
"""

from __future__ import annotations

from importlib.metadata import entry_points

from hydra.core.config_search_path import ConfigSearchPath
from hydra.plugins.search_path_plugin import SearchPathPlugin

HARNESS_CONF = "pkg://harness.conf"


class HarnessSearchPathPlugin(SearchPathPlugin):
    def manipulate_search_path(self, search_path: ConfigSearchPath) -> None:
        # Only touch the harness's own application, not other Hydra apps in the environment.
        if not any(e.path == HARNESS_CONF for e in search_path.get_path()):
            return
        for ep in entry_points(group="harness.configs"):
            search_path.append(provider=f"harness-plugin:{ep.name}", path=f"pkg://{ep.value}")
