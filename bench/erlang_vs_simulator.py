"""How far Erlang C is from the built-in simulator, where customers abandon.

One voice channel (T = 20 s, short abandons < 5 s, one queue) is simulated.

Default (steady): the intraday curve is held at its peak (``sim_model.intraday`` replaced by the
constant 1.25 in this process) and incidents are off, so the load is constant at the
simulator's design peak (90% occupancy). After a 1 h warm-up the measured arrival rate, mean talk
time (answered -> ended) + the simulator's after-contact work (10% of its mean handle time, not in
the events) + its answer lag (0.5-3 s, mean 1.75 s, during which the agent is taken) give A.
Erlang C is compared with the simulator's waits and with Erlang A (M/M/N+M: the same model plus
exponential patience with the simulator's mean, solved here as a birth-death chain), which
isolates the effect of abandons. Measured waits include the answer lag.

``--window S``: the real intraday curve; contacts are grouped in windows of S seconds by arrival
time and each window's Erlang C uses that window's counted arrival rate and mean talk time
(hindsight: no forecast error), banded by the A / N that gives. This shows what the counting
noise of a short window does to the prediction.

python bench/erlang_vs_simulator.py [--hours 48] [--agents 80] [--per-minute 12]
python bench/erlang_vs_simulator.py --window 300 [--hours 96]
"""

from __future__ import annotations

import argparse
import math
import sys
from dataclasses import dataclass, field
from pathlib import Path

import msgspec

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from support_monitor.monitor.config import SimulatorSettings
from support_monitor.monitor.config_channel import ChannelSettings
from support_monitor.monitor.engine.erlang import average_wait, erlang_c, service_level
from support_monitor.monitor.sources import sim_model

T = 20.0
SHORT = 5.0
START = 1767225600.0
WARM_UP = 3600.0
ON_QUEUE = ("available", "busy", "after_call_work")
ANSWER_LAG = 1.75  # mean of the simulator's uniform(0.5, 3.0) s between assignment and answer


@dataclass
class Bucket:
    arrivals: int = 0
    talk: list[float] = field(default_factory=list)
    answered_waits: list[float] = field(default_factory=list)
    abandoned_waits: list[float] = field(default_factory=list)
    agent_seconds: float = 0.0  # time integral of the agents on the queue
    seconds: float = 0.0


