"""Detector state across a restart: a suite restored from another's exported state (after a JSON
or msgpack round trip) and fed the rest of a stream says exactly what the uninterrupted one says;
state of a detector whose settings changed is dropped for that detector only."""

from __future__ import annotations

import json
import math
import random
from typing import Any

import msgspec
from structlog.testing import capture_logs

from support_monitor.detectors.signal import Signal
from support_monitor.detectors.suite import DetectorSuite, detector_fingerprint
from tests.detectors.detector_streams import Feed, Script, poisson

CATEGORIES = ["billing", "outage", "delivery"]
HOURS = 6
CUT = 3 * 3600 + 3437  # mid-period, mid-degradation: every kind of state is non-trivial
# A tick a minute; every 10 s around the degradations, so the backlog slope (rate_window 20 s)
# sees them. The cuts are ticks of their own.
TICKS = sorted(
    {*range(0, HOURS * 3600 + 1, 60), CUT, CUT - 2 * 3600}
    | {h * 3600 + s for h in range(HOURS) for s in range(3240, 3600 + 240, 10)}
)
WAIT = {
    "name": "long_wait",
    "metric": "support_queue_oldest_wait_seconds",
    "op": ">",
    "value": 60,
    "recover": 20,
}


def _detectors(**changes: Any) -> dict[str, Any]:
    block: dict[str, Any] = {
        "complaint_spike": {"prior_per_hour": 30},
        "thresholds": [
            WAIT,
            {
                "name": "wait_tight",
                "metric": "support_queue_oldest_wait_seconds",
                "op": ">",
                "value": 30,
                "recover": 10,
            },
        ],
    }
    block.update(changes)
    return block


def _feed(**changes: Any) -> Feed:
    return Feed(_detectors(**changes), ingest={"complaint_categories": CATEGORIES})


class _Events:
    """The script's events in time order, fed up to a time (``Script.feed`` re-sorts on every
    call, too slow for hours of traffic)."""

    def __init__(self, script: Script) -> None:
        self.items = sorted(script.items, key=lambda item: (item[0], item[1]))
        self.next = 0

    def feed(self, feed: Feed, until: float) -> None:
        items, i = self.items, self.next
        while i < len(items) and items[i][0] <= until:
            at, _, kind, channel, fields = items[i]
            feed.event(kind, at, channel, **fields)
            i += 1
        self.next = i


def _script(seed: int) -> _Events:
    """Complaints (Poisson, busier 1-3 h in, spikes now and then) on voice and chat; voice
    contacts (mean gap 4 s) whose answers fall behind for 5 minutes at the end of each hour."""
    rng = random.Random(seed)
    script = Script()
    for m in range(HOURS * 60):
        for channel in ("voice", "chat"):
            lam = (2.0 if 60 <= m < 180 else 0.6) + (6 if m % 97 < 4 else 0)
            for _ in range(poisson(rng, lam)):
                script.add(
                    m * 60 + rng.uniform(0, 60),
                    "complaint.received",
                    channel,
                    category=rng.choice(CATEGORIES),
                )
    t, last_answer, i = 0.0, 0.0, 0
    while t < HOURS * 3600:
        t += rng.expovariate(1 / 4)
        if t % 3600 >= 3300:
            answer = max(t + rng.uniform(0, 4), last_answer + rng.uniform(5, 7))
        else:
            answer = max(t + rng.uniform(0, 12), last_answer)
        script.contact(f"c{i}", t, answer - t, queue="billing")
        last_answer, i = answer, i + 1
    return _Events(script)


def _key(s: Signal) -> tuple[Any, ...]:
    def f(x: float) -> float | str:
        return "nan" if math.isnan(x) else x

    return (
        s.detector,
        s.channel,
        s.labels,
        s.active,
        f(s.score),
        f(s.expected),
        f(s.threshold),
        s.summary,
    )


def _rows(suite: DetectorSuite) -> list[tuple[Any, ...]]:
    return [(r.name, r.labels, repr(r.value)) for r in suite.series()]


