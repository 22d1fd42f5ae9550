"""Issue 12, to the letter: Slack escaping and the text-only fallback, the webhook as exactly
Alertmanager's payload, absolute runbook/dashboard/generator links, library logs through
structlog. Expected values are written out by hand from the formats' own rules."""

from __future__ import annotations

import io
import json
import logging
import random
import re
import warnings
from datetime import UTC, datetime
from typing import Any

import httpx
import msgspec
import pytest
import structlog
from pydantic import SecretStr, ValidationError
from structlog.testing import capture_logs

from support_monitor.alerts.config import AlertmanagerSettings, AlertSettings
from support_monitor.alerts.notify.alertmanager import am_alert, mark_sent
from support_monitor.alerts.notify.delivery import Deliverer, RetryPolicy, TokenBucket
from support_monitor.alerts.notify.slack import SlackNotifier, slack_payload, slack_text
from support_monitor.alerts.notify.webhook import WebhookNotifier, webhook_payload
from support_monitor.alerts.rules import CompiledRule
from support_monitor.alerts.secrets import register_url
from support_monitor.monitor import logs
from support_monitor.monitor.stats import DaemonStats
from tests.alerts.am_webhook import AmAlert, AmMessage, strict_message
from tests.alerts.fakes import FakeClock, Reply, SlackLike, info, notification
from tests.alerts.helpers import alert_settings, rule, sig
from tests.alerts.runtime_helpers import delivering, make, wait_for
from tests.support import T0

SEED = 11

# --- 1. Slack: escaping ----------------------------------------------------------------------

HOSTILE = info(
    labels={
        "alertname": "LongWait",
        "channel": "voice <!channel>",
        "severity": "critical",
        "queue": "<@U123>",
    },
    annotations={
        "summary": "<!channel> wait & see",
        "description": "already &lt; escaped *bold* <https://evil.example|click>",
        "runbook_url": "https://runbooks.example/r?a=1&b=2#longwait",
        "dashboard_url": "https://grafana.example/d/x",
    },
)

# What may appear between < and > in text we send: Slack's date formatting and our two links.
OWN_SEQUENCE = re.compile(
    r"<!date\^\d+\^\{date_short_pretty\} \{time\}\|[0-9T:.Z-]+>"
    r"|<https?://[^<>|\s]+\|(?:Runbook|Dashboard)>"
)


def _texts(payload: Any) -> list[str]:
    """Every text object's text (and the message's ``text``) in a Slack payload."""
    out: list[str] = []
    if isinstance(payload, dict):
        if payload.get("type") in ("mrkdwn", "plain_text") and isinstance(payload.get("text"), str):
            out.append(payload["text"])
        for key, value in payload.items():
            if key == "text" and isinstance(value, str) and "type" not in payload:
                out.append(value)
            out.extend(_texts(value))
    elif isinstance(payload, list):
        for item in payload:
            out.extend(_texts(item))
    return out


def _well_escaped(text: str) -> bool:
    """Slack's rule: a bare ``&``, ``<`` or ``>`` is a control character. Outside our own
    sequences there must be none; every ``&`` must start ``&amp;``, ``&lt;`` or ``&gt;``."""
    rest = OWN_SEQUENCE.sub("", text)
    if "<" in rest or ">" in rest:
        return False
    return all(
        rest.startswith(("&amp;", "&lt;", "&gt;"), i) for i in range(len(rest)) if rest[i] == "&"
    )


def test_values_are_escaped_in_every_text_object_links_stay_links():
    payload = slack_payload(notification(alerts=(HOSTILE,)))
    header, section, actions = payload["blocks"][0], payload["blocks"][1], payload["blocks"][2]
    assert header["text"]["text"] == (
        ":rotating_light: FIRING: LongWait [critical] (voice &lt;!channel&gt;)"
    )
    assert section["text"]["text"] == (
        "*&lt;!channel&gt; wait &amp; see*\n"
        "already &amp;lt; escaped *bold* &lt;https://evil.example|click&gt;"
    )
    fields = [f["text"] for f in section["fields"]]
    assert "*Channel*\nvoice &lt;!channel&gt;" in fields
    assert "*Details*\nqueue &lt;@U123&gt;" in fields
    assert any(f.startswith("*Since*\n<!date^1000^{date_short_pretty} {time}|") for f in fields)
    assert payload["text"] == (
        "[FIRING] LongWait (voice &lt;!channel&gt;)\n"
        "&lt;!channel&gt; wait &amp; see · "
        "<https://runbooks.example/r?a=1&amp;b=2#longwait|Runbook> · "
        "<https://grafana.example/d/x|Dashboard>"
    )
    # a button's url is not a text object: sent as is
    assert actions["elements"][0]["url"] == "https://runbooks.example/r?a=1&b=2#longwait"
    texts = _texts(payload)
    # text, header, section text, fields, the two button labels, context
    assert len(texts) == 1 + 1 + 1 + len(fields) + 2 + 1
    for text in texts:
        assert _well_escaped(text), text
        assert "<!channel>" not in text
        assert "<@U123>" not in text


