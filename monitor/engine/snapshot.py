"""Engine state snapshots: everything the engine holds, with the broker offsets it reflects.

A snapshot lets a restarted daemon continue exactly where the state was taken: load it, seek the
consumer to its offsets, and the events after it are applied once, the ones before it never again.
What is stored: open contacts and tickets with their clocks, solved tickets still remembered (in
solve order), held early outcomes (event, ``ts`` and the caller's token), every queue's counters,
gauges and histograms, window buckets and totals, ratings and complaints, the capacity counters,
the de-duplication window, the engine clock and watermark. The timer heap is *not* stored: it is
rebuilt from the open items, which yields the same firing order (heap entries sort by time, kind,
id) without the stale entries. Deferred rejects not yet taken with ``take_expired_early`` are not
stored: the caller drains them after every event, before any capture.

The codec reads and sets state only through public interfaces: ``Engine.export_state`` /
``Engine.restore_state`` (talking contacts, solve order, held early outcomes, the next second),
``SlidingWindows.export`` / ``restore``, ``Deduplicator.export`` / ``restore``, and the public
attributes of the engine, channels, queues, contacts, tickets and histograms.

Format version 3 stores each ticket's priority, status, responses and its three business-time
clocks (first response, next reply, resolution), the customer-voice counters and the workforce;
version 2 held one 24/7 clock pair per ticket, which cannot be turned into paused or business-time
clocks, so a version 1 or 2 file is refused and the state is rebuilt from the broker. Window
aggregates store their counts in ``Agg.INTS`` order, which only ever grows at its end: a stored
aggregate with fewer counts restores the missing ones as 0.

File layout: ``MAGIC``, format version (u32), payload length (u64), BLAKE2b-128 of the payload,
then the msgpack payload. A file that is truncated, altered, of another format version or taken
under a config of another *shape* (windows, channels, queues, complaint categories, de-duplication
window) is refused with :class:`SnapshotError`; the caller then rebuilds from the broker.
SLA thresholds are not part of the shape: a changed threshold applies to restored open items as a
config reload would, and histograms keep the buckets they were created with (as after a reload).

Detector state (``DetectorSuite.export_state``: complaint baselines, threshold hysteresis, backlog
histories) rides along as plain data in ``Snapshot.detectors`` when the caller passes it. The field
is optional, so the format version did not change: a snapshot written before it existed loads
with ``detectors = None`` (no detector state; the detectors start afresh), and an older build
reading a newer snapshot ignores the field.

The de-duplication window keeps seeded 64-bit hashes of event ids (``dedup.id_hash``, the same
in every process for one seed); the snapshot stores the seed with them, and the hash of a fixed
probe text. A snapshot without a seed, or whose probe differs, was taken with another id hash (a
build that used Python's salted ``hash()``), so its window is dropped (logged as
``snapshot_dedup_window_dropped``) and everything else is restored.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import hashlib
import heapq
import math
import os
import struct
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

import msgspec
import structlog

from support_monitor.monitor.config import Settings
from support_monitor.monitor.engine.clocks import Calendar, Clock
from support_monitor.monitor.engine.dedup import DedupState, id_hash
from support_monitor.monitor.engine.engine import Engine, EngineState, Held, HeldKey
from support_monitor.monitor.engine.histogram import Histogram
from support_monitor.monitor.engine.state import ChannelRuntime, Contact, QueueState, Ticket
from support_monitor.monitor.engine.voice import VoiceCounts
from support_monitor.monitor.engine.windows import Agg, WindowsState
from support_monitor.monitor.errors import SupportMonitorError
from support_monitor.monitor.events import EventError
from support_monitor.monitor.events import decode as decode_event

FORMAT_VERSION = 3
MAGIC = b"SMSNAP\x00\x01"
_HEADER = struct.Struct(">8sIQ16s")
_DIGEST_SIZE = 16
_HASH_PROBE_TEXT = "support-monitor/dedup-probe/v1"

log = structlog.get_logger("support_monitor.snapshot")

Offsets = dict[tuple[str, int], int]
"""(topic, partition) -> next offset to read: every record before it is reflected in the state."""


class SnapshotError(SupportMonitorError):
    """A snapshot that cannot be used; the message says why. Rebuild from the broker instead."""


# ------------------------------------------------------------------ stored shapes

_AGG_INTS = Agg.INTS
_QUEUE_INTS = (
    "queued",
    "answered",
    "answered_in_sla",
    "abandoned",
    "abandoned_short",
    "abandoned_in_sla",
    "breaches_answer",
    "breached_waiting",
    "created",
    "solved",
    "tickets_open",
    "reopened",
    "solved_first_contact",
)
StoredClock = tuple[float | None, float, float | None, bool, bool, bool]
"""(target, elapsed, since or None while paused or stopped, stopped, breached, at risk)."""


class StoredAgg(msgspec.Struct, array_like=True):
    ints: list[int]
    """In the order of ``Agg.INTS``."""
    waits: list[tuple[int, int]]


class StoredWindows(msgspec.Struct, array_like=True):
    cuts: list[float]
    totals: list[StoredAgg]
    buckets: list[tuple[int, StoredAgg]]
    pending_day: tuple[int, StoredAgg] | None = None
    """A snapshot of an earlier build has none (decoded as ``None``)."""


class StoredHistogram(msgspec.Struct, array_like=True):
    bounds: list[float]
    counts: list[int]
    sum: float
    count: int


class StoredQueue(msgspec.Struct, array_like=True):
    channel: str
    name: str
    ints: list[int]
    """In the order of ``_QUEUE_INTS``."""
    breaches: list[int]
    """Ticket clocks breached: first response, next reply, resolution."""
    last_queued_ts: float
    ordered: bool
    waiting: list[str]
    """Contact ids in the queue's waiting order."""
    pending: list[str]
    """Contact ids waiting for their in-order deadline, oldest first."""
    wait_hist: StoredHistogram
    handle_hist: StoredHistogram
    fr_hist: StoredHistogram
    res_hist: StoredHistogram


