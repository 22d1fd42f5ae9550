"""Silences and acknowledgements: what the console writes and the planner obeys.

- A **silence** (Alertmanager's model): label matchers (``=``, ``!=``, ``=~``, ``!~``; regexes
  anchored), a start, an end, who created it and a comment. While one matches an alert's labels
  the planner holds that alert's notifications exactly as a mute window does: nothing is sent
  and nothing is recorded as sent, so when the silence ends (or is expired) the receivers are
  reconciled (still firing: one ``new`` message; resolved meanwhile: ``resolved``).
- An **acknowledgement** is of one activation of one alert (fingerprint and ``active_at``): the
  planner sends no ``repeat`` for it; ``new`` and ``resolved`` are sent as usual, and a later
  activation of the same labels is not acknowledged.
- **Signed acknowledge links**: HMAC-SHA256 over the fingerprint, the expiry time and the
  activation (``active_at``: a link from an earlier firing cannot acknowledge a later one),
  with a key from ``console.signing_key_file`` or, when unset, a random key generated once and
  stored with mode 0600 as ``console.key`` in ``notifiers.state_dir`` (written whole or not at
  all; a file under 16 bytes, from an interrupted write, is replaced; a disk that refuses the
  write leaves this run signing with a key of its own, logged as ``console_key_not_saved``,
  or ``console_key_not_read`` when a key file is there but cannot be read).

Both live in ``console.sqlite3`` in ``notifiers.state_dir`` (sqlite, WAL, every call in
``asyncio.to_thread`` under one lock, never on the event loop), so they survive restarts with the
alert state; without a state directory they are kept in memory only. A failed write is logged
(``console_write_failed``) and the change is kept in memory; a store that cannot be opened (a
full disk, a damaged file) is logged once (``console_store_unavailable``) and the console runs
from memory.

Bounds: at most ``console.max_silences`` silences (expired ones are purged a day after their
end, and before a create is refused); acknowledgements of activations that no longer exist are
dropped at each new acknowledgement, so there are never more than the live alerts plus one.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import math
import os
import re
import secrets
import sqlite3
import tempfile
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Literal

import msgspec
import structlog

from support_monitor.alerts.matchers import compile_regex
from support_monitor.alerts.notify.message import AlertInfo
from support_monitor.alerts.store_db import OPEN_ERRORS, open_db, unavailable
from support_monitor.monitor.errors import SupportMonitorError
from support_monitor.monitor.events import EARLIEST_TS, LATEST_TS
from support_monitor.monitor.stats import DaemonStats, StoreHealth

log = structlog.get_logger("support_monitor.alerts.silences")

FILENAME = "console.sqlite3"
KEY_FILENAME = "console.key"
KEY_BYTES = 32
"""A generated signing key: 256 random bits."""
MIN_KEY_BYTES = 16
"""The shortest key signed with (128 bits): a configured key file, or a generated one read back."""
PURGE_AFTER = 86400.0
"""Expired silences are kept (listed as ``expired``) this long after their end, then purged."""
MAX_TEXT = 1000
"""Characters of a silence's comment at most (``createdBy``, an ack's ``by``: ``MAX_NAME``)."""
MAX_NAME = 100
MAX_MATCHERS = 20
LABEL_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
ACK_URL = "ack_url"
"""The annotation carrying the signed acknowledge link in firing notifications."""

_SCHEMA = (
    "CREATE TABLE IF NOT EXISTS silences (id TEXT PRIMARY KEY, body BLOB NOT NULL)",
    (
        "CREATE TABLE IF NOT EXISTS acks ("
        " fingerprint TEXT NOT NULL, active_at REAL NOT NULL, body BLOB NOT NULL,"
        " PRIMARY KEY (fingerprint, active_at))"
    ),
)


class InvalidRequestError(SupportMonitorError, ValueError):
    """A write the console refuses (answered 400 with this message); nothing was changed."""


class Matcher(msgspec.Struct, frozen=True, kw_only=True, rename="camel"):
    """Alertmanager's matcher: ``name``, ``value``, ``isRegex``, ``isEqual``."""

    name: str
    value: str
    is_regex: bool = False
    is_equal: bool = True

    def matches(self, labels: Mapping[str, str]) -> bool:
        actual = labels.get(self.name, "")
        found = (
            compile_regex(self.value).fullmatch(actual) is not None
            if self.is_regex
            else actual == self.value
        )
        return found == self.is_equal


