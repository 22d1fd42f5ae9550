"""A cluster replica under the one supervisor: ``support-monitor run`` with ``cluster.enabled``.

:class:`ClusterReplica` is what ``monitor.supervise.supervise`` serves in cluster mode, in place
of ``monitor.daemon.SingleEngine``: the same dead-letter sink, listener, config reload,
housekeeping tasks and stop handling, with the node (``monitor/cluster/node.py``: one engine
per assigned partition, ownership, the state topic) and its Kafka source instead of one engine.
Its named tasks: ``consume`` (with ``consume:held`` inside it), ``clock`` and
``state:snapshot``. A reload (SIGHUP or a changed file) applies to every partition the replica
holds, by the same ``Reloader`` and rules as a single engine. The collector reads the
partitions at scrape time.
"""

from __future__ import annotations

import asyncio
from contextlib import AsyncExitStack

from prometheus_client.registry import CollectorRegistry

from support_monitor.monitor.cluster.collector import ClusterCollector
from support_monitor.monitor.cluster.node import ClusterNode
from support_monitor.monitor.config import Settings
from support_monitor.monitor.deadletter import DeadLetterSink
from support_monitor.monitor.exporter import DaemonCollector
from support_monitor.monitor.http import Mounted
from support_monitor.monitor.registry import CapacityCollector, register_process_collectors
from support_monitor.monitor.sources.build import configured_sources, dead_letter_sink
from support_monitor.monitor.sources.kafka import KafkaSource
from support_monitor.monitor.stats import DaemonStats

__all__ = ["ClusterReplica"]


class ClusterReplica:
    """One replica of the consumer group: its node, the Kafka source and what they export."""

    log_name = "support_monitor.cluster"
    started_event = "cluster_started"
    stopped_event = "cluster_stopped"

    def __init__(self, settings: Settings) -> None:
        self.stats = DaemonStats()
        [source] = configured_sources(settings, self.stats)
        assert isinstance(source, KafkaSource)
        self.source = source
        self.node = ClusterNode(settings, self.stats, source)
        self.registry = CollectorRegistry(auto_describe=False)
        register_process_collectors(self.registry)
        self.registry.register(ClusterCollector(self.node))
        self.registry.register(DaemonCollector(self.stats))
        self.registry.register(CapacityCollector(lambda: [p.engine for p in self.node.serving()]))

    def ready(self) -> bool:
        return self.node.ready()

    def not_ready_reason(self) -> str | None:
        return self.node.not_ready_reason()

    async def open_console(self, stack: AsyncExitStack) -> Mounted | None:
        del stack  # the console serves one engine; a replica has none
        return None

    async def open(self, stack: AsyncExitStack) -> None:
        await stack.enter_async_context(self.node)
        await stack.enter_async_context(self.source)

    def reconfigure(self, settings: Settings) -> None:
        self.node.reconfigure(settings)

    def start(self, tasks: asyncio.TaskGroup, sink: DeadLetterSink) -> None:
        tasks.create_task(self.node.consume(dead_letter_sink(self.source, sink)), name="consume")
        tasks.create_task(self.node.tick_forever(), name="clock")
        tasks.create_task(self.node.snapshot_forever(), name="state:snapshot")

    async def save(self, reason: str) -> None:
        await self.node.flush_all(reason)

    def started_fields(self) -> dict[str, object]:
        store = self.node.store
        assert store is not None
        return {
            "group_id": self.source.settings.group_id,
            "topics": list(self.source.settings.topics),
            "state_topic": store.topic,
            "writer": self.node.writer,
        }