class Collector:
    """Contacts grouped by arrival time: one bucket after the warm-up (``window`` None) or one
    per window of ``window`` seconds."""

    def __init__(self, window: float | None) -> None:
        self.window = window
        self.queued: dict[str, float] = {}
        self.answered: dict[str, float] = {}
        self.buckets: dict[int, Bucket] = {}
        self.states: dict[str, str] = {}
        self.on_queue = 0
        self.last = START

    def _bucket(self, queued: float) -> Bucket | None:
        if self.window is None:
            k = 0 if queued - START >= WARM_UP else None
        else:
            k = int((queued - START) // self.window)
        return None if k is None else self.buckets.setdefault(k, Bucket())

    def _set_state(self, agent: str, state: str) -> None:
        was = self.states.get(agent, "offline") in ON_QUEUE
        self.states[agent] = state
        self.on_queue += (state in ON_QUEUE) - was

    def _advance(self, ts: float) -> None:
        # the agents on the queue since the previous event, into that event's bucket
        if (b := self._bucket(self.last)) is not None:
            b.agent_seconds += self.on_queue * (ts - self.last)
            b.seconds += ts - self.last
        self.last = ts

    def add(self, ts: float, ev: dict[str, str]) -> None:
        self._advance(ts)
        kind, cid = ev["type"], ev.get("contact_id", "")
        if kind == "agent.state":
            self._set_state(ev["agent_id"], ev["state"])
            return
        if kind == "contact.queued":
            self.queued[cid] = ts
            if (b := self._bucket(ts)) is not None:
                b.arrivals += 1
        elif kind == "contact.answered":
            self._set_state(ev["agent_id"], "busy")  # implied by the answer
            self.answered[cid] = ts
            if (b := self._bucket(self.queued[cid])) is not None:
                b.answered_waits.append(ts - self.queued[cid])
        elif kind == "contact.abandoned":
            q = self.queued.pop(cid)
            if (b := self._bucket(q)) is not None:
                b.abandoned_waits.append(ts - q)
        elif kind == "contact.ended":
            talk = ts - self.answered.pop(cid)
            if (b := self._bucket(self.queued.pop(cid))) is not None:
                b.talk.append(talk)


def simulate(
    hours: float, agents: int, per_minute: float, seed: int, *, window: float | None
) -> tuple[dict[int, Bucket], float, float]:
    """Buckets of contacts, the simulator's mean handle time and its mean patience."""
    channels = {"voice": ChannelSettings(answer_seconds=T, short_abandon_seconds=SHORT)}
    sim = SimulatorSettings(
        seed=seed, arrivals_per_minute=per_minute, agents=agents, incidents=False
    )
    center = sim_model.ContactCenter(channels, sim, START)
    live = center._live[0]  # noqa: SLF001 - the handle time and patience it draws from
    out = Collector(window)
    end = START + hours * 3600
    for ts, raw in center.run():
        if ts > end:
            break
        out.add(ts, msgspec.json.decode(raw))
    buckets = out.buckets
    if window is not None:  # the last window's contacts are unfinished
        last = int((end - START) // window) - 1
        buckets = {k: b for k, b in buckets.items() if k < last and b.talk}
    return buckets, live.handle, live.patience


def erlang_a(agents: int, rate: float, aht: float, patience: float) -> tuple[float, float]:
    """M/M/N+M by its birth-death chain: (mean wait of all arrivals, share abandoned)."""
    mu, theta = 1 / aht, 1 / patience
    p = [1.0]
    for n in range(1, agents + 5000):
        p.append(p[-1] * rate / (min(n, agents) * mu + max(n - agents, 0) * theta))
    total = sum(p)
    queue = sum((n - agents) * x for n, x in enumerate(p) if n > agents) / total
    return queue / rate, queue * theta / rate


def on_queue(b: Bucket, pool: int) -> int:
    """Time mean of the agents on the queue (available, busy, after-call work), rounded; the
    whole pool when the stream has no agent states (a simulator without them)."""
    if b.agent_seconds == 0.0:
        return pool
    return round(b.agent_seconds / b.seconds)


def stats(b: Bucket) -> tuple[float, float, float, float]:
    """(mean wait of answered, mean wait of all, service level, share abandoned)."""
    waits = b.answered_waits + b.abandoned_waits
    counted = len(b.answered_waits) + sum(1 for x in b.abandoned_waits if x >= SHORT)
    in_sla = sum(1 for x in b.answered_waits if x <= T)
    answered = sum(b.answered_waits) / len(b.answered_waits) if b.answered_waits else math.nan
    return (
        answered,
        sum(waits) / len(waits),
        in_sla / counted if counted else math.nan,
        len(b.abandoned_waits) / len(waits),
    )


def steady(args: argparse.Namespace) -> None:
    sim_model.intraday = lambda _elapsed: 1 + sim_model.CURVE_AMPLITUDE  # type: ignore[assignment]
    buckets, handle, patience = simulate(
        args.hours, args.agents, args.per_minute, args.seed, window=None
    )
    b = buckets[0]
    n = on_queue(b, args.agents)
    rate = b.arrivals / (args.hours * 3600 - WARM_UP)
    aht = sum(b.talk) / len(b.talk) + sim_model.WRAP_SHARE * handle + ANSWER_LAG
    a = rate * aht
    got_answered, got_all, got_sl, got_abandoned = stats(b)
    a_wait, a_abandoned = erlang_a(n, rate, aht, patience)
    print(
        f"steady peak load, {args.hours:g} h (1 h warm-up), seed {args.seed}: pool "
        f"{args.agents}, on the queue {b.agent_seconds / max(b.seconds, 1):.1f} on average "
        f"-> N = {n}, "
        f"{rate:.4f} arrivals/s, mean talk + after-contact work + answer lag {aht:.1f} s, "
        f"A = {a:.2f} Erlangs (A/N = {a / n:.3f}), patience mean {patience:g} s, "
        f"{len(b.answered_waits) + len(b.abandoned_waits)} contacts"
    )
    print("| | P(wait) | mean wait, all arrivals | SL 20 s | abandoned |")
    print("|---|---:|---:|---:|---:|")
    print(
        f"| Erlang C | {erlang_c(n, a):.3f} | {average_wait(n, a, aht):.1f} s | "
        f"{service_level(n, a, aht, T):.3f} | 0 (none in the model) |"
    )
    print(f"| Erlang A (patience {patience:g} s) | | {a_wait:.1f} s | | {a_abandoned:.1%} |")
    late = sum(1 for x in b.answered_waits if x > 3.0) / len(b.answered_waits)
    print(
        f"| simulator | {late:.3f} (> 3 s) | {got_all:.1f} s incl. answer lag "
        f"({got_all - ANSWER_LAG * (1 - got_abandoned):.1f} s without); answered only "
        f"{got_answered:.1f} s | "
        f"{got_sl:.3f} | {got_abandoned:.1%} |"
    )


def windowed(args: argparse.Namespace) -> None:
    window = args.window
    buckets, handle, _ = simulate(
        args.hours, args.agents, args.per_minute, args.seed, window=window
    )
    bands: dict[str, list[tuple[float, ...]]] = {}
    for b in buckets.values():
        n = on_queue(b, args.agents)
        aht = sum(b.talk) / len(b.talk) + sim_model.WRAP_SHARE * handle + ANSWER_LAG
        a = b.arrivals / window * aht
        occ = a / n
        if occ >= 1:
            band = ">= 1.00"
        else:
            band = next(f"< {x:.2f}" for x in (0.7, 0.8, 0.85, 0.9, 0.95, 1.0) if occ < x)
        _, got_all, got_sl, got_abandoned = stats(b)
        row = (average_wait(n, a, aht), got_all, service_level(n, a, aht, T), got_sl)
        bands.setdefault(band, []).append((*row, got_abandoned))
    print(
        f"intraday curve, {args.hours:g} h, seed {args.seed}: pool {args.agents}, N = agents on "
        "the queue (time mean over the window, rounded), "
        f"{args.per_minute:g} contacts/min on average, {len(buckets)} windows of {window:g} s"
    )
    print(
        "| A / N from the window's counts | windows | Erlang C mean wait | measured mean wait | "
        "Erlang C SL | measured SL | abandoned |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|")
    for band in sorted(bands):
        rows = bands[band]

        def mean(i: int, rows: list[tuple[float, ...]] = rows) -> float:
            vals = [r[i] for r in rows if not math.isnan(r[i])]
            return sum(vals) / len(vals) if vals else math.nan

        print(
            f"| {band} | {len(rows)} | {mean(0):.1f} s | {mean(1):.1f} s | {mean(2):.3f} | "
            f"{mean(3):.3f} | {mean(4):.1%} |"
        )


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--hours", type=float, default=48.0)
    ap.add_argument("--agents", type=int, default=80)
    ap.add_argument("--per-minute", type=float, default=12.0)
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--window", type=float, default=None, help="windowed mode, seconds")
    args = ap.parse_args()
    if args.window is None:
        steady(args)
    else:
        windowed(args)


if __name__ == "__main__":
    main()
