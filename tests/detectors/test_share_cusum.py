"""The binomial CUSUM on unsatisfied ratings (``detectors.share_cusum``) and the CSAT threshold
that carries it, with hand-computed numbers.

With ratio 2 and the prior 0.25 (nothing learnt): p1 = 0.5, a bad rating adds ln 2 = 0.6931472,
a good one ln(0.5 / 0.75) = -0.4054651; threshold 2: capped at 2.6931472, released below
max(2 - 0.6931472, 1) = 1.3068528.
"""

from __future__ import annotations

import math

import pytest

from support_monitor.detectors.share_cusum import HourOfWeek, ShareCusum
from support_monitor.detectors.share_cusum_config import ShareCusumSettings
from support_monitor.detectors.suite import detector_fingerprint
from support_monitor.monitor.config import config_notes, parse_settings
from support_monitor.monitor.errors import ConfigError
from tests.detectors.detector_streams import T0, Feed, config, only, pick

H = 3600.0
SETTINGS = ShareCusumSettings(ratio=2.0, threshold=2.0, prior=0.25)
UTC = HourOfWeek("UTC")


def _cusum() -> ShareCusum:
    c = ShareCusum(SETTINGS)
    c.step(T0, (0, 0), UTC)  # the first tick only starts the count
    return c


def test_bad_ratings_raise_it_to_the_threshold_and_good_ones_release_it() -> None:
    c = _cusum()
    assert c.step(T0 + 10, (2, 2), UTC) is False
    assert c.stat == pytest.approx(1.3862944)
    assert c.step(T0 + 20, (3, 3), UTC) is True  # 3 ln 2 = 2.0794415
    assert c.stat == pytest.approx(2.0794415)
    assert c.step(T0 + 30, (4, 3), UTC) is True  # 1.6739764: above the release 1.3068528
    assert c.stat == pytest.approx(1.6739764)
    assert c.step(T0 + 40, (5, 3), UTC) is False  # 1.2685113
    assert c.stat == pytest.approx(1.2685113)


def test_it_is_capped_and_floored() -> None:
    c = _cusum()
    c.step(T0 + 10, (6, 6), UTC)  # 6 ln 2 = 4.16 capped at 2 + ln 2
    assert c.stat == pytest.approx(2.6931472)
    c.step(T0 + 20, (16, 6), UTC)  # 2.6931472 - 10 x 0.4054651 < 0
    assert c.stat == 0.0


def test_ratings_count_once_whatever_the_ticks() -> None:
    one = _cusum()
    one.step(T0 + 30, (4, 3), UTC)
    many = _cusum()
    for at, counts in ((10, (1, 1)), (15, (1, 1)), (20, (3, 2)), (30, (4, 3)), (35, (4, 3))):
        many.step(T0 + at, counts, UTC)
    # batched: 3 ln 2 - 0.4054651 = 1.6739764; one by one the floor never binds: the same
    assert one.stat == pytest.approx(1.6739764)
    assert many.stat == pytest.approx(1.6739764)


def test_a_learnt_hour_moves_the_usual_share() -> None:
    c = _cusum()  # at T0 (Monday 00:00): hour 0 is not seen from its start
    c.step(T0 + H, (0, 0), UTC)  # hour 1 starts
    c.step(T0 + 2 * H, (10, 2), UTC)  # hour 1 ends with 10 ratings, 2 bad: learnt in slot 1
    # the 10 ratings were judged at the prior: 2 ln 2 - 8 x 0.4054651 < 0
    assert c.stat == 0.0
    # all-hours share: the prior 0.25 counts as 100 ratings: (2 + 25) / (10 + 100) = 0.2454545;
    # one learnt slot shows no spread between slots: every slot has the all-hours share
    assert c.usual(1) == pytest.approx(0.2454545)
    assert c.usual(0) == pytest.approx(0.2454545)


def test_an_hour_it_was_active_in_is_not_learnt_and_a_silent_hour_resets_it() -> None:
    c = _cusum()
    c.step(T0 + H, (0, 0), UTC)
    c.step(T0 + H + 10, (3, 3), UTC)
    assert c.active
    c.step(T0 + 2 * H, (3, 3), UTC)  # hour 1 was active: not learnt
    assert c.baseline.slots == {}
    assert c.active  # nothing new: still 2.0794415
    c.step(T0 + 3 * H, (3, 3), UTC)  # hour 2 had no rating: the evidence is stale
    assert c.stat == 0.0
    assert not c.active


