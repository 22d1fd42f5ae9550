"""Detector state in the engine snapshot: saved with the engine, restored into a new suite (the
restored daemon then judges exactly as the uninterrupted one); snapshots written before detector
state existed still load; the single-node ``Durability`` carries the suite's state."""

from __future__ import annotations

import hashlib
import json
import math
import random
from pathlib import Path
from typing import Any

import msgspec

from support_monitor.detectors.signal import Signal
from support_monitor.detectors.suite import DetectorSuite
from support_monitor.monitor.cluster.durable import Durability
from support_monitor.monitor.engine import snapshot
from tests.detectors.detector_streams import Feed, poisson

CATEGORIES = ["billing", "outage"]
MINUTES = 120
CUT = 67 * 60 + 20  # mid-period


def _feed(**extra: Any) -> Feed:
    return Feed(
        {"complaint_spike": {"prior_per_hour": 90}},  # the stream's usual 1.5 a minute
        ingest={"complaint_categories": CATEGORIES},
        **extra,
    )


def _events(seed: int) -> list[tuple[float, str, str, dict[str, Any]]]:
    rng = random.Random(seed)
    out: list[tuple[float, str, str, dict[str, Any]]] = []
    for m in range(MINUTES):
        out.extend(
            (
                m * 60 + rng.uniform(0, 60),
                "complaint.received",
                "voice",
                {"category": rng.choice(CATEGORIES)},
            )
            for _ in range(poisson(rng, 1.5 + (8 if m % 41 < 3 else 0)))
        )
        if m % 3 == 0:
            at = m * 60 + rng.uniform(0, 30)
            cid = f"c{m}"
            out.append((at, "contact.queued", "voice", {"contact_id": cid, "queue": "billing"}))
            out.append(
                (
                    at + rng.uniform(5, 150),
                    "contact.answered",
                    "voice",
                    {"contact_id": cid, "queue": "billing"},
                )
            )
    return sorted(out, key=lambda e: e[0])


def _run(
    feed: Feed, events: list[tuple[float, str, str, dict[str, Any]]], ticks: list[int]
) -> list[list[tuple[Any, ...]]]:
    out = []
    for at in ticks:
        while events and events[0][0] <= at:
            t, kind, channel, fields = events.pop(0)
            feed.event(kind, t, channel, **fields)
        out.append([_key(s) for s in feed.tick(at)])
    return out


def _key(s: Signal) -> tuple[Any, ...]:
    return (
        s.detector,
        s.channel,
        s.labels,
        s.active,
        repr(s.score),
        repr(s.expected),
        repr(s.threshold),
    )


def _plain(state: object) -> Any:
    return json.loads(json.dumps(state, allow_nan=False))


TICKS = sorted({*range(0, MINUTES * 60 + 1, 60), CUT})
BEFORE = [t for t in TICKS if t <= CUT]
AFTER = [t for t in TICKS if t > CUT]


def test_snapshot_file_carries_detector_state(tmp_path: Path) -> None:
    events = _events(5)
    original = _feed()
    _run(original, events, BEFORE)
    path = tmp_path / "engine.snapshot"
    state = original.suite.export_state()
    snapshot.save(original.engine, {("t", 0): 42}, path, state)

    engine, offsets, snap = snapshot.load_full(path, original.settings)
    assert offsets == {("t", 0): 42}
    assert snap.detectors is not None
    assert _plain(snap.detectors) == _plain(state)
    restored = _feed()
    restored.engine = engine
    restored.suite.restore_state(snap.detectors)
    fresh = _feed()
    fresh.engine, _, _ = snapshot.from_bytes(path.read_bytes(), original.settings)

    a = _run(original, list(events), AFTER)
    b = _run(restored, list(events), AFTER)
    c = _run(fresh, list(events), AFTER)
    assert a == b
    assert a != c  # without the detector state the verdicts differ
    # the engine API without detectors is unchanged
    assert snapshot.load(path, original.settings)[1] == offsets


class _V1(msgspec.Struct, kw_only=True):
    """The snapshot as written before detector state existed."""

    format_version: int
    shape: dict[str, Any]
    fingerprint: str
    created_at: float
    offsets: list[tuple[str, int, int]]
    engine: snapshot.StoredEngine


def _encode_v1(snap: _V1) -> bytes:
    payload = msgspec.msgpack.encode(snap)
    digest = hashlib.blake2b(payload, digest_size=16).digest()
    header = snapshot._HEADER.pack(snapshot.MAGIC, snapshot.FORMAT_VERSION, len(payload), digest)
    return header + payload


def test_snapshot_without_detector_state_still_loads(tmp_path: Path) -> None:
    feed = _feed()
    _run(feed, _events(2), BEFORE[:30])
    new = snapshot.capture(feed.engine, {("t", 0): 7}, feed.suite.export_state())
    old = _V1(
        format_version=new.format_version,
        shape=new.shape,
        fingerprint=new.fingerprint,
        created_at=new.created_at,
        offsets=new.offsets,
        engine=new.engine,
    )
    path = tmp_path / "engine.snapshot"
    snapshot.write_atomic(path, _encode_v1(old))
    engine, offsets, snap = snapshot.load_full(path, feed.settings)
    assert snap.detectors is None
    assert offsets == {("t", 0): 7}
    assert snapshot.capture(engine, {}).engine == new.engine
    # and a build without detector state reads a new snapshot (the field is ignored)
    payload = snapshot.encode(new)[snapshot._HEADER.size :]
    assert msgspec.msgpack.decode(payload, type=_V1).engine == new.engine


class _Holder:
    """What ``Durability.attach_detectors`` takes: the object holding the current suite."""

    def __init__(self, suite: DetectorSuite) -> None:
        self.suite = suite


async def test_durability_saves_and_restores_the_suite(tmp_path: Path) -> None:
    probe = _feed(state={"dir": str(tmp_path)})
    settings = probe.settings
    durable = Durability(settings.state, settings)
    feed = _feed()
    feed.engine = await durable.load_engine()
    assert durable.loaded_detectors is None
    durable.attach_detectors(_Holder(feed.suite))
    _run(feed, _events(9), BEFORE)
    await durable.save("test")

    again = Durability(settings.state, settings)
    await again.load_engine()
    assert again.loaded_detectors is not None
    holder = _Holder(_feed().suite)
    again.attach_detectors(holder)
    assert _plain(holder.suite.export_state()) == _plain(feed.suite.export_state())
    spike = next(d for d in holder.suite.detectors if d.name == "complaint_spike")
    assert spike._series["voice", ""].baseline.glob.n > 5  # type: ignore[attr-defined]

    # a config reload replaces the suite: the next snapshot carries the new one's state
    holder.suite = _feed().suite
    await again.save("test")
    third = Durability(settings.state, settings)
    await third.load_engine()
    assert third.loaded_detectors is not None
    assert math.isinf(holder.suite.last_time)
    assert third.loaded_detectors["last_time"] is None
