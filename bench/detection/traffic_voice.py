"""Customer-voice traffic for the detection benchmark: bot sessions, sentiment scores, NPS and CES.

Seasonal Poisson streams with the same hour-of-week profile as the rest of the traffic
(``traffic.seasonal``), from their own ``random.Random`` (so the contact, ticket and agent
events of a seed keep their bytes), merged into the events file in time order:

| stream | channels | at the weekday peak |
|---|---|---:|
| ``bot.session_ended`` | chatbot | 5/min |
| ``sentiment.scored`` | voice, chat, email | 2, 1.5, 1.5/min |
| ``survey.answered`` nps | voice, chat, email | 0.8, 0.6, 0.75/min |
| ``survey.answered`` ces | voice, chat, email | 0.3/min each |

Healthy mix: bot sessions contained 62% at night to 68% at the peak, escalated 25%, abandoned
the rest; sentiment negative (below -0.3) 20% at night to 15% at the peak, positive half the
rest; NPS detractors (0-6) 20%, passives 25%, promoters 55% (NPS +35); CES 1-7, mean about 2.6.

Incidents (on the first incident day, at hours no other incident of the channel uses):

| kind | channel | start | for | what changes |
|---|---|---|---:|---|
| ``bot_failure`` | chatbot | 10:30 | 45 min | containment to 15% (escalated 70%, abandoned 15%) |
| ``sentiment_surge`` | email | 13:00 | 60 min | negative share x3 |
| ``nps_drop`` | email | 15:30 | 90 min | detractors 50%, promoters 30% (NPS -20) |

The bot's escalations are not added to the chat queue: the benchmark judges the containment
detector on its own stream.
"""

from __future__ import annotations

import heapq
import math
import random
from collections import defaultdict
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import msgspec

from bench.detection.traffic import HOUR, Incident, seasonal

CHANNELS = ("chatbot",)
"""Channels this module adds to the benchmark (voice, chat and email come from ``traffic``)."""
DURATIONS = {"bot_failure": 45 * 60.0, "sentiment_surge": 60 * 60.0, "nps_drop": 90 * 60.0}
FACTORS = {"bot_failure": 0.15, "sentiment_surge": 3.0, "nps_drop": 0.5}
"""Containment during a bot failure, the negative-share multiplier, the detractor share."""
PLAN = (
    ("bot_failure", "chatbot", 10.5),
    ("sentiment_surge", "email", 13.0),
    ("nps_drop", "email", 15.5),
)
KINDS = tuple(DURATIONS)
STREAM = {
    "bot_failure": "bot sessions not contained (binomial)",
    "sentiment_surge": "negative sentiment scores (binomial)",
    "nps_drop": "NPS detractors (binomial)",
}


@dataclass(frozen=True, slots=True)
class VoiceSpec:
    channel: str
    sentiment_per_minute: float = 0.0
    nps_per_minute: float = 0.0
    ces_per_minute: float = 0.0
    sessions_per_minute: float = 0.0


def default_specs() -> list[VoiceSpec]:
    return [
        VoiceSpec("voice", sentiment_per_minute=2.0, nps_per_minute=0.8, ces_per_minute=0.3),
        VoiceSpec("chat", sentiment_per_minute=1.5, nps_per_minute=0.6, ces_per_minute=0.3),
        VoiceSpec("email", sentiment_per_minute=1.5, nps_per_minute=0.75, ces_per_minute=0.3),
        VoiceSpec("chatbot", sessions_per_minute=5.0),
    ]


def incidents(channels: Sequence[str], day: float) -> list[Incident]:
    """The customer-voice incidents of ``PLAN`` on ``day`` (midnight), for the given channels."""
    out = []
    for kind, channel, hour in PLAN:
        if channel in channels:
            start = day + hour * HOUR
            out.append(Incident(kind, channel, start, start + DURATIONS[kind], FACTORS[kind]))
    return out


CES_WEIGHTS = (0.25, 0.3, 0.2, 0.1, 0.07, 0.05, 0.03)


