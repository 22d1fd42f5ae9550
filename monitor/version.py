"""The installed version, read once from the package metadata (written only in pyproject.toml).
Imports nothing of the project."""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

__all__ = ["VERSION"]

try:
    VERSION = version("support-monitor")
except PackageNotFoundError:  # imported from a checkout that was never installed
    VERSION = "0+unknown"
