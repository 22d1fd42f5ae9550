"""Durability and scale-out: engine snapshots kept with the offsets they reflect (state dir), and
cluster mode. The public surface is ``__all__``; each name loads its module on first use."""

from __future__ import annotations

from typing import TYPE_CHECKING

from support_monitor.monitor.exports import lazy_exports

if TYPE_CHECKING:
    from support_monitor.monitor.cluster.durable import Durability
    from support_monitor.monitor.cluster.node import ClusterNode
    from support_monitor.monitor.cluster.supervisor import ClusterReplica

__all__ = ["ClusterNode", "ClusterReplica", "Durability"]

__getattr__, __dir__ = lazy_exports(
    __name__,
    {
        "ClusterNode": "support_monitor.monitor.cluster.node",
        "ClusterReplica": "support_monitor.monitor.cluster.supervisor",
        "Durability": "support_monitor.monitor.cluster.durable",
    },
)
