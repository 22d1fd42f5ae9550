"""The de-duplication window survives a restart: ids are kept as a seeded XXH3-64 hash, not
Python's per-process salted ``hash()``, and the seed is saved with them, so a snapshot written by
one process de-duplicates in another process that runs under a different ``PYTHONHASHSEED``."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import msgspec

from support_monitor.monitor.config import parse_settings
from support_monitor.monitor.engine import snapshot
from support_monitor.monitor.engine.dedup import Deduplicator, id_hash
from support_monitor.monitor.engine.engine import Engine
from support_monitor.monitor.pipeline import Delivery, Pipeline
from support_monitor.monitor.stats import DaemonStats

REPO = Path(__file__).resolve().parents[3]


def test_id_hash_is_xxh3_64_of_the_utf8_bytes() -> None:
    # Test vectors of the xxHash reference implementation (XXH3_64bits, seed 0).
    assert id_hash("", 0) == 0x2D06800538D394C2
    assert id_hash("a", 0) == 0xE6C632B61E964E1F
    assert id_hash("a", 1) != id_hash("a", 0)  # the seed changes every hash
    # Non-ASCII ids hash their UTF-8 bytes; a lone surrogate still hashes instead of raising.
    assert id_hash("é", 0) != id_hash("e", 0)
    assert 0 <= id_hash("\ud800", 0) < 2**64


def test_new_windows_draw_their_own_seed() -> None:
    """A producer cannot predict the hashes (and craft collisions): every empty window draws a
    64-bit seed. Two equal seeds out of 20 draws: probability about 1e-17."""
    seeds = {Deduplicator(10, 60).seed for _ in range(20)}
    assert len(seeds) == 20
    assert all(0 <= s < 2**64 for s in seeds)


def test_a_restored_window_keeps_its_seed() -> None:
    cfg = parse_settings(CFG)
    engine = Engine(cfg)
    engine.dedup.add("ticket-created-1", 1000.0)
    restored, _, _ = snapshot.from_bytes(snapshot.encode(snapshot.capture(engine, {})), cfg)
    assert restored.dedup.seed == engine.dedup.seed
    assert restored.dedup.seen("ticket-created-1")
    assert not restored.dedup.seen("ticket-created-2")


def test_same_hash_under_different_hash_seeds() -> None:
    code = "from monitor.engine.dedup import id_hash as h; print(h('id-42', 7), hash('id-42'))"
    outs = []
    for seed in ("1", "2"):
        env = {**os.environ, "PYTHONHASHSEED": seed, "PYTHONPATH": str(REPO)}
        out = subprocess.run(
            [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True
        ).stdout.split()
        outs.append(out)
    assert outs[0][0] == outs[1][0]  # the stable hash agrees
    assert outs[0][1] != outs[1][1]  # while Python's hash() differs: the seeds did take effect


def test_window_keeps_ids_until_the_horizon() -> None:
    d = Deduplicator(max_ids=100, horizon=60, seed=0)
    d.add("a", 1000.0)
    d.add("b", 1030.0)
    assert d.seen("a")
    assert d.seen("b")
    d.expire(1061.0)  # "a" (second 1000) is more than 60 s behind; "b" is not
    assert not d.seen("a")
    assert d.seen("b")


CFG = {
    "windows": ["5m"],
    "ingest": {"dedup_horizon": 900},
    "channels": {
        "email": {"first_response_seconds": 120, "resolution_seconds": 400, "queues": ["default"]}
    },
}

# One process feeds events through the pipeline and saves a snapshot, or loads the snapshot
# and feeds events again; it prints applied and duplicate counts as JSON.
SCRIPT = textwrap.dedent(
    """
    import json, sys
    from datetime import UTC, datetime
    from pathlib import Path

    from support_monitor.monitor.config import parse_settings
    from support_monitor.monitor.engine import snapshot
    from support_monitor.monitor.engine.engine import Engine
    from support_monitor.monitor.pipeline import Delivery, Pipeline
    from support_monitor.monitor.stats import DaemonStats

    mode, path, cfg_json, first, last = sys.argv[1:6]
    cfg = parse_settings(json.loads(cfg_json))
    engine = Engine(cfg) if mode == "write" else snapshot.load(Path(path), cfg)[0]
    stats = DaemonStats()
    pipeline = Pipeline(engine, stats, event_clock=True, log_burst=0)
    t0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC).timestamp()
    for i in range(int(first), int(last)):
        event = {
            "event_id": f"ticket-created-{i}",
            "ts": datetime.fromtimestamp(t0 + i, UTC).isoformat(),
            "type": "ticket.created",
            "channel": "email",
            "queue": "default",
            "ticket_id": f"t{i}",
        }
        pipeline.process("test", Delivery(json.dumps(event).encode(), f"line:{i}"))
    if mode == "write":
        snapshot.save(engine, {}, Path(path))
    print(json.dumps({
        "applied": sum(stats.events.values()),
        "duplicates": stats.duplicates["test"],
        "open": len(engine.tickets),
    }))
    """
)


def _run(seed: str, *args: str) -> dict[str, int]:
    env = {**os.environ, "PYTHONHASHSEED": seed, "PYTHONPATH": str(REPO)}
    out = subprocess.run(
        [sys.executable, "-c", SCRIPT, *args],
        env=env,
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    # the last line: a log line (e.g. snapshot_dedup_window_dropped) may come before it
    result: dict[str, int] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


def test_snapshot_dedups_in_a_process_with_another_hash_seed(tmp_path: Path) -> None:
    path = str(tmp_path / "engine.snapshot")
    cfg = json.dumps(CFG)
    # Process 1 (seed 1): 30 tickets created, one a second, all within the 900 s horizon.
    assert _run("1", "write", path, cfg, "0", "30") == {"applied": 30, "duplicates": 0, "open": 30}
    # Process 2 (seed 2): the same 30 events redelivered after the restart are all duplicates;
    # 5 new ones (ids 30..34) are applied.
    assert _run("2", "read", path, cfg, "0", "35") == {"applied": 5, "duplicates": 30, "open": 35}


def test_window_of_an_older_build_is_dropped_the_rest_restored() -> None:
    """A snapshot written before the seed existed (4 fields, ``hash()`` values) loads with
    ``seed=None``: its window cannot be trusted and is dropped; the open tickets stay."""
    old = msgspec.msgpack.encode([12345, 1000, [[1000, [111, 222]]], []])
    stored = msgspec.msgpack.decode(old, type=snapshot.StoredDedup)
    assert stored.seed is None
    cfg = parse_settings(CFG)
    engine = Engine(cfg)
    event = {
        "event_id": "ticket-created-1",
        "ts": "2026-03-02T09:00:00+00:00",
        "type": "ticket.created",
        "channel": "email",
        "queue": "default",
        "ticket_id": "t1",
    }
    Pipeline(engine, DaemonStats(), event_clock=True, log_burst=0).process(
        "test", Delivery(json.dumps(event).encode(), "line:0")
    )
    assert engine.dedup.seen("ticket-created-1")
    snap = snapshot.capture(engine, {})
    snap.engine.dedup = stored
    restored, _, _ = snapshot.from_bytes(snapshot.encode(snap), cfg)
    assert len(restored.dedup) == 0
    assert list(restored.tickets) == ["t1"]
