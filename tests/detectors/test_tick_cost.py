"""Issue 10, a tick that costs only what changed: detectors read the engine directly, skip
what did not change, and alert rules render annotations only when an alert changes state."""

from __future__ import annotations

import math
import random
from typing import Any

import pytest

from support_monitor.alerts.rules import CompiledRule
from support_monitor.detectors.complaint_cusum import RateCusum
from support_monitor.detectors.poisson import (
    constant_critical_count,
    critical_bracket,
    critical_count,
    critical_count_within,
)
from support_monitor.detectors.signal import Signal
from support_monitor.monitor.engine.readout import LIVE_GAUGES, WINDOW_GAUGES, series
from tests.alerts.helpers import compiled, sig
from tests.detectors.detector_streams import T0, Feed, Script


def _busy_feed() -> Feed:
    feed = Feed()
    script = Script()
    for i in range(40):
        script.contact(f"c{i}", 3 * i, 45 if i % 3 else 4, queue="tech" if i % 2 else "billing")
        script.contact(
            f"h{i}",
            3 * i + 1,
            70,
            channel="chat",
            queue="sales",
            outcome="abandoned" if i % 4 == 0 else "answered",
        )
    script.add(100, "ticket.created", "email", ticket_id="t1")
    script.add(101, "ticket.rated", "email", ticket_id="t1", rating=2)
    script.add(102, "complaint.received", "voice", category="billing")
    script.feed(feed, until=130)  # some contacts still waiting
    feed.tick(130)
    return feed


def test_direct_reads_are_the_exporters_rows() -> None:
    """Every live and windowed gauge read the detectors' way equals the exported row, type
    included (an int row stays an int)."""
    feed = _busy_feed()
    engine = feed.engine
    rows = {(r.name, r.labels): r.value for r in series(engine)}
    checked = 0
    for channel in engine.channels.values():
        for q in channel.queues.values():
            for name, read in LIVE_GAUGES.items():
                for sla, value in read(q, engine.now):
                    labels = [("channel", channel.name), ("queue", q.name)]
                    if sla:
                        labels.append(("sla", sla))
                    want = rows[name, tuple(labels)]
                    assert value == want, (name, q.name)
                    assert type(value) is type(want), (name, q.name)
                    checked += 1
        for window, agg in zip(channel.windows.names, channel.windows.totals, strict=True):
            for name, read_window in WINDOW_GAUGES.items():
                for quantile in ("0.5", "0.9", "0.99") if "quantile" in name else (None,):
                    labels = [("channel", channel.name), ("window", window)]
                    if quantile:
                        labels.append(("quantile", quantile))  # the row's label order
                    want = rows[name, tuple(labels)]
                    got = read_window(agg, quantile)
                    assert got == want or (math.isnan(got) and math.isnan(want)), name
                    assert type(got) is type(want), name
                    checked += 1
    assert checked == 117  # 5 queues x 9 live rows + 3 channels x 2 windows x 12 windowed rows
    assert rows["support_queue_waiting", (("channel", "voice"), ("queue", "tech"))] > 0


def test_an_unchanged_tick_hands_out_the_same_signals() -> None:
    """Nothing waits, nothing arrives, no window edge passes an outcome: the second tick judges
    nothing again and returns the very list of the first."""
    feed = Feed()
    script = Script()
    for i in range(5):
        script.contact(f"c{i}", i, 2)
    script.feed(feed)
    feed.tick(399)
    first = feed.tick(400)  # the 5m window no longer straddles 00:00, all outcomes left it
    second = feed.tick(401)
    assert second is first
    # an event on one channel: a new list, but the other channels' signals are the same objects
    feed.event("contact.queued", 401.5, "chat", contact_id="n1", queue="sales")
    third = feed.tick(402)
    assert third is not second
    old = {(s.detector, s.channel, s.labels): s for s in second}
    for s in third:
        if s.channel == "voice":
            assert s is old[s.detector, s.channel, s.labels]
    waiting = [s for s in third if s.detector == "longest_wait" and s.channel == "chat"]
    assert waiting[0].score == pytest.approx(0.5)  # queued at 401.5, judged at 402


def test_constant_critical_count_holds_for_every_rate_in_its_range() -> None:
    rng = random.Random(11)
    vouched = 0
    for _ in range(300):
        lo = rng.choice((0.0, rng.random() * 0.5, rng.random() * 5, rng.random() * 40))
        hi = lo + rng.choice((0.0, rng.random() * 0.05, rng.random() * 2))
        alpha = rng.choice((1e-5, 2e-6, 1e-3))
        got = constant_critical_count(lo, hi, alpha)
        if got is None:
            continue
        vouched += 1
        for lam in (lo, hi, *(rng.uniform(lo, hi) for _ in range(5))):
            assert critical_count.__wrapped__(lam, alpha) == got, (lo, hi, lam, alpha)
    assert vouched > 150  # it answers most ranges, or it would not save anything


