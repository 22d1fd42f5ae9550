"""Soak: ``support-monitor run`` fed over Kafka at a fixed rate with ever-new contact and ticket
ids, sampled every ``--interval`` seconds: RSS, Kafka lag, loop lag, events applied/rejected.

Every id is new, so everything the engine keeps per item would grow forever without bounds. The
bench config sets small ``limits`` and a small de-duplication window (below), so the bounds are
reached within a minute or two and RSS must level off there: the last third of the samples may
not be more than ``--tolerance`` (default 10 %) above the middle third's peak.

Traffic, in rounds of 20 events: 3 contacts that complete (queued, answered, ended: 45 %), 4
contacts queued and never answered (20 %), 2 tickets that complete (created, responded, solved:
30 %) and 1 ticket created and never touched again (5 %). The never-finished ones fill
``max_open_contacts`` / ``max_open_tickets``; past them new items are refused
(``reason="capacity"``, dead-lettered to a file in a temporary directory).

    .venv/bin/python bench/soak.py [--rate 5000] [--duration 600] [--interval 10]
                                   [--bootstrap 127.0.0.1:19092] [--tolerance 0.1]
                                   [--json-out FILE]

Needs the local Kafka (deploy/local/kafka.sh start). See docs/reliability.md.
"""

from __future__ import annotations

import argparse
import json
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
import uuid
from pathlib import Path
from typing import Any

import yaml
from confluent_kafka import Consumer, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic
from prometheus_client.parser import text_string_to_metric_families

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from tests.support import CONFIG  # noqa: E402

LIMITS = {
    "max_open_contacts": 20_000,
    "max_open_tickets": 20_000,
    "max_solved_tickets": 10_000,
    "max_early_outcomes": 1_000,
}
DEDUP_MAX_IDS = 100_000
PARTITIONS = 4


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def iso(ts: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(ts)) + f".{int(ts % 1 * 1000):03d}Z"


class Traffic:
    """Events with ever-new ids; each item's events share a key (its partition, its order)."""

    def __init__(self, tag: str) -> None:
        self.tag = tag
        self.n = 0
        self.events = 0

    def _event(self, kind: str, channel: str, ts: float, **fields: Any) -> bytes:
        self.events += 1
        event = {
            "event_id": f"{self.tag}-{self.events}",
            "type": kind,
            "ts": iso(ts),
            "channel": channel,
            **fields,
        }
        return json.dumps(event, separators=(",", ":")).encode()

    def unit(self) -> list[tuple[bytes, bytes]]:
        """One round of 20 events in the mix of the module docstring."""
        now = time.time()
        out: list[tuple[bytes, bytes]] = []
        for _ in range(3):  # 3 complete contacts = 9 events
            self.n += 1
            cid = f"{self.tag}-c{self.n}"
            key = cid.encode()
            queue = ("billing", "tech")[self.n % 2]
            out.append(
                (key, self._event("contact.queued", "voice", now - 2, queue=queue, contact_id=cid))
            )
            out.append(
                (
                    key,
                    self._event("contact.answered", "voice", now - 1, queue=queue, contact_id=cid),
                )
            )
            out.append(
                (key, self._event("contact.ended", "voice", now, queue=queue, contact_id=cid))
            )
        for _ in range(4):  # 4 contacts left waiting
            self.n += 1
            cid = f"{self.tag}-w{self.n}"
            out.append(
                (
                    cid.encode(),
                    self._event("contact.queued", "chat", now, queue="sales", contact_id=cid),
                )
            )
        for _ in range(2):  # 2 complete tickets = 6 events
            self.n += 1
            tid = f"{self.tag}-t{self.n}"
            out.append(
                (
                    tid.encode(),
                    self._event("ticket.created", "email", now - 2, ticket_id=tid, tags=[]),
                )
            )
            out.append(
                (tid.encode(), self._event("ticket.responded", "email", now - 1, ticket_id=tid))
            )
            out.append((tid.encode(), self._event("ticket.solved", "email", now, ticket_id=tid)))
        self.n += 1
        tid = f"{self.tag}-o{self.n}"  # 1 ticket left open
        out.append(
            (tid.encode(), self._event("ticket.created", "email", now, ticket_id=tid, tags=[]))
        )
        return out


