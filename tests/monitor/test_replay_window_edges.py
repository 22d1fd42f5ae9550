"""A replay's windows end exactly at its last instant, also a fractional one: the 5-minute
window at ``now`` holds the outcomes with ``now - 300 < t <= now``.

Voice (T = 20 s, short abandon under 5 s); times are seconds after ``B`` (``T0`` + 10 min):

| contact | queued | outcome | wait | counts as |
|---|---|---|---|---|
| c1 | -10 | answered 0.3 | 10.3 | answered in SLA |
| c2 | -30 | answered 0.5 | 30.5 | answered late |
| c3 | -5 | abandoned 0.8 | 5.8 | long abandon |
| c4 | 240 | answered 270 | 30 | answered late |

and complaints at 0.4 and 0.6; the last event (c5 queued) sets ``now``. At ``now = 300.5`` the
5-minute window starts after 0.5: c2's answer at exactly 0.5 is out, c3's abandon and the
complaint at 0.6 are in, so service level 0 / 2, abandon ratio 1 / 2, 1 complaint. The 1-hour
window holds all four outcomes: 1 / 4, 1 / 4, 2 complaints.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from support_monitor.monitor.replay import replay
from tests.support import Stream, samples, settings

B = 600.0


def _stream(end: float) -> Stream:
    s = Stream()
    s.add("contact.queued", B - 30, "voice", queue="billing", contact_id="c2")
    s.add("contact.queued", B - 10, "voice", queue="billing", contact_id="c1")
    s.add("contact.queued", B - 5, "voice", queue="billing", contact_id="c3")
    s.add("contact.answered", B + 0.3, "voice", queue="billing", contact_id="c1")
    s.add("complaint.received", B + 0.4, "voice")
    s.add("contact.answered", B + 0.5, "voice", queue="billing", contact_id="c2")
    s.add("complaint.received", B + 0.6, "voice")
    s.add("contact.abandoned", B + 0.8, "voice", queue="billing", contact_id="c3")
    s.add("contact.queued", B + 240, "voice", queue="billing", contact_id="c4")
    s.add("contact.answered", B + 270, "voice", queue="billing", contact_id="c4")
    s.add("contact.queued", B + end, "voice", queue="billing", contact_id="c5")
    return s


# end -> the 5-minute window's (service level, abandon ratio, complaints), by hand (module doc)
FIVE_MINUTES = {
    300.0: (1 / 4, 1 / 4, 2.0),  # (0, 300]: all four outcomes and both complaints
    300.2: (1 / 4, 1 / 4, 2.0),  # (0.2, 300.2]: the same
    300.5: (0 / 2, 1 / 2, 1.0),  # (0.5, 300.5]: c2's answer at exactly 0.5 is out
    300.9: (0 / 1, 0 / 1, 0.0),  # (0.9, 300.9]: only c4
    301.0: (0 / 1, 0 / 1, 0.0),  # (1, 301]: only c4
}


@pytest.mark.parametrize("end", sorted(FIVE_MINUTES))
async def test_the_windows_end_exactly_at_the_last_instant(tmp_path: Path, end: float) -> None:
    events = tmp_path / "events.jsonl"
    events.write_text(_stream(end).text(), encoding="utf-8")
    got = samples((await replay(events, settings())).decode())

    def window(name: str, span: str) -> float:
        return got[name, (("channel", "voice"), ("window", span))]

    numbers = ("support_service_level_ratio", "support_abandon_ratio", "support_complaints_window")
    assert tuple(window(name, "5m") for name in numbers) == FIVE_MINUTES[end]
    assert tuple(window(name, "1h") for name in numbers) == (1 / 4, 1 / 4, 2.0)
