"""Engine snapshots: an engine restored from a snapshot taken at any point and fed the rest of a
stream ends in exactly the state of the engine that never stopped; bad snapshots are refused."""

from __future__ import annotations

import errno
import json
import math
import os
import random
import struct
from pathlib import Path
from typing import Any

import msgspec
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from support_monitor.monitor.config import Settings, parse_settings
from support_monitor.monitor.engine import snapshot
from support_monitor.monitor.engine.engine import Engine
from support_monitor.monitor.engine.readout import series
from support_monitor.monitor.engine.snapshot import SnapshotError
from tests.monitor.engine.random_streams import CFG, streams
from tests.monitor.engine.snapshot_streams import LONG_CFG, feed, random_stream
from tests.support import CONFIG as SUPPORT_CONFIG
from tests.support import T0, Stream, iso, run, ticket_voice, value


def _rows(engine: Engine) -> list[tuple[str, Any, float | str]]:
    return [(r.name, r.labels, "nan" if math.isnan(r.value) else r.value) for r in series(engine)]


def _hists(engine: Engine) -> list[Any]:
    return [
        (ch.name, q.name, h.bounds, h.counts, h.sum, h.count)
        for ch in engine.channels.values()
        for q in ch.queues.values()
        for h in (q.wait_hist, q.handle_hist, q.fr_hist, q.res_hist)
    ]


def _state(engine: Engine) -> snapshot.StoredEngine:
    return snapshot.capture(engine, {}).engine


def _timers(engine: Engine) -> list[tuple[float, int, str]]:
    """Timers that can still take effect (the original heap also holds spent entries)."""
    return sorted(engine.timers())


def _round_trip(
    engine: Engine, cfg: Settings, offsets: dict[tuple[str, int], int] | None = None
) -> Engine:
    data = snapshot.encode(snapshot.capture(engine, offsets or {}))
    restored, got_offsets, _ = snapshot.from_bytes(data, cfg)
    assert got_offsets == (offsets or {})
    return restored


def _assert_same(a: Engine, b: Engine) -> None:
    assert _rows(a) == _rows(b)
    assert _hists(a) == _hists(b)
    assert _state(a) == _state(b)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(streams(), st.floats(0, 1))
def test_restored_engine_continues_exactly(
    case: tuple[list[dict[str, Any]], float], cut: float
) -> None:
    events, until = case
    lines = [json.dumps(e).encode() for e in events]
    split = int(cut * len(lines))
    cfg = parse_settings(CFG)
    original = Engine(cfg)
    feed(original, lines[:split])
    restored = _round_trip(original, cfg)
    _assert_same(original, restored)
    for engine in (original, restored):
        feed(engine, lines[split:])
        engine.flush(T0 + until)
    _assert_same(original, restored)


# --- a longer random stream: late events, reopen, retention, many restores ------------------


@pytest.mark.parametrize("seed", [1, 2, 3, 4])
def test_many_restores_along_a_long_stream(seed: int) -> None:
    cfg = parse_settings(LONG_CFG)
    lines = random_stream(seed, 4000)
    cuts = sorted(random.Random(seed).sample(range(1, len(lines)), 6))
    original, restored = Engine(cfg), Engine(cfg)
    restored.dedup.seed = original.dedup.seed  # each new window draws a random hash seed
    start = 0
    for cut in [*cuts, len(lines)]:
        feed(original, lines[start:cut])
        feed(restored, lines[start:cut])
        restored = _round_trip(restored, cfg, {("events", 0): cut})
        _assert_same(original, restored)
        start = cut
    for engine in (original, restored):
        engine.advance(engine.now + 30)
        engine.flush(engine.now + 2000)
    _assert_same(original, restored)


def test_timers_are_rebuilt_from_open_items() -> None:
    cfg = parse_settings(LONG_CFG)
    engine = Engine(cfg)
    feed(engine, random_stream(9, 1500))
    restored = _round_trip(engine, cfg)
    live = {(when, kind, key) for when, kind, key in engine.timers()}
    rebuilt = set(_timers(restored))
    due = {t for t in rebuilt if t[0] <= engine.watermark}
    assert rebuilt - due <= live  # nothing invented; the original's spent entries are dropped
    assert rebuilt - due
    # Timers already due (deadlines of open, already breached tickets) fire again and change
    # nothing: deciding at the same watermark leaves the state as it was.
    restored._decide(restored.watermark)
    _assert_same(engine, restored)


