"""Erlang C math against published examples, published Erlang B table entries and an exact
rational implementation of the textbook (factorial) formulas written here independently."""

from __future__ import annotations

import itertools
import math
import random
from dataclasses import dataclass
from decimal import Decimal, localcontext
from fractions import Fraction

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from support_monitor.monitor.engine.erlang import (
    MAX_AGENTS,
    UNDEFINED_AGENTS,
    Staffing,
    agents_required,
    average_wait,
    erlang_b,
    erlang_c,
    service_level,
    staffing,
)

# ---------------------------------------------------------------------------------------------
# Independent model: the textbook formulas in exact integer/rational arithmetic.
#   B(N, A) = (A^N / N!) / sum_{k=0..N} A^k / k!
#   C(N, A) = (A^N / N! * N / (N - A)) / (sum_{k=0..N-1} A^k / k! + A^N / N! * N / (N - A))
# With A = p / q, both are multiplied through by N! * q^N so every term is an integer:
#   A^k / k! * N! * q^N = p^k * q^(N-k) * N! / k!
# ---------------------------------------------------------------------------------------------


def _scaled_terms(n: int, a: Fraction) -> tuple[int, int]:
    """(sum over k < N of p^k q^(N-k) N!/k!, p^N) for A = p/q."""
    p, q = a.numerator, a.denominator
    total = 0
    falling = 1  # N!/k!, for k = N, N-1, ..., 0
    for k in range(n - 1, -1, -1):
        falling *= k + 1
        total += p**k * q ** (n - k) * falling
    return total, p**n


def exact_b(n: int, a: Fraction) -> Fraction:
    below, top = _scaled_terms(n, a)
    return Fraction(top, below + top)


def exact_c(n: int, a: Fraction) -> Fraction:
    assert n > a
    below, top = _scaled_terms(n, a)
    # top * N / (N - A), with N - A = (N q - p) / q
    p, q = a.numerator, a.denominator
    queued = Fraction(top * n * q, n * q - p)
    return queued / (below + queued)


def exact_service_level(n: int, a: Fraction, aht: Fraction, t: Fraction) -> Decimal:
    """1 - C * exp(-(N - A) T / AHT) at 50 significant digits."""
    with localcontext() as ctx:
        ctx.prec = 50
        c = exact_c(n, a)
        expo = -(n - a) * t / aht
        e = (Decimal(expo.numerator) / Decimal(expo.denominator)).exp()
        return 1 - Decimal(c.numerator) / Decimal(c.denominator) * e


def exact_required(a: Fraction, aht: Fraction, t: Fraction, level: Fraction) -> int:
    """Brute force: every N from floor(A) + 1 up, nothing carried between N."""
    n = math.floor(a) + 1
    while exact_service_level(n, a, aht, t) < Decimal(level.numerator) / level.denominator:
        n += 1
    return n


def rel(x: float, y: float | Fraction | Decimal) -> float:
    yf = float(y)
    return abs(x - yf) / abs(yf)


# ---------------------------------------------------------------------------------------------
# Published examples. The expected numbers below were computed with the exact model above
# (and `test_published_numbers_come_from_the_exact_model` re-checks them against it).
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Example:
    rate: float  # arrivals per second
    aht: float  # mean handle seconds
    t: float  # service-level target time
    c: dict[int, float]  # agents -> probability of waiting
    sl: dict[int, float]  # agents -> share answered within t
    wait: dict[int, float]  # agents -> mean wait seconds


# Call Centre Helper, "Erlang C Formula - Made Simple With an Easy Worked Example": 100 calls
# per 30 minutes, AHT 180 s -> A = 10 Erlangs, target 80% answered within 20 s. The article
# starts at N = A + 1 = 11 with a probability of waiting of 68.2%, raises N until the service
# level reaches 80%, which happens at 14 agents (13 agents give 79.6%), before shrinkage.
CCH = Example(
    rate=100 / 1800,
    aht=180.0,
    t=20.0,
    c={11: 0.68211820, 12: 0.44938822, 13: 0.28527045, 14: 0.17413193},
    sl={11: 0.38961381, 12: 0.64015804, 13: 0.79559479, 14: 0.88835002},
    wait={11: 122.781277, 12: 40.4449402, 13: 17.1162272, 14: 7.83593701},
)
# The Erlang-C worked example used by Mitan's "The Erlang-C formula" page (and copied widely):
# 360 calls per half hour, AHT 4 minutes -> 0.2 calls/s x 240 s = 48 Erlangs, 55 agents,
# service level target time 15 s.
MITAN = Example(
    rate=360 / 1800,
    aht=240.0,
    t=15.0,
    c={54: 0.30130790, 55: 0.23870094},
    sl={54: 0.79291431, 55: 0.84588309},
    wait={54: 12.0523160, 55: 8.18403210},
)


