"""Try candidate detector settings side by side on the detection benchmark's traffic.

    .venv/bin/python -m bench.detection.explore_rules CONFIG.yaml [--seeds 1] \
        [--healthy-days 2] [--out bench/out/explore] [--rescore]

Generates the benchmark's events for each seed (once: an existing ``events-SEED.jsonl`` in
``--out`` is reused), replays them with ``CONFIG.yaml`` (a config with several variants of a
detector, each with its own alert name), and prints per alert and channel: pages per
channel-week on the healthy days, and the delay of the alert's first page in each incident
window (plus the 30 min grace), in minutes. Tuning aid for the default rules; the benchmark
proper (``bench.detection.run``) always replays the defaults.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path

from bench.detection import run, score, traffic


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("config", type=Path)
    parser.add_argument("--seeds", type=int, nargs="+", default=[1])
    parser.add_argument("--healthy-days", type=float, default=2.0)
    parser.add_argument("--out", type=Path, default=Path("bench/out/explore"))
    parser.add_argument("--rescore", action="store_true")
    args = parser.parse_args(argv)
    channels = ["voice", "chat", "email"]
    args.out.mkdir(parents=True, exist_ok=True)
    lay = run.layout(channels, args.healthy_days)
    healthy = (lay.start, lay.healthy_end)
    weeks = args.healthy_days / 7 * len(args.seeds)
    false: dict[tuple[str, str], int] = defaultdict(int)
    delays: dict[tuple[str, str, str], list[str]] = defaultdict(list)
    for seed in args.seeds:
        p = run.paths(args.out, seed)
        if not p["events"].exists():
            run.generate(args.out, seed, lay, channels)
        if not args.rescore:
            with p["metrics"].open("wb") as stdout, p["stderr"].open("wb") as stderr:
                cmd = run.replay_command(args.out, seed, args.config)
                subprocess.run(cmd, stdout=stdout, stderr=stderr, check=True)
        pages = score.read_pages(p["alerts"])
        incidents = traffic.read_labels(p["labels"])
        result = score.score(pages, incidents, healthy, run.GRACE)
        for (alert, channel, _), n in result.false_pages.items():
            false[alert, channel] += n
        for det in result.detections:
            inc = det.incident
            for alert in {pg.alert for pg in pages}:
                d = det.by_alert.get(alert)
                cell = "-" if d is None else f"{d / 60:.1f}"
                delays[alert, inc.channel, inc.kind].append(cell)
    alerts = sorted({a for a, _ in false} | {a for a, _, _ in delays})
    for alert in alerts:
        fp = {ch: false.get((alert, ch), 0) / weeks for ch in channels}
        found = {
            f"{ch}/{kind}": "/".join(cells)
            for (a, ch, kind), cells in sorted(delays.items())
            if a == alert and any(c != "-" for c in cells)
        }
        print(
            f"{alert:28s} fp/ch-week voice {fp['voice']:5.1f} chat {fp['chat']:5.1f} "
            f"email {fp['email']:5.1f} | " + ", ".join(f"{k} {v}" for k, v in found.items())
        )
    sys.stdout.flush()


if __name__ == "__main__":
    main()
