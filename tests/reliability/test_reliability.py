"""Reliability suite: ``support-monitor run`` as a subprocess against the real brokers, driven
through hostile input and outages. Every scenario accounts for each message it sent
(applied + rejected + duplicates; rejected = dead-lettered) and asserts that none was lost and
that the daemon stayed up. ``docs/reliability.md`` says what each scenario does and how to run
the long variants (``SUPPORT_MONITOR_RELIABILITY_LONG=1``)."""

from __future__ import annotations

import base64
import json
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.reliability.harness import (
    LONG,
    SCALE,
    Daemon,
    PrivateKafka,
    PrivateMosquitto,
    create_topic,
    dead_letter_lines,
    fill,
    good_events,
    iso,
    malformed,
    mqtt_config,
    offsets,
    produce,
    report,
    running,
    write_config,
)
from tests.support import samples

# --- fixtures ----------------------------------------------------------------------------------


@pytest.fixture
def private_kafka(kafka_bootstrap: str, tmp_path: Path) -> Iterator[PrivateKafka]:
    """Needs the shared broker only to know the Kafka jars are installed."""
    kafka = PrivateKafka(tmp_path / "kafka-run")
    kafka.sh("start")
    try:
        yield kafka
    finally:
        kafka.sh("stop")


@pytest.fixture
def private_mosquitto(mqtt_address: tuple[str, int], tmp_path: Path) -> Iterator[PrivateMosquitto]:
    broker = PrivateMosquitto(tmp_path / "mqtt-run")
    broker.sh("start")
    try:
        yield broker
    finally:
        broker.sh("stop")


@pytest.fixture
def full_disk(tmp_path: Path) -> Iterator[tuple[Path, Any]]:
    """A directory whose file system is full, and a function that frees it.

    As root: a 64 KiB tmpfs filled to the last block (real ENOSPC), freed by deleting the
    filler. Otherwise the letters file is a symlink to ``/dev/full`` (ENOSPC on every write),
    replaced by a regular file to free it."""
    mount = tmp_path / "tiny"
    mount.mkdir()
    mounted = (
        subprocess.run(
            ["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(mount)],
            capture_output=True,
            check=False,
        ).returncode
        == 0
    )
    if mounted:
        filler = mount / "filler"
        fill(filler)

        def free() -> None:
            filler.unlink()
    else:
        (mount / "dead.jsonl").symlink_to("/dev/full")

        def free() -> None:
            (mount / "dead.jsonl").unlink()

    try:
        yield mount / "dead.jsonl", free
    finally:
        if mounted:
            subprocess.run(["umount", "-l", str(mount)], check=False)


def mosquitto_pub_bytes(port: int, topic: str, messages: list[bytes]) -> None:
    """QoS 1 publishes with paho-mqtt (binary payloads; an independent client)."""
    import paho.mqtt.client as mqtt  # noqa: PLC0415
    from paho.mqtt.enums import CallbackAPIVersion  # noqa: PLC0415

    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"pub-{uuid.uuid4().hex[:8]}")
    client.max_inflight_messages_set(200)
    client.connect("127.0.0.1", port)
    client.loop_start()
    try:
        infos = [client.publish(topic, payload, qos=1) for payload in messages]
        for info in infos:
            info.wait_for_publish(60)
            assert info.is_published()
    finally:
        client.loop_stop()
        client.disconnect()


def assert_all_rejected(counts: Any, bad: dict[str, bytes]) -> None:
    """Every hostile input rejected; the timestamp ones as timestamp_out_of_range."""
    assert counts.rejected == len(bad), counts.by_reason
    assert counts.by_reason.get("timestamp_out_of_range", 0) >= 2, counts.by_reason
    assert "internal_error" not in counts.by_reason, counts.by_reason


# --- 1. malformed input over Kafka -----------------------------------------------------------