def test_the_usual_share_never_makes_a_rating_impossible() -> None:
    c = ShareCusum(ShareCusumSettings(ratio=3.0, threshold=10.0, prior=0.5))
    c.step(T0, (0, 0), UTC)
    c.step(T0 + 10, (1, 1), UTC)  # p1 = min(1.5, 0.99): ln(0.99 / 0.5) = 0.6830968
    assert c.stat == pytest.approx(0.6830968)


def test_state_survives_dump_and_load() -> None:
    c = _cusum()
    c.step(T0 + H, (0, 0), UTC)
    c.step(T0 + 2 * H, (10, 2), UTC)
    c.step(T0 + 2 * H + 10, (12, 4), UTC)
    copy = ShareCusum(SETTINGS)
    copy.load(c.dump())
    for x in (c, copy):
        x.step(T0 + 2 * H + 20, (13, 5), UTC)
    assert copy.stat == c.stat
    assert copy.stat > 0
    assert copy.usual(0) == c.usual(0)
    with pytest.raises(ValueError, match="width"):
        ShareCusum(SETTINGS).load([*c.dump()[:-1], {"glob": [[0, 0]], "slots": []}])


CSAT = {
    "name": "csat",
    "metric": "support_csat_ratio",
    "window": "1h",
    "op": "<",
    "value": 0.5,
    "confidence": 0.999,
    "channels": ["email"],
    "cusum": {"ratio": 2, "threshold": 2, "prior": 0.25},
}


def test_the_cusum_makes_the_csat_threshold_active() -> None:
    feed = Feed(only({"thresholds": [CSAT]}))
    assert not pick(feed.tick(5), "csat", "email").active
    for i in range(3):
        feed.event("ticket.rated", 10 + i, "email", rating=2)
    s = pick(feed.tick(20), "csat", "email")
    assert s.active  # 3 ratings: the window is not judged (min_volume 10)
    assert s.sustained  # active by the CUSUM alone
    assert s.score == 0.0
    assert s.threshold == 0.5
    assert s.expected == 0.75  # the usual satisfied share: 1 - the prior 0.25, nothing learnt
    assert s.summary == (
        "support_csat_ratio{window=1h} on email not judged: only 3 ratings in 1h "
        "(min_volume 10); unsatisfied ratings rising: CUSUM 2.1 (active at 2, tuned for 2x "
        "the usual 25%)"
    )
    feed.event("ticket.rated", 21, "email", rating=5)
    feed.event("ticket.rated", 22, "email", rating=4)
    s = pick(feed.tick(30), "csat", "email")  # 2.0794415 - 2 x 0.4054651 = 1.2685113
    assert not s.active


def test_the_cusum_state_survives_a_snapshot_of_the_suite() -> None:
    feed = Feed(only({"thresholds": [CSAT]}))
    feed.tick(5)
    feed.event("ticket.rated", 10, "email", rating=1)
    feed.event("ticket.rated", 11, "email", rating=1)
    feed.tick(20)  # 2 ln 2 = 1.3862944: not yet
    state = feed.suite.export_state()
    again = Feed(only({"thresholds": [CSAT]}))
    for f in (feed, again):
        f.event("ticket.rated", 10, "email", rating=1)
        f.event("ticket.rated", 11, "email", rating=1)
    again.suite.restore_state(state)
    for f in (feed, again):
        f.event("ticket.rated", 30, "email", rating=3)
    # restored: the third bad rating reaches 2.0794415, as in the suite that ran on
    assert pick(feed.tick(40), "csat", "email").active
    assert pick(again.tick(40), "csat", "email").active


def test_without_a_cusum_there_is_no_usual_share() -> None:
    plain = {k: v for k, v in CSAT.items() if k != "cusum"}
    feed = Feed(only({"thresholds": [plain]}))
    feed.event("ticket.rated", 10, "email", rating=2)
    assert math.isnan(pick(feed.tick(20), "csat", "email").expected)


def test_cusum_only_on_csat_below() -> None:
    with pytest.raises(ConfigError, match=r"thresholds\[0\]\.cusum: only support_csat_ratio"):
        Feed(only({"thresholds": [{**CSAT, "op": ">"}]}))
    with pytest.raises(ConfigError, match=r"thresholds\[0\]\.cusum: only support_csat_ratio"):
        Feed(only({"thresholds": [{**CSAT, "metric": "support_abandon_ratio"}]}))


SENTIMENT = {
    "channels": ["email"],
    "prior": 0.25,
    "cusum_ratio": 2,
    "cusum_threshold": 2,
}


