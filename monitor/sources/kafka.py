"""Kafka source: a consumer group member that commits offsets only after the events were applied.

Delivery semantics (at-least-once; see ``docs/sources.md``):

* Records are fetched in bounded batches (``getmany(max_records=max_batch)``); the client keeps at
  most one fetch response per partition buffered (``max_partition_fetch_bytes``,
  ``fetch_max_bytes``), so a slow engine slows fetching instead of filling memory.
* Auto-commit is off. A record counts as *done* once the consume loop asks for the next one: by
  then it was applied or its dead letter was written (the loop awaits the sink). Offsets of done
  records are committed when the loop asks for the record after a batch's last one, on partition
  revocation (rebalance) and on close. A crash redelivers at most the records since the last
  commit; the engine's ``event_id`` de-duplication absorbs them within its window.
* After a revocation the rest of the current batch is abandoned (those records are fetched again
  from the committed offset by whoever owns the partition next).
* Broker outages: the client reconnects by itself; the source probes the cluster when idle,
  reports ``source_up`` False while it is unreachable (``/readyz`` fails), and recreates the
  consumer with a capped jittered backoff when it fails outright. Nothing here ends the daemon.

Positions are ``topic/partition/offset``.

State mode (``resume_from``, used when the engine state is kept in snapshots, see
``docs/scale-out.md``): the snapshot's offsets are authoritative. On every assignment each
partition is sought to the offset the engine state reflects (the snapshot's, then whatever was
applied since), or to the beginning when the state holds nothing of it, so the group's committed
offsets are ignored on start (they are still committed, for lag tools). ``caught_up`` is set once
every assigned partition was read up to the end it had at assignment.

Cluster mode (``use_hooks``, see ``monitor/cluster/node.py``): state mode per partition. On
assignment the hooks say where each partition's state resumes (a snapshot's offset, or ``None``:
the beginning); each partition is reported caught up on its own; on revocation the applied
offsets of the revoked partitions are committed, then the hooks flush their state (with the
offsets it reflects) before the listener returns. The state's offsets, not the committed ones,
decide where a new owner resumes, so a crash between the two loses nothing.
"""

from __future__ import annotations

import asyncio
import logging
import ssl
import time
from collections.abc import AsyncIterator, Coroutine, Iterable, Mapping
from types import TracebackType
from typing import Any, Protocol, Self

import structlog
from aiokafka import AIOKafkaConsumer, ConsumerRebalanceListener, TopicPartition
from aiokafka.errors import CommitFailedError, IllegalStateError, KafkaError
from aiokafka.helpers import create_ssl_context

from support_monitor.monitor.deadletter import Backoff, DeadLetterSink, DurableSink
from support_monitor.monitor.pipeline import Delivery
from support_monitor.monitor.sources.deadletter_sinks import KafkaDeadLetters
from support_monitor.monitor.sources.settings import KafkaSettings
from support_monitor.monitor.stats import DaemonStats

_PROBE_INTERVAL = 5.0
"""Seconds between connection probes while the source is idle and the broker was reachable."""
_TOPICS_SAID_AFTER = 5.0
"""Seconds a consumer start may wait for its topics' metadata before the missing ones are said."""
_LIBRARY_LEVELS = {
    "debug": logging.DEBUG,
    "info": logging.INFO,
    "warning": logging.WARNING,
    "error": logging.ERROR,
    "critical": logging.CRITICAL,
}


def ssl_context(settings: KafkaSettings) -> ssl.SSLContext | None:
    """The TLS context for SSL / SASL_SSL (reads certificate files: call off the event loop)."""
    if not settings.security_protocol.endswith("SSL"):
        return None
    password = settings.ssl_keyfile_password
    context: ssl.SSLContext = create_ssl_context(
        cafile=settings.ssl_cafile,
        certfile=settings.ssl_certfile,
        keyfile=settings.ssl_keyfile,
        password=None if password is None else password.get_secret_value(),
    )
    context.check_hostname = settings.ssl_check_hostname
    return context


