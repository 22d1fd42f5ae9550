"""Getting one notification to one receiver: rate limit, retry policy, counting.

The notifier (Slack, webhook) only maps one HTTP exchange to an ``Outcome``; everything about
time (token bucket, Retry-After, backoff with jitter, giving up) is here, with the clock, sleep
and random source injected so tests run on a fake clock.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Literal, Protocol

import structlog

from alerts.notify.message import Notification
from monitor.stats import DaemonStats

Clock = Callable[[], float]
Sleep = Callable[[float], Awaitable[None]]

RESULTS = ("ok", "retry", "failed", "dropped")
"""``support_monitor_notifications_total{result}``: delivered; attempt failed and will be retried;
rejected for good (not retried); given up or discarded without delivery."""

log = structlog.get_logger("support_monitor.alerts.delivery")


@dataclass(frozen=True, slots=True)
class Outcome:
    result: Literal["ok", "retry", "failed"]
    status: int | None = None
    error: str = ""
    retry_after: float | None = None


class Notifier(Protocol):
    name: str

    async def send(self, notification: Notification) -> Outcome: ...


class TokenBucket:
    """At most ``rate`` per second on average, ``burst`` back to back."""

    def __init__(self, rate: float, burst: int, clock: Clock, sleep: Sleep) -> None:
        self.rate = rate
        self.burst = float(burst)
        self._tokens = float(burst)
        self._clock = clock
        self._sleep = sleep
        self._stamp = clock()

    def _refill(self) -> None:
        now = self._clock()
        self._tokens = min(self.burst, self._tokens + (now - self._stamp) * self.rate)
        self._stamp = now

    async def acquire(self) -> None:
        self._refill()
        while self._tokens < 1.0:
            await self._sleep((1.0 - self._tokens) / self.rate)
            self._refill()
        self._tokens -= 1.0


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    base: float = 1.0
    cap: float = 60.0
    retry_for: float = 3600.0
    max_retry_after: float = 600.0

    def backoff(self, attempt: int, rng: random.Random) -> float:
        """Exponential (base * 2^attempt, capped) with jitter in [50%, 100%]."""
        delay: float = min(self.cap, self.base * 2.0**attempt)
        return delay * (0.5 + rng.random() / 2)


class Deliverer:
    """Sends notifications for one receiver in order; returns when each is settled."""

    def __init__(
        self,
        notifier: Notifier,
        bucket: TokenBucket,
        stats: DaemonStats,
        policy: RetryPolicy,
        *,
        clock: Clock = time.time,
        sleep: Sleep = asyncio.sleep,
        rng: random.Random | None = None,
    ) -> None:
        self.notifier = notifier
        self.bucket = bucket
        self.stats = stats
        self.policy = policy
        self._clock = clock
        self._sleep = sleep
        self._rng = rng or random.Random()  # noqa: S311 - jitter, not crypto

    def _count(self, result: str) -> None:
        self.stats.notifications[(self.notifier.name, result)] += 1

    async def deliver(self, n: Notification) -> str:
        """Retries until delivered, rejected, or ``retry_for`` after creation; returns result."""
        attempt = 0
        while True:
            if self._clock() - n.created > self.policy.retry_for:
                self._count("dropped")
                log.error(
                    "notification_expired", receiver=n.receiver, key=n.key, attempts=attempt
                )
                return "dropped"
            await self.bucket.acquire()
            outcome = await self.notifier.send(n)
            self._count(outcome.result)
            if outcome.result == "ok":
                log.info("notification_sent", receiver=n.receiver, state=n.state, key=n.key,
                         alerts=len(n.alerts))
                return "ok"
            if outcome.result == "failed":
                log.error("notification_rejected", receiver=n.receiver, key=n.key,
                          status=outcome.status, error=outcome.error)
                return "failed"
            if outcome.retry_after is not None:
                delay = min(outcome.retry_after, self.policy.max_retry_after)
            else:
                delay = self.policy.backoff(attempt, self._rng)
            log.warning("notification_retry", receiver=n.receiver, key=n.key,
                        status=outcome.status, error=outcome.error, delay=round(delay, 3),
                        attempt=attempt + 1)
            attempt += 1
            await self._sleep(delay)