def test_the_cusum_makes_negative_sentiment_active() -> None:
    feed = Feed(only({"negative_sentiment": SENTIMENT}))
    feed.tick(5)
    for i in range(3):
        feed.event("sentiment.scored", 10 + i, "email", score=-0.9)
    s = pick(feed.tick(20), "negative_sentiment", "email")
    assert s.active  # 3 scores: the window is not judged (min_volume 20)
    assert s.sustained  # active by the CUSUM alone: alert texts say "a sustained rise"
    assert s.summary == (
        "email negative sentiment not judged: only 3 scores in 1 h (min_volume 20); rising: "
        "CUSUM 2.1 (active at 2, tuned for 2x the usual 25%)"
    )
    feed.event("sentiment.scored", 21, "email", score=0.5)
    feed.event("sentiment.scored", 22, "email", score=0.0)
    assert not pick(feed.tick(30), "negative_sentiment", "email").active  # 1.2685113


def test_a_rise_the_sentiment_cusum_finds_is_against_its_own_usual_share() -> None:
    """The two baselines learn one hour of 40 neutral scores differently: the CUSUM pools by
    counts, the prior weighing 100 scores, (0 + 100 x 0.25) / (40 + 100) = 25/140 for every
    hour; the window test blends warm-up hours, 1/9 for that hour's slot. A page says the
    share the CUSUM found the rise against."""
    feed = Feed(only({"negative_sentiment": SENTIMENT}))
    feed.tick(5)
    feed.tick(3605)  # the CUSUM sees hour 1 from its start
    for i in range(40):
        feed.event("sentiment.scored", 3660 + i, "email", score=0.0)
    feed.tick(7205)  # hour 1 learnt
    for i in range(3):
        feed.event("sentiment.scored", 7210 + i, "email", score=-0.9)
    s = pick(feed.tick(7220), "negative_sentiment", "email")
    assert s.active  # 3 ln 2 = 2.0794415 >= 2; the window test needs 5 negative scores
    assert s.sustained
    assert s.expected == pytest.approx(25 / 140, rel=1e-12)


def test_negative_sentiment_cusum_state_survives_a_snapshot_and_can_be_off() -> None:
    feed = Feed(only({"negative_sentiment": SENTIMENT}))
    feed.tick(5)
    feed.event("sentiment.scored", 10, "email", score=-0.9)
    feed.event("sentiment.scored", 11, "email", score=-0.9)
    feed.tick(20)  # 1.3862944
    again = Feed(only({"negative_sentiment": SENTIMENT}))
    again.event("sentiment.scored", 10, "email", score=-0.9)
    again.event("sentiment.scored", 11, "email", score=-0.9)
    again.suite.restore_state(feed.suite.export_state())
    for f in (feed, again):
        f.event("sentiment.scored", 30, "email", score=-0.5)
        assert pick(f.tick(40), "negative_sentiment", "email").active  # 2.0794415
    off = Feed(only({"negative_sentiment": {**SENTIMENT, "cusum_threshold": 0}}))
    off.tick(5)
    for i in range(3):
        off.event("sentiment.scored", 10 + i, "email", score=-0.9)
    assert not pick(off.tick(20), "negative_sentiment", "email").active


def test_thresholds_without_a_cusum_keep_their_state_fingerprint() -> None:
    # The digests main computes without the ``cusum`` key (checked at commit faa2a40, the
    # channels in the config's order as snapshots digested them until 2026-12-05; the
    # default config of detector_streams): a snapshot taken there restores their state here.
    suite = Feed().suite
    prints = {d.name: detector_fingerprint(d, ordered=True) for d in suite.detectors}
    assert prints["abandon_rate"] == "933b50b205aa5a05"
    # it has a sustained level now (issue 11): its hysteresis flags start afresh
    assert prints["longest_wait"] != "b7485e73acbe2cba"
    assert prints["csat_low"] != "1b3f9b2022567746"  # it has a CUSUM now: its state starts afresh


def test_an_old_warmup_samples_loads_with_a_note_and_a_negative_prior_trials_is_refused() -> None:
    settings = parse_settings(
        config(only({"thresholds": [{**CSAT, "cusum": {"warmup_samples": 3}}]}))
    )
    assert (
        "detectors.thresholds[0].cusum.warmup_samples: no longer read (the usual share is "
        "pooled over ratings: prior_trials); remove it"
    ) in config_notes(settings)
    with pytest.raises(ConfigError, match=r"thresholds\[0\]\.cusum\.prior_trials"):
        Feed(only({"thresholds": [{**CSAT, "cusum": {"prior_trials": -1}}]}))
