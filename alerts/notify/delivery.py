"""Getting notifications to one receiver: rate limit, retry schedule, counting.

The notifier (Slack, webhook) only maps one HTTP exchange to an ``Outcome``; everything about
time (token bucket, Retry-After, backoff with jitter, giving up) is here, with the clock, sleep
and random source injected so tests run on a fake clock.

Each notification has its own retry schedule, so one that keeps failing does not hold back the
others of its receiver (no head-of-line blocking). Two rules keep order where it matters:

- a notification waits while an earlier pending one of the same receiver shares an alert with
  it (firing before resolved, for the same alert, always);
- a 429 pauses the whole receiver (Slack limits per webhook) for ``Retry-After`` (capped at
  ``max_retry_after``; 1 s without the header) and does not count towards the backoff; 408,
  5xx, network errors and timeouts back off exponentially with jitter per notification.
"""

from __future__ import annotations

import asyncio
import math
import random
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Literal, Protocol

import structlog

from support_monitor.alerts.notify.message import Notification
from support_monitor.monitor.errors import raising_line
from support_monitor.monitor.stats import DaemonStats

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
    rate_limited: bool = False
    """A 429: wait ``retry_after`` (receiver-wide), not the per-message backoff."""


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


@dataclass(slots=True)
class _Retry:
    failures: int = 0
    """Attempts that failed with 408/5xx/network errors: the backoff exponent (429s excluded)."""
    tries: int = 0
    due: float = -math.inf


class Deliverer:
    """Sends the notifications of one receiver, each on its own retry schedule."""

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
        self._retries: dict[str, _Retry] = {}
        self._paused_until = -math.inf
        self._outage: tuple[float, int] | None = None
        """While the receiver fails: (when its first retry was logged, retries since). One
        ``notification_retry`` warning opens an outage, the rest are debug lines, and the next
        delivery logs ``receiver_recovered``."""

    def now(self) -> float:
        return self._clock()

    def _count(self, result: str) -> None:
        self.stats.notifications[(self.notifier.name, result)] += 1

    def due(self, key: str) -> float:
        """When ``key`` may be tried next (its backoff, and any 429 pause of the receiver)."""
        retry = self._retries.get(key)
        return max(self._paused_until, retry.due if retry is not None else -math.inf)

    def next_due(self, pending: Sequence[Notification]) -> tuple[Notification | None, float | None]:
        """The first of ``pending`` (in order) that may be tried now, or ``None`` and when the
        next one may (``None``: nothing pending). An expired one is returned at once (it is
        dropped without being sent)."""
        if len(self._retries) > len(pending):  # settled elsewhere (e.g. outbox_full): forget
            keys = {n.key for n in pending}
            for key in [k for k in self._retries if k not in keys]:
                del self._retries[key]
        now = self._clock()
        blocked: set[str] = set()
        earliest: float | None = None
        for n in pending:
            fingerprints = {a.fingerprint for a in n.alerts}
            if now - n.created > self.policy.retry_for:
                return n, None
            if blocked.isdisjoint(fingerprints):
                due = self.due(n.key)
                if due <= now:
                    return n, None
                earliest = due if earliest is None else min(earliest, due)
            blocked |= fingerprints
        return None, earliest

    async def attempt(self, n: Notification, *, take_token: bool = True) -> str | None:
        """One try; the result once settled (``ok``, ``failed``, ``dropped``), ``None`` when it
        is to be retried (see ``due``). Never raises for what the notifier does.
        ``take_token``: wait for the receiver's rate limit first (``False``: the caller did)."""
        retry = self._retries.setdefault(n.key, _Retry())
        if self._clock() - n.created > self.policy.retry_for:
            self._count("dropped")
            log.error("notification_expired", receiver=n.receiver, key=n.key, attempts=retry.tries)
            self._retries.pop(n.key, None)
            self._outage = None  # said: the next retry opens an outage with a warning again
            return "dropped"
        if take_token:
            await self.bucket.acquire()
        started = self._clock()  # an outage starts with the attempt that fails (a hang: its start)
        try:
            outcome = await self.notifier.send(n)
        except Exception as exc:  # noqa: BLE001 - one message's failure must not stop delivery
            # The notifiers turn every answer and transport failure into an Outcome: what
            # reaches here is a defect in building the message. Said apart from a receiver's
            # refusal, with the raising line (not the text: it may quote the URL).
            kind, file, line = raising_line(exc)
            log.error(  # noqa: TRY400 - no traceback: its text may quote the URL
                "notification_internal_error",
                receiver=n.receiver,
                key=n.key,
                error=kind,
                where=f"{file}:{line}",
            )
            outcome = Outcome("failed", None, kind)
        retry.tries += 1
        self._count(outcome.result)
        if outcome.result == "ok":
            if self._outage is not None:
                since, retries = self._outage
                self._outage = None
                log.warning(
                    "receiver_recovered",
                    receiver=n.receiver,
                    retries=retries,
                    seconds=round(self._clock() - since, 3),
                )
            log.info(
                "notification_sent",
                receiver=n.receiver,
                state=n.state,
                key=n.key,
                alerts=len(n.alerts),
            )
            self._retries.pop(n.key, None)
            return "ok"
        if outcome.result == "failed":
            log.error(
                "notification_rejected",
                receiver=n.receiver,
                key=n.key,
                status=outcome.status,
                error=outcome.error,
            )
            self._retries.pop(n.key, None)
            self._outage = None  # the receiver answered (and this line says so)
            return "failed"
        now = self._clock()
        if outcome.rate_limited:
            wait = outcome.retry_after if outcome.retry_after is not None else self.policy.base
            delay = min(wait, self.policy.max_retry_after)
            self._paused_until = max(self._paused_until, now + delay)
        else:
            delay = self.policy.backoff(retry.failures, self._rng)
            retry.failures += 1
            retry.due = now + delay
        outage = self._outage
        self._outage = (started, 1) if outage is None else (outage[0], outage[1] + 1)
        (log.warning if outage is None else log.debug)(
            "notification_retry",
            receiver=n.receiver,
            key=n.key,
            status=outcome.status,
            error=outcome.error,
            delay=round(delay, 3),
            attempt=retry.tries,
        )
        return None

    async def deliver(self, n: Notification) -> str:
        """Only ``n``: tries until delivered, rejected, or ``retry_for`` after creation."""
        while True:
            result = await self.attempt(n)
            if result is not None:
                return result
            await self._sleep(max(0.0, self.due(n.key) - self._clock()))
