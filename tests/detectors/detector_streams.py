"""Test helpers: real events through a real Engine, ticked by an injected clock, judged."""

from __future__ import annotations

import json
import math
import random
from datetime import UTC, datetime
from typing import Any

from support_monitor.detectors.signal import Signal
from support_monitor.detectors.suite import DetectorSuite
from support_monitor.monitor.config import Settings, parse_settings
from support_monitor.monitor.engine.engine import Engine
from support_monitor.monitor.events import decode

T0 = datetime(2026, 3, 2, 0, 0, tzinfo=UTC).timestamp()  # a Monday 00:00 UTC

CHANNELS: dict[str, Any] = {
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
    "email": {"first_response_seconds": 3600, "resolution_seconds": 86400, "queues": ["default"]},
}


def config(detectors: dict[str, Any] | None = None, **extra: Any) -> dict[str, Any]:
    data: dict[str, Any] = {"windows": ["5m", "1h"], "channels": json.loads(json.dumps(CHANNELS))}
    if detectors is not None:
        data["detectors"] = detectors
    data.update(extra)
    return data


def iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).isoformat()


class Feed:
    """Events at seconds after ``T0``; ``tick(at)`` advances the engine and evaluates the suite."""

    def __init__(self, detectors: dict[str, Any] | None = None, **extra: Any) -> None:
        self.settings: Settings = parse_settings(config(detectors, **extra))
        self.engine = Engine(self.settings)
        self.suite = DetectorSuite(
            self.settings.detectors, self.settings.channels, self.settings.window_seconds
        )
        self._n = 0

    def event(self, kind: str, at: float, channel: str, **fields: Any) -> None:
        self._n += 1
        raw = {"event_id": f"e{self._n}", "type": kind, "ts": iso(T0 + at), "channel": channel}
        raw.update(fields)
        event = decode(json.dumps(raw), 65536)
        assert self.engine.apply(event, T0 + at) is None, raw
        self.engine.advance(T0 + at)

    def tick(self, at: float) -> list[Signal]:
        self.engine.advance(T0 + at)
        return self.suite.evaluate(self.engine, T0 + at)


RAW: dict[str, float] = {"sustain": 0, "release": 0}
"""``backlog_growth`` without its persistence: its signal is the condition at each tick."""


def only(detectors: dict[str, Any]) -> dict[str, Any]:
    """A detectors block with just the given detectors enabled (no default thresholds)."""
    block: dict[str, Any] = {
        name: {"enabled": False}
        for name in ("sla_burn", "complaint_spike", "backlog_growth", "tickets_at_risk")
    }
    block["thresholds"] = []
    block.update(detectors)
    given = list(block["thresholds"])
    if given:  # configured thresholds are merged with the defaults: switch those off
        named = {t["name"] for t in given}
        block["thresholds"] = given + [
            {"name": name, "enabled": False} for name in DEFAULT_THRESHOLDS if name not in named
        ]
    return block


DEFAULT_THRESHOLDS = ("longest_wait", "abandon_rate", "csat_low")


def pick(signals: list[Signal], detector: str, channel: str, **labels: str) -> Signal:
    want = tuple(sorted(labels.items()))
    found = [
        s for s in signals if s.detector == detector and s.channel == channel and s.labels == want
    ]
    assert len(found) == 1, (detector, channel, labels, signals)
    return found[0]


def poisson(rng: random.Random, lam: float) -> int:
    """Knuth's sampler (lam is small here), independent of the code under test."""
    limit, k, p = math.exp(-lam), 0, 1.0
    while True:
        p *= rng.random()
        if p <= limit:
            return k
        k += 1


def episodes(active: list[bool]) -> list[int]:
    """Indices where a signal turned active (rising edges)."""
    return [i for i, a in enumerate(active) if a and (i == 0 or not active[i - 1])]


class Script:
    """Events collected out of order, then fed in time order (ties: insertion order)."""

    def __init__(self) -> None:
        self.items: list[tuple[float, int, str, str, dict[str, Any]]] = []
        self._n = 0

    def add(self, at: float, kind: str, channel: str, **fields: Any) -> None:
        self._n += 1
        self.items.append((at, self._n, kind, channel, fields))

    def contact(
        self,
        cid: str,
        queued: float,
        wait: float,
        *,
        outcome: str = "answered",
        channel: str = "voice",
        queue: str = "billing",
    ) -> None:
        self.add(queued, "contact.queued", channel, contact_id=cid, queue=queue)
        self.add(queued + wait, f"contact.{outcome}", channel, contact_id=cid, queue=queue)

    def feed(self, feed: Feed, until: float | None = None) -> None:
        """Apply every event at or before ``until`` (all when None) and forget them."""
        self.items.sort(key=lambda item: (item[0], item[1]))
        keep = []
        for at, n, kind, channel, fields in self.items:
            if until is None or at <= until:
                feed.event(kind, at, channel, **fields)
            else:
                keep.append((at, n, kind, channel, fields))
        self.items = keep
