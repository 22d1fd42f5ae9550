"""Slack incoming webhook with Block Kit: one state (firing or resolved) per message.

Slack answers 200 ``ok``; errors come back as a short string in the body (``invalid_payload``,
``no_service``, ``channel_not_found``...), which is what we log, never the webhook URL.
"""

from __future__ import annotations

import json
import math
from typing import Any

import httpx
from pydantic import SecretStr

from alerts.notify.delivery import Outcome
from alerts.notify.http import post
from alerts.notify.message import AlertInfo, Notification
from alerts.timefmt import rfc3339

MAX_ALERTS = 10
_ICON = {"critical": ":rotating_light:", "warning": ":warning:", "info": ":information_source:"}


def _num(value: float | None) -> str:
    if value is None or math.isnan(value):
        return "n/a"
    return f"{value:.4g}"


def _since(ts: float | None) -> str:
    if ts is None:
        return "n/a"
    return f"<!date^{int(ts)}^{{date_short_pretty}} {{time}}|{rfc3339(ts)}>"


def _text(value: str, limit: int) -> str:
    return value if len(value) <= limit else value[: limit - 1] + "…"


def _buttons(alert: AlertInfo) -> dict[str, Any] | None:
    elements = []
    for key, label in (("runbook_url", "Runbook"), ("dashboard_url", "Dashboard")):
        url = alert.annotations.get(key, "")
        if url.startswith(("http://", "https://")):
            elements.append({
                "type": "button", "text": {"type": "plain_text", "text": label},
                "url": _text(url, 3000), "action_id": f"{key}-{alert.fingerprint}",
            })
    return {"type": "actions", "elements": elements} if elements else None


def _alert_blocks(alert: AlertInfo, resolved: bool) -> list[dict[str, Any]]:
    labels = alert.labels
    summary = alert.annotations.get("summary") or labels.get("alertname", "alert")
    description = alert.annotations.get("description", "")
    fields = [
        f"*Severity*\n{labels.get('severity', 'n/a')}",
        f"*Channel*\n{labels.get('channel', 'n/a')}",
        f"*Value*\n{_num(alert.value)} (threshold {_num(alert.threshold)})",
        f"*Since*\n{_since(alert.fired_at or alert.active_at)}",
    ]
    if alert.expected is not None and not math.isnan(alert.expected):
        fields.append(f"*Expected*\n{_num(alert.expected)}")
    if resolved:
        fields.append(f"*Resolved*\n{_since(alert.resolved_at)}")
    extra = {k: v for k, v in labels.items() if k not in ("alertname", "severity", "channel")}
    if extra:
        fields.append("*Labels*\n" + ", ".join(f"{k}={v}" for k, v in sorted(extra.items())))
    blocks: list[dict[str, Any]] = [{
        "type": "section",
        "text": {"type": "mrkdwn", "text": _text(f"*{summary}*\n{description}".strip(), 3000)},
        "fields": [{"type": "mrkdwn", "text": _text(f, 2000)} for f in fields[:10]],
    }]
    buttons = _buttons(alert)
    if buttons is not None:
        blocks.append(buttons)
    return blocks


def slack_payload(n: Notification) -> dict[str, Any]:
    """Block Kit message for one notification."""
    resolved = n.state == "resolved"
    first = n.alerts[0].labels
    name = first.get("alertname", "alert")
    severity = first.get("severity", "")
    channels = sorted({a.labels.get("channel", "") for a in n.alerts} - {""})
    where = ", ".join(channels)
    if resolved:
        title = f":white_check_mark: RESOLVED: {name} ({where})"
    else:
        repeat = " (still firing)" if n.kind == "repeat" else ""
        title = f"{_ICON.get(severity, '')} FIRING: {name} [{severity}] ({where}){repeat}".strip()
    blocks: list[dict[str, Any]] = [
        {"type": "header", "text": {"type": "plain_text", "text": _text(title, 150)}}
    ]
    for alert in n.alerts[:MAX_ALERTS]:
        blocks.extend(_alert_blocks(alert, resolved))
    more = len(n.alerts) - MAX_ALERTS
    context = f"support-monitor · {len(n.alerts)} alert(s)"
    if more > 0:
        context += f" · {more} more not shown"
    blocks.append({"type": "context", "elements": [{"type": "mrkdwn", "text": context}]})
    fallback = n.alerts[0].annotations.get("summary", "")
    state = "RESOLVED" if resolved else "FIRING"
    return {"text": _text(f"[{state}] {name} ({where}) {fallback}".strip(), 3000),
            "blocks": blocks}


class SlackNotifier:
    def __init__(
        self, name: str, url: SecretStr, client: httpx.AsyncClient, timeout: float
    ) -> None:
        self.name = name
        self._url = url
        self._client = client
        self._timeout = timeout

    async def send(self, notification: Notification) -> Outcome:
        body = json.dumps(slack_payload(notification), allow_nan=False).encode()
        return await post(
            self._client, self._url.get_secret_value(), body,
            {"Content-Type": "application/json"}, self._timeout,
        )
