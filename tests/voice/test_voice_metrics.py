"""Customer voice and self-service: every number below is computed by hand in the comments."""

from __future__ import annotations

import json
import math

from support_monitor.monitor.engine import snapshot
from support_monitor.monitor.engine.engine import Engine
from support_monitor.monitor.pipeline import Delivery, Pipeline
from support_monitor.monitor.stats import DaemonStats
from tests.support import CONFIG, T0, Stream, run, settings, value

W5 = {"channel": "chat", "window": "5m"}


def test_nps_is_promoters_minus_detractors_over_answers() -> None:
    # Scores 10, 9 (promoters), 8, 7 (passives), 6, 0 (detractors), 3 (detractor):
    # (2 - 3) / 7 = -1/7.
    s = Stream()
    for i, score in enumerate((10, 9, 8, 7, 6, 0, 3)):
        s.add("survey.answered", i, "chat", survey="nps", score=score)
    engine, _ = run(s.lines, until=10)
    assert value(engine, "support_nps_score", **W5) == (2 - 3) / 7
    nps = {"channel": "chat", "survey": "nps"}
    assert value(engine, "support_survey_responses_total", **nps, score="9") == 1
    assert value(engine, "support_survey_responses_total", **nps, score="0") == 1


def test_ces_is_the_sum_over_the_count_and_leaves_the_window_exactly() -> None:
    # 7 at t=0, 2 at t=100: mean 4.5. The 5m window at t=300 is (0, 300]: the 7 is out -> 2.
    s = Stream()
    s.add("survey.answered", 0, "chat", survey="ces", score=7)
    s.add("survey.answered", 100, "chat", survey="ces", score=2)
    engine, _ = run(s.lines, until=299)
    assert value(engine, "support_ces_score", **W5) == 4.5
    engine.flush(T0 + 300)
    assert value(engine, "support_ces_score", **W5) == 2.0


def test_csat_counts_ratings_and_csat_surveys_alike() -> None:
    # ticket.rated 5 and 2, survey csat 4 and 1: satisfied 2 of 4.
    s = Stream()
    s.add("ticket.rated", 0, "chat", rating=5)
    s.add("ticket.rated", 1, "chat", rating=2)
    s.add("survey.answered", 2, "chat", survey="csat", score=4)
    s.add("survey.answered", 3, "chat", survey="csat", score=1)
    engine, _ = run(s.lines, until=10)
    assert value(engine, "support_csat_ratio", **W5) == 0.5
    assert value(engine, "support_csat_ratings_total", channel="chat", rating="5") == 1
    assert value(engine, "support_csat_ratings_total", channel="chat", rating="4") == 1
    csat = {"channel": "chat", "survey": "csat"}
    assert value(engine, "support_survey_responses_total", **csat, score="5") == 1
    assert value(engine, "support_survey_responses_total", **csat, score="1") == 1


def test_containment_and_escalations_to_a_live_channel() -> None:
    # 3 contained, 1 escalated to contact c1 (queued on chat), 1 abandoned: 3 / 5.
    s = Stream()
    s.add("contact.queued", 0, "chat", queue="sales", contact_id="c1")
    for i, outcome in enumerate(("contained", "contained", "escalated", "contained", "abandoned")):
        extra = {"contact_id": "c1"} if outcome == "escalated" else {}
        s.add("bot.session_ended", 1 + i, "chatbot", session_id=f"s{i}", outcome=outcome, **extra)
    channels = dict(CONFIG["channels"])
    channels["chatbot"] = {"queues": ["default"]}
    engine, _ = run(s.lines, settings(channels=channels), until=10)
    bot = {"channel": "chatbot", "window": "5m"}
    assert value(engine, "support_self_service_ratio", **bot) == 3 / 5
    assert value(engine, "support_bot_sessions_total", channel="chatbot", outcome="escalated") == 1
    assert value(engine, "support_bot_escalated_contacts_total", channel="chat") == 1
    assert value(engine, "support_bot_escalated_contacts_total", channel="chatbot") == 0