def test_cut_long_escaped_text_never_splits_an_entity():
    long = info(annotations={"summary": "s", "description": "&" * 4000})
    section = slack_payload(notification(alerts=(long,)))["blocks"][1]["text"]["text"]
    assert len(section) <= 3000
    assert section.endswith("…")
    assert _well_escaped(section[:-1])
    # *s*\n + 599 whole "&amp;" = 4 + 2995 = 2999 characters, then the ellipsis
    assert section == "*s*\n" + "&amp;" * 599 + "…"


# --- 2. Slack: invalid_blocks -> text only ----------------------------------------------------


async def _deliver(server: SlackLike, n=None):
    clock = FakeClock()
    stats = DaemonStats()
    async with httpx.AsyncClient() as client:
        notifier = SlackNotifier("slack", SecretStr(server.url), client, 5.0)
        deliverer = Deliverer(
            notifier,
            TokenBucket(1.0, 3, clock, clock.sleep),
            stats,
            RetryPolicy(),
            clock=clock,
            sleep=clock.sleep,
            rng=random.Random(SEED),
        )
        n = n or notification(created=clock())
        with capture_logs() as captured:
            result = await deliverer.deliver(n)
    return n, result, stats.notifications, clock.sleeps, captured


async def test_invalid_blocks_falls_back_to_a_text_only_message():
    async with SlackLike(refuse_blocks=True) as server:
        n, result, counts, sleeps, captured = await _deliver(server)
    assert result == "ok"
    assert counts == {("slack", "ok"): 1}
    assert sleeps == []
    assert len(server.requests) == 2
    assert "blocks" in server.requests[0]
    assert server.requests[1] == {"text": slack_text(n)}
    assert server.received == [{"text": slack_text(n)}]
    assert server.requests[1]["text"] == (
        "[FIRING] LongWait (voice)\nvoice: long wait · "
        "<https://runbooks.example/r#longwait|Runbook> · "
        "<https://grafana.example/d/support-channel|Dashboard>"
    )
    rejected = [e for e in captured if e["event"] == "slack_blocks_rejected"]
    assert rejected == [
        {
            "event": "slack_blocks_rejected",
            "log_level": "warning",
            "receiver": "slack",
            "key": "k1",
            "error": "invalid_blocks",
        }
    ]
    assert server.url not in repr(captured)


async def test_fallback_that_meets_a_5xx_is_retried_like_any_message():
    # attempt 1: blocks 400 invalid_blocks, text 503; attempt 2: blocks 400, text 200
    async with SlackLike([Reply(503, "service_unavailable")], refuse_blocks=True) as server:
        _, result, counts, sleeps, captured = await _deliver(server)
    rng = random.Random(SEED)
    assert result == "ok"
    assert counts == {("slack", "retry"): 1, ("slack", "ok"): 1}
    assert sleeps == pytest.approx([1.0 * (0.5 + rng.random() / 2)])
    assert ["blocks" in r for r in server.requests] == [True, False, True, False]
    assert [e["event"] for e in captured].count("slack_blocks_rejected") == 2


async def test_other_400s_do_not_fall_back():
    async with SlackLike([Reply(400, "invalid_payload")]) as server:
        _, result, counts, _, captured = await _deliver(server)
    assert result == "failed"
    assert counts == {("slack", "failed"): 1}
    assert len(server.requests) == 1
    assert "slack_blocks_rejected" not in [e["event"] for e in captured]


# --- 3. The webhook is Alertmanager's webhook payload (model: tests/alerts/am_webhook.py) ------


TWO = (
    info(fp="00000000000000a1", channel="voice"),
    info(fp="00000000000000b2", channel="chat"),
)