def test_kafka_malformed_inputs(kafka_bootstrap, make_kafka_topic, tmp_path):
    topic = make_kafka_topic(partitions=2, prefix="rel-bad")  # deleted afterwards
    group = f"rel-{uuid.uuid4().hex[:8]}"
    good = good_events("kb", 100 * SCALE, 50 * SCALE)
    bad = malformed("kb")
    letters = tmp_path / "dl" / "dead.jsonl"
    config = write_config(
        tmp_path / "config.yaml",
        {
            "kafka": {
                "bootstrap_servers": kafka_bootstrap,
                "topics": [topic],
                "group_id": group,
                "max_batch": 200,
            }
        },
        letters,
    )
    # Bad input in the middle of the stream: good events before and after it.
    half = len(good) // 2
    stream = good[:half] + list(bad.values()) + good[half:]
    produce(kafka_bootstrap, topic, [(b"k", value) for value in stream])
    with running(config, tmp_path / "daemon.log") as daemon:
        daemon.wait_for(lambda: daemon.metrics().processed >= len(stream), 60, "all records")
        daemon.wait_for(lambda: _committed_to_end(kafka_bootstrap, topic, group), 30, "commit")
        counts = daemon.metrics()
        healthy = daemon.get("/healthz") is not None
        exit_code = daemon.stop()
    stored = dead_letter_lines(letters)
    report(
        "kafka_malformed",
        sent=len(stream),
        applied=counts.applied,
        rejected=counts.rejected,
        dead_lettered=len(stored),
        duplicates=counts.duplicates,
        lost=len(stream) - counts.processed,
        daemon_up=healthy and exit_code == 0,
        reasons=counts.by_reason,
    )
    assert counts.applied == len(good)
    assert_all_rejected(counts, bad)
    assert len(stored) == len(bad)
    assert counts.dead_lettered == len(bad)
    # Each letter keeps the original bytes (UTF-8 text, or base64 when not UTF-8).
    assert {_raw(r) for r in stored} == set(bad.values())


def _raw(letter: dict[str, Any]) -> bytes:
    """The original bytes of a JSON Lines dead letter."""
    if "raw_base64" in letter:
        return base64.b64decode(letter["raw_base64"])
    return str(letter["raw"]).encode()


def _item_key(value: bytes) -> bytes:
    try:
        event = json.loads(value)
    except (ValueError, RecursionError):
        return b"bad"
    if not isinstance(event, dict):
        return b"bad"
    return str(event.get("contact_id") or event.get("ticket_id") or "bad").encode()


def _committed_to_end(bootstrap: str, topic: str, group: str) -> bool:
    committed, ends = offsets(bootstrap, topic, group)
    return committed == ends


# --- 2. malformed input over MQTT ------------------------------------------------------------


def test_mqtt_malformed_inputs(mqtt_address, tmp_path):
    port = mqtt_address[1]
    prefix = f"rel/{uuid.uuid4().hex[:8]}"
    good = good_events("mb", 60 * SCALE, 30 * SCALE)
    bad = malformed("mb")
    letters = tmp_path / "dl" / "dead.jsonl"
    config = mqtt_config(tmp_path / "config.yaml", mqtt_address, f"{prefix}/events/#", letters)
    with running(config, tmp_path / "daemon.log") as daemon:
        daemon.wait_for(lambda: daemon.get("/readyz") is not None, 30, "subscribed")
        half = len(good) // 2
        stream = good[:half] + list(bad.values()) + good[half:]
        mosquitto_pub_bytes(port, f"{prefix}/events/all", stream)
        daemon.wait_for(lambda: daemon.metrics().processed >= len(stream), 60, "all messages")
        time.sleep(0.5)
        counts = daemon.metrics()
        healthy = daemon.get("/healthz") is not None
        exit_code = daemon.stop()
    stored = dead_letter_lines(letters)
    report(
        "mqtt_malformed",
        sent=len(stream),
        applied=counts.applied,
        rejected=counts.rejected,
        dead_lettered=len(stored),
        duplicates=counts.duplicates,
        lost=len(stream) - counts.processed,
        daemon_up=healthy and exit_code == 0,
        reasons=counts.by_reason,
    )
    assert counts.processed == len(stream)
    assert counts.applied == len(good)
    assert_all_rejected(counts, bad)
    assert len(stored) == len(bad)