def test_sentiment_polarity_cut_offs_are_strict() -> None:
    # Defaults: below -0.3 negative, above 0.3 positive; -0.3 and 0.3 themselves are neutral.
    s = Stream()
    for i, score in enumerate((-1.0, -0.31, -0.3, 0.0, 0.3, 0.31, 1.0)):
        s.add("sentiment.scored", i, "chat", score=score)
    engine, _ = run(s.lines, until=10)
    polarity = {
        p: value(engine, "support_sentiment_total", channel="chat", polarity=p)
        for p in ("negative", "neutral", "positive")
    }
    assert polarity == {"negative": 2, "neutral": 3, "positive": 2}
    assert value(engine, "support_negative_sentiment_ratio", **W5) == 2 / 7


def test_configured_cut_offs_apply() -> None:
    s = Stream()
    for i, score in enumerate((-0.6, -0.4, 0.4)):
        s.add("sentiment.scored", i, "chat", score=score)
    cfg = settings(sentiment={"negative_below": -0.5, "positive_above": 0.5})
    engine, _ = run(s.lines, cfg, until=10)
    assert value(engine, "support_sentiment_total", channel="chat", polarity="negative") == 1
    assert value(engine, "support_sentiment_total", channel="chat", polarity="neutral") == 2


def test_scores_count_on_the_channel_of_the_item_they_name() -> None:
    # The ticket was opened on email: a survey and a sentiment naming it count there.
    s = Stream()
    s.add("ticket.created", 0, "email", ticket_id="t1")
    s.add("survey.answered", 1, "chat", survey="nps", score=10, ticket_id="t1")
    s.add("sentiment.scored", 2, "chat", score=-0.9, ticket_id="t1")
    engine, _ = run(s.lines, until=10)
    assert value(engine, "support_nps_score", channel="email", window="5m") == 1.0
    assert value(engine, "support_sentiment_total", channel="email", polarity="negative") == 1
    assert value(engine, "support_sentiment_total", channel="chat", polarity="negative") == 0


def _closed_contact_stream(closing: str, *, late: bool) -> list[bytes]:
    """Contact c1 queues on chat at 0 (answered at 5 when ``closing`` is ``ended``) and closes
    at 11. A survey (nps 10), a negative score, a complaint and a bot session escalated to c1,
    all stamped 10 on ``chatbot`` while c1 was open; with ``late`` they arrive after the
    closing event (1 s late, within the allowed 5 s), else in ``ts`` order."""
    s = Stream()
    s.add("contact.queued", 0, "chat", queue="sales", contact_id="c1")
    if closing == "ended":
        s.add("contact.answered", 5, "chat", contact_id="c1")
    close = Stream()
    close.add(f"contact.{closing}", 11, "chat", contact_id="c1", event_id="close")
    naming = Stream()
    on = {"contact_id": "c1"}
    naming.add("survey.answered", 10, "chatbot", survey="nps", score=10, event_id="n1", **on)
    naming.add("sentiment.scored", 10, "chatbot", score=-0.9, event_id="n2", **on)
    naming.add("complaint.received", 10, "chatbot", event_id="n3", **on)
    escalated = {"session_id": "s1", "outcome": "escalated"}
    naming.add("bot.session_ended", 10, "chatbot", event_id="n4", **escalated, **on)
    tail = naming.lines + close.lines if not late else close.lines + naming.lines
    return s.lines + tail


def test_events_naming_a_closed_contact_count_as_in_ts_order() -> None:
    # In ts order the four events stamped 10 find c1 open (it closes at 11): the survey, the
    # score and the complaint count on chat, and so does the escalation. Arriving after the
    # closing event (within the allowed lateness) must give the same numbers (before: they
    # counted on chatbot, and the escalation not at all, once c1 had closed).
    channels = dict(CONFIG["channels"])
    channels["chatbot"] = {"queues": ["default"]}
    cfg = settings(channels=channels)
    for closing in ("ended", "abandoned"):
        for late in (False, True):
            engine, stats = run(_closed_contact_stream(closing, late=late), cfg, until=20)
            case = (closing, late)
            assert not stats.rejected, case
            assert value(engine, "support_nps_score", **W5) == 1.0, case
            bot5 = {"channel": "chatbot", "window": "5m"}
            assert math.isnan(value(engine, "support_nps_score", **bot5)), case
            negative = {"polarity": "negative"}
            assert value(engine, "support_sentiment_total", channel="chat", **negative) == 1, case
            assert value(engine, "support_complaints_window", **W5) == 1, case
            assert value(engine, "support_complaints_window", **bot5) == 0, case
            assert value(engine, "support_bot_escalated_contacts_total", channel="chat") == 1, case