def client_options(settings: KafkaSettings, context: ssl.SSLContext | None) -> dict[str, Any]:
    """Connection keyword arguments shared by the consumer and the dead-letter producer."""
    options: dict[str, Any] = {
        "bootstrap_servers": settings.bootstrap_servers,
        "client_id": settings.client_id,
        "security_protocol": settings.security_protocol,
        "retry_backoff_ms": 250,
        "metadata_max_age_ms": 60_000,
    }
    if context is not None:
        options["ssl_context"] = context
    if settings.sasl_mechanism is not None:
        assert settings.sasl_password is not None  # checked by KafkaSettings
        options["sasl_mechanism"] = settings.sasl_mechanism
        options["sasl_plain_username"] = settings.sasl_username
        options["sasl_plain_password"] = settings.sasl_password.get_secret_value()
    return options


class PartitionHooks(Protocol):
    """Cluster mode: per-partition state kept by the caller (one engine per partition)."""

    async def assigned(self, assigned: set[TopicPartition]) -> dict[TopicPartition, int | None]:
        """Load the partitions' state; the offset each resumes at (``None``: the beginning)."""
        ...

    async def revoked(
        self, revoked: set[TopicPartition], offsets: dict[TopicPartition, int]
    ) -> None:
        """Flush the partitions' state, which reflects every record before ``offsets``."""
        ...

    def caught_up(self, tp: TopicPartition) -> None:
        """The partition was read up to the end it had at assignment."""
        ...

    def withheld(self) -> set[TopicPartition]:
        """Assigned partitions not to be served: paused (not fetched, never committed)."""
        ...


class _Rebalance(ConsumerRebalanceListener):  # type: ignore[misc] # aiokafka is untyped
    def __init__(self, source: KafkaSource, consumer: AIOKafkaConsumer) -> None:
        self._source = source
        self._consumer = consumer  # the first assignment comes while start() still runs

    async def on_partitions_revoked(self, revoked: Iterable[TopicPartition]) -> None:
        await self._source.partitions_revoked(set(revoked))

    async def on_partitions_assigned(self, assigned: Iterable[TopicPartition]) -> None:
        self._source.partitions_assigned(set(assigned))
        await self._source.seek_to_state(self._consumer, set(assigned))


