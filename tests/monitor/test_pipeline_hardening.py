"""Input hardening on the event road: no input raises out of the pipeline, the tick road or the
replay; timestamps are bounded; the replay clock crosses long gaps quickly; rejected-event logs
are capped per reason per second. Numbers are worked out by hand from the inputs."""

from __future__ import annotations

import asyncio
import json
import math
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from structlog.testing import capture_logs

from support_monitor.alerts.runtime import Alerting
from support_monitor.monitor import pipeline as pipeline_module
from support_monitor.monitor.clock import TickRoad, quiet_horizon, wake_lookback
from support_monitor.monitor.config import Settings
from support_monitor.monitor.consume import consume
from support_monitor.monitor.deadletter import DeadLetter
from support_monitor.monitor.engine.engine import Engine
from support_monitor.monitor.engine.readout import series
from support_monitor.monitor.events import Event, Reject
from support_monitor.monitor.pipeline import Delivery, Pipeline
from support_monitor.monitor.replay import replay
from support_monitor.monitor.stats import DaemonStats
from tests.support import CONFIG, T0, iso, samples, settings, value

DAY = 86400.0
# The reported inputs: 120 bytes with invalid UTF-8 inside a string, 2 KB nested 1,000 deep.
BAD_UTF8 = (
    b'{"event_id":"e-utf8","type":"ticket.solved","ts":"2026-01-01T10:00:00Z",'
    b'"channel":"email","ticket_id":"\xc3\x28","pad":"xxxx"}'
)
DEEP = b'{"x":' + b"[" * 1000 + b"]" * 1000 + b',"event_id":"deep","type":"contact.queued"}'
LIVE_CHANNELS = {k: v for k, v in CONFIG["channels"].items() if k != "email"}


def _line(kind: str, at: float, channel: str = "voice", **fields: Any) -> bytes:
    event_id = fields.pop("event_id")
    event = {"event_id": event_id, "type": kind, "ts": iso(at), "channel": channel, **fields}
    return json.dumps(event).encode()


def _queued(n: int, at: float, queue: str = "billing") -> bytes:
    return _line("contact.queued", at, event_id=f"q{n}", contact_id=f"c{n}", queue=queue)


def _feed(pipeline: Pipeline, lines: list[bytes]) -> list[DeadLetter]:
    letters = []
    for i, raw in enumerate(lines):
        letter = pipeline.process("test", Delivery(raw, f"line:{i + 1}"))
        if letter is not None:
            letters.append(letter)
    return letters


def _rejected(stats: DaemonStats) -> dict[str, int]:
    return {reason: n for (_, reason), n in stats.rejected.items() if n}


# --- 1. the reported inputs are rejects, not crashes -----------------------------------------


@pytest.mark.parametrize("event_clock", [False, True])
def test_invalid_utf8_and_deep_nesting_are_dead_letters_and_the_road_goes_on(
    event_clock: bool,
) -> None:
    engine, stats = Engine(settings()), DaemonStats()
    pipeline = Pipeline(engine, stats, event_clock=event_clock, wall_clock=lambda: T0 + 10)
    assert len(BAD_UTF8) == 120
    assert 2000 < len(DEEP) < 2100
    lines = [_queued(1, T0), BAD_UTF8, DEEP, _queued(2, T0 + 1)]
    letters = _feed(pipeline, lines)
    assert [(x.raw, x.reason) for x in letters] == [
        (BAD_UTF8, "invalid_json"),
        (DEEP, "invalid_json"),
    ]
    assert _rejected(stats) == {"invalid_json": 2}
    assert stats.events["test", "contact.queued"] == 2
    assert value(engine, "support_queue_waiting", channel="voice", queue="billing") == 2


# --- 2. a defect in a handler is caught at the event boundary --------------------------------