def test_events_naming_a_contact_before_it_queued_count_on_their_own_channel() -> None:
    # A survey stamped 3 names c1, which queues at 5 but arrived first: in ts order c1 was not
    # open yet, so the survey counts on its own channel (chatbot), whichever comes first.
    channels = dict(CONFIG["channels"])
    channels["chatbot"] = {"queues": ["default"]}
    for survey_first in (True, False):
        s = Stream()
        if survey_first:
            s.add("survey.answered", 3, "chatbot", survey="nps", score=0, contact_id="c1")
        s.add("contact.queued", 5, "chat", queue="sales", contact_id="c1")
        if not survey_first:
            s.add("survey.answered", 3, "chatbot", survey="nps", score=0, contact_id="c1")
        engine, _ = run(s.lines, settings(channels=channels), until=20)
        assert value(engine, "support_nps_score", channel="chatbot", window="5m") == -1.0
        assert math.isnan(value(engine, "support_nps_score", **W5))


def _naming_first(closing: str | None) -> list[bytes]:
    """A survey (nps 0), a negative score and a complaint stamped 7 on ``chatbot`` name c1 and
    arrive first; then c1 queues on chat at 5 (2 s late, within the allowed 5 s), closed by
    ``closing`` at 6 when one is given; a voice contact at 30 moves the clock past them all."""
    s = Stream()
    on = {"contact_id": "c1"}
    s.add("survey.answered", 7, "chatbot", survey="nps", score=0, **on)
    s.add("sentiment.scored", 7, "chatbot", score=-0.9, **on)
    s.add("complaint.received", 7, "chatbot", **on)
    s.add("contact.queued", 5, "chat", queue="sales", **on)
    if closing is not None:
        if closing == "ended":
            s.add("contact.answered", 5.5, "chat", **on)
        s.add(f"contact.{closing}", 6, "chat", **on)
    s.add("contact.queued", 30, "voice", queue="billing", contact_id="v1")
    return s.lines


def test_events_naming_a_contact_that_queues_after_them_in_arrival_count_as_in_ts_order() -> None:
    # In ts order c1 queued at 5 and the three events stamped 7 find it open: they count on
    # chat, although they arrived before its queued (before: on chatbot, their own channel).
    # Closed at 6, c1 is no longer open at 7: they count on chatbot, as in ts order.
    channels = dict(CONFIG["channels"])
    channels["chatbot"] = {"queues": ["default"]}
    cfg = settings(channels=channels)
    for closing, owner, other in (
        (None, "chat", "chatbot"),
        ("abandoned", "chatbot", "chat"),
        ("ended", "chatbot", "chat"),
    ):
        engine = Engine(cfg)
        stats = DaemonStats()
        pipeline = Pipeline(engine, stats, event_clock=True, log_burst=0)
        for i, line in enumerate(_naming_first(closing)):
            pipeline.process("test", Delivery(line, f"line:{i + 1}"))
        # the clock is at 30: the watermark (25) passed them, no flush needed
        assert not stats.rejected, closing
        assert engine.early_outcomes_held == 0, closing
        mine = {"channel": owner, "window": "5m"}
        theirs = {"channel": other, "window": "5m"}
        assert value(engine, "support_nps_score", **mine) == -1.0, closing  # 0 - 1 of 1
        assert math.isnan(value(engine, "support_nps_score", **theirs)), closing
        negative = {"polarity": "negative"}
        assert value(engine, "support_sentiment_total", channel=owner, **negative) == 1, closing
        assert value(engine, "support_sentiment_total", channel=other, **negative) == 0, closing
        assert value(engine, "support_complaints_window", **mine) == 1, closing
        assert value(engine, "support_complaints_window", **theirs) == 0, closing