class StoredChannel(msgspec.Struct, array_like=True):
    name: str
    windows: StoredWindows
    ratings: list[int]
    complaints: list[tuple[str, int]]
    voice: VoiceCounts


class StoredDedup(msgspec.Struct, array_like=True):
    probe: int
    """``id_hash`` of a fixed text: equal only when written with the same id hash."""
    current_second: int
    buckets: list[tuple[int, list[int]]]
    forgotten: list[int]
    """Hashes still listed in a bucket but no longer remembered (evicted with an older one)."""
    seed: int | None = None
    """The window's hash seed (``None``: written by a build that used ``hash()``)."""


class StoredEngine(msgspec.Struct, array_like=True):
    now: float
    watermark: float
    next_second: float
    channels: list[StoredChannel]
    queues: list[StoredQueue]
    contacts: list[tuple[str, int, float, float | None, bool, str | None]]
    """(contact id, queue index, queued, answered or None, breached, agent id or None), in the
    engine's order."""
    talking: list[str]
    """Answered, not ended contact ids, in answer order (expiry order)."""
    tickets: list[
        tuple[str, int, float, str, str, int, float | None, bool, list[StoredClock | None]]
    ]
    """(ticket id, queue index, created, priority, status, responses, solved or None,
    reopened, clocks)."""
    dedup: StoredDedup
    solved: list[str]
    """Solved tickets still remembered, oldest solve first (the order they are forgotten in)."""
    early: list[tuple[bool, str, float, int, bytes, Any]]
    """Held early outcomes: (is a ticket, item id, ts, sequence number, event JSON, token)."""
    early_seq: int
    capacity: list[tuple[str, int]]
    """``capacity_exhausted`` counts by kind."""
    workforce: Any = None
    """``Workforce.export()``."""
    carried: list[str] = msgspec.field(default_factory=list)
    """Open tickets whose resolution clock's breach came with a reopen (``Clock.carried``): at
    risk before their new deadline. A snapshot written before this field restores none (such a
    ticket is then not at risk until it is solved or reopened again)."""


