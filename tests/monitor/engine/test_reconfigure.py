"""Config reload: new thresholds apply to open items at once; shape changes need a restart."""

from __future__ import annotations

import json

import pytest

from support_monitor.monitor.engine import snapshot
from support_monitor.monitor.engine.engine import RestartNeeded
from support_monitor.monitor.pipeline import Delivery, Pipeline
from support_monitor.monitor.stats import DaemonStats
from tests.support import CONFIG, T0, Stream, run, settings, ticket_voice, value

V = {"channel": "voice", "queue": "billing"}
E = {"channel": "email", "queue": "default"}


def _changed(**channel_overrides: dict[str, object]) -> dict[str, object]:
    channels = json.loads(json.dumps(CONFIG["channels"]))
    for name, fields in channel_overrides.items():
        channels[name].update(fields)
    return {"channels": channels}


def test_shorter_answer_target_breaches_a_contact_already_waiting() -> None:
    s = Stream()
    s.add("contact.queued", 0, "voice", queue="billing", contact_id="c1")
    engine, _ = run(s.lines, until=15)
    assert value(engine, "support_sla_breaches_total", **V, sla="answer") == 0
    engine.reconfigure(settings(**_changed(voice={"answer_seconds": 10})))
    engine.flush(T0 + 15)
    assert value(engine, "support_sla_breaches_total", **V, sla="answer") == 1
    assert value(engine, "support_queue_breached_waiting", **V) == 1


def test_a_breached_contact_leaves_the_breached_gauge_while_its_wait_is_under_a_raised_t() -> None:
    """Breached at 20 s (T 20), T raised to 60 at 35 s: still one breach, but nobody waits past
    T until 60 s; back at 61 s; T back to 20 at 40 s puts it back at once. Answered: 0 (never
    -1), also after a snapshot taken while it was out of the gauge."""
    s = Stream()
    s.add("contact.queued", 0, "voice", queue="billing", contact_id="c1")
    engine, _ = run(s.lines, until=35)
    breaches = ("support_sla_breaches_total", {**V, "sla": "answer"})
    assert value(engine, "support_queue_breached_waiting", **V) == 1
    engine.reconfigure(settings(**_changed(voice={"answer_seconds": 60})))
    assert value(engine, "support_queue_breached_waiting", **V) == 0
    engine.flush(T0 + 60)
    assert value(engine, "support_queue_breached_waiting", **V) == 0
    engine.flush(T0 + 60.5)
    assert value(engine, "support_queue_breached_waiting", **V) == 1
    assert value(engine, breaches[0], **breaches[1]) == 1

    engine, _ = run(s.lines, until=35)
    engine.reconfigure(settings(**_changed(voice={"answer_seconds": 60})))
    engine.flush(T0 + 40)
    engine.reconfigure(settings(**_changed(voice={"answer_seconds": 20})))
    assert value(engine, "support_queue_breached_waiting", **V) == 1

    engine, _ = run(s.lines, until=35)
    cfg = settings(**_changed(voice={"answer_seconds": 60}))
    engine.reconfigure(cfg)
    restored = snapshot.restore(snapshot.capture(engine, {}), cfg)
    for e in (engine, restored):
        answered = Stream()
        answered.add(
            "contact.answered", 45, "voice", queue="billing", contact_id="c1", event_id="a1"
        )
        pipeline = Pipeline(e, DaemonStats(), event_clock=True, log_burst=0)
        pipeline.process("test", Delivery(answered.lines[0], "line:1"))
        e.flush(T0 + 100)
        assert value(e, "support_queue_breached_waiting", **V) == 0
        assert value(e, breaches[0], **breaches[1]) == 1


def test_ticket_deadlines_and_lead_times_move_with_the_config() -> None:
    s = Stream()
    s.add("ticket.created", 0, "email", ticket_id="t1")
    s.add("ticket.created", 0, "email", ticket_id="t2")
    s.add("ticket.responded", 100, "email", ticket_id="t2")
    engine, _ = run(s.lines, until=2000)
    assert value(engine, "support_tickets_at_risk", **E, sla="first_response") == 0
    engine.reconfigure(
        settings(
            **_changed(
                email={
                    "first_response_seconds": 2100,
                    "first_response_warning_seconds": 200,
                }
            )
        )
    )
    engine.flush(T0 + 2000)
    assert value(engine, "support_tickets_at_risk", **E, sla="first_response") == 1
    engine.reconfigure(settings(**_changed(email={"first_response_seconds": 1800})))
    engine.flush(T0 + 2000)
    assert value(engine, "support_sla_breaches_total", **E, sla="first_response") == 1
    assert value(engine, "support_tickets_at_risk", **E, sla="first_response") == 0


def test_reopened_cycle_keeps_its_start_across_a_reload() -> None:
    s = Stream()
    s.add("ticket.created", 0, "email", ticket_id="t1")
    s.add("ticket.solved", 10, "email", ticket_id="t1")
    s.add("ticket.reopened", 1000, "email", ticket_id="t1")
    engine, _ = run(s.lines, until=1500)
    engine.reconfigure(settings(**_changed(email={"resolution_seconds": 600})))
    engine.flush(T0 + 1599)
    assert value(engine, "support_sla_breaches_total", **E, sla="resolution") == 0
    engine.flush(T0 + 1601)
    assert value(engine, "support_sla_breaches_total", **E, sla="resolution") == 1


@pytest.mark.parametrize(
    ("change", "what"),
    [
        ({"windows": ["5m"]}, "windows"),
        (_changed(voice={"queues": ["billing"]}), "queues"),
        ({"ingest": {"complaint_categories": ["billing"]}}, "ingest.complaint_categories"),
        (
            ticket_voice(),
            r"channels\.voice\.answer_seconds removed",
        ),
        (_changed(email={"answer_seconds": 30}), r"channels\.email\.answer_seconds added"),
    ],
)
def test_shape_changes_need_a_restart_and_change_nothing(
    change: dict[str, object], what: str
) -> None:
    engine, _ = run([], until=0)
    before = engine.settings
    with pytest.raises(RestartNeeded, match=what):
        engine.reconfigure(settings(**change))
    assert engine.settings is before


def test_a_live_channel_that_loses_its_answer_target_keeps_its_waiting_contacts() -> None:
    """A reload that would turn voice into a ticket channel is refused (its contacts waiting
    would have no T to be judged by): they are still answered and counted under the old one."""
    s = Stream()
    s.add("contact.queued", 0, "voice", queue="billing", contact_id="c1")
    engine, stats = run(s.lines, until=5)
    tickets = settings(**ticket_voice())
    with pytest.raises(RestartNeeded, match="answer_seconds removed"):
        engine.reconfigure(tickets)
    more = Stream()
    more.add("contact.answered", 10, "voice", event_id="later", contact_id="c1")
    pipeline = Pipeline(engine, stats, event_clock=True, log_burst=0)
    pipeline.process("test", Delivery(more.lines[0], "line:1"))
    assert value(engine, "support_contacts_answered_in_sla_total", **V) == 1
    assert sum(stats.rejected.values()) == 0