@pytest.mark.parametrize("ex", [CCH, MITAN], ids=["callcentrehelper", "mitan"])
def test_published_examples(ex):
    a = ex.rate * ex.aht
    for n, c in ex.c.items():
        assert rel(erlang_c(n, a), c) < 1e-7
        assert rel(service_level(n, a, ex.aht, ex.t), ex.sl[n]) < 1e-7
        assert rel(average_wait(n, a, ex.aht), ex.wait[n]) < 1e-7


def test_published_numbers_come_from_the_exact_model():
    for ex, a in ((CCH, Fraction(10)), (MITAN, Fraction(48))):
        aht, t = Fraction(ex.aht), Fraction(ex.t)
        for n, c in ex.c.items():
            assert rel(c, exact_c(n, a)) < 1e-7
            assert rel(ex.sl[n], exact_service_level(n, a, aht, t)) < 1e-7
            assert rel(ex.wait[n], exact_c(n, a) * aht / (n - a)) < 1e-7


def test_callcentrehelper_staffing_needs_14_agents_for_80_in_20():
    s = staffing(CCH.rate, CCH.aht, 14, CCH.t, 0.8)
    assert abs(s.traffic - 10.0) < 1e-12
    assert s.required == 14.0
    assert rel(s.wait_seconds, CCH.wait[14]) < 1e-7
    # 13 agents miss 80% (79.6%), so a target just under it needs 13.
    assert agents_required(10.0, 180.0, 20.0, 0.795) == 13
    # with 11 agents on the queue a contact arriving now waits ~123 s on average
    s11 = staffing(CCH.rate, CCH.aht, 11, CCH.t, 0.8)
    assert rel(s11.wait_seconds, 122.781277) < 1e-7


def test_without_the_wait_the_agents_required_are_the_same():
    # 10 Erlangs, 80% in 20 s: 14 agents required, whatever is on the queue; the wait (the
    # recursion from 14 up to the agents present) is left out
    for agents in (11, 14, 150):
        s = staffing(CCH.rate, CCH.aht, agents, CCH.t, 0.8, with_wait=False)
        assert s.traffic == pytest.approx(10.0, abs=1e-12)
        assert s.required == 14.0
        assert math.isnan(s.wait_seconds)


def test_without_the_agents_required_the_wait_is_the_same_float():
    # 10 Erlangs: 11 agents wait ~123 s (the published figure above), 14 and 150 less; the
    # search for the agents required is left out; below capacity the wait is unbounded
    for agents, want in ((11, 122.781277), (14, None), (150, None), (10, math.inf)):
        s = staffing(CCH.rate, CCH.aht, agents, CCH.t, 0.8, with_required=False)
        full = staffing(CCH.rate, CCH.aht, agents, CCH.t, 0.8)
        assert math.isnan(s.required)
        assert s.traffic == full.traffic
        assert s.wait_seconds == full.wait_seconds
        if want == math.inf:
            assert s.wait_seconds == math.inf
        elif want is not None:
            assert rel(s.wait_seconds, want) < 1e-7
    # thousands of Erlangs, agents inside and past the search range: bit for bit
    rng = random.Random(4)
    for _ in range(300):
        rate, aht = rng.uniform(0.01, 8.0), rng.uniform(30.0, 2400.0)
        agents = math.floor(rate * aht) + rng.randint(-3, 400)
        full = staffing(rate, aht, agents, 20.0, 0.8)
        s = staffing(rate, aht, agents, 20.0, 0.8, with_required=False)
        assert s.wait_seconds == full.wait_seconds


def test_mitan_example_needs_55_agents_for_80_in_15():
    s = staffing(MITAN.rate, MITAN.aht, 55, MITAN.t, 0.8)
    assert abs(s.traffic - 48.0) < 1e-12
    assert s.required == 55.0  # 54 agents give 79.3%
    assert rel(s.wait_seconds, 8.18403210) < 1e-7


