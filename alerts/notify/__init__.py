"""Notifiers: Slack incoming webhooks, a generic JSON webhook, Alertmanager's API v2."""
