"""Kafka ingest throughput: the daemon's Kafka road against a bare consume-and-decode loop.

N events (bench/gen_events.py's realistic mix, keyed by channel) are produced once with
confluent-kafka to a fresh 4-partition topic on the local broker (deploy/local/kafka.sh). Then,
on that same topic, each with a fresh consumer group:

  (a) bare:   aiokafka ``getmany(max_records=B)`` + ``msgspec`` typed decode of every value;
  (c) bare:   confluent-kafka ``Consumer.consume(num_messages=B)`` + the same decode (librdkafka,
              the fastest client installed; in the dev extra);
  (b) daemon: ``KafkaSource`` (commit per batch, lag, position strings) + ``consume`` +
              ``Pipeline`` (decode, checks, de-duplication) + ``Engine.apply``;
  (d) with ``--quix-python PY``: quixstreams' tumbling and hopping windows on the same topic
              (``bench/quix_windows.py`` run by PY, an interpreter that has quixstreams).

Each is timed from the first record received to the last (connection and group join excluded).

    .venv/bin/python bench/kafka_ingest.py [--events 200000] [--bootstrap 127.0.0.1:19092]
                                           [--batch 2000] [--partitions 4] [--quix-python PY]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import msgspec
from aiokafka import AIOKafkaConsumer
from confluent_kafka import Consumer, Producer
from confluent_kafka.admin import AdminClient, NewTopic

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.gen_events import generate
from support_monitor.monitor.consume import consume
from support_monitor.monitor.deadletter import MemoryDeadLetters
from support_monitor.monitor.engine.engine import Engine
from support_monitor.monitor.events import Event
from support_monitor.monitor.pipeline import Delivery, Pipeline
from support_monitor.monitor.sources.kafka import KafkaSource
from support_monitor.monitor.sources.settings import KafkaSettings
from support_monitor.monitor.stats import DaemonStats
from tests.support import settings as bench_settings

# gen_events dates its events from 2026-03-02; the live pipeline would reject them as too old
OLD_EVENTS_OK = {"max_event_age": "36500d"}


def produce(bootstrap: str, topic: str, partitions: int, count: int) -> int:

    admin = AdminClient({"bootstrap.servers": bootstrap})
    admin.create_topics([NewTopic(topic, partitions, 1)])[topic].result(30)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "events.jsonl"
        generate(path, count)
        lines = path.read_bytes().splitlines()
    producer = Producer(
        {
            "bootstrap.servers": bootstrap,
            "linger.ms": 20,
            "batch.num.messages": 10000,
            "queue.buffering.max.messages": 1_000_000,
        }
    )
    for line in lines:
        key = json.loads(line)["channel"].encode()
        while True:
            try:
                producer.produce(topic, line, key=key)
                break
            except BufferError:
                producer.poll(0.1)
    producer.flush(60)
    return len(lines)


async def bare(bootstrap: str, topic: str, count: int, batch: int) -> float:

    decoder = msgspec.json.Decoder(Event)
    consumer = AIOKafkaConsumer(
        topic,
        bootstrap_servers=bootstrap,
        group_id=f"bench-bare-{uuid.uuid4().hex[:8]}",
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        max_poll_records=batch,
        fetch_max_bytes=16 * 1024 * 1024,
    )
    await consumer.start()
    try:
        seen = 0
        start = 0.0
        while seen < count:
            records = await consumer.getmany(timeout_ms=500, max_records=batch)
            if records and not start:
                start = time.perf_counter()
            for messages in records.values():
                for message in messages:
                    decoder.decode(message.value)
                    seen += 1
        return time.perf_counter() - start
    finally:
        await consumer.stop()


def bare_confluent(bootstrap: str, topic: str, count: int, batch: int) -> float:
    """(c): librdkafka's consumer, batches of ``batch``, the same typed decode."""
    decoder = msgspec.json.Decoder(Event)
    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": f"bench-rdk-{uuid.uuid4().hex[:8]}",
            "enable.auto.commit": False,
            "auto.offset.reset": "earliest",
        }
    )
    consumer.subscribe([topic])
    try:
        seen = 0
        start = 0.0
        while seen < count:
            messages = consumer.consume(num_messages=batch, timeout=0.5)
            if messages and not start:
                start = time.perf_counter()
            for message in messages:
                if message.error() is None:
                    decoder.decode(message.value())
                    seen += 1
        return time.perf_counter() - start
    finally:
        consumer.close()


class _NoPipeline:
    """Counts deliveries and does nothing else: isolates the source's own cost."""

    def __init__(self, stats: DaemonStats) -> None:
        self.stats = stats

    def register(self, source: str) -> None:
        del source

    def process(self, source: str, _delivery: object) -> None:
        self.stats.duplicates[source] += 1

    def take_deferred(self, source: str | None = None) -> list[object]:
        del source
        return []

    def flush_log(self) -> None:
        pass