class Silence(msgspec.Struct, frozen=True, kw_only=True, rename="camel"):
    id: str
    matchers: tuple[Matcher, ...]
    starts_at: float
    ends_at: float
    created_by: str
    comment: str
    updated_at: float

    def active(self, now: float) -> bool:
        return self.starts_at <= now < self.ends_at

    def status(self, now: float) -> Literal["pending", "active", "expired"]:
        if now >= self.ends_at:
            return "expired"
        return "active" if now >= self.starts_at else "pending"

    def matches(self, labels: Mapping[str, str]) -> bool:
        return all(m.matches(labels) for m in self.matchers)


Via = Literal["api", "page", "link"]


class Ack(msgspec.Struct, frozen=True, kw_only=True):
    fingerprint: str
    active_at: float
    by: str
    at: float
    via: Via


def _text(value: object, field: str, limit: int) -> str:
    if not isinstance(value, str) or not value.strip():
        raise InvalidRequestError(f"{field}: required, a non-empty string")
    if len(value) > limit:
        raise InvalidRequestError(f"{field}: at most {limit} characters")
    return value.strip()


_RFC3339 = re.compile(
    r"\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}(?::\d{2}(?:\.\d{1,9})?)?(?:[Zz]|[+-]\d{2}:\d{2})", re.ASCII
)
"""RFC 3339's date-time (seconds optional, as Alertmanager's clients send): Python's
``fromisoformat`` alone also takes ISO week dates (``2099-W01-1``) and other forms."""


def parse_time(value: object, field: str) -> float:
    """An RFC 3339 time (``2026-03-02T09:00:00Z``) as a Unix timestamp."""
    if not isinstance(value, str):
        raise InvalidRequestError(f"{field}: required, an RFC 3339 time such as 2026-03-02T09:00Z")
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise InvalidRequestError(f"{field}: {value[:40]!r} is not an RFC 3339 time") from None
    if parsed.tzinfo is None:
        raise InvalidRequestError(f"{field}: give a time zone (Z or +hh:mm)")
    if _RFC3339.fullmatch(value) is None:
        raise InvalidRequestError(f"{field}: {value[:40]!r} is not an RFC 3339 time")
    ts = parsed.timestamp()
    if not EARLIEST_TS <= ts < LATEST_TS:  # 9999-12-31T23:59-23:59 is year 10000 in UTC
        raise InvalidRequestError(f"{field}: between 1970 and 8999 (UTC)")
    return ts


def format_time(ts: float) -> str:
    """RFC 3339 in UTC; a time past what ``datetime`` holds (a silence stored before the range
    check) reads as its last second, so the status page still renders."""
    try:
        return datetime.fromtimestamp(ts, UTC).isoformat().replace("+00:00", "Z")
    except (OverflowError, OSError, ValueError):
        return "9999-12-31T23:59:59Z" if ts > 0 else "0001-01-01T00:00:00Z"


def parse_matchers(raw: object) -> tuple[Matcher, ...]:
    """Validate the ``matchers`` of a new silence (Alertmanager's rules)."""
    if not isinstance(raw, list) or not raw:
        raise InvalidRequestError("matchers: required, a non-empty list")
    if len(raw) > MAX_MATCHERS:
        raise InvalidRequestError(f"matchers: at most {MAX_MATCHERS}")
    out = tuple(_matcher(f"matchers[{index}]", item) for index, item in enumerate(raw))
    if all(m.matches({}) for m in out):  # as Alertmanager: it would silence every alert
        raise InvalidRequestError(
            "matchers: at least one matcher must not match the empty string (this would "
            "silence every alert)"
        )
    return out


