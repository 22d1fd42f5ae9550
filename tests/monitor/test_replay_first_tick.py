"""The replay's first tick comes before its first event, so the detectors count every outcome;
ticks of a fractional ``tick_seconds`` fall on its aligned instants and ``for`` counts from them.

The CSAT CUSUM (``detectors.thresholds[csat_low].cusum``, defaults: usual unsatisfied share
0.2, tuned for it tripling, threshold 8) gains ln(3) per unsatisfied rating while nothing is
learnt: 8 ratings of 1 reach 8.79 >= 8, 7 reach only 7.69. With ``min_volume: 20`` the floor
test cannot fire on so few ratings, so the CUSUM alone decides here.
"""

from __future__ import annotations

import io
import json
import math
from pathlib import Path

import pytest

from support_monitor.monitor.replay import replay
from tests.support import T0, Stream, settings

PER_RATING = math.log(3.0)
THRESHOLD = 8.0
FOR = 120.0  # CsatLow's `for`


def _ratings(n: int, offset: float) -> Stream:
    s = Stream()
    for i in range(n):
        s.add("survey.answered", offset + i, "chat", survey="csat", score=1)
    return s


async def _transitions(
    stream: Stream, tmp_path: Path, tick: float = 1.0
) -> list[tuple[float, str]]:
    events = tmp_path / "events.jsonl"
    events.write_text(stream.text(), encoding="utf-8")
    out = io.BytesIO()
    cfg = settings(exporter={"tick_seconds": tick})
    await replay(events, cfg, until=T0 + 600, alerts_out=out)
    records = [json.loads(line) for line in out.getvalue().splitlines()]
    return [(r["ts"] - T0, r["state"]) for r in records if r["alertname"] == "CsatLow"]


@pytest.mark.parametrize("offset", [0.0, 0.5])
async def test_the_first_rating_counts(tmp_path: Path, offset: float) -> None:
    needed = math.ceil(THRESHOLD / PER_RATING)
    assert needed == 8
    last = offset + needed - 1  # the time of the rating that reaches the threshold
    tick = math.ceil(last)  # the first whole-second tick at or after it sees it
    assert await _transitions(_ratings(needed, offset), tmp_path) == [
        (tick, "pending"),
        (tick + FOR, "firing"),
    ]


async def test_one_rating_short_never_pages(tmp_path: Path) -> None:
    assert (needed := math.ceil(THRESHOLD / PER_RATING)) == 8
    assert await _transitions(_ratings(needed - 1, 0.5), tmp_path) == []


@pytest.mark.parametrize("offset", [0.0, 0.3, 0.5, 0.7, 0.05])
async def test_tenth_of_a_second_ticks(tmp_path: Path, offset: float) -> None:
    """With ``tick_seconds: 0.1`` the alert turns pending at the first tenth at or after the
    eighth rating, exactly (no drift of the ticks), and firing exactly ``for`` later."""
    seen = await _transitions(_ratings(8, offset), tmp_path, tick=0.1)
    tenth = math.ceil(round((offset + 7) * 10, 6)) / 10
    assert [state for _, state in seen] == ["pending", "firing"]
    assert [round(at, 6) for at, _ in seen] == [tenth, tenth + FOR]
    records = sorted({round((T0 + at) * 10) for at, _ in seen})
    assert [(T0 + at) for at, _ in seen] == [r / 10 for r in records]  # the aligned instants


@pytest.mark.parametrize("offset", [0.0, 0.3])
async def test_a_fractional_for_fires_on_its_tick(tmp_path: Path, offset: float) -> None:
    """``for: 1.3`` with tenth-of-a-second ticks fires 13 ticks after pending: 1.3 s between
    two ticks near today's epoch measures 1.2999999 or 1.3000001 s in doubles."""
    events = tmp_path / "events.jsonl"
    events.write_text(_ratings(8, offset).text(), encoding="utf-8")
    out = io.BytesIO()
    rules = [{"alert": "CsatLow", "detector": "csat_low", "for": 1.3, "severity": "warning"}]
    cfg = settings(exporter={"tick_seconds": 0.1}, alerts={"rules": rules})
    await replay(events, cfg, until=T0 + 600, alerts_out=out)
    seen = [json.loads(line) for line in out.getvalue().splitlines()]
    ticks = [round(r["ts"] * 10) for r in seen]
    assert [r["state"] for r in seen] == ["pending", "firing"]
    assert ticks[1] - ticks[0] == 13
