"""Alerting end to end without detectors: scripted signals -> rules -> planner -> outbox ->
a local Slack-like server. Restarts are new objects over the same state directory."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import math
import sqlite3
from collections import Counter
from typing import Any

import msgspec
import pytest
from structlog.testing import capture_logs

from support_monitor.alerts import persist
from support_monitor.alerts.outbox import Outbox
from support_monitor.alerts.runtime import Alerting
from support_monitor.alerts.timefmt import rfc3339
from support_monitor.monitor.config import Settings, parse_settings
from support_monitor.monitor.engine.engine import Engine
from support_monitor.monitor.stats import DaemonStats
from tests.alerts.fakes import Reply, SlackLike, notification
from tests.alerts.helpers import sig
from tests.alerts.runtime_helpers import RULE, delivering, make, wait_for
from tests.support import T0, settings


def test_replay_mode_records_transitions_and_never_plans():
    records: list[dict[str, Any]] = []
    alerting, source, _ = make(records=records, rule={**RULE, "for": "20s"})
    source.signals = [sig(score=95)]
    for t in (0, 10, 20):
        alerting.evaluate(T0 + t)
    source.signals = [sig(active=False)]
    alerting.evaluate(T0 + 30)
    assert [(r["ts"] - T0, r["state"]) for r in records] == [
        (0, "pending"),
        (20, "firing"),
        (30, "resolved"),
    ]
    first = records[0]
    assert first["alertname"] == "LongWait"
    assert first["time"] == "2026-03-02T09:00:00.000Z"
    assert first["labels"] == {"alertname": "LongWait", "channel": "voice", "severity": "critical"}
    assert first["annotations"] == {"summary": "voice: waited 95s"}
    assert first["value"] == 95
    assert first["active_at"] == T0
    assert alerting.outbox.first("slack") is None
    assert alerting._to_commit == []


def test_support_alerts_series_has_the_exact_label_set():
    alerting, source, _ = make(rule={**RULE, "for": "20s"})
    source.signals = [sig(queue="billing"), sig(queue="tech"), sig(channel="chat")]
    alerting.evaluate(T0)
    rows = sorted((s.labels, s.value) for s in alerting.series())
    assert rows == [
        (
            (
                ("alertname", "LongWait"),
                ("alertstate", "pending"),
                ("channel", "chat"),
                ("severity", "critical"),
            ),
            1.0,
        ),
        (
            (
                ("alertname", "LongWait"),
                ("alertstate", "pending"),
                ("channel", "voice"),
                ("severity", "critical"),
            ),
            2.0,  # billing and tech share the series: its value counts them (it said 1)
        ),
    ]
    assert "support_alerts" in alerting.help
    assert "support_detector_score" in alerting.help
    source.signals = []
    alerting.evaluate(T0 + 1)
    assert list(alerting.series()) == []


async def test_fire_repeat_resolve_messages():
    async with SlackLike() as server:
        alerting, source, stats = make(server.url)
        async with delivering(alerting):
            source.signals = [sig(score=95)]
            alerting.evaluate(T0)
            await wait_for(lambda: len(server.received) == 1)
            alerting.evaluate(T0 + 1)
            alerting.evaluate(T0 + 3599)
            await asyncio.sleep(0.05)
            assert len(server.received) == 1  # not due yet
            alerting.evaluate(T0 + 3600)  # repeat_interval 1h
            await wait_for(lambda: len(server.received) == 2)
            source.signals = []
            alerting.evaluate(T0 + 3601)
            await wait_for(lambda: len(server.received) == 3)
            alerting.evaluate(T0 + 3602)
            await asyncio.sleep(0.05)
    titles = [m["blocks"][0]["text"]["text"] for m in server.received]
    assert "FIRING: LongWait" in titles[0]
    assert "still firing" in titles[1]
    assert "RESOLVED: LongWait" in titles[2]
    assert stats.notifications == Counter({("slack", "ok"): 3})


async def test_undelivered_notification_survives_restart_and_is_sent_exactly_once(tmp_path):
    async with SlackLike() as server:
        # 1st life: the alert fires, the notification is committed, the daemon dies before sending
        first, source, _ = make(server.url, tmp_path)
        async with first:
            source.signals = [sig(score=95)]
            first.evaluate(T0)
        assert server.received == []
        # 2nd life: the outbox delivers it; the still-firing alert is not paged again
        second, source, stats = make(server.url, tmp_path)
        async with delivering(second):
            await wait_for(lambda: len(server.received) == 1)
            source.signals = [sig(score=96)]
            second.evaluate(T0 + 5)
            second.evaluate(T0 + 10)
            await asyncio.sleep(0.1)
        assert stats.notifications == Counter({("slack", "ok"): 1})
        # 3rd life: nothing left to send, nothing re-paged
        third, source, stats = make(server.url, tmp_path)
        async with delivering(third):
            source.signals = [sig(score=97)]
            third.evaluate(T0 + 20)
            await asyncio.sleep(0.1)
        assert len(server.received) == 1
        assert stats.notifications == Counter({})
        assert third.rules[0].state.active  # state restored: same activation
        restored = next(iter(third.rules[0].state.active.values()))
        assert restored.active_at == T0


async def _fired_and_told(server: SlackLike, state_dir: Any) -> None:
    """A first life over ``state_dir``: the alert fires at T0, its page is delivered, then a
    clean stop."""
    first, source, _ = make(server.url, state_dir)
    async with delivering(first):
        source.signals = [sig()]
        first.evaluate(T0)
        await wait_for(lambda: len(server.received) == 1 and len(first.outbox) == 0)


async def test_alert_that_resolved_while_down_is_resolved_on_first_evaluation(tmp_path):
    async with SlackLike() as server:
        await _fired_and_told(server, tmp_path)
        records: list[dict[str, Any]] = []
        second, source, _ = make(server.url, tmp_path, records=records)
        async with delivering(second):
            source.signals = []
            second.evaluate(T0 + 600)
            await wait_for(lambda: len(server.received) == 2)
    assert "RESOLVED" in server.received[1]["blocks"][0]["text"]["text"]
    assert [(r["state"], r["previous"]) for r in records] == [("resolved", "firing")]


async def test_failed_delivery_stays_in_outbox_across_restart(tmp_path):
    script = [Reply(500, "oops")] * 50
    async with SlackLike(script) as server:
        first, source, stats = make(server.url, tmp_path)
        async with delivering(first):
            source.signals = [sig()]
            first.evaluate(T0)
            await wait_for(lambda: stats.notifications[("slack", "retry")] >= 1)
        server.script.clear()
        second, _, stats2 = make(server.url, tmp_path)
        async with delivering(second):
            await wait_for(lambda: len(server.received) == 1)
    assert stats2.notifications == Counter({("slack", "ok"): 1})


async def test_outbox_is_bounded_oldest_dropped(tmp_path):
    alerting, source, stats = make(state_dir=tmp_path, outbox_max=2, rule={**RULE, "for": "0s"})
    async with alerting:
        for i, ch in enumerate(("voice", "chat", "email")):
            source.signals.append(sig(channel=ch))
            alerting.evaluate(T0 + i)
            await alerting._commit()
        assert len(alerting.outbox) == 2
    assert stats.notifications == Counter({("slack", "dropped"): 1})
    kept = [n.alerts[0].labels["channel"] for n in alerting.outbox._pending.values()]
    assert kept == []  # closed: the pending ones are on disk only
    again, _, _ = make(state_dir=tmp_path, outbox_max=2)
    async with again:
        pending = [again.outbox.first("slack")]
        assert pending[0] is not None
        assert len(again.outbox) == 2
        assert pending[0].alerts[0].labels["channel"] == "chat"


async def test_mute_window_holds_then_sends_when_it_ends():
    async with SlackLike() as server:
        alerting, source, _ = make(
            server.url,
            routes=[{"receiver": "slack", "mute": ["all_monday_9"], "group_wait": "0s"}],
            mute_windows={"all_monday_9": [{"start": "09:00", "end": "09:10"}]},
        )
        async with delivering(alerting):
            source.signals = [sig()]
            alerting.evaluate(T0)  # Monday 09:00 UTC: muted
            alerting.evaluate(T0 + 300)
            await asyncio.sleep(0.05)
            assert server.received == []
            assert [a.status for a in alerting.rules[0].alerts()] == ["firing"]
            alerting.evaluate(T0 + 600)  # 09:10: window over
            await wait_for(lambda: len(server.received) == 1)


async def test_resolved_during_mute_without_page_sends_nothing():
    async with SlackLike() as server:
        alerting, source, _ = make(
            server.url,
            routes=[{"receiver": "slack", "mute": ["m"], "group_wait": "0s"}],
            mute_windows={"m": [{"start": "09:00", "end": "09:10"}]},
        )
        async with delivering(alerting):
            source.signals = [sig()]
            alerting.evaluate(T0)
            source.signals = []
            alerting.evaluate(T0 + 60)
            alerting.evaluate(T0 + 900)
            await asyncio.sleep(0.05)
    assert server.received == []


def test_alertmanager_batches_like_prometheus():
    alerting, source, _ = make(
        alertmanager={"urls": ["http://127.0.0.1:9/am"], "resend_interval": "1m"}
    )
    clock = [T0]
    alerting.wall_clock = lambda: clock[0]  # live at real speed: event time is the wall time
    alerting._live = True
    source.signals = [sig()]
    alerting.evaluate(T0)
    batch = alerting._am_batch
    assert len(batch) == 1
    assert batch[0]["labels"] == {
        "alertname": "LongWait",
        "channel": "voice",
        "severity": "critical",
    }
    assert batch[0]["startsAt"] == "2026-03-02T09:00:00.000Z"
    assert batch[0]["endsAt"] == "2026-03-02T09:04:00.000Z"  # now + 4 * max(60s, 1s tick)
    clock[0] = T0 + 60
    alerting.evaluate(T0 + 60)
    assert len(batch) == 1  # resend only strictly after 60 s
    clock[0] = T0 + 61
    alerting.evaluate(T0 + 61)
    assert batch[-1]["endsAt"] == "2026-03-02T09:05:01.000Z"  # 61 + 240
    assert batch[-1]["startsAt"] == "2026-03-02T09:00:00.000Z"
    source.signals = []
    clock[0] = T0 + 62
    alerting.evaluate(T0 + 62)  # resolved: sent at once with endsAt = resolved_at
    assert batch[-1]["endsAt"] == "2026-03-02T09:01:02.000Z"
    assert "event_fired_at" not in batch[-1]["annotations"]
    count = len(batch)
    for t in range(63, 62 + 900 + 2):
        clock[0] = T0 + t
        alerting.evaluate(T0 + t)
    # re-sent every > 60 s for the 15 min retention, then forgotten
    resent = batch[count:]
    assert all(a["endsAt"] == "2026-03-02T09:01:02.000Z" for a in resent)
    assert len(resent) == math.floor(900 / 61)
    assert alerting.rules[0].state.active == {}


def test_alertmanager_gets_wall_clock_times_when_the_clock_runs_fast():
    """Simulator at speed 30: 30 s of event time per wall second. Alertmanager expires alerts
    by its own clock, so it must get wall-clock times; the event times go to annotations."""
    alerting, source, _ = make(
        alertmanager={"urls": ["http://127.0.0.1:9/am"], "resend_interval": "1m"}
    )
    wall0 = 1_795_000_000.0  # 2026-11-18T11:06:40Z, far from T0 (2026-03-02T09:00:00Z)
    alerting._live = True
    source.signals = [sig()]
    alerting.wall_clock = lambda: wall0
    alerting.evaluate(T0)  # fires at once (for: 0)
    batch = alerting._am_batch
    assert batch[0]["startsAt"] == "2026-11-18T11:06:40.000Z"
    assert batch[0]["endsAt"] == "2026-11-18T11:10:40.000Z"  # wall + 4 * 60 s
    assert batch[0]["annotations"]["event_fired_at"] == "2026-03-02T09:00:00.000Z"
    clock = [wall0]
    alerting.wall_clock = lambda: clock[0]
    for second in range(1, 60 * 30 + 1):  # 60 s of wall time: a resend once a wall minute
        clock[0] = wall0 + second / 30
        alerting.evaluate(T0 + second)
    assert len(batch) == 1  # not once every 60 s of event time (2 s of wall time)
    alerting.wall_clock = lambda: wall0 + 61
    alerting.evaluate(T0 + 61 * 30)
    assert len(batch) == 2
    assert batch[1]["startsAt"] == "2026-11-18T11:06:40.000Z"  # fixed at the first post
    assert batch[1]["endsAt"] == "2026-11-18T11:11:41.000Z"  # 61 s + 4 * 60 s
    source.signals = []
    alerting.wall_clock = lambda: wall0 + 62.0
    alerting.evaluate(T0 + 61 * 30 + 30)  # resolved now: endsAt is this wall time
    assert batch[2]["endsAt"] == "2026-11-18T11:07:42.000Z"
    assert batch[2]["annotations"]["event_resolved_at"] == "2026-03-02T09:31:00.000Z"
    alerting.wall_clock = lambda: wall0 + 123.5
    alerting.evaluate(T0 + 61 * 30 + 60)  # resent as resolved a wall minute later: same endsAt
    assert batch[3]["endsAt"] == "2026-11-18T11:07:42.000Z"
    assert batch[3]["startsAt"] == "2026-11-18T11:06:40.000Z"


def test_alertmanager_keeps_a_firing_alert_when_the_clock_runs_slow():
    """Simulator at speed 0.1: one evaluation (1 s of event time) every 10 wall seconds, resend
    10 s. Each post's endsAt must outlast the next post, or Alertmanager resolves an alert that
    still fires; and the endsAt allows for the 10 s between evaluations."""
    alerting, source, _ = make(
        alertmanager={"urls": ["http://127.0.0.1:9/am"], "resend_interval": "10s"}
    )
    wall0 = 1_795_000_000.0  # 2026-11-18T11:06:40Z
    alerting._live = True
    source.signals = [sig()]
    posts: list[tuple[float, str]] = []
    batch = alerting._am_batch
    clock = [wall0]
    alerting.wall_clock = lambda: clock[0]
    for second in range(60):
        wall = clock[0] = wall0 + 10 * second
        alerting.evaluate(T0 + second)
        posts.extend((wall, post["endsAt"]) for post in batch[len(posts) :])
    sent = [wall for wall, _ in posts]
    assert sent[:3] == [wall0, wall0 + 20, wall0 + 40]  # strictly after 10 s: every 2nd one
    assert posts[1][1] == "2026-11-18T11:07:40.000Z"  # 20 s + 4 * max(10 s, 10 s apart)
    for (_, ends), (next_sent, _) in itertools.pairwise(posts):
        assert rfc3339(next_sent) < ends  # never expired before the next post


async def test_alertmanager_post_to_every_url():
    received: list[list[Any]] = []
    from aiohttp import web  # noqa: PLC0415

    async def handler(request: web.Request) -> web.Response:
        received.append(await request.json())
        return web.json_response({})

    app = web.Application()
    app.router.add_post("/api/v2/alerts", handler)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    ports = []
    for _ in range(2):
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
    ports = [addr[1] for addr in runner.addresses]
    try:
        alerting, source, stats = make(
            alertmanager={"urls": [f"http://127.0.0.1:{p}" for p in ports] + ["http://127.0.0.1:9"]}
        )
        async with delivering(alerting):
            source.signals = [sig()]
            alerting.evaluate(T0)
            await wait_for(lambda: len(received) == 2)
            await wait_for(lambda: stats.notifications[("alertmanager", "failed")] == 1)
            # counted once the client has read the answer, which the server writes after it
            # recorded the request: wait for the count, not for the request
            await wait_for(lambda: stats.notifications[("alertmanager", "ok")] == 2)
        assert stats.notifications[("alertmanager", "ok")] == 2
    finally:
        await runner.cleanup()


@pytest.mark.parametrize("group_by", [["alertname"], ["alertname", "channel"]])
async def test_group_by_batches_alerts_of_one_evaluation(group_by):
    async with SlackLike() as server:
        alerting, source, _ = make(
            server.url, routes=[{"receiver": "slack", "group_by": group_by, "group_wait": "0s"}]
        )
        async with delivering(alerting):
            source.signals = [sig(channel="voice"), sig(channel="chat")]
            alerting.evaluate(T0)
            expected = 1 if group_by == ["alertname"] else 2
            await wait_for(lambda: len(server.received) == expected)
            await asyncio.sleep(0.05)
        assert len(server.received) == expected


def test_a_firing_page_says_when_its_value_is_not_past_the_alert_level():
    # a CUSUM-held or hysteresis-held alert read "16% negative, usually 18%" under a firing
    # headline; the value is now below the level, and the text now says so
    records: list[dict[str, Any]] = []
    rule = {
        **RULE,
        "annotations": {"summary": "{channel}: waited {score:.0f}s", "description": "Long."},
    }
    alerting, source, _ = make(records=records, rule=rule)
    source.signals = [sig(score=20, threshold=30)]  # active, yet below its threshold
    alerting.evaluate(T0)
    firing = next(r for r in records if r["state"] == "firing")["annotations"]
    assert firing["summary"] == (
        "voice: waited 20s (below its alert level now, its healthy side; still active)"
    )
    assert firing["description"] == (
        "Long. Below its alert level now, its healthy side: the alert stays active while the "
        "detector still sees a sustained change, or until it is sure of the recovery."
    )
    records.clear()
    alerting, source, _ = make(records=records, rule=rule)
    source.signals = [sig(score=40, threshold=30)]  # past it: the text as written
    alerting.evaluate(T0)
    firing = next(r for r in records if r["state"] == "firing")["annotations"]
    assert (firing["summary"], firing["description"]) == ("voice: waited 40s", "Long.")
    records.clear()
    alerting, source, _ = make(records=records, rule=rule)
    # made active by a CUSUM while one window is below the level: a sustained rise, not a hold
    source.signals = [msgspec.structs.replace(sig(score=20, threshold=30), sustained=True)]
    alerting.evaluate(T0)
    firing = next(r for r in records if r["state"] == "firing")["annotations"]
    assert firing["summary"] == (
        "voice: waited 20s (a sustained rise; one window alone is below its level)"
    )
    assert firing["description"] == (
        "Long. The count or share of one window alone is below its alert level: the detector "
        "pages on a sustained rise over a longer stretch, too gradual for one window to show."
    )


async def test_an_outbox_that_cannot_open_delivers_from_memory(tmp_path):
    # A damaged (or, on a full disk, uncreatable) outbox file: one log line, and pages still go.
    (tmp_path / "alerts.sqlite3").write_bytes(b"not a database, " * 64)
    async with SlackLike() as server:
        alerting, source, stats = make(server.url, tmp_path)
        with capture_logs() as logs:
            async with delivering(alerting):
                source.signals = [sig()]
                alerting.evaluate(T0)
                await wait_for(lambda: len(server.received) == 1)
    assert [e["event"] for e in logs if e["log_level"] == "error"] == ["outbox_open_failed"]
    assert stats.notifications == Counter({("slack", "ok"): 1})
    assert stats.store_failures == Counter({"outbox": 1})
    assert stats.stores_failing == {"outbox": True}  # it never writes to a file again


async def test_an_outbox_outage_is_counted_logged_once_and_its_end_said(
    tmp_path, monkeypatch: pytest.MonkeyPatch
):
    # three commits fail (a full disk), the fourth succeeds: 3 counted, failing meanwhile, one
    # error line, one store_recovered line; delivery state stays in memory meanwhile
    stats = DaemonStats()
    failures = stats.store_failures
    outbox = Outbox(tmp_path, 10, stats)
    await outbox.open()
    assert failures == Counter({"outbox": 0})  # exported at 0 from the start
    assert stats.stores_failing == {"outbox": False}
    real = outbox._commit_sync
    calls = [0]

    def flaky(*args: Any) -> None:
        calls[0] += 1
        if calls[0] <= 3:
            raise OSError(28, "No space left on device")
        real(*args)

    monkeypatch.setattr(outbox, "_commit_sync", flaky)
    with capture_logs() as logs:
        for _ in range(3):
            await outbox.commit(b"state", [])
        assert stats.stores_failing == {"outbox": True}
        await outbox.commit(b"state", [])
    await outbox.close()
    assert failures == Counter({"outbox": 3})
    assert stats.stores_failing == {"outbox": False}
    assert [(e["event"], e["log_level"]) for e in logs if e["log_level"] != "debug"] == [
        ("outbox_write_failed", "error"),
        ("store_recovered", "info"),
    ]
    assert logs[0]["detail"] == "[Errno 28] No space left on device"


async def test_settling_a_notification_the_full_disk_never_stored_does_not_end_the_outage(
    tmp_path, monkeypatch: pytest.MonkeyPatch
):
    # the commit of a notification fails (a full disk), it is delivered from memory, and its
    # row is deleted: a delete of nothing succeeds on a full disk too, and is no recovery
    stats = DaemonStats()
    outbox = Outbox(tmp_path, 10, stats)
    await outbox.open()

    def full(*args: Any) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(outbox, "_commit_sync", full)
    with capture_logs() as logs:
        await outbox.commit(b"state", [notification("k1")])
        await outbox.done("k1")
        assert stats.stores_failing == {"outbox": True}
        monkeypatch.undo()
        await outbox.commit(b"state", [notification("k2")])
        await outbox.done("k2")  # stored, then deleted: a real write
    await outbox.close()
    assert stats.stores_failing == {"outbox": False}
    assert [e["event"] for e in logs if e["log_level"] != "debug"] == [
        "outbox_write_failed",
        "store_recovered",
    ]


def _two_of_one_name(summary: str) -> Settings:
    """Two always-true detectors and two rules of one alert name, a critical and a warning."""
    return parse_settings(
        {
            "windows": ["5m"],
            "channels": {"voice": {"answer_seconds": 20, "queues": ["billing"]}},
            "detectors": {
                "thresholds": [
                    {"name": "a", "metric": "support_queue_waiting", "op": ">=", "value": 0},
                    {
                        "name": "b",
                        "metric": "support_queue_breached_waiting",
                        "op": ">=",
                        "value": 0,
                    },
                ]
            },
            "alerts": {
                "inhibit_rules": [],
                "rules": [
                    {
                        "alert": "Q",
                        "detector": "a",
                        "severity": "critical",
                        "annotations": {"summary": summary},
                    },
                    {
                        "alert": "Q",
                        "detector": "b",
                        "severity": "warning",
                        "annotations": {"summary": summary},
                    },
                ],
            },
        }
    )


def _recording(settings: Settings, records: list[dict[str, Any]], **extra: Any) -> Alerting:
    """Offline alerting on ``settings`` whose transition records go to ``records``."""
    return Alerting(
        settings.detectors,
        settings.alerts,
        settings.notifiers,
        Engine(settings),
        DaemonStats(),
        on_transition=lambda record: records.append(dict(record)),
        **extra,
    )


def _reload_and_run(alerting: Alerting, settings: Settings, seconds: range) -> None:
    """Reload ``settings``' detectors and rules, then evaluate at ``T0 + s`` for each s."""
    alerting.reconfigure(settings.detectors, settings.alerts)
    for second in seconds:
        alerting.evaluate(T0 + second)


