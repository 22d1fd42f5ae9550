"""Customer-voice detectors (containment drop, negative sentiment, NPS drop) on real events.

Every decision is checked against numbers computed here: binomial tails summed exactly with
``math.comb`` (independent of ``detectors/binomial.py``) and the documented baseline
(warm-up blend of the learnt share with the prior).
"""
# ruff: noqa: E501 - the expected messages are kept whole so they can be searched for

from __future__ import annotations

import json
import math
from fractions import Fraction
from typing import Any

import pytest

from support_monitor.alerts.config import AlertSettings, default_rules
from support_monitor.alerts.rules import CompiledRule
from support_monitor.detectors import binomial
from support_monitor.detectors.signal import Signal
from support_monitor.detectors.suite import DetectorSuite
from support_monitor.monitor.config import parse_settings
from support_monitor.monitor.errors import ConfigError
from tests.detectors.detector_streams import Feed, config, only, pick


def exact_cdf(k: int, n: int, p: Fraction) -> Fraction:
    return sum((math.comb(n, i) * p**i * (1 - p) ** (n - i) for i in range(k + 1)), Fraction(0))


def exact_sf(k: int, n: int, p: Fraction) -> Fraction:
    return sum((math.comb(n, i) * p**i * (1 - p) ** (n - i) for i in range(k, n + 1)), Fraction(0))


# ---------------------------------------------------------------------- the tails


@pytest.mark.parametrize(
    ("n", "p"), [(10, "0.65"), (20, "0.6"), (30, "0.15"), (120, "0.2"), (7, "0.5")]
)
def test_binomial_tails_match_exact_sums(n: int, p: str) -> None:
    q = Fraction(p)
    for k in range(n + 1):
        assert binomial.cdf(k, n, float(q)) == pytest.approx(float(exact_cdf(k, n, q)), rel=1e-9)
        assert binomial.sf(k, n, float(q)) == pytest.approx(float(exact_sf(k, n, q)), rel=1e-9)


def test_critical_counts_by_hand() -> None:
    # 0 of 10 at 65%: 0.35^10 = 2.76e-5; 0 of 11: 9.65e-6 < 1e-5
    assert binomial.lower_critical(10, 0.65, 1e-5) == -1
    assert binomial.lower_critical(11, 0.65, 1e-5) == 0
    for n, p, alpha in (
        (20, Fraction(3, 5), 1e-5),
        (120, Fraction(1, 5), 1e-5),
        (30, Fraction(3, 20), 1e-3),
    ):
        low = binomial.lower_critical(n, float(p), alpha)
        assert exact_cdf(low, n, p) < alpha <= exact_cdf(low + 1, n, p)
        high = binomial.upper_critical(n, float(p), alpha)
        assert exact_sf(high, n, p) < alpha <= exact_sf(high - 1, n, p)


# ---------------------------------------------------------------------- containment drop

BOT = "chat"  # any channel can carry bot sessions; the test config has no chatbot channel


def _bot(feed: Feed, at: float, contained: int, escalated: int, tag: str) -> None:
    """Sessions spread over the 60 s before ``at``, contained ones first."""
    total = contained + escalated
    for i in range(total):
        outcome = "contained" if i < contained else "escalated"
        feed.event("bot.session_ended", at - 60 + 60 * (i + 1) / (total + 1), BOT,
                   session_id=f"{tag}-{i}", outcome=outcome)  # fmt: skip


def _containment(**block: Any) -> Feed:
    """alpha 1e-5 and recover_alpha 1e-3, the levels the hand computations below use (the
    defaults, 1e-6 and 1e-4, are checked with the default rules' texts)."""
    return Feed(only({"containment_drop": {"alpha": 1e-5, "recover_alpha": 1e-3, **block}}))