def test_ticket_opened_days_ago_keeps_its_deadlines(tmp_path: Path) -> None:
    cfg = parse_settings(
        {
            "windows": ["1h"],
            "channels": {
                "email": {
                    "first_response_seconds": "1d",
                    "resolution_seconds": "3d",
                    "queues": ["default"],
                }
            },
        }
    )
    engine = Engine(cfg)
    created = T0 - 2 * 86400
    feed(
        engine,
        [
            json.dumps(
                {
                    "event_id": "old",
                    "type": "ticket.created",
                    "ts": iso(created),
                    "channel": "email",
                    "ticket_id": "T1",
                }
            ).encode(),
            json.dumps(
                {"event_id": "now", "type": "complaint.received", "ts": iso(T0), "channel": "email"}
            ).encode(),
        ],
    )
    engine.advance(T0 + 10)
    path = tmp_path / "engine.snapshot"
    snapshot.save(engine, {("events", 0): 2}, path)
    restored, offsets = snapshot.load(path, cfg)
    assert offsets == {("events", 0): 2}

    def breaches(e: Engine, sla: str) -> float:
        return next(
            r.value
            for r in series(e)
            if r.name == "support_sla_breaches_total" and r.label("sla") == sla
        )

    assert breaches(restored, "first_response") == 1  # decided before the snapshot, kept once
    assert breaches(restored, "resolution") == 0
    restored.advance(created + 3 * 86400 - 3600)  # inside the 10% warning lead
    risk = [
        r.value
        for r in series(restored)
        if r.name == "support_tickets_at_risk" and r.label("sla") == "resolution"
    ]
    assert risk == [1]
    restored.advance(created + 3 * 86400 + 10)
    assert breaches(restored, "resolution") == 1
    assert breaches(restored, "first_response") == 1
    # The breach is stamped at the deadline: it is in the 1h window ending just after it.
    assert restored.channels["email"].windows.total("1h").breaches_resolution == 1


def test_save_is_atomic_and_leaves_no_temporary_files(tmp_path: Path) -> None:
    cfg = parse_settings(LONG_CFG)
    engine = Engine(cfg)
    feed(engine, random_stream(5, 500))
    path = tmp_path / "state" / "engine.snapshot"
    size = snapshot.save(engine, {("t", 1): 7}, path)
    assert path.stat().st_size == size
    assert [p.name for p in path.parent.iterdir()] == ["engine.snapshot"]
    again, offsets = snapshot.load(path, cfg)
    assert offsets == {("t", 1): 7}
    _assert_same(engine, again)