def _matcher(where: str, item: object) -> Matcher:
    if not isinstance(item, dict):
        raise InvalidRequestError(f"{where}: an object with name and value")
    unknown = set(item) - {"name", "value", "isRegex", "isEqual"}
    if unknown:
        raise InvalidRequestError(f"{where}: unknown key {min(unknown)!r}")
    name, value = item.get("name"), item.get("value")
    if not isinstance(name, str) or LABEL_NAME.fullmatch(name) is None:
        raise InvalidRequestError(f"{where}.name: a label name ([A-Za-z_][A-Za-z0-9_]*)")
    if not isinstance(value, str) or len(value) > MAX_TEXT:
        raise InvalidRequestError(f"{where}.value: a string of at most {MAX_TEXT} characters")
    is_regex, is_equal = item.get("isRegex", False), item.get("isEqual", True)
    if not isinstance(is_regex, bool) or not isinstance(is_equal, bool):
        raise InvalidRequestError(f"{where}: isRegex and isEqual are true or false")
    if is_regex:
        try:
            compile_regex(value)
        except ValueError as exc:
            raise InvalidRequestError(f"{where}.value: invalid regex: {exc}") from None
    return Matcher(name=name, value=value, is_regex=is_regex, is_equal=is_equal)


def _unsound(silence: Silence) -> str | None:
    """What a silence read from the file breaks of the rules a new one is checked against
    (matchers, a regex RE2 reads, finite times), or ``None``: one written by another build or
    edited by hand made every evaluation raise while matching it."""
    try:
        parse_matchers(list(msgspec.to_builtins(silence.matchers)))
    except InvalidRequestError as exc:
        return str(exc)
    if not all(map(math.isfinite, (silence.starts_at, silence.ends_at, silence.updated_at))):
        return "a time that is not finite"
    return None


def new_silence(body: Mapping[str, object], now: float) -> Silence:
    """A silence from an API body (``matchers``, ``startsAt`` optional, ``endsAt``,
    ``createdBy``, ``comment``); ``InvalidRequestError`` names the first problem."""
    unknown = set(body) - {"matchers", "startsAt", "endsAt", "createdBy", "comment"}
    if unknown:
        raise InvalidRequestError(f"unknown key {min(unknown)!r}")
    matchers = parse_matchers(body.get("matchers"))
    starts = parse_time(body["startsAt"], "startsAt") if "startsAt" in body else now
    ends = parse_time(body.get("endsAt"), "endsAt")
    if not math.isfinite(ends) or ends <= now:
        raise InvalidRequestError("endsAt: must be in the future")
    if ends <= starts:
        raise InvalidRequestError("endsAt: must be after startsAt")
    return Silence(
        id=str(uuid.uuid4()),
        matchers=matchers,
        starts_at=max(starts, now),
        ends_at=ends,
        created_by=_text(body.get("createdBy"), "createdBy", MAX_NAME),
        comment=_text(body.get("comment"), "comment", MAX_TEXT),
        updated_at=now,
    )


def ack_name(value: object) -> str:
    return _text(value, "by", MAX_NAME)


# --- signed links ----------------------------------------------------------------------------


def load_signing_key(key_file: Path | None, state_dir: Path | None) -> bytes:
    """The HMAC key (blocking: call off the loop). ``ValueError`` names the file's problem."""
    if key_file is not None:
        try:
            key = key_file.read_bytes().strip()
        except OSError as exc:
            msg = f"console.signing_key_file: cannot read {key_file}: {exc.strerror}"
            raise ValueError(msg) from None
        if len(key) < MIN_KEY_BYTES:
            msg = f"console.signing_key_file: {key_file} holds under 16 bytes"
            raise ValueError(msg)
        return key
    if state_dir is None:
        return secrets.token_bytes(KEY_BYTES)
    path = state_dir / KEY_FILENAME
    try:
        kept = _read_key(path)
    except OSError as exc:  # not readable by this user, or not a directory: never overwrite it
        return _own_key(
            "console_key_not_read",
            path,
            exc,
            "acknowledge links sent before this start no longer work, and those sent now stop "
            "working after a restart",
        )
    if kept is not None and len(kept) >= MIN_KEY_BYTES:
        return kept
    if kept is not None:  # a write cut short before the key was written whole: never sign
        log.warning("console_key_replaced", path=str(path), held_bytes=len(kept))
    key = secrets.token_bytes(KEY_BYTES)
    try:
        return _store_key(path, key)
    except OSError as exc:  # a full or read-only disk: sign with this run's key
        return _own_key(
            "console_key_not_saved",
            path,
            exc,
            "acknowledge links sent now stop working after a restart",
            key,
        )