def test_events_naming_a_ticket_count_as_in_ts_order() -> None:
    # t1 is created on email at 10. A rating (5), a complaint, a csat survey (4) and a negative
    # score name it, on chat. Those stamped 11 find t1 created in ts order: they count on
    # email, also when they arrive before its created (1 s late, within the allowed 5 s).
    # Those stamped 9 came before it in ts order: they count on chat, also when they arrive
    # after it (before: email).
    for stamped, owner, other in ((11, "email", "chat"), (9, "chat", "email")):
        for naming_first in (True, False):
            naming = Stream()
            on = {"ticket_id": "t1"}
            naming.add("ticket.rated", stamped, "chat", rating=5, **on)
            naming.add("complaint.received", stamped, "chat", **on)
            naming.add("survey.answered", stamped, "chat", survey="csat", score=4, **on)
            naming.add("sentiment.scored", stamped, "chat", score=-0.9, **on)
            created = Stream()
            created.add(
                "ticket.created", 10, "email", queue="default", ticket_id="t1", event_id="c"
            )
            first, then = (naming, created) if naming_first else (created, naming)
            engine, stats = run(first.lines + then.lines, until=30)
            case = (stamped, naming_first)
            assert not stats.rejected, case
            assert value(engine, "support_csat_ratings_total", channel=owner, rating="5") == 1, case
            assert value(engine, "support_csat_ratings_total", channel=owner, rating="4") == 1
            assert value(engine, "support_csat_ratings_total", channel=other, rating="5") == 0
            # two ratings, both satisfied (>= 4)
            assert value(engine, "support_csat_ratio", channel=owner, window="5m") == 1.0, case
            assert math.isnan(value(engine, "support_csat_ratio", channel=other, window="5m"))
            assert value(engine, "support_complaints_window", channel=owner, window="5m") == 1
            assert value(engine, "support_complaints_window", channel=other, window="5m") == 0
            negative = {"polarity": "negative"}
            assert value(engine, "support_sentiment_total", channel=owner, **negative) == 1, case
            assert value(engine, "support_sentiment_total", channel=other, **negative) == 0, case


def test_bad_scores_are_rejected_by_reason_and_no_text_is_kept() -> None:
    lines: list[dict[str, object]] = [
        {"type": "survey.answered", "survey": "nps", "score": 11},  # invalid_value
        {"type": "survey.answered", "survey": "csat", "score": 0},  # invalid_value
        {"type": "survey.answered", "survey": "ces", "score": "5"},  # wrong_type
        {"type": "survey.answered", "survey": "nps", "score": 9.5},  # wrong_type
        {"type": "survey.answered", "survey": "effort", "score": 3},  # invalid_value
        {"type": "bot.session_ended", "session_id": "s", "outcome": "transferred"},  # invalid
        {"type": "sentiment.scored", "score": 1.5},  # invalid_value
        {"type": "sentiment.scored", "score": True},  # wrong_type
        {"type": "sentiment.scored", "score": -0.2, "text": "my card number is 4111"},  # ok
    ]
    engine = Engine(settings())
    stats = DaemonStats()
    pipeline = Pipeline(engine, stats, event_clock=True, log_burst=0)
    for i, fields in enumerate(lines):
        event = {"event_id": f"e{i}", "ts": "2026-03-02T09:00:00Z", "channel": "chat", **fields}
        raw = json.dumps(event).encode()
        pipeline.process("test", Delivery(raw, f"line:{i}"))
    reasons = {reason: n for (_, reason), n in stats.rejected.items() if n}
    assert reasons == {"invalid_value": 5, "wrong_type": 3}
    assert value(engine, "support_sentiment_total", channel="chat", polarity="neutral") == 1
    # Only the score is kept: nothing in the engine's state holds the text.
    assert b"4111" not in snapshot.encode(snapshot.capture(engine, {}))