def test_webhook_payload_is_alertmanagers_message_field_for_field():
    n = notification(receiver="ops.hook", alerts=TWO)
    payload = webhook_payload(n, external_url="https://grafana.example")
    message = strict_message(msgspec.json.encode(payload))
    # round trip: what the strict model decoded encodes back to the same document
    assert msgspec.json.decode(msgspec.json.encode(message), type=AmMessage) == message
    assert set(payload) == set(AmMessage.__struct_fields__)
    assert payload["receiver"] == "ops\\.hook"  # Alertmanager's regexp.QuoteMeta(receiver)
    assert payload["status"] == "firing"
    assert payload["groupLabels"] == {"alertname": "LongWait"}
    assert payload["commonLabels"] == {"alertname": "LongWait", "severity": "critical"}
    assert payload["commonAnnotations"] == {
        "description": "details",
        "runbook_url": "https://runbooks.example/r#longwait",
        "dashboard_url": "https://grafana.example/d/support-channel",
    }
    assert payload["externalURL"] == "https://grafana.example"
    assert payload["groupKey"] == '{}/{receiver="ops.hook"}:{alertname="LongWait"}'
    assert payload["truncatedAlerts"] == 0
    voice = payload["alerts"][0]
    assert set(voice) == set(AmAlert.__struct_fields__)
    assert voice["status"] == "firing"
    assert voice["startsAt"] == "1970-01-01T00:17:10.000Z"  # fired_at 1030 s
    assert voice["endsAt"] == "0001-01-01T00:00:00Z"  # Go's zero time: still firing
    assert voice["generatorURL"] == "https://grafana.example/d/support-channel"
    # Alertmanager's fingerprint of these labels (what Alertmanager 0.25 sent for them in
    # test_webhook_vs_alertmanager), not the daemon's own state key "00000000000000a1"
    assert voice["fingerprint"] == "dd1cadcbdd07f8ec"
    assert message.alerts[0].endsAt == datetime(1, 1, 1, tzinfo=UTC)


async def test_webhook_sends_it_with_the_idempotency_key_header_only():
    resolved = (info(fp="0123456789abcdef", resolved_at=1_100.0),)
    async with SlackLike() as server, httpx.AsyncClient() as client:
        hook = WebhookNotifier(
            "ops",
            SecretStr(server.url),
            client,
            5.0,
            external_url=lambda: "http://localhost:3000",
            generator=lambda: "https://prometheus.example/graph",
        )
        outcome = await hook.send(notification("key-9", state="resolved", alerts=resolved))
    assert outcome.result == "ok"
    assert server.headers[0]["Idempotency-Key"] == "key-9"
    body = server.received[0]
    strict_message(json.dumps(body).encode())
    assert body["status"] == "resolved"
    assert body["alerts"][0]["status"] == "resolved"
    assert body["alerts"][0]["endsAt"] == "1970-01-01T00:18:20.000Z"  # resolved_at 1100 s
    assert body["alerts"][0]["generatorURL"] == "https://prometheus.example/graph"  # configured
    assert body["externalURL"] == "http://localhost:3000"
    assert "key-9" not in json.dumps(body)


async def test_daemon_webhook_receiver_sends_the_alertmanager_body():
    annotations = {
        "summary": "{channel}: waited {score:.0f}s",
        "runbook_url": "{runbook_base_url}#longwait",
        "dashboard_url": "{dashboard_base_url}/d/support-channel?var-channel={channel}",
    }
    rule_config = {
        "alert": "LongWait",
        "detector": "longest_wait",
        "severity": "critical",
        "annotations": annotations,
    }
    async with SlackLike() as server:
        alerting, source, stats = make(
            rule=rule_config,
            receivers={"ops": {"type": "webhook", "url": server.url}},
            routes=[{"receiver": "ops", "group_wait": "0s"}],
        )
        async with delivering(alerting):
            source.signals = [sig(channel="voice", score=95.0)]
            alerting.handlers[0](T0)
            await wait_for(lambda: stats.notifications[("ops", "ok")] == 1)
    (body,) = server.received
    strict_message(json.dumps(body).encode())
    dashboard = "http://localhost:3000/d/support-channel?var-channel=voice"
    assert body["externalURL"] == "http://localhost:3000"  # alerts.dashboard_base_url
    assert body["receiver"] == "ops"
    assert body["groupLabels"] == {"channel": "voice"}  # the default group_by: [channel]
    assert body["groupKey"] == '{}/{receiver="ops"}:{channel="voice"}'
    (alert,) = body["alerts"]
    assert alert["annotations"] == {"summary": "voice: waited 95s", "dashboard_url": dashboard}
    assert alert["generatorURL"] == dashboard
    assert alert["endsAt"] == "0001-01-01T00:00:00Z"
    assert re.fullmatch(r"[0-9a-f]{32}", server.headers[0]["Idempotency-Key"])  # planner's key
    assert server.headers[0]["Idempotency-Key"] not in json.dumps(body)


