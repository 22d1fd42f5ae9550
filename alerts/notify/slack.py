"""Slack incoming webhook with Block Kit: one state (firing or resolved) per message.

Slack answers 200 ``ok``; errors come back as a short string in the body (``invalid_payload``,
``no_service``, ``channel_not_found``...), which is what we log, never the webhook URL.

Slack parses ``&``, ``<`` and ``>`` as control characters in every text object (``<!channel>``
pings a channel, ``<@U123>`` a user, ``<url|text>`` is a link), so every value that goes into a
text (labels, annotations, receiver-independent names) is escaped (``&amp;``, ``&lt;``,
``&gt;``); only the links and dates this module writes itself use the ``<...>`` syntax, with
their parts escaped. Other mrkdwn (``*bold*``, ``_italic_``) in a value is left as it is.

If Slack refuses the blocks (400 ``invalid_blocks`` or ``invalid_blocks_format``), the same
notification is sent once more at once as a text-only message (the ``text`` field alone), and
``slack_blocks_rejected`` is logged; the result counted is that of the text-only post.
"""

from __future__ import annotations

import json
import math
from typing import Any

import httpx
import structlog
from pydantic import SecretStr

from support_monitor.alerts.links import is_absolute
from support_monitor.alerts.notify.delivery import Outcome
from support_monitor.alerts.notify.http import post
from support_monitor.alerts.notify.message import AlertInfo, Notification
from support_monitor.alerts.timefmt import hour_minute, rfc3339
from support_monitor.monitor.durations import format_duration as duration

MAX_ALERTS = 10
TEXT_LIMIT = 3000
"""Characters of a section's text and of the message's ``text`` (Slack's limit for a text
object; Slack truncates a message's ``text`` beyond 40 000)."""
FIELD_LIMIT = 2000
HEADER_LIMIT = 150
BLOCKS_REFUSED = frozenset({"invalid_blocks", "invalid_blocks_format"})
"""Slack's answers (with 400) that mean the blocks, not the message, are the problem."""
_ICON = {"critical": ":rotating_light:", "warning": ":warning:", "info": ":information_source:"}
_ENTITIES = (("&", "&amp;"), ("<", "&lt;"), (">", "&gt;"))

log = structlog.get_logger("support_monitor.alerts.slack")


def escape(value: str) -> str:
    """Slack's escaping of its three control characters (``&`` first)."""
    for char, entity in _ENTITIES:
        value = value.replace(char, entity)
    return value


def cut(text: str, limit: int) -> str:
    """``text`` (already escaped) shortened to ``limit`` characters with an ellipsis, never
    splitting an entity (``&amp;``) or a ``<...>`` sequence written by this module."""
    if len(text) <= limit:
        return text
    head = text[: limit - 1]
    amp = head.rfind("&")
    if amp != -1 and ";" not in head[amp:]:
        head = head[:amp]
    lt = head.rfind("<")
    if lt != -1 and ">" not in head[lt:]:
        head = head[:lt]
    return head + "…"


def is_link(url: str) -> bool:
    """An absolute http(s) URL: what Slack accepts as a button's ``url`` or a link."""
    return is_absolute(url) and len(url) <= TEXT_LIMIT


def link(url: str, text: str) -> str:
    """``<url|text>`` with both parts escaped (and ``|`` in the URL percent-encoded)."""
    return f"<{escape(url).replace('|', '%7C')}|{escape(text)}>"


def _num(value: float | None) -> str:
    if value is None or math.isnan(value):
        return "n/a"
    return f"{value:.4g}"


def _since(ts: float | None) -> str:
    if ts is None:
        return "n/a"
    return f"<!date^{int(ts)}^{{date_short_pretty}} {{time}}|{rfc3339(ts)}>"


def _at(ts: float) -> str:
    """A time of day in the reader's time zone (Slack's date token), UTC where not shown."""
    return f"<!date^{int(ts)}^{{time}}|{hour_minute(ts)}>"


_LINKS = (("runbook_url", "Runbook"), ("dashboard_url", "Dashboard"), ("ack_url", "Acknowledge"))
"""Annotations shown as buttons (and links in ``text``). ``ack_url`` is the console's signed
acknowledge link, which the planner adds to firing alerts when ``console.external_url`` is set;
it opens a confirmation page, so Slack's link preview never acknowledges by itself."""


