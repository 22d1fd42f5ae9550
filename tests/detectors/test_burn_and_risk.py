"""SLA burn rate by hand, and tickets at risk, on real engine state."""

from __future__ import annotations

import json
import math
from typing import Any

import pytest

from tests.detectors.detector_streams import CHANNELS, Feed, Script, config, only, pick

PAIRS = [
    {"long": "1h", "short": "5m", "burn_rate": 2.0, "severity": "page"},
    {"long": "1h", "short": "5m", "burn_rate": 1.5, "severity": "ticket"},
]
PAGE = {"long": "1h", "severity": "page", "short": "5m"}
TICKET = {"long": "1h", "severity": "ticket", "short": "5m"}


def _burn_feed(**extra: object) -> Feed:
    return Feed(only({"sla_burn": {"windows": PAIRS, **extra}}))


def test_burn_rate_by_hand():
    # 6 answered within T=20 s, 2 answered late, 2 long abandons, 4 short abandons (not offered):
    # SL = 6 / (8 + 6 - 4) = 0.6; error 0.4 over budget 0.2 -> burn 2.0 in both windows
    feed = _burn_feed()
    script = Script()
    for i in range(6):
        script.contact(f"ok{i}", 10 * i, 10)
    for i in range(2):
        script.contact(f"late{i}", 100 + i, 30)
    for i in range(2):
        script.contact(f"gone{i}", 110 + i, 25, outcome="abandoned")
    for i in range(4):
        script.contact(f"short{i}", 120 + i, 2, outcome="abandoned")
    script.feed(feed)
    signals = feed.tick(200)
    page = pick(signals, "sla_burn", "voice", **PAGE)
    ticket = pick(signals, "sla_burn", "voice", **TICKET)
    assert page.score == pytest.approx(2.0)
    assert page.active  # >= 2.0
    assert ticket.active
    assert "2x over 1h and 2x over 5m" in page.summary
    chat = pick(signals, "sla_burn", "chat", **PAGE)
    assert math.isnan(chat.score)
    assert not chat.active
    # the exported row is the strictest active pair
    rows = {(r.name, r.labels): r.value for r in feed.suite.series()}
    key = (("channel", "voice"), ("detector", "sla_burn"))
    assert rows["support_detector_score", key] == pytest.approx(2.0)
    assert rows["support_detector_threshold", key] == 2.0


@pytest.mark.parametrize(
    ("target", "within", "burn"), [(0.7, 4, 2.0), (0.85, 7, 2.0), (0.7, 0, 10 / 3)]
)
def test_a_burn_of_exactly_the_threshold_reaches_it_whatever_the_target(target, within, burn):
    """10 offered, ``within`` in T: (1 - within/10) / (1 - target) is exactly ``burn`` (target
    0.7, 4 within: 0.6 / 0.3 = 2; 0 within: the ceiling 10/3). As floats the first is
    1.9999999999999996 and stayed below a burn_rate of 2.0."""
    channels = json.loads(json.dumps(CHANNELS))
    channels["voice"]["service_level_target"] = target
    pairs = [{"long": "1h", "short": "5m", "burn_rate": burn, "severity": "page"}]
    feed = Feed(only({"sla_burn": {"windows": pairs}}), channels=channels)
    script = Script()
    for i in range(10):
        script.contact(f"c{i}", 10 * i, 10 if i < within else 30)
    script.feed(feed)
    page = pick(feed.tick(200), "sla_burn", "voice", **PAGE)
    assert page.score == round(burn, 12)
    assert page.active


def test_both_windows_must_burn():
    feed = _burn_feed()
    script = Script()
    for i in range(40):  # a good first hour part: 40 in SLA
        script.contact(f"ok{i}", 60 * i, 5)
    for i in range(10):  # last 5 minutes: 2 of 10 in SLA -> short SL 0.2, burn 4.0
        script.contact(f"bad{i}", 3000 + 10 * i, 5 if i < 2 else 40)
    script.feed(feed)
    signals = feed.tick(3200)
    page = pick(signals, "sla_burn", "voice", **PAGE)
    # long: 42 of 50 in SLA -> SL 0.84 -> burn 0.16 / 0.2 = 0.8; the pair judges min(0.8, 4.0)
    assert page.score == pytest.approx(0.8)
    assert not page.active
    assert "0.8x over 1h and 4x over 5m" in page.summary