def test_containment_volume_guard_fire_hysteresis_and_resolve() -> None:
    feed = _containment()
    # 19 sessions, none contained: below min_volume 20, not judged
    _bot(feed, 600, 0, 19, "a")
    s = pick(feed.tick(600), "containment_drop", BOT)
    assert not s.active
    assert (
        s.summary
        == "chat self-service containment not judged: only 19 sessions in 5 min (min_volume 20)"
    )
    assert s.expected == pytest.approx(0.6)  # the prior: nothing learnt yet
    # the 20th: 0 of 20 at a usual 60% has P = 0.4^20 = 1.1e-8 < 1e-5, and 0 <= 0.6 x 60% x 20
    _bot(feed, 601, 0, 1, "b")
    s = pick(feed.tick(601), "containment_drop", BOT)
    assert s.active
    assert float(exact_cdf(0, 20, Fraction(3, 5))) == pytest.approx(0.4**20)
    assert s.summary == (
        "chat self-service containment 0% over 5 min (0 of 20 sessions contained) vs 60% usual "
        "(p = 1.1e-08 < 1e-05)"
    )
    # 4 of 20 contained: P(X <= 4) = 3.2e-4 is between alpha 1e-5 and recover_alpha 1e-3
    p4 = exact_cdf(4, 20, Fraction(3, 5))
    assert 1e-5 < p4 < 1e-3
    _bot(feed, 1000, 4, 16, "c")  # the first 21 slid out at 901 s
    s = pick(feed.tick(1000), "containment_drop", BOT)
    assert s.active, s.summary  # hysteresis: an active signal recovers only at 1e-3
    assert s.summary.endswith("(4 of 20 sessions contained) vs 60% usual (p = 3.2e-04 < 0.001)")
    # 12 of 20 (60%): back to usual, resolved
    _bot(feed, 1400, 12, 8, "d")
    s = pick(feed.tick(1400), "containment_drop", BOT)
    assert not s.active
    low = binomial.lower_critical(20, 0.6, 1e-5)
    assert s.summary == (
        "chat self-service containment 60% over 5 min (12 of 20 sessions contained) vs 60% usual "
        f"(fires at {low} or fewer)"
    )
    assert s.threshold == pytest.approx(low / 20)
    # a fresh 4 of 20 is not significant at alpha 1e-5: stays quiet without the hysteresis
    _bot(feed, 1800, 4, 16, "e")
    assert not pick(feed.tick(1800), "containment_drop", BOT).active


def test_containment_against_a_configured_floor() -> None:
    feed = _containment(floor=0.8, min_volume=10)
    # 4 of 10 against an 80% floor: P(X <= 4 | 10, 0.8) = 6.4e-3: not below alpha
    _bot(feed, 600, 4, 6, "a")
    s = pick(feed.tick(600), "containment_drop", BOT)
    assert not s.active
    assert s.expected == pytest.approx(0.8)
    # 1 of 10: P(X <= 1) = 4.2e-6 < 1e-5 (no max_ratio against a floor)
    _bot(feed, 1000, 1, 9, "b")
    s = pick(feed.tick(1000), "containment_drop", BOT)
    assert float(exact_cdf(1, 10, Fraction(4, 5))) == pytest.approx(4.2e-6, rel=0.01)
    assert s.active
    assert "vs the 80% floor (p = 4.2e-06 < 1e-05)" in s.summary


def test_containment_learns_hours_and_skips_flagged_ones() -> None:
    feed = _containment()
    feed.tick(60)  # hour 0 is the first (partial) period: never learnt
    for m in range(60, 120):  # hour 1: 10 batches of 3 contained + 1 escalated = 30 of 40
        if m % 6 == 0:
            _bot(feed, m * 60 + 59, 3, 1, f"h1-{m}")
        feed.tick(m * 60 + 59)
    feed.tick(2 * 3600 + 600)
    s = pick(feed.suite.last, "containment_drop", BOT)
    assert (
        s.summary
        == "chat self-service containment not judged: only 0 sessions in 5 min (min_volume 20)"
    )
    # one learnt hour (share 30/40) blended with the prior 0.6 over warmup_samples 3
    assert s.expected == pytest.approx((1 * 0.75 + 2 * 0.6) / 3)
    # hour 2: a bot failure (0 of 30) flags the hour, so 03:00 does not learn it
    _bot(feed, 2 * 3600 + 1200, 0, 30, "fail")
    assert pick(feed.tick(2 * 3600 + 1200), "containment_drop", BOT).active
    feed.tick(2 * 3600 + 3000)
    feed.tick(3 * 3600 + 600)
    s = pick(feed.suite.last, "containment_drop", BOT)
    # learnt, it would have given (2 x 30/70 + 0.6) / 3 = 0.486
    assert s.expected == pytest.approx((1 * 0.75 + 2 * 0.6) / 3)