# --- 3. Kafka broker killed and restarted ----------------------------------------------------


def test_kafka_broker_kill_and_restart(private_kafka, tmp_path):
    kafka = private_kafka
    topic = f"rel-kill-{uuid.uuid4().hex[:8]}"
    dlq = f"{topic}-dlq"
    create_topic(kafka.bootstrap, topic, 4)
    create_topic(kafka.bootstrap, dlq, 1)
    group = f"rel-{uuid.uuid4().hex[:8]}"
    rounds = 3 if LONG else 1
    batches = [good_events(f"kk{r}", 80 * SCALE, 40 * SCALE) for r in range(rounds + 1)]
    bad = [b"{not json", b"\xff" * 10]
    config = write_config(
        tmp_path / "config.yaml",
        {
            "kafka": {
                "bootstrap_servers": kafka.bootstrap,
                "topics": [topic],
                "group_id": group,
                "max_batch": 100,
                "reconnect_max_seconds": 2,
                "dead_letter_topic": dlq,
            }
        },
        None,
    )
    sent = 0
    up_seen: list[bool] = []
    with running(config, tmp_path / "daemon.log") as daemon:
        for r in range(rounds + 1):
            produce(kafka.bootstrap, topic, [(f"{r}".encode(), v) for v in batches[r] + bad])
            sent += len(batches[r]) + len(bad)

            def processed_all(s: int = sent) -> bool:
                return daemon.metrics().processed - daemon.metrics().duplicates >= s

            daemon.wait_for(processed_all, 90, f"round {r}")
            if r == rounds:
                break
            daemon.wait_for(
                lambda: _committed_to_end(kafka.bootstrap, topic, group),
                60,
                "commit before the kill",
            )
            kafka.kill()
            daemon.wait_for(lambda: daemon.get("/readyz") is None, 60, "not ready")
            up_seen.append(daemon.get("/readyz") is not None)
            time.sleep(2)
            assert daemon.alive()
            kafka.sh("start")
            daemon.wait_for(lambda: daemon.get("/readyz") is not None, 120, "ready again")
            up_seen.append(True)
        daemon.wait_for(lambda: _committed_to_end(kafka.bootstrap, topic, group), 60, "commit")
        counts = daemon.metrics()
        healthy = daemon.get("/healthz") is not None
        exit_code = daemon.stop()
    good_total = sum(len(b) for b in batches)
    letters = _count_records(kafka.bootstrap, dlq)
    report(
        "kafka_broker_kill",
        sent=sent,
        applied=counts.applied,
        rejected=counts.rejected,
        dead_lettered=letters,
        duplicates=counts.duplicates,
        lost=sent - (counts.applied + counts.rejected),
        daemon_up=healthy and exit_code == 0,
        outages=rounds,
    )
    assert up_seen == [False, True] * rounds
    assert counts.applied == good_total  # redelivered records were skipped by event_id
    assert counts.rejected == len(bad) * (rounds + 1)
    assert letters >= counts.rejected  # a letter re-sent after an outage may be there twice


def _count_records(bootstrap: str, topic: str) -> int:
    committed, ends = offsets(bootstrap, topic, f"count-{uuid.uuid4().hex[:6]}")
    del committed
    return sum(ends.values())


# --- 4. Mosquitto restarted ------------------------------------------------------------------