def test_min_volume_guards_both_windows():
    feed = _burn_feed(min_volume=6)
    script = Script()
    for i in range(5):  # every contact missed: burn 5.0, the ceiling, but only 5 offered
        script.contact(f"bad{i}", 10 * i, 40)
    script.feed(feed)
    s = pick(feed.tick(100), "sla_burn", "voice", **PAGE)
    assert s.score == pytest.approx(5.0)
    assert not s.active
    assert "min_volume 6" in s.summary
    script.contact("bad5", 100, 40)
    script.feed(feed)
    assert pick(feed.tick(150), "sla_burn", "voice", **PAGE).active


def test_burn_clears_when_the_short_window_recovers():
    feed = _burn_feed()
    script = Script()
    for i in range(10):  # SL 0.5 -> burn 2.5
        script.contact(f"c{i}", 10 * i, 5 if i % 2 else 40)
    script.feed(feed)
    assert pick(feed.tick(200), "sla_burn", "voice", **PAGE).active
    for i in range(20):  # next 5 minutes all in SLA: short burn 0, long (5+20)/30 -> burn 0.83
        script.contact(f"g{i}", 400 + 10 * i, 5)
    script.feed(feed)
    s = pick(feed.tick(700), "sla_burn", "voice", **PAGE)
    assert s.score == pytest.approx(0.0)
    assert not s.active


def test_a_pair_with_a_confidence_needs_evidence():
    # One window named twice, judged on evidence: 20 offered in the last 5 minutes.
    # 9 within T: SL 0.45, burn 0.55 / 0.2 = 2.75 >= 2, but the 99% one-sided Wilson upper
    # bound (z = 2.3263, z^2 = 5.4119) is (9 + 2.706) / 25.412 + 2.3263 * sqrt(9 * 11 / 20 +
    # 1.353) / 25.412 = 0.4607 + 0.2298 = 0.69, not below 1 - 2 * 0.2 = 0.6: not active.
    # 4 within T: SL 0.2, upper bound 0.2639 + 0.1953 = 0.46 < 0.6: active.
    pair = {"long": "5m", "short": "5m", "burn_rate": 2.0, "severity": "fast", "confidence": 0.99}
    fast = {"long": "5m", "severity": "fast", "short": "5m"}
    for in_sla, active, bound in ((9, False, "69%"), (4, True, "")):
        feed = Feed(only({"sla_burn": {"windows": [pair]}}))
        script = Script()
        for i in range(20):
            script.contact(f"c{i}", 10 * i, 5 if i < in_sla else 40)
        script.feed(feed)
        s = pick(feed.tick(260), "sla_burn", "voice", **fast)
        assert s.score == pytest.approx((1 - in_sla / 20) / 0.2)
        assert s.active is active
        if bound:
            doubt = f"{in_sla} of 20 within T over 5m could still be a service level of {bound}"
            assert doubt in s.summary


COLLAPSE = {"long": "5m", "severity": "page", "short": "5m"}


