"""Dead-letter sinks that publish to a broker topic.

A letter counts as stored once the broker has acknowledged it (Kafka ``acks=all``, MQTT
PUBACK); both sinks retry with a capped jittered backoff while the broker is unreachable. The
MQTT sink's ``write`` returns after the PUBACK; the Kafka sink's ``persist`` (called before
every offset commit) waits for the acknowledgements of everything written. So a rejected message
is always kept before its offset is committed (or its MQTT message acknowledged). While a letter
waits, consumption waits with it: nothing is dropped and nothing unbounded piles up. Failures
are logged once per outage and counted (``monitor.deadletter.SinkOutage``).

Kafka letters keep the original bytes as the record value; reason, detail and position travel in
headers. MQTT 3.1.1 has no headers, so an MQTT letter is a JSON object in the same format as the
JSON Lines file sink (``monitor.deadletter``). See ``docs/sources.md``.
"""

from __future__ import annotations

import asyncio
import dataclasses
import time
from typing import Any

import aiomqtt
import msgspec
import structlog
from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaError, MessageSizeTooLargeError

from support_monitor.monitor.deadletter import Backoff, DeadLetter, SinkOutage, letter_record
from support_monitor.monitor.stats import DaemonStats

_DETAIL_MAX = 1000
"""Characters of the reject detail kept in a header."""


def letter_headers(letter: DeadLetter) -> list[tuple[str, bytes]]:
    """Kafka record headers of a dead letter (UTF-8 values)."""
    return [
        ("reason", letter.reason.encode()),
        ("detail", letter.detail[:_DETAIL_MAX].encode()),
        ("source", letter.source.encode()),
        ("position", letter.position.encode()),
        ("rejected_at", f"{time.time():.3f}".encode()),
    ]


