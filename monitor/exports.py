"""Lazy package exports (PEP 562). A package lists its public surface in ``__all__`` and, for
each name, the module that defines it; that module is imported the first time the name is
read, so importing a package, or one small module of it, does not load everything the package
exports (``support_monitor.monitor`` exports the daemon, whose imports reach the whole tree).
Imports nothing of the project."""

from __future__ import annotations

import sys
from collections.abc import Callable, Mapping
from importlib import import_module

__all__ = ["lazy_exports"]


def lazy_exports(
    package: str, where: Mapping[str, str]
) -> tuple[Callable[[str], object], Callable[[], list[str]]]:
    """The ``__getattr__`` and ``__dir__`` of ``package``: ``where`` maps each exported name to
    the module defining it. A name read once is kept on the package."""

    def __getattr__(name: str) -> object:  # noqa: N807 - the module hook PEP 562 names
        module = where.get(name)
        if module is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(import_module(module), name)
        setattr(sys.modules[package], name, value)
        return value

    def __dir__() -> list[str]:  # noqa: N807 - the module hook PEP 562 names
        return sorted(set(vars(sys.modules[package])) | set(where))

    return __getattr__, __dir__