class Snapshot(msgspec.Struct, kw_only=True):
    format_version: int
    shape: dict[str, Any]
    """What shapes the state (see :func:`shape_of`); compared key by key on load."""
    fingerprint: str
    created_at: float
    """Wall-clock time the snapshot was taken (for logs and age checks)."""
    offsets: list[tuple[str, int, int]]
    engine: StoredEngine
    detectors: dict[str, Any] | None = None
    """``DetectorSuite.export_state()`` taken with the engine; ``None``: not stored (older
    snapshot, or a caller without detectors)."""


# ------------------------------------------------------------------ shape / fingerprint


def shape_of(settings: Settings) -> dict[str, Any]:
    """The parts of the config that shape the stored state: a snapshot taken under others is
    refused. A reload refuses a change of these and of a few more that a restart applies to the
    restored state (``engine.shape_change``: complaint tags, the day, a channel turning between
    live contacts and tickets, which :func:`check` refuses only while such contacts are open)."""
    ingest = settings.ingest
    return {
        "windows": list(settings.windows),
        "channels": {name: list(ch.queues) for name, ch in settings.channels.items()},
        "complaint_categories": list(ingest.complaint_categories),
        "dedup": [ingest.dedup_max_ids, ingest.dedup_horizon],
    }


def fingerprint(settings: Settings) -> str:
    """Short stable digest of :func:`shape_of` (shown in logs and stored in the snapshot)."""
    text = msgspec.json.encode(shape_of(settings), order="sorted")
    return hashlib.blake2b(text, digest_size=8).hexdigest()


def _shape_difference(stored: Mapping[str, Any], current: Mapping[str, Any]) -> str:
    return "; ".join(
        f"{key} {stored.get(key)!r} -> {current.get(key)!r}"
        for key in sorted(set(stored) | set(current))
        if stored.get(key) != current.get(key)
    )


# ------------------------------------------------------------------ capture


def _agg(a: Agg) -> StoredAgg:
    return StoredAgg([getattr(a, n) for n in _AGG_INTS], list(a.waits.items()))


def _windows(w: WindowsState) -> StoredWindows:
    pending = w.pending_day
    return StoredWindows(
        w.cuts,
        [_agg(t) for t in w.totals],
        [(key, _agg(a)) for key, a in w.buckets],
        None if pending is None else (pending[0], _agg(pending[1])),
    )


def _hist(h: Histogram) -> StoredHistogram:
    return StoredHistogram(list(h.bounds), list(h.counts), h.sum, h.count)


def _queue(q: QueueState) -> StoredQueue:
    return StoredQueue(
        q.channel.name,
        q.name,
        [getattr(q, n) for n in _QUEUE_INTS],
        list(q.breaches),
        q.last_queued_ts,
        q.ordered,
        list(q.waiting),
        list(q.pending),
        _hist(q.wait_hist),
        _hist(q.handle_hist),
        _hist(q.fr_hist),
        _hist(q.res_hist),
    )


def _dedup(d: DedupState) -> StoredDedup:
    return StoredDedup(
        id_hash(_HASH_PROBE_TEXT, d.seed), d.current_second, d.buckets, d.forgotten, d.seed
    )


def capture(
    engine: Engine,
    offsets: Mapping[tuple[str, int], int],
    detectors: dict[str, Any] | None = None,
) -> Snapshot:
    """The engine's whole state as plain data. Synchronous on purpose: called between two events
    on the event loop, it sees one consistent state that matches ``offsets``. The cyclic GC is
    paused meanwhile: the millions of short tuples built here hold no cycles, and collections
    triggered by them cost about half the capture time (measured, bench/recovery.py)."""
    with _gc_paused():
        snap = _capture(engine, offsets)
    snap.detectors = detectors
    return snap


def _plain(token: object) -> object:
    """The token if msgpack can store it, else ``None``."""
    try:
        _ENCODER.encode(token)
    except (TypeError, ValueError, OverflowError):
        return None
    return token