def test_mosquitto_restart(private_mosquitto, tmp_path):
    broker = private_mosquitto
    prefix = f"rel/{uuid.uuid4().hex[:8]}"
    first, second = (
        good_events("mr1", 50 * SCALE, 20 * SCALE),
        good_events("mr2", 50 * SCALE, 20 * SCALE),
    )
    bad = [b"{nope", b"\x00\x01"]
    letters = tmp_path / "dl" / "dead.jsonl"
    config = mqtt_config(
        tmp_path / "config.yaml", ("127.0.0.1", broker.port), f"{prefix}/#", letters
    )
    with running(config, tmp_path / "daemon.log") as daemon:
        daemon.wait_for(lambda: daemon.get("/readyz") is not None, 30, "subscribed")
        mosquitto_pub_bytes(broker.port, f"{prefix}/a", first + bad)
        daemon.wait_for(lambda: daemon.metrics().processed >= len(first) + 2, 60, "first half")
        broker.sh("stop")
        daemon.wait_for(lambda: daemon.get("/readyz") is None, 30, "not ready")
        time.sleep(2)
        assert daemon.alive()
        broker.sh("start")
        daemon.wait_for(lambda: daemon.get("/readyz") is not None, 60, "ready again")
        mosquitto_pub_bytes(broker.port, f"{prefix}/a", second + bad)
        sent = len(first) + len(second) + 2 * len(bad)
        good, rejects = len(first) + len(second), 2 * len(bad)

        def all_in() -> bool:
            counts = daemon.metrics()
            return counts.applied >= good and counts.rejected >= rejects

        daemon.wait_for(all_in, 60, "second half")
        time.sleep(0.5)
        counts = daemon.metrics()
        healthy = daemon.get("/healthz") is not None
        exit_code = daemon.stop()
    stored = dead_letter_lines(letters)
    # At least once: a message of the first half whose acknowledgement had not reached the
    # broker when it stopped is delivered again after the restart. A good one is then a
    # duplicate (same event id); a bad one has no id and is rejected and dead-lettered again.
    report(
        "mosquitto_restart",
        sent=sent,
        applied=counts.applied,
        rejected=counts.rejected,
        dead_lettered=len(stored),
        duplicates=counts.duplicates,
        lost=sent - (counts.applied + min(counts.rejected, rejects)),
        daemon_up=healthy and exit_code == 0,
    )
    assert counts.applied == good
    assert rejects <= counts.rejected <= rejects + len(bad)  # the first half's bad ones, again
    assert len(stored) == counts.rejected


def _voice_totals(daemon: Daemon) -> dict[str, float]:
    text = daemon.get("/metrics")
    assert text is not None
    out: dict[str, float] = {}
    for (name, labels), v in samples(text).items():
        if dict(labels).get("channel") == "voice" and name in {
            "support_contacts_answered_total",
            "support_contacts_answered_in_sla_total",
            "support_sla_breaches_total",
        }:
            out[name] = out.get(name, 0.0) + v
    return out


def test_mqtt_restart_waits_for_the_held_messages(mqtt_address, tmp_path):
    """A contact waits (T = 20 s) when the daemon stops; its answer, 18.5 s after it queued, is
    published while the daemon is away, and the daemon comes back after the deadline. The
    broker holds the answer for the persistent session: the restarted daemon must apply it
    before its clock decides the deadline (no breach; the contact answered within T)."""
    port = mqtt_address[1]
    prefix = f"rel/{uuid.uuid4().hex[:8]}"
    config = mqtt_config(
        tmp_path / "config.yaml",
        mqtt_address,
        f"{prefix}/#",
        None,
        state={"dir": str(tmp_path / "state")},
    )
    t0 = time.time()

    def event(n: int, kind: str, ts: float) -> bytes:
        body = {"event_id": f"{prefix}-{n}", "type": kind, "ts": iso(ts), "channel": "voice"}
        body |= {"queue": "billing", "contact_id": f"{prefix}-c"}
        return json.dumps(body).encode()

    with running(config, tmp_path / "daemon.log") as first:
        first.wait_for(lambda: first.get("/readyz") is not None, 30, "subscribed")
        mosquitto_pub_bytes(port, f"{prefix}/a", [event(1, "contact.queued", t0 - 15)])
        first.wait_for(lambda: first.metrics().applied >= 1, 30, "the queued event")
    # Away: the answer comes 18.5 s after the contact queued, before its deadline (t0 + 5).
    time.sleep(max(0.0, t0 + 4 - time.time()))
    mosquitto_pub_bytes(port, f"{prefix}/a", [event(2, "contact.answered", t0 + 3.5)])
    # Back well after the deadline and the allowed lateness (5 s).
    time.sleep(max(0.0, t0 + 12 - time.time()))
    with running(config, tmp_path / "daemon.log") as second:
        second.wait_for(lambda: second.get("/readyz") is not None, 30, "ready")
        second.wait_for(lambda: second.metrics().applied >= 1, 30, "the held answer")
        time.sleep(1.5)  # two more ticks
        totals = _voice_totals(second)
    assert totals["support_contacts_answered_total"] == 1
    assert totals["support_contacts_answered_in_sla_total"] == 1
    assert totals["support_sla_breaches_total"] == 0


