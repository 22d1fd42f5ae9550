"""A local server behaving like Slack's incoming webhook, a fake clock, notification builders."""

from __future__ import annotations

import asyncio
import json
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Self

import httpx
from aiohttp import web
from pydantic import SecretStr

from support_monitor.alerts.notify.delivery import Deliverer, RetryPolicy, TokenBucket
from support_monitor.alerts.notify.message import AlertInfo, Notification
from support_monitor.alerts.notify.slack import SlackNotifier
from support_monitor.monitor.stats import DaemonStats

SEED = 7
"""The retry jitter's seed in :func:`deliver_once`."""


@dataclass
class Reply:
    status: int = 200
    body: str = "ok"
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0
    """Seconds the answer takes (the message has arrived; it counts once answered)."""


class SlackLike:
    """POST /hook answers from ``script`` (then 200 ok); records each JSON body and arrival
    (``received``: the accepted ones)."""

    def __init__(self, script: list[Reply] | None = None, *, refuse_blocks: bool = False) -> None:
        self.script = list(script or [])
        self.refuse_blocks = refuse_blocks
        """Answer 400 ``invalid_blocks`` to every message with ``blocks`` (before ``script``)."""
        self.requests: list[dict[str, Any]] = []
        """Every JSON body, whatever the answer."""
        self.received: list[dict[str, Any]] = []
        self.arrivals: list[float] = []
        self.headers: list[dict[str, str]] = []
        self.on_request: Callable[[dict[str, Any]], None] | None = None
        self._runner: web.AppRunner | None = None
        self.url = ""

    async def _hook(self, request: web.Request) -> web.Response:
        arrived = time.time()
        text = await request.text()
        try:
            body = json.loads(text)
        except ValueError:
            return web.Response(status=400, text="invalid_payload")
        self.requests.append(body)
        if self.refuse_blocks and "blocks" in body:
            return web.Response(status=400, text="invalid_blocks")
        reply = self.script.pop(0) if self.script else Reply()
        if reply.delay:
            await asyncio.sleep(reply.delay)
        if reply.status == 200:
            self.received.append(body)
            self.arrivals.append(arrived)
            self.headers.append(dict(request.headers))
            if self.on_request is not None:
                self.on_request(body)
        return web.Response(status=reply.status, text=reply.body, headers=reply.headers)

    async def __aenter__(self) -> Self:
        app = web.Application()
        app.router.add_post("/hook", self._hook)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        port = self._runner.addresses[0][1]
        self.url = f"http://127.0.0.1:{port}/hook"
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._runner is not None
        await self._runner.cleanup()


class FakeClock:
    """Time only moves when someone sleeps."""

    def __init__(self, start: float = 1_000_000.0) -> None:
        self.t = start
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.t

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.t += seconds


def info(fp: str = "abc", channel: str = "voice", **over: Any) -> AlertInfo:
    data: dict[str, Any] = {
        "fingerprint": fp,
        "labels": {"alertname": "LongWait", "channel": channel, "severity": "critical"},
        "annotations": {
            "summary": f"{channel}: long wait",
            "description": "details",
            "runbook_url": "https://runbooks.example/r#longwait",
            "dashboard_url": "https://grafana.example/d/support-channel",
        },
        "value": 95.0,
        "threshold": 60.0,
        "expected": None,
        "active_at": 1_000.0,
        "fired_at": 1_030.0,
        "resolved_at": None,
    }
    data.update(over)
    return AlertInfo(**data)


def notification(
    key: str = "k1",
    *,
    created: float = 1_000_000.0,
    state: str = "firing",
    receiver: str = "slack",
    alerts: tuple[AlertInfo, ...] | None = None,
) -> Notification:
    return Notification(
        key=key,
        receiver=receiver,
        state=state,  # type: ignore[arg-type]
        kind="resolved" if state == "resolved" else "new",
        created=created,
        group={"alertname": "LongWait"},
        alerts=alerts or (info(),),
    )


async def deliver_once(
    server: SlackLike | None,
    n: Notification,
    *,
    retry_for: float = 3600.0,
    url: str | None = None,
) -> tuple[str, dict[tuple[str, str], int], list[float]]:
    """Deliver ``n`` to ``server`` (or ``url``) with a Slack notifier on a fake clock: the
    result, the notification counters and the sleeps (backoffs) taken."""
    clock = FakeClock()
    stats = DaemonStats()
    target = url if url is not None else server.url if server is not None else ""
    async with httpx.AsyncClient() as client:
        notifier = SlackNotifier("slack", SecretStr(target), client, 5.0)
        bucket = TokenBucket(1.0, 3, clock, clock.sleep)
        deliverer = Deliverer(
            notifier,
            bucket,
            stats,
            RetryPolicy(retry_for=retry_for),
            clock=clock,
            sleep=clock.sleep,
            rng=random.Random(SEED),
        )
        n = n if n.created != 1_000_000.0 else notification(created=clock())
        result = await deliverer.deliver(n)
    return result, dict(stats.notifications), clock.sleeps