def test_a_bracket_gives_the_critical_count_of_every_rate_in_it() -> None:
    rng = random.Random(12)
    bracketed = 0
    for _ in range(300):
        lo = rng.choice((0.0, rng.random() * 0.5, rng.random() * 5, rng.random() * 40))
        hi = lo + rng.choice((0.0, rng.random() * 0.5, rng.random() * 5))
        alpha = rng.choice((1e-5, 2e-6, 1e-3))
        bracket = critical_bracket(lo, hi, alpha)
        if bracket is None:
            continue
        bracketed += 1
        for lam in (lo, hi, *(rng.uniform(lo, hi) for _ in range(5))):
            want = critical_count.__wrapped__(lam, alpha)
            assert critical_count_within(lam, alpha, bracket) == want, (lo, hi, lam, alpha)
    assert bracketed > 250


def test_constant_critical_count_refuses_a_range_that_changes_it() -> None:
    # crit(lo) = 6, crit(hi) = 11 (alpha 2e-6): no single answer
    assert critical_count(0.33, 2e-6) != critical_count(1.7, 2e-6)
    assert constant_critical_count(0.33, 1.7, 2e-6) is None


def _counting(rule: CompiledRule) -> list[Signal]:
    rendered: list[Signal] = []
    render = rule.annotations

    def counted(signal: Signal, labels: Any) -> dict[str, str]:
        rendered.append(signal)
        return render(signal, labels)

    rule.annotations = counted  # type: ignore[method-assign]
    return rendered


def test_annotations_are_rendered_on_state_changes_not_every_tick() -> None:
    rule = compiled(**{"for": "10s", "annotations": {"summary": "{channel} at {score:.0f}s"}})
    rendered = _counting(rule)
    same = sig(score=40.0)
    for t in range(5):  # pending from t=0, the same signal object every tick
        transitions = rule.eval(T0 + t, [same])
        if t == 0:
            assert [x.state for x in transitions] == ["pending"]
            assert transitions[0].alert.annotations == {"summary": "voice at 40s"}
    assert rendered == [same]
    for t in range(5, 10):  # a new score every tick, still pending: nothing rendered
        assert rule.eval(T0 + t, [sig(score=40.0 + t)]) == []
    assert rendered == [same]
    firing = rule.eval(T0 + 10, [sig(score=50.0)])  # fires: rendered with this tick's signal
    assert [x.state for x in firing] == ["firing"]
    assert firing[0].alert.annotations == {"summary": "voice at 50s"}
    for t in range(11, 15):
        rule.eval(T0 + t, [sig(score=50.0 + t)])
    assert len(rendered) == 2
    held = list(rule.alerts())  # a reader sees the latest tick's annotations
    assert held[0].annotations == {"summary": "voice at 64s"}
    assert len(rendered) == 3
    rule.eval(T0 + 15, [sig(score=77.0)])
    resolved = rule.eval(T0 + 16, [])  # resolved: the last active signal's annotations
    assert [x.state for x in resolved] == ["resolved"]
    assert resolved[0].alert.annotations == {"summary": "voice at 77s"}


def test_a_rule_with_nothing_active_does_nothing() -> None:
    rule = compiled()
    rendered = _counting(rule)
    assert rule.eval(T0, [sig(active=False)]) == []
    assert rule.state.active == {}
    assert rendered == []


def test_rate_cusum_shortcut_at_rest_changes_nothing() -> None:
    """``RateCusum.step`` skips the arithmetic while the statistic rests at 0 with no new
    events: a twin that always takes the long road (the shortcut switched off) holds the very
    same state after every step, over quiet stretches, bursts and hour boundaries (only the
    cache of the last usual rate may differ)."""
    rng = random.Random(12)
    for ratio, threshold, prior, min_rate in ((4.0, 3.0, 2.0, 1.0), (1.4, 5.0, 0.0, 12.0)):
        fast = RateCusum(ratio, threshold, prior, 2, min_rate_per_hour=min_rate)
        slow = RateCusum(ratio, threshold, prior, 2, min_rate_per_hour=min_rate)
        slow.quiet_stays_zero = False
        now, count, shortcuts = T0, 0.0, 0
        for _ in range(30_000):
            now += rng.choice((1.0, 1.0, 1.0, 0.5, 7.0, 900.0))
            before, hour = count, fast.hour
            if rng.random() < rng.choice((0.001, 0.05, 0.3)):
                count += rng.randrange(1, 6)
            at_rest = fast.stat == 0 and not fast.active
            assert fast.step(now, count, _slot) == slow.step(now, count, _slot)
            shortcuts += at_rest and count == before and fast.hour == hour  # took the shortcut
            assert fast.dump() == slow.dump()
            assert (fast.active, fast.flagged) == (slow.active, slow.flagged)
        assert fast.dump()[8]  # hours were learned on the way
        assert shortcuts > 1000


def _slot(t: float) -> int:
    return (math.floor(t / 3600.0) + 72) % 168
