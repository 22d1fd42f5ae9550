"""The service-level CUSUM (``detectors/sl_cusum.py``) and its place in ``sla_burn``.

Every expected number is worked out by hand in the comments, from the formulas of the module
docstring, not read back from the code."""

from __future__ import annotations

import math
from collections.abc import Callable

import pytest

from support_monitor.alerts.config import AlertSettings, default_rules
from support_monitor.alerts.facts import channel_facts
from support_monitor.alerts.rules import CompiledRule
from support_monitor.alerts.runtime import Alerting
from support_monitor.detectors.burn import SlaBurnDetector
from support_monitor.detectors.share_cusum import HourOfWeek
from support_monitor.detectors.share_cusum_config import ServiceLevelCusumSettings
from support_monitor.detectors.sl_cusum import ServiceLevelCusum, dispersion_of
from support_monitor.monitor.config import parse_settings
from support_monitor.monitor.engine.engine import Engine
from support_monitor.monitor.errors import ConfigError
from support_monitor.monitor.stats import DaemonStats
from tests.detectors.detector_streams import T0, Feed, Script, config, only, pick

HOUR = 3600.0
SLOT = HourOfWeek("UTC")


def test_dispersion_of_an_hour_by_hand() -> None:
    # 30 outcomes, 6 bad: p = 0.2, n p (1 - p) = 1.6 per block of 10; expected 2 bad a block:
    # (1 - 2)^2 / 1.6 + (1 - 2)^2 / 1.6 + (4 - 2)^2 / 1.6 = 0.625 + 0.625 + 2.5 = 3.75 on 2 dof
    chi2, dof = dispersion_of([[10, 1], [10, 1], [10, 4], [0, 0], [0, 0], [0, 0]]) or (0, 0)
    assert chi2 == pytest.approx(3.75)
    assert dof == 2
    assert dispersion_of([[5, 1], [5, 1], [5, 1], [0, 0], [0, 0], [0, 0]]) is None  # 15 < 20
    assert dispersion_of([[30, 0], [30, 0], [0, 0], [0, 0], [0, 0], [0, 0]]) is None  # none bad
    assert dispersion_of([[30, 3], [0, 0], [0, 0], [0, 0], [0, 0], [0, 0]]) is None  # one block


def _hour(c: ServiceLevelCusum, start: float, per_block: list[tuple[int, int]], n: int, b: int):
    """Step ``c`` through the hour from ``start`` with (outcomes, bad) added once per block;
    returns the cumulative counts after it."""
    for j, (dn, db) in enumerate(per_block):
        n, b = n + dn, b + db
        c.step(start + j * 600 + 300, (n, b), SLOT)
    return n, b


def test_the_dispersion_is_learnt_from_whole_hours() -> None:
    settings = ServiceLevelCusumSettings()  # prior 3 worth 20 dof, decay 0.99
    c = ServiceLevelCusum(settings)
    assert c.phi == 3.0
    assert c.threshold == pytest.approx(10 * 9)
    start = T0 + 10 * HOUR
    counts = _hour(c, start, [(0, 0)] * 6, 0, 0)  # the first tick: counting starts here
    # an hour of six equal blocks (10 outcomes, 1 bad each): X2 = 0 on 5 dof
    counts = _hour(c, start + HOUR, [(10, 1)] * 6, *counts)
    c.step(start + 2 * HOUR + 1, counts, SLOT)  # the next hour's first tick closes it
    # chi2 = 0.99 * 60 + 0 = 59.4; dof = 0.99 * 20 + 5 = 24.8; phi = 59.4 / 24.8
    assert c.phi == pytest.approx(59.4 / 24.8)
    assert c.threshold == pytest.approx(10 * (59.4 / 24.8) ** 2)
    # an hour whose 6 bad outcomes all fall in one block of 10 (60 outcomes, p = 0.1):
    # 5 blocks with (0 - 1)^2 / 0.9 and one with (6 - 1)^2 / 0.9: X2 = 30 / 0.9 on 5 dof
    counts = _hour(c, start + 2 * HOUR, [(10, 6)] + [(10, 0)] * 5, *counts)
    c.step(start + 3 * HOUR + 1, counts, SLOT)
    chi2 = 0.99 * 59.4 + 30 / 0.9
    dof = 0.99 * 24.8 + 5
    assert c.phi == pytest.approx(chi2 / dof)


