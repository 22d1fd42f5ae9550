"""MqttSource settings and connection options (the broker tests are in tests/integration)."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from monitor.sources.mqtt import connect_options, subscription_filters
from monitor.sources.settings import MqttSettings


def test_shared_subscription_filters():
    settings = MqttSettings(topics=("support/events/#", "cc/+/events"), shared_group="monitors")
    assert subscription_filters(settings) == [
        "$share/monitors/support/events/#", "$share/monitors/cc/+/events",
    ]
    assert subscription_filters(MqttSettings()) == ["support/events/#"]


def test_persistent_session_by_default():
    settings = MqttSettings()
    assert settings.clean_session is False
    assert settings.client_id == "support-monitor"


def test_credentials_stay_secret_and_reach_the_client():
    settings = MqttSettings(username="monitor", password="s3cret")
    assert "s3cret" not in repr(settings)
    options = connect_options(settings, None)
    assert options["password"] == "s3cret"
    assert options["username"] == "monitor"
    assert "tls_context" not in options


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"topics": ("$share/g/a",)}, "set shared_group instead"),
        ({"shared_group": "a/b"}, "pattern"),
        ({"cert_file": "/c.pem"}, "go together"),
        ({"ca_file": "/ca.pem"}, "tls is false"),
        ({"dead_letter_topic": "dead/#"}, "not a filter"),
        ({"topics": ()}, "at least one topic"),
    ],
)
def test_settings_refuse_inconsistent_values(fields, message):
    with pytest.raises(ValidationError, match=message):
        MqttSettings(**fields)
