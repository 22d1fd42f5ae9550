"""One ``CollectorRegistry`` per process (or per replay), never the global default registry."""

from __future__ import annotations

from prometheus_client.registry import CollectorRegistry

from alerts.runtime import Alerting
from monitor.engine.engine import Engine
from monitor.exporter import DaemonCollector, EngineCollector
from monitor.stats import DaemonStats


def build_registry(engine: Engine, stats: DaemonStats, alerting: Alerting) -> CollectorRegistry:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(EngineCollector(engine, [(alerting.series, alerting.help)]))
    registry.register(DaemonCollector(stats))
    return registry