def feed(
    bootstrap: str,
    topic: str,
    rate: float,
    duration: float,
    *,
    stop: threading.Event,
    sent: list[int],
) -> None:
    """Produce ``rate`` events per second for ``duration`` seconds, paced every 50 ms."""
    producer = Producer(
        {"bootstrap.servers": bootstrap, "linger.ms": 10, "queue.buffering.max.messages": 1_000_000}
    )
    traffic = Traffic(uuid.uuid4().hex[:6])
    start = time.monotonic()
    pending: list[tuple[bytes, bytes]] = []
    while not stop.is_set():
        elapsed = time.monotonic() - start
        if elapsed >= duration:
            break
        due = int(rate * elapsed) - sent[0]
        while due > 0:
            if not pending:
                pending = traffic.unit()
            key, value = pending.pop(0)
            try:
                producer.produce(topic, value=value, key=key)
            except BufferError:
                producer.poll(0.05)
                pending.insert(0, (key, value))
                continue
            sent[0] += 1
            due -= 1
        producer.poll(0)
        time.sleep(0.05)
    producer.flush(30)


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def scrape(port: int) -> dict[str, float]:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
        text = response.read().decode()
    out = {
        "applied": 0.0,
        "rejected": 0.0,
        "capacity": 0.0,
        "lag": 0.0,
        "loop_lag": 0.0,
        "open_contacts_cap": 0.0,
    }
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == "support_monitor_events_total":
                out["applied"] += sample.value
            elif sample.name == "support_monitor_events_rejected_total":
                out["rejected"] += sample.value
                if sample.labels.get("reason") == "capacity":
                    out["capacity"] += sample.value
            elif sample.name == "support_monitor_kafka_partition_lag":
                out["lag"] += sample.value
            elif sample.name == "support_monitor_loop_lag_seconds":
                out["loop_lag"] = sample.value
    return out


def broker_lag(bootstrap: str, topic: str, group: str) -> int:
    """End offsets minus the group's committed offsets (read by an independent client)."""
    consumer = Consumer(
        {"bootstrap.servers": bootstrap, "group.id": group, "enable.auto.commit": False}
    )
    try:
        tps = [TopicPartition(topic, p) for p in range(PARTITIONS)]
        committed = {tp.partition: max(tp.offset, 0) for tp in consumer.committed(tps, 10)}
        return sum(
            consumer.get_watermark_offsets(tp, timeout=10)[1] - committed[tp.partition]
            for tp in tps
        )
    finally:
        consumer.close()