def test_a_reload_keeps_each_rule_of_a_shared_name_on_its_own_alerts() -> None:
    """Two rules named Q (critical on one detector, warning on another) both fire; a reload
    that changes only a text keeps both alerts firing: no transition after it. Before, both new
    rules took over the first old rule's state and resolved and re-fired each other on every
    evaluation (a page a second, the audit of 2026-12-01)."""
    records: list[dict[str, Any]] = []
    alerting = _recording(_two_of_one_name("A {channel}"), records)
    for second in range(3):
        alerting.evaluate(T0 + second)
    assert sorted((r["labels"]["severity"], r["state"]) for r in records) == [
        ("critical", "firing"),
        ("warning", "firing"),
    ]
    records.clear()
    _reload_and_run(alerting, _two_of_one_name("A2 {channel}"), range(3, 10))
    assert records == []


def _one_rule(severity: str, **labels: str) -> Settings:
    """One always-true detector and one rule Q of ``severity``; critical alerts go to
    ``pager``, the others to ``chat`` (no waits, so each change is planned at once)."""
    route = {"group_wait": "0s", "group_interval": "0s"}
    hook = {"type": "webhook", "url": "http://127.0.0.1:9/never"}
    return parse_settings(
        {
            "windows": ["5m"],
            "channels": {"voice": {"answer_seconds": 20, "queues": ["billing"]}},
            "detectors": {
                "thresholds": [
                    {"name": "a", "metric": "support_queue_waiting", "op": ">=", "value": 0}
                ]
            },
            "alerts": {
                "inhibit_rules": [],
                "rules": [{"alert": "Q", "detector": "a", "severity": severity, "labels": labels}],
            },
            "notifiers": {
                "receivers": {"pager": hook, "chat": hook},
                "routes": [
                    {"receiver": "pager", "match": {"severity": "critical"}, **route},
                    {"receiver": "chat", **route},
                ],
            },
        }
    )