# Published Erlang B tables (any traffic-engineering handbook; e.g. the Erlang B table in
# Freeman, "Telecommunication System Engineering"): traffic carried at a 1% grade of service
# by 5, 10, 20 and 100 trunks is 1.361, 4.461, 12.03 and 84.06 Erlangs; at 5%, 10 trunks carry
# 6.216 Erlangs. The table traffic is rounded to 4 significant digits, hence the tolerance.
@pytest.mark.parametrize(
    ("n", "a", "grade"),
    [(5, 1.361, 0.01), (10, 4.461, 0.01), (20, 12.03, 0.01), (100, 84.06, 0.01), (10, 6.216, 0.05)],
)
def test_erlang_b_table(n, a, grade):
    assert abs(erlang_b(n, a) - grade) < grade * 1e-3


def test_small_exact_values():
    # B(1, 1) = 1/2, B(2, 1) = 1/5; C(3, 2) = 4/9, C(2, 1) = 1/3 (worked by hand from the
    # factorial formulas)
    assert erlang_b(1, 1.0) == pytest.approx(0.5, rel=1e-15)
    assert erlang_b(2, 1.0) == pytest.approx(0.2, rel=1e-15)
    assert erlang_c(3, 2.0) == pytest.approx(4 / 9, rel=1e-15)
    assert erlang_c(2, 1.0) == pytest.approx(1 / 3, rel=1e-15)
    # mean wait with 2 agents, A = 1, AHT 60 s: C * AHT / (N - A) = 1/3 * 60 / 1 = 20 s
    assert average_wait(2, 1.0, 60.0) == pytest.approx(20.0, rel=1e-15)
    # service level within 30 s: 1 - 1/3 * exp(-(2 - 1) * 30 / 60)
    assert service_level(2, 1.0, 60.0, 30.0) == pytest.approx(1 - math.exp(-0.5) / 3, rel=1e-15)


# ---------------------------------------------------------------------------------------------
# Grid against the exact model
# ---------------------------------------------------------------------------------------------

TRAFFIC_GRID = (0.3, 1.0, 2.5, 7.77, 10.0, 23.4, 48.0, 61.05, 99.9, 120.0, 149.5)


def test_b_and_c_match_the_exact_model_on_a_grid():
    checked = 0
    worst = 0.0
    for a in TRAFFIC_GRID:
        fa = Fraction(a)  # the exact value of the float the code sees
        for n in range(math.floor(a) + 1, 151, 3):
            for got, want in ((erlang_b(n, a), exact_b(n, fa)), (erlang_c(n, a), exact_c(n, fa))):
                if want == 0:
                    assert got == 0.0
                    continue
                if float(want) < 1e-300:  # below the float range: the recursion underflows
                    assert 0.0 <= got < 1e-290
                    continue
                err = rel(got, want)
                worst = max(worst, err)
                assert err < 1e-9, (n, a, got, float(want))
                checked += 1
    assert checked > 500
    print(f"grid: {checked} values, worst relative error {worst:.2e}")


def test_b_below_capacity_matches_the_exact_model():
    # Erlang B is also defined for N <= A (the recursion starts at 0 agents)
    for a in (3.5, 50.0, 140.25):
        for n in (0, 1, 2, math.floor(a) - 1, math.floor(a)):
            assert rel(erlang_b(n, a), exact_b(n, Fraction(a))) < 1e-9


def test_service_level_and_wait_match_the_exact_model():
    for a, aht, t in ((2.5, 300.0, 20.0), (23.4, 95.0, 45.0), (99.9, 600.0, 10.0)):
        fa, faht, ft = Fraction(a), Fraction(aht), Fraction(t)
        for n in range(math.floor(a) + 1, math.floor(a) + 25):
            assert rel(service_level(n, a, aht, t), exact_service_level(n, fa, faht, ft)) < 1e-9
            want_wait = exact_c(n, fa) * faht / (n - fa)
            assert rel(average_wait(n, a, aht), want_wait) < 1e-9


