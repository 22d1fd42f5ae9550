"""Wiring of detectors, alert rules and delivery into the daemon. The daemon and replay only use
this class.

Evaluation is synchronous and pure (``handlers``, called by the TickRoad with ``now``): detector
suite, then rules, then transition records. Notifications are committed and sent only in live
mode, i.e. once ``deliver_forever`` (or ``async with alerting``) has restored the persisted
state. Replay and backtest evaluate exactly the same rules; with ``on_plan`` they also plan the
messages (what backtest reports) and hand them to that callback, never to a receiver.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections import Counter
from collections.abc import Callable, Container, Iterable, Mapping, Sequence
from types import TracebackType
from typing import Any, Protocol, Self

import httpx
import msgspec
import structlog

from support_monitor.alerts import persist
from support_monitor.alerts.config import AlertRule, AlertSettings, NotifierSettings, SlackReceiver
from support_monitor.alerts.facts import channel_facts, judged_windows
from support_monitor.alerts.inhibit import Inhibitor
from support_monitor.alerts.notify.alertmanager import AlertmanagerClient, am_alert, mark_sent
from support_monitor.alerts.notify.delivery import (
    RESULTS,
    Deliverer,
    Notifier,
    Outcome,
    RetryPolicy,
    TokenBucket,
)
from support_monitor.alerts.notify.message import Notification
from support_monitor.alerts.notify.slack import SlackNotifier
from support_monitor.alerts.notify.webhook import WebhookNotifier
from support_monitor.alerts.outbox import Outbox
from support_monitor.alerts.planner import Planner, Renderer
from support_monitor.alerts.routing import Router
from support_monitor.alerts.rules import CompiledRule, transition_record
from support_monitor.alerts.secrets import register_url, resolve_token, resolve_url
from support_monitor.alerts.state import Alert, AlertState, Transition
from support_monitor.detectors.config import DetectorSettings
from support_monitor.detectors.signal import Signal
from support_monitor.detectors.suite import DetectorSuite
from support_monitor.monitor.catalogue import help_texts
from support_monitor.monitor.durations import TICK_TOLERANCE
from support_monitor.monitor.engine.engine import Engine
from support_monitor.monitor.engine.rows import Series
from support_monitor.monitor.logs import register_secret
from support_monitor.monitor.stats import DaemonStats

log = structlog.get_logger("support_monitor.alerts")

AM_QUEUE_MAX = 10_000
"""Alerts waiting for Alertmanager at most (oldest dropped, like Prometheus' notifier queue)."""

SHUTDOWN_SEND_GRACE = 5.0
"""Seconds a message already on its way at a stop may take to end and be recorded (a rate
limit's wait for it is not included: a stop cuts that short)."""

HELP = help_texts("alerts")


class TransitionSink(Protocol):
    def __call__(self, record: dict[str, object]) -> None: ...


class PlanSink(Protocol):
    """Offline planning (``backtest``): receives the notifications the planner would send at
    one evaluation, instead of the outbox."""

    def __call__(self, notifications: list[Notification]) -> None: ...


class _Unavailable:
    """A receiver whose secret could not be read: every notification is rejected (and logged)."""

    def __init__(self, name: str, reason: str) -> None:
        self.name = name
        self._reason = reason

    async def send(self, notification: Notification) -> Outcome:
        del notification
        return Outcome("failed", None, self._reason)


def _log_switched_off(detectors: DetectorSettings, alerts: AlertSettings) -> None:
    """One warning per default rule whose detector is disabled (check-config says so too)."""
    for _, rule in alerts.switched_off(detectors):
        log.warning(
            "alert_rule_detector_disabled",
            alert=rule.alert,
            detector=rule.detector,
            known=sorted(detectors.names()),
        )


class Alerting:
    """Detectors + alert rules evaluated on each tick; notifications delivered in live mode."""

    help: dict[str, str]

    def __init__(
        self,
        detectors: DetectorSettings,
        alerts: AlertSettings,
        notifiers: NotifierSettings,
        engine: Engine,
        stats: DaemonStats,
        *,
        on_transition: TransitionSink | None = None,
        on_plan: PlanSink | None = None,
        channels: Callable[[], Container[str]] | None = None,
    ) -> None:
        """``channels``: cluster mode, the channels this engine owns now; signals of other
        channels are not judged by the rules (``None``: every channel). ``on_plan``: plan
        notifications at every evaluation without delivering them (the planner's grouping,
        inhibition and timing in event time) and hand each evaluation's to it; Alertmanager is
        not planned then."""
        self._engine = engine
        self._channels = channels
        self._stats = stats
        self._on_transition = on_transition
        self._on_plan = on_plan
        self._settings = alerts
        self._notifiers = notifiers
        self.suite = DetectorSuite(
            detectors, engine.settings.channels, engine.settings.window_seconds
        )
        self.rules = [CompiledRule(rule, alerts, self._facts) for rule in alerts.rules]
        self._directions()
        self.inhibitor = Inhibitor(alerts.inhibit_rules)
        _log_switched_off(detectors, alerts)
        self._every = alerts.evaluation_interval
        self.eval_interval = alerts.evaluation_interval or engine.settings.exporter.tick_seconds
        self._next_eval = -math.inf
        self.planner = Planner(notifiers.receivers, Router(notifiers))
        self.outbox = Outbox(notifiers.state_dir, notifiers.outbox_max, stats)
        self.last_signals: list[Signal] = []
        self._judged: list[Signal] | None = None
        self._active: list[Signal] = []
        self._live = False
        self._restoring = False
        self._opened = False
        self._dirty = False
        self._evaluated_at: float | None = None
        """The latest evaluation's time (stored with the alert state)."""
        self._to_commit: list[Notification] = []
        self._am_batch: list[dict[str, Any]] = []
        self._am_wall: float | None = None
        """Wall clock of the previous planning pass (its gap to this one: the evaluation
        interval in wall seconds, which a simulator slower than real time stretches)."""
        self._wake = asyncio.Event()
        self._am_wake = asyncio.Event()
        self.wall_clock: Callable[[], float] = time.time
        """What Alertmanager's times are on (its own clock decides expiry); tests replace it."""
        self.handlers: list[Callable[[float], None]] = [self.evaluate]
        notifiers_used = [
            *notifiers.receivers,
            *(["alertmanager"] if notifiers.alertmanager.urls else []),
        ]
        for name in notifiers_used:  # exported at 0 from the start, so rate() sees the first
            for result in RESULTS:
                stats.notifications[name, result] += 0
        self.help = {**HELP, **self.suite.help}

    def reconfigure(self, detectors: DetectorSettings, alerts: AlertSettings) -> None:
        """Config reload: new detectors and rules. A rule keeps its alerts (as Prometheus copies
        state across a rule reload), so nothing re-pages, when it keeps its identity or is the
        one rule of its name (``_predecessors``; a new severity or labels relabel its alerts,
        and what each receiver was told moves with them); a detector whose settings did not change
        keeps its learnt baselines. The engine is reconfigured first: a change of the channels'
        settings alone (a new T, target or concurrency) also rebuilds the detectors, which take
        those when built. Notifier changes need a restart."""
        channels = self._engine.settings.channels
        if detectors != self.suite.settings or channels != self.suite.channel_settings:
            suite = DetectorSuite(detectors, channels, self._engine.settings.window_seconds)
            suite.restore_state(self.suite.export_state())  # changed detectors start afresh
            self.suite = suite
        rules = []
        moved: dict[str, Alert] = {}
        for rule, old in zip(alerts.rules, self._predecessors(alerts.rules), strict=True):
            compiled = CompiledRule(rule, alerts, self._facts)
            if old is not None:
                moved.update(compiled.adopt(old))
            rules.append(compiled)
        self.rules = rules
        self._dirty = True  # the stored state names each alert's rule by its key: store anew
        self.planner.relabelled(moved)
        self._directions()
        self.inhibitor = Inhibitor(alerts.inhibit_rules)
        _log_switched_off(detectors, alerts)
        self._settings = alerts
        self._every = alerts.evaluation_interval
        self.help = {**HELP, **self.suite.help}

    def _predecessors(self, rules: Sequence[AlertRule]) -> list[CompiledRule | None]:
        """For each new rule, the running rule whose alerts it takes over: the one with the
        same identity (``AlertRule.key``: name, severity, labels, match), else the one rule of
        the same name when each config has only one of that name (its severity or match
        changed). Never one running rule for two new ones: they would share one state."""
        by_key = {rule.rule.key: rule for rule in self.rules}
        old_names = Counter(rule.rule.alert for rule in self.rules)
        new_names = Counter(rule.alert for rule in rules)
        by_name = {rule.rule.alert: rule for rule in self.rules}
        taken: set[int] = set()
        out: list[CompiledRule | None] = []
        for rule in rules:
            old = by_key.get(rule.key)
            if old is None and old_names[rule.alert] == 1 and new_names[rule.alert] == 1:
                old = by_name[rule.alert]
            if old is not None and id(old) in taken:
                old = None
            if old is not None:
                taken.add(id(old))
            out.append(old)
        return out

    # --- evaluation (sync, on every tick) ---------------------------------------------------

    def _directions(self) -> None:
        """Tell each rule whether a higher value is worse for its detector, and which window
        it judges (for the dashboard links)."""
        found = getattr(self.suite, "detectors", ())
        upward = {d.name: d.upward for d in found}
        words = {d.name: getattr(d, "sustained_words", None) for d in found}
        detectors = getattr(self.suite, "settings", None)
        windows = (
            judged_windows(detectors, self._engine.settings.windows)
            if isinstance(detectors, DetectorSettings)
            else {}
        )
        for rule in self.rules:
            rule.upward = upward.get(rule.rule.detector)
            rule.sustained_words = words.get(rule.rule.detector)
            rule.window = windows.get(rule.rule.detector, "")

    def _facts(
        self, channel: str, labels: Mapping[str, str], now: float
    ) -> Mapping[str, str | float]:
        """Template variables about a channel at ``now`` (``alerts.facts``)."""
        return channel_facts(self._engine, now, channel, labels)

    def notifying(self) -> bool:
        """Whether the planner may still send something without a new event: a receiver was
        told of an alert it still remembers (a repeat or a resolve may come), or a group waits
        (``group_wait``, ``group_interval``)."""
        return not self.planner.idle

    def evaluate(self, now: float) -> None:
        if self._restoring:
            log.info("alert_eval_skipped", reason="restoring state")
            return
        if self._every is not None:
            if now < self._next_eval - TICK_TOLERANCE:
                return
            every = self._every
            self._next_eval = math.floor((now + TICK_TOLERANCE) / every) * every + every
        signals = self.suite.evaluate(self._engine, now)
        if signals is not self._judged:  # the suite hands out the same list while unchanged
            self._judged = signals
            suite = self.suite
            # the real suite keeps its active signals apart; any other source is filtered here
            self._active = (
                suite.active
                if isinstance(suite, DetectorSuite)
                else [s for s in signals if s.active]
            )
        active = self._active
        if self._channels is not None:
            owned = self._channels()
            signals = [s for s in signals if s.channel in owned]
            active = [s for s in active if s.channel in owned]
        self.last_signals = signals
        self._apply(now, active, signals)

    def apply(self, now: float, signals: list[Signal]) -> None:
        """Rules over the given signals, then (live) plan notifications. Split out for tests."""
        self._apply(now, [s for s in signals if s.active], signals)

    def _apply(self, now: float, active: list[Signal], everything: Sequence[Signal]) -> None:
        """``apply`` over the active signals (rules ignore inactive ones; ``everything`` is
        where a resolving alert reads its value now)."""
        self._evaluated_at = now
        transitions: list[Transition] = []
        by_detector: dict[str, list[Signal]] = {}
        for signal in active:  # a rule reads one detector's signals: hand it only those
            by_detector.setdefault(signal.detector, []).append(signal)
        for rule in self.rules:
            transitions.extend(rule.eval(now, by_detector.get(rule.rule.detector, ()), everything))
            if rule.state.keep_changed:  # kept firing since now, or no longer: stored too
                rule.state.keep_changed = False
                self._dirty = True
        inhibited: Container[str] = ()
        if transitions and self.inhibitor:
            inhibited = self.inhibitor.inhibited(a for rule in self.rules for a in rule.held())
        for transition in transitions:
            self._dirty = True
            record = transition_record(
                transition, now, inhibited=transition.alert.fingerprint in inhibited
            )
            log.info(
                "alert_transition",
                alertname=record["alertname"],
                state=record["state"],
                previous=record["previous"],
                labels=record["labels"],
                value=record["value"],
            )
            if self._on_transition is not None:
                self._on_transition(record)
        if self._on_plan is not None:  # offline: nothing is committed or sent
            planned = self._planned(now)[1]  # rendered: only the alerts messages tell
            if planned:
                self._on_plan(planned)
        elif self._live:
            self._plan(now)

    def _planned(self, now: float) -> tuple[list[Alert], list[Notification], Renderer]:
        """The firing and resolved alerts of every rule (what notifications are planned from),
        the notifications due now (none planned while nothing is firing, resolved or told),
        and what renders an alert's annotations: only the alerts a message or Alertmanager
        tells are rendered, not every firing alert at every evaluation."""
        owners: dict[int, CompiledRule] = {}
        alerts = []
        for rule in self.rules:
            for alert in rule.notifiable():
                alerts.append(alert)
                owners[id(alert)] = rule

        def render(alert: Alert) -> None:
            owners[id(alert)].render(alert)

        if not alerts and self.planner.idle:
            return alerts, [], render
        inhibited = self.inhibitor.inhibited(alerts)
        return alerts, self.planner.plan(now, alerts, inhibited, render=render), render

    def _plan(self, now: float) -> None:
        alerts, new, render = self._planned(now)
        if new:
            self._to_commit.extend(new)
            self._dirty = True
        am = self._notifiers.alertmanager
        if am.urls:
            wall = self.wall_clock()  # Alertmanager expires alerts by its own clock
            gap = 0.0 if self._am_wall is None else wall - self._am_wall
            self._am_wall = wall
            interval = max(self.eval_interval, gap)
            for alert in alerts:
                if alert.needs_sending(am.resend_interval, wall):
                    mark_sent(alert, now, am.resend_interval, interval, wall)
                    render(alert)
                    self._am_batch.append(am_alert(alert, am.generator_url))
            overflow = len(self._am_batch) - AM_QUEUE_MAX
            if overflow > 0:
                del self._am_batch[:overflow]
                self._stats.notifications[("alertmanager", "dropped")] += overflow
            if self._am_batch:
                self._am_wake.set()
        if self._dirty:
            self._wake.set()

    @property
    def evaluated_at(self) -> float | None:
        """The latest evaluation's time (``None`` before the first): stored with the state."""
        return self._evaluated_at

    @property
    def planned(self) -> bool:
        """Notifications planned but not yet committed to the outbox (drain before hand-over)."""
        return bool(self._to_commit)

    # --- metrics ----------------------------------------------------------------------------

    @property
    def stats(self) -> DaemonStats:
        """The daemon's own counters (the console's store counts its failures there too)."""
        return self._stats

    def series(self) -> Iterable[Series]:
        # One series per label set; alerts that differ only in extra labels (a per-queue
        # rule's `queue`) share it, and its value is how many they are: sum() counts alerts.
        counts: dict[tuple[tuple[str, str], ...], int] = {}
        for rule in self.rules:
            for alert in rule.held():  # labels only: nothing to render
                if alert.state is AlertState.INACTIVE:
                    continue
                labels: tuple[tuple[str, str], ...] = (
                    ("alertname", rule.rule.alert),
                    ("alertstate", alert.state.value),
                    ("channel", alert.label("channel")),
                    ("severity", rule.rule.severity),
                )
                counts[labels] = counts.get(labels, 0) + 1
        for key, count in counts.items():
            yield Series("support_alerts", key, float(count))
        yield from self.suite.series()

    # --- live mode --------------------------------------------------------------------------

    async def __aenter__(self) -> Self:
        """Open the outbox, restore alert state, start planning notifications (live mode).
        Delivery itself runs in ``deliver_forever``; ``close`` commits what is still planned."""
        if self._opened:
            return self
        self._opened = True
        self._restoring = True
        try:
            restored = await self.outbox.open()
            if restored.state is not None:
                self._restore(restored.state, len(restored.pending))
            for n in restored.pending:
                if n.receiver not in self._notifiers.receivers:
                    self._stats.notifications[(n.receiver, "dropped")] += 1
                    log.warning("notification_unroutable", receiver=n.receiver, key=n.key)
                    await self.outbox.done(n.key)
        finally:
            self._restoring = False
        self._live = True
        return self

    def _restore(self, state: bytes, pending: int) -> None:
        """Put the stored alert state back; a damaged one is refused whole (one error line,
        ``support_monitor_store_failures_total{store="outbox"}``) and the daemon starts without
        it, as a cluster partition does."""
        try:
            count, sent, groups = persist.load(state, self.rules)
        except (ValueError, msgspec.DecodeError) as exc:
            self.outbox.refuse_state(exc)
            return
        self.planner.sent = sent
        self.planner.groups = groups
        log.info("alert_state_restored", alerts=count, receivers_told=len(sent), outbox=pending)

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    async def close(self) -> None:
        self._live = False
        if self._evaluated_at is not None:
            self._dirty = True  # a stop stores the time of its last evaluation
        if self._to_commit or self._dirty:
            await self._commit()
        await self.outbox.close()
        self._opened = False

    async def deliver_forever(self) -> None:
        """Live mode: send queued notifications (one task in the daemon's task group)."""
        owns = not self._opened
        await self.__aenter__()
        try:
            async with httpx.AsyncClient(follow_redirects=False) as client:
                notifiers = await asyncio.to_thread(self._build_notifiers, client)
                am = self._notifiers.alertmanager
                self._live = True
                log.info(
                    "alert_delivery_started",
                    receivers=sorted(notifiers),
                    alertmanagers=len(am.urls),
                    persistent=self.outbox.persistent,
                )
                async with asyncio.TaskGroup() as tasks:
                    tasks.create_task(self._commit_forever(), name="alerts:commit")
                    for name, deliverer in notifiers.items():
                        tasks.create_task(self._worker(name, deliverer), name=f"alerts:{name}")
                    if am.urls:
                        unavailable = None
                        token = None
                        try:
                            token = await asyncio.to_thread(resolve_token, am, "bearer_token")
                        except ValueError as exc:  # names the key and the file or variable
                            unavailable = str(exc)
                            log.error(  # noqa: TRY400 - one line, no traceback
                                "receiver_unavailable", receiver="alertmanager", error=unavailable
                            )
                        client_am = AlertmanagerClient(
                            am.urls,
                            client,
                            self._stats,
                            am.timeout,
                            token,
                            unavailable=unavailable is not None,
                        )
                        tasks.create_task(self._am_forever(client_am), name="alerts:am")
        finally:
            self._live = False
            if owns:
                await asyncio.shield(self.close())

    def _build_notifiers(self, client: httpx.AsyncClient) -> dict[str, Deliverer]:
        out: dict[str, Deliverer] = {}
        policy = RetryPolicy(retry_for=self._notifiers.retry_for)
        for url in self._notifiers.alertmanager.urls:
            register_url(url.get_secret_value())
        for name, cfg in self._notifiers.receivers.items():
            notifier: Notifier
            try:
                if isinstance(cfg, SlackReceiver):
                    url = resolve_url(cfg, "webhook_url")
                    notifier = SlackNotifier(name, url, client, cfg.timeout)
                else:
                    url = resolve_url(cfg, "url")
                    for value in cfg.headers.values():
                        register_secret(value.get_secret_value())
                    notifier = WebhookNotifier(
                        name,
                        url,
                        client,
                        cfg.timeout,
                        token=resolve_token(cfg, "bearer_token", url),
                        headers=cfg.headers,
                        external_url=self._external_url,
                        generator=self._generator_url,
                    )
            except ValueError as exc:  # the message names the key, the file or the variable
                log.error("receiver_unavailable", receiver=name, error=str(exc))  # noqa: TRY400
                notifier = _Unavailable(name, "receiver_unavailable")
            bucket = TokenBucket(cfg.rate_per_second, cfg.burst, time.monotonic, asyncio.sleep)
            out[name] = Deliverer(notifier, bucket, self._stats, policy)
        return out

    def _external_url(self) -> str:
        """The webhook's ``externalURL``: the Grafana root (``alerts.dashboard_base_url``)."""
        return self._settings.dashboard_base_url

    def _generator_url(self) -> str:
        return self._notifiers.alertmanager.generator_url

    async def _commit(self) -> None:
        batch, self._to_commit = self._to_commit, []
        snapshot = None
        if self._dirty and self.outbox.path is not None:
            snapshot = persist.dump(
                self.rules, self.planner.sent, self.planner.groups, self._evaluated_at
            )
        self._dirty = False
        for n in await self.outbox.commit(snapshot, batch):
            self._stats.notifications[(n.receiver, "dropped")] += 1
            self._settled(n, delivered=False)

    async def _commit_forever(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            committing = asyncio.create_task(self._commit(), name="alerts:commit:write")
            try:
                await asyncio.shield(committing)
            except asyncio.CancelledError:
                # A stop while a commit is being written lets it finish: it has taken the new
                # notifications and cleared the dirty flag, so ``close`` would not write them
                # again and they (and the state snapshot) would be lost at the next start.
                await asyncio.wait([committing])
                raise

    async def _worker(self, name: str, deliverer: Deliverer) -> None:
        """One receiver: whichever pending notification is due, each on its own retry schedule
        (``Deliverer.next_due``); sleeps until the next is due or a new one is committed."""
        while True:
            generation = self.outbox.generation(name)
            n, due = deliverer.next_due(self.outbox.pending(name))
            if n is None:
                timeout = None if due is None else max(0.0, due - deliverer.now())
                await self.outbox.changed(name, generation, timeout)
                continue
            told = self.planner.unpaged_resolves_left_out(n)
            if told is None:  # resolves of pages the receiver never got: nothing to send
                log.info("resolve_not_sent", receiver=name, key=n.key, alerts=len(n.alerts))
                await self.outbox.done(n.key)
                continue
            n = told
            await deliverer.bucket.acquire()  # the rate limit's wait: a stop cuts it short
            sending = asyncio.create_task(self._deliver(deliverer, n), name=f"notify:{name}:send")
            try:
                await asyncio.shield(sending)
            except asyncio.CancelledError:
                # Shutdown while a message is on its way: it is given SHUTDOWN_SEND_GRACE to
                # end and be recorded, so the next start does not send it again (a page that
                # reached the receiver would otherwise be sent twice). Past that it is cut off
                # and stays in the outbox: the next start sends it (perhaps a second time).
                await asyncio.wait([sending], timeout=SHUTDOWN_SEND_GRACE)
                if not sending.done():
                    sending.cancel()
                    log.warning(
                        "notification_interrupted",
                        receiver=name,
                        key=n.key,
                        grace_seconds=SHUTDOWN_SEND_GRACE,
                    )
                    await asyncio.wait([sending])
                raise

    async def _deliver(self, deliverer: Deliverer, n: Notification) -> None:
        """One attempt at ``n`` (the rate limit's token already taken); settled (sent, or given
        up) means it leaves the outbox."""
        result = await deliverer.attempt(n, take_token=False)
        if result is not None:
            self._settled(n, delivered=result == "ok")
            await self.outbox.done(n.key)

    def _settled(self, n: Notification, *, delivered: bool) -> None:
        """What became of ``n`` told to the planner (a refused page gets no resolve), and kept
        with the next state snapshot."""
        if self.planner.settled(n, delivered=delivered):
            self._dirty = True
            self._wake.set()

    async def _am_forever(self, client: AlertmanagerClient) -> None:
        while True:
            await self._am_wake.wait()
            self._am_wake.clear()
            batch, self._am_batch = self._am_batch, []
            await client.post(batch)