def test_a_reload_that_changes_the_one_rule_of_a_name_relabels_its_alert_without_a_page() -> None:
    """The only rule named Q goes from critical to warning while its alert fires: the alert
    keeps its activation under its new labels (no transition). The pager, to which warnings no
    longer go, is told it resolved; chat gets it as new; nothing pages twice. A label added by
    the next reload moves it again, and now no receiver changes: no message at all. Before, a
    second alert started beside the old one, both were in the next message, and the old one
    resolved only when keep_firing_for ran out."""
    records: list[dict[str, Any]] = []
    plans: list[list[tuple[str, str, str]]] = []
    alerting = _recording(
        _one_rule("critical"),
        records,
        on_plan=lambda notes: plans.append(
            sorted(
                (n.receiver, n.kind, a.labels["severity"] + (":resolved" if a.resolved_at else ""))
                for n in notes
                for a in n.alerts
            )
        ),
    )
    for second in range(3):
        alerting.evaluate(T0 + second)
    assert [(r["labels"]["severity"], r["state"]) for r in records] == [("critical", "firing")]
    assert [p for p in plans if p] == [[("pager", "new", "critical")]]
    records.clear()
    plans.clear()
    _reload_and_run(alerting, _one_rule("warning"), range(3, 30))
    assert records == []
    (alert,) = alerting.rules[0].alerts()
    assert (dict(alert.labels)["severity"], alert.active_at) == ("warning", T0)
    assert [p for p in plans if p] == [
        [("chat", "new", "warning"), ("pager", "resolved", "critical:resolved")]
    ]
    plans.clear()
    _reload_and_run(alerting, _one_rule("warning", team="cc"), range(30, 60))
    assert records == []
    assert [p for p in plans if p] == []
    (alert,) = alerting.rules[0].alerts()
    assert dict(alert.labels)["team"] == "cc"


