"""One ``CollectorRegistry`` per process (or per replay), never the global default registry."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator

from prometheus_client import GCCollector, PlatformCollector, ProcessCollector
from prometheus_client.core import Metric
from prometheus_client.registry import Collector, CollectorRegistry

from support_monitor.alerts.runtime import Alerting
from support_monitor.monitor import catalogue
from support_monitor.monitor.engine.engine import CAPACITY_KINDS, Engine
from support_monitor.monitor.engine.workforce_readout import WORKFORCE_HELP, all_workforce_series
from support_monitor.monitor.exporter import DaemonCollector, EngineCollector
from support_monitor.monitor.stats import DaemonStats


class CapacityCollector(Collector):
    """``support_monitor_capacity_exhausted_total{kind}``: items refused or forgotten because a
    ``limits`` bound was reached, summed over the engines; every kind exported from the start."""

    def __init__(self, engines: Callable[[], Iterable[Engine]]) -> None:
        self._engines = engines

    def collect(self) -> Iterator[Metric]:
        family = catalogue.counter("support_monitor_capacity_exhausted_total")
        totals = dict.fromkeys(CAPACITY_KINDS, 0)
        for engine in self._engines():
            for kind, count in engine.capacity_exhausted.items():
                totals[kind] = totals.get(kind, 0) + count
        for kind, count in totals.items():
            family.add_metric([kind], count)
        yield family


def register_process_collectors(registry: CollectorRegistry) -> None:
    """The standard ``process_*``, ``python_gc_*`` and ``python_info`` families of a live
    daemon (not of a replay, whose printed exposition must not depend on the machine)."""
    ProcessCollector(registry=registry)
    PlatformCollector(registry=registry)
    GCCollector(registry=registry)


def build_registry(
    engine: Engine, stats: DaemonStats, alerting: Alerting, *, process: bool = False
) -> CollectorRegistry:
    """The collectors of one engine; ``process``: also the standard process/Python families."""
    registry = CollectorRegistry(auto_describe=False)
    if process:
        register_process_collectors(registry)
    workforce = (lambda: all_workforce_series(engine), WORKFORCE_HELP)
    registry.register(EngineCollector(engine, [(alerting.series, alerting.help), workforce]))
    registry.register(DaemonCollector(stats))
    registry.register(CapacityCollector(lambda: (engine,)))
    return registry