@pytest.mark.parametrize(
    ("offered", "in_sla", "active", "bound"),
    [
        # 0 of 30 within T: the 99.99% upper bound (z = 3.7190, z^2 = 13.8311) is
        # z^2 / (30 + z^2) = 13.8311 / 43.8311 = 31.6%, below 1 - 3 * 0.2 = 40%: a collapse
        (30, 0, True, ""),
        # 0 of 21: 13.8311 / 34.8311 = 39.7%: the fewest contacts that show it
        (21, 0, True, ""),
        # 0 of 20: 13.8311 / 33.8311 = 40.9%: one contact short
        (20, 0, False, "41%"),
        # 4 of 23 (17%): (4 + 6.9155) / 36.8311 + 3.7190 * sqrt(4 * 19 / 23 + 3.4578) / 36.8311
        # = 0.2964 + 0.2626 = 55.9%: a burst of late answers, not yet shown as a collapse
        (23, 4, False, "56%"),
        # 0 of 10: 13.8311 / 23.8311 = 58.0%: too few contacts to show it
        (10, 0, False, "58%"),
    ],
)
def test_the_default_collapse_pair_pages_a_5_minute_collapse_on_evidence(
    offered: int, in_sla: int, active: bool, bound: str
) -> None:
    feed = Feed(only({"sla_burn": {}}))  # the default pairs
    script = Script()
    for i in range(offered):  # all within the last 5 minutes
        script.contact(f"c{i}", 100 + 5 * i, 5 if i < in_sla else 40)
    script.feed(feed)
    signals = feed.tick(300)
    s = pick(signals, "sla_burn", "voice", **COLLAPSE)
    assert s.threshold == 3.0
    assert s.score == pytest.approx((1 - in_sla / offered) / 0.2)
    assert s.active is active
    if bound:
        assert (
            f"could still be a service level of {bound} (99.99% bound), not below 40%" in s.summary
        )
    else:
        assert (
            s.summary
            == f"voice burns its 80% service-level budget {s.score:g}x over 5m (threshold 3x)"
        )
    # here the hour holds only these 5 minutes: its page pair (no evidence asked) is active in
    # all three; after a good hour it would not be (test_both_windows_must_burn)
    assert pick(signals, "sla_burn", "voice", **PAGE).active


def test_a_shown_collapse_is_held_while_it_burns_with_thinner_traffic():
    # 30 contacts 5 s apart from 100, all answered 40 s late (140..285): the 21st at 240 makes
    # 0 of 21 within T, shown below 40% (99.99% upper bound 13.8311 / 34.8311 = 39.7%; at 239,
    # 0 of 20: 40.9%): active from 240, on evidence until 360 (HOLD_AFTER, 120 s). Then one
    # every 30 s from 275, also 40 s late (answered 315..585): the window never holds fewer
    # than 10 (at 600: 315..585, 10 late, upper bound 13.8311 / 23.8311 = 58%), still burning
    # 5x. Once shown, the pair stays active while it burns at 3 with min_volume (10) offered;
    # at 615 the window (315, 615] holds 9 (345..585): not judged, inactive.
    feed = Feed(only({"sla_burn": {}}))
    script = Script()
    for i in range(30):
        script.contact(f"c{i}", 100 + 5 * i, 40)
    for k in range(10):
        script.contact(f"thin{k}", 275 + 30 * k, 40)
    states = {}
    for t in range(616):
        script.feed(feed, t)
        s = pick(feed.tick(t), "sla_burn", "voice", **COLLAPSE)
        states[t] = (s.active, s.score, s.summary)
    assert states[239][0] is False
    assert states[240][:2] == (True, 5.0)
    assert all(states[t][0] for t in range(240, 615))
    assert states[600][2] == "voice burns its 80% service-level budget 5x over 5m (threshold 3x)"
    assert states[615][0] is False
    assert "9 offered contacts in a window (min_volume 10)" in states[615][2]
    # before HOLD_AFTER the evidence is still needed at every judgement: 21 late (active at
    # 240), then one answer within T at 245: 1 of 22, burn 4.8 but upper bound 43.9%: inactive
    early = Feed(only({"sla_burn": {}}))
    short = Script()
    for i in range(21):
        short.contact(f"c{i}", 100 + 5 * i, 40)
    short.contact("ok", 240, 5)
    short.feed(early, 240)
    assert pick(early.tick(240), "sla_burn", "voice", **COLLAPSE).active
    short.feed(early, 245)
    assert not pick(early.tick(245), "sla_burn", "voice", **COLLAPSE).active
    # the same thin stretch without the shown collapse before it is no evidence on its own
    fresh = Feed(only({"sla_burn": {}}))
    thin = Script()
    for k in range(10):
        thin.contact(f"thin{k}", 275 + 30 * k, 40)
    thin.feed(fresh)
    s = pick(fresh.tick(600), "sla_burn", "voice", **COLLAPSE)
    assert (s.active, s.score) == (False, 5.0)
    assert "0 of 10 within T over 5m could still be a service level of 58%" in s.summary