class KafkaDeadLetters:
    """Publishes rejected messages to ``topic``; acknowledged by all in-sync replicas.

    ``write`` hands the letter to the producer (which batches) and returns; the Kafka source
    calls :meth:`flush` before every offset commit, which waits for every letter's
    acknowledgement and re-sends (with backoff, until it succeeds) any that failed. So a rejected
    record is stored before its offset is committed, and a burst of bad input does not cost one
    broker round trip per record. At most one fetched batch of letters is pending at a time.

    The record key is the source partition (``topic/partition``), so the letters of one input
    partition land in one partition, in order (a letter re-sent after an error may come later
    than its successors). A letter bigger than ``max_bytes`` is cut to it (header
    ``raw_truncated`` = original length) so that it fits the broker's message size limit. One
    that the topic still refuses as too large (its ``max.message.bytes`` is lower) is halved
    until it fits, down to an empty value, and then logged once (``dead_letter_truncated``);
    when not even the headers fit, it is a failure like any other (retried with backoff).
    """

    def __init__(
        self,
        topic: str,
        stats: DaemonStats,
        *,
        name: str,
        source: str,
        max_bytes: int,
        reconnect_max_seconds: float,
        close_timeout: float,
    ) -> None:
        self.topic = topic
        self.name = name
        self._max_bytes = max_bytes
        self._reconnect_max = reconnect_max_seconds
        self._close_timeout = close_timeout
        self._options: dict[str, Any] | None = None
        self._producer: AIOKafkaProducer | None = None
        self._pending: list[tuple[_Record, asyncio.Future[Any], int]] = []
        self._generation = 0  # of the producer: counted up by each restart
        self._log = structlog.get_logger("support_monitor.sources.dead_letters").bind(
            sink=name, topic=topic
        )
        self._outage = SinkOutage(self._log, stats, name, source=source)

    def open(self, client_options: dict[str, Any]) -> None:
        """Remember the connection options; the producer connects on the first letter."""
        self._options = client_options

    async def close(self) -> None:
        """Flush (bounded by ``close_timeout``) and stop the producer."""
        try:
            async with asyncio.timeout(self._close_timeout):
                await self.flush()
        except TimeoutError:
            self._log.error("dead_letter_flush_timeout", pending=len(self._pending))
        producer, self._producer = self._producer, None
        if producer is not None:
            await _stop_quietly(producer, self._close_timeout)

    @property
    def pending(self) -> int:
        return len(self._pending)

    async def persist(self) -> None:
        """The commit barrier: every letter written so far acknowledged (see :meth:`flush`)."""
        await self.flush()

    async def write(self, letter: DeadLetter) -> None:
        record = self._record(letter)
        try:
            producer = await self._started()
            future = await producer.send(
                self.topic, record.value, key=record.key, headers=record.headers
            )
        except KafkaError:
            await self._send_reliably(record)
            return
        # its error is read here too: a letter still pending when the sink closes must not be
        # reported again by asyncio as "exception was never retrieved" when it is collected
        future.add_done_callback(_read_error)
        self._pending.append((record, future, self._generation))

    async def flush(self) -> None:
        """Wait until every written letter is acknowledged; re-send the ones that failed.

        A batch the broker refused leaves a gap in the idempotent producer's sequence: every
        later send on that producer fails (``OutOfOrderSequenceNumber``). So the first failed
        letter sent on the current producer restarts it before its re-send; the letters in
        flight behind it fail with the old producer and are re-sent on the new one."""
        while self._pending:
            record, future, generation = self._pending[0]
            try:
                await future
            except KafkaError:
                if generation == self._generation:
                    await self._restart()
                await self._send_reliably(record)
            else:
                self._outage.stored()
            self._pending.pop(0)

    def _record(self, letter: DeadLetter) -> _Record:
        raw = letter.raw
        headers = letter_headers(letter)
        if len(raw) > self._max_bytes:
            headers.append(("raw_truncated", str(len(raw)).encode()))
            raw = raw[: self._max_bytes]
        if letter.key is not None:
            headers.append(("original_key", letter.key))
        key = letter.position.rpartition("/")[0].encode() or None
        return _Record(raw, key, headers, letter.position, len(letter.raw))

    async def _started(self) -> AIOKafkaProducer:
        if self._producer is not None:
            return self._producer
        assert self._options is not None, "open() the sink before writing"
        producer = AIOKafkaProducer(
            **self._options,
            acks="all",
            enable_idempotence=True,
            max_request_size=self._max_bytes + 64 * 1024,
            request_timeout_ms=30_000,
            linger_ms=5,
        )
        try:
            await producer.start()
        except BaseException:
            await _stop_quietly(producer, self._close_timeout)
            raise
        self._producer = producer
        return producer

    async def _send_reliably(self, record: _Record) -> None:
        """One letter, acknowledged, retried with backoff for as long as it takes."""
        backoff = Backoff(self._reconnect_max)
        whole = len(record.value)
        while True:
            try:
                producer = await self._started()
                await producer.send_and_wait(
                    self.topic, record.value, key=record.key, headers=record.headers
                )
            except MessageSizeTooLargeError as exc:
                # a fresh producer: the refused record left a gap in the idempotent sequence
                await self._restart()
                if record.value:
                    # the topic's limit is lower than ours: keep what fits rather than block
                    record = record.cut()
                    continue
                self._outage.failed(record.position, exc)  # not even the headers fit
                await backoff.sleep()
                continue
            except KafkaError as exc:
                self._outage.failed(record.position, exc)
                await self._restart()
                await backoff.sleep()
                continue
            if len(record.value) < whole:
                self._log.warning(
                    "dead_letter_truncated",
                    position=record.position,
                    size=len(record.value),
                    original_size=record.original_size,
                )
            self._outage.stored()
            return

    async def _restart(self) -> None:
        """Stop the producer; the next send starts a new one."""
        producer, self._producer = self._producer, None
        self._generation += 1
        if producer is not None:
            await _stop_quietly(producer, self._close_timeout)


