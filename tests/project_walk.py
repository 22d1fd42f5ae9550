"""The project's modules, imported by walking its four top packages (shared by the house-rule
tests: the architecture checks and the exported-members check)."""

from __future__ import annotations

import importlib
import pkgutil
from types import ModuleType

ROOT_PACKAGE = "support_monitor"
PACKAGES = ("monitor", "detectors", "alerts", "dashboards")  # its subpackages: the top folders


def walk(*, packages_only: bool = False) -> list[ModuleType]:
    """Every module (``packages_only``: every package) of the four top packages, imported, the
    top packages first; ``__main__`` modules are left out (they run the CLI)."""
    found = []
    for name in PACKAGES:
        package = importlib.import_module(f"{ROOT_PACKAGE}.{name}")
        found.append(package)
        found += [
            importlib.import_module(info.name)
            for info in pkgutil.walk_packages(package.__path__, prefix=f"{package.__name__}.")
            if not info.name.endswith("__main__") and (info.ispkg or not packages_only)
        ]
    return found
