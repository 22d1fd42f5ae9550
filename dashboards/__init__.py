"""Grafana dashboards as code (grafana-foundation-sdk). The public surface is ``__all__``; each
name loads its module on first use."""

from __future__ import annotations

from typing import TYPE_CHECKING

from support_monitor.monitor.exports import lazy_exports

if TYPE_CHECKING:
    from support_monitor.dashboards.build import build_all, main, write_all

__all__ = ["build_all", "main", "write_all"]

__getattr__, __dir__ = lazy_exports(
    __name__,
    {
        "build_all": "support_monitor.dashboards.build",
        "main": "support_monitor.dashboards.build",
        "write_all": "support_monitor.dashboards.build",
    },
)