def test_a_write_that_fails_leaves_no_temporary_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A disk that fills up during the write: the error goes to the caller (which logs it and
    keeps the old snapshot), and the part written is removed, or a full disk would stay full
    (the audit of 2026-12-01 found one such file per failed attempt and process)."""
    path = tmp_path / "engine.snapshot"
    path.write_bytes(b"old")

    def full(fd: int) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "fsync", full)
    with pytest.raises(OSError, match="No space left"):
        snapshot.write_atomic(path, b"new" * 1000)
    assert [p.name for p in tmp_path.iterdir()] == ["engine.snapshot"]
    assert path.read_bytes() == b"old"


async def test_save_async_writes_the_same_bytes(tmp_path: Path) -> None:
    cfg = parse_settings(LONG_CFG)
    engine = Engine(cfg)
    feed(engine, random_stream(6, 300))
    path = tmp_path / "engine.snapshot"
    await snapshot.save_async(engine, {}, path)
    _assert_same(engine, snapshot.load(path, cfg)[0])


# --- refused snapshots -----------------------------------------------------------------------


@pytest.fixture
def saved(tmp_path: Path) -> tuple[Path, Settings]:
    cfg = parse_settings(LONG_CFG)
    engine = Engine(cfg)
    feed(engine, random_stream(7, 300))
    path = tmp_path / "engine.snapshot"
    snapshot.save(engine, {("t", 0): 300}, path)
    return path, cfg


def test_corrupt_byte_is_refused(saved: tuple[Path, Settings]) -> None:
    path, cfg = saved
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x40
    path.write_bytes(bytes(data))
    with pytest.raises(SnapshotError, match="checksum mismatch: the file is corrupt"):
        snapshot.load(path, cfg)


@pytest.mark.parametrize("index", [10**6, 2**63, -1])
def test_a_sound_file_naming_a_queue_it_lacks_is_refused(
    saved: tuple[Path, Settings], index: int
) -> None:
    """A digest that matches a payload whose contacts name a queue index out of range (another
    build, a hand edit): refused like any damaged snapshot. An IndexError escaped the config
    check and the start failed, again on every restart; -1 put them on the last queue."""
    path, cfg = saved
    stored = snapshot.decode(path.read_bytes())
    contacts = stored.engine.contacts
    assert contacts
    bad = [(c[0], index, *c[2:]) for c in contacts]
    engine = msgspec.structs.replace(stored.engine, contacts=bad)
    path.write_bytes(snapshot.encode(msgspec.structs.replace(stored, engine=engine)))
    with pytest.raises(SnapshotError, match="queue index"):
        snapshot.load(path, cfg)


def test_truncated_file_is_refused(saved: tuple[Path, Settings]) -> None:
    path, cfg = saved
    path.write_bytes(path.read_bytes()[:-10])
    with pytest.raises(SnapshotError, match="truncated"):
        snapshot.load(path, cfg)
    path.write_bytes(b"SMS")
    with pytest.raises(SnapshotError, match="truncated"):
        snapshot.load(path, cfg)


def test_foreign_file_and_other_version_are_refused(saved: tuple[Path, Settings]) -> None:
    path, cfg = saved
    data = path.read_bytes()
    path.write_bytes(b"X" * 8 + data[8:])
    with pytest.raises(SnapshotError, match="not a support-monitor snapshot"):
        snapshot.load(path, cfg)
    path.write_bytes(data[:8] + struct.pack(">I", 99) + data[12:])
    with pytest.raises(SnapshotError, match="format version 99 is not supported"):
        snapshot.load(path, cfg)


def test_incompatible_config_is_refused_with_what_changed(saved: tuple[Path, Settings]) -> None:
    path, _ = saved
    other = dict(LONG_CFG, windows=["5m", "1h"])
    with pytest.raises(SnapshotError, match=r"incompatible config.*windows \['1m', '5m', '1h'\]"):
        snapshot.load(path, parse_settings(other))
    queues = json.loads(json.dumps(LONG_CFG))
    queues["channels"]["chat"]["queues"] = ["sales", "support"]
    with pytest.raises(SnapshotError, match="channels"):
        snapshot.load(path, parse_settings(queues))


def test_offsets_of_topics_no_longer_consumed_are_refused(saved: tuple[Path, Settings]) -> None:
    """Offsets of topic "t" only: a daemon consuming other topics would read them from their
    beginning on top of these counts. Kept when one stored topic is still consumed, or when
    no Kafka source is configured (nothing is read again)."""
    path, _ = saved

    def with_topics(*topics: str) -> Settings:
        kafka = {"bootstrap_servers": "127.0.0.1:1", "topics": list(topics)}
        sources = {"kafka": kafka, "simulator": {"enabled": False}}
        return parse_settings(dict(LONG_CFG, sources=sources))

    with pytest.raises(SnapshotError, match=r"other topics.*offsets of \['t'\].*\['u', 'v'\]"):
        snapshot.load(path, with_topics("u", "v"))
    assert snapshot.load(path, with_topics("t", "u"))[1] == {("t", 0): 300}
    assert snapshot.load(path, parse_settings(LONG_CFG))[1] == {("t", 0): 300}


def test_a_threshold_change_is_accepted_like_a_reload(saved: tuple[Path, Settings]) -> None:
    path, _ = saved
    changed = json.loads(json.dumps(LONG_CFG))
    changed["channels"]["voice"]["answer_seconds"] = 30
    engine, _ = snapshot.load(path, parse_settings(changed))
    assert engine.channels["voice"].settings.answer_seconds == 30


def test_missing_file_is_refused(tmp_path: Path) -> None:
    with pytest.raises(SnapshotError, match="no snapshot"):
        snapshot.load(tmp_path / "nothing", parse_settings(LONG_CFG))


def test_dedup_window_is_dropped_under_another_hash_salt(saved: tuple[Path, Settings]) -> None:
    path, cfg = saved
    snap = snapshot.decode(path.read_bytes())
    assert len(snap.engine.dedup.buckets) > 0
    snap.engine.dedup.probe += 1  # as written with another id hash
    engine, _, _ = snapshot.from_bytes(snapshot.encode(snap), cfg)
    assert len(engine.dedup) == 0
    original, _ = snapshot.load(path, cfg)
    assert len(original.dedup) > 0
    assert _rows(engine) == _rows(original)


VOICE = {"channel": "voice", "queue": "billing"}


def _restart(engine: Engine, cfg: Settings) -> Engine:
    restored, _, _ = snapshot.from_bytes(snapshot.encode(snapshot.capture(engine, {})), cfg)
    return restored


def _config(**channels: dict[str, Any]) -> Settings:
    data = json.loads(json.dumps(SUPPORT_CONFIG))
    for name, fields in channels.items():
        data["channels"][name].update(fields)
    return parse_settings(data)


def test_a_restart_applies_changed_ticket_targets_as_a_reload_does() -> None:
    """First response 1 h when the ticket opens at 0, 2 h after a restart at 30 min: the reply
    at 90 min is within the 2 h target, so no breach (the old 1 h deadline must not count)."""
    s = Stream()
    s.add("ticket.created", 0, "email", ticket_id="t1")
    engine, _ = run(s.lines, until=1800)
    longer = _config(email={"first_response_seconds": 7200})
    restored = _restart(engine, longer)
    reloaded, _ = run(s.lines, until=1800)
    reloaded.reconfigure(longer)
    fr = {"channel": "email", "queue": "default", "sla": "first_response"}
    for after in (restored, reloaded):
        reply = Stream()
        reply.add("ticket.responded", 5400, "email", event_id="r1", ticket_id="t1")
        feed(after, reply.lines)
        after.flush(T0 + 8000)
        assert value(after, "support_sla_breaches_total", **fr) == 0
    restored = _restart(run(s.lines, until=1800)[0], _config(email={"first_response_seconds": 600}))
    restored.flush(T0 + 1801)  # a shorter target already passed: breached at the next decision
    assert value(restored, "support_sla_breaches_total", **fr) == 1


def test_a_restart_with_a_raised_t_takes_breached_contacts_out_of_the_gauge() -> None:
    """T 20 s: c1 (queued at 0) and c2 (at 10) are breached by 40 s. Restarted at 40 s with
    T 45 s, neither waits past T at 42 s (waits 42 and 32 s): the gauge is 0, as after a reload,
    and c1 is back in it once its wait passes 45 s. The breaches stay counted."""
    s = Stream()
    s.add("contact.queued", 0, "voice", queue="billing", contact_id="c1")
    s.add("contact.queued", 10, "voice", queue="billing", contact_id="c2")
    engine, _ = run(s.lines, until=40)
    assert value(engine, "support_queue_breached_waiting", **VOICE) == 2
    restored = _restart(engine, _config(voice={"answer_seconds": 45}))
    restored.flush(T0 + 42)
    assert value(restored, "support_queue_breached_waiting", **VOICE) == 0
    assert value(restored, "support_sla_breaches_total", **VOICE, sla="answer") == 2
    restored.flush(T0 + 46)
    assert value(restored, "support_queue_breached_waiting", **VOICE) == 1
    again = _restart(restored, _config(voice={"answer_seconds": 45}))  # still right after
    assert value(again, "support_queue_breached_waiting", **VOICE) == 1


def test_contacts_of_a_channel_that_lost_its_answer_target_refuse_the_snapshot() -> None:
    s = Stream()
    s.add("contact.queued", 0, "voice", queue="billing", contact_id="c1")
    engine, _ = run(s.lines, until=5)
    tickets = parse_settings({**SUPPORT_CONFIG, **ticket_voice()})
    with pytest.raises(SnapshotError, match=r"channels\.voice\.answer_seconds removed"):
        _restart(engine, tickets)
    assert _restart(run([], until=5)[0], tickets).channels["voice"].settings.answer_seconds is None
