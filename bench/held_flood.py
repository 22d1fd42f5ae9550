"""What a flood of outcomes of one item costs per event (an attack, or a producer in a loop).

Every stream: ``--events`` outcomes of one contact or ticket id within 4 s of event time, fed
through the real pipeline (decode, checks, de-duplication, engine; no tick road) with the
default lateness (5 s) and ``limits.max_early_outcomes`` (10,000), then flushed; a bare
``msgspec`` decode loop over the same lines in the same run.

- ``never-opened contact``: ``contact.answered`` of a contact never queued (each held for its
  ``queued``, then ``unknown_contact``);
- ``ticket status flood``: ``ticket.status_changed`` of one open ticket (each waits for the
  watermark);
- ``ticket, one instant``: the same, all stamped at one instant;
- ``answered again``: ``contact.answered`` of one contact already answered (each refused now,
  held for an earlier event that might change that);
- ``surveys of that contact``: the same, every other one replaced by a ``survey.answered``
  naming the contact.

    .venv/bin/python bench/held_flood.py [--events 20000] 2>/dev/null
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import msgspec

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.ticket_order_cost import bare_seconds, feed_seconds
from support_monitor.monitor.config import parse_settings
from support_monitor.monitor.engine.engine import Engine

T0 = datetime(2026, 3, 2, 9, tzinfo=UTC).timestamp()
CONFIG = {
    "channels": {
        "voice": {"answer_seconds": 20},
        "email": {"first_response_seconds": 3600, "resolution_seconds": 86400},
    }
}


def _line(n: int, kind: str, ts: float, **fields: str) -> bytes:
    stamp = datetime.fromtimestamp(ts, UTC).isoformat()
    return msgspec.json.encode({"event_id": f"e{n}", "type": kind, "ts": stamp, **fields})


def _status_flood(n: int, at: Callable[[int], float]) -> list[bytes]:
    """``n`` ``ticket.status_changed`` of ticket ``t1``, alternating open and pending."""
    status = ("open", "pending")
    return [
        _line(
            i,
            "ticket.status_changed",
            at(i),
            channel="email",
            ticket_id="t1",
            status=status[i % 2],
        )
        for i in range(n)
    ]


def _spread(i: int) -> float:
    """1 ms apart, within 4 s (then again from the start)."""
    return T0 + 1 + (i % 4000) / 1000


def streams(n: int) -> dict[str, list[bytes]]:
    queued = _line(-1, "contact.queued", T0, channel="voice", contact_id="c1")
    created = _line(-1, "ticket.created", T0, channel="email", ticket_id="t1")
    answered = [
        _line(i, "contact.answered", _spread(i), channel="voice", contact_id="c1") for i in range(n)
    ]
    return {
        "never-opened contact": answered,
        "ticket status flood": [created, *_status_flood(n, _spread)],
        "ticket, one instant": [created, *_status_flood(n, lambda _: T0 + 2)],
        "answered again": [queued, *answered],
        "surveys of that contact": [queued, *_with_surveys(answered)],
    }


def _with_surveys(outcomes: list[bytes]) -> list[bytes]:
    """Every other outcome replaced by a ``survey.answered`` (csat) naming contact ``c1``: each
    survey looks whether a held ``ended`` closed the contact before it."""
    out = []
    fields = {"channel": "voice", "survey": "csat", "score": 4, "contact_id": "c1"}
    for i, raw in enumerate(outcomes):
        if i % 2:
            ts = msgspec.json.decode(raw)["ts"]
            survey = {"event_id": f"s{i}", "type": "survey.answered", "ts": ts, **fields}
            out.append(msgspec.json.encode(survey))
        else:
            out.append(raw)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=20_000)
    args = parser.parse_args()
    print(f"{args.events:,} outcomes of one item a stream\n")
    print("| stream | bare decode µs an event | pipeline µs an event | ratio to bare |")
    print("|---|---:|---:|---:|")
    for name, data in streams(args.events).items():
        bare = bare_seconds(data)
        spent = feed_seconds(Engine(parse_settings(CONFIG)), data)
        print(
            f"| {name} | {bare / len(data) * 1e6:.2f} | {spent / len(data) * 1e6:.1f} "
            f"| {bare / spent:.4f} |"
        )


if __name__ == "__main__":
    main()
