"""Hydra discovers plugins in the `hydra_plugins` namespace; the plugin itself lives in harness.

`harness.cli.main()` also registers it explicitly, because setuptools' editable installs hide
this namespace package from Hydra's pkgutil scan.
"""

from harness.hydra_searchpath import HarnessSearchPathPlugin

__all__ = ["HarnessSearchPathPlugin"]