async def daemon(
    bootstrap: str, topic: str, count: int, batch: int, *, engine_on: bool = True
) -> float:
    settings = bench_settings(ingest=OLD_EVENTS_OK)
    engine = Engine(settings)
    stats = DaemonStats()
    pipeline: Any = Pipeline(engine, stats, event_clock=False) if engine_on else _NoPipeline(stats)
    kafka = KafkaSettings(
        bootstrap_servers=bootstrap,
        topics=(topic,),
        group_id=f"bench-daemon-{uuid.uuid4().hex[:8]}",
        max_batch=batch,
    )
    source = KafkaSource(kafka, stats)
    sink = MemoryDeadLetters()

    def done() -> int:
        return (
            sum(stats.events.values())
            + sum(stats.rejected.values())
            + sum(stats.duplicates.values())
        )

    async with source:
        task = asyncio.create_task(consume(source, pipeline, sink))
        try:
            while done() == 0:
                if task.done():
                    task.result()  # the consumer failed: say why instead of waiting forever
                await asyncio.sleep(0.001)
            start = time.perf_counter()
            while done() < count:  # noqa: ASYNC110
                await asyncio.sleep(0.001)
            elapsed = time.perf_counter() - start
        finally:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
    rejected = sum(stats.rejected.values())
    if rejected:
        print(f"  (daemon rejected {rejected} events: {dict(stats.rejected)})")
    return elapsed


def pipeline_only(topic: str, count: int, bootstrap: str) -> float:
    """The same events through Pipeline + Engine from memory (no Kafka): the engine's cost."""
    del topic, bootstrap
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "events.jsonl"
        generate(path, count)
        lines = path.read_bytes().splitlines()
    deliveries = [Delivery(line, f"t/0/{i}") for i, line in enumerate(lines)]
    stats = DaemonStats()
    pipeline = Pipeline(Engine(bench_settings(ingest=OLD_EVENTS_OK)), stats, event_clock=False)
    start = time.perf_counter()
    for delivery in deliveries:
        pipeline.process("kafka", delivery)
    return time.perf_counter() - start


def quix(python: str, bootstrap: str, topic: str, count: int, window: str) -> float:
    """(d): seconds quixstreams takes for ``count`` events through one kind of window."""
    script = Path(__file__).resolve().parent / "quix_windows.py"
    command = [python, "-W", "ignore", str(script), bootstrap, topic, str(count), window]
    out = subprocess.run(command, capture_output=True, text=True, check=True, timeout=1800)
    result = json.loads(out.stdout.strip().splitlines()[-1])
    if result["events"] != count:
        raise SystemExit(f"quixstreams saw {result['events']} of {count} events")
    return float(result["seconds"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=200_000)
    parser.add_argument("--bootstrap", default="127.0.0.1:19092")
    parser.add_argument("--batch", type=int, default=2000)
    parser.add_argument("--partitions", type=int, default=4)
    parser.add_argument("--quix-python", help="an interpreter with quixstreams installed")
    args = parser.parse_args()
    topic = f"bench-ingest-{uuid.uuid4().hex[:8]}"
    t0 = time.perf_counter()
    count = produce(args.bootstrap, topic, args.partitions, args.events)
    print(
        f"produced {count} events to {topic} ({args.partitions} partitions) "
        f"in {time.perf_counter() - t0:.1f} s"
    )
    bare_s = asyncio.run(bare(args.bootstrap, topic, count, args.batch))
    rdk_s = bare_confluent(args.bootstrap, topic, count, args.batch)
    daemon_s = asyncio.run(daemon(args.bootstrap, topic, count, args.batch))
    source_s = asyncio.run(daemon(args.bootstrap, topic, count, args.batch, engine_on=False))
    pipeline_s = pipeline_only(topic, count, args.bootstrap)
    windows = ("tumbling", "hopping") if args.quix_python else ()
    quix_s = {w: quix(args.quix_python, args.bootstrap, topic, count, w) for w in windows}
    bare_rate, daemon_rate = count / bare_s, count / daemon_s
    print(f"(a) bare getmany + msgspec decode   : {bare_rate:>10,.0f} events/s ({bare_s:.2f} s)")
    print(
        f"(b) KafkaSource + Pipeline + Engine : {daemon_rate:>10,.0f} events/s ({daemon_s:.2f} s)"
    )
    rdk_rate = count / rdk_s
    print(f"(c) bare confluent-kafka + decode   : {rdk_rate:>10,.0f} events/s ({rdk_s:.2f} s)")
    print(f"ratio daemon / bare aiokafka: {daemon_rate / bare_rate:.2f} (target >= 0.50)")
    print(f"ratio daemon / fastest bare client: {daemon_rate / max(bare_rate, rdk_rate):.2f}")
    for window, seconds in quix_s.items():
        rate = count / seconds
        target = 5 if window == "tumbling" else 10
        print(
            f"(d) quixstreams {window:<8} window   : {rate:>10,.0f} events/s ({seconds:.2f} s); "
            f"daemon / it: {daemon_rate / rate:.1f}x (target >= {target}x)"
        )
    print("breakdown:")
    print(f"  KafkaSource + consume, no pipeline: {count / source_s:>10,.0f} events/s")
    print(f"  Pipeline + Engine alone, in memory: {count / pipeline_s:>10,.0f} events/s")
    per_event = [1e6 * x / count for x in (bare_s, source_s, pipeline_s, daemon_s)]
    print(
        "  microseconds per event: bare {:.2f}, source {:.2f}, pipeline+engine {:.2f}, "
        "daemon {:.2f}".format(*per_event)
    )

    AdminClient({"bootstrap.servers": args.bootstrap}).delete_topics([topic])


if __name__ == "__main__":
    main()
