"""Log lines reach the stream whole: one ``write`` per line, so two processes sharing stderr
(``backtest --against`` and its forked worker) never splice their lines together."""

from __future__ import annotations

import io
import json
import logging

import structlog

from support_monitor.monitor.logs import configure


class Writes(io.StringIO):
    """A text stream that records each ``write`` call."""

    def __init__(self) -> None:
        super().__init__()
        self.calls: list[str] = []

    def write(self, s: str) -> int:
        self.calls.append(s)
        return super().write(s)


def test_each_line_is_one_write_with_its_newline() -> None:
    out = Writes()
    before = structlog.get_config()
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    configure("info", "json", stream=out)
    try:
        structlog.get_logger("support_monitor.test").warning("event_rejected", reason="x")
        logging.getLogger("tests.library").warning("broker %s gone", "b1")  # a library's logger
    finally:  # the set-up of the other tests back
        structlog.configure(**before)
        root.handlers[:] = handlers
        root.setLevel(level)
    assert len(out.calls) == 2
    for call in out.calls:
        assert call.endswith("\n")
        assert call.count("\n") == 1
    first, second = (json.loads(call) for call in out.calls)
    assert (first["event"], first["reason"]) == ("event_rejected", "x")
    assert (second["logger"], second["event"]) == ("tests.library", "broker b1 gone")


def test_paho_says_a_failed_connection_attempt_only_at_debug() -> None:
    """Audit of 2026-12-05: while the MQTT dead-letter broker refused connections, paho wrote
    `failed to receive on socket: [Errno 104] ...` at error level on every retry, for as long
    as the outage lasted (the sink's own `dead_letter_write_failed` came once)."""
    before = structlog.get_config()
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    mqtt = logging.getLogger("mqtt")
    mqtt_level = mqtt.level
    shown = {}
    try:
        for daemon_level in ("info", "debug"):
            out = Writes()
            configure(daemon_level, "json", stream=out)
            client = logging.Logger("mqtt.dead-letters")  # noqa: LOG001 - as the MQTT source builds its own
            client.parent = mqtt
            client.error("failed to receive on socket: %s", "[Errno 104] Connection reset")
            shown[daemon_level] = [json.loads(call)["event"] for call in out.calls]
    finally:
        structlog.configure(**before)
        root.handlers[:] = handlers
        root.setLevel(level)
        mqtt.setLevel(mqtt_level)
    assert shown == {
        "info": [],
        "debug": ["failed to receive on socket: [Errno 104] Connection reset"],
    }
