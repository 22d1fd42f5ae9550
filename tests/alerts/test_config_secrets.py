"""Config errors and log lines never show a secret: YAML syntax errors, validation messages,
the log redaction safety net."""

from __future__ import annotations

import io
import json
import logging
from pathlib import Path

import pytest
import structlog

from support_monitor.monitor import logs, redaction
from support_monitor.monitor.config import Settings, load_settings
from support_monitor.monitor.errors import ConfigError
from support_monitor.monitor.redaction import secret_field_names, secret_values

SECRET = "Pw-7g2KqX9-secret"


def _error(path: Path, text: str) -> str:
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ConfigError) as info:
        load_settings(path)
    return str(info.value)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (  # an unterminated quote on the secret's own line
            (
                "notifiers:\n  receivers:\n    s:\n      type: slack\n"
                f'      webhook_url: "https://hooks.slack.com/services/{SECRET}\n'
                "windows: [5m]\n"
            ),
            (
                "not valid YAML at line 7, column 1: found unexpected end of stream "
                "(while scanning a quoted scalar started at line 5, column 20)"
            ),
        ),
        (  # a colon too many on the secret's line
            f"sources:\n  mqtt:\n    password: a: {SECRET}\n",
            "not valid YAML at line 3, column 16: mapping values are not allowed here",
        ),
        (  # a tab, an alias and a tag named after the secret
            f"x: *{SECRET}\n",
            "not valid YAML at line 1, column 4: found undefined alias '...'",
        ),
        (f"x: !{SECRET} y\n", "could not determine a constructor for the tag '...'"),
        (f"a:\n\t- {SECRET}\n", "found character '\\t' that cannot start any token"),
    ],
)
def test_yaml_syntax_error_shows_line_and_column_not_the_text(tmp_path, text, expected):
    path = tmp_path / "c.yaml"
    message = _error(path, text)
    assert expected in message
    assert message.startswith(f"{path}: not valid YAML")
    assert SECRET not in message