def test_an_hour_the_cusum_was_active_in_is_not_learnt() -> None:
    settings = ServiceLevelCusumSettings(dispersion_prior=1.0, prior=0.2)
    c = ServiceLevelCusum(settings)
    start = T0 + 10 * HOUR
    c.step(start, (0, 0), SLOT)
    # every outcome bad: each adds ln(p1 / p0) = ln(0.8 / 0.2) = ln 4 to the statistic; the
    # threshold is 10 x 1^2, reached at the 8th (7 ln 4 = 9.70, 8 ln 4 = 11.09)
    for k in range(1, 8):
        assert not c.step(start + k, (k, k), SLOT)
    assert c.step(start + 8, (8, 8), SLOT)
    counts = _hour(c, start + 600, [(10, 1)] * 5, 8, 8)
    c.step(start + HOUR + 1, counts, SLOT)  # the hour closes, flagged
    assert (c.chi2, c.dof) == (20.0, 20.0)  # the prior alone, not decayed


def test_a_dispersed_channel_needs_more_evidence() -> None:
    # The same run of bad outcomes on a channel at phi 1 and at phi 2 (priors that weigh as
    # good as fixed): threshold 10 -> 8 bad outcomes (8 ln 4 = 11.09 >= 10); threshold
    # 10 x 2^2 = 40 -> 29 (28 ln 4 = 38.8, 29 ln 4 = 40.2)
    firsts = []
    for phi in (1.0, 2.0):
        settings = ServiceLevelCusumSettings(dispersion_prior=phi, dispersion_prior_weight=1e9)
        c = ServiceLevelCusum(settings)
        c.step(T0, (0, 0), SLOT)
        firsts.append(next(k for k in range(1, 100) if c.step(T0 + k, (k, k), SLOT)))
    assert firsts == [8, 29]


def test_dump_and_load_keep_everything() -> None:
    settings = ServiceLevelCusumSettings()
    c = ServiceLevelCusum(settings)
    start = T0 + 5 * HOUR
    counts = _hour(c, start, [(0, 0)] * 6, 0, 0)
    counts = _hour(c, start + HOUR, [(12, 3), (8, 0), (10, 5), (9, 1), (11, 2), (10, 0)], *counts)
    counts = (counts[0] + 4, counts[1] + 4)
    c.step(start + 2 * HOUR + 5, counts, SLOT)
    back = ServiceLevelCusum(settings)
    back.load(c.dump())
    assert back.dump() == c.dump()
    assert back.phi == c.phi
    assert back.threshold == c.threshold
    with pytest.raises(ValueError, match="dispersion blocks"):
        back.load([*c.dump()[:3], [[0, 0]], *c.dump()[4:]])


def _third(i: int) -> bool:
    return i % 3 == 0


def _stream(minutes: int, good: Callable[[int], bool]) -> Script:
    """Three voice contacts a minute, contact i queued at 20 i: answered after 5 s (within
    T = 20 s) when ``good(i)``, else after 30 s (a breach at queued + 20 s)."""
    script = Script()
    for i in range(3 * minutes):
        script.contact(f"c{i}", 20.0 * i, 5.0 if good(i) else 30.0)
    return script


def _collapse(feed: Feed, minutes: int, good: Callable[[int], bool] = _third):
    """Per tick second: (second, the 5-minute pair active, made active by the CUSUM)."""
    script = _stream(minutes, good)
    out = []
    for second in range(1, 60 * minutes):
        script.feed(feed, second)
        s = pick(feed.tick(second), "sla_burn", "voice", long="5m", severity="page", short="5m")
        out.append((second, s.active, s.sustained))
    return out


def _model_first_alarm(minutes: int, threshold: float, good: Callable[[int], bool] = _third):
    """An independent model of the statistic: a good outcome at its answer 20 i + 5; a bad
    one at its deadline 20 i + 20, which the engine decides once its clock is past the deadline
    plus ``allowed_lateness`` (5 s; an answer at the deadline itself would be on time), so at
    the tick 20 i + 26; each outcome adds +-ln 4 (p0 = 0.2, p1 = 0.8, so
    ln((1 - p1) / (1 - p0)) = -ln 4); the outcomes of one tick are added together, then the
    sum is floored at 0."""
    net: dict[int, int] = {}
    for i in range(3 * minutes):
        at = 20 * i + 5 if good(i) else 20 * i + 26
        net[at] = net.get(at, 0) + (-1 if good(i) else 1)
    stat = 0.0
    for at in sorted(net):
        stat = max(0.0, stat + net[at] * math.log(4))
        if stat >= threshold:
            return at
    return -1