@contextmanager
def _gc_paused() -> Iterator[None]:
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def _capture(engine: Engine, offsets: Mapping[tuple[str, int], int]) -> Snapshot:
    queues: list[QueueState] = [q for ch in engine.channels.values() for q in ch.queues.values()]
    index = {id(q): i for i, q in enumerate(queues)}
    tickets = [
        (
            ticket_id,
            index[id(t.q)],
            t.created_ts,
            t.priority,
            t.status,
            t.responses,
            t.solved_ts,
            t.reopened,
            [
                None
                if c is None
                else (
                    c.target,
                    c.elapsed,
                    None if math.isnan(c.since) else c.since,
                    c.stopped,
                    c.breached,
                    c.risk,
                )
                for c in t.clocks
            ],
        )
        for ticket_id, t in engine.tickets.items()
    ]
    own = engine.export_state()
    stored = StoredEngine(
        now=engine.now,
        watermark=engine.watermark,
        next_second=own.next_second,
        channels=[
            StoredChannel(
                ch.name,
                _windows(ch.windows.export()),
                list(ch.ratings),
                list(ch.complaints.items()),
                ch.voice,
            )
            for ch in engine.channels.values()
        ],
        queues=[_queue(q) for q in queues],
        contacts=[
            (cid, index[id(c.q)], c.queued_ts, c.answered_ts, c.breached, c.agent_id)
            for cid, c in engine.contacts.items()
        ],
        talking=own.talking,
        tickets=tickets,
        dedup=_dedup(engine.dedup.export()),
        solved=own.solved,
        early=[
            (key[0], key[1], ts, seq, msgspec.json.encode(event), _plain(token))
            for key, (ts, seq, event, token) in own.early
        ],
        early_seq=own.early_seq,
        capacity=list(engine.capacity_exhausted.items()),
        workforce=engine.workforce.export(),
        carried=[
            tid
            for tid, t in engine.tickets.items()
            if t.solved_ts is None and (res := t.clocks[2]) is not None and res.carried
        ],
    )
    return Snapshot(
        format_version=FORMAT_VERSION,
        shape=shape_of(engine.settings),
        fingerprint=fingerprint(engine.settings),
        created_at=time.time(),
        offsets=sorted((topic, part, off) for (topic, part), off in offsets.items()),
        engine=stored,
    )


# ------------------------------------------------------------------ encode / decode

_ENCODER = msgspec.msgpack.Encoder()
_DECODER = msgspec.msgpack.Decoder(Snapshot)


def encode(snapshot: Snapshot) -> bytes:
    """Header (magic, version, length, digest) and the msgpack payload."""
    payload = _ENCODER.encode(snapshot)
    digest = hashlib.blake2b(payload, digest_size=_DIGEST_SIZE).digest()
    return _HEADER.pack(MAGIC, FORMAT_VERSION, len(payload), digest) + payload


def decode(data: bytes) -> Snapshot:
    """Check header and digest, then decode; any problem is a :class:`SnapshotError`."""
    if len(data) < _HEADER.size:
        raise SnapshotError(f"truncated: {len(data)} bytes, shorter than the header")
    magic, version, length, digest = _HEADER.unpack_from(data)
    if magic != MAGIC:
        raise SnapshotError("not a support-monitor snapshot (bad magic bytes)")
    if version != FORMAT_VERSION:
        raise SnapshotError(
            f"format version {version} is not supported (this build reads {FORMAT_VERSION}; "
            "rebuild the state from the broker)"
        )
    payload = data[_HEADER.size :]
    if len(payload) != length:
        raise SnapshotError(f"truncated: payload is {len(payload)} bytes, header says {length}")
    if hashlib.blake2b(payload, digest_size=_DIGEST_SIZE).digest() != digest:
        raise SnapshotError("checksum mismatch: the file is corrupt")
    try:
        snapshot = _DECODER.decode(payload)
    except msgspec.DecodeError as exc:
        raise SnapshotError(f"payload does not decode: {exc}") from None
    if snapshot.format_version != FORMAT_VERSION:
        raise SnapshotError(f"payload format version {snapshot.format_version} is not supported")
    return snapshot