def _buttons(alert: AlertInfo) -> dict[str, Any] | None:
    elements = []
    for key, label in _LINKS:
        url = alert.annotations.get(key, "")
        if is_link(url):
            elements.append(
                {
                    "type": "button",
                    "text": {"type": "plain_text", "text": label},
                    "url": url,
                    "action_id": f"{key}-{alert.fingerprint}",
                }
            )
    return {"type": "actions", "elements": elements} if elements else None


def _alert_blocks(alert: AlertInfo, now: float) -> list[dict[str, Any]]:
    """One alert: its summary and description, then fields. A firing alert shows its value
    against the threshold and how long it has been going on (at ``now``, the message's time);
    a resolved one how long it lasted and its value now."""
    labels = alert.labels
    resolved = alert.status == "resolved"
    summary = escape(alert.annotations.get("summary") or labels.get("alertname", "alert"))
    description = escape(alert.annotations.get("description", ""))
    start = alert.active_at if alert.started_at is None else alert.started_at  # as the texts
    fields = [
        f"*Severity*\n{escape(labels.get('severity', 'n/a'))}",
        f"*Channel*\n{escape(labels.get('channel', 'n/a'))}",
    ]
    if resolved:
        end = alert.resolved_at if alert.resolved_at is not None else now
        fields.append(f"*Value now*\n{_num(alert.value_now)} (threshold {_num(alert.threshold)})")
        fields.append(f"*Lasted*\n{duration(end - start)}")
        fields.append(f"*Since*\n{_since(start)}")
        fields.append(f"*Resolved*\n{_since(alert.resolved_at)}")
    else:
        if alert.kept_until is not None:  # its condition cleared: what it reads now
            fields.append(
                f"*Value now*\n{_num(alert.value_now)} (threshold {_num(alert.threshold)}; "
                f"cleared, resolves at {_at(alert.kept_until)} unless it returns)"
            )
        else:
            fields.append(
                f"*Value*\n{_num(alert.value)} (threshold {_num(alert.threshold)}{_held(alert)})"
            )
        fields.append(f"*Going on for*\n{duration(now - start)}")
        fields.append(f"*Since*\n{_since(start)}")
    if alert.expected is not None and not math.isnan(alert.expected):
        fields.append(f"*Expected*\n{_num(alert.expected)}")
    extra = {k: v for k, v in labels.items() if k not in ("alertname", "severity", "channel")}
    if extra:
        fields.append("*Details*\n" + _details(extra))
    mark = ":white_check_mark: " if resolved else ""
    blocks: list[dict[str, Any]] = [
        {
            "type": "section",
            "text": {
                "type": "mrkdwn",
                "text": cut(f"{mark}*{summary}*\n{description}".strip(), TEXT_LIMIT),
            },
            "fields": [{"type": "mrkdwn", "text": cut(f, FIELD_LIMIT)} for f in fields[:10]],
        }
    ]
    buttons = _buttons(alert)
    if buttons is not None:
        blocks.append(buttons)
    return blocks


def _details(extra: dict[str, str]) -> str:
    """The alert's other labels in words ("queue billing, SLA first response, windows 5m and
    1h"), not as label syntax; labels of the user's own rules as "key value"."""
    pair = "short" in extra and "long" in extra  # a burn pair's windows
    words = [f"windows {escape(extra['short'])} and {escape(extra['long'])}"] if pair else []
    for key, value in sorted(extra.items()):
        if pair and key in ("short", "long"):
            continue
        if key == "sla":
            words.append(f"SLA {escape(value.replace('_', ' '))}")
        else:
            words.append(f"{escape(key.replace('_', ' '))} {escape(value)}")
    return ", ".join(words)


def _held(alert: AlertInfo) -> str:
    """For a firing alert whose value is back on the quiet side of its threshold (a detector
    with hysteresis, or active for another reason such as a sustained rise): say so, so the page
    does not read as a value past a threshold it is not past."""
    value, threshold, upward = alert.value, alert.threshold, alert.upward
    if value is None or threshold is None or upward is None:
        return ""
    if (value >= threshold) if upward else (value <= threshold):
        return ""
    side = "below" if upward else "above"
    return f"; {side} it now, still active until the detector sees recovery"


_RANK = {"critical": 3, "warning": 2, "info": 1}


def _names(n: Notification) -> tuple[str, str, str]:
    """Alert names (of the firing alerts, or all when none fires, in order of appearance),
    the highest severity among them and the channels of the message (raw values)."""
    firing = [a for a in n.alerts if a.status == "firing"] or list(n.alerts)
    names = ", ".join(dict.fromkeys(a.labels.get("alertname", "alert") for a in firing))
    severities = [a.labels.get("severity", "") for a in firing]
    severity = max(severities, key=lambda s: _RANK.get(s, 0), default="")
    channels = sorted({a.labels.get("channel", "") for a in n.alerts} - {""})
    return names, severity, ", ".join(channels)


