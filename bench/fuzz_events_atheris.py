"""Coverage-guided fuzzing of the event road with atheris (libFuzzer): each input is split into
messages and fed to ``decode`` and to a live pipeline (engine + tick road + alert rules). Any
exception that escapes, or counters that do not add up, is a crash.

    python bench/fuzz_events_atheris.py -runs=100000 -max_len=4096 CORPUS_DIR bench/fuzz_corpus

``bench/fuzz_corpus`` holds seeds (a contact's, a ticket's and the customer-voice events' lives,
every event type valid and accepted); libFuzzer writes the inputs it finds to the first
directory. Every module of the package is instrumented, so coverage guides the mutations.
``tests/monitor/test_fuzz.py`` runs it for a bounded number of iterations from the seeds.
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import sys
import tempfile
from pathlib import Path

import atheris

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

with atheris.instrument_imports(include=["support_monitor"]):
    from support_monitor.alerts.runtime import Alerting
    from support_monitor.monitor.clock import TickRoad
    from support_monitor.monitor.config import parse_settings
    from support_monitor.monitor.engine.engine import Engine
    from support_monitor.monitor.events import EventError, Reject, decode
    from support_monitor.monitor.exporter import render
    from support_monitor.monitor.pipeline import Delivery, Pipeline
    from support_monitor.monitor.registry import build_registry
    from support_monitor.monitor.replay import replay_road
    from support_monitor.monitor.stats import DaemonStats
    from tests.support import CONFIG, T0

SETTINGS = parse_settings({**CONFIG, "exporter": {"tick_seconds": 60}})
REASONS = {r.value for r in Reject}


ROAD = os.environ.get("FUZZ_ROAD", "live")
"""``live`` (default): the daemon's pipeline, wall clock and tick road, message by message.
``replay``: each input is a file through ``monitor.replay.replay_road`` (the road of
``replay`` and ``backtest``: event-time clock, quiet gaps, flush, held outcomes decided at the
end, dead letters to a file), then the exposition is rendered."""


def one_input(data: bytes) -> None:
    if ROAD == "replay":
        replay_input(data)
        return
    messages = data.split(b"\n")[:32]  # the seeds are in bench/fuzz_corpus
    engine, stats = Engine(SETTINGS), DaemonStats()
    alerting = Alerting(SETTINGS.detectors, SETTINGS.alerts, SETTINGS.notifiers, engine, stats)
    road = TickRoad(engine, SETTINGS.exporter.tick_seconds, alerting.handlers)
    wall = [T0]
    pipeline = Pipeline(engine, stats, event_clock=False, wall_clock=lambda: wall[0], log_burst=0)
    for i, raw in enumerate(messages):
        try:
            decode(raw, 4096, max_tags=64)
        except EventError as exc:
            if exc.reason.value not in REASONS:
                raise AssertionError(exc.reason) from None
        letter = pipeline.process("fuzz", Delivery(raw, str(i)))
        if letter is not None and (letter.raw != raw or letter.reason not in REASONS):
            raise AssertionError(letter)
        wall[0] += 7.0
        road.tick(wall[0])
    for letter in pipeline.take_deferred():  # held outcomes rejected later
        if letter.raw not in messages or letter.reason not in REASONS:
            raise AssertionError(letter)
    # every message is applied, a duplicate, rejected, or still held for its item's opening
    total = sum(stats.events.values()) + sum(stats.duplicates.values())
    total += sum(stats.rejected.values()) + engine.early_outcomes_held
    if total != len(messages):
        raise AssertionError((total, len(messages)))
    if stats.rejected["fuzz", Reject.INTERNAL_ERROR.value]:
        raise AssertionError("internal_error: a defect was reached")


def replay_input(data: bytes) -> None:
    """One input as a replayed file: every line applied, a duplicate or a dead letter with its
    own bytes and a known reason; nothing held at the end; the exposition renders."""
    with tempfile.TemporaryDirectory(prefix="fuzz-replay-") as work:
        events, letters = Path(work) / "events.jsonl", Path(work) / "letters.jsonl"
        events.write_bytes(data)
        road = asyncio.run(replay_road(events, SETTINGS, dead_letters=letters))
        stored = letters.read_bytes().splitlines() if letters.exists() else []
    stats = road.stats
    # the lines the file source delivers: a leading BOM dropped, blank lines skipped
    lines = [x for x in data.removeprefix(b"\xef\xbb\xbf").split(b"\n") if x.strip(b" \t\r")]
    rejected = sum(stats.rejected.values())
    records = [json.loads(x) for x in stored]
    if len(records) != rejected:
        raise AssertionError((len(records), rejected))
    for record in records:
        raw = record["raw"].encode() if "raw" in record else base64.b64decode(record["raw_base64"])
        if record["reason"] not in REASONS or raw not in lines:
            raise AssertionError(record)
    total = sum(stats.events.values()) + sum(stats.duplicates.values()) + rejected
    if total != len(lines) or road.engine.early_outcomes_held:
        raise AssertionError((total, len(lines), road.engine.early_outcomes_held))
    if stats.rejected["file", Reject.INTERNAL_ERROR.value]:
        raise AssertionError("internal_error: a defect was reached")
    render(build_registry(road.engine, stats, road.alerting))


def main() -> None:
    atheris.Setup(sys.argv, one_input)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
