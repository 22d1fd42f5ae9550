"""A second healthy stream for the default rules: independent exponential waits, no agents.

The detection benchmark (``bench.detection.run``) simulates agents and a real line, so its
healthy traffic has bursts. This stream is the other extreme, as issue 11 describes its own
trial: two live channels (voice T = 20 s, chat T = 60 s, the default config), seasonal arrivals
(a daily peak at 13:30, weekends at 45%), each wait drawn from an exponential with mean
T / 2.207 (service level about 89%), patience exponential with about 6% abandons, 20% of
answered contacts rated (8 of 10 ratings satisfied: the CSAT floor's 80%), complaints at about 6
an hour at the daily peak. Seven healthy days, then one incident day: each channel's service
level collapses (mean wait x6, SL about 31%) for 30 minutes and its complaints rise 8x for 30
minutes.

    .venv/bin/python -m bench.detection.exponential [--seeds 1 2] [--out bench/out/exponential] \
        [--config CONFIG.yaml]

Prints per seed the healthy firings per alert and channel (7 days = one channel-week) and the
delay of the first firing of each alert in each incident (window + 30 min), in minutes.
"""

from __future__ import annotations

import argparse
import json
import math
import random
import subprocess
import sys
from collections import Counter
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from bench.detection.traffic import Incident

T0 = datetime(2026, 3, 2, tzinfo=UTC)  # a Monday
DAY = 86400.0
HEALTHY_DAYS = 7
QUEUES = {"voice": ("billing", "tech"), "chat": ("sales", "support")}
ANSWER = {"voice": 20.0, "chat": 60.0}
PEAK = {"voice": 0.25, "chat": 0.15}  # arrivals per second at the daily peak
SL_FACTOR = math.log(1 / 0.11)  # mean wait T / 2.207: P(wait <= T) = 0.89
PATIENCE = 15.67  # mean patience in mean waits: abandons 1 / (1 + 15.67) = 6%
HANDLE = 240.0
COMPLAINTS_PER_HOUR = 6.0
GRACE = 1800.0


def incidents() -> list[Incident]:
    """Per channel: the collapse (``factor``: mean wait x6) and the complaint rise (x8)."""
    day = HEALTHY_DAYS * DAY
    out = []
    for channel, (collapse, spike) in (("voice", (10.0, 12.0)), ("chat", (16.0, 14.0))):
        for kind, hour, factor in (("sl_collapse", collapse, 6.0), ("complaint_8x", spike, 8.0)):
            start = day + hour * 3600
            out.append(Incident(kind, channel, start, start + 1800.0, factor))
    return out


