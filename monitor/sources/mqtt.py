"""MQTT source: QoS 1 subscriptions on a persistent session, acknowledged after apply.

Delivery semantics (at-least-once; see ``docs/sources.md``):

* MQTT 3.1.1, ``clean_session`` False and a stable client id: the broker keeps the session, so
  QoS 1 messages published while the daemon is away are delivered when it comes back.
* Manual acknowledgements: aiomqtt 2.5 has no API for them yet (empicano/aiomqtt#345, PR #346),
  so the source switches them on in the paho-mqtt client it wraps (``manual_ack_set``) and sends
  each PUBACK (``ack(mid, qos)``) only when the consume loop asks for the next message, i.e. after
  the message was applied or dead-lettered. A message not acknowledged when the connection drops
  is redelivered by the broker on the next connection (with the DUP flag); the engine's
  ``event_id`` de-duplication absorbs it.
* Back-pressure: unacknowledged messages count against the broker's in-flight window
  (mosquitto ``max_inflight_messages``), so the broker stops sending while the engine is busy;
  the client buffer is additionally capped at ``max_queued_messages``. What the client
  discards beyond it (a flood of QoS 0 messages fills it) is counted and reported
  (``_Discards``); a discarded QoS 1 message comes again after a reconnect once the buffer is
  drained (persistent session only).
* Each connection uses a fresh client (a stale buffer from a dropped connection is discarded: its
  messages were never acknowledged, so the broker sends them again). Subscriptions are renewed on
  every connection. Reconnects use a capped jittered backoff; ``source_up`` is False meanwhile.

Positions are ``<topic>#<message id>`` (``#`` never occurs in a topic name); QoS 0 messages,
which have no id, are positioned by topic alone.
"""

from __future__ import annotations

import asyncio
import logging
import math
import ssl
import time
from collections.abc import AsyncIterator
from types import TracebackType
from typing import Any, Self

import aiomqtt
import structlog

from support_monitor.monitor.deadletter import Backoff, DeadLetterSink, DurableSink
from support_monitor.monitor.pipeline import Delivery
from support_monitor.monitor.sources.deadletter_sinks import MqttDeadLetters
from support_monitor.monitor.sources.settings import MqttSettings, subscribed_filters
from support_monitor.monitor.stats import DaemonStats

QOS = 1


def tls_context(settings: MqttSettings) -> ssl.SSLContext | None:
    """The TLS context (reads certificate files: call off the event loop)."""
    if not settings.tls:
        return None
    context = ssl.create_default_context(
        cafile=None if settings.ca_file is None else str(settings.ca_file)
    )
    if settings.cert_file is not None and settings.key_file is not None:
        context.load_cert_chain(str(settings.cert_file), str(settings.key_file))
    if settings.tls_insecure:
        context.check_hostname = False
    return context


def connect_options(settings: MqttSettings, context: ssl.SSLContext | None) -> dict[str, Any]:
    """aiomqtt ``Client`` keyword arguments shared by the source and its dead-letter sink."""
    options: dict[str, Any] = {
        "hostname": settings.host,
        "port": settings.port,
        "keepalive": settings.keepalive,
        "timeout": settings.connect_timeout,
    }
    if settings.username is not None:
        options["username"] = settings.username
        if settings.password is not None:
            options["password"] = settings.password.get_secret_value()
    if context is not None:
        options["tls_context"] = context
        if settings.tls_insecure:
            options["tls_insecure"] = True
    return options


def subscription_filters(settings: MqttSettings) -> list[str]:
    """The filters subscribed (``$share/<group>/<filter>`` with ``shared_group``)."""
    return subscribed_filters(settings)


