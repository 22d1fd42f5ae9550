"""Lazy package exports (PEP 562). A package lists its public surface in ``__all__`` and, for
each name, the module that defines it; that module is imported the first time the name is
read, so importing a package, or one small module of it, does not load everything the package
exports (``support_monitor.monitor`` exports the daemon, whose imports reach the whole tree).
Imports nothing of the project."""

from __future__ import annotations

import sys
from importlib import import_module

TYPE_CHECKING = False  # typing's own flag, without importing typing: the console script starts here
if TYPE_CHECKING:
    from collections.abc import Callable, Mapping

__all__ = ["lazy_exports"]


def lazy_exports(
    package: str, where: Mapping[str, str]
) -> tuple[Callable[[str], object], Callable[[], list[str]]]:
    """The ``__getattr__`` and ``__dir__`` of ``package``: ``where`` maps each exported name to
    the module defining it (``module:attribute`` where the module names it otherwise). A name
    read once is kept on the package."""

    def __getattr__(name: str) -> object:  # noqa: N807 - the module hook PEP 562 names
        source = where.get(name)
        if source is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        module, _, attribute = source.partition(":")
        value = getattr(import_module(module), attribute or name)
        setattr(sys.modules[package], name, value)
        return value

    def __dir__() -> list[str]:  # noqa: N807 - the module hook PEP 562 names
        return sorted(set(vars(sys.modules[package])) | set(where))

    return __getattr__, __dir__
