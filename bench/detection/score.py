"""Scoring ``replay --alerts-out`` against the incident labels.

A page is a transition to ``firing`` (``state == "firing"`` and ``previous != "firing"``),
classified by the alert's ``severity`` label and stamped with the record's ``ts`` (event
time). A page on a channel inside an incident window of that channel, or within ``grace``
seconds after its end, detects that incident; a page inside the healthy span is a false page.
Pages in the incident days outside every window are counted apart (``other``): they are not
healthy traffic (queues drain after an incident), so they do not enter the false-page rate.

``read_group_pages`` counts what on-call people receive from the built-in notifiers with their
default grouping instead (``group_by: [channel]``, ``group_wait: 30s``): one message when a
channel with no firing alert gets one, carrying every alert of the channel that starts firing
within the group wait, at the highest severity among them. Later alerts of an open group go out
as updates of the same incident, and a group ends when no alert of its channel fires.
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
    inhibited: bool = False
    """The firing began held back by an inhibit rule (the record's ``inhibited``): the built-in
    notifiers sent it to nobody then (they do once the inhibiting alert ends first)."""


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


SEVERITY_RANK = {"": 0, "info": 1, "warning": 2, "critical": 3}


def read_group_pages(path: Path, group_wait: float = 30.0) -> list[Page]:
    """The first message of each per-channel alert group (module docstring)."""
    pages: list[Page] = []
    firing: dict[str, set[tuple[str, tuple[tuple[str, str], ...]]]] = {}
    opened: dict[str, int] = {}
    """Channel -> index in ``pages`` of its open group's first message."""
    with path.open("rb") as f:
        records = [json.loads(line) for line in f if line.strip()]
    records.sort(key=lambda r: float(r["ts"]))
    for record in records:
        labels = record["labels"]
        channel = str(labels.get("channel", ""))
        key = (str(record["alertname"]), tuple(sorted(labels.items())))
        now = firing.setdefault(channel, set())
        t = float(record["ts"])
        severity = str(labels.get("severity", ""))
        if record["state"] == "firing" and record.get("previous") != "firing":
            if not now:
                opened[channel] = len(pages)
                pages.append(Page(t, "group", channel, severity))
            else:
                first = pages[opened[channel]]
                if t - first.t <= group_wait and (
                    SEVERITY_RANK.get(severity, 0) > SEVERITY_RANK.get(first.severity, 0)
                ):
                    pages[opened[channel]] = Page(first.t, "group", channel, severity)
            now.add(key)
        elif record["state"] != "firing":
            now.discard(key)
    return pages


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
                    bool(record.get("inhibited", False)),
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
