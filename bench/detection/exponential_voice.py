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

import argparse
import json
import random
import subprocess
import sys
from collections.abc import Sequence
from datetime import timedelta
from pathlib import Path
from typing import Any

from bench.detection.exponential import (
    ANSWER,
    DAY,
    HANDLE,
    HEALTHY_DAYS,
    PATIENCE,
    PEAK,
    QUEUES,
    SL_FACTOR,
    T0,
    firings,
    report,
    shape,
)
from bench.detection.traffic import Incident

SATISFIED = 0.87
DROPPED = 0.5
COMPLAINTS_PER_HOUR = 6.0


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


def factor_at(found: list[Incident], kind: str, channel: str, t: float) -> float | None:
    """The factor of the ``kind`` incident on ``channel`` at ``t``; None outside it."""
    for i in found:
        if i.kind == kind and i.channel == channel and i.start <= t < i.end:
            return i.factor
    return None


def generate(path: Path, seed: int) -> None:
    rng = random.Random(seed)
    found = incidents()
    end = (HEALTHY_DAYS + 1) * DAY
    events: list[tuple[float, int, dict[str, Any]]] = []

    def add(t: float, kind: str, channel: str, **fields: Any) -> None:
        ts = (T0 + timedelta(seconds=t)).isoformat(timespec="milliseconds")
        event = {"event_id": f"x{len(events)}", "type": kind, "ts": ts.replace("+00:00", "Z")}
        events.append((t, len(events), {**event, "channel": channel, **fields}))

    for channel, peak in PEAK.items():
        usual = ANSWER[channel] / SL_FACTOR
        t, n = 0.0, 0
        while (t := t + rng.expovariate(peak)) < end:
            if rng.random() > shape(t):
                continue  # thinning: a Poisson stream at peak x shape(t)
            n += 1
            cid, queue = f"{channel}-{n}", rng.choice(QUEUES[channel])
            wait, patience = rng.expovariate(1 / usual), rng.expovariate(1 / (PATIENCE * usual))
            add(t, "contact.queued", channel, queue=queue, contact_id=cid)
            if patience < wait:
                add(t + patience, "contact.abandoned", channel, queue=queue, contact_id=cid)
                continue
            add(t + wait, "contact.answered", channel, queue=queue, contact_id=cid)
            ended = t + wait + rng.expovariate(1 / HANDLE)
            add(ended, "contact.ended", channel, queue=queue, contact_id=cid)
            if rng.random() < 0.2:
                share = factor_at(found, "csat_drop", channel, ended + 30) or SATISFIED
                satisfied = rng.random() < share
                score = rng.choice((4, 5, 5)) if satisfied else rng.choice((1, 2, 3))
                add(ended + 30, "survey.answered", channel, survey="csat", score=score)
        t = 0.0
        while (t := t + rng.expovariate(COMPLAINTS_PER_HOUR * 4 / 3600)) < end:
            rise = factor_at(found, "complaint_4x", channel, t) or 1.0
            if rng.random() <= shape(t) * rise / 4:
                add(t, "complaint.received", channel, category=rng.choice(("billing", "service")))
    events.sort(key=lambda e: (e[0], e[1]))
    with path.open("w") as f:
        for _, _, event in events:
            f.write(json.dumps(event) + "\n")


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--out", type=Path, default=Path("bench/out/exponential-voice"))
    parser.add_argument(
        "--config", type=Path, help="replay with this config instead of the defaults (tuning)"
    )
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    config = args.config
    if config is None:
        config = args.out / "default.yaml"
        config.write_text("# every setting at its default (channels voice, chat, email)\n{}\n")
    for seed in args.seeds:
        events, alerts = args.out / f"events-{seed}.jsonl", args.out / f"alerts-{seed}.jsonl"
        if not events.exists():
            generate(events, seed)
        cmd = [sys.executable, "-m", "support_monitor", "replay", str(events)]
        cmd += ["--config", str(config), "--alerts-out", str(alerts)]
        subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)
        report(seed, firings(alerts), incidents())


if __name__ == "__main__":
    main()
