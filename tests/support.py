"""Test helpers: build events, run them through the real pipeline, read metric values."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from prometheus_client.parser import text_string_to_metric_families

from support_monitor.monitor.config import Settings, parse_settings
from support_monitor.monitor.engine.engine import Engine
from support_monitor.monitor.engine.readout import series
from support_monitor.monitor.pipeline import Delivery, Pipeline
from support_monitor.monitor.stats import DaemonStats

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC).timestamp()  # a Monday 09:00 UTC

CONFIG: dict[str, Any] = {
    "windows": ["5m", "1h"],
    "channels": {
        "voice": {
            "answer_seconds": 20,
            "short_abandon_seconds": 5,
            "service_level_target": 0.8,
            "queues": ["billing", "tech"],
        },
        "chat": {
            "answer_seconds": 60,
            "short_abandon_seconds": 5,
            "service_level_target": 0.8,
            "queues": ["sales", "support"],
        },
        "email": {
            "first_response_seconds": 3600,
            "resolution_seconds": 86400,
            "queues": ["default"],
        },
    },
}


def settings(**overrides: Any) -> Settings:
    data = json.loads(json.dumps(CONFIG))
    data.update(overrides)
    return parse_settings(data)


def ticket_voice() -> dict[str, Any]:
    """Overrides of :data:`CONFIG` (for :func:`settings`) that make voice a ticket channel with
    the same queues: first response within 10 minutes, no answer target."""
    channels = json.loads(json.dumps(CONFIG["channels"]))
    channels["voice"] = {"first_response_seconds": 600, "queues": ["billing", "tech"]}
    return {"channels": channels}


def iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).isoformat()


class Stream:
    """Builds event JSON lines with unique ids; times are seconds after ``T0``."""

    def __init__(self) -> None:
        self.lines: list[bytes] = []
        self._n = 0

    def add(self, kind: str, at: float, channel: str, **fields: Any) -> str:
        self._n += 1
        event_id: str = fields.pop("event_id", f"e{self._n}")
        event = {"event_id": event_id, "type": kind, "ts": iso(T0 + at), "channel": channel}
        event.update(fields)
        self.lines.append(json.dumps(event).encode())
        return event_id

    def text(self) -> str:
        return "\n".join(line.decode() for line in self.lines) + "\n"


def run(
    lines: list[bytes], cfg: Settings | None = None, until: float | None = None
) -> tuple[Engine, DaemonStats]:
    """Feed lines through the pipeline with event time as clock, then flush to ``T0 + until``."""
    engine = Engine(cfg or settings())
    stats = DaemonStats()
    pipeline = Pipeline(engine, stats, event_clock=True, log_burst=0)
    for i, line in enumerate(lines):
        pipeline.process("test", Delivery(line, f"line:{i + 1}"))
    engine.flush(None if until is None else T0 + until)
    return engine, stats


def samples(exposition: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    out = {}
    for family in text_string_to_metric_families(exposition):
        for sample in family.samples:
            out[sample.name, tuple(sorted(sample.labels.items()))] = sample.value
    return out


def value(engine: Engine, name: str, **labels: str) -> float:
    key = tuple(sorted(labels.items()))
    for row in series(engine):
        if row.name == name and row.labels == key:
            return row.value
    raise KeyError((name, labels))


EVENT_ONLY = frozenset(
    {
        "support_contacts_queued_total",
        "support_contacts_answered_total",
        "support_contacts_answered_in_sla_total",
        "support_contacts_abandoned_total",
        "support_contacts_abandoned_short_total",
        "support_contacts_abandoned_in_sla_total",
        "support_tickets_created_total",
        "support_tickets_solved_total",
        "support_tickets_open",
        "support_queue_waiting",
        "support_csat_ratings_total",
        "support_complaints_total",
    }
)
"""Numbers that depend on the events only, not on when the clock ticked: what a live daemon
(or a set of replicas) must equal a replay of the same events on."""
