"""Dead letters: every rejected input is kept with its reason and position, never dropped.

A sink is anything with ``async write(letter)``. A sink that buffers (the JSON Lines file) is
also a :class:`DurableSink`: its ``persist()`` returns once every letter written so far is
stored, and the broker sources await it before they commit an offset or acknowledge an MQTT
message, so a rejected input is never acknowledged before its letter is kept. The Kafka and MQTT
sources add sinks that publish to a topic (``monitor.sources.deadletter_sinks``).

A sink survives write failures (full disk, unwritable path, broker gone): the first failed
attempt is logged once (``dead_letter_write_failed``), the recovery once
(``dead_letter_sink_recovered``), every failed attempt is counted in
``DaemonStats.dead_letter_failures`` and the write is retried with a capped, jittered backoff
for as long as it takes. Until then the source waits (no offset commit, no acknowledgement), so
nothing piles up and nothing acknowledged is lost. See ``docs/reliability.md``.
"""

from __future__ import annotations

import asyncio
import base64
import errno
import os
import random
import threading
import time
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol, Self, runtime_checkable

import msgspec
import structlog

from support_monitor.monitor.stats import DaemonStats


@dataclass(frozen=True, slots=True)
class DeadLetter:
    raw: bytes
    reason: str
    detail: str
    source: str
    position: str
    key: bytes | None = None
    """The original Kafka record's key, if it had one (kept beside the original bytes)."""


class DeadLetterSink(Protocol):
    async def write(self, letter: DeadLetter) -> None: ...


@runtime_checkable
class DurableSink(Protocol):
    async def persist(self) -> None:
        """Return once every letter written so far is stored (retrying as long as it takes)."""
        ...


def letter_record(letter: DeadLetter) -> dict[str, object]:
    """A dead letter as a JSON object (the JSON Lines sink's and the MQTT sink's format)."""
    record: dict[str, object] = {
        "reason": letter.reason,
        "detail": letter.detail,
        "source": letter.source,
        "position": letter.position,
        "rejected_at": time.time(),
    }
    try:
        record["raw"] = letter.raw.decode("utf-8")
    except UnicodeDecodeError:
        record["raw_base64"] = base64.b64encode(letter.raw).decode("ascii")
    if letter.key is not None:
        record["key_base64"] = base64.b64encode(letter.key).decode("ascii")
    return record


class Backoff:
    """Capped exponential backoff with jitter: ``base * 2**n`` up to ``cap``, each delay drawn
    uniformly from its upper half so that many clients restarted together spread out."""

    def __init__(self, cap: float, base: float = 0.5) -> None:
        self.cap = max(cap, base)
        self.base = base
        self.attempt = 0
        self._random = random.Random()  # noqa: S311 - jitter, not cryptography

    def reset(self) -> None:
        self.attempt = 0

    def next_delay(self) -> float:
        ceiling = min(self.cap, self.base * 2.0 ** min(self.attempt, 30))
        self.attempt += 1
        return self._random.uniform(ceiling / 2, ceiling)

    async def sleep(self) -> float:
        delay = self.next_delay()
        await asyncio.sleep(delay)
        return delay


class SinkOutage:
    """A sink's first failed write and its recovery, each logged once (not every retry); every
    failed attempt counted in ``stats.dead_letter_failures[name]`` and every stored letter in
    ``stats.dead_letters_written[source, name]`` (both exported from 0 on)."""

    def __init__(
        self,
        log: structlog.typing.FilteringBoundLogger,
        stats: DaemonStats | None,
        name: str,
        *,
        source: str | None = None,
    ) -> None:
        """``source``: the one source whose letters this sink stores (a dead-letter topic);
        ``None`` for a sink shared by every source (the file), which names each letter's."""
        self._log = log
        self._stats = stats
        self._name = name
        self._source = source
        self.failing = False
        if stats is not None:
            if source is not None:
                stats.dead_letters_written[source, name] += 0
            stats.dead_letter_failures[name] += 0

    def failed(self, position: str, exc: BaseException, **context: object) -> None:
        if self._stats is not None:
            self._stats.dead_letter_failures[self._name] += 1
        if not self.failing:
            self.failing = True
            if self._stats is not None:
                self._stats.dead_letter_sinks_failing.add(self._name)
            where = {"position": position} if position else {}  # the file sink stores batches
            self._log.error("dead_letter_write_failed", error=repr(exc), **where, **context)

    def stored(self, count: int = 1, sources: Sequence[str] = ()) -> None:
        """``count`` letters of this sink's source were stored, or one letter of each of
        ``sources`` (a shared sink)."""
        if self.failing:
            self.failing = False
            if self._stats is not None:
                self._stats.dead_letter_sinks_failing.discard(self._name)
            self._log.info("dead_letter_sink_recovered")
        if self._stats is None:
            return
        written = self._stats.dead_letters_written
        if sources:
            for source in sources:
                written[source, self._name] += 1
        elif self._source is not None:
            written[self._source, self._name] += count