# ---------------------------------------------------------------------- negative sentiment


def _scores(feed: Feed, at: float, negative: int, other: int, channel: str = "voice") -> None:
    total = negative + other
    for i in range(total):
        score = -0.8 if i < negative else 0.5
        feed.event("sentiment.scored", at - 60 + 60 * (i + 1) / (total + 1), channel, score=score)


def test_negative_sentiment_fires_at_the_exact_critical_count() -> None:
    prior = Fraction(1, 5)
    n = 40
    crit = binomial.upper_critical(n, 0.2, 1e-5)
    assert exact_sf(crit, n, prior) < 1e-5 <= exact_sf(crit - 1, n, prior)
    assert crit >= math.ceil(1.5 * 0.2 * n)  # the tail, not min_ratio, binds at 40 scores
    below = Feed(only({"negative_sentiment": {}}))
    _scores(below, 600, crit - 1, n - crit + 1)
    s = pick(below.tick(600), "negative_sentiment", "voice")
    assert not s.active
    assert s.summary == (
        f"voice negative sentiment {(crit - 1) / n:.0%} over 1 h ({crit - 1} of {n} scores) vs 20% "
        f"usual (fires at {crit} or more)"
    )
    assert s.threshold == pytest.approx(crit / n)
    at = Feed(only({"negative_sentiment": {}}))
    _scores(at, 600, crit, n - crit)
    s = pick(at.tick(600), "negative_sentiment", "voice")
    assert s.active
    p = float(exact_sf(crit, n, prior))
    assert s.summary == (
        f"voice negative sentiment {crit / n:.0%} over 1 h ({crit} of {n} scores) vs 20% usual "
        f"(p = {p:.1e} < 1e-05)"
    )


def test_negative_sentiment_volume_guard_and_min_count() -> None:
    feed = Feed(only({"negative_sentiment": {"min_volume": 5, "min_count": 8}}))
    # 7 of 7 negative: P = 0.2^7 = 1.3e-5 ... and below min_count 8 anyway
    _scores(feed, 600, 7, 0)
    assert not pick(feed.tick(600), "negative_sentiment", "voice").active
    _scores(feed, 660, 1, 0)  # 8 of 8: 0.2^8 = 2.6e-6 < 1e-5 and 8 >= min_count
    assert pick(feed.tick(660), "negative_sentiment", "voice").active
    # a channel that never had a score has no row at all
    assert [s for s in feed.suite.last if s.channel == "chat"] == []


# ---------------------------------------------------------------------- NPS drop


def _nps(feed: Feed, at: float, detractors: int, passives: int, promoters: int) -> None:
    scores = [3] * detractors + [7] * passives + [10] * promoters
    for i, score in enumerate(scores):
        feed.event("survey.answered", at - 60 + 60 * (i + 1) / (len(scores) + 1), "email",
                   survey="nps", score=score)  # fmt: skip