@pytest.mark.parametrize(
    ("rate", "aht", "t", "level"),
    [
        (0.01, 300.0, 20.0, 0.8),
        (0.05, 180.0, 20.0, 0.8),
        (0.1, 240.0, 30.0, 0.9),
        (0.2, 240.0, 15.0, 0.8),
        (0.37, 95.0, 45.0, 0.95),
        (0.5, 200.0, 20.0, 0.8),  # A = 100 exactly: the search starts at 101
        (1.1, 110.0, 60.0, 0.7),
        (0.0033, 600.0, 20.0, 0.8),  # A < 2: a couple of agents
        (0.2, 600.0, 0.0, 0.5),  # T = 0: level = 1 - C
    ],
)
def test_agents_required_matches_brute_force(rate, aht, t, level):
    a = rate * aht
    want = exact_required(Fraction(a), Fraction(aht), Fraction(t), Fraction(level))
    assert agents_required(a, aht, t, level) == want
    assert staffing(rate, aht, want, t, level).required == float(want)


def test_whole_traffic_starts_above_it():
    # A = 20 exactly: 20 agents cannot hold the queue, so the answer is at least 21 even for
    # the lowest target; with the target 0 the first stable N is returned.
    assert agents_required(20.0, 100.0, 20.0, 0.0) == 21
    assert agents_required(20.5, 100.0, 20.0, 0.0) == 21


# ---------------------------------------------------------------------------------------------
# Large agent counts: factorials overflow floats here, the recursion must not.
# ---------------------------------------------------------------------------------------------


def test_two_thousand_agents_match_the_exact_model():
    a = 1950.0
    with pytest.raises(OverflowError):
        float(Fraction(math.factorial(2000)))  # why the textbook formula is not used
    b, c = erlang_b(2000, a), erlang_c(2000, a)
    assert 0.0 < b < c < 1.0
    assert rel(b, exact_b(2000, Fraction(1950))) < 1e-9
    assert rel(c, exact_c(2000, Fraction(1950))) < 1e-9
    w = average_wait(2000, a, 300.0)
    assert math.isfinite(w)
    assert w > 0.0


def test_large_counts_are_monotone_and_bounded():
    a = 1950.0
    cs = [erlang_c(n, a) for n in range(1951, 2101, 5)]
    assert all(0.0 <= x <= 1.0 for x in cs)
    assert all(x > y for x, y in itertools.pairwise(cs))  # more agents, fewer waits
    # more traffic on the same 2,000 agents, more waits
    by_load = [erlang_c(2000, x) for x in (1900.0, 1925.0, 1950.0, 1975.0, 1999.0)]
    assert all(x < y for x, y in itertools.pairwise(by_load))
    sls = [service_level(n, a, 300.0, 20.0) for n in range(1951, 2101, 5)]
    assert all(x < y for x, y in itertools.pairwise(sls))
    need = agents_required(a, 300.0, 20.0, 0.8)
    assert 1950 < need < 2100
    assert service_level(need, a, 300.0, 20.0) >= 0.8 > service_level(need - 1, a, 300.0, 20.0)


def test_large_required_matches_brute_force_with_the_exact_model():
    # 6.5 arrivals/s x 300 s = 1,950 Erlangs, 80% within 20 s: check the answer and the agent
    # below it with the exact model (a full brute force from 1,951 up is too slow exactly).
    need = agents_required(1950.0, 300.0, 20.0, 0.8)
    a, aht, t = Fraction(1950), Fraction(300), Fraction(20)
    assert exact_service_level(need, a, aht, t) >= Decimal("0.8")
    assert exact_service_level(need - 1, a, aht, t) < Decimal("0.8")


def full_recursion_b(n: int, a: float) -> float:
    # The textbook recursion from B(0) = 1, every step, in floats: what `erlang_b` shortcuts.
    b = 1.0
    for k in range(1, n + 1):
        b = a * b / (k + a * b)
    return b


def test_the_shortened_recursion_gives_the_same_floats():
    # For N >= A `erlang_b` starts 10 standard deviations below A: the same float as the full
    # recursion, from a few Erlangs to 50,000, at A itself, just past it and far past it.
    rng = random.Random(11)
    pairs = [(2000, 1950.0), (101, 100.0), (40_000, 40_000.0), (40_001, 40_000.0)]
    for _ in range(400):
        a = 10 ** rng.uniform(0.0, 4.7)
        pairs.append((math.ceil(a) + int(rng.uniform(0.0, 8.0) * math.sqrt(a)), a))
    for n, a in pairs:
        assert erlang_b(n, a) == full_recursion_b(n, a), (n, a)
    # Below A the full recursion runs: the same floats trivially, and the exact model agrees.
    assert erlang_b(1900, 1950.0) == full_recursion_b(1900, 1950.0)
    assert rel(erlang_b(1900, 1950.0), exact_b(1900, Fraction(1950))) < 1e-9