def _own_key(
    event: str, path: Path, exc: OSError, consequence: str, key: bytes | None = None
) -> bytes:
    """Log one line (no traceback) and sign this run with ``key`` (a new one when ``None``)."""
    log.error(
        event, path=str(path), error=exc.strerror or type(exc).__name__, consequence=consequence
    )
    return key if key is not None else secrets.token_bytes(KEY_BYTES)


def _read_key(path: Path) -> bytes | None:
    """The stored key file's bytes, ``None`` when there is none (``OSError`` when it cannot be
    read)."""
    try:
        return path.read_bytes()
    except FileNotFoundError:
        return None


def _store_key(path: Path, key: bytes) -> bytes:
    """Write ``key`` whole (a private temporary file, fsynced, then linked into place), or
    return the key another process stored first. A key file is never seen half written."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    tmp = Path(name)  # mode 0600, a name no other process (or container) picks
    try:
        with os.fdopen(fd, "wb") as out:
            out.write(key)
            out.flush()
            os.fsync(out.fileno())
        try:
            os.link(tmp, path)
        except OSError:  # another process stored one first, or no hard links here
            if path.exists():
                kept = path.read_bytes()
                if len(kept) >= MIN_KEY_BYTES:
                    return kept
            tmp.replace(path)  # over the short file of an interrupted write, or a rename
    finally:
        tmp.unlink(missing_ok=True)
    return key


class AckSigner:
    """Signs and checks acknowledge links: ``{base}/ack/{fingerprint}?exp=...&act=...&sig=...``.
    ``act`` is the activation the link was sent for (``active_at`` in ms): a link from an
    earlier firing of the same alert cannot acknowledge a later one (the console checks it
    against the alert)."""

    def __init__(self, key: bytes, base_url: str | None, ttl: float) -> None:
        self._key = key
        self.base_url = base_url
        self.ttl = ttl

    def signature(self, fingerprint: str, expires: int, active: str = "") -> str:
        message = f"ack\0{fingerprint}\0{expires}\0{active}".encode()
        return hmac.new(self._key, message, hashlib.sha256).hexdigest()

    def path(self, fingerprint: str, now: float, active: str = "") -> str:
        expires = int(now + self.ttl)
        act = f"&act={active}" if active else ""
        sig = self.signature(fingerprint, expires, active)
        return f"/ack/{fingerprint}?exp={expires}{act}&sig={sig}"

    def link(self, fingerprint: str, now: float, active: str = "") -> str | None:
        if self.base_url is None:
            return None
        return self.base_url + self.path(fingerprint, now, active)

    def check(
        self, fingerprint: str, expires: str, signature: str, now: float, active: str = ""
    ) -> str | None:
        """``None`` when the link is genuine and unexpired, else what is wrong with it."""
        if not _digits(expires, 12) or (active and not _digits(active, 16)):
            return "the link is malformed"
        if not (fingerprint.isascii() and signature.isascii()) or not hmac.compare_digest(
            self.signature(fingerprint, int(expires), active), signature
        ):  # fingerprints and signatures are hex: other text is forged (and would raise)
            return "the link's signature is not valid (changed or for another alert)"
        if int(expires) < now:
            return "the link has expired"
        return None


def activation(active_at: float) -> str:
    """An alert's activation as an ack link writes it (``active_at`` in whole ms)."""
    return str(round(active_at * 1000))


def _digits(text: str, most: int) -> bool:
    """ASCII digits only ("²" passes ``str.isdigit``), at most ``most`` of them."""
    return text.isascii() and text.isdigit() and len(text) <= most


# --- the store -------------------------------------------------------------------------------


@dataclass(slots=True)
class _Loaded:
    silences: list[Silence]
    acks: list[Ack]


_silence_decode = msgspec.json.Decoder(Silence).decode
_ack_decode = msgspec.json.Decoder(Ack).decode


