"""House rules that no linter checks: one exception tree, no private names across modules."""

from __future__ import annotations

import ast
import inspect
import sys
from collections.abc import Mapping
from pathlib import Path
from types import ModuleType

import pytest

from support_monitor.monitor import errors as errors_module
from support_monitor.monitor.errors import SupportMonitorError
from tests.project_walk import PACKAGES, ROOT_PACKAGE, walk

REPO = Path(__file__).resolve().parent.parent
NOT_ERRORS = {"support_monitor.monitor.supervise.Shutdown"}  # a signal that ends a task group


def _modules() -> list[ModuleType]:
    return walk()


def _project_exceptions() -> dict[str, type[BaseException]]:
    out = {}
    for module in _modules():
        for _, cls in inspect.getmembers(module, inspect.isclass):
            if cls.__module__ == module.__name__ and issubclass(cls, BaseException):
                out[f"{cls.__module__}.{cls.__qualname__}"] = cls
    return out


def test_the_walk_finds_the_known_errors() -> None:
    found = _project_exceptions()
    assert "support_monitor.monitor.events.EventError" in found
    assert "support_monitor.monitor.errors.ConfigError" in found
    assert "support_monitor.monitor.supervise.Shutdown" in found


def test_every_project_error_derives_from_the_one_root() -> None:
    strays = [
        name
        for name, cls in _project_exceptions().items()
        if name not in NOT_ERRORS and not issubclass(cls, SupportMonitorError)
    ]
    assert strays == [], f"derive these from monitor.errors.SupportMonitorError: {strays}"


def test_the_tree_in_monitor_errors_names_every_error() -> None:
    doc = errors_module.__doc__ or ""
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
        parts = node.module.split(".")
        if parts[0] != ROOT_PACKAGE or len(parts) < 2 or parts[1] not in PACKAGES:
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
        "from support_monitor.monitor.pipeline import _explain, Pipeline\nfrom os import _exit\n",
        encoding="utf-8",
    )
    assert _private_imports(sample, tmp_path) == [
        "probe.py:1: from support_monitor.monitor.pipeline import _explain"
    ]


@pytest.mark.parametrize("module", [m for m in _modules() if hasattr(m, "__all__")], ids=str)
def test_all_names_exist_and_are_public(module: ModuleType) -> None:
    names = list(module.__all__)
    assert all(not n.startswith("_") for n in names), names
    assert [n for n in names if not hasattr(module, n)] == []


def test_no_module_is_loaded_under_a_bare_folder_name() -> None:
    """Every module is imported as ``support_monitor.<folder>...``: a stray ``import monitor``
    would load a second copy of the same files under another name (two engines' worth of
    classes, isinstance checks that fail). Ruff's TID251 refuses such imports; this checks the
    interpreter after every module has been loaded."""
    _modules()
    strays = sorted(m for m in sys.modules if m.split(".")[0] in PACKAGES)
    assert strays == []


# The layers, bottom first. A module belongs to the entry with the longest matching prefix; it
# may import modules of its own layer and of the layers below, never above. Imports under
# ``if TYPE_CHECKING:`` count too (a type-only cycle is still a cycle for a reader).
LAYERS: tuple[tuple[str, tuple[str, ...]], ...] = (
    (
        "bottom: events, errors, durations, the metric catalogue, the settings tree",
        (
            "monitor.events",
            "monitor.errors",
            "monitor.exports",
            "monitor.version",
            "monitor.durations",
            "monitor.business_time",
            "monitor.redaction",
            "monitor.files",
            "monitor.logs",
            "monitor.webconfig",
            "monitor.catalogue",
            "monitor.config_channel",
            "monitor.config_helpdesk",
            "monitor.config_paths",
            "monitor.config_secrets",
            "monitor.config_env",
            "monitor.config",
            "monitor.sources.settings",
            "monitor.cluster.settings",
            "detectors.config",
            "detectors.voice_config",
            "detectors.share_cusum_config",
            "alerts.config",
            "alerts.links",
            "alerts.matchers",
            "alerts.template",
            "alerts.urls",
            "alerts.timefmt",
        ),
    ),
    ("engine", ("monitor.engine", "monitor.stats", "monitor.pipeline", "monitor.deadletter")),
    ("detectors", ("detectors",)),
    ("alert evaluation", ("alerts.rules", "alerts.state")),
    ("dispatch: planner, outbox, notifiers, silences", ("alerts",)),
    ("supervisor, sources, exporter, console, CLI, dashboards", ("monitor", "dashboards")),
)