_BUFFER_BYTES = 1 << 20
"""Bytes of letters written since ``write`` last waited for a store, past which ``write``
itself waits until everything buffered is stored (the once-a-second flush and the sources'
``persist`` store without resetting the count: it then only makes that wait come sooner)."""


class JsonlDeadLetters:
    """Appends one JSON object per rejected input to ``path``.

    ``write`` buffers (in memory, at most ``buffer_bytes``: past it ``write`` waits until the
    buffer is stored; with ``give_up``, for a replay, a failed store drops the buffer instead,
    counted in ``lost``). :meth:`persist` appends the buffer, ``fsync``s the file (off the event
    loop) and retries with backoff until that succeeds; :meth:`flush` is one attempt (the
    daemon's once-a-second task; replay's end). A failed attempt truncates the file back to
    where it began, so the file holds only whole lines and a retry writes each letter once;
    the file is reopened (and its directory created) on the next attempt, so a missing
    directory, a full disk or a remounted file system recover without a restart. Each store
    first checks that ``path`` still names the open file: a file moved away (log rotation) or
    deleted is closed and a new one is created at ``path`` (``dead_letter_file_reopened``).
    """

    def __init__(
        self,
        path: Path,
        stats: DaemonStats | None = None,
        *,
        name: str = "file",
        retry_max_seconds: float = 10.0,
        buffer_bytes: int = _BUFFER_BYTES,
        give_up: bool = False,
    ) -> None:
        self.path = path
        self._give_up = give_up
        self.lost = 0
        """Letters dropped after a failed store (``give_up`` only)."""
        self.name = name
        self._fd: int | None = None
        self._encoder = msgspec.json.Encoder()
        self._lines: list[bytes] = []
        self._sources: list[str] = []  # the source of each buffered line, for the counter
        self._buffered = 0
        self._buffer_bytes = buffer_bytes
        self._retry_max = retry_max_seconds
        self._io_lock = threading.Lock()  # one store at a time: persist() and the flush task
        self._persisting = asyncio.Lock()
        self._log = structlog.get_logger("support_monitor.dead_letters").bind(
            sink=name, path=str(path)
        )
        self._outage = SinkOutage(self._log, stats, name)

    def __enter__(self) -> Self:
        """Open the file now if possible; a failure is logged and retried on the first store."""
        with self._io_lock:
            try:
                self._open()
            except OSError as exc:
                self._outage.failed("", exc)
        return self

    def __exit__(self, *exc: object) -> None:
        """Store what is buffered (one attempt) and close the file."""
        self.flush()
        if self._give_up and self._lines:
            self._drop()
        with self._io_lock:
            if self._lines:
                self._log.error("dead_letters_not_stored", letters=len(self._lines))
            self._close()

    def _drop(self) -> None:
        """``give_up``: a store failed once; the buffered letters are dropped (and counted in
        :attr:`lost`) instead of retried forever (a replay must end)."""
        with self._io_lock:
            count = len(self._lines)
            self.lost += count
            self._lines.clear()
            self._sources.clear()
            self._buffered = 0
        self._log.error("dead_letters_not_stored", letters=count)

    @property
    def pending(self) -> int:
        """Letters written but not stored yet."""
        return len(self._lines)

    async def write(self, letter: DeadLetter) -> None:
        line = self._encoder.encode(letter_record(letter)) + b"\n"
        self._lines.append(line)
        self._sources.append(letter.source)
        self._buffered += len(line)
        if self._buffered >= self._buffer_bytes:
            await self.persist()
            self._buffered = sum(map(len, self._lines))

    async def persist(self) -> None:
        if not self._lines:
            return
        async with self._persisting:
            backoff = Backoff(self._retry_max)
            while self._lines:
                try:
                    await asyncio.to_thread(self._store)
                except OSError:
                    if self._give_up:
                        self._drop()
                        return
                    await backoff.sleep()

    def flush(self) -> None:
        """One attempt to store the buffer (a failure is logged once and counted, not raised)."""
        try:
            self._store()
        except OSError:
            return

    def _store(self) -> None:
        """Append the buffered lines, fsync; on failure truncate back and raise (thread-safe)."""
        with self._io_lock:
            count = len(self._lines)
            if count == 0:
                if self._outage.failing:  # nothing to store, but the sink is down: reopen it
                    try:
                        self._open()
                    except OSError as exc:
                        self._outage.failed("", exc)
                        raise
                    self._outage.stored(0)
                return
            data = b"".join(self._lines[:count])
            start = -1
            try:
                fd = self._open()
                start = os.fstat(fd).st_size
                view = memoryview(data)
                while view:
                    view = view[os.write(fd, view) :]
                os.fsync(fd)
            except OSError as exc:
                self._undo(start)
                self._outage.failed("", exc, letters=count)
                raise
            del self._lines[:count]
            sources = self._sources[:count]
            del self._sources[:count]
            self._outage.stored(count, sources)

    def _open(self) -> int:
        if self._fd is not None and not self._still_named():
            # moved away or deleted (a log rotation, an operator's rm): what comes next goes
            # to a new file at the path, not to one nobody can see
            self._close()
            self._log.info("dead_letter_file_reopened")
        if self._fd is None:
            try:
                self.path.parent.mkdir(parents=True, exist_ok=True)
            except FileExistsError:  # a file where a directory of the path should be
                raise NotADirectoryError(
                    errno.ENOTDIR, "a file stands where a directory is needed", str(self.path)
                ) from None
            self._fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o640)
        return self._fd

    def _still_named(self) -> bool:
        """Whether ``path`` still names the open file (same device and inode). An error other
        than a missing path counts as yes: the write itself then reports it."""
        assert self._fd is not None
        try:
            named = self.path.stat()
        except FileNotFoundError:
            return False
        except OSError:
            return True
        opened = os.fstat(self._fd)
        return (named.st_dev, named.st_ino) == (opened.st_dev, opened.st_ino)

    def _undo(self, start: int) -> None:
        """After a failed append: cut the partial lines off and close (reopened next time)."""
        if self._fd is not None and start >= 0:
            try:
                os.ftruncate(self._fd, start)
            except OSError as exc:
                self._log.debug("dead_letter_truncate_failed", error=repr(exc))
        self._close()

    def _close(self) -> None:
        fd, self._fd = self._fd, None
        if fd is not None:
            try:
                os.close(fd)
            except OSError as exc:
                self._log.warning("dead_letter_close_failed", error=repr(exc))