def test_a_collapse_the_window_cannot_show_pages_on_the_cusum() -> None:
    # A third within T: the 5-minute burn is (2/3) / 0.2 = 3.33 >= 3, but 5 of 15 within T
    # has a 99.9% upper bound of about 70%, not below the 40% the pair stands for: the window
    # test alone never fires. The CUSUM (phi 1: nothing learnt in 20 minutes, prior 1; usual
    # share the prior 0.2) does, at the second the model says.
    cusum = {"dispersion_prior": 1.0}
    feed = Feed(only({"sla_burn": {"cusum": cusum}}))
    ticks = _collapse(feed, 20)
    first = next(second for second, active, _ in ticks if active)
    assert first == _model_first_alarm(20, 10.0)
    assert all(sustained for second, active, sustained in ticks if second >= first and active)
    off = Feed(only({"sla_burn": {"cusum": None}}))
    assert not any(active for _, active, _ in _collapse(off, 20))


def _four_of_nine(i: int) -> bool:
    # 4 of every 9 within T, never two in a row: from its cap (threshold + ln 4) one good
    # outcome leaves the statistic above its release (threshold - ln 4), so once active it
    # stays active (four in a row would let go: 4 ln 4 = 5.5 > 2 ln 4)
    return i % 9 in {0, 2, 4, 6}


def test_a_cusum_page_says_the_drop_is_sustained() -> None:
    # 4 of 9 within T: the 5-minute service level is about 44%, a burn of about 2.8, below the
    # pair's 3: the page is the CUSUM's, and its texts say so in service-level terms (the
    # burn rises, the service level drops). The default rule, fed by the real detectors; the
    # rule takes the detector's wording as Alerting gives it (tested below).
    feed = Feed(only({"sla_burn": {"cusum": {"dispersion_prior": 1.0}}}))
    settings = AlertSettings()
    rule = CompiledRule(
        next(r for r in default_rules() if r.alert == "ServiceLevelBurn"),
        settings,
        lambda channel, labels, now: channel_facts(feed.engine, now, channel, labels),
    )
    rule.upward = True
    rule.sustained_words = SlaBurnDetector.sustained_words
    script = _stream(40, _four_of_nine)
    states: list[tuple[int, str, dict[str, str]]] = []
    for second in range(1, 2400):
        script.feed(feed, second)
        signals = feed.tick(second)
        states.extend(
            (second, t.state, dict(t.alert.annotations))
            for t in rule.eval(T0 + second, signals, signals)
            if dict(t.alert.labels)["long"] == "5m"  # the hour pair pages this stream too
        )
    first = _model_first_alarm(40, 10.0, _four_of_nine)
    assert [(t, s) for t, s, _ in states[:2]] == [(first, "pending"), (first + 120, "firing")]
    fired = states[1][2]  # its annotations when it fired
    # the 5-minute window at the firing second, from the stream: answers in (t - 300, t]
    t = first + 120
    answers = [(20 * i + (5 if _four_of_nine(i) else 30), _four_of_nine(i)) for i in range(120)]
    recent = [ok for at, ok in answers if t - 300 < at <= t]
    hour = [ok for at, ok in answers if at <= t]
    short_sl, long_sl = sum(recent) / len(recent), sum(hour) / len(hour)
    assert (1 - short_sl) / 0.2 < 3  # below the pair's rate: only the CUSUM pages
    assert fired["summary"] == (
        f"voice: service level {short_sl:.0%} vs 80% target over 5m; {long_sl:.0%} over 1h "
        "(a sustained drop, too gradual for one window to show yet)"
    )
    assert "sustained rise" not in fired["description"]
    assert fired["description"].endswith(
        "the service-level CUSUM pages on the share of contacts out of SLA staying well above "
        "its usual share for several windows."
    )


def test_alerting_gives_each_rule_its_detectors_wording() -> None:
    s = parse_settings(config())
    alerting = Alerting(s.detectors, s.alerts, s.notifiers, Engine(s), DaemonStats())
    alerting.evaluate(T0)
    words = {r.rule.alert: r.sustained_words for r in alerting.rules}
    assert words["ServiceLevelBurn"] == SlaBurnDetector.sustained_words
    assert words["ComplaintSpike"] is None  # the generic rise / drop wording


def test_the_default_dispersion_prior_asks_for_more() -> None:
    # Before the channel's own hours are learnt phi is 3: threshold 90, which 20 minutes of
    # this collapse (+ln 4 a minute net) do not reach
    feed = Feed(only({"sla_burn": {}}))
    assert not any(active for _, active, _ in _collapse(feed, 20))


def test_cusum_true_needs_a_cusum() -> None:
    windows = [{"long": "5m", "short": "5m", "burn_rate": 3, "confidence": 0.999, "cusum": True}]
    parse_settings(config(only({"sla_burn": {"windows": windows}})))
    with pytest.raises(ConfigError, match=r"windows\[0\]\.cusum: true, but .*cusum is null"):
        parse_settings(config(only({"sla_burn": {"windows": windows, "cusum": None}})))
    parse_settings(config(only({"sla_burn": {"cusum": None}})))  # the defaults go without