class MqttSource:
    """Subscribes ``settings.topics`` (optionally as a shared subscription).

    ``dead_letters`` is the sink for this source's rejected messages (the dead-letter topic) or
    ``None`` when the daemon's own sink should keep them.
    """

    def __init__(self, settings: MqttSettings, stats: DaemonStats, *, name: str = "mqtt") -> None:
        self.name = name
        self.settings = settings
        self._stats = stats
        self._log = structlog.get_logger("support_monitor.sources.mqtt").bind(source=name)
        self._options: dict[str, Any] | None = None
        self._client: aiomqtt.Client | None = None
        self._up = False
        self.connected_once = False
        """Connected at least once (the session's held messages have started to arrive)."""
        self.last_message = 0.0
        """``time.monotonic()`` when the last message arrived (or the latest connection)."""
        self.receiving = False
        """Connected and subscribed now (between ``_connect`` and leaving its message loop)."""
        self._discards = _Discards(
            stats,
            name,
            settings.max_queued_messages,
            settings.max_queued_bytes,
            persistent=not settings.clean_session,
        )
        self._client_log = logging.Logger(f"mqtt.{name}")  # noqa: LOG001 - see below
        """aiomqtt's and paho's logger for this source's connections: its own object (not in
        ``logging``'s registry, so a second source of the same name has its own filter),
        passing records on to the ``mqtt`` logger."""
        self._client_log.parent = logging.getLogger("mqtt")
        self._client_log.addFilter(self._discards)
        self.dead_letters: MqttDeadLetters | None = None
        self._letter_store: DurableSink | None = None
        if settings.dead_letter_topic is not None:
            self.dead_letters = MqttDeadLetters(
                settings.dead_letter_topic,
                stats,
                name=f"{name}:{settings.dead_letter_topic}",
                source=name,
                client_id=settings.client_id,
                max_bytes=settings.dead_letter_max_bytes,
                reconnect_max_seconds=settings.reconnect_max_seconds,
                close_timeout=settings.close_timeout,
            )
        stats.source_up[name] = False

    async def __aenter__(self) -> Self:
        context = await asyncio.to_thread(tls_context, self.settings)
        self._options = connect_options(self.settings, context)
        if self.dead_letters is not None:
            self.dead_letters.open(self._options)
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        """Disconnect (the session and its unacknowledged messages stay on the broker): bounded."""
        client, self._client = self._client, None
        self._set_up(up=False, quiet=True)
        try:
            if client is not None:
                await self._disconnect(client)
        finally:
            if self.dead_letters is not None:
                await self.dead_letters.close()
            self._log.info("mqtt_closed")

    def backlog_in(self, quiet: float) -> bool:
        """Whether the messages the broker held for the session have arrived: connected now,
        no discarded message owed by the broker (it sends those again on the next connection),
        and no message for ``quiet`` seconds since the connection (the broker sends held
        messages right after it, each as soon as the one before is acknowledged)."""
        return (
            self.receiving
            and not self._discards.owed
            and time.monotonic() - self.last_message >= quiet
        )

    def keep_letters_in(self, sink: DeadLetterSink) -> None:
        """The sink the consume loop writes this source's dead letters to. When it is not the
        source's own topic sink and buffers (:class:`DurableSink`), a message is acknowledged
        only after it has stored what it was given (nothing pending: no wait)."""
        if sink is not self.dead_letters and isinstance(sink, DurableSink):
            self._letter_store = sink

    async def events(self) -> AsyncIterator[Delivery]:
        backoff = Backoff(self.settings.reconnect_max_seconds)
        while True:
            client = await self._connect(backoff)
            owed = False  # left to get discarded messages again: reconnect at once
            try:
                paho = client._client  # noqa: SLF001 - manual acks, see the module docstring
                queue = client._queue  # noqa: SLF001 - to see it drained after discards
                async for message in client.messages:
                    self.last_message = time.monotonic()
                    payload = message.payload
                    raw = payload if isinstance(payload, bytes) else str(payload).encode()
                    mid = message.mid
                    topic = message.topic.value
                    yield Delivery(raw, f"{topic}#{mid}" if mid else topic)
                    # The loop asked for the next message: this one is applied or its letter
                    # written; acknowledge it once that letter is stored.
                    if message.qos > 0:
                        if self._letter_store is not None:
                            await self._letter_store.persist()
                        paho.ack(mid, message.qos)
                    if self._discards.unlogged and queue.empty():
                        self._discards.report()
                        if self._discards.owed:
                            # discarded QoS 1 messages were never acknowledged: the broker sends
                            # them again on the next connection of this persistent session
                            self._log.warning(
                                "mqtt_reconnect_for_discarded", qos1=self._discards.unacked
                            )
                            owed = True
                            break
            except aiomqtt.MqttError as error:
                self._set_up(up=False, error=_said(error))
            except Exception as error:  # noqa: BLE001 - a source never ends the daemon
                self._log.exception("mqtt_source_crashed", error=_said(error))
                self._set_up(up=False, error=_said(error))
            self.receiving = False
            self._client = None
            await self._disconnect(client)
            if not owed:  # a failure: back off before the next attempt
                await backoff.sleep()

    async def _connect(self, backoff: Backoff) -> aiomqtt.Client:
        """A connected client with manual acks and fresh subscriptions; retries until it is."""
        assert self._options is not None, "use MqttSource as an async context manager"
        settings = self.settings
        filters = subscription_filters(settings)
        failures = 0  # in a row: the first is a warning, the rest debug (one line an outage)
        while True:
            self._discards.unacked = 0  # a new connection: the broker sends them again
            client = aiomqtt.Client(
                identifier=settings.client_id,
                clean_session=settings.clean_session,
                max_queued_incoming_messages=settings.max_queued_messages,
                queue_type=self._discards.queue_type,
                logger=self._client_log,
                **self._options,
            )
            # Before connecting: a persistent session's queued messages arrive right after CONNACK.
            client._client.manual_ack_set(on=True)  # noqa: SLF001 - aiomqtt has no API for it (yet)
            try:
                await client.__aenter__()
            except aiomqtt.MqttError as error:
                self._set_up(up=False)
                delay = backoff.next_delay()
                failures += 1
                (self._log.warning if failures == 1 else self._log.debug)(
                    "mqtt_connect_failed",
                    error=_said(error),
                    retry_in=round(delay, 2),
                    host=settings.host,
                    port=settings.port,
                    attempt=failures,
                )
                await asyncio.sleep(delay)
                continue
            self._client = client
            try:
                await client.subscribe([(topic, QOS) for topic in filters])
            except aiomqtt.MqttError as error:
                self._client = None
                await self._disconnect(client)
                delay = backoff.next_delay()
                self._log.warning("mqtt_subscribe_failed", error=_said(error), filters=filters)
                await asyncio.sleep(delay)
                continue
            backoff.reset()
            self.connected_once, self.last_message = True, time.monotonic()
            self.receiving = True
            self._log.info(
                "mqtt_connected",
                filters=filters,
                client_id=settings.client_id,
                failed_attempts=failures,
            )
            self._set_up(up=True, quiet=True)
            return client

    async def _disconnect(self, client: aiomqtt.Client) -> None:
        try:
            async with asyncio.timeout(self.settings.close_timeout):
                await client.__aexit__(None, None, None)
        except (TimeoutError, aiomqtt.MqttError) as error:
            self._log.debug("mqtt_disconnect_failed", error=_said(error))

    def _set_up(self, *, up: bool, quiet: bool = False, error: str | None = None) -> None:
        self._stats.source_up[self.name] = up
        if up == self._up:
            return
        self._up = up
        if quiet:
            return
        if up:
            self._log.info("mqtt_reconnected")
        else:
            self._log.warning("mqtt_disconnected", error=error)


