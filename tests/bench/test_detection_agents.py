"""The detection benchmark's agent states (``bench/detection/traffic_agents.py``): the queue is the
one ``traffic.Generator`` simulates, and the roster behind it is what the module says."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import datetime
from typing import Any

from bench.detection import traffic, traffic_agents
from bench.detection.traffic import HOUR, Incident

START = traffic.MONDAY


def _events(gen: traffic.Generator) -> list[dict[str, Any]]:
    return [json.loads(line) for _, line in gen.run()]


def _ts(event: dict[str, Any]) -> float:
    return datetime.fromisoformat(event["ts"]).timestamp()


def _contacts(events: list[dict[str, Any]]) -> list[tuple[Any, ...]]:
    """The queue's events without ids and agents (``contact.ended`` moves to the talk end)."""
    out = []
    for e in events:
        if e["type"] in ("agent.state", "contact.ended"):
            continue
        out.append(
            (e["type"], e["ts"], e["channel"], e["queue"], e.get("rating"), e.get("category"))
        )
    return out


def test_the_queue_is_the_plain_generators_and_every_answer_names_an_agent() -> None:
    kwargs: dict[str, Any] = {
        "live": traffic.default_live(),
        "desks": traffic.default_desks(),
        "incidents": [Incident("sl_collapse", "voice", START + 3 * HOUR, START + 4 * HOUR, 0.4)],
    }
    end = START + 12 * HOUR
    plain = _events(traffic.Generator(5, START, end, **kwargs))
    agents = _events(traffic_agents.AgentGenerator(5, START, end, **kwargs))
    assert _contacts(agents) == _contacts(plain)
    answered = [e for e in agents if e["type"] == "contact.answered"]
    assert answered
    assert all(e["agent_id"].startswith(e["channel"] + "-a") for e in answered)
    states = {e["state"] for e in agents if e["type"] == "agent.state"}
    assert states == {"available", "after_call_work", "break", "offline"}


def test_fixed_roster_keeps_its_working_count_through_breaks_and_splits_handle_time() -> None:
    spec = replace(traffic.default_live()[0], fixed_slots=10)
    gen = traffic_agents.AgentGenerator(
        3, START, START + 6 * HOUR, live=[spec], profile=lambda _t: 0.2
    )
    state: dict[str, str] = {}
    current: dict[str, str] = {}  # agent -> the contact it answered last
    answered: dict[str, float] = {}
    ended: dict[str, float] = {}
    splits = []
    breaks = 0
    for e in _events(gen):
        kind, t = e["type"], _ts(e)
        if kind == "contact.answered":
            state[e["agent_id"]] = "busy"
            current[e["agent_id"]] = e["contact_id"]
            answered[e["contact_id"]] = t
        elif kind == "contact.ended":
            ended[e["contact_id"]] = t
        elif kind == "agent.state":
            agent = e["agent_id"]
            breaks += e["state"] == "break"
            if state.get(agent) == "after_call_work":
                cid = current[agent]
                handle = t - answered[cid]
                if handle > 10:  # millisecond stamps make very short contacts inexact
                    splits.append((t - ended[cid]) / handle)
            state[agent] = e["state"]
            if e["state"] == "break":
                continue  # its relief logs in at the same instant, in the next event
        working = sum(1 for s in state.values() if s in ("available", "busy", "after_call_work"))
        if t > START:  # the roster logs in at the start, one event at a time
            assert working == 10, (e, working)
    # one every 10 minutes from 00:10 to 05:50: 3.2 Erlangs on 10 agents leave one free
    assert breaks == 35
    assert len(splits) > 50
    assert all(abs(x - traffic_agents.ACW_SHARE) < 0.001 for x in splits)


def test_staffing_incidents_fall_on_the_next_weekday_at_their_hours() -> None:
    friday = START + 4 * 86400 + 20 * HOUR  # a Friday evening: the next weekday is Monday
    found = traffic_agents.incidents(["voice", "chat", "email"], friday)
    monday = START + 7 * 86400
    assert [(i.kind, i.channel, i.start - monday, i.end - i.start, i.factor) for i in found] == [
        ("understaffing", "voice", 14 * HOUR, 45 * 60, 0.5),
        ("understaffing", "chat", 14 * HOUR, 45 * 60, 0.5),
        ("sick_call", "voice", 7 * HOUR, 4 * HOUR, 0.6),
        ("sick_call", "chat", 7 * HOUR, 4 * HOUR, 0.6),
    ]
