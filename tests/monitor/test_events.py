"""The event contract: every reject reason, RFC 3339 offsets, extra fields, the JSON Schema."""

from __future__ import annotations

import json

import pytest

from monitor.events import ContactQueued, EventError, Reject, TicketCreated, decode, json_schema

OK = {
    "event_id": "e1",
    "type": "contact.queued",
    "ts": "2026-01-01T10:00:00+02:00",
    "channel": "voice",
    "contact_id": "c1",
}


def _reason(raw: bytes, max_bytes: int = 65536) -> Reject:
    with pytest.raises(EventError) as info:
        decode(raw, max_bytes)
    return info.value.reason


def _with(**changes: object) -> bytes:
    event = {**OK, **changes}
    return json.dumps({k: v for k, v in event.items() if v is not None}).encode()


def test_valid_event_with_offset_and_unknown_fields() -> None:
    event = decode(_with(extra={"x": 1}, priority=3), 65536)
    assert isinstance(event, ContactQueued)
    assert event.ts.timestamp() == 1767254400.0  # 08:00 UTC
    assert event.queue == "default"
    assert event.priority == 3


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        (b"{not json", Reject.INVALID_JSON),
        (b"\xff\xfe", Reject.INVALID_JSON),
        (b"[1, 2]", Reject.WRONG_TYPE),
        (_with(contact_id=None), Reject.MISSING_FIELD),
        (_with(type=None), Reject.MISSING_FIELD),
        (_with(type="contact.teleported"), Reject.UNKNOWN_TYPE),
        (_with(event_id=7), Reject.WRONG_TYPE),
        (_with(event_id=""), Reject.INVALID_VALUE),
        (_with(event_id="x" * 129), Reject.INVALID_VALUE),
        (_with(ts="2026-01-01T10:00:00"), Reject.BAD_TIMESTAMP),
        (_with(ts="yesterday"), Reject.BAD_TIMESTAMP),
        (_with(ts=1767254400), Reject.BAD_TIMESTAMP),
        (_with(type="ticket.rated", rating=6), Reject.INVALID_VALUE),
        (_with(type="ticket.rated", rating="5"), Reject.WRONG_TYPE),
        (_with(type="ticket.created", ticket_id="t", priority="asap"), Reject.INVALID_VALUE),
    ],
)
def test_reject_reasons(raw: bytes, reason: Reject) -> None:
    assert _reason(raw) == reason


def test_too_large_is_rejected_before_parsing() -> None:
    assert _reason(b"x" * 1001, max_bytes=1000) == Reject.TOO_LARGE


def test_event_id_of_exactly_128_chars_is_fine() -> None:
    assert decode(_with(event_id="x" * 128), 65536).event_id == "x" * 128


def test_ticket_tags_and_schema_covers_every_type() -> None:
    raw = _with(type="ticket.created", ticket_id="t1", tags=["complaint"], contact_id=None)
    event = decode(raw, 65536)
    assert isinstance(event, TicketCreated)
    assert event.tags == ("complaint",)
    schema = json.dumps(json_schema())
    for name in (
        "contact.queued",
        "contact.answered",
        "contact.abandoned",
        "contact.ended",
        "ticket.created",
        "ticket.responded",
        "ticket.solved",
        "ticket.reopened",
        "ticket.rated",
        "complaint.received",
    ):
        assert f'"{name}"' in schema