class VoiceGenerator:
    """The customer-voice events of ``[start, end)`` in time order (ties: generation order)."""

    def __init__(
        self,
        seed: int,
        start: float,
        end: float,
        *,
        specs: Sequence[VoiceSpec],
        incidents: Sequence[Incident] = (),
    ) -> None:
        self._rng = random.Random(f"voice-{seed}")  # a reproducible simulation, not secrets
        self._tag = f"v{seed}"
        self._start, self._end = start, end
        self._specs = list(specs)
        self._incidents = [i for i in incidents if i.kind in DURATIONS]
        self._ids = 0
        self._sessions = 0

    def _factor(self, kind: str, channel: str, t: float) -> float | None:
        for inc in self._incidents:
            if inc.kind == kind and inc.channel == channel and inc.start <= t < inc.end:
                return inc.factor
        return None

    def _times(self, per_minute: float) -> Iterator[float]:
        """A Poisson process whose rate (per_minute x profile) is constant within each minute."""
        rng, t = self._rng, self._start
        budget = rng.expovariate(1.0)
        while t < self._end:
            edge = (math.floor(t / 60) + 1) * 60
            r = per_minute / 60 * seasonal(t)
            if r > 0 and r * (edge - t) >= budget:
                t += budget / r
                yield t
                budget = rng.expovariate(1.0)
                continue
            budget -= r * (edge - t)
            t = edge

    def run(self) -> Iterator[tuple[float, bytes]]:
        events: list[tuple[float, int, dict[str, object]]] = []
        for spec in self._specs:
            ch = spec.channel
            streams = (
                (spec.sessions_per_minute, self._session),
                (spec.sentiment_per_minute, self._sentiment),
                (spec.nps_per_minute, self._nps),
                (spec.ces_per_minute, self._ces),
            )
            for per_minute, make in streams:
                if per_minute:
                    events.extend((t, len(events), make(ch, t)) for t in self._times(per_minute))
        events.sort(key=lambda e: (e[0], e[1]))
        for when, _, fields in events:
            self._ids += 1
            t = round(when, 3)
            stamp = datetime.fromtimestamp(t, UTC).isoformat(timespec="milliseconds")
            event = {
                "event_id": f"{self._tag}-{self._ids}",
                "ts": stamp.replace("+00:00", "Z"),
                **fields,
            }
            yield t, msgspec.json.encode(event)

    def _ces(self, channel: str, t: float) -> dict[str, object]:
        del t
        score = self._rng.choices(range(1, 8), weights=CES_WEIGHTS)[0]
        return {"type": "survey.answered", "channel": channel, "survey": "ces", "score": score}

    def _session(self, channel: str, t: float) -> dict[str, object]:
        rng = self._rng
        failing = self._factor("bot_failure", channel, t)
        if failing is None:
            contained, escalated = 0.62 + 0.06 * seasonal(t), 0.25
        else:
            contained, escalated = failing, 0.7
        x = rng.random()
        outcome = (
            "contained"
            if x < contained
            else "escalated"
            if x < contained + escalated
            else "abandoned"
        )
        self._sessions += 1
        return {"type": "bot.session_ended", "channel": channel, "queue": "default",
                "session_id": f"{self._tag}-s{self._sessions}", "outcome": outcome}  # fmt: skip

    def _sentiment(self, channel: str, t: float) -> dict[str, object]:
        rng = self._rng
        negative = 0.2 - 0.05 * seasonal(t)
        negative *= self._factor("sentiment_surge", channel, t) or 1.0
        x = rng.random()
        if x < negative:
            score = rng.uniform(-1.0, -0.35)
        elif x < negative + (1 - negative) / 2:
            score = rng.uniform(0.35, 1.0)
        else:
            score = rng.uniform(-0.25, 0.25)
        return {"type": "sentiment.scored", "channel": channel, "score": round(score, 3)}

    def _nps(self, channel: str, t: float) -> dict[str, object]:
        rng = self._rng
        dropped = self._factor("nps_drop", channel, t)
        detractors, promoters = (0.2, 0.55) if dropped is None else (dropped, 0.3)
        x = rng.random()
        if x < detractors:
            score = rng.randint(0, 6)
        elif x < detractors + promoters:
            score = rng.randint(9, 10)
        else:
            score = rng.randint(7, 8)
        return {"type": "survey.answered", "channel": channel, "survey": "nps", "score": score}


def merge_into(
    path: Path,
    seed: int,
    span: tuple[float, float],
    channels: Sequence[str],
    incidents: Sequence[Incident],
) -> int:
    """Merge the customer-voice events of ``span`` into the events file at ``path`` (time
    order; at equal times the file's own events first); return how many were added."""
    specs = [s for s in default_specs() if s.channel in channels]
    voice = VoiceGenerator(seed, *span, specs=specs, incidents=incidents).run()
    decoder = msgspec.json.Decoder(_Stamp)
    merged = path.with_suffix(".voice.tmp")
    added = 0

    def base() -> Iterator[tuple[float, int, bytes]]:
        with path.open("rb") as f:
            for line in f:
                stamp = decoder.decode(line).ts
                yield datetime.fromisoformat(stamp).timestamp(), 0, line.rstrip(b"\n")

    def extra() -> Iterator[tuple[float, int, bytes]]:
        nonlocal added
        for t, line in voice:
            added += 1
            yield t, 1, line

    with merged.open("wb") as out:
        for _, _, line in heapq.merge(base(), extra(), key=lambda e: (e[0], e[1])):
            out.write(line + b"\n")
    merged.replace(path)
    return added


class _Stamp(msgspec.Struct):
    ts: str


class _Event(msgspec.Struct):
    type: str
    ts: str
    channel: str
    outcome: str | None = None
    survey: str | None = None
    score: float | None = None


def read_trials(
    path: Path, negative_below: float = -0.3
) -> dict[tuple[str, str], list[tuple[float, int]]]:
    """(channel, incident kind) -> the binomial trials that incident changes, ``(t, 1 if bad)``:
    bot sessions (bad: not contained), sentiment scores (bad: negative), NPS answers (bad:
    detractor)."""
    decoder = msgspec.json.Decoder(_Event)
    out: dict[tuple[str, str], list[tuple[float, int]]] = defaultdict(list)
    with path.open("rb") as f:
        for line in f:
            e = decoder.decode(line)
            if e.type == "bot.session_ended":
                bad = int(e.outcome != "contained")
                kind = "bot_failure"
            elif e.type == "sentiment.scored" and e.score is not None:
                bad, kind = int(e.score < negative_below), "sentiment_surge"
            elif e.type == "survey.answered" and e.survey == "nps" and e.score is not None:
                bad, kind = int(e.score <= 6), "nps_drop"
            else:
                continue
            out[e.channel, kind].append((datetime.fromisoformat(e.ts).timestamp(), bad))
    return out
