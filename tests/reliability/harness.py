"""What the reliability suite drives: ``support-monitor run`` as a subprocess, the malformed inputs,
private brokers it may kill, and the accounting (sent / applied / rejected / dead-lettered /
lost) every scenario reports. See ``docs/reliability.md``."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from tests.processes import free_port
from tests.support import CONFIG, samples

REPO = Path(__file__).resolve().parents[2]
KAFKA_SH = REPO / "deploy" / "local" / "kafka.sh"
MOSQUITTO_SH = REPO / "deploy" / "local" / "mosquitto.sh"

LONG = os.environ.get("SUPPORT_MONITOR_RELIABILITY_LONG") == "1"
"""The long variants: 10x the events and repeated outages (``docs/reliability.md``)."""
SCALE = 10 if LONG else 1

REPORT: list[dict[str, Any]] = []
"""One row per scenario, printed at the end of the run (``conftest.py``)."""


def fill(path: Path) -> int | None:
    """Write to ``path`` until its file system refuses; the errno it refused with."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT, 0o600)
    try:
        while True:
            try:
                os.write(fd, b"f" * 4096)
            except OSError as exc:
                return exc.errno
    finally:
        os.close(fd)


def iso(ts: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(ts)) + f".{int(ts % 1 * 1000):03d}Z"


# --- inputs ------------------------------------------------------------------------------------


def good_events(tag: str, contacts: int, tickets: int) -> list[bytes]:
    """Valid events with unique ids a few minutes before now, in per-item order: ``contacts``
    voice contacts (queued, answered after 10 s, ended) and ``tickets`` email tickets (created,
    responded, solved). 3 * (contacts + tickets) events."""
    base = time.time() - 600
    out: list[bytes] = []
    n = 0

    def add(kind: str, at: float, channel: str, **fields: Any) -> None:
        nonlocal n
        n += 1
        event = {"event_id": f"{tag}-{n}", "type": kind, "ts": iso(base + at), "channel": channel}
        event.update(fields)
        out.append(json.dumps(event, separators=(",", ":")).encode())

    for i in range(contacts):
        cid, queue = f"{tag}-c{i}", ("billing", "tech")[i % 2]
        add("contact.queued", i * 0.01, "voice", queue=queue, contact_id=cid)
        add("contact.answered", i * 0.01 + 10, "voice", queue=queue, contact_id=cid)
        add("contact.ended", i * 0.01 + 70, "voice", queue=queue, contact_id=cid)
    for i in range(tickets):
        tid = f"{tag}-t{i}"
        add("ticket.created", i * 0.01, "email", ticket_id=tid, tags=[])
        add("ticket.responded", i * 0.01 + 100, "email", ticket_id=tid)
        add("ticket.solved", i * 0.01 + 200, "email", ticket_id=tid)
    return out


def malformed(tag: str, *, big: bool = True) -> dict[str, bytes]:
    """One of each kind of hostile input, by name; every one must be rejected and dead-lettered
    (and none may stop the daemon)."""
    now = iso(time.time() - 60)
    head = f'"type":"contact.queued","channel":"voice","queue":"billing","ts":"{now}"'
    rng = random.Random(f"{tag}-bytes")
    deep = b"[" * 1000 + b"]" * 1000
    inputs = {
        "invalid_utf8_in_string": (
            f'{{"event_id":"{tag}-u8",{head},"contact_id":"'.encode() + b"\xff\xfe\xc3(" + b'"}'
        ),
        "deep_array_field": (
            f'{{"event_id":"{tag}-deep","type":"ticket.created","channel":"email",'
            f'"ts":"{now}","ticket_id":"{tag}-deep","tags":'.encode()
            + deep
            + b"}"
        ),
        "deep_array_top_level": deep,
        "random_bytes_1": rng.randbytes(64),
        "random_bytes_2": rng.randbytes(1000),
        "random_bytes_3": b"\x00" * 16,
        "huge_int_rating": (
            f'{{"event_id":"{tag}-bigint","type":"ticket.rated","channel":"email",'
            f'"ts":"{now}","ticket_id":"{tag}-t0","rating":{10**40}}}'.encode()
        ),
        "huge_int_ts": (
            f'{{"event_id":"{tag}-bigts","type":"contact.queued","channel":"voice",'
            f'"queue":"billing","ts":{10**30},"contact_id":"{tag}-bigts"}}'.encode()
        ),
        "far_future_ts": (
            f'{{"event_id":"{tag}-future","type":"contact.queued","channel":"voice",'
            f'"queue":"billing","ts":"9999-12-31T23:59:59Z","contact_id":"{tag}-f"}}'.encode()
        ),
        "far_past_ts": (
            f'{{"event_id":"{tag}-past","type":"contact.queued","channel":"voice",'
            f'"queue":"billing","ts":"1970-01-01T00:00:00Z","contact_id":"{tag}-p"}}'.encode()
        ),
    }
    if big:
        inputs["one_megabyte"] = (
            f'{{"event_id":"{tag}-mb",{head},"contact_id":"{tag}-mb","pad":"'.encode()
            + b"p" * 999_000
            + b'"}'
        )
    return inputs