# ---------------------------------------------------------------------------------------------
# Edges and bounds
# ---------------------------------------------------------------------------------------------


def test_no_traffic():
    assert erlang_b(0, 0.0) == 1.0
    assert erlang_b(5, 0.0) == 0.0
    assert erlang_c(5, 0.0) == 0.0
    assert erlang_c(0, 0.0) == 1.0  # N <= A
    assert service_level(5, 0.0, 180.0, 20.0) == 1.0
    assert average_wait(5, 0.0, 180.0) == 0.0
    assert average_wait(0, 0.0, 180.0) == 0.0
    assert agents_required(0.0, 180.0, 20.0, 0.8) == 0
    assert staffing(0.0, 180.0, 3, 20.0, 0.8) == Staffing(0.0, 0.0, 0.0)
    # no arrivals: zero whatever the handle time and agents
    assert staffing(0.0, math.nan, 0, 20.0, 0.8) == Staffing(0.0, 0.0, 0.0)


def test_overload():
    # 0.1/s x 200 s = 20 Erlangs on 20 or fewer agents: every contact waits, the queue grows
    assert erlang_c(20, 20.0) == 1.0
    assert erlang_c(3, 20.0) == 1.0
    assert service_level(20, 20.0, 200.0, 20.0) == 0.0
    assert average_wait(20, 20.0, 200.0) == math.inf
    assert average_wait(0, 0.5, 200.0) == math.inf
    s = staffing(0.1, 200.0, 20, 20.0, 0.8)
    assert s.wait_seconds == math.inf
    assert s.required > 20.0
    assert math.isfinite(s.required)


def test_the_search_is_bounded():
    # A = 5,000 Erlangs with at most 1,000 agents: the start (5,001) is past the bound
    assert agents_required(5000.0, 100.0, 20.0, 0.8, max_agents=1000) == 1000
    # the search itself hits the bound: A = 10 needs 14 for 80/20, 12 is the cap
    assert agents_required(10.0, 180.0, 20.0, 0.8, max_agents=12) == 12
    assert agents_required(10.0, 180.0, 20.0, 0.8, max_agents=14) == 14
    assert staffing(1e6, 100.0, 5, 20.0, 0.8).required == float(MAX_AGENTS)
    assert staffing(50.0, 100.0, 5, 20.0, 0.8, max_agents=10).required == 10.0
    # a level of 1.0 stops once the computed level rounds to 1.0, or at the bound
    n = agents_required(10.0, 180.0, 20.0, 1.0)
    assert 14 < n < MAX_AGENTS
    assert service_level(n, 10.0, 180.0, 20.0) == 1.0


NAN, INF = math.nan, math.inf


@pytest.mark.parametrize("traffic", [NAN, INF, -INF, -1.0])
def test_bad_traffic_gives_nan(traffic):
    assert math.isnan(erlang_b(10, traffic))
    assert math.isnan(erlang_c(10, traffic))
    assert math.isnan(service_level(10, traffic, 180.0, 20.0))
    assert math.isnan(average_wait(10, traffic, 180.0))
    assert agents_required(traffic, 180.0, 20.0, 0.8) == UNDEFINED_AGENTS


@pytest.mark.parametrize("aht", [NAN, INF, 0.0, -5.0])
def test_bad_handle_time_gives_nan(aht):
    assert math.isnan(service_level(12, 10.0, aht, 20.0))
    assert math.isnan(average_wait(12, 10.0, aht))
    assert agents_required(10.0, aht, 20.0, 0.8) == UNDEFINED_AGENTS
    s = staffing(0.05, aht, 12, 20.0, 0.8)
    assert math.isnan(s.traffic)
    assert math.isnan(s.required)
    assert math.isnan(s.wait_seconds)


@pytest.mark.parametrize("rate", [NAN, INF, -0.1])
def test_bad_arrival_rate_gives_nan(rate):
    s = staffing(rate, 180.0, 12, 20.0, 0.8)
    assert math.isnan(s.traffic)
    assert math.isnan(s.required)
    assert math.isnan(s.wait_seconds)


