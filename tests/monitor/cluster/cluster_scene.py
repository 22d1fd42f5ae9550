"""The three-replica scene: six channels' config and events, a webhook receiver that keeps
every alert, and what the replicas serve."""

from __future__ import annotations

import json
import threading
import time
import urllib.error
from collections import Counter
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from tests.monitor.cluster.replicas import Node

CONTACT_CHANNELS = ("voice", "chat", "video")


TICKET_CHANNELS = ("email", "web", "social")


def cluster_config() -> dict[str, Any]:
    channels: dict[str, Any] = {
        ch: {
            "answer_seconds": 20,
            "short_abandon_seconds": 5,
            "service_level_target": 0.8,
            "queues": ["a", "b"],
        }
        for ch in CONTACT_CHANNELS
    }
    channels.update(
        {
            ch: {"first_response_seconds": 3600, "resolution_seconds": 86400, "queues": ["default"]}
            for ch in TICKET_CHANNELS
        }
    )
    return {"windows": ["5m", "1h"], "channels": channels}


def cluster_events(tag: str, contacts: int, tickets: int) -> list[tuple[str, str]]:
    """(channel, JSON line), each channel's events in time order; contacts wait 10 s (answered)
    or 3 s (abandoned), so some are always waiting while the stream runs."""
    base = time.time() - 1800
    out: list[tuple[float, str, str]] = []
    n = 0

    def add(at: float, channel: str, kind: str, **fields: Any) -> None:
        nonlocal n
        n += 1
        ts = datetime.fromtimestamp(base + at, UTC).isoformat()
        event = {"event_id": f"{tag}-{n}", "type": kind, "ts": ts, "channel": channel, **fields}
        out.append((at, channel, json.dumps(event, separators=(",", ":"))))

    for ch in CONTACT_CHANNELS:
        for i in range(contacts):
            cid, queue, t = f"{tag}-{ch}-c{i}", ("a", "b")[i % 2], i * 1.0
            add(t, ch, "contact.queued", queue=queue, contact_id=cid)
            if i % 5 == 0:
                add(t + 3, ch, "contact.abandoned", queue=queue, contact_id=cid)
            else:
                wait = 40 if i % 5 == 1 else 10
                add(t + wait, ch, "contact.answered", queue=queue, contact_id=cid)
                add(t + wait + 30, ch, "contact.ended", queue=queue, contact_id=cid)
    for ch in TICKET_CHANNELS:
        for i in range(tickets):
            tid, t = f"{tag}-{ch}-t{i}", i * 2.0
            add(t, ch, "ticket.created", ticket_id=tid, tags=["complaint"] if i % 10 == 0 else [])
            add(t + 100, ch, "ticket.responded", ticket_id=tid)
            if i % 3:
                add(t + 200, ch, "ticket.solved", ticket_id=tid)
                add(t + 300, ch, "ticket.rated", ticket_id=tid, rating=1 + i % 5)
    out.sort(key=lambda e: e[0])
    return [(ch, line) for _, ch, line in out]


class Hook(ThreadingHTTPServer):
    """A webhook receiver that keeps every alert of every payload it is posted (or, while
    ``failing``, refuses them)."""

    def __init__(self) -> None:
        self.alerts: list[tuple[str, str, str, str]] = []
        self.lock = threading.Lock()
        self.failing = False
        """While set, every POST is answered 503 (and counted in ``refused``)."""
        self.refused = 0
        hook = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                if hook.failing:
                    with hook.lock:
                        hook.refused += 1
                    self.send_response(503)
                    self.end_headers()
                    return
                with hook.lock:
                    for a in body["alerts"]:
                        channel = a["labels"].get("channel", "")
                        hook.alerts.append((a["fingerprint"], a["status"], a["startsAt"], channel))
                self.send_response(200)
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        super().__init__(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server_address[1]}/hook"


def scrape(node: Node) -> dict[Any, float]:
    try:
        return node.metrics()
    except (urllib.error.URLError, OSError):
        return {}


def served(nodes: list[Node]) -> Counter[str]:
    """Partition -> how many live replicas serve it (caught up)."""
    served: Counter[str] = Counter()
    for node in nodes:
        for (name, labels), value in scrape(node).items():
            if name == "support_monitor_cluster_partition_ready" and value == 1:
                served[dict(labels)["partition"]] += 1
    return served
