"""Run the detection benchmark: generate, replay with the default config, score, compare.

    .venv/bin/python -m bench.detection.run [--seeds 1 2] [--healthy-days 7]
        [--channels voice chat email chatbot] [--jobs 1] [--out bench/out/detection]
        [--rescore]

For each seed: ``events-SEED.jsonl`` (healthy days from a Monday 00:00 UTC, then one weekday
with the labelled incidents of ``traffic.PLANS``), ``labels-SEED.jsonl``, then
``python -m support_monitor replay EVENTS --config default.yaml --alerts-out
alerts-SEED.jsonl`` (the CLI users run; ``default.yaml`` is ``{}``: every default, whose
channels are voice, chat, email and chatbot). It prints Markdown tables and writes ``results.json``.
``--rescore`` reuses the files of an earlier run.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import statistics
import subprocess
import sys
import time
from collections import Counter, defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from functools import partial
from pathlib import Path

from bench.detection import cusum, score, streams, traffic, traffic_agents, traffic_voice
from bench.detection.traffic import DAY, HOUR, Incident

GRACE = 30 * 60.0
STREAM = {
    "sl_collapse": "service level trials (binomial)",
    "backlog_growth": "arrivals (Poisson, x1.4)",
    "complaint_spike_4x": "complaints (Poisson, x4)",
    "complaint_spike_8x": "complaints (Poisson, x8)",
    "csat_drop": "CSAT ratings (binomial)",
    "tickets_piling": "first responses (Poisson, drop)",
    **traffic_agents.STREAM,
    **traffic_voice.STREAM,
}
INCIDENT_SLOTS = (8.0, 10.5, 13.0, 15.5, 18.0)
"""Hours of the incident day at which each channel's incidents start (2.5 h apart)."""


@dataclass(frozen=True, slots=True)
class Layout:
    start: float
    healthy_end: float
    incidents: list[Incident]
    end: float


def layout(channels: Sequence[str], healthy_days: float) -> Layout:
    """Healthy days from Monday 00:00 UTC, then the incidents on the next weekday; the stream
    ends an hour after the last incident's grace period."""
    start = traffic.MONDAY
    healthy_end = start + healthy_days * DAY
    day = math.ceil((healthy_end - start) / DAY) * DAY + start
    while (day - traffic.MONDAY) % traffic.WEEK >= 5 * DAY:  # incidents on a weekday
        day += DAY
    incidents = []
    for channel in channels:
        for hour, kind in zip(INCIDENT_SLOTS, traffic.PLANS.get(channel, ()), strict=False):
            begin = day + hour * HOUR
            end = begin + traffic.DURATIONS[kind]
            incidents.append(Incident(kind, channel, begin, end, traffic.FACTORS[kind]))
    # The staffing incidents (agent states) on the next weekday.
    incidents += traffic_agents.incidents(channels, day + DAY)
    # The customer-voice incidents on the first incident day, at hours free on their channel.
    incidents += traffic_voice.incidents(channels, day)
    end = max((inc.end for inc in incidents), default=healthy_end) + GRACE + HOUR
    return Layout(start, healthy_end, incidents, end)


def specs(channels: Sequence[str]) -> tuple[list[traffic.LiveSpec], list[traffic.DeskSpec]]:
    live = [s for s in traffic.default_live() if s.name in channels]
    desks = [d for d in traffic.default_desks() if d.name in channels]
    return live, desks


# ---------------------------------------------------------------------- CUSUM per incident


