"""Slack notifier against a local server behaving like Slack's incoming webhook."""

from __future__ import annotations

import random
from collections import Counter

import httpx
import pytest
from pydantic import SecretStr
from structlog.testing import capture_logs

from support_monitor.alerts.notify.delivery import Deliverer, RetryPolicy, TokenBucket
from support_monitor.alerts.notify.http import retry_after
from support_monitor.alerts.notify.slack import SlackNotifier, slack_payload
from support_monitor.monitor.stats import DaemonStats
from tests.alerts.fakes import FakeClock, Reply, SlackLike, deliver_once, info, notification

SEED = 7


async def test_200_ok_counts_once():
    async with SlackLike() as server:
        result, counts, sleeps = await deliver_once(server, notification())
    assert result == "ok"
    assert counts == {("slack", "ok"): 1}
    assert sleeps == []
    assert len(server.received) == 1


async def test_429_honours_retry_after_and_5xx_backs_off_with_jitter():
    script = [
        Reply(500, "internal_error"),
        Reply(429, "rate_limited", {"Retry-After": "7"}),
        Reply(503, "service_unavailable"),
    ]
    async with SlackLike(script) as server:
        result, counts, sleeps = await deliver_once(server, notification())
    rng = random.Random(SEED)
    first = 1.0 * (0.5 + rng.random() / 2)  # 1st server failure: base 1s, jitter 50-100%
    third = 2.0 * (0.5 + rng.random() / 2)  # 2nd server failure: 2s (the 429 does not count)
    assert result == "ok"
    assert counts == {("slack", "retry"): 3, ("slack", "ok"): 1}
    assert sleeps == pytest.approx([first, 7.0, third])
    assert len(server.received) == 1


@pytest.mark.parametrize(
    ("status", "error"),
    [
        (400, "invalid_payload"),
        (403, "action_prohibited"),
        (404, "no_service"),
        (410, "channel_is_archived"),
    ],
)
async def test_client_errors_are_not_retried_and_logged_with_slacks_error(status, error):
    async with SlackLike([Reply(status, error)]) as server:
        with capture_logs() as logs:
            result, counts, sleeps = await deliver_once(server, notification())
    assert result == "failed"
    assert counts == {("slack", "failed"): 1}
    assert sleeps == []
    rejected = [e for e in logs if e["event"] == "notification_rejected"]
    assert rejected[0]["status"] == status
    assert rejected[0]["error"] == error
    assert server.url not in repr(logs)  # the webhook URL is a secret


async def test_network_errors_retry_until_retry_for_then_drop():
    async with SlackLike() as server:
        dead = server.url
    result, counts, sleeps = await deliver_once(None, notification(), retry_for=20.0, url=dead)
    assert result == "dropped"
    # backoffs 1, 2, 4, 8, 16 (x jitter in [0.5, 1]) until more than 20 s have passed
    assert counts[("slack", "dropped")] == 1
    assert counts[("slack", "retry")] == len(sleeps)
    assert sum(sleeps) > 20.0
    assert sum(sleeps[:-1]) <= 20.0


async def test_rate_limit_one_per_second_with_burst():
    clock = FakeClock()
    stats = DaemonStats()
    async with SlackLike() as server, httpx.AsyncClient() as client:
        notifier = SlackNotifier("slack", SecretStr(server.url), client, 5.0)
        bucket = TokenBucket(1.0, 3, clock, clock.sleep)
        deliverer = Deliverer(
            notifier, bucket, stats, RetryPolicy(), clock=clock, sleep=clock.sleep
        )
        sent_at = []
        for i in range(6):
            await deliverer.deliver(notification(f"k{i}", created=clock()))
            sent_at.append(clock())
    t0 = 1_000_000.0
    assert [t - t0 for t in sent_at] == pytest.approx([0, 0, 0, 1, 2, 3])
    assert stats.notifications == Counter({("slack", "ok"): 6})


async def test_token_bucket_refills_while_idle():
    clock = FakeClock()
    bucket = TokenBucket(1.0, 2, clock, clock.sleep)
    await bucket.acquire()
    await bucket.acquire()
    clock.t += 10  # idle: refills to the burst, not beyond
    for _ in range(3):
        await bucket.acquire()
    assert clock.sleeps == pytest.approx([1.0])


def test_retry_after_parsing():
    assert retry_after("3") == 3.0
    assert retry_after(None) is None
    assert retry_after("Wed, 21 Oct 2015 07:28:10 GMT", now=1445412480.0) == pytest.approx(10.0)
    assert retry_after("soon") is None
    assert retry_after("-5") is None  # not delta-seconds: the default pause, no hot retry
    assert retry_after("0") == 0.0


def test_block_kit_payload_firing_and_resolved():
    firing = slack_payload(notification())
    blocks = firing["blocks"]
    assert blocks[0]["type"] == "header"
    assert "FIRING: LongWait [critical] (voice)" in blocks[0]["text"]["text"]
    fields = [f["text"] for f in blocks[1]["fields"]]
    assert "*Severity*\ncritical" in fields
    assert "*Channel*\nvoice" in fields
    assert "*Value*\n95 (threshold 60)" in fields
    # active since 1000, message created at 1 000 000: 999 000 s = 11 days 13.5 hours
    assert "*Going on for*\n11d 13h" in fields
    assert any(f.startswith("*Since*\n<!date^1000^") for f in fields)
    buttons = blocks[2]["elements"]
    assert [b["text"]["text"] for b in buttons] == ["Runbook", "Dashboard"]
    assert buttons[0]["url"] == "https://runbooks.example/r#longwait"
    assert firing["text"].startswith("[FIRING] LongWait (voice)")

    resolved = slack_payload(notification(state="resolved", alerts=(info(resolved_at=1_100.0),)))
    assert "RESOLVED: LongWait (voice)" in resolved["blocks"][0]["text"]["text"]
    assert any(f["text"].startswith("*Resolved*") for f in resolved["blocks"][1]["fields"])
    # a relative runbook link is not a button (Slack refuses non-http URLs)
    plain = slack_payload(notification(alerts=(info(annotations={"runbook_url": "docs/x"}),)))
    assert all(b["type"] != "actions" for b in plain["blocks"])