def test_nps_drop_needs_significance_and_the_floor() -> None:
    feed = Feed(only({"nps_drop": {"floor": -40}}))
    # 13 detractors, 4 passives, 3 promoters of 20: NPS -50, detractors 65% vs the prior 25%,
    # but P(X >= 13 | 20, 0.25) = 1.8e-4 is not below alpha 1e-4; 14 would be (3.0e-5)
    assert exact_sf(14, 20, Fraction(1, 4)) < 1e-4 < exact_sf(13, 20, Fraction(1, 4))
    _nps(feed, 600, 13, 4, 3)
    s = pick(feed.tick(600), "nps_drop", "email")
    assert not s.active
    assert s.expected == pytest.approx(0.25)
    assert s.summary == (
        "email NPS -50 over 1 h (20 answers, 3 promoters, 13 detractors) vs +20 usual; "
        "detractors 65% vs 25% usual (fires at 14 or more)"
    )
    # one more detractor: 14 of 21, P(X >= 14 | 21, 0.25) = 6.8e-5 < 1e-4; NPS -52 < -40
    _nps(feed, 660, 1, 0, 0)
    assert exact_sf(14, 21, Fraction(1, 4)) < 1e-4
    s = pick(feed.tick(660), "nps_drop", "email")
    assert s.active
    assert s.summary == (
        "email NPS -52 over 1 h (21 answers, 3 promoters, 14 detractors) vs +20 usual; "
        "detractors 67% vs 25% usual (p = 6.8e-05 < 0.0001)"
    )
    # the same significant 14 of 21 detractors with 7 promoters: NPS -33, above the floor
    other = Feed(only({"nps_drop": {"floor": -40}}))
    _nps(other, 600, 14, 0, 7)
    s = pick(other.tick(600), "nps_drop", "email")
    assert not s.active
    assert s.summary.endswith("(p = 6.8e-05 < 0.0001, but not below the -40 floor)")
    # without a floor the count test alone decides
    free = Feed(only({"nps_drop": {}}))
    _nps(free, 600, 14, 0, 7)
    assert pick(free.tick(600), "nps_drop", "email").active


# ---------------------------------------------------------------------- config, rules, state


@pytest.mark.parametrize(
    ("block", "needle"),
    [
        (
            {"containment_drop": {"window": "15m"}},
            "detectors.containment_drop.window: '15m' is not a configured window",
        ),
        (
            {"containment_drop": {"channels": ["sms"]}},
            "detectors.containment_drop.channels: 'sms' is not a configured channel",
        ),
        (
            {"containment_drop": {"alpha": 1e-3, "recover_alpha": 1e-4}},
            "recover_alpha: 0.0001 is below alpha 0.001",
        ),
        ({"containment_drop": {"max_ratio": 1.2}}, "max_ratio"),
        (
            {"negative_sentiment": {"min_ratio": 5, "prior": 0.25}},
            "detectors.negative_sentiment.min_ratio: 5 x prior 0.25 is 100% or more: it can never fire",
        ),
        (
            {"nps_drop": {"prior_detractors": 0.6, "prior_promoters": 0.5}},
            "detectors.nps_drop.prior_promoters: 0.5 + prior_detractors 0.6 is above 1",
        ),
        ({"nps_drop": {"floor": -100}}, "detectors.nps_drop.floor: NPS is never below -100"),
        ({"nps_drop": {"timezone": "Mars/Olympus"}}, "unknown time zone 'Mars/Olympus'"),
    ],
)
def test_config_refusals_name_the_key(block: dict[str, Any], needle: str) -> None:
    with pytest.raises(ConfigError) as info:
        parse_settings(config(block))
    assert needle in str(info.value)


def test_default_rules_and_scopes() -> None:
    settings = parse_settings({})
    scopes = settings.detectors.scopes(settings.channels, settings.windows)
    assert scopes["containment_drop"] == ["voice", "chat", "email", "chatbot"]
    rules = {r.alert: r for r in default_rules()}
    assert rules["ContainmentDrop"].detector == "containment_drop"
    assert rules["ContainmentDrop"].severity == "critical"
    assert rules["NegativeSentimentHigh"].detector == "negative_sentiment"
    assert rules["NpsDrop"].detector == "nps_drop"


def _stream(feed: Feed, until_minute: int, start_minute: int = 0) -> list[list[Signal]]:
    """Two healthy hours, then a failing bot and a sentiment surge; a tick per minute."""
    out = []
    for m in range(start_minute, until_minute):
        failing = m >= 150
        _bot(feed, m * 60 + 59, 1 if failing else 4, 5 if failing else 2, f"m{m}")
        _scores(feed, m * 60 + 59, 3 if failing else 1, 3 if failing else 5)
        out.append(list(feed.tick(m * 60 + 59)))
    return out


