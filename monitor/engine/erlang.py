"""Erlang C (M/M/N queue) staffing math: probability of waiting, service level, expected wait
and the fewest agents for a service-level target. Standard library only; see ``docs/erlang.md``.

Units: ``traffic`` A is in Erlangs (arrivals per second x mean handle seconds), ``agents`` N is a
head count, times are seconds, probabilities and levels are 0..1.

These functions run on every tick with measured values, so they never raise on numbers: an
input outside its domain (NaN, +-inf, negative traffic or agents, handle time <= 0, negative
target time, target level outside 0..1) gives NaN (``agents_required`` gives
``UNDEFINED_AGENTS``, there being no integer NaN). Erlang B for N >= A costs about
10*sqrt(A) + (N - A) float operations (the recursion starts 10 standard deviations below A, see
`erlang_b`), otherwise N; it stops early once Erlang B has underflowed to 0.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

# What `agents_required` returns when an input is outside its domain.
UNDEFINED_AGENTS = -1
# Default bound of the `agents_required` search.
MAX_AGENTS = 100_000
# For N >= A, Erlang B's recursion starts this many standard deviations (sqrt(A)) below A.
SKIP_SIGMAS = 10.0


def _bad_traffic(traffic: float) -> bool:
    # True for NaN, +-inf and negative values (NaN fails every comparison).
    return not (0.0 <= traffic < math.inf)


def _bad_positive(value: float) -> bool:
    return not (0.0 < value < math.inf)


def _bad_non_negative(value: float) -> bool:
    return not (0.0 <= value < math.inf)


def erlang_b(agents: int, traffic: float) -> float:
    """Blocking probability of an M/M/N/N system: B(0) = 1, B(n) = A*B(n-1) / (n + A*B(n-1)).

    NaN when ``agents`` < 0 or ``traffic`` is not a finite value >= 0.

    For N >= A the recursion starts at n0 = floor(A - 10*sqrt(A)) (when that is >= 1) from
    B(n0) ~ (A - n0)/A, the recursion's fixed point there, instead of at B(0) = 1. Each step
    multiplies the relative error of 1/B by 1 - B(n) <= n/A, so by n = A the start's error is
    down by about exp(-10**2 / 2) = 2e-22, below a double's resolution: the result is the
    same float as the full recursion's (40,000 random (N, A) with A up to 50,000 when this was
    written; ``tests/monitor/test_erlang.py`` checks 404), in about 10*sqrt(A) + N - A steps
    instead of N.
    """
    if agents < 0 or _bad_traffic(traffic):
        return math.nan
    start = int(traffic - SKIP_SIGMAS * math.sqrt(traffic))
    if start >= 1 and agents >= traffic:
        b = (traffic - start) / traffic
    else:
        start = 0
        b = 1.0
    for n in range(start + 1, agents + 1):
        ab = traffic * b  # the step written out: a call per step costs as much as the step
        b = ab / (n + ab)
        if b == 0.0:
            break  # underflowed: every later step stays 0
    return b


def _c_from_b(agents: int, traffic: float, b: float) -> float:
    # C = N*B / (N - A*(1 - B)), written so that N > A keeps the denominator > 0.
    return agents * b / (agents - traffic + traffic * b)


def erlang_c(agents: int, traffic: float) -> float:
    """Probability that a contact waits: C = N*B / (N - A*(1-B)) for N > A; 1.0 when N <= A.

    NaN when ``agents`` < 0 or ``traffic`` is not a finite value >= 0.
    """
    if agents < 0 or _bad_traffic(traffic):
        return math.nan
    if agents <= traffic:
        return 1.0
    return _c_from_b(agents, traffic, erlang_b(agents, traffic))


def _service_level_from_c(
    agents: int, traffic: float, handle_seconds: float, target_seconds: float, c: float
) -> float:
    return 1.0 - c * math.exp(-(agents - traffic) * target_seconds / handle_seconds)


def service_level(
    agents: int, traffic: float, handle_seconds: float, target_seconds: float
) -> float:
    """Share of contacts answered within ``target_seconds``: 1 - C*exp(-(N-A)*T/AHT) for N > A,
    else 0.0.

    NaN when an input is outside its domain (see the module docstring).
    """
    if (
        agents < 0
        or _bad_traffic(traffic)
        or _bad_positive(handle_seconds)
        or _bad_non_negative(target_seconds)
    ):
        return math.nan
    if agents <= traffic:
        return 0.0
    c = erlang_c(agents, traffic)
    return _service_level_from_c(agents, traffic, handle_seconds, target_seconds, c)


def average_wait(agents: int, traffic: float, handle_seconds: float) -> float:
    """Mean wait of all contacts (answered at once count 0 s): C*AHT / (N-A) for N > A.

    0.0 when ``traffic`` is 0 (also with 0 agents: no load, nothing waits); ``math.inf`` when
    A > 0 and N <= A (the line grows without bound); NaN when an input is outside its domain.
    """
    if agents < 0 or _bad_traffic(traffic) or _bad_positive(handle_seconds):
        return math.nan
    if traffic == 0.0:
        return 0.0
    if agents <= traffic:
        return math.inf
    return erlang_c(agents, traffic) * handle_seconds / (agents - traffic)


def agents_required(
    traffic: float,
    handle_seconds: float,
    target_seconds: float,
    target_level: float,
    *,
    max_agents: int = MAX_AGENTS,
) -> int:
    """The fewest N > A with ``service_level(N, ...) >= target_level``; 0 when traffic is 0.

    The search starts at floor(A) + 1 (ceil(A), or A + 1 when A is whole) and carries Erlang B
    forward one agent at a time, so it costs O(answer) float operations. It returns
    ``max_agents`` when no N <= ``max_agents`` reaches the level (including A >= ``max_agents``).
    ``UNDEFINED_AGENTS`` (-1) when an input is outside its domain (see the module docstring) or
    ``max_agents`` < 0.
    """
    if (
        _bad_traffic(traffic)
        or _bad_positive(handle_seconds)
        or _bad_target(target_seconds, target_level, max_agents)
    ):
        return UNDEFINED_AGENTS
    if traffic == 0.0:
        return 0
    return _search(traffic, handle_seconds, target_seconds, target_level, max_agents, probe=-1)[0]


def _bad_target(target_seconds: float, target_level: float, max_agents: int) -> bool:
    return _bad_non_negative(target_seconds) or not (0.0 <= target_level <= 1.0) or max_agents < 0


def _search(
    traffic: float,
    handle_seconds: float,
    target_seconds: float,
    target_level: float,
    max_agents: int,
    *,
    probe: int,
) -> tuple[int, float, float]:
    # `agents_required` for checked inputs and traffic > 0. Returns (required, B(required),
    # B(probe)); the last is NaN unless floor(A) + 1 <= probe <= required, so that `staffing`
    # can take the wait's Erlang B from the same pass. B(required) is NaN when the start
    # floor(A) + 1 is already past `max_agents` (nothing was computed).
    n = math.floor(traffic) + 1
    if n > max_agents:
        return max_agents, math.nan, math.nan
    b = erlang_b(n, traffic)
    b_probe = math.nan
    while True:
        if n == probe:
            b_probe = b
        c = _c_from_b(n, traffic, b)
        sl = _service_level_from_c(n, traffic, handle_seconds, target_seconds, c)
        if sl >= target_level or n >= max_agents:
            return n, b, b_probe
        n += 1
        ab = traffic * b  # the recursion step, as in erlang_b
        b = ab / (n + ab)


@dataclass(frozen=True, slots=True)
class Staffing:
    """Erlang C readout of one queue for one tick.

    ``traffic``: offered load in Erlangs (NaN when unknown). ``required``: fewest agents for the
    target, a whole number as float so it can be exported as is (NaN when unknown;
    ``max_agents`` when the bound was hit). ``wait_seconds``: expected wait of a contact
    arriving now with the agents available or busy on the channel now (+inf when they cannot
    keep up, NaN when unknown).
    """

    traffic: float
    required: float
    wait_seconds: float


def staffing(
    arrivals_per_second: float,
    handle_seconds: float,
    agents_now: int,
    target_seconds: float,
    target_level: float,
    *,
    max_agents: int = MAX_AGENTS,
    with_wait: bool = True,
    with_required: bool = True,
    concurrency: int = 1,
) -> Staffing:
    """Erlang C for one queue: offered load, agents required for ``target_level`` within
    ``target_seconds``, and the expected wait with ``agents_now`` (``with_wait=False``: NaN,
    not computed, for a caller that reads only the agents required; ``with_required=False``:
    ``required`` NaN and no search over agent counts, for a caller that reads only the wait,
    which is then ``average_wait``'s, the same float the search's pass gives, and is computed
    whatever ``with_wait`` says). ``concurrency``: contacts one agent works at once; an agent
    is then one server that finishes each contact in ``handle_seconds / concurrency``
    (``traffic`` counts such servers; 1: the plain M/M/N queue).

    - No arrivals (``arrivals_per_second`` == 0): ``Staffing(0.0, 0.0, 0.0)``, whatever the
      handle time and agents (there is no load to staff for).
    - Arrival rate not a finite value >= 0, handle time unknown (NaN), <= 0 or infinite, or
      ``concurrency`` < 1: every field NaN; but arrivals with no agent now (``agents_now`` 0)
      and the handle time unknown: ``wait_seconds`` +inf (no capacity at all).
    - ``target_seconds`` or ``target_level`` outside its domain: ``required`` NaN, the other
      fields as usual. ``agents_now`` < 0: ``wait_seconds`` NaN.
    - ``agents_now`` <= traffic: ``wait_seconds`` = +inf.
    """
    if arrivals_per_second == 0.0:
        return Staffing(traffic=0.0, required=0.0, wait_seconds=0.0)
    if agents_now == 0 and math.isnan(handle_seconds) and 0.0 < arrivals_per_second < math.inf:
        # no agent on the channel: arrivals exceed its capacity (0) whatever the handle time,
        # which is still unknown (no contact handled yet)
        return Staffing(traffic=math.nan, required=math.nan, wait_seconds=math.inf)
    handle_seconds = handle_seconds / concurrency if concurrency >= 1 else math.nan
    bad = _bad_non_negative(arrivals_per_second) or _bad_positive(handle_seconds)
    traffic = math.nan if bad else arrivals_per_second * handle_seconds
    if _bad_traffic(traffic):  # a bad input, or the product overflowed
        return Staffing(traffic=math.nan, required=math.nan, wait_seconds=math.nan)
    if traffic == 0.0:  # the product underflowed
        return Staffing(traffic=0.0, required=0.0, wait_seconds=0.0)
    if not with_required or _bad_target(target_seconds, target_level, max_agents):
        return Staffing(
            traffic=traffic,
            required=math.nan,
            wait_seconds=average_wait(agents_now, traffic, handle_seconds),
        )
    need, b_need, b_now = _search(
        traffic, handle_seconds, target_seconds, target_level, max_agents, probe=agents_now
    )
    wait = math.nan
    if with_wait:
        wait = _wait_now(agents_now, traffic, handle_seconds, need=need, b_need=b_need, b_now=b_now)
    return Staffing(traffic=traffic, required=float(need), wait_seconds=wait)


def _wait_now(
    agents_now: int,
    traffic: float,
    handle_seconds: float,
    *,
    need: int,
    b_need: float,
    b_now: float,
) -> float:
    # average_wait(agents_now, traffic, handle_seconds), taking Erlang B from the search when it
    # reached agents_now (b_now) or carrying the recursion on from B(need): the same float
    # steps as erlang_b, so the result is identical.
    if agents_now < 0 or agents_now <= traffic:
        return average_wait(agents_now, traffic, handle_seconds)  # NaN or +inf
    if math.isnan(b_now):  # agents_now is past the search, or the search computed nothing
        if math.isnan(b_need):
            b_now = erlang_b(agents_now, traffic)
        else:
            b_now = b_need
            for n in range(need + 1, agents_now + 1):
                if b_now == 0.0:
                    break
                ab = traffic * b_now  # the recursion step, as in erlang_b
                b_now = ab / (n + ab)
    c = _c_from_b(agents_now, traffic, b_now)
    return c * handle_seconds / (agents_now - traffic)
