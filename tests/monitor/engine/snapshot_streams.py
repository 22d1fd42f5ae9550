"""A long random stream and a feeder shared by the snapshot tests."""

from __future__ import annotations

import json
import random
from typing import Any

from support_monitor.monitor.engine.engine import Engine
from support_monitor.monitor.pipeline import Delivery, Pipeline
from support_monitor.monitor.stats import DaemonStats
from tests.support import T0, iso


def feed(engine: Engine, lines: list[bytes]) -> None:
    pipeline = Pipeline(engine, DaemonStats(), event_clock=True, log_burst=0)
    for i, line in enumerate(lines):
        pipeline.process("test", Delivery(line, f"line:{i}"))


LONG_CFG: dict[str, Any] = {
    "windows": ["1m", "5m", "1h"],
    "ingest": {
        "allowed_lateness": 5,
        "answered_retention": 600,
        "dedup_horizon": 900,
        "complaint_categories": ["billing"],
    },
    "channels": {
        "voice": {"answer_seconds": 20, "short_abandon_seconds": 5, "queues": ["billing", "tech"]},
        "chat": {"answer_seconds": 45, "queues": ["sales"]},
        "email": {
            "first_response_seconds": 120,
            "resolution_seconds": 400,
            "queues": ["default", "vip"],
        },
    },
}


def random_stream(seed: int, n: int) -> list[bytes]:
    rnd = random.Random(seed)
    now = 0.0
    out: list[dict[str, Any]] = []
    waiting: list[tuple[str, str]] = []
    talking: list[tuple[str, str]] = []
    tickets: list[str] = []
    for i in range(n):
        now += rnd.choice((0.0, 0.3, 1.0, 2.5, 7.0, 30.0))
        ts = now - (rnd.uniform(0, 8) if rnd.random() < 0.1 else 0.0)  # some late events
        base = {"event_id": f"r{seed}-{i}", "ts": iso(T0 + ts)}
        roll = rnd.random()
        if roll < 0.25:
            ch, q = rnd.choice((("voice", "billing"), ("voice", "tech"), ("chat", "sales")))
            cid = f"c{i}"
            waiting.append((cid, ch))
            out.append(
                {**base, "type": "contact.queued", "channel": ch, "queue": q, "contact_id": cid}
            )
        elif roll < 0.45 and waiting:
            cid, ch = waiting.pop(rnd.randrange(len(waiting)))
            kind = "answered" if rnd.random() < 0.8 else "abandoned"
            if kind == "answered":
                talking.append((cid, ch))
            out.append({**base, "type": f"contact.{kind}", "channel": ch, "contact_id": cid})
        elif roll < 0.55 and talking:
            cid, ch = talking.pop(rnd.randrange(len(talking)))
            out.append({**base, "type": "contact.ended", "channel": ch, "contact_id": cid})
        elif roll < 0.7:
            tid = f"t{i}"
            tickets.append(tid)
            tags = ["complaint", "billing"] if rnd.random() < 0.1 else []
            out.append(
                {
                    **base,
                    "type": "ticket.created",
                    "channel": "email",
                    "queue": rnd.choice(("default", "vip")),
                    "ticket_id": tid,
                    "tags": tags,
                }
            )
        elif roll < 0.85 and tickets:
            kind = rnd.choice(("responded", "responded", "solved", "solved", "reopened"))
            out.append(
                {
                    **base,
                    "type": f"ticket.{kind}",
                    "channel": "email",
                    "ticket_id": rnd.choice(tickets),
                }
            )
        elif roll < 0.9:
            out.append(
                {**base, "type": "ticket.rated", "channel": "email", "rating": rnd.randint(1, 5)}
            )
        elif roll < 0.95:
            out.append(
                {
                    **base,
                    "type": "complaint.received",
                    "channel": "voice",
                    "category": rnd.choice(("billing", "rude", None)),
                }
            )
        elif out:
            out.append(dict(rnd.choice(out)))  # a redelivery (same event_id)
    return [json.dumps(e).encode() for e in out]
