"""The replay benchmark's event file and config: 5 channels, 12 queues, ~20 events a second.

Deterministic (seeded) and independent of the simulator. Three live channels (voice, chat, sms)
and two ticket channels (email, social); each channel keeps its own FIFO of waiting contacts, so
waits stay a few tens of seconds. Event times advance by an exponential gap of mean
``1 / rate`` seconds, so 1,000,000 events cover about 50,000 s (~14 h) of event time at the
default 20 events/s: the replay's tick road runs about one tick per 20 events.

    .venv/bin/python bench/replay_events.py OUT [COUNT] [RATE]
"""

from __future__ import annotations

import json
import random
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC).timestamp()

LIVE = {
    "voice": ("billing", "tech", "sales"),
    "chat": ("sales", "support", "tech"),
    "sms": ("support", "billing"),
}
TICKETS = {"email": ("default", "billing"), "social": ("default", "complaints")}

CONFIG: dict[str, Any] = {
    "windows": ["5m", "1h"],
    "channels": {
        "voice": {
            "answer_seconds": 20,
            "short_abandon_seconds": 5,
            "service_level_target": 0.8,
            "queues": list(LIVE["voice"]),
        },
        "chat": {
            "answer_seconds": 60,
            "short_abandon_seconds": 5,
            "service_level_target": 0.8,
            "queues": list(LIVE["chat"]),
        },
        "sms": {
            "answer_seconds": 300,
            "short_abandon_seconds": 10,
            "service_level_target": 0.9,
            "queues": list(LIVE["sms"]),
        },
        "email": {
            "first_response_seconds": 3600,
            "resolution_seconds": 86400,
            "queues": list(TICKETS["email"]),
        },
        "social": {
            "first_response_seconds": 1800,
            "resolution_seconds": 43200,
            "queues": list(TICKETS["social"]),
        },
    },
}
"""The config the benchmark replays with: default detectors and default alert rules."""


def generate(path: Path, count: int, rate: float = 20.0, seed: int = 1) -> int:
    """Write ``count`` events, ``rate`` per second of event time on average."""
    rng = random.Random(seed)
    now = T0
    waiting: dict[str, list[str]] = {ch: [] for ch in LIVE}
    talking: list[tuple[str, str]] = []
    open_tickets: list[tuple[str, str]] = []
    live_names = list(LIVE)
    ticket_names = list(TICKETS)
    with path.open("w", encoding="utf-8") as out:
        for n in range(1, count + 1):
            now += rng.expovariate(rate)
            ts = datetime.fromtimestamp(now, UTC).isoformat(timespec="milliseconds")
            base: dict[str, Any] = {"event_id": f"ev-{n}", "ts": ts}
            roll = rng.random()
            ch = live_names[rng.randrange(len(live_names))]
            event: dict[str, Any]
            if roll < 0.30 or (roll < 0.60 and not waiting[ch]):
                cid = f"c-{n}"
                waiting[ch].append(cid)
                queue = rng.choice(LIVE[ch])
                event = {"type": "contact.queued", "channel": ch, "queue": queue, "contact_id": cid}
            elif roll < 0.55:
                cid = waiting[ch].pop(0)
                talking.append((cid, ch))
                event = {
                    "type": "contact.answered",
                    "channel": ch,
                    "contact_id": cid,
                    "agent_id": f"a{rng.randrange(80)}",
                }
            elif roll < 0.60:
                cid = waiting[ch].pop(rng.randrange(len(waiting[ch])))
                event = {"type": "contact.abandoned", "channel": ch, "contact_id": cid}
            elif roll < 0.80 and talking:
                cid, ch = talking.pop(0)
                event = {"type": "contact.ended", "channel": ch, "contact_id": cid}
            elif roll < 0.88 or not open_tickets:
                tch = ticket_names[rng.randrange(len(ticket_names))]
                tid = f"t-{n}"
                open_tickets.append((tid, tch))
                tags = ["complaint"] if rng.random() < 0.03 else ["billing"]
                event = {
                    "type": "ticket.created",
                    "channel": tch,
                    "queue": rng.choice(TICKETS[tch]),
                    "ticket_id": tid,
                    "priority": "normal",
                    "tags": tags,
                }
            elif roll < 0.93:
                tid, tch = open_tickets[rng.randrange(len(open_tickets))]
                event = {"type": "ticket.responded", "channel": tch, "ticket_id": tid}
            elif roll < 0.97:
                tid, tch = open_tickets.pop(rng.randrange(len(open_tickets)))
                event = {"type": "ticket.solved", "channel": tch, "ticket_id": tid}
            elif roll < 0.995:
                tch = ticket_names[rng.randrange(len(ticket_names))]
                event = {
                    "type": "ticket.rated",
                    "channel": tch,
                    "rating": rng.choice((1, 2, 3, 4, 4, 5, 5, 5)),
                }
            else:
                event = {"type": "complaint.received", "channel": ch, "category": "billing"}
            out.write(json.dumps({**base, **event}, separators=(",", ":")) + "\n")
    return count


if __name__ == "__main__":
    target = Path(sys.argv[1])
    total = int(sys.argv[2]) if len(sys.argv) > 2 else 1_000_000
    per_second = float(sys.argv[3]) if len(sys.argv) > 3 else 20.0
    print(f"wrote {generate(target, total, per_second)} events to {target}")
