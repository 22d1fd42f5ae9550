"""The exponential stream (``bench.detection.exponential``) with customer-voice incidents: a CSAT
drop and a 4x complaint rise on each live channel.

The same traffic shape as ``exponential.py`` (voice T = 20 s and chat T = 60 s, seasonal
arrivals peaking at 13:30, weekends at 45%, exponential waits with about 89% within T, about 6%
abandons), but 87% of CSAT ratings satisfied (20% of answered contacts rate, 30 s after the end),
and complaints at about 6 an hour at the daily peak on each channel. Seven healthy days, then on
the incident day: each channel's satisfied share falls to 50% for an hour (voice 10:00, chat
15:00), and its complaints rise 4x for 30 minutes (voice 13:00, chat 11:00).

    .venv/bin/python -m bench.detection.exponential_voice [--seeds 1 2] \
        [--out bench/out/exponential-voice] [--config CONFIG.yaml]

Prints per seed the healthy firings per alert and channel (7 days = one channel-week) and the
delay of the first firing of each alert in each incident (window + 30 min), in minutes.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from pathlib import Path

from bench.detection.exponential import DAY, HEALTHY_DAYS, factor_at, run_stream, write_stream
from bench.detection.traffic import Incident

SATISFIED = 0.87
DROPPED = 0.5


def incidents() -> list[Incident]:
    """Per channel: the CSAT drop (satisfied share 50%, an hour) and the 4x complaint rise."""
    day = HEALTHY_DAYS * DAY
    plan = (("csat_drop", 3600.0, DROPPED), ("complaint_4x", 1800.0, 4.0))
    hours = {"voice": (10.0, 13.0), "chat": (15.0, 11.0)}
    return [
        Incident(kind, channel, day + hour * 3600, day + hour * 3600 + length, factor)
        for channel, start_hours in hours.items()
        for (kind, length, factor), hour in zip(plan, start_hours, strict=True)
    ]


def generate(path: Path, seed: int) -> None:
    found = incidents()

    def score(rng: random.Random, channel: str, t: float) -> int:
        """Satisfied (4-5) with the usual share, or the dropped one during a CSAT drop."""
        share = factor_at(found, "csat_drop", channel, t) or SATISFIED
        return rng.choice((4, 5, 5)) if rng.random() < share else rng.choice((1, 2, 3))

    write_stream(path, seed, found, score=score, rise="complaint_4x", top=4.0)


def main(argv: Sequence[str] | None = None) -> None:
    description = __doc__.split("\n", 1)[0]
    run_stream(argv, description, Path("bench/out/exponential-voice"), generate, incidents())


if __name__ == "__main__":
    main()