def test_a_long_header_shortens_the_alert_names_not_the_state_or_site():
    # eight alert names, a site and an update note: before, the 150-character cut took the
    # site and the note ("... (voice) · Berlin contac…")
    names = [f"VeryLongAlertName{i}" for i in range(8)]
    alerts = tuple(
        info(
            fp=f"f{i}",
            labels={"alertname": name, "channel": "voice", "severity": "critical"},
            annotations={"summary": "s", "site": "Berlin contact center"},
        )
        for i, name in enumerate(names)
    )
    resolved_one = info(
        fp="r",
        labels={"alertname": "Gone", "channel": "voice", "severity": "critical"},
        annotations={"summary": "s", "site": "Berlin contact center"},
        resolved_at=2_000.0,
    )
    header = slack_payload(notification(alerts=(*alerts, resolved_one)))["blocks"][0]["text"]
    text = header["text"]
    assert len(text) <= 150
    assert text.startswith(":rotating_light: FIRING: VeryLongAlertName0, VeryLongAlertName1")
    assert "…" in text
    assert text.endswith(" [critical] (voice) · Berlin contact center (update: 1 resolved)")


async def test_generic_webhook_payload_headers_and_token():
    from support_monitor.alerts.notify.webhook import WebhookNotifier  # noqa: PLC0415

    async with SlackLike() as server, httpx.AsyncClient() as client:
        hook = WebhookNotifier("ops", SecretStr(server.url), client, 5.0, token=SecretStr("t0ken"))
        outcome = await hook.send(
            notification("key-1", state="resolved", alerts=(info(resolved_at=1_100.0),))
        )
    assert outcome.result == "ok"
    body, headers = server.received[0], server.headers[0]
    assert headers["Idempotency-Key"] == "key-1"
    assert headers["Authorization"] == "Bearer t0ken"
    assert body["status"] == "resolved"
    assert "idempotencyKey" not in body  # the header only: the body is Alertmanager's shape
    assert body["alerts"][0]["endsAt"] == "1970-01-01T00:18:20.000Z"
    assert body["alerts"][0]["labels"]["channel"] == "voice"


def test_secrets_from_file_and_env(tmp_path, monkeypatch):
    from support_monitor.alerts.config import SlackReceiver  # noqa: PLC0415
    from support_monitor.alerts.secrets import resolve  # noqa: PLC0415

    path = tmp_path / "url"
    path.write_text("https://hooks.slack.example/T/B/x\n")
    by_file = SlackReceiver.model_validate({"type": "slack", "webhook_url_file": str(path)})
    from_file = resolve(by_file, "webhook_url")
    assert from_file is not None
    assert from_file.get_secret_value() == "https://hooks.slack.example/T/B/x"
    monkeypatch.setenv("HOOK", "https://env.example/x")
    by_env = SlackReceiver.model_validate({"type": "slack", "webhook_url_env": "HOOK"})
    from_env = resolve(by_env, "webhook_url")
    assert from_env is not None
    assert from_env.get_secret_value() == "https://env.example/x"
    missing = SlackReceiver.model_validate({"type": "slack", "webhook_url_file": "/nonexistent"})
    with pytest.raises(ValueError, match="webhook_url_file: cannot read"):
        resolve(missing, "webhook_url")
    assert "env.example" not in repr(by_env)


@pytest.mark.parametrize(
    ("value", "upward", "shown"),
    [
        (
            0.17,
            True,
            "0.17 (threshold 0.2; below it now, still active until the detector sees recovery)",
        ),
        (0.25, True, "0.25 (threshold 0.2)"),
        (
            0.25,
            False,
            "0.25 (threshold 0.2; above it now, still active until the detector sees recovery)",
        ),
        (0.17, None, "0.17 (threshold 0.2)"),  # direction unknown: nothing claimed
    ],
)
def test_a_firing_value_on_the_quiet_side_of_its_threshold_says_so(
    value: float, upward: bool | None, shown: str
) -> None:
    payload = slack_payload(notification(alerts=(info(value=value, threshold=0.2, upward=upward),)))
    fields = [f["text"] for f in payload["blocks"][1]["fields"]]
    assert f"*Value*\n{shown}" in fields


def test_the_fields_count_from_when_the_texts_say_the_trouble_began():
    """An alert whose detector held its condition before saying active (``started_at`` 400 s
    before ``active_at``): "Going on for", "Lasted" and "Since" count from there, as its
    "going on since" and "lasted" texts do (they disagreed by 5 minutes before)."""
    firing = slack_payload(notification(created=1_330.0, alerts=(info(started_at=700.0),)))
    fields = [f["text"] for f in firing["blocks"][1]["fields"]]
    assert "*Going on for*\n10m 30s" in fields
    assert any(f.startswith("*Since*\n<!date^700^") for f in fields)
    done = info(started_at=700.0, resolved_at=1_920.0)
    resolved = slack_payload(notification(state="resolved", alerts=(done,)))
    fields = [f["text"] for f in resolved["blocks"][1]["fields"]]
    assert "*Lasted*\n20m 20s" in fields
    assert any(f.startswith("*Since*\n<!date^700^") for f in fields)
