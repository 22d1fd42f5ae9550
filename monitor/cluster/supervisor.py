"""The supervisor of a cluster replica: ``support-monitor run`` with ``cluster.enabled``.

It owns one ``AsyncExitStack`` (signal handlers, the dead-letter file, the listener, the node and
its Kafka source) and one ``asyncio.TaskGroup`` of named tasks (consume, clock, state snapshots,
dead-letter flushing, signals, config reload), as ``monitor/daemon.py`` does for a single
engine. A reload (SIGHUP or a changed file) applies to every partition the replica holds, by
the same ``Reloader`` and rules as ``run``. The node
(``monitor/cluster/node.py``) holds the partitions; the collector reads them at scrape time.
"""

from __future__ import annotations

import asyncio
import signal
from collections.abc import Iterator
from contextlib import AsyncExitStack, contextmanager
from pathlib import Path

import structlog
from prometheus_client.registry import CollectorRegistry

from support_monitor.monitor.cluster.collector import ClusterCollector
from support_monitor.monitor.cluster.node import ClusterNode
from support_monitor.monitor.config import Settings
from support_monitor.monitor.exporter import DaemonCollector
from support_monitor.monitor.http import MetricsServer
from support_monitor.monitor.registry import CapacityCollector, register_process_collectors
from support_monitor.monitor.sources.build import configured_sources, dead_letter_sink
from support_monitor.monitor.sources.kafka import KafkaSource
from support_monitor.monitor.stats import DaemonStats
from support_monitor.monitor.supervise import (
    Shutdown,
    open_dead_letters,
    open_reloader,
    start_housekeeping,
)

log = structlog.get_logger("support_monitor.cluster")


@contextmanager
def stop_on_signals(stop: asyncio.Event) -> Iterator[None]:
    """SIGTERM/SIGINT set ``stop`` (a graceful stop: revocation snapshots, leave the group)."""
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    try:
        yield
    finally:
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.remove_signal_handler(sig)


async def run_cluster(
    settings: Settings, listen: str | None = None, config_path: Path | None = None
) -> int:
    """The supervisor of a cluster replica (``support-monitor run`` with ``cluster.enabled``)."""
    stats = DaemonStats()
    [source] = configured_sources(settings, stats)
    assert isinstance(source, KafkaSource)
    node = ClusterNode(settings, stats, source)
    registry = CollectorRegistry(auto_describe=False)
    register_process_collectors(registry)
    registry.register(ClusterCollector(node))
    registry.register(DaemonCollector(stats))
    registry.register(CapacityCollector(lambda: [part.engine for part in node.serving()]))
    address = listen or settings.exporter.listen
    stop = asyncio.Event()
    async with AsyncExitStack() as stack:
        stack.enter_context(stop_on_signals(stop))
        sink, file_sink = open_dead_letters(stack, settings, stats)
        server = await stack.enter_async_context(
            MetricsServer(
                registry,
                address,
                node.ready,
                node.not_ready_reason,
                exporter=settings.exporter,
                listen_key="--listen" if listen else "exporter.listen",
            )
        )
        await stack.enter_async_context(node)
        await stack.enter_async_context(source)
        reloader = await open_reloader(config_path, settings, node.reconfigure)
        assert node.store is not None
        log.info(
            "cluster_started",
            listen=f"{address.rpartition(':')[0]}:{server.port}",
            group_id=source.settings.group_id,
            topics=list(source.settings.topics),
            state_topic=node.store.topic,
            writer=node.writer,
        )
        try:
            async with asyncio.TaskGroup() as tasks:
                tasks.create_task(node.consume(dead_letter_sink(source, sink)), name="consume")
                tasks.create_task(node.tick_forever(), name="clock")
                tasks.create_task(node.snapshot_forever(), name="state:snapshot")
                start_housekeeping(tasks, stop, file_sink, reloader)
        except* Shutdown:
            await node.flush_all("shutdown")
            log.info("cluster_stopped", reason="signal")
    return 0
