"""The state topic: one compacted Kafka topic holding the latest state of every partition.

Two records per source partition:

* key ``<topic>/<partition>``: a :class:`PartitionSnapshot` (msgpack): the engine snapshot file
  bytes (``monitor.engine.snapshot``: versioned, checksummed, config shape checked, with the
  partition's offset and its detector suite's state: complaint baselines, threshold hysteresis,
  backlog histories);
* key ``<topic>/<partition>/alerts``: an :class:`AlertRecord` (msgpack): the partition's alert
  state (``alerts.persist``: alerts and what each receiver was told), written with every engine
  record and alone before each notification, so a refused engine record never loses it.

Every record carries the partition's *sequence number* ``seq`` (one counter per partition, over
both kinds, raised by one on every write; the owner writes ``seq`` of the last record it wrote or
loaded plus one), in the value and in the record header ``seq``; engine records also carry the
config-shape fingerprint (``monitor.engine.snapshot.fingerprint``) in the header ``shape``.
Headers are read without decoding the value. Compaction keeps the latest record per key; a
reader takes the last record of each key it wants.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import msgspec
import structlog
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import KafkaError, TopicAlreadyExistsError

from support_monitor.monitor.cluster.settings import ClusterSettings
from support_monitor.monitor.engine.snapshot import SnapshotError

log = structlog.get_logger("support_monitor.cluster.store")

ENVELOPE_VERSION = 1
_READ_TIMEOUT = 30.0
ALERTS_SUFFIX = "/alerts"
"""Key suffix of a partition's alert-state record (topic names cannot hold ``/``)."""


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
    """``alerts.persist.dump`` of the partition's rules and sent records, in records written
    before the alert state had its own record (``None`` now: see :class:`AlertRecord`)."""
    writer: str
    written_at: float
    seq: int = 0
    """The partition's sequence number when written (0: written before it existed)."""
    shape: str = ""
    """Fingerprint of the writer's config shape (empty: written before it existed)."""


class AlertRecord(msgspec.Struct, kw_only=True):
    version: int = ENVELOPE_VERSION
    key: str
    """``<topic>/<partition>`` of the source partition (the record key adds ``/alerts``)."""
    seq: int
    alerts: bytes
    """``alerts.persist.dump`` of the partition's rules and sent records."""
    writer: str
    written_at: float
    pending: list[bytes] = []
    """The notifications not delivered yet when the record was written (``alerts.notify.message``
    JSON, oldest first): the next owner of the partition sends them (absent in older records)."""


@dataclass(frozen=True, slots=True)
class StateRecord:
    """One record to write: key, value and the headers the reader needs without decoding."""

    key: str
    value: bytes
    seq: int
    shape: str | None = None


@dataclass(slots=True)
class StateRead:
    """What :meth:`StateTopic.read_latest` found."""

    records: dict[str, bytes] = field(default_factory=dict)
    """Latest value of each wanted key (absent: none, or a tombstone)."""
    seqs: dict[str, int] = field(default_factory=dict)
    """Header ``seq`` of the latest record of each wanted key that has one."""
    shapes: dict[str, str] = field(default_factory=dict)
    """Header ``shape`` of the latest engine record of *every* key of the topic that has one
    (not only the wanted keys): the shapes the group's state was written under."""


_ENCODER = msgspec.msgpack.Encoder()
_DECODER = msgspec.msgpack.Decoder(PartitionSnapshot)
_ALERTS_DECODER = msgspec.msgpack.Decoder(AlertRecord)


def alerts_key(key: str) -> str:
    return key + ALERTS_SUFFIX


def encode(snap: PartitionSnapshot | AlertRecord) -> bytes:
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


def decode_alerts(data: bytes, key: str) -> AlertRecord:
    """The alert-state record of ``key``; :class:`SnapshotError` when it is not one of ours."""
    try:
        record = _ALERTS_DECODER.decode(data)
    except msgspec.DecodeError as exc:
        raise SnapshotError(f"alert-state record does not decode: {exc}") from None
    if record.version != ENVELOPE_VERSION:
        raise SnapshotError(f"alert-state record version {record.version} is not supported")
    if record.key != key:
        raise SnapshotError(f"alert-state record is for {record.key}, not {key}")
    return record


def _header(headers: Sequence[tuple[str, bytes]] | None, name: str) -> str | None:
    for key, value in headers or ():
        if key == name and value is not None:
            return bytes(value).decode(errors="replace")
    return None


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
            acks="all",
            max_request_size=size,
            compression_type="gzip",
            linger_ms=0,
            **self._options,
        )
        await self._producer.start()
        self._reader = AIOKafkaConsumer(
            group_id=None,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            max_partition_fetch_bytes=size,
            fetch_max_bytes=size,
            **self._options,
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
                self.topic,
                num_partitions=1,
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

    async def write(self, records: Sequence[StateRecord]) -> None:
        """Send the records in order (one partition) and wait for every acknowledgement
        (``acks=all``)."""
        assert self._producer is not None
        sent = []
        for rec in records:
            headers = [("seq", str(rec.seq).encode())]
            if rec.shape is not None:
                headers.append(("shape", rec.shape.encode()))
            sent.append(
                await self._producer.send(
                    self.topic, value=rec.value, key=rec.key.encode(), headers=headers
                )
            )
        for future in sent:
            await future

    async def read_latest(self, keys: set[str]) -> StateRead:
        """The latest record of each of ``keys`` and the shapes of every engine record."""
        assert self._reader is not None
        reader, tp = self._reader, self._tp
        found = StateRead()
        async with self._read_lock, asyncio.timeout(_READ_TIMEOUT):
            end = (await reader.end_offsets([tp]))[tp]
            await reader.seek_to_beginning(tp)
            while await reader.position(tp) < end:
                batch = await reader.getmany(tp, timeout_ms=500)
                for record in batch.get(tp, []):
                    if record.offset >= end:
                        break
                    _keep(found, record, keys)
        return found


def _keep(found: StateRead, record: Any, keys: set[str]) -> None:  # noqa: ANN401 - aiokafka
    """Note one state-topic record (a later record of a key replaces the earlier one)."""
    key = (record.key or b"").decode(errors="replace")
    headers = record.headers
    if not key.endswith(ALERTS_SUFFIX):
        shape = _header(headers, "shape")
        if record.value is None or shape is None:
            found.shapes.pop(key, None)
        else:
            found.shapes[key] = shape
    if key not in keys:
        return
    if record.value is None:
        found.records.pop(key, None)
        found.seqs.pop(key, None)
        return
    found.records[key] = record.value
    seq = _header(headers, "seq")
    if seq is not None and seq.isdigit():
        found.seqs[key] = int(seq)
    else:
        found.seqs.pop(key, None)