def test_not_utf8_is_a_clear_error(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_bytes(b"windows: [5m]\npassword: \xff\xfe" + SECRET.encode())
    with pytest.raises(ConfigError) as info:
        load_settings(path)
    assert str(info.value) == f"{path}: not UTF-8 text (byte 24)"


@pytest.mark.parametrize(
    ("text", "key"),
    [
        (  # a wrong type next to a secret: the whole mapping is pydantic's input
            (
                "sources:\n  kafka:\n    security_protocol: SASL_PLAINTEXT\n"
                f"    sasl_mechanism: PLAIN\n    sasl_username: u\n    sasl_password: {SECRET}\n"
                "    max_batch: many\n"
            ),
            "sources.kafka.max_batch: Input should be a valid integer",
        ),
        (  # the secret itself of the wrong type
            f"sources:\n  mqtt:\n    password: [{SECRET}]\n",
            "sources.mqtt.password: Input should be a valid string",
        ),
        (  # a model validator fails with the secret in its input
            f"sources:\n  kafka:\n    security_protocol: SASL_SSL\n    sasl_password: {SECRET}\n",
            "sasl_mechanism is required with SASL_SSL",
        ),
        (
            f"notifiers:\n  alertmanager:\n    urls: ['http://admin:{SECRET}@am:x/']\n",
            "notifiers.alertmanager.urls[0]: is not a URL the HTTP client can parse",
        ),
        (
            (
                "notifiers:\n  receivers:\n    w:\n      type: webhook\n"
                f"      url: http://h/{SECRET}\n      headers: {{X-Key: {SECRET}}}\n"
                "      timeout: -1\n"
            ),
            "notifiers.receivers.w.timeout",
        ),
        (  # an unknown key whose value is a secret: the key is named, not the value
            f"notifiers:\n  alertmanager:\n    passwrd: {SECRET}\n",
            "notifiers.alertmanager.passwrd: unknown key",
        ),
        (  # a header value httpx would refuse to send: every page would be retried, then lost
            (
                "notifiers:\n  receivers:\n    w:\n      type: webhook\n"
                f"      url: http://h/x\n      headers: {{X-Key: '{SECRET} '}}\n"
            ),
            "notifiers.receivers.w.headers.X-Key: the value starts or ends with a space or tab",
        ),
        (
            (
                "notifiers:\n  receivers:\n    w:\n      type: webhook\n"
                f'      url: http://h/x\n      bearer_token: "{SECRET}\\nx"\n'
            ),
            "notifiers.receivers.w.bearer_token: the token holds a control character",
        ),
        (
            (
                "notifiers:\n  receivers:\n    w:\n      type: webhook\n"
                f"      url: http://h/x\n      headers: {{X-Key: '{SECRET}\u00e9'}}\n"
            ),
            "notifiers.receivers.w.headers.X-Key: the value holds a character that is not ASCII",
        ),
        (  # basic auth in the URL and a bearer token: httpx sends only the basic auth
            (
                "notifiers:\n  receivers:\n    w:\n      type: webhook\n"
                f"      url: http://admin:{SECRET}@h/x\n      bearer_token: abc\n"
            ),
            "notifiers.receivers.w.bearer_token: set next to a URL with user:password@",
        ),
        (
            (
                "notifiers:\n  receivers:\n    w:\n      type: webhook\n"
                f"      url: http://u:{SECRET}@h/x\n      bearer_token_env: TOKEN\n"
            ),
            "notifiers.receivers.w.bearer_token_env: set next to a URL with user:password@",
        ),
        (  # an Authorization header of its own is replaced by the URL's basic auth as well
            (
                "notifiers:\n  receivers:\n    w:\n      type: webhook\n"
                f"      url: http://u:{SECRET}@h/x\n      headers: {{Authorization: Token x}}\n"
            ),
            "notifiers.receivers.w.headers.Authorization: set next to a URL with user:password@",
        ),
        # the secret pasted where its variable's name or its file's path belongs (audit of
        # 2026-12-04: "environment variable <the URL> is not set" was logged at start-up, and
        # "cannot read https:/hooks..." escaped the URL filter, its // made one /)
        (
            (
                "notifiers:\n  receivers:\n    s:\n      type: slack\n"
                f"      webhook_url_env: https://hooks.slack.com/services/T0/B0/{SECRET}\n"
            ),
            "notifiers.receivers.s.webhook_url_env: not an environment variable name",
        ),
        (
            (
                "notifiers:\n  receivers:\n    w:\n      type: webhook\n"
                f"      url: http://h/x\n      bearer_token_env: eyJhbGciOi.{SECRET}\n"
            ),
            "notifiers.receivers.w.bearer_token_env: not an environment variable name",
        ),
        (
            (
                "notifiers:\n  receivers:\n    s:\n      type: slack\n"
                f"      webhook_url_file: https://hooks.slack.com/services/T0/B0/{SECRET}\n"
            ),
            "notifiers.receivers.s.webhook_url_file: holds a URL",
        ),
        (
            f"console:\n  api_token_file: 'http://x/{SECRET}'\n",
            "console.api_token_file: holds a URL",
        ),
    ],
)
def test_validation_errors_never_show_a_secret(tmp_path, text, key):
    message = _error(tmp_path / "c.yaml", text)
    assert key in message
    assert SECRET not in message


def test_a_custom_message_echoing_a_url_is_scrubbed(tmp_path):
    """A message from any validator that quotes a URL (a non-secret field here) shows no URL."""
    message = _error(
        tmp_path / "c.yaml",
        f"notifiers:\n  mute_windows:\n    m:\n      - timezone: 'http://x:{SECRET}@y/'\n",
    )
    assert "unknown time zone" in message
    assert SECRET not in message
    assert "<not shown>" in message


def test_a_url_split_at_its_scheme_is_scrubbed(tmp_path):
    """A URL pasted where HOST:PORT belongs: the "port" after the last colon is the URL's path
    (the message quoted it, with its token, and no scheme for the scrub to see)."""
    message = _error(
        tmp_path / "c.yaml",
        f"exporter:\n  listen: 'https://hooks.slack.com/services/T0/B0/{SECRET}'\n",
    )
    assert (
        "exporter.listen: is not HOST:PORT: it has a user, password or scheme "
        "(its text is not shown: it may hold a secret)"
    ) in message
    assert SECRET not in message


def test_the_scrub_keeps_ordinary_values(tmp_path):
    message = _error(
        tmp_path / "c.yaml",
        "alerts:\n  rules:\n    - {alert: A, detector: longest_wait, channels: [fax]}\n",
    )
    assert "alerts.rules[0].channels: unknown channel 'fax'" in message


def test_secret_fields_are_found_in_the_whole_tree():
    names = secret_field_names(Settings)
    assert {
        "webhook_url",
        "url",
        "bearer_token",
        "headers",
        "urls",
        "sasl_password",
        "ssl_keyfile_password",
        "password",
    } <= names
    assert "channels" not in names
    assert "listen" not in names


def test_loaded_secrets_are_registered_for_redaction(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text(f"sources:\n  mqtt:\n    username: u\n    password: {SECRET}-mqtt\n")
    settings = load_settings(path)
    assert f"{SECRET}-mqtt" in set(secret_values(settings))
    assert logs.REDACTOR.text(f"x {SECRET}-mqtt y") == "x *** y"


def test_log_lines_are_redacted_also_in_tracebacks(restore_logging: None) -> None:
    out = io.StringIO()
    logs.configure("info", "json", out)
    logs.register_secret(f"{SECRET}-log")
    log = structlog.get_logger("test")
    log.warning("some_event", detail=f"token={SECRET}-log", nested={"a": [f"{SECRET}-log"]})

    def fail() -> None:
        raise ValueError(f"http://user:{SECRET}-other@h/ and {SECRET}-log")

    try:
        fail()
    except ValueError:
        log.exception("crashed")
    logging.getLogger("some.library").warning("library says %s", f"{SECRET}-log")
    text = out.getvalue()
    assert SECRET not in text
    lines = text.splitlines()
    first = json.loads(lines[0])
    assert first["detail"] == "token=***"
    assert first["nested"] == {"a": ["***"]}
    assert "http://***@h/" in text
    assert "library says ***" in text


def test_short_values_are_not_masked_everywhere():
    logs.register_secret("ab")
    assert logs.REDACTOR.text("about abc") == "about abc"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "headers: {X-Api-Key: 'space '}",
            "notifiers.receivers.w.headers.X-Api-Key: the value starts or ends with a space or tab",
        ),
        (
            "bearer_token: ' t'",
            "notifiers.receivers.w.bearer_token: the token starts or ends with a space or tab",
        ),
    ],
)
def test_a_short_secret_does_not_garble_the_message(tmp_path, text, expected):
    """A secret that is also a word of the message was cut out of it: "starts or ends with a
    <not shown>or tab" for the header value "space ", which the gap then spelt out (audit of
    2026-12-05)."""
    receiver = "notifiers:\n  receivers:\n    w:\n      type: webhook\n      url: http://h/x\n"
    message = _error(tmp_path / "c.yaml", f"{receiver}      {text}\n")
    assert message.endswith(expected)


def test_a_short_secret_quoted_by_a_message_is_hidden():
    error = {"loc": ("bearer_token",), "input": "abc", "type": "value_error", "msg": "", "ctx": {}}
    names = frozenset({"bearer_token"})
    shown = redaction.scrub_message("token 'abc' is refused; abc", error, names)  # type: ignore[arg-type]
    assert shown == "token <not shown> is refused; abc"
    long_secret = "s3cr3t-t0ken"
    error["input"] = long_secret
    shown = redaction.scrub_message(f"bad {long_secret}!", error, names)  # type: ignore[arg-type]
    assert shown == "bad <not shown>!"