def test_an_alert_starts_when_its_detector_says_the_condition_began() -> None:
    """A signal whose condition held 5 minutes before it said active (``since``): the alert's
    ``started_at``, which the Slack fields read, is that instant, and its texts count from it;
    an alert without an earlier ``since`` starts when it became active."""
    alerting, source, _ = make(
        rule={**RULE, "annotations": {"summary": "{channel}: since {started}, {duration}"}}
    )
    held = msgspec.structs.replace(sig(), since=T0 - 300)
    source.signals = [held]
    alerting.evaluate(T0)
    (alert,) = alerting.rules[0].alerts()
    assert (alert.active_at, alert.started_at) == (T0, T0 - 300)
    assert alert.annotations["summary"] == "voice: since 2026-03-02 08:55 UTC, 5m"
    plain, plain_source, _ = make()
    plain_source.signals = [sig()]
    plain.evaluate(T0)
    (alert,) = plain.rules[0].alerts()
    assert (alert.active_at, alert.started_at) == (T0, T0)


def test_a_reload_that_disables_a_default_rules_detector_says_so() -> None:
    """At start-up and on reload: one warning per default rule left without its detector."""
    base = parse_settings({"windows": ["5m", "1h"], "channels": {"voice": {"answer_seconds": 20}}})
    with capture_logs() as started:
        alerting = Alerting(
            base.detectors, base.alerts, base.notifiers, Engine(base), DaemonStats()
        )
    assert [e for e in started if e["event"] == "alert_rule_detector_disabled"] == []
    off = parse_settings(
        {
            "windows": ["5m", "1h"],
            "channels": {"voice": {"answer_seconds": 20}},
            "detectors": {"backlog_growth": {"enabled": False}},
        }
    )
    with capture_logs() as reloaded:
        alerting.reconfigure(off.detectors, off.alerts)
    warned = [e for e in reloaded if e["event"] == "alert_rule_detector_disabled"]
    assert [(e["alert"], e["detector"]) for e in warned] == [("BacklogGrowing", "backlog_growth")]


