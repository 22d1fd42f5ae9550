"""Coverage-guided fuzzing of configs with atheris: each input picks a valid base config and
changes one to four of its values (a number out of range, a negative, NaN, a huge duration, a
wrong type, a deleted key, ...). The result is written as YAML and loaded as ``check-config``
loads it: refused with a ``ConfigError``, or accepted. An accepted config must then run: its
notes are built and the seed events of ``bench/fuzz_corpus`` go through the replay road with it
(engine, detectors, alert rules), with no defect (``internal_error``), no failing tick and a
rendered exposition. Anything else that escapes is a crash.

    python bench/fuzz_config_atheris.py -max_total_time=600 -max_len=256 CORPUS_DIR

The bases are ``deploy/support-monitor/config.yaml`` and the tests' three-channel config.
``tests/monitor/test_fuzz.py`` runs it for a bounded number of iterations.
"""

from __future__ import annotations

import asyncio
import copy
import math
import sys
import tempfile
from pathlib import Path
from typing import Any

import atheris
import yaml

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

with atheris.instrument_imports(include=["support_monitor"]):
    from support_monitor.monitor.config import config_notes, load_settings
    from support_monitor.monitor.errors import ConfigError
    from support_monitor.monitor.exporter import render
    from support_monitor.monitor.registry import build_registry
    from support_monitor.monitor.replay import replay_road
    from tests.support import CONFIG

BASES: list[dict[str, Any]] = [
    yaml.safe_load((ROOT / "deploy" / "support-monitor" / "config.yaml").read_text()),
    CONFIG,
]
EVENTS = b"\n".join(
    (ROOT / "bench" / "fuzz_corpus" / name).read_bytes() for name in ("live", "tickets", "voice")
)
VALUES: list[object] = [
    0, -1, 1, 2, 0.5, 100, 3600, 10**30, 1e308, -1e308, math.nan, math.inf, 0.0, 1.0,
    "", "x" * 300, "5m", "-5m", "0s", "1ms", "10d", "101y", "1e999", "99999999999h",
    [], {}, None, True, False, ["5m"], ["5m", "1h"], {"a": 1},
    "voice", "chat", "email", "page", "critical", "longest", "shortest", "answer_seconds",
    "support_queue_oldest_wait_seconds", ">", "<", "24:00", "Europe/Paris", "Mars/Olympus",
    "http://x", "https://h/?token=s",
]  # fmt: skip
"""What a changed value becomes (or, past the end: text, a float or an int from the input)."""


def _paths(node: object, prefix: tuple[object, ...] = ()) -> list[tuple[object, ...]]:
    """Every key path into ``node`` (mappings and lists), itself first."""
    out = [prefix]
    if isinstance(node, dict):
        for key, value in node.items():
            out += _paths(value, (*prefix, key))
    elif isinstance(node, list):
        for i, value in enumerate(node):
            out += _paths(value, (*prefix, i))
    return out


def _mutated(fdp: atheris.FuzzedDataProvider) -> dict[str, Any]:
    config = copy.deepcopy(BASES[fdp.ConsumeIntInRange(0, len(BASES) - 1)])
    for _ in range(fdp.ConsumeIntInRange(1, 4)):
        paths = _paths(config)
        path = paths[fdp.ConsumeIntInRange(0, len(paths) - 1)]
        if not path:
            continue
        parent: Any = config
        for key in path[:-1]:
            parent = parent[key]
        choice = fdp.ConsumeIntInRange(0, len(VALUES) + 3)
        if choice < len(VALUES):
            parent[path[-1]] = copy.deepcopy(VALUES[choice])
        elif choice == len(VALUES):
            parent[path[-1]] = fdp.ConsumeUnicodeNoSurrogates(20)
        elif choice == len(VALUES) + 1:
            parent[path[-1]] = fdp.ConsumeFloat()
        elif choice == len(VALUES) + 2:
            parent[path[-1]] = fdp.ConsumeInt(4)
        elif isinstance(parent, dict):
            del parent[path[-1]]
    return config


def one_input(data: bytes) -> None:
    config = _mutated(atheris.FuzzedDataProvider(data))
    with tempfile.TemporaryDirectory(prefix="fuzz-config-") as work:
        path, events = Path(work) / "config.yaml", Path(work) / "events.jsonl"
        path.write_text(yaml.safe_dump(config), encoding="utf-8")
        try:
            settings = load_settings(path)
        except ConfigError as exc:
            if not str(exc):
                raise AssertionError("a config error without a message") from None
            return
        config_notes(settings)
        events.write_bytes(EVENTS)
        road = asyncio.run(replay_road(events, settings))
    stats = road.stats
    defects = sum(n for (_, reason), n in stats.rejected.items() if reason == "internal_error")
    failures = {where: n for where, n in stats.tick_failures.items() if n}
    if defects or failures:
        raise AssertionError((defects, failures))
    render(build_registry(road.engine, stats, road.alerting))


def main() -> None:
    atheris.Setup(sys.argv, one_input)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
