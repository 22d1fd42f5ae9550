"""House rules that no linter checks: one exception tree, no private names across modules."""

from __future__ import annotations

import ast
import importlib
import inspect
import pkgutil
from pathlib import Path
from types import ModuleType

import pytest

import monitor.errors
from monitor.errors import SupportMonitorError

REPO = Path(__file__).resolve().parent.parent
PACKAGES = ("monitor", "detectors", "alerts", "dashboards")
NOT_ERRORS = {"monitor.supervise.Shutdown"}  # a signal that ends a task group


def _modules() -> list[ModuleType]:
    found = []
    for name in PACKAGES:
        package = importlib.import_module(name)
        found.append(package)
        found += [
            importlib.import_module(info.name)
            for info in pkgutil.walk_packages(package.__path__, prefix=f"{name}.")
            if not info.name.endswith("__main__")
        ]
    return found


def _project_exceptions() -> dict[str, type[BaseException]]:
    out = {}
    for module in _modules():
        for _, cls in inspect.getmembers(module, inspect.isclass):
            if cls.__module__ == module.__name__ and issubclass(cls, BaseException):
                out[f"{cls.__module__}.{cls.__qualname__}"] = cls
    return out


def test_the_walk_finds_the_known_errors() -> None:
    found = _project_exceptions()
    assert "monitor.events.EventError" in found
    assert "monitor.errors.ConfigError" in found
    assert "monitor.supervise.Shutdown" in found


def test_every_project_error_derives_from_the_one_root() -> None:
    strays = [
        name
        for name, cls in _project_exceptions().items()
        if name not in NOT_ERRORS and not issubclass(cls, SupportMonitorError)
    ]
    assert strays == [], f"derive these from monitor.errors.SupportMonitorError: {strays}"


def test_the_tree_in_monitor_errors_names_every_error() -> None:
    doc = monitor.errors.__doc__ or ""
    missing = [
        name
        for name, cls in _project_exceptions().items()
        if name not in NOT_ERRORS and cls is not SupportMonitorError and cls.__name__ not in doc
    ]
    assert missing == [], f"draw these in the tree of monitor/errors.py: {missing}"


def _private_imports(path: Path, root: Path = REPO) -> list[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    bad = []
    for node in ast.walk(tree):
        if not isinstance(node, ast.ImportFrom) or node.module is None:
            continue
        if node.module.split(".")[0] not in PACKAGES:
            continue
        bad += [
            f"{path.relative_to(root)}:{node.lineno}: from {node.module} import {alias.name}"
            for alias in node.names
            if alias.name.startswith("_") and not alias.name.startswith("__")
        ]
    return bad


def test_no_module_imports_a_private_name_of_another() -> None:
    bad = [
        line
        for name in PACKAGES
        for f in (REPO / name).rglob("*.py")
        for line in _private_imports(f)
    ]
    assert bad == [], "make these public (or move them to a shared module):\n" + "\n".join(bad)


def test_the_private_import_check_can_fail(tmp_path: Path) -> None:
    sample = tmp_path / "probe.py"
    sample.write_text(
        "from monitor.pipeline import _explain, Pipeline\nfrom os import _exit\n", encoding="utf-8"
    )
    assert _private_imports(sample, tmp_path) == [
        "probe.py:1: from monitor.pipeline import _explain"
    ]


@pytest.mark.parametrize("module", [m for m in _modules() if hasattr(m, "__all__")], ids=str)
def test_all_names_exist_and_are_public(module: ModuleType) -> None:
    names = list(module.__all__)
    assert all(not n.startswith("_") for n in names), names
    assert [n for n in names if not hasattr(module, n)] == []