KEEP = {**RULE, "keep_firing_for": "20s"}


async def _fired_then_stopped(tmp_path: Any, *, cleared_at: int | None, stop_at: int) -> None:
    """A first life over ``tmp_path``: KEEP fires at T0, its condition is gone from
    ``cleared_at`` on (if given), evaluations each second until ``stop_at``, then a clean stop."""
    first, source, _ = make(state_dir=tmp_path, rule=KEEP)
    async with delivering(first):
        for second in range(stop_at + 1):
            source.signals = [] if cleared_at is not None and second >= cleared_at else [sig()]
            first.evaluate(T0 + second)


async def _second_life(tmp_path: Any, seconds: list[int]) -> list[tuple[int, str]]:
    """The restart: the condition stays gone; the (second, state) transitions it records."""
    records: list[dict[str, Any]] = []
    second, source, _ = make(state_dir=tmp_path, rule=KEEP, records=records)
    async with delivering(second):
        source.signals = []
        for at in seconds:
            second.evaluate(T0 + at)
    return [(round(r["ts"] - T0), r["state"]) for r in records]


async def test_keep_firing_for_counts_from_the_stop_when_the_condition_ended_while_down(tmp_path):
    """Firing at the stop (second 5), condition gone at the restart: the alert kept firing for
    at most keep_firing_for (20 s) after the last evaluation that saw it, so a restart at 40
    resolves it at once, and one at 10 resolves it at 25, not 20 s after the restart."""
    await _fired_then_stopped(tmp_path / "long", cleared_at=None, stop_at=5)
    assert await _second_life(tmp_path / "long", [40, 41]) == [(40, "resolved")]
    await _fired_then_stopped(tmp_path / "short", cleared_at=None, stop_at=5)
    assert await _second_life(tmp_path / "short", [10, 24, 25, 26]) == [(25, "resolved")]