# --- 4. Links: absolute or absent; generatorURL ------------------------------------------------


def _sample_annotations(**settings: Any) -> dict[str, str]:
    defaults = AlertSettings.model_validate(settings)
    longest = next(r for r in defaults.rules if r.alert == "LongestWaitHigh")
    return CompiledRule(longest, defaults).sample(sig(score=95.0)).annotations


def test_runbook_url_is_absent_without_a_base_and_absolute_with_one():
    bare = _sample_annotations()
    assert "runbook_url" not in bare  # not "#longestwaithigh"
    # rendered outside an evaluation (no time): Grafana's relative range
    assert bare["dashboard_url"] == (
        "http://localhost:3000/d/support-channel?var-channel=voice&from=now-1h&to=now"
    )
    based = _sample_annotations(runbook_base_url="https://docs.example/runbooks.md")
    assert based["runbook_url"] == "https://docs.example/runbooks.md#longestwaithigh"
    no_dash = _sample_annotations(dashboard_base_url="")
    assert "dashboard_url" not in no_dash
    assert set(no_dash) == {"summary", "description"}


@pytest.mark.parametrize("value", ["docs/runbooks", "#x", "ftp://h/x", "https://", "https:///p"])
def test_relative_base_urls_are_refused(value):
    with pytest.raises(ValidationError, match="must be empty or an absolute"):
        AlertSettings.model_validate({"runbook_base_url": value})
    with pytest.raises(ValidationError, match="must be empty or an absolute"):
        AlertSettings.model_validate({"dashboard_base_url": value})
    with pytest.raises(ValidationError, match="must be empty or an absolute"):
        AlertmanagerSettings.model_validate({"generator_url": value})


def _firing_alert(**rule_fields: Any):
    r = rule(**{"for": "0s", **rule_fields})
    compiled = CompiledRule(r, alert_settings(r))
    compiled.eval(100.0, [sig(score=95.0)])
    (alert,) = compiled.alerts()
    mark_sent(alert, 100.0, 60.0, 1.0, 100.0)
    return alert


def test_alertmanager_generator_url_defaults_to_the_dashboard_link():
    annotations = {
        "summary": "s",
        "runbook_url": "{runbook_base_url}#longwait",  # base empty: left out
        "dashboard_url": "{dashboard_base_url}/d/support-channel?var-channel={channel}",
    }
    alert = _firing_alert(annotations=annotations)
    body = am_alert(alert, "")
    assert body["annotations"] == {
        "summary": "s",
        "dashboard_url": "http://localhost:3000/d/support-channel?var-channel=voice",
    }
    assert body["generatorURL"] == "http://localhost:3000/d/support-channel?var-channel=voice"
    assert am_alert(alert, "https://gen.example/x")["generatorURL"] == "https://gen.example/x"
    without = _firing_alert(annotations={"summary": "s"})
    assert "generatorURL" not in am_alert(without, "")


# --- 5. Library logs through structlog ---------------------------------------------------------


def _lines(out: io.StringIO) -> list[dict[str, Any]]:
    return [json.loads(line) for line in out.getvalue().splitlines()]


def _shape(line: dict[str, Any]) -> None:
    assert {"event", "level", "logger", "timestamp"} <= set(line), line
    stamp = datetime.fromisoformat(line["timestamp"])
    offset = stamp.utcoffset()
    assert offset is not None
    assert offset.total_seconds() == 0


