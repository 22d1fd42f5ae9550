"""The event contract: every reject reason, RFC 3339 offsets, extra fields, the JSON Schema."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from support_monitor.monitor.events import (
    ContactAnswered,
    ContactQueued,
    EventError,
    Reject,
    TicketCreated,
    decode,
    json_schema,
)

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
        (b"7", Reject.WRONG_TYPE),
        # not JSON at all, though the first token is not an object either
        (b"[", Reject.INVALID_JSON),
        (b"[1,", Reject.INVALID_JSON),
        (b"123abc", Reject.INVALID_JSON),
        (b"[}", Reject.INVALID_JSON),
        (b"[" * 30_000 + b"]" * 30_000, Reject.INVALID_JSON),
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
        (_with(priority=2**63), Reject.INVALID_VALUE),
        (_with(priority=2**31), Reject.INVALID_VALUE),
        (_with(priority=-(2**31) - 1), Reject.INVALID_VALUE),
        (_with(priority=1.5), Reject.WRONG_TYPE),
        (_with(type="contact.answered", agent_id="a" * 257), Reject.INVALID_VALUE),
        (_with(type="contact.answered", agent_id=""), Reject.INVALID_VALUE),
        (
            _with(type="ticket.responded", ticket_id="t", agent_id="a" * 60_000),
            Reject.INVALID_VALUE,
        ),
        (_with(type="ticket.created", ticket_id="t", tags=["x" * 129]), Reject.INVALID_VALUE),
        (_with(type="ticket.created", ticket_id="t", tags=["x"] * 10_001), Reject.INVALID_VALUE),
        (_with(type="ticket.created", ticket_id="t", tags=[1]), Reject.WRONG_TYPE),
    ],
)
def test_reject_reasons(raw: bytes, reason: Reject) -> None:
    assert _reason(raw) == reason


def _literal(field: str, literal: str, **changes: object) -> bytes:
    """:func:`_with` and ``field`` set to a JSON number literal json.dumps cannot write."""
    return _with(**changes, **{field: "@"}).replace(b'"@"', literal.encode())


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        # a float literal too large for a double is still a float: wrong type in an integer field
        (_literal("rating", "1e400", type="ticket.rated"), Reject.WRONG_TYPE),
        (_literal("rating", "-1e400", type="ticket.rated"), Reject.WRONG_TYPE),
        (_literal("rating", "1e2", type="ticket.rated"), Reject.WRONG_TYPE),
        (_literal("priority", "1e400"), Reject.WRONG_TYPE),
        (_literal("score", "1e400", type="survey.answered", survey="nps"), Reject.WRONG_TYPE),
        # and out of range in a float field
        (_literal("score", "1e400", type="sentiment.scored"), Reject.INVALID_VALUE),
        # an integer literal of any size is an integer: out of range
        (_literal("rating", "1" + "0" * 400, type="ticket.rated"), Reject.INVALID_VALUE),
        (
            _literal("score", "1" + "0" * 400, type="survey.answered", survey="nps"),
            Reject.INVALID_VALUE,
        ),
    ],
)
def test_number_literals_out_of_a_double_range(raw: bytes, reason: Reject) -> None:
    assert _reason(raw) == reason


_BODY = '"event_id":"e1","ts":"2026-01-01T10:00:00Z","channel":"voice","contact_id":"c1"'


@pytest.mark.parametrize(
    "raw",
    [
        '{"type":"contact.queued","ts":5,' + _BODY + "}",  # a first ts of the wrong type
        '{"type":"contact.queued","event_id":5,' + _BODY + "}",
        '{"type":"contact.queued","contact_id":["x"],' + _BODY + "}",
        '{"type":"contact.queued","priority":1.5,' + _BODY + ',"priority":2}',
        '{"type":"contact.queued","type":"contact.queued",' + _BODY + "}",
    ],
)
def test_a_field_written_twice_takes_its_last_value(raw: str) -> None:
    """docs/events.md: "A field written twice in one event takes its last value". A first value
    of the wrong type made the event wrong_type or bad_timestamp (audit of 2026-12-04)."""
    event = decode(raw.encode(), 65536)
    assert isinstance(event, ContactQueued)
    assert (event.event_id, event.contact_id) == ("e1", "c1")
    assert event.ts.isoformat() == "2026-01-01T10:00:00+00:00"


@pytest.mark.parametrize("first", ['"type":5', '"type":"contact.answered"'])
def test_a_type_written_twice_with_two_values_is_unknown_type(first: str) -> None:
    raw = "{" + first + ',"ts":5,' + _BODY + ',"type":"contact.queued"}'
    assert _reason(raw.encode()) is Reject.UNKNOWN_TYPE


def test_only_the_top_objects_type_counts_as_written_twice() -> None:
    raw = '{"type":"contact.queued","ts":5,"x":{"type":1},' + _BODY + ',"type":"contact.queued"}'
    assert isinstance(decode(raw.encode(), 65536), ContactQueued)


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


def test_invalid_utf8_inside_a_string_is_invalid_json() -> None:
    # The reported 120-byte event: 0xC3 0x28 is a lead byte followed by a non-continuation byte.
    raw = (
        b'{"event_id":"e-utf8","type":"ticket.solved","ts":"2026-01-01T10:00:00Z",'
        b'"channel":"email","ticket_id":"\xc3\x28","pad":"xxxx"}'
    )
    assert len(raw) == 120
    assert _reason(raw) == Reject.INVALID_JSON
    # in an unknown field, in a key, and a lone surrogate in a str input
    assert _reason(_with().replace(b"{", b'{"x":"\xff",', 1)) == Reject.INVALID_JSON
    assert _reason(_with().replace(b"{", b'{"\xed\xa0\x80":1,', 1)) == Reject.INVALID_JSON
    assert _reason(_with().decode().replace("{", '{"x":"\ud800",', 1)) == Reject.INVALID_JSON  # type: ignore[arg-type]


@pytest.mark.parametrize("raw", [b"", b"  \n", ""])
def test_an_empty_message_says_so(raw: bytes) -> None:
    # the detail was msgspec's "Input data was truncated"
    with pytest.raises(EventError) as caught:
        decode(raw, 65536)
    assert (caught.value.reason, caught.value.detail) == (Reject.INVALID_JSON, "empty message")


def test_deep_nesting_is_invalid_json_not_a_recursion_error() -> None:
    raw = b'{"x":' + b"[" * 1000 + b"]" * 1000 + b',"event_id":"e"}'
    assert 2000 < len(raw) < 2100
    assert _reason(raw) == Reject.INVALID_JSON
    assert _reason(b"[" * 60_000) == Reject.INVALID_JSON  # not an object, and not JSON
    assert _reason(b'{"x":' + b"[" * 60_000) == Reject.INVALID_JSON
    assert _reason(b'{"a":' * 13_000) == Reject.INVALID_JSON
    # 50 levels in an unknown field are fine
    event = decode(_with().replace(b"{", b'{"x":' + b"[" * 50 + b"]" * 50 + b",", 1), 65536)
    assert isinstance(event, ContactQueued)


def test_field_bounds_at_their_edges_are_accepted() -> None:
    for priority in (-(2**31), 0, 2**31 - 1):
        event = decode(_with(priority=priority), 65536)
        assert isinstance(event, ContactQueued)
        assert event.priority == priority
    answered = decode(_with(type="contact.answered", agent_id="a" * 256), 65536)
    assert isinstance(answered, ContactAnswered)
    assert answered.agent_id == "a" * 256
    created = decode(
        _with(type="ticket.created", ticket_id="t", tags=["x" * 128] * 64), 65536, max_tags=64
    )
    assert isinstance(created, TicketCreated)
    assert len(created.tags) == 64


def test_more_tags_than_max_tags_is_invalid_value() -> None:
    raw = _with(type="ticket.created", ticket_id="t", tags=["a"] * 65)
    with pytest.raises(EventError) as info:
        decode(raw, 65536, max_tags=64)
    assert info.value.reason == Reject.INVALID_VALUE
    assert "65 tags > ingest.max_tags 64" in info.value.detail
    assert len(decode(raw, 65536).tags) == 65  # type: ignore[union-attr]  # no max_tags given


def test_every_reject_reason_is_documented() -> None:
    doc = (Path(__file__).resolve().parents[2] / "docs" / "events.md").read_text(encoding="utf-8")
    rows = {line.split("|")[1].strip(" `") for line in doc.splitlines() if line.startswith("| `")}
    assert {r.value for r in Reject} <= rows


@pytest.mark.parametrize(
    ("fields", "detail"),
    [
        ({"type": "Jane Doe <jane@example.com> 4111111111111111"}, "Invalid value - at `$.type`"),
        (
            {"type": "ticket.status_changed", "ticket_id": "t", "status": "SSN 123-45-6789"},
            "Invalid enum value - at `$.status`",
        ),
    ],
)
def test_a_rejects_detail_never_quotes_the_value(fields: dict[str, str], detail: str) -> None:
    # the detail (logged, and in the dead letter) repeated a wrongly mapped field's text:
    # personal data in the log, 60 KB lines for a 60 KB field
    line = {"event_id": "e1", "ts": "2026-03-02T10:00:00Z", "channel": "voice", **fields}
    with pytest.raises(EventError) as info:
        decode(json.dumps(line).encode(), 65536)
    assert info.value.detail == detail