class _Record:
    __slots__ = ("headers", "key", "original_size", "position", "value")

    def __init__(
        self,
        value: bytes,
        key: bytes | None,
        headers: list[tuple[str, bytes]],
        position: str,
        original_size: int,
    ) -> None:
        self.value = value
        self.key = key
        self.headers = headers
        self.position = position
        self.original_size = original_size

    def cut(self) -> _Record:
        """This letter with the first half of its value (header ``raw_truncated``)."""
        headers = [h for h in self.headers if h[0] != "raw_truncated"]
        headers.append(("raw_truncated", str(self.original_size).encode()))
        value = self.value[: len(self.value) // 2]
        return _Record(value, self.key, headers, self.position, self.original_size)


def _read_error(future: asyncio.Future[Any]) -> None:
    if not future.cancelled():
        future.exception()


async def _stop_quietly(producer: AIOKafkaProducer, seconds: float) -> None:
    try:
        async with asyncio.timeout(seconds):
            await producer.stop()
    except (TimeoutError, KafkaError):
        pass


class MqttDeadLetters:
    """Publishes rejected messages (JSON records) to ``topic`` with QoS 1 on a connection of its
    own (client id ``<client_id>-dead-letters``, clean session), so that a letter can be written
    while the consuming connection is down or busy. ``write`` returns after the broker's PUBACK.

    A record longer than ``max_bytes`` has its ``raw`` cut until it fits (``raw_truncated`` =
    the original length), so that it fits the broker's message size limit and MQTT's own
    (268,435,455 bytes): an MQTT message may be far larger than a Kafka record, and its JSON
    record up to six times larger again (control bytes are escaped)."""

    def __init__(
        self,
        topic: str,
        stats: DaemonStats,
        *,
        name: str,
        source: str,
        client_id: str,
        max_bytes: int,
        reconnect_max_seconds: float,
        close_timeout: float,
    ) -> None:
        self.topic = topic
        self.name = name
        self._max_bytes = max_bytes
        self._client_id = f"{client_id}-dead-letters"
        self._connect: dict[str, Any] | None = None
        self._reconnect_max = reconnect_max_seconds
        self._close_timeout = close_timeout
        self._client: aiomqtt.Client | None = None
        self._encoder = msgspec.json.Encoder()
        self._log = structlog.get_logger("support_monitor.sources.dead_letters").bind(
            sink=name, topic=topic
        )
        self._outage = SinkOutage(self._log, stats, name, source=source)

    def open(self, connect: dict[str, Any]) -> None:
        """Connection options (host, port, credentials, TLS context); connects on first use."""
        self._connect = connect

    async def close(self) -> None:
        client, self._client = self._client, None
        if client is not None:
            await _disconnect_quietly(client, self._close_timeout)

    def payload(self, letter: DeadLetter) -> bytes:
        """The letter's JSON record, its ``raw`` cut (``raw_truncated``) to fit ``max_bytes``:
        first to ``max_bytes`` bytes, then by the share the record is still over; a cut never
        splits a UTF-8 character of a text letter (it stays ``raw``, not ``raw_base64``)."""
        raw = letter.raw
        keep = min(len(raw), self._max_bytes)
        while True:
            cut = dataclasses.replace(letter, raw=_prefix(raw, keep))
            record = letter_record(cut)
            if keep < len(raw):
                record["raw_truncated"] = len(raw)
            payload = self._encoder.encode(record)
            if len(payload) <= self._max_bytes or keep == 0:
                return payload
            # shrink by the share the record is over, and a little more (escapes vary)
            keep = min(keep - 1, int(keep * self._max_bytes / len(payload) * 0.95))

    async def write(self, letter: DeadLetter) -> None:
        payload = self.payload(letter)
        backoff = Backoff(self._reconnect_max)
        while True:
            try:
                if self._client is None:
                    assert self._connect is not None, "open() the sink before writing"
                    client = aiomqtt.Client(
                        identifier=self._client_id, clean_session=True, **self._connect
                    )
                    await client.__aenter__()
                    self._client = client
                await self._client.publish(self.topic, payload, qos=1)
            except (aiomqtt.MqttError, ValueError) as exc:  # ValueError: paho refused the size
                self._outage.failed(letter.position, exc)
                broken, self._client = self._client, None
                if broken is not None:
                    await _disconnect_quietly(broken, self._close_timeout)
                await backoff.sleep()
                continue
            self._outage.stored()
            return

    async def persist(self) -> None:
        """Nothing to wait for: ``write`` returns after the broker's PUBACK."""


async def _disconnect_quietly(client: aiomqtt.Client, seconds: float) -> None:
    try:
        async with asyncio.timeout(seconds):
            await client.__aexit__(None, None, None)
    except (TimeoutError, aiomqtt.MqttError):
        pass


def _prefix(raw: bytes, size: int) -> bytes:
    """The first ``size`` bytes of ``raw``, one to three fewer when that would split a UTF-8
    character of a text ``raw`` (binary input is cut where it is)."""
    if size >= len(raw):
        return raw
    head = raw[:size]
    for back in range(4):
        try:
            head[: size - back].decode("utf-8")
        except UnicodeDecodeError:
            continue
        return head[: size - back]
    return head