# ------------------------------------------------------------------ restore


def _restore_agg(s: StoredAgg) -> Agg:
    a = Agg()
    if len(s.ints) > len(_AGG_INTS):
        raise SnapshotError("a window aggregate has more counts than this build knows")
    # A snapshot of an older build has fewer counts (those it lacks start at 0).
    for name, value in zip(_AGG_INTS, s.ints, strict=False):
        setattr(a, name, value)
    a.waits = dict(s.waits)
    return a


def _restore_windows(s: StoredWindows, count: int) -> WindowsState:
    if len(s.cuts) != count or len(s.totals) != count:
        raise SnapshotError("window count differs from the config")
    pending = s.pending_day
    return WindowsState(
        s.cuts,
        [_restore_agg(t) for t in s.totals],
        [(key, _restore_agg(stored)) for key, stored in s.buckets],
        None if pending is None else (pending[0], _restore_agg(pending[1])),
    )


def _restore_hist(s: StoredHistogram) -> Histogram:
    h = Histogram(tuple(s.bounds))
    if len(s.counts) != len(s.bounds) + 1:
        raise SnapshotError("a histogram's counts do not match its bounds")
    h.counts = list(s.counts)
    h.sum = s.sum
    h.count = s.count
    return h


def _restore_dedup(engine: Engine, s: StoredDedup) -> bool:
    """Restore the de-duplication window; ``False`` when it was taken with another id hash."""
    if s.seed is None or s.probe != id_hash(_HASH_PROBE_TEXT, s.seed):
        return False
    engine.dedup.restore(DedupState(s.seed, s.current_second, s.buckets, s.forgotten))
    return True


def restore(snapshot: Snapshot, settings: Settings) -> Engine:
    """A new engine for ``settings`` holding the snapshot's state (shape already checked)."""
    engine = Engine(settings)
    s = snapshot.engine
    stored_channels = {c.name: c for c in s.channels}
    for name, ch in engine.channels.items():
        sc = stored_channels[name]
        ch.windows.restore(_restore_windows(sc.windows, len(ch.windows.names)))
        if len(sc.ratings) != len(ch.ratings):
            raise SnapshotError("ratings do not have 5 levels")
        ch.ratings = list(sc.ratings)
        ch.complaints = dict(sc.complaints)
        ch.voice.restore(sc.voice)
        ch.queues = {}
    queues: list[QueueState] = []
    for sq in s.queues:
        ch = engine.channels[sq.channel]
        q = _new_queue(ch, sq, engine.wait_bounds, engine.calendar_of)
        queues.append(q)
    contacts: dict[str, Contact] = {}
    for cid, qi, queued_ts, answered_ts, breached, agent_id in s.contacts:
        contacts[cid] = Contact(_at(queues, qi), cid, queued_ts, answered_ts, breached, agent_id)
    engine.contacts = contacts
    for q, sq in zip(queues, s.queues, strict=True):
        q.waiting = {cid: contacts[cid] for cid in sq.waiting}
        q.pending = {cid: contacts[cid] for cid in sq.pending}
    engine.tickets = _restore_tickets(s, queues)
    for tid in s.carried:
        t = engine.tickets.get(tid)
        if t is not None and t.solved_ts is None and (res := t.clocks[2]) is not None:
            res.carried = True
    engine.restore_state(_restore_own(engine, s))
    engine.workforce.restore(s.workforce)
    for kind, count in s.capacity:
        engine.capacity_exhausted[kind] = count
    engine.now = s.now
    engine.watermark = s.watermark
    if not _restore_dedup(engine, s.dedup):
        log.warning(
            "snapshot_dedup_window_dropped",
            reason="taken with another id hash (an older build)",
        )
    engine.apply_thresholds()  # the config's targets, as a reload would apply them
    return engine


