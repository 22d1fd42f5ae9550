"""Deterministic synthetic event file for the throughput benchmark (independent of the simulator).

A realistic mix: contacts queued/answered/abandoned/ended on voice and chat, tickets created/
responded/solved with ratings and complaints on email, times increasing ~200 events/s.
"""

from __future__ import annotations

import json
import random
import sys
from datetime import UTC, datetime
from pathlib import Path

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC).timestamp()


def generate(path: Path, count: int, seed: int = 1) -> int:
    rng = random.Random(seed)
    written = 0
    now = T0
    waiting: list[tuple[str, str]] = []
    talking: list[tuple[str, str]] = []
    open_tickets: list[str] = []
    n = 0
    with path.open("w", encoding="utf-8") as out:
        while written < count:
            n += 1
            now += rng.expovariate(200.0)
            ts = datetime.fromtimestamp(now, UTC).isoformat(timespec="milliseconds")
            roll = rng.random()
            base = {"event_id": f"ev-{n}", "ts": ts}
            if roll < 0.30 or not waiting:
                ch = "voice" if rng.random() < 0.6 else "chat"
                queue = rng.choice(("billing", "tech") if ch == "voice" else ("sales", "support"))
                cid = f"c-{n}"
                waiting.append((cid, ch))
                event = {
                    **base,
                    "type": "contact.queued",
                    "channel": ch,
                    "queue": queue,
                    "contact_id": cid,
                }
            elif roll < 0.55:
                cid, ch = waiting.pop(0)
                talking.append((cid, ch))
                event = {
                    **base,
                    "type": "contact.answered",
                    "channel": ch,
                    "contact_id": cid,
                    "agent_id": f"a{rng.randrange(50)}",
                }
            elif roll < 0.60:
                cid, ch = waiting.pop(rng.randrange(len(waiting)))
                event = {**base, "type": "contact.abandoned", "channel": ch, "contact_id": cid}
            elif roll < 0.80 and talking:
                cid, ch = talking.pop(0)
                event = {**base, "type": "contact.ended", "channel": ch, "contact_id": cid}
            elif roll < 0.88 or not open_tickets:
                tid = f"t-{n}"
                open_tickets.append(tid)
                tags = ["complaint"] if rng.random() < 0.03 else ["billing"]
                event = {
                    **base,
                    "type": "ticket.created",
                    "channel": "email",
                    "ticket_id": tid,
                    "priority": "normal",
                    "tags": tags,
                }
            elif roll < 0.93:
                tid = open_tickets[rng.randrange(len(open_tickets))]
                event = {**base, "type": "ticket.responded", "channel": "email", "ticket_id": tid}
            elif roll < 0.97:
                tid = open_tickets.pop(rng.randrange(len(open_tickets)))
                event = {**base, "type": "ticket.solved", "channel": "email", "ticket_id": tid}
            elif roll < 0.995:
                event = {
                    **base,
                    "type": "ticket.rated",
                    "channel": "email",
                    "rating": rng.choice((1, 2, 3, 4, 4, 5, 5, 5)),
                }
            else:
                event = {
                    **base,
                    "type": "complaint.received",
                    "channel": "voice",
                    "category": "billing",
                }
            out.write(json.dumps(event, separators=(",", ":")) + "\n")
            written += 1
    return written


if __name__ == "__main__":
    target = Path(sys.argv[1])
    total = int(sys.argv[2]) if len(sys.argv) > 2 else 1_000_000
    print(f"wrote {generate(target, total)} events to {target}")