def test_restored_state_gives_the_same_signals() -> None:
    block = only({"containment_drop": {}, "negative_sentiment": {}})
    whole = Feed(block)
    expected = _stream(whole, 200)
    first = Feed(block)
    _stream(first, 140)
    state = json.loads(json.dumps(first.suite.export_state()))
    # a restarted daemon: engine rebuilt by replaying the same events, detectors from the state
    second = Feed(block)
    _stream(second, 140)
    second.suite = DetectorSuite(
        second.settings.detectors, second.settings.channels, second.settings.window_seconds
    )
    second.suite.restore_state(state)
    rest = _stream(second, 200, 140)
    assert rest == expected[140:]
    assert any(s.active for s in rest[-1] if s.detector == "containment_drop")
    # the learnt baseline came along: a fresh suite would judge against the 60% prior
    restored = pick(rest[-1], "containment_drop", BOT)
    assert restored.expected != pytest.approx(0.6)


def test_default_rule_texts_carry_the_numbers() -> None:
    feed = Feed(only({"containment_drop": {}, "negative_sentiment": {}, "nps_drop": {}}))
    _bot(feed, 600, 1, 19, "a")  # 1 of 20: P(X <= 1 | 20, 0.6) = 3.4e-7 < 1e-6
    _scores(feed, 600, 14, 6)  # 14 of 20 negative at a usual 20%: P(X >= 14) = 1.8e-6
    _nps(feed, 600, 15, 3, 2)  # 15 of 20 detractors at a usual 25%
    signals = feed.tick(600)
    rules = {r.detector: r for r in default_rules()}
    settings = AlertSettings(rules=tuple(rules.values()))
    texts = {}
    summaries = {}  # the detectors' own sentences (no longer part of the default alert texts)
    for detector, channel in (
        ("containment_drop", BOT),
        ("negative_sentiment", "voice"),
        ("nps_drop", "email"),
    ):
        s = pick(signals, detector, channel)
        assert s.active, s.summary
        compiled = CompiledRule(rules[detector], settings)
        texts[detector] = compiled.annotations(s, compiled.labels_for(s))
        summaries[detector] = s.summary
    assert (
        texts["containment_drop"]["summary"]
        == "chat: the bot resolves only 5% of sessions, usually 60%"
    )
    assert summaries["containment_drop"].endswith(
        "chat self-service containment 5% over 5 min (1 of 20 sessions contained) vs 60% usual (p = 3.4e-07 < 1e-06)"
    )
    p = float(exact_sf(14, 20, Fraction(1, 5)))
    assert f"{p:.1e}" == "1.8e-06"
    assert (
        texts["negative_sentiment"]["summary"]
        == "voice: 70% of conversations negative, usually 20%"
    )
    assert summaries["negative_sentiment"].endswith(
        "voice negative sentiment 70% over 1 h (14 of 20 scores) vs 20% usual (p = 1.8e-06 < 1e-05)"
    )
    assert texts["nps_drop"]["summary"] == (
        "email: 75% of survey answers are detractors, usually 25%"
    )
    assert (
        "email NPS -65 over 1 h (20 answers, 2 promoters, 15 detractors) vs +20 usual"
        in summaries["nps_drop"]
    )


def test_containment_ratio_condition_has_hysteresis_too() -> None:
    feed = _containment()
    p = Fraction(3, 5)  # the prior: nothing learnt yet
    # at 150 sessions the tail is far below alpha at 54, so max_ratio binds: 0.6 x 0.6 x 150 = 54
    assert exact_cdf(54, 150, p) < Fraction(1, 10**8)
    _bot(feed, 600, 55, 95, "a")
    assert not pick(feed.tick(600), "containment_drop", BOT).active  # 55 > 54
    fresh = _containment()
    _bot(fresh, 600, 54, 96, "b")
    assert pick(fresh.tick(600), "containment_drop", BOT).active
    # once active: halfway to usual (0.8 x 0.6 x 150 = 72) and the tail below recover_alpha
    relaxed = max(k for k in range(151) if exact_cdf(k, 150, p) < Fraction(1, 1000))
    assert relaxed < 72
    _bot(fresh, 1000, relaxed, 150 - relaxed, "c")
    s = pick(fresh.tick(1000), "containment_drop", BOT)
    assert s.active, s.summary
    _bot(fresh, 1400, relaxed + 1, 149 - relaxed, "d")
    s = pick(fresh.tick(1400), "containment_drop", BOT)
    assert not s.active
    assert s.summary.endswith("vs 60% usual (fires at 54 or fewer)")
