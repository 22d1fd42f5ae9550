"""Each package's public surface is its ``__all__`` (as httpx's ``tests/test_exported_members.py``
checks its own): every package lists one, every listed name resolves to an object defined
inside that package, the package's ``dir()`` shows it, and nothing public is left out of it.
The names load lazily: importing a package does not import what it exports."""

from __future__ import annotations

import inspect
import subprocess
import sys
from types import ModuleType

import pytest

from tests.project_walk import walk


def _packages() -> list[ModuleType]:
    return walk(packages_only=True)


def problems(package: ModuleType) -> list[str]:
    """What is wrong with ``package.__all__`` (empty: nothing)."""
    exported = getattr(package, "__all__", None)
    if not exported:
        return [f"{package.__name__}: no __all__"]
    out = []
    if len(set(exported)) != len(exported):
        out.append(f"{package.__name__}: __all__ repeats a name")
    listing = set(dir(package))
    for name in exported:
        if name.startswith("_"):
            out.append(f"{package.__name__}.{name}: private")
            continue
        try:
            value = getattr(package, name)
        except AttributeError:
            out.append(f"{package.__name__}.{name}: does not resolve")
            continue
        home = getattr(value, "__module__", None) if callable(value) else None
        if home is not None and not home.startswith(package.__name__ + "."):
            out.append(f"{package.__name__}.{name}: defined in {home}, outside the package")
        if name not in listing:
            out.append(f"{package.__name__}.{name}: missing from dir()")
    # any other public name set on the package itself (not a submodule) must be listed
    for name, value in vars(package).items():
        if name.startswith("_") or name in exported or name in PLUMBING:
            continue
        if not isinstance(value, ModuleType):
            out.append(f"{package.__name__}.{name}: public but not in __all__")
    return out


PLUMBING = {"annotations", "TYPE_CHECKING", "lazy_exports"}
"""Names every package ``__init__`` imports to build its exports."""


def test_the_walk_finds_every_package() -> None:
    names = {p.__name__ for p in _packages()}
    assert {"support_monitor.monitor.engine", "support_monitor.alerts.notify"} <= names
    assert len(names) >= 9


@pytest.mark.parametrize("package", _packages(), ids=lambda p: p.__name__)
def test_every_package_exports_exactly_its_public_surface(package: ModuleType) -> None:
    assert problems(package) == []


def test_the_check_can_fail() -> None:
    fake = ModuleType("support_monitor.fake")
    fake.__all__ = ["thing", "thing", "_hidden", "ghost", "path"]  # type: ignore[attr-defined]

    def thing() -> None: ...

    thing.__module__ = "support_monitor.fake.mod"
    fake.thing = thing  # type: ignore[attr-defined]
    fake.path = inspect.getfile  # type: ignore[attr-defined] # defined in the stdlib

    def extra() -> None: ...

    extra.__module__ = "support_monitor.fake.mod"
    fake.extra = extra  # type: ignore[attr-defined]
    assert problems(fake) == [
        "support_monitor.fake: __all__ repeats a name",
        "support_monitor.fake._hidden: private",
        "support_monitor.fake.ghost: does not resolve",
        "support_monitor.fake.path: defined in inspect, outside the package",
        "support_monitor.fake.extra: public but not in __all__",
    ]
    assert problems(ModuleType("support_monitor.bare")) == ["support_monitor.bare: no __all__"]


def test_importing_a_package_does_not_load_what_it_exports() -> None:
    code = (
        "import sys\n"
        "import support_monitor.monitor, support_monitor.alerts, support_monitor.detectors\n"
        "import support_monitor.monitor.sources, support_monitor.monitor.engine\n"
        "heavy = ['support_monitor.monitor.daemon', 'support_monitor.alerts.runtime',\n"
        "         'support_monitor.detectors.suite', 'support_monitor.monitor.sources.kafka',\n"
        "         'support_monitor.monitor.engine.engine']\n"
        "print([m for m in heavy if m in sys.modules])\n"
        "from support_monitor.monitor import Settings\n"
        "from support_monitor.alerts import Alerting\n"
        "print(Settings.__module__, Alerting.__module__)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    ).stdout.splitlines()
    assert out == ["[]", "support_monitor.monitor.config support_monitor.alerts.runtime"]