class MemoryDeadLetters:
    """Keeps the newest dead letters in memory (tests, and a daemon without
    ``dead_letter.path``): at most ``limit`` letters and ``max_bytes`` of their raw bytes. Past
    either bound the oldest go, each counted in ``dropped`` and, with ``stats``, in
    ``support_monitor_dead_letters_dropped_total{source}``; a letter over ``max_bytes`` alone
    is counted as dropped at once. Nothing reads them in ``run``: they are lost on a stop."""

    def __init__(
        self,
        limit: int = 10_000,
        max_bytes: int = 16 * 1024 * 1024,
        stats: DaemonStats | None = None,
    ) -> None:
        self.letters: deque[DeadLetter] = deque()
        self.dropped = 0
        self._limit = limit
        self._max_bytes = max_bytes
        self._bytes = 0
        self._stats = stats

    async def write(self, letter: DeadLetter) -> None:
        size = len(letter.raw)
        if size > self._max_bytes:
            self._drop(letter)
            return
        letters = self.letters
        while letters and (len(letters) >= self._limit or self._bytes + size > self._max_bytes):
            old = letters.popleft()
            self._bytes -= len(old.raw)
            self._drop(old)
        letters.append(letter)
        self._bytes += size

    def _drop(self, letter: DeadLetter) -> None:
        self.dropped += 1
        if self._stats is not None:
            self._stats.dead_letters_dropped[letter.source] += 1

    async def persist(self) -> None:
        """Nothing to wait for: the list is the store."""