def test_library_lines_have_our_json_shape_and_level(restore_logging):
    out = io.StringIO()
    logs.configure("info", "json", out)
    structlog.get_logger("support_monitor.test").info("our_event", n=1)
    logging.getLogger("aiokafka").warning("Heartbeat failed for group %s: rebalancing", "g1")
    logging.getLogger("httpx").warning(
        'HTTP Request: %s %s "%s %d %s"', "POST", "http://h/x", "HTTP/1.1", 200, "OK"
    )
    # httpx's line per request (info) shows only at debug: one per retry during an outage
    logging.getLogger("httpx").info("HTTP Request: POST http://h/x 503, at info")
    ours, kafka, http = _lines(out)
    for line in (ours, kafka, http):
        _shape(line)
    assert (ours["event"], ours["level"], ours["logger"], ours["n"]) == (
        "our_event",
        "info",
        "support_monitor.test",
        1,
    )
    assert (kafka["event"], kafka["level"], kafka["logger"]) == (
        "Heartbeat failed for group g1: rebalancing",
        "warning",
        "aiokafka",
    )
    assert (http["event"], http["level"], http["logger"]) == (
        'HTTP Request: POST http://h/x "HTTP/1.1 200 OK"',
        "warning",
        "httpx",
    )
    assert set(kafka) == set(http) == {"event", "level", "logger", "timestamp"}

    quiet = io.StringIO()
    logs.configure("warning", "json", quiet)
    logging.getLogger("httpx").info("dropped at warning")
    logging.getLogger("aiohttp.server").error("kept at warning")
    structlog.get_logger("support_monitor.test").info("dropped too")
    assert [(line["event"], line["logger"]) for line in _lines(quiet)] == [
        ("kept at warning", "aiohttp.server")
    ]


def test_python_warnings_are_lines_of_ours_and_redacted(restore_logging):
    out = io.StringIO()
    logs.configure("info", "json", out)
    logs.register_secret("Sekr3tWarn")
    with warnings.catch_warnings():
        warnings.simplefilter("always")
        warnings.warn("Unclosed client session with Sekr3tWarn", ResourceWarning, stacklevel=1)
    (line,) = _lines(out)
    _shape(line)
    assert line["logger"] == "py.warnings"
    assert line["level"] == "warning"
    assert "ResourceWarning: Unclosed client session" in line["event"]
    assert "Sekr3tWarn" not in out.getvalue()


async def test_httpx_request_lines_mask_the_normalised_secret_url(restore_logging):
    out = io.StringIO()
    logs.configure("debug", "json", out)  # httpx's request lines show only at debug
    async with SlackLike() as server, httpx.AsyncClient() as client:
        url = f"{server.url}?token=Sekr3t 8761"  # httpx logs it as ...?token=Sekr3t%208761
        register_url(url)
        notifier = SlackNotifier("slack", SecretStr(url), client, 5.0)
        assert (await notifier.send(notification())).result == "ok"
    text = out.getvalue()
    assert "Sekr3t" not in text
    (line,) = [line for line in _lines(out) if line["logger"] == "httpx"]
    _shape(line)
    assert line["event"] == 'HTTP Request: POST *** "HTTP/1.1 200 OK"'
    assert line["level"] == "info"


async def test_a_redirect_to_the_secret_path_is_not_logged_at_debug(restore_logging):
    """A receiver answering 301 with the webhook's path in ``Location`` (the secret part of a
    Slack URL): httpcore's debug line printed the header verbatim (audit of 2026-12-04)."""
    out = io.StringIO()
    logs.configure("debug", "json", out)
    moved = Reply(status=301, body="", headers={"Location": "/hook?token=Sekr3tPath"})
    async with SlackLike([moved]) as server, httpx.AsyncClient() as client:
        url = f"{server.url}?token=Sekr3tPath"
        register_url(url)
        notifier = SlackNotifier("slack", SecretStr(url), client, 5.0)
        assert (await notifier.send(notification())).result == "failed"
    text = out.getvalue()
    assert "Sekr3tPath" not in text
    assert [line["logger"] for line in _lines(out)] == ["httpx"]  # its request line only


def test_other_labels_read_as_words_not_label_syntax():
    # "Labels: long=1h, short=5m" and "sla=first_response" reached people
    def details(**extra: str) -> list[str]:
        labels = {"alertname": "A", "channel": "voice", "severity": "warning", **extra}
        payload = slack_payload(notification(alerts=(info(labels=labels),)))
        texts = [f["text"] for f in payload["blocks"][1]["fields"]]
        return [t for t in texts if t.startswith("*Details*")]

    assert details(long="1h", short="5m") == ["*Details*\nwindows 5m and 1h"]
    assert details(sla="first_response", queue="billing") == [
        "*Details*\nqueue billing, SLA first response"
    ]
    assert details(team="cc", category="billing") == ["*Details*\ncategory billing, team cc"]
    assert details() == []
