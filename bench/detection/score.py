"""Scoring ``replay --alerts-out`` against the incident labels.

A page is a transition to ``firing`` (``state == "firing"`` and ``previous != "firing"``),
classified by the alert's ``severity`` label and stamped with the record's ``ts`` (event
time). A page on a channel inside an incident window of that channel, or within ``grace``
seconds after its end, detects that incident; a page inside the healthy span is a false page.
Pages in the incident days outside every window are counted apart (``other``): they are not
healthy traffic (queues drain after an incident), so they do not enter the false-page rate.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from bench.detection.traffic import Incident


@dataclass(frozen=True, slots=True)
class Page:
    t: float
    alert: str
    channel: str
    severity: str


@dataclass(slots=True)
class Detection:
    incident: Incident
    first: Page | None
    """The first page of any alert on the channel in the window (plus grace)."""
    by_alert: dict[str, float] = field(default_factory=dict)
    """Alert name -> delay of its first page in the window (plus grace), seconds."""

    @property
    def delay(self) -> float | None:
        return None if self.first is None else self.first.t - self.incident.start


@dataclass(slots=True)
class Score:
    false_pages: Counter[tuple[str, str, str]]
    """(alert, channel, severity) -> pages in the healthy span."""
    detections: list[Detection]
    other: Counter[tuple[str, str, str]]


def read_pages(path: Path) -> list[Page]:
    pages = []
    with path.open("rb") as f:
        for line in f:
            if not line.strip():
                continue
            record = json.loads(line)
            if record["state"] != "firing" or record.get("previous") == "firing":
                continue
            labels = record["labels"]
            pages.append(
                Page(
                    float(record["ts"]),
                    str(record["alertname"]),
                    str(labels.get("channel", "")),
                    str(labels.get("severity", "")),
                )
            )
    pages.sort(key=lambda p: p.t)
    return pages


def score(
    pages: Iterable[Page],
    incidents: Sequence[Incident],
    healthy: tuple[float, float],
    grace: float,
) -> Score:
    detections = [Detection(inc, None) for inc in incidents]
    false_pages: Counter[tuple[str, str, str]] = Counter()
    other: Counter[tuple[str, str, str]] = Counter()
    for page in pages:
        key = (page.alert, page.channel, page.severity)
        if healthy[0] <= page.t < healthy[1]:
            false_pages[key] += 1
            continue
        hit = False
        for det in detections:
            inc = det.incident
            if inc.channel == page.channel and inc.start <= page.t <= inc.end + grace:
                hit = True
                if det.first is None:
                    det.first = page
                det.by_alert.setdefault(page.alert, page.t - inc.start)
        if not hit:
            other[key] += 1
    return Score(false_pages, detections, other)