def test_tickets_at_risk_counts_per_sla():
    feed = Feed(only({"tickets_at_risk": {"min_count": 3}}))
    for i in range(4):
        feed.event("ticket.created", i, "email", ticket_id=f"t{i}")
    before = feed.tick(3000)
    assert not pick(before, "tickets_at_risk", "email", sla="first_response").active
    # first-response lead is 10% of 3600 s: at risk from created + 3240 (+5 s allowed lateness)
    signals = feed.tick(3250)
    fr = pick(signals, "tickets_at_risk", "email", sla="first_response")
    assert (fr.score, fr.threshold, fr.active) == (4, 3, True)
    assert pick(signals, "tickets_at_risk", "email", sla="resolution").score == 0
    feed.event("ticket.responded", 3260, "email", ticket_id="t0")
    feed.event("ticket.responded", 3261, "email", ticket_id="t1")
    # the responses apply once the watermark (5 s of lateness) is past them
    fr = pick(feed.tick(3262), "tickets_at_risk", "email", sla="first_response")
    assert (fr.score, fr.active) == (4, True)
    fr = pick(feed.tick(3267), "tickets_at_risk", "email", sla="first_response")
    assert (fr.score, fr.active) == (2, False)


def test_tickets_at_risk_default_fires_at_four():
    # the default min_count 4: first-response lead 10% of 3600 s, at risk from age 3240 s (+5 s
    # allowed lateness) until the breach at 3600 s. Tickets created at 0, 100, 200, 300.
    feed = Feed(only({"tickets_at_risk": {}}))
    for i in range(4):
        feed.event("ticket.created", 100 * i, "email", ticket_id=f"t{i}")
    # at 3450: ages 3450, 3350, 3250 at risk, 3150 not yet: 3 < 4
    fr = pick(feed.tick(3450), "tickets_at_risk", "email", sla="first_response")
    assert (fr.score, fr.threshold, fr.active) == (3, 4, False)
    # at 3560: ages 3560 .. 3260, all four at risk and none breached
    fr = pick(feed.tick(3560), "tickets_at_risk", "email", sla="first_response")
    assert (fr.score, fr.active) == (4, True)


def test_tickets_at_risk_stay_active_while_they_breach_unanswered():
    # Tickets created at 0, 100, 200, 300: all four at risk at 3560 (active). Each breaches at
    # its deadline (3600, 3700, ...; decided 5 s later, the allowed lateness) and leaves the
    # at-risk count, but still waits for a first response: the signal stays active while
    # those and the ones at risk are 4 or more, and lets go once a response brings them to 3.
    feed = Feed(only({"tickets_at_risk": {}}))
    for i in range(4):
        feed.event("ticket.created", 100 * i, "email", ticket_id=f"t{i}")
    assert pick(feed.tick(3560), "tickets_at_risk", "email", sla="first_response").active
    fr = pick(feed.tick(3610), "tickets_at_risk", "email", sla="first_response")
    assert (fr.active, fr.score) == (True, 4)
    assert fr.summary == (
        "email: 1 ticket past its first response deadline without one, 3 close to it"
    )
    # the hold survives a restart: the detector's state says the signal is active
    state: Any = feed.suite.export_state()
    assert state["detectors"]["tickets_at_risk"]["state"]["active"] == ["email"]
    fresh = Feed(only({"tickets_at_risk": {}}))
    fresh.suite.restore_state(state)
    again: Any = fresh.suite.export_state()
    assert again["detectors"]["tickets_at_risk"]["state"]["active"] == ["email"]
    fr = pick(feed.tick(3910), "tickets_at_risk", "email", sla="first_response")
    assert (fr.active, fr.score) == (True, 4)
    assert fr.summary.startswith("email: 4 tickets past their first response deadline")
    feed.event("ticket.responded", 3920, "email", ticket_id="t0")
    fr = pick(feed.tick(3930), "tickets_at_risk", "email", sla="first_response")
    assert (fr.active, fr.score) == (False, 0)
    assert fr.summary == "email: 0 tickets close to their first response deadline"


