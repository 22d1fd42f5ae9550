"""Coverage-guided fuzzing of the event road with atheris (libFuzzer): each input is split into
messages and fed to ``decode`` and to a live pipeline (engine + tick road + alert rules). Any
exception that escapes, or counters that do not add up, is a crash.

    python bench/fuzz_events_atheris.py -runs=100000 -max_len=4096 [corpus_dir]

``tests/monitor/test_fuzz.py`` runs it for a bounded number of iterations.
"""

from __future__ import annotations

import sys
from pathlib import Path

import atheris

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

with atheris.instrument_imports(include=["monitor", "alerts", "detectors"]):
    from support_monitor.alerts.runtime import Alerting
    from support_monitor.monitor.clock import TickRoad
    from support_monitor.monitor.config import parse_settings
    from support_monitor.monitor.engine.engine import Engine
    from support_monitor.monitor.events import EventError, Reject, decode
    from support_monitor.monitor.pipeline import Delivery, Pipeline
    from support_monitor.monitor.stats import DaemonStats
    from tests.support import CONFIG, T0

SETTINGS = parse_settings({**CONFIG, "exporter": {"tick_seconds": 60}})
REASONS = {r.value for r in Reject}
SEED = (
    b'{"event_id":"e1","type":"contact.queued","ts":"2026-03-02T09:00:00Z",'
    b'"channel":"voice","queue":"billing","contact_id":"c1","priority":3}'
)


def one_input(data: bytes) -> None:
    messages = data.split(b"\n")[:32] or [SEED]
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
    total = sum(stats.events.values()) + sum(stats.duplicates.values())
    total += sum(stats.rejected.values())
    if total != len(messages):
        raise AssertionError((total, len(messages)))
    if stats.rejected["fuzz", Reject.INTERNAL_ERROR.value]:
        raise AssertionError("internal_error: a defect was reached")


def main() -> None:
    atheris.Setup(sys.argv, one_input)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