async def _stored(state_dir: Any) -> persist.Snapshot:
    """The alert state stored in ``state_dir`` now: what a crash (SIGKILL) would leave."""
    outbox = Outbox(state_dir, 100, DaemonStats())
    restored = await outbox.open()
    await outbox.close()
    assert restored.state is not None
    return msgspec.json.decode(restored.state, type=persist.Snapshot)


async def test_keep_firing_since_is_stored_when_it_is_set(tmp_path):
    """Firing at T0, condition gone at T0 + 2: no transition, yet the stored state says since
    when it is kept firing, so a restart after a crash resolves it at T0 + 22 as without one
    (it was stored only with the next transition)."""
    first, source, _ = make(state_dir=tmp_path, rule=KEEP)
    async with delivering(first):
        source.signals = [sig()]
        first.evaluate(T0)
        await wait_for(lambda: not first.planned)
        source.signals = []
        first.evaluate(T0 + 2)
        await asyncio.sleep(0.1)
        (alert,) = (await _stored(tmp_path)).alerts
        assert (alert.state, alert.keep_firing_since) == ("firing", T0 + 2)


async def test_a_severity_changed_by_reload_is_stored_under_the_new_rule(tmp_path):
    """The one rule of its name goes from critical to warning by reload while its alert fires:
    the stored state names the new rule at once. Before, it still named the old one until the
    next transition, and a restart after a crash dropped the alert and paged it again."""
    first, source, _ = make(state_dir=tmp_path)
    async with delivering(first):
        source.signals = [sig()]
        first.evaluate(T0)
        await wait_for(lambda: not first.planned)
        new = settings(alerts={"rules": [{**RULE, "severity": "warning"}]})
        first.reconfigure(new.detectors, new.alerts)
        first.evaluate(T0 + 1)
        await asyncio.sleep(0.1)
        (alert,) = (await _stored(tmp_path)).alerts
        assert (dict(alert.labels)["severity"], alert.active_at) == ("warning", T0)
        assert alert.rule == first.rules[0].key
    records: list[dict[str, Any]] = []
    second, source, _ = make(
        state_dir=tmp_path, rule={**RULE, "severity": "warning"}, records=records
    )
    async with delivering(second):
        source.signals = [sig()]
        second.evaluate(T0 + 10)
    assert records == []  # restored: the same activation, nothing new