def _site(n: Notification) -> str:
    """The ``site`` annotation the message's alerts share (``alerts.site_name``), else ""."""
    sites = {a.annotations.get("site", "") for a in n.alerts}
    return sites.pop() if len(sites) == 1 else ""


def _resolved_count(n: Notification) -> int:
    return sum(a.status == "resolved" for a in n.alerts)


def slack_text(n: Notification) -> str:
    """The message's ``text`` (mrkdwn): notification fallback, and the whole message when Slack
    refuses the blocks. State, alert names, channels and site, then per alert (at most
    ``MAX_ALERTS``) its state when it differs from the message's, its summary and its runbook
    and dashboard links."""
    name, _, where = _names(n)
    state = "RESOLVED" if n.state == "resolved" else "FIRING"
    site = _site(n)
    lines = [escape(f"[{state}] {name} ({where})" + (f" · {site}" if site else ""))]
    for alert in n.alerts[:MAX_ALERTS]:
        summary = alert.annotations.get("summary", "")
        if summary and alert.status != n.state:
            summary = f"[{alert.status.upper()}] {summary}"
        links = [
            link(alert.annotations[key], label)
            for key, label in _LINKS
            if is_link(alert.annotations.get(key, ""))
        ]
        line = " · ".join([escape(summary)] * bool(summary) + links)
        if line:
            lines.append(line)
    more = len(n.alerts) - MAX_ALERTS
    if more > 0:
        lines.append(f"{more} more not shown")
    return cut("\n".join(lines), TEXT_LIMIT)


def _title(head: str, names: str, tail: str) -> str:
    """The header within ``HEADER_LIMIT``: the alert names are shortened first, so the state,
    severity, channels, site and the update note stay whole."""
    room = HEADER_LIMIT - len(head) - len(tail)
    if len(names) > room >= 8:
        names = cut(names, room)
    return cut(f"{head}{names}{tail}", HEADER_LIMIT)


def slack_payload(n: Notification) -> dict[str, Any]:
    """Block Kit message for one notification: a header (state, alert names, severity,
    channels, site), then each alert (firing ones first) and a context line."""
    name, severity, where = _names(n)
    site = _site(n)
    at = f" · {escape(site)}" if site else ""
    if n.state == "resolved":
        title = _title(":white_check_mark: RESOLVED: ", escape(name), f" ({escape(where)}){at}")
    else:
        resolved = _resolved_count(n)
        if resolved:
            note = f" (update: {resolved} resolved)"
        else:
            note = " (still firing)" if n.kind == "repeat" else ""
        icon = _ICON.get(severity, "")
        tail = f" [{escape(severity)}] ({escape(where)}){at}{note}"
        title = _title(f"{icon} FIRING: ".lstrip(), escape(name), tail)
    blocks: list[dict[str, Any]] = [
        {"type": "header", "text": {"type": "plain_text", "text": title}}
    ]
    for alert in n.alerts[:MAX_ALERTS]:
        blocks.extend(_alert_blocks(alert, n.created))
    more = len(n.alerts) - MAX_ALERTS
    context = f"support-monitor{at} · {len(n.alerts)} alert(s)"
    if more > 0:
        context += f" · {more} more not shown"
    blocks.append({"type": "context", "elements": [{"type": "mrkdwn", "text": context}]})
    return {"text": slack_text(n), "blocks": blocks}


class SlackNotifier:
    def __init__(
        self, name: str, url: SecretStr, client: httpx.AsyncClient, timeout: float
    ) -> None:
        self.name = name
        self._url = url
        self._client = client
        self._timeout = timeout

    async def _post(self, payload: dict[str, Any]) -> Outcome:
        return await post(
            self._client,
            self._url.get_secret_value(),
            json.dumps(payload, allow_nan=False).encode(),
            {"Content-Type": "application/json"},
            self._timeout,
            ok_body="ok",
        )

    async def send(self, notification: Notification) -> Outcome:
        payload = slack_payload(notification)
        outcome = await self._post(payload)
        if outcome.status == 400 and outcome.error in BLOCKS_REFUSED:
            log.warning(
                "slack_blocks_rejected",
                receiver=self.name,
                key=notification.key,
                error=outcome.error,
            )
            outcome = await self._post({"text": payload["text"]})
        return outcome
