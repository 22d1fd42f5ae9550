"""The backlog slope kept in exact running sums: equal to the least-squares slope of the window
computed exactly with ``fractions.Fraction`` and rounded once, however far the window slides."""

from __future__ import annotations

import math
import random
from fractions import Fraction

from support_monitor.detectors.backlog import History, slope

EPOCH = 1.8e9  # epoch seconds in 2027: a time's last bit is 2**-22 s


def exact_slope(points: list[tuple[float, float]]) -> float:
    """(n Sty - St Sy) / (n Stt - St^2) over the exact values of the floats, rounded once;
    0 with fewer than two distinct times."""
    ts = [Fraction(t) for t, _ in points]
    ys = [Fraction(y) for _, y in points]
    n = len(points)
    st = sum(ts, Fraction(0))
    sy = sum(ys, Fraction(0))
    stt = sum((t * t for t in ts), Fraction(0))
    sty = sum((t * y for t, y in zip(ts, ys, strict=True)), Fraction(0))
    den = n * stt - st * st
    if den == 0:
        return 0.0
    return float((n * sty - st * sy) / den)


def _wait(rng: random.Random, i: int) -> float:
    """An oldest wait: runs of zeros, a growing head, noise, very fine and very coarse floats,
    and a difference of two epoch times."""
    head = EPOCH + i
    return rng.choice(
        (
            0.0,
            3.0 + i * 0.25,
            rng.random() * 100,
            rng.random() * 1e-9,  # a fine scale: the sums move to 2**-80 and beyond
            rng.choice((1e6, 123456.789, 2.0**40)),
            float(rng.randrange(0, 600)),
            head - (head - rng.random() * 50),
        )
    )


def test_sliding_far_stays_exact() -> None:
    """Thousands of ticks through a 20- and a 60-point window at epoch times, each tick 1-5 ms
    past the second (as the live clock runs): after every tick the slope is the exact one."""
    rng = random.Random(20)
    for keep in (20.0, 60.0):
        history = History()
        zero_run = 0
        for i in range(3000):
            now = EPOCH + i + 0.001 + 0.004 * rng.random()
            if zero_run:
                y, zero_run = 0.0, zero_run - 1
            elif rng.random() < 0.01:
                y, zero_run = 0.0, rng.randrange(1, 90)  # nobody waits for a while
            else:
                y = _wait(rng, i)
            history.add(now, y, keep)
            window = list(history)
            assert all(t > now - keep for t, _ in window)
            assert history.slope() == exact_slope(window), i


def test_random_windows() -> None:
    """Windows of 0-70 points at epoch, small and negative times, with repeated times."""
    rng = random.Random(21)
    for _ in range(1500):
        n = rng.randrange(0, 70)
        base = rng.choice((EPOCH, EPOCH + 0.0037, 0.0, 123.456, -5e4, 1e15))
        step = rng.choice((1.0, 0.5, 2.0, 0.0, 1e-7))
        points = [
            (base + i * step + rng.choice((0.0, rng.random() * 1e-3)), _wait(rng, i))
            for i in range(n)
        ]
        rng.shuffle(points)  # the sums do not care about order
        assert slope(points) == exact_slope(points)


def test_known_slopes() -> None:
    """Hand-computed: waits growing 1 s/s, a flat queue, one point, equal times."""
    assert slope([(EPOCH, 5.0), (EPOCH + 1, 6.0), (EPOCH + 2, 7.0)]) == 1.0
    # (0,0) (1,1) (2,0) (3,1): n Sty - St Sy = 4*4 - 6*2 = 4, n Stt - St^2 = 4*14 - 36 = 20
    assert slope([(0.0, 0.0), (1.0, 1.0), (2.0, 0.0), (3.0, 1.0)]) == 0.2
    assert slope([(EPOCH, 4.0), (EPOCH + 1, 4.0), (EPOCH + 7, 4.0)]) == 0.0
    assert slope([(EPOCH, 4.0)]) == 0.0
    assert slope([(EPOCH, 4.0), (EPOCH, 9.0)]) == 0.0
    assert slope([]) == 0.0


def test_no_residue_of_points_that_left() -> None:
    """Waits of a million seconds slide through the sums, then ten points on a line of slope
    0.1 at epoch times: a float running sum would keep the rounding error of every large term
    it added and subtracted; the exact sums give the slope of the last ten points alone."""
    history = History()
    for i in range(5000):
        history.add(EPOCH + i, i * 0.1 if i >= 4990 else 1e6 * (i % 7), 10.0)
    window = list(history)
    assert len(window) == 10
    want = exact_slope(window)
    assert history.slope() == want
    assert abs(want - 0.1) < 1e-12


def test_overflow_and_non_finite_points_do_not_raise() -> None:
    """A slope beyond the largest float is infinite; a NaN or infinite point falls back to the
    float sum while it is in the window, and the exact sums resume once it has left."""
    huge = [(0.0, -1e308), (2.0**-1000, 1e308)]
    assert slope(huge) == math.inf
    assert slope([(0.0, 1e308), (2.0**-1000, -1e308)]) == -math.inf
    history = History()
    history.add(EPOCH, 1.0, 5.0)
    history.add(EPOCH + 1, math.nan, 5.0)
    assert math.isnan(history.slope())
    history.add(EPOCH + 2, math.inf, 5.0)
    history.add(EPOCH + 3, -math.inf, 5.0)
    assert math.isnan(history.slope())  # inf - inf: no value, and no exception
    for i in range(4, 10):
        history.add(EPOCH + i, 2.0 * i, 5.0)
    assert next(iter(history)) == (EPOCH + 5, 10.0)
    assert history.slope() == 2.0
    rng = random.Random(23)
    for i in range(10, 300):  # the exact sums again, not the float sum
        history.add(EPOCH + i + rng.random() * 0.005, _wait(rng, i), 5.0)
        assert history.slope() == exact_slope(list(history)), i


def test_a_restored_history_continues_exactly() -> None:
    """``export_state`` keeps the points: a history rebuilt from them slides on to the same
    slopes as the one that kept running."""
    rng = random.Random(22)
    running = History()
    for i in range(200):
        running.add(EPOCH + i + rng.random() * 0.005, _wait(rng, i), 60.0)
    restored = History(list(running))
    for i in range(200, 400):
        now, y = EPOCH + i + rng.random() * 0.005, _wait(rng, i)
        running.add(now, y, 60.0)
        restored.add(now, y, 60.0)
        assert restored.slope() == running.slope() == exact_slope(list(running))