def _damage_state(state_dir: Any, body: bytes | dict[str, Any]) -> None:
    """Replace the stored alert state row (or, given a dict, set those fields of its first
    alert), the sqlite file itself intact."""
    with contextlib.closing(sqlite3.connect(state_dir / "alerts.sqlite3")) as db, db:
        if isinstance(body, dict):
            (stored,) = db.execute("SELECT body FROM kv WHERE name = 'state'").fetchone()
            state = msgspec.json.decode(stored)
            state["alerts"][0].update(body)
            body = msgspec.json.encode(state)
        assert db.execute("UPDATE kv SET body = ? WHERE name = 'state'", (body,)).rowcount == 1


@pytest.mark.parametrize(
    "body",
    [
        b'{"alerts": [{"rule": ',  # cut short
        b'{"alerts": 7}',  # wrong type
        {"state": "burning"},  # no such alert state
        {"active_at": 1e308},  # a time no clock reaches (every tick overflowed)
        {"fired_at": -5.0},
    ],
)
async def test_a_damaged_alert_state_is_refused_and_the_daemon_pages_on(tmp_path, body):
    """One damaged row in the outbox file: before, the start raised out of ``Alerting`` (the
    daemon exited, and again on every restart) or every tick did. Now it is one error line
    and a store failure, and the restarted daemon pages the firing alert as new."""
    async with SlackLike() as server:
        await _fired_and_told(server, tmp_path)
        _damage_state(tmp_path, body)
        second, source, stats = make(server.url, tmp_path)
        with capture_logs() as logs:
            async with delivering(second):
                assert not second.rules[0].state.active  # nothing of the row was used
                source.signals = [sig()]
                second.evaluate(T0 + 60)
                await wait_for(lambda: len(server.received) == 2)
    assert [e["event"] for e in logs if e["log_level"] == "error"] == ["snapshot_refused"]
    assert stats.store_failures == Counter({"outbox": 1})
    assert "FIRING" in server.received[1]["blocks"][0]["text"]["text"]


