"""The four workforce families in ``support-monitor replay`` output (the console script)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.support import CONFIG, Stream, samples


def _replay(
    tmp_path: Path, stream: Stream, config: Path, *args: str
) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """The samples ``support-monitor replay`` prints for ``stream`` (the console script)."""
    events = tmp_path / "events.jsonl"
    events.write_text(stream.text(), encoding="utf-8")
    command = [sys.executable, "-m", "support_monitor", "replay", str(events)]
    out = subprocess.run(
        [*command, "--config", str(config), *args],
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    ).stdout
    return samples(out)


def test_replay_prints_the_workforce_families(tmp_path: Path) -> None:
    config = tmp_path / "config.yaml"
    config.write_text(yaml.safe_dump(CONFIG), encoding="utf-8")
    s = Stream()
    s.add("agent.state", 0.0, "voice", agent_id="a1", state="available")
    s.add("agent.state", 0.0, "voice", agent_id="a2", state="available", queues=["billing"])
    s.add("contact.queued", 10.0, "voice", contact_id="c1", queue="billing")
    s.add("contact.answered", 12.0, "voice", contact_id="c1", queue="billing", agent_id="a1")
    s.add("contact.ended", 72.0, "voice", contact_id="c1", queue="billing")
    s.add("agent.state", 72.0, "voice", agent_id="a1", state="after_call_work")
    s.add("agent.state", 90.0, "voice", agent_id="a1", state="available")
    s.add("agent.state", 100.0, "voice", agent_id="a2", state="break")
    got = _replay(tmp_path, s, config)
    v = {"channel": "voice"}

    def value(name: str, **labels: str) -> float:
        return got[name, tuple(sorted({**v, **labels}.items()))]

    assert value("support_agents", state="available") == 1
    assert value("support_agents", state="break") == 1
    assert value("support_agents", state="busy") == 0
    # Clock ends at 100 s. a1: available 0..12, busy 12..72, acw 72..90, available 90..100;
    # a2: available 0..100. Busy + acw = 78 s of 200 s.
    assert value("support_occupancy_ratio", window="5m") == pytest.approx(78 / 200)
    # One arrival on billing in 300 s, handle 60 s + 18 s acw = 78 s: A = 0.26 Erlang.
    # 1 agent: C = A = 0.26, SL = 1 - 0.26 e^{-0.74 x 20 / 78} = 1 - 0.26 x 0.8272 = 0.785
    # < 0.8; 2 agents: C = 2B / (2 - A(1 - B)) with B = A^2/2 / (1 + A + A^2/2) = 0.02612,
    # C = 0.0299, SL = 1 - 0.0299 e^{-1.74 x 20 / 78} = 0.981 >= 0.8. So 2.
    assert value("support_agents_required", queue="billing") == 2
    # Wait with 1 agent on billing now (a1 available; a2 on break): C(1, A) = A = 0.26,
    # wait = 0.26 x 78 / (1 - 0.26).
    assert value("support_estimated_wait_seconds", queue="billing") == pytest.approx(
        0.26 * 78 / 0.74
    )
    assert value("support_agents_required", queue="tech") == 0
    assert not any(
        name.startswith("support_agents") and ("channel", "chat") in labels for name, labels in got
    )


def test_today_occupancy_after_a_quiet_gap_the_replay_jumps(tmp_path: Path) -> None:
    """a1 busy from 09:00:00, available from 09:06:40, replayed to 15:00 (``--until``): the road
    jumps over most of the quiet hours, more than the longest sliding window (5m) at once.
    The today window (from 09:05) holds busy 09:05-09:06:40 = 100 s and available
    09:06:40-15:00 = 21,200 s. Before 2026-12-02 the seconds of the jump that no sliding
    window held were left out of it (0.008)."""
    cfg = {
        "windows": ["1m", "5m", "today"],
        "timezone": "UTC",
        "day_starts_at": "09:05",
        "channels": {"voice": CONFIG["channels"]["voice"]},
    }
    config = tmp_path / "config.yaml"
    config.write_text(yaml.safe_dump(cfg), encoding="utf-8")
    s = Stream()
    s.add("agent.state", 0.0, "voice", agent_id="a1", state="busy")
    s.add("agent.state", 400.0, "voice", agent_id="a1", state="available")
    got = _replay(tmp_path, s, config, "--until", "2026-03-02T15:00:00Z")  # T0 is 09:00 UTC
    today = ("support_occupancy_ratio", (("channel", "voice"), ("window", "today")))
    assert got[today] == pytest.approx(100 / 21_300, rel=1e-12)


@pytest.mark.parametrize(
    ("end", "required", "wait"),
    [
        # (0.437, 300.437]: c1 queued at exactly 0.437 is out, c2 in: 1 / 300 per second.
        # Both contacts ended in it, 60 s each: AHT 60 s, A = 0.2 erlang, one agent available.
        # SL(1) = 1 - 0.2 e^(-0.8 x 20 / 60) = 0.847 >= 0.8: 1 agent; wait 0.2 x 60 / 0.8 = 15 s.
        (300.437, 1.0, 15.0),
        # (0.2, 300.2]: both arrivals, 2 / 300 per second: A = 0.4, SL(1) = 0.673 < 0.8, and
        # C(2, 0.4) = 0.1 / 1.5, SL(2) = 1 - (0.1 / 1.5) e^(-1.6 x 20 / 60) = 0.961: 2 agents;
        # wait with the one agent 0.4 x 60 / 0.6 = 40 s.
        (300.2, 2.0, 40.0),
    ],
)
def test_staffing_at_a_fractional_end_counts_arrivals_in_the_exact_window(
    tmp_path: Path, end: float, required: float, wait: float
) -> None:
    config = tmp_path / "config.yaml"
    config.write_text(yaml.safe_dump(CONFIG), encoding="utf-8")
    s = Stream()
    s.add("agent.state", 0.0, "voice", agent_id="a1", state="available")
    s.add("contact.queued", 0.437, "voice", contact_id="c1", queue="billing")
    s.add("contact.answered", 10.437, "voice", contact_id="c1", queue="billing")
    s.add("contact.ended", 70.437, "voice", contact_id="c1", queue="billing")
    s.add("contact.queued", 100.0, "voice", contact_id="c2", queue="billing")
    s.add("contact.answered", 101.0, "voice", contact_id="c2", queue="billing")
    s.add("contact.ended", 161.0, "voice", contact_id="c2", queue="billing")
    s.add("agent.state", end, "voice", agent_id="a1", state="available")  # the last instant
    got = _replay(tmp_path, s, config)
    labels = (("channel", "voice"), ("queue", "billing"))
    assert got["support_agents_required", labels] == required
    assert got["support_estimated_wait_seconds", labels] == pytest.approx(wait, rel=1e-12)
