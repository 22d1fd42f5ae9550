"""Event sources (async context managers): a JSON Lines file, Kafka, MQTT and the built-in
simulator. The public surface is ``__all__``; each name loads its module on first use."""

from __future__ import annotations

from typing import TYPE_CHECKING

from support_monitor.monitor.exports import lazy_exports

if TYPE_CHECKING:
    from support_monitor.monitor.sources.base import BatchSource, Source
    from support_monitor.monitor.sources.build import configured_sources
    from support_monitor.monitor.sources.file import FileSource
    from support_monitor.monitor.sources.kafka import KafkaSource
    from support_monitor.monitor.sources.mqtt import MqttSource
    from support_monitor.monitor.sources.simulator import SimulatorSource

__all__ = [
    "BatchSource",
    "FileSource",
    "KafkaSource",
    "MqttSource",
    "SimulatorSource",
    "Source",
    "configured_sources",
]

__getattr__, __dir__ = lazy_exports(
    __name__,
    {
        "BatchSource": "support_monitor.monitor.sources.base",
        "configured_sources": "support_monitor.monitor.sources.build",
        "FileSource": "support_monitor.monitor.sources.file",
        "KafkaSource": "support_monitor.monitor.sources.kafka",
        "MqttSource": "support_monitor.monitor.sources.mqtt",
        "SimulatorSource": "support_monitor.monitor.sources.simulator",
        "Source": "support_monitor.monitor.sources.base",
    },
)