def test_a_defect_in_apply_is_an_internal_error_logged_once_per_kind(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    engine, stats = Engine(settings()), DaemonStats()
    real_apply = engine.apply
    no_such: dict[str, str] = {}

    def broken(event: Event, ts: float, *args: Any, **kwargs: Any) -> Reject | None:
        if event.event_id.startswith("zero"):
            return Reject(str(1 / 0))
        if event.event_id.startswith("key"):
            return Reject(no_such[event.event_id])
        return real_apply(event, ts, *args, **kwargs)

    monkeypatch.setattr(engine, "apply", broken)
    pipeline = Pipeline(engine, stats, event_clock=False, wall_clock=lambda: T0 + 10)
    lines = []
    for i in range(5):
        lines.append(_line("contact.queued", T0, event_id=f"zero{i}", contact_id=f"z{i}"))
        lines.append(_line("contact.queued", T0, event_id=f"key{i}", contact_id=f"k{i}"))
    lines += [_queued(n, T0 + n) for n in range(3)]
    with capture_logs() as logs:
        letters = _feed(pipeline, lines)
    # 10 defects: counted, dead-lettered with their original bytes, the 3 good ones applied
    assert [x.raw for x in letters] == lines[:10]
    assert {x.reason for x in letters} == {"internal_error"}
    assert letters[0].detail == "ZeroDivisionError: division by zero"
    assert letters[1].detail == "KeyError: 'key0'"
    assert _rejected(stats) == {"internal_error": 10}
    assert stats.events["test", "contact.queued"] == 3
    assert value(engine, "support_queue_waiting", channel="voice", queue="billing") == 3
    traced = [e for e in logs if e["event"] == "event_internal_error"]
    assert [e["detail"] for e in traced] == [
        "ZeroDivisionError: division by zero",
        "KeyError: 'key0'",
    ]
    assert all(isinstance(e["exc_info"], Exception) for e in traced)
    repeated = [e for e in logs if e["event"] == "event_rejected"]
    assert len(repeated) == 8
    assert {e["reason"] for e in repeated} == {"internal_error"}
    assert "exc_info" not in repeated[0]


def test_a_defect_in_decode_is_an_internal_error(monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(raw: bytes | str, max_bytes: int, **_: Any) -> Event:
        raise RuntimeError("decoder bug")

    monkeypatch.setattr("support_monitor.monitor.pipeline.decode", broken)
    stats = DaemonStats()
    pipeline = Pipeline(Engine(settings()), stats, event_clock=True)
    letters = _feed(pipeline, [b"{}", _queued(1, T0)])
    assert [(x.raw, x.reason, x.detail) for x in letters] == [
        (b"{}", "internal_error", "RuntimeError: decoder bug"),
        (_queued(1, T0), "internal_error", "RuntimeError: decoder bug"),
    ]


def test_a_failing_tick_handler_is_logged_once_and_the_clock_goes_on() -> None:
    engine = Engine(settings())
    calls: list[float] = []

    def broken(now: float) -> None:
        raise ValueError(now)

    stats = DaemonStats()
    road = TickRoad(engine, 1.0, [broken, calls.append], stats=stats)
    assert stats.tick_failures == {"engine.advance": 0}  # exported at 0 from the start
    with capture_logs() as logs:
        for k in range(100):
            road.tick(T0 + k)
    assert len(calls) == 100
    assert stats.tick_failures[broken.__qualname__] == 100  # every failing tick is counted
    assert engine.now == T0 + 99
    failed = [e for e in logs if e["event"] == "tick_handler_failed"]
    assert len(failed) == 1  # the next line for this kind comes 60 s (monotonic) later
    assert isinstance(failed[0]["exc_info"], ValueError)


def test_a_failing_tick_in_replay_is_not_blamed_on_events() -> None:
    """The replay's tick road runs inside ``Pipeline.process``: a broken handler must not turn
    every later event into an ``internal_error``."""
    engine, stats = Engine(settings()), DaemonStats()

    def broken(now: float) -> None:
        raise ValueError(now)

    road = TickRoad(engine, 1.0, [broken])
    pipeline = Pipeline(engine, stats, event_clock=True, before_event=road.before_event)
    with capture_logs():
        assert _feed(pipeline, [_queued(n, T0 + 10 * n) for n in range(5)]) == []
    assert stats.events["test", "contact.queued"] == 5


# --- 3. timestamps are bounded ---------------------------------------------------------------


def test_live_bounds_are_the_wall_clock_plus_skew_and_minus_age() -> None:
    engine, stats = Engine(settings()), DaemonStats()
    pipeline = Pipeline(engine, stats, event_clock=False, wall_clock=lambda: T0)
    year_1 = _line("contact.queued", 0, event_id="y1", contact_id="y1").replace(
        iso(0).encode(), b"0001-01-01T00:00:00+00:00"
    )
    year_9999 = _line("contact.queued", 0, event_id="y9", contact_id="y9").replace(
        iso(0).encode(), b"9999-12-31T23:59:59+00:00"
    )
    lines = [
        _queued(1, T0 + 300),  # exactly max_clock_skew ahead: in
        _queued(2, T0 + 300.001),  # out
        _queued(3, T0 - DAY),  # exactly max_event_age behind: in
        _queued(4, T0 - DAY - 0.001),  # out
        year_1,
        year_9999,
    ]
    letters = _feed(pipeline, lines)
    assert [x.raw for x in letters] == [lines[1], lines[3], year_1, year_9999]
    assert {x.reason for x in letters} == {"timestamp_out_of_range"}
    assert _rejected(stats) == {"timestamp_out_of_range": 4}
    assert letters[0].detail == (
        "ts is +300 s from the wall clock; allowed -86400 s (ingest.max_event_age) "
        "to +300 s (ingest.max_clock_skew)"
    )
    engine.advance(T0)
    # the oldest waiting contact is the one queued a day ago, not one from year 1
    assert (
        value(engine, "support_queue_oldest_wait_seconds", channel="voice", queue="billing") == DAY
    )


def test_replay_bounds_follow_the_stream_clock_and_a_reject_does_not_move_it() -> None:
    cfg = settings(ingest={"max_event_age": "10m", "max_replay_gap": "1h"})
    engine, stats = Engine(cfg), DaemonStats()
    pipeline = Pipeline(engine, stats, event_clock=True)
    lines = [
        _queued(1, T0),  # the first event sets the stream clock to T0
        _queued(2, T0 + 3600.5),  # more than 1 h ahead: out
        _queued(3, T0 - 600),  # exactly 10 min behind: in
        _queued(4, T0 - 600.5),  # out
        _queued(5, T0 + 3600),  # exactly 1 h ahead: in; the clock is now T0 + 3600
        _queued(6, T0 + 3000),  # 10 min behind the new clock: in
        _queued(7, T0 + 2999),  # out
    ]
    letters = _feed(pipeline, lines)
    assert [x.raw for x in letters] == [lines[1], lines[3], lines[6]]
    assert _rejected(stats) == {"timestamp_out_of_range": 3}
    assert engine.now == T0 + 3600
    assert stats.events["test", "contact.queued"] == 4


DAYS_19 = 19 * 86400.0  # within the default max_replay_gap (30 days) of the stream clock


@pytest.mark.parametrize(
    ("bad", "reason"),
    [
        (_line("complaint.received", T0 + DAYS_19, channel="fax", event_id="x"), "unknown_channel"),
        (_queued(9, T0 + DAYS_19, queue="nope"), "unknown_queue"),
        (
            _line("contact.queued", T0 + DAYS_19, channel="email", event_id="x", contact_id="e"),
            "wrong_channel_kind",
        ),
        (
            _line(
                "agent.state",
                T0 + DAYS_19,
                event_id="x",
                agent_id="a1",
                state="available",
                queues=["billing", "nope"],
            ),
            "unknown_queue",
        ),
        (
            _line(
                "ticket.created",
                T0 + DAYS_19,
                channel="email",
                event_id="x",
                ticket_id="t",
                queue="nope",
            ),
            "unknown_queue",
        ),
        (_queued(1, T0 + DAYS_19), None),  # the id of the first line again: a duplicate
    ],
)
def test_a_line_refused_by_the_config_or_a_duplicate_does_not_move_the_replay_clock(
    bad: bytes, reason: str | None
) -> None:
    # Found by an attack audit (2026-12-01): such a line dated 19 days ahead moved the stream
    # clock before it was refused, so the valid lines after it were 19 days behind the clock
    # (timestamp_out_of_range) and the waiting contact was forgotten.
    engine, stats = Engine(settings()), DaemonStats()
    pipeline = Pipeline(engine, stats, event_clock=True)
    answered = _line("contact.answered", T0 + 30, event_id="a1", contact_id="c1")
    letters = _feed(pipeline, [_queued(1, T0), bad, answered])
    assert engine.now == T0 + 30
    assert stats.events["test", "contact.answered"] == 1
    if reason is None:
        assert (letters, _rejected(stats), stats.duplicates["test"]) == ([], {}, 1)
    else:
        assert [x.raw for x in letters] == [bad]
        assert _rejected(stats) == {reason: 1}


# --- 3b. the replay clock crosses long gaps without stepping every tick -----------------------


def _contacts(start: float, prefix: str, count: int) -> list[bytes]:
    """``count`` voice/billing contacts 10 s apart: even ones answered after 5 s (in SLA), odd
    ones after 30 s (late, the target is 20 s)."""
    lines = []
    for i in range(count):
        at = start + 10 * i
        cid = f"{prefix}{i}"
        lines.append(
            _line("contact.queued", at, event_id=f"{cid}q", contact_id=cid, queue="billing")
        )
        wait = 5 if i % 2 == 0 else 30
        lines.append(
            _line(
                "contact.answered", at + wait, event_id=f"{cid}a", contact_id=cid, queue="billing"
            )
        )
    return sorted(lines, key=lambda raw: json.loads(raw)["ts"])


def _write(path: Path, lines: list[bytes]) -> Path:
    path.write_bytes(b"".join(raw + b"\n" for raw in lines))
    return path


TICK_BOUND = 100_000
"""Ticks a replay across a decades-long gap may run. One that stepped every second from 1970
to today would run about 1.8 billion; crossing the gap as the road does runs about 29,000 (the
ticks before and after the 1970 contact's timers, and every tick from the first line of today
on). Counted, not timed: a timing threshold belongs in a benchmark."""


class TooManyTicks(BaseException):
    """Raised by a counted tick past ``TICK_BOUND``: a ``BaseException``, so that the replay's
    event boundary (which turns an ``Exception`` into ``internal_error``) lets it through and
    the test fails at once instead of stepping for hours."""


def _count_ticks(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Count every ``TickRoad.tick`` from now on (the one-element list holds the count)."""
    count = [0]
    tick = TickRoad.tick

    def counted(road: TickRoad, now: float) -> None:
        count[0] += 1
        if count[0] > TICK_BOUND:
            raise TooManyTicks(now)
        tick(road, now)

    monkeypatch.setattr(TickRoad, "tick", counted)
    return count


async def _replay(path: Path, cfg: Settings) -> dict[Any, float]:
    return samples((await replay(path, cfg)).decode())


def _comparable(exposition: dict[Any, float]) -> dict[Any, str]:
    return {key: repr(v) for key, v in exposition.items()}  # NaN == NaN


def _key(name: str, **labels: str) -> tuple[str, tuple[tuple[str, str], ...]]:
    return name, tuple(sorted(labels.items()))


def test_replay_with_a_line_dated_9999_in_the_middle(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cfg = settings()
    good = _contacts(T0, "a", 10) + _contacts(T0 + 200, "b", 10)
    bad = _line("contact.queued", T0, event_id="far", contact_id="far").replace(
        iso(T0).encode(), b"9999-12-31T23:59:59Z"
    )
    with_bad = _write(tmp_path / "bad.jsonl", [*good[:20], bad, *good[20:]])
    clean = _write(tmp_path / "clean.jsonl", good)
    ticks = _count_ticks(monkeypatch)
    got = asyncio.run(_replay(with_bad, cfg))
    assert ticks[0] <= 1000  # a few minutes of event time: the 9999 line moved no clock
    rejected = _key(
        "support_monitor_events_rejected_total", reason="timestamp_out_of_range", source="file"
    )
    assert got[rejected] == 1
    voice = {"channel": "voice", "queue": "billing"}
    assert got[_key("support_contacts_queued_total", **voice)] == 20
    assert got[_key("support_contacts_answered_total", **voice)] == 20
    assert got[_key("support_contacts_answered_in_sla_total", **voice)] == 10
    expected = asyncio.run(_replay(clean, cfg))
    expected[rejected] = 1.0
    assert _comparable(got) == _comparable(expected)


def test_replay_from_1970_then_today_with_default_bounds(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The first line sets the stream clock (documented): the later lines, 56 years ahead,
    are beyond ``max_replay_gap`` and rejected; the replay ends at once."""
    today = time.time() - 3600
    lines = [_queued(0, 0.0), *_contacts(today, "t", 5)]
    ticks = _count_ticks(monkeypatch)
    got = asyncio.run(_replay(_write(tmp_path / "f.jsonl", lines), settings()))
    assert ticks[0] <= 10  # the clock never left 1970
    rejected = _key(
        "support_monitor_events_rejected_total", reason="timestamp_out_of_range", source="file"
    )
    assert got[rejected] == 10
    assert got[_key("support_contacts_queued_total", channel="voice", queue="billing")] == 1


def test_replay_from_1970_then_today_crosses_the_gap_in_few_ticks(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cfg = settings(channels=LIVE_CHANNELS, windows=["1m", "5m"], ingest={"max_replay_gap": "100y"})
    today = time.time() - 3600
    lines = [_queued(0, 0.0, queue="tech"), *_contacts(today, "t", 6)]
    _count_ticks(monkeypatch)  # past TICK_BOUND ticks, TooManyTicks fails the test
    got = asyncio.run(_replay(_write(tmp_path / "f.jsonl", lines), cfg))
    assert (
        sum(v for (name, _), v in got.items() if name == "support_monitor_events_rejected_total")
        == 0
    )
    billing = {"channel": "voice", "queue": "billing"}
    tech = {"channel": "voice", "queue": "tech"}
    assert got[_key("support_contacts_queued_total", **billing)] == 6
    assert got[_key("support_contacts_answered_in_sla_total", **billing)] == 3
    assert got[_key("support_contacts_queued_total", **tech)] == 1
    # the 1970 contact was never answered: breached once, then forgotten once it had waited
    # ingest.waiting_retention (24 h)
    assert got[_key("support_sla_breaches_total", **tech, sla="answer")] == 1
    assert got[_key("support_queue_waiting", **tech)] == 0
    assert got[_key("support_queue_breached_waiting", **tech)] == 0
    assert got[_key("support_monitor_capacity_exhausted_total", kind="waiting_expired")] == 1


def _run_road(cfg: Settings, lines: list[bytes], horizon: float | None) -> tuple[Any, ...]:
    engine, stats = Engine(cfg), DaemonStats()
    transitions: list[dict[str, object]] = []

    def keep(record: dict[str, object]) -> None:
        transitions.append(record)

    alerting = Alerting(cfg.detectors, cfg.alerts, cfg.notifiers, engine, stats, on_transition=keep)
    road = TickRoad(
        engine,
        cfg.exporter.tick_seconds,
        alerting.handlers,
        quiet_horizon=horizon,
        wake_lookback=None if horizon is None else wake_lookback(cfg),
    )
    pipeline = Pipeline(
        engine, stats, event_clock=True, before_event=road.before_event, log_burst=0
    )
    assert _feed(pipeline, lines) == []
    end = engine.now + 100
    road.catch_up(end, inclusive=True)
    engine.flush(end)
    rows = sorted((row.name, row.labels, repr(row.value)) for row in series(engine))
    alerts = sorted(map(repr, alerting.series()))
    return json.dumps(transitions), rows, alerts, road.skipped_ticks


def test_jumping_a_quiet_gap_gives_the_same_output_as_stepping() -> None:
    cfg = settings(channels=LIVE_CHANNELS, windows=["1m", "5m"])
    horizon = quiet_horizon(cfg)
    # the detectors' horizon (the surge CUSUM: (8 + ln 1.4 - 4) / (0.4 x 12/h) = 3,252 s; a
    # binomial CUSUM left active lets go within 2 h of the last outcome, a service-level one up
    # to the longest T (chat 60 s) + 5 s of lateness after the last event), then the longest
    # persistence (estimated_wait: sustain 25m, release 20m), the longest for (AbandonRateHigh
    # and ServiceLevelBurnSlow 10m) + keep_firing_for 1800 + retention 900 s, + 2 ticks
    surge = (8 + math.log(1.4) - 4) / (0.4 * 12 / 3600)
    reset = 2 * 3600 + 60 + 5
    assert horizon == pytest.approx(
        max(300, 60 + 5, 120, surge, reset) + 1500 + 600 + 1800 + 900 + 2
    )
    gap = 1.6 * horizon
    waits = [
        _line("contact.queued", T0 + i, event_id=f"w{i}q", contact_id=f"w{i}", queue="tech")
        for i in range(3)
    ]  # never answered: LongestWaitHigh fires
    lines = [
        *_contacts(T0, "a", 30),
        *waits,
        *_contacts(T0 + 300 + gap, "b", 30),
        _line("contact.answered", T0 + 400 + gap, event_id="w0a", contact_id="w0", queue="tech"),
    ]
    lines.sort(key=lambda raw: json.loads(raw)["ts"])
    stepped = _run_road(cfg, lines, None)
    jumped = _run_road(cfg, lines, horizon)
    assert stepped[3] == 0
    assert jumped[3] > 0.9 * (gap - horizon)  # most of the gap was skipped
    assert '"state": "firing"' in stepped[0]
    assert jumped[:3] == stepped[:3]


def test_a_contact_forgotten_after_its_waiting_retention_inside_a_gap_is_not_jumped_over() -> None:
    # Three voice contacts are never answered (three, so that LongestWaitHigh pages: two
    # alone are held back by its service-level evidence); nothing else comes for 30 hours.
    # Their retention (24 h) runs out inside the gap, far past the horizon of a config with
    # live channels only: the engine forgets them at its 60-second sweep and LongestWaitHigh
    # resolves then. The jumping road must wake for that sweep as the stepping one ticks
    # through it.
    cfg = settings(channels=LIVE_CHANNELS, exporter={"tick_seconds": 10})
    horizon = quiet_horizon(cfg)
    gap = 30 * 3600
    assert gap > 24 * 3600 + horizon
    lines = [
        *_contacts(T0, "a", 5),
        *(
            _line(
                "contact.queued", T0 + 100 + k, event_id=f"lq{k}", contact_id=f"l{k}", queue="tech"
            )
            for k in range(3)
        ),
        *_contacts(T0 + 100 + gap, "b", 5),
    ]
    lines.sort(key=lambda raw: json.loads(raw)["ts"])
    stepped = _run_road(cfg, lines, None)
    jumped = _run_road(cfg, lines, horizon)
    assert jumped[3] > 0.8 * (gap - horizon) / 10  # most of the gap was skipped
    resolved = [r for r in json.loads(stepped[0]) if r["state"] == "resolved"]
    assert [r["alertname"] for r in resolved] == ["LongestWaitHigh"]
    assert resolved[0]["ts"] <= T0 + 100 + 24 * 3600 + 300  # the sweep after it, then its rule
    assert jumped[:3] == stepped[:3]


def test_a_first_response_drought_at_the_start_of_a_quiet_gap_is_not_jumped_over() -> None:
    # A desk learns a day of 20 tickets an hour, each answered a minute later; then responses
    # stop, tickets come for 30 more minutes, and nothing comes for 6 horizons. The drought
    # CUSUM passes its threshold about 47 minutes after the last response, inside the gap,
    # while the hour still holds new tickets (tickets_at_risk judges a drought only then):
    # inside the horizon, so the jumping road pages it as the stepping one does. Without
    # that condition the CUSUM would page again later in the gap (the 10 tickets keep
    # waiting; relearnt after 2 flagged hours, then dry again), past the horizon.
    channels = json.loads(json.dumps(CONFIG["channels"]))
    channels["email"]["resolution_seconds"] = 7200
    cfg = settings(channels=channels, exporter={"tick_seconds": 60})
    horizon = quiet_horizon(cfg)
    silent = 26 * 3600  # the last response
    stop = silent + 1800  # the last ticket
    lines = []
    for t in range(0, stop, 180):
        lines.append(_line("ticket.created", T0 + t, "email", event_id=f"c{t}", ticket_id=f"t{t}"))
        if t + 60 <= silent:
            lines.append(
                _line("ticket.responded", T0 + t + 60, "email", event_id=f"r{t}", ticket_id=f"t{t}")
            )
    resume = stop + 6 * horizon
    lines.append(_line("ticket.created", T0 + resume, "email", event_id="after", ticket_id="after"))
    stepped = _run_road(cfg, lines, None)
    jumped = _run_road(cfg, lines, horizon)
    assert jumped[3] > 0.9 * (resume - stop - horizon) / 60  # most of the gap was skipped
    firing = [
        r
        for r in json.loads(stepped[0])
        if r["state"] == "firing" and r["labels"].get("sla") == "first_response"
    ]
    assert len(firing) == 1  # (the never-solved tickets also page their resolution SLA)
    assert "first responses have nearly stopped" in firing[0]["annotations"]["summary"]
    # a drought page before any ticket is near its deadline says so, not "no queue at risk"
    description = firing[0]["annotations"]["description"]
    assert "; no ticket is close to its deadline now. Going on since" in description
    assert jumped[:3] == stepped[:3]


def test_ticket_deadlines_in_a_quiet_gap_wake_the_road_without_ticks_of_their_own() -> None:
    # Email answers within 1 h and solves within 24 h. Twelve tickets come within two minutes,
    # ten of them are answered at once and none is solved; the next event is 30 h later. All
    # twelve turn at risk of their resolution 21.6 h after creation (10% of the target before
    # it), which pages TicketsAtRisk, and breach at 24 h, which resolves it: both inside the
    # gap. The horizon leaves the ticket targets out (12,185 s here, not 86,405 s + 4,920 s),
    # since every deadline and at-risk instant is an engine timer that wakes the road: the
    # jumping road skips most of the gap and still pages and resolves as the stepping one does.
    cfg = settings(windows=["5m", "1h"], exporter={"tick_seconds": 60})
    horizon = quiet_horizon(cfg)
    # a binomial CUSUM left active lets go within 2 h of the last outcome (plus the longest T,
    # chat 60 s, and 5 s of lateness), then estimated_wait's sustain 25m, the longest for (10m),
    # keep_firing_for 1800 and retention 900 s, + 2 ticks
    assert horizon == 2 * 3600 + 60 + 5 + 1500 + 600 + 1800 + 900 + 120
    gap = 30 * 3600
    lines = []
    for i in range(12):
        at = T0 + 10 * i
        lines.append(_line("ticket.created", at, "email", event_id=f"c{i}", ticket_id=f"t{i}"))
        if i >= 2:
            lines.append(
                _line("ticket.responded", at + 5, "email", event_id=f"r{i}", ticket_id=f"t{i}")
            )
    lines.append(_line("ticket.created", T0 + gap, "email", event_id="after", ticket_id="after"))
    lines.sort(key=lambda raw: json.loads(raw)["ts"])
    stepped = _run_road(cfg, lines, None)
    jumped = _run_road(cfg, lines, horizon)
    firing = [
        (r["labels"]["alertname"], r["labels"].get("sla"))
        for r in json.loads(stepped[0])
        if r["state"] == "firing"
    ]
    assert ("TicketsAtRisk", "resolution") in firing  # 21.6 h in: inside the gap, past H
    assert jumped[3] > gap / 60 / 3  # a third of the gap's 1,800 ticks at least was skipped
    assert jumped[:3] == stepped[:3]


# --- 5. rejected-event logs: 20 per reason per second, then one suppressed line --------------


def test_reject_log_is_capped_per_reason_per_second() -> None:
    now = [1000.0]
    stats = DaemonStats()
    pipeline = Pipeline(Engine(settings()), stats, event_clock=True, log_clock=lambda: now[0])
    bad_json = [b"{nope"] * 25
    unknown_channel = [
        _line("contact.queued", T0, "fax", event_id=f"f{i}", contact_id=f"f{i}") for i in range(30)
    ]
    with capture_logs() as logs:
        _feed(pipeline, bad_json + unknown_channel)
        assert [e["reason"] for e in logs if e["event"] == "event_rejected"] == (
            ["invalid_json"] * 20 + ["unknown_channel"] * 20
        )
        assert not [e for e in logs if e["event"] == "event_rejected_suppressed"]
        now[0] = 1001.2
        _feed(pipeline, [_queued(1, T0)])  # any next event, a good one too, rolls the second
    suppressed = [
        (e["reason"], e["count"]) for e in logs if e["event"] == "event_rejected_suppressed"
    ]
    assert suppressed == [("invalid_json", 5), ("unknown_channel", 10)]
    assert _rejected(stats) == {"invalid_json": 25, "unknown_channel": 30}
    with capture_logs() as logs:
        _feed(pipeline, bad_json)  # a new second: 20 more lines for the reason
    assert len([e for e in logs if e["event"] == "event_rejected"]) == 20
    with capture_logs() as logs:
        pipeline.flush_log()
    assert [(e["reason"], e["count"]) for e in logs] == [("invalid_json", 5)]


def test_replay_logs_every_rejected_line() -> None:
    pipeline = Pipeline(Engine(settings()), DaemonStats(), event_clock=True, log_burst=None)
    with capture_logs() as logs:
        _feed(pipeline, [b"{nope"] * 50)
    assert len([e for e in logs if e["event"] == "event_rejected"]) == 50


# --- the live consume loop against a real broker ---------------------------------------------


@pytest.mark.kafka
async def test_kafka_consume_loop_survives_the_reported_inputs_and_commits_past_them(
    kafka_bootstrap: str, make_kafka_topic: Any
) -> None:
    """The inputs that used to kill the daemon (and again on every restart, the offset never
    committed) are dead letters; the loop keeps consuming and commits past them."""
    from confluent_kafka import Producer  # noqa: PLC0415 - an independent client

    from support_monitor.monitor.consume import consume  # noqa: PLC0415
    from support_monitor.monitor.deadletter import MemoryDeadLetters  # noqa: PLC0415
    from support_monitor.monitor.sources.build import dead_letter_sink  # noqa: PLC0415
    from support_monitor.monitor.sources.kafka import KafkaSource  # noqa: PLC0415
    from tests.integration.broker_scenario import (  # noqa: PLC0415
        committed_offsets,
        end_offsets,
        kafka_settings,
        wait_for,
    )

    topic = make_kafka_topic(partitions=1, prefix="hardening")
    now = time.time()
    good = [_queued(n, now - 60 + n) for n in range(5)]
    year_1 = _queued(90, now).replace(iso(now).encode(), b"0001-01-01T00:00:00Z")
    year_9999 = _queued(91, now).replace(iso(now).encode(), b"9999-12-31T23:59:59Z")
    bad = [BAD_UTF8, DEEP, year_1, year_9999]
    messages = [good[0], *bad, *good[1:]]
    producer = Producer({"bootstrap.servers": kafka_bootstrap})
    for raw in messages:
        producer.produce(topic, raw)
    assert producer.flush(30) == 0

    cfg = kafka_settings(kafka_bootstrap, topic)
    engine, stats, fallback = Engine(cfg), DaemonStats(), MemoryDeadLetters()
    pipeline = Pipeline(engine, stats, event_clock=False)
    source = KafkaSource(cfg.sources.kafka, stats)  # type: ignore[arg-type]
    async with source:
        sink = dead_letter_sink(source, fallback)
        task = asyncio.create_task(consume(source, pipeline, sink))
        try:
            await wait_for(
                lambda: sum(stats.events.values()) + sum(stats.rejected.values()) >= len(messages),
                120,
                "all records",
            )
            await asyncio.sleep(0.5)
            assert not task.done()  # still consuming
        finally:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
    assert _rejected(stats) == {"invalid_json": 2, "timestamp_out_of_range": 2}
    assert stats.events["kafka", "contact.queued"] == 5
    assert [x.raw for x in fallback.letters] == bad
    assert [x.reason for x in fallback.letters] == [
        "invalid_json",
        "invalid_json",
        "timestamp_out_of_range",
        "timestamp_out_of_range",
    ]
    group = cfg.sources.kafka.group_id  # type: ignore[union-attr]
    ends = await asyncio.to_thread(end_offsets, kafka_bootstrap, topic, 1)
    assert ends == {0: len(messages)}
    assert await asyncio.to_thread(committed_offsets, kafka_bootstrap, group, topic, 1) == ends


# --- rejects decided later: an outcome held for its opening event ----------------------------


def test_an_early_outcome_whose_item_never_opens_is_dead_lettered_later() -> None:
    engine, stats = Engine(settings()), DaemonStats()
    road = TickRoad(engine, 1.0)
    wall = [T0]
    pipeline = Pipeline(engine, stats, event_clock=False, wall_clock=lambda: wall[0])
    orphan = _line("contact.answered", T0, event_id="a9", contact_id="c9", queue="billing")
    early = _line("contact.answered", T0 + 1, event_id="a8", contact_id="c8", queue="billing")
    assert _feed(pipeline, [orphan, early]) == []  # held, within the 5 s lateness
    assert stats.events["test", "contact.answered"] == 0  # held: not applied yet
    road.tick(T0 + 2)
    assert _feed(pipeline, [_queued(8, T0 + 0.5)]) == []  # c8 opens: its answer applies
    assert pipeline.take_deferred() == []
    assert stats.events["test", "contact.answered"] == 1  # counted once it applied
    road.tick(T0 + 5)
    assert pipeline.take_deferred() == []  # T0 + 5 - 5 is not past T0 yet
    road.tick(T0 + 6)
    assert pipeline.take_deferred("mqtt") == []  # each source's letters go to its own sink
    letters = pipeline.take_deferred("test")
    assert pipeline.take_deferred() == []
    assert [(x.raw, x.reason, x.position, x.source) for x in letters] == [
        (orphan, "unknown_contact", "line:1", "test")
    ]
    assert _rejected(stats) == {"unknown_contact": 1}
    assert stats.events["test", "contact.answered"] == 1  # the orphan counts as rejected only
    assert value(engine, "support_contacts_answered_total", channel="voice", queue="billing") == 1


def test_deferred_letters_past_their_bound_are_counted_dropped(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(pipeline_module, "_MAX_DEFERRED", 2)
    engine, stats = Engine(settings()), DaemonStats()
    road = TickRoad(engine, 1.0)
    wall = [T0]
    pipeline = Pipeline(engine, stats, event_clock=False, wall_clock=lambda: wall[0])
    pipeline.register("test")
    orphans = [
        _line("contact.answered", T0, event_id=f"a{i}", contact_id=f"c{i}", queue="billing")
        for i in range(3)
    ]
    assert _feed(pipeline, orphans) == []  # all three held
    road.tick(T0 + 6)  # the lateness has passed: three rejects for two places
    with capture_logs() as logs:
        letters = pipeline.take_deferred("test")
    assert [x.raw for x in letters] == orphans[1:]  # the oldest went
    assert stats.dead_letters_dropped["test"] == 1
    assert _rejected(stats) == {"unknown_contact": 3}
    assert [x["event"] for x in logs if x["log_level"] == "warning"].count(
        "deferred_dead_letter_dropped"
    ) == 1


class _Idle:
    """A source that delivers its lines, then waits for more that never come."""

    name = "test"

    def __init__(self, lines: list[bytes]) -> None:
        self.lines = lines

    async def batches(self) -> AsyncIterator[list[Delivery]]:
        yield [Delivery(raw, f"line:{i + 1}") for i, raw in enumerate(self.lines)]
        await asyncio.Event().wait()


class _Buffering:
    """A sink that stores only when persisted (as the Kafka dead-letter topic's)."""

    def __init__(self) -> None:
        self.written: list[DeadLetter] = []
        self.stored: list[DeadLetter] = []

    async def write(self, letter: DeadLetter) -> None:
        self.written.append(letter)

    async def persist(self) -> None:
        self.stored = list(self.written)


async def test_a_held_reject_is_stored_while_its_source_is_idle() -> None:
    # Before, the idle source's drain task only wrote the letter: a buffering sink (the Kafka
    # dead-letter topic) stored it, and counted it or its failure, at the next commit only.
    engine, stats = Engine(settings()), DaemonStats()
    road = TickRoad(engine, 1.0)
    wall = [T0]
    pipeline = Pipeline(engine, stats, event_clock=False, wall_clock=lambda: wall[0])
    orphan = _line("contact.answered", T0, event_id="a1", contact_id="c1", queue="billing")
    sink = _Buffering()
    consuming = asyncio.create_task(consume(_Idle([orphan]), pipeline, sink, drain_every=0.05))
    await asyncio.sleep(0.1)
    assert sink.written == []  # held
    road.tick(T0 + 6)  # the lateness has passed: a deferred reject
    for _ in range(40):
        await asyncio.sleep(0.05)
        if sink.stored:
            break
    consuming.cancel()
    with pytest.raises(asyncio.CancelledError):
        await consuming
    assert [(x.raw, x.reason) for x in sink.stored] == [(orphan, "unknown_contact")]


def test_replay_dead_letters_an_early_outcome_decided_at_the_end(tmp_path: Path) -> None:
    letters_path = tmp_path / "dead.jsonl"
    orphan = _line("contact.answered", T0 + 2, event_id="a9", contact_id="c9", queue="billing")
    lines = [_queued(1, T0), orphan]
    text = asyncio.run(
        replay(_write(tmp_path / "f.jsonl", lines), settings(), dead_letters=letters_path)
    )
    got = samples(text.decode())
    key = _key("support_monitor_events_rejected_total", reason="unknown_contact", source="file")
    assert got[key] == 1
    records = [json.loads(line) for line in letters_path.read_text().splitlines()]
    assert [(r["raw"], r["reason"]) for r in records] == [(orphan.decode(), "unknown_contact")]


def test_a_dead_letter_keeps_its_records_key_up_to_a_bound() -> None:
    pipeline = Pipeline(Engine(settings()), DaemonStats(), event_clock=True, log_burst=0)
    small = pipeline.process("kafka", Delivery(b"", "events/0/1", b"ticket-7"))  # a tombstone
    assert small is not None
    assert (small.raw, small.key, small.reason) == (b"", b"ticket-7", "invalid_json")
    huge = pipeline.process("kafka", Delivery(b"{", "events/0/2", b"k" * 5000))
    assert huge is not None
    assert huge.key == b"k" * 1024  # the first 1,024 bytes, as docs/sources.md says
    plain = pipeline.process("file", Delivery(b"{", "f:1"))
    assert plain is not None
    assert plain.key is None


def test_a_service_level_cusum_left_active_by_the_last_outcome_is_not_jumped_over() -> None:
    # A voice collapse (a third within T, every 20 s) makes the service-level CUSUM active
    # (phi 1 from the start); then nothing comes for 8 hours. The binomial CUSUM holds still
    # without outcomes and lets go at the first hour boundary that closes an hour without any
    # (within 2 hours of the last outcome), which resolves the page. A config with nothing else
    # that remembers long (no other detector, for and keep_firing_for 0) has a horizon far
    # below that: the jumping road must still step through it, as the stepping one does.
    cfg = settings(
        channels=LIVE_CHANNELS,
        windows=["5m", "1h"],
        detectors={
            "sla_burn": {"cusum": {"dispersion_prior": 1.0}},
            "complaint_spike": {"enabled": False},
            "backlog_growth": {"enabled": False},
            "tickets_at_risk": {"enabled": False},
            "understaffing": {"enabled": False},
            "estimated_wait": {"enabled": False},
            "thresholds": [],
        },
        alerts={
            "rules": [
                {
                    "alert": "Collapse",
                    "detector": "sla_burn",
                    "severity": "critical",
                    "match": {"severity": "page", "long": "5m", "short": "5m"},
                }
            ],
            "resolved_retention": "0s",
        },
    )
    horizon = quiet_horizon(cfg)
    lines = []
    for i in range(90):  # 30 minutes: queued every 20 s, a third answered in 5 s, others in 30 s
        at, cid = T0 + 20 * i, f"s{i}"
        wait = 5 if i % 3 == 0 else 30
        lines.append(_line("contact.queued", at, event_id=f"{cid}q", contact_id=cid, queue="tech"))
        lines.append(
            _line("contact.answered", at + wait, event_id=f"{cid}a", contact_id=cid, queue="tech")
        )
    gap = 8 * 3600
    lines += _contacts(T0 + 1800 + gap, "b", 5)
    lines.sort(key=lambda raw: json.loads(raw)["ts"])
    stepped = _run_road(cfg, lines, None)
    jumped = _run_road(cfg, lines, horizon)
    states = [(r["alertname"], r["state"]) for r in json.loads(stepped[0])]
    assert ("Collapse", "firing") in states
    assert ("Collapse", "resolved") in states
    resolved = next(r for r in json.loads(stepped[0]) if r["state"] == "resolved")
    assert resolved["ts"] < T0 + 1800 + 2 * 3600 + 60  # let go within 2 h of the last outcome
    assert jumped[3] > 0  # it did jump, after the CUSUM let go
    assert jumped[:3] == stepped[:3]


def test_every_held_event_is_counted_once_however_many_one_read_of_the_file_settles(
    tmp_path: Path,
) -> None:
    """Audit of 2026-12-05: the engine kept the held events it settled (applied, or rejected as
    `unknown_*`) for the pipeline to count in a list cut at max(1024, max_early_outcomes),
    which `replay` drains once per read of the file (about 1 MiB). With `max_early_outcomes`
    200 the old code counted 1,038 of these 3,000 status changes of one ticket (each held for
    `ts` order); in the audit's file of 8,000 answers for contacts never queued (held, then
    `unknown_contact`) 1,976 were neither counted as rejects nor dead-lettered."""
    lines = [_line("ticket.created", T0, "email", event_id="t", ticket_id="t1")]
    for i in range(3000):
        status = "pending" if i % 2 == 0 else "open"
        at = T0 + 1 + i * 0.01
        lines.append(
            _line(
                "ticket.status_changed",
                at,
                "email",
                event_id=f"s{i}",
                ticket_id="t1",
                status=status,
            )
        )
    for i in range(3000):
        at = T0 + 100 + i * 0.01
        lines.append(_line("contact.answered", at, event_id=f"a{i}", contact_id=f"u{i}"))
    path = _write(tmp_path / "held.jsonl", lines)
    letters = tmp_path / "letters.jsonl"
    cfg = settings(limits={"max_early_outcomes": 200})
    text = asyncio.run(replay(path, cfg, dead_letters=letters)).decode()
    got = samples(text)

    def total(name: str, **match: str) -> float:
        return sum(
            v
            for (n, labels), v in got.items()
            if n == name and all(dict(labels).get(k) == want for k, want in match.items())
        )

    assert total("support_monitor_events_total", type="ticket.created") == 1
    assert total("support_monitor_events_total", type="ticket.status_changed") == 3000
    assert total("support_monitor_events_total", type="contact.answered") == 0
    rejected = total("support_monitor_events_rejected_total")
    assert rejected == 3000  # unknown_contact, or capacity for those never held
    assert total("support_monitor_events_rejected_total", reason="unknown_contact") >= 200
    assert total("support_monitor_events_duplicate_total") == 0
    assert len(letters.read_bytes().splitlines()) == 3000
