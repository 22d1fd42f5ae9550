"""Issue 11's headline complaint case: an 8x spike for 30 minutes on a channel with about 6
complaints an hour, with the default config.

Complaints on voice are a Poisson stream at ``--rate`` an hour, flat (no seasonality), for
``--warmup`` hours, then ``--factor`` times that for 30 minutes, then an hour at the usual
rate. Each (seed, warm-up) file is replayed with ``support-monitor replay`` (every setting at
its default) and scored: the first ``ComplaintSpike`` page of the channel (not its category
twin, which the notifiers group with it) within the spike or the hour after it, and the pages
before the spike (false pages on flat traffic).

    .venv/bin/python -m bench.detection.complaint_flat [--seeds 1 2 3 4 5 6 7 8]
        [--warmups 6 24 72] [--rate 6] [--factor 8] [--out bench/out/complaint-flat]
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import subprocess
import sys
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path

T0 = datetime(2026, 11, 2, tzinfo=UTC)  # a Monday
HOUR = 3600.0
SPIKE = 1800.0


def generate(path: Path, seed: int, warmup_hours: float, rate: float, factor: float) -> float:
    """Write the stream; return the spike's start in seconds after ``T0``. A Poisson stream at
    the peak rate, thinned to the rate of the moment (independent of the code under test)."""
    rng = random.Random(seed)
    start = warmup_hours * HOUR
    end = start + SPIKE + HOUR
    peak = rate * max(factor, 1.0) / HOUR
    t, n = 0.0, 0
    with path.open("w") as f:
        while (t := t + rng.expovariate(peak)) < end:
            now = rate * (factor if start <= t < start + SPIKE else 1.0) / HOUR
            if rng.random() > now / peak:
                continue
            n += 1
            ts = (T0 + timedelta(seconds=t)).isoformat(timespec="milliseconds")
            event = {"event_id": f"c{n}", "type": "complaint.received", "ts": ts}
            f.write(json.dumps({**event, "channel": "voice"}) + "\n")
    return start


def pages(path: Path) -> list[float]:
    """Seconds after ``T0`` of each channel-level ComplaintSpike page."""
    out = []
    with path.open() as f:
        for line in f:
            r = json.loads(line)
            spike = r["state"] == "firing" and r["alertname"] == "ComplaintSpike"
            if spike and "category" not in r["labels"]:
                out.append(r["ts"] - T0.timestamp())
    return out


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3, 4, 5, 6, 7, 8])
    parser.add_argument("--warmups", type=float, nargs="+", default=[6.0, 24.0, 72.0])
    parser.add_argument("--rate", type=float, default=6.0, help="complaints an hour")
    parser.add_argument("--factor", type=float, default=8.0)
    parser.add_argument("--out", type=Path, default=Path("bench/out/complaint-flat"))
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    config = args.out / "default.yaml"
    config.write_text("# every setting at its default\n{}\n")
    delays: list[float | None] = []
    false_pages = 0
    flat_hours = 0.0
    for warmup in args.warmups:
        row = []
        for seed in args.seeds:
            events = args.out / f"events-{seed}-{warmup:g}h.jsonl"
            alerts = args.out / f"alerts-{seed}-{warmup:g}h.jsonl"
            start = generate(events, seed, warmup, args.rate, args.factor)
            cmd = [sys.executable, "-m", "support_monitor", "replay", str(events)]
            cmd += ["--config", str(config), "--alerts-out", str(alerts)]
            subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)
            fired = pages(alerts)
            false_pages += sum(1 for t in fired if t < start)
            flat_hours += warmup
            hit = [t for t in fired if start <= t <= start + SPIKE + HOUR]
            delay = round((hit[0] - start) / 60, 1) if hit else None
            delays.append(delay)
            row.append("never" if delay is None else f"{delay:g}")
        print(f"warm-up {warmup:g} h: first page (min) per seed: {', '.join(row)}")
    found = [d for d in delays if d is not None]
    within = sum(1 for d in found if d <= 20)
    print(
        f"paged {len(found)} of {len(delays)}; median {statistics.median(found):g} min, worst "
        f"{max(found):g}; within 20 min: {within}"
    )
    per_week = false_pages / flat_hours * 168 if flat_hours else 0.0
    print(
        f"pages before the spike: {false_pages} in {flat_hours:g} flat hours ({per_week:.2f}/week)"
    )


if __name__ == "__main__":
    main()