def test_tickets_past_their_deadline_alone_do_not_start_a_signal():
    # created 500 s apart: never more than one at risk at once, so never active; once all four
    # are past their deadline unanswered, that alone does not make the signal active
    feed = Feed(only({"tickets_at_risk": {}}))
    for i in range(4):
        feed.event("ticket.created", 500 * i, "email", ticket_id=f"t{i}")
    for at in range(3000, 5400, 60):
        assert not pick(feed.tick(at), "tickets_at_risk", "email", sla="first_response").active


def test_tickets_at_risk_of_their_next_reply_are_counted():
    # the gauge showed them (support_tickets_at_risk{sla="next_reply"}), the detector read only
    # first response and resolution: no warning before a next-reply breach
    channels = config()["channels"]
    channels["email"] = {
        "first_response_seconds": 60,
        "next_reply_seconds": 600,
        "next_reply_warning_seconds": 300,
        "queues": ["default"],
    }
    feed = Feed(only({"tickets_at_risk": {"min_count": 3}}), channels=channels)
    for i in range(3):
        feed.event("ticket.created", 0, "email", ticket_id=f"t{i}")
        feed.event("ticket.responded", 10, "email", ticket_id=f"t{i}")
        feed.event("ticket.customer_replied", 100, "email", ticket_id=f"t{i}")
    # next reply due at 700, at risk from 400 (+5 s allowed lateness)
    nr = pick(feed.tick(390), "tickets_at_risk", "email", sla="next_reply")
    assert (nr.score, nr.active) == (0, False)
    nr = pick(feed.tick(410), "tickets_at_risk", "email", sla="next_reply")
    assert (nr.score, nr.threshold, nr.active) == (3, 3, True)
    assert pick(feed.tick(410), "tickets_at_risk", "email", sla="first_response").score == 0
    slas = {dict(s.labels)["sla"] for s in feed.tick(420) if s.detector == "tickets_at_risk"}
    assert {"first_response", "next_reply"} <= slas
    assert "resolution" not in slas  # no resolution target: no signal


def test_the_default_collapse_pair_is_left_out_where_its_rate_is_past_the_ceiling():
    # target 0.6: the highest burn rate is 1 / 0.4 = 2.5 < 3; capped there the pair stands for
    # a service level of 0%, which no Wilson bound is ever below: without the service-level
    # CUSUM no signal for it at all; with it (the default) only the CUSUM can make it active
    channels = json.loads(json.dumps(CHANNELS))
    channels["voice"]["service_level_target"] = 0.6
    feed = Feed(only({"sla_burn": {"cusum": None}}), channels=channels)
    signals = [s for s in feed.tick(10) if s.detector == "sla_burn"]
    shorts = sorted((s.channel, dict(s.labels)["long"]) for s in signals)
    assert shorts == [
        ("chat", "1h"),
        ("chat", "1h"),
        ("chat", "5m"),
        ("voice", "1h"),
        ("voice", "1h"),
    ]
    # 30 contacts, every one missed (gave up within T after the short-abandon time): the
    # window test burns at the ceiling and never fires; the CUSUM adds ln 4 per outcome (the
    # usual share the prior 0.2, tuned for 0.8): 41.6, short of 10 x 3^2 = 90 before any hour
    # is learnt, past 10 with a dispersion prior of 1
    for prior, active in ((3.0, False), (1.0, True)):
        cusum = {"dispersion_prior": prior}
        feed = Feed(only({"sla_burn": {"cusum": cusum}}), channels=channels)
        feed.tick(0)  # the CUSUM counts outcomes from its first tick on
        for i in range(30):
            feed.event("contact.queued", i, "voice", contact_id=f"c{i}")
            feed.event("contact.abandoned", i + 10, "voice", contact_id=f"c{i}")
        signals = [s for s in feed.tick(60) if s.detector == "sla_burn" and s.channel == "voice"]
        capped = [s for s in signals if dict(s.labels)["long"] == "5m"]
        assert len(capped) == 1
        assert capped[0].score == 2.5  # at the ceiling: the window test never fires
        assert (capped[0].active, capped[0].sustained) == (active, active)
