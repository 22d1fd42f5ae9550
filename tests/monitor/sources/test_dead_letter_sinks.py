"""The JSON Lines dead-letter sink against real write failures: ENOSPC from the kernel (a tiny
tmpfs when we may mount one, ``/dev/full`` otherwise), a missing directory, a path under a file.
And the commit barrier: a broker source commits/acknowledges only after the sink stored the
letters written before it."""

from __future__ import annotations

import asyncio
import errno
import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from structlog.testing import capture_logs

from support_monitor.monitor.consume import consume
from support_monitor.monitor.deadletter import (
    DeadLetter,
    DurableSink,
    JsonlDeadLetters,
    MemoryDeadLetters,
)
from support_monitor.monitor.engine.engine import Engine
from support_monitor.monitor.pipeline import Pipeline
from support_monitor.monitor.sources import kafka as kafka_module
from support_monitor.monitor.sources.build import dead_letter_sink
from support_monitor.monitor.sources.kafka import KafkaSource
from support_monitor.monitor.sources.settings import KafkaSettings
from support_monitor.monitor.stats import DaemonStats
from tests.monitor.sources.fake_kafka import TP0, FakeConsumer, Record, commits
from tests.support import settings as make_settings


def letter(i: int, size: int = 10) -> DeadLetter:
    return DeadLetter(b"x" * size, "invalid_json", f"bad {i}", "kafka", f"events/0/{i}")


def lines(path: Path) -> list[dict[str, object]]:
    return [json.loads(line) for line in path.read_bytes().splitlines()]