def _restore_tickets(s: StoredEngine, queues: list[QueueState]) -> dict[str, Ticket]:
    """The tickets, and what their queues and channels derive from them: the open-ticket heaps,
    open counts by priority, at-risk counts, paused counts, and the open tickets awaiting or
    overdue a first response."""
    tickets: dict[str, Ticket] = {}
    for tid, qi, created, priority, status, responses, solved, reopened, clocks in s.tickets:
        q = _at(queues, qi)
        t = Ticket(
            q,
            created,
            priority,
            _restore_clocks(clocks),
            status,
            responses,
            solved,
            reopened,
        )
        tickets[tid] = t
        if solved is None:
            q.open_heap.append((created, tid))
            q.channel.open_by_priority[priority] += 1
            q.awaiting_first_response += responses == 0
            first = t.clocks[0]
            q.overdue_first_response += first is not None and first.breached and not first.stopped
            for i, c in enumerate(t.clocks):
                if c is not None and c.risk:
                    q.at_risk[i] += 1
            Engine.update_paused(t)
    for q in queues:
        heapq.heapify(q.open_heap)
    return tickets


def _restore_own(engine: Engine, s: StoredEngine) -> EngineState:
    """The engine's own bookkeeping (``contacts`` and ``tickets`` already restored)."""
    for tid in s.solved:
        if engine.tickets[tid].solved_ts is None:
            raise SnapshotError("a ticket listed as solved is open")
    return EngineState(s.next_second, s.talking, s.solved, _restore_early(engine, s), s.early_seq)


def _restore_early(engine: Engine, s: StoredEngine) -> list[tuple[HeldKey, Held]]:
    early: list[tuple[HeldKey, Held]] = []
    max_bytes = engine.settings.ingest.max_event_bytes
    for is_ticket, item_id, ts, seq, raw, stored_token in s.early:
        try:
            event = decode_event(raw, max(max_bytes, len(raw)))
        except EventError as exc:
            raise SnapshotError(f"a held outcome does not decode: {exc}") from None
        key = (is_ticket, item_id)
        # msgpack has one array type: a tuple token comes back as a tuple
        token = tuple(stored_token) if isinstance(stored_token, list) else stored_token
        early.append((key, (ts, seq, event, token)))
    return early


def _restore_clocks(
    stored: list[StoredClock | None],
) -> tuple[Clock | None, Clock | None, Clock | None]:
    fr, nr, res = (None if c is None else _restore_clock(c) for c in stored)
    return fr, nr, res


def _restore_clock(c: StoredClock) -> Clock:
    target, elapsed, since, stopped, breached, risk = c
    start = math.nan if since is None else since
    return Clock(target, elapsed, start, stopped=stopped, breached=breached, risk=risk)


def _new_queue(
    ch: ChannelRuntime,
    sq: StoredQueue,
    wait_bounds: tuple[float, ...],
    engine_calendar: Callable[[QueueState], Calendar],
) -> QueueState:
    q = QueueState(ch, sq.name, wait_bounds)
    for name, value in zip(_QUEUE_INTS, sq.ints, strict=True):
        setattr(q, name, value)
    if len(sq.breaches) != len(q.breaches):
        raise SnapshotError("a queue's breach counts do not have 3 clocks")
    q.breaches = list(sq.breaches)
    q.calendar = engine_calendar(q)
    q.last_queued_ts = sq.last_queued_ts
    q.ordered = sq.ordered
    q.wait_hist = _restore_hist(sq.wait_hist)
    q.handle_hist = _restore_hist(sq.handle_hist)
    q.fr_hist = _restore_hist(sq.fr_hist)
    q.res_hist = _restore_hist(sq.res_hist)
    ch.queues[sq.name] = q
    return q


_Q = TypeVar("_Q")


def _at(queues: Sequence[_Q], index: int) -> _Q:
    """``queues[index]`` for a stored queue index; a negative one is out of range too (Python
    would count it from the end, and put a contact on another queue)."""
    if not 0 <= index < len(queues):
        raise IndexError(f"stored queue index {index} is not one of the {len(queues)} queues")
    return queues[index]


