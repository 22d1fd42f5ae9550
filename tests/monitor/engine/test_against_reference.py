"""Random event streams through the real pipeline and through the simple reference model:
counters, gauges, windowed counts and ratios must be identical (quantiles within 1%).

Times are fractional (so outcomes land exactly on and just inside window edges), and the streams
hold groups (an opening event and its outcomes within the allowed lateness) that are also fed
reversed: the outcomes first. Both orders must give the reference's numbers, and each other's."""

from __future__ import annotations

import json
import math
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from support_monitor.monitor.config import parse_settings
from support_monitor.monitor.engine.engine import Engine
from support_monitor.monitor.engine.readout import series
from tests.monitor.engine.draining import run
from tests.monitor.engine.reference_model import Reference
from tests.support import T0, iso

CFG: dict[str, Any] = {
    "windows": ["1m", "5m", "1h"],
    "ingest": {"allowed_lateness": 5},
    "channels": {
        "voice": {"answer_seconds": 20, "short_abandon_seconds": 5, "queues": ["billing", "tech"]},
        "chat": {"answer_seconds": 45, "short_abandon_seconds": 3, "queues": ["sales"]},
        "email": {"first_response_seconds": 120, "resolution_seconds": 400, "queues": ["default"]},
    },
}
WINDOWS = {"1m": 60.0, "5m": 300.0, "1h": 3600.0}
ACTIONS = (
    "queue",
    "queue",
    "queue",
    "answer",
    "answer",
    "abandon",
    "end",
    "end",
    "ghost",
    "create",
    "create",
    "respond",
    "solve",
    "reopen",
    "rate",
    "complaint",
    "duplicate",
    "bad_queue",
    "group_contact",
    "group_ticket",
)
FRACTIONS = (0.0, 0.0, 0.0, 0.001, 0.25, 0.999)
CONTACT_GROUPS = (("answered",), ("abandoned",), ("answered", "ended"), ("ended",))
TICKET_GROUPS = (("responded",), ("solved",), ("responded", "solved"), ("solved", "reopened"))


