"""Snapshot cost per 100,000 open items: size, capture (on the loop), encode, write + fsync,
and load (decode + checks + restore + timer rebuild), for waiting contacts, open tickets and a
mix, with a full de-duplication window of the ids that opened them.

    python bench/recovery.py [--items 100000] [--dir /tmp]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from monitor.config import parse_settings
from monitor.engine import snapshot
from monitor.engine.engine import Engine
from monitor.events import ContactQueued, TicketCreated
from tests.support import CONFIG, T0


def build(kind: str, items: int) -> Engine:
    cfg = parse_settings({**CONFIG, "ingest": {"dedup_max_ids": 2 * items}})
    engine = Engine(cfg)
    step = 3600.0 / items  # one hour of arrivals
    for i in range(items):
        ts = T0 + i * step
        engine.advance(ts)
        event_id = f"evt-{i:09d}"
        if kind == "contacts" or (kind == "mixed" and i % 2 == 0):
            queue = ("billing", "tech")[i % 2]
            ev: ContactQueued | TicketCreated = ContactQueued(
                event_id=event_id, ts=_dt(ts), channel="voice", queue=queue,
                contact_id=f"contact-{i:09d}")
        else:
            ev = TicketCreated(event_id=event_id, ts=_dt(ts), channel="email",
                               ticket_id=f"ticket-{i:09d}")
        engine.apply(ev, ts)
        engine.dedup.add(event_id, ts)
    return engine


def _dt(ts: float) -> datetime:
    return datetime.fromtimestamp(ts, UTC)


def measure(kind: str, items: int, directory: Path) -> dict[str, float]:
    engine = build(kind, items)
    # Contacts far past T would be breached on the first decision; keep them waiting.
    path = directory / f"bench-{kind}.snapshot"
    offsets = {("support-events", p): 1_000_000 for p in range(6)}
    t0 = time.perf_counter()
    captured = snapshot.capture(engine, offsets)
    t1 = time.perf_counter()
    data = snapshot.encode(captured)
    t2 = time.perf_counter()
    snapshot.write_atomic(path, data)
    t3 = time.perf_counter()
    restored, _ = snapshot.load(path, engine.settings)
    t4 = time.perf_counter()
    assert len(restored.contacts) == len(engine.contacts)
    assert len(restored.tickets) == len(engine.tickets)
    path.unlink()
    return {
        "bytes": len(data),
        "capture_ms": (t1 - t0) * 1000,
        "encode_ms": (t2 - t1) * 1000,
        "write_fsync_ms": (t3 - t2) * 1000,
        "load_ms": (t4 - t3) * 1000,
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--items", type=int, default=100_000)
    parser.add_argument("--dir", type=Path, default=None)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(dir=args.dir) as tmp:
        print(f"{'open items':<22}{'size MB':>9}{'capture ms':>12}{'encode ms':>11}"
              f"{'write+fsync ms':>16}{'load ms':>9}")
        for kind in ("contacts", "tickets", "mixed"):
            m = measure(kind, args.items, Path(tmp))
            label = f"{args.items:,} {kind}"
            print(f"{label:<22}{m['bytes'] / 1e6:>9.2f}{m['capture_ms']:>12.0f}"
                  f"{m['encode_ms']:>11.0f}{m['write_fsync_ms']:>16.0f}{m['load_ms']:>9.0f}")


if __name__ == "__main__":
    main()
