"""Which sources a config asks for. The supervisor enters each one on its exit stack.

Several sources may run at once (simulator, Kafka, MQTT); each gets its own consume task and they
all feed the one engine. A broker source may bring its own dead-letter sink (``dead_letters``:
the Kafka or MQTT dead-letter topic); :func:`dead_letter_sink` picks it, or the daemon's sink.
"""

from __future__ import annotations

from support_monitor.monitor.config import Settings
from support_monitor.monitor.deadletter import DeadLetterSink
from support_monitor.monitor.sources.base import Source
from support_monitor.monitor.stats import DaemonStats


def configured_sources(settings: Settings, stats: DaemonStats) -> list[Source]:
    sources: list[Source] = []
    if settings.sources.simulator_on:
        from support_monitor.monitor.sources.simulator import SimulatorSource  # noqa: PLC0415 - optional part

        sources.append(SimulatorSource(settings.channels, settings.sources.simulator))
    if settings.sources.kafka is not None:
        from support_monitor.monitor.sources.kafka import KafkaSource  # noqa: PLC0415 - only when configured

        sources.append(KafkaSource(settings.sources.kafka, stats))
    if settings.sources.mqtt is not None:
        from support_monitor.monitor.sources.mqtt import MqttSource  # noqa: PLC0415 - only when configured

        sources.append(MqttSource(settings.sources.mqtt, stats))
    return sources


def dead_letter_sink(source: Source, default: DeadLetterSink) -> DeadLetterSink:
    """The sink for ``source``'s rejected deliveries: its own (a dead-letter topic) or ``default``.

    The source opens and closes its own sink (entering/leaving the source does it). A broker
    source is also told which sink it is (``keep_letters_in``), so that it commits an offset or
    acknowledges a message only after that sink stored the letters written before it."""
    own: DeadLetterSink | None = getattr(source, "dead_letters", None)
    sink = default if own is None else own
    keep = getattr(source, "keep_letters_in", None)
    if keep is not None:
        keep(sink)
    return sink