def reverse_groups(events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The same events with each group (ids ``g<n>.0``, ``g<n>.1``, ... in a row) reversed:
    outcomes first. A redelivered copy of a group event later in the stream stays in place."""
    out: list[dict[str, Any]] = []
    group: list[dict[str, Any]] = []
    seen: set[str] = set()
    for e in [*events, {"event_id": ""}]:
        event_id = e["event_id"]
        member = bool(group) and event_id == f"{group[0]['event_id'][:-2]}.{len(group)}"
        if group and not member:
            out.extend(reversed(group))
            group = []
        if member or (
            event_id.startswith("g") and event_id.endswith(".0") and event_id not in seen
        ):
            group.append(e)
        elif event_id:
            out.append(e)
        seen.add(event_id)
    return out


@st.composite
def streams(draw: st.DrawFn) -> tuple[list[dict[str, Any]], float]:
    steps = draw(
        st.lists(
            st.tuples(
                st.integers(0, 25),
                st.sampled_from(FRACTIONS),
                st.sampled_from(ACTIONS),
                st.integers(0, 10_000),
            ),
            max_size=120,
        )
    )
    events: list[dict[str, Any]] = []
    contacts: list[tuple[str, str]] = []
    tickets: list[str] = []
    now = 0.0
    for n, (dt, frac, action, pick) in enumerate(steps):
        now = math.floor(now) + dt + frac if dt else now
        base = {"event_id": f"e{n}", "ts": iso(T0 + now)}
        live = (
            ("voice", "billing")
            if pick % 3 == 0
            else ("voice", "tech")
            if pick % 3 == 1
            else ("chat", "sales")
        )
        if action == "queue":
            cid = f"c{n}"
            contacts.append((cid, live[0]))
            events.append(
                {
                    **base,
                    "type": "contact.queued",
                    "channel": live[0],
                    "queue": live[1],
                    "contact_id": cid,
                }
            )
        elif action in ("answer", "abandon", "end") and contacts:
            cid, ch = contacts[pick % len(contacts)]
            kind = {"answer": "answered", "abandon": "abandoned", "end": "ended"}[action]
            events.append({**base, "type": f"contact.{kind}", "channel": ch, "contact_id": cid})
        elif action == "ghost":
            events.append(
                {
                    **base,
                    "type": "contact.answered",
                    "channel": "voice",
                    "contact_id": f"ghost{pick}",
                }
            )
        elif action == "create":
            tid = f"t{n}"
            tickets.append(tid)
            tags = ["complaint"] if pick % 5 == 0 else []
            events.append(
                {
                    **base,
                    "type": "ticket.created",
                    "channel": "email",
                    "ticket_id": tid,
                    "tags": tags,
                }
            )
        elif action in ("respond", "solve", "reopen") and tickets:
            kind = {"respond": "responded", "solve": "solved", "reopen": "reopened"}[action]
            events.append(
                {
                    **base,
                    "type": f"ticket.{kind}",
                    "channel": "email",
                    "ticket_id": tickets[pick % len(tickets)],
                }
            )
        elif action == "rate":
            ticket = {"ticket_id": tickets[pick % len(tickets)]} if tickets and pick % 2 else {}
            events.append(
                {
                    **base,
                    "type": "ticket.rated",
                    "channel": live[0],
                    "rating": pick % 5 + 1,
                    **ticket,
                }
            )
        elif action == "complaint":
            events.append({**base, "type": "complaint.received", "channel": live[0]})
        elif action == "duplicate" and events:
            events.append({**events[pick % len(events)]})
        elif action == "group_contact":
            back = pick % 6  # the queued is up to the 5 s lateness before its last outcome
            kinds = CONTACT_GROUPS[pick // 6 % len(CONTACT_GROUPS)]
            cid = f"g{n}"
            contacts.append((cid, live[0]))
            at = [now - back, *(now - back / 2 * (len(kinds) - 1 - i) for i in range(len(kinds)))]
            group = [{"type": "contact.queued", "queue": live[1]}]
            group += [{"type": f"contact.{kind}"} for kind in kinds]
            for i, (ts, fields) in enumerate(zip(at, group, strict=True)):
                events.append(
                    {
                        "event_id": f"g{n}.{i}",
                        "ts": iso(T0 + ts),
                        "channel": live[0],
                        "contact_id": cid,
                        **fields,
                    }
                )
        elif action == "group_ticket":
            back = pick % 6
            kinds = TICKET_GROUPS[pick // 6 % len(TICKET_GROUPS)]
            tid = f"g{n}"
            tickets.append(tid)
            at = [now - back, *(now - back / 2 * (len(kinds) - 1 - i) for i in range(len(kinds)))]
            types = ["ticket.created", *(f"ticket.{kind}" for kind in kinds)]
            for i, (ts, kind) in enumerate(zip(at, types, strict=True)):
                events.append(
                    {
                        "event_id": f"g{n}.{i}",
                        "ts": iso(T0 + ts),
                        "type": kind,
                        "channel": "email",
                        "ticket_id": tid,
                    }
                )
        elif action == "bad_queue":
            events.append(
                {
                    **base,
                    "type": "contact.queued",
                    "channel": "voice",
                    "queue": f"rnd{pick}",
                    "contact_id": f"b{n}",
                }
            )
    tail = draw(st.integers(0, 700))
    tail_frac = draw(st.sampled_from(FRACTIONS))
    return events, float(math.ceil(now) + tail + tail_frac)


def _engine_numbers(engine: Any) -> dict[str, float]:
    out: dict[str, float] = {}
    names = {
        "support_contacts_queued_total": "queued",
        "support_contacts_answered_total": "answered",
        "support_contacts_answered_in_sla_total": "answered_in_sla",
        "support_contacts_abandoned_total": "abandoned",
        "support_contacts_abandoned_short_total": "abandoned_short",
        "support_contacts_abandoned_in_sla_total": "abandoned_in_sla",
        "support_queue_waiting": "waiting",
        "support_queue_oldest_wait_seconds": "oldest",
        "support_queue_breached_waiting": "breached_waiting",
        "support_tickets_created_total": "created",
        "support_tickets_solved_total": "solved",
        "support_tickets_open": "open",
    }
    for row in series(engine):
        labels = dict(row.labels)
        base = f"{labels.get('channel')}/{labels.get('queue')}"
        if row.name in names:
            out[f"{base}/{names[row.name]}"] = row.value
        elif row.name == "support_sla_breaches_total":
            key = {
                "answer": "breaches",
                "first_response": "fr_breach",
                "next_reply": "nr_breach",
                "resolution": "res_breach",
            }
            out[f"{base}/{key[labels['sla']]}"] = row.value
        elif row.name == "support_tickets_at_risk":
            risk = {"first_response": "fr", "next_reply": "nr", "resolution": "res"}
            out[f"{base}/{risk[labels['sla']]}_risk"] = row.value
    return {k: v for k, v in out.items() if v != 0}


def _nonzero(d: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in d.items() if not isinstance(v, list) and v != 0}


@settings(max_examples=250, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(streams())
def test_engine_equals_reference_model(case: tuple[list[dict[str, Any]], float]) -> None:
    events, until = case
    in_order = _check_against_reference(events, until)
    reordered = _check_against_reference(reverse_groups(events), until)
    assert _rows(reordered) == _rows(in_order)
    for ch_name, channel in in_order.channels.items():
        for window in WINDOWS:
            got = reordered.channels[ch_name].windows.total(window)
            expected = channel.windows.total(window)
            assert [getattr(got, n) for n in got.INTS] == [
                getattr(expected, n) for n in expected.INTS
            ]
            assert got.waits == expected.waits


def _rows(engine: Engine) -> list[tuple[str, Any, float | str]]:
    return [(r.name, r.labels, "nan" if math.isnan(r.value) else r.value) for r in series(engine)]


def _check_against_reference(events: list[dict[str, Any]], until: float) -> Engine:
    engine, stats = run([json.dumps(e).encode() for e in events], parse_settings(CFG), until)
    ref = Reference(CFG)
    for e in events:
        ref.feed(e, _ts(e))
    ref.finish()
    now = T0 + until
    contacts = ref.contact_numbers(now, WINDOWS)
    tickets = ref.ticket_numbers(now)
    expected = _nonzero(contacts) | _nonzero(tickets)
    got = _engine_numbers(engine)
    assert got == {k: v for k, v in expected.items() if k.split("/")[1] not in WINDOWS}
    assert {("test", r): n for r, n in ref.rejected.items()} == dict(stats.rejected)
    voice = ref.voice_numbers(now, WINDOWS)
    for ch_name, channel in engine.channels.items():
        for window in WINDOWS:
            agg = channel.windows.total(window)
            key = f"{ch_name}/{window}"
            assert agg.answered == contacts.get(f"{key}/answered", 0)
            assert agg.answered_in_sla == contacts.get(f"{key}/in_sla", 0)
            assert agg.abandoned == contacts.get(f"{key}/abandoned", 0)
            assert agg.abandoned_short == contacts.get(f"{key}/short", 0)
            assert agg.breaches_answer == contacts.get(f"{key}/breaches", 0)
            assert agg.ratings == voice.get(f"{key}/ratings", 0)
            assert agg.satisfied == voice.get(f"{key}/satisfied", 0)
            assert agg.complaints == voice.get(f"{key}/complaints", 0)
            _check_ratios(engine, ch_name, window, contacts, voice)
        assert sum(channel.complaints.values()) == voice.get(f"{ch_name}/complaints", 0)
    assert engine.early_outcomes_held == 0
    return engine


def _ts(event: dict[str, Any]) -> float:
    """The event's epoch seconds, parsed as the pipeline parses them (no T0 round trip)."""
    from datetime import datetime  # noqa: PLC0415

    return datetime.fromisoformat(event["ts"]).timestamp()


def _check_ratios(
    engine: Any, channel: str, window: str, contacts: dict[str, Any], voice: dict[str, Any]
) -> None:
    key = f"{channel}/{window}"
    answered = contacts.get(f"{key}/answered", 0)
    offered = answered + contacts.get(f"{key}/abandoned", 0) - contacts.get(f"{key}/short", 0)
    rows = {
        (r.name, r.label("quantile")): r.value
        for r in series(engine)
        if r.label("channel") == channel and r.label("window") == window
    }
    sl = rows["support_service_level_ratio", None]
    if offered:
        assert sl == contacts.get(f"{key}/in_sla", 0) / offered
    else:
        assert math.isnan(sl)
    ratings = voice.get(f"{key}/ratings", 0)
    csat = rows["support_csat_ratio", None]
    assert (math.isnan(csat) and not ratings) or csat == voice[f"{key}/satisfied"] / ratings
    waits = sorted(contacts.get(f"{key}/waits", []))
    for q in ("0.5", "0.9", "0.99"):
        got = rows["support_wait_quantile_seconds", q]
        if not waits:
            assert math.isnan(got)
            continue
        exact = waits[math.floor(float(q) * (len(waits) - 1))]
        assert abs(got - exact) <= 0.01 * exact + 1e-3
