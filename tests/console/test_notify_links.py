"""The signed acknowledge link in Slack messages and webhook payloads (firing only)."""

from __future__ import annotations

from support_monitor.alerts.notify.message import AlertInfo, Notification
from support_monitor.alerts.notify.slack import slack_payload
from support_monitor.alerts.notify.webhook import webhook_payload
from support_monitor.alerts.silences import ACK_URL

LINK = "https://monitor.example/ack/0123456789abcdef?exp=1772445600&sig=ab12"


def _note(annotations: dict[str, str]) -> Notification:
    alert = AlertInfo(
        fingerprint="0123456789abcdef",
        labels={"alertname": "LongWait", "channel": "voice", "severity": "critical"},
        annotations=annotations,
        value=80.0,
        threshold=20.0,
        expected=None,
        active_at=1772442000.0,
        fired_at=1772442000.0,
        resolved_at=None,
    )
    return Notification(
        key="k",
        receiver="r",
        state="firing",
        kind="new",
        created=1772442000.0,
        group={"alertname": "LongWait", "channel": "voice"},
        alerts=(alert,),
    )


def test_slack_shows_an_acknowledge_button_and_link() -> None:
    payload = slack_payload(_note({"summary": "wait", ACK_URL: LINK}))
    buttons = [
        element
        for block in payload["blocks"]
        if block["type"] == "actions"
        for element in block["elements"]
    ]
    assert [(b["text"]["text"], b["url"]) for b in buttons] == [("Acknowledge", LINK)]
    assert f"<{LINK.replace('&', '&amp;')}|Acknowledge>" in payload["text"]
    plain = slack_payload(_note({"summary": "wait"}))
    assert all(block["type"] != "actions" for block in plain["blocks"])


def test_webhook_alert_carries_the_link_in_its_annotations() -> None:
    payload = webhook_payload(_note({"summary": "wait", ACK_URL: LINK}))
    assert payload["alerts"][0]["annotations"][ACK_URL] == LINK
