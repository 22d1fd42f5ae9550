"""Notifiers: Slack incoming webhooks, a generic JSON webhook, Alertmanager's API v2. The public
surface is ``__all__``; each name loads its module on first use."""

from __future__ import annotations

from typing import TYPE_CHECKING

from support_monitor.monitor.exports import lazy_exports

if TYPE_CHECKING:
    from support_monitor.alerts.notify.alertmanager import AlertmanagerClient
    from support_monitor.alerts.notify.delivery import Notifier
    from support_monitor.alerts.notify.message import Notification
    from support_monitor.alerts.notify.slack import SlackNotifier
    from support_monitor.alerts.notify.webhook import WebhookNotifier

__all__ = ["AlertmanagerClient", "Notification", "Notifier", "SlackNotifier", "WebhookNotifier"]

__getattr__, __dir__ = lazy_exports(
    __name__,
    {
        "AlertmanagerClient": "support_monitor.alerts.notify.alertmanager",
        "Notification": "support_monitor.alerts.notify.message",
        "Notifier": "support_monitor.alerts.notify.delivery",
        "SlackNotifier": "support_monitor.alerts.notify.slack",
        "WebhookNotifier": "support_monitor.alerts.notify.webhook",
    },
)