_LabelsKey = tuple[tuple[str, str], ...]
MATCH_CACHE = 100_000
"""Entries of each silence-matching cache at most (then it starts afresh): label sets of the
alerts (bounded by the rules and their label values) times ``console.max_silences``."""


class ConsoleStore:
    """Silences and acknowledgements in memory, written through to sqlite when persistent."""

    def __init__(
        self, state_dir: Path | None, max_silences: int, stats: DaemonStats | None = None
    ) -> None:
        """``stats``: where failed opens and writes are counted (``store`` = ``console``,
        ``support_monitor_store_failures_total``, ``support_monitor_store_failing``)."""
        self.path = None if state_dir is None else state_dir / FILENAME
        self._health = StoreHealth("console", stats)
        self.max_silences = max_silences
        self.silences: dict[str, Silence] = {}
        self.acks: dict[tuple[str, float], Ack] = {}
        self._db: sqlite3.Connection | None = None
        self._lock = asyncio.Lock()
        self._matching: dict[_LabelsKey, list[Silence]] = {}
        """Per alert label set, the silences whose matchers match it (active or not), in the
        order of ``silences``; cleared whenever a silence is added, changed or dropped."""
        self._matched: dict[tuple[tuple[Matcher, ...], _LabelsKey], bool] = {}
        """Whether a matcher set matches a label set: after a change only the new silence's
        matchers run. Both are cleared past ``MATCH_CACHE`` entries."""

    async def open(self) -> None:
        if self.path is None:
            return
        self._health.watch()
        async with self._lock:
            try:
                loaded = await asyncio.to_thread(self._open_sync, self.path)
            except OPEN_ERRORS as exc:  # a full disk, a damaged file
                self._health.failed(
                    "console_store_unavailable",
                    exc,
                    path=str(self.path),
                    consequence=unavailable("silences and acknowledgements are"),
                )
                return
        refused = {s.id: why for s in loaded.silences if (why := _unsound(s)) is not None}
        self.silences = {s.id: s for s in loaded.silences if s.id not in refused}
        self._matching.clear()
        self.acks = {(a.fingerprint, a.active_at): a for a in loaded.acks}
        log.info("console_state_restored", silences=len(self.silences), acks=len(self.acks))
        if refused:
            first = min(refused)
            self._health.failed(
                "silences_refused",
                InvalidRequestError(f"silence {first}: {refused[first]}"),
                count=len(refused),
                consequence="dropped from the file; the other silences hold",
            )
            await self._write([("DELETE FROM silences WHERE id = ?", (i,)) for i in refused])

    def _open_sync(self, path: Path) -> _Loaded:
        db = open_db(path, _SCHEMA)
        try:
            silences = [_silence_decode(row[0]) for row in db.execute("SELECT body FROM silences")]
            acks = [_ack_decode(row[0]) for row in db.execute("SELECT body FROM acks")]
        except BaseException:
            db.close()
            raise
        self._db = db
        return _Loaded(silences, acks)

    @property
    def persistent(self) -> bool:
        """Whether it is written through to its file (opened; not running from memory)."""
        return self._db is not None

    async def close(self) -> None:
        async with self._lock:
            db, self._db = self._db, None
            if db is not None:
                await asyncio.to_thread(db.close)

    async def _write(self, statements: list[tuple[str, tuple[object, ...]]]) -> None:
        async with self._lock:
            db = self._db
            if db is None:
                return
            try:
                await asyncio.to_thread(_run, db, statements)
            except (sqlite3.Error, OSError) as exc:
                self._health.failed("console_write_failed", exc)
            else:
                self._health.ok()

    # --- silences ---

    def silenced(self, labels: Mapping[str, str], now: float) -> Silence | None:
        """The first active silence matching ``labels``. Matching runs once per label set and
        silence (1,000 silences of 20 regex matchers against every alert at every tick stalled
        the loop for seconds): the matching silences of a label set are kept until the
        silences change, and each (matchers, labels) outcome until either cache is full."""
        key = tuple(sorted(labels.items()))
        matching = self._matching.get(key)
        if matching is None:
            if len(self._matching) >= MATCH_CACHE:
                self._matching.clear()
            if len(self._matched) >= MATCH_CACHE:
                self._matched.clear()
            matching = [s for s in self.silences.values() if self._matches(s, key, labels)]
            self._matching[key] = matching
        for silence in matching:
            if silence.active(now):
                return silence
        return None

    def _matches(self, silence: Silence, key: _LabelsKey, labels: Mapping[str, str]) -> bool:
        pair = (silence.matchers, key)
        found = self._matched.get(pair)
        if found is None:
            found = self._matched[pair] = silence.matches(labels)
        return found

    async def add_silence(self, silence: Silence, now: float) -> None:
        purged = [s.id for s in self.silences.values() if now - s.ends_at > PURGE_AFTER]
        for key in purged:
            del self.silences[key]
        self._matching.clear()  # (purged ones may be gone even when this one is refused)
        if len(self.silences) >= self.max_silences:
            msg = f"too many silences (console.max_silences = {self.max_silences})"
            raise InvalidRequestError(msg)
        self.silences[silence.id] = silence
        self._matching.clear()
        statements: list[tuple[str, tuple[object, ...]]] = [
            ("DELETE FROM silences WHERE id = ?", (key,)) for key in purged
        ]
        statements.append(_silence_row(silence))
        await self._write(statements)

    async def expire_silence(self, silence_id: str, now: float) -> Silence | None:
        """End a silence now (``None``: unknown id); an expired one is returned unchanged."""
        silence = self.silences.get(silence_id)
        if silence is None or silence.ends_at <= now:
            return silence
        silence = msgspec.structs.replace(
            silence, ends_at=now, starts_at=min(silence.starts_at, now), updated_at=now
        )
        self.silences[silence_id] = silence
        self._matching.clear()
        await self._write([_silence_row(silence)])
        return silence

    # --- acknowledgements ---

    def acknowledged(self, fingerprint: str, active_at: float) -> Ack | None:
        return self.acks.get((fingerprint, active_at))

    async def acknowledge(self, ack: Ack, live: Iterable[tuple[str, float]]) -> None:
        """Record ``ack``; acknowledgements of activations not in ``live`` are dropped."""
        keep = set(live)
        stale = [key for key in self.acks if key not in keep]
        for key in stale:
            del self.acks[key]
        self.acks[ack.fingerprint, ack.active_at] = ack
        statements: list[tuple[str, tuple[object, ...]]] = [
            ("DELETE FROM acks WHERE fingerprint = ? AND active_at = ?", key) for key in stale
        ]
        statements.append(
            (
                "INSERT OR REPLACE INTO acks VALUES (?, ?, ?)",
                (ack.fingerprint, ack.active_at, msgspec.json.encode(ack)),
            )
        )
        await self._write(statements)