def fill(path: Path) -> int | None:
    """Write to ``path`` until the file system refuses; the errno it refused with."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT, 0o600)
    try:
        while True:
            try:
                os.write(fd, b"f" * 4096)
            except OSError as exc:
                return exc.errno
    finally:
        os.close(fd)


@pytest.fixture
def tiny_tmpfs(tmp_path: Path) -> Iterator[Path]:
    """A 64 KiB tmpfs (root only): real ENOSPC, and room again once a file is deleted."""
    mount = tmp_path / "tiny"
    mount.mkdir()
    result = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(mount)],
        capture_output=True,
        check=False,
    )
    if result.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {result.stderr.decode().strip()}")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


async def test_full_tmpfs_keeps_whole_lines_and_stores_everything_after_recovery(tiny_tmpfs):
    stats = DaemonStats()
    filler = tiny_tmpfs / "filler"
    # Fill the file system to the last block.
    assert fill(filler) == errno.ENOSPC
    # Free two pages: a batch of letters starts to fit, then hits ENOSPC half-way.
    os.truncate(filler, filler.stat().st_size - 8192)
    path = tiny_tmpfs / "letters" / "dead.jsonl"
    with JsonlDeadLetters(path, stats, retry_max_seconds=0.2) as sink:
        for i in range(20):
            await sink.write(letter(i, size=1000))  # ~21 KiB of lines: cannot fit
        task = asyncio.ensure_future(sink.persist())
        await asyncio.sleep(1.0)
        assert not task.done()  # retries (with backoff) while the disk is full
        assert sink.pending == 20
        failures = stats.dead_letter_failures["file"]
        assert failures >= 2
        assert stats.dead_letters_written["kafka", "file"] == 0
        # The 8 KiB of the batch written before ENOSPC were cut off again: no partial line.
        assert path.stat().st_size == 0
        filler.unlink()  # room again
        await asyncio.wait_for(task, 5)
    stored = lines(path)
    assert [r["position"] for r in stored] == [f"events/0/{i}" for i in range(20)]
    assert all(r["raw"] == "x" * 1000 for r in stored)
    assert stats.dead_letters_written["kafka", "file"] == 20
    assert sink.pending == 0


async def test_dev_full_enospc_is_survived_logged_once_and_recovered(tmp_path):
    stats = DaemonStats()
    path = tmp_path / "dead.jsonl"
    path.symlink_to("/dev/full")  # every write: ENOSPC from the kernel
    # the sink binds its logger when built: capture from before (whatever logging an earlier
    # test configured)
    with capture_logs() as logs, JsonlDeadLetters(path, stats, retry_max_seconds=0.1) as sink:
        await sink.write(letter(1))
        await sink.write(letter(2))
        for _ in range(3):
            sink.flush()  # the daemon's once-a-second flush: never raises
        assert stats.dead_letter_failures["file"] == 3
        assert stats.dead_letters_written["kafka", "file"] == 0
        task = asyncio.ensure_future(sink.persist())
        await asyncio.sleep(0.5)
        assert not task.done()
        path.unlink()  # the "disk" is a regular file again
        await asyncio.wait_for(task, 5)
        await sink.write(letter(3))
        await sink.persist()
    assert [r["detail"] for r in lines(path)] == ["bad 1", "bad 2", "bad 3"]
    assert stats.dead_letters_written["kafka", "file"] == 3
    events = [e["event"] for e in logs]
    assert events.count("dead_letter_write_failed") == 1
    assert events.count("dead_letter_sink_recovered") == 1


async def test_unwritable_path_at_start_does_not_raise_and_recovers(tmp_path):
    stats = DaemonStats()
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("a file where the directory should be")
    path = blocker / "letters" / "dead.jsonl"
    sink = JsonlDeadLetters(path, stats, retry_max_seconds=0.1)
    with sink:  # ENOTDIR when opening: logged and counted, not raised
        assert stats.dead_letter_failures["file"] == 1
        await sink.write(letter(1))
        task = asyncio.ensure_future(sink.persist())
        await asyncio.sleep(0.3)
        assert not task.done()
        blocker.unlink()  # the directory can be created now
        await asyncio.wait_for(task, 5)
    assert [r["detail"] for r in lines(path)] == ["bad 1"]


def test_a_file_as_the_letters_directory_is_said_to_be_no_directory(tmp_path):
    # Before, the log said FileExistsError(17, 'File exists'), which hid the cause.
    blocker = tmp_path / "afile"
    blocker.write_text("a file where the letters' directory should be")
    with capture_logs() as logs, JsonlDeadLetters(blocker / "dead.jsonl", DaemonStats()):
        pass
    (failed,) = [e for e in logs if e["event"] == "dead_letter_write_failed"]
    assert failed["error"].startswith("NotADirectoryError(20, ")
    assert "position" not in failed  # the file stores batches: no one letter's position


async def test_write_waits_once_the_buffer_bound_is_reached(tmp_path):
    path = tmp_path / "dead.jsonl"
    path.symlink_to("/dev/full")
    with JsonlDeadLetters(path, DaemonStats(), retry_max_seconds=0.1, buffer_bytes=4096) as sink:
        for i in range(3):
            await sink.write(letter(i, size=1000))  # 3 lines of ~1.1 KB: under the bound
        blocked = asyncio.ensure_future(sink.write(letter(3, size=1000)))
        await asyncio.sleep(0.3)
        assert not blocked.done()  # the 4th line passes 4096 bytes: write waits for the disk
        path.unlink()
        await asyncio.wait_for(blocked, 5)
    assert len(lines(path)) == 4


def test_exit_with_a_failing_disk_reports_the_letters_not_stored(tmp_path):
    path = tmp_path / "dead.jsonl"
    path.symlink_to("/dev/full")
    with capture_logs() as logs:
        sink = JsonlDeadLetters(path, DaemonStats())
        with sink:
            asyncio.run(sink.write(letter(1)))
    assert "dead_letters_not_stored" in [e["event"] for e in logs]


async def test_kafka_commits_only_after_the_file_sink_stored_the_letters(monkeypatch, tmp_path):
    """A rejected record's offset is not committed while its letter cannot be written (ENOSPC);
    it is committed once the letter is on disk, and the letter is there exactly once."""
    FakeConsumer.instances.clear()
    monkeypatch.setattr(kafka_module, "AIOKafkaConsumer", FakeConsumer)
    stats = DaemonStats()
    path = tmp_path / "dead.jsonl"
    path.symlink_to("/dev/full")
    cfg = make_settings(
        sources={
            "kafka": {"topics": ["events"], "poll_timeout": 0.01},
            "simulator": {"enabled": False},
        }
    )
    source = KafkaSource(KafkaSettings(topics=("events",), poll_timeout=0.01), stats)
    pipeline = Pipeline(Engine(cfg), stats, event_clock=False)
    with JsonlDeadLetters(path, stats, retry_max_seconds=0.1) as sink:
        async with source:
            chosen = dead_letter_sink(source, sink)
            assert chosen is sink
            task = asyncio.ensure_future(consume(source, pipeline, chosen))
            while not FakeConsumer.instances:
                await asyncio.sleep(0.01)
            consumer = FakeConsumer.instances[0]
            consumer.batches = [
                {TP0: [Record(0, b"{not json"), Record(1, b"\xff\xfe"), Record(2, None, b"t-9")]}
            ]
            await asyncio.sleep(1.0)
            assert stats.rejected["kafka", "invalid_json"] == 3
            assert commits(consumer) == []  # letters not stored: offsets not committed
            assert stats.dead_letter_failures["file"] >= 2
            path.unlink()
            for _ in range(100):
                if commits(consumer):
                    break
                await asyncio.sleep(0.05)
            assert commits(consumer) == [{TP0: 3}]
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
    stored = lines(path)
    assert [r["position"] for r in stored] == ["events/0/0", "events/0/1", "events/0/2"]
    assert stored[1]["raw_base64"] == "//4="
    # a tombstone: no value, and its key kept (it names what the producer deleted)
    assert (stored[2]["raw"], stored[2]["key_base64"]) == ("", "dC05")
    assert stats.dead_letters_written["kafka", "file"] == 3


def test_sinks_say_whether_they_buffer():
    assert isinstance(JsonlDeadLetters(Path("x")), DurableSink)
    assert isinstance(MemoryDeadLetters(), DurableSink)


async def test_memory_sink_keeps_the_newest_letters_within_its_count_and_bytes():
    stats = DaemonStats()
    sink = MemoryDeadLetters(limit=3, max_bytes=100, stats=stats)
    for i in range(5):  # 5 letters of 10 bytes: the count bound drops the first two
        await sink.write(letter(i))
    assert [d.position for d in sink.letters] == ["events/0/2", "events/0/3", "events/0/4"]
    await sink.write(letter(5, size=85))  # 30 + 85 > 100 and 20 + 85 > 100; 10 + 85 fits
    assert [d.position for d in sink.letters] == ["events/0/4", "events/0/5"]
    await sink.write(letter(6, size=101))  # larger than the whole bound: not kept
    assert [d.position for d in sink.letters] == ["events/0/4", "events/0/5"]
    assert sink.dropped == 5
    assert stats.dead_letters_dropped["kafka"] == 5


def test_sigterm_while_kafka_is_down_exits_0_without_traceback(tmp_path):
    """The daemon, pointed at a Kafka that refuses connections, stops cleanly on SIGTERM."""
    config = tmp_path / "config.yaml"
    config.write_text(
        "sources:\n  simulator: {enabled: false}\n"
        "  kafka: {bootstrap_servers: '127.0.0.1:9', topics: [x], reconnect_max_seconds: 1}\n"
        f"dead_letter: {{path: {tmp_path / 'dl' / 'dead.jsonl'}}}\n"
    )
    exe = Path(sys.executable).parent / "support-monitor"
    proc = subprocess.Popen(
        [str(exe), "run", "--config", str(config), "--listen", "127.0.0.1:0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        end = time.monotonic() + 20
        seen = b""
        while b"kafka_connect_failed" not in seen and time.monotonic() < end:
            seen += os.read(proc.stdout.fileno(), 65536)  # type: ignore[union-attr]
        proc.terminate()
        out, _ = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    text = (seen + out).decode()
    assert proc.returncode == 0, text[-2000:]
    assert "Traceback" not in text
    assert "CancelledError" not in text
    assert '"daemon_stopped"' in text


async def test_a_letters_file_moved_away_or_deleted_is_followed_by_a_new_one(tmp_path):
    """Audit of 2026-12-05: after `rm` of the letters file the sink kept appending to the
    deleted file (counted as stored, seen by nobody, its disk space never freed), and after a
    rotation (`mv`) to the rotated file, until a restart. Each store now checks that the path
    still names the open file."""
    stats = DaemonStats()
    path = tmp_path / "dead.jsonl"
    rotated = tmp_path / "dead.jsonl.1"
    with capture_logs() as logs, JsonlDeadLetters(path, stats) as sink:
        await sink.write(letter(1))
        await sink.persist()
        path.rename(rotated)  # logrotate without copytruncate
        await sink.write(letter(2))
        await sink.persist()
        assert [r["detail"] for r in lines(rotated)] == ["bad 1"]
        assert [r["detail"] for r in lines(path)] == ["bad 2"]
        path.unlink()  # an operator clears the file
        await sink.write(letter(3))
        sink.flush()  # the daemon's once-a-second store
        assert [r["detail"] for r in lines(path)] == ["bad 3"]
        await sink.write(letter(4))
        await sink.persist()  # the same file again: no reopening
    assert [r["detail"] for r in lines(path)] == ["bad 3", "bad 4"]
    assert stats.dead_letters_written["kafka", "file"] == 4
    assert stats.dead_letter_failures["file"] == 0
    assert [e["event"] for e in logs].count("dead_letter_file_reopened") == 2