def stop_daemon(daemon: subprocess.Popen[bytes], tmp: Path) -> None:
    """SIGTERM (SIGKILL after 30 s); show the log's tail if it failed; remove its files."""
    daemon.send_signal(signal.SIGTERM)
    try:
        daemon.wait(30)
    except subprocess.TimeoutExpired:
        daemon.kill()
        daemon.wait(10)
    if daemon.returncode != 0:
        print((tmp / "daemon.log").read_text(errors="replace")[-3000:])
    shutil.rmtree(tmp, ignore_errors=True)  # the config, the log and the dead letters


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rate", type=float, default=5000.0, help="events per second")
    parser.add_argument("--duration", type=float, default=600.0, help="seconds of feeding")
    parser.add_argument("--interval", type=float, default=10.0, help="seconds between samples")
    parser.add_argument("--bootstrap", default="127.0.0.1:19092")
    parser.add_argument(
        "--tolerance",
        type=float,
        default=0.10,
        help="allowed RSS growth of the last third over the middle third",
    )
    parser.add_argument("--json-out", type=Path, default=None)
    args = parser.parse_args()

    topic = f"soak-{uuid.uuid4().hex[:8]}"
    group = f"soak-{uuid.uuid4().hex[:8]}"
    admin = AdminClient({"bootstrap.servers": args.bootstrap})
    admin.create_topics([NewTopic(topic, PARTITIONS, 1)])[topic].result(30)
    tmp = Path(tempfile.mkdtemp(prefix="soak-"))
    data = json.loads(json.dumps(CONFIG))
    data["sources"] = {
        "simulator": {"enabled": False},
        "kafka": {"bootstrap_servers": args.bootstrap, "topics": [topic], "group_id": group},
    }
    data["limits"] = LIMITS
    data["ingest"] = {"dedup_max_ids": DEDUP_MAX_IDS}
    data["dead_letter"] = {"path": str(tmp / "dead.jsonl")}
    data["logging"] = {"level": "warning", "format": "json"}
    config = tmp / "config.yaml"
    config.write_text(yaml.safe_dump(data))
    port = free_port()
    log = (tmp / "daemon.log").open("wb")
    exe = Path(sys.executable).parent / "support-monitor"
    daemon = subprocess.Popen(
        [str(exe), "run", "--config", str(config), "--listen", f"127.0.0.1:{port}"],
        stdout=log,
        stderr=log,
    )
    print(
        f"soak: {args.rate:.0f} events/s for {args.duration:.0f} s, topic {topic}, "
        f"limits {LIMITS}, dedup_max_ids {DEDUP_MAX_IDS}, daemon pid {daemon.pid}, "
        f"files in {tmp}",
        flush=True,
    )
    rows: list[dict[str, float]] = []
    stop = threading.Event()
    sent = [0]
    feeder = threading.Thread(
        target=feed,
        args=(args.bootstrap, topic, args.rate, args.duration),
        kwargs={"stop": stop, "sent": sent},
        daemon=True,
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                scrape(port)
                break
            except OSError:
                if daemon.poll() is not None or time.monotonic() > deadline:
                    raise SystemExit("the daemon did not come up") from None
                time.sleep(0.2)
        start = time.monotonic()
        feeder.start()
        header = (
            f"{'t/s':>5} {'sent':>9} {'applied':>9} {'rejected':>9} {'capacity':>9} "
            f"{'RSS/MiB':>8} {'lag':>7} {'brokerlag':>9} {'looplag/s':>9}"
        )
        print(header, flush=True)
        next_sample = start + args.interval
        while feeder.is_alive() or not rows or time.monotonic() < next_sample:
            time.sleep(max(0.0, next_sample - time.monotonic()))
            next_sample += args.interval
            if daemon.poll() is not None:
                raise SystemExit(f"the daemon exited with {daemon.returncode}")
            metrics = scrape(port)
            row = {
                "t": round(time.monotonic() - start),
                "sent": sent[0],
                "applied": metrics["applied"],
                "rejected": metrics["rejected"],
                "capacity": metrics["capacity"],
                "rss_mib": rss_kib(daemon.pid) / 1024,
                "lag": metrics["lag"],
                "broker_lag": broker_lag(args.bootstrap, topic, group),
                "loop_lag": metrics["loop_lag"],
            }
            rows.append(row)
            print(
                f"{row['t']:>5} {row['sent']:>9} {row['applied']:>9.0f} "
                f"{row['rejected']:>9.0f} {row['capacity']:>9.0f} {row['rss_mib']:>8.1f} "
                f"{row['lag']:>7.0f} {row['broker_lag']:>9} {row['loop_lag']:>9.3f}",
                flush=True,
            )
            if not feeder.is_alive() and rows[-1]["t"] >= args.duration:
                break
    finally:
        stop.set()
        if feeder.is_alive():
            feeder.join(30)
        log.close()
        stop_daemon(daemon, tmp)
        admin.delete_topics([topic])[topic].result(30)
    third = max(1, len(rows) // 3)
    middle = max(r["rss_mib"] for r in rows[third : 2 * third] or rows)
    last = max(r["rss_mib"] for r in rows[2 * third :] or rows)
    levelled = last <= middle * (1 + args.tolerance)
    print(
        f"RSS peak: middle third {middle:.1f} MiB, last third {last:.1f} MiB -> "
        f"{'levelled off' if levelled else 'STILL GROWING'} (tolerance {args.tolerance:.0%}); "
        f"daemon exit code {daemon.returncode}"
    )
    if args.json_out is not None:
        args.json_out.write_text(
            json.dumps(
                {
                    "rate": args.rate,
                    "duration": args.duration,
                    "limits": LIMITS,
                    "rows": rows,
                    "levelled_off": levelled,
                },
                indent=1,
            )
        )
    return 0 if levelled and daemon.returncode == 0 else 1


if __name__ == "__main__":
    raise SystemExit(main())