def _json(state: dict[str, object]) -> Any:
    return json.loads(json.dumps(state, allow_nan=False))  # plain data, no NaN or infinity


def _msgpack(state: dict[str, object]) -> Any:
    return msgspec.msgpack.decode(msgspec.msgpack.encode(state))


def _run(
    restored: dict[str, DetectorSuite], feed: Feed, script: _Events
) -> dict[str, list[list[tuple[Any, ...]]]]:
    """Feed the rest of the stream; per suite name, the signals of every tick."""
    out: dict[str, list[list[tuple[Any, ...]]]] = {"original": [], **{n: [] for n in restored}}
    for at in [t for t in TICKS if t > CUT]:
        script.feed(feed, at)
        out["original"].append([_key(s) for s in feed.tick(at)])
        for name, suite in restored.items():
            out[name].append([_key(s) for s in suite.evaluate(feed.engine, feed.engine.now)])
    return out


def _until(feed: Feed, script: _Events, cut: int) -> None:
    for at in [t for t in TICKS if t <= cut]:
        script.feed(feed, at)
        feed.tick(at)


def _suite(feed: Feed) -> DetectorSuite:
    s = feed.settings
    return DetectorSuite(s.detectors, s.channels, s.window_seconds)


def test_restored_suite_says_exactly_what_the_uninterrupted_one_says() -> None:
    feed, script = _feed(), _script(seed=7)
    _until(feed, script, CUT)
    state = feed.suite.export_state()
    # the state at the cut is not trivial: baselines learnt, a backlog rising, hysteresis held
    spike = next(d for d in feed.suite.detectors if d.name == "complaint_spike")
    series = spike._series  # type: ignore[attr-defined]
    assert series["voice", ""].baseline.glob.n >= 20  # CUSUM-flagged periods are not learned
    assert len(series["voice", ""].baseline.slots) == 4
    backlog = next(d for d in feed.suite.detectors if d.name == "backlog_growth")
    assert len(backlog._history["voice"]) >= 2  # type: ignore[attr-defined]
    assert any(s.active for s in feed.suite.last if s.detector == "wait_tight")  # hysteresis

    from_msgpack, from_json, fresh = _suite(feed), _suite(feed), _suite(feed)
    with capture_logs() as logs:
        from_msgpack.restore_state(_msgpack(state))
        from_json.restore_state(_json(state))
    assert [e for e in logs if e["event"] == "detector_state_dropped"] == []
    # restoring is lossless: the restored suite exports the very same state
    assert _json(from_msgpack.export_state()) == _json(state)
    assert _rows(from_json) == _rows(feed.suite)  # the last verdicts, as gauges

    out = _run({"msgpack": from_msgpack, "json": from_json, "fresh": fresh}, feed, script)
    ticks = len(out["original"])
    assert ticks > 250
    for i in range(ticks):
        assert out["msgpack"][i] == out["original"][i], i
        assert out["json"][i] == out["original"][i], i
    # without the state the verdicts differ: the test would notice a state not restored
    differing = sum(a != b for a, b in zip(out["fresh"], out["original"], strict=True))
    assert differing > 100
    assert {
        s[0] for a, b in zip(out["fresh"], out["original"], strict=True) for s in set(a) ^ set(b)
    } >= {"complaint_spike", "backlog_growth"}