def check(snapshot: Snapshot, settings: Settings) -> None:
    """Refuse a snapshot taken under a config of another shape."""
    current = shape_of(settings)
    stored = msgspec.json.decode(msgspec.json.encode(snapshot.shape))  # normalise containers
    normal = msgspec.json.decode(msgspec.json.encode(current))
    if stored != normal:
        raise SnapshotError(
            "taken under an incompatible config (restart from the broker needed): "
            + _shape_difference(stored, normal)
        )
    kafka = settings.sources.kafka
    stored_topics = sorted({topic for topic, _, _ in snapshot.offsets})
    if kafka is not None and stored_topics and not set(stored_topics) & set(kafka.topics):
        # another daemon's state (or a renamed topic): the topics read from the beginning
        # would be counted on top of it
        raise SnapshotError(
            "taken while consuming other topics (restart from the broker needed): "
            f"offsets of {stored_topics}, sources.kafka.topics {list(kafka.topics)}"
        )
    live = {name for name, ch in settings.channels.items() if ch.answer_seconds is not None}
    queues = snapshot.engine.queues
    for contact in snapshot.engine.contacts:
        channel = _at(queues, contact[1]).channel
        if channel not in live:
            raise SnapshotError(
                "taken under an incompatible config (restart from the broker needed): "
                f"channels.{channel}.answer_seconds removed while contacts of the channel are open"
            )


def from_bytes(data: bytes, settings: Settings) -> tuple[Engine, Offsets, Snapshot]:
    """Decode, check and restore (the GC paused: decoding builds millions of acyclic objects)."""
    with _gc_paused():
        return _from_bytes(data, settings)


def _from_bytes(data: bytes, settings: Settings) -> tuple[Engine, Offsets, Snapshot]:
    snapshot = decode(data)
    try:
        check(snapshot, settings)
        engine = restore(snapshot, settings)
    except (KeyError, IndexError, ValueError, TypeError) as exc:
        raise SnapshotError(f"inconsistent state in the snapshot: {exc!r}") from None
    offsets = {(topic, part): off for topic, part, off in snapshot.offsets}
    return engine, offsets, snapshot


# ------------------------------------------------------------------ files


def write_atomic(path: Path, data: bytes) -> None:
    """Write to a temporary file, fsync, rename over ``path``, fsync the directory: a crash
    leaves either the old or the new snapshot, never a half-written one. Blocking: run it in a
    thread from async code."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        with tmp.open("wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        tmp.replace(path)
    except BaseException:
        with contextlib.suppress(OSError):  # a part written to a full disk would keep it full
            tmp.unlink(missing_ok=True)
        raise
    fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def save(
    engine: Engine,
    offsets: Mapping[tuple[str, int], int],
    path: Path,
    detectors: dict[str, Any] | None = None,
) -> int:
    """Capture, encode and write atomically (blocking). Returns the bytes written."""
    data = encode(capture(engine, offsets, detectors))
    write_atomic(path, data)
    return len(data)


async def save_async(
    engine: Engine,
    offsets: Mapping[tuple[str, int], int],
    path: Path,
    detectors: dict[str, Any] | None = None,
) -> int:
    """Capture and encode on the loop (one consistent state between two events), write in a
    thread (the disk and fsync never block the loop). ``detectors``: the suite's exported state,
    taken on the loop right before this call (no await in between)."""
    data = encode(capture(engine, offsets, detectors))
    await asyncio.to_thread(write_atomic, path, data)
    return len(data)


def load(path: Path, settings: Settings) -> tuple[Engine, Offsets]:
    """The engine and offsets stored at ``path``; :class:`SnapshotError` when it cannot be used
    (missing, unreadable, corrupt, other format version, incompatible config)."""
    engine, offsets, _ = load_full(path, settings)
    return engine, offsets


def load_full(path: Path, settings: Settings) -> tuple[Engine, Offsets, Snapshot]:
    """As :func:`load`, plus the decoded snapshot (its ``detectors`` state, ``created_at``)."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise SnapshotError(f"{path}: no snapshot") from None
    except OSError as exc:
        raise SnapshotError(f"{path}: cannot read: {exc.strerror}") from None
    try:
        return from_bytes(data, settings)
    except SnapshotError as exc:
        raise SnapshotError(f"{path}: {exc}") from None
