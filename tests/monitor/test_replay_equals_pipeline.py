"""``support-monitor replay``'s road (file source, tick road with the detectors and rules, the
gap crossing, ``--until``, the final flush, the exposition) against the bare pipeline: for
random streams, every row the engine gives when the same lines are fed to the pipeline and the
clock is flushed to the same instant must be in the replay's printed exposition, with the same
value. The rows themselves are held to the reference model by ``tests/monitor/engine``; this
holds the road a user runs to them."""

from __future__ import annotations

import asyncio
import json
import math
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from support_monitor.monitor.config import Settings, parse_settings
from support_monitor.monitor.engine.readout import series
from support_monitor.monitor.replay import replay
from tests.monitor.engine.draining import run
from tests.monitor.engine.random_streams import CFG, reverse_groups, streams
from tests.support import T0, samples
from tests.workforce import streams as workforce

Key = tuple[str, tuple[tuple[str, str], ...]]
CORE = {
    "support_contacts_queued_total",
    "support_contacts_answered_total",
    "support_contacts_abandoned_total",
    "support_queue_waiting",
    "support_queue_oldest_wait_seconds",
    "support_queue_breached_waiting",
    "support_service_level_ratio",
    "support_abandon_ratio",
    "support_wait_quantile_seconds",
    "support_csat_ratio",
    "support_complaints_window",
}


def _same(a: float, b: float) -> bool:
    return a == b or (math.isnan(a) and math.isnan(b))


def check(events: list[dict[str, Any]], until: float, path: Path) -> None:
    lines = [json.dumps(e).encode() for e in events]
    compare(lines, parse_settings(CFG), until, path)


def compare(lines: list[bytes], cfg: Settings, until: float, path: Path) -> None:
    """``lines`` replayed to ``T0 + until`` print the pipeline's rows at that instant."""
    path.write_bytes(b"".join(line + b"\n" for line in lines))
    printed = samples(asyncio.run(replay(path, cfg, until=T0 + until)).decode())
    engine, _ = run(lines, cfg, until, exact_end=True)  # the replay's windows end at ``until``
    want: dict[Key, float] = {(r.name, tuple(sorted(r.labels))): r.value for r in series(engine)}
    # The exposition leaves out the rows that cannot occur under a channel's settings (e.g. no
    # live-contact families on email); the live channels' core rows are always printed.
    shown = {k: v for k, v in want.items() if k in printed}
    core = {k for k in want if k[0] in CORE and dict(k[1]).get("channel") in ("voice", "chat")}
    assert core, "no core row to compare"
    assert core <= shown.keys(), sorted(core - shown.keys())[:5]
    wrong = {k: (printed[k], v) for k, v in shown.items() if not _same(printed[k], v)}
    assert not wrong, wrong


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(case=streams(), reverse=st.booleans())
def test_replay_road_prints_the_pipelines_numbers(
    case: tuple[list[dict[str, Any]], float], reverse: bool, tmp_path_factory: Any
) -> None:
    events, until = case
    if reverse:
        events = reverse_groups(events)
    check(events, until, tmp_path_factory.mktemp("replay") / "events.jsonl")


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(case=workforce.streams())
def test_replay_road_prints_the_pipelines_workforce_numbers(
    case: workforce.Case, tmp_path_factory: Any
) -> None:
    """Agents and contacts, and quiet gaps (the replay's road jumps over them), to each of the
    stream's later instants."""
    lines = workforce.event_lines(case)
    cfg = parse_settings(workforce.CFG)
    for later in (0.0, *case.later):
        until = workforce.last_ms(case) / 1000 + later
        compare(lines, cfg, until, tmp_path_factory.mktemp("replay") / "events.jsonl")