def shape(t: float) -> float:
    """Share of the peak arrival rate at ``t`` seconds after T0."""
    weekend = int(t // DAY) % 7 >= 5
    hour = (t % DAY) / 3600
    return (0.45 if weekend else 1.0) * (0.06 + 0.94 * math.exp(-(((hour - 13.5) / 4.0) ** 2)))


def factor_at(found: Sequence[Incident], kind: str, channel: str, t: float) -> float | None:
    """The factor of the ``kind`` incident on ``channel`` at ``t``; None outside it."""
    for i in found:
        if i.kind == kind and i.channel == channel and i.start <= t < i.end:
            return i.factor
    return None


Score = Callable[[random.Random, str, float], int]
"""Draws the CSAT score of a rating given on a channel at ``t`` seconds after T0."""


def usual_score(rng: random.Random, _channel: str, _t: float) -> int:
    """8 of 10 ratings satisfied, the CSAT floor."""
    return rng.choice((4, 5, 5, 5, 4, 5, 3, 2, 5, 4))


def write_stream(
    path: Path, seed: int, found: Sequence[Incident], *, score: Score, rise: str, top: float
) -> None:
    """The stream's events: waits times the factor of an ``sl_collapse`` incident, ratings
    drawn by ``score``, complaints at ``COMPLAINTS_PER_HOUR`` at the peak times the factor of a
    ``rise`` incident (thinned from ``top`` times the peak rate, the largest factor)."""
    rng = random.Random(seed)
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
            mean = usual * (factor_at(found, "sl_collapse", channel, t) or 1.0)
            wait, patience = rng.expovariate(1 / mean), rng.expovariate(1 / (PATIENCE * usual))
            add(t, "contact.queued", channel, queue=queue, contact_id=cid)
            if patience < wait:
                add(t + patience, "contact.abandoned", channel, queue=queue, contact_id=cid)
                continue
            add(t + wait, "contact.answered", channel, queue=queue, contact_id=cid)
            ended = t + wait + rng.expovariate(1 / HANDLE)
            add(ended, "contact.ended", channel, queue=queue, contact_id=cid)
            if rng.random() < 0.2:
                rating = score(rng, channel, ended + 30)
                add(ended + 30, "survey.answered", channel, survey="csat", score=rating)
        t = 0.0
        while (t := t + rng.expovariate(COMPLAINTS_PER_HOUR * top / 3600)) < end:
            factor = factor_at(found, rise, channel, t) or 1.0
            if rng.random() <= shape(t) * factor / top:
                add(t, "complaint.received", channel, category=rng.choice(("billing", "service")))
    events.sort(key=lambda e: (e[0], e[1]))
    with path.open("w") as f:
        for _, _, event in events:
            f.write(json.dumps(event) + "\n")


def generate(path: Path, seed: int) -> None:
    write_stream(path, seed, incidents(), score=usual_score, rise="complaint_8x", top=8.0)


def firings(path: Path) -> list[tuple[float, str, str]]:
    """(seconds after T0, alert, channel) of every transition to firing."""
    start = T0.timestamp()
    out = []
    with path.open() as f:
        for line in f:
            record = json.loads(line)
            if record["state"] == "firing":
                out.append((record["ts"] - start, record["alertname"], record["labels"]["channel"]))
    return out


def report(
    seed: int, fired: list[tuple[float, str, str]], found: Sequence[Incident] | None = None
) -> None:
    """Healthy firings per alert and channel, and each incident's first firings (``found``:
    this stream's incidents by default)."""
    healthy = Counter((alert, ch) for t, alert, ch in fired if t < HEALTHY_DAYS * DAY)
    print(f"seed {seed}: healthy firings per channel-week: {dict(sorted(healthy.items()))}")
    for inc in incidents() if found is None else found:
        first: dict[str, float] = {}
        for t, alert, ch in fired:
            if ch == inc.channel and inc.start <= t <= inc.end + GRACE and alert not in first:
                first[alert] = round((t - inc.start) / 60, 1)
        print(f"  {inc.kind} {inc.channel}: {first or 'never paged'}")


def run_stream(
    argv: Sequence[str] | None,
    description: str,
    default_out: Path,
    make: Callable[[Path, int], None],
    found: Sequence[Incident],
) -> None:
    """The command line of a stream module: generate each seed's events with ``make`` (once),
    replay them with the default config (or ``--config``) and print :func:`report`."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--out", type=Path, default=default_out)
    parser.add_argument(
        "--config", type=Path, help="replay with this config instead of the defaults (tuning)"
    )
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    config = args.config
    if config is None:
        config = args.out / "default.yaml"
        config.write_text("# every setting at its default\n{}\n")
    for seed in args.seeds:
        events, alerts = args.out / f"events-{seed}.jsonl", args.out / f"alerts-{seed}.jsonl"
        if not events.exists():
            make(events, seed)
        cmd = [sys.executable, "-m", "support_monitor", "replay", str(events)]
        cmd += ["--config", str(config), "--alerts-out", str(alerts)]
        subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)
        report(seed, firings(alerts), found)


def main(argv: Sequence[str] | None = None) -> None:
    description = __doc__.split("\n", 1)[0]
    run_stream(argv, description, Path("bench/out/exponential"), generate, incidents())


if __name__ == "__main__":
    main()