# --- the daemon --------------------------------------------------------------------------------


def write_config(
    path: Path, sources: dict[str, Any], dead_letter_path: Path | None, **sections: Any
) -> Path:
    """The test config with these sources (the simulator off), dead-letter file and any other
    top-level ``sections`` (e.g. ``state``)."""
    data = json.loads(json.dumps(CONFIG))
    data.update(sections)
    data["sources"] = {"simulator": {"enabled": False}, **sources}
    if dead_letter_path is not None:
        data["dead_letter"] = {"path": str(dead_letter_path)}
    data["logging"] = {"level": "info", "format": "json"}
    path.write_text(yaml.safe_dump(data), encoding="utf-8")
    return path


def mqtt_config(
    path: Path,
    address: tuple[str, int],
    topic: str,
    dead_letter_path: Path | None,
    **sections: Any,
) -> Path:
    """:func:`write_config` with one MQTT source on ``address`` subscribed to ``topic`` (a
    fresh client id: its own persistent session; reconnects within a second)."""
    mqtt = {
        "host": address[0],
        "port": address[1],
        "topics": [topic],
        "client_id": f"rel-{uuid.uuid4().hex[:8]}",
        "reconnect_max_seconds": 1,
    }
    return write_config(path, {"mqtt": mqtt}, dead_letter_path, **sections)


class Daemon:
    """``support-monitor run`` in a subprocess, its output in ``log``."""

    def __init__(self, config: Path, log: Path) -> None:
        self.config = config
        self.log = log
        self.port = free_port()
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> Daemon:
        exe = Path(sys.executable).parent / "support-monitor"
        with self.log.open("ab") as out:
            self.proc = subprocess.Popen(
                [
                    str(exe),
                    "run",
                    "--config",
                    str(self.config),
                    "--listen",
                    f"127.0.0.1:{self.port}",
                ],
                stdout=out,
                stderr=out,
                cwd=REPO,
            )
        self.wait_for(lambda: self.get("/healthz") is not None, 60, "/healthz")
        return self

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def get(self, path: str) -> str | None:
        assert self.alive(), f"daemon exited: {self.tail()}"
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.port}{path}", timeout=5) as r:
                return str(r.read().decode())
        except urllib.error.HTTPError as exc:
            return None if exc.code >= 500 else ""
        except OSError:
            return None

    def metrics(self) -> Counts:
        text = self.get("/metrics")
        assert text is not None
        return Counts.from_exposition(text)

    def wait_for(self, predicate: Callable[[], bool], timeout: float, what: str) -> None:
        deadline = time.monotonic() + timeout
        while not predicate():
            assert self.alive(), f"daemon exited while waiting for {what}: {self.tail()}"
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out after {timeout} s waiting for {what}")
            time.sleep(0.1)

    def kill(self) -> None:
        assert self.proc is not None
        self.proc.kill()
        self.proc.wait(10)

    def stop(self) -> int:
        """SIGTERM; the exit code (it must stop within 30 s)."""
        assert self.proc is not None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
                raise AssertionError("daemon did not stop within 30 s of SIGTERM") from None
        return int(self.proc.returncode)

    def tail(self, chars: int = 3000) -> str:
        return self.log.read_text(errors="replace")[-chars:] if self.log.exists() else ""


@contextmanager
def running(config: Path, log: Path) -> Iterator[Daemon]:
    daemon = Daemon(config, log).start()
    try:
        yield daemon
    finally:
        if daemon.alive():
            daemon.stop()


