"""Help-desk ticket streams and instants for the clock tests."""

from __future__ import annotations

import json
import random
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

from support_monitor.monitor.engine.engine import Engine
from support_monitor.monitor.pipeline import Delivery, Pipeline
from support_monitor.monitor.stats import DaemonStats
from tests.support import CONFIG, settings, value

BERLIN = ZoneInfo("Europe/Berlin")

TICKET_MOVES = (
    "ticket.responded",
    "ticket.solved",
    "ticket.reopened",
    "ticket.status_changed",
    "ticket.priority_changed",
    "ticket.customer_replied",
)
"""The ticket event types after ``ticket.created``, for random streams."""


def move_fields(rng: random.Random, kind: str) -> dict[str, str]:
    """The extra field a random ``TICKET_MOVES`` event of ``kind`` needs (status, priority)."""
    if kind == "ticket.status_changed":
        return {"status": rng.choice(("open", "pending", "on_hold"))}
    if kind == "ticket.priority_changed":
        return {"priority": rng.choice(("low", "normal", "high", "urgent"))}
    return {}


E = {"channel": "email", "queue": "default"}

WEEKDAYS = {day: ["09:00-18:00"] for day in ("mon", "tue", "wed", "thu", "fri")}


def at(text: str, zone: ZoneInfo = BERLIN) -> float:
    """Epoch seconds of a local wall time ``YYYY-MM-DD HH:MM[:SS]`` in ``zone``."""
    return datetime.fromisoformat(text).replace(tzinfo=zone).timestamp()


class Tickets:
    """Events of the ``email`` channel at absolute times, fed through the real pipeline."""

    def __init__(self, email: dict[str, Any], **top: Any) -> None:
        channels = dict(CONFIG["channels"])
        channels["email"] = {"queues": ["default"], **email}
        self.engine = Engine(settings(channels=channels, **top))
        self.stats = DaemonStats()
        self.pipeline = Pipeline(self.engine, self.stats, event_clock=True, log_burst=0)
        self.n = 0

    def send(self, kind: str, ts: float, **fields: Any) -> None:
        self.n += 1
        stamp = datetime.fromtimestamp(ts, UTC).isoformat()
        event = {"event_id": f"e{self.n}", "type": kind, "ts": stamp, "channel": "email"}
        event.update(fields)
        self.pipeline.process("test", Delivery(json.dumps(event).encode(), f"line:{self.n}"))

    def at(self, ts: float) -> Tickets:
        """Decide every deadline up to ``ts`` (the clock moves there, lateness spent)."""
        self.engine.flush(ts)
        return self

    def get(self, name: str, **labels: str) -> float:
        return value(self.engine, name, **{**E, **labels})


def office(
    holidays: tuple[str, ...] = (), hours: dict[str, list[str]] | None = None
) -> dict[str, Any]:
    return {"timezone": "Europe/Berlin", "hours": hours or WEEKDAYS, "holidays": list(holidays)}