# --- 5. daemon SIGKILLed and restarted -------------------------------------------------------


def test_daemon_sigkill_and_restart(kafka_bootstrap, make_kafka_topic, tmp_path):
    """Records below the committed offsets C at the kill were applied by the first process
    (commit after apply); the second consumes exactly [C, end). So nothing is lost when the
    second one's processed count equals sum(end - C) and it commits to the end."""
    topic = make_kafka_topic(partitions=4, prefix="rel-sigkill")  # deleted afterwards
    group = f"rel-{uuid.uuid4().hex[:8]}"
    stream = good_events("sk", 6000 * SCALE, 2000 * SCALE)
    bad = list(malformed("sk", big=False).values())
    stream = stream[:5000] + bad + stream[5000:]
    # Keyed by item (contact or ticket id): each item's events stay in order in one partition.
    produce(kafka_bootstrap, topic, [(_item_key(v), v) for v in stream])
    letters = tmp_path / "dl" / "dead.jsonl"
    config = write_config(
        tmp_path / "config.yaml",
        {
            "kafka": {
                "bootstrap_servers": kafka_bootstrap,
                "topics": [topic],
                "group_id": group,
                "max_batch": 100,
            }
        },
        letters,
    )
    first = Daemon(config, tmp_path / "daemon.log").start()
    try:
        first.wait_for(lambda: first.metrics().processed >= len(stream) * 0.3, 60, "30 %")
        first.kill()
    finally:
        if first.alive():
            first.kill()
    committed, ends = offsets(kafka_bootstrap, topic, group)
    done_before = sum(committed.values())
    assert 0 < done_before < len(stream)
    remaining = sum(ends[p] - committed[p] for p in ends)
    with running(config, tmp_path / "daemon.log") as second:
        second.wait_for(lambda: second.metrics().processed >= remaining, 90, "the rest")
        second.wait_for(lambda: _committed_to_end(kafka_bootstrap, topic, group), 30, "commit")
        time.sleep(1)
        counts = second.metrics()
        healthy = second.get("/healthz") is not None
        exit_code = second.stop()
    report(
        "daemon_sigkill",
        sent=len(stream),
        committed_at_kill=done_before,
        applied=counts.applied,
        rejected=counts.rejected,
        duplicates=counts.duplicates,
        dead_lettered=len(dead_letter_lines(letters)),
        lost=len(stream) - done_before - counts.processed,
        daemon_up=healthy and exit_code == 0,
    )
    assert counts.processed == remaining  # exactly [C, end): nothing skipped, nothing extra
    assert counts.duplicates == 0
    # Every rejected record has its letter (one written by both lives when it lay between C
    # and the kill).
    kept = {_raw(r) for r in dead_letter_lines(letters)}
    assert set(bad) <= kept


# --- 6. the dead-letter disk full ------------------------------------------------------------