class KafkaSource:
    """Consumes ``settings.topics`` as member of ``settings.group_id``.

    ``dead_letters`` is the sink for this source's rejected records (the dead-letter topic) or
    ``None`` when the daemon's own sink should keep them.
    """

    def __init__(self, settings: KafkaSettings, stats: DaemonStats, *, name: str = "kafka") -> None:
        self.name = name
        self.settings = settings
        self._stats = stats
        self._log = structlog.get_logger("support_monitor.sources.kafka").bind(source=name)
        self._options: dict[str, Any] | None = None
        self._consumer: AIOKafkaConsumer | None = None
        self._applied: dict[TopicPartition, int] = {}
        """Next offset per partition whose records before it are all applied (commit these)."""
        self._committed: dict[TopicPartition, int] = {}
        self._epoch = 0
        """Bumped on every revocation: a batch fetched under an older epoch is abandoned."""
        self._state_offsets: dict[TopicPartition, int] | None = None
        """State mode: next offset per partition reflected by the engine state (kept across
        consumer restarts and revocations, unlike ``_applied``)."""
        self._catch_up_to: dict[TopicPartition, int] = {}
        self.caught_up = asyncio.Event()
        self.assigned_once = False
        """The group assigned partitions at least once (their ends are then known)."""
        self.hooks: PartitionHooks | None = None
        self._up = False
        self._next_probe = 0.0
        self._probe_backoff = Backoff(settings.reconnect_max_seconds)
        self._missing_said = False
        """``kafka_topics_missing`` was logged and no start has found every topic since."""
        self._dead_letter_topic_seen = False
        """The cluster had the dead-letter topic at a connection (then it is not checked again)."""
        self.dead_letters: KafkaDeadLetters | None = None
        self._letter_store: DurableSink | None = None
        if settings.dead_letter_topic is not None:
            self.dead_letters = KafkaDeadLetters(
                settings.dead_letter_topic,
                stats,
                name=f"{name}:{settings.dead_letter_topic}",
                source=name,
                max_bytes=settings.dead_letter_max_bytes,
                reconnect_max_seconds=settings.reconnect_max_seconds,
                close_timeout=settings.close_timeout,
            )
        stats.source_up[name] = False

    # ------------------------------------------------------------------ lifecycle

    async def __aenter__(self) -> Self:
        logging.getLogger("aiokafka").setLevel(_LIBRARY_LEVELS[self.settings.library_log_level])
        context = await asyncio.to_thread(ssl_context, self.settings)
        self._options = client_options(self.settings, context)
        if self.dead_letters is not None:
            self.dead_letters.open(self._options)
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        """Commit what was applied, leave the group, stop the dead-letter producer: bounded."""
        consumer, self._consumer = self._consumer, None
        self._set_up(up=False, quiet=True)
        try:
            if consumer is not None:
                await self._stop(consumer, commit=True, closing=True)
        finally:
            if self.dead_letters is not None:
                await self.dead_letters.close()
            self._log.info("kafka_closed", committed=_offsets(self._committed))

    def keep_letters_in(self, sink: DeadLetterSink) -> None:
        """The sink the consume loop writes this source's dead letters to. When it is not the
        source's own topic sink and buffers (:class:`DurableSink`), every offset commit first
        waits until it has stored what it was given."""
        if sink is not self.dead_letters and isinstance(sink, DurableSink):
            self._letter_store = sink

    # ------------------------------------------------------------------ deliveries

    async def events(self) -> AsyncIterator[Delivery]:
        """One delivery at a time. Once the loop asks for the next one, this one is applied (or
        dead-lettered) and its offset may be committed; after a revocation the rest of the
        fetch is abandoned (the new owner gets it)."""
        applied = self._applied
        async for tp, records, epoch in self._fetches():
            prefix = f"{tp.topic}/{tp.partition}/"
            for record in records:
                yield Delivery(record.value or b"", prefix + str(record.offset), record.key)
                # The loop asked for the next delivery: this one is applied.
                if self._epoch != epoch:
                    break
                applied[tp] = record.offset + 1

    async def batches(self) -> AsyncIterator[list[Delivery]]:
        """One partition's records of a fetch at a time (what ``consume`` iterates: one await
        per batch instead of one per record, the same cost argument as the file source). Once
        the loop asks for the next batch, every record of this one is applied (or
        dead-lettered) and the offset after its last record may be committed. If the
        partitions were revoked meanwhile (only possible while a dead letter was being
        stored), the batch is not marked applied and the rest of the fetch is abandoned: the
        new owner gets those records again, and de-duplication absorbs any this engine applied
        (with one engine per daemon, the new owner is this same consumer)."""
        applied = self._applied
        async for tp, records, epoch in self._fetches():
            prefix = f"{tp.topic}/{tp.partition}/"
            yield [
                Delivery(record.value or b"", prefix + str(record.offset), record.key)
                for record in records
            ]
            if self._epoch == epoch:
                applied[tp] = records[-1].offset + 1

    async def _fetches(  # noqa: C901 - one hot loop, kept flat
        self,
    ) -> AsyncIterator[tuple[TopicPartition, list[Any], int]]:
        """(partition, its records of one fetch, the revocation epoch of the fetch), as long as
        the epoch holds; then commit and update the lag once the fetch is done. Reconnects
        after a failure (one log line each, with backoff)."""
        settings = self.settings
        max_records = settings.max_batch
        timeout_ms = max(1, int(settings.poll_timeout * 1000))
        backoff = Backoff(settings.reconnect_max_seconds)
        while True:
            consumer = await self._start(backoff)
            try:
                while True:
                    batch = await consumer.getmany(timeout_ms=timeout_ms, max_records=max_records)
                    if not batch:
                        await self._idle(consumer)
                        continue
                    if not self._up:
                        self._set_up(up=True)
                    self._next_probe = time.monotonic() + _PROBE_INTERVAL
                    epoch = self._epoch
                    withheld = self.hooks.withheld() if self.hooks is not None else ()
                    for tp, records in batch.items():
                        if records and tp not in withheld:  # withheld: never applied, committed
                            yield tp, records, epoch
                        if self._epoch != epoch:
                            break
                    if self._epoch != epoch:
                        self._log.info("kafka_batch_abandoned", reason="partitions revoked")
                        continue
                    if self._catch_up_to:
                        self._check_caught_up()
                    await self._commit(consumer)
                    await self._update_lag(consumer)
            except (KafkaError, OSError) as error:
                self._log.error("kafka_consumer_failed", error=repr(error))
            except Exception as error:  # noqa: BLE001 - a source never ends the daemon
                self._log.exception("kafka_consumer_crashed", error=repr(error))
            # Reached only after a failure: drop the consumer and build a new one.
            self._set_up(up=False)
            self._consumer = None
            await self._stop(consumer, commit=True)
            await backoff.sleep()

    async def _start(self, backoff: Backoff) -> AIOKafkaConsumer:
        """A started consumer, subscribed with the rebalance listener; retries until it is."""
        assert self._options is not None, "use KafkaSource as an async context manager"
        settings = self.settings
        # State mode: what the previous consumer applied is in the state; resume after it.
        self._keep_state_offsets(self._applied)
        failures = 0
        while True:
            consumer = AIOKafkaConsumer(
                group_id=settings.group_id,
                enable_auto_commit=False,
                auto_offset_reset=settings.auto_offset_reset,
                max_partition_fetch_bytes=settings.max_partition_fetch_bytes,
                fetch_max_bytes=settings.fetch_max_bytes,
                max_poll_records=settings.max_batch,
                **self._options,
            )
            consumer.subscribe(topics=list(settings.topics), listener=_Rebalance(self, consumer))
            try:
                await self._started(consumer)
            except (KafkaError, OSError) as error:
                self._set_up(up=False)
                delay = backoff.next_delay()
                failures += 1  # in a row: the first is a warning, the rest debug
                (self._log.warning if failures == 1 else self._log.debug)(
                    "kafka_connect_failed",
                    error=repr(error),
                    retry_in=round(delay, 2),
                    bootstrap_servers=settings.bootstrap_servers,
                    attempt=failures,
                )
                await self._stop(consumer, commit=False)
                await asyncio.sleep(delay)
                continue
            except asyncio.CancelledError:
                # Stopped while connecting (SIGTERM during an outage): close the half-started
                # client so that nothing is left unclosed, then end as asked.
                await self._stop(consumer, commit=False)
                raise
            self._consumer = consumer
            self._applied.clear()
            self._committed.clear()
            backoff.reset()
            self._set_up(up=True, quiet=True)
            self._next_probe = time.monotonic() + _PROBE_INTERVAL
            self._log.info(
                "kafka_connected",
                topics=list(settings.topics),
                group_id=settings.group_id,
                failed_attempts=failures,
            )
            await self._check_dead_letter_topic(consumer)
            return consumer

    async def _started(self, consumer: AIOKafkaConsumer) -> None:
        """``consumer.start()``, which waits for every subscribed topic to be in the cluster's
        metadata (up to aiokafka's 40 s request timeout, then ``UnknownTopicOrPartitionError``).
        If it is still waiting after ``_TOPICS_SAID_AFTER`` seconds, the topics the cluster
        does not have are logged (``kafka_topics_missing``): once, until a start finds them."""
        start = asyncio.ensure_future(consumer.start())
        try:
            done, _ = await asyncio.wait({start}, timeout=_TOPICS_SAID_AFTER)
            if not done:
                known = consumer._client.cluster.topics()  # noqa: SLF001 - its metadata so far
                missing = sorted(set(self.settings.topics) - known)
                if missing and not self._missing_said:
                    self._log.warning(
                        "kafka_topics_missing",
                        topics=missing,
                        hint="create them or correct sources.kafka.topics; the source waits",
                    )
                self._missing_said = bool(missing)
            await start
            self._missing_said = False
        finally:
            if not start.done():  # cancelled while waiting: the start ends with us
                start.cancel()
                await asyncio.gather(start, return_exceptions=True)

    async def _check_dead_letter_topic(self, consumer: AIOKafkaConsumer) -> None:
        """Log ``dead_letter_topic_missing`` (a warning) when the cluster lacks the dead-letter
        topic: the first rejected record would otherwise hold the source for a minute before
        ``dead_letter_write_failed`` says why. Checked on each connection until the topic is
        found; a broker that cannot answer within ``commit_timeout`` is not judged."""
        topic = self.settings.dead_letter_topic
        if topic is None or self._dead_letter_topic_seen:
            return
        try:
            async with asyncio.timeout(self.settings.commit_timeout):
                topics = await consumer.topics()
        except (KafkaError, OSError, TimeoutError) as error:
            self._log.debug("dead_letter_topic_unchecked", topic=topic, error=repr(error))
            return
        self._dead_letter_topic_seen = topic in topics
        if not self._dead_letter_topic_seen:
            self._log.warning(
                "dead_letter_topic_missing",
                topic=topic,
                hint="create it, or correct sources.kafka.dead_letter_topic: a rejected record"
                " waits until the topic takes it (a broker that auto-creates topics makes it"
                " on the first letter)",
            )

    async def _stop(
        self, consumer: AIOKafkaConsumer, *, commit: bool, closing: bool = False
    ) -> None:
        """Commit what was applied (``commit``), then stop the consumer; each step bounded by
        ``close_timeout``. Failures are logged, never raised (a cancellation of this task is)."""
        seconds = self.settings.close_timeout
        if commit:
            try:
                async with asyncio.timeout(seconds):
                    await self._commit(consumer)
            except TimeoutError:
                self._log.warning("kafka_close_timeout", seconds=seconds, step="commit")
        error = await _bounded(consumer.stop(), seconds)
        if isinstance(error, asyncio.CancelledError):
            # aiokafka 0.14: stop() re-raises the cancellation of a fetch request it cancelled
            # itself (broker unreachable) and skips closing the client; finish that here.
            self._log.debug("kafka_fetch_cancelled_on_stop")
            error = await _bounded(consumer._client.close(), seconds)  # noqa: SLF001 - see above
        if isinstance(error, TimeoutError):
            self._log.warning("kafka_close_timeout", seconds=seconds, step="stop")
        elif error is not None:
            event = "kafka_close_failed" if closing else "kafka_stop_failed"
            self._log.warning(event, error=repr(error))

    # ------------------------------------------------------------------ offsets

    async def _commit(
        self, consumer: AIOKafkaConsumer, only: set[TopicPartition] | None = None
    ) -> None:
        """Commit the applied offsets not yet committed (of ``only`` these partitions), after the
        dead letters written so far are stored. A failed commit is logged, never raised: the
        records are then delivered again, which de-duplication absorbs."""
        committed = self._committed
        offsets = {
            tp: off
            for tp, off in self._applied.items()
            if committed.get(tp) != off and (only is None or tp in only)
        }
        if not offsets:
            return
        if self.dead_letters is not None:
            await self.dead_letters.flush()
        if self._letter_store is not None:
            await self._letter_store.persist()
        try:
            async with asyncio.timeout(self.settings.commit_timeout):
                await consumer.commit(offsets)
        except (KafkaError, TimeoutError) as error:
            self._log.warning("kafka_commit_failed", error=repr(error), offsets=_offsets(offsets))
            return
        committed.update(offsets)

    async def holds(self, tp: TopicPartition) -> bool:
        """Whether the group still counts this consumer as the owner of ``tp``: an offset is
        committed again (the one the group holds, else the one the state resumed at, else what
        was applied, else the consumer's position: never a new claim on records not applied),
        which the broker accepts only from a member of the group's current generation.
        ``False`` once the group rebalanced without us (a process paused past the session
        timeout: another replica may serve ``tp`` now) or the consumer no longer has ``tp``.
        ``True`` when it cannot tell (no consumer, the broker not answering): a write then
        fails on its own, or the next check tells."""
        consumer = self._consumer
        if consumer is None:
            return True
        try:
            async with asyncio.timeout(self.settings.commit_timeout):
                offset = self._committed.get(tp)
                if offset is None:
                    offset = await consumer.committed(tp)
                if offset is None:
                    offset = (self._state_offsets or {}).get(tp, self._applied.get(tp))
                if offset is None:
                    offset = await consumer.position(tp)
                await consumer.commit({tp: offset})
        except (CommitFailedError, IllegalStateError):
            return False
        except (KafkaError, TimeoutError) as error:
            self._log.warning("kafka_ownership_unknown", partition=_tp(tp), error=repr(error))
            return True
        self._committed[tp] = offset
        return True

    async def partitions_revoked(self, revoked: set[TopicPartition]) -> None:
        """Rebalance listener: commit what was applied on the partitions we give up."""
        if not revoked:
            return
        self._epoch += 1
        consumer = self._consumer
        if consumer is not None:
            try:
                async with asyncio.timeout(self.settings.commit_timeout * 2):
                    await self._commit(consumer, only=revoked)
            except TimeoutError:
                self._log.warning(
                    "kafka_commit_failed",
                    error="dead letters not stored in time",
                    during="revocation",
                )
        self._keep_state_offsets({tp: o for tp, o in self._applied.items() if tp in revoked})
        if self.hooks is not None and self._state_offsets is not None:
            kept = self._state_offsets
            await self.hooks.revoked(revoked, {tp: kept[tp] for tp in revoked if tp in kept})
        for tp in revoked:
            self._applied.pop(tp, None)
            self._committed.pop(tp, None)
            self._stats.partition_lag.pop((tp.topic, tp.partition), None)
        self._log.info("kafka_partitions_revoked", partitions=sorted(map(_tp, revoked)))

    def partitions_assigned(self, assigned: set[TopicPartition]) -> None:
        self.assigned_once = True
        self._log.info("kafka_partitions_assigned", partitions=sorted(map(_tp, assigned)))

    # ------------------------------------------------------------------ state mode

    def resume_from(self, offsets: Mapping[tuple[str, int], int]) -> None:
        """Enter state mode: the engine reflects every record before ``offsets`` (empty: none
        at all, so every partition is read from its beginning). Call before entering."""
        self._state_offsets = {TopicPartition(t, p): off for (t, p), off in offsets.items()}
        self.caught_up.clear()

    def use_hooks(self, hooks: PartitionHooks) -> None:
        """Enter cluster mode: state mode whose offsets the hooks decide per assignment."""
        self.resume_from({})
        self.hooks = hooks

    def state_offsets(self) -> dict[tuple[str, int], int]:
        """State mode: the offsets the engine state reflects right now (for a snapshot taken
        between two deliveries, i.e. from any other task on the loop)."""
        merged = dict(self._state_offsets or {})
        merged.update(self._applied)
        return {(tp.topic, tp.partition): off for tp, off in merged.items()}

    def _keep_state_offsets(self, applied: Mapping[TopicPartition, int]) -> None:
        if self._state_offsets is not None:
            self._state_offsets.update(applied)

    async def _resume_from_hooks(
        self, consumer: AIOKafkaConsumer, assigned: set[TopicPartition]
    ) -> set[TopicPartition]:
        """Cluster mode: the hooks load the partitions' state and say where each resumes;
        the partitions they withhold are paused. Returns the partitions to serve."""
        assert self.hooks is not None
        assert self._state_offsets is not None
        # Nothing of these partitions may be fetched while the hooks decide (loading the state
        # takes a while): paused first, the served ones resumed after.
        consumer.pause(*assigned)
        for tp, resume in (await self.hooks.assigned(assigned)).items():
            if resume is None:
                self._state_offsets.pop(tp, None)
            else:
                self._state_offsets[tp] = resume
        withheld = self.hooks.withheld() & assigned
        served = assigned - withheld
        if served:
            consumer.resume(*served)
        return served

    async def seek_to_state(
        self, consumer: AIOKafkaConsumer, assigned: set[TopicPartition]
    ) -> None:
        """State mode, on assignment: seek to the offsets the state reflects (beginning when it
        reflects nothing of a partition) and note each partition's end to catch up to. Without
        state, the first assignment notes the ends only (the group's offsets decide where
        reading starts)."""
        if not assigned:
            return
        if self._state_offsets is None:
            await self._note_backlog(consumer, assigned)
            return
        if self.hooks is not None:
            assigned = await self._resume_from_hooks(consumer, assigned)
        known = {tp: self._state_offsets[tp] for tp in assigned if tp in self._state_offsets}
        for tp, offset in known.items():
            consumer.seek(tp, offset)
        fresh = sorted(assigned - set(known), key=_tp)
        if fresh:
            await consumer.seek_to_beginning(*fresh)
        ends = await self._ends(consumer, assigned)
        self._catch_up_to = {tp: end for tp, end in ends.items() if end > known.get(tp, 0)}
        if self.hooks is not None:
            for tp in assigned:
                if tp not in self._catch_up_to:
                    self.hooks.caught_up(tp)
        self._log.info(
            "kafka_state_resumed",
            sought={_tp(tp): off for tp, off in sorted(known.items(), key=lambda i: _tp(i[0]))},
            from_beginning=[_tp(tp) for tp in fresh],
            to_catch_up=_offsets(self._catch_up_to),
        )
        if not self._catch_up_to:
            self._mark_caught_up()

    async def _note_backlog(
        self, consumer: AIOKafkaConsumer, assigned: set[TopicPartition]
    ) -> None:
        """Without state, at the first assignment: the ends to read up to before ``caught_up``."""
        if self.caught_up.is_set() or self._catch_up_to:
            return
        self._catch_up_to = await self._ends(consumer, assigned)
        self._log.info("kafka_backlog_noted", to_catch_up=_offsets(self._catch_up_to))
        if not self._catch_up_to:
            self._mark_caught_up()

    async def _ends(
        self, consumer: AIOKafkaConsumer, assigned: set[TopicPartition]
    ) -> dict[TopicPartition, int]:
        """The end offset of each assigned partition that holds records (none when the broker
        does not say within ``commit_timeout``: then nothing is waited for)."""
        try:
            async with asyncio.timeout(self.settings.commit_timeout):
                ends: dict[TopicPartition, int] = await consumer.end_offsets(list(assigned))
        except (KafkaError, TimeoutError) as error:
            self._log.warning("kafka_end_offsets_failed", error=repr(error))
            return {}
        return {tp: end for tp, end in ends.items() if end > 0}

    async def _idle(self, consumer: AIOKafkaConsumer) -> None:
        """Nothing fetched: probe the broker; in state mode, a partition whose position reached
        its end is caught up even if its last offsets held no record (transaction markers)."""
        await self._probe(consumer)
        for tp in list(self._catch_up_to):
            try:
                async with asyncio.timeout(0.5):
                    position = await consumer.position(tp)
            except (KafkaError, TimeoutError, AssertionError):
                continue  # not assigned any more / broker away: try again next time
            if position >= self._catch_up_to[tp]:
                self._applied.setdefault(tp, position)
                del self._catch_up_to[tp]
                if self.hooks is not None:
                    self.hooks.caught_up(tp)
                if not self._catch_up_to:
                    self._mark_caught_up()

    def _check_caught_up(self) -> None:
        applied = self._applied
        done = [tp for tp, end in self._catch_up_to.items() if applied.get(tp, -1) >= end]
        for tp in done:
            del self._catch_up_to[tp]
            if self.hooks is not None:
                self.hooks.caught_up(tp)
        if not self._catch_up_to:
            self._mark_caught_up()

    def _mark_caught_up(self) -> None:
        self._catch_up_to.clear()
        if not self.caught_up.is_set():
            self.caught_up.set()
            self._log.info("kafka_caught_up", offsets=_offsets(dict(self._applied)))

    # ------------------------------------------------------------------ health and lag

    async def _probe(self, consumer: AIOKafkaConsumer) -> None:
        """When idle: ask the cluster for metadata now and then; unreachable = not ready."""
        now = time.monotonic()
        if now < self._next_probe:
            return
        try:
            async with asyncio.timeout(self.settings.commit_timeout):
                await consumer.topics()
        except (KafkaError, TimeoutError, OSError) as error:
            self._set_up(up=False, error=repr(error))
            self._next_probe = time.monotonic() + self._probe_backoff.next_delay()
            return
        self._probe_backoff.reset()
        self._set_up(up=True)
        self._next_probe = time.monotonic() + _PROBE_INTERVAL
        await self._update_lag(consumer)

    async def _update_lag(self, consumer: AIOKafkaConsumer) -> None:
        lag = self._stats.partition_lag
        for tp in consumer.assignment():
            end = consumer.highwater(tp)
            if end is None:
                continue
            position = self._applied.get(tp)
            if position is None:
                try:
                    async with asyncio.timeout(0.5):
                        position = await consumer.position(tp)
                except (KafkaError, TimeoutError):
                    continue
            lag[tp.topic, tp.partition] = max(0, end - position)

    def _set_up(self, *, up: bool, quiet: bool = False, error: str | None = None) -> None:
        self._stats.source_up[self.name] = up
        if up == self._up:
            return
        self._up = up
        if quiet:
            return
        if up:
            self._log.info("kafka_reconnected")
        else:
            self._log.warning("kafka_disconnected", error=error)


async def _bounded(call: Coroutine[Any, Any, Any], seconds: float) -> BaseException | None:
    """Run a library call in a task of its own for at most ``seconds``; return its error
    (``TimeoutError`` when it took too long, ``None`` when it succeeded). A ``CancelledError``
    escaping the library is returned like any error: only a cancellation of the caller (the
    daemon stopping) propagates, after the call's task is cancelled and awaited."""
    task = asyncio.ensure_future(call)
    try:
        done, _ = await asyncio.wait({task}, timeout=seconds)
    except asyncio.CancelledError:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        raise
    if not done:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        return TimeoutError()
    if task.cancelled():
        return asyncio.CancelledError()
    return task.exception()


def _tp(tp: TopicPartition) -> str:
    return f"{tp.topic}/{tp.partition}"


def _offsets(offsets: dict[TopicPartition, int]) -> dict[str, int]:
    return {_tp(tp): off for tp, off in sorted(offsets.items(), key=lambda i: _tp(i[0]))}