def _layer(module: str) -> int:
    best = (-1, -1)
    for index, (_, prefixes) in enumerate(LAYERS):
        for prefix in prefixes:
            if (module == prefix or module.startswith(prefix + ".")) and len(prefix) > best[0]:
                best = (len(prefix), index)
    assert best[1] >= 0, f"{module} is in no layer: add it to LAYERS"
    return best[1]


def _project_modules(root: Path = REPO) -> dict[str, Path]:
    found = {}
    for package in PACKAGES:
        for path in (root / package).rglob("*.py"):
            parts = list(path.relative_to(root).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            found[".".join(parts)] = path
    return found


def _imports(path: Path, modules: Mapping[str, Path]) -> set[str]:
    """Project modules ``path`` imports (a ``from X import Y`` of a submodule Y counts as X.Y)."""
    prefix = ROOT_PACKAGE + "."
    out: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        names: list[str] = []
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith(prefix):
            base = node.module.removeprefix(prefix)
            names = [
                f"{base}.{a.name}" if f"{base}.{a.name}" in modules else base for a in node.names
            ]
        elif isinstance(node, ast.Import):
            names = [a.name.removeprefix(prefix) for a in node.names if a.name.startswith(prefix)]
        out.update(n for n in names if n in modules)
    return out


def _graph(root: Path = REPO) -> dict[str, set[str]]:
    modules = _project_modules(root)
    return {name: _imports(path, modules) - {name} for name, path in modules.items()}


def _upward(graph: Mapping[str, set[str]]) -> list[str]:
    return sorted(
        f"{a} ({LAYERS[_layer(a)][0]}) imports {b} ({LAYERS[_layer(b)][0]})"
        for a, targets in graph.items()
        for b in targets
        if _layer(b) > _layer(a)
    )


def _cycles(graph: Mapping[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    for start in sorted(graph):
        if start in index:
            continue
        work = [(start, iter(sorted(graph[start])))]
        index[start] = low[start] = len(index)
        stack.append(start)
        on_stack.add(start)
        while work:
            node, targets = work[-1]
            advanced = False
            for target in targets:
                if target not in index:
                    index[target] = low[target] = len(index)
                    stack.append(target)
                    on_stack.add(target)
                    work.append((target, iter(sorted(graph[target]))))
                    advanced = True
                    break
                if target in on_stack:
                    low[node] = min(low[node], index[target])
            if advanced:
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1:
                    found.append(sorted(component))
    return found


def test_every_module_is_in_a_layer_and_imports_only_downwards() -> None:
    graph = _graph()
    assert len(graph) > 100  # the walk found the project
    assert _upward(graph) == []


def test_no_import_cycles() -> None:
    assert _cycles(_graph()) == []


def test_the_layer_and_cycle_checks_can_fail(tmp_path: Path) -> None:
    (tmp_path / "monitor" / "engine").mkdir(parents=True)
    (tmp_path / "alerts").mkdir()
    (tmp_path / "monitor" / "engine" / "probe.py").write_text(
        "from support_monitor.alerts.outbox import Outbox\n", encoding="utf-8"
    )
    (tmp_path / "alerts" / "outbox.py").write_text(
        "from support_monitor.monitor.engine import probe\n", encoding="utf-8"
    )
    graph = _graph(tmp_path)
    assert graph == {
        "monitor.engine.probe": {"alerts.outbox"},
        "alerts.outbox": {"monitor.engine.probe"},
    }
    dispatch = LAYERS[4][0]
    assert _upward(graph) == [f"monitor.engine.probe (engine) imports alerts.outbox ({dispatch})"]
    assert _cycles(graph) == [["alerts.outbox", "monitor.engine.probe"]]


def _test_module_imports(root: Path) -> list[str]:
    """Imports of a ``test_*`` module from any module under ``tests/`` or ``bench/``."""
    return [
        f"{path.relative_to(root)}:{node.lineno}: {node.module}"
        for folder in ("tests", "bench")
        for path in sorted((root / folder).rglob("*.py"))
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8")))
        if isinstance(node, ast.ImportFrom)
        and node.module
        and node.module.split(".")[-1].startswith("test_")
    ]


def test_shared_test_code_lives_in_support_modules() -> None:
    """Tests share fixtures and helpers through ``conftest.py`` and support modules, never by
    importing another test module (or, from ``bench/``, a test module)."""
    assert _test_module_imports(REPO) == []


def test_the_test_import_check_can_fail(tmp_path: Path) -> None:
    (tmp_path / "tests").mkdir()
    (tmp_path / "bench").mkdir()
    (tmp_path / "tests" / "test_a.py").write_text(
        "from tests.support import run\nfrom tests.b.test_c import helper\n", encoding="utf-8"
    )
    assert _test_module_imports(tmp_path) == ["tests/test_a.py:2: tests.b.test_c"]
