"""A snapshot never moves the offsets past records whose dead letters are not stored."""

from __future__ import annotations

import functools
from collections import Counter
from contextlib import AsyncExitStack
from pathlib import Path
from typing import NoReturn

import pytest
from structlog.testing import capture_logs

from support_monitor.monitor.cluster.durable import Durability
from support_monitor.monitor.daemon import letters_stored
from support_monitor.monitor.deadletter import DeadLetter, JsonlDeadLetters, MemoryDeadLetters
from support_monitor.monitor.engine import snapshot as snapshot_module
from support_monitor.monitor.stats import DaemonStats
from support_monitor.monitor.supervise import open_dead_letters
from tests.support import settings as make_settings


async def test_no_snapshot_while_dead_letters_are_not_stored(tmp_path: Path) -> None:
    # A snapshot written while the letters could not be stored recorded offsets past their
    # records; a restart resumed there, so Kafka never redelivered them: the letters were lost.
    settings = make_settings(state={"dir": str(tmp_path / "state")})
    blocker = tmp_path / "letters"
    blocker.write_text("a file where the letters' directory should be", encoding="utf-8")
    stats = DaemonStats()
    with JsonlDeadLetters(blocker / "dead.jsonl", stats) as sink:
        durable = Durability(settings.state, settings)
        await durable.load_engine()
        durable.letters_stored = functools.partial(letters_stored, sink, stats)
        await sink.write(DeadLetter(b"{bad", "invalid_json", "d", "kafka", "events/0/7"))
        await durable.save("interval")
        snapshot = settings.state.snapshot_path
        assert snapshot is not None
        assert not snapshot.exists()
        assert sink.pending == 1
        blocker.unlink()  # the directory can be made now
        await durable.save("interval")
        assert snapshot.exists()
        assert sink.pending == 0
    assert (blocker / "dead.jsonl").read_text(encoding="utf-8").count('"events/0/7"') == 1


async def test_a_snapshot_that_cannot_be_written_is_counted_and_its_end_said(
    tmp_path: Path,
) -> None:
    # the state directory's place is taken by a file (as a full or read-only disk would fail
    # the write): the last snapshot stays, each failed write counts, one error line per outage
    state = tmp_path / "state"
    settings = make_settings(state={"dir": str(state)})
    stats = DaemonStats()
    durable = Durability(settings.state, settings)
    await durable.load_engine()
    durable.count_failures(stats)
    assert stats.store_failures == Counter({"snapshot": 0})
    assert stats.stores_failing == {"snapshot": False}
    if state.is_dir():  # load_engine may have made it
        state.rmdir()
    state.write_text("not a directory", encoding="utf-8")
    with capture_logs() as logs:
        await durable.save("interval")
        await durable.save("interval")
        assert stats.stores_failing == {"snapshot": True}
        state.unlink()
        state.mkdir()
        await durable.save("interval")
    assert stats.store_failures == Counter({"snapshot": 2})
    assert [(e["event"], e["log_level"]) for e in logs if e["log_level"] != "debug"] == [
        ("snapshot_write_failed", "error"),
        ("store_recovered", "info"),
    ]
    assert settings.state.snapshot_path is not None
    assert settings.state.snapshot_path.exists()


async def test_a_snapshot_that_fails_for_any_reason_is_counted_not_raised(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Before, only OSError was caught: a defect in capturing or encoding ended the snapshot
    # task, and with it the daemon's task group.
    settings = make_settings(state={"dir": str(tmp_path / "state")})
    stats = DaemonStats()
    durable = Durability(settings.state, settings)
    await durable.load_engine()
    durable.count_failures(stats)

    def broken(*_: object) -> NoReturn:
        raise TypeError("SECRETsnap cannot be encoded")

    monkeypatch.setattr(snapshot_module, "capture", broken)
    with capture_logs() as logs:
        await durable.save("interval")
    assert stats.store_failures == Counter({"snapshot": 1})
    assert stats.stores_failing == {"snapshot": True}
    assert [(e["event"], e["error"]) for e in logs] == [("snapshot_failed", "TypeError")]
    assert "SECRET" not in repr(logs)


async def test_a_sink_that_could_not_open_at_start_recovers_with_nothing_to_store(
    tmp_path: Path,
) -> None:
    """The letters' directory is blocked at start-up and nothing is ever rejected: once the
    directory can be made, the next store attempt (the daemon's once-a-second flush) reopens
    the sink, so snapshots and ``/readyz`` are back. Before, only a stored letter cleared the
    outage: with a clean stream the daemon stayed unready and wrote no snapshot for good (the
    audit of 2026-12-01)."""
    settings = make_settings(state={"dir": str(tmp_path / "state")})
    blocker = tmp_path / "letters"
    blocker.write_text("a file where the letters' directory should be", encoding="utf-8")
    stats = DaemonStats()
    with capture_logs() as logs, JsonlDeadLetters(blocker / "dead.jsonl", stats) as sink:
        durable = Durability(settings.state, settings)
        await durable.load_engine()
        durable.letters_stored = functools.partial(letters_stored, sink, stats)
        sink.flush()
        assert stats.dead_letter_sinks_failing == {"file"}
        await durable.save("interval")
        snapshot = settings.state.snapshot_path
        assert snapshot is not None
        assert not snapshot.exists()
        blocker.unlink()
        sink.flush()
        assert stats.dead_letter_sinks_failing == set()
        await durable.save("interval")
        assert snapshot.exists()
    events = [e["event"] for e in logs if e["event"].startswith("dead_letter")]
    assert events == ["dead_letter_write_failed", "dead_letter_sink_recovered"]


@pytest.mark.parametrize(
    ("sources", "warned"),
    [
        ({"simulator": {"enabled": True}}, False),
        ({"kafka": {"bootstrap_servers": "127.0.0.1:1", "topics": ["events"]}}, True),
        (
            {
                "kafka": {
                    "bootstrap_servers": "127.0.0.1:1",
                    "topics": ["events"],
                    "dead_letter_topic": "events.dlq",
                },
                "mqtt": {"host": "127.0.0.1", "topics": ["support/#"]},
            },
            True,
        ),
        (
            {
                "kafka": {
                    "bootstrap_servers": "127.0.0.1:1",
                    "topics": ["events"],
                    "dead_letter_topic": "events.dlq",
                },
                "mqtt": {
                    "host": "127.0.0.1",
                    "topics": ["support/#"],
                    "dead_letter_topic": "support-dlq/letters",
                },
            },
            False,
        ),
    ],
)
async def test_memory_letters_are_said_only_when_a_broker_source_writes_to_them(
    sources: dict[str, object], warned: bool
) -> None:
    settings = make_settings(sources=sources)
    with capture_logs() as logs:
        async with AsyncExitStack() as stack:
            sink, file_sink = open_dead_letters(stack, settings, DaemonStats())
    assert isinstance(sink, MemoryDeadLetters)
    assert file_sink is None
    said = [line for line in logs if line["event"] == "dead_letters_in_memory"]
    assert len(said) == (1 if warned else 0)