async def test_a_firing_alert_is_rendered_for_its_messages_not_at_every_evaluation(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A page fires at T0 and its value changes at each of the next 100 evaluations; the
    repeat is due after repeat_interval (1h). Its annotations are rendered at the firing
    transition (the first message reads them) and for the repeat, from the signal of that
    evaluation; not at the evaluations in between (before, each of them rendered them again:
    101 renders before the repeat)."""
    async with SlackLike() as server:
        alerting, source, _ = make(server.url)
        (rule,) = alerting.rules
        renders: list[float] = []
        annotations = rule.annotations

        def counted(signal: Any, labels: Any) -> dict[str, str]:
            renders.append(signal.score)
            return annotations(signal, labels)

        monkeypatch.setattr(rule, "annotations", counted)
        async with delivering(alerting):
            for t in range(101):
                source.signals = [sig(score=100 + t)]
                alerting.evaluate(T0 + t)
            await wait_for(lambda: len(server.received) == 1)
            assert renders == [100]
            source.signals = [sig(score=777)]
            alerting.evaluate(T0 + 3600)
            await wait_for(lambda: len(server.received) == 2)
    assert renders == [100, 777]
    assert "waited 100s" in msgspec.json.encode(server.received[0]).decode()
    assert "waited 777s" in msgspec.json.encode(server.received[1]).decode()