def test_bad_targets_leave_the_wait():
    for t, level in ((NAN, 0.8), (-1.0, 0.8), (INF, 0.8), (20.0, NAN), (20.0, 1.5), (20.0, -0.1)):
        assert agents_required(10.0, 180.0, t, level) == UNDEFINED_AGENTS
        s = staffing(100 / 1800, 180.0, 14, t, level)
        assert math.isnan(s.required)
        assert rel(s.wait_seconds, CCH.wait[14]) < 1e-7
        assert abs(s.traffic - 10.0) < 1e-12
    assert math.isnan(service_level(12, 10.0, 180.0, NAN))
    assert math.isnan(service_level(12, 10.0, 180.0, -1.0))


def test_negative_agents():
    assert math.isnan(erlang_b(-1, 1.0))
    assert math.isnan(erlang_c(-1, 1.0))
    assert math.isnan(service_level(-1, 1.0, 60.0, 20.0))
    assert math.isnan(average_wait(-1, 1.0, 60.0))
    assert math.isnan(staffing(0.05, 180.0, -1, 20.0, 0.8).wait_seconds)
    assert agents_required(1.0, 60.0, 20.0, 0.8, max_agents=-1) == UNDEFINED_AGENTS


def test_product_overflow_gives_nan():
    s = staffing(1e200, 1e200, 5, 20.0, 0.8)
    assert math.isnan(s.traffic)
    assert math.isnan(s.wait_seconds)


floats = st.floats(allow_nan=True, allow_infinity=True)


@settings(max_examples=300, deadline=None)
@given(
    rate=floats,
    aht=floats,
    agents=st.integers(min_value=-5, max_value=3000),
    t=floats,
    level=floats,
)
def test_staffing_never_raises_and_stays_in_its_domain(rate, aht, agents, t, level):
    s = staffing(rate, aht, agents, t, level, max_agents=5000)
    assert math.isnan(s.traffic) or 0.0 <= s.traffic < math.inf
    assert math.isnan(s.required) or (
        s.required == math.floor(s.required) and 0.0 <= s.required <= 5000
    )
    assert math.isnan(s.wait_seconds) or s.wait_seconds >= 0.0
    if math.isfinite(s.traffic) and s.traffic > 0 and not math.isnan(s.required):
        assert s.required > s.traffic or s.required == 5000
        if agents > s.traffic:
            assert math.isfinite(s.wait_seconds)
        elif agents >= 0:
            assert s.wait_seconds == math.inf


def test_staffing_shares_one_pass_and_gives_the_same_numbers():
    # staffing() reuses the search's Erlang B for the wait; it must give exactly what the
    # separate functions give, for agents below, inside and past the search range, and when
    # the bound cuts the search short.
    cases = 0
    for rate, aht in ((0.05, 180.0), (0.2, 240.0), (2.0, 300.0), (9.75, 200.0), (1e-9, 30.0)):
        a = rate * aht
        need = agents_required(a, aht, 20.0, 0.8)
        for agents in {
            0,
            1,
            math.floor(a),
            math.floor(a) + 1,
            need - 1,
            need,
            need + 1,
            need + 7,
            3 * need + 5,
        }:
            for cap in (MAX_AGENTS, need - 1, math.floor(a) + 1, 3):
                s = staffing(rate, aht, agents, 20.0, 0.8, max_agents=cap)
                assert s.required == float(agents_required(a, aht, 20.0, 0.8, max_agents=cap))
                want = average_wait(agents, a, aht)
                assert s.wait_seconds == want or (math.isnan(want) and math.isnan(s.wait_seconds))
                cases += 1
    assert cases > 150


def test_concurrency_makes_an_agent_one_server_that_finishes_each_contact_faster() -> None:
    # c contacts at once per agent: the same as c times shorter handle times (the staffing
    # math's model of chats), whatever else the call asks
    for c in (1, 2, 3):
        for agents in (0, 5, 14, 40):
            got = staffing(CCH.rate, CCH.aht, agents, CCH.t, 0.8, concurrency=c)
            assert got == staffing(CCH.rate, CCH.aht / c, agents, CCH.t, 0.8)
    assert staffing(CCH.rate, CCH.aht, 14, CCH.t, 0.8, concurrency=1) == staffing(
        CCH.rate, CCH.aht, 14, CCH.t, 0.8
    )
    nan = staffing(CCH.rate, CCH.aht, 14, CCH.t, 0.8, concurrency=0)
    assert all(math.isnan(x) for x in (nan.traffic, nan.required, nan.wait_seconds))