def test_changed_settings_drop_only_that_detectors_state() -> None:
    feed, script = _feed(), _script(seed=3)
    cut = CUT - 2 * 3600  # the first degradation
    _until(feed, script, cut)
    state = _json(feed.suite.export_state())
    changed_wait = {**WAIT, "recover": 25}
    other = _feed(
        complaint_spike={"prior_per_hour": 40},
        thresholds=[changed_wait, _detectors()["thresholds"][1]],
    )
    restored, fresh = _suite(other), _suite(other)
    with capture_logs() as logs:
        restored.restore_state(state)
    dropped = sorted(e["detector"] for e in logs if e["event"] == "detector_state_dropped")
    assert dropped == ["complaint_spike", "long_wait"]
    assert all(e["log_level"] == "warning" for e in logs)

    kept = {"wait_tight", "backlog_growth"}
    same = _suite(feed)
    same.restore_state(state)
    for at in [t for t in TICKS if t > cut][:150]:
        script.feed(feed, at)
        original = [_key(s) for s in feed.tick(at)]
        now = feed.engine.now
        got = [_key(s) for s in restored.evaluate(feed.engine, now)]
        want_fresh = [_key(s) for s in fresh.evaluate(feed.engine, now)]
        unchanged = [_key(s) for s in same.evaluate(feed.engine, now)]
        # unchanged detectors continue as the uninterrupted suite, changed ones start afresh
        assert [k for k in got if k[0] in kept] == [k for k in original if k[0] in kept]
        assert [k for k in got if k[0] not in kept] == [k for k in want_fresh if k[0] not in kept]
        assert unchanged == original


def test_the_same_channels_in_another_order_keep_every_detectors_state() -> None:
    """Audit of 2026-12-05: a restart with the config's channels listed in another order
    dropped every detector's state ("settings or channels changed"), hourly baselines learnt
    over weeks included, though each detector keeps its state by channel name. The digest
    now takes the channels sorted; a snapshot taken before (digest in the config's order)
    still restores under the same order."""
    feed, script = _feed(), _script(seed=7)
    _until(feed, script, CUT)
    state = _json(feed.suite.export_state())
    s = feed.settings
    reordered = dict(reversed(list(s.channels.items())))
    assert list(reordered) != list(s.channels)
    restored = DetectorSuite(s.detectors, reordered, s.window_seconds)
    with capture_logs() as logs:
        restored.restore_state(state)
    assert [e for e in logs if e["event"] == "detector_state_dropped"] == []
    out = _run({"reordered": restored}, feed, script)
    assert len(out["original"]) > 250
    for got, want in zip(out["reordered"], out["original"], strict=True):
        assert sorted(got, key=repr) == sorted(want, key=repr)

    legacy = _json(feed.suite.export_state())
    for detector in feed.suite.detectors:
        entry = legacy["detectors"][detector.name]
        entry["fingerprint"] = detector_fingerprint(detector, ordered=True)
    with capture_logs() as logs:
        _suite(feed).restore_state(legacy)
    assert [e for e in logs if e["event"] == "detector_state_dropped"] == []
    with capture_logs() as logs:  # in another order the old digest cannot tell: dropped
        DetectorSuite(s.detectors, reordered, s.window_seconds).restore_state(legacy)
    dropped = {e["detector"] for e in logs if e["event"] == "detector_state_dropped"}
    assert dropped == {d.name for d in feed.suite.detectors if len(d.channels) > 1}


def test_unreadable_or_foreign_state_never_raises() -> None:
    feed, script = _feed(), _script(seed=1)
    _until(feed, script, 3600)
    state = _json(feed.suite.export_state())
    broken = json.loads(json.dumps(state))
    broken["detectors"]["backlog_growth"]["state"] = {"history": {"voice": [[1.0]]}}
    broken["detectors"]["long_wait"] = "garbage"
    broken["detectors"]["gone"] = {"fingerprint": "x"}
    suite = _suite(feed)
    with capture_logs() as logs:
        suite.restore_state(broken)
        _suite(feed).restore_state({"v": 99, "detectors": {}})
        _suite(feed).restore_state([])  # type: ignore[arg-type]
    dropped = [
        (e["detector"], e["reason"][:20]) for e in logs if e["event"] == "detector_state_dropped"
    ]
    names = [d for d, _ in dropped]
    assert names == ["backlog_growth", "long_wait", "gone", "*", "*"]
    backlog = next(d for d in suite.detectors if d.name == "backlog_growth")
    assert list(backlog._history["voice"]) == []  # type: ignore[attr-defined]  # afresh
    spike = next(d for d in suite.detectors if d.name == "complaint_spike")
    assert spike._series["voice", ""].baseline.glob.n > 0  # type: ignore[attr-defined]
