"""Feed real brokers from the built-in simulator (``support-monitor simulate --kafka/--mqtt``).

Live-contact events go to MQTT (as telephony gateways publish them) and tickets, ratings and
complaints to Kafka keyed by channel (as a help desk would); with only one broker given,
everything goes there. Used by the compose stack and by the multi-source tests.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Mapping
from contextlib import AsyncExitStack

import aiomqtt
import msgspec
import structlog
from aiokafka import AIOKafkaProducer

from support_monitor.monitor.config import SimulatorSettings
from support_monitor.monitor.config_channel import ChannelSettings
from support_monitor.monitor.sources.simulator import SimulatorSource


class _Route(msgspec.Struct):
    type: str
    channel: str


_route = msgspec.json.Decoder(_Route)


async def publish_simulation(
    channels: Mapping[str, ChannelSettings],
    sim: SimulatorSettings,
    *,
    kafka: str | None,
    mqtt: tuple[str, int] | None,
    kafka_topic: str = "support-events",
    mqtt_prefix: str = "support/events",
    duration: float | None = None,
    record: list[bytes] | None = None,
) -> Counter[str]:
    """Publish the simulation in (sped-up) real time for ``duration`` simulated seconds
    (``None``: until cancelled). Returns messages sent per broker; ``record`` collects them."""
    if kafka is None and mqtt is None:
        raise ValueError("name at least one of --kafka and --mqtt")
    log = structlog.get_logger("support_monitor.simulate")
    sent: Counter[str] = Counter()
    async with AsyncExitStack() as stack:
        producer = None
        if kafka is not None:
            producer = AIOKafkaProducer(bootstrap_servers=kafka, linger_ms=5, acks="all")
            await producer.start()
            stack.push_async_callback(producer.stop)
        client = None
        if mqtt is not None:
            client = await stack.enter_async_context(
                aiomqtt.Client(mqtt[0], mqtt[1], identifier="support-monitor-simulator")
            )
        source = await stack.enter_async_context(SimulatorSource(channels, sim))
        end = math.inf if duration is None else source.simulated_now() + duration
        log.info("simulate_publishing", kafka=kafka, mqtt=mqtt, duration=duration)
        async for delivery in source.events():
            if source.simulated_now() >= end:
                break
            route = _route.decode(delivery.raw)
            if record is not None:
                record.append(delivery.raw)
            to_mqtt = client is not None and (route.type.startswith("contact.") or producer is None)
            if to_mqtt:
                assert client is not None
                await client.publish(f"{mqtt_prefix}/{route.channel}", delivery.raw, qos=1)
                sent["mqtt"] += 1
            else:
                assert producer is not None
                await producer.send(kafka_topic, delivery.raw, key=route.channel.encode())
                sent["kafka"] += 1
        if producer is not None:
            await producer.flush()
    log.info("simulate_published", **dict(sent))
    return sent
