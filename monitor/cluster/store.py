"""The state topic: one compacted Kafka topic holding the latest snapshot of every partition.

Record key ``<topic>/<partition>`` (the source partition), value a :class:`PartitionSnapshot`
(msgpack): the engine snapshot file bytes (``monitor.engine.snapshot``: versioned, checksummed,
config shape checked, with the partition's offset and its detector suite's state: complaint
baselines, threshold hysteresis, backlog histories) and the partition's alert state
(``alerts.persist``: alerts and what each receiver was told). Compaction keeps the latest record
per key; a reader takes the last record of each key it wants.
"""

from __future__ import annotations

import asyncio
from typing import Any

import msgspec
import structlog
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import KafkaError, TopicAlreadyExistsError

from monitor.cluster.settings import ClusterSettings
from monitor.engine.snapshot import SnapshotError

log = structlog.get_logger("support_monitor.cluster.store")

ENVELOPE_VERSION = 1
_READ_TIMEOUT = 30.0


class PartitionSnapshot(msgspec.Struct, kw_only=True):
    version: int = ENVELOPE_VERSION
    key: str
    """``<topic>/<partition>`` of the source partition (also the record key)."""
    offset: int
    """Next offset of the partition the state reflects (also inside ``engine``)."""
    engine: bytes
    """A ``monitor.engine.snapshot`` file: its own header, checksum and offsets, and the
    partition's detector state (``Snapshot.detectors``)."""
    alerts: bytes | None
    """``alerts.persist.dump`` of the partition's rules and sent records."""
    writer: str
    written_at: float


_ENCODER = msgspec.msgpack.Encoder()
_DECODER = msgspec.msgpack.Decoder(PartitionSnapshot)


def encode(snap: PartitionSnapshot) -> bytes:
    return _ENCODER.encode(snap)


def decode(data: bytes, key: str) -> PartitionSnapshot:
    """The envelope; :class:`SnapshotError` when it is not one of ours for ``key``."""
    try:
        snap = _DECODER.decode(data)
    except msgspec.DecodeError as exc:
        raise SnapshotError(f"state record does not decode: {exc}") from None
    if snap.version != ENVELOPE_VERSION:
        raise SnapshotError(f"state record version {snap.version} is not supported")
    if snap.key != key:
        raise SnapshotError(f"state record is for {snap.key}, not {key}")
    return snap


def state_topic_name(cluster: ClusterSettings, group_id: str) -> str:
    return cluster.state_topic or f"{group_id}.state"


class StateTopic:
    """Writer and reader of the state topic (created compacted when missing)."""

    def __init__(self, topic: str, cluster: ClusterSettings, options: dict[str, Any]) -> None:
        self.topic = topic
        self._cluster = cluster
        self._options = options
        self._producer: AIOKafkaProducer | None = None
        self._reader: AIOKafkaConsumer | None = None
        self._tp = TopicPartition(topic, 0)
        self._read_lock = asyncio.Lock()

    async def open(self) -> None:
        await self._ensure_topic()
        size = self._cluster.max_snapshot_bytes
        self._producer = AIOKafkaProducer(
            acks="all", max_request_size=size, compression_type="gzip",
            linger_ms=0, **self._options,
        )
        await self._producer.start()
        self._reader = AIOKafkaConsumer(
            group_id=None, enable_auto_commit=False, auto_offset_reset="earliest",
            max_partition_fetch_bytes=size, fetch_max_bytes=size, **self._options,
        )
        await self._reader.start()
        self._reader.assign([self._tp])

    async def close(self) -> None:
        for client in (self._producer, self._reader):
            if client is None:
                continue
            try:
                async with asyncio.timeout(10):
                    await client.stop()
            except (TimeoutError, KafkaError, OSError) as error:
                log.warning("state_topic_close_failed", error=repr(error))
        self._producer = self._reader = None

    async def _ensure_topic(self) -> None:
        admin = AIOKafkaAdminClient(**self._options)
        await admin.start()
        try:
            topic = NewTopic(
                self.topic, num_partitions=1,
                replication_factor=self._cluster.state_topic_replication,
                topic_configs={
                    "cleanup.policy": "compact",
                    "max.message.bytes": str(self._cluster.max_snapshot_bytes),
                },
            )
            try:
                await admin.create_topics([topic])
                log.info("state_topic_created", topic=self.topic)
            except TopicAlreadyExistsError:
                pass
        finally:
            await admin.close()

    async def write(self, key: str, data: bytes) -> None:
        """Send and wait for the broker's acknowledgement (``acks=all``)."""
        assert self._producer is not None
        await self._producer.send_and_wait(self.topic, value=data, key=key.encode())

    async def read_latest(self, keys: set[str]) -> dict[str, bytes]:
        """The latest record of each of ``keys`` (absent: none, or a tombstone)."""
        assert self._reader is not None
        reader, tp = self._reader, self._tp
        found: dict[str, bytes] = {}
        async with self._read_lock, asyncio.timeout(_READ_TIMEOUT):
            end = (await reader.end_offsets([tp]))[tp]
            await reader.seek_to_beginning(tp)
            while await reader.position(tp) < end:
                batch = await reader.getmany(tp, timeout_ms=500)
                for record in batch.get(tp, []):
                    if record.offset >= end:
                        break
                    key = (record.key or b"").decode(errors="replace")
                    if key not in keys:
                        continue
                    if record.value is None:
                        found.pop(key, None)
                    else:
                        found[key] = record.value
        return found
