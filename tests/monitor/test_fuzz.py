"""Fuzzing the event road: raw bytes and mutated valid-ish events through ``decode`` and through
the whole pipeline (engine + tick road + alert rules), live (wall clock) and replay (event
clock). Nothing may raise, and every input is exactly one of: applied, a duplicate, or a dead
letter with a reason (the counters add up to the number of inputs). Then bounded runs of the
coverage-guided harnesses in ``bench/``: events on both roads, and changed configs (refused
with a message, or run with no defect). Bounded: about a minute in all."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from support_monitor.alerts.runtime import Alerting
from support_monitor.monitor.clock import TickRoad, quiet_horizon
from support_monitor.monitor.config import Settings, parse_settings
from support_monitor.monitor.deadletter import DeadLetter
from support_monitor.monitor.engine.engine import Engine
from support_monitor.monitor.engine.readout import series
from support_monitor.monitor.events import TYPE_NAMES, EventError, Reject, decode
from support_monitor.monitor.pipeline import Delivery, Pipeline
from support_monitor.monitor.stats import DaemonStats
from tests.support import CONFIG, T0, iso

ROOT = Path(__file__).resolve().parents[2]
REASONS = {r.value for r in Reject}
FUZZ = settings(max_examples=100, deadline=None, suppress_health_check=list(HealthCheck))


def _config() -> Settings:
    """The test config with 60 s ticks and a 2 h resolution target, so the replay's quiet
    horizon is ~ 190 ticks and an example crossing a gap stays cheap."""
    data = json.loads(json.dumps(CONFIG))
    data["channels"]["email"]["resolution_seconds"] = 7200
    data["exporter"] = {"tick_seconds": 60}
    data["limits"] = {"max_open_contacts": 50, "max_open_tickets": 50, "max_solved_tickets": 20}
    return parse_settings(data)


CFG = _config()

# --- strategies ------------------------------------------------------------------------------

_WILD_TS = [
    "0001-01-01T00:00:00Z",
    "0001-01-01T00:00:00+01:00",
    "1970-01-01T00:00:00Z",
    "9999-12-31T23:59:59.999999Z",
    "9999-12-31T23:59:59-23:59",
    "2026-03-02T09:00:00",
    "2026-02-30T09:00:00Z",
    "yesterday",
    "",
]
timestamps = st.one_of(
    st.floats(-250, 250).map(lambda d: iso(T0 + d)),  # most: around T0, out of order
    st.floats(-250, 250).map(lambda d: iso(T0 + d)),
    st.floats(-250, 250).map(lambda d: iso(T0 + d)),
    st.sampled_from([-40 * 86400.0, -86400.5, -3 * 3600.0, 7200.0, 29 * 86400.0, 31 * 86400.0]).map(
        lambda d: iso(T0 + d)
    ),
    st.sampled_from(_WILD_TS),
)
junk = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.integers(-(2**70), 2**70),
    st.floats(),
    st.text(max_size=8),
    st.sampled_from(["x" * 129, "x" * 257, "a" * 60_000, "\ud800", "complaint"]),
    st.recursive(
        st.none() | st.integers() | st.text(max_size=4),
        lambda inner: (
            st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=4), inner, max_size=3)
        ),
        max_leaves=8,
    ),
)
QUEUES = {"voice": ["billing", "tech"], "chat": ["sales", "support"], "email": ["default"]}


@st.composite
def events(draw: st.DrawFn) -> dict[str, Any]:
    """A valid event of a random type over a few ids (so items move through their states and
    ids repeat), then now and then one field replaced by junk or removed."""
    kind = draw(st.sampled_from(TYPE_NAMES))
    channel = draw(
        st.sampled_from(
            ["voice", "chat"] if kind.startswith("contact.") else ["email", "email", "voice"]
        )
    )
    event: dict[str, Any] = {
        "event_id": draw(st.one_of(st.sampled_from(["e1", "e2", "e3"]), st.uuids().map(str))),
        "type": kind,
        "ts": draw(timestamps),
        "channel": channel,
        "queue": draw(st.sampled_from(QUEUES[channel])),
    }
    item = draw(st.sampled_from(["1", "2", "3", "4"]))
    if kind.startswith("contact."):
        event["contact_id"] = f"c{item}"
    elif kind != "complaint.received" or draw(st.booleans()):
        event["ticket_id"] = f"t{item}"
    if kind == "contact.queued" and draw(st.booleans()):
        event["priority"] = draw(st.integers(-5, 5))
    if kind in ("contact.answered", "ticket.responded") and draw(st.booleans()):
        event["agent_id"] = draw(st.sampled_from(["a1", "a2"]))
    if kind == "ticket.created":
        event["priority"] = draw(st.sampled_from(["low", "normal", "high", "urgent"]))
        event["tags"] = draw(st.lists(st.sampled_from(["complaint", "billing", "vip"]), max_size=3))
    if kind == "ticket.rated":
        event["rating"] = draw(st.integers(1, 5))
    if kind == "complaint.received":
        event["category"] = draw(st.sampled_from(["billing", "service", "weird-one"]))
    if draw(st.integers(0, 3)) == 0:  # one field (known or not) gets junk
        name = draw(st.sampled_from([*event, "priority", "tags", "rating", "extra"]))
        event[name] = draw(junk)
    if draw(st.integers(0, 9)) == 0:  # a field goes missing
        del event[draw(st.sampled_from(sorted(event)))]
    return event


@st.composite
def raw_events(draw: st.DrawFn) -> bytes:
    event = draw(events())
    mutation = draw(st.integers(0, 15))
    if mutation == 0:  # raw bytes (invalid UTF-8, quotes, escapes) inside a string value
        name = draw(st.sampled_from(sorted(event)))
        event[name] = "@@RAW@@"
        return (
            json.dumps(event).encode().replace(b"@@RAW@@", draw(st.binary(min_size=1, max_size=4)))
        )
    raw = json.dumps(event).encode()
    if mutation == 1:  # a corrupted byte
        at = draw(st.integers(0, len(raw) - 1))
        raw = raw[:at] + bytes([draw(st.integers(0, 255))]) + raw[at + 1 :]
    elif mutation == 2:  # truncated
        raw = raw[: draw(st.integers(0, len(raw)))]
    elif mutation == 3:  # deep nesting in an unknown field
        depth = draw(st.sampled_from([10, 900, 1000, 5000]))
        raw = b'{"deep":' + b"[" * depth + b"]" * depth + b"," + raw[1:]
    return raw


inputs = st.lists(
    st.one_of(raw_events(), raw_events(), raw_events(), st.binary(max_size=64)),
    min_size=1,
    max_size=40,
)

# --- properties ------------------------------------------------------------------------------


@FUZZ
@given(st.one_of(st.binary(max_size=4096), raw_events()))
def test_decode_raises_only_event_errors(raw: bytes) -> None:
    error: EventError | None = None
    try:
        decode(raw, 65536, max_tags=64)
    except EventError as exc:
        error = exc
    if error is not None:
        assert error.reason.value in REASONS
        assert error.detail


def _settle(
    pipeline: Pipeline, lines: list[bytes], stats: DaemonStats, letters: list[DeadLetter]
) -> None:
    """Every input is applied, a duplicate, a dead letter with a reason, or still held for its
    item's opening event (live, within the lateness), exactly once: a held outcome is counted
    when it applies or is rejected, never at both."""
    letters.extend(pipeline.take_deferred())
    held = pipeline.engine.early_outcomes_held
    applied = sum(stats.events.values())
    duplicates = sum(stats.duplicates.values())
    rejected = sum(stats.rejected.values())
    assert applied + duplicates + rejected + held == len(lines)
    assert len(letters) == rejected
    assert all(x.reason in REASONS and x.raw in lines for x in letters)
    assert {reason for (_, reason), n in stats.rejected.items() if n} <= REASONS
    # a defect reached by some input shows as internal_error: fuzzing must not reach any
    assert sum(n for (_, reason), n in stats.rejected.items() if reason == "internal_error") == 0
    for row in series(pipeline.engine):  # the readout works on whatever state is left
        assert isinstance(row.value, float | int)


def _alerting(engine: Engine, stats: DaemonStats) -> Alerting:
    return Alerting(CFG.detectors, CFG.alerts, CFG.notifiers, engine, stats)


@FUZZ
@given(inputs, st.lists(st.floats(0, 120), min_size=40, max_size=40))
def test_live_pipeline_never_raises_and_counts_add_up(
    lines: list[bytes], steps: list[float]
) -> None:
    engine, stats = Engine(CFG), DaemonStats()
    road = TickRoad(engine, CFG.exporter.tick_seconds, _alerting(engine, stats).handlers)
    wall = [T0]
    pipeline = Pipeline(engine, stats, event_clock=False, wall_clock=lambda: wall[0])
    letters: list[DeadLetter] = []
    for i, raw in enumerate(lines):
        letter = pipeline.process("fuzz", Delivery(raw, str(i)))
        if letter is not None:
            letters.append(letter)
            assert letter.raw == raw
        wall[0] += steps[i]
        road.tick(wall[0])
        letters.extend(pipeline.take_deferred())
    _settle(pipeline, lines, stats, letters)


@FUZZ
@given(inputs)
def test_replay_pipeline_never_raises_and_counts_add_up(lines: list[bytes]) -> None:
    engine, stats = Engine(CFG), DaemonStats()
    road = TickRoad(
        engine,
        CFG.exporter.tick_seconds,
        _alerting(engine, stats).handlers,
        quiet_horizon=quiet_horizon(CFG),
    )
    pipeline = Pipeline(
        engine, stats, event_clock=True, before_event=road.before_event, log_burst=0
    )
    letters: list[DeadLetter] = []
    for i, raw in enumerate(lines):
        letter = pipeline.process("fuzz", Delivery(raw, str(i)))
        letters.extend([letter] if letter is not None else [])
        letters.extend(pipeline.take_deferred())
    if math.isfinite(engine.now):
        road.catch_up(engine.now, inclusive=True)
        engine.flush(engine.now)
    _settle(pipeline, lines, stats, letters)


@FUZZ
@given(st.lists(events(), min_size=1, max_size=30))
def test_every_decoded_event_is_applied_a_duplicate_or_rejected_with_a_reason(
    raw: list[dict[str, Any]],
) -> None:
    """Same property from the structured side: valid-ish events, no byte mutation."""
    lines = [json.dumps(e).encode() for e in raw]
    engine, stats = Engine(CFG), DaemonStats()
    pipeline = Pipeline(engine, stats, event_clock=True, log_burst=0)
    decodable = 0
    letters: list[DeadLetter] = []
    for i, line in enumerate(lines):
        try:
            decode(line, CFG.ingest.max_event_bytes, max_tags=CFG.ingest.max_tags)
        except EventError:
            pass
        else:
            decodable += 1
        letter = pipeline.process("fuzz", Delivery(line, str(i)))
        letters.extend([letter] if letter is not None else [])
    decode_rejects = sum(
        n
        for (_, reason), n in stats.rejected.items()
        if reason
        in {
            "invalid_json",
            "too_large",
            "missing_field",
            "wrong_type",
            "invalid_value",
            "unknown_type",
            "bad_timestamp",
        }
    )
    assert decode_rejects == len(lines) - decodable
    engine.flush()
    _settle(pipeline, lines, stats, letters)


# --- atheris (coverage-guided), bounded ------------------------------------------------------


@pytest.mark.parametrize(("road", "runs"), [("live", 500), ("replay", 200)])
def test_atheris_harness_runs_clean(tmp_path: Path, road: str, runs: int) -> None:
    """The coverage-guided harness from the seeds, on the daemon's live road and on the
    replay road (``FUZZ_ROAD``), a bounded number of runs."""
    pytest.importorskip("atheris")
    harness = ROOT / "bench" / "fuzz_events_atheris.py"
    seeds = ROOT / "bench" / "fuzz_corpus"
    result = subprocess.run(  # our own harness, with the venv's interpreter
        [
            sys.executable,
            str(harness),
            f"-runs={runs}",
            "-max_len=2048",
            "-seed=7",
            f"-artifact_prefix={tmp_path}/",
            str(tmp_path),  # what it finds goes here, the seeds are only read
            str(seeds),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT), "FUZZ_ROAD": road},
        check=False,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert f"Done {runs} runs" in result.stderr
    assert f"3 files found in {seeds}" in result.stderr


def test_config_fuzz_harness_runs_clean(tmp_path: Path) -> None:
    """Changed configs: refused with a message, or accepted and run on the replay road with no
    defect and no failing tick (``bench/fuzz_config_atheris.py``), a bounded number of runs."""
    pytest.importorskip("atheris")
    result = subprocess.run(
        [
            sys.executable,
            str(ROOT / "bench" / "fuzz_config_atheris.py"),
            "-runs=150",
            "-max_len=256",
            "-seed=11",
            f"-artifact_prefix={tmp_path}/",
            str(tmp_path),
        ],
        capture_output=True,
        text=True,
        timeout=180,
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        check=False,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "Done 150 runs" in result.stderr
