"""The CUSUM baseline (``detectors.complaint_cusum``): seasonal product, shrinkage towards the
hour-of-week slot where the two disagree, the prior floor of the first day, and the second
(8x) complaint CUSUM, with hand-computed numbers."""

from __future__ import annotations

import pytest

from support_monitor.detectors.complaint_cusum import RateCusum
from tests.detectors.detector_streams import Feed, only, pick


def _monday_morning(noisy: float) -> RateCusum:
    """Hour-of-day means 4/h (5 samples) at 08-14; Monday's hour-of-week slots 8/h (1 sample)
    at 08-14, except 11:00 (slot 11) with ``noisy``."""
    c = RateCusum(ratio=4.0, threshold=10.0, prior_per_hour=6.0, relearn_hours=24)
    for hour in range(8, 15):
        c.day[hour] = [4.0, 5.0]
        c.week[hour] = [8.0, 1.0]
    c.week[11] = [noisy, 1.0]
    return c


def test_a_count_within_its_noise_gives_the_seasonal_blend() -> None:
    c = _monday_morning(10.0)
    # factor over slots 8..14: (10 + 6 x 8 + 10) / (10 + 7 x 4) = 68 / 38 = 1.7894737
    assert c.day_factor(11) == pytest.approx(68 / 38)
    # seasonal 4 x 1.7894737 = 7.1578947; blend (1 x 10 + 5 x 7.1578947) / 6 = 7.6315789.
    # gap 2.8421053, squared 8.0776; variances 7.6315789 (n 1) + 1.5263158 (n 5) = 9.1578947
    # exceed it: no bias, weight 1.5263158 / 9.1578947 = 1/6 on the slot: the blend itself
    assert c.per_hour(11) == pytest.approx(7.6315789, rel=1e-7)


def test_a_count_far_outside_its_noise_is_mostly_trusted() -> None:
    c = _monday_morning(14.0)
    # factor (10 + 48 + 14) / 38 = 1.8947368, seasonal 7.5789474, blend 8.6491228;
    # gap 6.4210526, squared 41.229917; bias 41.229917 - 8.6491228 - 1.7298246 = 30.850970;
    # weight (30.850970 + 1.7298246) / 41.229917 = 0.79022216:
    # 7.5789474 + 0.79022216 x 6.4210526 = 12.653005
    assert c.per_hour(11) == pytest.approx(12.653005, rel=1e-7)


def test_margin_adds_standard_errors_of_the_estimate() -> None:
    c = _monday_morning(10.0)
    c.margin = 0.5
    c.cached = (-1, 0.0)
    # 7.6315789 + 0.5 x sqrt(1/6 x 7.6315789) = 7.6315789 + 0.5 x 1.1277989 = 8.1954783
    assert c.per_hour(11) == pytest.approx(8.1954783, rel=1e-7)


def test_an_unlearned_hour_is_judged_at_least_against_the_prior() -> None:
    c = RateCusum(ratio=4.0, threshold=10.0, prior_per_hour=6.0, relearn_hours=24)
    c.total = [2.0, 30.0]
    c.recent = [3.0, 30.0]
    assert c.per_hour(9) == 6.0  # the night's means are below the prior
    c.recent = [9.0, 31.0]
    c.cached = (-1, 0.0)
    assert c.per_hour(9) == 9.0


def test_the_8x_cusum_pages_a_large_rise_before_the_4x_one() -> None:
    # one complaint every 2 minutes (30/h) from the start; nothing learned: usual rate = the
    # prior 4/h. 8x CUSUM: each complaint adds ln 8 = 2.0794415, 120 s take 7 x 4 / 3600 x 120 =
    # 0.9333333: after the j-th complaint (t = 120 j) S = 1.1461082 j >= 9 at j = 8 (t = 960).
    # The 4x CUSUM: 1.3862944 - 0.4 = 0.9862944 per complaint, >= 10 only at j = 11.
    # The window test is out of the way (min_count 1000).
    feed = Feed(
        only({"complaint_spike": {"channels": ["voice"], "prior_per_hour": 4, "min_count": 1000}})
    )
    first = None
    for t in range(0, 1500, 60):
        if t and t % 120 == 0:
            feed.event("complaint.received", t, "voice", category="billing")
        s = pick(feed.tick(t), "complaint_spike", "voice")
        if s.active and first is None:
            first = t
            assert "CUSUM for 8x the usual rate at 9" in s.summary
            assert s.sustained  # the window test (min_count 1000) did not make it active
    assert first == 960