@dataclass
class Counts:
    """The daemon's own counters, summed over sources."""

    applied: float = 0
    rejected: float = 0
    duplicates: float = 0
    dead_lettered: float = 0
    dead_letter_failures: float = 0
    by_reason: dict[str, float] = field(default_factory=dict)

    @classmethod
    def from_exposition(cls, text: str) -> Counts:
        counts = cls()
        for (name, labels), value in samples(text).items():
            if name == "support_monitor_events_total":
                counts.applied += value
            elif name == "support_monitor_events_rejected_total":
                counts.rejected += value
                reason = dict(labels)["reason"]
                counts.by_reason[reason] = counts.by_reason.get(reason, 0) + value
            elif name == "support_monitor_events_duplicate_total":
                counts.duplicates += value
            elif name == "support_monitor_dead_letters_total":
                counts.dead_lettered += value
            elif name == "support_monitor_dead_letter_failures_total":
                counts.dead_letter_failures += value
        counts.by_reason = {k: v for k, v in counts.by_reason.items() if v}
        return counts

    @property
    def processed(self) -> float:
        return self.applied + self.rejected + self.duplicates


def dead_letter_lines(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_bytes().splitlines() if line.strip()]


def report(scenario: str, **row: Any) -> None:
    """Record a scenario's accounting for the summary (and assert what every scenario must)."""
    row = {"scenario": scenario, **row}
    REPORT.append(row)
    print(json.dumps(row))
    assert row.get("lost", 0) == 0, row
    assert row.get("daemon_up", True), row


# --- brokers of our own ------------------------------------------------------------------------


class PrivateKafka:
    """A Kafka broker of our own (kafka.sh with its own run dir and ports) that a test may kill."""

    def __init__(self, run_dir: Path) -> None:
        self.port, self.controller = free_port(), free_port()
        self.env = {
            **os.environ,
            "SUPPORT_MONITOR_RUN": str(run_dir),
            "KAFKA_PORT": str(self.port),
            "KAFKA_CONTROLLER_PORT": str(self.controller),
        }
        self.pidfile = run_dir / "kafka" / "kafka.pid"
        self.bootstrap = f"127.0.0.1:{self.port}"

    def sh(self, command: str) -> None:
        subprocess.run(
            [str(KAFKA_SH), command], env=self.env, check=True, timeout=180, capture_output=True
        )

    def kill(self) -> None:
        """SIGKILL the broker (no clean shutdown), then let kafka.sh forget its pid file."""
        pid = int(self.pidfile.read_text().strip())
        os.kill(pid, signal.SIGKILL)
        deadline = time.monotonic() + 30
        while Path(f"/proc/{pid}").exists() and time.monotonic() < deadline:
            stat = Path(f"/proc/{pid}/stat").read_text(errors="replace").split()
            if len(stat) > 2 and stat[2] == "Z":
                break
            time.sleep(0.1)
        self.sh("stop")  # removes the stale pid file


class PrivateMosquitto:
    def __init__(self, run_dir: Path) -> None:
        self.port = free_port()
        self.env = {**os.environ, "SUPPORT_MONITOR_RUN": str(run_dir), "MQTT_PORT": str(self.port)}

    def sh(self, command: str) -> None:
        subprocess.run(
            [str(MOSQUITTO_SH), command], env=self.env, check=True, timeout=60, capture_output=True
        )


# --- Kafka helpers (confluent-kafka: a client independent of the code under test) -------------


def create_topic(bootstrap: str, name: str, partitions: int) -> None:
    from tests.conftest_services import create_kafka_topic  # noqa: PLC0415

    create_kafka_topic(bootstrap, name, partitions)


def produce(bootstrap: str, topic: str, messages: list[tuple[bytes | None, bytes]]) -> None:
    from confluent_kafka import Producer  # noqa: PLC0415

    producer = Producer(
        {
            "bootstrap.servers": bootstrap,
            "acks": "all",
            "message.max.bytes": 2_000_000,
            "linger.ms": 5,
        }
    )
    for key, value in messages:
        while True:
            try:
                producer.produce(topic, value=value, key=key)
                break
            except BufferError:
                producer.poll(0.1)
    left = producer.flush(60)
    assert left == 0, f"{left} records not delivered"


def offsets(bootstrap: str, topic: str, group: str) -> tuple[dict[int, int], dict[int, int]]:
    """(committed, end) offsets per partition of ``topic`` for ``group``."""
    from confluent_kafka import Consumer, TopicPartition  # noqa: PLC0415

    consumer = Consumer(
        {"bootstrap.servers": bootstrap, "group.id": group, "enable.auto.commit": False}
    )
    try:
        metadata = consumer.list_topics(topic, timeout=20)
        parts = sorted(metadata.topics[topic].partitions)
        tps = consumer.committed([TopicPartition(topic, p) for p in parts], timeout=20)
        committed = {tp.partition: max(tp.offset, 0) for tp in tps}
        ends = {
            p: consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=20)[1]
            for p in parts
        }
        return committed, ends
    finally:
        consumer.close()