def test_kafka_full_dead_letter_disk(kafka_bootstrap, make_kafka_topic, full_disk, tmp_path):
    """While letters cannot be written (ENOSPC) the offsets of their records are not committed
    and the daemon keeps running; once there is room, every letter is written exactly once and
    the offsets are committed to the end."""
    letters, free = full_disk
    topic = make_kafka_topic(partitions=1, prefix="rel-enospc")  # deleted afterwards
    group = f"rel-{uuid.uuid4().hex[:8]}"
    good = good_events("fd", 40, 20)
    bad = [json.dumps({"bad": i}).encode() for i in range(5)] + [b"\xfe\xff"]
    stream = good[:30] + bad + good[30:]
    config = write_config(
        tmp_path / "config.yaml",
        {
            "kafka": {
                "bootstrap_servers": kafka_bootstrap,
                "topics": [topic],
                "group_id": group,
                "max_batch": 10,
            }
        },
        letters,
    )
    produce(kafka_bootstrap, topic, [(b"k", v) for v in stream])
    with running(config, tmp_path / "daemon.log") as daemon:
        daemon.wait_for(lambda: daemon.metrics().dead_letter_failures >= 2, 60, "ENOSPC")
        time.sleep(2)
        committed, ends = offsets(kafka_bootstrap, topic, group)
        # The first bad record is at offset 30; its batch (offsets 30..39) is never committed.
        assert committed[0] <= 30, (committed, ends)
        stuck_at = committed[0]
        assert daemon.get("/healthz") is not None
        assert daemon.get("/readyz") is None  # 503 while letters cannot be stored
        failures_while_full = daemon.metrics().dead_letter_failures
        free()
        daemon.wait_for(lambda: _committed_to_end(kafka_bootstrap, topic, group), 60, "commit")
        daemon.wait_for(lambda: daemon.get("/readyz") is not None, 30, "ready again")
        counts = daemon.metrics()
        healthy = daemon.get("/healthz") is not None
        exit_code = daemon.stop()
    stored = dead_letter_lines(letters)
    report(
        "kafka_full_dead_letter_disk",
        sent=len(stream),
        applied=counts.applied,
        rejected=counts.rejected,
        dead_lettered=len(stored),
        duplicates=counts.duplicates,
        committed_while_full=stuck_at,
        write_failures=failures_while_full,
        lost=len(stream) - counts.processed,
        daemon_up=healthy and exit_code == 0,
    )
    assert counts.applied == len(good)
    assert counts.rejected == len(bad)
    assert sorted(r["position"] for r in stored) == sorted(
        f"{topic}/0/{30 + i}" for i in range(len(bad))
    )
    assert "dead_letter_write_failed" in daemon.tail(200_000)
    assert daemon.tail(200_000).count("dead_letter_write_failed") == 1
    assert daemon.tail(200_000).count("dead_letter_sink_recovered") == 1


def test_mqtt_full_dead_letter_disk_then_sigkill(mqtt_address, full_disk, tmp_path):
    """MQTT: a message whose letter cannot be written is not acknowledged. The daemon is
    SIGKILLed in that state; after the disk has room again the restarted daemon receives it
    again (persistent session) and its letter is written."""
    port = mqtt_address[1]
    letters, free = full_disk
    prefix = f"rel/{uuid.uuid4().hex[:8]}"
    good = good_events("mf", 10, 5)
    bad = [b"{broken", b"\x80\x81"]
    config = mqtt_config(tmp_path / "config.yaml", mqtt_address, f"{prefix}/#", letters)
    first = Daemon(config, tmp_path / "daemon.log").start()
    try:
        first.wait_for(lambda: first.get("/readyz") is not None, 30, "subscribed")
        mosquitto_pub_bytes(port, f"{prefix}/a", bad + good)
        first.wait_for(lambda: first.metrics().dead_letter_failures >= 2, 60, "ENOSPC")
        before = first.metrics()
        first.kill()
    finally:
        if first.alive():
            first.kill()
    assert before.rejected >= 1
    free()
    with running(config, tmp_path / "daemon.log") as second:
        sent = len(bad) + len(good)
        second.wait_for(lambda: second.metrics().processed >= sent, 60, "redelivery")
        time.sleep(0.5)
        counts = second.metrics()
        healthy = second.get("/healthz") is not None
        exit_code = second.stop()
    stored = dead_letter_lines(letters)
    report(
        "mqtt_full_dead_letter_disk_sigkill",
        sent=sent,
        applied=counts.applied,
        rejected=counts.rejected,
        dead_lettered=len(stored),
        duplicates=counts.duplicates,
        lost=sent - counts.processed,
        daemon_up=healthy and exit_code == 0,
    )
    # Nothing was acknowledged while the first letter could not be written: everything came
    # again, and each rejected message's letter is in the file once.
    assert counts.processed == sent
    assert counts.applied == len(good)
    assert len(stored) == len(bad)