def _silence_row(silence: Silence) -> tuple[str, tuple[object, ...]]:
    return (
        "INSERT OR REPLACE INTO silences VALUES (?, ?)",
        (silence.id, msgspec.json.encode(silence)),
    )


def _run(db: sqlite3.Connection, statements: list[tuple[str, tuple[object, ...]]]) -> None:
    db.execute("BEGIN")
    try:
        for sql, params in statements:
            db.execute(sql, params)
    except BaseException:
        db.execute("ROLLBACK")
        raise
    db.execute("COMMIT")


class PlannerHolds:
    """What the planner asks before sending (``Planner.holds``): silences hold an alert like a
    mute window, acknowledgements stop ``repeat``, and firing alerts get the ack link."""

    def __init__(self, store: ConsoleStore, signer: AckSigner | None) -> None:
        self.store = store
        self.signer = signer

    def held(self, labels: Mapping[str, str], now: float) -> bool:
        return self.store.silenced(labels, now) is not None

    def acknowledged(self, fingerprint: str, active_at: float) -> bool:
        return self.store.acknowledged(fingerprint, active_at) is not None

    def annotate(self, info: AlertInfo, now: float) -> AlertInfo:
        """``info`` with the signed ``ack_url`` annotation (when ``external_url`` is set)."""
        if self.signer is None or info.resolved_at is not None:
            return info
        url = self.signer.link(info.fingerprint, now, activation(info.active_at))
        if url is None:
            return info
        return msgspec.structs.replace(info, annotations={**info.annotations, ACK_URL: url})