def _rates(channels: Sequence[str]) -> dict[tuple[str, str], cusum.Rate]:
    """(channel, stream) -> the true pre-change rate (events per second) of the traffic."""
    live, desks = specs(channels)
    out: dict[tuple[str, str], cusum.Rate] = {}
    for spec in live:
        out[spec.name, "arrivals"] = partial(_seasonal_rate, spec.peak_per_minute / 60, 0.0)
        complaints = spec.complaints_peak_per_hour / HOUR
        out[spec.name, "complaints"] = partial(_seasonal_rate, complaints, 0.0)
    for desk in desks:
        complaints = desk.complaints_peak_per_hour / HOUR
        out[desk.name, "complaints"] = partial(_seasonal_rate, complaints, 0.0)
        # First responses follow arrivals by about the median response time.
        lag = desk.first_response_median
        out[desk.name, "responses"] = partial(_seasonal_rate, desk.peak_per_hour / HOUR, lag)
    return out


def _seasonal_rate(peak: float, lag: float, t: float) -> float:
    return peak * traffic.seasonal(t - lag)


def optimal_delay(
    inc: Incident,
    s: streams.Streams,
    rate: cusum.Rate | None,
    healthy: tuple[float, float],
    allowed: int,
    *,
    voice_trials: list[tuple[float, int]] | None = None,
) -> tuple[float | None, float]:
    """(CUSUM delay for the incident, its threshold), at ``allowed`` alarms on ``healthy``."""
    stop = inc.end + GRACE
    if inc.kind in ("sl_collapse", "csat_drop", *traffic_agents.KINDS, *traffic_voice.KINDS):
        trials = s.csat if inc.kind == "csat_drop" else s.sl
        if inc.kind in traffic_voice.KINDS:  # bot sessions, sentiment scores, NPS answers
            trials = voice_trials or []
        base = [x for t, x in trials if healthy[0] <= t < healthy[1]]
        during = [x for t, x in trials if inc.start <= t < inc.end]
        p0 = sum(base) / len(base)
        p1 = sum(during) / len(during) if during else p0
        if p1 <= p0:
            return None, math.nan

        def binomial_alarms(h: float, span: tuple[float, float]) -> list[float]:
            return cusum.binomial(trials, p0, p1, h, span)

        h = cusum.calibrate(lambda h: len(binomial_alarms(h, healthy)), allowed)
        found = binomial_alarms(h, (inc.start, stop))
    else:
        assert rate is not None
        times = {"backlog_growth": s.arrivals, "tickets_piling": s.responses}.get(
            inc.kind, s.complaints
        )
        ratio = inc.factor
        if inc.kind == "tickets_piling":  # the drop seen in the window (an oracle), >= 2%
            seen = sum(1 for t in times if inc.start <= t < inc.end)
            expected = sum(
                rate(inc.start + m * 60.0) * 60 for m in range(int(inc.end - inc.start) // 60)
            )
            ratio = max(0.02, min(0.5, seen / expected))

        def poisson_alarms(h: float, span: tuple[float, float]) -> list[float]:
            return cusum.poisson(times, rate, ratio, h, span)

        h = cusum.calibrate(lambda h: len(poisson_alarms(h, healthy)), allowed)
        found = poisson_alarms(h, (inc.start, stop))
    return (found[0] - inc.start if found else None), h


# ---------------------------------------------------------------------- one seed


def paths(out: Path, seed: int) -> dict[str, Path]:
    return {
        name: out / f"{name}-{seed}.{ext}"
        for name, ext in (("events", "jsonl"), ("labels", "jsonl"), ("alerts", "jsonl"),
                          ("metrics", "txt"), ("stderr", "log"))
    }  # fmt: skip


def generate(out: Path, seed: int, lay: Layout, channels: Sequence[str]) -> int:
    live, desks = specs(channels)
    p = paths(out, seed)
    traffic.write_labels(p["labels"], lay.incidents)
    span = (lay.start, lay.end)
    n = traffic.write(
        p["events"],
        seed,
        span,
        live=live,
        desks=desks,
        incidents=lay.incidents,
        generator_class=traffic_agents.AgentGenerator,
    )
    return n + traffic_voice.merge_into(p["events"], seed, span, channels, lay.incidents)


def replay_command(out: Path, seed: int, config: Path) -> list[str]:
    p = paths(out, seed)
    return [
        sys.executable, "-m", "support_monitor", "replay", str(p["events"]),
        "--config", str(config), "--alerts-out", str(p["alerts"]),
    ]  # fmt: skip


def run_replays(out: Path, seeds: Sequence[int], config: Path, jobs: int) -> float:
    """Run the replays (``jobs`` at a time); return their CPU seconds (user + system)."""
    before = os.times()
    pending = list(seeds)
    running: list[tuple[int, subprocess.Popen[bytes]]] = []
    while pending or running:
        while pending and len(running) < jobs:
            seed = pending.pop(0)
            p = paths(out, seed)
            with p["metrics"].open("wb") as stdout, p["stderr"].open("wb") as stderr:
                proc = subprocess.Popen(
                    replay_command(out, seed, config), stdout=stdout, stderr=stderr
                )
            running.append((seed, proc))
        seed, proc = running.pop(0)
        if proc.wait() != 0:
            raise SystemExit(f"replay of seed {seed} failed: see {paths(out, seed)['stderr']}")
    after = os.times()
    return (after.children_user - before.children_user) + (
        after.children_system - before.children_system
    )


def rejected(metrics: Path) -> float:
    total = 0.0
    for line in metrics.read_text().splitlines():
        if line.startswith("support_monitor_events_rejected_total{"):
            total += float(line.rsplit(" ", 1)[1])
    return total


# ---------------------------------------------------------------------- the report


@dataclass(frozen=True, slots=True)
class Run:
    """One incident in one seed."""

    seed: int
    delay: float | None
    first_alert: str | None
    by_alert: dict[str, float]
    cusum_delay: float | None
    """At the false-page count of the channel's rules (``cusum_allowed`` on the healthy span)."""
    cusum_h: float
    cusum_allowed: int
    cusum_target_delay: float | None
    """At one false alarm per channel-week, the target rate."""

    @property
    def ratio(self) -> float | None:
        """Alert delay / CUSUM delay (inf when never paged); None when the CUSUM saw nothing."""
        if self.cusum_delay is None:
            return None
        delay = math.inf if self.delay is None else self.delay
        return delay / max(self.cusum_delay, 1.0)


@dataclass(slots=True)
class Results:
    health: dict[str, list[tuple[float, float, int, int]]] = field(
        default_factory=lambda: defaultdict(list)
    )
    """Channel -> per seed (service level, abandon ratio, offered, complaints) when healthy."""
    false_pages: Counter[tuple[str, str, str]] = field(default_factory=Counter)
    inhibited: Counter[tuple[str, str]] = field(default_factory=Counter)
    """(channel, severity) -> false pages that began inhibited (counted in ``false_pages``)."""
    group_pages: Counter[tuple[str, str]] = field(default_factory=Counter)
    """(channel, severity) -> first messages of alert groups in the healthy span."""
    other: Counter[tuple[str, str, str]] = field(default_factory=Counter)
    runs: dict[tuple[str, str], list[Run]] = field(default_factory=lambda: defaultdict(list))


def collect(
    out: Path, seeds: Sequence[int], channels: Sequence[str], healthy_days: float
) -> Results:
    """Score every seed's alerts and run the CUSUM on its streams."""
    lay = layout(channels, healthy_days)
    healthy = (lay.start, lay.healthy_end)
    answer = {s.name: s.answer_seconds for s in traffic.default_live()}
    rates = _rates(channels)
    res = Results()
    for seed in seeds:
        p = paths(out, seed)
        pages = score.read_pages(p["alerts"])
        result = score.score(pages, traffic.read_labels(p["labels"]), healthy, GRACE)
        res.false_pages.update(result.false_pages)
        res.inhibited.update(
            (page.channel, page.severity)
            for page in pages
            if page.inhibited and healthy[0] <= page.t < healthy[1]
        )
        res.other.update(result.other)
        res.group_pages.update(
            (page.channel, page.severity)
            for page in score.read_group_pages(p["alerts"])
            if healthy[0] <= page.t < healthy[1]
        )
        per_channel = streams.read(p["events"], answer)
        voice = traffic_voice.read_trials(p["events"])
        for channel in channels:
            st = per_channel[channel]
            sl, ab, offered = streams.service_level(st, *healthy)
            complaints = sum(1 for t in st.complaints if healthy[0] <= t < healthy[1])
            res.health[channel].append((sl, ab, offered, complaints))
        for det in result.detections:
            inc = det.incident
            fp = sum(n for (_, ch, _), n in result.false_pages.items() if ch == inc.channel)
            per_week = max(1, round(healthy_days / 7))
            allowed = fp or per_week
            stream = {"backlog_growth": "arrivals", "tickets_piling": "responses"}.get(
                inc.kind, "complaints"
            )
            rate = rates.get((inc.channel, stream))
            extra = voice.get((inc.channel, inc.kind))
            st = per_channel[inc.channel]
            opt, h = optimal_delay(inc, st, rate, healthy, allowed, voice_trials=extra)
            target, _ = optimal_delay(inc, st, rate, healthy, per_week, voice_trials=extra)
            first = det.first.alert if det.first else None
            run = Run(seed, det.delay, first, det.by_alert, opt, h, allowed, target)
            res.runs[inc.kind, inc.channel].append(run)
    return res


def _fmt(seconds: float | None) -> str:
    if seconds is None or math.isnan(seconds):
        return "-"
    if seconds == math.inf:
        return "never"
    return f"{seconds / 60:.1f}"


def _median(values: Sequence[float]) -> float | None:
    return statistics.median(values) if values else None


def _ratio(value: float | None) -> str:
    if value is None:
        return "-"
    return "inf" if value == math.inf else f"{value:.1f}"


def _met(ok: bool) -> str:
    return "met" if ok else "**missed**"


def _worst(runs: Sequence[Run]) -> float:
    """The largest delay over seeds; inf when some seed never paged."""
    return max((math.inf if r.delay is None else r.delay) for r in runs)


def _alerts_cell(runs: Sequence[Run]) -> str:
    """Each alert that paged during the incident: median delay (and in how many seeds)."""
    delays: dict[str, list[float]] = defaultdict(list)
    for r in runs:
        for alert, delay in r.by_alert.items():
            delays[alert].append(delay)
    cells = []
    for alert, values in sorted(delays.items(), key=lambda item: statistics.median(item[1])):
        seen = "" if len(values) == len(runs) else f" ({len(values)}/{len(runs)})"
        cells.append(f"{alert} {_fmt(statistics.median(values))}{seen}")
    return ", ".join(cells)


def _unpaged(runs: Mapping[tuple[str, str], Sequence[Run]]) -> str:
    """The verdict on "every incident paged": each incident and seed no alert paged, and of
    those the ones that neither optimal CUSUM (at the rules' false pages, nor at one false alarm
    per channel-week) finds in that seed's own stream either."""
    never = [
        (f"{kind}/{channel}", r)
        for (kind, channel), seeded in sorted(runs.items())
        for r in seeded
        if r.delay is None
    ]
    if not never:
        return _met(ok=True)
    names = ", ".join(dict.fromkeys(name for name, _ in never))
    unseen = [
        f"{name} seed {r.seed}"
        for name, r in never
        if r.cusum_delay is None and r.cusum_target_delay is None
    ]
    seen = len(never) - len(unseen)
    text = f"{_met(ok=False)} (never: {names}; {len(never)} incident-seeds unpaged"
    if unseen:
        text += (
            f", {seen} of them found by the optimal CUSUM; the CUSUM finds nothing either in "
            + ", ".join(unseen)
        )
    return text + ")"


def print_report(
    res: Results, seeds: Sequence[int], channels: Sequence[str], healthy_days: float
) -> dict[str, dict[str, float]]:
    """Markdown tables and the target verdicts; returns false pages per channel-week."""
    weeks = len(seeds) * healthy_days / 7  # per channel
    print(f"\nHealthy traffic ({len(seeds)} seed(s) x {healthy_days:g} days, mean of seeds):\n")
    print("| channel | service level | abandon ratio | offered/week | complaints/week |")
    print("|---|---:|---:|---:|---:|")
    for channel, values in res.health.items():
        live = [v for v in values if v[2]]
        sl = f"{statistics.fmean(v[0] for v in live):.3f}" if live else "-"
        ab = f"{statistics.fmean(v[1] for v in live):.3f}" if live else "-"
        offered = statistics.fmean(v[2] for v in values) * 7 / healthy_days
        complaints = statistics.fmean(v[3] for v in values) * 7 / healthy_days
        print(f"| {channel} | {sl} | {ab} | {offered:,.0f} | {complaints:,.0f} |")

    print(f"\nFalse pages per channel-week, healthy traffic ({weeks:g} week(s) per channel):\n")
    print("| alert | severity | " + " | ".join(channels) + " |")
    print("|---|---|" + "---:|" * len(channels))
    for alert, sev in sorted({(a, sev) for a, _, sev in res.false_pages}):
        cells = [f"{res.false_pages[alert, ch, sev] / weeks:.1f}" for ch in channels]
        print(f"| {alert} | {sev} | " + " | ".join(cells) + " |")
    totals: dict[str, dict[str, float]] = {}
    for sev in ("critical", "warning"):
        totals[sev] = {
            ch: sum(n for (_, c, s), n in res.false_pages.items() if c == ch and s == sev) / weeks
            for ch in channels
        }
        cells = [f"**{totals[sev][ch]:.1f}**" for ch in channels]
        print(f"| **all {sev}** | | " + " | ".join(cells) + " |")
        held = [f"{res.inhibited[ch, sev] / weeks:.1f}" for ch in channels]
        print(f"| of these, began inhibited (sent to nobody then) | | {' | '.join(held)} |")
    print(
        "\nMessages per channel-week on healthy traffic as the built-in notifiers send them by "
        "default (one per channel group, group_wait 30s; by the group's highest severity):\n"
    )
    print("| first message of a group | " + " | ".join(channels) + " |")
    print("|---|" + "---:|" * len(channels))
    for sev in ("critical", "warning"):
        cells = [f"{res.group_pages[ch, sev] / weeks:.1f}" for ch in channels]
        print(f"| {sev} | " + " | ".join(cells) + " |")
    if res.other:
        other = ", ".join(f"{a}/{c} {n}" for (a, c, _), n in sorted(res.other.items()))
        print(f"\nPages on the incident day outside every window and grace: {other}")

    print(f"\nIncidents ({len(seeds)} seed(s)); delays in minutes from the incident start:\n")
    print(
        "| incident | channel | paged | first page: median / worst | alerts that paged: median "
        "| CUSUM stream | CUSUM at the rules' false pages (count) | ratio: median / worst "
        "| CUSUM at 1 per channel-week |"
    )
    print("|---|---|---:|---:|---|---|---:|---:|---:|")
    for (kind, channel), runs in sorted(res.runs.items()):
        delays = [r.delay for r in runs if r.delay is not None]
        paged = _alerts_cell(runs)
        opt = [r.cusum_delay for r in runs if r.cusum_delay is not None]
        target = [r.cusum_target_delay for r in runs if r.cusum_target_delay is not None]
        allowed = "/".join(str(r.cusum_allowed) for r in runs)
        ratios = [x for r in runs if (x := r.ratio) is not None]
        print(
            f"| {kind} | {channel} | {len(delays)}/{len(runs)} "
            f"| {_fmt(_median(delays))} / {_fmt(_worst(runs))} | {paged or '-'} "
            f"| {STREAM[kind]} | {_fmt(_median(opt))} ({allowed}) "
            f"| {_ratio(_median(ratios))} / {_ratio(max(ratios, default=None))} "
            f"| {_fmt(_median(target))} |"
        )

    print("\nTargets:\n")
    crit = max(totals["critical"].values(), default=0.0)
    warn = max(totals["warning"].values(), default=0.0)
    print(
        f"- at most 1 critical page per channel-week: worst channel {crit:.1f}: {_met(crit <= 1)}"
    )
    print(f"- at most 2 warnings per channel-week: worst channel {warn:.1f}: {_met(warn <= 2)}")
    print(f"- every incident paged: {_unpaged(res.runs)}")
    for kinds, limit in (
        (("sl_collapse", "backlog_growth"), 600.0),
        (("complaint_spike_8x",), 1200.0),
    ):
        late = [
            f"{k}/{c} {_fmt(_worst(runs))}"
            for (k, c), runs in sorted(res.runs.items())
            if k in kinds and _worst(runs) > limit
        ]
        print(
            f"- {' and '.join(kinds)} within {limit / 60:.0f} min (worst): {_met(not late)}"
            + (f" ({'; '.join(late)})" if late else "")
        )
    over = []
    for (k, c), runs in sorted(res.runs.items()):
        worst_ratio = max((x for r in runs if (x := r.ratio) is not None), default=None)
        if worst_ratio is not None and worst_ratio > 2:
            over.append(f"{k}/{c} {_ratio(worst_ratio)}")
    print(
        f"- each delay within 2x of the CUSUM's: {_met(not over)}"
        + (f" ({'; '.join(over)})" if over else "")
    )
    return totals


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--healthy-days", type=float, default=7.0)
    parser.add_argument(
        "--channels", nargs="+", default=["voice", "chat", "email", *traffic_voice.CHANNELS]
    )
    parser.add_argument("--jobs", type=int, default=1, help="replays run at once")
    parser.add_argument("--out", type=Path, default=Path("bench/out/detection"))
    parser.add_argument("--rescore", action="store_true", help="score the files of a past run")
    args = parser.parse_args(argv)
    unknown = set(args.channels) - set(traffic.PLANS) - set(traffic_voice.CHANNELS)
    if unknown:
        parser.error(
            f"--channels: unknown {sorted(unknown)} "
            "(the default config has voice, chat, email, chatbot)"
        )
    args.out.mkdir(parents=True, exist_ok=True)
    config = args.out / "default.yaml"
    config.write_text("# every setting at its default (channels voice, chat, email, chatbot)\n{}\n")
    lay = layout(args.channels, args.healthy_days)
    if not args.rescore:
        start = time.process_time()
        counts = [generate(args.out, seed, lay, args.channels) for seed in args.seeds]
        gen_cpu = time.process_time() - start
        wall = time.perf_counter()
        cpu = run_replays(args.out, args.seeds, config, args.jobs)
        wall = time.perf_counter() - wall
        span = (lay.end - lay.start) / DAY
        print(
            f"generated {sum(counts):,} events ({span:.2f} days per seed) in {gen_cpu:.1f} s CPU; "
            f"replay {cpu:.0f} s CPU, {wall:.0f} s wall for {len(args.seeds)} seed(s)"
        )
        for seed in args.seeds:
            bad = rejected(paths(args.out, seed)["metrics"])
            if bad:
                raise SystemExit(f"seed {seed}: {bad:.0f} events rejected: the generator is wrong")
    res = collect(args.out, args.seeds, args.channels, args.healthy_days)
    totals = print_report(res, args.seeds, args.channels, args.healthy_days)
    results = {
        "healthy": res.health,
        "false_pages": {"|".join(k): n for k, n in res.false_pages.items()},
        "false_pages_per_channel_week": totals,
        "inhibited_at_start": {"|".join(k): n for k, n in res.inhibited.items()},
        "group_messages": {"|".join(k): n for k, n in res.group_pages.items()},
        "incidents": {"|".join(k): [asdict(r) for r in runs] for k, runs in res.runs.items()},
    }
    (args.out / "results.json").write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