DISCARDED = "Message queue is full. Discarding message."
"""What aiomqtt logs (a warning) for each message it drops because its queue is full."""

DISCARD_LOG_EVERY = 60.0
"""Seconds between two ``mqtt_queue_full`` lines while messages are discarded."""


class _Discards(logging.Filter):
    """The messages aiomqtt discards when its queue is full (``max_queued_messages``, or
    ``max_queued_bytes`` of payload while it holds any): counted
    by the queue itself (``queue_type``: ``support_monitor_source_dropped_total{source}``, and
    the QoS 1 ones apart), aiomqtt's warning per message filtered out, and reported once the
    queue is drained, at most one ``mqtt_queue_full`` line a minute with the count since the
    last one. A discarded QoS 0 message is lost (MQTT's rule); a QoS 1 one was never
    acknowledged, so on a persistent session the source reconnects once its queue is drained
    (``events``) and the broker sends it again. Until then every later QoS 1 message of that
    connection is discarded too, even when the queue has room again: applying (and
    acknowledging) it before the one the broker sends again would reorder a publisher's
    messages (an answer before its contact's queueing)."""

    def __init__(
        self, stats: DaemonStats, source: str, limit: int, max_bytes: int, *, persistent: bool
    ) -> None:
        super().__init__()
        self._stats = stats
        self._source = source
        self._limit = limit
        self._max_bytes = max_bytes
        stats.source_dropped[source] += 0  # exported at 0 from the start
        self.unacked = 0
        """QoS 1 messages discarded since the connection started (the broker resends them)."""
        self.persistent = persistent
        """A persistent session: the broker sends a discarded QoS 1 message again."""
        self.unlogged = 0
        self._logged_at = -math.inf
        self._log = structlog.get_logger("support_monitor.sources.mqtt").bind(source=source)
        discards = self

        class CountingQueue(asyncio.Queue[aiomqtt.Message]):
            def __init__(self, maxsize: int = 0) -> None:
                super().__init__(maxsize)
                self.bytes = 0  # payload bytes held

            def put_nowait(self, item: aiomqtt.Message) -> None:
                size = _payload_size(item)
                if (
                    (item.qos > 0 and discards.owed)  # keep the order: it comes again after it
                    or self.full()
                    or (self.bytes + size > max_bytes and not self.empty())
                ):
                    discards.dropped(item.qos)
                    raise asyncio.QueueFull  # aiomqtt discards the message
                super().put_nowait(item)
                self.bytes += size

            def get_nowait(self) -> aiomqtt.Message:  # get() takes its item through this
                item = super().get_nowait()
                self.bytes -= _payload_size(item)
                return item

        self.queue_type: type[asyncio.Queue[aiomqtt.Message]] = CountingQueue

    @property
    def owed(self) -> bool:
        """QoS 1 messages were discarded on this connection of a persistent session: the
        broker sends them again on the next one."""
        return self.persistent and self.unacked > 0

    def dropped(self, qos: int) -> None:
        self._stats.source_dropped[self._source] += 1
        self.unlogged += 1
        if qos > 0:
            self.unacked += 1

    def report(self) -> None:
        """One ``mqtt_queue_full`` line with the discards since the last one, at most one a
        minute (later ones wait for the next report)."""
        now = time.monotonic()
        if now - self._logged_at < DISCARD_LOG_EVERY:
            return
        self._log.warning(
            "mqtt_queue_full",
            discarded=self.unlogged,
            max_queued_messages=self._limit,
            max_queued_bytes=self._max_bytes,
            consequence="QoS 0 messages lost; QoS 1 ones come again after a reconnect",
        )
        self._logged_at, self.unlogged = now, 0

    def filter(self, record: logging.LogRecord) -> bool:
        return record.msg != DISCARDED  # counted by the queue; reported by ``report``


def _payload_size(message: aiomqtt.Message) -> int:
    payload = message.payload
    return len(payload) if isinstance(payload, bytes | bytearray | str) else 0


def _said(error: BaseException) -> str:
    """An MQTT error for a log line: its type and text. aiomqtt's ``MqttConnectError`` keeps the
    broker's reason code outside ``args``, so ``repr`` gave ``MqttConnectError()`` for a refused
    login; its text is ``[code:135] Not authorized``."""
    text = str(error)
    return f"{type(error).__name__}: {text}" if text else repr(error)
