"""Durable outbox and alert-state store (sqlite3 in ``notifiers.state_dir``).

A notification is committed together with the alert state that produced it, in one transaction,
*before* any attempt; it is deleted once settled (delivered, rejected or expired). After a crash
the restored state and the undelivered notifications agree: nothing is re-paged, nothing lost.
The one window left is a crash after the receiver accepted a message but before its row was
deleted: that message is sent again after the restart (the webhook carries an idempotency key).

All sqlite calls run in ``asyncio.to_thread`` (serialised by a lock), never on the event loop.
Without a state directory the same class keeps everything in memory (lost on restart).

Bounded: at most ``max_size`` undelivered notifications; committing more drops the oldest ones
(counted as ``dropped``, logged as ``outbox_full``): the newest state of an alert matters most.

A failed sqlite write is counted (``support_monitor_store_failures_total{store="outbox"}``),
logged once per outage (``outbox_write_failed``, then ``store_recovered``) and delivery goes on
from memory; an outbox that cannot be opened (a full disk, a damaged file) is counted and logged
once (``outbox_open_failed``) and the daemon runs with it in memory.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path

import structlog

from support_monitor.alerts.notify.message import Notification, decode, encode
from support_monitor.alerts.store_db import OPEN_ERRORS, open_db, unavailable
from support_monitor.monitor.stats import DaemonStats, StoreHealth

log = structlog.get_logger("support_monitor.alerts.outbox")

_SCHEMA = (
    (
        "CREATE TABLE IF NOT EXISTS outbox ("
        " seq INTEGER PRIMARY KEY AUTOINCREMENT, key TEXT UNIQUE NOT NULL,"
        " receiver TEXT NOT NULL, body BLOB NOT NULL)"
    ),
    "CREATE TABLE IF NOT EXISTS kv (name TEXT PRIMARY KEY, body BLOB NOT NULL)",
)
FILENAME = "alerts.sqlite3"


@dataclass(slots=True)
class Restored:
    state: bytes | None = None
    pending: list[Notification] = field(default_factory=list)


class Outbox:
    def __init__(
        self, state_dir: Path | None, max_size: int, stats: DaemonStats | None = None
    ) -> None:
        """``stats``: where failed opens and writes are counted (``store`` = ``outbox``,
        ``support_monitor_store_failures_total``, ``support_monitor_store_failing``)."""
        self.path = state_dir / FILENAME if state_dir is not None else None
        self._health = StoreHealth("outbox", stats)
        self.max_size = max_size
        self._db: sqlite3.Connection | None = None
        self._lock = asyncio.Lock()
        self._pending: OrderedDict[str, Notification] = OrderedDict()
        self._by_receiver: dict[str, OrderedDict[str, None]] = {}
        self._events: dict[str, asyncio.Event] = {}
        self._generations: dict[str, int] = {}

    # --- lifecycle -------------------------------------------------------------------------

    async def open(self) -> Restored:
        if self.path is None:
            return Restored()
        self._health.watch()
        async with self._lock:
            try:
                restored = await asyncio.to_thread(self._open_sync, self.path)
            except OPEN_ERRORS as exc:  # a full disk, a damaged file
                self._health.failed(
                    "outbox_open_failed",
                    exc,
                    path=str(self.path),
                    consequence=unavailable("alert state and notifications are"),
                )
                return Restored()
        for n in restored.pending:
            self._remember(n)
        log.info(
            "outbox_opened", pending=len(restored.pending), restored=restored.state is not None
        )
        return restored

    def refuse_state(self, exc: BaseException) -> None:
        """The alert state :meth:`open` gave is damaged (``persist.decode``): counted as a
        failure of this store and logged once; the daemon starts without it, and its next
        commit replaces it."""
        self._health.failed(
            "snapshot_refused",
            exc,
            path=str(self.path),
            consequence="starting without the stored alert state",
        )

    def _open_sync(self, path: Path) -> Restored:
        db = open_db(path, _SCHEMA)
        try:
            row = db.execute("SELECT body FROM kv WHERE name = 'state'").fetchone()
            pending = [decode(b) for (b,) in db.execute("SELECT body FROM outbox ORDER BY seq")]
        except BaseException:
            db.close()
            raise
        self._db = db
        return Restored(state=bytes(row[0]) if row else None, pending=pending)

    @property
    def persistent(self) -> bool:
        """Whether it is written through to its file (opened; not running from memory)."""
        return self._db is not None

    async def close(self) -> None:
        db, self._db = self._db, None
        if db is not None:
            async with self._lock:
                await asyncio.to_thread(db.close)
            self._pending.clear()  # it is on disk; ``open`` brings it back
            self._by_receiver.clear()

    # --- writes ----------------------------------------------------------------------------

    async def commit(self, state: bytes | None, new: list[Notification]) -> list[Notification]:
        """Store the state snapshot and new notifications atomically; returns those dropped
        (oldest first) to stay within ``max_size``."""
        fresh = [n for n in new if n.key not in self._pending]
        overflow = max(0, len(self._pending) + len(fresh) - self.max_size)
        victims = list(self._pending.values())[:overflow]
        if overflow > len(victims):  # more new than the whole outbox: keep the newest
            cut = overflow - len(victims)
            victims += fresh[:cut]
            fresh = fresh[cut:]
        if self._db is not None:
            async with self._lock:
                try:
                    await asyncio.to_thread(self._commit_sync, state, fresh, victims)
                except (sqlite3.Error, OSError) as exc:
                    # delivery goes on from memory; what was not stored is lost on a restart
                    self._health.failed("outbox_write_failed", exc, op="commit")
                else:
                    self._health.ok()
        for n in victims:
            self._forget(n.key)
        for n in fresh:
            self._remember(n)
        if victims:
            log.error("outbox_full", dropped=len(victims), max_size=self.max_size)
        return victims

    def _commit_sync(
        self, state: bytes | None, fresh: list[Notification], victims: list[Notification]
    ) -> None:
        db = self._db
        assert db is not None
        with db:
            db.execute("BEGIN IMMEDIATE")
            if state is not None:
                db.execute("INSERT OR REPLACE INTO kv (name, body) VALUES ('state', ?)", (state,))
            db.executemany(
                "INSERT OR IGNORE INTO outbox (key, receiver, body) VALUES (?, ?, ?)",
                [(n.key, n.receiver, encode(n)) for n in fresh],
            )
            db.executemany("DELETE FROM outbox WHERE key = ?", [(n.key,) for n in victims])

    async def done(self, key: str) -> None:
        """The notification is settled (delivered, rejected or expired): never send it again."""
        if key not in self._pending:
            return
        if self._db is not None:
            async with self._lock:
                if self._db is not None:  # not closed meanwhile
                    try:
                        wrote = await asyncio.to_thread(self._done_sync, key)
                    except (sqlite3.Error, OSError) as exc:
                        # it would be sent once more after a restart
                        self._health.failed("outbox_write_failed", exc, op="done")
                    else:
                        if wrote:  # deleting a row a failed commit never stored proves nothing
                            self._health.ok()
        self._forget(key)

    def _done_sync(self, key: str) -> bool:
        """Delete the row; whether there was one (a full disk still lets a no-op through)."""
        db = self._db
        assert db is not None
        with db:
            return db.execute("DELETE FROM outbox WHERE key = ?", (key,)).rowcount > 0

    # --- reads -----------------------------------------------------------------------------

    def __len__(self) -> int:
        return len(self._pending)

    def first(self, receiver: str) -> Notification | None:
        keys = self._by_receiver.get(receiver)
        if not keys:
            return None
        return self._pending[next(iter(keys))]

    def pending(self, receiver: str) -> list[Notification]:
        """The receiver's undelivered notifications, oldest first."""
        keys = self._by_receiver.get(receiver)
        return [self._pending[key] for key in keys] if keys else []

    def undelivered(self) -> list[Notification]:
        """Every undelivered notification, oldest first."""
        return list(self._pending.values())

    def put_back(self, notifications: list[Notification]) -> None:
        """Take over undelivered notifications handed over from another outbox (cluster mode:
        the previous owner of a partition), oldest first; keys already here are skipped."""
        for n in notifications:
            if n.key not in self._pending:
                self._remember(n)

    def generation(self, receiver: str) -> int:
        """Grows each time a notification for ``receiver`` is added."""
        return self._generations.get(receiver, 0)

    async def changed(self, receiver: str, generation: int, timeout: float | None) -> None:  # noqa: ASYNC109
        """Until a notification for ``receiver`` was added after ``generation`` was read, or
        ``timeout`` seconds (``None``: no limit) have passed."""
        event = self._events.setdefault(receiver, asyncio.Event())
        try:
            async with asyncio.timeout(timeout):
                while self.generation(receiver) == generation:
                    event.clear()
                    await event.wait()
        except TimeoutError:
            return

    def _remember(self, n: Notification) -> None:
        self._pending[n.key] = n
        self._by_receiver.setdefault(n.receiver, OrderedDict())[n.key] = None
        self._generations[n.receiver] = self._generations.get(n.receiver, 0) + 1
        event = self._events.get(n.receiver)
        if event is not None:
            event.set()

    def _forget(self, key: str) -> None:
        n = self._pending.pop(key, None)
        if n is not None:
            self._by_receiver.get(n.receiver, OrderedDict()).pop(key, None)
